//! Charts and page weight (issue 18): a program that prints numbers and rewrites the
//! `## Charts and page weight` section of BENCHMARKS.md (not a timed test).
//!
//!   cargo bench -p gantry --bench charts                  # everything below
//!   cargo bench -p gantry --bench charts -- --no-browser  # only the queries and the built sizes
//!
//! GANTRY_BENCH_KEEP_DB=1 keeps the SQLite database as /tmp/gantry-chart-bench.sqlite.
//!
//! 1. Chart queries on 30 days of synthetic history for the scale fleet (one cluster, 1,000
//!    nodes with 8 GPUs each, eight teams with 120 serving deployments and training jobs that
//!    come and go), written through the store's rollup path (`Store::replace_hour`, one hour at
//!    a time, as the background loop writes it), first into SQLite, then into PostgreSQL (a new
//!    database on GANTRY_TEST_POSTGRES_URL; skipped without it). Each question is asked of
//!    `AppState::chart` in process, as the REST handler and the server function do: three
//!    warm-up calls, then 30 timed ones.
//! 2. The size of what a browser downloads, from the release build in `target/site`
//!    (`scripts/build-site.sh` must have run): each file's
//!    brotli twin, as the server sends it.
//! 3. In Chromium (Playwright, through `end2end/run.sh` with `end2end/bench.config.ts`, which
//!    starts the demo fleet and a server; Chromium's scheduling group is raised above theirs):
//!    the first route's transfer with an empty cache, the first draw of 50 series × 2,880
//!    points, and frames during hover and zoom.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{median, ms, quantile};
use gantry_cluster::Hub;
use gantry_domain::chart::SeriesQuery;
use gantry_domain::gpu::CapacityType;
use gantry_domain::policy::Role;
use gantry_domain::usage::{HourlyRow, IDLE, MS_PER_DAY, MS_PER_HOUR, Usage, UsageKey};
use gantry_domain::validate::Username;
use gantry_service::{AppState, Sealer, ServiceConfig};
use gantry_store::testing::TempDir;
use gantry_store::{LedgerChanges, Store, StoreConfig, now_ms};

const HEADING: &str = "## Charts and page weight";
const CLUSTER: &str = "scale";
const NODES: usize = 1000;
const GPUS_PER_NODE: i64 = 8;
const TEAMS: [&str; 8] = ["vision", "nlp", "speech", "recsys", "search", "ads", "research", "robotics"];
const DEPLOYMENTS_PER_TEAM: usize = 15;
const DAYS: i64 = 30;
const WARM_UP: usize = 3;
const CALLS: usize = 30;

/// Before this work (2026-12-02, the release build of the tree issue 18 started from): the
/// only route's assets, brotli, from `target/site/pkg`.
const BEFORE: [(&str, u64, u64); 3] =
    [("gantry.wasm", 3_016_406, 695_632), ("gantry.js", 25_566, 6_183), ("gantry.css", 5_928, 1_708)];

/// GPU models of the synthetic fleet: (model, nodes, price per GPU-hour in micro-dollars, spot share).
const MODELS: [(&str, usize, i64, bool); 3] = [
    ("NVIDIA-H100-80GB-HBM3", 400, 4_000_000, false),
    ("NVIDIA-A100-SXM4-80GB", 400, 2_500_000, true),
    ("NVIDIA-L4", 200, 800_000, true),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !common::under_cargo_bench(&args) {
        return Ok(());
    }
    common::init_logging("charts");
    let browser = !args.iter().any(|a| a == "--no-browser");
    let runtime = tokio::runtime::Runtime::new()?;
    let section = runtime.block_on(run(browser))?;
    println!("{section}");
    let path = common::write_section(HEADING, &section)?;
    eprintln!("wrote the {HEADING} section of {}", path.display());
    Ok(())
}

/// A small deterministic generator (xorshift), so every run writes the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The nodes: (name, model, capacity type, price).
fn nodes() -> Vec<(String, &'static str, CapacityType, i64)> {
    let mut out = Vec::new();
    for (model, count, price, spot) in MODELS {
        for i in 0..count {
            let capacity = if spot && i % 3 == 0 { CapacityType::Spot } else { CapacityType::OnDemand };
            let price = if capacity == CapacityType::Spot { price * 2 / 5 } else { price };
            out.push((format!("{}-{i}", model.to_lowercase()), model, capacity, price));
        }
    }
    out
}

fn cost_units(milli_gpus: i64, ms: i64, micro_usd: i64) -> i128 {
    i128::from(milli_gpus) * i128::from(ms) * i128::from(micro_usd)
}

/// One hour of the fleet, as `usage::rollup` would give it: each team's deployments on their
/// nodes all hour, training jobs that start and end on the hour, and every node's idle GPUs.
fn hour_rows(hour: i64, rng: &mut Rng) -> Vec<HourlyRow> {
    let nodes = nodes();
    let mut held = vec![0i64; nodes.len()];
    let mut rows = Vec::new();
    let mut place = |rows: &mut Vec<HourlyRow>, team: usize, workload: String, gpus: i64, rng: &mut Rng| {
        for _ in 0..nodes.len() {
            let n = rng.below(nodes.len() as u64) as usize;
            if held[n] + gpus <= GPUS_PER_NODE {
                held[n] += gpus;
                let (node, model, capacity, price) = &nodes[n];
                let milli = gpus * 1000;
                let cost = cost_units(milli, MS_PER_HOUR, *price);
                rows.push(HourlyRow {
                    hour,
                    key: UsageKey {
                        cluster: CLUSTER.into(),
                        namespace: TEAMS[team].into(),
                        team: Some(TEAMS[team].into()),
                        workload,
                        node: node.clone(),
                        model: (*model).into(),
                        capacity_type: *capacity,
                    },
                    usage: Usage {
                        allocated: milli * MS_PER_HOUR,
                        cost,
                        on_demand_cost: cost,
                        util_known: milli * MS_PER_HOUR,
                        util_weighted: i128::from(milli * MS_PER_HOUR) * i128::from(2_000 + rng.below(7_000) as i64),
                        ..Usage::default()
                    },
                });
                return;
            }
        }
    };
    for (team, name) in TEAMS.iter().enumerate() {
        for d in 0..DEPLOYMENTS_PER_TEAM {
            // Replicas move with the day: more by day, fewer at night.
            let day = (hour / MS_PER_HOUR) % 24;
            let replicas = 1 + (d % 4) + usize::from((8..20).contains(&day)) * (d % 3);
            for _ in 0..replicas {
                place(&mut rows, team, format!("Deployment/{name}-serve-{d}"), 1, rng);
            }
        }
        // Training jobs: a few each hour, each named for the 6-hour slot it runs in.
        let slot = hour / (6 * MS_PER_HOUR);
        for j in 0..(2 + rng.below(3)) {
            place(&mut rows, team, format!("Job/{name}-train-{slot}-{j}"), 8, rng);
        }
    }
    for (n, (node, model, capacity, price)) in nodes.iter().enumerate() {
        let idle = (GPUS_PER_NODE - held[n]) * 1000;
        let cost = cost_units(idle, MS_PER_HOUR, *price);
        rows.push(HourlyRow {
            hour,
            key: UsageKey {
                cluster: CLUSTER.into(),
                namespace: String::new(),
                team: None,
                workload: IDLE.into(),
                node: node.clone(),
                model: (*model).into(),
                capacity_type: *capacity,
            },
            usage: Usage {
                capacity: GPUS_PER_NODE * 1000 * MS_PER_HOUR,
                idle: idle * MS_PER_HOUR,
                cost,
                idle_cost: cost,
                on_demand_cost: cost,
                ..Usage::default()
            },
        });
    }
    rows
}

struct Written {
    hours: usize,
    rows: usize,
    took: Duration,
}

async fn write_history(store: &Store, now: i64) -> anyhow::Result<Written> {
    let mut rng = Rng(18);
    let last = now / MS_PER_HOUR * MS_PER_HOUR;
    let first = last - DAYS * MS_PER_DAY;
    let started = Instant::now();
    let (mut hours, mut rows) = (0, 0);
    for hour in (first..=last).step_by(MS_PER_HOUR as usize) {
        let hour_rows = hour_rows(hour, &mut rng);
        rows += hour_rows.len();
        hours += 1;
        store.replace_hour(CLUSTER, hour, &hour_rows).await?;
        if hours % 120 == 0 {
            tracing::info!("{hours} hours written");
        }
    }
    // The cluster's history begins with the first hour: before what the ledger knows of a
    // cluster, a chart has gaps (and with no record at all, everything before now is one).
    let begins = LedgerChanges { confirmed_at: Some(first), ..LedgerChanges::default() };
    store.apply_ledger(CLUSTER, &begins, now).await?;
    Ok(Written { hours, rows, took: started.elapsed() })
}

struct Question {
    who: &'static str,
    label: &'static str,
    query: SeriesQuery,
}

fn questions() -> Vec<Question> {
    let q = |chart: &str, by: &str, range: &str, extra: &[(&str, &str)]| {
        let mut query = SeriesQuery {
            chart: chart.into(),
            by: by.into(),
            range: range.into(),
            width: "1200".into(),
            ..Default::default()
        };
        for (k, v) in extra {
            match *k {
                "cluster" => query.cluster = v.to_string(),
                "namespace" => query.namespace = v.to_string(),
                "workload" => query.workload = v.to_string(),
                "team" => query.team = v.to_string(),
                _ => {}
            }
        }
        query
    };
    vec![
        Question {
            who: "viewer",
            label: "team member: spend by workload, 30 days (/costs)",
            query: q("spend", "workload", "30d", &[]),
        },
        Question {
            who: "viewer",
            label: "team member: cost per hour by model, 30 days (overview)",
            query: q("cost_rate", "model", "30d", &[]),
        },
        Question {
            who: "viewer",
            label: "team member: the month against the budget (team page)",
            query: q("budget", "", "", &[("team", "1")]),
        },
        Question {
            who: "viewer",
            label: "team member: one deployment's GPUs, 30 days",
            query: q(
                "workload",
                "",
                "30d",
                &[("cluster", CLUSTER), ("namespace", "vision"), ("workload", "Deployment/vision-serve-3")],
            ),
        },
        Question { who: "admin", label: "global admin: spend by team, 30 days", query: q("spend", "team", "30d", &[]) },
        Question {
            who: "admin",
            label: "global admin: GPUs by model, 30 days (node rollups)",
            query: q("gpus", "model", "30d", &[]),
        },
    ]
}

struct Timed {
    label: &'static str,
    median: Duration,
    p95: Duration,
    series: usize,
    points: usize,
}

async fn ask(state: &AppState) -> anyhow::Result<Vec<Timed>> {
    let mut out = Vec::new();
    for question in questions() {
        let caller = state.cli_caller(question.who).await?;
        let mut times = Vec::new();
        let mut shape = (0, 0);
        for i in 0..WARM_UP + CALLS {
            let started = Instant::now();
            let chart = state.chart(&caller, &question.query).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
            if i >= WARM_UP {
                times.push(started.elapsed());
            }
            shape = (chart.frame.series.len(), chart.frame.times.len());
            // A chart of nothing but gaps takes less work to answer than a drawn one.
            let drawn = chart.frame.series.iter().any(|s| s.values.iter().any(Option::is_some));
            anyhow::ensure!(drawn, "{}: the chart has nothing to draw", question.label);
        }
        out.push(Timed {
            label: question.label,
            median: median(&times),
            p95: quantile(&times, 0.95),
            series: shape.0,
            points: shape.1,
        });
    }
    Ok(out)
}

async fn backend(name: &str, url: Option<String>) -> anyhow::Result<(Written, Vec<Timed>)> {
    let dir = TempDir::new("gantry-chart-bench");
    let store = Store::open(&StoreConfig { data_dir: dir.path.clone(), database_url: url, max_connections: 8 }).await?;
    let now = now_ms();
    tracing::info!("{name}: writing {DAYS} days of rollups");
    let written = write_history(&store, now).await?;
    let hash = gantry_service::passwords::hash("bench-password-not-secret".into()).await?;
    for (i, team) in TEAMS.iter().enumerate() {
        let id = store.create_team(team).await?.id;
        assert_eq!(id, i as i64 + 1, "teams are numbered in order");
        store.map_namespace(CLUSTER, team, id).await?;
    }
    let viewer = store.create_user(&Username::parse("viewer")?, &hash, false).await?;
    store.set_membership(1, viewer.id, Role::Viewer).await?;
    store.create_user(&Username::parse("admin")?, &hash, true).await?;
    common::keep_sqlite_copy(&store, "/tmp/gantry-chart-bench.sqlite").await?;
    // The cluster is registered, as a global admin's charts cover the registered clusters; its
    // apiserver is never reached (nothing listens on port 9), which no question here needs.
    let hub = Hub::new();
    hub.connect(CLUSTER, kube::Config::new("http://127.0.0.1:9".parse()?))?;
    let state = AppState::new(store, hub, ServiceConfig::default(), Sealer::from_key([9; 32]));
    tracing::info!("{name}: asking");
    let timed = ask(&state).await?;
    Ok((written, timed))
}

/// The release build's files, each as the server sends it (its brotli twin).
fn built_sizes(site: &Path) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut walk = vec![site.to_path_buf()];
    while let Some(dir) = walk.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk.push(path);
                continue;
            }
            let name = path.strip_prefix(site).unwrap_or(&path).display().to_string();
            let wanted = [".wasm", ".js", ".css"].iter().any(|e| name.ends_with(e));
            if !wanted {
                continue;
            }
            let raw = entry.metadata().map(|m| m.len()).unwrap_or(0);
            let br = std::fs::metadata(format!("{}.br", path.display())).map(|m| m.len()).unwrap_or(raw);
            out.push((name, raw, br));
        }
    }
    out.sort();
    out
}

/// For each lazy page of the split manifest (`LoginRoute` is `login`): its chunks, and the
/// brotli bytes of the first wasm, its JS glue, the split loader and those chunks.
fn per_page(pkg: &Path, sizes: &[(String, u64, u64)]) -> Vec<(String, usize, u64)> {
    let Ok(text) = std::fs::read_to_string(pkg.join("__wasm_split_manifest.json")) else { return Vec::new() };
    let Ok(manifest) = serde_json::from_str::<std::collections::BTreeMap<String, Vec<String>>>(&text) else {
        return Vec::new();
    };
    let brotli = |file: &str| sizes.iter().find(|(name, _, _)| name == &format!("pkg/{file}")).map_or(0, |s| s.2);
    let first = brotli("gantry.wasm") + brotli("gantry.js") + brotli("__wasm_split.______________________.js");
    let mut pages: Vec<_> = manifest
        .iter()
        .map(|(id, chunks)| {
            // `__login_route_view_<hash>` → `login`
            let page = id.trim_start_matches("__").split("_route_view").next().unwrap_or(id).to_string();
            (page, chunks.len(), first + chunks.iter().map(|c| brotli(&format!("{c}.wasm"))).sum::<u64>())
        })
        .collect();
    pages.sort_by_key(|(_, _, br)| *br);
    pages
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

/// Runs the Playwright part through end2end/run.sh and reads what it wrote.
fn browser_run() -> anyhow::Result<serde_json::Value> {
    let root = common::workspace_root();
    let out = std::env::temp_dir().join(format!("gantry-chart-bench-{}.json", std::process::id()));
    let status = std::process::Command::new(root.join("end2end/run.sh"))
        .arg("--config=bench.config.ts")
        .env("GANTRY_BENCH_OUT", &out)
        .env("GANTRY_E2E_BENCH", "1")
        .current_dir(&root)
        .status()?;
    anyhow::ensure!(status.success(), "end2end/run.sh --config=bench.config.ts failed");
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    Ok(serde_json::from_str(&text)?)
}

async fn run(browser: bool) -> anyhow::Result<String> {
    let mut lines = vec![HEADING.to_string(), String::new()];
    lines.push(format!(
        "Measured {} with `cargo bench -p gantry --bench charts` (release build; or `scripts/bench.sh`) on {}.",
        common::today(),
        common::machine()
    ));
    lines.push(String::new());

    // The browser's half runs first, before the history is written: 30 days into SQLite and
    // PostgreSQL leave the machine busy for a while after (PostgreSQL's autovacuum, the disks'
    // writeback). In one run that measured the frames after the writes, the hover frames'
    // main-thread time was 7–13 ms median a round, against 4–6 ms in runs without them.
    let measured = browser.then(browser_run);

    // 1. Queries.
    let mut runs = vec![("SQLite", backend("sqlite", None).await?)];
    if let Some(url) = gantry_store::testing::postgres_database_url().await {
        runs.push(("PostgreSQL", backend("postgres", Some(url)).await?));
    }
    let (written, _) = &runs[0].1;
    lines.push(format!(
        "**Chart queries** on {DAYS} days of synthetic history for the scale fleet: one cluster of {NODES} nodes × {GPUS_PER_NODE} GPUs \
         (H100, A100, L4; a third of the A100 and L4 nodes spot), {} teams with {} serving deployments whose replicas follow the day \
         and 2–4 eight-GPU training jobs each at any time, every node's idle GPUs: {} hours, {} rollup rows, written with \
         `Store::replace_hour` (SQLite: {:.0} s). Each question asked of `AppState::chart` in process (what the REST handler and \
         the server function call), at a width of 1,200 px; {WARM_UP} warm-up calls, then {CALLS}.",
        TEAMS.len(),
        TEAMS.len() * DEPLOYMENTS_PER_TEAM,
        written.hours,
        written.rows,
        written.took.as_secs_f64(),
    ));
    lines.push(String::new());
    let mut header = "| Question | Series × points |".to_string();
    let mut rule = "|---|---|".to_string();
    for (name, _) in &runs {
        header.push_str(&format!(" {name}: median / p95 |"));
        rule.push_str("---|");
    }
    header.push_str(" Goal |");
    rule.push_str("---|");
    lines.push(header);
    lines.push(rule);
    let labels: Vec<&str> = runs[0].1.1.iter().map(|t| t.label).collect();
    for (i, label) in labels.iter().enumerate() {
        let t = &runs[0].1.1[i];
        let mut line = format!("| {label} | {} × {} |", t.series, t.points);
        for (_, (_, timed)) in &runs {
            let t = &timed[i];
            line.push_str(&format!(" {} / **{}** |", ms(t.median), ms(t.p95)));
        }
        let goal = if i == 0 {
            let worst = runs.iter().map(|(_, (_, t))| t[0].p95).max().unwrap_or_default();
            format!(" p95 ≤ 200 ms: {} |", if worst <= Duration::from_millis(200) { "met" } else { "not met" })
        } else {
            " |".to_string()
        };
        line.push_str(&goal);
        lines.push(line);
    }
    lines.push(String::new());

    // 2. Built sizes.
    let site = common::workspace_root().join("target/site");
    let sizes = built_sizes(&site);
    if !sizes.is_empty() {
        lines.push(
            "**What the browser downloads**, from `target/site` after `scripts/build-site.sh` \
             (brotli, as served; the server links the bundle under a folder named by its content hash):"
                .into(),
        );
        lines.push(String::new());
        lines.push("| File | Raw | Brotli |".into());
        lines.push("|---|---|---|".into());
        let is_chunk = |name: &str| name.ends_with(".wasm") && !name.ends_with("/gantry.wasm");
        for (name, raw, br) in sizes.iter().filter(|(name, _, _)| !is_chunk(name)) {
            lines.push(format!("| `{name}` | {} | {} |", kib(*raw), kib(*br)));
        }
        let chunks: Vec<_> = sizes.iter().filter(|(name, _, _)| is_chunk(name)).collect();
        let (chunks_raw, chunks_br) = chunks.iter().fold((0, 0), |(raw, br), (_, r, b)| (raw + r, br + b));
        lines.push(format!(
            "| {} wasm chunks split off per page (`pkg/chunk_*.wasm`, `pkg/split_*.wasm`) | {} | {} |",
            chunks.len(),
            kib(chunks_raw),
            kib(chunks_br)
        ));
        let (wasm_raw, wasm_br) = sizes
            .iter()
            .filter(|(name, _, _)| name.ends_with(".wasm"))
            .fold((0, 0), |(raw, br), (_, r, b)| (raw + r, br + b));
        lines.push(format!("| all wasm files together | {} | {} |", kib(wasm_raw), kib(wasm_br)));
        let pages = per_page(&site.join("pkg"), &sizes);
        if !pages.is_empty() {
            lines.push(String::new());
            lines.push(format!(
                "Per page, the first wasm and its JS (gantry.wasm, gantry.js, the split loader) and the chunks the split \
                 manifest lists for the page, brotli: {}.",
                pages
                    .iter()
                    .map(|(page, chunks, br)| format!("{page} {} ({chunks} chunks)", kib(*br)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let before: u64 = BEFORE.iter().map(|(_, _, br)| br).sum();
        lines.push(String::new());
        lines.push(format!(
            "Before (one wasm for every page, fixed names served `no-cache`): {} — together {} brotli.",
            BEFORE
                .iter()
                .map(|(n, raw, br)| format!("`{n}` {} raw, {} brotli", kib(*raw), kib(*br)))
                .collect::<Vec<_>>()
                .join("; "),
            kib(before)
        ));
        lines.push(String::new());
    }

    // 3. Browser.
    match measured {
        Some(Ok(measured)) => lines.extend(browser_lines(&measured)),
        Some(Err(e)) => lines.push(format!("The browser half did not run: {e}.")),
        None => {}
    }
    Ok(lines.join("\n"))
}

/// A wasm chunk split off per page (not the first wasm, `gantry.wasm`).
fn is_chunk(path: &str) -> bool {
    path.ends_with(".wasm") && !path.ends_with("/gantry.wasm")
}

/// The page's chunks as one entry: "N wasm chunks X KB".
fn chunk_sum(files: &[serde_json::Value]) -> Option<String> {
    let chunks: Vec<f64> = files
        .iter()
        .filter(|f| is_chunk(f["name"].as_str().unwrap_or("")))
        .map(|f| f["bytes"].as_f64().unwrap_or(0.0))
        .collect();
    (!chunks.is_empty()).then(|| format!("{} wasm chunks {}", chunks.len(), kib(chunks.iter().sum::<f64>() as u64)))
}

fn browser_lines(m: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    lines.push(
        format!(
            "**In Chromium** (Debian's, headless, through Playwright; `end2end/bench.config.ts`), against the demo fleet; {}:",
            m["priority"].as_str().unwrap_or("Chromium's scheduling group not set")
        ),
    );
    lines.push(String::new());
    lines.push("| Measure | Result | Goal |".into());
    lines.push("|---|---|---|".into());
    if let Some(routes) = m["routes"].as_array() {
        for r in routes {
            let total = num(&r["total"]);
            let goal = if r["goal"].as_bool().unwrap_or(false) {
                format!("≤ 350 KB: {}", if total <= 350_000.0 { "met" } else { "not met" })
            } else {
                String::new()
            };
            let parts: Vec<String> = r["files"]
                .as_array()
                .map(|files| {
                    files
                        .iter()
                        .filter(|f| !is_chunk(f["name"].as_str().unwrap_or("")))
                        .map(|f| format!("{} {}", f["name"].as_str().unwrap_or("?"), kib(num(&f["bytes"]) as u64)))
                        .chain(chunk_sum(files))
                        .collect()
                })
                .unwrap_or_default();
            lines.push(format!(
                "| First load of `{}` with an empty cache: HTML + CSS + JS + wasm as transferred (compressed bodies); \
                 interactive (hydrated) after | **{}** ({}); {:.0} ms | {goal} |",
                r["path"].as_str().unwrap_or("?"),
                kib(total as u64),
                parts.join(", "),
                num(&r["hydratedMs"])
            ));
        }
    }
    let draws = &m["draw"];
    lines.push(format!(
        "| First draw of 50 series × 2,880 points (columns to uPlot, built and painted; median of {} after one to load uPlot) | **{:.1} ms** (fastest {:.1}, slowest {:.1}) | ≤ 100 ms: {} |",
        draws["runs"].as_u64().unwrap_or(0),
        num(&draws["median"]),
        num(&draws["min"]),
        num(&draws["max"]),
        if num(&draws["median"]) <= 100.0 { "met" } else { "not met" }
    ));
    let rounds_of = |key: &str| m[key].as_array().cloned().unwrap_or_default();
    let sum_of =
        |rounds: &[serde_json::Value], field: &str| rounds.iter().map(|f| f[field].as_u64().unwrap_or(0)).sum::<u64>();
    let idle = rounds_of("idle");
    let idle_dropped = sum_of(&idle, "long");
    for (key, what) in [
        ("idle", "Idle, side by side: the same page, nothing moving (what this machine drops anyway)"),
        ("hover", "Hover: the crosshair swept across that chart, a move per frame"),
        ("zoom", "Zoom: range changes, one per frame, each a new range and its data (`updateChart`, as the app zooms)"),
    ] {
        let rounds = rounds_of(key);
        let frames = sum_of(&rounds, "frames");
        let dropped = sum_of(&rounds, "long");
        let over_budget = sum_of(&rounds, "mainOver");
        let per_round: Vec<String> = rounds.iter().map(|f| f["long"].as_u64().unwrap_or(0).to_string()).collect();
        let range = |field: &str| {
            let values: Vec<f64> = rounds.iter().map(|f| num(&f[field])).collect();
            if values.is_empty() {
                return "none".to_string();
            }
            let low = values.iter().copied().fold(f64::INFINITY, f64::min);
            let high = values.iter().copied().fold(0.0, f64::max);
            format!("{low:.1}–{high:.1} ms")
        };
        let most = |field: &str| rounds.iter().map(|f| num(&f[field])).fold(0.0, f64::max);
        lines.push(format!(
            "| {what}; {} rounds of {} frames | frames over 20 ms: **{}** (per round {}; longest gap {:.1} ms); each frame's \
             main-thread time (the step, then the browser's style, layout, paint and commit): median {} a round, most {:.1} ms, \
             {over_budget} of {frames} over 16.7 ms; the step's own work: median {} a round, most {:.1} ms | {} |",
            rounds.len(),
            rounds.first().map_or(0, |f| f["frames"].as_u64().unwrap_or(0)),
            dropped,
            per_round.join(", "),
            most("longest"),
            range("mainMedian"),
            most("mainMost"),
            range("workMedian"),
            most("workMost"),
            if key == "idle" {
                String::new()
            } else if rounds.is_empty() {
                "not measured".to_string()
            } else if dropped == 0 {
                "no dropped frames: met".to_string()
            } else {
                format!(
                    "no dropped frames: not met ({dropped} of {frames}; the idle page beside it: {idle_dropped} of {})",
                    sum_of(&idle, "frames")
                )
            }
        ));
    }
    let settles: Vec<String> =
        m["settle"].as_array().map(|s| s.iter().map(|t| format!("{:.1} ms", num(t))).collect()).unwrap_or_default();
    lines.push(format!(
        "| After each zoom round, the one full-resolution redraw once the range has rested 100 ms (drawn thinned while it moves): its frame | {} | |",
        settles.join(", ")
    ));
    lines.push(String::new());
    lines.push(
        "Method: transfer is the sum of `encodedBodySize` over the navigation and every CSS, JS and wasm resource of the page \
         (Performance API, resource timing), in a new browser context; the server sends each file's brotli twin, over \
         HTTP/1.1 on the loopback (a page's chunks are many small requests: behind a TLS proxy speaking HTTP/2 they share \
         one connection). Interactive is when the app marks the page hydrated, from the navigation's start. The draw \
         is timed in the page from the call into `app/js/chart.js` to two animation frames later (uPlot draws in the \
         first), for a chart 1,200 × 300 px, once the server has finished its start-up work (`end2end/run.sh` with \
         `GANTRY_E2E_BENCH=1` waits for the server to have compressed every page's bundle, about half a minute of one \
         core, and starts no second server: measured with both compressing, the browser's main thread ran in bursts of \
         50 ms to over a second, none of them the page's own work); Chromium's scheduling group is raised above the \
         testbed's (the fleet's control planes, the server, Playwright's test runner), which a person's machine does not \
         run beside the browser (why: ARCHITECTURE.md, the charts' choices); hover and zoom time the frames `requestAnimationFrame` sees while the \
         mouse moves or the range changes, one step per frame, each round after half a second of quiet, beside the same \
         page doing nothing; a gap over 20 ms between two frames is a dropped frame. A step's own work is the call (or the \
         mouse event) and the microtasks it queued, uPlot's drawing among them; a frame's main-thread time runs from the \
         step to a message the step posts, which the page handles once the browser has rendered that frame (its style, \
         layout, paint and commit run in the same task, after the step). Playwright's own tracing is off while it measures (`end2end/bench.config.ts`): its screencast encodes \
         every frame, which costs most of a frame here."
            .into(),
    );
    lines
}
