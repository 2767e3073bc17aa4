//! Failures the testbed makes happen on purpose (KWOK stages in `kwok/health-stages.yaml`):
//! crash-looping and OOM-killed containers, NotReady nodes; and that healthy pods and Jobs
//! are left alone. Pods run in cluster `a`; the node test uses cluster `b`, so that a NotReady
//! node does not disturb the scheduling of the pod tests.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, shared, wait_for};
use gantry_testbed::apply::node_name;
use gantry_testbed::kwok::{CRASH_LOOP_ANNOTATION, NOT_READY_ANNOTATION, OOM_KILL_ANNOTATION};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::conditions::is_job_completed;
use kube::{Client, ResourceExt};
use serde_json::json;

async fn client(cluster: &str) -> Client {
    shared().cluster(cluster).expect("cluster exists").client().await.expect("client")
}

fn deployment(name: &str, annotations: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name }, "annotations": annotations },
                "spec": { "containers": [{
                    "name": "server", "image": "ghcr.io/acme/serve:1",
                    "resources": { "requests": { "cpu": "100m" } }
                }] }
            }
        }
    }))
    .unwrap()
}

/// The first pod of the Deployment `app` that has a container status.
async fn first_pod(pods: &Api<Pod>, app: &str) -> Option<Pod> {
    let list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.ok()?;
    list.items.into_iter().find(|p| container(p).is_some())
}

fn container(pod: &Pod) -> Option<ContainerStatus> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first().cloned()
}

fn condition(pod: &Pod, kind: &str) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == kind).map(|c| c.status.clone())
}

fn waiting_reason(status: &ContainerStatus) -> Option<String> {
    status.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

#[tokio::test]
async fn a_crash_looping_pod_backs_off_and_restarts_over_and_over() {
    let client = client("a").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "nlp");
    let annotations = json!({ CRASH_LOOP_ANNOTATION: "true" });
    deployments.create(&PostParams::default(), &deployment("crashy", annotations)).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "nlp");

    let started = Instant::now();
    let (mut saw_running, mut saw_terminated, mut saw_backoff) = (false, false, false);
    let mut last_count = 0;
    let mut pod_name = None;
    while last_count < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "restartCount {last_count} after 60s (running {saw_running}, terminated {saw_terminated}, backoff {saw_backoff})"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let Some(pod) = first_pod(&pods, "crashy").await else { continue };
        let name = pod.name_any();
        assert_eq!(pod_name.get_or_insert_with(|| name.clone()), &name, "the same pod restarts its container");
        assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"), "the pod stays Running");
        let status = container(&pod).unwrap();
        assert!(status.restart_count >= last_count, "restartCount went down: {status:?}");
        last_count = status.restart_count;
        let state = status.state.clone().unwrap_or_default();
        if state.running.is_some() {
            saw_running = true;
        }
        if let Some(terminated) = &state.terminated {
            saw_terminated = true;
            assert_eq!((terminated.reason.as_deref(), terminated.exit_code), (Some("Error"), 1), "{status:?}");
            assert_eq!(condition(&pod, "Ready").as_deref(), Some("False"), "not Ready when terminated");
        }
        if waiting_reason(&status).as_deref() == Some("CrashLoopBackOff") {
            saw_backoff = true;
            assert!(status.restart_count >= 1, "{status:?}");
            let last = status.last_state.as_ref().and_then(|s| s.terminated.as_ref()).expect("lastState.terminated");
            assert_eq!((last.reason.as_deref(), last.exit_code), (Some("Error"), 1), "{status:?}");
            assert!(last.finished_at.is_some(), "{status:?}");
            assert!(!status.ready, "{status:?}");
            assert_eq!(condition(&pod, "Ready").as_deref(), Some("False"), "not Ready while backing off");
        }
    }
    // Polling can miss the short terminated state, but not the longer running and waiting ones.
    assert!(saw_running && saw_backoff, "running {saw_running}, CrashLoopBackOff {saw_backoff}");
    eprintln!("restartCount {last_count} after {:.1}s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn an_oom_killed_pod_shows_oomkilled_with_exit_code_137() {
    let client = client("a").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "vision");
    let annotations = json!({ OOM_KILL_ANNOTATION: "true" });
    deployments.create(&PostParams::default(), &deployment("hungry", annotations)).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "vision");
    let status = eventually("an OOMKilled lastState", 60, || async {
        let status = container(&first_pod(&pods, "hungry").await?)?;
        status.last_state.as_ref()?.terminated.as_ref()?;
        Some(status)
    })
    .await;
    let last = status.last_state.as_ref().and_then(|s| s.terminated.as_ref()).unwrap();
    assert_eq!((last.reason.as_deref(), last.exit_code), (Some("OOMKilled"), 137), "{status:?}");
    assert!(status.restart_count >= 1, "{status:?}");
}

fn node_ready(node: &Node) -> Option<(String, Option<String>)> {
    let conditions = node.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "Ready").map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn an_annotated_node_goes_not_ready_and_comes_back() {
    let bed = shared();
    let cluster = bed.cluster("b").unwrap();
    let nodes: Api<Node> = Api::all(client("b").await);
    let name = node_name("b", "cpu", 0);
    assert_eq!(node_ready(&nodes.get(&name).await.unwrap()).map(|r| r.0).as_deref(), Some("True"));

    // NotReady through the CLI.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["node-ready", "--kubeconfig"])
        .arg(bed.kubeconfig_path())
        .args(["--context", "b", "--node", &name, "--ready", "false"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let annotated = nodes.get(&name).await.unwrap();
    assert_eq!(annotated.annotations().get(NOT_READY_ANNOTATION).map(String::as_str), Some("true"));
    let (status, reason) = eventually("the node NotReady", 10, || async {
        node_ready(&nodes.get(&name).await.ok()?).filter(|(status, _)| status != "True")
    })
    .await;
    assert!(status == "False" || status == "Unknown", "{status}");
    assert_eq!(reason.as_deref(), Some("KubeletNotReady"));
    // Nothing sets it back while the annotation is there.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_ne!(node_ready(&nodes.get(&name).await.unwrap()).map(|r| r.0).as_deref(), Some("True"));

    // Ready again through the library.
    cluster.set_node_ready(&name, true).await.unwrap();
    assert!(!nodes.get(&name).await.unwrap().annotations().contains_key(NOT_READY_ANNOTATION));
    eventually("the node Ready again", 10, || async {
        node_ready(&nodes.get(&name).await.ok()?).filter(|(status, _)| status == "True")
    })
    .await;
}

#[tokio::test]
async fn an_unannotated_pod_stays_running_and_ready_without_restarts() {
    let client = client("a").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "nlp");
    deployments.create(&PostParams::default(), &deployment("steady", json!({}))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "nlp");
    eventually("a Ready steady pod", 60, || async {
        let pod = first_pod(&pods, "steady").await?;
        (condition(&pod, "Ready").as_deref() == Some("True")).then_some(pod)
    })
    .await;
    // Longer than a crash cycle.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let pod = first_pod(&pods, "steady").await.expect("the pod");
        let status = container(&pod).unwrap();
        assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
        assert_eq!(condition(&pod, "Ready").as_deref(), Some("True"), "{status:?}");
        assert_eq!(status.restart_count, 0, "{status:?}");
        assert!(status.state.as_ref().and_then(|s| s.running.as_ref()).is_some(), "{status:?}");
        assert!(status.last_state.as_ref().and_then(|s| s.terminated.as_ref()).is_none(), "{status:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_jobs_pod_still_completes() {
    let client = client("a").await;
    let spec: gantry_testbed::fleet::JobSpec =
        serde_yaml::from_str("{ name: quick, namespace: vision, image: ghcr.io/acme/trainer:2, runSeconds: 2 }")
            .unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "vision");
    jobs.create(&PostParams::default(), &gantry_testbed::apply::job(&spec)).await.unwrap();
    wait_for(jobs, "quick", 60, is_job_completed()).await;
    let pods: Api<Pod> = Api::namespaced(client, "vision");
    let list = pods.list(&ListParams::default().labels("job-name=quick")).await.unwrap();
    let pod = list.items.first().expect("the Job's pod");
    assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded"));
    assert_eq!(container(pod).unwrap().restart_count, 0);
}

#[tokio::test]
async fn an_annotated_jobs_pod_fails_instead_of_completing() {
    let client = client("a").await;
    let spec: gantry_testbed::fleet::JobSpec =
        serde_yaml::from_str("{ name: doomed, namespace: nlp, image: ghcr.io/acme/trainer:2, runSeconds: 2 }").unwrap();
    let mut job = gantry_testbed::apply::job(&spec);
    let template = job.spec.as_mut().unwrap().template.metadata.get_or_insert_with(Default::default);
    template.annotations.get_or_insert_with(Default::default).insert(CRASH_LOOP_ANNOTATION.into(), "true".into());
    // One pod, no retries: the Job fails with its pod.
    job.spec.as_mut().unwrap().backoff_limit = Some(0);
    assert_eq!(job.spec.as_ref().unwrap().template.spec.as_ref().unwrap().restart_policy.as_deref(), Some("Never"));
    Api::<Job>::namespaced(client.clone(), "nlp").create(&PostParams::default(), &job).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "nlp");
    let pod = eventually("the Job's pod done", 60, || async {
        let list = pods.list(&ListParams::default().labels("job-name=doomed")).await.ok()?;
        let pod = list.items.into_iter().next()?;
        let phase = pod.status.as_ref()?.phase.clone()?;
        (phase == "Failed" || phase == "Succeeded").then_some(pod)
    })
    .await;
    assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Failed"));
    let status = container(&pod).unwrap();
    let terminated = status.state.as_ref().and_then(|s| s.terminated.as_ref()).expect("terminated");
    assert_eq!((terminated.reason.as_deref(), terminated.exit_code), (Some("Error"), 1), "{status:?}");
}
