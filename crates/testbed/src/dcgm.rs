//! A stand-in for NVIDIA's dcgm-exporter: GPU metrics per Kubernetes pod, in the Prometheus
//! text format, with values a test sets and changes while Prometheus scrapes them.
//!
//! A KWOK node has no GPU, so nothing real can say how busy a pod's GPU is; this exporter
//! says whatever the test wants, in the exporter's own words. Names, labels, label order and
//! number formats follow dcgm-exporter 4.5.3-4.8.2 (`internal/pkg/rendermetrics`, the
//! `gpuMetricsFormat` template; `internal/pkg/collector/gpu_collector.go`, `toMetric`;
//! `internal/pkg/transformation/kubernetes.go`; `etc/default-counters.csv`):
//!
//! ```text
//! DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-…",pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="570.133.20",container="main",namespace="ml",pod="train-0"} 97
//! ```
//!
//! - A GPU no pod holds has no `container`, `namespace` and `pod` labels (leave `namespace`
//!   empty). With the exporter's `--use-old-namespace` they would be `pod_name`, … (not
//!   offered), and `pod_uid` appears only with `--kubernetes-enable-pod-uid` (off by default).
//! - A MIG slice carries its parent's `gpu`, `UUID` and `device`, plus `GPU_I_PROFILE` and
//!   `GPU_I_ID`; DCGM leaves the device-level utilisation of a MIG slice blank and the
//!   exporter skips blank values, so a slice here serves only `DCGM_FI_PROF_GR_ENGINE_ACTIVE`.
//! - Integer fields print as integers, double fields with six decimals (Go's `%f`).
//! - The exporter's main branch (after 4.5.3-4.8.2) renames `Hostname` to `hostname`, and its
//!   release notes announce DCGM 4.7 names and units for some fields: queries should not lean
//!   on `Hostname`.
//! - Behind a Prometheus Operator ServiceMonitor with `honorLabels: false` (the chart's
//!   default), Prometheus renames `namespace`, `pod` and `container` to `exported_namespace`,
//!   … because the scrape target has labels of those names; the static scrape configuration
//!   of [`Prometheus`](crate::prometheus::Prometheus) keeps them as they are.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::{Error, Result};

/// The `DCGM_FI_DRIVER_VERSION` label every series carries (a label field in the default
/// counters).
const DRIVER_VERSION: &str = "570.133.20";

/// One GPU, or one MIG slice of a GPU, and the pod that holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSample {
    /// Empty when no pod holds the GPU: then `namespace`, `pod` and `container` are left out.
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The node's name, the `Hostname` label.
    pub node: String,
    /// The GPU's index on its node (`gpu`, and `device="nvidia<gpu>"`).
    pub gpu: u32,
    /// `UUID`; [`GpuSample::new`] makes one from node and index.
    pub uuid: String,
    /// `modelName`, as NVML names it.
    pub model: String,
    pub mig: Option<MigSlice>,
    /// `DCGM_FI_DEV_GPU_UTIL` (whole GPUs only); `DCGM_FI_PROF_GR_ENGINE_ACTIVE` is this / 100.
    pub util_percent: u32,
    /// `DCGM_FI_DEV_FB_USED`, MiB (whole GPUs only).
    pub fb_used_mib: u64,
    /// `DCGM_FI_DEV_POWER_USAGE`, W (whole GPUs only).
    pub power_watts: f64,
}

/// A MIG slice: `GPU_I_ID` and `GPU_I_PROFILE` (such as `1g.10gb`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigSlice {
    pub instance_id: u32,
    pub profile: String,
}

impl GpuSample {
    /// GPU `gpu` of `node`, an H100 80GB held by container `main` of `namespace/pod`, idle.
    pub fn new(namespace: &str, pod: &str, node: &str, gpu: u32) -> GpuSample {
        GpuSample {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: "main".to_string(),
            node: node.to_string(),
            gpu,
            uuid: fake_uuid(node, gpu),
            model: "NVIDIA H100 80GB HBM3".to_string(),
            mig: None,
            util_percent: 0,
            fb_used_mib: 0,
            power_watts: 70.0,
        }
    }

    /// The same GPU as a MIG slice.
    pub fn mig(self, instance_id: u32, profile: &str) -> GpuSample {
        GpuSample { mig: Some(MigSlice { instance_id, profile: profile.to_string() }), ..self }
    }

    /// What identifies the device: one sample per device is served.
    fn device(&self) -> (String, u32, Option<u32>) {
        (self.node.clone(), self.gpu, self.mig.as_ref().map(|m| m.instance_id))
    }

    /// The label set, `{…}`, in the exporter's order.
    fn labels(&self) -> String {
        let mut out = String::from("{");
        let mut label = |name: &str, value: &str| {
            if out.len() > 1 {
                out.push(',');
            }
            let _ = write!(out, "{name}=\"{}\"", escape(value));
        };
        label("gpu", &self.gpu.to_string());
        label("UUID", &self.uuid);
        label("pci_bus_id", &format!("00000000:{:02X}:00.0", 0x18 + self.gpu * 0x10));
        label("device", &format!("nvidia{}", self.gpu));
        label("modelName", &self.model);
        if let Some(mig) = &self.mig {
            label("GPU_I_PROFILE", &mig.profile);
            label("GPU_I_ID", &mig.instance_id.to_string());
        }
        label("Hostname", &self.node);
        label("DCGM_FI_DRIVER_VERSION", DRIVER_VERSION);
        if !self.namespace.is_empty() {
            label("container", &self.container);
            label("namespace", &self.namespace);
            label("pod", &self.pod);
        }
        out.push('}');
        out
    }
}

/// The metric families served, with the help texts of the exporter's default counters.
/// `value` is `None` where the real exporter has no value (device metrics of a MIG slice).
struct Family {
    name: &'static str,
    help: &'static str,
    value: fn(&GpuSample) -> Option<String>,
}

const FAMILIES: [Family; 4] = [
    Family {
        name: "DCGM_FI_DEV_GPU_UTIL",
        help: "GPU utilization (in %).",
        value: |s| s.mig.is_none().then(|| s.util_percent.to_string()),
    },
    Family {
        name: "DCGM_FI_DEV_FB_USED",
        help: "Framebuffer memory used (in MiB).",
        value: |s| s.mig.is_none().then(|| s.fb_used_mib.to_string()),
    },
    Family {
        name: "DCGM_FI_DEV_POWER_USAGE",
        help: "Power draw (in W).",
        value: |s| s.mig.is_none().then(|| format!("{:.6}", s.power_watts)),
    },
    Family {
        name: "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        help: "Ratio of time the graphics engine is active.",
        value: |s| Some(format!("{:.6}", f64::from(s.util_percent) / 100.0)),
    },
];

type Samples = Arc<Mutex<BTreeMap<(String, u32, Option<u32>), GpuSample>>>;

/// An HTTP server on a free loopback port serving `GET /metrics` from the samples a test
/// [`set`](DcgmExporter::set). It runs on a thread of its own, so it answers whatever the
/// test's runtime is doing; dropping it stops it.
pub struct DcgmExporter {
    addr: SocketAddr,
    samples: Samples,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DcgmExporter {
    /// Starts serving, with no GPUs yet.
    pub fn start() -> Result<DcgmExporter> {
        // Bound here, so the port is ours before anyone is told it.
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(Error::io("binding the DCGM exporter"))?;
        let addr = listener.local_addr().map_err(Error::io("binding the DCGM exporter"))?;
        listener.set_nonblocking(true).map_err(Error::io("binding the DCGM exporter"))?;
        let samples = Samples::default();
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(|axum::extract::State(samples): axum::extract::State<Samples>| async move {
                    ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], render(&samples))
                }),
            )
            .with_state(Arc::clone(&samples));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("starting the DCGM exporter's runtime"))?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(Error::io("binding the DCGM exporter"))?
        };
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dcgm-exporter".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Dropping the runtime afterwards also drops Prometheus's kept-alive connections.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(Error::io("starting the DCGM exporter thread"))?;
        Ok(DcgmExporter { addr, samples, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// `127.0.0.1:<port>`, as a Prometheus scrape target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port>/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Serves `sample` from now on, in place of any earlier sample of the same device
    /// (node, GPU index, MIG instance).
    pub fn set(&self, sample: GpuSample) {
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).insert(sample.device(), sample);
    }

    /// Stops serving every device the pod holds (its series go stale in Prometheus at the
    /// next scrape); returns how many there were.
    pub fn remove(&self, namespace: &str, pod: &str) -> usize {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let before = samples.len();
        samples.retain(|_, s| !(s.namespace == namespace && s.pod == pod));
        before - samples.len()
    }

    /// The `/metrics` text as it is now.
    pub fn metrics(&self) -> String {
        render(&self.samples)
    }
}

impl Drop for DcgmExporter {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn render(samples: &Samples) -> String {
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for family in &FAMILIES {
        let lines: Vec<String> = samples
            .values()
            .filter_map(|s| Some(format!("{}{} {}\n", family.name, s.labels(), (family.value)(s)?)))
            .collect();
        if !lines.is_empty() {
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} gauge", family.name, family.help, family.name);
            out.extend(lines);
        }
    }
    out
}

/// Label values escaped as the text format wants (the exporter itself does not escape).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A stable, UUID-shaped `GPU-…` id for a node's GPU (FNV-1a of both).
fn fake_uuid(node: &str, gpu: u32) -> String {
    let hash = |seed: u64| {
        let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
        for byte in node.bytes().chain(gpu.to_le_bytes()) {
            h = (h ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        h
    };
    let hex = format!("{:016x}{:016x}", hash(1), hash(2));
    format!("GPU-{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Past DCGM samples for a benchmark or a test: `DCGM_FI_DEV_GPU_UTIL` of `series` pods
/// (see [`History::sample`]), one sample every `step` from `start` until before `end`,
/// with the values of [`History::util`].
#[derive(Clone, Debug)]
pub struct History {
    pub series: usize,
    pub start: SystemTime,
    pub end: SystemTime,
    pub step: Duration,
}

impl History {
    /// Series `i`: pod `job-<i>` in namespace `team-<i % 8>`, on GPU `i % 8` of node
    /// `gpu-node-<i / 8>`.
    pub fn sample(&self, i: usize) -> GpuSample {
        GpuSample::new(&format!("team-{}", i % 8), &format!("job-{i}"), &format!("gpu-node-{}", i / 8), (i % 8) as u32)
    }

    /// The value of series `i` at step `k`: a third of the pods idle (0-10 %), a third
    /// half busy (35-45 %), a third busy (90-100 %), with noise, so that it compresses like
    /// real data rather than a constant.
    pub fn util(i: usize, k: u64) -> u32 {
        let base = [0, 35, 90][i % 3];
        let mut h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 29;
        base + (h % 11) as u32
    }

    /// The time of step `k`.
    pub fn time(&self, k: u64) -> SystemTime {
        self.start + Duration::from_millis(self.step.as_millis() as u64 * k)
    }

    /// How many samples each series has.
    pub fn steps(&self) -> u64 {
        let span = self.end.duration_since(self.start).unwrap_or_default();
        (span.as_millis().div_ceil(self.step.as_millis().max(1))) as u64
    }

    /// Writes the history as OpenMetrics text (what `promtool tsdb create-blocks-from
    /// openmetrics` reads), one series after the other, streamed through a buffer; returns
    /// the file's size in bytes. 1,000 series of 30 days at 60 s are 12 GB (282 bytes a sample).
    pub fn write_openmetrics(&self, path: &Path) -> Result<u64> {
        let context = || format!("writing {}", path.display());
        let file = std::fs::File::create(path).map_err(Error::io(context()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let family = &FAMILIES[0];
        let start_ms = self.start.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let step_ms = self.step.as_millis() as u64;
        let write = |out: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
            writeln!(out, "# HELP {} {}\n# TYPE {} gauge", family.name, family.help, family.name)?;
            for i in 0..self.series {
                let prefix = format!("{}{}", family.name, self.sample(i).labels());
                for k in 0..self.steps() {
                    let ms = start_ms + k * step_ms;
                    // OpenMetrics timestamps are seconds.
                    if ms.is_multiple_of(1000) {
                        writeln!(out, "{prefix} {} {}", Self::util(i, k), ms / 1000)?;
                    } else {
                        writeln!(out, "{prefix} {} {}.{:03}", Self::util(i, k), ms / 1000, ms % 1000)?;
                    }
                }
            }
            writeln!(out, "# EOF")?;
            out.flush()
        };
        write(&mut out).map_err(Error::io(context()))?;
        let file = out.into_inner().map_err(|e| Error::io(context())(e.into_error()))?;
        Ok(file.metadata().map_err(Error::io(context()))?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_gpu_and_a_mig_slice_read_as_the_real_exporter_writes_them() {
        let samples = Samples::default();
        let whole = GpuSample {
            util_percent: 97,
            fb_used_mib: 40_960,
            power_watts: 612.5,
            ..GpuSample::new("ml", "train-0", "gpu-node-1", 0)
        };
        let uuid = whole.uuid.clone();
        let slice =
            GpuSample { util_percent: 40, ..GpuSample::new("ml", "notebook", "gpu-node-1", 1).mig(3, "1g.10gb") };
        let free = GpuSample::new("", "", "gpu-node-1", 2);
        for s in [whole, slice, free] {
            samples.lock().unwrap().insert(s.device(), s);
        }
        let text = render(&samples);
        let base = |gpu: u32, bus: &str| {
            format!(
                "gpu=\"{gpu}\",UUID=\"{}\",pci_bus_id=\"00000000:{bus}:00.0\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H100 80GB HBM3\"",
                fake_uuid("gpu-node-1", gpu)
            )
        };
        let host = "Hostname=\"gpu-node-1\",DCGM_FI_DRIVER_VERSION=\"570.133.20\"";
        assert!(text.contains(&format!(
            "DCGM_FI_DEV_GPU_UTIL{{{},{host},container=\"main\",namespace=\"ml\",pod=\"train-0\"}} 97\n",
            base(0, "18")
        )));
        assert!(text.contains(&format!("UUID=\"{uuid}\"")));
        assert!(text.contains("pod=\"train-0\"} 40960\n"));
        assert!(text.contains("pod=\"train-0\"} 612.500000\n"));
        assert!(text.contains(&format!(
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{},GPU_I_PROFILE=\"1g.10gb\",GPU_I_ID=\"3\",{host},container=\"main\",namespace=\"ml\",pod=\"notebook\"}} 0.400000\n",
            base(1, "28")
        )));
        assert!(!text.lines().any(|l| l.starts_with("DCGM_FI_DEV") && l.contains("GPU_I_ID")), "{text}");
        assert!(text.contains(&format!("DCGM_FI_DEV_GPU_UTIL{{{},{host}}} 0\n", base(2, "38"))), "{text}");
        assert_eq!(text.matches("# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n").count(), 1);
        assert!(uuid.starts_with("GPU-") && uuid.len() == 40, "{uuid}");
    }

    #[test]
    fn history_is_openmetrics_with_one_sample_per_step() {
        let dir = std::env::temp_dir().join(format!("gantry-dcgm-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let history =
            History { series: 3, start, end: start + Duration::from_secs(600), step: Duration::from_secs(60) };
        let path = dir.join("history.om");
        let bytes = history.write_openmetrics(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(bytes as usize, text.len());
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 30);
        assert!(text.ends_with("# EOF\n"));
        let last = text.lines().rev().nth(1).unwrap();
        assert!(
            last.contains("pod=\"job-2\"") && last.ends_with(&format!(" {} 1700000540", History::util(2, 9))),
            "{last}"
        );
        assert!((0..3).all(|i| (0..10).all(|k| History::util(i, k) <= 100)));
    }
}
