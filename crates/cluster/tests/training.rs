//! The training operator's jobs in the caches: a cluster with the Kubeflow
//! training operator (built and run by the testbed) has its PyTorchJobs
//! watched and summarised; one without it is watched as before, with no
//! error.

use std::sync::Arc;
use std::time::Duration;

use gantry_cluster::training::{TrainingJobSummary, TrainingKind};
use gantry_cluster::{Hub, Viewer, actions, queries};
use gantry_domain::validate::{KubeName, LabelName};
use gantry_domain::view::{JobStatus, ListQuery};
use gantry_testbed::fleet::{PyTorchJobSpec, TrainJobSpec};
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::training::{pytorch_job, pytorch_job_resource, train_job, train_job_resource};
use gantry_testbed::{Fleet, Testbed};
use kube::api::{Api, DynamicObject, PostParams};

fn bed() -> &'static Testbed {
    shared(|| Fleet::small("train").with_training_operator().with_train_job_crds().and(Fleet::small("plain")))
}

async fn hub() -> Arc<Hub> {
    let hub = Hub::new();
    for name in ["train", "plain"] {
        hub.connect(name, bed().cluster(name).unwrap().config().await.unwrap()).unwrap();
    }
    assert!(hub.wait_synced(Duration::from_secs(60)).await, "caches never synced");
    hub
}

fn job(hub: &Hub, name: &str) -> Option<TrainingJobSummary> {
    let cluster = hub.cluster("train")?;
    cluster.training_jobs[0].read(|jobs| jobs.values().find(|j| &*j.name == name).cloned())
}

#[tokio::test]
async fn a_pytorch_job_is_watched_with_its_roles_until_it_succeeds_or_fails() {
    let hub = hub().await;
    let client = bed().cluster("train").unwrap().client().await.unwrap();
    let api = Api::<DynamicObject>::namespaced_with(client, "nlp", &pytorch_job_resource());
    let mut ok = PyTorchJobSpec::new("ddp-ok", "nlp", 2);
    ok.gpus_per_worker = 2;
    ok.run_seconds = 6;
    let mut crash = PyTorchJobSpec::new("ddp-crash", "nlp", 2);
    crash.fail = true;
    for spec in [&ok, &crash] {
        let object: DynamicObject = serde_json::from_value(pytorch_job(spec)).unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
    }
    let running =
        eventually("ddp-ok runs", 60, || async { job(&hub, "ddp-ok").filter(|j| j.status == JobStatus::Running) })
            .await;
    let roles: Vec<(&str, i32, u32)> = running.roles.iter().map(|r| (&*r.role, r.replicas, r.gpus_per_pod)).collect();
    assert_eq!(roles, [("Master", 1, 2), ("Worker", 2, 2)]);
    assert_eq!(running.gpus(), 6);
    eventually("ddp-ok succeeds", 90, || async { job(&hub, "ddp-ok").filter(|j| j.status == JobStatus::Succeeded) })
        .await;
    let failed = eventually("ddp-crash fails", 90, || async {
        job(&hub, "ddp-crash").filter(|j| j.status == JobStatus::Failed)
    })
    .await;
    assert!(failed.message.as_deref().is_some_and(|m| m.contains("Worker replica(s) failed")), "{failed:?}");

    // Cancelled, it goes with its pods.
    let mut long = PyTorchJobSpec::new("ddp-long", "nlp", 1);
    long.run_seconds = 3600;
    let object: DynamicObject = serde_json::from_value(pytorch_job(&long)).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    eventually("ddp-long runs", 60, || async { job(&hub, "ddp-long").filter(|j| j.status == JobStatus::Running) })
        .await;
    let cluster = hub.cluster("train").unwrap();
    let (ns, name) = (LabelName::parse("namespace", "nlp").unwrap(), KubeName::parse("name", "ddp-long").unwrap());
    let before = actions::cancel_job(&cluster, &ns, &name).await.unwrap();
    assert!(before.contains("Master 1 active"), "{before}");
    eventually("ddp-long and its pods are gone", 60, || async {
        let pods = cluster.pods.read(|pods| pods.keys().filter(|k| k.name.starts_with("ddp-long-")).count());
        (job(&hub, "ddp-long").is_none() && pods == 0).then_some(())
    })
    .await;

    // Launched the way Gantry launches one, the operator takes it (a real PyTorchJob).
    let input = gantry_domain::manifest::LaunchJobInput {
        cluster: "train".into(),
        namespace: "nlp".into(),
        name: "ddp-launched".into(),
        image: "trainer:1".into(),
        gpus: "1".into(),
        parallelism: "2".into(),
        kind: "PyTorchJob".into(),
        ..Default::default()
    };
    let spec = input.validate(100).unwrap();
    actions::launch_job(&cluster, &spec, Some("nlp"), "deployer").await.unwrap();
    let launched = eventually("the launched job runs", 60, || async {
        job(&hub, "ddp-launched").filter(|j| j.status == JobStatus::Running)
    })
    .await;
    let roles: Vec<(&str, i32, u32)> = launched.roles.iter().map(|r| (&*r.role, r.replicas, r.gpus_per_pod)).collect();
    assert_eq!(roles, [("Master", 1, 1), ("Worker", 2, 1)]);
    // Where no operator serves PyTorchJobs, launching one says so and creates nothing.
    let plain_spec =
        gantry_domain::manifest::LaunchJobInput { cluster: "plain".into(), ..input }.validate(100).unwrap();
    let refused = actions::launch_job(&hub.cluster("plain").unwrap(), &plain_spec, None, "deployer").await.unwrap_err();
    assert!(refused.to_string().contains("no Kubeflow training operator"), "{refused}");

    // The cluster without the operator: nothing watched, nothing failing.
    let plain = hub.cluster("plain").unwrap();
    assert!(plain.training_jobs.iter().all(|c| c.is_empty()));
    assert_eq!(plain.status().message, None, "{:?}", plain.status());
}

/// Kubeflow Trainer's TrainJobs (its CRDs installed, its controller not run)
/// are listed beside the other jobs, read-only: Gantry refuses to cancel one.
#[tokio::test]
async fn a_train_job_is_listed_read_only_where_its_crd_is_installed() {
    let hub = hub().await;
    let client = bed().cluster("train").unwrap().client().await.unwrap();
    let api = Api::<DynamicObject>::namespaced_with(client, "nlp", &train_job_resource());
    let mut spec = TrainJobSpec::new("sft", "nlp", 2);
    spec.gpus_per_node = 4;
    let object: DynamicObject = serde_json::from_value(train_job(&spec)).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let query = ListQuery { cluster: Some("train".into()), q: Some("sft".into()), ..Default::default() };
    let row = eventually("the TrainJob is listed among the jobs", 60, || {
        let rows = queries::jobs(&hub, &Viewer::everything(), &query).items;
        async move { rows.into_iter().find(|j| j.name == "sft") }
    })
    .await;
    assert_eq!((row.kind.as_str(), row.state.as_deref(), row.gpus()), ("TrainJob", Some("Created"), 8), "{row:?}");
    assert!(!row.cancellable());
    let cluster = hub.cluster("train").unwrap();
    assert_eq!(cluster.training_kind_of("nlp", "sft"), Some(TrainingKind::TrainJob));
    let (ns, name) = (LabelName::parse("namespace", "nlp").unwrap(), KubeName::parse("name", "sft").unwrap());
    let refused = actions::cancel_job(&cluster, &ns, &name).await.unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
    assert!(api.get_opt("sft").await.unwrap().is_some(), "nothing was deleted");
    let plain = hub.cluster("plain").unwrap();
    assert!(plain.training_jobs[2].is_empty());
    assert_eq!(plain.status().message, None, "{:?}", plain.status());
}
