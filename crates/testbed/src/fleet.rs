//! The fleet file: which clusters to start, their simulated nodes and the workloads to apply.
//!
//! Every rule lives in a `Deserialize` impl (newtypes for single values, `try_from` raw structs
//! for rules that span fields), so a bad file fails while serde_yaml still knows where it
//! is: the error carries the field path, line and column, and nothing is started.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The whole fleet: one entry per cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawFleet", rename_all = "camelCase")]
pub struct Fleet {
    pub clusters: Vec<ClusterSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFleet {
    clusters: Clusters,
}

impl From<RawFleet> for Fleet {
    fn from(raw: RawFleet) -> Self {
        Fleet { clusters: raw.clusters.0 }
    }
}

/// The cluster list, checked as a whole so an error points at `clusters` and its line.
struct Clusters(Vec<ClusterSpec>);

impl<'de> Deserialize<'de> for Clusters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ClustersVisitor;
        impl<'de> Visitor<'de> for ClustersVisitor {
            type Value = Clusters;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of clusters")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Clusters, A::Error> {
                let fleet = Fleet { clusters: Vec::deserialize(SeqAccessDeserializer::new(seq))? };
                fleet.check_rules().map_err(de::Error::custom)?;
                Ok(Clusters(fleet.clusters))
            }
        }
        deserializer.deserialize_seq(ClustersVisitor)
    }
}

/// One Kubernetes control plane and what runs on it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Also the kubeconfig context name.
    pub name: Name,
    pub namespaces: Vec<Name>,
    pub node_pools: Vec<NodePool>,
    pub deployments: Vec<DeploymentSpec>,
    pub jobs: Vec<JobSpec>,
    pub pod_sets: Vec<PodSet>,
    /// Run the Kubeflow training operator in this cluster (its CRDs applied, its PyTorchJob
    /// and TFJob controllers on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub training_operator: bool,
    /// `kubeflow.org/v1` PyTorchJobs (need `trainingOperator: true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pytorch_jobs: Vec<PyTorchJobSpec>,
    /// Run Karpenter with its KWOK cloud provider in this cluster (its CRDs applied, a
    /// `KWOKNodeClass` named `default`, the instance types of [`crate::karpenter::INSTANCE_TYPES`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub karpenter: bool,
    /// `karpenter.sh/v1` NodePools (need `karpenter: true`). Not to be confused with
    /// `nodePools`, the testbed's own fixed groups of nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub karpenter_node_pools: Vec<KarpenterNodePool>,
    /// Install Kubeflow Trainer v2's CRDs (TrainJob, TrainingRuntime, ClusterTrainingRuntime)
    /// and its ClusterTrainingRuntimes; no Trainer controller runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub train_job_crds: bool,
    /// `trainer.kubeflow.org/v1alpha1` TrainJobs (need `trainJobCrds: true`); without a
    /// controller they get no pods and no status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_jobs: Vec<TrainJobSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawClusterSpec {
    name: Name,
    #[serde(default)]
    namespaces: Vec<Name>,
    #[serde(default)]
    node_pools: Vec<NodePool>,
    #[serde(default)]
    deployments: Vec<DeploymentSpec>,
    #[serde(default)]
    jobs: Vec<JobSpec>,
    #[serde(default)]
    pod_sets: Vec<PodSet>,
    #[serde(default)]
    training_operator: bool,
    #[serde(default)]
    pytorch_jobs: Vec<PyTorchJobSpec>,
    #[serde(default)]
    karpenter: bool,
    #[serde(default)]
    karpenter_node_pools: Vec<KarpenterNodePool>,
    #[serde(default)]
    train_job_crds: bool,
    #[serde(default)]
    train_jobs: Vec<TrainJobSpec>,
}

impl<'de> Deserialize<'de> for ClusterSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked::<D, RawClusterSpec, ClusterSpec>(deserializer, "a cluster")
    }
}

impl TryFrom<RawClusterSpec> for ClusterSpec {
    type Error = String;

    fn try_from(raw: RawClusterSpec) -> Result<Self, String> {
        let spec = ClusterSpec {
            name: raw.name,
            namespaces: raw.namespaces,
            node_pools: raw.node_pools,
            deployments: raw.deployments,
            jobs: raw.jobs,
            pod_sets: raw.pod_sets,
            training_operator: raw.training_operator,
            pytorch_jobs: raw.pytorch_jobs,
            karpenter: raw.karpenter,
            karpenter_node_pools: raw.karpenter_node_pools,
            train_job_crds: raw.train_job_crds,
            train_jobs: raw.train_jobs,
        };
        spec.check_rules()?;
        Ok(spec)
    }
}

/// A group of identical simulated nodes, named `<cluster>-<pool>-<i>`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    pub name: Name,
    pub count: u32,
    pub cpu: Quantity,
    pub memory: Quantity,
    /// Pod capacity of each node (the kubelet default is 110).
    pub max_pods: u32,
    pub gpu: Option<GpuSpec>,
    /// MIG profile ("1g.10gb") to the number of such slices per node, exposed as the
    /// extended resource `nvidia.com/mig-<profile>` next to `nvidia.com/gpu`.
    pub mig: BTreeMap<MigProfile, u32>,
    pub instance_type: Option<LabelValue>,
    pub zone: Option<LabelValue>,
    pub capacity_type: CapacityType,
    pub labels: BTreeMap<LabelKey, LabelValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNodePool {
    name: Name,
    count: AtLeastOne,
    cpu: Quantity,
    memory: Quantity,
    #[serde(default)]
    max_pods: Option<AtLeastOne>,
    #[serde(default)]
    gpu: Option<GpuSpec>,
    #[serde(default)]
    mig: BTreeMap<MigProfile, AtLeastOne>,
    #[serde(default)]
    instance_type: Option<LabelValue>,
    #[serde(default)]
    zone: Option<LabelValue>,
    #[serde(default)]
    capacity_type: CapacityType,
    #[serde(default)]
    labels: BTreeMap<LabelKey, LabelValue>,
}

impl<'de> Deserialize<'de> for NodePool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked::<D, RawNodePool, NodePool>(deserializer, "a node pool")
    }
}

impl TryFrom<RawNodePool> for NodePool {
    type Error = String;

    fn try_from(raw: RawNodePool) -> Result<Self, String> {
        if !raw.mig.is_empty() && raw.gpu.is_none() {
            return Err(format!("node pool `{}`: `mig` needs a `gpu` entry (MIG slices come from GPUs)", raw.name));
        }
        Ok(NodePool {
            name: raw.name,
            count: raw.count.0,
            cpu: raw.cpu,
            memory: raw.memory,
            max_pods: raw.max_pods.map_or(DEFAULT_MAX_PODS, |n| n.0),
            gpu: raw.gpu,
            mig: raw.mig.into_iter().map(|(k, v)| (k, v.0)).collect(),
            instance_type: raw.instance_type,
            zone: raw.zone,
            capacity_type: raw.capacity_type,
            labels: raw.labels,
        })
    }
}

/// A Karpenter NodePool (`karpenter.sh/v1`, see [`crate::karpenter::node_pool`]): Karpenter
/// launches nodes of these instance types (from [`crate::karpenter::INSTANCE_TYPES`]) for pods
/// that fit none of the existing nodes, labelled `nvidia.com/gpu.product: <gpuProduct>`, and
/// removes them once empty (`consolidateAfterSeconds`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KarpenterNodePool {
    pub name: Name,
    /// `nvidia.com/gpu.product` of its nodes; defaults to the instance types' own GPU model.
    pub gpu_product: Option<LabelValue>,
    /// Names from [`crate::karpenter::INSTANCE_TYPES`] (`node.kubernetes.io/instance-type`).
    pub instance_types: Vec<LabelValue>,
    /// `karpenter.sh/capacity-type` values it may launch (default: on-demand).
    pub capacity_types: Vec<CapacityType>,
    /// `spec.limits` on `nvidia.com/gpu`.
    pub limit_gpus: Option<u32>,
    /// `spec.limits` on `cpu`.
    pub limit_cpu: Option<Quantity>,
    /// `spec.disruption.consolidateAfter` (policy `WhenEmpty`), in seconds.
    pub consolidate_after_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawKarpenterNodePool {
    name: Name,
    #[serde(default)]
    gpu_product: Option<LabelValue>,
    instance_types: Vec<LabelValue>,
    #[serde(default)]
    capacity_types: Vec<CapacityType>,
    #[serde(default)]
    limit_gpus: Option<AtLeastOne>,
    #[serde(default)]
    limit_cpu: Option<Quantity>,
    #[serde(default = "default_consolidate_after")]
    consolidate_after_seconds: u64,
}

fn default_consolidate_after() -> u64 {
    5
}

impl<'de> Deserialize<'de> for KarpenterNodePool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked::<D, RawKarpenterNodePool, KarpenterNodePool>(deserializer, "a Karpenter node pool")
    }
}

impl TryFrom<RawKarpenterNodePool> for KarpenterNodePool {
    type Error = String;

    fn try_from(raw: RawKarpenterNodePool) -> Result<Self, String> {
        let pool = KarpenterNodePool {
            name: raw.name,
            gpu_product: raw.gpu_product,
            instance_types: raw.instance_types,
            capacity_types: raw.capacity_types,
            limit_gpus: raw.limit_gpus.map(|n| n.0),
            limit_cpu: raw.limit_cpu,
            consolidate_after_seconds: raw.consolidate_after_seconds,
        };
        pool.check_rules()?;
        Ok(pool)
    }
}

impl KarpenterNodePool {
    /// A pool of these instance types, on-demand, GPU model from the instance types.
    pub fn new(name: &str, instance_types: &[&str]) -> KarpenterNodePool {
        KarpenterNodePool {
            name: Name::new(name).expect("a DNS label as node pool name"),
            gpu_product: None,
            instance_types: instance_types
                .iter()
                .map(|t| LabelValue::new(*t).expect("an instance type name"))
                .collect(),
            capacity_types: Vec::new(),
            limit_gpus: None,
            limit_cpu: None,
            consolidate_after_seconds: default_consolidate_after(),
        }
    }

    /// The capacity types it may launch: those listed, else on-demand.
    pub fn capacity_types(&self) -> Vec<CapacityType> {
        if self.capacity_types.is_empty() { vec![CapacityType::OnDemand] } else { self.capacity_types.clone() }
    }

    /// `nvidia.com/gpu.product` of its nodes: `gpuProduct`, else the model its instance types
    /// share (none for CPU pools, or when they differ).
    pub fn gpu_product(&self) -> Option<String> {
        if let Some(product) = &self.gpu_product {
            return Some(product.to_string());
        }
        let mut models =
            self.instance_types.iter().map(|t| crate::karpenter::instance_type(t.as_str()).and_then(|t| t.gpu_product));
        let first = models.next()??;
        models.all(|m| m == Some(first)).then(|| first.to_string())
    }

    pub fn check_rules(&self) -> Result<(), String> {
        if self.instance_types.is_empty() {
            return Err(format!("Karpenter node pool `{}`: list at least one of `instanceTypes`", self.name));
        }
        for name in &self.instance_types {
            let Some(found) = crate::karpenter::instance_type(name.as_str()) else {
                let known: Vec<&str> = crate::karpenter::INSTANCE_TYPES.iter().map(|t| t.name).collect();
                return Err(format!(
                    "Karpenter node pool `{}`: unknown instance type `{name}` (the testbed's KWOK provider offers {})",
                    self.name,
                    known.join(", ")
                ));
            };
            if self.gpu_product.is_some() && found.gpus == 0 {
                return Err(format!(
                    "Karpenter node pool `{}`: `gpuProduct` is set but instance type `{name}` has no GPUs",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// Pod capacity per node when a pool does not say.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// The GPUs of each node of a pool, labelled as NVIDIA GPU feature discovery would.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GpuSpec {
    /// `nvidia.com/gpu.product`, e.g. `NVIDIA-H100-80GB-HBM3`.
    pub model: LabelValue,
    #[serde(deserialize_with = "at_least_one")]
    pub count: u32,
    /// `nvidia.com/gpu.memory`, per GPU.
    #[serde(default, rename = "memoryMiB")]
    pub memory_mib: Option<u64>,
}

/// `karpenter.sh/capacity-type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    Spot,
    #[default]
    OnDemand,
}

impl CapacityType {
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityType::Spot => "spot",
            CapacityType::OnDemand => "on-demand",
        }
    }
}

/// A Deployment (and a Service in front of it) serving a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub name: Name,
    pub namespace: Name,
    pub image: Image,
    #[serde(default = "one")]
    pub replicas: u32,
    /// `nvidia.com/gpu` limit per replica.
    #[serde(default)]
    pub gpus: u32,
    /// Pins replicas to nodes with this `nvidia.com/gpu.product`.
    #[serde(default)]
    pub gpu_model: Option<LabelValue>,
    /// `gantry.dev/model`.
    #[serde(default)]
    pub model: Option<LabelValue>,
    /// `gantry.dev/model-version`.
    #[serde(default)]
    pub model_version: Option<LabelValue>,
    #[serde(default)]
    pub cpu: Option<Quantity>,
    #[serde(default)]
    pub memory: Option<Quantity>,
    /// Container port, also the Service's target port.
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub labels: BTreeMap<LabelKey, LabelValue>,
    /// The pods crash-loop (`testbed.gantry.dev/crash-loop`: exit code 1, CrashLoopBackOff).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crash_loop: bool,
    /// The pods are OOM-killed over and over (`testbed.gantry.dev/oom-kill`: exit code 137).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill: bool,
}

/// A batch/v1 Job whose pods run for `runSeconds` (simulated by KWOK) and then succeed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobSpec {
    pub name: Name,
    pub namespace: Name,
    pub image: Image,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub gpu_model: Option<LabelValue>,
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub parallelism: u32,
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub completions: u32,
    #[serde(default = "default_run_seconds")]
    pub run_seconds: u64,
    #[serde(default)]
    pub cpu: Option<Quantity>,
    #[serde(default)]
    pub memory: Option<Quantity>,
    #[serde(default)]
    pub labels: BTreeMap<LabelKey, LabelValue>,
}

/// A Kubeflow `PyTorchJob` (`kubeflow.org/v1`): one Master replica and `workers` Worker
/// replicas, created by the training operator. Its pods run for `runSeconds` (KWOK), then
/// succeed; with `fail`, the workers exit with code 1 instead and the job fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PyTorchJobSpec {
    pub name: Name,
    pub namespace: Name,
    pub image: Image,
    /// Worker replicas (the Master is one more pod).
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub workers: u32,
    /// `nvidia.com/gpu` limit of every pod, Master included.
    #[serde(default)]
    pub gpus_per_worker: u32,
    /// Pins the pods to nodes with this `nvidia.com/gpu.product`.
    #[serde(default)]
    pub gpu_model: Option<LabelValue>,
    #[serde(default = "default_run_seconds")]
    pub run_seconds: u64,
    /// The workers crash (`testbed.gantry.dev/crash-loop`, restartPolicy Never: exit code 1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail: bool,
}

impl PyTorchJobSpec {
    /// A job of one Master and `workers` Workers, running for 5 s, no GPUs.
    pub fn new(name: &str, namespace: &str, workers: u32) -> PyTorchJobSpec {
        PyTorchJobSpec {
            name: Name::new(name).expect("a DNS label as job name"),
            namespace: Name::new(namespace).expect("a DNS label as namespace"),
            image: Image("docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727".into()),
            workers: workers.max(1),
            gpus_per_worker: 0,
            gpu_model: None,
            run_seconds: default_run_seconds(),
            fail: false,
        }
    }

    /// Every pod of the job: the Master and the Workers.
    pub fn pods(&self) -> usize {
        1 + self.workers as usize
    }
}

/// A Kubeflow Trainer v2 `TrainJob` (`trainer.kubeflow.org/v1alpha1`, see
/// [`crate::training::train_job`]) referring to a ClusterTrainingRuntime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrainJobSpec {
    pub name: Name,
    pub namespace: Name,
    /// `spec.runtimeRef.name`: a ClusterTrainingRuntime (`torch-distributed`, the default;
    /// `deepspeed-distributed`, `mlx-distributed`, `mpi-distributed` ship with Trainer).
    #[serde(default = "default_train_job_runtime")]
    pub runtime: Name,
    /// `spec.trainer.numNodes`.
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub num_nodes: u32,
    /// `nvidia.com/gpu` of `spec.trainer.resourcesPerNode` (requests and limits).
    #[serde(default)]
    pub gpus_per_node: u32,
    /// `spec.trainer.image`; the runtime's image when unset.
    #[serde(default)]
    pub image: Option<Image>,
}

fn default_train_job_runtime() -> Name {
    Name("torch-distributed".into())
}

impl TrainJobSpec {
    /// A TrainJob of `num_nodes` nodes on the `torch-distributed` runtime, no GPUs.
    pub fn new(name: &str, namespace: &str, num_nodes: u32) -> TrainJobSpec {
        TrainJobSpec {
            name: Name::new(name).expect("a DNS label as job name"),
            namespace: Name::new(namespace).expect("a DNS label as namespace"),
            runtime: default_train_job_runtime(),
            num_nodes: num_nodes.max(1),
            gpus_per_node: 0,
            image: None,
        }
    }
}

/// Bulk pods created already bound to nodes (round-robin over nodes with room), so the
/// scheduler is not the bottleneck of a scale fleet. Named `<name>-<i>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSet {
    #[serde(default = "default_pod_set_name")]
    pub name: Name,
    pub namespace: Name,
    #[serde(deserialize_with = "at_least_one")]
    pub count: u32,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default = "default_pod_set_cpu")]
    pub cpu: Quantity,
    #[serde(default = "default_pod_set_memory")]
    pub memory: Quantity,
    #[serde(default = "default_pod_set_image")]
    pub image: Image,
}

fn one() -> u32 {
    1
}

fn default_port() -> u16 {
    8080
}

fn default_run_seconds() -> u64 {
    5
}

fn default_pod_set_name() -> Name {
    Name("bulk".into())
}

fn default_pod_set_cpu() -> Quantity {
    Quantity::parse("100m").expect("a valid quantity")
}

fn default_pod_set_memory() -> Quantity {
    Quantity::parse("64Mi").expect("a valid quantity")
}

fn default_pod_set_image() -> Image {
    Image("registry.k8s.io/pause:3.10".into())
}

impl Fleet {
    /// Parses and validates a fleet file's text.
    pub fn from_yaml(text: &str) -> Result<Fleet> {
        Self::parse(text, "<inline>")
    }

    /// Reads, parses and validates a fleet file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Fleet> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { context: format!("reading fleet file {}", path.display()), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Fleet> {
        serde_yaml::from_str(text).map_err(|source| {
            let location = source.location().map(|at| (at.line(), at.column()));
            let mut message = source.to_string();
            // serde_yaml leaves out the position when it is the very start of the file.
            if let Some((line, column)) = location.filter(|_| !message.contains(" at line ")) {
                message.push_str(&format!(" at line {line} column {column}"));
            }
            let excerpt = location
                .and_then(|(line, _)| text.lines().nth(line.saturating_sub(1)).map(|text| (line, text)))
                .map(|(number, line)| format!("\n{number:>5} | {line}"))
                .unwrap_or_default();
            Error::Fleet { origin: origin.to_string(), message, excerpt, location }
        })
    }

    /// A one-cluster fleet for tests: an H100 x8 spot node, an A100 x8 on-demand node with
    /// MIG slices, a CPU-only node, and the namespaces `vision` and `nlp`. No workloads.
    pub fn small(name: &str) -> Fleet {
        let name = Name::new(name).expect("Fleet::small needs a DNS label as cluster name");
        let pool = |pool: &str, cpu: &str, memory: &str, gpu: Option<(&str, u32, u64)>| NodePool {
            name: Name(pool.into()),
            count: 1,
            cpu: Quantity::parse(cpu).expect("valid"),
            memory: Quantity::parse(memory).expect("valid"),
            max_pods: DEFAULT_MAX_PODS,
            gpu: gpu.map(|(model, count, memory_mib)| GpuSpec {
                model: LabelValue(model.into()),
                count,
                memory_mib: Some(memory_mib),
            }),
            mig: BTreeMap::new(),
            instance_type: None,
            zone: Some(LabelValue("us-east-1a".into())),
            capacity_type: CapacityType::OnDemand,
            labels: BTreeMap::new(),
        };
        let mut h100 = pool("h100-spot", "192", "2Ti", Some(("NVIDIA-H100-80GB-HBM3", 8, 81559)));
        h100.capacity_type = CapacityType::Spot;
        h100.instance_type = Some(LabelValue("p5.48xlarge".into()));
        let mut a100 = pool("a100", "96", "1152Gi", Some(("NVIDIA-A100-SXM4-80GB", 8, 81920)));
        a100.instance_type = Some(LabelValue("p4de.24xlarge".into()));
        a100.mig.insert(MigProfile("1g.10gb".into()), 7);
        let mut cpu = pool("cpu", "16", "64Gi", None);
        cpu.instance_type = Some(LabelValue("m6i.4xlarge".into()));
        Fleet {
            clusters: vec![ClusterSpec {
                name,
                namespaces: vec![Name("vision".into()), Name("nlp".into())],
                node_pools: vec![h100, a100, cpu],
                deployments: Vec::new(),
                jobs: Vec::new(),
                pod_sets: Vec::new(),
                training_operator: false,
                pytorch_jobs: Vec::new(),
                karpenter: false,
                karpenter_node_pools: Vec::new(),
                train_job_crds: false,
                train_jobs: Vec::new(),
            }],
        }
    }

    /// This fleet with the Kubeflow training operator in every cluster (`trainingOperator: true`).
    pub fn with_training_operator(mut self) -> Fleet {
        for cluster in &mut self.clusters {
            cluster.training_operator = true;
        }
        self
    }

    /// This fleet with Karpenter (KWOK provider) in every cluster (`karpenter: true`), and
    /// `pools` as the Karpenter NodePools of each.
    pub fn with_karpenter(mut self, pools: Vec<KarpenterNodePool>) -> Fleet {
        for cluster in &mut self.clusters {
            cluster.karpenter = true;
            cluster.karpenter_node_pools = pools.clone();
        }
        self
    }

    /// This fleet with Kubeflow Trainer v2's CRDs in every cluster (`trainJobCrds: true`).
    pub fn with_train_job_crds(mut self) -> Fleet {
        for cluster in &mut self.clusters {
            cluster.train_job_crds = true;
        }
        self
    }

    /// Whether any cluster installs Kubeflow Trainer v2's CRDs.
    pub fn needs_train_job_crds(&self) -> bool {
        self.clusters.iter().any(|c| c.train_job_crds)
    }

    /// Whether any cluster runs Karpenter.
    pub fn needs_karpenter(&self) -> bool {
        self.clusters.iter().any(|c| c.karpenter)
    }

    /// Whether any cluster runs the Kubeflow training operator.
    pub fn needs_training_operator(&self) -> bool {
        self.clusters.iter().any(|c| c.training_operator)
    }

    /// This fleet's clusters followed by `other`'s.
    pub fn and(mut self, other: Fleet) -> Fleet {
        self.clusters.extend(other.clusters);
        self
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterSpec> {
        self.clusters.iter().find(|c| c.name.as_str() == name)
    }

    /// Rules across clusters; `Testbed::start` runs them again for fleets built in code.
    pub fn check_rules(&self) -> Result<(), String> {
        if self.clusters.is_empty() {
            return Err("a fleet needs at least one cluster".into());
        }
        let mut seen = BTreeSet::new();
        for cluster in &self.clusters {
            if !seen.insert(cluster.name.as_str()) {
                return Err(format!("cluster name `{}` is used twice", cluster.name));
            }
            cluster.check_rules()?;
        }
        Ok(())
    }
}

impl ClusterSpec {
    fn check_rules(&self) -> Result<(), String> {
        let mut pools = BTreeSet::new();
        for pool in &self.node_pools {
            if !pools.insert(pool.name.as_str()) {
                return Err(format!("cluster `{}`: node pool name `{}` is used twice", self.name, pool.name));
            }
            // Node names end up in the `kubernetes.io/hostname` label, limited to 63 characters.
            let longest = format!("{}-{}-{}", self.name, pool.name, pool.count.saturating_sub(1));
            if longest.len() > 63 {
                return Err(format!(
                    "cluster `{}`: node name `{longest}` would be longer than 63 characters; shorten the cluster or pool name",
                    self.name
                ));
            }
        }
        let mut namespaces = BTreeSet::new();
        for ns in &self.namespaces {
            if !namespaces.insert(ns.as_str()) {
                return Err(format!("cluster `{}`: namespace `{ns}` is listed twice", self.name));
            }
        }
        let mut workloads = BTreeSet::new();
        let named = self
            .deployments
            .iter()
            .map(|d| ("deployment", &d.namespace, &d.name))
            .chain(self.jobs.iter().map(|j| ("job", &j.namespace, &j.name)))
            .chain(self.pod_sets.iter().map(|p| ("pod set", &p.namespace, &p.name)))
            .chain(self.pytorch_jobs.iter().map(|j| ("PyTorchJob", &j.namespace, &j.name)))
            .chain(self.train_jobs.iter().map(|j| ("TrainJob", &j.namespace, &j.name)));
        for (kind, namespace, name) in named {
            if !workloads.insert((kind, namespace.as_str(), name.as_str())) {
                return Err(format!("cluster `{}`: {kind} `{namespace}/{name}` is defined twice", self.name));
            }
        }
        let mut karpenter_pools = BTreeSet::new();
        for pool in &self.karpenter_node_pools {
            if !karpenter_pools.insert(pool.name.as_str()) {
                return Err(format!("cluster `{}`: Karpenter node pool name `{}` is used twice", self.name, pool.name));
            }
            pool.check_rules().map_err(|e| format!("cluster `{}`: {e}", self.name))?;
        }
        if !self.train_jobs.is_empty() && !self.train_job_crds {
            return Err(format!(
                "cluster `{}`: `trainJobs` need Kubeflow Trainer's CRDs; add `trainJobCrds: true`",
                self.name
            ));
        }
        if !self.karpenter_node_pools.is_empty() && !self.karpenter {
            return Err(format!("cluster `{}`: `karpenterNodePools` need Karpenter; add `karpenter: true`", self.name));
        }
        if !self.pytorch_jobs.is_empty() && !self.training_operator {
            return Err(format!(
                "cluster `{}`: `pytorchJobs` need the Kubeflow training operator; add `trainingOperator: true`",
                self.name
            ));
        }
        Ok(())
    }

    /// The namespaces to create: those listed, then any a workload uses.
    pub fn all_namespaces(&self) -> Vec<&Name> {
        let mut out: Vec<&Name> = Vec::new();
        let used = self
            .namespaces
            .iter()
            .chain(self.deployments.iter().map(|d| &d.namespace))
            .chain(self.jobs.iter().map(|j| &j.namespace))
            .chain(self.pod_sets.iter().map(|p| &p.namespace))
            .chain(self.pytorch_jobs.iter().map(|j| &j.namespace))
            .chain(self.train_jobs.iter().map(|j| &j.namespace));
        for ns in used {
            if !out.contains(&ns) {
                out.push(ns);
            }
        }
        out
    }

    pub fn node_count(&self) -> usize {
        self.node_pools.iter().map(|p| p.count as usize).sum()
    }

    pub fn pod_set_pods(&self) -> usize {
        self.pod_sets.iter().map(|p| p.count as usize).sum()
    }

    /// The pods the workloads ask for at once: every Deployment replica, every Job pod that
    /// runs in parallel, every PyTorchJob pod and every pod-set pod.
    pub fn workload_pods(&self) -> usize {
        let deployments: usize = self.deployments.iter().map(|d| d.replicas as usize).sum();
        let jobs: usize = self.jobs.iter().map(|j| j.parallelism.min(j.completions) as usize).sum();
        let pytorch_jobs: usize = self.pytorch_jobs.iter().map(PyTorchJobSpec::pods).sum();
        deployments + jobs + pytorch_jobs + self.pod_set_pods()
    }
}

// ---------------------------------------------------------------------------------------
// Validated values.

/// A DNS-1123 label: lowercase letters, digits and '-', at most 63 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn new(text: impl Into<String>) -> Result<Name, String> {
        let text = text.into();
        let ok = !text.is_empty()
            && text.len() <= 63
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        if ok {
            Ok(Name(text))
        } else {
            Err(format!(
                "`{text}` is not a valid name: use 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Kubernetes label value (also used for GPU models, zones and instance types).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LabelValue(String);

impl LabelValue {
    pub fn new(text: impl Into<String>) -> Result<LabelValue, String> {
        let text = text.into();
        if is_label_value(&text) && !text.is_empty() {
            Ok(LabelValue(text))
        } else {
            Err(format!(
                "`{text}` is not a valid label value: use 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_label_value(text: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    text.is_empty()
        || (text.len() <= 63
            && text.bytes().all(|b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
            && alnum(text.as_bytes()[0])
            && alnum(text.as_bytes()[text.len() - 1]))
}

/// A label key: an optional DNS-subdomain prefix and '/', then a name as for label values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LabelKey(String);

impl LabelKey {
    pub fn new(text: impl Into<String>) -> Result<LabelKey, String> {
        let text = text.into();
        let (prefix, name) = match text.split_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, text.as_str()),
        };
        let prefix_ok =
            prefix.is_none_or(|p| !p.is_empty() && p.len() <= 253 && p.split('.').all(|part| Name::new(part).is_ok()));
        if prefix_ok && !name.is_empty() && is_label_value(name) {
            Ok(LabelKey(text))
        } else {
            Err(format!("`{text}` is not a valid label key"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A MIG profile such as `1g.10gb`, usable in the resource name `nvidia.com/mig-<profile>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MigProfile(String);

impl MigProfile {
    pub fn new(text: impl Into<String>) -> Result<MigProfile, String> {
        let text = text.into();
        let shape = text.split_once('g').and_then(|(slices, rest)| {
            let (memory, _) = rest.strip_prefix('.')?.split_once("gb")?;
            Some(
                !slices.is_empty()
                    && slices.bytes().all(|b| b.is_ascii_digit())
                    && memory.bytes().all(|b| b.is_ascii_digit())
                    && !memory.is_empty(),
            )
        });
        let name_ok = text.len() <= 59
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && text.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if shape == Some(true) && name_ok {
            Ok(MigProfile(text))
        } else {
            Err(format!("`{text}` is not a MIG profile such as `1g.10gb` or `3g.40gb`"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extended resource name, `nvidia.com/mig-<profile>`.
    pub fn resource_name(&self) -> String {
        format!("nvidia.com/mig-{}", self.0)
    }
}

/// A container image reference (non-empty, no whitespace).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Image(String);

impl Image {
    pub fn new(text: impl Into<String>) -> Result<Image, String> {
        let text = text.into();
        if text.is_empty() || text.chars().any(char::is_whitespace) {
            Err(format!("`{text}` is not a container image reference"))
        } else {
            Ok(Image(text))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A positive resource quantity ("100m", "192", "2Ti"); YAML numbers are accepted too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quantity {
    text: String,
    milli: u128,
}

impl Quantity {
    pub fn parse(text: &str) -> Result<Quantity, String> {
        match gantry_domain::quantity::Quantity::parse(text).map(|quantity| quantity.milli()) {
            Ok(milli) if milli > 0 => Ok(Quantity { text: text.trim().to_string(), milli: milli.unsigned_abs() }),
            Ok(_) => Err(format!("`{text}` must be more than zero")),
            Err(_) => Err(format!("`{text}` is not a Kubernetes quantity (examples: 500m, 4, 16Gi, 2Ti)")),
        }
    }

    /// As written, e.g. "2Ti".
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Thousandths of the unit (millicores for CPU, millibytes for memory).
    pub fn milli(&self) -> u128 {
        self.milli
    }
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity such as 500m, 4, 16Gi or 2Ti")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// Deserializes `Raw` and converts it with `T::try_from` inside the map visitor, so a
/// rule spanning several fields blames this mapping (its path and line), not its parent.
fn deserialize_checked<'de, D, Raw, T>(deserializer: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Raw: Deserialize<'de>,
    T: TryFrom<Raw, Error = String>,
{
    struct CheckedVisitor<Raw, T>(PhantomData<(Raw, T)>, &'static str);
    impl<'de, Raw, T> Visitor<'de> for CheckedVisitor<Raw, T>
    where
        Raw: Deserialize<'de>,
        T: TryFrom<Raw, Error = String>,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.1)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = Raw::deserialize(MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(de::Error::custom)
        }
    }
    deserializer.deserialize_map(CheckedVisitor(PhantomData, expecting))
}

/// Validates inside the visitor, that is while serde_yaml is still positioned on the value,
/// so the error carries this value's path, line and column (validating after
/// `String::deserialize` returns would blame the enclosing mapping instead).
struct ValidatingVisitor<T> {
    validate: fn(&str) -> Result<T, String>,
    expecting: &'static str,
}

impl<T> Visitor<'_> for ValidatingVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.validate)(v).map_err(E::custom)
    }
}

macro_rules! string_newtype_deserialize {
    ($($ty:ident => $expecting:literal),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(ValidatingVisitor { validate: |s| $ty::new(s), expecting: $expecting })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

string_newtype_deserialize!(
    Name => "a name (DNS label)",
    LabelValue => "a label value",
    LabelKey => "a label key",
    MigProfile => "a MIG profile such as 1g.10gb",
    Image => "a container image reference",
);

/// A count that must be at least one.
struct AtLeastOne(u32);

impl<'de> Deserialize<'de> for AtLeastOne {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        at_least_one(deserializer).map(AtLeastOne)
    }
}

fn at_least_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    struct AtLeastOneVisitor;
    impl Visitor<'_> for AtLeastOneVisitor {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number of at least 1")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            match u32::try_from(v) {
                Ok(0) => Err(E::custom("must be at least 1")),
                Ok(n) => Ok(n),
                Err(_) => Err(E::custom(format!("{v} is too large"))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom("must be at least 1")),
            }
        }
    }
    deserializer.deserialize_u32(AtLeastOneVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
clusters:
  - name: prod
    namespaces: [vision, nlp]
    nodePools:
      - name: h100-spot
        count: 2
        cpu: "192"
        memory: 2Ti
        gpu: { model: NVIDIA-H100-80GB-HBM3, count: 8, memoryMiB: 81559 }
        instanceType: p5.48xlarge
        zone: us-east-1a
        capacityType: spot
      - name: a100
        count: 1
        cpu: 96
        memory: 1152Gi
        gpu: { model: NVIDIA-A100-SXM4-80GB, count: 8 }
        mig: { "1g.10gb": 7 }
        labels: { team: vision }
    deployments:
      - { name: llama-serve, namespace: vision, image: ghcr.io/acme/llama:1.0, replicas: 2, gpus: 1, gpuModel: NVIDIA-H100-80GB-HBM3, model: llama-3-8b, modelVersion: v1 }
    jobs:
      - { name: train-resnet, namespace: vision, image: ghcr.io/acme/trainer:2, gpus: 8, parallelism: 1, completions: 1, runSeconds: 86400 }
    podSets:
      - { namespace: bench, count: 30, gpus: 0, cpu: 100m }
"#;

    #[test]
    fn quantities_are_kept_exact_and_must_be_positive() {
        for (text, milli) in [("192", 192_000), ("100m", 100), ("1.5Gi", 1_610_612_736_000), ("1.5m", 2)] {
            assert_eq!(Quantity::parse(text).unwrap().milli(), milli, "{text}");
        }
        for text in ["0", "-1", "0m"] {
            assert!(Quantity::parse(text).unwrap_err().contains("more than zero"), "{text}");
        }
        for text in ["", "abc", "12Qi", "1.2.3"] {
            assert!(Quantity::parse(text).unwrap_err().contains("not a Kubernetes quantity"), "{text}");
        }
    }

    #[test]
    fn a_good_file_parses_with_defaults_filled_in() {
        let fleet = Fleet::from_yaml(GOOD).unwrap();
        let prod = fleet.cluster("prod").unwrap();
        assert_eq!(prod.node_count(), 3);
        assert_eq!(prod.node_pools[0].capacity_type, CapacityType::Spot);
        assert_eq!(prod.node_pools[1].capacity_type, CapacityType::OnDemand);
        assert_eq!(prod.node_pools[1].cpu.milli(), 96_000);
        assert_eq!(prod.node_pools[1].max_pods, DEFAULT_MAX_PODS);
        assert_eq!(prod.node_pools[1].mig.values().copied().collect::<Vec<_>>(), vec![7]);
        assert_eq!(prod.deployments[0].replicas, 2);
        assert_eq!(prod.deployments[0].port, 8080);
        assert_eq!(prod.jobs[0].run_seconds, 86400);
        assert_eq!(prod.pod_sets[0].name.as_str(), "bulk");
        assert_eq!(prod.pod_sets[0].memory.as_str(), "64Mi");
        let namespaces: Vec<&str> = prod.all_namespaces().iter().map(|n| n.as_str()).collect();
        assert_eq!(namespaces, ["vision", "nlp", "bench"]);
    }

    /// Each case: the file, then text the error must contain (field path, line, reason).
    #[test]
    fn bad_files_name_the_line_and_field_at_fault() {
        let cases: &[(&str, &[&str])] = &[
            (
                "clusters:\n  - name: prod\n    nodePools:\n      - name: gpu\n        count: 0\n        cpu: 1\n        memory: 1Gi\n",
                &["clusters[0].nodePools[0].count", "must be at least 1", "line 5 column 16", "count: 0"],
            ),
            (
                "clusters:\n  - name: prod\n    nodePools:\n      - name: gpu\n        count: 1\n        cpu: lots\n        memory: 1Gi\n",
                &["clusters[0].nodePools[0].cpu", "not a Kubernetes quantity", "line 6 column 14"],
            ),
            (
                "clusters:\n  - name: prod\n    nodePools:\n      - name: gpu\n        count: 1\n        cpu: 1\n        memroy: 1Gi\n",
                &["clusters[0].nodePools[0]", "unknown field `memroy`", "line 7"],
            ),
            ("clusters:\n  - name: Prod_1\n", &["clusters[0].name", "not a valid name", "line 2 column 11"]),
            (
                "clusters:\n  - name: a\n    nodePools:\n      - { name: p, count: 1, cpu: 1, memory: 1Gi, capacityType: reserved }\n",
                &["clusters[0].nodePools[0].capacityType", "unknown variant `reserved`", "line 4"],
            ),
            (
                "clusters:\n  - name: a\n    nodePools:\n      - { name: p, count: 1, cpu: 1, memory: 1Gi, mig: { \"1g.10gb\": 7 } }\n",
                &["clusters[0].nodePools[0]", "`mig` needs a `gpu`", "line 4"],
            ),
            (
                "clusters:\n  - name: a\n    nodePools:\n      - { name: p, count: 1, cpu: 1, memory: 1Gi, gpu: { model: H100, count: 1 }, mig: { huge: 7 } }\n",
                &["clusters[0].nodePools[0].mig", "not a MIG profile", "line 4"],
            ),
            (
                "clusters:\n  - name: a\n    deployments:\n      - { name: web, namespace: vision, image: \"\" }\n",
                &["clusters[0].deployments[0].image", "not a container image", "line 4"],
            ),
            (
                "clusters:\n  - name: a\n    jobs:\n      - { name: t, namespace: ml, image: x, completions: 0 }\n",
                &["clusters[0].jobs[0].completions", "must be at least 1", "line 4"],
            ),
            ("clusters:\n  - name: a\n  - name: a\n", &["clusters: cluster name `a` is used twice", "line 2"]),
            (
                "clusters:\n  - name: a\n    nodePools:\n      - { name: p, count: 1, cpu: 1, memory: 1Gi }\n      - { name: p, count: 1, cpu: 1, memory: 1Gi }\n",
                &["clusters[0]: cluster `a`: node pool name `p` is used twice", "line 2"],
            ),
            (
                "clusters:\n  - name: a\n    podSets:\n      - { namespace: bench, count: 10, cpu: -1 }\n",
                &["clusters[0].podSets[0].cpu", "`-1` must be more than zero", "line 4"],
            ),
            ("clusters: []\n", &["at least one cluster"]),
            ("clusterz: []\n", &["unknown field `clusterz`", "line 1"]),
            (
                "clusters:\n  - name: a\n    nodePools:\n      - { name: p, count: 1, cpu: 1, memory: 1Gi, labels: { \"bad key!\": x } }\n",
                &["clusters[0].nodePools[0].labels", "not a valid label key", "line 4"],
            ),
        ];
        for (text, wants) in cases {
            let err = Fleet::from_yaml(text).expect_err(text).to_string();
            for want in *wants {
                assert!(err.contains(want), "error for\n{text}\nwas\n{err}\nmissing {want:?}");
            }
        }
    }

    #[test]
    fn small_fleet_is_valid_and_round_trips_through_yaml() {
        let fleet = Fleet::small("a").and(Fleet::small("b"));
        fleet.check_rules().unwrap();
        let text = serde_yaml::to_string(&fleet).unwrap();
        assert_eq!(Fleet::from_yaml(&text).unwrap(), fleet);
        assert!(Fleet::small("a").and(Fleet::small("a")).check_rules().is_err());
    }

    #[test]
    fn shipped_fleet_files_are_valid() {
        let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../deploy/fleets");
        let demo = Fleet::from_file(root.join("demo.yaml")).unwrap();
        let names: Vec<&str> = demo.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["dev", "staging", "prod"]);
        let counts: Vec<(usize, usize)> = demo.clusters.iter().map(|c| (c.node_count(), c.workload_pods())).collect();
        assert_eq!(counts, [(4, 5), (5, 4), (8, 16)]);
        let prod = demo.cluster("prod").unwrap();
        assert!(prod.karpenter && prod.karpenter_node_pools.len() == 3);
        let scale = Fleet::from_file(root.join("scale.yaml")).unwrap();
        assert_eq!(scale.clusters[0].node_count(), 1000);
        assert_eq!(scale.clusters[0].pod_set_pods(), 30_000);
    }

    #[test]
    fn pytorch_jobs_and_the_training_operator() {
        let text = r#"
clusters:
  - name: train
    trainingOperator: true
    pytorchJobs:
      - { name: ddp, namespace: nlp, image: ghcr.io/acme/ddp:1, workers: 3, gpusPerWorker: 2,
          gpuModel: NVIDIA-H100-80GB-HBM3, runSeconds: 60 }
      - { name: broken, namespace: vision, image: ghcr.io/acme/ddp:1, fail: true }
"#;
        let fleet = Fleet::from_yaml(text).unwrap();
        assert!(fleet.needs_training_operator());
        let cluster = &fleet.clusters[0];
        assert!(cluster.training_operator);
        let ddp = &cluster.pytorch_jobs[0];
        assert_eq!((ddp.workers, ddp.gpus_per_worker, ddp.run_seconds, ddp.fail), (3, 2, 60, false));
        assert_eq!(ddp.gpu_model.as_ref().map(LabelValue::as_str), Some("NVIDIA-H100-80GB-HBM3"));
        let broken = &cluster.pytorch_jobs[1];
        assert_eq!((broken.workers, broken.gpus_per_worker, broken.run_seconds, broken.fail), (1, 0, 5, true));
        assert_eq!(cluster.workload_pods(), 4 + 2);
        let namespaces: Vec<&str> = cluster.all_namespaces().iter().map(|n| n.as_str()).collect();
        assert_eq!(namespaces, ["nlp", "vision"]);
        assert_eq!(Fleet::from_yaml(&serde_yaml::to_string(&fleet).unwrap()).unwrap(), fleet);

        let without = text.replace("    trainingOperator: true\n", "");
        let err = Fleet::from_yaml(&without).unwrap_err().to_string();
        assert!(err.contains("add `trainingOperator: true`"), "{err}");
        let err = Fleet::from_yaml(&text.replace("workers: 3", "workers: 0")).unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{err}");
        let err = Fleet::from_yaml(&text.replace("fail: true", "fails: true")).unwrap_err().to_string();
        assert!(err.contains("unknown field `fails`"), "{err}");
        let err = Fleet::from_yaml(&text.replace("name: broken, namespace: vision", "name: ddp, namespace: nlp"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PyTorchJob `nlp/ddp` is defined twice"), "{err}");

        let small = Fleet::small("a").and(Fleet::small("b")).with_training_operator();
        assert!(small.clusters.iter().all(|c| c.training_operator));
        assert!(!Fleet::small("a").needs_training_operator());
    }

    #[test]
    fn karpenter_and_its_node_pools() {
        let text = r#"
clusters:
  - name: prod
    karpenter: true
    karpenterNodePools:
      - { name: h100, gpuProduct: NVIDIA-H100-80GB-HBM3, instanceTypes: [gpu-h100-8x], capacityTypes: [on-demand], limitGpus: 32 }
      - { name: l4, instanceTypes: [gpu-l4-1x, gpu-l4-4x], capacityTypes: [spot, on-demand], consolidateAfterSeconds: 30 }
      - { name: cpu, instanceTypes: [cpu-4x], limitCpu: "64" }
"#;
        let fleet = Fleet::from_yaml(text).unwrap();
        assert!(fleet.needs_karpenter());
        let pools = &fleet.clusters[0].karpenter_node_pools;
        assert_eq!(pools[0].limit_gpus, Some(32));
        assert_eq!(pools[0].gpu_product().as_deref(), Some("NVIDIA-H100-80GB-HBM3"));
        assert_eq!(pools[1].gpu_product().as_deref(), Some("NVIDIA-L4"), "from the instance types");
        assert_eq!(pools[1].capacity_types(), [CapacityType::Spot, CapacityType::OnDemand]);
        assert_eq!((pools[0].consolidate_after_seconds, pools[1].consolidate_after_seconds), (5, 30));
        assert_eq!(pools[2].gpu_product(), None);
        assert_eq!(pools[2].capacity_types(), [CapacityType::OnDemand]);
        assert_eq!(pools[2].limit_cpu.as_ref().map(Quantity::as_str), Some("64"));
        assert_eq!(Fleet::from_yaml(&serde_yaml::to_string(&fleet).unwrap()).unwrap(), fleet);

        let err = Fleet::from_yaml(&text.replace("    karpenter: true\n", "")).unwrap_err().to_string();
        assert!(err.contains("add `karpenter: true`"), "{err}");
        let err = Fleet::from_yaml(&text.replace("[gpu-h100-8x]", "[p5.48xlarge]")).unwrap_err().to_string();
        assert!(err.contains("unknown instance type `p5.48xlarge`") && err.contains("gpu-h100-8x"), "{err}");
        let err = Fleet::from_yaml(&text.replace("name: l4,", "name: h100,")).unwrap_err().to_string();
        assert!(err.contains("Karpenter node pool name `h100` is used twice"), "{err}");
        let err =
            Fleet::from_yaml(&text.replace("instanceTypes: [cpu-4x]", "instanceTypes: []")).unwrap_err().to_string();
        assert!(err.contains("at least one of `instanceTypes`"), "{err}");
        let err =
            Fleet::from_yaml(&text.replace("[cpu-4x]", "[cpu-4x], gpuProduct: NVIDIA-L4")).unwrap_err().to_string();
        assert!(err.contains("has no GPUs"), "{err}");

        let small = Fleet::small("a").with_karpenter(vec![KarpenterNodePool::new("h100", &["gpu-h100-8x"])]);
        assert!(small.clusters[0].karpenter && small.clusters[0].karpenter_node_pools.len() == 1);
        small.check_rules().unwrap();
        assert!(!Fleet::small("a").needs_karpenter());
    }

    #[test]
    fn train_jobs_and_their_crds() {
        let text = r#"
clusters:
  - name: train
    trainJobCrds: true
    trainJobs:
      - { name: llama-ft, namespace: nlp, numNodes: 2, gpusPerNode: 8 }
      - { name: mpi, namespace: vision, runtime: mpi-distributed, image: ghcr.io/acme/mpi:1 }
"#;
        let fleet = Fleet::from_yaml(text).unwrap();
        assert!(fleet.needs_train_job_crds());
        let jobs = &fleet.clusters[0].train_jobs;
        assert_eq!((jobs[0].runtime.as_str(), jobs[0].num_nodes, jobs[0].gpus_per_node), ("torch-distributed", 2, 8));
        assert_eq!((jobs[1].runtime.as_str(), jobs[1].num_nodes), ("mpi-distributed", 1));
        assert_eq!(jobs[1].image.as_ref().map(Image::as_str), Some("ghcr.io/acme/mpi:1"));
        assert_eq!(fleet.clusters[0].workload_pods(), 0, "no controller, no pods");
        let namespaces: Vec<&str> = fleet.clusters[0].all_namespaces().iter().map(|n| n.as_str()).collect();
        assert_eq!(namespaces, ["nlp", "vision"]);
        assert_eq!(Fleet::from_yaml(&serde_yaml::to_string(&fleet).unwrap()).unwrap(), fleet);
        let err = Fleet::from_yaml(&text.replace("    trainJobCrds: true\n", "")).unwrap_err().to_string();
        assert!(err.contains("add `trainJobCrds: true`"), "{err}");
        let err = Fleet::from_yaml(&text.replace("numNodes: 2", "numNodes: 0")).unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{err}");
        let err = Fleet::from_yaml(
            &text.replace("name: mpi,", "name: llama-ft,").replace("namespace: vision", "namespace: nlp"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("TrainJob `nlp/llama-ft` is defined twice"), "{err}");
        assert!(Fleet::small("a").with_train_job_crds().clusters[0].train_job_crds);
    }

    /// Values a fleet file's fields might hold, valid or not.
    fn fleet_values() -> impl proptest::strategy::Strategy<Value = Vec<String>> {
        use proptest::prelude::*;
        let value = prop_oneof![
            "-?[0-9]{1,22}(\\.[0-9]{0,6})?(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T)?",
            "[a-z0-9.-]{0,70}",
            "[ -~]{0,20}".prop_map(|v| format!("{v:?}")),
            Just("[]".to_string()),
            Just("{}".to_string()),
            Just("null".to_string()),
        ];
        proptest::collection::vec(value, 8)
    }

    fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prelude::any::<String>()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// A fleet file with any value where GOOD has one (or cut short
        /// anywhere, or any text at all) is a fleet or an error, never a panic.
        #[test]
        fn any_fleet_text_is_a_fleet_or_an_error(values in fleet_values(), cut in 0usize..4096, other in any_text()) {
            let mut text = GOOD.to_string();
            for (old, new) in ["\"192\"", "2Ti", "8, memoryMiB", "81559", "\"1g.10gb\": 7", "replicas: 2", "runSeconds: 86400", "count: 30"]
                .iter()
                .zip(&values)
            {
                let replacement = match old.split_once(':') {
                    Some((key, _)) => format!("{key}: {new}"),
                    None if old.ends_with("memoryMiB") => format!("{new}, memoryMiB"),
                    None => new.clone(),
                };
                text = text.replacen(old, &replacement, 1);
            }
            let _ = Fleet::from_yaml(&text);
            let _ = Fleet::from_yaml(&text[..text.floor_char_boundary(cut.min(text.len()))]);
            let _ = Fleet::from_yaml(&other);
        }
    }
}
