//! Debian's Prometheus scraping the DCGM test exporter: what a test sets is what PromQL
//! answers, a removed pod goes stale, an outage fails queries and keeps the data, and a
//! backfilled past answers range queries.

use std::io::ErrorKind;
use std::time::{Duration, SystemTime};

use gantry_testbed::shared::eventually;
use gantry_testbed::{DcgmExporter, Error, GpuSample, History, Prometheus};
use serde_json::Value;

/// The value of each series of an instant vector, by pod.
fn by_pod(data: &Value) -> Vec<(String, f64)> {
    data["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|s| {
            let pod = s["metric"]["pod"].as_str().unwrap_or_default().to_string();
            (pod, s["value"][1].as_str().expect("a value").parse().expect("a number"))
        })
        .collect()
}

/// Waits until `promql` answers exactly `expected` (pod, value).
async fn answers(prometheus: &Prometheus, promql: &str, expected: &[(&str, f64)]) -> Value {
    let expected: Vec<(String, f64)> = expected.iter().map(|(p, v)| (p.to_string(), *v)).collect();
    eventually(&format!("{promql} = {expected:?}"), 15, || async {
        let data = prometheus.query(promql).await.ok()?;
        (by_pod(&data) == expected).then_some(data)
    })
    .await
}

#[tokio::test]
async fn what_the_exporter_says_is_what_promql_answers_and_a_removed_pod_goes_stale() {
    let exporter = DcgmExporter::start().unwrap();
    exporter.set(GpuSample { util_percent: 80, fb_used_mib: 30_000, ..GpuSample::new("ml", "x", "gpu-node-1", 0) });
    exporter.set(GpuSample { util_percent: 40, ..GpuSample::new("ml", "y", "gpu-node-1", 1).mig(3, "1g.10gb") });
    let prometheus = Prometheus::start(&[exporter.target()]).await.unwrap();

    let data = answers(&prometheus, r#"avg_over_time(DCGM_FI_DEV_GPU_UTIL{pod="x"}[30s])"#, &[("x", 80.0)]).await;
    let labels = &data["result"][0]["metric"];
    assert_eq!(labels["namespace"], "ml");
    assert_eq!(labels["container"], "main");
    assert_eq!(labels["Hostname"], "gpu-node-1");
    assert_eq!(labels["device"], "nvidia0");
    assert_eq!(labels["modelName"], "NVIDIA H100 80GB HBM3");
    assert!(labels["UUID"].as_str().unwrap().starts_with("GPU-"), "{labels}");
    answers(&prometheus, r#"DCGM_FI_DEV_FB_USED{pod="x"}"#, &[("x", 30_000.0)]).await;
    answers(
        &prometheus,
        r#"avg_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{GPU_I_PROFILE="1g.10gb"}[30s])"#,
        &[("y", 0.4)],
    )
    .await;
    assert_eq!(by_pod(&prometheus.query(r#"DCGM_FI_DEV_GPU_UTIL{pod="y"}"#).await.unwrap()), [], "MIG: no GPU_UTIL");

    // The pod goes idle, then away; the other stays.
    exporter.set(GpuSample { util_percent: 3, ..GpuSample::new("ml", "x", "gpu-node-1", 0) });
    answers(&prometheus, r#"DCGM_FI_DEV_GPU_UTIL{pod="x"}"#, &[("x", 3.0)]).await;
    assert_eq!(exporter.remove("ml", "x"), 1);
    answers(&prometheus, r#"{__name__=~"DCGM_.+", pod="x"}"#, &[]).await;
    answers(&prometheus, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", &[("y", 0.4)]).await;
    // Stale, not gone: the past still holds it.
    let past = by_pod(&prometheus.query(r#"max_over_time(DCGM_FI_DEV_GPU_UTIL{pod="x"}[1m])"#).await.unwrap());
    assert_eq!(past, [("x".to_string(), 80.0)]);
}

#[tokio::test]
async fn a_stopped_prometheus_refuses_connections_and_comes_back_with_its_data() {
    let exporter = DcgmExporter::start().unwrap();
    exporter.set(GpuSample { util_percent: 55, ..GpuSample::new("ml", "x", "gpu-node-1", 0) });
    let prometheus = Prometheus::start(&[exporter.target()]).await.unwrap();
    let url = prometheus.url();
    answers(&prometheus, r#"DCGM_FI_DEV_GPU_UTIL{pod="x"}"#, &[("x", 55.0)]).await;
    let before = SystemTime::now();

    prometheus.stop();
    assert!(prometheus.pid().is_none());
    match prometheus.query("up").await {
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!("a stopped Prometheus answered {other:?}"),
    }
    exporter.set(GpuSample { util_percent: 66, ..GpuSample::new("ml", "x", "gpu-node-1", 0) });

    prometheus.start_again().await.unwrap();
    assert_eq!(prometheus.url(), url, "same address");
    // Only samples from before the outage can answer at `before`.
    let then = prometheus.query_at(r#"DCGM_FI_DEV_GPU_UTIL{pod="x"}"#, before).await.unwrap();
    assert_eq!(by_pod(&then), [("x".to_string(), 55.0)]);
    answers(&prometheus, r#"DCGM_FI_DEV_GPU_UTIL{pod="x"}"#, &[("x", 66.0)]).await;
}

#[tokio::test]
async fn a_backfilled_past_answers_range_queries() {
    let prometheus = Prometheus::start(&[]).await.unwrap();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(now / 60 * 60) - Duration::from_secs(4 * 3600);
    let step = Duration::from_secs(60);
    let history = History { series: 2, start, end: start + Duration::from_secs(2 * 3600), step };
    let file = prometheus.dir().join("history.om");
    history.write_openmetrics(&file).unwrap();

    prometheus.backfill(&file).await.unwrap();

    let last = history.time(history.steps() - 1);
    let data = prometheus.query_range("DCGM_FI_DEV_GPU_UTIL", start, last, step).await.unwrap();
    let mut series = data["result"].as_array().unwrap().clone();
    series.sort_by_key(|s| s["metric"]["pod"].as_str().unwrap().to_string());
    assert_eq!(series.len(), 2, "{data}");
    for (i, s) in series.iter().enumerate() {
        assert_eq!(s["metric"]["pod"], format!("job-{i}"));
        let values: Vec<(f64, f64)> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().parse().unwrap()))
            .collect();
        let expected: Vec<(f64, f64)> = (0..120)
            .map(|k| {
                let t = history.time(k).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
                (t, f64::from(History::util(i, k)))
            })
            .collect();
        assert_eq!(values, expected, "series {i}");
    }
    let sum = prometheus.query_at(r#"sum_over_time(DCGM_FI_DEV_GPU_UTIL{pod="job-1"}[2h])"#, last).await.unwrap();
    let expected: u32 = (0..120).map(|k| History::util(1, k)).sum();
    assert_eq!(by_pod(&sum), [("job-1".to_string(), f64::from(expected))]);
}
