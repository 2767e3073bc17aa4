//! Turns a [`ClusterSpec`] into Kubernetes objects (pure functions) and creates them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec as K8sDeploymentSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec as K8sJobSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Namespace, Node, NodeSpec, NodeStatus, Pod, PodSpec, PodTemplateSpec,
    ResourceRequirements, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fleet::{ClusterSpec, DeploymentSpec, JobSpec, NodePool, Quantity};
use crate::kwok::{CRASH_LOOP_ANNOTATION, OOM_KILL_ANNOTATION, RUN_FOR_ANNOTATION, RUN_FOR_JITTER_ANNOTATION};
use crate::progress::ClusterProgress;
use crate::{Error, Result};

/// The annotation KWOK selects the nodes it simulates by (`--manage-nodes-with-annotation-selector`).
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// Label on every pod of a pod set, valued with the set's name.
pub const POD_SET_LABEL: &str = "gantry.dev/pod-set";
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

const DEFAULT_CPU: &str = "100m";
const DEFAULT_MEMORY: &str = "128Mi";

fn q(text: &str) -> K8sQuantity {
    K8sQuantity(text.to_string())
}

fn strings<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The name of node `index` of `pool` in `cluster`.
pub fn node_name(cluster: &str, pool: &str, index: u32) -> String {
    format!("{cluster}-{pool}-{index}")
}

/// The simulated nodes of a cluster, with labels as GPU feature discovery and Karpenter set
/// them, and capacity in `status` (the apiserver keeps a Node's status on create, and KWOK's
/// node-initialize stage keeps capacity and allocatable that are already there).
pub fn nodes(cluster: &ClusterSpec) -> Vec<Node> {
    cluster
        .node_pools
        .iter()
        .flat_map(|pool| (0..pool.count).map(move |i| node(cluster.name.as_str(), pool, i)))
        .collect()
}

fn node(cluster: &str, pool: &NodePool, index: u32) -> Node {
    let name = node_name(cluster, pool.name.as_str(), index);
    let mut labels = strings([
        ("kubernetes.io/hostname", name.clone()),
        ("kubernetes.io/os", "linux".into()),
        ("kubernetes.io/arch", "amd64".into()),
        ("type", "kwok".into()),
        ("karpenter.sh/capacity-type", pool.capacity_type.as_str().into()),
        ("gantry.dev/node-pool", pool.name.to_string()),
        // As EKS labels a managed node group's nodes (the testbed's instance types are AWS's).
        ("eks.amazonaws.com/nodegroup", pool.name.to_string()),
    ]);
    if let Some(instance_type) = &pool.instance_type {
        labels.insert("node.kubernetes.io/instance-type".into(), instance_type.to_string());
    }
    if let Some(zone) = &pool.zone {
        labels.insert("topology.kubernetes.io/zone".into(), zone.to_string());
        // us-east-1a -> us-east-1, as cloud providers label regions.
        let region = zone.as_str().trim_end_matches(|c: char| c.is_ascii_lowercase());
        if region != zone.as_str() && region.ends_with(|c: char| c.is_ascii_digit()) {
            labels.insert("topology.kubernetes.io/region".into(), region.to_string());
        }
    }
    let mut resources = strings([
        ("cpu", pool.cpu.as_str().to_string()),
        ("memory", pool.memory.as_str().to_string()),
        ("pods", pool.max_pods.to_string()),
        ("ephemeral-storage", "1Ti".into()),
    ]);
    if let Some(gpu) = &pool.gpu {
        labels.insert("nvidia.com/gpu.present".into(), "true".into());
        labels.insert("nvidia.com/gpu.product".into(), gpu.model.to_string());
        labels.insert("nvidia.com/gpu.count".into(), gpu.count.to_string());
        if let Some(memory) = gpu.memory_mib {
            labels.insert("nvidia.com/gpu.memory".into(), memory.to_string());
        }
        resources.insert(GPU_RESOURCE.into(), gpu.count.to_string());
    }
    if !pool.mig.is_empty() {
        labels.insert("nvidia.com/mig.strategy".into(), "mixed".into());
    }
    for (profile, count) in &pool.mig {
        labels.insert(format!("nvidia.com/mig-{profile}.count"), count.to_string());
        resources.insert(profile.resource_name(), count.to_string());
    }
    for (key, value) in &pool.labels {
        labels.insert(key.to_string(), value.to_string());
    }
    let resources: BTreeMap<String, K8sQuantity> = resources.into_iter().map(|(k, v)| (k, K8sQuantity(v))).collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            annotations: Some(strings([(KWOK_NODE_ANNOTATION, "fake".into())])),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            ..Default::default()
        }),
    }
}

fn workload_labels(
    name: &str,
    extra: &BTreeMap<crate::fleet::LabelKey, crate::fleet::LabelValue>,
) -> BTreeMap<String, String> {
    let mut labels =
        strings([("app.kubernetes.io/name", name.to_string()), ("app.kubernetes.io/managed-by", "gantry".into())]);
    for (key, value) in extra {
        labels.insert(key.to_string(), value.to_string());
    }
    labels
}

fn container(name: &str, image: &str, gpus: u32, cpu: Option<&Quantity>, memory: Option<&Quantity>) -> Container {
    let mut requests = BTreeMap::from([
        ("cpu".to_string(), q(cpu.map_or(DEFAULT_CPU, Quantity::as_str))),
        ("memory".to_string(), q(memory.map_or(DEFAULT_MEMORY, Quantity::as_str))),
    ]);
    let mut limits = BTreeMap::new();
    if gpus > 0 {
        limits.insert(GPU_RESOURCE.to_string(), q(&gpus.to_string()));
        requests.insert(GPU_RESOURCE.to_string(), q(&gpus.to_string()));
    }
    Container {
        name: name.to_string(),
        image: Some(image.to_string()),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            limits: (!limits.is_empty()).then_some(limits),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn gpu_selector(model: Option<&crate::fleet::LabelValue>) -> Option<BTreeMap<String, String>> {
    model.map(|m| strings([("nvidia.com/gpu.product", m.to_string())]))
}

/// A model-serving Deployment and the Service in front of it.
pub fn deployment(spec: &DeploymentSpec) -> (Deployment, Service) {
    let name = spec.name.as_str();
    let mut labels = workload_labels(name, &spec.labels);
    if let Some(model) = &spec.model {
        labels.insert("gantry.dev/model".into(), model.to_string());
    }
    if let Some(version) = &spec.model_version {
        labels.insert("gantry.dev/model-version".into(), version.to_string());
    }
    let selector = strings([("app.kubernetes.io/name", name.to_string())]);
    let mut main = container(name, spec.image.as_str(), spec.gpus, spec.cpu.as_ref(), spec.memory.as_ref());
    main.ports = Some(vec![ContainerPort {
        name: Some("http".into()),
        container_port: i32::from(spec.port),
        ..Default::default()
    }]);
    let meta = ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(spec.namespace.to_string()),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: meta.clone(),
        spec: Some(K8sDeploymentSpec {
            replicas: Some(spec.replicas as i32),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: health_annotations(spec),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![main],
                    node_selector: gpu_selector(spec.gpu_model.as_ref()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    };
    let service = Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(i32::from(spec.port))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    (deployment, service)
}

/// The pod annotations that make KWOK crash-loop or OOM-kill a Deployment's pods.
fn health_annotations(spec: &DeploymentSpec) -> Option<BTreeMap<String, String>> {
    let annotations: BTreeMap<String, String> =
        [(CRASH_LOOP_ANNOTATION, spec.crash_loop), (OOM_KILL_ANNOTATION, spec.oom_kill)]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(key, _)| (key.to_string(), "true".to_string()))
            .collect();
    (!annotations.is_empty()).then_some(annotations)
}

/// A training Job whose pods KWOK keeps Running for `runSeconds`, then marks Succeeded.
pub fn job(spec: &JobSpec) -> Job {
    let name = spec.name.as_str();
    let labels = workload_labels(name, &spec.labels);
    let run_for = format!("{}s", spec.run_seconds);
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(spec.namespace.to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(K8sJobSpec {
            parallelism: Some(spec.parallelism as i32),
            completions: Some(spec.completions as i32),
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(strings([
                        (RUN_FOR_ANNOTATION, run_for.clone()),
                        (RUN_FOR_JITTER_ANNOTATION, run_for),
                    ])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container(
                        name,
                        spec.image.as_str(),
                        spec.gpus,
                        spec.cpu.as_ref(),
                        spec.memory.as_ref(),
                    )],
                    node_selector: gpu_selector(spec.gpu_model.as_ref()),
                    restart_policy: Some("Never".into()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// What is left on a node for bound pods.
struct Room {
    node: String,
    cpu_milli: u128,
    memory_milli: u128,
    gpus: u32,
    pods: u32,
}

/// The pods of every pod set, bound round-robin to nodes that still have room for them.
pub fn pod_set_pods(cluster: &ClusterSpec) -> Result<Vec<Pod>, String> {
    let mut rooms: Vec<Room> = cluster
        .node_pools
        .iter()
        .flat_map(|pool| {
            (0..pool.count).map(move |i| Room {
                node: node_name(cluster.name.as_str(), pool.name.as_str(), i),
                cpu_milli: pool.cpu.milli(),
                memory_milli: pool.memory.milli(),
                gpus: pool.gpu.as_ref().map_or(0, |g| g.count),
                pods: pool.max_pods,
            })
        })
        .collect();
    let mut pods = Vec::with_capacity(cluster.pod_set_pods());
    let mut cursor = 0;
    for set in &cluster.pod_sets {
        for i in 0..set.count {
            let fits = |r: &Room| {
                r.pods > 0
                    && r.gpus >= set.gpus
                    && r.cpu_milli >= set.cpu.milli()
                    && r.memory_milli >= set.memory.milli()
            };
            let Some(offset) = (0..rooms.len()).find(|off| fits(&rooms[(cursor + off) % rooms.len()])) else {
                return Err(format!(
                    "pod set `{}/{}`: no node has room for pod {} of {} (cpu {}, memory {}, gpus {})",
                    set.namespace,
                    set.name,
                    i + 1,
                    set.count,
                    set.cpu.as_str(),
                    set.memory.as_str(),
                    set.gpus
                ));
            };
            let at = (cursor + offset) % rooms.len();
            let room = &mut rooms[at];
            room.pods -= 1;
            room.gpus -= set.gpus;
            room.cpu_milli -= set.cpu.milli();
            room.memory_milli -= set.memory.milli();
            cursor = at + 1;
            let mut main = container("main", set.image.as_str(), set.gpus, Some(&set.cpu), Some(&set.memory));
            main.image_pull_policy = Some("IfNotPresent".into());
            pods.push(Pod {
                metadata: ObjectMeta {
                    name: Some(format!("{}-{i}", set.name)),
                    namespace: Some(set.namespace.to_string()),
                    labels: Some(strings([
                        (POD_SET_LABEL, set.name.to_string()),
                        ("app.kubernetes.io/managed-by", "gantry".into()),
                    ])),
                    ..Default::default()
                },
                spec: Some(PodSpec {
                    node_name: Some(room.node.clone()),
                    containers: vec![main],
                    ..Default::default()
                }),
                status: None,
            });
        }
    }
    Ok(pods)
}

/// How many creates run at once. The apiserver has no inflight limit here; this mostly
/// bounds the client's open connections.
const CONCURRENCY: usize = 48;

/// Creates objects concurrently. Retries transient failures; an object that already exists
/// (say, a retry of a create that did land) counts as created.
pub(crate) async fn create_all<K>(client: &Client, cluster: &str, objects: Vec<K>) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    futures::stream::iter(objects)
        .map(|object| {
            let api: Api<K> = Api::namespaced(client.clone(), object.meta().namespace.as_deref().unwrap_or("default"));
            async move { create_one(&api, cluster, &object).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

pub(crate) async fn create_cluster_scoped<K>(client: &Client, cluster: &str, objects: Vec<K>) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    futures::stream::iter(objects)
        .map(|object| {
            let api = api.clone();
            async move { create_one(&api, cluster, &object).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

async fn create_one<K>(api: &Api<K>, cluster: &str, object: &K) -> Result<()>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api.create(&PostParams::default(), object).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt > 1 => return Ok(()),
            Err(err) if attempt < 6 && is_transient(&err) => {
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(err) => {
                let what = format!(
                    "creating {} {}",
                    K::kind(&Default::default()),
                    object.meta().name.as_deref().unwrap_or("?")
                );
                return Err(Error::kube(cluster, what)(err));
            }
        }
    }
}

fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// How [`apply`] works through a cluster spec.
pub(crate) struct Apply<'a> {
    /// Create the workloads too.
    pub workloads: bool,
    /// Wait until the workloads' pods are running (or cannot be scheduled), not only the pod
    /// sets' (bounded; see [`Options::wait_for_pods`](crate::Options::wait_for_pods)).
    pub wait_for_pods: bool,
    pub progress: ClusterProgress<'a>,
}

/// Everything a cluster spec asks for: namespaces and nodes, then (with `workloads`) pod
/// sets, Deployments with their Services, and Jobs. Returns once the nodes are Ready and the
/// pod sets' pods are Running (and with `wait_for_pods`, the other workload pods).
pub(crate) async fn apply(
    client: &Client,
    spec: &ClusterSpec,
    how: Apply<'_>,
    phases: &mut Vec<(String, Duration)>,
) -> Result<()> {
    let cluster = spec.name.as_str();
    let started = Instant::now();
    let namespaces: Vec<Namespace> = spec
        .all_namespaces()
        .into_iter()
        .map(|ns| Namespace {
            metadata: ObjectMeta { name: Some(ns.to_string()), ..Default::default() },
            ..Default::default()
        })
        .collect();
    create_cluster_scoped(client, cluster, namespaces).await?;
    let nodes = nodes(spec);
    let names: HashSet<String> = nodes.iter().filter_map(|n| n.metadata.name.clone()).collect();
    tracing::info!(cluster, nodes = names.len(), "creating nodes");
    create_cluster_scoped(client, cluster, nodes).await?;
    wait_nodes_ready(client, cluster, &names, how.progress).await?;
    phases.push((format!("{cluster}: {} nodes created and Ready", names.len()), started.elapsed()));
    // Karpenter's NodePools are part of the infrastructure, like the nodes.
    crate::karpenter::create_node_pools(client, cluster, &spec.karpenter_node_pools).await?;
    if !how.workloads {
        return Ok(());
    }

    let started = Instant::now();
    let pods = pod_set_pods(spec).map_err(|message| Error::Cluster { cluster: cluster.into(), message })?;
    let pod_count = pods.len();
    if pod_count > 0 {
        tracing::info!(cluster, pods = pod_count, "creating pod-set pods");
        create_all(client, cluster, pods).await?;
        phases.push((format!("{cluster}: {pod_count} pod-set pods created"), started.elapsed()));
    }
    let (deployments, services): (Vec<Deployment>, Vec<Service>) = spec.deployments.iter().map(deployment).unzip();
    create_all(client, cluster, deployments).await?;
    create_all(client, cluster, services).await?;
    create_all(client, cluster, spec.jobs.iter().map(job).collect()).await?;
    crate::training::create_pytorch_jobs(client, cluster, &spec.pytorch_jobs).await?;
    crate::training::create_train_jobs(client, cluster, &spec.train_jobs).await?;
    let all_pods = if how.wait_for_pods { spec.workload_pods() } else { 0 };
    if pod_count > 0 || all_pods > 0 {
        let waits = PodWaits { pod_sets: pod_count, all: all_pods, started };
        wait_pods(client, cluster, waits, how.progress, phases).await?;
    }
    Ok(())
}

/// Ready, and schedulable: a new node carries `node.kubernetes.io/not-ready:NoSchedule`
/// (TaintNodesByCondition) until the node lifecycle controller sees it Ready, and until then
/// the scheduler reports "untolerated taint" instead of the real reason a pod does not fit.
fn node_ready(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let condition_taint = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key.starts_with("node.kubernetes.io/")));
    ready && !condition_taint
}

async fn wait_nodes_ready(
    client: &Client,
    cluster: &str,
    names: &HashSet<String>,
    progress: ClusterProgress<'_>,
) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let seconds = 60 + names.len() as u64 / 10;
    let mut ready = HashSet::new();
    let stream = watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).applied_objects();
    let wait = async {
        futures::pin_mut!(stream);
        while let Some(node) = stream
            .try_next()
            .await
            .map_err(|e| Error::Cluster { cluster: cluster.into(), message: format!("watching nodes: {e}") })?
        {
            let name = node.metadata.name.clone().unwrap_or_default();
            if names.contains(&name) && node_ready(&node) && ready.insert(name) {
                progress.nodes_ready(ready.len());
                if ready.len() == names.len() {
                    return Ok(());
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(seconds), wait).await.map_err(|_| Error::Timeout {
        cluster: cluster.into(),
        what: format!("{} nodes to be Ready", names.len()),
        seconds,
        detail: String::new(),
    })?
}

/// What a workload pod is doing, as far as waiting for it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodState {
    Pending,
    /// The scheduler found no node for it.
    Unschedulable,
    Running,
    /// Succeeded: it ran.
    Ran,
    Failed,
}

fn pod_state(pod: &Pod) -> PodState {
    let status = pod.status.as_ref();
    let unschedulable = || {
        status.and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
            })
        })
    };
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodState::Running,
        Some("Succeeded") => PodState::Ran,
        Some("Failed") => PodState::Failed,
        _ if unschedulable() => PodState::Unschedulable,
        _ => PodState::Pending,
    }
}

/// The pods [`wait_pods`] waits for.
struct PodWaits {
    /// Pod-set pods that must be Running, or the wait fails.
    pod_sets: usize,
    /// Workload pods (pod sets included) that should be running or unschedulable; after a
    /// while, the wait gives up on them without failing. 0: only pod sets are watched.
    all: usize,
    /// When the workloads were created.
    started: Instant,
}

#[derive(Default)]
struct PodCounts {
    pod_sets_running: usize,
    /// Running or ran.
    running: usize,
    unschedulable: usize,
    failed: usize,
}

impl PodCounts {
    fn add(&mut self, pod_set: bool, state: PodState, by: isize) {
        let count = |n: &mut usize| *n = n.saturating_add_signed(by);
        match state {
            PodState::Running if pod_set => {
                count(&mut self.pod_sets_running);
                count(&mut self.running);
            }
            PodState::Running | PodState::Ran => count(&mut self.running),
            PodState::Unschedulable => count(&mut self.unschedulable),
            PodState::Failed => count(&mut self.failed),
            PodState::Pending => {}
        }
    }

    /// Every pod is running, has run or failed, or cannot be scheduled.
    fn settled(&self, expected: usize) -> bool {
        self.running + self.unschedulable + self.failed >= expected
    }
}

/// Waits until `waits.pod_sets` pod-set pods are Running (an error after a time that grows
/// with their number) and, when `waits.all` is set, until that many workload pods are
/// settled (given up on, with a warning, after a minute and a bit).
async fn wait_pods(
    client: &Client,
    cluster: &str,
    waits: PodWaits,
    progress: ClusterProgress<'_>,
    phases: &mut Vec<(String, Duration)>,
) -> Result<()> {
    let now = tokio::time::Instant::now();
    let pod_set_seconds = 120 + waits.pod_sets as u64 / 20;
    let pod_set_deadline = now + Duration::from_secs(pod_set_seconds);
    let settle_deadline = pod_set_deadline.max(now + Duration::from_secs(60 + waits.all as u64 / 20));
    // Every workload pod carries `managed-by: gantry`; the pod sets' also their own label.
    let selector = if waits.all > 0 { "app.kubernetes.io/managed-by=gantry" } else { POD_SET_LABEL };
    let config = watcher::Config::default().labels(selector).page_size(2000);
    let stream = watcher(Api::<Pod>::all(client.clone()), config).applied_objects();
    futures::pin_mut!(stream);
    let mut states: HashMap<(Option<String>, Option<String>), (bool, PodState)> = HashMap::new();
    let mut counts = PodCounts::default();
    let mut pod_sets_done = waits.pod_sets == 0;
    let mut last_report = Instant::now();
    loop {
        if !pod_sets_done && counts.pod_sets_running >= waits.pod_sets {
            pod_sets_done = true;
            phases.push((
                format!("{cluster}: {} pod-set pods Running (from the first create)", waits.pod_sets),
                waits.started.elapsed(),
            ));
        }
        if pod_sets_done && (waits.all == 0 || counts.settled(waits.all)) {
            if waits.all > 0 {
                phases.push((
                    format!("{cluster}: {} workload pods running or unschedulable", waits.all),
                    waits.started.elapsed(),
                ));
            }
            return Ok(());
        }
        let deadline = if pod_sets_done { settle_deadline } else { pod_set_deadline };
        let pod = match tokio::time::timeout_at(deadline, stream.try_next()).await {
            Ok(Ok(Some(pod))) => pod,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => {
                return Err(Error::Cluster { cluster: cluster.into(), message: format!("watching pods: {e}") });
            }
            Err(_) if !pod_sets_done => {
                return Err(Error::Timeout {
                    cluster: cluster.into(),
                    what: format!("{} pod-set pods to be Running", waits.pod_sets),
                    seconds: pod_set_seconds,
                    detail: format!(" ({} are)", counts.pod_sets_running),
                });
            }
            Err(_) => {
                tracing::warn!(
                    cluster,
                    running = counts.running,
                    unschedulable = counts.unschedulable,
                    expected = waits.all,
                    "some workload pods are still pending; going on"
                );
                return Ok(());
            }
        };
        let pod_set = pod.metadata.labels.as_ref().is_some_and(|l| l.contains_key(POD_SET_LABEL));
        let state = pod_state(&pod);
        let key = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
        if let Some((was_pod_set, was)) = states.insert(key, (pod_set, state)) {
            counts.add(was_pod_set, was, -1);
        }
        counts.add(pod_set, state, 1);
        if waits.all > 0 {
            let running = counts.running.min(waits.all);
            progress.pods(running, counts.unschedulable.min(waits.all - running));
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            if pod_sets_done {
                tracing::info!(cluster, running = counts.running, expected = waits.all, "waiting for workload pods");
            } else {
                tracing::info!(
                    cluster,
                    running = counts.pod_sets_running,
                    expected = waits.pod_sets,
                    "waiting for pod-set pods"
                );
            }
        }
    }
}

/// Creates custom objects (each in its `metadata.namespace`, if it has one), a conflict on a
/// retry counting as created.
pub(crate) async fn create_custom(
    client: &Client,
    cluster: &str,
    resource: &ApiResource,
    objects: Vec<serde_json::Value>,
) -> Result<()> {
    for value in objects {
        let name = value["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let api: Api<DynamicObject> = match value["metadata"]["namespace"].as_str() {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
            None => Api::all_with(client.clone(), resource),
        };
        let object: DynamicObject = serde_json::from_value(value).map_err(|e| Error::Cluster {
            cluster: cluster.into(),
            message: format!("{} {name}: {e}", resource.kind),
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 409 && attempt > 1 => break,
                // A CRD just established can answer 404 for a moment.
                Err(kube::Error::Api(status))
                    if attempt < 10 && (status.code == 404 || status.code == 429 || status.code >= 500) =>
                {
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(Error::kube(cluster, format!("creating {} {name}", resource.kind))(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fleet;

    #[test]
    fn nodes_carry_gpu_labels_and_capacity() {
        let fleet = Fleet::small("a");
        let nodes = nodes(&fleet.clusters[0]);
        let names: Vec<&str> = nodes.iter().map(|n| n.metadata.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["a-h100-spot-0", "a-a100-0", "a-cpu-0"]);
        let h100 = &nodes[0];
        let labels = h100.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["nvidia.com/gpu.product"], "NVIDIA-H100-80GB-HBM3");
        assert_eq!(labels["nvidia.com/gpu.count"], "8");
        assert_eq!(labels["nvidia.com/gpu.memory"], "81559");
        assert_eq!(labels["karpenter.sh/capacity-type"], "spot");
        assert_eq!(labels["topology.kubernetes.io/region"], "us-east-1");
        assert_eq!(h100.metadata.annotations.as_ref().unwrap()[KWOK_NODE_ANNOTATION], "fake");
        let status = h100.status.as_ref().unwrap();
        assert_eq!(status.allocatable.as_ref().unwrap()[GPU_RESOURCE].0, "8");
        assert_eq!(status.capacity.as_ref().unwrap()["pods"].0, "110");
        let a100 = nodes[1].status.as_ref().unwrap().capacity.as_ref().unwrap();
        assert_eq!(a100["nvidia.com/mig-1g.10gb"].0, "7");
        let cpu = &nodes[2];
        assert!(!cpu.metadata.labels.as_ref().unwrap().contains_key("nvidia.com/gpu.product"));
        assert!(!cpu.status.as_ref().unwrap().capacity.as_ref().unwrap().contains_key(GPU_RESOURCE));
    }

    #[test]
    fn pod_sets_are_spread_over_nodes_with_room() {
        let text = "clusters:\n  - name: s\n    nodePools:\n      - { name: gpu, count: 2, cpu: 1, memory: 1Gi, maxPods: 3, gpu: { model: X, count: 2 } }\n      - { name: cpu, count: 1, cpu: 1, memory: 1Gi, maxPods: 3 }\n    podSets:\n      - { name: g, namespace: b, count: 4, gpus: 1, cpu: 100m }\n      - { name: c, namespace: b, count: 5, cpu: 100m }\n";
        let fleet = Fleet::from_yaml(text).unwrap();
        let pods = pod_set_pods(&fleet.clusters[0]).unwrap();
        let placed: Vec<&str> = pods.iter().map(|p| p.spec.as_ref().unwrap().node_name.as_deref().unwrap()).collect();
        // GPU pods only fit the two GPU nodes; CPU pods then fill what is left round-robin.
        assert_eq!(
            placed,
            ["s-gpu-0", "s-gpu-1", "s-gpu-0", "s-gpu-1", "s-cpu-0", "s-gpu-0", "s-gpu-1", "s-cpu-0", "s-cpu-0"]
        );
        let too_many = text.replace("count: 5", "count: 6");
        let err = pod_set_pods(&Fleet::from_yaml(&too_many).unwrap().clusters[0]).unwrap_err();
        assert!(err.contains("no node has room for pod 6 of 6"), "{err}");
    }

    #[test]
    fn pods_settle_when_running_done_or_unschedulable() {
        use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
        let pod = |phase: &str, unschedulable: bool| Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: unschedulable.then(|| {
                    vec![PodCondition {
                        type_: "PodScheduled".into(),
                        status: "False".into(),
                        reason: Some("Unschedulable".into()),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(pod_state(&pod("Pending", false)), PodState::Pending);
        assert_eq!(pod_state(&pod("Pending", true)), PodState::Unschedulable);
        assert_eq!(pod_state(&pod("Running", false)), PodState::Running);
        assert_eq!(pod_state(&pod("Succeeded", false)), PodState::Ran);
        assert_eq!(pod_state(&Pod::default()), PodState::Pending);

        let mut counts = PodCounts::default();
        counts.add(true, PodState::Running, 1);
        counts.add(false, PodState::Pending, 1);
        counts.add(false, PodState::Unschedulable, 1);
        assert_eq!((counts.pod_sets_running, counts.running, counts.unschedulable), (1, 1, 1));
        assert!(!counts.settled(3));
        // The pending pod runs and completes.
        counts.add(false, PodState::Pending, -1);
        counts.add(false, PodState::Running, 1);
        counts.add(false, PodState::Running, -1);
        counts.add(false, PodState::Ran, 1);
        assert_eq!((counts.pod_sets_running, counts.running), (1, 2));
        assert!(counts.settled(3));
    }

    #[test]
    fn deployments_and_jobs_carry_gantry_labels() {
        let text = "clusters:\n  - name: s\n    deployments:\n      - { name: llama, namespace: nlp, image: img:1, gpus: 1, gpuModel: NVIDIA-H100-80GB-HBM3, model: llama-3-8b, modelVersion: v1 }\n    jobs:\n      - { name: train, namespace: nlp, image: t:2, gpus: 8, runSeconds: 60 }\n";
        let fleet = Fleet::from_yaml(text).unwrap();
        let (d, s) = deployment(&fleet.clusters[0].deployments[0]);
        let template = d.spec.as_ref().unwrap().template.clone();
        let labels = template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["gantry.dev/model"], "llama-3-8b");
        assert_eq!(labels["gantry.dev/model-version"], "v1");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "gantry");
        let pod = template.spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["nvidia.com/gpu.product"], "NVIDIA-H100-80GB-HBM3");
        let limits = pod.containers[0].resources.clone().unwrap().limits.unwrap();
        assert_eq!(limits[GPU_RESOURCE].0, "1");
        assert_eq!(s.spec.unwrap().selector.unwrap()["app.kubernetes.io/name"], "llama");
        let job = job(&fleet.clusters[0].jobs[0]);
        let annotations = job.spec.unwrap().template.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations[RUN_FOR_ANNOTATION], "60s");
        assert_eq!(annotations[RUN_FOR_JITTER_ANNOTATION], "60s");
        assert_eq!(d.spec.unwrap().template.metadata.unwrap().annotations, None, "healthy by default");
    }

    #[test]
    fn deployments_can_ask_to_crash_loop_or_be_oom_killed() {
        let text = "clusters:\n  - name: s\n    deployments:\n      - { name: crash, namespace: nlp, image: img:1, crashLoop: true }\n      - { name: oom, namespace: nlp, image: img:1, oomKill: true }\n";
        let fleet = Fleet::from_yaml(text).unwrap();
        let annotations = |i: usize| {
            let (d, _) = deployment(&fleet.clusters[0].deployments[i]);
            d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()
        };
        assert_eq!(annotations(0), strings([(CRASH_LOOP_ANNOTATION, "true".to_string())]));
        assert_eq!(annotations(1), strings([(OOM_KILL_ANNOTATION, "true".to_string())]));
    }
}
