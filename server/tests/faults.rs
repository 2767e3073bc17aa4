//! Faults Gantry survives, against real servers: its PostgreSQL stopping and
//! starting again while Gantry serves.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, Who};
use gantry_store::testing::TempDir;
use gantry_store::{Store, StoreConfig};
use serde_json::{Value, json};

/// A PostgreSQL server of this test's own (scripts/postgres.sh), so stopping
/// it disturbs no other test.
struct OwnPostgres {
    dir: TempDir,
    url: String,
}

impl OwnPostgres {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
    }

    fn run(command: &str, dir: &std::path::Path) -> Result<String, String> {
        let output = Command::new(Self::script()).arg(command).arg(dir).output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// None where PostgreSQL is not installed (never under the test command,
    /// which sets GANTRY_REQUIRE_POSTGRES).
    fn start() -> Option<OwnPostgres> {
        let dir = TempDir::new("gantry-fault-pg");
        match Self::run("start", &dir.path.join("pg")) {
            Ok(url) => Some(OwnPostgres { dir, url }),
            Err(why) => {
                assert!(std::env::var_os("GANTRY_REQUIRE_POSTGRES").is_none(), "PostgreSQL did not start: {why}");
                eprintln!("skipping: PostgreSQL did not start: {why}");
                None
            }
        }
    }

    fn down(&self) {
        Self::run("down", &self.dir.path.join("pg")).expect("stop PostgreSQL");
    }

    fn up(&self) {
        Self::run("up", &self.dir.path.join("pg")).expect("start PostgreSQL again");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Self::run("stop", &self.dir.path.join("pg"));
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn a_postgres_restart_fails_requests_cleanly_and_gantry_recovers_by_itself() {
    let Some(postgres) = OwnPostgres::start() else { return };
    let store = Store::open(&StoreConfig {
        data_dir: postgres.dir.path.clone(),
        database_url: Some(postgres.url.clone()),
        max_connections: 8,
    })
    .await
    .unwrap();
    let app = common::spawn_app_on(store, Backend::Postgres).await;
    let (session, csrf) = app.sign_in(Who::Admin).await;
    let token = app.token(Who::Admin).await.unwrap();
    let bearer = format!("Bearer {token}");
    let api = reqwest::Client::new();
    assert_eq!(answer(session.get(app.url("/api/v1/me"))).await.0, 200);

    postgres.down();

    // Reads and changes, by session and by token, fail with a 503 in the
    // error shape: no 500, no stack, no hang past the pool's timeout.
    let refused = [
        ("a read with a session", session.get(app.url("/api/v1/me"))),
        ("a read with a token", api.get(app.url("/api/v1/teams")).header("authorization", &bearer)),
        (
            "a change with a session",
            session.post(app.url("/api/v1/teams")).header("x-csrf-token", &csrf).json(&json!({"name": "outage-a"})),
        ),
        (
            "a change with a token",
            api.post(app.url("/api/v1/teams")).header("authorization", &bearer).json(&json!({"name": "outage-b"})),
        ),
    ];
    for (what, request) in refused {
        let started = Instant::now();
        let (status, body) = answer(request).await;
        assert_eq!(status, 503, "{what} while the database is down: {body}");
        assert_eq!(body["error"]["kind"], "unavailable", "{what}: {body}");
        assert!(started.elapsed() < Duration::from_secs(15), "{what} answered within the pool's timeout");
    }
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready without its database");
    let live = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(live.status(), 200, "still alive: a restart would not bring the database back");

    postgres.up();

    // Recovers by itself, and the session signed in before the outage is
    // still valid.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = answer(session.get(app.url("/api/v1/me"))).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered 10 s after the database came back: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing refused during the outage happened, and the audit log from
    // before it is whole.
    let (_, teams) = answer(api.get(app.url("/api/v1/teams")).header("authorization", &bearer)).await;
    let names: Vec<&str> = teams.as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(!names.iter().any(|n| n.starts_with("outage")), "{names:?}");
    let (status, _) = answer(
        session.post(app.url("/api/v1/teams")).header("x-csrf-token", &csrf).json(&json!({"name": "after-outage"})),
    )
    .await;
    assert_eq!(status, 200, "a change goes through again");
    let (_, audit) = answer(api.get(app.url("/api/v1/audit?limit=100")).header("authorization", &bearer)).await;
    let records = audit.as_array().unwrap();
    let objects: Vec<String> =
        records.iter().map(|r| format!("{} {}", r["action"], r["object"].as_str().unwrap_or(""))).collect();
    assert!(records.iter().any(|r| r["action"] == "login"), "the sign-in before the outage is kept: {objects:?}");
    assert!(objects.iter().any(|o| o.contains("after-outage")), "{objects:?}");
    assert!(!objects.iter().any(|o| o.contains("outage-")), "a refused change is not recorded as done: {objects:?}");
}

/// A small tmpfs mounted for this test, unmounted on drop; None where this
/// process may not mount (not root).
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = TempDir::new("gantry-small-disk");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir.path)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("GANTRY_REQUIRE_FAULTS").is_none(),
                "cannot mount a tmpfs (the disk-full test needs root)"
            );
            eprintln!("skipping: cannot mount a tmpfs (the disk-full test needs root)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    /// Writes a file of zeros until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.path.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).and_then(|()| file.sync_data()).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir.path).status();
    }
}

#[tokio::test]
async fn on_a_full_disk_sqlite_writes_fail_clearly_reads_work_and_nothing_is_corrupt() {
    let Some(disk) = SmallDisk::mount(32) else { return };
    let data_dir = disk.dir.path.join("data");
    let store =
        Store::open(&StoreConfig { data_dir: data_dir.clone(), database_url: None, max_connections: 8 }).await.unwrap();
    let app = common::spawn_app_on(store, Backend::Sqlite).await;
    let token = app.token(Who::Admin).await.unwrap();
    let bearer = format!("Bearer {token}");
    let api = reqwest::Client::new();
    let create =
        |name: &str| api.post(app.url("/api/v1/teams")).header("authorization", &bearer).json(&json!({"name": name}));
    assert_eq!(answer(create("before-full")).await.0, 200);

    let prices = |prefix: &str| {
        let lines: String = (0..10_000).map(|i| format!(",{prefix}-{i},on-demand,1.5\n")).collect();
        api.put(app.url("/api/v1/prices.csv"))
            .header("authorization", &bearer)
            .header("content-type", "text/csv")
            .body(format!("cluster,model,capacity_type,usd_per_gpu_hour\n{lines}"))
    };
    assert_eq!(answer(prices("GPU-A")).await.0, 200);
    let price_list = || async { answer(api.get(app.url("/api/v1/prices")).header("authorization", &bearer)).await.1 };

    let filler = disk.fill();
    // Whole price lists (10,000 prices each) until one does not fit: SQLite
    // may still have room in its files for the first.
    let mut refused = None;
    for round in 0..20 {
        let (status, body) = answer(prices(&format!("GPU-B{round}"))).await;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("a write fails on a full disk");
    assert_eq!(status, 503, "a write on a full disk: {body}");
    assert_eq!(body["error"]["kind"], "unavailable", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("disk is full"), "{body}");
    let (status, teams) = answer(api.get(app.url("/api/v1/teams")).header("authorization", &bearer)).await;
    assert_eq!(status, 200, "reads keep working: {teams}");
    // The refused import left a whole list: the one before it, all 10,000.
    let lists: std::collections::BTreeSet<String> = price_list()
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["model"].as_str()?.rsplit_once('-').map(|(list, _)| list.to_string()))
        .collect();
    assert_eq!(lists.len(), 1, "one whole list, not parts of two: {lists:?}");
    assert_eq!(price_list().await.as_array().unwrap().len(), 10_000);
    let (status, body) = answer(create("full-disk")).await;
    assert!(status == 200 || status == 503, "a small write fits or is refused cleanly: {status} {body}");

    std::fs::remove_file(filler).unwrap();
    assert_eq!(answer(create("after-full")).await.0, 200, "writes work again once there is space");
    let (_, teams) = answer(api.get(app.url("/api/v1/teams")).header("authorization", &bearer)).await;
    let names: Vec<&str> = teams.as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"before-full") && names.contains(&"after-full"), "{names:?}");
    assert_eq!(answer(prices("GPU-C")).await.0, 200, "a whole price list fits again");

    drop(app);
    use sqlx::Connection;
    let file = data_dir.join("gantry.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(check, "ok");
}
