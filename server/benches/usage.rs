//! GPU usage history at the scale fleet's size: a program that prints numbers (not a timed test).
//!
//!   cargo bench -p gantry --bench usage                # rewrites the `## GPU usage history` section
//!   cargo bench -p gantry --bench usage -- --days 2    # a shorter history, for a trial; prints only
//!
//! 1. Simulates 30 days of the GPUs of `deploy/fleets/scale.yaml` (its GPU node pools) with a
//!    fixed seed: serving deployments that stay all month (rolling updates, scaling, pods
//!    moved off reclaimed spot nodes), training jobs of 1 to 48 hours, short jobs, notebooks on
//!    MIG slices of A100 nodes repartitioned each working day, and spot nodes reclaimed and
//!    replaced a few times a day.
//! 2. Writes the ledger through Gantry's own code: `AppState::record_snapshot_at`, `roll_up_at`
//!    and `apply_retention_at`, the functions the background loop runs, with the clock and the
//!    watch caches' snapshot as parameters. First into SQLite, then into PostgreSQL (a new
//!    database on GANTRY_TEST_POSTGRES_URL; skipped without it). The CPU these passes take is
//!    measured (the process's getrusage; PostgreSQL's backends from /proc).
//! 3. Asks `GET /api/v1/allocation?window=30d&aggregate=team` and
//!    `…&aggregate=workload&step=1d` over HTTP of a Gantry running in this process, on each.
//! 4. Loads the equivalent series into Debian's Prometheus (`promtool` backfill) and asks it the
//!    same two questions with `sum_over_time` and `query_range`.
//!
//! GANTRY_BENCH_KEEP_DB=1 keeps the databases for a look afterwards (the SQLite file is copied
//! to /tmp/gantry-usage-bench.sqlite; the PostgreSQL database is not dropped).

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, median, ms, quantile};
use gantry_cluster::Hub;
use gantry_cluster::ledger::{HeldGpus, LedgerSnapshot, OfferedGpus};
use gantry_domain::cost::{GpuPrice, Usd};
use gantry_domain::gpu::CapacityType;
use gantry_domain::usage::{Dimension, MS_PER_DAY, MS_PER_HOUR, Span, mig_milli_gpus};
use gantry_service::AppState;
use gantry_service::ledger::LedgerWriter;
use gantry_store::{Backend, Store, Tier, UsageFilter};
use gantry_testbed::{Fleet, Prometheus};

const HEADING: &str = "## GPU usage history";
const DAYS: i64 = 30;
const SEED: u64 = 12;
const CLUSTER: &str = "scale";
const MINUTE: i64 = 60_000;
const SECOND: i64 = 1_000;

/// The simulation starts this long before the ledger, so the ledger's first day already has
/// jobs of every age running.
const WARM_UP: i64 = 2 * MS_PER_DAY;
/// The bulk of the month is recorded with one pass every this long, plus one at each node
/// change and at the start of each pod shorter than this (so every pod is seen holding its
/// GPUs); every interval still starts and ends at its own time (bind and finish times are in
/// the snapshot).
const BULK_PASS: i64 = 15 * MINUTE;
/// Rollups in the bulk: every this long (each pass redoes the hours since the watermark).
const BULK_ROLL_UP: i64 = 6 * MS_PER_HOUR;
/// The last hours are recorded at the background loop's own cadence: a pass 0.5 s after a
/// change, else every 5 s; rollups every 60 s.
const LIVE_HOURS: i64 = 1;
const LIVE_PASS: i64 = 5 * SECOND;
const LIVE_SETTLE: i64 = 500;
const LIVE_ROLL_UP: i64 = MINUTE;

const TEAMS: [&str; 8] = ["vision", "nlp", "speech", "recsys", "search", "ads", "research", "robotics"];
const SERVICES: [&str; 12] =
    ["api", "embed", "rank", "detect", "asr", "tts", "chat", "rerank", "ocr", "caption", "translate", "moderate"];
const DEPLOYMENTS: usize = 120;
const TRAINING_PER_HOUR: f64 = 14.0;
const SHORT_PER_HOUR: f64 = 80.0;
const NOTEBOOKS_PER_HOUR: f64 = 8.0;
const SPOT_RECLAIMS_PER_DAY: f64 = 4.0;
/// A100 nodes kept for notebooks: MIG (16 × 3g.40gb) on working days 08:00–20:00 UTC.
const INTERACTIVE_NODES: usize = 4;
const MIG_PROFILE: &str = "3g.40gb";
const MIG_SLICES: i64 = 16;

/// HTTP questions: warm-up calls, then timed ones.
const WARM_UP_CALLS: usize = 2;
const CALLS: usize = 20;
const PROMETHEUS_CALLS: usize = 7;
/// Prometheus's samples: one a minute while a workload holds GPUs, 3 hours earlier than the
/// ledger (backfilling the range of Prometheus's head block is documented as unsafe).
const SAMPLE_STEP: i64 = MINUTE;
const PROMETHEUS_SHIFT: i64 = 3 * MS_PER_HOUR;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !common::under_cargo_bench(&args) {
        return Ok(());
    }
    let days = match args.iter().position(|a| a == "--days") {
        Some(i) => args.get(i + 1).and_then(|d| d.parse().ok()).ok_or_else(|| anyhow::anyhow!("--days N"))?,
        None => DAYS,
    };
    common::init_logging("usage");
    let runtime = tokio::runtime::Runtime::new()?;
    let section = runtime.block_on(run(days))?;
    println!("{section}");
    if days == DAYS {
        let path = common::write_section(HEADING, &section)?;
        eprintln!("wrote the GPU usage history section of {}", path.display());
    } else {
        eprintln!("a {days}-day trial: BENCHMARKS.md left as it was");
    }
    Ok(())
}

async fn run(days: i64) -> anyhow::Result<String> {
    let began = Instant::now();
    let end = gantry_store::now_ms() / MINUTE * MINUTE;
    let start = end - days * MS_PER_DAY;
    let fleet = Fleet::from_file(common::workspace_root().join("deploy/fleets/scale.yaml"))?;
    let sim = simulate(&fleet, start, end);
    tracing::info!(
        "simulated {days} days: {} pods, {} events, {} nodes ever",
        sim.pods.len(),
        sim.events.len(),
        sim.nodes.len()
    );

    let sqlite = on_backend(&sim, None).await?;
    let postgres = match gantry_store::testing::postgres_database_url().await {
        Some(url) => Some(on_backend(&sim, Some(url)).await?),
        None => None,
    };
    let prometheus = prometheus(&sim).await?;
    Ok(report(&sim, days, &sqlite, postgres.as_ref(), &prometheus, began.elapsed()))
}

// ---------------------------------------------------------------------------------------------
// The simulated month
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast and the same everywhere, so the seed fixes the month.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi], both included.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    /// Exponentially distributed with this mean: the gaps of a Poisson process.
    fn exp(&mut self, mean: f64) -> i64 {
        (-mean * (1.0 - self.unit()).ln()) as i64
    }

    fn pick<T: Copy>(&mut self, weighted: &[(T, f64)]) -> T {
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (value, weight) in weighted {
            if x < *weight {
                return *value;
            }
            x -= weight;
        }
        weighted[weighted.len() - 1].0
    }
}

struct Pool {
    name: String,
    model: String,
    capacity_type: CapacityType,
    gpus: i64,
}

struct Node {
    name: String,
    pool: usize,
    created: i64,
    removed: Option<i64>,
    free: i64,
    /// MIG slices free while the node is partitioned; None in whole-GPU mode.
    slices_free: Option<i64>,
    pods: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Serving,
    Training,
    Short,
    Notebook,
}

struct Pod {
    uid: String,
    namespace: usize,
    name: String,
    node: usize,
    workload: String,
    milli: i64,
    mig: Option<String>,
    start: i64,
    end: Option<i64>,
    kind: Kind,
    /// The deployment or job it belongs to.
    owner: usize,
}

#[derive(Clone, Copy, Debug)]
enum Change {
    Bound(usize),
    Ended(usize),
    NodeUp(usize),
    NodeDown(usize),
    Resized(usize, i64),
}

#[derive(Clone, Copy, Debug)]
struct Event {
    at: i64,
    change: Change,
}

struct Deployment {
    name: String,
    namespace: usize,
    pool: usize,
    base: i64,
    replicas: i64,
    revision: u32,
    live: Vec<usize>,
}

struct Job {
    name: String,
    namespace: usize,
    kind: Kind,
    pool: usize,
    pods: i64,
    gpus: i64,
    duration: i64,
    submitted: i64,
    ends: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    TrainingArrives,
    ShortArrives,
    NotebookArrives,
    SpotReclaim,
    TryJob(usize),
    RestartJobPod(usize),
    EndPod(usize),
    Rollout(usize),
    ReplacePod(usize, usize),
    Scale(usize),
    Reschedule(usize),
    NodeUp(usize, u32),
    MigOn(usize),
    MigOff(usize),
}

/// The month: what happened, in order, and what it amounts to.
struct Sim {
    /// The ledger's window [start, end].
    start: i64,
    end: i64,
    pools: Vec<Pool>,
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    /// (namespace, owning team; None for one no team owns).
    namespaces: Vec<(String, Option<String>)>,
    events: Vec<Event>,
    deployments: Vec<Deployment>,
    jobs: Vec<Job>,
    rejected_jobs: usize,
}

struct Gen {
    sim: Sim,
    rng: Rng,
    queue: BinaryHeap<Reverse<(i64, u64, Action)>>,
    serial: u64,
    /// Alive nodes of each pool that take any pod (interactive ones excepted).
    schedulable: Vec<Vec<usize>>,
    interactive: Vec<usize>,
    replacements: u32,
    pod_serial: u64,
}

fn simulate(fleet: &Fleet, start: i64, end: i64) -> Sim {
    let cluster = &fleet.clusters[0];
    let pools: Vec<Pool> = cluster
        .node_pools
        .iter()
        .filter_map(|p| {
            let gpu = p.gpu.as_ref()?;
            Some(Pool {
                name: p.name.as_str().to_string(),
                model: gpu.model.as_str().to_string(),
                capacity_type: match p.capacity_type {
                    gantry_testbed::fleet::CapacityType::Spot => CapacityType::Spot,
                    gantry_testbed::fleet::CapacityType::OnDemand => CapacityType::OnDemand,
                },
                gpus: i64::from(gpu.count),
            })
        })
        .collect();
    let counts: Vec<u32> = cluster.node_pools.iter().filter(|p| p.gpu.is_some()).map(|p| p.count).collect();
    let mut namespaces: Vec<(String, Option<String>)> = Vec::new();
    for team in TEAMS {
        namespaces.push((format!("{team}-serve"), Some(team.to_string())));
        namespaces.push((format!("{team}-train"), Some(team.to_string())));
    }
    namespaces.push(("sandbox".to_string(), None));
    let sim = Sim {
        start,
        end,
        pools,
        nodes: Vec::new(),
        pods: Vec::new(),
        namespaces,
        events: Vec::new(),
        deployments: Vec::new(),
        jobs: Vec::new(),
        rejected_jobs: 0,
    };
    let schedulable = vec![Vec::new(); sim.pools.len()];
    let mut g = Gen {
        sim,
        rng: Rng(SEED),
        queue: BinaryHeap::new(),
        serial: 0,
        schedulable,
        interactive: Vec::new(),
        replacements: 0,
        pod_serial: 0,
    };
    let t0 = start - WARM_UP;
    for (pool, count) in counts.iter().enumerate() {
        for i in 0..*count {
            let name = format!("{}-{i:03}", g.sim.pools[pool].name);
            let interactive = g.sim.pools[pool].model.contains("A100") && (i as usize) < INTERACTIVE_NODES;
            g.add_node(t0, pool, name, interactive);
        }
    }
    g.deploy(t0);
    g.after_gap(t0, (MS_PER_HOUR as f64 / TRAINING_PER_HOUR) as i64, Action::TrainingArrives);
    g.after_gap(t0, (MS_PER_HOUR as f64 / SHORT_PER_HOUR) as i64, Action::ShortArrives);
    g.after_gap(t0, (MS_PER_HOUR as f64 / NOTEBOOKS_PER_HOUR) as i64, Action::NotebookArrives);
    g.after_gap(t0, (MS_PER_DAY as f64 / SPOT_RECLAIMS_PER_DAY) as i64, Action::SpotReclaim);
    let mut day = t0 - t0.rem_euclid(MS_PER_DAY);
    while day < end {
        if weekday(day) < 5 && day + 8 * MS_PER_HOUR >= t0 {
            for &node in &g.interactive.clone() {
                g.after_between(day + 8 * MS_PER_HOUR, 0, 20, MINUTE, Action::MigOn(node));
                g.after_between(day + 20 * MS_PER_HOUR, 0, 20, MINUTE, Action::MigOff(node));
            }
        }
        day += MS_PER_DAY;
    }
    while let Some(Reverse((at, _, action))) = g.queue.pop() {
        if at > end {
            break;
        }
        g.act(at, action);
    }
    g.sim.events.sort_by_key(|e| e.at);
    g.sim
}

/// 0 for Monday … 6 for Sunday (1970-01-01 was a Thursday).
fn weekday(ms: i64) -> i64 {
    (ms.div_euclid(MS_PER_DAY) + 3).rem_euclid(7)
}

impl Gen {
    fn at(&mut self, at: i64, action: Action) {
        self.serial += 1;
        self.queue.push(Reverse((at, self.serial, action)));
    }

    /// `action` after an exponential gap of mean `mean` (the next arrival of a Poisson process).
    fn after_gap(&mut self, t: i64, mean: i64, action: Action) {
        let gap = self.rng.exp(mean as f64);
        self.at(t + gap, action);
    }

    /// `action` after lo..=hi units.
    fn after_between(&mut self, t: i64, lo: i64, hi: i64, unit: i64, action: Action) {
        let gap = self.rng.range(lo, hi) * unit;
        self.at(t + gap, action);
    }

    fn event(&mut self, at: i64, change: Change) {
        self.sim.events.push(Event { at, change });
    }

    fn add_node(&mut self, t: i64, pool: usize, name: String, interactive: bool) -> usize {
        let id = self.sim.nodes.len();
        self.sim.nodes.push(Node {
            name,
            pool,
            created: t,
            removed: None,
            free: self.sim.pools[pool].gpus,
            slices_free: None,
            pods: Vec::new(),
        });
        if interactive {
            self.interactive.push(id);
        } else {
            self.schedulable[pool].push(id);
        }
        self.event(t, Change::NodeUp(id));
        id
    }

    /// Best fit, as a bin-packing scheduler would: the node with the fewest free GPUs that fit.
    fn place(&mut self, pool: usize, gpus: i64) -> Option<usize> {
        let mut best: Option<(i64, usize)> = None;
        for &n in &self.schedulable[pool] {
            let free = self.sim.nodes[n].free;
            if free >= gpus && best.is_none_or(|(f, _)| free < f) {
                best = Some((free, n));
                if free == gpus {
                    break;
                }
            }
        }
        let (_, node) = best?;
        self.sim.nodes[node].free -= gpus;
        Some(node)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_pod(
        &mut self,
        t: i64,
        namespace: usize,
        name: String,
        node: usize,
        workload: String,
        milli: i64,
        mig: Option<String>,
        kind: Kind,
        owner: usize,
    ) -> usize {
        let id = self.sim.pods.len();
        let uid = format!("{}/{name}@{t}", self.sim.namespaces[namespace].0);
        self.sim.pods.push(Pod { uid, namespace, name, node, workload, milli, mig, start: t, end: None, kind, owner });
        self.sim.nodes[node].pods.push(id);
        self.event(t, Change::Bound(id));
        id
    }

    fn end_pod(&mut self, t: i64, pod: usize) {
        if self.sim.pods[pod].end.is_some() {
            return;
        }
        self.sim.pods[pod].end = Some(t);
        let (node, milli, kind, owner) = {
            let p = &self.sim.pods[pod];
            (p.node, p.milli, p.kind, p.owner)
        };
        let n = &mut self.sim.nodes[node];
        n.pods.retain(|&p| p != pod);
        match n.slices_free.as_mut() {
            Some(slices) if kind == Kind::Notebook => *slices += 1,
            _ => n.free += milli / 1000,
        }
        if kind == Kind::Serving {
            self.sim.deployments[owner].live.retain(|&p| p != pod);
        }
        self.event(t, Change::Ended(pod));
    }

    fn next_pod_name(&mut self, prefix: &str) -> String {
        self.pod_serial += 1;
        format!("{prefix}-{:05x}", self.pod_serial % 0x100000)
    }

    fn deploy(&mut self, t: i64) {
        let pools: Vec<(usize, f64)> = self
            .sim
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let weight = match (p.model.contains("H100"), p.model.contains("A100"), p.capacity_type) {
                    (true, _, CapacityType::Spot) => 0.25,
                    (true, _, _) => 0.15,
                    (_, true, _) => 0.35,
                    _ => 0.25,
                };
                (i, weight)
            })
            .collect();
        for i in 0..DEPLOYMENTS {
            let team = self.rng.range(0, TEAMS.len() as i64 - 1) as usize;
            let service = SERVICES[self.rng.range(0, SERVICES.len() as i64 - 1) as usize];
            let pool = self.rng.pick(&pools);
            let replicas = self.rng.range(2, 40);
            self.sim.deployments.push(Deployment {
                name: format!("{}-{service}-{i}", TEAMS[team]),
                namespace: 2 * team,
                pool,
                base: replicas,
                replicas,
                revision: 1,
                live: Vec::new(),
            });
            self.fill(t, i);
            self.after_between(t, 0, 5 * 24, MS_PER_HOUR, Action::Rollout(i));
            self.after_between(t, 6 * 60, 18 * 60, MINUTE, Action::Scale(i));
        }
    }

    /// Starts pods of deployment `d` until it has its replicas; false if the pool is full.
    fn fill(&mut self, t: i64, d: usize) -> bool {
        while (self.sim.deployments[d].live.len() as i64) < self.sim.deployments[d].replicas {
            if !self.start_replica(t, d) {
                return false;
            }
        }
        true
    }

    fn start_replica(&mut self, t: i64, d: usize) -> bool {
        let Some(node) = self.place(self.sim.deployments[d].pool, 1) else { return false };
        let dep = &self.sim.deployments[d];
        let (namespace, workload) = (dep.namespace, format!("Deployment/{}", dep.name));
        let prefix = format!("{}-r{}", dep.name, dep.revision);
        let name = self.next_pod_name(&prefix);
        let pod = self.start_pod(t, namespace, name, node, workload, 1000, None, Kind::Serving, d);
        self.sim.deployments[d].live.push(pod);
        true
    }

    fn submit(&mut self, t: i64, job: Job) {
        let id = self.sim.jobs.len();
        self.sim.jobs.push(job);
        self.at(t, Action::TryJob(id));
    }

    fn act(&mut self, t: i64, action: Action) {
        match action {
            Action::TrainingArrives => {
                self.after_gap(t, (MS_PER_HOUR as f64 / TRAINING_PER_HOUR) as i64, Action::TrainingArrives);
                let team = self.rng.range(0, TEAMS.len() as i64 - 1) as usize;
                let pool = self.pool_for(&[
                    ("H100", CapacityType::OnDemand, 0.25),
                    ("H100", CapacityType::Spot, 0.45),
                    ("A100", CapacityType::OnDemand, 0.30),
                ]);
                let (pods, gpus) = if self.rng.unit() < 0.5 {
                    (1, self.rng.pick(&[(1, 0.3), (2, 0.3), (4, 0.2), (8, 0.2)]))
                } else {
                    (self.rng.pick(&[(2, 0.5), (4, 0.35), (8, 0.15)]), 8)
                };
                // Log-uniform between 1 and 48 hours.
                let hours = (self.rng.unit() * 48f64.ln()).exp();
                let name = format!("{}-train-{}", TEAMS[team], self.sim.jobs.len());
                let job = Job {
                    name,
                    namespace: 2 * team + 1,
                    kind: Kind::Training,
                    pool,
                    pods,
                    gpus,
                    duration: (hours * MS_PER_HOUR as f64) as i64,
                    submitted: t,
                    ends: None,
                };
                self.submit(t, job);
            }
            Action::ShortArrives => {
                self.after_gap(t, (MS_PER_HOUR as f64 / SHORT_PER_HOUR) as i64, Action::ShortArrives);
                let team = self.rng.range(0, TEAMS.len() as i64 - 1) as usize;
                let namespace = if self.rng.unit() < 0.05 { self.sim.namespaces.len() - 1 } else { 2 * team + 1 };
                let pool = self.pool_for(&[
                    ("A100", CapacityType::OnDemand, 0.4),
                    ("L4", CapacityType::Spot, 0.4),
                    ("H100", CapacityType::Spot, 0.2),
                ]);
                let job = Job {
                    name: format!("{}-eval-{}", TEAMS[team], self.sim.jobs.len()),
                    namespace,
                    kind: Kind::Short,
                    pool,
                    pods: 1,
                    gpus: if self.rng.unit() < 0.8 { 1 } else { 2 },
                    duration: self.rng.range(10, 90) * MINUTE,
                    submitted: t,
                    ends: None,
                };
                self.submit(t, job);
            }
            Action::NotebookArrives => {
                self.after_gap(t, (MS_PER_HOUR as f64 / NOTEBOOKS_PER_HOUR) as i64, Action::NotebookArrives);
                let day = t - t.rem_euclid(MS_PER_DAY);
                let in_hours =
                    weekday(t) < 5 && (t - day) >= 8 * MS_PER_HOUR + 30 * MINUTE && (t - day) < 18 * MS_PER_HOUR;
                if !in_hours {
                    return;
                }
                let node = self
                    .interactive
                    .iter()
                    .copied()
                    .filter(|&n| self.sim.nodes[n].slices_free.is_some_and(|s| s > 0))
                    .max_by_key(|&n| self.sim.nodes[n].slices_free);
                let Some(node) = node else { return };
                if let Some(slices) = self.sim.nodes[node].slices_free.as_mut() {
                    *slices -= 1;
                }
                let team = self.rng.range(0, TEAMS.len() as i64 - 1) as usize;
                let name = self.next_pod_name(&format!("nb-{}", TEAMS[team]));
                let workload = format!("Pod/{name}");
                let milli = mig_milli_gpus(MIG_PROFILE).unwrap_or(0);
                let mig = Some(format!("{MIG_PROFILE}×1"));
                let pod = self.start_pod(t, 2 * team + 1, name, node, workload, milli, mig, Kind::Notebook, 0);
                let until = (t + self.rng.range(60, 360) * MINUTE).min(day + 19 * MS_PER_HOUR + 50 * MINUTE);
                self.at(until.max(t + 10 * MINUTE), Action::EndPod(pod));
            }
            Action::SpotReclaim => {
                self.after_gap(t, (MS_PER_DAY as f64 / SPOT_RECLAIMS_PER_DAY) as i64, Action::SpotReclaim);
                let spot: Vec<usize> = (0..self.sim.pools.len())
                    .filter(|&p| self.sim.pools[p].capacity_type == CapacityType::Spot)
                    .flat_map(|p| self.schedulable[p].iter().copied())
                    .collect();
                if spot.is_empty() {
                    return;
                }
                let node = spot[self.rng.range(0, spot.len() as i64 - 1) as usize];
                let pool = self.sim.nodes[node].pool;
                self.schedulable[pool].retain(|&n| n != node);
                for pod in self.sim.nodes[node].pods.clone() {
                    self.end_pod(t, pod);
                    let (kind, owner) = (self.sim.pods[pod].kind, self.sim.pods[pod].owner);
                    match kind {
                        Kind::Serving => self.at(t + MINUTE, Action::Reschedule(owner)),
                        Kind::Training => self.at(t + 2 * MINUTE, Action::RestartJobPod(owner)),
                        Kind::Short | Kind::Notebook => {}
                    }
                }
                self.sim.nodes[node].removed = Some(t);
                self.event(t, Change::NodeDown(node));
                self.replacements += 1;
                let replacement = Action::NodeUp(pool, self.replacements);
                self.after_between(t, 3, 10, MINUTE, replacement);
            }
            Action::NodeUp(pool, n) => {
                let name = format!("{}-r{n:03}", self.sim.pools[pool].name);
                self.add_node(t, pool, name, false);
            }
            Action::TryJob(j) => {
                let (pool, pods, gpus) = (self.sim.jobs[j].pool, self.sim.jobs[j].pods, self.sim.jobs[j].gpus);
                let mut nodes = Vec::new();
                for _ in 0..pods {
                    match self.place(pool, gpus) {
                        Some(node) => nodes.push(node),
                        None => break,
                    }
                }
                if (nodes.len() as i64) < pods {
                    for node in nodes {
                        self.sim.nodes[node].free += gpus;
                    }
                    let (kind, submitted) = (self.sim.jobs[j].kind, self.sim.jobs[j].submitted);
                    let (retry, give_up) = match kind {
                        Kind::Short => (5 * MINUTE, 2 * MS_PER_HOUR),
                        _ => (15 * MINUTE, MS_PER_DAY),
                    };
                    if t + retry - submitted > give_up {
                        self.sim.rejected_jobs += 1;
                    } else {
                        self.at(t + retry, Action::TryJob(j));
                    }
                    return;
                }
                let ends = t + self.sim.jobs[j].duration;
                self.sim.jobs[j].ends = Some(ends);
                for node in nodes {
                    let pod = self.job_pod(t, j, node);
                    self.at(ends, Action::EndPod(pod));
                }
            }
            Action::RestartJobPod(j) => {
                let Some(ends) = self.sim.jobs[j].ends else { return };
                // Not for its last minutes: a pod shorter than a bulk pass could go unseen.
                if t >= ends - 10 * MINUTE {
                    return;
                }
                let (pool, gpus) = (self.sim.jobs[j].pool, self.sim.jobs[j].gpus);
                match self.place(pool, gpus) {
                    Some(node) => {
                        let pod = self.job_pod(t, j, node);
                        self.at(ends, Action::EndPod(pod));
                    }
                    None => self.at(t + 10 * MINUTE, Action::RestartJobPod(j)),
                }
            }
            Action::EndPod(pod) => self.end_pod(t, pod),
            Action::Rollout(d) => {
                self.after_between(t, 24, 5 * 24, MS_PER_HOUR, Action::Rollout(d));
                self.sim.deployments[d].revision += 1;
                for (i, pod) in self.sim.deployments[d].live.clone().into_iter().enumerate() {
                    self.at(t + i as i64 * 30 * SECOND, Action::ReplacePod(d, pod));
                }
            }
            Action::ReplacePod(d, old) => {
                if self.sim.pods[old].end.is_some() {
                    return;
                }
                // maxSurge 1: the new pod first, the old one 20 s later.
                if !self.start_replica(t, d) {
                    self.at(t + 5 * MINUTE, Action::Reschedule(d));
                }
                self.sim.deployments[d].live.retain(|&p| p != old);
                self.at(t + 20 * SECOND, Action::EndPod(old));
            }
            Action::Scale(d) => {
                self.after_between(t, 6 * 60, 18 * 60, MINUTE, Action::Scale(d));
                let dep = &self.sim.deployments[d];
                let by = self.rng.range(1, (dep.base / 5).max(1));
                let up = self.rng.unit() < 0.5;
                let replicas = if up { dep.replicas + by } else { dep.replicas - by }.clamp(1, 2 * dep.base);
                self.sim.deployments[d].replicas = replicas;
                while self.sim.deployments[d].live.len() as i64 > replicas {
                    let Some(&pod) = self.sim.deployments[d].live.last() else { break };
                    self.end_pod(t, pod);
                }
                if !self.fill(t, d) {
                    self.at(t + 5 * MINUTE, Action::Reschedule(d));
                }
            }
            Action::Reschedule(d) => {
                if !self.fill(t, d) {
                    self.at(t + 5 * MINUTE, Action::Reschedule(d));
                }
            }
            Action::MigOn(node) => {
                if self.sim.nodes[node].pods.is_empty() && self.sim.nodes[node].slices_free.is_none() {
                    self.sim.nodes[node].slices_free = Some(MIG_SLICES);
                    let milli = MIG_SLICES * mig_milli_gpus(MIG_PROFILE).unwrap_or(0);
                    self.event(t, Change::Resized(node, milli));
                }
            }
            Action::MigOff(node) => {
                if self.sim.nodes[node].pods.is_empty() && self.sim.nodes[node].slices_free.is_some() {
                    self.sim.nodes[node].slices_free = None;
                    let milli = self.sim.pools[self.sim.nodes[node].pool].gpus * 1000;
                    self.event(t, Change::Resized(node, milli));
                } else if self.sim.nodes[node].slices_free.is_some() {
                    self.at(t + 10 * MINUTE, Action::MigOff(node));
                }
            }
        }
    }

    fn pool_for(&mut self, choices: &[(&str, CapacityType, f64)]) -> usize {
        let weighted: Vec<(usize, f64)> = choices
            .iter()
            .filter_map(|(model, capacity_type, weight)| {
                let pool =
                    self.sim.pools.iter().position(|p| p.model.contains(model) && p.capacity_type == *capacity_type)?;
                Some((pool, *weight))
            })
            .collect();
        self.rng.pick(&weighted)
    }

    fn job_pod(&mut self, t: i64, j: usize, node: usize) -> usize {
        let job = &self.sim.jobs[j];
        let (namespace, workload, kind, gpus) = (job.namespace, format!("Job/{}", job.name), job.kind, job.gpus);
        let prefix = job.name.clone();
        let name = self.next_pod_name(&prefix);
        self.start_pod(t, namespace, name, node, workload, gpus * 1000, None, kind, j)
    }
}

impl Sim {
    /// GPU-hours held within `span`, exactly.
    fn gpu_hours(&self, span: Span) -> f64 {
        let milli_ms: i128 = self
            .pods
            .iter()
            .map(|p| {
                let from = p.start.max(self.start).max(span.start);
                let to = p.end.unwrap_or(self.end).min(self.end).min(span.end);
                i128::from(p.milli) * i128::from((to - from).max(0))
            })
            .sum();
        milli_ms as f64 / (1000.0 * MS_PER_HOUR as f64)
    }

    /// GPU-hours offered within `span`.
    fn capacity_hours(&self, span: Span) -> f64 {
        // Resizes are rare and short; count the nodes at their whole-GPU capacity, less the
        // MIG hours' difference, from the events.
        let mut milli_ms: i128 = 0;
        let mut milli: HashMap<usize, (i64, i64)> = HashMap::new();
        let clip = |t: i64| t.clamp(span.start.max(self.start), span.end.min(self.end));
        for e in &self.events {
            match e.change {
                Change::NodeUp(n) => {
                    milli.insert(n, (self.pools[self.nodes[n].pool].gpus * 1000, e.at));
                }
                Change::NodeDown(n) | Change::Resized(n, _) => {
                    if let Some((m, since)) = milli.remove(&n) {
                        milli_ms += i128::from(m) * i128::from(clip(e.at) - clip(since));
                    }
                    if let Change::Resized(_, m) = e.change {
                        milli.insert(n, (m, e.at));
                    }
                }
                Change::Bound(_) | Change::Ended(_) => {}
            }
        }
        for (m, since) in milli.values() {
            milli_ms += i128::from(*m) * i128::from(clip(self.end) - clip(*since));
        }
        milli_ms as f64 / (1000.0 * MS_PER_HOUR as f64)
    }

    /// Events the ledger sees after its first pass.
    fn watch_events(&self) -> usize {
        self.events.iter().filter(|e| e.at > self.start).count()
    }

    fn count(&self, kind: Kind) -> usize {
        self.pods.iter().filter(|p| p.kind == kind && p.end.is_none_or(|e| e > self.start)).count()
    }

    fn gpus(&self) -> i64 {
        self.nodes
            .iter()
            .filter(|n| n.created <= self.start && n.removed.is_none_or(|r| r > self.start))
            .map(|n| self.pools[n.pool].gpus)
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Writing the ledger through Gantry, and asking it
// ---------------------------------------------------------------------------------------------

/// CPU time of this process so far (user + system, every thread: sqlx's SQLite workers too).
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The CPU time of the PostgreSQL backends serving this benchmark's database (from /proc:
/// the server runs on this machine).
struct Backends {
    pids: Vec<i32>,
    tick: f64,
}

impl Backends {
    fn new() -> Backends {
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Backends { pids: Vec::new(), tick }
    }

    async fn refresh(&mut self, store: &Store) -> anyhow::Result<()> {
        if store.backend() == Backend::Postgres {
            self.pids = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                .fetch_all(store.pool())
                .await?;
        }
        Ok(())
    }

    fn cpu(&self) -> Duration {
        let mut ticks = 0u64;
        for pid in &self.pids {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some((_, rest)) = stat.rsplit_once(')') else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15; `rest` starts at field 3.
            ticks += fields.get(11).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            ticks += fields.get(12).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        }
        Duration::from_secs_f64(ticks as f64 / self.tick)
    }
}

/// CPU spent by a kind of pass: Gantry's process and, on PostgreSQL, the database's backends.
#[derive(Clone, Copy, Debug, Default)]
struct Spent {
    passes: u64,
    changed: u64,
    events: u64,
    process: Duration,
    database: Duration,
    wall: Duration,
}

impl Spent {
    fn per(&self, n: u64) -> (Duration, Duration) {
        let n = n.max(1) as u32;
        (self.process / n, self.database / n)
    }
}

/// The ledger's snapshot, kept up to date event by event (what the watch caches would show).
struct Caches<'a> {
    sim: &'a Sim,
    snapshot: LedgerSnapshot,
    /// Position in `snapshot.held` of each pod, and the pod at each position.
    held_at: Vec<Option<usize>>,
    held_ids: Vec<usize>,
    offered_at: Vec<Option<usize>>,
    offered_ids: Vec<usize>,
}

impl<'a> Caches<'a> {
    fn new(sim: &'a Sim) -> Caches<'a> {
        Caches {
            sim,
            snapshot: LedgerSnapshot::default(),
            held_at: vec![None; sim.pods.len()],
            held_ids: Vec::new(),
            offered_at: vec![None; sim.nodes.len()],
            offered_ids: Vec::new(),
        }
    }

    fn apply(&mut self, event: &Event) {
        let sim = self.sim;
        match event.change {
            Change::Bound(p) => {
                let pod = &sim.pods[p];
                let node = &sim.nodes[pod.node];
                let pool = &sim.pools[node.pool];
                self.held_at[p] = Some(self.snapshot.held.len());
                self.held_ids.push(p);
                self.snapshot.held.push(HeldGpus {
                    uid: pod.uid.clone(),
                    namespace: sim.namespaces[pod.namespace].0.clone(),
                    pod: pod.name.clone(),
                    node: node.name.clone(),
                    workload: pod.workload.clone(),
                    model: pool.model.clone(),
                    capacity_type: pool.capacity_type,
                    milli_gpus: pod.milli,
                    mig: pod.mig.clone(),
                    bound: Some(pod.start.max(sim.start)),
                });
            }
            Change::Ended(p) => {
                if let Some(at) = self.held_at[p].take() {
                    self.snapshot.held.swap_remove(at);
                    self.held_ids.swap_remove(at);
                    if let Some(&moved) = self.held_ids.get(at) {
                        self.held_at[moved] = Some(at);
                    }
                    self.snapshot.finished.insert(sim.pods[p].uid.clone(), event.at);
                }
            }
            Change::NodeUp(n) => {
                let node = &sim.nodes[n];
                let pool = &sim.pools[node.pool];
                let created = node.created.max(sim.start);
                self.offered_at[n] = Some(self.snapshot.offered.len());
                self.offered_ids.push(n);
                self.snapshot.offered.push(OfferedGpus {
                    uid: format!("{}@{created}", node.name),
                    node: node.name.clone(),
                    model: pool.model.clone(),
                    capacity_type: pool.capacity_type,
                    milli_gpus: pool.gpus * 1000,
                    created: Some(created),
                });
            }
            Change::NodeDown(n) => {
                if let Some(at) = self.offered_at[n].take() {
                    self.snapshot.offered.swap_remove(at);
                    self.offered_ids.swap_remove(at);
                    if let Some(&moved) = self.offered_ids.get(at) {
                        self.offered_at[moved] = Some(at);
                    }
                }
            }
            Change::Resized(n, milli) => {
                if let Some(at) = self.offered_at[n] {
                    self.snapshot.offered[at].milli_gpus = milli;
                }
            }
        }
    }
}

/// What one backend did and answered.
struct BackendRun {
    name: &'static str,
    bulk: Spent,
    /// The live window's passes that found a change, and those that did not.
    live: Spent,
    idle: Spent,
    bulk_roll_up: Spent,
    live_roll_up: Spent,
    write_wall: Duration,
    /// Rows inserted, updated and deleted in the live window: (ledger tables, rollup tables).
    live_writes: Option<(i64, i64)>,
    rows: Vec<(&'static str, i64)>,
    /// Allocation intervals open at the end (what each pass with a change reads back), and the
    /// CPU of reading them (and the open capacity) back.
    open: i64,
    reload: Spent,
    /// The tables' size as the writes left them, and compacted (VACUUM).
    bytes_written: i64,
    bytes: i64,
    questions: Vec<Answered>,
    /// The SQL of each question, timed through the store alone, and its groups.
    sql: Vec<(Vec<Duration>, usize)>,
}

struct Answered {
    times: Vec<Duration>,
    rows: usize,
    bytes: usize,
    gpu_hours: f64,
    window: Span,
}

const QUESTIONS: [(&str, &str); 2] = [
    ("team", "/api/v1/allocation?window=30d&aggregate=team"),
    ("workload, step 1d", "/api/v1/allocation?window=30d&aggregate=workload&step=1d"),
];

async fn on_backend(sim: &Sim, database_url: Option<String>) -> anyhow::Result<BackendRun> {
    let name = if database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let server = Server::start_with(Hub::new(), database_url.clone()).await?;
    let state = server.state.clone();
    let store = state.store().clone();
    prepare(&state, sim).await?;

    tracing::info!("{name}: writing the ledger");
    let began = Instant::now();
    let mut writer = LedgerWriter::default();
    let mut caches = Caches::new(sim);
    let mut backends = Backends::new();
    backends.refresh(&store).await?;
    let (mut bulk, mut live, mut idle) = (Spent::default(), Spent::default(), Spent::default());
    let (mut bulk_roll_up, mut live_roll_up) = (Spent::default(), Spent::default());
    let live_from = sim.end - LIVE_HOURS * MS_PER_HOUR;
    // Passes at exact times in the bulk: node changes (a capacity interval closes at the pass),
    // and the starts of pods too short for the grid to see.
    let mut exact: Vec<i64> = sim
        .events
        .iter()
        .filter(|e| matches!(e.change, Change::NodeUp(_) | Change::NodeDown(_) | Change::Resized(..)))
        .map(|e| e.at)
        .chain(sim.pods.iter().filter(|p| p.end.is_some_and(|end| end - p.start < BULK_PASS)).map(|p| p.start))
        .filter(|&at| at > sim.start && at < live_from)
        .collect();
    exact.sort_unstable();
    exact.dedup();
    let mut next_exact = 0;
    let mut next = 0;
    let mut t = sim.start;
    let mut next_roll_up = sim.start + BULK_ROLL_UP;
    let mut next_retention = sim.start;
    let mut day = 0;
    let mut writes_before = None;
    loop {
        let mut applied = 0u64;
        while next < sim.events.len() && sim.events[next].at <= t {
            if sim.events[next].at > sim.start {
                applied += 1;
            }
            caches.apply(&sim.events[next]);
            next += 1;
        }
        let spent = match (t > live_from, applied > 0) {
            (false, _) => &mut bulk,
            (true, true) => &mut live,
            (true, false) => &mut idle,
        };
        let (database, process, wall) = (backends.cpu(), process_cpu(), Instant::now());
        state.record_snapshot_at(&mut writer, CLUSTER, &caches.snapshot, t).await?;
        spent.wall += wall.elapsed();
        spent.process += process_cpu().saturating_sub(process);
        spent.database += backends.cpu().saturating_sub(database);
        spent.passes += 1;
        spent.events += applied;
        spent.changed += u64::from(applied > 0);
        caches.snapshot.finished.clear();

        if t >= next_roll_up || t >= sim.end {
            let spent = if t > live_from { &mut live_roll_up } else { &mut bulk_roll_up };
            backends.refresh(&store).await?;
            let (database, process, wall) = (backends.cpu(), process_cpu(), Instant::now());
            state.roll_up_at(&writer, CLUSTER, t).await?;
            spent.wall += wall.elapsed();
            spent.process += process_cpu().saturating_sub(process);
            spent.database += backends.cpu().saturating_sub(database);
            spent.passes += 1;
            next_roll_up = if t >= live_from { t + LIVE_ROLL_UP } else { (t + BULK_ROLL_UP).min(live_from) };
        }
        if t >= next_retention {
            state.apply_retention_at(t).await?;
            next_retention += MS_PER_HOUR;
        }
        if (t - sim.start) / MS_PER_DAY > day {
            day = (t - sim.start) / MS_PER_DAY;
            backends.refresh(&store).await?;
            tracing::info!("{name}: day {day} written ({:.0} s)", began.elapsed().as_secs_f64());
        }
        if t >= sim.end {
            break;
        }
        t = if t < live_from {
            while next_exact < exact.len() && exact[next_exact] <= t {
                next_exact += 1;
            }
            let grid = (t - sim.start) / BULK_PASS * BULK_PASS + sim.start + BULK_PASS;
            let next_at = exact.get(next_exact).copied().unwrap_or(i64::MAX);
            grid.min(next_at).min(live_from)
        } else {
            let change = sim.events.get(next).map_or(i64::MAX, |e| e.at + LIVE_SETTLE);
            (t + LIVE_PASS).min(change)
        }
        .min(sim.end);
        if t > live_from && live.passes + idle.passes == 0 {
            backends.refresh(&store).await?;
            writes_before = row_writes(&store).await?;
        }
    }
    let write_wall = began.elapsed();
    tracing::info!("{name}: ledger written in {:.0} s", write_wall.as_secs_f64());
    let live_writes = match (writes_before, row_writes(&store).await?) {
        (Some((ledger0, rollups0)), Some((ledger1, rollups1))) => Some((ledger1 - ledger0, rollups1 - rollups0)),
        _ => None,
    };

    let rows = count_rows(&store).await?;
    let open: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM gpu_allocations WHERE end_ms IS NULL").fetch_one(store.pool()).await?;
    let bytes_written = database_bytes(&store, server.dir()).await?;
    // What one read-back of the open intervals costs, as a changed pass makes it.
    backends.refresh(&store).await?;
    let mut reload = Spent::default();
    for _ in 0..10 {
        let (database, process) = (backends.cpu(), process_cpu());
        store.open_allocations(CLUSTER).await?;
        store.open_capacity(CLUSTER).await?;
        reload.process += process_cpu().saturating_sub(process);
        reload.database += backends.cpu().saturating_sub(database);
        reload.passes += 1;
    }
    // Asked of the tables as the writes left them (no VACUUM but the database's own).
    let questions = ask(&server, sim).await?;
    let sql = sql_alone(&store).await?;
    sqlx::query(if store.backend() == Backend::Postgres { "VACUUM FULL" } else { "VACUUM" })
        .execute(store.pool())
        .await?;
    let bytes = database_bytes(&store, server.dir()).await?;

    if std::env::var_os("GANTRY_BENCH_KEEP_DB").is_some() {
        if !common::keep_sqlite_copy(&store, "/tmp/gantry-usage-bench.sqlite").await? {
            eprintln!("kept the PostgreSQL database {}", database_url.as_deref().unwrap_or_default());
        }
    } else if let Some(url) = &database_url {
        store.pool().close().await;
        drop(server);
        drop_database(url).await?;
    }
    Ok(BackendRun {
        name,
        bulk,
        live,
        idle,
        bulk_roll_up,
        live_roll_up,
        write_wall,
        live_writes,
        rows,
        open,
        reload,
        bytes_written,
        bytes,
        questions,
        sql,
    })
}

/// Teams own their namespaces (`sandbox` has none), and the models have prices: on-demand all
/// month, spot H100 cheaper from day 12 on (a price change inside the window).
async fn prepare(state: &AppState, sim: &Sim) -> anyhow::Result<()> {
    let store = state.store();
    for (namespace, team) in &sim.namespaces {
        let Some(team) = team else { continue };
        let id = match store.team_by_name(team).await? {
            Some(t) => t.id,
            None => store.create_team(team).await?.id,
        };
        store.map_namespace(CLUSTER, namespace, id).await?;
    }
    for pool in &sim.pools {
        let dollars = match (pool.model.contains("H100"), pool.model.contains("A100")) {
            (true, _) => 6.88,
            (_, true) => 5.12,
            _ => 1.00,
        };
        let spot = pool.capacity_type == CapacityType::Spot;
        for (capacity_type, price) in [(CapacityType::OnDemand, dollars), (CapacityType::Spot, dollars * 0.45)] {
            let price = GpuPrice {
                model: pool.model.clone(),
                capacity_type,
                usd_per_gpu_hour: Usd::from_dollars("price", price)?,
                updated_at: sim.start - WARM_UP,
            };
            store.set_gpu_price(&price).await?;
        }
        if spot && pool.model.contains("H100") {
            let price = GpuPrice {
                model: pool.model.clone(),
                capacity_type: CapacityType::Spot,
                usd_per_gpu_hour: Usd::from_dollars("price", dollars * 0.38)?,
                updated_at: sim.start + 12 * MS_PER_DAY,
            };
            store.set_gpu_price(&price).await?;
        }
    }
    Ok(())
}

const TABLES: [&str; 8] = [
    "gpu_allocations",
    "gpu_capacity",
    "ledger_gaps",
    "usage_hourly",
    "usage_hourly_namespaces",
    "usage_hourly_nodes",
    "usage_daily",
    "usage_daily_namespaces",
];

async fn count_rows(store: &Store) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut rows = Vec::new();
    for table in TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(store.pool()).await?;
        rows.push((table, n));
    }
    Ok(rows)
}

/// The ledger's and rollups' tables with their indexes (PostgreSQL), or the whole database
/// file (SQLite, where everything else is a few pages).
async fn database_bytes(store: &Store, dir: &Path) -> anyhow::Result<i64> {
    Ok(match store.backend() {
        Backend::Postgres => {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relkind = 'r' \
                 AND (c.relname LIKE 'gpu_allocations%' OR c.relname LIKE 'gpu_capacity%' \
                      OR c.relname LIKE 'ledger_gaps%' OR c.relname LIKE 'usage_%')",
            )
            .fetch_one(store.pool())
            .await?
        }
        Backend::Sqlite => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(store.pool()).await?;
            let mut bytes = 0;
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().to_string();
                if name.ends_with(".db") || name.ends_with(".sqlite") || name.ends_with("-wal") {
                    bytes += entry.metadata()?.len() as i64;
                }
            }
            bytes
        }
    })
}

async fn ask(server: &Server, sim: &Sim) -> anyhow::Result<Vec<Answered>> {
    let http = reqwest::Client::new();
    let mut answered = Vec::new();
    for (label, path) in QUESTIONS {
        let url = server.url(path);
        let mut times = Vec::new();
        let mut last = bytes::Bytes::new();
        for call in 0..WARM_UP_CALLS + CALLS {
            let began = Instant::now();
            let response = http.get(&url).bearer_auth(&server.admin_token).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            let took = began.elapsed();
            anyhow::ensure!(status.is_success(), "{path} answered {status}: {}", String::from_utf8_lossy(&body));
            if call >= WARM_UP_CALLS {
                times.push(took);
            }
            last = body;
        }
        let report: serde_json::Value = serde_json::from_slice(&last)?;
        let window = Span::new(report["start"].as_i64().unwrap_or(0), report["end"].as_i64().unwrap_or(0));
        let rows = report["rows"].as_array().map_or(0, Vec::len);
        let gpu_hours = report["totals"]["gpu_hours"].as_f64().unwrap_or(0.0);
        tracing::info!(
            "{label}: median {}, {rows} rows, {} GPU-hours (simulated: {:.0})",
            ms(median(&times)),
            gpu_hours.round(),
            sim.gpu_hours(window)
        );
        answered.push(Answered { times, rows, bytes: last.len(), gpu_hours, window });
    }
    Ok(answered)
}

/// What each question asks of the store (daily rollups, with the hours at the window's edges
/// from the hourly ones; the team question from the namespace rollups), timed through the store
/// alone: the team question by team, model and capacity type; the workload question by workload,
/// model and capacity type and by day.
const SQL_QUESTIONS: [(&str, &[Dimension], Option<i64>); 2] = [
    ("team, model, capacity type", &[Dimension::Team, Dimension::Model, Dimension::CapacityType], None),
    (
        "workload, model, capacity type, by day",
        &[Dimension::Workload, Dimension::Model, Dimension::CapacityType],
        Some(MS_PER_DAY),
    ),
];

async fn sql_alone(store: &Store) -> anyhow::Result<Vec<(Vec<Duration>, usize)>> {
    let now = gantry_store::now_ms();
    let start = now - 30 * MS_PER_DAY;
    let span = Span::new(start - start.rem_euclid(MS_PER_HOUR), now - now.rem_euclid(MS_PER_HOUR) + MS_PER_HOUR);
    let mut answers = Vec::new();
    for (_, dimensions, bucket) in SQL_QUESTIONS {
        let mut times = Vec::new();
        let mut rows = 0;
        for call in 0..WARM_UP_CALLS + CALLS {
            let began = Instant::now();
            let groups = store.usage_totals(Tier::Daily, span, dimensions, bucket, &UsageFilter::default()).await?;
            if call >= WARM_UP_CALLS {
                times.push(began.elapsed());
            }
            rows = groups.len();
        }
        answers.push((times, rows));
    }
    Ok(answers)
}

/// Rows inserted, updated and deleted so far in the ledger's tables and in the rollups'
/// (PostgreSQL's statistics; None on SQLite). Backends report their counts when idle, at most
/// every 10 s, hence the wait.
async fn row_writes(store: &Store) -> anyhow::Result<Option<(i64, i64)>> {
    if store.backend() != Backend::Postgres {
        return Ok(None);
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut sums = [0i64; 2];
    for (i, pattern) in ["(gpu|ledger)[_]%", "usage[_]%"].into_iter().enumerate() {
        sums[i] = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) AS BIGINT) \
             FROM pg_stat_user_tables WHERE relname SIMILAR TO $1",
        )
        .bind(pattern)
        .fetch_one(store.pool())
        .await?;
    }
    Ok(Some((sums[0], sums[1])))
}

async fn drop_database(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let Ok(server) = std::env::var("GANTRY_TEST_POSTGRES_URL") else { return Ok(()) };
    let Some((_, name)) = url.rsplit_once('/') else { return Ok(()) };
    let mut admin = sqlx::AnyConnection::connect(&server).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
    admin.close().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------------

struct PrometheusRun {
    series: usize,
    samples: u64,
    file_bytes: u64,
    write: Duration,
    backfill: Duration,
    /// (label, times, result series, response bytes, GPU-hours held in the answer)
    questions: Vec<(String, Vec<Duration>, usize, usize, f64)>,
}

/// One series per (namespace, team, workload, model, capacity type), the GPUs its pods hold,
/// sampled every minute while it holds any: what a recording rule over kube-state-metrics'
/// `kube_pod_container_resource_requests{resource="nvidia_com_gpu"}` would keep; and the GPUs
/// offered per (model, capacity type).
async fn prometheus(sim: &Sim) -> anyhow::Result<PrometheusRun> {
    let prometheus = Prometheus::start(&[]).await?;
    let path = prometheus.dir().join("history.om");
    let began = Instant::now();
    let (series, samples, file_bytes) = write_openmetrics(sim, &path)?;
    let write = began.elapsed();
    tracing::info!(
        "Prometheus: {series} series, {samples} samples, {} MB written in {:.0} s; backfilling",
        file_bytes / 1_000_000,
        write.as_secs_f64()
    );
    let began = Instant::now();
    prometheus.backfill(&path).await?;
    let backfill = began.elapsed();
    let _ = std::fs::remove_file(&path);
    tracing::info!("Prometheus: backfilled in {:.0} s", backfill.as_secs_f64());

    let at = sim.end - PROMETHEUS_SHIFT;
    let days = (sim.end - sim.start) / MS_PER_DAY;
    let per_sample_hours = SAMPLE_STEP as f64 / MS_PER_HOUR as f64;
    let team = format!(
        "sum by (team) (sum_over_time(gantry_bench_gpu_requests[{days}d])) or label_replace(\
         sum(sum_over_time(gantry_bench_gpu_capacity[{days}d])) - sum(sum_over_time(gantry_bench_gpu_requests[{days}d])), \
         \"team\", \"__idle__\", \"\", \"\")"
    );
    let workload = "sum by (workload) (sum_over_time(gantry_bench_gpu_requests[1d]))".to_string();
    let http = reqwest::Client::new();
    let mut questions = Vec::new();
    for (label, form) in [
        ("team", vec![("query", team), ("time", seconds(at))]),
        (
            "workload, step 1d",
            vec![
                ("query", workload),
                ("start", seconds(at - (days - 1) * MS_PER_DAY)),
                ("end", seconds(at)),
                ("step", "86400".to_string()),
            ],
        ),
    ] {
        let endpoint = if form.len() == 2 { "query" } else { "query_range" };
        let url = format!("{}/api/v1/{endpoint}", prometheus.url());
        let mut times = Vec::new();
        let mut last = bytes::Bytes::new();
        for call in 0..1 + PROMETHEUS_CALLS {
            let began = Instant::now();
            let response = http.post(&url).form(&form).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            let took = began.elapsed();
            anyhow::ensure!(status.is_success(), "Prometheus answered {status}: {}", String::from_utf8_lossy(&body));
            if call >= 1 {
                times.push(took);
            }
            last = body;
        }
        let answer: serde_json::Value = serde_json::from_slice(&last)?;
        let result = answer["data"]["result"].as_array().cloned().unwrap_or_default();
        let held: f64 = result
            .iter()
            .filter(|r| r["metric"]["team"] != "__idle__")
            .map(|r| {
                let value = |v: &serde_json::Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
                match r["values"].as_array() {
                    Some(values) => values.iter().map(value).sum(),
                    None => value(&r["value"]),
                }
            })
            .sum::<f64>()
            * per_sample_hours;
        tracing::info!("Prometheus {label}: median {}, {} series", ms(median(&times)), result.len());
        questions.push((label.to_string(), times, result.len(), last.len(), held));
    }
    Ok(PrometheusRun { series, samples, file_bytes, write, backfill, questions })
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Writes the samples as OpenMetrics (each series' samples together, families one after the
/// other); returns (series, samples, bytes).
fn write_openmetrics(sim: &Sim, path: &Path) -> anyhow::Result<(usize, u64, u64)> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    // (namespace, workload, pool) → the (start, end, milli-GPUs) of its pods.
    type Intervals = Vec<(i64, i64, i64)>;
    let mut series: BTreeMap<(usize, &str, usize), Intervals> = BTreeMap::new();
    for pod in &sim.pods {
        let start = pod.start.max(sim.start);
        let end = pod.end.unwrap_or(sim.end).min(sim.end);
        if end <= start {
            continue;
        }
        let pool = sim.nodes[pod.node].pool;
        series.entry((pod.namespace, pod.workload.as_str(), pool)).or_default().push((start, end, pod.milli));
    }
    let mut samples = 0u64;
    let grid = |t: i64| (t + SAMPLE_STEP - 1).div_euclid(SAMPLE_STEP) * SAMPLE_STEP;
    let value = |milli: i64| {
        if milli % 1000 == 0 { (milli / 1000).to_string() } else { format!("{}.{:03}", milli / 1000, milli % 1000) }
    };
    writeln!(out, "# HELP gantry_bench_gpu_requests GPUs the workload's pods hold.")?;
    writeln!(out, "# TYPE gantry_bench_gpu_requests gauge")?;
    for ((namespace, workload, pool), intervals) in &series {
        let (namespace, team) = &sim.namespaces[*namespace];
        let pool = &sim.pools[*pool];
        let prefix = format!(
            "gantry_bench_gpu_requests{{namespace=\"{namespace}\",team=\"{}\",workload=\"{workload}\",model=\"{}\",capacity_type=\"{}\"}}",
            team.as_deref().unwrap_or(""),
            pool.model,
            pool.capacity_type.label()
        );
        // The GPUs held at each minute: a sweep over the intervals' starts and ends.
        let mut steps: Vec<(i64, i64)> = intervals.iter().flat_map(|&(s, e, m)| [(s, m), (e, -m)]).collect();
        steps.sort_unstable();
        let mut held = 0;
        let mut i = 0;
        let mut t = grid(steps[0].0);
        let last = steps[steps.len() - 1].0;
        while t < last {
            while i < steps.len() && steps[i].0 <= t {
                held += steps[i].1;
                i += 1;
            }
            if held > 0 {
                writeln!(out, "{prefix} {} {}", value(held), (t - PROMETHEUS_SHIFT) / 1000)?;
                samples += 1;
                t += SAMPLE_STEP;
            } else {
                // Jump to the next start.
                t = steps.get(i).map_or(last, |s| grid(s.0));
            }
        }
    }
    writeln!(out, "# HELP gantry_bench_gpu_capacity GPUs the nodes offer.")?;
    writeln!(out, "# TYPE gantry_bench_gpu_capacity gauge")?;
    let mut capacity: BTreeMap<usize, Vec<(i64, i64)>> = BTreeMap::new();
    let mut up: HashMap<usize, (i64, i64)> = HashMap::new();
    for e in &sim.events {
        let (node, milli) = match e.change {
            Change::NodeUp(n) => (n, sim.pools[sim.nodes[n].pool].gpus * 1000),
            Change::NodeDown(n) => (n, 0),
            Change::Resized(n, m) => (n, m),
            Change::Bound(_) | Change::Ended(_) => continue,
        };
        let pool = sim.nodes[node].pool;
        let at = e.at.max(sim.start);
        let before = up.get(&node).map_or(0, |(m, _)| *m);
        capacity.entry(pool).or_default().push((at, milli - before));
        up.insert(node, (milli, at));
    }
    for (pool, mut steps) in capacity {
        let pool = &sim.pools[pool];
        let prefix = format!(
            "gantry_bench_gpu_capacity{{model=\"{}\",capacity_type=\"{}\"}}",
            pool.model,
            pool.capacity_type.label()
        );
        steps.sort_unstable();
        let mut held = 0;
        let mut i = 0;
        let mut t = grid(sim.start);
        while t < sim.end {
            while i < steps.len() && steps[i].0 <= t {
                held += steps[i].1;
                i += 1;
            }
            writeln!(out, "{prefix} {} {}", value(held), (t - PROMETHEUS_SHIFT) / 1000)?;
            samples += 1;
            t += SAMPLE_STEP;
        }
    }
    writeln!(out, "# EOF")?;
    out.flush()?;
    let bytes = std::fs::metadata(path)?.len();
    Ok((series.len() + 4, samples, bytes))
}

// ---------------------------------------------------------------------------------------------
// The section
// ---------------------------------------------------------------------------------------------

fn us(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 { format!("{us:.0} µs") } else { format!("{:.2} ms", us / 1000.0) }
}

fn report(
    sim: &Sim,
    days: i64,
    sqlite: &BackendRun,
    postgres: Option<&BackendRun>,
    prometheus: &PrometheusRun,
    took: Duration,
) -> String {
    let runs: Vec<&BackendRun> = std::iter::once(sqlite).chain(postgres).collect();
    let whole = Span::new(sim.start, sim.end);
    let held = sim.gpu_hours(whole);
    let offered = sim.capacity_hours(whole);
    let pods_in = |kind| sim.count(kind);
    let ended = |kind: Kind| {
        sim.events
            .iter()
            .filter(|e| e.at > sim.start && matches!(e.change, Change::Ended(p) if sim.pods[p].kind == kind))
            .count()
    };
    let count = |f: fn(&Change) -> bool| sim.events.iter().filter(|e| e.at > sim.start && f(&e.change)).count();
    let bound = count(|c| matches!(c, Change::Bound(_)));
    let finished = count(|c| matches!(c, Change::Ended(_)));
    let node_up = count(|c| matches!(c, Change::NodeUp(_)));
    let node_down = count(|c| matches!(c, Change::NodeDown(_)));
    let resized = count(|c| matches!(c, Change::Resized(..)));
    let jobs = |kind| sim.jobs.iter().filter(|j| j.kind == kind && j.ends.is_some_and(|e| e > sim.start)).count();

    let mut out = vec![
        HEADING.to_string(),
        String::new(),
        format!(
            "Measured {} with `cargo bench -p gantry --bench usage` (release build) on {}. Took {:.0} minutes.",
            common::today(),
            common::machine(),
            took.as_secs_f64() / 60.0
        ),
        String::new(),
        format!(
            "**The month.** {days} days of cluster `{CLUSTER}` with the GPU node pools of `deploy/fleets/scale.yaml` \
             ({} GPUs on {} nodes: H100 × 8 on-demand and spot, A100 × 8, L4 × 4 spot; the scale fleet has 6,400 GPUs, \
             not the 8,000 the issue says), simulated with seed {SEED}, and {} teams owning two namespaces each \
             (`<team>-serve`, `<team>-train`) plus `sandbox`, owned by none. Pods are placed best-fit, as a \
             bin-packing scheduler would, and wait (or give up) when their pool is full. Over the month: \
             {DEPLOYMENTS} serving deployments of 2–40 one-GPU replicas that stay all month, with a rolling update \
             every 1–5 days and a scale change every 6–18 hours ({} serving pods); {} training jobs of 1–48 hours \
             (log-uniform), one pod of 1–8 GPUs or 2–8 pods of 8 GPUs ({} pods); {} short jobs of 10–90 minutes \
             and 1–2 GPUs ({:.0} an hour); {} notebooks on one {MIG_PROFILE} MIG slice of {INTERACTIVE_NODES} A100 \
             nodes that are repartitioned to MIG on working days 08:00–20:00 UTC; {} spot nodes reclaimed and \
             replaced (about {SPOT_RECLAIMS_PER_DAY:.0} a day; their pods move or restart elsewhere). {} jobs gave up \
             waiting for GPUs. GPUs held: {:.0} GPU-hours of {:.0} offered ({:.0} %).",
            sim.gpus(),
            sim.nodes.iter().filter(|n| n.created <= sim.start && n.removed.is_none_or(|r| r > sim.start)).count(),
            TEAMS.len(),
            pods_in(Kind::Serving),
            jobs(Kind::Training),
            pods_in(Kind::Training),
            jobs(Kind::Short),
            SHORT_PER_HOUR,
            pods_in(Kind::Notebook),
            node_down,
            sim.rejected_jobs,
            held,
            offered,
            100.0 * held / offered.max(1.0)
        ),
        String::new(),
        format!(
            "Watch events the ledger saw after its first pass: {} ({:.0} a day): {bound} pods bound, {finished} \
             finished or deleted ({} of them serving pods replaced or scaled away, {} jobs' pods), {node_up} nodes \
             added, {node_down} removed, {resized} MIG repartitions.",
            sim.watch_events(),
            sim.watch_events() as f64 / days as f64,
            ended(Kind::Serving),
            ended(Kind::Training) + ended(Kind::Short),
        ),
        String::new(),
        format!(
            "**The allocation API.** `GET /api/v1/allocation` over HTTP (a global admin's bearer token, so every \
             team's rows and the idle rows), on a Gantry running in the benchmark's process, p50 / p95 of {CALLS} \
             calls after {WARM_UP_CALLS} warm-up calls; Prometheus: the same question in PromQL, p50 / p95 of \
             {PROMETHEUS_CALLS} after one warm-up (with so few calls, p95 is the slowest). An answer is a page \
             of groups, the 100 costliest unless `limit` says, each with all its buckets, ranked, counted and cut \
             in the database; the rows below are the page's. Prometheus's range query returns every series: it has \
             no paging (`topk` would rank per step, not over the window)."
        ),
        String::new(),
    ];
    let mut header = "| Question |".to_string();
    let mut rule = "|---|".to_string();
    for run in &runs {
        header.push_str(&format!(" {} p50 / p95 |", run.name));
        rule.push_str("---|");
    }
    header.push_str(
        " Prometheus p50 / p95 | Rows (Gantry) / series (Prometheus) | Response bytes (Gantry / Prometheus) |",
    );
    rule.push_str("---|---|---|");
    out.push(header);
    out.push(rule);
    let mut misses = Vec::new();
    for (i, (label, path)) in QUESTIONS.iter().enumerate() {
        let mut line = format!("| `{}` ({label}) |", path.trim_start_matches("/api/v1/"));
        for run in &runs {
            let q = &run.questions[i];
            let p95 = quantile(&q.times, 0.95);
            if p95 > Duration::from_millis(200) {
                misses.push(format!("{} {label}: p95 {}", run.name, ms(p95)));
            }
            line.push_str(&format!(" {} / **{}** |", ms(median(&q.times)), ms(p95)));
        }
        let p = &prometheus.questions[i];
        line.push_str(&format!(
            " {} / {} | {} / {} | {:.1} MB / {:.1} MB |",
            ms(median(&p.1)),
            ms(quantile(&p.1, 0.95)),
            runs[0].questions[i].rows,
            p.2,
            runs[0].questions[i].bytes as f64 / 1e6,
            p.3 as f64 / 1e6
        ));
        out.push(line);
    }
    for (i, (label, _, _)) in SQL_QUESTIONS.iter().enumerate() {
        let mut sql_line = format!("| Its SQL (`usage_totals`: {label}), timed through the store alone |");
        for run in &runs {
            let times = &run.sql[i].0;
            sql_line.push_str(&format!(" {} / {} |", ms(median(times)), ms(quantile(times, 0.95))));
        }
        sql_line.push_str(&format!(" | {} groups | |", runs[0].sql[i].1));
        out.push(sql_line);
    }
    out.push(String::new());
    out.push(if misses.is_empty() {
        "Goal: p95 ≤ 200 ms on both backends: **met**.".to_string()
    } else {
        format!("Goal: p95 ≤ 200 ms on both backends: **not met** ({}).", misses.join("; "))
    });
    if postgres.is_none() {
        out.push(String::new());
        out.push("PostgreSQL: skipped (GANTRY_TEST_POSTGRES_URL was not set).".to_string());
    }
    out.push(String::new());
    let answered = &runs[0].questions[0];
    out.push(format!(
        "Agreement: for its window ({} to {}), Gantry's team answer holds {:.0} GPU-hours; the simulation held {:.0} \
         in that window. Prometheus's answer (whole-minute samples over the {days} days) holds {:.0}; the \
         simulation held {:.0} over the {days} days.",
        utc(answered.window.start),
        utc(answered.window.end),
        answered.gpu_hours,
        sim.gpu_hours(answered.window),
        prometheus.questions[0].4,
        held,
    ));
    out.push(String::new());
    out.push(format!(
        "Prometheus held {} series ({} of workloads, 4 of capacity) and {:.1} million samples: one a minute per \
         (namespace, team, workload, model, capacity type) while the workload held GPUs, as a recording rule \
         `sum by (namespace, team, workload, model, capacity_type)` over kube-state-metrics' \
         `kube_pod_container_resource_requests{{resource=\"nvidia_com_gpu\"}}` would keep them (one series per pod \
         would be several times more: {} pods), plus the GPUs offered per model and capacity type. Writing the \
         OpenMetrics file ({:.1} GB) took {:.0} s, `promtool tsdb create-blocks-from openmetrics` with the restart \
         {:.0} s. Questions: `sum by (team) (sum_over_time(gantry_bench_gpu_requests[{days}d]))` with the idle \
         capacity as one more row (`… or label_replace(sum(sum_over_time(gantry_bench_gpu_capacity[{days}d])) - \
         sum(sum_over_time(gantry_bench_gpu_requests[{days}d])), \"team\", \"__idle__\", \"\", \"\")`), an instant \
         query; and `sum by (workload) (sum_over_time(gantry_bench_gpu_requests[1d]))` as a range query with step \
         1d over the {days} days. Prometheus answers GPU-minutes; Gantry answers GPU-hours with cost, spot savings \
         and idle priced, which Prometheus would need price series and more joins for.",
        prometheus.series,
        prometheus.series - 4,
        prometheus.samples as f64 / 1e6,
        sim.pods.iter().filter(|p| p.end.is_none_or(|e| e > sim.start)).count(),
        prometheus.file_bytes as f64 / 1e9,
        prometheus.write.as_secs_f64(),
        prometheus.backfill.as_secs_f64(),
    ));
    out.push(String::new());

    out.push(
        "**Ledger write cost.** CPU of Gantry's process (getrusage: every thread, SQLite's included) and, on \
         PostgreSQL, of the database's backends serving it (/proc), spent in the ledger's passes."
            .to_string(),
    );
    out.push(String::new());
    let mut header = "| |".to_string();
    let mut rule = "|---|".to_string();
    for run in &runs {
        header.push_str(&format!(" {} |", run.name));
        rule.push_str("---|");
    }
    out.push(header);
    out.push(rule);
    let row = |label: String, f: &dyn Fn(&BackendRun) -> String| {
        let mut line = format!("| {label} |");
        for run in &runs {
            line.push_str(&format!(" {} |", f(run)));
        }
        line
    };
    let both = |process: Duration, database: Duration, postgres: bool| {
        if postgres { format!("{} + {} in PostgreSQL", us(process), us(database)) } else { us(process) }
    };
    let pg = |run: &BackendRun| run.name == "PostgreSQL";
    let live = if LIVE_HOURS == 1 { "hour".to_string() } else { format!("{LIVE_HOURS} hours") };
    out.push(row(
        format!(
            "**CPU per watch event** at the background loop's cadence (the last {live}: a pass 0.5 s after a \
             change, else every 5 s; all passes counted, those without a change too)"
        ),
        &|run| {
            let events = run.live.events.max(1) as u32;
            let (process, database) =
                ((run.live.process + run.idle.process) / events, (run.live.database + run.idle.database) / events);
            format!("**{}**", both(process, database, pg(run)))
        },
    ));
    out.push(row(format!("The last {live}: events; passes with a change / without"), &|run| {
        format!("{}; {} / {}", run.live.events, run.live.passes, run.idle.passes)
    }));
    out.push(row("CPU per pass with a change / without".to_string(), &|run| {
        let (process, database) = run.live.per(run.live.passes);
        let (idle_process, idle_database) = run.idle.per(run.idle.passes);
        format!("{} / {}", both(process, database, pg(run)), both(idle_process, idle_database, pg(run)))
    }));
    out.push(row(
        format!(
            "The rest of the month, a pass every {} minutes, at each node change and at the start of each pod \
             shorter than that: passes; events; CPU per event",
            BULK_PASS / MINUTE
        ),
        &|run| {
            let (process, database) = run.bulk.per(run.bulk.events);
            format!("{}; {}; {}", run.bulk.passes, run.bulk.events, both(process, database, pg(run)))
        },
    ));
    out.push(row(
        "Rollups at the background loop's cadence (every 60 s, each redoing the previous and the current hour): CPU \
         per pass, and per hour of the cluster's time"
            .to_string(),
        &|run| {
            let (process, database) = run.live_roll_up.per(run.live_roll_up.passes);
            format!("{}; {}", both(process, database, pg(run)), both(process * 60, database * 60, pg(run)))
        },
    ));
    out.push(row(
        format!("Rollups in the bulk (every {} hours): passes; CPU per pass", BULK_ROLL_UP / MS_PER_HOUR),
        &|run| {
            let (process, database) = run.bulk_roll_up.per(run.bulk_roll_up.passes);
            format!("{}; {}", run.bulk_roll_up.passes, both(process, database, pg(run)))
        },
    ));
    for (i, table) in TABLES.iter().enumerate() {
        out.push(row(format!("`{table}` rows per day"), &|run| format!("{:.0}", run.rows[i].1 as f64 / days as f64)));
    }
    out.push(row(
        "All rows per day; bytes per day (tables and indexes, compacted by VACUUM; as the writes left them)"
            .to_string(),
        &|run| {
            let rows: i64 = run.rows.iter().map(|r| r.1).sum();
            format!(
                "**{:.0}**; {:.1} MB ({:.1} MB)",
                rows as f64 / days as f64,
                run.bytes as f64 / days as f64 / 1e6,
                run.bytes_written as f64 / days as f64 / 1e6
            )
        },
    ));
    out.push(row(
        format!(
            "Rows written (inserted, updated, deleted) per hour at the background loop's cadence, ledger tables / \
             rollup tables (PostgreSQL's statistics over the last {live}; SQLite runs the same statements)"
        ),
        &|run| match run.live_writes {
            Some((ledger, rollups)) => {
                format!("{:.0} / {:.0}", ledger as f64 / LIVE_HOURS as f64, rollups as f64 / LIVE_HOURS as f64)
            }
            None => "(same)".to_string(),
        },
    ));
    out.push(row("Writing the month (wall time)".to_string(), &|run| format!("{:.0} s", run.write_wall.as_secs_f64())));
    out.push(String::new());
    out.push(format!(
        "Where the write time goes: a pass that finds a change applies it in one transaction, then reads back every \
         open interval of the cluster ({} at the end of the month, one row per GPU pod, and the nodes' capacity) \
         to know their ids: that read alone, row by row through sqlx's `Any` driver (on SQLite, through its \
         worker thread), costs {}. A pass without a change reads the namespace mappings and the open gap and writes the confirmation \
         time. Each rollup pass replaces its hours whole and recomputes the cluster's whole day in `usage_daily` \
         from the hourly rows (delete, then insert), once per hour replaced.",
        sqlite.open,
        runs.iter()
            .map(|run| {
                let (process, database) = run.reload.per(run.reload.passes);
                format!("{} on {}", both(process, database, pg(run)), run.name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push(String::new());
    out.push(format!(
        "Method: the ledger is written through `AppState::record_snapshot_at`, `roll_up_at` and \
         `apply_retention_at` (the background loop's own functions, with the time and the watch caches' snapshot as \
         parameters; the `testing` feature exposes them), one pass per simulated pass time, in order. The snapshot \
         is kept by the benchmark, event by event, as the caches would show it, with each pod's bind and finish \
         times, so every interval starts and ends at its own millisecond however coarse the passes; reading the \
         snapshot out of the real caches (one pass over the 30,000 pods of the scale fleet) is not part of the \
         figures. A watch event here is a pod bound or finished, or a node added, removed or repartitioned; the \
         watch delivers several events per pod (created, scheduled, running, terminating, deleted) and the scale \
         fleet's 24,000 CPU pods too, which the ledger only sees as passes without a change. Rows per day are the \
         rows in each table at the end, ÷ {days}. PostgreSQL is the test server (fsync off), on the same machine. \
         The allocation timings are the whole HTTP exchange up to the last byte of the body; Prometheus's \
         likewise, with its own HTTP API."
    ));
    out.push(String::new());
    out.join("\n")
}

fn utc(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => {
            format!("{}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
        }
        Err(_) => ms.to_string(),
    }
}
