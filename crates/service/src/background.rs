//! The work that must run on exactly one replica: writing the GPU ledger,
//! rolling it up, firing budget alerts, posting webhooks, and deleting
//! history past its retention. Replicas share one database; whichever holds
//! the `background` lease (a row in it, renewed every few seconds) does the
//! work, and another takes over within [`LEASE_TTL`] of it dying.

use std::time::Duration;

use gantry_domain::view::ResourceKind;
use gantry_store::now_ms;
use tokio::sync::watch;

use crate::ledger::LedgerWriter;
use crate::state::AppState;

const LEASE: &str = "background";
/// A holder that has not renewed for this long has lost the lease.
pub const LEASE_TTL: Duration = Duration::from_secs(20);
/// How often the holder renews and records the ledger (a change in a
/// cluster's pods or nodes records it sooner).
const PASS: Duration = Duration::from_secs(5);
/// Changes within this long of each other are recorded in one pass.
const SETTLE: Duration = Duration::from_millis(500);
const ROLL_UP_EVERY_MS: i64 = 60_000;
const DELIVER_EVERY_MS: i64 = 10_000;
const RETENTION_EVERY_MS: i64 = 3_600_000;

/// Pins a future as `Send` where it is made. Without this, rustc cannot
/// prove the whole background loop `Send` for every lifetime (its known
/// limitation with nested async borrows) and it could not be spawned.
fn sendable<'a, T>(
    future: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(future)
}

impl AppState {
    /// Runs the background work until `shutdown` turns true, then releases
    /// the lease so another replica can take over at once. `holder` names
    /// this replica (unique per process).
    pub async fn run_background(&self, holder: String, mut shutdown: watch::Receiver<bool>) {
        let mut writer = LedgerWriter::default();
        let mut leading = false;
        let mut changes = self.subscribe();
        let http = reqwest::Client::new();
        let (mut rolled, mut delivered, mut retained) = (0i64, 0i64, 0i64);
        loop {
            let ttl = LEASE_TTL.as_millis() as i64;
            match self.store.try_lease(LEASE, &holder, ttl, now_ms()).await {
                Ok(true) if !leading => {
                    tracing::info!(%holder, "this replica now writes the GPU ledger and sends budget alerts");
                    writer.new_term();
                    leading = true;
                }
                Ok(true) => {}
                Ok(false) => leading = false,
                Err(e) => {
                    tracing::warn!("could not renew the background lease: {}", e);
                    leading = false;
                }
            }
            if leading {
                self.background_pass(&mut writer, &http, &mut rolled, &mut delivered, &mut retained).await;
            }
            // Wait for the next pass, a change worth recording, or shutdown.
            let wake = async {
                loop {
                    match changes.recv().await {
                        Ok(c) if matches!(c.kind, ResourceKind::Pod | ResourceKind::Node | ResourceKind::Cluster) => {
                            tokio::time::sleep(SETTLE).await;
                            return;
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(PASS) => {}
                _ = wake, if leading => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if leading {
            let _ = self.store.release_lease(LEASE, &holder).await;
        }
    }

    async fn background_pass(
        &self,
        writer: &mut LedgerWriter,
        http: &reqwest::Client,
        rolled: &mut i64,
        delivered: &mut i64,
        retained: &mut i64,
    ) {
        if let Err(e) = sendable(self.record_ledger(writer)).await {
            tracing::warn!("could not record the GPU ledger: {}", e.message);
        }
        let now = now_ms();
        if now - *rolled >= ROLL_UP_EVERY_MS {
            *rolled = now;
            if let Err(e) = sendable(self.roll_up(writer)).await {
                tracing::warn!("could not roll up GPU usage: {}", e.message);
            }
            if let Err(e) = sendable(self.check_budgets()).await {
                tracing::warn!("could not check the budgets: {}", e.message);
            }
        }
        if now - *delivered >= DELIVER_EVERY_MS {
            *delivered = now;
            if let Err(e) = sendable(self.deliver_webhooks(http)).await {
                tracing::warn!("could not deliver webhooks: {}", e.message);
            }
        }
        if now - *retained >= RETENTION_EVERY_MS {
            *retained = now;
            if let Err(e) = sendable(self.apply_retention()).await {
                tracing::warn!("could not apply the usage retention: {}", e.message);
            }
        }
    }
}

#[cfg(test)]
mod spawnable {
    use super::*;

    fn send<T: Send>(_: T) {}

    /// `gantry serve` spawns the background loop: it must be `Send` (checked
    /// when this compiles; nothing runs).
    #[allow(dead_code)]
    fn the_background_loop_is_send(app: AppState, shutdown: watch::Receiver<bool>) {
        send(app.run_background(String::new(), shutdown));
    }
}
