//! Read models built from the caches. Every function takes a [`Viewer`] and
//! returns only what that viewer may see; sorting, filtering and paging
//! happen here, on the server, so a 30,000-pod list never leaves it whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gantry_domain::fit::NodeFree;
use gantry_domain::gpu::CapacityType;
use gantry_domain::policy::Visibility;
use gantry_domain::view::{
    AutoscalerView, ClusterSummary, ConnectionState, DeploymentRow, EventRow, GpuModelSummary, JobRow, JobStatus,
    ListQuery, NodeRow, Overview, Page, PendingRow, PodRow, QuotaRow, RolloutState,
};

use crate::hub::{ClusterCache, Hub};
use crate::summary::{OwnerKind, PodSummary};

/// What the asking user may see, and which team owns which namespace (to
/// label rows).
pub struct Viewer {
    pub visibility: Visibility,
    /// cluster → namespace → team name
    pub teams: BTreeMap<String, BTreeMap<String, String>>,
}

impl Viewer {
    pub fn everything() -> Viewer {
        Viewer { visibility: Visibility::Everything, teams: BTreeMap::new() }
    }

    pub fn team(&self, cluster: &str, namespace: &str) -> Option<String> {
        self.teams.get(cluster).and_then(|n| n.get(namespace)).cloned()
    }

    fn sees(&self, cluster: &str, namespace: &str) -> bool {
        self.visibility.namespace(cluster, namespace)
    }
}

fn gpu_allocation(cluster: &ClusterCache) -> HashMap<Arc<str>, (i64, usize)> {
    cluster.pods.read(|pods| {
        let mut by_node: HashMap<Arc<str>, (i64, usize)> = HashMap::new();
        for pod in pods.values().filter(|p| p.holds_gpus()) {
            if let Some(node) = &pod.node {
                let entry = by_node.entry(node.clone()).or_default();
                entry.0 += i64::from(pod.gpus);
                entry.1 += 1;
            }
        }
        by_node
    })
}

fn node_rows(cluster: &ClusterCache) -> Vec<NodeRow> {
    let allocation = gpu_allocation(cluster);
    cluster.nodes.read(|nodes| {
        nodes
            .values()
            .map(|n| {
                let (allocated, pods) = allocation.get(&n.name).copied().unwrap_or_default();
                NodeRow {
                    cluster: cluster.name.to_string(),
                    name: n.name.to_string(),
                    ready: n.ready,
                    unschedulable: n.unschedulable,
                    gpu_free: (n.gpus.allocatable - allocated).max(0),
                    gpu_allocated: allocated,
                    gpus: n.gpus.clone(),
                    cpu_millis: n.cpu_millis,
                    memory_bytes: n.memory_bytes,
                    pods,
                    created: n.created,
                }
            })
            .collect()
    })
}

fn summary_of(cluster: &ClusterCache, viewer: &Viewer) -> ClusterSummary {
    let status = cluster.status();
    let rows = node_rows(cluster);
    let pods = if viewer.visibility.is_everything() {
        cluster.pods.len()
    } else {
        cluster.pods.read(|pods| pods.keys().filter(|k| viewer.sees(&cluster.name, &k.namespace)).count())
    };
    ClusterSummary {
        name: cluster.name.to_string(),
        state: status.state,
        version: status.version,
        last_contact: status.last_contact,
        message: status.message,
        nodes: rows.len(),
        gpu_nodes: rows.iter().filter(|n| n.gpus.has_gpus()).count(),
        gpu_capacity: rows.iter().map(|n| n.gpus.capacity).sum(),
        gpu_allocated: rows.iter().map(|n| n.gpu_allocated).sum(),
        pods,
    }
}

fn visible_clusters(hub: &Hub, viewer: &Viewer) -> Vec<Arc<ClusterCache>> {
    hub.clusters().into_iter().filter(|c| viewer.visibility.cluster(&c.name)).collect()
}

pub fn clusters(hub: &Hub, viewer: &Viewer) -> Vec<ClusterSummary> {
    visible_clusters(hub, viewer).iter().map(|c| summary_of(c, viewer)).collect()
}

pub fn cluster(hub: &Hub, viewer: &Viewer, name: &str) -> Option<ClusterSummary> {
    visible_clusters(hub, viewer).iter().find(|c| &*c.name == name).map(|c| summary_of(c, viewer))
}

pub fn overview(hub: &Hub, viewer: &Viewer) -> Overview {
    let clusters = visible_clusters(hub, viewer);
    let mut models: BTreeMap<String, GpuModelSummary> = BTreeMap::new();
    let mut overview = Overview::default();
    for cluster in &clusters {
        let summary = summary_of(cluster, viewer);
        for node in node_rows(cluster).into_iter().filter(|n| n.gpus.has_gpus()) {
            let m = models
                .entry(node.gpus.model.clone())
                .or_insert_with(|| GpuModelSummary { model: node.gpus.model.clone(), ..Default::default() });
            m.nodes += 1;
            m.capacity += node.gpus.capacity;
            m.allocatable += node.gpus.allocatable;
            m.allocated += node.gpu_allocated;
            m.free += node.gpu_free;
            match node.gpus.capacity_type {
                CapacityType::Spot => m.spot_gpus += node.gpus.capacity,
                _ => m.on_demand_gpus += node.gpus.capacity,
            }
        }
        overview.nodes += summary.nodes;
        overview.gpu_capacity += summary.gpu_capacity;
        overview.gpu_allocated += summary.gpu_allocated;
        overview.pods += summary.pods;
        overview.pending_gpu_pods += cluster.pods.read(|pods| {
            pods.iter()
                .filter(|(k, p)| p.gpus > 0 && p.is_unscheduled() && viewer.sees(&cluster.name, &k.namespace))
                .count()
        });
        overview.running_jobs += cluster.jobs.read(|jobs| {
            jobs.iter()
                .filter(|(k, j)| j.status == JobStatus::Running && viewer.sees(&cluster.name, &k.namespace))
                .count()
        });
        let (deployments, ready) = cluster.deployments.read(|ds| {
            let visible: Vec<_> = ds.iter().filter(|(k, _)| viewer.sees(&cluster.name, &k.namespace)).collect();
            (
                visible.len(),
                visible.iter().filter(|(_, d)| d.rollout == RolloutState::Complete && d.available >= d.desired).count(),
            )
        });
        overview.deployments += deployments;
        overview.deployments_ready += ready;
        overview.clusters.push(summary);
    }
    overview.gpu_models = models.into_values().collect();
    overview
}

pub fn nodes(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<NodeRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        if query.cluster.as_deref().is_some_and(|c| !c.is_empty() && c != &*cluster.name) {
            continue;
        }
        rows.extend(node_rows(&cluster));
    }
    rows.retain(|n| {
        query.matches_text(&[&n.name, &n.gpus.model, n.gpus.instance_type.as_deref().unwrap_or("")])
            && match query.status_filter() {
                Some("gpu") => n.gpus.has_gpus(),
                Some("cpu") => !n.gpus.has_gpus(),
                Some("spot") => n.gpus.capacity_type == CapacityType::Spot,
                Some("on-demand") => n.gpus.capacity_type == CapacityType::OnDemand,
                Some("not-ready") => !n.ready,
                _ => true,
            }
    });
    query.paginate(rows, |n, column| match column {
        "model" => (n.gpus.model.clone(), n.cluster.clone(), n.name.clone(), 0),
        "free" => (String::new(), n.cluster.clone(), n.name.clone(), n.gpu_free),
        "allocated" => (String::new(), n.cluster.clone(), n.name.clone(), n.gpu_allocated),
        "gpus" => (String::new(), String::new(), n.name.clone(), n.gpus.capacity),
        "pods" => (String::new(), String::new(), n.name.clone(), n.pods as i64),
        _ => (n.cluster.clone(), n.name.clone(), String::new(), 0),
    })
}

pub fn node(hub: &Hub, viewer: &Viewer, cluster_name: &str, name: &str) -> Option<(NodeRow, Vec<PodRow>)> {
    let cluster = visible_clusters(hub, viewer).into_iter().find(|c| &*c.name == cluster_name)?;
    let row = node_rows(&cluster).into_iter().find(|n| n.name == name)?;
    let pods = cluster.pods.read(|pods| {
        let mut rows: Vec<PodRow> = pods
            .iter()
            .filter(|(k, p)| p.node.as_deref() == Some(name) && viewer.sees(&cluster.name, &k.namespace))
            .map(|(k, p)| pod_row(&cluster.name, &k.namespace, p, None))
            .collect();
        rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        rows
    });
    Some((row, pods))
}

fn pod_row(cluster: &str, namespace: &str, p: &PodSummary, reason: Option<String>) -> PodRow {
    PodRow {
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        name: p.name.to_string(),
        phase: if p.deleting { "Terminating".into() } else { p.phase.as_str().into() },
        node: p.node.as_deref().map(str::to_string),
        gpus: i64::from(p.gpus),
        ready: format!("{}/{}", p.ready, p.containers),
        restarts: p.restarts.min(i32::MAX as u32) as i32,
        created: p.created,
        owner: p.owner.as_deref().map(str::to_string),
        reason: reason.or_else(|| p.unschedulable.as_deref().map(str::to_string)),
    }
}

pub fn pods(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<PodRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        cluster.pods.read(|pods| {
            for (key, pod) in pods {
                if !viewer.sees(&cluster.name, &key.namespace) || !query.matches_place(&cluster.name, &key.namespace) {
                    continue;
                }
                if query.node_filter().is_some_and(|n| pod.node.as_deref() != Some(n)) {
                    continue;
                }
                if query.status_filter().is_some_and(|s| !s.eq_ignore_ascii_case(pod.phase.as_str())) {
                    continue;
                }
                if !query.matches_text(&[&pod.name]) {
                    continue;
                }
                rows.push(pod_row(&cluster.name, &key.namespace, pod, None));
            }
        });
    }
    query.paginate(rows, |p, column| match column {
        "gpus" => (p.gpus, String::new(), p.name.clone()),
        "created" => (p.created.unwrap_or(0), String::new(), p.name.clone()),
        "phase" => (0, p.phase.clone(), p.name.clone()),
        "node" => (0, p.node.clone().unwrap_or_default(), p.name.clone()),
        _ => (0, format!("{}/{}", p.cluster, p.namespace), p.name.clone()),
    })
}

fn job_row(cluster: &str, namespace: &str, j: &crate::summary::JobSummary, viewer: &Viewer) -> JobRow {
    JobRow {
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        name: j.name.to_string(),
        team: viewer.team(cluster, namespace).or_else(|| j.team.as_deref().map(str::to_string)),
        status: j.status,
        gpus_per_pod: i64::from(j.gpus_per_pod),
        parallelism: j.parallelism,
        completions: j.completions,
        active: j.active,
        succeeded: j.succeeded,
        failed: j.failed,
        started: j.started,
        finished: j.finished,
        message: j.message.as_deref().map(str::to_string),
    }
}

pub fn jobs(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<JobRow> {
    let status = query.status_filter().and_then(JobStatus::parse);
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        cluster.jobs.read(|jobs| {
            for (key, job) in jobs {
                if viewer.sees(&cluster.name, &key.namespace)
                    && query.matches_place(&cluster.name, &key.namespace)
                    && status.is_none_or(|s| job.status == s)
                    && query.matches_text(&[&job.name])
                {
                    rows.push(job_row(&cluster.name, &key.namespace, job, viewer));
                }
            }
        });
    }
    let now = crate::hub::now_ms();
    query.paginate(rows, |j, column| match column {
        "gpus" => (j.gpus_per_pod * i64::from(j.parallelism), String::new(), j.name.clone()),
        "duration" => (j.started.map_or(0, |s| j.finished.unwrap_or(now) - s), String::new(), j.name.clone()),
        "status" => (0, j.status.label().to_string(), j.name.clone()),
        "started" => (j.started.unwrap_or(0), String::new(), j.name.clone()),
        _ => (0, format!("{}/{}", j.cluster, j.namespace), j.name.clone()),
    })
}

fn deployment_row(
    cluster: &ClusterCache,
    namespace: &str,
    d: &crate::summary::DeploymentSummary,
    viewer: &Viewer,
) -> DeploymentRow {
    let autoscaler = cluster.autoscalers.read(|hpas| {
        hpas.iter().find(|(k, h)| &*k.namespace == namespace && h.target == d.name).map(|(_, h)| AutoscalerView {
            min: h.min,
            max: h.max,
            target_cpu_percent: h.target_cpu_percent,
            current: h.current,
        })
    });
    DeploymentRow {
        cluster: cluster.name.to_string(),
        namespace: namespace.to_string(),
        name: d.name.to_string(),
        team: viewer.team(&cluster.name, namespace).or_else(|| d.team.as_deref().map(str::to_string)),
        desired: d.desired,
        updated: d.updated,
        ready: d.ready,
        available: d.available,
        image: d.image.to_string(),
        model: d.model.as_deref().map(str::to_string),
        model_version: d.model_version.as_deref().map(str::to_string),
        gpus_per_replica: i64::from(d.gpus_per_replica),
        gpu_model: d.gpu_model.as_deref().map(str::to_string),
        revision: d.revision,
        managed_by_gantry: d.managed_by_gantry,
        version: d.generation,
        autoscaler,
        rollout: stalled_reason(cluster, namespace, d).unwrap_or_else(|| d.rollout.clone()),
        created: d.created,
    }
}

/// A rollout whose new pods cannot be scheduled is stuck even before its
/// progress deadline; say so with the scheduler's words.
fn stalled_reason(
    cluster: &ClusterCache,
    namespace: &str,
    d: &crate::summary::DeploymentSummary,
) -> Option<RolloutState> {
    if d.rollout == RolloutState::Complete {
        return None;
    }
    let replica_sets: Vec<Box<str>> = cluster.replica_sets.read(|sets| {
        sets.iter()
            .filter(|(k, rs)| &*k.namespace == namespace && rs.deployment.as_deref() == Some(&*d.name))
            .map(|(_, rs)| rs.name.clone())
            .collect()
    });
    cluster.pods.read(|pods| {
        pods.iter()
            .find(|(k, p)| {
                &*k.namespace == namespace
                    && p.owner_kind == OwnerKind::ReplicaSet
                    && p.owner.as_ref().is_some_and(|o| replica_sets.contains(o))
                    && p.is_unscheduled()
                    && p.unschedulable.is_some()
            })
            .map(|(_, p)| {
                RolloutState::Failed(format!("pods cannot be scheduled: {}", p.unschedulable.as_deref().unwrap_or("")))
            })
    })
}

pub fn deployments(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<DeploymentRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        let keys: Vec<(String, String)> = cluster.deployments.read(|ds| {
            ds.iter()
                .filter(|(k, d)| {
                    viewer.sees(&cluster.name, &k.namespace)
                        && query.matches_place(&cluster.name, &k.namespace)
                        && query.matches_text(&[&d.name, &d.image, d.model.as_deref().unwrap_or("")])
                })
                .map(|(k, _)| (k.namespace.to_string(), k.name.to_string()))
                .collect()
        });
        for (namespace, name) in keys {
            if let Some(row) = deployment_in(&cluster, viewer, &namespace, &name) {
                rows.push(row);
            }
        }
    }
    if let Some(status) = query.status_filter() {
        rows.retain(|d| match status {
            "complete" => d.rollout == RolloutState::Complete,
            "progressing" => matches!(d.rollout, RolloutState::Progressing(_)),
            "failed" => matches!(d.rollout, RolloutState::Failed(_)),
            _ => true,
        });
    }
    query.paginate(rows, |d, column| match column {
        "gpus" => (d.gpus_per_replica * i64::from(d.desired), String::new(), d.name.clone()),
        "ready" => (i64::from(d.ready), String::new(), d.name.clone()),
        "model" => (0, d.model.clone().unwrap_or_default(), d.name.clone()),
        _ => (0, format!("{}/{}", d.cluster, d.namespace), d.name.clone()),
    })
}

fn deployment_in(cluster: &ClusterCache, viewer: &Viewer, namespace: &str, name: &str) -> Option<DeploymentRow> {
    let summary = cluster
        .deployments
        .read(|ds| ds.iter().find(|(k, _)| &*k.namespace == namespace && &*k.name == name).map(|(_, d)| d.clone()))?;
    Some(deployment_row(cluster, namespace, &summary, viewer))
}

/// One deployment with its pods and recent events.
pub fn deployment(
    hub: &Hub,
    viewer: &Viewer,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Option<(DeploymentRow, Vec<PodRow>, Vec<EventRow>)> {
    if !viewer.sees(cluster, namespace) {
        return None;
    }
    let cluster = hub.cluster(cluster)?;
    let row = deployment_in(&cluster, viewer, namespace, name)?;
    let replica_sets: Vec<Box<str>> = cluster.replica_sets.read(|sets| {
        sets.iter()
            .filter(|(k, rs)| &*k.namespace == namespace && rs.deployment.as_deref() == Some(name))
            .map(|(_, rs)| rs.name.clone())
            .collect()
    });
    let pods = pods_where(&cluster, namespace, |p| {
        p.owner_kind == OwnerKind::ReplicaSet && p.owner.as_ref().is_some_and(|o| replica_sets.contains(o))
    });
    let mut objects: Vec<String> = vec![name.to_string()];
    objects.extend(replica_sets.iter().map(|r| r.to_string()));
    objects.extend(pods.iter().map(|p| p.name.clone()));
    let events = events_for(&cluster, namespace, &objects);
    Some((row, pods, events))
}

fn pods_where(cluster: &ClusterCache, namespace: &str, keep: impl Fn(&PodSummary) -> bool) -> Vec<PodRow> {
    let mut rows: Vec<PodRow> = cluster.pods.read(|pods| {
        pods.iter()
            .filter(|(k, p)| &*k.namespace == namespace && keep(p))
            .map(|(k, p)| pod_row(&cluster.name, &k.namespace, p, None))
            .collect()
    });
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

fn events_for(cluster: &ClusterCache, namespace: &str, objects: &[String]) -> Vec<EventRow> {
    let mut rows: Vec<EventRow> = cluster.events.read(|events| {
        events
            .iter()
            .filter(|(k, e)| &*k.namespace == namespace && objects.iter().any(|o| **o == *e.object))
            .map(|(_, e)| EventRow {
                kind: if e.warning { "Warning".into() } else { "Normal".into() },
                reason: e.reason.to_string(),
                message: e.message.to_string(),
                count: e.count,
                last_seen: e.last_seen,
                object: format!("{}/{}", e.kind.to_lowercase(), e.object),
            })
            .collect()
    });
    rows.sort_by_key(|r| std::cmp::Reverse(r.last_seen));
    rows.truncate(100);
    rows
}

/// One job with its pods and recent events.
pub fn job(
    hub: &Hub,
    viewer: &Viewer,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Option<(JobRow, Vec<PodRow>, Vec<EventRow>)> {
    if !viewer.sees(cluster, namespace) {
        return None;
    }
    let cluster = hub.cluster(cluster)?;
    let row = cluster.jobs.read(|jobs| {
        jobs.iter()
            .find(|(k, _)| &*k.namespace == namespace && &*k.name == name)
            .map(|(_, j)| job_row(&cluster.name, namespace, j, viewer))
    })?;
    let pods = pods_where(&cluster, namespace, |p| p.owner_kind == OwnerKind::Job && p.owner.as_deref() == Some(name));
    let mut objects = vec![name.to_string()];
    objects.extend(pods.iter().map(|p| p.name.clone()));
    let events = events_for(&cluster, namespace, &objects);
    Some((row, pods, events))
}

/// (namespace, pod) → (when, message) of its newest FailedScheduling event.
type SchedulerReasons = HashMap<(Arc<str>, Box<str>), (i64, Box<str>)>;

/// Pods waiting for a node, with the scheduler's own reason.
pub fn pending(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<PendingRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        // The newest FailedScheduling message per pod.
        let reasons: SchedulerReasons = cluster.events.read(|events| {
            let mut newest = SchedulerReasons::new();
            for (key, e) in events.iter().filter(|(_, e)| &*e.reason == "FailedScheduling" && &*e.kind == "Pod") {
                let at = e.last_seen.unwrap_or(0);
                let slot = newest.entry((key.namespace.clone(), e.object.clone())).or_insert((i64::MIN, Box::from("")));
                if at >= slot.0 {
                    *slot = (at, e.message.clone());
                }
            }
            newest
        });
        cluster.pods.read(|pods| {
            for (key, pod) in pods.iter().filter(|(_, p)| p.is_unscheduled()) {
                if !viewer.sees(&cluster.name, &key.namespace)
                    || !query.matches_place(&cluster.name, &key.namespace)
                    || !query.matches_text(&[&pod.name])
                    || (query.status_filter() == Some("gpu") && pod.gpus == 0)
                {
                    continue;
                }
                let reason = reasons
                    .get(&(key.namespace.clone(), pod.name.clone()))
                    .map(|(_, m)| m.to_string())
                    .or_else(|| pod.unschedulable.as_deref().map(str::to_string))
                    .unwrap_or_else(|| "Waiting for the scheduler".to_string());
                rows.push(PendingRow {
                    cluster: cluster.name.to_string(),
                    namespace: key.namespace.to_string(),
                    name: pod.name.to_string(),
                    gpus: i64::from(pod.gpus),
                    since: pod.created,
                    owner: pod.owner.as_deref().map(str::to_string),
                    reason,
                });
            }
        });
    }
    query.paginate(rows, |p, column| match column {
        "gpus" => (p.gpus, String::new(), p.name.clone()),
        "since" => (p.since.unwrap_or(0), String::new(), p.name.clone()),
        _ => (0, format!("{}/{}", p.cluster, p.namespace), p.name.clone()),
    })
}

pub fn quotas(hub: &Hub, viewer: &Viewer) -> Vec<QuotaRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        cluster.quotas.read(|quotas| {
            for (key, q) in quotas.iter().filter(|(_, q)| q.gpus_hard.is_some()) {
                if viewer.sees(&cluster.name, &key.namespace) {
                    rows.push(QuotaRow {
                        cluster: cluster.name.to_string(),
                        namespace: key.namespace.to_string(),
                        team: viewer.team(&cluster.name, &key.namespace),
                        name: q.name.to_string(),
                        gpus_used: q.gpus_used,
                        gpus_hard: q.gpus_hard,
                        managed_by_gantry: q.managed_by_gantry,
                    });
                }
            }
        });
    }
    rows.sort_by(|a, b| (&a.cluster, &a.namespace, &a.name).cmp(&(&b.cluster, &b.namespace, &b.name)));
    rows
}

/// Free GPUs per schedulable node, for the fit preview.
pub fn free_gpus(hub: &Hub, cluster: &str) -> Vec<NodeFree> {
    let Some(cluster) = hub.cluster(cluster) else { return Vec::new() };
    node_rows(&cluster)
        .into_iter()
        .filter(|n| n.ready && !n.unschedulable && n.gpus.has_gpus())
        .map(|n| NodeFree { model: n.gpus.model, free_gpus: n.gpu_free })
        .collect()
}

/// GPU models present in a cluster (for the launch form).
pub fn gpu_models(hub: &Hub, cluster: &str) -> Vec<String> {
    let Some(cluster) = hub.cluster(cluster) else { return Vec::new() };
    let mut models: Vec<String> = cluster
        .nodes
        .read(|nodes| nodes.values().filter(|n| n.gpus.has_gpus()).map(|n| n.gpus.model.clone()).collect());
    models.sort();
    models.dedup();
    models
}

pub fn is_live(hub: &Hub, cluster: &str) -> bool {
    hub.cluster(cluster).is_some_and(|c| c.status().state == ConnectionState::Live)
}

/// Phase counts, for tests and the overview of one cluster.
pub fn pod_phases(cluster: &ClusterCache) -> BTreeMap<&'static str, usize> {
    cluster.pods.read(|pods| {
        let mut counts = BTreeMap::new();
        for p in pods.values() {
            *counts.entry(p.phase.as_str()).or_default() += 1;
        }
        counts
    })
}
