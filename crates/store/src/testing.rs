//! Fresh databases for tests: a temporary SQLite file, and a new database in
//! the PostgreSQL server the test command started (GANTRY_TEST_POSTGRES_URL).

use std::path::PathBuf;

use crate::{Store, StoreConfig};

/// A store on a new SQLite file in a temporary directory that lives as long
/// as the returned guard.
pub async fn sqlite() -> (Store, TempDir) {
    let dir = TempDir::new("gantry-store-test");
    let store = Store::open(&StoreConfig { data_dir: dir.path.clone(), database_url: None, max_connections: 4 })
        .await
        .expect("open sqlite store");
    (store, dir)
}

/// A store on a brand-new PostgreSQL database, or None when no server was
/// given. With GANTRY_REQUIRE_POSTGRES=1 (the test command sets it) a missing
/// server fails the test instead of skipping it.
pub async fn postgres() -> Option<Store> {
    let Some(url) = postgres_database_url().await else {
        assert!(
            std::env::var_os("GANTRY_REQUIRE_POSTGRES").is_none(),
            "GANTRY_REQUIRE_POSTGRES is set but GANTRY_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipping the PostgreSQL half: GANTRY_TEST_POSTGRES_URL is not set");
        return None;
    };
    Some(
        Store::open(&StoreConfig {
            data_dir: PathBuf::from("/nonexistent"),
            database_url: Some(url),
            max_connections: 4,
        })
        .await
        .expect("open postgres store"),
    )
}

/// Creates an empty database on the test server and returns its URL.
pub async fn postgres_database_url() -> Option<String> {
    use sqlx::Connection;
    let server = std::env::var("GANTRY_TEST_POSTGRES_URL").ok()?;
    sqlx::any::install_default_drivers();
    let name = format!("gantry_test_{}", random_suffix());
    let mut admin = sqlx::AnyConnection::connect(&server).await.expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    admin.close().await.ok();
    let (base, _) = server.rsplit_once('/').expect("GANTRY_TEST_POSTGRES_URL ends in /database");
    Some(format!("{base}/{name}"))
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12).map(|_| char::from(b'a' + rng.gen_range(0..26))).collect()
}

/// A directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", random_suffix()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Declares one test that runs twice, as `<name>::sqlite` and
/// `<name>::postgres`, so the test output shows both backends.
#[macro_export]
macro_rules! store_test {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let ($store, _dir) = $crate::testing::sqlite().await;
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some($store) = $crate::testing::postgres().await else { return };
                $body
            }
        }
    };
}
