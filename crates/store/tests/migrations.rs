//! Migrations are transactional: one that fails half-way leaves the database
//! as it was before it, on both backends. (Gantry's real migrations run the
//! same way, through sqlx's migrator over the same pool.)

use gantry_store::testing::{TempDir, postgres_database_url};
use sqlx::migrate::Migrator;

async fn failing_migration_leaves_nothing(url: &str) {
    sqlx::any::install_default_drivers();
    let dir = TempDir::new("gantry-migrations");
    std::fs::write(dir.path.join("0001_first.sql"), "CREATE TABLE first_table (id BIGINT PRIMARY KEY);").unwrap();
    std::fs::write(
        dir.path.join("0002_broken.sql"),
        "CREATE TABLE half_done (id BIGINT PRIMARY KEY);\nINSERT INTO no_such_table (x) VALUES (1);",
    )
    .unwrap();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let migrator = Migrator::new(dir.path.as_path()).await.unwrap();
    assert!(migrator.run(&pool).await.is_err(), "the broken migration fails");
    let exists = |table: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.is_ok() }
    };
    assert!(exists("first_table").await, "the good migration stays applied");
    assert!(!exists("half_done").await, "the failed migration left nothing behind");
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
    assert_eq!(applied, vec![1]);
}

#[tokio::test]
async fn a_failed_migration_is_rolled_back_on_sqlite() {
    let dir = TempDir::new("gantry-migrations-db");
    failing_migration_leaves_nothing(&format!("sqlite://{}?mode=rwc", dir.path.join("db.sqlite").display())).await;
}

#[tokio::test]
async fn a_failed_migration_is_rolled_back_on_postgres() {
    let Some(url) = postgres_database_url().await else {
        assert!(std::env::var_os("GANTRY_REQUIRE_POSTGRES").is_none(), "GANTRY_TEST_POSTGRES_URL is required");
        return;
    };
    failing_migration_leaves_nothing(&url).await;
}
