//! The chart series endpoint (issue 18): exact buckets from the ledger's
//! raw intervals and from the rollups, at most two points per pixel, gaps
//! as gaps, scoped like every other read, and bad input refused with a 4xx
//! that names the problem. The ledger is seeded straight into the store, so
//! every expected figure is known to the cent.

mod common;

use common::Who;
use gantry_domain::cost::{GpuPrice, Usd};
use gantry_domain::gpu::CapacityType;
use gantry_domain::usage::{
    AllocationInterval, CapacityInterval, HourlyRow, MS_PER_HOUR, MS_PER_MINUTE, Usage, UsageKey,
};
use gantry_store::{GapReason, LedgerChanges, NewAllocation, NewCapacity, NewGap, now_ms};
use serde_json::Value;

const L4: &str = "NVIDIA-L4";

async fn price_since_long_ago(app: &common::TestApp) {
    let price = GpuPrice {
        model: L4.into(),
        capacity_type: CapacityType::OnDemand,
        usd_per_gpu_hour: Usd::from_dollars("price", 3.60).unwrap(),
        updated_at: now_ms() - 100 * 24 * MS_PER_HOUR,
    };
    app.state.store().set_gpu_price(&price).await.unwrap();
}

fn pod(namespace: &str, team: &str, name: &str, milli: i64, start: i64, end: Option<i64>) -> NewAllocation {
    NewAllocation {
        pod_uid: format!("uid-{name}"),
        mig: None,
        interval: AllocationInterval {
            cluster: "a".into(),
            namespace: namespace.into(),
            team: Some(team.into()),
            workload: format!("Deployment/{name}"),
            pod: format!("{name}-0"),
            node: "gpu-1".into(),
            model: L4.into(),
            capacity_type: CapacityType::OnDemand,
            milli_gpus: milli,
            start,
            end,
        },
    }
}

async fn chart(app: &common::TestApp, who: Who, query: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(app.url(&format!("/api/v1/series?{query}")));
    if let Some(token) = app.token(who).await {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn series<'a>(chart: &'a Value, name: &str) -> Option<&'a Vec<Value>> {
    chart["frame"]["series"].as_array()?.iter().find(|s| s["name"] == name)?["values"].as_array()
}

fn names(chart: &Value) -> Vec<String> {
    chart["frame"]["series"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

fn total(values: &[Value]) -> f64 {
    values.iter().filter_map(Value::as_f64).sum()
}

/// The bucket holding `at`.
fn bucket(chart: &Value, at: i64) -> usize {
    let times: Vec<i64> = chart["frame"]["times"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    times.iter().rposition(|t| *t <= at).unwrap()
}

both_backends!(recent_charts_are_exact_scoped_and_show_gaps_as_gaps, |app| {
    price_since_long_ago(&app).await;
    let now = now_ms() / MS_PER_MINUTE * MS_PER_MINUTE;
    let t0 = now - 50 * MS_PER_MINUTE;
    let changes = LedgerChanges {
        open_capacity: vec![NewCapacity {
            node_uid: "uid-gpu-1".into(),
            interval: CapacityInterval {
                cluster: "a".into(),
                node: "gpu-1".into(),
                model: L4.into(),
                capacity_type: CapacityType::OnDemand,
                milli_gpus: 4000,
                start: now - 2 * MS_PER_HOUR,
                end: None,
            },
        }],
        open_allocations: vec![
            pod("vision", "vision", "serve", 2000, t0, None),
            pod("nlp", "nlp", "train", 1000, t0, Some(t0 + 20 * MS_PER_MINUTE)),
        ],
        open_gap: Some(NewGap {
            start_ms: now - 100 * MS_PER_MINUTE,
            end_ms: Some(now - 90 * MS_PER_MINUTE),
            reason: GapReason::Stale,
        }),
        ..Default::default()
    };
    app.state.store().apply_ledger("a", &changes, now).await.unwrap();

    // The admin sees every team and the idle capacity, per minute.
    let (status, all) = chart(&app, Who::Admin, "chart=spend&by=team&range=2h&width=1000").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["step"], MS_PER_MINUTE, "120 minutes fit 2,000 points");
    assert_eq!(all["resolution"], "exact");
    assert_eq!(all["stacked"], true);
    let mut seen = names(&all);
    seen.sort();
    assert_eq!(seen, ["idle", "nlp", "vision"]);
    let nlp = total(series(&all, "nlp").unwrap());
    assert!((nlp - 1.20).abs() < 1e-9, "one GPU for 20 minutes at $3.60: {nlp}");
    let vision = total(series(&all, "vision").unwrap());
    assert!((6.0..6.3).contains(&vision), "two GPUs for 50 minutes and the seconds since: {vision}");
    // The stale ten minutes are gaps in every series, not zeros.
    let in_gap = bucket(&all, now - 95 * MS_PER_MINUTE);
    for name in ["idle", "nlp", "vision"] {
        assert!(series(&all, name).unwrap()[in_gap].is_null(), "{name} in the gap");
    }
    // Before the gap the node idled: 4 GPUs at $3.60 is 24 cents a minute.
    let before = bucket(&all, now - 110 * MS_PER_MINUTE);
    assert!((series(&all, "idle").unwrap()[before].as_f64().unwrap() - 0.24).abs() < 1e-9);

    // A viewer of team vision sees vision's series and nothing of nlp's or the idle capacity.
    let (status, theirs) = chart(&app, Who::Viewer, "chart=spend&by=team&range=2h").await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(names(&theirs), ["vision"]);
    let (_, by_workload) = chart(&app, Who::Viewer, "chart=spend&by=workload&range=2h").await;
    assert_eq!(names(&by_workload), ["Deployment/serve"]);

    // GPUs: node-level, as the overview counts them; averaged per bucket.
    let (status, gpus) = chart(&app, Who::Viewer, "chart=gpus&range=2h").await;
    assert_eq!(status, 200, "{gpus}");
    assert_eq!(names(&gpus), ["capacity", "allocated"]);
    let both = bucket(&gpus, t0 + 10 * MS_PER_MINUTE);
    let one = bucket(&gpus, t0 + 30 * MS_PER_MINUTE);
    assert_eq!(series(&gpus, "capacity").unwrap()[both].as_f64(), Some(4.0));
    assert_eq!(series(&gpus, "allocated").unwrap()[both].as_f64(), Some(3.0));
    assert_eq!(series(&gpus, "allocated").unwrap()[one].as_f64(), Some(2.0));
    assert!(
        gpus["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("Utilisation not configured"))
    );

    // Never more than two points per pixel.
    let (_, narrow) = chart(&app, Who::Admin, "chart=spend&range=2h&width=10").await;
    let points = narrow["frame"]["times"].as_array().unwrap().len();
    assert!(points <= 20, "{points} points for 10 pixels");
    assert_eq!(narrow["step"], 15 * MS_PER_MINUTE);
    let summed = total(series(&narrow, "GPUs in use").unwrap());
    assert!((summed - (vision + nlp)).abs() < 0.05, "coarser buckets keep the sum: {summed}");

    // One workload, with its pods.
    let (status, workload) =
        chart(&app, Who::Viewer, "chart=workload&cluster=a&namespace=vision&workload=Deployment/serve&range=2h").await;
    assert_eq!(status, 200, "{workload}");
    assert_eq!(names(&workload), ["GPUs held", "pods holding GPUs"]);
    let inside = bucket(&workload, t0 + 10 * MS_PER_MINUTE);
    assert_eq!(series(&workload, "GPUs held").unwrap()[inside].as_f64(), Some(2.0));
    assert_eq!(series(&workload, "pods holding GPUs").unwrap()[inside].as_f64(), Some(1.0));
    // Its life: from a minute before it first held a GPU, on to now while it holds one.
    let (status, life) =
        chart(&app, Who::Viewer, "chart=workload&cluster=a&namespace=vision&workload=Deployment/serve&range=life")
            .await;
    assert_eq!(status, 200, "{life}");
    assert_eq!(life["start"], t0 - MS_PER_MINUTE);
    assert_eq!(life["end"], life["now"]);
    let (status, finished) =
        chart(&app, Who::Admin, "chart=workload&cluster=a&namespace=nlp&workload=Deployment/train&range=life").await;
    assert_eq!(status, 200, "{finished}");
    let (start, end) = (t0 - MS_PER_MINUTE, t0 + 21 * MS_PER_MINUTE);
    assert_eq!((finished["start"].as_i64(), finished["end"].as_i64()), (Some(start), Some(end)));
    // nlp's workload is not the vision viewer's to see.
    let (status, _) =
        chart(&app, Who::Viewer, "chart=workload&cluster=a&namespace=nlp&workload=Deployment/train&range=2h").await;
    assert_eq!(status, 403);
});

both_backends!(older_ranges_come_from_the_rollups_with_gaps_before_the_history, |app| {
    let now = now_ms();
    let first = (now / MS_PER_HOUR - 48) * MS_PER_HOUR;
    // Two days of hours: vision holds one GPU for $2 an hour, nlp two, one of
    // them with no price, for $4, on a node of four GPUs (one idle).
    for hour in (first..now / MS_PER_HOUR * MS_PER_HOUR).step_by(MS_PER_HOUR as usize) {
        let row = |namespace: &str, team: &str, gpus: i64, dollars: i128| HourlyRow {
            hour,
            key: UsageKey {
                cluster: "a".into(),
                namespace: namespace.into(),
                team: Some(team.into()),
                workload: format!("Deployment/{team}"),
                node: "gpu-1".into(),
                model: L4.into(),
                capacity_type: CapacityType::OnDemand,
            },
            usage: Usage {
                allocated: gpus * 1000 * MS_PER_HOUR,
                cost: dollars * 3_600_000_000 * 1_000_000,
                on_demand_cost: dollars * 3_600_000_000 * 1_000_000,
                unpriced: if team == "nlp" { 1000 * MS_PER_HOUR } else { 0 },
                ..Usage::default()
            },
        };
        let idle = HourlyRow {
            hour,
            key: UsageKey {
                cluster: "a".into(),
                namespace: String::new(),
                team: None,
                workload: gantry_domain::usage::IDLE.into(),
                node: "gpu-1".into(),
                model: L4.into(),
                capacity_type: CapacityType::OnDemand,
            },
            usage: Usage { capacity: 4000 * MS_PER_HOUR, idle: 1000 * MS_PER_HOUR, ..Usage::default() },
        };
        app.state
            .store()
            .replace_hour("a", hour, &[row("vision", "vision", 1, 2), row("nlp", "nlp", 2, 4), idle])
            .await
            .unwrap();
    }
    // The ledger first watched the cluster at the start of those hours.
    let watched = LedgerChanges { confirmed_at: Some(first), ..Default::default() };
    app.state.store().apply_ledger("a", &watched, now).await.unwrap();
    // The current hour, rolled up halfway to now: a GPU-hour rate of one GPU until then.
    let current = now / MS_PER_HOUR * MS_PER_HOUR;
    let rolled = current + (now - current) / 2;
    let partial = HourlyRow {
        hour: current,
        key: UsageKey {
            cluster: "a".into(),
            namespace: "vision".into(),
            team: Some("vision".into()),
            workload: "Deployment/vision".into(),
            node: "gpu-1".into(),
            model: L4.into(),
            capacity_type: CapacityType::OnDemand,
        },
        // $2 an hour is 2 × 3.6e15 cost units per 3.6e6 ms.
        usage: Usage {
            allocated: 1000 * (rolled - current),
            cost: 2_000_000_000 * i128::from(rolled - current),
            ..Usage::default()
        },
    };
    app.state.store().replace_hour("a", current, &[partial]).await.unwrap();
    app.state.store().set_rollup_watermark("a", current - MS_PER_HOUR, rolled).await.unwrap();
    let (status, week) = chart(&app, Who::Viewer, "chart=spend&by=team&range=7d&width=2000").await;
    assert_eq!(status, 200, "{week}");
    assert_eq!(week["resolution"], "hourly");
    assert_eq!(week["step"], MS_PER_HOUR);
    assert_eq!(names(&week), ["vision"]);
    let vision = series(&week, "vision").unwrap();
    let expected = 96.0 + 2.0 * (rolled - current) as f64 / MS_PER_HOUR as f64;
    assert!((total(vision) - expected).abs() < 1e-6, "48 hours at $2 and the current hour: {}", total(vision));
    assert!(vision[0].is_null(), "before the first rollup there is no history: a gap, not a zero");
    assert_eq!(vision[bucket(&week, first + MS_PER_HOUR)].as_f64(), Some(2.0));
    assert!(week["notes"].as_array().unwrap().is_empty(), "nlp's unpriced time is not vision's: {}", week["notes"]);

    let (_, admin) = chart(&app, Who::Admin, "chart=cost_rate&by=team&range=7d&width=50").await;
    assert_eq!(admin["step"], 3 * MS_PER_HOUR, "168 hours do not fit 100 points; 56 buckets of 3 h do");
    let nlp = series(&admin, "nlp").unwrap();
    assert_eq!(nlp[bucket(&admin, first + 6 * MS_PER_HOUR)].as_f64(), Some(4.0), "$4 an hour");
    let notes = admin["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().starts_with("No prices set for NVIDIA-L4 (on-demand, 48")),
        "nlp's GPU-hour an hour without a price, over the 48 hours: {notes:?}"
    );

    // GPUs by model from the rollups: the node's four, three of them held.
    let (status, gpus) = chart(&app, Who::Admin, "chart=gpus&by=model&range=7d&width=2000").await;
    assert_eq!(status, 200, "{gpus}");
    assert_eq!(names(&gpus), [format!("{L4} capacity"), format!("{L4} allocated")]);
    let hour = bucket(&gpus, first + MS_PER_HOUR);
    assert_eq!(series(&gpus, &format!("{L4} capacity")).unwrap()[hour].as_f64(), Some(4.0));
    assert_eq!(series(&gpus, &format!("{L4} allocated")).unwrap()[hour].as_f64(), Some(3.0));

    // The current hour's rate is what it was up to the last roll-up, not that spread up to now.
    if rolled > current {
        let (_, hourly) = chart(&app, Who::Viewer, "chart=cost_rate&by=team&range=7d&width=2000").await;
        let vision = series(&hourly, "vision").unwrap();
        let last = vision[bucket(&hourly, current)].as_f64().unwrap();
        assert!((last - 2.0).abs() < 1e-6, "$2 an hour in the current hour too: {last}");
    }
    // The allocation API over the same week, ranked and paged in the database.
    let allocation = |who: Who, query: &str| {
        let app = &app;
        let query = query.to_string();
        async move {
            let mut request = reqwest::Client::new().get(app.url(&format!("/api/v1/allocation?window=7d&{query}")));
            if let Some(token) = app.token(who).await {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let workloads = |report: &Value| -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for row in report["rows"].as_array().unwrap() {
            let workload = row["workload"].as_str().unwrap().to_string();
            if seen.last() != Some(&workload) {
                seen.push(workload);
            }
        }
        seen
    };
    let top = allocation(Who::Admin, "aggregate=workload&step=1d&limit=1").await;
    assert_eq!((top["groups"].as_u64(), top["limit"].as_u64(), top["offset"].as_u64()), (Some(3), Some(1), Some(0)));
    assert_eq!(workloads(&top), ["Deployment/nlp"], "$4 an hour is the most; all its days together");
    assert!(top["rows"].as_array().unwrap().len() >= 2, "the week's days of that one group: {top}");
    let whole = allocation(Who::Admin, "aggregate=workload").await;
    assert_eq!(top["totals"], whole["totals"], "the totals are the window's, whatever the page");
    assert_eq!(workloads(&whole), ["Deployment/nlp", "Deployment/vision", gantry_domain::usage::IDLE]);
    let second = allocation(Who::Admin, "aggregate=workload&limit=1&offset=1").await;
    assert_eq!(workloads(&second), ["Deployment/vision"]);
    let by_name = allocation(Who::Admin, "aggregate=workload&sort=name&order=desc&limit=2").await;
    assert_eq!(workloads(&by_name), [gantry_domain::usage::IDLE, "Deployment/vision"]);
    let found = allocation(Who::Admin, "aggregate=workload&q=VISION").await;
    assert_eq!((workloads(&found), found["groups"].as_u64()), (vec!["Deployment/vision".to_string()], Some(1)));
    let theirs = allocation(Who::Viewer, "aggregate=workload").await;
    assert_eq!((workloads(&theirs), theirs["groups"].as_u64()), (vec!["Deployment/vision".to_string()], Some(1)));
    let csv = reqwest::Client::new()
        .get(app.url("/api/v1/allocation.csv?window=7d&aggregate=workload"))
        .bearer_auth(app.token(Who::Admin).await.unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1 + 3, "a header and every group, not a page: {csv}");
});

#[tokio::test]
async fn a_teams_month_runs_to_its_end_with_the_forecast_dashed() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let (status, month) = chart(&app, Who::Viewer, &format!("chart=budget&team={}", app.vision)).await;
    assert_eq!(status, 200, "{month}");
    let span = gantry_domain::usage::month_of(now_ms());
    let times = month["frame"]["times"].as_array().unwrap();
    assert_eq!(times.first().unwrap().as_i64(), Some(span.start));
    assert_eq!(times.last().unwrap().as_i64(), Some(span.end), "the forecast reaches the month's end");
    assert_eq!(names(&month), ["spent", "forecast"], "no budget set, so no budget line");
    assert_eq!(month["styles"][1]["dash"], "dashed");
    assert!(month["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("no monthly budget")));
    let (status, _) = chart(&app, Who::Viewer, &format!("chart=budget&team={}", app.nlp)).await;
    assert_eq!(status, 403, "another team's budget");
}

#[tokio::test]
async fn bad_chart_questions_get_a_4xx_that_names_the_problem() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    for (query, says) in [
        ("range=2026-11-30T00:00:00Z,2026-11-01T00:00:00Z", "ends before it starts"),
        ("range=900d", "retained history"),
        ("range=whenever", "range"),
        ("width=0", "width"),
        ("width=10001", "width"),
        ("width=wide", "width"),
        ("by=colour", "colour"),
        ("chart=gpus&by=team", "not split by team"),
        ("chart=pie", "unknown chart"),
        ("chart=budget", "team"),
        ("chart=workload&cluster=a&namespace=vision", "workload"),
        ("chart=spend&range=life", "one workload"),
    ] {
        let (status, body) = chart(&app, Who::Admin, query).await;
        assert!(matches!(status, 400 | 422), "{query}: {status} {body}");
        let text = body["error"].to_string();
        assert!(text.contains(says), "{query}: {body}");
    }
    let (status, body) = chart(&app, Who::Viewer, "chart=spend&by=node").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = chart(&app, Who::Anonymous, "chart=spend").await;
    assert_eq!(status, 401, "{body}");
}
