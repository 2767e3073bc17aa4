//! Karpenter's node pools and node claims (`karpenter.sh/v1`), read from
//! their JSON as watched through the dynamic API: a cluster may or may not
//! run Karpenter, so they are not typed into the client. Only what Gantry
//! shows is kept.

use gantry_domain::gpu::{GPU_RESOURCE, LABEL_GPU_PRODUCT};
use gantry_domain::quantity::Quantity;
use gantry_domain::view::Millis;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::summary::{StatusCondition, label, millis};

/// Karpenter's kinds that Gantry watches (both cluster-scoped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KarpenterKind {
    NodePool,
    NodeClaim,
}

impl KarpenterKind {
    pub const ALL: [KarpenterKind; 2] = [KarpenterKind::NodePool, KarpenterKind::NodeClaim];
    pub const GROUP: &'static str = "karpenter.sh";
    pub const VERSION: &'static str = "v1";

    pub fn kind(self) -> &'static str {
        match self {
            KarpenterKind::NodePool => "NodePool",
            KarpenterKind::NodeClaim => "NodeClaim",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            KarpenterKind::NodePool => "nodepools",
            KarpenterKind::NodeClaim => "nodeclaims",
        }
    }

    /// For the dynamic API.
    pub fn api_resource(self) -> kube::api::ApiResource {
        kube::api::ApiResource {
            group: Self::GROUP.into(),
            version: Self::VERSION.into(),
            api_version: format!("{}/{}", Self::GROUP, Self::VERSION),
            kind: self.kind().into(),
            plural: self.plural().into(),
        }
    }
}

/// The label Karpenter puts on its NodeClaims and nodes: the pool they came from.
pub const LABEL_NODE_POOL: &str = "karpenter.sh/nodepool";
const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
const LABEL_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePoolSummary {
    pub name: Box<str>,
    pub nodes: i64,
    pub gpus: i64,
    pub gpu_limit: Option<i64>,
    pub cpu_millis: i64,
    pub cpu_limit_millis: Option<i64>,
    pub gpu_model: Option<Box<str>>,
    pub instance_types: Box<[Box<str>]>,
    pub capacity_types: Box<[Box<str>]>,
    pub consolidation: Option<Box<str>>,
    pub ready: Option<bool>,
    pub message: Option<Box<str>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeClaimSummary {
    pub name: Box<str>,
    pub pool: Option<Box<str>>,
    pub instance_type: Option<Box<str>>,
    pub capacity_type: Option<Box<str>>,
    pub zone: Option<Box<str>>,
    pub node: Option<Box<str>>,
    pub gpus: i64,
    pub state: &'static str,
    pub message: Option<Box<str>>,
    pub created: Option<Millis>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Requirement {
    key: String,
    operator: String,
    values: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct TemplateMeta {
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct TemplateSpec {
    requirements: Vec<Requirement>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Template {
    metadata: TemplateMeta,
    spec: TemplateSpec,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Disruption {
    consolidation_policy: Option<String>,
    consolidate_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NodePoolSpec {
    template: Template,
    disruption: Disruption,
    limits: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NodePoolStatus {
    resources: BTreeMap<String, String>,
    nodes: Option<i64>,
    conditions: Vec<StatusCondition>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodePoolBody {
    spec: NodePoolSpec,
    status: NodePoolStatus,
}

/// The whole GPUs, or the CPU millicores, of a quantity (0 when unreadable).
fn whole(text: &str) -> i64 {
    Quantity::parse(text).map(|q| q.milli() as i64 / 1000).unwrap_or(0)
}

fn millicores(text: &str) -> i64 {
    Quantity::parse(text).map(|q| q.milli() as i64).unwrap_or(0)
}

/// The values a requirement allows for `key` (operator In), in order.
fn allowed(requirements: &[Requirement], key: &str) -> Box<[Box<str>]> {
    requirements
        .iter()
        .filter(|r| r.key == key && r.operator == "In")
        .flat_map(|r| r.values.iter().map(|v| Box::from(v.as_str())))
        .collect()
}

fn ready_of(conditions: &[StatusCondition]) -> (Option<bool>, Option<Box<str>>) {
    match conditions.iter().find(|c| c.kind == "Ready") {
        Some(c) if c.status == "True" => (Some(true), None),
        Some(c) => {
            let words = c.message.as_deref().filter(|m| !m.is_empty()).or(c.reason.as_deref());
            (Some(false), words.map(Box::from))
        }
        None => (None, None),
    }
}

pub fn node_pool(meta: &ObjectMeta, body: &serde_json::Value) -> NodePoolSummary {
    let body: NodePoolBody = serde_json::from_value(body.clone()).unwrap_or_default();
    let requirements = &body.spec.template.spec.requirements;
    let (ready, message) = ready_of(&body.status.conditions);
    let consolidation = body.spec.disruption.consolidation_policy.as_deref().map(|policy| {
        match body.spec.disruption.consolidate_after.as_deref() {
            Some(after) => format!("{policy} after {after}").into(),
            None => policy.into(),
        }
    });
    let model = body.spec.template.metadata.labels.get(LABEL_GPU_PRODUCT).map(|m| Box::from(m.as_str()));
    NodePoolSummary {
        name: meta.name.as_deref().unwrap_or("").into(),
        nodes: body.status.nodes.unwrap_or(0),
        gpus: body.status.resources.get(GPU_RESOURCE).map_or(0, |v| whole(v)),
        gpu_limit: body.spec.limits.get(GPU_RESOURCE).map(|v| whole(v)),
        cpu_millis: body.status.resources.get("cpu").map_or(0, |v| millicores(v)),
        cpu_limit_millis: body.spec.limits.get("cpu").map(|v| millicores(v)),
        gpu_model: model.or_else(|| allowed(requirements, LABEL_GPU_PRODUCT).first().cloned()),
        instance_types: allowed(requirements, LABEL_INSTANCE_TYPE),
        capacity_types: allowed(requirements, LABEL_CAPACITY_TYPE),
        consolidation,
        ready,
        message,
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NodeClaimResources {
    requests: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NodeClaimSpec {
    resources: NodeClaimResources,
    requirements: Vec<Requirement>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NodeClaimStatus {
    node_name: Option<String>,
    capacity: BTreeMap<String, String>,
    conditions: Vec<StatusCondition>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodeClaimBody {
    spec: NodeClaimSpec,
    status: NodeClaimStatus,
}

/// Where a claim is on its way: being removed, ready, registered (the node
/// joined), launched (the instance exists), failed to launch, or launching.
fn claim_state(deleting: bool, conditions: &[StatusCondition]) -> (&'static str, Option<Box<str>>) {
    let condition = |kind: &str| conditions.iter().find(|c| c.kind == kind);
    let is_true = |kind: &str| condition(kind).is_some_and(|c| c.status == "True");
    let words =
        |c: &StatusCondition| c.message.as_deref().filter(|m| !m.is_empty()).or(c.reason.as_deref()).map(Box::from);
    if deleting {
        return ("Deleting", None);
    }
    if is_true("Initialized") || is_true("Ready") {
        return ("Ready", None);
    }
    if is_true("Registered") {
        return ("Registered", None);
    }
    if is_true("Launched") {
        return ("Launched", None);
    }
    match condition("Launched") {
        Some(c) if c.status == "False" => ("Failed", words(c)),
        Some(c) => ("Launching", words(c)),
        None => ("Launching", None),
    }
}

pub fn node_claim(meta: &ObjectMeta, body: &serde_json::Value) -> NodeClaimSummary {
    let body: NodeClaimBody = serde_json::from_value(body.clone()).unwrap_or_default();
    let (state, message) = claim_state(meta.deletion_timestamp.is_some(), &body.status.conditions);
    let gpus = body
        .status
        .capacity
        .get(GPU_RESOURCE)
        .or_else(|| body.spec.resources.requests.get(GPU_RESOURCE))
        .map_or(0, |v| whole(v));
    // Launched, a claim is labelled with what it got; before, its requirements say what it may get.
    let owned = |key: &str| {
        label(meta, key).map(Box::from).or_else(|| {
            let allowed = allowed(&body.spec.requirements, key);
            (!allowed.is_empty()).then(|| allowed.join(" or ").into())
        })
    };
    NodeClaimSummary {
        name: meta.name.as_deref().unwrap_or("").into(),
        pool: owned(LABEL_NODE_POOL),
        instance_type: owned(LABEL_INSTANCE_TYPE),
        capacity_type: owned(LABEL_CAPACITY_TYPE),
        zone: owned(LABEL_ZONE),
        node: body.status.node_name.filter(|n| !n.is_empty()).map(Box::from),
        gpus,
        state,
        message,
        created: millis(&meta.creation_timestamp),
    }
}

pub fn node_pool_of(object: &kube::api::DynamicObject) -> NodePoolSummary {
    node_pool(&object.metadata, &object.data)
}

pub fn node_claim_of(object: &kube::api::DynamicObject) -> NodeClaimSummary {
    node_claim(&object.metadata, &object.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_node_pool_shows_its_size_limits_and_what_it_makes() {
        let body = json!({
            "spec": {
                "template": {
                    "metadata": { "labels": { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" } },
                    "spec": { "requirements": [
                        { "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["gpu-h100-8x"] },
                        { "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand", "spot"] },
                        { "key": "kubernetes.io/arch", "operator": "Exists" } ] } },
                "disruption": { "consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s" },
                "limits": { "nvidia.com/gpu": "32", "cpu": "1000" } },
            "status": { "nodes": 2, "resources": { "nvidia.com/gpu": "16", "cpu": "192" },
                        "conditions": [ { "type": "Ready", "status": "True" } ] } });
        let pool = node_pool(&meta("h100", &[]), &body);
        assert_eq!((pool.nodes, pool.gpus, pool.gpu_limit), (2, 16, Some(32)));
        assert_eq!((pool.cpu_millis, pool.cpu_limit_millis), (192_000, Some(1_000_000)));
        assert_eq!(pool.gpu_model.as_deref(), Some("NVIDIA-H100-80GB-HBM3"));
        assert_eq!(&*pool.instance_types, [Box::from("gpu-h100-8x")]);
        assert_eq!(pool.capacity_types.len(), 2);
        assert_eq!(pool.consolidation.as_deref(), Some("WhenEmpty after 30s"));
        assert_eq!((pool.ready, pool.message), (Some(true), None));
    }

    #[test]
    fn a_pool_that_is_not_ready_says_why_and_one_it_cannot_read_still_shows() {
        let body = json!({ "status": { "conditions": [
            { "type": "Ready", "status": "False", "reason": "NodeClassNotReady", "message": "" } ] } });
        let pool = node_pool(&meta("p", &[]), &body);
        assert_eq!((pool.ready, pool.message.as_deref()), (Some(false), Some("NodeClassNotReady")));
        let odd = node_pool(&meta("odd", &[]), &json!({ "spec": "not an object" }));
        assert_eq!((&*odd.name, odd.nodes, odd.ready), ("odd", 0, None));
    }

    #[test]
    fn a_claim_moves_from_launching_to_ready_and_then_deleting() {
        let labels = [
            ("karpenter.sh/nodepool", "h100"),
            ("node.kubernetes.io/instance-type", "gpu-h100-8x"),
            ("karpenter.sh/capacity-type", "on-demand"),
        ];
        let with = |conditions: serde_json::Value| {
            json!({ "spec": { "resources": { "requests": { "nvidia.com/gpu": "8" } } },
                    "status": { "conditions": conditions } })
        };
        let launching = node_claim(&meta("h100-abc", &labels), &with(json!([])));
        assert_eq!((launching.state, launching.gpus), ("Launching", 8));
        assert_eq!(launching.instance_type.as_deref(), Some("gpu-h100-8x"));
        assert_eq!(launching.pool.as_deref(), Some("h100"));
        let unlaunched = node_claim(
            &meta("l4-x", &[("karpenter.sh/nodepool", "l4")]),
            &json!({ "spec": { "requirements": [
                { "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["gpu-l4-1x", "gpu-l4-4x"] } ] } }),
        );
        assert_eq!(unlaunched.instance_type.as_deref(), Some("gpu-l4-1x or gpu-l4-4x"), "what it may get");
        assert_eq!(unlaunched.capacity_type, None);
        let failed = node_claim(
            &meta("x", &labels),
            &with(json!([{ "type": "Launched", "status": "False", "reason": "InsufficientCapacity",
                           "message": "all offerings are unavailable" }])),
        );
        assert_eq!((failed.state, failed.message.as_deref()), ("Failed", Some("all offerings are unavailable")));
        let registered = node_claim(
            &meta("x", &labels),
            &json!({ "status": { "nodeName": "h100-abc", "capacity": { "nvidia.com/gpu": "8" },
                     "conditions": [ { "type": "Launched", "status": "True" }, { "type": "Registered", "status": "True" } ] } }),
        );
        assert_eq!((registered.state, registered.node.as_deref()), ("Registered", Some("h100-abc")));
        let mut gone = meta("x", &labels);
        gone.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()));
        assert_eq!(node_claim(&gone, &with(json!([{ "type": "Ready", "status": "True" }]))).state, "Deleting");
    }
}
