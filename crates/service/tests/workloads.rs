//! Deployments and jobs through the service layer, against real control
//! planes: each action is authorised by role, done the way kubectl would do
//! it, and audited.
//!
//! Cluster `a` holds team vision's staging (`vision`) and team nlp (`nlp`);
//! cluster `b` holds vision's prod (`vision`), a protected environment.

use std::time::Duration;

use gantry_cluster::Hub;
use gantry_domain::manifest::{LaunchDeploymentInput, LaunchJobInput, UpdateDeploymentInput};
use gantry_domain::policy::Role;
use gantry_domain::validate::Username;
use gantry_service::{
    AppState, Caller, DeleteRequest, ErrorKind, RollbackRequest, ScaleRequest, Sealer, ServiceConfig,
};
use gantry_store::testing::TempDir;
use gantry_store::{AuditFilter, AuditResult, Environment, Store, StoreConfig};
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::{Fleet, Testbed};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::api::{Api, ListParams, PostParams};

fn bed() -> &'static Testbed {
    shared(|| Fleet::small("a").and(Fleet::small("b")))
}

struct World {
    state: AppState,
    admin: Caller,
    alice: Caller, // vision deployer
    bob: Caller,   // vision viewer
    carol: Caller, // nlp deployer
    dana: Caller,  // vision team admin
    _dir: TempDir,
}

async fn world() -> World {
    let dir = TempDir::new("gantry-service-test");
    let store =
        Store::open(&StoreConfig { data_dir: dir.path.clone(), database_url: None, max_connections: 4 }).await.unwrap();
    let hub = Hub::new();
    for name in ["a", "b"] {
        hub.connect(name, bed().cluster(name).unwrap().gantry_config().await.unwrap()).unwrap();
    }
    assert!(hub.wait_synced(Duration::from_secs(60)).await);
    let state = AppState::new(
        store.clone(),
        hub,
        ServiceConfig { replica_cap: 10, ..Default::default() },
        Sealer::from_key([1; 32]),
    );
    let vision = store.create_team("vision").await.unwrap().id;
    let nlp = store.create_team("nlp").await.unwrap().id;
    store.map_namespace("a", "vision", vision).await.unwrap();
    store.map_namespace("b", "vision", vision).await.unwrap();
    store.map_namespace("a", "nlp", nlp).await.unwrap();
    store
        .set_environments(
            vision,
            &[
                Environment {
                    name: "staging".into(),
                    cluster: "a".into(),
                    namespace: "vision".into(),
                    protected: false,
                },
                Environment { name: "prod".into(), cluster: "b".into(), namespace: "vision".into(), protected: true },
            ],
        )
        .await
        .unwrap();
    let mut callers = Vec::new();
    for (name, admin, team, role) in [
        ("root", true, None, Role::Viewer),
        ("alice", false, Some(vision), Role::Deployer),
        ("bob", false, Some(vision), Role::Viewer),
        ("carol", false, Some(nlp), Role::Deployer),
        ("dana", false, Some(vision), Role::TeamAdmin),
    ] {
        let user = store.create_user(&Username::parse(name).unwrap(), "unused", admin).await.unwrap();
        if let Some(team) = team {
            store.set_membership(team, user.id, role).await.unwrap();
        }
        callers.push(state.cli_caller(name).await.unwrap());
    }
    let mut c = callers.into_iter();
    World {
        state,
        admin: c.next().unwrap(),
        alice: c.next().unwrap(),
        bob: c.next().unwrap(),
        carol: c.next().unwrap(),
        dana: c.next().unwrap(),
        _dir: dir,
    }
}

fn launch(cluster: &str, name: &str, gpus: &str, model: &str, replicas: &str) -> LaunchDeploymentInput {
    LaunchDeploymentInput {
        cluster: cluster.into(),
        namespace: "vision".into(),
        name: name.into(),
        image: "ghcr.io/acme/llm:1".into(),
        model: "llm".into(),
        model_version: "v1".into(),
        gpus: gpus.into(),
        gpu_model: model.into(),
        replicas: replicas.into(),
        ..Default::default()
    }
}

async fn deployments(cluster: &str) -> Api<Deployment> {
    Api::namespaced(bed().cluster(cluster).unwrap().client().await.unwrap(), "vision")
}

async fn spec_replicas(cluster: &str, name: &str) -> i32 {
    deployments(cluster).await.get(name).await.unwrap().spec.unwrap().replicas.unwrap()
}

async fn revision(cluster: &str, name: &str) -> Option<String> {
    deployments(cluster)
        .await
        .get(name)
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default()
        .get("deployment.kubernetes.io/revision")
        .cloned()
}

/// The audit records of one action, newest first.
async fn audit_of(w: &World, action: &str) -> Vec<gantry_store::AuditRecord> {
    w.state.store().audit(&AuditFilter { action: Some(action.into()), ..Default::default() }).await.unwrap()
}

fn kubectl(cluster: &str, args: &[&str]) -> String {
    let out = bed().kubectl().args(["--context", cluster]).args(args).output().unwrap();
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn launch_runs_pods_on_the_requested_gpu_model_and_is_audited() {
    let w = world().await;
    let objects = w
        .state
        .launch_deployment(&w.alice, &launch("a", "llm-launch", "2", "NVIDIA-A100-SXM4-80GB", "2"))
        .await
        .unwrap();
    assert_eq!(objects, vec!["deployment/llm-launch", "service/llm-launch"]);
    let client = bed().cluster("a").unwrap().client().await.unwrap();
    let pods = eventually("two pods run", 60, || async {
        let pods = Api::<Pod>::namespaced(client.clone(), "vision")
            .list(&ListParams::default().labels("app.kubernetes.io/name=llm-launch"))
            .await
            .unwrap()
            .items;
        (pods.len() == 2 && pods.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")))
            .then_some(pods)
    })
    .await;
    let nodes = Api::<Node>::all(client);
    for pod in pods {
        let node = nodes.get(pod.spec.unwrap().node_name.as_deref().unwrap()).await.unwrap();
        assert_eq!(node.metadata.labels.unwrap()["nvidia.com/gpu.product"], "NVIDIA-A100-SXM4-80GB");
    }
    let d = deployments("a").await.get("llm-launch").await.unwrap();
    let labels = d.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "gantry");
    assert_eq!(labels["gantry.dev/model"], "llm");
    assert_eq!(labels["gantry.dev/team"], "vision");
    assert!(
        d.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|f| f.manager.as_deref() == Some("gantry") && f.operation.as_deref() == Some("Apply"))
    );

    let audit = audit_of(&w, "deployment.launch").await;
    assert_eq!(audit[0].actor, "alice");
    assert_eq!(audit[0].result, AuditResult::Ok);
    assert!(audit[0].after.as_deref().unwrap().contains("ghcr.io/acme/llm:1"));
    assert!(matches!(
        w.state.launch_deployment(&w.alice, &launch("a", "llm-launch", "0", "", "1")).await.unwrap_err().kind,
        ErrorKind::Conflict
    ));
}

#[tokio::test]
async fn scale_update_rollback_and_history_match_kubectl() {
    let w = world().await;
    let name = "llm-rollout";
    w.state.launch_deployment(&w.alice, &launch("a", name, "0", "", "1")).await.unwrap();
    let scale = |replicas: &str| ScaleRequest { replicas: replicas.into(), version: String::new() };
    assert_eq!(w.state.scale_deployment(&w.alice, "a", "vision", name, &scale("3")).await.unwrap(), (1, 3));
    assert_eq!(spec_replicas("a", name).await, 3);
    assert_eq!(w.state.scale_deployment(&w.alice, "a", "vision", name, &scale("0")).await.unwrap(), (3, 0));
    assert_eq!(spec_replicas("a", name).await, 0);

    eventually("revision 1", 30, || async { (revision("a", name).await.as_deref() == Some("1")).then_some(()) }).await;
    let update =
        UpdateDeploymentInput { image: "ghcr.io/acme/llm:2".into(), model_version: "v2".into(), ..Default::default() };
    w.state.update_deployment(&w.alice, "a", "vision", name, &update).await.unwrap();
    eventually("revision 2", 30, || async { (revision("a", name).await.as_deref() == Some("2")).then_some(()) }).await;
    let client = bed().cluster("a").unwrap().client().await.unwrap();
    let sets = Api::<ReplicaSet>::namespaced(client, "vision")
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={name}")))
        .await
        .unwrap();
    assert!(
        sets.items
            .iter()
            .any(|rs| rs.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"] == "2")
    );

    let outcome = w
        .state
        .rollback_deployment(
            &w.alice,
            "a",
            "vision",
            name,
            &RollbackRequest { to_revision: "1".into(), version: String::new() },
        )
        .await
        .unwrap();
    assert_eq!((outcome.from_revision, outcome.restored_revision), (2, 1));
    eventually("revision 3", 30, || async { (revision("a", name).await.as_deref() == Some("3")).then_some(()) }).await;
    let d = deployments("a").await.get(name).await.unwrap();
    assert_eq!(
        d.spec.unwrap().template.spec.unwrap().containers[0].image.as_deref(),
        Some("ghcr.io/acme/llm:1"),
        "revision 3 carries revision 1's template"
    );

    let history = w.state.deployment_history(&w.alice, "a", "vision", name).await.unwrap();
    assert_eq!(history.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![3, 2], "revision 1's ReplicaSet became 3");
    assert!(history[0].current);
    assert_eq!(history[0].images, vec!["ghcr.io/acme/llm:1"]);
    assert_eq!(history[0].by.as_deref(), Some("alice"), "Gantry's audit log names who rolled back");
    assert_eq!(history[1].model_version.as_deref(), Some("v2"));
    let printed = kubectl("a", &["-n", "vision", "rollout", "history", &format!("deployment/{name}")]);
    let revisions: Vec<&str> = printed.lines().skip(2).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(revisions, vec!["2", "3"], "kubectl agrees:\n{printed}");

    let diff = w.state.deployment_diff(&w.bob, "a", "vision", name, 2).await.unwrap();
    let changed: Vec<_> = diff.iter().filter(|l| !matches!(l, gantry_domain::rollout::DiffLine::Same(_))).collect();
    assert!(
        changed.iter().any(|l| matches!(l, gantry_domain::rollout::DiffLine::Removed(t) if t.contains("llm:2"))),
        "{changed:?}"
    );
    let unknown = w
        .state
        .rollback_deployment(
            &w.alice,
            "a",
            "vision",
            name,
            &RollbackRequest { to_revision: "9".into(), version: String::new() },
        )
        .await;
    assert_eq!(unknown.unwrap_err().kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn concurrent_scales_conflict_instead_of_overwriting() {
    let w = world().await;
    let name = "llm-conflict";
    w.state.launch_deployment(&w.alice, &launch("a", name, "0", "", "1")).await.unwrap();
    let seen = deployments("a").await.get(name).await.unwrap().metadata.generation.unwrap().to_string();
    let first = ScaleRequest { replicas: "2".into(), version: seen.clone() };
    let second = ScaleRequest { replicas: "5".into(), version: seen };
    w.state.scale_deployment(&w.alice, "a", "vision", name, &first).await.unwrap();
    let error = w.state.scale_deployment(&w.dana, "a", "vision", name, &second).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);
    assert!(
        error.detail.as_deref().unwrap_or("").contains("replicas 2"),
        "the conflict shows the current state: {error:?}"
    );
    assert_eq!(spec_replicas("a", name).await, 2, "the second change did not overwrite the first");
}

#[tokio::test]
async fn other_roles_are_refused_and_nothing_changes() {
    let w = world().await;
    let name = "llm-guarded";
    w.state.launch_deployment(&w.alice, &launch("a", name, "0", "", "1")).await.unwrap();
    let scale = ScaleRequest { replicas: "4".into(), version: String::new() };
    for (who, caller) in [("viewer", &w.bob), ("other team's deployer", &w.carol)] {
        let error = w.state.scale_deployment(caller, "a", "vision", name, &scale).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Forbidden, "{who}");
        let error = w
            .state
            .delete_deployment(
                caller,
                "a",
                "vision",
                name,
                &DeleteRequest { confirm: name.into(), version: String::new() },
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Forbidden, "{who}");
    }
    assert_eq!(
        w.state.launch_deployment(&w.carol, &launch("a", "sneaky", "0", "", "1")).await.unwrap_err().kind,
        ErrorKind::Forbidden
    );
    assert_eq!(spec_replicas("a", name).await, 1);
    assert!(deployments("a").await.get_opt("sneaky").await.unwrap().is_none());
    let denied = audit_of(&w, "deployment.scale").await;
    assert!(denied.iter().filter(|r| r.result == AuditResult::Denied).count() >= 2, "refusals are audited");
    // Reading is still allowed for the viewer.
    assert!(w.state.deployment_history(&w.bob, "a", "vision", name).await.is_ok());
    assert_eq!(w.state.deployment_history(&w.carol, "a", "vision", name).await.unwrap_err().kind, ErrorKind::Forbidden);
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_creates_nothing() {
    let w = world().await;
    let cases = [
        (LaunchDeploymentInput { name: "Not_A_Name".into(), ..launch("a", "x", "0", "", "1") }, "name"),
        (launch("a", "neg-replicas", "0", "", "-1"), "replicas"),
        (launch("a", "too-many", "0", "", "11"), "replicas"),
        (launch("a", "half-gpu", "0.5", "", "1"), "gpus"),
        (LaunchDeploymentInput { image: " ".into(), ..launch("a", "no-image", "0", "", "1") }, "image"),
    ];
    for (input, field) in cases {
        let error = w.state.launch_deployment(&w.alice, &input).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Invalid, "{field}");
        assert!(error.fields.iter().any(|f| f.field == field), "{field}: {error:?}");
    }
    let outside = LaunchDeploymentInput { namespace: "nlp".into(), ..launch("a", "outside", "0", "", "1") };
    assert_eq!(w.state.launch_deployment(&w.alice, &outside).await.unwrap_err().kind, ErrorKind::Forbidden);
    let names: Vec<String> = deployments("a")
        .await
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    for name in ["neg-replicas", "too-many", "half-gpu", "no-image", "outside"] {
        assert!(!names.contains(&name.to_string()), "{name} was created");
    }
}

#[tokio::test]
async fn a_half_failed_launch_is_undone() {
    let w = world().await;
    // A quota of zero Services makes the second object of the launch fail.
    let client = bed().cluster("b").unwrap().client().await.unwrap();
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": { "name": "no-services", "namespace": "nlp" },
        "spec": { "hard": { "count/services": "0" } }
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(client.clone(), "nlp").create(&PostParams::default(), &quota).await.unwrap();
    w.state
        .store()
        .map_namespace("b", "nlp", w.state.store().team_by_name("nlp").await.unwrap().unwrap().id)
        .await
        .unwrap();
    let input = LaunchDeploymentInput { namespace: "nlp".into(), ..launch("b", "half-done", "0", "", "1") };
    tokio::time::sleep(Duration::from_secs(1)).await; // the quota controller computes usage first
    let error = w.state.launch_deployment(&w.carol, &input).await.unwrap_err();
    assert!(error.message.contains("nothing was left behind"), "{error:?}");
    let left = Api::<Deployment>::namespaced(client, "nlp").get_opt("half-done").await.unwrap();
    assert!(left.is_none_or(|d| d.metadata.deletion_timestamp.is_some()), "the Deployment was removed again");
    let audit = audit_of(&w, "deployment.launch").await;
    let record =
        audit.iter().find(|r| r.object.as_deref() == Some("deployment/half-done")).expect("the launch is audited");
    assert_eq!(record.result, AuditResult::Failed);
    assert!(
        record.detail.as_deref().is_some_and(|d| d.contains("nothing was left behind")),
        "it says it was undone: {record:?}"
    );
}

#[tokio::test]
async fn a_launch_that_cannot_fit_is_reported_as_waiting_with_the_reason() {
    let w = world().await;
    let preview = w.state.preview_fit(&w.alice, "a", "vision", Some("NVIDIA-H100-80GB-HBM3"), 16, 1).await.unwrap();
    assert!(!preview.fits);
    assert!(preview.summary.starts_with("Would wait"), "{}", preview.summary);
    w.state.launch_deployment(&w.alice, &launch("a", "llm-huge", "16", "NVIDIA-H100-80GB-HBM3", "1")).await.unwrap();
    let row = eventually("the rollout reports the scheduler's reason", 60, || async {
        let (row, _, _) = w.state.deployment(&w.alice, "a", "vision", "llm-huge").await.ok()?;
        match &row.rollout {
            gantry_domain::view::RolloutState::Failed(m) if m.contains("Insufficient nvidia.com/gpu") => Some(row),
            _ => None,
        }
    })
    .await;
    assert_eq!(row.ready, 0);
}

#[tokio::test]
async fn promotion_copies_image_and_version_and_prod_needs_a_team_admin() {
    let w = world().await;
    let name = "llm-promote";
    w.state.launch_deployment(&w.alice, &launch("a", name, "0", "", "1")).await.unwrap();
    let update =
        UpdateDeploymentInput { image: "ghcr.io/acme/llm:7".into(), model_version: "v7".into(), ..Default::default() };
    w.state.update_deployment(&w.alice, "a", "vision", name, &update).await.unwrap();
    let refused = w.state.promote_deployment(&w.alice, "a", "vision", name, None).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Forbidden, "prod is protected");
    assert!(deployments("b").await.get_opt(name).await.unwrap().is_none());
    let outcome = w.state.promote_deployment(&w.dana, "a", "vision", name, None).await.unwrap();
    assert_eq!(outcome.to, "prod (b/vision)");
    let promoted = deployments("b").await.get(name).await.unwrap();
    let template = promoted.spec.unwrap().template;
    assert_eq!(template.spec.unwrap().containers[0].image.as_deref(), Some("ghcr.io/acme/llm:7"));
    assert_eq!(template.metadata.unwrap().labels.unwrap()["gantry.dev/model-version"], "v7");
    let audit = audit_of(&w, "deployment.promote").await;
    assert!(
        audit.iter().any(|r| r.actor == "dana" && r.result == AuditResult::Ok && r.cluster.as_deref() == Some("b"))
    );
    assert!(audit.iter().any(|r| r.actor == "alice" && r.result == AuditResult::Denied));
    // Promoting again updates the existing prod deployment.
    let again = w.state.promote_deployment(&w.admin, "a", "vision", name, None).await.unwrap();
    assert!(again.before.is_some());
}

#[tokio::test]
async fn a_job_runs_to_success_and_a_cancelled_one_leaves_no_pods() {
    let w = world().await;
    let job = |name: &str| LaunchJobInput {
        cluster: "a".into(),
        namespace: "vision".into(),
        name: name.into(),
        image: "ghcr.io/acme/trainer:1".into(),
        command: "python train.py".into(),
        gpus: "1".into(),
        gpu_model: "NVIDIA-A100-SXM4-80GB".into(),
        ..Default::default()
    };
    w.state.launch_job(&w.alice, &job("train-ok")).await.unwrap();
    let client = bed().cluster("a").unwrap().client().await.unwrap();
    let jobs = Api::<Job>::namespaced(client.clone(), "vision");
    eventually("the job succeeds", 60, || async {
        let status = jobs.get("train-ok").await.ok()?.status?;
        (status.succeeded == Some(1)).then_some(())
    })
    .await;

    let long = LaunchJobInput { active_deadline_seconds: "3600".into(), ..job("train-cancel") };
    w.state.launch_job(&w.alice, &long).await.unwrap();
    let pods = Api::<Pod>::namespaced(client, "vision");
    let selector = ListParams::default().labels("batch.kubernetes.io/job-name=train-cancel");
    eventually("the job has a pod", 30, || async {
        (!pods.list(&selector).await.unwrap().items.is_empty()).then_some(())
    })
    .await;
    assert_eq!(w.state.cancel_job(&w.bob, "a", "vision", "train-cancel").await.unwrap_err().kind, ErrorKind::Forbidden);
    w.state.cancel_job(&w.alice, "a", "vision", "train-cancel").await.unwrap();
    eventually("the job and its pods are gone", 60, || async {
        let gone = jobs.get_opt("train-cancel").await.unwrap().is_none()
            && pods.list(&selector).await.unwrap().items.is_empty();
        gone.then_some(())
    })
    .await;
}
