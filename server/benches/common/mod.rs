//! What the server benchmarks share: an in-process Gantry on a random port
//! (SQLite store, a team `vision`, an admin and a deployer with API tokens),
//! statistics, and rewriting one section of BENCHMARKS.md.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gantry_cluster::Hub;
use gantry_domain::policy::Role;
use gantry_domain::validate::Username;
use gantry_server::web::{self, WebConfig};
use gantry_service::{AppState, Sealer, ServiceConfig};
use gantry_store::testing::TempDir;
use gantry_store::{NewToken, Store, StoreConfig};
use gantry_testbed::report;

/// A Gantry server running inside the benchmark process.
pub struct Server {
    pub base: String,
    pub state: AppState,
    /// Bearer token of a global admin.
    pub admin_token: String,
    /// Bearer token of a deployer in team `vision` (owner of namespace
    /// `vision` in every cluster of the hub).
    pub deployer_token: String,
    /// The clusters the server watches.
    pub hub: Arc<Hub>,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: TempDir,
}

impl Server {
    /// Starts the full router (the one `gantry serve` runs) over `hub`,
    /// which should already be synced.
    pub async fn start(hub: Arc<Hub>) -> anyhow::Result<Server> {
        Self::start_with(hub, None).await
    }

    /// [`start`](Self::start) with the store in the PostgreSQL database at
    /// `database_url` (None: a new SQLite file in the server's directory).
    pub async fn start_with(hub: Arc<Hub>, database_url: Option<String>) -> anyhow::Result<Server> {
        let dir = TempDir::new("gantry-bench");
        let store = Store::open(&StoreConfig { data_dir: dir.path.clone(), database_url, max_connections: 8 }).await?;
        let vision = store.create_team("vision").await?.id;
        for cluster in hub.names() {
            store.map_namespace(&cluster, "vision", vision).await?;
        }
        let hash = gantry_service::passwords::hash("bench-password-not-secret".into()).await?;
        let mut tokens = Vec::new();
        for (name, admin) in [("admin", true), ("deployer", false)] {
            let user = store.create_user(&Username::parse(name)?, &hash, admin).await?;
            if !admin {
                store.set_membership(vision, user.id, Role::Deployer).await?;
            }
            let (_, secret) = store
                .create_token(&NewToken {
                    user_id: user.id,
                    name: format!("bench-{name}"),
                    max_role: Role::TeamAdmin,
                    team_ids: None,
                    admin,
                    expires_at: None,
                })
                .await?;
            tokens.push(secret);
        }
        let deployer_token = tokens.pop().unwrap_or_default();
        let admin_token = tokens.pop().unwrap_or_default();
        let state = AppState::new(store, hub.clone(), ServiceConfig::default(), Sealer::from_key([7; 32]));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address: SocketAddr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let config = WebConfig::local(dir.path.join("site"), address);
        let router = web::router(state.clone(), &config, &web::Lifecycle::new(stopped.clone()));
        let mut stopped = stopped;
        tokio::spawn(web::serve(listener, router, async move {
            let _ = stopped.changed().await;
        }));
        Ok(Server { base: format!("http://{address}"), state, admin_token, deployer_token, hub, stop, _dir: dir })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's temporary directory (the SQLite database lives here).
    pub fn dir(&self) -> &Path {
        &self._dir.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The value at quantile `q` (0..=1) by nearest rank.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn median(values: &[Duration]) -> Duration {
    quantile(values, 0.5)
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
}

/// One line describing the machine, for the top of a section.
pub fn machine() -> String {
    format!(
        "{} ({} CPU cores, {} GiB RAM), shared with other builds and tests and so noisy: \
         compare figures measured in the same run, not across runs",
        report::cpu_model(),
        report::cpu_cores(),
        report::memory_gib()
    )
}

pub use gantry_testbed::report::today;

pub fn workspace_root() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo bench")).join("..")
}

/// Replaces the section that starts with `heading` in BENCHMARKS.md, or appends it.
pub fn write_section(heading: &str, section: &str) -> anyhow::Result<PathBuf> {
    let path = workspace_root().join("BENCHMARKS.md");
    report::write_section(&path, heading, section)?;
    Ok(path)
}

/// Logs to stderr: the benchmark's progress, and warnings from Gantry.
/// With GANTRY_BENCH_KEEP_DB set, a compacted copy of a SQLite store at
/// `copy`, for a look at its queries afterwards; whether one was made.
pub async fn keep_sqlite_copy(store: &Store, copy: &str) -> anyhow::Result<bool> {
    if std::env::var_os("GANTRY_BENCH_KEEP_DB").is_none() || store.backend() != gantry_store::Backend::Sqlite {
        return Ok(false);
    }
    let _ = std::fs::remove_file(copy);
    sqlx::query(&format!("VACUUM INTO '{copy}'")).execute(store.pool()).await?;
    eprintln!("kept the SQLite database as {copy}");
    Ok(true)
}

pub fn init_logging(bench: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "{bench}=info,gantry_testbed=info,gantry_cluster=warn,gantry_service=warn,gantry_server=warn"
        )))
        .init();
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs a harness-less bench
/// with no arguments, and must not start a fleet.
pub fn under_cargo_bench(args: &[String]) -> bool {
    let yes = args.iter().any(|a| a == "--bench");
    if !yes {
        eprintln!("a benchmark: run it with `cargo bench` (it passes --bench)");
    }
    yes
}
