//! Faults Gantry survives, against real servers: its PostgreSQL stopping and
//! starting again while Gantry serves, a full disk under SQLite, and a
//! SIGTERM while changes are under way.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::served::{OwnPostgres, Served};
use common::{Backend, Who};
use gantry_store::testing::TempDir;
use gantry_store::{Store, StoreConfig};
use serde_json::{Value, json};

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

/// The summary of cluster `name` in a `GET /api/v1/clusters` answer.
fn summary<'a>(clusters: &'a Value, name: &str) -> Option<&'a Value> {
    clusters.as_array()?.iter().find(|c| c["name"] == name)
}

/// With a page open (signed in, holding the live event stream a page
/// holds), SIGKILL the apiserver of one of two clusters: within 5 s the
/// stream announces the change and that cluster is stale with its last
/// data and contact time, on the API and on its server-rendered page,
/// while the other cluster's changes keep arriving live; when the
/// apiserver returns, Gantry is live again within 10 s without a restart.
/// Then the same with etcd under the apiserver, where the cluster shows the
/// apiserver's own reason. (crates/cluster/tests/stale.rs proves the watches
/// resume without a relist.)
#[tokio::test]
async fn with_a_page_open_a_killed_apiserver_or_etcd_shows_stale_with_last_data_and_recovers_by_itself() {
    use futures::StreamExt;
    use gantry_testbed::{Component, Fleet, Options, Testbed};
    let bed = Testbed::start(&Fleet::small("left").and(Fleet::small("right")), Options::default()).await.unwrap();
    let gantry = Served::start(Some(&bed.kubeconfig_path()), &[]).await;
    let page = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let signed_in = page
        .post(gantry.url("/api/v1/login"))
        .json(&json!({ "username": "root", "password": common::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let (before, _) = gantry.wait_until("left's nodes", Duration::from_secs(30), |c| summary(c, "left").cloned()).await;

    // The page's live connection: each `change` event names the clusters that changed.
    let stream = page.get(gantry.url("/api/v1/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let (events, mut announced) = tokio::sync::mpsc::unbounded_channel::<(Instant, Value)>();
    tokio::spawn(async move {
        let mut bytes = stream.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = bytes.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:"))
                    && let Ok(data) = serde_json::from_str::<Value>(data.trim())
                {
                    let _ = events.send((Instant::now(), data));
                }
            }
        }
    });
    let mut announced_after = async |cluster: &str, since: Instant, within: Duration| {
        let deadline = since + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, announced.recv()).await {
                Ok(Some((at, data)))
                    if at >= since && data["clusters"].as_array().is_some_and(|c| c.contains(&json!(cluster))) =>
                {
                    return at - since;
                }
                Ok(Some(_)) => {}
                _ => panic!("no change event for {cluster} within {within:?}"),
            }
        }
    };
    let left = bed.cluster("left").unwrap();
    let state_of = |name: &'static str, want: &'static str| {
        move |c: &Value| summary(c, name).filter(|s| s["state"] == want).cloned()
    };

    let killed = Instant::now();
    left.kill(Component::KubeApiserver).unwrap();
    let (stale, at) = gantry.wait_until("left stale", Duration::from_secs(5), state_of("left", "stale")).await;
    eprintln!("stale after {:?}", at - killed);
    announced_after("left", killed, Duration::from_secs(5)).await;
    let data = |c: &Value| (c["nodes"].clone(), c["gpu_capacity"].clone(), c["version"].clone());
    assert_eq!(data(&stale), data(&before), "its last data is kept");
    assert!(stale["last_contact"].as_i64().is_some(), "{stale}");
    let html = page.get(gantry.url("/clusters/left")).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("state-stale") && html.contains("last contact"),
        "the cluster page says stale, with its last contact"
    );
    assert!(html.contains(&format!("{} nodes", before["nodes"])), "and shows its last data");

    // The other cluster keeps updating live.
    let right = bed.cluster("right").unwrap().client().await.unwrap();
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "while-left-is-down"}})).unwrap();
    let created = Instant::now();
    kube::Api::all(right).create(&Default::default(), &namespace).await.unwrap();
    let took = announced_after("right", created, Duration::from_secs(5)).await;
    eprintln!("right's change announced after {took:?}");
    gantry.wait_until("right live", Duration::from_secs(1), state_of("right", "live")).await;

    let restarted = Instant::now();
    left.start(Component::KubeApiserver).await.unwrap();
    let (_, at) = gantry.wait_until("left live again", Duration::from_secs(10), state_of("left", "live")).await;
    eprintln!("live {:?} after the apiserver was back", at - restarted);
    announced_after("left", restarted, Duration::from_secs(10)).await;

    // etcd dies under a running apiserver: stale, with the apiserver's reason.
    let killed = Instant::now();
    left.kill(Component::Etcd).unwrap();
    gantry.wait_until("left stale", Duration::from_secs(5), state_of("left", "stale")).await;
    let (reason, at) = gantry
        .wait_until("the apiserver's reason", Duration::from_secs(20), |c| {
            summary(c, "left")?["message"].as_str().filter(|m| m.contains("etcd")).map(str::to_string)
        })
        .await;
    eprintln!("reason after {:?}: {reason}", at - killed);
    let html = page.get(gantry.url("/clusters/left")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("etcd failed"), "the cluster page shows the apiserver's reason, not a blank page");
    let restarted = Instant::now();
    left.start(Component::Etcd).await.unwrap();
    // The apiserver's own etcd client backs off (gRPC: 1 s, growing by 1.6×),
    // so count Gantry's 10 s from when the apiserver is ready again.
    let apiserver = left.client().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        let request = http::Request::get("/readyz").body(Vec::new()).unwrap();
        if apiserver.request_text(request).await.is_ok() {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "the apiserver was not ready 60 s after etcd was back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, at) = gantry.wait_until("left live again", Duration::from_secs(10), state_of("left", "live")).await;
    eprintln!(
        "the apiserver ready {:?} after etcd was back; Gantry live {:?} after that",
        ready - restarted,
        at.saturating_duration_since(ready)
    );
}

/// A launch and a rolling update are under way (their apiserver frozen, so
/// they cannot finish yet) when their callers give up and Gantry gets
/// SIGTERM. Gantry waits for both before it exits: the launch's objects all
/// exist, the update's image is in place, and the audit log says both were
/// done. Before, a request whose caller left was dropped part-way, so a
/// change could reach the apiserver with no audit record, or a launch stop
/// between its Deployment and its Service with nothing to undo it.
#[tokio::test]
async fn changes_under_way_at_sigterm_finish_and_are_audited_even_when_their_callers_left() {
    use gantry_testbed::{Component, Fleet, Options, Testbed};
    let bed = Testbed::start(&Fleet::small("drain"), Options::default()).await.unwrap();
    let cluster = bed.cluster("drain").unwrap();
    let mut gantry = Served::start(Some(&bed.kubeconfig_path()), &[]).await;
    let http = reqwest::Client::new();
    let deployments = gantry.url("/api/v1/clusters/drain/namespaces/vision/deployments");
    let launched = http
        .post(&deployments)
        .bearer_auth(&gantry.token)
        .json(&json!({ "name": "rolling", "image": "example/app:1", "replicas": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 200, "{}", launched.text().await.unwrap());

    cluster.freeze(Component::KubeApiserver).unwrap();
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(1500)).build().unwrap();
    let launched = impatient
        .post(&deployments)
        .bearer_auth(&gantry.token)
        .json(&json!({ "name": "launched", "image": "example/app:1", "replicas": 1 }))
        .send();
    let updated = impatient
        .patch(format!("{deployments}/rolling"))
        .bearer_auth(&gantry.token)
        .json(&json!({ "image": "example/app:2" }))
        .send();
    let (launched, updated) = tokio::join!(launched, updated);
    assert!(launched.is_err() && updated.is_err(), "the callers gave up while the apiserver was frozen");
    gantry.sigterm();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.thaw(Component::KubeApiserver).unwrap();
    let status = gantry.exited(Duration::from_secs(60)).await;
    let log = gantry.log();
    assert!(status.success(), "exits cleanly: {status:?}\n{log}");

    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    let client = cluster.client().await.unwrap();
    let in_vision = kube::Api::<Deployment>::namespaced(client.clone(), "vision");
    let rolling = in_vision.get("rolling").await.unwrap();
    let image = rolling.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("example/app:2"), "the update was made");
    assert!(in_vision.get_opt("launched").await.unwrap().is_some(), "the launch made its deployment");
    let services = kube::Api::<Service>::namespaced(client, "vision");
    assert!(services.get_opt("launched").await.unwrap().is_some(), "and its service");

    let store = Store::open(&StoreConfig { data_dir: gantry.dir.path.clone(), database_url: None, max_connections: 1 })
        .await
        .unwrap();
    let audit = store.audit(&gantry_store::AuditFilter::default()).await.unwrap();
    let record = |action: &str, object: &str| {
        audit
            .iter()
            .find(|r| r.action == action && r.object.as_deref() == Some(object))
            .unwrap_or_else(|| panic!("no audit record of {action} {object}: {audit:#?}\n{log}"))
    };
    let launch = record("deployment.launch", "deployment/launched");
    assert_eq!(launch.result, gantry_store::AuditResult::Ok, "{launch:?}");
    let update = record("deployment.update", "deployment/rolling");
    assert_eq!(update.result, gantry_store::AuditResult::Ok, "{update:?}");
    assert!(update.after.as_deref().is_some_and(|a| a.contains("image example/app:2")), "{update:?}");
}

/// Wrong passwords, checked one after another (each from its own address,
/// so the sign-in throttle lets every one through to argon2), leave Gantry's
/// memory where it was. Before, glibc kept each check's 19 MiB buffer: 60
/// wrong passwords took the server from 28 to 738 MiB, for good.
#[tokio::test]
async fn checking_many_wrong_passwords_does_not_grow_memory() {
    use futures::StreamExt;
    let gantry = Served::start(None, &["--trusted-proxies", "1"]).await;
    let http = reqwest::Client::new();
    let before = gantry.rss_mib();
    // Eight at a time: the two checks per core and the queue behind them take them all.
    let statuses: Vec<u16> = futures::stream::iter(0..48)
        .map(|i| {
            http.post(gantry.url("/api/v1/login"))
                .header("x-forwarded-for", format!("10.9.0.{i}"))
                .json(&json!({ "username": format!("nobody-{i}"), "password": "not-the-password" }))
                .send()
        })
        .buffer_unordered(8)
        .map(|r| r.map_or(0, |r| r.status().as_u16()))
        .collect()
        .await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked >= 40, "most were checked, not refused as busy: {statuses:?}");
    let after = gantry.rss_mib();
    assert!(after <= before + 64, "{checked} wrong passwords grew the RSS from {before} to {after} MiB");
}
