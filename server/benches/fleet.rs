//! Gantry against a fleet at scale: a program that prints numbers (not a timed test).
//!
//!   cargo bench -p gantry --bench fleet                          # the scale fleet; rewrites BENCHMARKS.md
//!   cargo bench -p gantry --bench fleet -- --fleet other.yaml    # another fleet; prints only
//!
//! On `deploy/fleets/scale.yaml` (1,000 nodes, 30,000 pods), in one run:
//! 1. heap held by the watch caches, per cached pod (a counting global allocator: live bytes
//!    before the hub connects and after it has synced);
//! 2. GET /api/v1/overview and GET /api/v1/pods?per_page=50 under load with `wrk`;
//! 3. the server-rendered overview page, and the same two API calls, one at a time;
//! 4. watch-to-browser latency: a pod label patched in the apiserver until the `change`
//!    event reaches an SSE client of /api/v1/events;
//! 5. `kubectl get pods -A` on the same cluster, next to Gantry's paged pod list, and the
//!    same questions asked of both: a raw LIST of 50 pods against Gantry's first page, and a
//!    raw LIST of every pod against every page of Gantry's list;
//! 6. load held: 60 s of `wrk` at 64 connections on the overview API, the pod list API and
//!    the server-rendered overview, while 200 event-stream clients stay connected, with
//!    Gantry's RSS before and after;
//! 7. a sign-in storm: 1,000 wrong passwords from 50 connections while a signed-in user
//!    keeps working.
//!
//! Needs `wrk` on PATH (`scripts/bench.sh` installs it).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, median, ms, quantile};
use futures::StreamExt;
use gantry_cluster::{Hub, queries};
use gantry_domain::view::ListQuery;
use gantry_testbed::{Fleet, Options, Testbed};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};

/// Counts live heap bytes: as requested by the program, and as glibc hands them out
/// (`malloc_usable_size`, which includes rounding up to its size classes).
struct Counting;

static REQUESTED: AtomicUsize = AtomicUsize::new(0);
static USABLE: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

fn usable(ptr: *mut u8) -> usize {
    // SAFETY: `ptr` was returned by the system allocator and is still live.
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            REQUESTED.fetch_add(layout.size(), Ordering::Relaxed);
            USABLE.fetch_add(usable(ptr), Ordering::Relaxed);
            BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            REQUESTED.fetch_add(layout.size(), Ordering::Relaxed);
            USABLE.fetch_add(usable(ptr), Ordering::Relaxed);
            BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size(), Ordering::Relaxed);
        USABLE.fetch_sub(usable(ptr), Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = usable(ptr);
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            REQUESTED.fetch_add(new_size, Ordering::Relaxed);
            REQUESTED.fetch_sub(layout.size(), Ordering::Relaxed);
            USABLE.fetch_add(usable(new), Ordering::Relaxed);
            USABLE.fetch_sub(before, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap at one moment.
#[derive(Clone, Copy, Debug)]
struct Heap {
    requested: usize,
    usable: usize,
    blocks: usize,
}

impl Heap {
    fn now() -> Heap {
        Heap {
            requested: REQUESTED.load(Ordering::Relaxed),
            usable: USABLE.load(Ordering::Relaxed),
            blocks: BLOCKS.load(Ordering::Relaxed),
        }
    }

    /// Growth since `earlier`: (bytes requested, bytes glibc holds for them). glibc puts an
    /// 8-byte header before every block, on top of the usable size.
    fn since(self, earlier: Heap) -> (f64, f64) {
        let requested = self.requested as f64 - earlier.requested as f64;
        let blocks = self.blocks as f64 - earlier.blocks as f64;
        let held = self.usable as f64 - earlier.usable as f64 + 8.0 * blocks;
        (requested, held)
    }
}

const WRK_SECONDS: u32 = 20;
const WRK_CONNECTIONS: u32 = 16;
const WRK_THREADS: u32 = 2;
const SEQUENTIAL_ROUNDS: usize = 50;
const WATCH_SAMPLES: usize = 40;
const KUBECTL_RUNS: usize = 3;
const HELD_SECONDS: u32 = 60;
const HELD_CONNECTIONS: u32 = 64;
const EVENT_CLIENTS: usize = 200;
/// The most Gantry's RSS may grow over the held load.
const RSS_GROWTH_BOUND_MIB: f64 = 64.0;
const RAW_LIST_RUNS: usize = 20;
const FULL_LIST_RUNS: usize = 3;
const SIGN_IN_ATTEMPTS: usize = 1_000;
const SIGN_IN_CONNECTIONS: usize = 50;

fn main() -> anyhow::Result<()> {
    // As the gantry binary does: its RSS is what this measures.
    gantry_server::serve::return_large_blocks_to_the_system();
    let args: Vec<String> = std::env::args().collect();
    if !common::under_cargo_bench(&args) {
        return Ok(());
    }
    common::init_logging("fleet");
    let default_fleet = common::workspace_root().join("deploy/fleets/scale.yaml");
    let fleet_path = args
        .iter()
        .position(|a| a == "--fleet")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| default_fleet.clone());
    let publish = fleet_path == default_fleet;
    let runtime = tokio::runtime::Runtime::new()?;
    let section = runtime.block_on(run(&fleet_path))?;
    println!("{section}");
    if publish {
        let path = common::write_section("## Fleet at scale", &section)?;
        eprintln!("wrote the Fleet at scale section of {}", path.display());
    } else {
        eprintln!("not the scale fleet: BENCHMARKS.md left alone");
    }
    Ok(())
}

async fn run(fleet_path: &Path) -> anyhow::Result<String> {
    let fleet = Fleet::from_file(fleet_path)?;
    let cluster_name = fleet.clusters.first().map(|c| c.name.as_str().to_string()).unwrap_or_default();
    tracing::info!("starting the fleet {} (the scale fleet takes about 4 minutes)", fleet_path.display());
    // Dropped on every way out of this function, a panic included: the testbed stops
    // all its processes (and the kernel kills them if this process dies).
    let bed = Testbed::start(&fleet, Options::default()).await?;
    let mut configs = Vec::new();
    for cluster in bed.clusters() {
        configs.push((cluster.name().to_string(), cluster.config().await?));
    }
    let admin_client = bed.clusters().first().ok_or_else(|| anyhow::anyhow!("empty fleet"))?.client().await?;

    // 1. Memory of the watch caches.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = Heap::now();
    let hub = Hub::new();
    let began = Instant::now();
    for (name, config) in configs {
        hub.connect(&name, config)?;
    }
    anyhow::ensure!(hub.wait_synced(Duration::from_secs(900)).await, "the caches did not sync within 15 minutes");
    let sync = began.elapsed();
    // Let the first watch events after the lists land, then read.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = Heap::now();
    let (total, total_held) = after.since(before);
    let (mut pods, mut nodes, mut pod_map, mut node_map) = (0usize, 0usize, (0.0, 0.0), (0.0, 0.0));
    for cluster in hub.clusters() {
        pods += cluster.pods.len();
        nodes += cluster.nodes.len();
        // A deep copy of a map costs what the map holds, less the interned strings
        // (namespace and node names), which the copy shares.
        let mark = Heap::now();
        let copy = cluster.pods.read(|m| m.clone());
        let grown = Heap::now().since(mark);
        drop(copy);
        pod_map = (pod_map.0 + grown.0, pod_map.1 + grown.1);
        let mark = Heap::now();
        let copy = cluster.nodes.read(|m| m.clone());
        let grown = Heap::now().since(mark);
        drop(copy);
        node_map = (node_map.0 + grown.0, node_map.1 + grown.1);
    }
    anyhow::ensure!(pods > 0 && nodes > 0, "nothing cached");
    tracing::info!("synced {pods} pods and {nodes} nodes in {:.1} s", sync.as_secs_f64());

    let server = Server::start(hub.clone()).await?;
    let http = reqwest::Client::new();
    let token = server.admin_token.clone();
    let overview_url = server.url("/api/v1/overview");
    let pods_url = server.url("/api/v1/pods?per_page=50");
    let overview: serde_json::Value =
        http.get(&overview_url).bearer_auth(&token).send().await?.error_for_status()?.json().await?;
    tracing::info!("overview: {} nodes, {} pods", overview["nodes"], overview["pods"]);
    anyhow::ensure!(overview["pods"].as_u64() == Some(pods as u64), "the overview does not count every pod");

    // 2. Under load.
    let load_before = load_average();
    let mut loaded = Vec::new();
    for (label, url) in [("GET /api/v1/overview", &overview_url), ("GET /api/v1/pods?per_page=50", &pods_url)] {
        wrk(&token, url, 3, WRK_CONNECTIONS).await?; // warm-up, discarded
        let result = wrk(&token, url, WRK_SECONDS, WRK_CONNECTIONS).await?;
        tracing::info!("{label}: {result:?}");
        loaded.push((label, result));
    }

    let load_after = load_average();

    // 6. Load held, with event-stream clients connected throughout.
    let page_url = server.url("/");
    let streams = open_event_streams(&server, EVENT_CLIENTS).await?;
    let rss_before = rss_mib();
    let mut held = Vec::new();
    for (label, url) in [
        ("GET /api/v1/overview", &overview_url),
        ("GET /api/v1/pods?per_page=50", &pods_url),
        ("GET / (the server-rendered overview)", &page_url),
    ] {
        let result = wrk(&token, url, HELD_SECONDS, HELD_CONNECTIONS).await?;
        tracing::info!("held, {label}: {result:?}");
        held.push((label, result));
    }
    let rss_after = rss_mib();
    let streams_open = streams.iter().filter(|s| !s.is_finished()).count();
    streams.iter().for_each(|s| s.abort());

    // 7. A sign-in storm.
    let storm = sign_in_storm(&server).await?;

    // 3. One request at a time, interleaved.
    let (mut page, mut list, mut summary) = (Vec::new(), Vec::new(), Vec::new());
    let mut page_bytes = 0;
    for _ in 0..SEQUENTIAL_ROUNDS {
        let began = Instant::now();
        let response = http
            .get(server.url("/"))
            .bearer_auth(&token)
            .header(http::header::ACCEPT, "text/html")
            .send()
            .await?
            .error_for_status()?;
        let body = response.text().await?;
        page.push(began.elapsed());
        anyhow::ensure!(body.contains("data-testid=\"clusters-count\""), "the overview page rendered no data");
        page_bytes = body.len();
        for (url, into) in [(&pods_url, &mut list), (&overview_url, &mut summary)] {
            let began = Instant::now();
            http.get(url).bearer_auth(&token).send().await?.error_for_status()?.bytes().await?;
            into.push(began.elapsed());
        }
    }

    // The read models alone, in process: what a request costs before HTTP, the token check
    // and JSON.
    let viewer = gantry_cluster::Viewer::everything();
    let first_page = ListQuery { per_page: Some(50), ..Default::default() };
    let (mut overview_query, mut pods_query) = (Vec::new(), Vec::new());
    for _ in 0..SEQUENTIAL_ROUNDS {
        let began = Instant::now();
        std::hint::black_box(queries::overview(&hub, &viewer));
        overview_query.push(began.elapsed());
        let began = Instant::now();
        std::hint::black_box(queries::pods(&hub, &viewer, &first_page));
        pods_query.push(began.elapsed());
    }

    // 4. Watch to browser.
    let watch = watch_latency(&server, &admin_client).await?;

    // 5. kubectl on the same cluster.
    let mut kubectl = Vec::new();
    let mut kubectl_lines = 0;
    for _ in 0..KUBECTL_RUNS {
        let mut command = bed.kubectl();
        command.args(["--context", &cluster_name, "get", "pods", "-A"]);
        let (took, lines) = tokio::task::spawn_blocking(move || time_command(command)).await??;
        kubectl.push(took);
        kubectl_lines = lines;
    }
    // The same questions to both: 50 pods, and every pod.
    let pods_api: Api<Pod> = Api::all(admin_client.clone());
    let mut raw_page = Vec::new();
    for _ in 0..RAW_LIST_RUNS {
        let began = Instant::now();
        std::hint::black_box(pods_api.list(&ListParams::default().limit(50)).await?);
        raw_page.push(began.elapsed());
    }
    let (mut raw_all, mut gantry_all) = (Vec::new(), Vec::new());
    let mut gantry_all_rows = 0;
    for _ in 0..FULL_LIST_RUNS {
        let began = Instant::now();
        let all = pods_api.list(&ListParams::default()).await?;
        raw_all.push(began.elapsed());
        anyhow::ensure!(all.items.len() == pods, "the raw list holds {} pods, not {pods}", all.items.len());
        let began = Instant::now();
        gantry_all_rows = all_pages(&http, &server, &token).await?;
        gantry_all.push(began.elapsed());
    }
    drop(server);
    drop(hub);
    drop(bed);

    // The report.
    let per = |bytes: f64, count: usize| bytes / count.max(1) as f64;
    let kib = |bytes: f64| format!("{:.2} KiB", bytes / 1024.0);
    let mib = |bytes: f64| format!("{:.1} MiB", bytes / (1024.0 * 1024.0));
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let per_pod = per(total, pods);
    let list_p50 = median(&list);
    let kubectl_median = median(&kubectl);
    let mut out = vec![
        "## Fleet at scale".to_string(),
        String::new(),
        format!(
            "Measured {} with `cargo bench -p gantry --bench fleet` (release build; or `scripts/bench.sh`) on {}. \
             Fleet `deploy/fleets/scale.yaml`: one cluster with {nodes} nodes and {pods} pods, in the testbed \
             (Kubernetes {} with kwok {}, its control plane on the same cores), watched by Gantry in the same \
             process as the benchmark. The 1-minute load average was {load_before} before the load tests and \
             {load_after} after them.",
            common::today(),
            common::machine(),
            gantry_testbed::K8S_VERSION,
            gantry_testbed::KWOK_VERSION,
        ),
        String::new(),
        "| Measure | Result | Goal | |".to_string(),
        "|---|---|---|---|".to_string(),
        format!(
            "| Initial sync of every watch (paged lists of {pods} pods, {nodes} nodes, …) | {:.1} s | | |",
            sync.as_secs_f64()
        ),
        format!(
            "| Heap per cached pod: everything the hub holds for the cluster (all nine kinds, keys, ordered maps, running totals, interned names) ÷ pods | **{}** ({} as glibc holds it) | ≤ 4 KiB (Go informers: ~36 KiB) | {} |",
            kib(per_pod),
            kib(per(total_held, pods)),
            verdict(per_pod <= 4096.0)
        ),
        format!(
            "| &nbsp;&nbsp;total heap growth from connect to synced | {} ({} as held by glibc) | | |",
            mib(total),
            mib(total_held)
        ),
        format!(
            "| &nbsp;&nbsp;pod map alone (deep copy: keys, summaries, table), per pod | {} ({}) | | |",
            kib(per(pod_map.0, pods)),
            kib(per(pod_map.1, pods))
        ),
        format!(
            "| &nbsp;&nbsp;node map alone (deep copy), per node | {} ({}) | | |",
            kib(per(node_map.0, nodes)),
            kib(per(node_map.1, nodes))
        ),
    ];
    for (label, r) in &loaded {
        out.push(format!(
            "| `{label}` under load (`wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s --timeout 10s`, admin token): p50 / p99, throughput, Gantry's CPU per request | {} / **{}**, {:.0} req/s, {} CPU{} | p99 ≤ 50 ms | {} |",
            ms(r.p50),
            ms(r.p99),
            r.requests_per_second,
            ms(r.cpu_per_request),
            if r.errors.is_empty() { String::new() } else { format!(" ({})", r.errors) },
            verdict(r.p99 <= Duration::from_millis(50) && r.errors.is_empty())
        ));
    }
    out.extend([
        format!(
            "| Server-rendered overview page `GET /` ({} KiB of HTML), one at a time: median / p95 of {SEQUENTIAL_ROUNDS} | {} / {} | | |",
            page_bytes / 1024,
            ms(median(&page)),
            ms(quantile(&page, 0.95))
        ),
        format!(
            "| `GET /api/v1/overview`, one at a time: median / p95 of {SEQUENTIAL_ROUNDS} | {} / {} | | |",
            ms(median(&summary)),
            ms(quantile(&summary, 0.95))
        ),
        format!(
            "| `GET /api/v1/pods?per_page=50`, one at a time: median / p95 of {SEQUENTIAL_ROUNDS} | {} / {} | | |",
            ms(list_p50),
            ms(quantile(&list, 0.95))
        ),
        format!(
            "| &nbsp;&nbsp;`queries::overview` alone, in process: fastest / median / p95 of {SEQUENTIAL_ROUNDS} | {} / {} / {} | | |",
            ms(quantile(&overview_query, 0.0)),
            ms(median(&overview_query)),
            ms(quantile(&overview_query, 0.95))
        ),
        format!(
            "| &nbsp;&nbsp;`queries::pods` (first page of 50) alone, in process: fastest / median / p95 of {SEQUENTIAL_ROUNDS} | {} / {} / {} | | |",
            ms(quantile(&pods_query, 0.0)),
            ms(median(&pods_query)),
            ms(quantile(&pods_query, 0.95))
        ),
        format!(
            "| Watch to browser: pod label patched → `change` event at an SSE client, p50 / p95 of {} ({} missed) | {} / **{}** | p95 ≤ 1 s | {} |",
            watch.samples.len(),
            watch.missed,
            ms(median(&watch.samples)),
            ms(quantile(&watch.samples, 0.95)),
            verdict(quantile(&watch.samples, 0.95) <= Duration::from_secs(1) && watch.missed == 0)
        ),
        format!(
            "| `kubectl get pods -A` ({kubectl_lines} lines), median of {KUBECTL_RUNS} | {:.2} s (runs: {}) | | |",
            kubectl_median.as_secs_f64(),
            kubectl.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "| Raw apiserver LIST of 50 pods (`limit=50`, kube-rs, cluster admin), median of {RAW_LIST_RUNS}, against Gantry's first page of 50 (median above) | {} against {}: Gantry **{:.1}×** faster | | |",
            ms(median(&raw_page)),
            ms(list_p50),
            median(&raw_page).as_secs_f64() / list_p50.as_secs_f64().max(1e-9)
        ),
        format!(
            "| Raw apiserver LIST of every pod ({pods}, one request, kube-rs), median of {FULL_LIST_RUNS}, against every page of Gantry's list ({gantry_all_rows} rows, {} requests of {}) | {} against {}: Gantry **{:.1}×** faster | | |",
            gantry_all_rows.div_ceil(ListQuery::MAX_PER_PAGE),
            ListQuery::MAX_PER_PAGE,
            ms(median(&raw_all)),
            ms(median(&gantry_all)),
            median(&raw_all).as_secs_f64() / median(&gantry_all).as_secs_f64().max(1e-9)
        ),
        format!(
            "| `kubectl get pods -A` ÷ Gantry's pod list (one page of 50): **{:.0}×**, but not the same question: kubectl lists all {pods} pods and formats a table in a new process; the two rows above ask both the same thing | | | |",
            kubectl_median.as_secs_f64() / list_p50.as_secs_f64().max(1e-9)
        ),
        String::new(),
        format!(
            "**Load held** ({HELD_SECONDS} s of `wrk -t{WRK_THREADS} -c{HELD_CONNECTIONS} --timeout 10s` on each, one after another, admin token, while {EVENT_CLIENTS} clients held `/api/v1/events` open throughout: {streams_open} of them were still connected at the end)."
        ),
        String::new(),
        "| Target | Requests | Errors | p50 / p99 | Throughput | Gantry's CPU per request |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ]);
    for (label, r) in &held {
        out.push(format!(
            "| `{label}` | {} | {} | {} / **{}** | {:.0} req/s | {} |",
            r.requests,
            if r.errors.is_empty() { "0".to_string() } else { r.errors.clone() },
            ms(r.p50),
            ms(r.p99),
            r.requests_per_second,
            ms(r.cpu_per_request)
        ));
    }
    let held_errors = held.iter().any(|(_, r)| !r.errors.is_empty());
    let rss_growth = rss_after - rss_before;
    out.extend([
        String::new(),
        format!(
            "Errors: {} ({}). Gantry's RSS (this process: Gantry and the benchmark's clients; the cluster runs in other processes): {rss_before:.0} MiB before, {rss_after:.0} MiB after, growth {rss_growth:+.0} MiB against a bound of {RSS_GROWTH_BOUND_MIB:.0} MiB ({}).",
            if held_errors { "some" } else { "none" },
            verdict(!held_errors && streams_open == EVENT_CLIENTS),
            verdict(rss_growth <= RSS_GROWTH_BOUND_MIB)
        ),
        String::new(),
        format!(
            "**Sign-in storm**: {SIGN_IN_ATTEMPTS} sign-ins with wrong passwords (for 20 names: the two real users and 18 that do not exist) from {SIGN_IN_CONNECTIONS} connections at once, in {:.1} s, while a signed-in user (a deployer's token) asked for the overview one request after another: {} answers, p50 / p99 **{} / {}**. Failures counted: {} (by status: {}); any other answer: {}. RSS {:.0} MiB before, {:.0} MiB after ({}).",
            storm.took.as_secs_f64(),
            storm.user_latencies.len(),
            ms(median(&storm.user_latencies)),
            ms(quantile(&storm.user_latencies, 0.99)),
            storm.refused,
            storm.by_status,
            storm.other,
            storm.rss_before,
            storm.rss_after,
            verdict(storm.refused == SIGN_IN_ATTEMPTS && storm.rss_after - storm.rss_before <= RSS_GROWTH_BOUND_MIB)
        ),
        String::new(),
        "Method: the heap figures come from a counting global allocator in the benchmark binary (live bytes the \
         program asked for; in brackets what glibc holds for them, size-class rounding and block headers included), \
         read before the hub connects and after it has synced, so they charge everything Gantry keeps for the \
         cluster to its pods; latencies under load are wrk's, the others are timed around whole responses by a \
         client in the same process, and the `kubectl` runs use the same cluster, one after another with nothing else \
         of this benchmark running."
            .to_string(),
        String::new(),
    ]);
    Ok(out.join("\n"))
}

#[derive(Debug)]
struct WrkResult {
    p50: Duration,
    p99: Duration,
    requests_per_second: f64,
    requests: u64,
    /// wrk's socket errors and non-2xx responses, if any.
    errors: String,
    /// CPU time this process (Gantry) spent per request served, whatever else the machine
    /// was doing: the cost that bounds throughput, and so latency under load.
    cpu_per_request: Duration,
}

async fn wrk(token: &str, url: &str, seconds: u32, connections: u32) -> anyhow::Result<WrkResult> {
    let cpu_before = cpu_time();
    let output = tokio::process::Command::new("wrk")
        .args([
            format!("-t{WRK_THREADS}"),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            "--latency".into(),
            // Slow answers stay in the distribution instead of becoming "timeouts".
            "--timeout".into(),
            "10s".into(),
            "-H".into(),
            format!("Authorization: Bearer {token}"),
            url.into(),
        ])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("running wrk (install it: apt-get install -y wrk): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let cpu = cpu_time().saturating_sub(cpu_before);
    anyhow::ensure!(output.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    let mut result = parse_wrk(&text).ok_or_else(|| anyhow::anyhow!("could not read wrk's output:\n{text}"))?;
    result.cpu_per_request = cpu / u32::try_from(result.requests.max(1)).unwrap_or(u32::MAX);
    Ok(result)
}

/// User and system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The 1-minute load average, for the record: how busy the shared machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let duration = |s: &str| -> Option<Duration> {
        let (number, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
        let value: f64 = number.parse().ok()?;
        let seconds = match unit {
            "us" => value / 1e6,
            "ms" => value / 1e3,
            "s" => value,
            "m" => value * 60.0,
            _ => return None,
        };
        Some(Duration::from_secs_f64(seconds))
    };
    let percentile = |p: &str| {
        text.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(p)).then(|| words.next().and_then(duration)).flatten()
        })
    };
    let requests_per_second =
        text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:").and_then(|v| v.trim().parse().ok()))?;
    let errors = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Socket errors") || l.starts_with("Non-2xx"))
        .collect::<Vec<_>>()
        .join("; ");
    let requests = text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        let count = words.next()?.parse().ok()?;
        (words.next() == Some("requests")).then_some(count)
    })?;
    Some(WrkResult {
        p50: percentile("50%")?,
        p99: percentile("99%")?,
        requests_per_second,
        requests,
        errors,
        cpu_per_request: Duration::ZERO,
    })
}

struct Watch {
    samples: Vec<Duration>,
    missed: usize,
}

/// Patches a label on one pod, again and again, and times each patch's return to the first
/// `change` event naming pods that reaches an SSE client after it.
async fn watch_latency(server: &Server, client: &kube::Client) -> anyhow::Result<Watch> {
    let response = reqwest::Client::new()
        .get(server.url("/api/v1/events"))
        .bearer_auth(&server.admin_token)
        .send()
        .await?
        .error_for_status()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, String)>();
    let reader = tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        let mut event = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            let arrived = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line = buffer[..end].trim_end_matches('\r').to_string();
                buffer.drain(..=end);
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_string();
                } else if let Some(data) = line.strip_prefix("data:")
                    && event == "change"
                    && tx.send((arrived, data.trim().to_string())).is_err()
                {
                    return;
                }
            }
        }
    });

    // A pod the bench owns nothing of: the first one the cache holds.
    let hub = &server.hub;
    let cluster = hub.clusters().into_iter().next().ok_or_else(|| anyhow::anyhow!("no cluster"))?;
    let (namespace, name) = cluster
        .pods
        .read(|pods| pods.keys().min().map(|k| (k.namespace.to_string(), k.name.to_string())))
        .ok_or_else(|| anyhow::anyhow!("no pod"))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    tracing::info!("watch latency: patching pod {namespace}/{name}");
    let (mut samples, mut missed) = (Vec::new(), 0);
    for i in 0..WATCH_SAMPLES + 2 {
        // Spread the patches over the stream's 150 ms coalescing window.
        tokio::time::sleep(Duration::from_millis(300 + (i as u64 * 37) % 200)).await;
        while rx.try_recv().is_ok() {}
        let patch = serde_json::json!({ "metadata": { "labels": { "gantry.dev/bench-seq": i.to_string() } } });
        pods.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let returned = Instant::now();
        let arrived = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some((at, data)) = rx.recv().await {
                if data.contains("\"pod\"") {
                    return Some(at);
                }
            }
            None
        })
        .await;
        if i < 2 {
            continue; // warm-up
        }
        match arrived {
            Ok(Some(at)) => samples.push(at.saturating_duration_since(returned)),
            _ => missed += 1,
        }
    }
    reader.abort();
    Ok(Watch { samples, missed })
}

/// Runs a command to completion, reading its output; returns the wall time and the number
/// of output lines.
fn time_command(mut command: Command) -> anyhow::Result<(Duration, usize)> {
    let began = Instant::now();
    let output = command.stdout(Stdio::piped()).stderr(Stdio::piped()).output()?;
    let took = began.elapsed();
    anyhow::ensure!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok((took, output.stdout.iter().filter(|b| **b == b'\n').count()))
}

/// Opens `count` event streams (`/api/v1/events`) as the admin, each read
/// to the end by its own task; a task that finishes is a stream that closed.
async fn open_event_streams(server: &Server, count: usize) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let client = reqwest::Client::new();
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let response = client
            .get(server.url("/api/v1/events"))
            .bearer_auth(&server.admin_token)
            .send()
            .await?
            .error_for_status()?;
        streams.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            while let Some(Ok(_)) = body.next().await {}
        }));
    }
    Ok(streams)
}

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Reads every page of Gantry's pod list, at the most rows a page holds;
/// returns the rows read.
async fn all_pages(http: &reqwest::Client, server: &Server, token: &str) -> anyhow::Result<usize> {
    let mut rows = 0;
    for page in 1.. {
        let url = server.url(&format!("/api/v1/pods?per_page={}&page={page}", ListQuery::MAX_PER_PAGE));
        let body: serde_json::Value = http.get(url).bearer_auth(token).send().await?.error_for_status()?.json().await?;
        let items = body["items"].as_array().map_or(0, Vec::len);
        rows += items;
        let total = body["total"].as_u64().unwrap_or(0) as usize;
        if items == 0 || rows >= total {
            break;
        }
    }
    Ok(rows)
}

struct Storm {
    took: Duration,
    /// Sign-ins refused (401, 429), all of them wrong passwords.
    refused: usize,
    by_status: String,
    /// Answers that were neither a refusal nor a transport success (5xx, errors).
    other: usize,
    user_latencies: Vec<Duration>,
    rss_before: f64,
    rss_after: f64,
}

/// Wrong passwords from many connections at once, while a signed-in user
/// keeps asking for the overview.
async fn sign_in_storm(server: &Server) -> anyhow::Result<Storm> {
    let rss_before = rss_mib();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let user = {
        let (stop, url, token) = (stop.clone(), server.url("/api/v1/overview"), server.deployer_token.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                if client.get(&url).bearer_auth(&token).send().await.is_ok_and(|r| r.status().is_success()) {
                    latencies.push(began.elapsed());
                }
            }
            latencies
        })
    };
    let names: Vec<String> =
        ["admin", "deployer"].into_iter().map(str::to_string).chain((0..18).map(|i| format!("nobody-{i}"))).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(SIGN_IN_CONNECTIONS).build()?;
    let began = Instant::now();
    let statuses: Vec<Option<u16>> = futures::stream::iter(0..SIGN_IN_ATTEMPTS)
        .map(|i| {
            let (client, url) = (client.clone(), server.url("/api/v1/login"));
            let body =
                serde_json::json!({ "username": names[i % names.len()], "password": format!("wrong-password-{i}") });
            async move { client.post(url).json(&body).send().await.ok().map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(SIGN_IN_CONNECTIONS)
        .collect()
        .await;
    let took = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let user_latencies = user.await?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for status in &statuses {
        *counts.entry(status.map_or_else(|| "no answer".to_string(), |s| s.to_string())).or_default() += 1;
    }
    let refused = statuses.iter().filter(|s| matches!(s, Some(401 | 429))).count();
    Ok(Storm {
        took,
        refused,
        by_status: counts.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", "),
        other: statuses.len() - refused,
        user_latencies,
        rss_before,
        rss_after: rss_mib(),
    })
}
