//! Node autoscaling, visible: Karpenter (with its KWOK cloud provider, run by
//! the testbed) makes and removes GPU nodes; Gantry's caches and read models
//! show its NodePools, its NodeClaims, its events, and what it said of a pod
//! that waits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gantry_cluster::{Hub, Viewer, queries};
use gantry_domain::policy::Visibility;
use gantry_domain::view::{Autoscaling, ListQuery, PendingRow};
use gantry_testbed::apply::deployment;
use gantry_testbed::fleet::{DeploymentSpec, KarpenterNodePool};
use gantry_testbed::karpenter::node_pool_resource;
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::{Fleet, Testbed};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

const CLUSTER: &str = "kp";
const H100: &str = "NVIDIA-H100-80GB-HBM3";
const L4: &str = "NVIDIA-L4";
const WARMING: &str = "example.com/warming";

/// One cluster with Karpenter and one H100 NodePool (at most 32 GPUs); its
/// only fixed node is a CPU one, so every GPU node is Karpenter's.
fn bed() -> &'static Testbed {
    shared(|| {
        let mut fleet = Fleet::small(CLUSTER);
        fleet.clusters[0].node_pools.retain(|p| p.gpu.is_none());
        let mut h100 = KarpenterNodePool::new("h100", &["gpu-h100-8x"]);
        h100.limit_gpus = Some(32);
        fleet.with_karpenter(vec![h100])
    })
}

async fn hub() -> Arc<Hub> {
    let hub = Hub::new();
    hub.connect(CLUSTER, bed().cluster(CLUSTER).unwrap().config().await.unwrap()).unwrap();
    assert!(hub.wait_synced(Duration::from_secs(60)).await, "caches never synced");
    hub
}

async fn client() -> kube::Client {
    bed().cluster(CLUSTER).unwrap().client().await.unwrap()
}

async fn create_deployment(name: &str, gpus: u32, model: &str) {
    let spec: DeploymentSpec = serde_json::from_value(json!({
        "name": name, "namespace": "vision", "image": "ghcr.io/acme/serve:1", "gpus": gpus, "gpuModel": model,
    }))
    .unwrap();
    let (d, _) = deployment(&spec);
    Api::<Deployment>::namespaced(client().await, "vision").create(&PostParams::default(), &d).await.unwrap();
}

fn autoscaling(hub: &Hub) -> Autoscaling {
    queries::autoscaling(hub, &Viewer::everything(), CLUSTER).expect("the cluster is visible")
}

fn pending_of(hub: &Hub, app: &str) -> Option<PendingRow> {
    let query = ListQuery { cluster: Some(CLUSTER.into()), q: Some(app.into()), ..Default::default() };
    queries::pending(hub, &Viewer::everything(), &query).items.into_iter().next()
}

#[tokio::test]
async fn karpenters_pools_claims_and_events_show_and_a_pending_pod_says_which_node_comes_for_it() {
    let hub = hub().await;

    // The NodePool, with its limit and what it makes.
    let pools = eventually("Karpenter's NodePool h100, Ready", 90, || {
        let view = autoscaling(&hub);
        async move {
            view.pools.into_iter().find(|p| p.name == "h100" && p.ready == Some(true)).map(|p| (view.karpenter, p))
        }
    })
    .await;
    let (karpenter, h100) = pools;
    assert!(karpenter);
    assert_eq!((h100.source.as_str(), h100.gpu_limit, h100.gpu_model.as_deref()), ("NodePool", Some(32), Some(H100)));
    assert_eq!(h100.instance_types, ["gpu-h100-8x"]);
    assert_eq!(h100.nodes, 0, "no H100 node before Karpenter makes one");

    // A pool whose nodes keep a startup taint until the test lifts it: the pod waits,
    // nominated to the claim, long enough to be read.
    let mut warm = gantry_testbed::karpenter::node_pool(&KarpenterNodePool::new("warm", &["gpu-l4-1x"]));
    warm["spec"]["template"]["spec"]["startupTaints"] = json!([{ "key": WARMING, "effect": "NoSchedule" }]);
    let warm: DynamicObject = serde_json::from_value(warm).unwrap();
    let pools_api: Api<DynamicObject> = Api::all_with(client().await, &node_pool_resource());
    pools_api.create(&PostParams::default(), &warm).await.unwrap();
    create_deployment("warm-serve", 1, L4).await;

    let waiting = eventually("the pending pod names the NodeClaim made for it", 120, || {
        let row = pending_of(&hub, "warm-serve");
        async move { row.filter(|r| r.autoscaler.as_ref().is_some_and(|a| a.node_claim.is_some() && a.state.is_some())) }
    })
    .await;
    let words = waiting.autoscaler.clone().unwrap();
    assert!(words.creating, "{words:?}");
    assert_eq!(words.instance_type.as_deref(), Some("gpu-l4-1x"), "{words:?}");
    let claim_name = words.node_claim.clone().unwrap();
    assert!(words.message.contains(&format!("nodeclaim/{claim_name}")), "Karpenter's own words: {words:?}");
    let claim = autoscaling(&hub).claims.into_iter().find(|c| c.name == claim_name).expect("the claim is listed");
    assert_eq!((claim.pool.as_deref(), claim.gpus), (Some("warm"), 1), "{claim:?}");

    // The node registers with its GPU; once its startup taint is lifted the pod runs there.
    let node_name = eventually("the claim's node registers", 120, || {
        let claim = autoscaling(&hub).claims.into_iter().find(|c| c.name == claim_name);
        async move { claim.and_then(|c| c.node) }
    })
    .await;
    let node = eventually("the new node is listed with its GPU", 60, || {
        let query = ListQuery { cluster: Some(CLUSTER.into()), ..Default::default() };
        let node = queries::nodes(&hub, &Viewer::everything(), &query).items.into_iter().find(|n| n.name == node_name);
        async move { node.filter(|n| n.gpus.capacity == 1) }
    })
    .await;
    assert_eq!(node.gpus.model, L4);
    let nodes: Api<Node> = Api::all(client().await);
    eventually("the startup taint is lifted, once Karpenter has registered the node", 60, || {
        let (nodes, name) = (nodes.clone(), node_name.clone());
        async move {
            let node = nodes.get(&name).await.ok()?;
            let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
            if taints.iter().any(|t| t.key == "karpenter.sh/unregistered") {
                return None;
            }
            let kept: Vec<_> = taints.into_iter().filter(|t| t.key != WARMING).collect();
            let lifted = json!({ "spec": { "taints": kept } });
            nodes.patch(&name, &PatchParams::default(), &Patch::Merge(&lifted)).await.ok()
        }
    })
    .await;
    eventually("the pod is no longer pending and the claim is Ready", 120, || {
        let (row, claim) =
            (pending_of(&hub, "warm-serve"), autoscaling(&hub).claims.into_iter().find(|c| c.name == claim_name));
        async move { (row.is_none() && claim.is_some_and(|c| c.state == "Ready")).then_some(()) }
    })
    .await;
    // Karpenter counts the node in its pool's status.
    eventually("the warm pool counts its node and GPU", 60, || {
        let pool = autoscaling(&hub).pools.into_iter().find(|p| p.name == "warm");
        async move { pool.filter(|p| (p.nodes, p.gpus) == (1, 1)) }
    })
    .await;

    // A pod no pool can serve: Karpenter says why, and makes nothing.
    create_deployment("nowhere-serve", 1, "NVIDIA-B200").await;
    let refused = eventually("Karpenter's reason for the pod no pool can serve", 120, || {
        let row = pending_of(&hub, "nowhere-serve");
        async move { row.and_then(|r| r.autoscaler).filter(|a| !a.creating) }
    })
    .await;
    assert!(refused.node_claim.is_none() && !refused.message.is_empty(), "{refused:?}");

    // Karpenter's events are listed, those about vision's pods only to who sees vision.
    let events = autoscaling(&hub).events;
    assert!(events.iter().any(|e| e.reason == "Nominated" && e.object.starts_with("pod/warm-serve-")), "{events:?}");
    let nlp = Viewer {
        visibility: Visibility::Only(BTreeMap::from([(CLUSTER.to_string(), BTreeSet::from(["nlp".to_string()]))])),
        teams: BTreeMap::new(),
    };
    let theirs = queries::autoscaling(&hub, &nlp, CLUSTER).unwrap().events;
    assert!(!theirs.iter().any(|e| e.object.starts_with("pod/")), "{theirs:?}");

    // Scaled away, the empty node is consolidated: the claim and node go.
    let deployments: Api<Deployment> = Api::namespaced(client().await, "vision");
    for name in ["warm-serve", "nowhere-serve"] {
        deployments.delete(name, &Default::default()).await.unwrap();
    }
    eventually("the warm pool's claim and node are removed", 180, || {
        let view = autoscaling(&hub);
        let query = ListQuery { cluster: Some(CLUSTER.into()), ..Default::default() };
        let node_left = queries::nodes(&hub, &Viewer::everything(), &query).items.iter().any(|n| n.name == node_name);
        let gone = !view.claims.iter().any(|c| c.name == claim_name) && !node_left;
        async move { gone.then_some(()) }
    })
    .await;
    let events = autoscaling(&hub).events;
    assert!(
        events.iter().any(|e| e.object.starts_with("node/") || e.object.starts_with("nodeclaim/")),
        "the scale-down is among the events: {events:?}"
    );
}

/// Gantry's credentials may not read Karpenter's objects (the cluster's RBAC
/// refuses): the cluster stays live, and its autoscaling view says why
/// NodePools are missing, rather than the whole cluster going stale.
#[tokio::test]
async fn a_cluster_whose_rbac_refuses_karpenters_kinds_stays_live_and_says_so() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let admin = client().await;
    let name = "gantry-without-karpenter";
    let account: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": name, "namespace": "default" } })).unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), "default").create(&PostParams::default(), &account).await.unwrap();
    // What Gantry watches everywhere, and nothing of Karpenter's.
    let watch = |group: &str, resources: &[&str]| json!({ "apiGroups": [group], "resources": resources, "verbs": ["list", "watch"] });
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": { "name": name },
        "rules": [
            watch("", &["nodes", "pods", "namespaces", "resourcequotas", "events"]),
            watch("apps", &["deployments", "replicasets"]),
            watch("batch", &["jobs"]),
            watch("autoscaling", &["horizontalpodautoscalers"]),
        ]
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone()).create(&PostParams::default(), &role).await.unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name },
        "subjects": [ { "kind": "ServiceAccount", "name": name, "namespace": "default" } ]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone()).create(&PostParams::default(), &binding).await.unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec { expiration_seconds: Some(3600), ..Default::default() }),
        ..Default::default()
    };
    let issued = Api::<ServiceAccount>::namespaced(admin, "default")
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap();
    let token = issued.status.and_then(|s| s.token).unwrap();
    let mut config = bed().cluster(CLUSTER).unwrap().config().await.unwrap();
    config.auth_info = serde_json::from_value(json!({ "token": token })).unwrap();

    let hub = Hub::new();
    hub.connect("limited", config).unwrap();
    assert!(hub.wait_synced(Duration::from_secs(60)).await, "the core caches sync with the narrower role");
    let view = eventually("the refusal of Karpenter's kinds is said", 60, || {
        let view = queries::autoscaling(&hub, &Viewer::everything(), "limited");
        async move { view.filter(|v| v.refused.is_some()) }
    })
    .await;
    assert!(view.pools.iter().all(|p| p.source != "NodePool"), "{view:?}");
    let status = hub.cluster("limited").unwrap().status();
    assert_eq!(status.state, gantry_domain::view::ConnectionState::Live, "{status:?}");
    assert_eq!(status.message, None);
}
