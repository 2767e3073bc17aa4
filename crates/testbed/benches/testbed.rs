//! Testbed benchmark: a program that prints numbers (not a timed test).
//!
//!   cargo bench -p gantry-testbed --bench testbed              # everything
//!   cargo bench -p gantry-testbed --bench testbed -- --no-scale  # skip the 1,000-node fleet
//!
//! Measures the cold build of the binaries (reported, not redone), the warm start of one
//! cluster (median of 3), the memory of one idle cluster, and the time to bring up the scale
//! fleet (1,000 nodes, 30,000 pods Running). Prints markdown and rewrites the `## Testbed`
//! section of BENCHMARKS.md at the workspace root.

use std::path::Path;
use std::time::{Duration, Instant};

use gantry_testbed::{
    Binaries, Fleet, Options, Testbed, build_seconds_file, kubectl_build_seconds_file, report, version_dir,
};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("gantry_testbed=info"))
        .init();
    let scale = !std::env::args().any(|a| a == "--no-scale");
    let runtime = tokio::runtime::Runtime::new()?;
    let lines = runtime.block_on(run(scale))?;
    let report = lines.join("\n");
    println!("{report}");
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo bench")).join("../..");
    report::write_section(&root.join("BENCHMARKS.md"), "## Testbed", &report)?;
    eprintln!("wrote the Testbed section of {}", root.join("BENCHMARKS.md").display());
    Ok(())
}

async fn run(scale: bool) -> anyhow::Result<Vec<String>> {
    let mut out = vec![
        "## Testbed".to_string(),
        String::new(),
        format!(
            "Measured {} with `cargo bench -p gantry-testbed --bench testbed` on {} ({} CPU cores, {} GiB RAM). \
             Kubernetes {} control planes (etcd 3.7.2, kube-apiserver, kube-controller-manager, kube-scheduler) with kwok {}.",
            report::today(),
            report::cpu_model(),
            report::cpu_cores(),
            report::memory_gib(),
            gantry_testbed::K8S_VERSION,
            gantry_testbed::KWOK_VERSION,
        ),
        String::new(),
        "| Measure | Result | Goal |".to_string(),
        "|---|---|---|".to_string(),
    ];

    let started = Instant::now();
    let binaries = tokio::task::spawn_blocking(Binaries::ensure).await??;
    let ensure = started.elapsed();
    out.push(format!(
        "| Cold build of the binaries (Go, from the module proxy) | {} | once per machine |",
        cold_build(&binaries)
    ));
    out.push(format!("| Finding already-built binaries | {:.2} s | |", ensure.as_secs_f64()));

    // Warm start: binaries cached, a fresh cluster each time.
    let fleet = Fleet::small("warm");
    let mut starts = Vec::new();
    let mut teardowns = Vec::new();
    let mut idle = None;
    for run in 0..3 {
        let begun = Instant::now();
        let bed = Testbed::start(&fleet, Options::default()).await?;
        starts.push(begun.elapsed());
        eprintln!("warm start {}: {:.1} s", run + 1, starts[run].as_secs_f64());
        if run == 2 {
            // Let start-up work settle before reading memory.
            tokio::time::sleep(Duration::from_secs(15)).await;
            idle = Some(rss_by_component(&bed));
        }
        let begun = Instant::now();
        drop(bed);
        teardowns.push(begun.elapsed());
    }
    out.push(format!(
        "| Warm start of one cluster (3 nodes Ready and schedulable), median of 3 | {:.1} s (runs: {}) | ≤ 20 s |",
        median(&starts).as_secs_f64(),
        starts.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
    ));
    out.push(format!("| Teardown of one cluster, median of 3 | {:.1} s | |", median(&teardowns).as_secs_f64()));
    if let Some(idle) = idle {
        let total: u64 = idle.iter().map(|(_, kib)| kib).sum();
        let parts = idle.iter().map(|(name, kib)| format!("{name} {}", mib(*kib))).collect::<Vec<_>>().join(", ");
        out.push(format!("| RSS of one idle cluster (sum of VmRSS) | {} ({parts}) | |", mib(total)));
    }

    if scale {
        let path = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo bench"))
            .join("../../deploy/fleets/scale.yaml");
        let fleet = Fleet::from_file(&path)?;
        let nodes: usize = fleet.clusters.iter().map(|c| c.node_count()).sum();
        let pods: usize = fleet.clusters.iter().map(|c| c.pod_set_pods()).sum();
        let begun = Instant::now();
        let bed = Testbed::start(&fleet, Options::default()).await?;
        let took = begun.elapsed();
        let rss: u64 = rss_by_component(&bed).iter().map(|(_, kib)| kib).sum();
        out.push(format!(
            "| Scale fleet `deploy/fleets/scale.yaml`: {nodes} nodes Ready and {pods} pods Running | {:.0} s ({:.1} min) | ≤ 10 min |",
            took.as_secs_f64(),
            took.as_secs_f64() / 60.0
        ));
        for (phase, took) in bed.phases() {
            if phase != "total" && phase != "binaries ready" {
                out.push(format!("| &nbsp;&nbsp;scale phase: {phase} | {:.1} s | |", took.as_secs_f64()));
            }
        }
        out.push(format!("| RSS of the scale cluster right after start | {} | |", mib(rss)));
        drop(bed);
    }
    out.push(String::new());
    Ok(out)
}

fn cold_build(binaries: &Binaries) -> String {
    let recorded = |file: &Path| std::fs::read_to_string(file).ok().and_then(|text| text.trim().parse::<u64>().ok());
    if let Some(seconds) = recorded(&build_seconds_file()) {
        let kubectl = match recorded(&kubectl_build_seconds_file()) {
            Some(kubectl) => format!(", then kubectl {:.1} min", kubectl as f64 / 60.0),
            None => String::new(),
        };
        return format!("{:.1} min (recorded by `go/build-k8s.sh`){kubectl}", seconds as f64 / 60.0);
    }
    // No record (say, the file was removed): estimate from the cache's file times, from the
    // module directory's creation to the newest binary.
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let first = mtime(&version_dir().join("src"));
    let last = [&binaries.kube_apiserver, &binaries.kube_controller_manager, &binaries.kube_scheduler, &binaries.kwok]
        .into_iter()
        .filter_map(|p| mtime(p))
        .max();
    match (first, last) {
        (Some(first), Some(last)) => match last.duration_since(first) {
            Ok(took) => format!("~{:.0} min (estimated from cache file times; not re-run)", took.as_secs_f64() / 60.0),
            Err(_) => "unknown (cache file times out of order)".into(),
        },
        _ => "unknown (no record)".into(),
    }
}

fn rss_by_component(bed: &Testbed) -> Vec<(&'static str, u64)> {
    bed.clusters().iter().flat_map(|c| c.pids()).map(|(component, pid)| (component.name(), rss_kib(pid))).collect()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
