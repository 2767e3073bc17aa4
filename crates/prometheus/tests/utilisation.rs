//! The adapter against Debian's Prometheus scraping the DCGM test exporter (and, where the
//! exporter cannot say it, a few lines of exposition text served from here): per-pod means,
//! the exporter's label variants, outages, and what a URL that is not Prometheus answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use gantry_domain::usage::Span;
use gantry_prometheus::{Client, PodUtilisation, PrometheusError};
use gantry_testbed::shared::eventually;
use gantry_testbed::{DcgmExporter, GpuSample, Prometheus};

/// An HTTP server that answers every request alike, and keeps each request's head.
struct TextServer {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TextServer {
    fn start(status: &str, content_type: &str, body: &str) -> TextServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (kept, stop) = (Arc::clone(&heads), Arc::clone(&stopping));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                kept.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(response.as_bytes());
            }
        });
        TextServer { addr, heads, stopping, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TextServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The last ten seconds.
fn recent() -> Span {
    let now = now_ms();
    Span::new(now - 10_000, now)
}

/// Waits until Prometheus has scraped every target at least three times.
async fn scraped(prometheus: &Prometheus, targets: usize) {
    eventually("three scrapes of every target", 20, || async {
        let data = prometheus.query("count_over_time(up[1m]) >= 3").await.ok()?;
        (data["result"].as_array()?.len() == targets).then_some(())
    })
    .await
}

fn pod(namespace: &str, pod: &str, mean_percent: f64) -> PodUtilisation {
    PodUtilisation { namespace: namespace.into(), pod: pod.into(), mean_percent }
}

/// Equal pod for pod, with means equal to within float rounding (× 100 of a ratio).
#[track_caller]
fn assert_means(got: &[PodUtilisation], want: &[PodUtilisation]) {
    let names = |pods: &[PodUtilisation]| pods.iter().map(|p| (p.namespace.clone(), p.pod.clone())).collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g.mean_percent - w.mean_percent).abs() < 1e-6, "{got:?}, want {want:?}");
    }
}

fn busy(percent: u32, sample: GpuSample) -> GpuSample {
    GpuSample { util_percent: percent, ..sample }
}

/// dcgm-exporter's lines for a T4 without the profiling metric (pod `old-gpu`) and a GPU whose
/// two metrics disagree (pod `both`), in the exporter's label order.
const HAND_WRITTEN: &str = "\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-5fd4c2a0-0000-0000-0000-000000000000\",pci_bus_id=\"00000000:00:04.0\",device=\"nvidia0\",modelName=\"Tesla T4\",Hostname=\"t4-node\",DCGM_FI_DRIVER_VERSION=\"570.133.20\",container=\"main\",namespace=\"research\",pod=\"old-gpu\"} 35
DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-5fd4c2a0-0000-0000-0000-000000000001\",pci_bus_id=\"00000000:18:00.0\",device=\"nvidia0\",modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"a100-node\",DCGM_FI_DRIVER_VERSION=\"570.133.20\",container=\"main\",namespace=\"research\",pod=\"both\"} 90
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu=\"0\",UUID=\"GPU-5fd4c2a0-0000-0000-0000-000000000001\",pci_bus_id=\"00000000:18:00.0\",device=\"nvidia0\",modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"a100-node\",DCGM_FI_DRIVER_VERSION=\"570.133.20\",container=\"main\",namespace=\"research\",pod=\"both\"} 0.250000
";

#[tokio::test]
async fn each_pod_gets_the_mean_of_its_gpus_and_engine_activity_wins() {
    let exporter = DcgmExporter::start().unwrap();
    exporter.set(busy(30, GpuSample::new("ml", "train-0", "gpu-node-1", 0)));
    exporter.set(busy(70, GpuSample::new("ml", "train-0", "gpu-node-1", 1)));
    exporter.set(busy(80, GpuSample::new("ml", "infer-0", "gpu-node-2", 0)));
    exporter.set(busy(40, GpuSample::new("ml", "notebook", "gpu-node-2", 1).mig(3, "1g.10gb")));
    exporter.set(busy(99, GpuSample::new("", "", "gpu-node-2", 2)));
    let text = TextServer::start("200 OK", "text/plain; version=0.0.4; charset=utf-8", HAND_WRITTEN);
    let prometheus = Prometheus::start(&[exporter.target(), text.addr.to_string()]).await.unwrap();
    scraped(&prometheus, 2).await;
    let client = Client::new(&prometheus.url(), None).unwrap();

    let started = Instant::now();
    let pods = client.utilisation(recent()).await.unwrap();
    eprintln!("utilisation of 5 pods (7 devices) over 10 s: {:?}", started.elapsed());

    assert_means(
        &pods,
        &[
            pod("ml", "infer-0", 80.0),
            pod("ml", "notebook", 40.0),
            pod("ml", "train-0", 50.0),
            pod("research", "both", 25.0),
            pod("research", "old-gpu", 35.0),
        ],
    );
    assert!(client.utilisation(Span::new(1_000, 1_000)).await.unwrap().is_empty(), "an empty span");
}

#[tokio::test]
async fn behind_a_service_monitor_the_exported_labels_name_the_pod() {
    let exporter = DcgmExporter::start().unwrap();
    exporter.set(busy(20, GpuSample::new("ml", "train-0", "gpu-node-1", 0)));
    exporter.set(busy(60, GpuSample::new("ml", "train-0", "gpu-node-1", 1)));
    exporter.set(busy(15, GpuSample::new("ml", "notebook", "gpu-node-1", 2).mig(3, "1g.10gb")));
    exporter.set(busy(99, GpuSample::new("", "", "gpu-node-1", 3)));
    // What a ServiceMonitor's discovery gives the target: the exporter pod's own labels.
    // Prometheus then renames the exporter's `namespace`, `pod` and `container`.
    let prometheus = Prometheus::start(&[]).await.unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n- job_name: gpu-operator/nvidia-dcgm-exporter\n  static_configs:\n  - targets: [\"{}\"]\n    \
         labels:\n      namespace: gpu-operator\n      pod: nvidia-dcgm-exporter-x7k2p\n      container: nvidia-dcgm-exporter\n",
        exporter.target()
    );
    std::fs::write(prometheus.dir().join("prometheus.yml"), config).unwrap();
    prometheus.stop();
    prometheus.start_again().await.unwrap();
    scraped(&prometheus, 1).await;
    let renamed = prometheus
        .query(r#"count(DCGM_FI_DEV_GPU_UTIL{namespace="gpu-operator", pod="nvidia-dcgm-exporter-x7k2p", exported_namespace="ml", exported_pod="train-0"})"#)
        .await
        .unwrap();
    assert_eq!(renamed["result"][0]["value"][1], "2", "Prometheus renamed the labels: {renamed}");
    let free = prometheus
        .query(r#"count(DCGM_FI_DEV_GPU_UTIL{pod="nvidia-dcgm-exporter-x7k2p", exported_pod=""})"#)
        .await
        .unwrap();
    assert_eq!(free["result"][0]["value"][1], "1", "the free GPU carries the exporter's pod: {free}");

    let pods = Client::new(&prometheus.url(), None).unwrap().utilisation(recent()).await.unwrap();

    assert_means(&pods, &[pod("ml", "notebook", 15.0), pod("ml", "train-0", 40.0)]);
}

#[tokio::test]
async fn a_stopped_prometheus_is_unreachable_at_once_and_read_again_when_back() {
    let exporter = DcgmExporter::start().unwrap();
    exporter.set(busy(55, GpuSample::new("ml", "x", "gpu-node-1", 0)));
    let prometheus = Prometheus::start(&[exporter.target()]).await.unwrap();
    scraped(&prometheus, 1).await;
    let client = Client::new(&prometheus.url(), None).unwrap();
    assert_means(&client.utilisation(recent()).await.unwrap(), &[pod("ml", "x", 55.0)]);

    prometheus.stop();
    let started = Instant::now();
    let err = client.utilisation(recent()).await.unwrap_err();
    let took = started.elapsed();
    eprintln!("a stopped Prometheus failed in {took:?}: {err}");
    assert!(matches!(err, PrometheusError::Unreachable(_)), "{err:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let message = err.to_string();
    assert!(message.contains(&prometheus.url()) && message.contains("connection refused"), "{message}");

    prometheus.start_again().await.unwrap();
    let pods =
        eventually("utilisation after the restart", 15, || async { client.utilisation(recent()).await.ok() }).await;
    assert_means(&pods, &[pod("ml", "x", 55.0)]);
}

#[tokio::test]
async fn probe_tells_prometheus_from_other_servers_and_bad_urls_are_refused() {
    let exporter = DcgmExporter::start().unwrap();
    let prometheus = Prometheus::start(&[exporter.target()]).await.unwrap();

    let version = Client::new(&prometheus.url(), None).unwrap().probe().await.unwrap();
    let parts: Vec<&str> = version.split(['.', '+', '-']).collect();
    assert!(parts.len() >= 3 && parts[..3].iter().all(|p| p.parse::<u32>().is_ok()), "{version}");

    let exporter_port = Client::new(&format!("http://{}", exporter.target()), None).unwrap();
    let err = exporter_port.probe().await.unwrap_err();
    assert!(matches!(&err, PrometheusError::NotPrometheus(what) if what.contains("404")), "{err:?}");
    let err = exporter_port.utilisation(recent()).await.unwrap_err();
    assert!(matches!(&err, PrometheusError::NotPrometheus(_)), "{err:?}");

    let grafana = TextServer::start("200 OK", "text/html; charset=utf-8", "<!doctype html><title>Grafana</title>");
    let err = Client::new(&grafana.url(), None).unwrap().probe().await.unwrap_err();
    assert!(matches!(&err, PrometheusError::NotPrometheus(what) if what.contains("HTML page")), "{err:?}");

    // Prometheus's own refusal: a span it cannot evaluate.
    let client = Client::new(&prometheus.url(), None).unwrap();
    let err = client.utilisation(Span::new(0, i64::MAX)).await.unwrap_err();
    assert!(matches!(&err, PrometheusError::Refused(400, what) if what.starts_with("bad_data: ")), "{err:?}");

    for url in ["ftp://x", "http://", "not a url"] {
        let err = Client::new(url, None).unwrap_err();
        assert!(matches!(&err, PrometheusError::InvalidUrl(what) if what.contains(url)), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn a_bearer_token_is_sent_and_never_shown() {
    let proxy = TextServer::start("401 Unauthorized", "text/plain", "Unauthorized\n");
    let client = Client::new(&proxy.url(), Some("s3cret-token".into())).unwrap();

    let err = client.probe().await.unwrap_err();

    assert!(matches!(&err, PrometheusError::Refused(401, what) if what.contains("bearer token")), "{err:?}");
    let heads = proxy.heads.lock().unwrap().clone();
    assert!(heads[0].to_ascii_lowercase().contains("\r\nauthorization: bearer s3cret-token\r\n"), "{heads:?}");
    assert!(heads[0].starts_with("GET /api/v1/status/buildinfo "), "{heads:?}");
    for shown in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
