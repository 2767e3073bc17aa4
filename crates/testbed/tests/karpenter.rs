//! Karpenter with its KWOK cloud provider in a testbed: a pending GPU pod makes it launch a
//! NodeClaim of a GPU instance type, whose Node KWOK makes Ready and runs the pod on; once the
//! pod is gone Karpenter consolidates the empty node away. A pod no NodePool can serve gets
//! Karpenter's FailedScheduling event instead. The same cluster has Kubeflow Trainer v2's
//! CRDs (no controller), with a TrainJob from the fleet file.

mod common;

use std::sync::OnceLock;

use gantry_testbed::apply::deployment;
use gantry_testbed::fleet::{CapacityType, DeploymentSpec, KarpenterNodePool, TrainJobSpec};
use gantry_testbed::karpenter::{GANTRY_NODE_POOL_LABEL, NODE_POOL_LABEL, NOMINATED_REASON, node_claim_resource};
use gantry_testbed::training::{cluster_training_runtime_resource, train_job, train_job_resource};
use gantry_testbed::{Component, Fleet, Testbed};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};

const CLUSTER: &str = "kp";
const H100: &str = "NVIDIA-H100-80GB-HBM3";

/// One cluster with Karpenter, whose only fixed node is the CPU one of `Fleet::small`: no GPU
/// node is there before Karpenter makes one. Two NodePools: H100 on-demand (at most 32 GPUs)
/// and L4 spot.
fn bed() -> &'static Testbed {
    gantry_testbed::shared::shared(|| {
        let mut fleet = Fleet::small(CLUSTER);
        fleet.clusters[0].node_pools.retain(|p| p.gpu.is_none());
        let mut h100 = KarpenterNodePool::new("h100", &["gpu-h100-8x"]);
        h100.limit_gpus = Some(32);
        let mut l4 = KarpenterNodePool::new("l4", &["gpu-l4-1x", "gpu-l4-4x"]);
        l4.capacity_types = vec![CapacityType::Spot];
        let mut fleet = fleet.with_karpenter(vec![h100, l4]).with_train_job_crds();
        let mut train_job = TrainJobSpec::new("from-fleet", "nlp", 2);
        train_job.gpus_per_node = 8;
        fleet.clusters[0].train_jobs.push(train_job);
        fleet
    })
}

async fn client() -> Client {
    static CONFIG: OnceLock<kube::Config> = OnceLock::new();
    if CONFIG.get().is_none() {
        let config = bed().cluster(CLUSTER).unwrap().config().await.unwrap();
        let _ = CONFIG.set(config);
    }
    Client::try_from(CONFIG.get().unwrap().clone()).unwrap()
}

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap();
    let _ = Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await;
}

/// A Deployment (the testbed's own shape, as a fleet file would make it) of `replicas` pods
/// asking for `gpus` GPUs of `model` each.
async fn create_deployment(client: &Client, namespace_name: &str, name: &str, gpus: u32, model: &str) {
    namespace(client, namespace_name).await;
    let spec: DeploymentSpec = serde_json::from_value(serde_json::json!({
        "name": name, "namespace": namespace_name, "image": "ghcr.io/acme/serve:1", "gpus": gpus, "gpuModel": model,
    }))
    .unwrap();
    let (deploy, _) = deployment(&spec);
    Api::<Deployment>::namespaced(client.clone(), namespace_name)
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();
}

async fn pods_of(client: &Client, namespace: &str, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/name={app}"))).await.unwrap().items
}

async fn node_claims(client: &Client, pool: &str) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &node_claim_resource());
    api.list(&ListParams::default().labels(&format!("{NODE_POOL_LABEL}={pool}"))).await.unwrap().items
}

/// Events about one pod: (source component, reason, message), oldest first.
async fn events_of(client: &Client, namespace: &str, pod: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut events =
        api.list(&ListParams::default().fields(&format!("involvedObject.name={pod}"))).await.unwrap().items;
    events.sort_by_key(|e| e.first_timestamp.clone().map(|t| t.0));
    events
        .into_iter()
        .map(|e| {
            let source = e
                .reporting_component
                .filter(|c| !c.is_empty())
                .or(e.source.and_then(|s| s.component))
                .unwrap_or_default();
            (source, e.reason.unwrap_or_default(), e.message.unwrap_or_default())
        })
        .collect()
}

fn ready(node: &Node) -> bool {
    let status = node.status.as_ref();
    status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

#[tokio::test]
async fn karpenter_runs_in_the_cluster_and_is_checked() {
    let bed = bed();
    let cluster = bed.cluster(CLUSTER).unwrap();
    assert!(cluster.has_karpenter());
    assert!(cluster.pids().iter().any(|(c, _)| *c == Component::Karpenter), "{:?}", cluster.pids());
    assert!(cluster.log_path(Component::Karpenter).exists());
    assert!(cluster.karpenter_instance_types_path().exists());
    bed.check().unwrap();
    let client = client().await;
    let pools: Api<DynamicObject> = Api::all_with(client.clone(), &gantry_testbed::karpenter::node_pool_resource());
    // Karpenter reconciles the NodePools: they become Ready (their KWOKNodeClass is Ready).
    for name in ["h100", "l4"] {
        common::eventually(&format!("NodePool {name} to be Ready"), 60, || async {
            let pool = pools.get(name).await.ok()?;
            let conditions = pool.data["status"]["conditions"].as_array()?.clone();
            conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True").then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_pending_gpu_pod_gets_a_node_from_karpenter_which_goes_away_when_empty() {
    let client = client().await;
    create_deployment(&client, "serve", "llama", 8, H100).await;

    // Karpenter launches a NodeClaim of the pool's instance type for the pending pod ...
    let claim = common::eventually("a NodeClaim of the h100 pool", 90, || async {
        node_claims(&client, "h100").await.into_iter().next()
    })
    .await;
    let claim_name = claim.metadata.name.clone().unwrap();
    let labels = claim.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("nvidia.com/gpu.product").map(String::as_str), Some(H100), "{labels:?}");
    let requirements = claim.data["spec"]["requirements"].as_array().unwrap().clone();
    let instance_types = requirements.iter().find(|r| r["key"] == "node.kubernetes.io/instance-type").unwrap();
    assert_eq!(instance_types["values"], serde_json::json!(["gpu-h100-8x"]), "{requirements:?}");

    // ... tells the pod where it will run ...
    let pod =
        common::eventually("the llama pod", 30, || async { pods_of(&client, "serve", "llama").await.pop() }).await;
    let pod_name = pod.metadata.name.clone().unwrap();
    let nominated = common::eventually("Karpenter's Nominated event", 60, || async {
        events_of(&client, "serve", &pod_name).await.into_iter().find(|(_, reason, _)| reason == NOMINATED_REASON)
    })
    .await;
    eprintln!("events of {pod_name}: {:#?}", events_of(&client, "serve", &pod_name).await);
    assert_eq!(nominated.0, "karpenter", "{nominated:?}");
    // Once the Node exists the message also names it (`..., node/<name>`).
    assert!(nominated.2.starts_with(&format!("Pod should schedule on: nodeclaim/{claim_name}")), "{nominated:?}");

    // ... and its Node registers, labelled like a GPU node, with the GPUs allocatable, Ready.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = common::eventually("the NodeClaim's Node to be Ready", 120, || async {
        let claim =
            node_claims(&client, "h100").await.into_iter().find(|c| c.metadata.name.as_deref() == Some(&claim_name))?;
        let node_name = claim.data["status"]["nodeName"].as_str()?.to_string();
        let node = nodes.get(&node_name).await.ok()?;
        ready(&node).then_some(node)
    })
    .await;
    let node_name = node.metadata.name.clone().unwrap();
    eprintln!("node {node_name}: labels {:#?}", node.metadata.labels);
    let allocatable = node.status.as_ref().unwrap().allocatable.clone().unwrap();
    assert_eq!(allocatable["nvidia.com/gpu"].0, "8", "{allocatable:?}");
    assert_eq!(label(&node, "nvidia.com/gpu.product"), Some(H100));
    assert_eq!(label(&node, "nvidia.com/gpu.count"), Some("8"));
    assert_eq!(label(&node, "node.kubernetes.io/instance-type"), Some("gpu-h100-8x"));
    assert_eq!(label(&node, "karpenter.sh/capacity-type"), Some("on-demand"));
    assert_eq!(label(&node, GANTRY_NODE_POOL_LABEL), Some("h100"));
    assert!(label(&node, "topology.kubernetes.io/zone").is_some_and(|z| z.starts_with("us-east-1")));
    assert_eq!(node.metadata.annotations.as_ref().unwrap()["kwok.x-k8s.io/node"], "fake");

    // The pod runs there.
    common::eventually("the llama pod to run on the new node", 90, || async {
        let pod = pods_of(&client, "serve", "llama").await.pop()?;
        let on = pod.spec.as_ref()?.node_name.as_deref()? == node_name;
        (on && pod.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let claim = node_claims(&client, "h100")
        .await
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(&claim_name))
        .unwrap();
    let conditions = claim.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
    for type_ in ["Launched", "Registered", "Initialized"] {
        assert!(conditions.iter().any(|c| c["type"] == type_ && c["status"] == "True"), "{type_}: {conditions:?}");
    }

    // Scaled to zero, the node is empty: Karpenter removes the NodeClaim and its Node.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "serve");
    let scale = serde_json::json!({ "spec": { "replicas": 0 } });
    deployments.patch("llama", &PatchParams::default(), &Patch::Merge(&scale)).await.unwrap();
    let started = std::time::Instant::now();
    common::eventually("the empty node and its NodeClaim to be consolidated away", 180, || async {
        let claim_gone =
            !node_claims(&client, "h100").await.iter().any(|c| c.metadata.name.as_deref() == Some(&claim_name));
        let node_gone = nodes.get_opt(&node_name).await.ok()?.is_none();
        (claim_gone && node_gone).then_some(())
    })
    .await;
    eprintln!("consolidated {} s after scaling to zero", started.elapsed().as_secs());
    bed().check().unwrap();
}

#[tokio::test]
async fn a_pod_no_node_pool_can_serve_gets_karpenters_failed_scheduling_event() {
    let client = client().await;
    // No NodePool labels its nodes with this GPU model.
    create_deployment(&client, "nowhere", "b200", 1, "NVIDIA-B200").await;
    // 16 H100s: the h100 pool's largest instance type has 8.
    create_deployment(&client, "nowhere", "giant", 16, H100).await;
    for app in ["b200", "giant"] {
        let pod = common::eventually("the pod", 30, || async { pods_of(&client, "nowhere", app).await.pop() }).await;
        let pod_name = pod.metadata.name.unwrap();
        let event = common::eventually(&format!("Karpenter's event for {app}"), 90, || async {
            events_of(&client, "nowhere", &pod_name).await.into_iter().find(|(source, _, _)| source == "karpenter")
        })
        .await;
        eprintln!("events of {pod_name} ({app}): {:#?}", events_of(&client, "nowhere", &pod_name).await);
        assert_eq!(event.1, "FailedScheduling", "{event:?}");
        assert!(event.2.starts_with("Failed to schedule pod, "), "{event:?}");
    }
    // Nothing was launched for them.
    assert!(node_claims(&client, "l4").await.is_empty());
}

#[tokio::test]
async fn train_jobs_are_created_against_the_shipped_cluster_training_runtimes() {
    let client = client().await;
    assert!(bed().cluster(CLUSTER).unwrap().has_train_job_crds());
    let runtimes: Api<DynamicObject> = Api::all_with(client.clone(), &cluster_training_runtime_resource());
    let mut names: Vec<String> = runtimes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["deepspeed-distributed", "mlx-distributed", "mpi-distributed", "torch-distributed"]);

    // The fleet's TrainJob is there as written; no controller gives it a status.
    let jobs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "nlp", &train_job_resource());
    let from_fleet = jobs.get("from-fleet").await.unwrap();
    assert_eq!(from_fleet.data["spec"]["runtimeRef"]["name"], "torch-distributed");
    assert_eq!(from_fleet.data["spec"]["trainer"]["numNodes"], 2);
    assert_eq!(from_fleet.data["spec"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"], "8");
    eprintln!("TrainJob as stored: {}", serde_json::to_string(&from_fleet.data).unwrap());

    // And one from Rust.
    let mut spec = TrainJobSpec::new("mpi-job", "nlp", 1);
    spec.runtime = gantry_testbed::fleet::Name::new("mpi-distributed").unwrap();
    let object: DynamicObject = serde_json::from_value(train_job(&spec)).unwrap();
    jobs.create(&PostParams::default(), &object).await.unwrap();
    assert_eq!(jobs.get("mpi-job").await.unwrap().data["spec"]["runtimeRef"]["name"], "mpi-distributed");
}
