//! What is still being prepared while Gantry already serves: the steps the
//! script that started it (`scripts/run.sh`) writes to `--progress-file`,
//! shown as a banner, and announced on the live stream when they move on.

use std::path::Path;
use std::time::{Duration, SystemTime};

use gantry_domain::policy::{Action, Target};
use gantry_domain::view::{Preparation, ResourceKind};
use tokio::sync::watch;

use crate::error::Result;
use crate::state::{AppState, Audit, Caller};

/// How often the progress file is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);

impl AppState {
    /// The preparation under way (or one that failed), if there is one to show.
    pub async fn preparation(&self, caller: &Caller) -> Result<Option<Preparation>> {
        self.authorize(caller, Action::ViewPreparation, &Target::Global, &Audit::default()).await?;
        let Some(path) = &self.config.progress_file else { return Ok(None) };
        Ok(read(path).await.filter(Preparation::worth_showing))
    }

    /// Announces `ResourceKind::Preparation` whenever the progress file
    /// changes, until `shutdown`, so open pages re-read it.
    pub async fn watch_preparation(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(path) = self.config.progress_file.clone() else { return };
        let mut seen: Option<SystemTime> = None;
        loop {
            let modified = tokio::fs::metadata(&path).await.and_then(|m| m.modified()).ok();
            if modified != seen {
                seen = modified;
                self.hub.announce(ResourceKind::Preparation);
            }
            tokio::select! {
                _ = tokio::time::sleep(LOOK_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn read(path: &Path) -> Option<Preparation> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    Preparation::parse(&text)
}
