//! How long `Client::utilisation` takes on a realistic history: a program that prints
//! numbers (not a timed test).
//!
//!   cargo bench -p gantry-prometheus --bench utilisation                       # 2,000 GPUs, 30 s scrapes
//!   cargo bench -p gantry-prometheus --bench utilisation -- --series 8000 --step 60
//!
//! Backfills two hours of `DCGM_FI_DEV_GPU_UTIL` (one pod per GPU, `History`) into Debian's
//! Prometheus, ending three hours ago, then times spans of it. Prints markdown.

use std::time::{Duration, Instant, SystemTime};

use gantry_domain::usage::Span;
use gantry_prometheus::Client;
use gantry_testbed::{History, Prometheus, report};

fn main() {
    let arg = |name: &str, default: u64| {
        let args: Vec<String> = std::env::args().collect();
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(default)
    };
    let series = arg("--series", 2_000) as usize;
    let step = Duration::from_secs(arg("--step", 30));
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    for line in runtime.block_on(run(series, step)) {
        println!("{line}");
    }
}

async fn run(series: usize, step: Duration) -> Vec<String> {
    let prometheus = Prometheus::start(&[]).await.expect("Prometheus starts");
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(now / 3600 * 3600 - 5 * 3600);
    let history = History { series, start, end: start + Duration::from_secs(2 * 3600), step };
    let file = prometheus.dir().join("history.om");
    let started = Instant::now();
    let bytes = history.write_openmetrics(&file).expect("history written");
    prometheus.backfill(&file).await.expect("history backfilled");
    let _ = std::fs::remove_file(&file);
    let loaded = started.elapsed();

    let client = Client::new(&prometheus.url(), None).unwrap();
    let version = client.probe().await.expect("Prometheus answers");
    let start_ms = start.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut out = vec![
        format!(
            "Measured {} with `cargo bench -p gantry-prometheus --bench utilisation -- --series {series} --step {}` \
             on {} ({} CPU cores), Debian's Prometheus {}. {series} GPUs, one pod each, \
             a sample every {} s; {:.0} MB of OpenMetrics backfilled in {:.1} s.",
            report::today(),
            step.as_secs(),
            report::cpu_model(),
            report::cpu_cores(),
            version,
            step.as_secs(),
            bytes as f64 / 1e6,
            loaded.as_secs_f64(),
        ),
        String::new(),
        "| Span | First call | Median of 5 after | Pods |".into(),
        "|---|---|---|---|".into(),
    ];
    for (name, length) in [("10 min", 600_000), ("1 hour", 3_600_000), ("2 hours", 7_200_000)] {
        let span = Span::new(start_ms, start_ms + length);
        let time = || async {
            let started = Instant::now();
            let pods = client.utilisation(span).await.expect("utilisation");
            (started.elapsed(), pods.len())
        };
        let (first, pods) = time().await;
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(time().await.0);
        }
        runs.sort();
        assert_eq!(pods, series, "every pod answered");
        out.push(format!("| {name} | {:.0} ms | {:.0} ms | {pods} |", ms(first), ms(runs[2])));
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
