//! Compact summaries of the objects Gantry watches. Each watch event is
//! turned into one of these at once and the full object is dropped, so the
//! cache holds only the fields Gantry shows (a few hundred bytes a pod
//! instead of the tens of kilobytes a full Pod takes).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use gantry_domain::gpu::{self, ContainerResources, NodeGpus};
use gantry_domain::health::{self, NodeCondition, PodHealth, Termination};
use gantry_domain::manifest::{MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, TEAM_LABEL};
use gantry_domain::quantity::Quantity;
use gantry_domain::rollout::{MODEL_LABEL, MODEL_VERSION_LABEL, REVISION_ANNOTATION, parse_revision};
use gantry_domain::view::{JobStatus, Millis, RolloutState};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Event, Namespace, Node, Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use parking_lot::Mutex;

/// Shares the strings that repeat across thousands of objects (namespace and
/// node names), so each is stored once.
#[derive(Default)]
pub struct Interner {
    strings: Mutex<HashSet<Arc<str>>>,
}

impl Interner {
    pub fn get(&self, text: &str) -> Arc<str> {
        let mut strings = self.strings.lock();
        if let Some(existing) = strings.get(text) {
            return existing.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        strings.insert(shared.clone());
        shared
    }
}

/// Identifies an object in one cluster's cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: Arc<str>,
    pub name: Box<str>,
}

pub fn key_of(meta: &ObjectMeta, interner: &Interner) -> Key {
    Key {
        namespace: interner.get(meta.namespace.as_deref().unwrap_or("")),
        name: meta.name.as_deref().unwrap_or("").into(),
    }
}

pub fn millis(time: &Option<Time>) -> Option<Millis> {
    time.as_ref().map(|t| t.0.as_millisecond())
}

fn quantity_map(
    map: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, String> {
    map.as_ref().map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default()
}

pub(crate) fn container_resources(containers: &[Container]) -> Vec<ContainerResources> {
    containers
        .iter()
        .map(|c| {
            let resources = c.resources.as_ref();
            ContainerResources {
                requests: quantity_map(&resources.and_then(|r| r.requests.clone())),
                limits: quantity_map(&resources.and_then(|r| r.limits.clone())),
            }
        })
        .collect()
}

/// A condition in a custom resource's `status.conditions` (the training
/// operator's jobs, TrainJobs, Karpenter's objects), read leniently.
#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct StatusCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Time>,
}

pub(crate) fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

#[derive(Clone, Debug)]
pub struct NodeSummary {
    pub name: Arc<str>,
    pub ready: bool,
    pub unschedulable: bool,
    pub gpus: NodeGpus,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub created: Option<Millis>,
    /// Conditions that are not as they should be (none for a healthy node).
    pub conditions: Box<[NodeCondition]>,
    /// Its taints, as `key=value:Effect`.
    pub taints: Box<[Box<str>]>,
    /// The pool it belongs to, by the first of [`POOL_LABELS`] it carries.
    pub pool: Option<(&'static str, Box<str>)>,
}

/// The labels that name a node's pool: Karpenter's, GKE's, EKS's, AKS's.
pub const POOL_LABELS: [&str; 4] = [
    crate::autoscaling::LABEL_NODE_POOL,
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
];

pub fn node(node: &Node, interner: &Interner) -> NodeSummary {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let status = node.status.as_ref();
    let capacity = quantity_map(&status.and_then(|s| s.capacity.clone()));
    let allocatable = quantity_map(&status.and_then(|s| s.allocatable.clone()));
    let all_conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let ready = all_conditions.iter().find(|c| c.type_ == "Ready").is_some_and(|c| c.status == "True");
    let conditions = all_conditions
        .iter()
        .filter(|c| NodeCondition::is_problem(&c.type_, &c.status))
        .map(|c| NodeCondition {
            kind: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            since: millis(&c.last_transition_time),
        })
        .collect();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|t| match t.value.as_deref() {
            Some(value) if !value.is_empty() => format!("{}={value}:{}", t.key, t.effect).into(),
            _ => format!("{}:{}", t.key, t.effect).into(),
        })
        .collect();
    let parse = |key: &str| allocatable.get(key).and_then(|v| Quantity::parse(v).ok()).unwrap_or_default();
    NodeSummary {
        name: interner.get(node.metadata.name.as_deref().unwrap_or("")),
        ready,
        unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        gpus: NodeGpus::read(&labels, &capacity, &allocatable),
        cpu_millis: parse("cpu").milli() as i64,
        memory_bytes: (parse("memory").milli() / 1000) as i64,
        created: millis(&node.metadata.creation_timestamp),
        conditions,
        taints,
        pool: POOL_LABELS.into_iter().find_map(|key| labels.get(key).map(|value| (key, Box::from(value.as_str())))),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    fn parse(text: Option<&str>) -> PodPhase {
        match text {
            Some("Pending") => PodPhase::Pending,
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            _ => PodPhase::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }

    pub fn holds_resources(self) -> bool {
        gpu::phase_holds_resources(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerKind {
    ReplicaSet,
    Job,
    /// The Kubeflow training operator's jobs (PyTorchJob, TFJob).
    TrainingJob(crate::training::TrainingKind),
    Other,
}

#[derive(Clone, Debug)]
pub struct PodSummary {
    pub name: Box<str>,
    pub phase: PodPhase,
    pub node: Option<Arc<str>>,
    pub gpus: u32,
    pub ready: u8,
    pub containers: u8,
    pub restarts: u32,
    pub created: Option<Millis>,
    pub owner_kind: OwnerKind,
    pub owner: Option<Box<str>>,
    /// The PodScheduled=False message, which the scheduler fills with the
    /// same text as its FailedScheduling event.
    pub unschedulable: Option<Box<str>>,
    pub deleting: bool,
    /// When the scheduler bound it to its node (the PodScheduled condition):
    /// where the GPU ledger starts charging.
    pub bound: Option<Millis>,
    /// When its last container finished (Succeeded or Failed pods): where
    /// the ledger stops.
    pub finished: Option<Millis>,
    /// MIG slices it requests, as the ledger names them ("1g.10gb×2"), and
    /// what they come to in milli-GPUs. None for the many pods without.
    pub mig: Option<Box<(Box<str>, u32)>>,
    /// What the kubelet says when something is wrong with its containers
    /// (a bad waiting reason, a termination other than Completed, an
    /// eviction). None for the many pods that are fine.
    pub health: Option<Box<PodHealth>>,
}

pub fn pod(pod: &Pod, interner: &Interner) -> PodSummary {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let containers = spec.map(|s| container_resources(&s.containers)).unwrap_or_default();
    let init = spec.and_then(|s| s.init_containers.as_deref()).map(container_resources).unwrap_or_default();
    let gpus =
        gpu::pod_request(&containers, &init, gpu::GPU_RESOURCE).ceil_whole().clamp(0, i64::from(u32::MAX)) as u32;
    let statuses = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
    let owner = pod.metadata.owner_references.as_ref().and_then(|o| o.iter().find(|r| r.controller == Some(true)));
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False"))
        .and_then(|c| c.message.as_deref())
        .map(Into::into);
    PodSummary {
        name: pod.metadata.name.as_deref().unwrap_or("").into(),
        phase: PodPhase::parse(status.and_then(|s| s.phase.as_deref())),
        node: spec.and_then(|s| s.node_name.as_deref()).map(|n| interner.get(n)),
        gpus,
        ready: statuses.iter().filter(|s| s.ready).count().min(255) as u8,
        containers: spec.map_or(0, |s| s.containers.len().min(255) as u8),
        restarts: statuses.iter().map(|s| s.restart_count.max(0) as u32).sum(),
        created: millis(&pod.metadata.creation_timestamp),
        owner_kind: match owner.map(|o| o.kind.as_str()) {
            Some("ReplicaSet") => OwnerKind::ReplicaSet,
            Some("Job") => OwnerKind::Job,
            Some("PyTorchJob") => OwnerKind::TrainingJob(crate::training::TrainingKind::PyTorchJob),
            Some("TFJob") => OwnerKind::TrainingJob(crate::training::TrainingKind::TfJob),
            _ => OwnerKind::Other,
        },
        owner: owner.map(|o| o.name.as_str().into()),
        unschedulable,
        deleting: pod.metadata.deletion_timestamp.is_some(),
        bound: status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled" && c.status == "True"))
            .and_then(|c| millis(&c.last_transition_time)),
        finished: statuses
            .iter()
            .filter_map(|s| s.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
            .map(|t| t.0.as_millisecond())
            .max()
            .filter(|_| matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))),
        mig: mig_of(&containers, &init),
        health: pod_health(
            status.and_then(|s| s.reason.as_deref()),
            status.and_then(|s| s.message.as_deref()),
            statuses,
        ),
    }
}

/// What is wrong with a pod's containers, if anything: the first bad waiting
/// reason, the newest termination other than Completed (a restarted
/// container's last state, or a stopped one's state), and an eviction.
fn pod_health(reason: Option<&str>, message: Option<&str>, statuses: &[ContainerStatus]) -> Option<Box<PodHealth>> {
    let waiting = statuses
        .iter()
        .filter_map(|s| s.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
        .find(|r| health::is_bad_waiting(r))
        .map(str::to_string);
    let last_termination = statuses
        .iter()
        .flat_map(|s| [s.last_state.as_ref(), s.state.as_ref()])
        .filter_map(|state| state?.terminated.as_ref())
        .filter(|t| t.reason.as_deref() != Some("Completed"))
        .map(|t| Termination {
            reason: t.reason.clone().unwrap_or_else(|| if t.exit_code == 0 { "Completed" } else { "Error" }.into()),
            exit_code: t.exit_code,
            at: t.finished_at.as_ref().map(|at| at.0.as_millisecond()),
        })
        .filter(|t| t.reason != "Completed")
        .max_by_key(|t| t.at);
    let evicted = (reason == Some("Evicted")).then(|| message.unwrap_or("evicted").to_string());
    let health = PodHealth { waiting, last_termination, evicted };
    (!health.is_quiet()).then(|| Box::new(health))
}

fn mig_of(containers: &[ContainerResources], init: &[ContainerResources]) -> Option<Box<(Box<str>, u32)>> {
    let slices = gpu::mig_request(containers, init);
    if slices.is_empty() {
        return None;
    }
    let milli: i64 =
        slices.iter().map(|(profile, count)| gantry_domain::usage::mig_milli_gpus(profile).unwrap_or(0) * count).sum();
    let name = slices.iter().map(|(profile, count)| format!("{profile}×{count}")).collect::<Vec<_>>().join(", ");
    Some(Box::new((name.into(), milli.clamp(0, i64::from(u32::MAX)) as u32)))
}

/// A node's share of its cluster's pods: those that hold resources there
/// (scheduled and not finished) and the GPUs they request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeLoad {
    pub gpus: i64,
    pub pods: usize,
}

/// A namespace's pods, how many of them want GPUs and have no node yet, and
/// the GPUs its pods hold on each node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespacePods {
    pub pods: usize,
    pub pending_gpu_pods: usize,
    pub gpus_by_node: HashMap<Arc<str>, i64>,
}

/// Running totals over a cluster's pods, so the overview and the node list
/// cost O(namespaces + nodes) rather than a pass over every pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodTally {
    pub nodes: HashMap<Arc<str>, NodeLoad>,
    pub namespaces: HashMap<Arc<str>, NamespacePods>,
    /// The pods whose containers are in trouble (those with `health`), so
    /// the unhealthy panel reads these few rather than every pod.
    pub troubled: BTreeSet<Key>,
    /// Per node, the pods deleted from it lately (newest last), so a node
    /// that went NotReady can list the pods moved off it.
    pub departures: HashMap<Arc<str>, VecDeque<Departure>>,
}

/// A pod deleted from a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    pub key: Key,
    pub owner_kind: OwnerKind,
    pub owner: Option<Box<str>>,
    pub at: Millis,
}

/// How many departures a node remembers, and for how long.
const DEPARTURES_PER_NODE: usize = 64;
pub const DEPARTURE_MEMORY_MS: Millis = 60 * 60 * 1000;

impl PodTally {
    /// Adds one pod's share (`sign` 1), or takes it away (`sign` -1); an entry
    /// that falls to nothing is dropped, so deleted nodes and namespaces do
    /// not linger.
    fn count(&mut self, key: &Key, pod: &PodSummary, sign: i64) {
        let step = |n: usize, by: usize| if sign > 0 { n + by } else { n.saturating_sub(by) };
        let holding_on = pod.node.as_ref().filter(|_| pod.holds_gpus());
        if let Some(node) = holding_on {
            let load = self.nodes.entry(node.clone()).or_default();
            load.gpus += sign * i64::from(pod.gpus);
            load.pods = step(load.pods, 1);
            if *load == NodeLoad::default() {
                self.nodes.remove(node);
            }
        }
        let namespace = self.namespaces.entry(key.namespace.clone()).or_default();
        namespace.pods = step(namespace.pods, 1);
        namespace.pending_gpu_pods =
            step(namespace.pending_gpu_pods, usize::from(pod.gpus > 0 && pod.is_unscheduled()));
        if let Some(node) = holding_on.filter(|_| pod.gpus > 0) {
            let held = namespace.gpus_by_node.entry(node.clone()).or_default();
            *held += sign * i64::from(pod.gpus);
            if *held == 0 {
                namespace.gpus_by_node.remove(node);
            }
        }
        if namespace.pods == 0 {
            self.namespaces.remove(&key.namespace);
        }
        if pod.health.is_some() {
            if sign > 0 {
                self.troubled.insert(key.clone());
            } else {
                self.troubled.remove(key);
            }
        }
    }
}

impl crate::hub::Tally<PodSummary> for PodTally {
    fn add(&mut self, key: &Key, pod: &PodSummary) {
        self.count(key, pod, 1);
    }

    fn remove(&mut self, key: &Key, pod: &PodSummary) {
        self.count(key, pod, -1);
    }

    fn deleted(&mut self, key: &Key, pod: &PodSummary) {
        let Some(node) = &pod.node else { return };
        let now = crate::hub::now_ms();
        let departed = self.departures.entry(node.clone()).or_default();
        while departed.front().is_some_and(|d| d.at < now - DEPARTURE_MEMORY_MS)
            || departed.len() >= DEPARTURES_PER_NODE
        {
            departed.pop_front();
        }
        departed.push_back(Departure {
            key: key.clone(),
            owner_kind: pod.owner_kind,
            owner: pod.owner.clone(),
            at: now,
        });
    }
}

impl PodSummary {
    /// Counts against a node's GPUs: scheduled and not finished.
    pub fn holds_gpus(&self) -> bool {
        self.node.is_some() && self.phase.holds_resources()
    }

    pub fn is_unscheduled(&self) -> bool {
        self.node.is_none() && self.phase == PodPhase::Pending && !self.deleting
    }
}

#[derive(Clone, Debug)]
pub struct DeploymentSummary {
    pub name: Box<str>,
    pub team: Option<Box<str>>,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub image: Box<str>,
    pub model: Option<Box<str>>,
    pub model_version: Option<Box<str>>,
    pub gpus_per_replica: u32,
    pub gpu_model: Option<Box<str>>,
    pub revision: Option<i64>,
    pub managed_by_gantry: bool,
    pub generation: i64,
    pub rollout: RolloutState,
    pub created: Option<Millis>,
    pub uid: Box<str>,
}

pub fn deployment(d: &Deployment) -> DeploymentSummary {
    let spec = d.spec.as_ref();
    let status = d.status.as_ref();
    let template = spec.map(|s| &s.template);
    let pod_spec = template.and_then(|t| t.spec.as_ref());
    let containers = pod_spec.map(|s| container_resources(&s.containers)).unwrap_or_default();
    let template_meta = template.and_then(|t| t.metadata.as_ref());
    let template_label =
        |key: &str| template_meta.and_then(|m| label(m, key)).or_else(|| label(&d.metadata, key)).map(Into::into);
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.and_then(|s| s.updated_replicas).unwrap_or(0);
    let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    let total = status.and_then(|s| s.replicas).unwrap_or(0);
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    let progressing =
        status.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Progressing"));
    let rollout = if progressing.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded")) {
        RolloutState::Failed(
            progressing.and_then(|c| c.message.clone()).unwrap_or_else(|| "progress deadline exceeded".into()),
        )
    } else if observed >= generation && updated == desired && available == desired && total == desired {
        RolloutState::Complete
    } else {
        RolloutState::Progressing(format!("{updated} of {desired} updated, {available} available"))
    };
    DeploymentSummary {
        name: d.metadata.name.as_deref().unwrap_or("").into(),
        team: label(&d.metadata, TEAM_LABEL).map(Into::into),
        desired,
        updated,
        ready,
        available,
        image: pod_spec.and_then(|s| s.containers.first()).and_then(|c| c.image.as_deref()).unwrap_or("").into(),
        model: template_label(MODEL_LABEL),
        model_version: template_label(MODEL_VERSION_LABEL),
        gpus_per_replica: gpu::pod_request(&containers, &[], gpu::GPU_RESOURCE).ceil_whole().clamp(0, 1 << 20) as u32,
        gpu_model: pod_spec
            .and_then(|s| s.node_selector.as_ref())
            .and_then(|n| n.get(gpu::LABEL_GPU_PRODUCT))
            .map(|s| s.as_str().into()),
        revision: parse_revision(
            d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)).map(String::as_str),
        ),
        managed_by_gantry: label(&d.metadata, MANAGED_BY_LABEL) == Some(MANAGED_BY),
        generation: d.metadata.generation.unwrap_or(0),
        rollout,
        created: millis(&d.metadata.creation_timestamp),
        uid: d.metadata.uid.as_deref().unwrap_or("").into(),
    }
}

#[derive(Clone, Debug)]
pub struct ReplicaSetSummary {
    pub name: Box<str>,
    pub deployment: Option<Box<str>>,
    pub revision: Option<i64>,
    pub replicas: i32,
    pub ready: i32,
}

pub fn replica_set(rs: &ReplicaSet) -> ReplicaSetSummary {
    let owner = rs.metadata.owner_references.as_ref().and_then(|o| o.iter().find(|r| r.kind == "Deployment"));
    ReplicaSetSummary {
        name: rs.metadata.name.as_deref().unwrap_or("").into(),
        deployment: owner.map(|o| o.name.as_str().into()),
        revision: parse_revision(
            rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)).map(String::as_str),
        ),
        replicas: rs.status.as_ref().map_or(0, |s| s.replicas),
        ready: rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0),
    }
}

#[derive(Clone, Debug)]
pub struct JobSummary {
    pub name: Box<str>,
    pub team: Option<Box<str>>,
    pub status: JobStatus,
    pub message: Option<Box<str>>,
    pub gpus_per_pod: u32,
    pub parallelism: i32,
    pub completions: i32,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub started: Option<Millis>,
    pub finished: Option<Millis>,
    pub created: Option<Millis>,
}

pub fn job(job: &Job) -> JobSummary {
    let spec = job.spec.as_ref();
    let status = job.status.as_ref();
    let containers =
        spec.and_then(|s| s.template.spec.as_ref()).map(|s| container_resources(&s.containers)).unwrap_or_default();
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let condition = |kind: &str| conditions.iter().find(|c| c.type_ == kind && c.status == "True");
    let active = status.and_then(|s| s.active).unwrap_or(0);
    let (state, message) = if let Some(c) = condition("Complete") {
        (JobStatus::Succeeded, c.message.clone())
    } else if let Some(c) = condition("Failed") {
        (JobStatus::Failed, c.message.clone().or_else(|| c.reason.clone()))
    } else if spec.and_then(|s| s.suspend) == Some(true) {
        (JobStatus::Suspended, None)
    } else if status.and_then(|s| s.ready).unwrap_or(0) > 0
        || (active > 0 && status.and_then(|s| s.start_time.as_ref()).is_some())
    {
        (JobStatus::Running, None)
    } else {
        (JobStatus::Pending, None)
    };
    JobSummary {
        name: job.metadata.name.as_deref().unwrap_or("").into(),
        team: label(&job.metadata, TEAM_LABEL).map(Into::into),
        status: state,
        message: message.map(Into::into),
        gpus_per_pod: gpu::pod_request(&containers, &[], gpu::GPU_RESOURCE).ceil_whole().clamp(0, 1 << 20) as u32,
        parallelism: spec.and_then(|s| s.parallelism).unwrap_or(1),
        completions: spec.and_then(|s| s.completions).unwrap_or(1),
        active,
        succeeded: status.and_then(|s| s.succeeded).unwrap_or(0),
        failed: status.and_then(|s| s.failed).unwrap_or(0),
        started: millis(&status.and_then(|s| s.start_time.clone())),
        finished: millis(&status.and_then(|s| s.completion_time.clone())).or_else(|| {
            conditions
                .iter()
                .find(|c| c.type_ == "Failed" && c.status == "True")
                .and_then(|c| millis(&c.last_transition_time))
        }),
        created: millis(&job.metadata.creation_timestamp),
    }
}

#[derive(Clone, Debug)]
pub struct NamespaceSummary {
    pub name: Box<str>,
    pub terminating: bool,
}

pub fn namespace(ns: &Namespace) -> NamespaceSummary {
    NamespaceSummary {
        name: ns.metadata.name.as_deref().unwrap_or("").into(),
        terminating: ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating"),
    }
}

#[derive(Clone, Debug)]
pub struct QuotaSummary {
    pub name: Box<str>,
    pub gpus_hard: Option<i64>,
    pub gpus_used: i64,
    pub managed_by_gantry: bool,
    pub resource_version: Box<str>,
}

pub const GPU_QUOTA_KEYS: [&str; 2] = ["requests.nvidia.com/gpu", "nvidia.com/gpu"];

pub fn quota(q: &ResourceQuota) -> QuotaSummary {
    let hard = quantity_map(&q.spec.as_ref().and_then(|s| s.hard.clone()));
    let used = quantity_map(&q.status.as_ref().and_then(|s| s.used.clone()));
    let pick = |map: &BTreeMap<String, String>| {
        GPU_QUOTA_KEYS.iter().find_map(|k| map.get(*k)).and_then(|v| Quantity::parse(v).ok()).map(|q| q.ceil_whole())
    };
    QuotaSummary {
        name: q.metadata.name.as_deref().unwrap_or("").into(),
        gpus_hard: pick(&hard),
        gpus_used: pick(&used).unwrap_or(0),
        managed_by_gantry: label(&q.metadata, MANAGED_BY_LABEL) == Some(MANAGED_BY),
        resource_version: q.metadata.resource_version.as_deref().unwrap_or("").into(),
    }
}

#[derive(Clone, Debug)]
pub struct EventSummary {
    pub kind: Box<str>,
    pub object: Box<str>,
    pub reason: Box<str>,
    pub message: Box<str>,
    pub warning: bool,
    pub count: i32,
    pub last_seen: Option<Millis>,
    /// Who reported it (`karpenter`, `default-scheduler`, `cluster-autoscaler`).
    pub source: Box<str>,
}

pub fn event(e: &Event) -> EventSummary {
    let last_seen = millis(&e.last_timestamp)
        .or_else(|| e.event_time.as_ref().map(|t| t.0.as_millisecond()))
        .or_else(|| e.series.as_ref().and_then(|s| s.last_observed_time.as_ref()).map(|t| t.0.as_millisecond()))
        .or_else(|| millis(&e.first_timestamp))
        .or_else(|| millis(&e.metadata.creation_timestamp));
    EventSummary {
        kind: e.involved_object.kind.as_deref().unwrap_or("").into(),
        object: e.involved_object.name.as_deref().unwrap_or("").into(),
        reason: e.reason.as_deref().unwrap_or("").into(),
        message: e.message.as_deref().unwrap_or("").trim().into(),
        warning: e.type_.as_deref() == Some("Warning"),
        count: e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1),
        last_seen,
        source: e
            .reporting_component
            .as_deref()
            .filter(|c| !c.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.as_deref()))
            .unwrap_or("")
            .into(),
    }
}

#[derive(Clone, Debug)]
pub struct HpaSummary {
    pub name: Box<str>,
    pub target: Box<str>,
    pub min: i32,
    pub max: i32,
    pub current: i32,
    pub target_cpu_percent: Option<i32>,
}

pub fn hpa(h: &HorizontalPodAutoscaler) -> HpaSummary {
    let spec = &h.spec;
    HpaSummary {
        name: h.metadata.name.as_deref().unwrap_or("").into(),
        target: spec.scale_target_ref.name.as_str().into(),
        min: spec.min_replicas.unwrap_or(1),
        max: spec.max_replicas,
        current: h.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0),
        target_cpu_percent: spec.metrics.as_ref().and_then(|metrics| {
            metrics.iter().find_map(|m| {
                m.resource.as_ref().filter(|r| r.name == "cpu").and_then(|r| r.target.average_utilization)
            })
        }),
    }
}

/// The name label Gantry and most charts put on workloads.
pub fn app_name(meta: &ObjectMeta) -> Option<&str> {
    label(meta, NAME_LABEL)
}

/// A pod for the tests of the read models: `gpus` GPUs, on `node` if bound.
#[cfg(test)]
pub(crate) fn test_pod(name: &str, phase: PodPhase, node: Option<&str>, gpus: u32) -> PodSummary {
    PodSummary {
        name: name.into(),
        phase,
        node: node.map(std::sync::Arc::from),
        gpus,
        ready: 0,
        containers: 1,
        restarts: 0,
        created: None,
        owner_kind: OwnerKind::Other,
        owner: None,
        unschedulable: None,
        deleting: false,
        bound: None,
        finished: None,
        mig: None,
        health: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_json(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_pending_gpu_pod_keeps_the_scheduler_message() {
        let interner = Interner::default();
        let p = pod(
            &pod_json(json!({
                "metadata": { "name": "big", "namespace": "vision", "ownerReferences": [
                    { "apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": "u", "controller": true } ] },
                "spec": { "containers": [ { "name": "c", "resources": { "limits": { "nvidia.com/gpu": "16" } } } ] },
                "status": { "phase": "Pending", "conditions": [ { "type": "PodScheduled", "status": "False",
                    "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu." } ] }
            })),
            &interner,
        );
        assert_eq!(p.gpus, 16);
        assert!(p.is_unscheduled());
        assert_eq!(p.owner_kind, OwnerKind::Job);
        assert_eq!(p.unschedulable.as_deref(), Some("0/3 nodes are available: 3 Insufficient nvidia.com/gpu."));
    }

    #[test]
    fn a_crash_looping_pod_keeps_what_the_kubelet_says_and_a_healthy_one_nothing() {
        let interner = Interner::default();
        let crashing = pod(
            &pod_json(json!({
                "metadata": { "name": "p", "namespace": "n" },
                "spec": { "nodeName": "gpu-1", "containers": [ { "name": "a" }, { "name": "b" } ] },
                "status": { "phase": "Running", "containerStatuses": [
                    { "name": "a", "ready": true, "restartCount": 0, "image": "i", "imageID": "", "state": { "running": {} } },
                    { "name": "b", "ready": false, "restartCount": 4, "image": "i", "imageID": "",
                      "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 40s" } },
                      "lastState": { "terminated": { "reason": "OOMKilled", "exitCode": 137,
                          "finishedAt": "2026-12-01T10:00:00Z" } } } ] }
            })),
            &interner,
        );
        let health = crashing.health.as_deref().expect("trouble is kept");
        assert_eq!(health.waiting.as_deref(), Some("CrashLoopBackOff"));
        let last = health.last_termination.as_ref().unwrap();
        assert_eq!((last.reason.as_str(), last.exit_code, last.at), ("OOMKilled", 137, Some(1_796_119_200_000)));
        assert_eq!(crashing.restarts, 4);
        let evicted = pod(
            &pod_json(json!({
                "metadata": { "name": "p", "namespace": "n" },
                "spec": { "containers": [ { "name": "a" } ] },
                "status": { "phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory." }
            })),
            &interner,
        );
        assert_eq!(
            evicted.health.as_deref().and_then(|h| h.evicted.as_deref()),
            Some("The node was low on resource: memory.")
        );
        let fine = pod(
            &pod_json(json!({
                "metadata": { "name": "p", "namespace": "n" },
                "spec": { "containers": [ { "name": "a" } ] },
                "status": { "phase": "Succeeded", "containerStatuses": [
                    { "name": "a", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                      "state": { "terminated": { "reason": "Completed", "exitCode": 0 } } } ] }
            })),
            &interner,
        );
        assert!(fine.health.is_none(), "a pod that completed is not in trouble");
        let starting = pod(
            &pod_json(json!({
                "metadata": { "name": "p", "namespace": "n" },
                "spec": { "containers": [ { "name": "a" } ] },
                "status": { "phase": "Pending", "containerStatuses": [
                    { "name": "a", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                      "state": { "waiting": { "reason": "ContainerCreating" } } } ] }
            })),
            &interner,
        );
        assert!(starting.health.is_none(), "a container being created is a normal start");
    }

    #[test]
    fn a_node_keeps_its_bad_conditions_and_taints() {
        let interner = Interner::default();
        let n = node(
            &serde_json::from_value(json!({
                "metadata": { "name": "gpu-1" },
                "spec": { "unschedulable": true, "taints": [
                    { "key": "node.kubernetes.io/unreachable", "effect": "NoExecute" },
                    { "key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule" } ] },
                "status": { "conditions": [
                    { "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status." },
                    { "type": "MemoryPressure", "status": "True", "reason": "KubeletHasInsufficientMemory" },
                    { "type": "DiskPressure", "status": "False" } ] }
            }))
            .unwrap(),
            &interner,
        );
        assert!(!n.ready && n.unschedulable);
        let kinds: Vec<(&str, &str)> = n.conditions.iter().map(|c| (c.kind.as_str(), c.status.as_str())).collect();
        assert_eq!(kinds, [("Ready", "Unknown"), ("MemoryPressure", "True")]);
        assert_eq!(n.conditions[0].label(), "NotReady");
        let taints: Vec<&str> = n.taints.iter().map(|t| &**t).collect();
        assert_eq!(taints, ["node.kubernetes.io/unreachable:NoExecute", "nvidia.com/gpu=present:NoSchedule"]);
    }

    #[test]
    fn finished_pods_release_gpus_and_node_names_are_shared() {
        let interner = Interner::default();
        let make = |phase: &str| {
            pod(
                &pod_json(json!({
                    "metadata": { "name": "p", "namespace": "n" },
                    "spec": { "nodeName": "gpu-1", "containers": [ { "name": "c", "resources": { "requests": { "nvidia.com/gpu": "2" } } } ] },
                    "status": { "phase": phase }
                })),
                &interner,
            )
        };
        let running = make("Running");
        let done = make("Succeeded");
        assert!(running.holds_gpus());
        assert!(!done.holds_gpus());
        assert!(Arc::ptr_eq(running.node.as_ref().unwrap(), done.node.as_ref().unwrap()));
    }

    #[test]
    fn deployment_rollout_state() {
        let make = |updated: i32, available: i32, condition: Option<&str>| {
            let mut conditions = vec![];
            if let Some(reason) = condition {
                conditions.push(json!({ "type": "Progressing", "status": "False", "reason": reason, "message": "ReplicaSet \"x\" has timed out progressing." }));
            }
            deployment(
                &serde_json::from_value(json!({
                    "metadata": { "name": "llm", "namespace": "v", "generation": 2,
                        "annotations": { "deployment.kubernetes.io/revision": "3" },
                        "labels": { "app.kubernetes.io/managed-by": "gantry" } },
                    "spec": { "replicas": 2, "selector": {}, "template": {
                        "metadata": { "labels": { "gantry.dev/model-version": "v2" } },
                        "spec": { "nodeSelector": { "nvidia.com/gpu.product": "L4" },
                                  "containers": [ { "name": "c", "image": "llm:2", "resources": { "limits": { "nvidia.com/gpu": "1" } } } ] } } },
                    "status": { "observedGeneration": 2, "replicas": 2, "updatedReplicas": updated, "availableReplicas": available, "conditions": conditions }
                }))
                .unwrap(),
            )
        };
        let done = make(2, 2, None);
        assert_eq!(done.rollout, RolloutState::Complete);
        assert_eq!((done.revision, done.gpus_per_replica), (Some(3), 1));
        assert_eq!(done.model_version.as_deref(), Some("v2"));
        assert_eq!(done.gpu_model.as_deref(), Some("L4"));
        assert!(done.managed_by_gantry);
        assert!(matches!(make(1, 1, None).rollout, RolloutState::Progressing(_)));
        assert!(
            matches!(make(1, 1, Some("ProgressDeadlineExceeded")).rollout, RolloutState::Failed(m) if m.contains("timed out"))
        );
    }

    #[test]
    fn job_status() {
        let make = |status: serde_json::Value| {
            job(&serde_json::from_value(json!({ "metadata": { "name": "j" }, "spec": { "template": { "spec": { "containers": [] } } }, "status": status })).unwrap())
        };
        assert_eq!(make(json!({})).status, JobStatus::Pending);
        assert_eq!(
            make(json!({ "active": 1, "ready": 1, "startTime": "2026-01-01T00:00:00Z" })).status,
            JobStatus::Running
        );
        assert_eq!(
            make(json!({ "conditions": [ { "type": "Complete", "status": "True" } ] })).status,
            JobStatus::Succeeded
        );
        let failed =
            make(json!({ "conditions": [ { "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded" } ] }));
        assert_eq!((failed.status, failed.message.as_deref()), (JobStatus::Failed, Some("BackoffLimitExceeded")));
    }
}
