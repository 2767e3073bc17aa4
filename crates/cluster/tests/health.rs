//! Self-healing, visible: crash loops, OOM kills and NotReady nodes, made to
//! happen by the testbed's KWOK stages (a pod annotated for it crash-loops or
//! is OOM-killed, as a kubelet would report it; a node annotated goes
//! NotReady), read back through the watch caches and the read models.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gantry_cluster::{Hub, Viewer, queries};
use gantry_domain::health::{Trouble, WorkloadKind};
use gantry_domain::policy::Visibility;
use gantry_domain::view::{ListQuery, PodRow, now_ms};
use gantry_testbed::kwok::{CRASH_LOOP_ANNOTATION, OOM_KILL_ANNOTATION};
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::{Fleet, Testbed};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn bed() -> &'static Testbed {
    shared(|| Fleet::small("a"))
}

async fn hub() -> Arc<Hub> {
    let hub = Hub::new();
    hub.connect("a", bed().cluster("a").unwrap().config().await.unwrap()).unwrap();
    assert!(hub.wait_synced(Duration::from_secs(60)).await, "caches never synced");
    hub
}

async fn deployments() -> Api<Deployment> {
    Api::namespaced(bed().cluster("a").unwrap().client().await.unwrap(), "vision")
}

/// A one-replica Deployment in `vision` whose pods carry `annotation`.
async fn deploy(name: &str, annotation: Option<&str>) {
    let mut template_meta = json!({ "labels": { "app": name } });
    if let Some(annotation) = annotation {
        template_meta["annotations"] = json!({ annotation: "true" });
    }
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "vision" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": template_meta, "spec": { "containers": [ { "name": "main", "image": "example/model:1" } ] } }
        }
    }))
    .unwrap();
    deployments().await.create(&PostParams::default(), &d).await.unwrap();
}

/// The Deployment's pods as Gantry's pod list shows them.
fn pods_of(hub: &Hub, name: &str) -> Vec<PodRow> {
    let query = ListQuery { cluster: Some("a".into()), q: Some(name.into()), ..Default::default() };
    queries::pods(hub, &Viewer::everything(), &query).items.into_iter().filter(|p| p.phase != "Terminating").collect()
}

fn unhealthy(hub: &Hub, viewer: &Viewer) -> BTreeMap<String, (WorkloadKind, Vec<Trouble>)> {
    queries::unhealthy(hub, viewer, now_ms()).into_iter().map(|w| (w.name, (w.kind, w.troubles))).collect()
}

#[tokio::test]
async fn crash_loops_and_oom_kills_show_with_their_reasons_and_leave_the_panel_once_fixed() {
    let hub = hub().await;
    deploy("crasher", Some(CRASH_LOOP_ANNOTATION)).await;
    deploy("oomer", Some(OOM_KILL_ANNOTATION)).await;
    deploy("steady", None).await;

    // CrashLoopBackOff, with a restart count that keeps growing.
    let first = eventually("the crasher's pod is in CrashLoopBackOff", 60, || async {
        pods_of(&hub, "crasher")
            .into_iter()
            .find(|p| p.health.waiting.as_deref() == Some("CrashLoopBackOff") && p.restarts >= 1)
    })
    .await;
    let last = first.health.last_termination.as_ref().expect("the exit that led to the back-off");
    assert_eq!((last.reason.as_str(), last.exit_code), ("Error", 1));
    eventually("the crasher's restart count grows", 60, || async {
        pods_of(&hub, "crasher").into_iter().find(|p| p.name == first.name && p.restarts > first.restarts)
    })
    .await;

    // OOMKilled, exit code 137.
    let oom = eventually("the oomer's pod was OOM-killed", 60, || async {
        pods_of(&hub, "oomer")
            .into_iter()
            .find(|p| p.health.last_termination.as_ref().is_some_and(|t| t.reason == "OOMKilled" && t.exit_code == 137))
    })
    .await;
    assert!(oom.restarts >= 1);

    // Both on the panel, as Deployments; the steady one is not, and neither
    // is anything to a viewer of another namespace.
    let panel = eventually("both are on the unhealthy panel", 30, || async {
        let panel = unhealthy(&hub, &Viewer::everything());
        (panel.contains_key("crasher") && panel.get("oomer").is_some_and(|(_, t)| t.contains(&Trouble::OomKilled)))
            .then_some(panel)
    })
    .await;
    assert_eq!(panel["crasher"].0, WorkloadKind::Deployment);
    assert!(panel["crasher"].1.contains(&Trouble::CrashLooping), "{panel:?}");
    assert!(!panel.contains_key("steady"), "{panel:?}");
    let nlp_only = Viewer {
        visibility: Visibility::Only(BTreeMap::from([("a".to_string(), BTreeSet::from(["nlp".to_string()]))])),
        teams: BTreeMap::new(),
    };
    assert!(unhealthy(&hub, &nlp_only).is_empty(), "another namespace's troubles are not shown");
    // The deployments list carries the same troubles.
    eventually("the deployments list marks the crasher", 30, || async {
        let query = ListQuery { cluster: Some("a".into()), q: Some("crasher".into()), ..Default::default() };
        let rows = queries::deployments(&hub, &Viewer::everything(), &query).items;
        rows.iter().any(|d| d.name == "crasher" && d.troubles.contains(&Trouble::CrashLooping)).then_some(())
    })
    .await;
    let query = ListQuery { cluster: Some("a".into()), q: Some("steady".into()), ..Default::default() };
    assert!(queries::deployments(&hub, &Viewer::everything(), &query).items.iter().all(|d| d.troubles.is_empty()));
    let steady = pods_of(&hub, "steady");
    assert!(steady.iter().all(|p| p.restarts == 0 && p.health == Default::default()), "{steady:?}");

    // Fixed (the annotation that breaks them removed: a new rollout), they leave the panel.
    for name in ["crasher", "oomer"] {
        let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
            CRASH_LOOP_ANNOTATION: null, OOM_KILL_ANNOTATION: null } } } } });
        deployments().await.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }
    eventually("both leave the unhealthy panel once fixed", 90, || async {
        let panel = unhealthy(&hub, &Viewer::everything());
        (!panel.contains_key("crasher") && !panel.contains_key("oomer")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_node_made_not_ready_shows_so_within_ten_seconds_and_recovers() {
    let hub = hub().await;
    let cluster = bed().cluster("a").unwrap();
    let node_named = |name: &'static str| {
        let hub = hub.clone();
        move || {
            let query = ListQuery { cluster: Some("a".into()), ..Default::default() };
            queries::nodes(&hub, &Viewer::everything(), &query).items.into_iter().find(|n| n.name == name)
        }
    };
    let cpu = queries::nodes(&hub, &Viewer::everything(), &ListQuery::default())
        .items
        .into_iter()
        .find(|n| !n.gpus.has_gpus())
        .expect("the small fleet has a CPU node");
    assert!(cpu.ready && cpu.conditions.is_empty(), "{cpu:?}");
    let name: &'static str = Box::leak(cpu.name.into_boxed_str());
    let find = node_named(name);
    // A pod that prefers this node, and tolerates its NotReady taint for 2 s only.
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "evictee", "namespace": "vision" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "evictee" } },
            "template": { "metadata": { "labels": { "app": "evictee" } }, "spec": {
                "affinity": { "nodeAffinity": { "preferredDuringSchedulingIgnoredDuringExecution": [ { "weight": 100,
                    "preference": { "matchFields": [ { "key": "metadata.name", "operator": "In", "values": [name] } ] } } ] } },
                "tolerations": [ { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2 } ],
                "containers": [ { "name": "main", "image": "example/model:1" } ] } }
        }
    }))
    .unwrap();
    deployments().await.create(&PostParams::default(), &d).await.unwrap();
    let first = eventually("the evictee runs on the node", 60, || {
        let pods = pods_of(&hub, "evictee");
        async move { pods.into_iter().find(|p| p.phase == "Running" && p.node.as_deref() == Some(name)) }
    })
    .await;
    cluster.set_node_ready(name, false).await.unwrap();
    let down = eventually("the node shows NotReady", 10, || {
        let found = find();
        async move { found.filter(|n| !n.ready) }
    })
    .await;
    let ready = down.conditions.iter().find(|c| c.kind == "Ready").expect("the Ready condition is listed");
    assert_ne!(ready.status, "True");
    assert!(ready.reason.is_some(), "{ready:?}");
    // Evicted once its toleration ran out, it is listed on the node's page, with where its
    // ReplicaSet's replacement runs.
    let moved = eventually("the evicted pod is listed as moved off, its replacement elsewhere", 90, || {
        let node = queries::node(&hub, &Viewer::everything(), "a", name).map(|(node, _)| node);
        let pod = first.name.clone();
        async move {
            node?
                .moved_off
                .into_iter()
                .find(|m| m.name == pod && !m.now_on.is_empty() && !m.now_on.iter().any(|n| n == name))
        }
    })
    .await;
    assert_eq!(moved.namespace, "vision");
    assert!(moved.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/evictee-")), "{moved:?}");
    let nlp = Viewer {
        visibility: Visibility::Only(BTreeMap::from([("a".to_string(), BTreeSet::from(["nlp".to_string()]))])),
        teams: BTreeMap::new(),
    };
    let hidden = queries::node(&hub, &nlp, "a", name).map(|(node, _)| node.moved_off);
    assert!(hidden.as_ref().is_none_or(|m| m.is_empty()), "another team does not see vision's pods: {hidden:?}");
    deployments().await.delete("evictee", &Default::default()).await.unwrap();
    cluster.set_node_ready(name, true).await.unwrap();
    eventually("the node is Ready again", 20, || {
        let found = find();
        async move { found.filter(|n| n.ready && n.conditions.is_empty()) }
    })
    .await;
}
