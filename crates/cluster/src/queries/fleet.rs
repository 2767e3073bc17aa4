//! The fleet's read models: clusters and their totals, the overview, nodes,
//! GPU counts and quotas. Totals come from the caches' running totals, not
//! from passes over every pod.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gantry_domain::cost::GpuCount;
use gantry_domain::fit::NodeFree;
use gantry_domain::gpu::CapacityType;
use gantry_domain::view::{
    ClusterSummary, ConnectionState, GpuModelSummary, JobStatus, ListQuery, MovedPod, NodeRow, Overview, Page, PodRow,
    QuotaRow, RolloutState,
};

use super::pod_lists::pod_row;
use super::{Viewer, tables, visible_clusters};
use crate::hub::{ClusterCache, Hub, now_ms};
use crate::summary::Key;

fn node_rows(cluster: &ClusterCache) -> Vec<NodeRow> {
    cluster.pods.read_tallied(|_, tally| {
        cluster.nodes.read(|nodes| {
            nodes
                .values()
                .map(|n| {
                    let load = tally.nodes.get(&n.name).copied().unwrap_or_default();
                    NodeRow {
                        cluster: cluster.name.to_string(),
                        name: n.name.to_string(),
                        ready: n.ready,
                        unschedulable: n.unschedulable,
                        gpu_free: (n.gpus.allocatable - load.gpus).max(0),
                        gpu_allocated: load.gpus,
                        gpus: n.gpus.clone(),
                        cpu_millis: n.cpu_millis,
                        memory_bytes: n.memory_bytes,
                        pods: load.pods,
                        created: n.created,
                        conditions: n.conditions.to_vec(),
                        taints: n.taints.iter().map(|t| t.to_string()).collect(),
                        moved_off: Vec::new(),
                    }
                })
                .collect()
        })
    })
}

fn summary_of(cluster: &ClusterCache, viewer: &Viewer) -> ClusterSummary {
    census(cluster, viewer, None, None).0
}

/// The GPUs held by the pods a viewer sees, by GPU model and capacity type.
type GpuUses = BTreeMap<(String, CapacityType), i64>;

/// One cluster's totals, from the running totals of its pods and one pass
/// over its nodes (the overview is asked for often, and a big cluster has
/// tens of thousands of pods). With `models`, its GPU nodes are also added to
/// the per-model totals, and with `uses`, the GPUs the viewer's pods hold to
/// the per-model uses. Returns the summary and how many of the GPU pods the
/// viewer sees are waiting for a node.
fn census(
    cluster: &ClusterCache,
    viewer: &Viewer,
    mut models: Option<&mut BTreeMap<String, GpuModelSummary>>,
    uses: Option<&mut GpuUses>,
) -> (ClusterSummary, usize) {
    let status = cluster.status();
    let mut summary = ClusterSummary {
        name: cluster.name.to_string(),
        state: status.state,
        version: status.version,
        last_contact: status.last_contact,
        message: status.message,
        nodes: 0,
        gpu_nodes: 0,
        gpu_capacity: 0,
        gpu_allocated: 0,
        pods: 0,
    };
    let mut pending_gpu_pods = 0;
    let everything = viewer.visibility.is_everything();
    cluster.pods.read_tallied(|_, tally| {
        // The GPUs the viewer's pods hold per node: for a viewer of everything
        // the node totals themselves, otherwise the sum over their namespaces.
        let mut held_here: HashMap<&str, i64> = HashMap::new();
        for (namespace, counts) in &tally.namespaces {
            if viewer.sees(&cluster.name, namespace) {
                summary.pods += counts.pods;
                pending_gpu_pods += counts.pending_gpu_pods;
                if uses.is_some() && !everything {
                    for (node, gpus) in &counts.gpus_by_node {
                        *held_here.entry(node).or_default() += gpus;
                    }
                }
            }
        }
        cluster.nodes.read(|nodes| {
            let mut by_model: HashMap<(&str, CapacityType), i64> = HashMap::new();
            for n in nodes.values() {
                let allocated = tally.nodes.get(&n.name).map_or(0, |load| load.gpus);
                if uses.is_some() {
                    let held = if everything { allocated } else { held_here.get(&*n.name).copied().unwrap_or(0) };
                    if held != 0 {
                        *by_model.entry((&n.gpus.model, n.gpus.capacity_type)).or_default() += held;
                    }
                }
                summary.nodes += 1;
                summary.gpu_capacity += n.gpus.capacity;
                summary.gpu_allocated += allocated;
                if !n.gpus.has_gpus() {
                    continue;
                }
                summary.gpu_nodes += 1;
                let Some(models) = models.as_deref_mut() else { continue };
                if !models.contains_key(&n.gpus.model) {
                    let model = GpuModelSummary { model: n.gpus.model.clone(), ..Default::default() };
                    models.insert(n.gpus.model.clone(), model);
                }
                if let Some(m) = models.get_mut(&n.gpus.model) {
                    m.nodes += 1;
                    m.capacity += n.gpus.capacity;
                    m.allocatable += n.gpus.allocatable;
                    m.allocated += allocated;
                    m.free += (n.gpus.allocatable - allocated).max(0);
                    match n.gpus.capacity_type {
                        CapacityType::Spot => m.spot_gpus += n.gpus.capacity,
                        _ => m.on_demand_gpus += n.gpus.capacity,
                    }
                }
            }
            if let Some(uses) = uses {
                for ((model, capacity_type), gpus) in by_model {
                    *uses.entry((model.to_string(), capacity_type)).or_default() += gpus;
                }
            }
        });
    });
    (summary, pending_gpu_pods)
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
    let mut uses = GpuUses::new();
    let mut overview = Overview::default();
    for cluster in &clusters {
        let (summary, pending_gpu_pods) = census(cluster, viewer, Some(&mut models), Some(&mut uses));
        overview.nodes += summary.nodes;
        overview.gpu_capacity += summary.gpu_capacity;
        overview.gpu_allocated += summary.gpu_allocated;
        overview.pods += summary.pods;
        overview.pending_gpu_pods += pending_gpu_pods;
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
    overview.gpus_in_use =
        uses.into_iter().map(|((model, capacity_type), gpus)| GpuCount { model, capacity_type, gpus }).collect();
    overview
}

/// The GPUs held now (by scheduled, unfinished pods) in the namespaces that
/// `include` picks, by the GPU model and capacity type of their nodes. A pod
/// on a node the cache does not know is counted under "unknown".
pub fn gpu_uses(hub: &Hub, include: impl Fn(&str, &str) -> bool) -> Vec<GpuCount> {
    let mut uses: BTreeMap<(String, CapacityType), i64> = BTreeMap::new();
    for cluster in hub.clusters() {
        cluster.pods.read(|pods| {
            cluster.nodes.read(|nodes| {
                let node_of: HashMap<&str, &crate::summary::NodeSummary> =
                    nodes.values().map(|n| (&*n.name, n)).collect();
                for (key, pod) in pods {
                    if pod.gpus == 0 || !pod.holds_gpus() || !include(&cluster.name, &key.namespace) {
                        continue;
                    }
                    let node = pod.node.as_deref().and_then(|name| node_of.get(name));
                    let (model, capacity) = match node {
                        Some(n) => (n.gpus.model.clone(), n.gpus.capacity_type),
                        None => ("unknown".to_string(), CapacityType::Unknown),
                    };
                    *uses.entry((model, capacity)).or_default() += i64::from(pod.gpus);
                }
            })
        });
    }
    uses.into_iter().map(|((model, capacity_type), gpus)| GpuCount { model, capacity_type, gpus }).collect()
}

/// The GPUs held now in each namespace of each cluster, by the model and
/// capacity type of their nodes (for Gantry's own metrics).
pub fn gpu_uses_by_namespace(hub: &Hub) -> Vec<(String, String, GpuCount)> {
    let mut uses: BTreeMap<(String, String, String, CapacityType), i64> = BTreeMap::new();
    for cluster in hub.clusters() {
        cluster.pods.read(|pods| {
            cluster.nodes.read(|nodes| {
                let node_of: HashMap<&str, &crate::summary::NodeSummary> =
                    nodes.values().map(|n| (&*n.name, n)).collect();
                for (key, pod) in pods.iter().filter(|(_, p)| p.gpus > 0 && p.holds_gpus()) {
                    let node = pod.node.as_deref().and_then(|name| node_of.get(name));
                    let (model, capacity) = match node {
                        Some(n) => (n.gpus.model.clone(), n.gpus.capacity_type),
                        None => ("unknown".to_string(), CapacityType::Unknown),
                    };
                    *uses.entry((cluster.name.to_string(), key.namespace.to_string(), model, capacity)).or_default() +=
                        i64::from(pod.gpus);
                }
            })
        });
    }
    uses.into_iter()
        .map(|((cluster, namespace, model, capacity_type), gpus)| {
            (cluster, namespace, GpuCount { model, capacity_type, gpus })
        })
        .collect()
}

/// Every cluster's GPUs (node capacity), by model and capacity type.
pub fn gpu_inventory(hub: &Hub) -> Vec<GpuCount> {
    let mut counts: BTreeMap<(String, CapacityType), i64> = BTreeMap::new();
    for cluster in hub.clusters() {
        cluster.nodes.read(|nodes| {
            for n in nodes.values().filter(|n| n.gpus.has_gpus()) {
                *counts.entry((n.gpus.model.clone(), n.gpus.capacity_type)).or_default() += n.gpus.capacity;
            }
        });
    }
    counts.into_iter().map(|((model, capacity_type), gpus)| GpuCount { model, capacity_type, gpus }).collect()
}

pub fn nodes(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<NodeRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        if tables::nodes_shown_in(query, &cluster.name) {
            rows.extend(node_rows(&cluster));
        }
    }
    rows.retain(|n| tables::node_matches(query, n));
    query.paginate(rows, tables::node_key)
}

pub fn node(hub: &Hub, viewer: &Viewer, cluster_name: &str, name: &str) -> Option<(NodeRow, Vec<PodRow>)> {
    let cluster = visible_clusters(hub, viewer).into_iter().find(|c| &*c.name == cluster_name)?;
    let mut row = node_rows(&cluster).into_iter().find(|n| n.name == name)?;
    if !row.ready {
        row.moved_off = moved_off(&cluster, viewer, &row);
    }
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

/// The pods deleted from a NotReady node since it went NotReady (as the
/// Ready condition says; within the last hour when it does not say), newest
/// first, with the nodes their owners' pods are on now.
fn moved_off(cluster: &ClusterCache, viewer: &Viewer, node: &NodeRow) -> Vec<MovedPod> {
    let since = node.conditions.iter().find(|c| c.kind == "Ready").and_then(|c| c.since);
    let since = since.unwrap_or_else(|| now_ms() - crate::summary::DEPARTURE_MEMORY_MS);
    cluster.pods.read_tallied(|pods, tally| {
        let Some(departed) = tally.departures.get(node.name.as_str()) else { return Vec::new() };
        departed
            .iter()
            .rev()
            .filter(|d| d.at >= since && viewer.sees(&cluster.name, &d.key.namespace))
            .map(|d| {
                let now_on: BTreeSet<String> = match &d.owner {
                    Some(owner) => pods
                        .range(Key { namespace: d.key.namespace.clone(), name: "".into() }..)
                        .take_while(|(k, _)| k.namespace == d.key.namespace)
                        .filter(|(_, p)| p.owner_kind == d.owner_kind && p.owner.as_ref() == Some(owner))
                        .filter_map(|(_, p)| p.node.as_deref().filter(|n| *n != node.name).map(str::to_string))
                        .collect(),
                    None => BTreeSet::new(),
                };
                MovedPod {
                    namespace: d.key.namespace.to_string(),
                    name: d.key.name.to_string(),
                    owner: d.owner.as_deref().map(|o| format!("{}/{o}", owner_kind_name(d.owner_kind))),
                    deleted_at: d.at,
                    now_on: now_on.into_iter().collect(),
                }
            })
            .collect()
    })
}

fn owner_kind_name(kind: crate::summary::OwnerKind) -> &'static str {
    use crate::summary::OwnerKind;
    match kind {
        OwnerKind::ReplicaSet => "ReplicaSet",
        OwnerKind::Job => "Job",
        OwnerKind::TrainingJob(kind) => kind.kind(),
        OwnerKind::Other => "owner",
    }
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
