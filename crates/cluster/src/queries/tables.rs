//! What each table keeps and sorts by: which rows a [`ListQuery`]'s filters
//! let through (free text, place, status, node) and each sortable column's
//! key. Pure functions over rows and cached summaries, tested here without
//! a cache; the adapters beside this file only apply them. Visibility is not
//! here: it is the viewer's, checked by the adapters first.

use gantry_domain::gpu::CapacityType;
use gantry_domain::view::{
    DeploymentRow, JobRow, JobStatus, ListQuery, Millis, NodeRow, PendingRow, PodRow, RolloutState,
};

use crate::summary::{DeploymentSummary, PodSummary};

// Nodes

/// Whether the node list shows a cluster's nodes: all clusters unless one is
/// named (nodes have no namespace, so the namespace filter does not apply).
pub fn nodes_shown_in(query: &ListQuery, cluster: &str) -> bool {
    !query.cluster.as_deref().is_some_and(|c| !c.is_empty() && c != cluster)
}

/// The node list's filters: free text over name, GPU model and instance
/// type; statuses `gpu`, `cpu`, `spot`, `on-demand` and `not-ready` (any
/// other status keeps every node).
pub fn node_matches(query: &ListQuery, n: &NodeRow) -> bool {
    query.matches_text(&[&n.name, &n.gpus.model, n.gpus.instance_type.as_deref().unwrap_or("")])
        && match query.status_filter() {
            Some("gpu") => n.gpus.has_gpus(),
            Some("cpu") => !n.gpus.has_gpus(),
            Some("spot") => n.gpus.capacity_type == CapacityType::Spot,
            Some("on-demand") => n.gpus.capacity_type == CapacityType::OnDemand,
            Some("not-ready") => !n.ready,
            _ => true,
        }
}

pub type NodeKey = (i64, String, String, String);

/// The node list's sort key for `column`: a numeric column sorts by its
/// number first, then (cluster, name); by default (cluster, name).
pub fn node_key(n: &NodeRow, column: &str) -> NodeKey {
    let by = |number: i64| (number, n.cluster.clone(), n.name.clone(), String::new());
    match column {
        "model" => (0, n.gpus.model.clone(), n.cluster.clone(), n.name.clone()),
        "free" => by(n.gpu_free),
        "allocated" => by(n.gpu_allocated),
        "gpus" => by(n.gpus.capacity),
        "pods" => by(n.pods as i64),
        _ => (0, n.cluster.clone(), n.name.clone(), String::new()),
    }
}

// Pods

/// The column the pod list is sorted by, as asked (any text; unknown ones
/// sort in the default order).
pub fn pod_column(query: &ListQuery) -> &str {
    query.sort.as_deref().map(str::trim).unwrap_or("")
}

/// Whether a pod page is the caches' own order, (cluster, namespace, name),
/// with nothing filtered out but by place: then it can be read straight off
/// the ordered caches.
pub fn pods_in_stored_order(query: &ListQuery) -> bool {
    let default_order = !matches!(pod_column(query), "gpus" | "created" | "phase" | "node");
    let filtered = query.node_filter().is_some() || query.status_filter().is_some() || query.text_filter().is_some();
    default_order && !filtered
}

/// The pod list's filters: place, node, status (the pod's phase, in any
/// case; a pod being deleted keeps its phase here) and free text over name.
pub fn pod_matches(query: &ListQuery, cluster: &str, namespace: &str, pod: &PodSummary) -> bool {
    query.matches_place(cluster, namespace)
        && query.node_filter().is_none_or(|n| pod.node.as_deref() == Some(n))
        && query.status_filter().is_none_or(|s| s.eq_ignore_ascii_case(pod.phase.as_str()))
        && query.matches_text(&[&pod.name])
}

/// A pod list's sort key: the tuple the list is ordered by, borrowed from the
/// pod instead of built from strings for every comparison.
pub type PodKey<'a> = (i64, &'a str, &'a str, &'a str);

/// The fields a pod list sorts on, read from a cached pod or from a row, so
/// that both give the same key.
pub struct PodFields<'a> {
    cluster: &'a str,
    namespace: &'a str,
    name: &'a str,
    gpus: i64,
    created: Option<Millis>,
    /// As shown: "Terminating" for a pod being deleted.
    phase: &'a str,
    node: Option<&'a str>,
}

impl<'a> PodFields<'a> {
    pub fn of_pod(cluster: &'a str, namespace: &'a str, p: &'a PodSummary) -> Self {
        PodFields {
            cluster,
            namespace,
            name: &p.name,
            gpus: i64::from(p.gpus),
            created: p.created,
            phase: if p.deleting { "Terminating" } else { p.phase.as_str() },
            node: p.node.as_deref(),
        }
    }

    pub fn of_row(row: &'a PodRow) -> Self {
        PodFields {
            cluster: &row.cluster,
            namespace: &row.namespace,
            name: &row.name,
            gpus: row.gpus,
            created: row.created,
            phase: &row.phase,
            node: row.node.as_deref(),
        }
    }

    /// The key for `column`; by default (cluster, namespace, name).
    pub fn key(&self, column: &str) -> PodKey<'a> {
        match column {
            "gpus" => (self.gpus, "", "", self.name),
            "created" => (self.created.unwrap_or(0), "", "", self.name),
            "phase" => (0, self.phase, "", self.name),
            "node" => (0, self.node.unwrap_or(""), "", self.name),
            _ => (0, self.cluster, self.namespace, self.name),
        }
    }
}

// Pending pods

/// The pending list's filters: a pod waiting for a node, by place, free text
/// over name, and status `gpu` for those that want GPUs.
pub fn pending_matches(query: &ListQuery, cluster: &str, namespace: &str, pod: &PodSummary) -> bool {
    pod.is_unscheduled()
        && query.matches_place(cluster, namespace)
        && query.matches_text(&[&pod.name])
        && !(query.status_filter() == Some("gpu") && pod.gpus == 0)
}

pub type RowKey = (i64, String, String);

/// The pending list's sort key for `column`; by default (cluster/namespace,
/// name).
pub fn pending_key(p: &PendingRow, column: &str) -> RowKey {
    match column {
        "gpus" => (p.gpus, String::new(), p.name.clone()),
        "since" => (p.since.unwrap_or(0), String::new(), p.name.clone()),
        _ => (0, format!("{}/{}", p.cluster, p.namespace), p.name.clone()),
    }
}

// Jobs

/// The job status a query asks for; an unknown one filters nothing.
pub fn job_status(query: &ListQuery) -> Option<JobStatus> {
    query.status_filter().and_then(JobStatus::parse)
}

/// The job list's filters: place, `status` (from [`job_status`]) and free
/// text over name.
pub fn job_matches(
    query: &ListQuery,
    status: Option<JobStatus>,
    cluster: &str,
    namespace: &str,
    (job_status, name): (JobStatus, &str),
) -> bool {
    query.matches_place(cluster, namespace) && status.is_none_or(|s| job_status == s) && query.matches_text(&[name])
}

/// The job list's sort key for `column` at time `now` (a running job's
/// duration grows); by default (cluster/namespace, name).
pub fn job_key(j: &JobRow, column: &str, now: Millis) -> RowKey {
    match column {
        "gpus" => (j.gpus(), String::new(), j.name.clone()),
        "duration" => (j.started.map_or(0, |s| j.finished.unwrap_or(now) - s), String::new(), j.name.clone()),
        "status" => (0, j.status.label().to_string(), j.name.clone()),
        "started" => (j.started.unwrap_or(0), String::new(), j.name.clone()),
        _ => (0, format!("{}/{}", j.cluster, j.namespace), j.name.clone()),
    }
}

// Deployments

/// The deployment list's filters that a cached deployment answers: place
/// and free text over name, image and model.
pub fn deployment_matches(query: &ListQuery, cluster: &str, namespace: &str, d: &DeploymentSummary) -> bool {
    query.matches_place(cluster, namespace)
        && query.matches_text(&[&d.name, &d.image, d.model.as_deref().unwrap_or("")])
}

/// The deployment list's status filter, on the rollout as shown (a rollout
/// whose pods cannot be scheduled counts as failed): `complete`,
/// `progressing` or `failed`; any other status keeps every row.
pub fn rollout_matches(status: &str, rollout: &RolloutState) -> bool {
    match status {
        "complete" => *rollout == RolloutState::Complete,
        "progressing" => matches!(rollout, RolloutState::Progressing(_)),
        "failed" => matches!(rollout, RolloutState::Failed(_)),
        _ => true,
    }
}

/// The deployment list's sort key for `column`; by default
/// (cluster/namespace, name).
pub fn deployment_key(d: &DeploymentRow, column: &str) -> RowKey {
    match column {
        "gpus" => (d.gpus_per_replica * i64::from(d.desired), String::new(), d.name.clone()),
        "ready" => (i64::from(d.ready), String::new(), d.name.clone()),
        "model" => (0, d.model.clone().unwrap_or_default(), d.name.clone()),
        _ => (0, format!("{}/{}", d.cluster, d.namespace), d.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::gpu::NodeGpus;

    use super::*;
    use crate::summary::PodPhase;

    /// A change to the default query, one per table row.
    type Edit = fn(&mut ListQuery);

    fn query(edit: impl FnOnce(&mut ListQuery)) -> ListQuery {
        let mut q = ListQuery::default();
        edit(&mut q);
        q
    }

    fn node(name: &str, model: &str, gpus: i64, capacity_type: CapacityType, ready: bool) -> NodeRow {
        NodeRow {
            cluster: "a".into(),
            name: name.into(),
            ready,
            unschedulable: false,
            gpus: NodeGpus {
                model: model.into(),
                capacity: gpus,
                allocatable: gpus,
                capacity_type,
                instance_type: (gpus > 0).then(|| "p5.48xlarge".to_string()),
                ..Default::default()
            },
            gpu_allocated: 0,
            gpu_free: gpus,
            cpu_millis: 0,
            memory_bytes: 0,
            pods: 0,
            created: None,
            conditions: Vec::new(),
            moved_off: Vec::new(),
            taints: Vec::new(),
        }
    }

    #[test]
    fn node_filters() {
        let h100 = node("gpu-1", "NVIDIA-H100-80GB-HBM3", 8, CapacityType::OnDemand, true);
        let spot = node("gpu-2", "NVIDIA-A100-SXM4-80GB", 8, CapacityType::Spot, false);
        let cpu = node("cpu-1", "", 0, CapacityType::Unknown, true);
        // (status, text) → which of h100, spot, cpu are kept
        for (status, text, kept) in [
            ("", "", [true, true, true]),
            ("gpu", "", [true, true, false]),
            ("cpu", "", [false, false, true]),
            ("spot", "", [false, true, false]),
            ("on-demand", "", [true, false, false]),
            ("not-ready", "", [false, true, false]),
            (" gpu ", "", [true, true, false]),
            ("no-such-status", "", [true, true, true]),
            ("", "h100", [true, false, false]),
            ("", "P5.48", [true, true, false]),
            ("", "cpu-", [false, false, true]),
            ("gpu", "a100", [false, true, false]),
        ] {
            let q = query(|q| {
                q.status = Some(status.into());
                q.q = Some(text.into());
            });
            let got = [&h100, &spot, &cpu].map(|n| node_matches(&q, n));
            assert_eq!(got, kept, "status {status:?}, text {text:?}");
        }
    }

    #[test]
    fn nodes_are_listed_for_the_cluster_asked_for() {
        for (asked, cluster, shown) in
            [(None, "a", true), (Some(""), "a", true), (Some("a"), "a", true), (Some("a"), "b", false)]
        {
            let q = query(|q| q.cluster = asked.map(str::to_string));
            assert_eq!(nodes_shown_in(&q, cluster), shown, "{asked:?} for {cluster}");
        }
        let q = query(|q| q.namespace = Some("vision".into()));
        assert!(nodes_shown_in(&q, "a"), "nodes have no namespace");
    }

    #[test]
    fn node_order() {
        let mut b = node("n-1", "NVIDIA-A100-SXM4-80GB", 8, CapacityType::OnDemand, true);
        b.cluster = "b".into();
        let rows = [
            b,
            node("n-2", "NVIDIA-A100-SXM4-80GB", 8, CapacityType::OnDemand, true),
            node("n-1", "NVIDIA-H100-80GB-HBM3", 8, CapacityType::OnDemand, true),
        ];
        let sorted = |column: &str| {
            let mut sorted: Vec<&NodeRow> = rows.iter().collect();
            sorted.sort_by_key(|n| node_key(n, column));
            sorted.iter().map(|n| format!("{}/{}", n.cluster, n.name)).collect::<Vec<_>>()
        };
        assert_eq!(sorted(""), ["a/n-1", "a/n-2", "b/n-1"]);
        assert_eq!(sorted("no-such-column"), sorted(""));
        assert_eq!(sorted("model"), ["a/n-2", "b/n-1", "a/n-1"]);
    }

    /// A numeric column sorts by its number, not by name with the number
    /// only breaking ties.
    #[test]
    fn numeric_node_columns_sort_by_their_number() {
        let with = |name: &str, capacity: i64, allocated: i64, pods: usize| {
            let mut n = node(name, "NVIDIA-H100-80GB-HBM3", capacity, CapacityType::OnDemand, true);
            n.gpu_allocated = allocated;
            n.gpu_free = capacity - allocated;
            n.pods = pods;
            n
        };
        let rows = [with("a-big", 8, 1, 3), with("b-small", 2, 2, 9), with("c-mid", 4, 0, 1)];
        let sorted = |column: &str| {
            let mut sorted: Vec<&NodeRow> = rows.iter().collect();
            sorted.sort_by_key(|n| node_key(n, column));
            sorted.iter().map(|n| n.name.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(sorted("gpus"), ["b-small", "c-mid", "a-big"]);
        assert_eq!(sorted("free"), ["b-small", "c-mid", "a-big"]);
        assert_eq!(sorted("allocated"), ["c-mid", "a-big", "b-small"]);
        assert_eq!(sorted("pods"), ["c-mid", "a-big", "b-small"]);
    }

    fn pod(name: &str, phase: PodPhase, node: Option<&str>, gpus: u32) -> PodSummary {
        crate::summary::test_pod(name, phase, node, gpus)
    }

    #[test]
    fn when_pods_are_read_in_stored_order() {
        let cases: [(Edit, bool); 15] = [
            (|_| {}, true),
            (|q| q.desc = true, true),
            (|q| q.page = Some(7), true),
            (|q| q.cluster = Some("a".into()), true),
            (|q| q.namespace = Some("vision".into()), true),
            (|q| q.sort = Some("name".into()), true),
            (|q| q.sort = Some("no-such-column".into()), true),
            (|q| q.q = Some("  ".into()), true),
            (|q| q.sort = Some("gpus".into()), false),
            (|q| q.sort = Some(" created ".into()), false),
            (|q| q.sort = Some("phase".into()), false),
            (|q| q.sort = Some("node".into()), false),
            (|q| q.q = Some("llama".into()), false),
            (|q| q.status = Some("Running".into()), false),
            (|q| q.node = Some("gpu-1".into()), false),
        ];
        for (edit, stored) in cases {
            let q = query(edit);
            assert_eq!(pods_in_stored_order(&q), stored, "{q:?}");
        }
    }

    #[test]
    fn pod_filters() {
        let running = pod("llama-0", PodPhase::Running, Some("gpu-1"), 1);
        let waiting = pod("llama-1", PodPhase::Pending, None, 1);
        let going = PodSummary { deleting: true, ..pod("bert-0", PodPhase::Running, Some("gpu-2"), 0) };
        // (edit, which of running, waiting, going are kept) in cluster a, namespace vision
        let cases: [(Edit, [bool; 3]); 11] = [
            (|_| {}, [true, true, true]),
            (|q| q.cluster = Some("b".into()), [false, false, false]),
            (|q| q.namespace = Some(" vision ".into()), [true, true, true]),
            (|q| q.namespace = Some("nlp".into()), [false, false, false]),
            (|q| q.node = Some("gpu-1".into()), [true, false, false]),
            (|q| q.status = Some("running".into()), [true, false, true]),
            (|q| q.status = Some("PENDING".into()), [false, true, false]),
            // A pod being deleted shows as Terminating but filters by its phase.
            (|q| q.status = Some("Terminating".into()), [false, false, false]),
            (|q| q.q = Some("LLAMA".into()), [true, true, false]),
            (|q| q.q = Some("-0".into()), [true, false, true]),
            (
                |q| {
                    q.q = Some("llama".into());
                    q.status = Some("Pending".into());
                },
                [false, true, false],
            ),
        ];
        for (edit, kept) in cases {
            let q = query(edit);
            let got = [&running, &waiting, &going].map(|p| pod_matches(&q, "a", "vision", p));
            assert_eq!(got, kept, "{q:?}");
        }
    }

    #[test]
    fn pod_order() {
        let pods = [
            ("a", "vision", PodSummary { created: Some(30), ..pod("c", PodPhase::Running, Some("n2"), 2) }),
            ("a", "nlp", PodSummary { created: Some(10), ..pod("d", PodPhase::Pending, None, 0) }),
            ("b", "vision", PodSummary { deleting: true, ..pod("a", PodPhase::Running, Some("n1"), 2) }),
            ("a", "vision", PodSummary { created: Some(20), ..pod("b", PodPhase::Succeeded, Some("n1"), 4) }),
        ];
        let sorted = |column: &str| {
            let mut sorted: Vec<_> = pods.iter().collect();
            sorted.sort_by_key(|(cluster, namespace, p)| PodFields::of_pod(cluster, namespace, p).key(column));
            sorted.iter().map(|(_, _, p)| p.name.to_string()).collect::<Vec<_>>()
        };
        for (column, names) in [
            ("", ["d", "b", "c", "a"]),
            ("name", ["d", "b", "c", "a"]),
            ("gpus", ["d", "a", "c", "b"]),
            // Unknown creation times come first.
            ("created", ["a", "d", "b", "c"]),
            ("phase", ["d", "c", "b", "a"]),
            // Unscheduled pods come first.
            ("node", ["d", "a", "b", "c"]),
        ] {
            assert_eq!(sorted(column), names, "by {column:?}");
        }
    }

    #[test]
    fn pending_filters() {
        let gpu = pod("train-0", PodPhase::Pending, None, 8);
        let cpu = pod("prep-0", PodPhase::Pending, None, 0);
        let scheduled = pod("train-1", PodPhase::Pending, Some("gpu-1"), 8);
        let going = PodSummary { deleting: true, ..pod("train-2", PodPhase::Pending, None, 8) };
        let cases: [(Edit, [bool; 4]); 5] = [
            (|_| {}, [true, true, false, false]),
            (|q| q.status = Some("gpu".into()), [true, false, false, false]),
            (|q| q.status = Some("no-such-status".into()), [true, true, false, false]),
            (|q| q.q = Some("prep".into()), [false, true, false, false]),
            (|q| q.namespace = Some("nlp".into()), [false, false, false, false]),
        ];
        for (edit, kept) in cases {
            let q = query(edit);
            let got = [&gpu, &cpu, &scheduled, &going].map(|p| pending_matches(&q, "a", "vision", p));
            assert_eq!(got, kept, "{q:?}");
        }
    }

    fn pending_row(cluster: &str, name: &str, gpus: i64, since: Option<Millis>) -> PendingRow {
        PendingRow {
            cluster: cluster.into(),
            namespace: "vision".into(),
            name: name.into(),
            gpus,
            since,
            owner: None,
            reason: String::new(),
            autoscaler: None,
        }
    }

    #[test]
    fn pending_order() {
        let rows =
            [pending_row("b", "x", 1, Some(5)), pending_row("a", "y", 8, None), pending_row("a", "z", 2, Some(1))];
        let sorted = |column: &str| {
            let mut sorted: Vec<&PendingRow> = rows.iter().collect();
            sorted.sort_by_key(|p| pending_key(p, column));
            sorted.iter().map(|p| p.name.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(sorted(""), ["y", "z", "x"]);
        assert_eq!(sorted("gpus"), ["x", "z", "y"]);
        assert_eq!(sorted("since"), ["y", "z", "x"]);
    }

    fn job(name: &str, status: JobStatus) -> (JobStatus, &str) {
        (status, name)
    }

    #[test]
    fn job_filters() {
        let running = job("train-llama", JobStatus::Running);
        let failed = job("train-bert", JobStatus::Failed);
        for (status, text, namespace, kept) in [
            ("", "", "", [true, true]),
            ("running", "", "", [true, false]),
            ("failed", "", "vision", [false, true]),
            ("failed", "", "nlp", [false, false]),
            // Statuses are the labels, in lower case; anything else filters nothing.
            ("Running", "", "", [true, true]),
            ("no-such-status", "", "", [true, true]),
            ("", "Llama", "", [true, false]),
            ("succeeded", "", "", [false, false]),
        ] {
            let q = query(|q| {
                q.status = Some(status.into());
                q.q = Some(text.into());
                q.namespace = Some(namespace.into());
            });
            let wanted = job_status(&q);
            let got = [running, failed].map(|j| job_matches(&q, wanted, "a", "vision", j));
            assert_eq!(got, kept, "status {status:?}, text {text:?}, namespace {namespace:?}");
        }
    }

    fn job_row(
        namespace: &str,
        name: &str,
        status: JobStatus,
        started: Option<Millis>,
        finished: Option<Millis>,
    ) -> JobRow {
        JobRow {
            cluster: "a".into(),
            namespace: namespace.into(),
            name: name.into(),
            team: None,
            status,
            gpus_per_pod: 2,
            parallelism: 1,
            completions: 1,
            active: 0,
            succeeded: 0,
            failed: 0,
            started,
            finished,
            message: None,
            kind: JobRow::PLAIN_KIND.into(),
            state: None,
            roles: Vec::new(),
            cost_so_far: None,
        }
    }

    #[test]
    fn job_order() {
        let rows = [
            job_row("vision", "done-long", JobStatus::Succeeded, Some(10), Some(510)),
            job_row("nlp", "running", JobStatus::Running, Some(700), None),
            job_row("vision", "waiting", JobStatus::Pending, None, None),
            JobRow { parallelism: 4, ..job_row("vision", "wide", JobStatus::Failed, Some(100), Some(150)) },
        ];
        let sorted = |column: &str, now: Millis| {
            let mut sorted: Vec<&JobRow> = rows.iter().collect();
            sorted.sort_by_key(|j| job_key(j, column, now));
            sorted.iter().map(|j| j.name.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(sorted("", 1000), ["running", "done-long", "waiting", "wide"]);
        assert_eq!(sorted("gpus", 1000), ["done-long", "running", "waiting", "wide"]);
        assert_eq!(sorted("status", 1000), ["wide", "waiting", "running", "done-long"]);
        assert_eq!(sorted("started", 1000), ["waiting", "done-long", "wide", "running"]);
        // A running job's duration runs until now.
        assert_eq!(sorted("duration", 1000), ["waiting", "wide", "running", "done-long"]);
        assert_eq!(sorted("duration", 1300), ["waiting", "wide", "done-long", "running"]);
    }

    fn deployment(name: &str, image: &str, model: Option<&str>) -> DeploymentSummary {
        DeploymentSummary {
            name: name.into(),
            team: None,
            desired: 1,
            updated: 1,
            ready: 1,
            available: 1,
            image: image.into(),
            model: model.map(Into::into),
            model_version: None,
            gpus_per_replica: 1,
            gpu_model: None,
            revision: None,
            managed_by_gantry: false,
            generation: 1,
            rollout: RolloutState::Complete,
            created: None,
            uid: "".into(),
        }
    }

    #[test]
    fn deployment_filters() {
        let serve = deployment("serve", "ghcr.io/acme/vllm:1", Some("llama-3"));
        let web = deployment("web", "nginx:1", None);
        for (text, cluster, kept) in [
            ("", "", [true, true]),
            ("serve", "", [true, false]),
            ("VLLM", "", [true, false]),
            ("llama", "", [true, false]),
            ("nginx", "", [false, true]),
            ("", "b", [false, false]),
        ] {
            let q = query(|q| {
                q.q = Some(text.into());
                q.cluster = Some(cluster.into());
            });
            let got = [&serve, &web].map(|d| deployment_matches(&q, "a", "vision", d));
            assert_eq!(got, kept, "text {text:?}, cluster {cluster:?}");
        }
        let states =
            [RolloutState::Complete, RolloutState::Progressing("1 of 2".into()), RolloutState::Failed("stuck".into())];
        for (status, kept) in [
            ("complete", [true, false, false]),
            ("progressing", [false, true, false]),
            ("failed", [false, false, true]),
            ("no-such-status", [true, true, true]),
        ] {
            assert_eq!(states.each_ref().map(|s| rollout_matches(status, s)), kept, "{status}");
        }
    }

    #[test]
    fn deployment_order() {
        let row =
            |namespace: &str, name: &str, desired: i32, gpus: i64, ready: i32, model: Option<&str>| DeploymentRow {
                cluster: "a".into(),
                namespace: namespace.into(),
                name: name.into(),
                team: None,
                desired,
                updated: desired,
                ready,
                available: ready,
                image: "i".into(),
                model: model.map(str::to_string),
                model_version: None,
                gpus_per_replica: gpus,
                gpu_model: None,
                revision: None,
                managed_by_gantry: false,
                version: 1,
                autoscaler: None,
                rollout: RolloutState::Complete,
                created: None,
                troubles: Vec::new(),
            };
        let rows = [
            row("vision", "big", 4, 2, 1, Some("llama")),
            row("nlp", "wide", 10, 0, 10, None),
            row("vision", "small", 1, 4, 0, Some("bert")),
        ];
        let sorted = |column: &str| {
            let mut sorted: Vec<&DeploymentRow> = rows.iter().collect();
            sorted.sort_by_key(|d| deployment_key(d, column));
            sorted.iter().map(|d| d.name.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(sorted(""), ["wide", "big", "small"]);
        assert_eq!(sorted("gpus"), ["wide", "small", "big"]);
        assert_eq!(sorted("ready"), ["small", "big", "wide"]);
        assert_eq!(sorted("model"), ["wide", "small", "big"]);
    }
}
