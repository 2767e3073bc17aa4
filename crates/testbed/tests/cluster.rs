//! Behaviour of a running testbed (one shared testbed with clusters `a` and `b`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{eventually, shared, wait_for};
use futures::{AsyncBufReadExt, StreamExt};
use gantry_testbed::apply::{GPU_RESOURCE, job};
use gantry_testbed::fleet::JobSpec;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, ResourceQuota};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::conditions::{is_job_completed, is_pod_running};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn client(cluster: &str) -> Client {
    shared().cluster(cluster).expect("cluster exists").client().await.expect("client")
}

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace created");
}

fn pod(name: &str, gpus: u32) -> Pod {
    let mut resources = json!({ "requests": { "cpu": "100m" } });
    if gpus > 0 {
        resources["limits"] = json!({ GPU_RESOURCE: gpus.to_string() });
    }
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "main", "image": "ghcr.io/acme/worker:1", "resources": resources }] }
    }))
    .unwrap()
}

fn deployment(name: &str, image: &str, gpus: u32) -> Deployment {
    let mut resources = json!({ "requests": { "cpu": "100m" } });
    if gpus > 0 {
        resources["limits"] = json!({ GPU_RESOURCE: gpus.to_string() });
    }
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "server", "image": image, "resources": resources }] }
            }
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn a_deployment_asking_for_a_gpu_runs_on_a_gpu_node() {
    let client = client("a").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "vision");
    deployments.create(&PostParams::default(), &deployment("gpu-serve", "ghcr.io/acme/serve:1", 1)).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "vision");
    let running = eventually("a running gpu-serve pod", 60, || async {
        let list = pods.list(&ListParams::default().labels("app=gpu-serve")).await.ok()?;
        list.items.into_iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    let node_name = running.spec.unwrap().node_name.expect("bound to a node");
    let node = Api::<Node>::all(client).get(&node_name).await.unwrap();
    let product = node.labels().get("nvidia.com/gpu.product").cloned().unwrap_or_default();
    assert!(product.starts_with("NVIDIA-"), "{node_name} has no GPU product label");
    let gpus = node.status.unwrap().allocatable.unwrap()[GPU_RESOURCE].0.clone();
    assert_eq!(gpus, "8", "{node_name} allocatable GPUs");
}

#[tokio::test]
async fn a_pod_asking_for_more_gpus_than_any_node_has_stays_pending_with_the_reason() {
    let client = client("a").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "nlp");
    pods.create(&PostParams::default(), &pod("too-big", 16)).await.unwrap();
    let events: Api<Event> = Api::namespaced(client, "nlp");
    let message = eventually("a FailedScheduling event", 60, || async {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=too-big,reason=FailedScheduling"))
            .await
            .ok()?;
        let first = list.items.into_iter().find_map(|e| e.message)?;
        Some(first)
    })
    .await;
    // The testbed is ready only once nodes are schedulable, so the first reason given is
    // the real one (not "untolerated taint" from a node still marked not-ready).
    assert!(message.contains("Insufficient nvidia.com/gpu"), "{message}");
    let phase = pods.get("too-big").await.unwrap().status.and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Pending"));
}

#[tokio::test]
async fn changing_a_deployments_image_creates_revision_2() {
    let client = client("a").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "nlp");
    deployments.create(&PostParams::default(), &deployment("rollout", "ghcr.io/acme/serve:1", 0)).await.unwrap();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client, "nlp");
    let revision = |rs: &ReplicaSet| rs.annotations().get("deployment.kubernetes.io/revision").cloned();
    let image = |rs: &ReplicaSet| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers[0].image.clone())
    };
    let first = eventually("revision 1", 60, || async {
        let list = replica_sets.list(&ListParams::default().labels("app=rollout")).await.ok()?;
        list.items.into_iter().find(|rs| revision(rs).as_deref() == Some("1"))
    })
    .await;
    assert_eq!(image(&first), Some(Some("ghcr.io/acme/serve:1".into())));

    let patch = json!({ "spec": { "template": { "spec": { "containers": [{ "name": "server", "image": "ghcr.io/acme/serve:2" }] } } } });
    deployments.patch("rollout", &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
    let second = eventually("revision 2", 60, || async {
        let list = replica_sets.list(&ListParams::default().labels("app=rollout")).await.ok()?;
        list.items.into_iter().find(|rs| revision(rs).as_deref() == Some("2"))
    })
    .await;
    assert_eq!(image(&second), Some(Some("ghcr.io/acme/serve:2".into())));
    assert_ne!(first.name_any(), second.name_any());
}

#[tokio::test]
async fn a_job_runs_for_its_time_then_succeeds() {
    let client = client("a").await;
    let spec: JobSpec =
        serde_yaml::from_str("{ name: short-train, namespace: vision, image: ghcr.io/acme/trainer:2, runSeconds: 3 }")
            .unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "vision");
    let created = Instant::now();
    jobs.create(&PostParams::default(), &job(&spec)).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "vision");
    let pod_name = eventually("the job's pod", 30, || async {
        let list = pods.list(&ListParams::default().labels("job-name=short-train")).await.ok()?;
        list.items.first().map(|p| p.name_any())
    })
    .await;
    wait_for(pods.clone(), &pod_name, 30, is_pod_running()).await;
    let done = wait_for(jobs, "short-train", 60, is_job_completed()).await;
    assert!(created.elapsed() >= Duration::from_secs(3), "the job finished before its runSeconds");
    assert_eq!(done.status.unwrap().succeeded, Some(1));
    let phase = pods.get(&pod_name).await.unwrap().status.and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Succeeded"));
}

#[tokio::test]
async fn a_gpu_quota_refuses_an_over_quota_pod() {
    let client = client("b").await;
    namespace(&client, "quota-test").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "quota-test");
    let quota: ResourceQuota = serde_json::from_value(
        json!({ "metadata": { "name": "gpus" }, "spec": { "hard": { "requests.nvidia.com/gpu": "2" } } }),
    )
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // Admission refuses every pod until the quota controller has filled in the status.
    wait_for(quotas, "gpus", 30, |q: Option<&ResourceQuota>| {
        q.and_then(|q| q.status.as_ref()).and_then(|s| s.hard.as_ref()).is_some()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client, "quota-test");
    pods.create(&PostParams::default(), &pod("within", 2)).await.expect("a pod within quota is admitted");
    let refused = pods.create(&PostParams::default(), &pod("over", 1)).await.expect_err("over quota");
    match refused {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 403);
            assert!(status.message.contains("exceeded quota"), "{}", status.message);
            assert!(status.message.contains("requests.nvidia.com/gpu"), "{}", status.message);
        }
        other => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn kubectl_lists_the_gpu_nodes() {
    let bed = shared();
    let output = bed
        .kubectl()
        .args(["--context", "a", "get", "nodes", "-L", "nvidia.com/gpu.product", "--no-headers"])
        .output()
        .expect("kubectl runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let rows: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((*cols.first()?, *cols.last()?))
        })
        .collect();
    assert_eq!(rows.get("a-h100-spot-0"), Some(&"NVIDIA-H100-80GB-HBM3"), "{text}");
    assert_eq!(rows.get("a-a100-0"), Some(&"NVIDIA-A100-SXM4-80GB"), "{text}");
    assert!(text.contains("Ready"), "{text}");
    assert!(bed.binaries().kubectl.starts_with(gantry_testbed::cache_root()));
}

#[tokio::test]
async fn two_clusters_run_at_once_and_are_isolated() {
    let bed = shared();
    let (a, b) = (bed.cluster("a").unwrap(), bed.cluster("b").unwrap());
    assert_ne!(a.server(), b.server());
    let (ca, cb) = (a.client().await.unwrap(), b.client().await.unwrap());
    let node_names = |client: Client| async move {
        let nodes = Api::<Node>::all(client).list(&ListParams::default()).await.unwrap();
        nodes.items.iter().map(|n| n.name_any()).collect::<Vec<_>>()
    };
    let (na, nb) = futures::join!(node_names(ca.clone()), node_names(cb.clone()));
    assert!(na.iter().all(|n| n.starts_with("a-")) && na.len() == 3, "{na:?}");
    assert!(nb.iter().all(|n| n.starts_with("b-")) && nb.len() == 3, "{nb:?}");

    let config: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "only-in-a" } })).unwrap();
    Api::<ConfigMap>::namespaced(ca, "default").create(&PostParams::default(), &config).await.unwrap();
    let in_b = Api::<ConfigMap>::namespaced(cb, "default").get_opt("only-in-a").await.unwrap();
    assert!(in_b.is_none(), "cluster b sees cluster a's objects");
    bed.check().unwrap();
}

#[tokio::test]
async fn pod_logs_stream_through_the_apiserver() {
    let client = client("b").await;
    let pods: Api<Pod> = Api::namespaced(client, "nlp");
    pods.create(&PostParams::default(), &pod("trainer", 0)).await.unwrap();
    wait_for(pods.clone(), "trainer", 60, is_pod_running()).await;

    let text = pods.logs("trainer", &LogParams::default()).await.expect("logs");
    assert!(text.contains("starting training"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("epoch 1 step 1 loss")), "{text}");

    // Following: lines the "training" appends later arrive on the open stream.
    let params = LogParams { follow: true, tail_lines: Some(1), ..LogParams::default() };
    let mut lines = pods.log_stream("trainer", &params).await.expect("log stream").lines();
    let first = lines.next().await.expect("a line").expect("readable");
    let step = |line: &str| line.split_whitespace().nth(3).and_then(|s| s.parse::<u64>().ok());
    let start = step(&first).unwrap_or_else(|| panic!("not a training line: {first}"));
    let later = tokio::time::timeout(Duration::from_secs(20), lines.next())
        .await
        .expect("a new line within 20s")
        .expect("a line")
        .expect("readable");
    assert!(step(&later).unwrap_or(0) > start, "{first} then {later}");
}
