//! The PromQL Gantry sends for GPU utilisation, and how its answer becomes one mean per pod.
//! Pure: the HTTP side is [`Client`](crate::Client).

use std::collections::{BTreeMap, BTreeSet};

use gantry_domain::usage::{Span, Utilisation};

/// Ratio (0..1) of time the graphics/compute engine was busy, from DCGM's profiling module;
/// the only utilisation a MIG slice has.
pub const PROF_GR_ENGINE_ACTIVE: &str = "DCGM_FI_PROF_GR_ENGINE_ACTIVE";
/// Percent (0..100) of time a kernel ran, from NVML (what `nvidia-smi` shows); whole GPUs only.
pub const DEV_GPU_UTIL: &str = "DCGM_FI_DEV_GPU_UTIL";

/// The mean GPU utilisation of one pod over a span.
#[derive(Clone, Debug, PartialEq)]
pub struct PodUtilisation {
    pub namespace: String,
    pub pod: String,
    /// 0..100 (a ratio metric is scaled); a few hundredths over 100 can occur, and
    /// [`Utilisation::add`] holds it to 100.
    pub mean_percent: f64,
}

/// Records what [`Client::utilisation`](crate::Client::utilisation) returned for `span` of
/// `cluster`.
pub fn record(utilisation: &mut Utilisation, cluster: &str, span: Span, pods: &[PodUtilisation]) {
    for pod in pods {
        utilisation.add(cluster, &pod.namespace, &pod.pod, span, pod.mean_percent);
    }
}

/// One query per metric: each device's mean over the span (`avg_over_time` of the raw
/// samples, which scrapes at a regular interval make a time-weighted mean; a subquery would
/// resample through the 5-minute lookback and stretch a stopped pod's last value over time it
/// no longer ran), then the mean over the pod's devices. The grouping keeps both label
/// variants apart, so [`per_pod`] can tell a workload from the exporter that reported it.
/// Series without a `pod` label (GPUs nobody holds, scraped without Kubernetes service
/// discovery) are left out by Prometheus.
///
/// Evaluated at `span.end - 1 ms`, the range of `span.len()` ms is exactly `[start, end)` in
/// Prometheus 3, whose ranges are open on the left; Prometheus 2's are closed, so a sample on
/// the very millisecond `start - 1` is counted there too.
pub fn promql(metric: &str, span: Span) -> String {
    format!(
        "avg by (namespace, pod, exported_namespace, exported_pod) (avg_over_time({metric}{{pod!=\"\"}}[{}ms]))",
        span.len()
    )
}

/// The evaluation time for `span`, as the HTTP API takes it (Unix seconds).
pub fn evaluation_time(span: Span) -> String {
    let at = span.end - 1;
    let sign = if at < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", (at / 1000).unsigned_abs(), (at % 1000).unsigned_abs())
}

/// One series of an instant vector: its labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Series {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    /// The scrape target's own `(namespace, pod)` when Prometheus renamed the exporter's
    /// labels to `exported_*` (a target labelled with the exporter's pod, `honor_labels` off).
    fn scraped_from(&self) -> Option<(&str, &str)> {
        (!self.label("exported_pod").is_empty()).then(|| (self.label("namespace"), self.label("pod")))
    }

    /// The pod holding the device. Prometheus renames each label on its own, so each name
    /// comes from `exported_<label>` where that exists.
    fn holder(&self) -> Option<(String, String)> {
        let pick = |name: &str| {
            let exported = self.label(&format!("exported_{name}"));
            if exported.is_empty() { self.label(name) } else { exported }
        };
        let (namespace, pod) = (pick("namespace"), pick("pod"));
        (!namespace.is_empty() && !pod.is_empty()).then(|| (namespace.to_string(), pod.to_string()))
    }
}

/// Each pod's mean over its devices: `DCGM_FI_PROF_GR_ENGINE_ACTIVE` (× 100) for a pod that
/// has it, else `DCGM_FI_DEV_GPU_UTIL`; sorted by namespace and pod.
///
/// A free GPU scraped through Kubernetes service discovery carries the exporter pod's own
/// `namespace` and `pod` (the target's labels fill the ones the exporter left out). Where the
/// exporter's other series were renamed to `exported_*`, that pod is known to be the
/// exporter and is left out; where every GPU of an exporter is free, or `honorLabels` is on,
/// it cannot be told from a workload and comes back as the exporter pod, which holds no GPU
/// allocation, so the usage ledger never applies it.
pub fn per_pod(prof: &[Series], util: &[Series]) -> Vec<PodUtilisation> {
    let exporters: BTreeSet<(&str, &str)> = prof.iter().chain(util).filter_map(Series::scraped_from).collect();
    let means = |series: &[Series], scale: f64| {
        let mut by_pod: BTreeMap<(String, String), (f64, u32)> = BTreeMap::new();
        for s in series.iter().filter(|s| s.value.is_finite()) {
            if s.scraped_from().is_none() && exporters.contains(&(s.label("namespace"), s.label("pod"))) {
                continue;
            }
            if let Some(holder) = s.holder() {
                let (sum, n) = by_pod.entry(holder).or_default();
                *sum += s.value * scale;
                *n += 1;
            }
        }
        by_pod.into_iter().map(|(pod, (sum, n))| (pod, sum / f64::from(n))).collect::<BTreeMap<_, _>>()
    };
    let mut pods = means(util, 1.0);
    pods.extend(means(prof, 100.0));
    pods.into_iter().map(|((namespace, pod), mean_percent)| PodUtilisation { namespace, pod, mean_percent }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], value: f64) -> Series {
        Series { labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), value }
    }

    fn pod(namespace: &str, pod: &str, mean_percent: f64) -> PodUtilisation {
        PodUtilisation { namespace: namespace.into(), pod: pod.into(), mean_percent }
    }

    #[test]
    fn the_query_covers_the_span_to_the_millisecond() {
        let span = Span::new(1_790_000_000_000, 1_790_003_600_000);
        assert_eq!(
            promql(PROF_GR_ENGINE_ACTIVE, span),
            "avg by (namespace, pod, exported_namespace, exported_pod) \
             (avg_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{pod!=\"\"}[3600000ms]))"
        );
        assert_eq!(evaluation_time(span), "1790003599.999");
        assert_eq!(evaluation_time(Span::new(0, 1_001)), "1.000");
        assert_eq!(evaluation_time(Span::new(-5_000, -1_500)), "-1.501");
    }

    #[test]
    fn prof_wins_per_pod_and_util_fills_in() {
        let a = [("namespace", "ml"), ("pod", "a")];
        let b = [("namespace", "ml"), ("pod", "b")];
        let prof = [series(&a, 0.25)];
        let util = [series(&a, 90.0), series(&b, 35.0)];
        assert_eq!(per_pod(&prof, &util), [pod("ml", "a", 25.0), pod("ml", "b", 35.0)]);
    }

    #[test]
    fn a_pod_is_the_mean_of_its_groups_and_nan_is_unknown() {
        let old = [("namespace", "ops"), ("pod", "dcgm-1"), ("exported_namespace", "ml"), ("exported_pod", "a")];
        let new = [("namespace", "ops"), ("pod", "dcgm-2"), ("exported_namespace", "ml"), ("exported_pod", "a")];
        let c = [("namespace", "ml"), ("pod", "c")];
        let util = [series(&old, 20.0), series(&new, 60.0), series(&c, f64::NAN)];
        assert_eq!(per_pod(&[], &util), [pod("ml", "a", 40.0)], "an exporter restart splits a pod in two groups");
        let prof = [series(&c, f64::NAN)];
        assert_eq!(per_pod(&prof, &[series(&c, 7.0)]), [pod("ml", "c", 7.0)], "an unknown PROF falls back");
    }

    #[test]
    fn label_variants_name_the_workload_not_the_exporter() {
        let util = [
            series(&[("namespace", "ml"), ("pod", "a")], 10.0),
            series(&[("namespace", "ops"), ("pod", "dcgm"), ("exported_namespace", "ml"), ("exported_pod", "b")], 20.0),
            // The target had a `pod` label but no `namespace` one: only `pod` was renamed.
            series(&[("namespace", "ml"), ("pod", "dcgm-2"), ("exported_pod", "c")], 30.0),
            // A free GPU behind the first renamed exporter: its pod is the exporter's.
            series(&[("namespace", "ops"), ("pod", "dcgm")], 40.0),
            series(&[("namespace", "ml")], 50.0),
            series(&[("pod", "d")], 60.0),
        ];
        assert_eq!(per_pod(&[], &util), [pod("ml", "a", 10.0), pod("ml", "b", 20.0), pod("ml", "c", 30.0)]);
        // Without a renamed series to give it away, the exporter cannot be told apart.
        assert_eq!(per_pod(&[], &util[3..4]), [pod("ops", "dcgm", 40.0)]);
    }

    #[test]
    fn recording_gives_each_pod_the_whole_span() {
        let span = Span::new(0, 3_600_000);
        let mut utilisation = Utilisation::new(10.0);
        record(&mut utilisation, "a", span, &[pod("ml", "x", 5.0)]);
        let mut expected = Utilisation::new(10.0);
        expected.add("a", "ml", "x", span, 5.0);
        assert_eq!(utilisation, expected);
    }
}
