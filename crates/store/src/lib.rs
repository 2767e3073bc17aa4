//! Gantry's one store API. SQLite is the embedded default; PostgreSQL is used
//! when the database URL says so. Both sit behind the same [`Store`], which
//! speaks through sqlx's `Any` driver: the SQL is written once, in the subset
//! both databases share (`$N` parameters, BIGINT times and flags), and each
//! backend keeps its own migrations for the DDL where they differ.

mod alerts;
mod audit;
mod clusters;
mod costs;
mod environments;
mod leases;
mod ledger;
mod prometheus;
mod rollups;
mod series;
mod sessions;
mod sso;
mod teams;
mod throttle;
mod tokens;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use alerts::{Delivery, FiredAlert, TeamWebhook};
pub use audit::{AuditEntry, AuditFilter, AuditRecord, AuditResult};
pub use clusters::StoredCluster;
pub use costs::{GpuPrice, ImportedPrice, PriceRecord, PricesReplaced, TeamBudget};
pub use environments::Environment;
pub use ledger::{
    Closing, GapReason, LedgerApplied, LedgerChanges, NewAllocation, NewCapacity, NewGap, RawDeleted, StoredAllocation,
    StoredCapacity, StoredGap,
};
pub use prometheus::ClusterPrometheus;
pub use rollups::{RollupsDeleted, Sum, Tier, UsageFilter, UsageGroup, UsageQuestion};
pub use sessions::SESSION_USER;
pub use sso::{Grant, GroupMapping, NO_PASSWORD, SsoOutcome, SsoSignIn};
pub use teams::{Member, NamespaceMapping, Team};
pub use throttle::ThrottleRecord;
pub use tokens::{NewToken, TokenLookup, TokenRecord};
pub use users::{User, UserCredentials};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong; the message names it.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure of the connection rather than of the statement: the
    /// database is down, restarting or out of connections, which a retry
    /// can cure.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed,
            ) => true,
            // PostgreSQL shutting down or starting up: admin_shutdown,
            // crash_shutdown, cannot_connect_now.
            Error::Database(sqlx::Error::Database(error)) => {
                matches!(error.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
            }
            _ => false,
        }
    }

    /// The database's disk is full (SQLite's SQLITE_FULL, PostgreSQL's
    /// disk_full): nothing can be written until space is freed; reads work.
    pub fn is_disk_full(&self) -> bool {
        let Error::Database(sqlx::Error::Database(error)) = self else { return false };
        let code = error.code();
        // SQLite's codes are numbers under 10,000 (extended codes keep the
        // primary one in the low byte); PostgreSQL's SQLSTATEs are 5 characters.
        let sqlite_full =
            code.as_deref().filter(|c| c.len() < 5).and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == 13);
        sqlite_full || code.as_deref() == Some("53100")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where the data lives: a database URL wins over the data directory.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub max_connections: u32,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

pub use gantry_domain::view::now_ms;

fn describe_url(url: &str) -> String {
    // Never echo a password from the URL into logs or error lines.
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{}", host.split('?').next().unwrap_or(host))
        }
        None => "(unparsable URL)".to_string(),
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match &config.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (url.clone(), Backend::Postgres)
            }
            Some(url) if url.starts_with("sqlite:") => (url.clone(), Backend::Sqlite),
            // Set but empty, as from a Secret without the value: never fall back to a local file.
            Some(url) if url.trim().is_empty() => {
                return Err(Error::Config(
                    "DATABASE_URL is set but empty (a Secret without its value?); unset it to use the data directory's SQLite".into(),
                ));
            }
            Some(url) => {
                return Err(Error::Config(format!(
                    "DATABASE_URL: {} is neither a postgres:// nor a sqlite: URL",
                    describe_url(url)
                )));
            }
            None => (sqlite_url_in(&config.data_dir)?, Backend::Sqlite),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| Error::Config(format!("DATABASE_URL: {} is not a valid URL: {e}", describe_url(&url))))?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| {
                let setting = if config.database_url.is_some() { "DATABASE_URL" } else { "--data-dir" };
                Error::Config(format!(
                    "{setting}: cannot open the database at {}: {}",
                    describe_url(&url),
                    first_line(&e)
                ))
            })?;
        let store = Store { pool, backend };
        store.migrator().run(&store.pool).await?;
        Ok(store)
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock as it
    /// begins (`BEGIN IMMEDIATE`), waiting up to the busy timeout for another
    /// writer: a transaction that read first could not wait when it came to
    /// write, and SQLite would answer "database is locked" at once.
    /// PostgreSQL locks rows as they are written, so a plain `BEGIN` is right.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(begin).await?)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// True when the database answers and every migration is applied.
    pub async fn ready(&self) -> bool {
        let latest = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Result<Option<i64>, _> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(&self.pool)
                .await;
        matches!(applied, Ok(Some(version)) if version >= latest)
    }

    /// (connections in the pool, of which idle)
    /// Runs a statement as it is, for tests that break the database on
    /// purpose (a trigger that refuses audit records, say).
    #[cfg(feature = "testing")]
    pub async fn execute_for_tests(&self, sql: &str) -> Result<()> {
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn first_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().lines().next().unwrap_or_default().to_string()
}

fn sqlite_url_in(data_dir: &Path) -> Result<String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| Error::Config(format!("--data-dir: cannot create {}: {}", data_dir.display(), e)))?;
    // Creating the database could fail later with a vaguer message; probe now.
    let probe = data_dir.join(".gantry-write-test");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| Error::Config(format!("--data-dir: {} is not writable: {}", data_dir.display(), e)))?;
    let file = data_dir.join("gantry.db");
    Ok(format!("sqlite://{}?mode=rwc", file.display()))
}

/// True when the error is a unique-constraint violation in either backend.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;
