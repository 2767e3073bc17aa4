//! Read models built from the caches. Every function takes a [`Viewer`] and
//! returns only what that viewer may see; sorting, filtering and paging
//! happen here, on the server, so a 30,000-pod list never leaves it whole.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use gantry_domain::cost::GpuCount;
use gantry_domain::fit::NodeFree;
use gantry_domain::gpu::CapacityType;
use gantry_domain::policy::Visibility;
use gantry_domain::view::{
    AutoscalerView, ClusterSummary, ConnectionState, DeploymentRow, EventRow, GpuModelSummary, JobRow, JobStatus,
    ListQuery, Millis, NodeRow, Overview, Page, PendingRow, PodRow, QuotaRow, RolloutState,
};

use crate::hub::{ClusterCache, Hub};
use crate::summary::{Key, OwnerKind, PodSummary};

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

/// A pod list's sort key: the tuple the list is ordered by, borrowed from the
/// pod instead of built from strings for every comparison.
type PodKey<'a> = (i64, &'a str, &'a str, &'a str);

/// The fields a pod list sorts on, read from a cached pod or from a row.
struct PodSortFields<'a> {
    cluster: &'a str,
    namespace: &'a str,
    name: &'a str,
    gpus: i64,
    created: Option<Millis>,
    phase: &'a str,
    node: Option<&'a str>,
}

impl<'a> PodSortFields<'a> {
    fn of_pod(cluster: &'a str, namespace: &'a str, p: &'a PodSummary) -> Self {
        PodSortFields {
            cluster,
            namespace,
            name: &p.name,
            gpus: i64::from(p.gpus),
            created: p.created,
            phase: if p.deleting { "Terminating" } else { p.phase.as_str() },
            node: p.node.as_deref(),
        }
    }

    fn of_row(row: &'a PodRow) -> Self {
        PodSortFields {
            cluster: &row.cluster,
            namespace: &row.namespace,
            name: &row.name,
            gpus: row.gpus,
            created: row.created,
            phase: &row.phase,
            node: row.node.as_deref(),
        }
    }

    fn key(&self, column: &str) -> PodKey<'a> {
        match column {
            "gpus" => (self.gpus, "", "", self.name),
            "created" => (self.created.unwrap_or(0), "", "", self.name),
            "phase" => (0, self.phase, "", self.name),
            "node" => (0, self.node.unwrap_or(""), "", self.name),
            _ => (0, self.cluster, self.namespace, self.name),
        }
    }
}

/// A page of pods in the default order, (cluster, namespace, name), which is
/// the caches' own order: clusters are kept by name and each cluster's pods by
/// (namespace, name). With no filter but the place, the page is read straight
/// from the ordered maps: whole namespaces are skipped by their running
/// counts, and only the page's rows are built, so a page costs O(namespaces
/// + page) however many pods there are.
fn pods_in_cache_order(hub: &Hub, viewer: &Viewer, query: &ListQuery, page: usize) -> Page<PodRow> {
    let per_page = query.per_page();
    let mut skip = (page - 1).saturating_mul(per_page);
    let mut total = 0;
    let mut items = Vec::new();
    let mut clusters = visible_clusters(hub, viewer);
    if query.desc {
        clusters.reverse();
    }
    for cluster in clusters {
        cluster.pods.read_tallied(|pods, tally| {
            let mut spans: Vec<(&Arc<str>, usize)> = tally
                .namespaces
                .iter()
                .filter(|(namespace, _)| {
                    viewer.sees(&cluster.name, namespace) && query.matches_place(&cluster.name, namespace)
                })
                .map(|(namespace, counts)| (namespace, counts.pods))
                .collect();
            spans.sort_unstable();
            if query.desc {
                spans.reverse();
            }
            for (namespace, count) in spans {
                total += count;
                if items.len() == per_page {
                    continue;
                }
                if skip >= count {
                    skip -= count;
                    continue;
                }
                // Every key of this namespace, and nothing else: no namespace
                // holds a NUL, so `namespace + "\0"` is the next name after it.
                let first = Key { namespace: namespace.clone(), name: "".into() };
                let after = Key { namespace: Arc::from(format!("{namespace}\0")), name: "".into() };
                let in_namespace = pods.range(first..after);
                let wanted = per_page - items.len();
                let row = |(key, pod): (&Key, &PodSummary)| pod_row(&cluster.name, &key.namespace, pod, None);
                if query.desc {
                    items.extend(in_namespace.rev().skip(skip).take(wanted).map(row));
                } else {
                    items.extend(in_namespace.skip(skip).take(wanted).map(row));
                }
                skip = 0;
            }
        });
    }
    let last = total.div_ceil(per_page).max(1);
    if page > last {
        return pods_in_cache_order(hub, viewer, query, last);
    }
    Page { items, total, page, per_page }
}

/// Sorts and pages pods as [`ListQuery::paginate`] would (a stable sort by the
/// column's key, reversed when descending), but builds rows only for the pods
/// that can land on the requested page: each cluster keeps its first
/// `page × per_page` pods by a partial selection, so a page of 50 out of
/// 30,000 pods costs one pass over the cache instead of 30,000 rows and a full
/// sort with strings built for every comparison.
pub fn pods(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<PodRow> {
    let column = query.sort.as_deref().map(str::trim).unwrap_or("");
    let default_order = !matches!(column, "gpus" | "created" | "phase" | "node");
    let filtered = query.node_filter().is_some() || query.status_filter().is_some() || query.text_filter().is_some();
    if default_order && !filtered {
        return pods_in_cache_order(hub, viewer, query, query.page());
    }
    // Ties keep the order the pods were met in, as the stable sort did.
    let order = |a: &PodKey, a_seen: usize, b: &PodKey, b_seen: usize| {
        let by_key = if query.desc { b.cmp(a) } else { a.cmp(b) };
        by_key.then(a_seen.cmp(&b_seen))
    };
    let wanted = query.page().saturating_mul(query.per_page());
    let mut total = 0;
    let mut picked: Vec<(usize, PodRow)> = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        cluster.pods.read(|pods| {
            let mut hits: Vec<(PodKey, usize, &Arc<str>, &PodSummary)> = Vec::new();
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
                let sort = PodSortFields::of_pod(&cluster.name, &key.namespace, pod).key(column);
                hits.push((sort, total + hits.len(), &key.namespace, pod));
            }
            total += hits.len();
            if hits.len() > wanted {
                hits.select_nth_unstable_by(wanted, |a, b| order(&a.0, a.1, &b.0, b.1));
                hits.truncate(wanted);
            }
            picked.extend(
                hits.into_iter().map(|(_, seen, namespace, pod)| (seen, pod_row(&cluster.name, namespace, pod, None))),
            );
        });
    }
    picked.sort_by(|(a_seen, a), (b_seen, b)| {
        let a_key = PodSortFields::of_row(a).key(column);
        let b_key = PodSortFields::of_row(b).key(column);
        order(&a_key, *a_seen, &b_key, *b_seen)
    });
    let per_page = query.per_page();
    let page = query.page().min(total.div_ceil(per_page).max(1));
    let items = picked.into_iter().skip((page - 1) * per_page).take(per_page).map(|(_, row)| row).collect();
    Page { items, total, page, per_page }
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

/// What a deployment row needs from the rest of a cluster's cache, gathered
/// in one pass over autoscalers, replica sets and pods for all the rows of a
/// list (not one pass per row: a list of 2,000 deployments stays linear).
#[derive(Default)]
struct RowContext {
    autoscalers: HashMap<(Arc<str>, Box<str>), AutoscalerView>,
    /// The scheduler's words for a deployment whose new pods cannot be placed.
    unschedulable: HashMap<(Arc<str>, Box<str>), String>,
}

impl RowContext {
    fn gather(cluster: &ClusterCache, deployments: &[(Arc<str>, crate::summary::DeploymentSummary)]) -> Self {
        let wanted: HashSet<(Arc<str>, Box<str>)> =
            deployments.iter().map(|(namespace, d)| (namespace.clone(), d.name.clone())).collect();
        let autoscalers = cluster.autoscalers.read(|hpas| {
            hpas.iter()
                .filter_map(|(k, h)| {
                    let target = (k.namespace.clone(), h.target.clone());
                    wanted.contains(&target).then(|| {
                        let view = AutoscalerView {
                            min: h.min,
                            max: h.max,
                            target_cpu_percent: h.target_cpu_percent,
                            current: h.current,
                        };
                        (target, view)
                    })
                })
                .collect()
        });
        // A complete rollout is not stuck, whatever its pods say.
        let rolling: HashSet<(Arc<str>, Box<str>)> = deployments
            .iter()
            .filter(|(_, d)| d.rollout != RolloutState::Complete)
            .map(|(namespace, d)| (namespace.clone(), d.name.clone()))
            .collect();
        let mut unschedulable = HashMap::new();
        if !rolling.is_empty() {
            let owners: HashMap<(Arc<str>, Box<str>), Box<str>> = cluster.replica_sets.read(|sets| {
                sets.iter()
                    .filter_map(|(k, rs)| {
                        let deployment = (k.namespace.clone(), rs.deployment.clone()?);
                        rolling.contains(&deployment).then(|| ((k.namespace.clone(), rs.name.clone()), deployment.1))
                    })
                    .collect()
            });
            cluster.pods.read(|pods| {
                for (k, p) in pods {
                    let (Some(owner), Some(reason)) = (&p.owner, &p.unschedulable) else { continue };
                    if p.owner_kind != OwnerKind::ReplicaSet || !p.is_unscheduled() {
                        continue;
                    }
                    if let Some(deployment) = owners.get(&(k.namespace.clone(), owner.clone())) {
                        unschedulable
                            .entry((k.namespace.clone(), deployment.clone()))
                            .or_insert_with(|| reason.to_string());
                    }
                }
            });
        }
        RowContext { autoscalers, unschedulable }
    }
}

fn deployment_row(
    cluster: &ClusterCache,
    namespace: &Arc<str>,
    d: &crate::summary::DeploymentSummary,
    viewer: &Viewer,
    context: &RowContext,
) -> DeploymentRow {
    let id = (namespace.clone(), d.name.clone());
    // A rollout whose new pods cannot be scheduled is stuck even before its
    // progress deadline; say so with the scheduler's words.
    let rollout = match context.unschedulable.get(&id) {
        Some(reason) => RolloutState::Failed(format!("pods cannot be scheduled: {reason}")),
        None => d.rollout.clone(),
    };
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
        autoscaler: context.autoscalers.get(&id).cloned(),
        rollout,
        created: d.created,
    }
}

/// Rows for the given deployments of one cluster.
fn deployment_rows(
    cluster: &ClusterCache,
    viewer: &Viewer,
    deployments: Vec<(Arc<str>, crate::summary::DeploymentSummary)>,
) -> Vec<DeploymentRow> {
    let context = RowContext::gather(cluster, &deployments);
    deployments.iter().map(|(namespace, d)| deployment_row(cluster, namespace, d, viewer, &context)).collect()
}

pub fn deployments(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<DeploymentRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        let matching = cluster.deployments.read(|ds| {
            ds.iter()
                .filter(|(k, d)| {
                    viewer.sees(&cluster.name, &k.namespace)
                        && query.matches_place(&cluster.name, &k.namespace)
                        && query.matches_text(&[&d.name, &d.image, d.model.as_deref().unwrap_or("")])
                })
                .map(|(k, d)| (k.namespace.clone(), d.clone()))
                .collect()
        });
        rows.extend(deployment_rows(&cluster, viewer, matching));
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
    let key = crate::summary::Key { namespace: namespace.into(), name: name.into() };
    let summary = cluster.deployments.read(|ds| ds.get(&key).cloned())?;
    deployment_rows(cluster, viewer, vec![(key.namespace, summary)]).pop()
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
