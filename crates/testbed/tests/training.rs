//! The Kubeflow training operator in a testbed: PyTorchJobs run, succeed, fail and go away
//! as the real operator plays them, on KWOK's pods.

mod common;

use std::sync::OnceLock;

use gantry_testbed::fleet::{LabelValue, PyTorchJobSpec};
use gantry_testbed::training::{
    JOB_NAME_LABEL, JOB_ROLE_LABEL, OPERATOR_NAME_LABEL, REPLICA_INDEX_LABEL, REPLICA_TYPE_LABEL, pytorch_job,
    pytorch_job_resource,
};
use gantry_testbed::{Component, Fleet, Testbed};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};

const CLUSTER: &str = "train";
const H100: &str = "NVIDIA-H100-80GB-HBM3";

/// One cluster with the operator, and a PyTorchJob from the fleet itself.
fn bed() -> &'static Testbed {
    gantry_testbed::shared::shared(|| {
        let mut fleet = Fleet::small(CLUSTER).with_training_operator();
        let mut from_fleet = PyTorchJobSpec::new("from-fleet", "nlp", 1);
        from_fleet.run_seconds = 3;
        fleet.clusters[0].pytorch_jobs.push(from_fleet);
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

fn jobs(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &pytorch_job_resource())
}

async fn create(client: &Client, spec: &PyTorchJobSpec) {
    let object: DynamicObject = serde_json::from_value(pytorch_job(spec)).unwrap();
    jobs(client, spec.namespace.as_str()).create(&PostParams::default(), &object).await.unwrap();
}

/// The job's condition of this type, when its status is "True".
fn condition(job: &DynamicObject, type_: &str) -> Option<serde_json::Value> {
    job.data["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_ && c["status"] == "True").cloned()
}

async fn wait_condition(client: &Client, namespace: &str, name: &str, type_: &str, seconds: u64) -> serde_json::Value {
    let api = jobs(client, namespace);
    common::eventually(&format!("PyTorchJob {name} to be {type_}"), seconds, || async {
        let job = api.get(name).await.ok()?;
        condition(&job, type_)
    })
    .await
}

async fn services_of(client: &Client, namespace: &str, job: &str) -> Vec<String> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let list = services.list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}"))).await.unwrap();
    let mut names: Vec<String> = list.items.into_iter().filter_map(|s| s.metadata.name).collect();
    names.sort();
    names
}

async fn pods_of(client: &Client, namespace: &str, job: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}"))).await.unwrap().items
}

fn label<'a>(pod: &'a Pod, key: &str) -> &'a str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str).unwrap_or("")
}

#[tokio::test]
async fn the_operator_runs_in_the_cluster_and_is_checked() {
    let bed = bed();
    let cluster = bed.cluster(CLUSTER).unwrap();
    assert!(cluster.has_training_operator());
    assert!(cluster.pids().iter().any(|(c, _)| *c == Component::TrainingOperator), "{:?}", cluster.pids());
    assert!(cluster.log_path(Component::TrainingOperator).exists());
    bed.check().unwrap();
    // The fleet's own PyTorchJob was applied and runs to the end.
    let client = client().await;
    wait_condition(&client, "nlp", "from-fleet", "Succeeded", 90).await;
}

#[tokio::test]
async fn a_pytorch_job_runs_on_the_operators_pods_and_succeeds() {
    let client = client().await;
    let mut spec = PyTorchJobSpec::new("ddp-ok", "vision", 2);
    spec.gpus_per_worker = 2;
    spec.gpu_model = Some(LabelValue::new(H100).unwrap());
    spec.run_seconds = 8;
    create(&client, &spec).await;

    let running = wait_condition(&client, "vision", "ddp-ok", "Running", 60).await;
    assert_eq!(running["reason"], "PyTorchJobRunning", "{running}");
    let pods = pods_of(&client, "vision", "ddp-ok").await;
    let mut roles: Vec<(String, String)> = pods
        .iter()
        .map(|p| (label(p, REPLICA_TYPE_LABEL).to_string(), label(p, REPLICA_INDEX_LABEL).to_string()))
        .collect();
    roles.sort();
    let expected = [("master", "0"), ("worker", "0"), ("worker", "1")].map(|(t, i)| (t.to_string(), i.to_string()));
    assert_eq!(roles, expected);
    let mut names: Vec<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["ddp-ok-master-0", "ddp-ok-worker-0", "ddp-ok-worker-1"]);
    assert_eq!(services_of(&client, "vision", "ddp-ok").await, names, "a headless Service per pod");
    let master = pods.iter().find(|p| label(p, REPLICA_TYPE_LABEL) == "master").unwrap();
    assert_eq!(label(master, JOB_ROLE_LABEL), "master");
    assert_eq!(label(master, OPERATOR_NAME_LABEL), "pytorchjob-controller");
    for pod in &pods {
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("PyTorchJob", "ddp-ok"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("train-h100-spot-0"), "{:?}", pod.metadata.name);
        let limits = spec.containers[0].resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["nvidia.com/gpu"].0, "2");
    }

    let succeeded = wait_condition(&client, "vision", "ddp-ok", "Succeeded", 90).await;
    assert_eq!(succeeded["reason"], "PyTorchJobSucceeded", "{succeeded}");
    let job = jobs(&client, "vision").get("ddp-ok").await.unwrap();
    assert!(job.data["status"]["completionTime"].is_string(), "{}", job.data["status"]);
    let pods = pods_of(&client, "vision", "ddp-ok").await;
    let master = pods.iter().find(|p| label(p, REPLICA_TYPE_LABEL) == "master").unwrap();
    assert_eq!(master.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
}

#[tokio::test]
async fn a_pytorch_job_whose_worker_crashes_fails() {
    let client = client().await;
    let mut spec = PyTorchJobSpec::new("ddp-crash", "vision", 1);
    spec.fail = true;
    spec.run_seconds = 120;
    create(&client, &spec).await;

    let failed = wait_condition(&client, "vision", "ddp-crash", "Failed", 90).await;
    assert_eq!(failed["reason"], "PyTorchJobFailed", "{failed}");
    assert_eq!(failed["message"], "PyTorchJob ddp-crash is failed because 1 Worker replica(s) failed.", "{failed}");
    let pods = pods_of(&client, "vision", "ddp-crash").await;
    let worker = pods.iter().find(|p| label(p, REPLICA_TYPE_LABEL) == "worker").unwrap();
    let status = worker.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let exit = status.container_statuses.as_ref().unwrap()[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(exit.exit_code, 1);
}

#[tokio::test]
async fn deleting_a_pytorch_job_leaves_no_pods() {
    let client = client().await;
    let spec = PyTorchJobSpec { run_seconds: 3600, ..PyTorchJobSpec::new("ddp-delete", "nlp", 2) };
    create(&client, &spec).await;
    common::eventually("the job's 3 pods", 60, || async {
        (pods_of(&client, "nlp", "ddp-delete").await.len() == 3).then_some(())
    })
    .await;

    jobs(&client, "nlp").delete("ddp-delete", &DeleteParams::default()).await.unwrap();
    common::eventually("the job and its pods to be gone", 60, || async {
        let gone = jobs(&client, "nlp").get_opt("ddp-delete").await.unwrap().is_none();
        let pods = pods_of(&client, "nlp", "ddp-delete").await;
        (gone && pods.is_empty() && services_of(&client, "nlp", "ddp-delete").await.is_empty()).then_some(())
    })
    .await;
}
