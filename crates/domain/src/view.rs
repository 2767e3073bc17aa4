//! The shapes the server sends to the browser and to API clients. They carry
//! no secrets and compile for wasm32.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gpu::NodeGpus;
use crate::policy::Role;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A moment as people read it, in UTC: "2026-11-30 19:48:06".
pub fn utc_timestamp(at: Millis) -> String {
    // Written by hand rather than with `time`'s formatter, which is a few
    // kilobytes of the browser's wasm for this one pattern.
    match time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "—".to_string(),
    }
}

/// Unix milliseconds now, from the server's clock: the one clock read in
/// the core. Everything that decides takes `now` as an argument; this only
/// supplies it at the edges. (The browser reads its own clock: on wasm32
/// `SystemTime` is not available.)
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// What changed, as the live-update stream tells the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Cluster,
    Node,
    Pod,
    Deployment,
    ReplicaSet,
    Job,
    Namespace,
    Quota,
    Event,
    Autoscaler,
    /// The Kubeflow training operator's jobs (PyTorchJob, TFJob), where installed.
    TrainingJob,
    /// Karpenter's NodePools and NodeClaims, where installed.
    NodePool,
    NodeClaim,
    /// Not a Kubernetes kind: the instance's preparation moved on (see [`Preparation`]).
    Preparation,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 14] = [
        ResourceKind::Cluster,
        ResourceKind::Node,
        ResourceKind::Pod,
        ResourceKind::Deployment,
        ResourceKind::ReplicaSet,
        ResourceKind::Job,
        ResourceKind::Namespace,
        ResourceKind::Quota,
        ResourceKind::Event,
        ResourceKind::Autoscaler,
        ResourceKind::TrainingJob,
        ResourceKind::NodePool,
        ResourceKind::NodeClaim,
        ResourceKind::Preparation,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ResourceKind::Cluster => "cluster",
            ResourceKind::Node => "nodes",
            ResourceKind::Pod => "pods",
            ResourceKind::Deployment => "deployments",
            ResourceKind::ReplicaSet => "replicasets",
            ResourceKind::Job => "jobs",
            ResourceKind::Namespace => "namespaces",
            ResourceKind::Quota => "resourcequotas",
            ResourceKind::Event => "events",
            ResourceKind::Autoscaler => "horizontalpodautoscalers",
            ResourceKind::TrainingJob => "training jobs",
            ResourceKind::NodePool => "node pools",
            ResourceKind::NodeClaim => "node claims",
            ResourceKind::Preparation => "preparation",
        }
    }
}

/// What is still being prepared while Gantry already serves: the steps of
/// the script that started it (`scripts/run.sh` writes them to the file
/// `gantry serve --progress-file` names), for the banner on the overview and
/// clusters pages. Read leniently: a field the script did not write takes
/// its default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Preparation {
    pub title: String,
    pub finished: bool,
    /// About how long the rest takes, in seconds.
    pub remaining_seconds: i64,
    pub failed: Option<PreparationFailure>,
    pub steps: Vec<PreparationStep>,
    pub updated_ms: Millis,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PreparationStep {
    pub name: String,
    pub title: String,
    /// `pending`, `running`, `done`, `skipped` or `failed`.
    pub state: String,
    pub seconds: f64,
    pub estimate_seconds: f64,
    /// What it is doing now, e.g. "building Kubernetes v1.36.3: kube-apiserver (1 of 4)".
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PreparationFailure {
    pub step: String,
    pub title: String,
    pub why: String,
    pub hint: String,
    pub log: String,
}

impl Preparation {
    /// Reads a progress file; `None` when it is not one (half-written files
    /// cannot happen: the writer replaces it whole).
    pub fn parse(text: &str) -> Option<Preparation> {
        serde_json::from_str(text).ok()
    }

    /// The step under way, if any.
    pub fn current(&self) -> Option<&PreparationStep> {
        self.steps.iter().find(|s| s.state == "running")
    }

    /// Steps done (or found done) so far, and how many there are.
    pub fn counts(&self) -> (usize, usize) {
        (self.steps.iter().filter(|s| s.state == "done" || s.state == "skipped").count(), self.steps.len())
    }

    /// Whether there is anything to tell: not finished, or finished with a failure.
    pub fn worth_showing(&self) -> bool {
        !self.finished || self.failed.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Listing for the first time.
    Connecting,
    /// Watches are healthy.
    Live,
    /// Lost contact: data is from `last_contact` and may be out of date.
    Stale,
}

impl ConnectionState {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Live => "live",
            ConnectionState::Stale => "stale",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterSummary {
    pub name: String,
    pub state: ConnectionState,
    pub version: Option<String>,
    pub last_contact: Option<Millis>,
    pub message: Option<String>,
    pub nodes: usize,
    pub gpu_nodes: usize,
    pub gpu_capacity: i64,
    pub gpu_allocated: i64,
    pub pods: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeRow {
    pub cluster: String,
    pub name: String,
    pub ready: bool,
    pub unschedulable: bool,
    pub gpus: NodeGpus,
    pub gpu_allocated: i64,
    pub gpu_free: i64,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub pods: usize,
    pub created: Option<Millis>,
    /// Its conditions that are not as they should be (Ready not True,
    /// a pressure or NetworkUnavailable True); empty for a healthy node.
    #[serde(default)]
    pub conditions: Vec<crate::health::NodeCondition>,
    /// Its taints, as `key=value:Effect`.
    #[serde(default)]
    pub taints: Vec<String>,
    /// On a NotReady node's own page: the pods deleted from it since it went
    /// NotReady (newest first), and where their owners' pods run now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved_off: Vec<MovedPod>,
}

/// A pod deleted from a node that went NotReady.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovedPod {
    pub namespace: String,
    pub name: String,
    /// `ReplicaSet/x`, `Job/y`, where it had an owner.
    pub owner: Option<String>,
    pub deleted_at: Millis,
    /// The nodes its owner's pods are on now (the replacement's, once scheduled).
    pub now_on: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PodRow {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub node: Option<String>,
    pub gpus: i64,
    pub ready: String,
    pub restarts: i32,
    pub created: Option<Millis>,
    pub owner: Option<String>,
    /// Why it is not running yet, when it is not.
    pub reason: Option<String>,
    /// What the kubelet says about its containers when something is wrong.
    #[serde(flatten)]
    pub health: crate::health::PodHealth,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Suspended,
}

impl JobStatus {
    pub fn label(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Suspended => "suspended",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        [JobStatus::Pending, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Suspended]
            .into_iter()
            .find(|s| s.label() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRow {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub team: Option<String>,
    pub status: JobStatus,
    pub gpus_per_pod: i64,
    pub parallelism: i32,
    pub completions: i32,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub started: Option<Millis>,
    pub finished: Option<Millis>,
    pub message: Option<String>,
    /// `Job`, the Kubeflow training operator's kind (`PyTorchJob`, `TFJob`),
    /// or Kubeflow Trainer's `TrainJob` (read-only).
    #[serde(default = "JobRow::plain_kind")]
    pub kind: String,
    /// The training operator's own state (Created, Running, Restarting,
    /// Succeeded, Failed); none for a Job.
    #[serde(default)]
    pub state: Option<String>,
    /// A training job's roles (Master, Worker…); empty for a Job.
    #[serde(default)]
    pub roles: Vec<ReplicaRole>,
    /// What its GPUs have cost since it started, from the allocation ledger;
    /// None where no price covers them (or the ledger could not say).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub cost_so_far: Option<crate::cost::Usd>,
}

impl JobRow {
    pub const PLAIN_KIND: &str = "Job";

    fn plain_kind() -> String {
        Self::PLAIN_KIND.to_string()
    }

    /// Whether Gantry offers to cancel it: Kubeflow Trainer's TrainJobs are
    /// listed read-only.
    pub fn cancellable(&self) -> bool {
        self.kind != "TrainJob"
    }

    /// GPUs over all its pods at once.
    pub fn gpus(&self) -> i64 {
        if self.roles.is_empty() {
            self.gpus_per_pod * i64::from(self.parallelism)
        } else {
            self.roles.iter().map(|r| r.gpus_per_pod * i64::from(r.replicas)).sum()
        }
    }
}

/// One role of a distributed training job and its pods' counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaRole {
    pub role: String,
    pub replicas: i32,
    pub gpus_per_pod: i64,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentRow {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub team: Option<String>,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub image: String,
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub gpus_per_replica: i64,
    pub gpu_model: Option<String>,
    pub revision: Option<i64>,
    pub managed_by_gantry: bool,
    /// The Deployment's `metadata.generation`: it changes only when the
    /// spec does, so a change request that carries it is refused when
    /// someone else changed the deployment in between.
    pub version: i64,
    pub autoscaler: Option<AutoscalerView>,
    pub rollout: RolloutState,
    pub created: Option<Millis>,
    /// What is wrong with its pods now (crash-looping, OOM-killed in the
    /// last hour…); empty when nothing is.
    #[serde(default)]
    pub troubles: Vec<crate::health::Trouble>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoscalerView {
    pub min: i32,
    pub max: i32,
    pub target_cpu_percent: Option<i32>,
    pub current: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state", content = "message")]
pub enum RolloutState {
    Complete,
    Progressing(String),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingRow {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub gpus: i64,
    pub since: Option<Millis>,
    pub owner: Option<String>,
    /// The scheduler's own words, from the newest FailedScheduling event.
    pub reason: String,
    /// What the node autoscaler is doing about it, where one has said.
    #[serde(default)]
    pub autoscaler: Option<Provisioning>,
}

/// A node autoscaler's answer for a pod that waits: a node on its way
/// (Karpenter's NodeClaim, cluster-autoscaler's scale-up), or its reason for
/// making none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provisioning {
    /// Whether a node is being made for the pod.
    pub creating: bool,
    /// The NodeClaim made for it (Karpenter).
    pub node_claim: Option<String>,
    pub instance_type: Option<String>,
    pub capacity_type: Option<String>,
    /// The claim's state (Launching, Registered, Ready, Deleting), while Gantry sees it.
    pub state: Option<String>,
    /// The autoscaler's own words (why no node, or which group grows).
    pub message: String,
}

/// A pool of nodes in one cluster: a Karpenter NodePool, or the nodes that
/// share a pool label (GKE, EKS, AKS, Karpenter's) where no NodePool says more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodePoolRow {
    pub cluster: String,
    pub name: String,
    /// `NodePool` for Karpenter's, else the label the nodes were grouped by.
    pub source: String,
    pub nodes: i64,
    pub gpus: i64,
    /// Its limit on `nvidia.com/gpu`, where it has one.
    pub gpu_limit: Option<i64>,
    pub cpu_millis: i64,
    pub cpu_limit_millis: Option<i64>,
    /// The GPU model its nodes get (the product label of its template, or of its nodes).
    pub gpu_model: Option<String>,
    pub instance_types: Vec<String>,
    pub capacity_types: Vec<String>,
    /// When it removes nodes: `WhenEmpty after 30s`.
    pub consolidation: Option<String>,
    /// Karpenter's Ready condition, with its words when not ready.
    pub ready: Option<bool>,
    pub message: Option<String>,
}

/// A node being made or removed by Karpenter (a NodeClaim).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeClaimRow {
    pub cluster: String,
    pub name: String,
    pub pool: Option<String>,
    pub instance_type: Option<String>,
    pub capacity_type: Option<String>,
    pub zone: Option<String>,
    /// The node it became, once registered.
    pub node: Option<String>,
    pub gpus: i64,
    /// Launching, Launched, Registered, Ready, Deleting, or Failed.
    pub state: String,
    pub message: Option<String>,
    pub created: Option<Millis>,
}

/// A cluster's node autoscaling: its pools, the nodes on their way in or
/// out, and the autoscaler's recent events (newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Autoscaling {
    /// Whether the cluster serves Karpenter's NodePools.
    pub karpenter: bool,
    /// The cluster's refusal when Gantry may not read them (its RBAC).
    #[serde(default)]
    pub refused: Option<String>,
    pub pools: Vec<NodePoolRow>,
    pub claims: Vec<NodeClaimRow>,
    pub events: Vec<EventRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventRow {
    pub kind: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<Millis>,
    pub object: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuModelSummary {
    pub model: String,
    pub nodes: usize,
    pub capacity: i64,
    pub allocatable: i64,
    pub allocated: i64,
    pub free: i64,
    pub spot_gpus: i64,
    pub on_demand_gpus: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    pub clusters: Vec<ClusterSummary>,
    pub gpu_models: Vec<GpuModelSummary>,
    pub nodes: usize,
    pub gpu_capacity: i64,
    pub gpu_allocated: i64,
    pub pending_gpu_pods: usize,
    pub running_jobs: usize,
    pub deployments: usize,
    pub deployments_ready: usize,
    pub pods: usize,
    /// The GPUs the viewer's pods hold now, by model and capacity type.
    #[serde(default)]
    pub gpus_in_use: Vec<crate::cost::GpuCount>,
    /// What those GPUs cost now at the current prices (the service fills it in).
    #[serde(default)]
    pub cost: crate::cost::CostRate,
    /// Workloads that are crash-looping, OOM-killed in the last hour, not
    /// available past their progress deadline, or have evicted pods.
    #[serde(default)]
    pub unhealthy: Vec<crate::health::UnhealthyWorkload>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaRow {
    pub cluster: String,
    pub namespace: String,
    pub team: Option<String>,
    pub name: String,
    pub gpus_used: i64,
    pub gpus_hard: Option<i64>,
    pub managed_by_gantry: bool,
}

/// One page of a server-side sorted and filtered list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
}

impl<T> Page<T> {
    pub fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }
}

/// Sorting, filtering and paging for every table. URL query parameters map
/// onto it directly so a view can be shared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default)]
pub struct ListQuery {
    /// Free text, matched against names.
    pub q: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub status: Option<String>,
    pub node: Option<String>,
    pub sort: Option<String>,
    pub desc: bool,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

impl ListQuery {
    pub const DEFAULT_PER_PAGE: usize = 50;
    pub const MAX_PER_PAGE: usize = 500;

    pub fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }

    pub fn per_page(&self) -> usize {
        self.per_page.unwrap_or(Self::DEFAULT_PER_PAGE).clamp(1, Self::MAX_PER_PAGE)
    }

    fn text(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    pub fn matches_text(&self, haystacks: &[&str]) -> bool {
        match Self::text(&self.q) {
            None => true,
            Some(needle) => {
                let needle = needle.to_lowercase();
                haystacks.iter().any(|h| h.to_lowercase().contains(&needle))
            }
        }
    }

    /// The free-text filter, if any.
    pub fn text_filter(&self) -> Option<&str> {
        Self::text(&self.q)
    }

    pub fn matches_place(&self, cluster: &str, namespace: &str) -> bool {
        Self::text(&self.cluster).is_none_or(|c| c == cluster)
            && Self::text(&self.namespace).is_none_or(|n| n == namespace)
    }

    pub fn status_filter(&self) -> Option<&str> {
        Self::text(&self.status)
    }

    pub fn node_filter(&self) -> Option<&str> {
        Self::text(&self.node)
    }

    /// Sorts with `key` for the requested column (falling back to the
    /// default order), then cuts out the requested page.
    pub fn paginate<T, K: Ord>(&self, mut items: Vec<T>, key: impl Fn(&T, &str) -> K) -> Page<T> {
        let column = Self::text(&self.sort).unwrap_or("").to_string();
        items.sort_by(|a, b| {
            let order = key(a, &column).cmp(&key(b, &column));
            if self.desc { order.reverse() } else { order }
        });
        let total = items.len();
        let per_page = self.per_page();
        let page = self.page().min(total.div_ceil(per_page).max(1));
        let items = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        Page { items, total, page, per_page }
    }

    /// The query as URL parameters, leaving out defaults.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |key: &str, value: &Option<String>| {
            if let Some(v) = Self::text(value) {
                parts.push(format!("{key}={}", encode(v)));
            }
        };
        push("q", &self.q);
        push("cluster", &self.cluster);
        push("namespace", &self.namespace);
        push("status", &self.status);
        push("node", &self.node);
        push("sort", &self.sort);
        if self.desc {
            parts.push("desc=true".into());
        }
        if let Some(page) = self.page.filter(|p| *p > 1) {
            parts.push(format!("page={page}"));
        }
        if let Some(per_page) = self.per_page.filter(|p| *p != Self::DEFAULT_PER_PAGE) {
            parts.push(format!("per_page={per_page}"));
        }
        parts.join("&")
    }
}

/// URL parameters from pairs of name and value, leaving out empty values.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a URL query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The signed-in user as the UI and `/api/v1/me` see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub global_admin: bool,
    pub teams: Vec<TeamRole>,
    /// What the navigation and pages offer, decided by the policy.
    #[serde(default)]
    pub can: crate::policy::Capabilities,
    /// Echoed into every state-changing form; see the CSRF notes in ARCHITECTURE.md.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub csrf: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamRole {
    pub team_id: i64,
    pub team: String,
    pub role: Role,
}

/// Free-form labels of a Kubernetes object, for detail pages.
pub type Labels = BTreeMap<String, String>;

/// Formats a duration in seconds as "3h 05m", "4m 10s" or "12s".
pub fn format_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A cluster's Prometheus, where its GPU utilisation comes from, as its page
/// shows it (never the token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrometheusSettings {
    pub url: String,
    pub has_token: bool,
    /// None while it answers; else why it does not.
    pub problem: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_reads_as_utc_to_the_second() {
        assert_eq!(utc_timestamp(1_796_068_086_999), "2026-11-30 19:48:06");
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(utc_timestamp(-1), "1969-12-31 23:59:59");
        assert_eq!(utc_timestamp(i64::MAX), "—");
    }

    #[test]
    fn a_progress_file_reads_leniently_and_says_what_runs() {
        let text = r#"{"title": "Preparing the Gantry demo", "finished": false, "remaining_seconds": 700,
            "steps": [{"name": "server", "title": "Building", "state": "done", "seconds": 581.2},
                      {"name": "kubernetes", "title": "Building Kubernetes", "state": "running",
                       "detail": "building Kubernetes v1.36.3: kube-apiserver (1 of 4)", "future_field": 1},
                      {"name": "fleet", "title": "Starting the fleet", "state": "pending"}]}"#;
        let preparation = Preparation::parse(text).unwrap();
        assert_eq!(preparation.current().map(|s| s.name.as_str()), Some("kubernetes"));
        assert_eq!(preparation.counts(), (1, 3));
        assert!(preparation.worth_showing());
        assert_eq!(preparation.steps[2].detail, None);
        assert!(Preparation::parse("{\"title\": ").is_none());
        assert!(Preparation::parse("42").is_none());
        let done = Preparation { finished: true, ..preparation.clone() };
        assert!(!done.worth_showing());
        let failed = Preparation { failed: Some(PreparationFailure::default()), ..done };
        assert!(failed.worth_showing());
    }

    #[test]
    fn paginates_after_sorting() {
        let q =
            ListQuery { sort: Some("n".into()), desc: true, page: Some(2), per_page: Some(3), ..Default::default() };
        let page = q.paginate((1..=10).collect::<Vec<i32>>(), |n, _| *n);
        assert_eq!(page.items, vec![7, 6, 5]);
        assert_eq!((page.total, page.page, page.pages()), (10, 2, 4));
    }

    #[test]
    fn a_page_past_the_end_shows_the_last_page() {
        let q = ListQuery { page: Some(99), per_page: Some(4), ..Default::default() };
        let page = q.paginate((1..=10).collect::<Vec<i32>>(), |n, _| *n);
        assert_eq!((page.page, page.items.clone()), (3, vec![9, 10]));
        let empty = q.paginate(Vec::<i32>::new(), |n, _| *n);
        assert_eq!((empty.page, empty.total, empty.items.len()), (1, 0, 0));
    }

    #[test]
    fn per_page_is_capped() {
        assert_eq!(ListQuery { per_page: Some(100_000), ..Default::default() }.per_page(), ListQuery::MAX_PER_PAGE);
        assert_eq!(ListQuery { per_page: Some(0), ..Default::default() }.per_page(), 1);
    }

    #[test]
    fn filters() {
        let q = ListQuery { q: Some(" LLa ".into()), cluster: Some("prod".into()), ..Default::default() };
        assert!(q.matches_text(&["serve-llama"]));
        assert!(!q.matches_text(&["bert"]));
        assert!(q.matches_place("prod", "any"));
        assert!(!q.matches_place("dev", "any"));
        assert!(ListQuery::default().matches_text(&["x"]));
    }

    #[test]
    fn query_string_round_trips_the_interesting_parts() {
        let q = ListQuery { q: Some("a b&c".into()), desc: true, page: Some(3), ..Default::default() };
        assert_eq!(q.to_query_string(), "q=a%20b%26c&desc=true&page=3");
        assert_eq!(ListQuery::default().to_query_string(), "");
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(5), "5s");
        assert_eq!(format_duration(250), "4m 10s");
        assert_eq!(format_duration(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(format_duration(90_000), "1d 1h");
        assert_eq!(format_duration(-3), "0s");
    }
}
