//! GPU usage and spend over time (issue 12), against real control planes,
//! a real Prometheus and a real webhook receiver: the ledger agrees with
//! the apiserver's own times, a restart neither loses nor doubles an
//! interval, a second replica takes the writing over when the first dies,
//! utilisation and waste come from DCGM metrics, budget alerts
//! fire once and are delivered, and bad input is refused.
//!
//! The background work runs here by hand, one pass at a time
//! (`background_now`), so every step is deterministic.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Who;
use gantry_domain::cost::Amount;
use gantry_domain::manifest::LaunchDeploymentInput;
use gantry_domain::usage::{AllocationInterval, Span};
use gantry_service::ledger::LedgerWriter;
use gantry_service::{Caller, DeleteRequest, ScaleRequest};
use gantry_store::now_ms;
use gantry_testbed::shared::eventually;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

const H100: &str = "NVIDIA-H100-80GB-HBM3";
const A100: &str = "NVIDIA-A100-SXM4-80GB";

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn admin(app: &common::TestApp) -> Caller {
    app.state.cli_caller("admin").await.unwrap()
}

async fn launch(app: &common::TestApp, cluster: &str, namespace: &str, name: &str, model: &str, replicas: i64) {
    let input = LaunchDeploymentInput {
        cluster: cluster.into(),
        namespace: namespace.into(),
        name: name.into(),
        image: "example/model:1".into(),
        gpus: "1".into(),
        gpu_model: model.into(),
        replicas: replicas.to_string(),
        ..Default::default()
    };
    app.state.launch_deployment(&admin(app).await, &input).await.unwrap();
}

/// The deployment's running pods as the apiserver has them: name, node and
/// when the scheduler bound each (PodScheduled), in Unix ms.
async fn running_pods(cluster: &str, namespace: &str, name: &str, count: usize) -> Vec<(String, String, i64)> {
    let client = common::bed().cluster(cluster).unwrap().client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    eventually(&format!("{count} pods of {name} run"), 90, || async {
        let list = pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/name={name}"))).await.ok()?;
        let running: Vec<(String, String, i64)> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| {
                let bound = p
                    .status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "True")?
                    .last_transition_time
                    .as_ref()?
                    .0
                    .as_millisecond();
                Some((p.metadata.name.clone()?, p.spec.as_ref()?.node_name.clone()?, bound))
            })
            .collect();
        (running.len() == count).then_some(running)
    })
    .await
}

async fn no_pods_left(cluster: &str, namespace: &str, name: &str) {
    let client = common::bed().cluster(cluster).unwrap().client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    eventually(&format!("the pods of {name} are gone"), 90, || async {
        let list = pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/name={name}"))).await.ok()?;
        list.items.is_empty().then_some(())
    })
    .await;
}

/// The ledger's intervals of a workload, after background passes until
/// `ready` says they are as expected.
async fn intervals_when(
    app: &common::TestApp,
    writer: &mut LedgerWriter,
    cluster: &str,
    workload: &str,
    what: &str,
    ready: impl Fn(&[AllocationInterval]) -> bool,
) -> Vec<AllocationInterval> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        app.state.background_now(writer).await.unwrap();
        let all = app.state.store().allocations_overlapping(Span::new(0, now_ms() + 1), Some(cluster)).await.unwrap();
        let mine: Vec<AllocationInterval> = all.into_iter().filter(|a| a.workload == workload).collect();
        if ready(&mine) {
            return mine;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: the ledger has {mine:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

both_backends!(the_ledger_agrees_with_the_apiservers_own_times, |app| {
    let backend = format!("{:?}", app.backend).to_lowercase();
    let name = format!("ledger-{backend}");
    let workload = format!("Deployment/{name}");
    let admin = admin(&app).await;
    app.state.set_gpu_price(&admin, H100, "spot", &Amount::Typed("3.60".into())).await.unwrap();
    // The apiserver's times have whole seconds: let the price be in effect
    // before the pod's bind time can be.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut writer = LedgerWriter::default();
    launch(&app, "a", "vision", &name, H100, 1).await;
    let first = running_pods("a", "vision", &name, 1).await;
    let opened = intervals_when(&app, &mut writer, "a", &workload, "one open interval", |i| i.len() == 1).await;
    assert_eq!(opened[0].start, first[0].2, "the interval starts when the scheduler bound the pod");
    assert_eq!(
        (opened[0].team.as_deref(), opened[0].milli_gpus, opened[0].model.as_str()),
        (Some("vision"), 1000, H100)
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let scale = ScaleRequest { replicas: "2".into(), version: String::new() };
    app.state.scale_deployment(&admin, "a", "vision", &name, &scale).await.unwrap();
    let both = running_pods("a", "vision", &name, 2).await;
    intervals_when(&app, &mut writer, "a", &workload, "two open intervals", |i| i.len() == 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let deleting = now_ms();
    let delete = DeleteRequest { confirm: name.clone(), version: String::new() };
    app.state.delete_deployment(&admin, "a", "vision", &name, &delete).await.unwrap();
    no_pods_left("a", "vision", &name).await;
    let gone = now_ms();
    let closed = intervals_when(&app, &mut writer, "a", &workload, "both closed", |i| {
        i.len() == 2 && i.iter().all(|a| a.end.is_some())
    })
    .await;
    let mut held_ms = 0;
    for interval in &closed {
        let bound = both.iter().find(|(pod, _, _)| *pod == interval.pod).map(|p| p.2).unwrap();
        assert_eq!(interval.start, bound, "{}: starts at its bind time", interval.pod);
        let end = interval.end.unwrap();
        assert!(
            end >= deleting && end <= gone + 2_000,
            "{}: ends at {end}, deleted in [{deleting}, {gone}]",
            interval.pod
        );
        held_ms += end - interval.start;
    }

    // The API answers from the ledger: exactly over a short window, on whole
    // hours from the rollups over a long one, and both agree.
    let token = app.token(Who::Admin).await.unwrap();
    let start = closed.iter().map(|i| i.start).min().unwrap() - 60_000;
    let ask = |window: String| {
        let url = app.url(&format!("/api/v1/allocation?window={window}&aggregate=workload"));
        let request = http().get(url).bearer_auth(&token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let gpu_hours = held_ms as f64 / 3_600_000.0;
    for window in [format!("{start},{}", now_ms()), "3d".to_string()] {
        let report = ask(window.clone()).await;
        let row = report["rows"].as_array().unwrap().iter().find(|r| r["workload"] == workload.as_str());
        let row = row.unwrap_or_else(|| panic!("{window}: no row for {workload}: {report}"));
        assert!((row["gpu_hours"].as_f64().unwrap() - gpu_hours).abs() < 1e-6, "{window}: {row} vs {gpu_hours}");
        assert_eq!(row["unpriced_gpu_hours"].as_f64(), Some(0.0), "{window}: {row}");
        assert!((row["cost"].as_f64().unwrap() - gpu_hours * 3.60).abs() < 2e-6, "{window}: {row} vs {gpu_hours}");
    }
});

#[tokio::test]
async fn a_restart_neither_loses_nor_doubles_an_interval() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let name = "restart-probe";
    let workload = format!("Deployment/{name}");
    launch(&app, "a", "vision", name, H100, 1).await;
    running_pods("a", "vision", name, 1).await;
    let mut before = LedgerWriter::default();
    let opened = intervals_when(&app, &mut before, "a", &workload, "opened", |i| i.len() == 1).await;
    // A new writer is what a restarted Gantry (or the next leader) starts with.
    let mut after = LedgerWriter::default();
    for _ in 0..3 {
        app.state.background_now(&mut after).await.unwrap();
    }
    let again = intervals_when(&app, &mut after, "a", &workload, "still one", |i| i.len() == 1).await;
    assert_eq!(again, opened, "the same interval, still open: nothing doubled, nothing lost");

    // Deleted while no writer runs: the next one closes it, no later than it saw it gone.
    let admin = admin(&app).await;
    let delete = DeleteRequest { confirm: name.into(), version: String::new() };
    let deleting = now_ms();
    app.state.delete_deployment(&admin, "a", "vision", name, &delete).await.unwrap();
    no_pods_left("a", "vision", name).await;
    let mut next = LedgerWriter::default();
    let closed = intervals_when(&app, &mut next, "a", &workload, "closed", |i| i[0].end.is_some()).await;
    assert_eq!(closed.len(), 1);
    assert!(closed[0].end.unwrap() >= deleting);
}

/// Who holds the background lease now.
async fn lease_holder(app: &common::TestApp) -> Option<String> {
    app.state.store().lease_holder("background", now_ms()).await.unwrap()
}

#[tokio::test]
async fn when_the_writing_replica_dies_another_takes_over_within_30s_and_writes_nothing_twice() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    // Two replicas on one database: each runs the background loop as `gantry
    // serve` does, with its own writer and holder name.
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let replica = |holder: &str| {
        let state = app.state.clone();
        let (holder, shutdown) = (holder.to_string(), shutdown.clone());
        tokio::spawn(async move { state.run_background(holder, shutdown).await })
    };
    let first = replica("replica-1");
    eventually("replica-1 holds the lease", 30, || async {
        (lease_holder(&app).await.as_deref() == Some("replica-1")).then_some(())
    })
    .await;
    let second = replica("replica-2");

    let name = "takeover-probe";
    let workload = format!("Deployment/{name}");
    let ledger = || async {
        let all = app.state.store().allocations_overlapping(Span::new(0, now_ms() + 1), Some("a")).await.unwrap();
        all.into_iter().filter(|a| a.workload == workload).collect::<Vec<AllocationInterval>>()
    };
    launch(&app, "a", "vision", name, H100, 1).await;
    running_pods("a", "vision", name, 1).await;
    let opened = eventually("replica-1 records the pod", 60, || async {
        let mine = ledger().await;
        (mine.len() == 1).then_some(mine)
    })
    .await;

    // Replica 1 dies without a word: its lease is not released.
    first.abort();
    let died = std::time::Instant::now();
    eventually("replica-2 takes the lease over", 40, || async {
        (lease_holder(&app).await.as_deref() == Some("replica-2")).then_some(())
    })
    .await;
    let took = died.elapsed();
    assert!(took <= Duration::from_secs(30), "taken over after {took:?}");

    // The new writer keeps the open interval as it is and records what changes.
    let scale = ScaleRequest { replicas: "2".into(), version: String::new() };
    app.state.scale_deployment(&admin(&app).await, "a", "vision", name, &scale).await.unwrap();
    running_pods("a", "vision", name, 2).await;
    let after = eventually("replica-2 records the second pod", 60, || async {
        let mine = ledger().await;
        (mine.len() == 2).then_some(mine)
    })
    .await;
    assert!(after.contains(&opened[0]), "the first interval is untouched: {after:?}");
    assert_eq!(after.iter().filter(|a| a.end.is_none()).count(), 2, "one open interval per pod: {after:?}");
    second.abort();
}

#[tokio::test]
async fn utilisation_and_waste_come_from_dcgm_metrics_and_costs_survive_without_them() {
    use gantry_testbed::{DcgmExporter, GpuSample, Prometheus};
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let admin = admin(&app).await;
    app.state.set_gpu_price(&admin, H100, "spot", &Amount::Typed("4".into())).await.unwrap();
    let exporter = DcgmExporter::start().unwrap();
    let prometheus = Prometheus::start(&[exporter.target()]).await.unwrap();
    launch(&app, "b", "vision", "busy", H100, 1).await;
    launch(&app, "b", "vision", "idle", H100, 1).await;
    let busy = running_pods("b", "vision", "busy", 1).await.remove(0);
    let idle = running_pods("b", "vision", "idle", 1).await.remove(0);
    exporter.set(GpuSample { util_percent: 80, ..GpuSample::new("vision", &busy.0, &busy.1, 0) });
    exporter.set(GpuSample { util_percent: 5, ..GpuSample::new("vision", &idle.0, &idle.1, 1) });

    let token = app.token(Who::Admin).await.unwrap();
    let unconfigured: Value = http()
        .get(app.url("/api/v1/allocation?window=1h&aggregate=workload"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unconfigured["utilisation"]["state"], "not_configured");

    let set = http()
        .put(app.url("/api/v1/clusters/b/prometheus"))
        .bearer_auth(&token)
        .json(&json!({ "url": prometheus.url() }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
    let mut writer = LedgerWriter::default();
    intervals_when(&app, &mut writer, "b", "Deployment/busy", "busy recorded", |i| i.len() == 1).await;
    intervals_when(&app, &mut writer, "b", "Deployment/idle", "idle recorded", |i| i.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let report = eventually("utilisation appears", 60, || async {
        let report: Value = http()
            .get(app.url("/api/v1/allocation?window=1h&aggregate=workload"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let known =
            |w: &str| report["rows"].as_array()?.iter().find(|r| r["workload"] == w)?["utilisation_percent"].as_f64();
        (known("Deployment/busy").is_some() && known("Deployment/idle").is_some()).then_some(report)
    })
    .await;
    assert_eq!(report["utilisation"]["state"], "known", "{report}");
    let row = |w: &str| report["rows"].as_array().unwrap().iter().find(|r| r["workload"] == w).unwrap().clone();
    let (busy_row, idle_row) = (row("Deployment/busy"), row("Deployment/idle"));
    assert!((busy_row["utilisation_percent"].as_f64().unwrap() - 80.0).abs() < 1.0, "{busy_row}");
    assert!((idle_row["utilisation_percent"].as_f64().unwrap() - 5.0).abs() < 1.0, "{idle_row}");
    assert_eq!(busy_row["wasted_gpu_hours"].as_f64(), Some(0.0), "80% busy is not waste");
    assert!(idle_row["wasted_gpu_hours"].as_f64().unwrap() > 0.0, "5% busy is waste: {idle_row}");
    assert!(idle_row["wasted_cost"].as_f64().unwrap() > 0.0);

    prometheus.stop();
    let without: Value = http()
        .get(app.url("/api/v1/allocation?window=1h&aggregate=workload"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(without["utilisation"]["state"], "unavailable", "{without}");
    assert!(without["utilisation"]["reason"].as_str().unwrap().contains("b:"), "{without}");
    let busy_cost =
        without["rows"].as_array().unwrap().iter().find(|r| r["workload"] == "Deployment/busy").unwrap()["cost"]
            .as_f64()
            .unwrap();
    assert!(busy_cost > 0.0, "costs still answer without Prometheus");
    for name in ["busy", "idle"] {
        let delete = DeleteRequest { confirm: name.into(), version: String::new() };
        app.state.delete_deployment(&admin, "b", "vision", name, &delete).await.unwrap();
    }
}

/// A webhook receiver on a free port: counts the posts it gets, and answers
/// 500 to the first `fail_first` of them.
async fn receiver(fail_first: usize) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<Value>>>) {
    let posts = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, kept) = (posts.clone(), bodies.clone());
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let (count, kept) = (count.clone(), kept.clone());
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst);
                if n < fail_first {
                    return http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                kept.lock().unwrap().push(body.0);
                http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, posts, bodies)
}

#[tokio::test]
async fn budget_alerts_fire_once_and_reach_the_webhook_even_after_a_failure() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let admin = admin(&app).await;
    let nlp_admin = app.state.cli_caller("nlp-admin").await.unwrap();
    // A price so high that a few seconds of one GPU spend the whole budget.
    app.state.set_gpu_price(&admin, A100, "on-demand", &Amount::Typed("10000".into())).await.unwrap();
    app.state.set_team_budget(&nlp_admin, app.nlp, &Amount::Typed("1".into())).await.unwrap();
    let (url, posts, bodies) = receiver(1).await;
    app.state.set_team_webhook(&nlp_admin, app.nlp, Some(&url)).await.unwrap();

    launch(&app, "a", "nlp", "alert-probe", A100, 1).await;
    running_pods("a", "nlp", "alert-probe", 1).await;
    let mut writer = LedgerWriter::default();
    intervals_when(&app, &mut writer, "a", "Deployment/alert-probe", "recorded", |i| i.len() == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let month = gantry_domain::usage::month_of(now_ms()).start;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let fired = loop {
        app.state.background_now(&mut writer).await.unwrap();
        let fired = app.state.store().alerts_of(app.nlp, month).await.unwrap();
        if fired.len() >= 2 {
            break fired;
        }
        assert!(tokio::time::Instant::now() < deadline, "the budget alerts did not fire: {fired:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let fired = loop {
        let actual = fired.iter().filter(|f| format!("{:?}", f.alert.kind) == "Actual").count();
        let fired_now = app.state.store().alerts_of(app.nlp, month).await.unwrap();
        if actual == 2 || fired_now.iter().filter(|f| format!("{:?}", f.alert.kind) == "Actual").count() == 2 {
            break fired_now;
        }
        assert!(tokio::time::Instant::now() < deadline, "the spend never passed both levels: {fired_now:?}");
        app.state.background_now(&mut writer).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Both levels of actual spend, and a forecast alert for a level the burn
    // heads for before the spend reaches it (how many depends on how fast
    // the passes run): each at most once.
    let levels: Vec<(String, u8)> = fired.iter().map(|f| (format!("{:?}", f.alert.kind), f.alert.percent)).collect();
    for actual in [80, 100] {
        assert_eq!(levels.iter().filter(|l| **l == ("Actual".to_string(), actual)).count(), 1, "{levels:?}");
    }
    let alerts = levels.len();
    assert!((2..=4).contains(&alerts), "{levels:?}");

    // The receiver refused the first post; that delivery waits for a retry.
    let failing = app.state.team_budget(&nlp_admin, app.nlp).await.unwrap().failing_deliveries;
    assert_eq!(failing.len(), 1, "the failure shows on the team page");
    assert!(failing[0].last_error.as_deref().unwrap().contains("500"), "{failing:?}");
    app.state.store().execute_for_tests("UPDATE webhook_deliveries SET next_attempt_at = 0").await.unwrap();
    for _ in 0..3 {
        app.state.background_now(&mut writer).await.unwrap();
    }
    let delivered = bodies.lock().unwrap().clone();
    assert_eq!(delivered.len(), alerts, "each alert delivered once: {delivered:?}");
    assert_eq!(
        posts.load(Ordering::SeqCst),
        alerts + 1,
        "one failed attempt, then one delivery per alert, nothing more"
    );
    assert!(delivered.iter().all(|b| b["team"] == "nlp" && b["event"] == "gantry.budget_alert"));
    assert_eq!(app.state.store().alerts_of(app.nlp, month).await.unwrap().len(), alerts, "no alert fires twice");
    let view = app.state.team_budget(&nlp_admin, app.nlp).await.unwrap();
    assert!(view.month.spent.dollars() > 1.0 && view.month.percent_spent.unwrap() > 100.0, "{:?}", view.month);
    assert_eq!(view.alerts.len(), alerts);
    let audit = app
        .state
        .store()
        .audit(&gantry_store::AuditFilter { action: Some("budget.alert".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(audit.len(), alerts, "each alert is audited once");
    let delete = DeleteRequest { confirm: "alert-probe".into(), version: String::new() };
    app.state.delete_deployment(&admin, "a", "nlp", "alert-probe", &delete).await.unwrap();
}

#[tokio::test]
async fn bad_usage_input_is_refused_and_changes_nothing() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let admin = app.token(Who::Admin).await.unwrap();
    let nlp_admin = app.token(Who::OtherTeamAdmin).await.unwrap();
    let http = http();
    for (query, says) in [
        ("window=2026-11-30T00:00:00Z,2026-11-01T00:00:00Z", "ends before it starts"),
        ("window=900d", "retained"),
        ("window=yesterdayish", "window"),
        ("aggregate=team,colour", "colour"),
        ("step=7x", "step"),
        ("window=7d&step=1m", "whole number of hours"),
        ("sort=price", "sort"),
        ("order=up", "order"),
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("offset=-3", "offset"),
    ] {
        let response =
            http.get(app.url(&format!("/api/v1/allocation?{query}"))).bearer_auth(&admin).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(matches!(status, 400 | 422), "{query}: {status} {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{query}: {body}");
    }
    let viewer = app.token(Who::Viewer).await.unwrap();
    let by_node = http.get(app.url("/api/v1/allocation?aggregate=node")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(by_node.status(), 403, "a breakdown by node is for global admins");

    let csv = "cluster,model,capacity_type,usd_per_gpu_hour\n,NVIDIA-L4,on-demand,0.8\n,NVIDIA-L4,spot,-1\n";
    let import = http.put(app.url("/api/v1/prices.csv")).bearer_auth(&admin).body(csv).send().await.unwrap();
    assert_eq!(import.status(), 422);
    let body: Value = import.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("line 3, column 4"), "{body}");
    let prices: Value =
        http.get(app.url("/api/v1/prices")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(prices, json!([]), "nothing of the bad list was imported");
    let negative = http
        .put(app.url("/api/v1/prices/NVIDIA-L4/spot"))
        .bearer_auth(&admin)
        .json(&json!({ "usd_per_gpu_hour": -1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(negative.status(), 422);

    let hook = format!("/api/v1/teams/{}/webhook", app.nlp);
    for url in ["ftp://hooks.example.com", "hooks.example.com", "javascript:alert(1)"] {
        let response =
            http.put(app.url(&hook)).bearer_auth(&nlp_admin).json(&json!({ "url": url })).send().await.unwrap();
        assert_eq!(response.status(), 422, "{url}");
    }
    assert!(app.state.store().team_webhook(app.nlp).await.unwrap().is_none());

    // A Prometheus that does not answer is saved only when asked to anyway.
    let silent = "http://127.0.0.1:9";
    let refused = http
        .put(app.url("/api/v1/clusters/a/prometheus"))
        .bearer_auth(&admin)
        .json(&json!({ "url": silent }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["fields"][0]["field"], "url", "{body}");
    assert!(app.state.store().cluster_prometheus("a").await.unwrap().is_none(), "not saved");
    let anyway = http
        .put(app.url("/api/v1/clusters/a/prometheus"))
        .bearer_auth(&admin)
        .json(&json!({ "url": silent, "save_anyway": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(anyway.status(), 200);
    let saved: Value = anyway.json().await.unwrap();
    assert!(saved["problem"].is_string(), "{saved}");
    let not_http = http
        .put(app.url("/api/v1/clusters/a/prometheus"))
        .bearer_auth(&admin)
        .json(&json!({ "url": "ftp://prometheus" }))
        .send()
        .await
        .unwrap();
    assert_eq!(not_http.status(), 422);
}
