//! Distributed training jobs of the Kubeflow training operator (PyTorchJob,
//! TFJob, `kubeflow.org/v1`), read from their JSON as watched through the
//! dynamic API: a cluster may or may not have their CRDs, so they are not
//! typed into the client. Only what Gantry shows is kept.

use std::collections::BTreeMap;

use gantry_domain::gpu;
use gantry_domain::manifest::TEAM_LABEL;
use gantry_domain::view::{JobStatus, Millis};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Deserialize;

use gantry_domain::gpu::ContainerResources;

use crate::summary::{StatusCondition, container_resources, label, millis};

/// The distributed training kinds that Gantry lists: the training
/// operator's (`kubeflow.org/v1`), with the field their replica specs live
/// in, and Kubeflow Trainer v2's TrainJob (`trainer.kubeflow.org/v1alpha1`),
/// listed read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrainingKind {
    PyTorchJob,
    TfJob,
    TrainJob,
}

impl TrainingKind {
    pub const ALL: [TrainingKind; 3] = [TrainingKind::PyTorchJob, TrainingKind::TfJob, TrainingKind::TrainJob];

    pub fn group(self) -> &'static str {
        match self {
            TrainingKind::PyTorchJob | TrainingKind::TfJob => "kubeflow.org",
            TrainingKind::TrainJob => "trainer.kubeflow.org",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            TrainingKind::PyTorchJob | TrainingKind::TfJob => "v1",
            TrainingKind::TrainJob => "v1alpha1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            TrainingKind::PyTorchJob => "PyTorchJob",
            TrainingKind::TfJob => "TFJob",
            TrainingKind::TrainJob => "TrainJob",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            TrainingKind::PyTorchJob => "pytorchjobs",
            TrainingKind::TfJob => "tfjobs",
            TrainingKind::TrainJob => "trainjobs",
        }
    }

    /// Listed, not acted on: Gantry neither launches nor cancels TrainJobs.
    pub fn read_only(self) -> bool {
        self == TrainingKind::TrainJob
    }

    /// For the dynamic API.
    pub fn api_resource(self) -> kube::api::ApiResource {
        kube::api::ApiResource {
            group: self.group().into(),
            version: self.version().into(),
            api_version: format!("{}/{}", self.group(), self.version()),
            kind: self.kind().into(),
            plural: self.plural().into(),
        }
    }

    fn replica_specs_field(self) -> &'static str {
        match self {
            TrainingKind::PyTorchJob => "pytorchReplicaSpecs",
            TrainingKind::TfJob => "tfReplicaSpecs",
            TrainingKind::TrainJob => "trainer",
        }
    }
}

/// One role of a training job (Master, Worker, Chief, PS…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSummary {
    pub role: Box<str>,
    pub replicas: i32,
    pub gpus_per_pod: u32,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingJobSummary {
    pub kind: TrainingKind,
    pub name: Box<str>,
    pub team: Option<Box<str>>,
    pub status: JobStatus,
    /// The operator's own state: Created, Running, Restarting, Succeeded, Failed.
    pub state: Box<str>,
    /// The operator's words for the state (why it failed, for one).
    pub message: Option<Box<str>>,
    pub roles: Box<[RoleSummary]>,
    pub started: Option<Millis>,
    pub finished: Option<Millis>,
    pub created: Option<Millis>,
}

impl TrainingJobSummary {
    pub fn gpus(&self) -> i64 {
        self.roles.iter().map(|r| i64::from(r.replicas.max(0)) * i64::from(r.gpus_per_pod)).sum()
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ReplicaSpec {
    replicas: Option<i32>,
    template: PodTemplateSpec,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RunPolicy {
    suspend: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ReplicaStatus {
    active: Option<i32>,
    succeeded: Option<i32>,
    failed: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    conditions: Vec<StatusCondition>,
    replica_statuses: BTreeMap<String, ReplicaStatus>,
    start_time: Option<Time>,
    completion_time: Option<Time>,
}

/// Reads a watched object of `kind`.
pub fn of_object(kind: TrainingKind, object: &kube::api::DynamicObject) -> TrainingJobSummary {
    training_job(kind, &object.metadata, &object.data)
}

/// Reads a training job from its object's metadata and body (`spec`,
/// `status`). Fields it cannot read count as absent: a job written by a newer
/// operator still shows.
pub fn training_job(kind: TrainingKind, meta: &ObjectMeta, body: &serde_json::Value) -> TrainingJobSummary {
    if kind == TrainingKind::TrainJob {
        return train_job(meta, body);
    }
    let specs: BTreeMap<String, ReplicaSpec> = body
        .pointer(&format!("/spec/{}", kind.replica_specs_field()))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let run_policy: RunPolicy =
        body.pointer("/spec/runPolicy").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    let status: Status = body.get("status").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    let roles = specs
        .iter()
        .map(|(role, spec)| {
            let containers =
                spec.template.spec.as_ref().map(|s| container_resources(&s.containers)).unwrap_or_default();
            let counts = status.replica_statuses.get(role);
            RoleSummary {
                role: role.as_str().into(),
                replicas: spec.replicas.unwrap_or(1),
                gpus_per_pod: gpu::pod_request(&containers, &[], gpu::GPU_RESOURCE).ceil_whole().clamp(0, 1 << 20)
                    as u32,
                active: counts.and_then(|c| c.active).unwrap_or(0),
                succeeded: counts.and_then(|c| c.succeeded).unwrap_or(0),
                failed: counts.and_then(|c| c.failed).unwrap_or(0),
            }
        })
        .collect();
    let (status_now, state, message) = state_of(&status.conditions, run_policy.suspend == Some(true));
    let ended = |kind: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.kind == kind && c.status == "True")
            .and_then(|c| c.last_transition_time.clone())
    };
    TrainingJobSummary {
        kind,
        name: meta.name.as_deref().unwrap_or("").into(),
        team: label(meta, TEAM_LABEL).map(Into::into),
        status: status_now,
        state: state.into(),
        message: message.map(Into::into),
        roles,
        started: millis(&status.start_time),
        finished: millis(&status.completion_time).or_else(|| millis(&ended("Failed"))),
        created: millis(&meta.creation_timestamp),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Trainer {
    num_nodes: Option<i32>,
    resources_per_node: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ChildJobStatus {
    active: i32,
    succeeded: i32,
    failed: i32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct TrainJobStatus {
    conditions: Vec<StatusCondition>,
    jobs_status: Vec<ChildJobStatus>,
}

/// Reads Kubeflow Trainer's TrainJob: one role, "Node", of `numNodes` pods
/// with `resourcesPerNode` each (a runtime may add its own; only what the
/// TrainJob says is counted), its counts summed over the jobs its JobSet
/// runs; Complete, Failed and Suspended are its conditions, Running while any
/// pod is active, Created before.
fn train_job(meta: &ObjectMeta, body: &serde_json::Value) -> TrainingJobSummary {
    let trainer: Trainer =
        body.pointer("/spec/trainer").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    let suspended = body.pointer("/spec/suspend").and_then(serde_json::Value::as_bool) == Some(true);
    let status: TrainJobStatus =
        body.get("status").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    let resources = ContainerResources {
        requests: quantities(trainer.resources_per_node.as_ref().and_then(|r| r.requests.as_ref())),
        limits: quantities(trainer.resources_per_node.as_ref().and_then(|r| r.limits.as_ref())),
    };
    let sum = |f: fn(&ChildJobStatus) -> i32| status.jobs_status.iter().map(f).sum::<i32>();
    let role = RoleSummary {
        role: "Node".into(),
        replicas: trainer.num_nodes.unwrap_or(1),
        gpus_per_pod: gpu::pod_request(&[resources], &[], gpu::GPU_RESOURCE).ceil_whole().clamp(0, 1 << 20) as u32,
        active: sum(|j| j.active),
        succeeded: sum(|j| j.succeeded),
        failed: sum(|j| j.failed),
    };
    let holding = |kind: &str| status.conditions.iter().find(|c| c.kind == kind && c.status == "True");
    let words = |c: &StatusCondition| c.message.clone().or_else(|| c.reason.clone());
    let (status_now, state, message) = if let Some(c) = holding("Complete") {
        (JobStatus::Succeeded, "Succeeded", words(c))
    } else if let Some(c) = holding("Failed") {
        (JobStatus::Failed, "Failed", words(c))
    } else if suspended || holding("Suspended").is_some() {
        (JobStatus::Suspended, "Suspended", None)
    } else if role.active > 0 {
        (JobStatus::Running, "Running", None)
    } else {
        (JobStatus::Pending, "Created", None)
    };
    let ended = ["Complete", "Failed"].into_iter().find_map(holding).and_then(|c| millis(&c.last_transition_time));
    TrainingJobSummary {
        kind: TrainingKind::TrainJob,
        name: meta.name.as_deref().unwrap_or("").into(),
        team: label(meta, TEAM_LABEL).map(Into::into),
        status: status_now,
        state: state.into(),
        message: message.map(Into::into),
        roles: Box::new([role]),
        started: None,
        finished: ended,
        created: millis(&meta.creation_timestamp),
    }
}

fn quantities(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default()
}

/// The job's state from the operator's conditions: a finished one is
/// Succeeded or Failed whatever came before; otherwise the newest condition
/// that holds (Restarting after Running, say).
fn state_of(conditions: &[StatusCondition], suspended: bool) -> (JobStatus, &str, Option<String>) {
    let holding = |kind: &str| conditions.iter().find(|c| c.kind == kind && c.status == "True");
    let words = |c: &StatusCondition| c.message.clone().or_else(|| c.reason.clone());
    if let Some(c) = holding("Succeeded") {
        return (JobStatus::Succeeded, "Succeeded", words(c));
    }
    if let Some(c) = holding("Failed") {
        return (JobStatus::Failed, "Failed", words(c));
    }
    if suspended || holding("Suspended").is_some() {
        return (JobStatus::Suspended, "Suspended", None);
    }
    let newest = conditions
        .iter()
        .filter(|c| c.status == "True")
        .max_by_key(|c| c.last_transition_time.as_ref().map(|t| t.0.as_millisecond()));
    match newest.map(|c| c.kind.as_str()) {
        Some("Running") => (JobStatus::Running, "Running", None),
        Some("Restarting") => (JobStatus::Running, "Restarting", newest.and_then(words)),
        _ => (JobStatus::Pending, "Created", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta { name: Some(name.into()), namespace: Some("nlp".into()), ..Default::default() }
    }

    fn body(conditions: serde_json::Value) -> serde_json::Value {
        let template = |gpus: &str| {
            json!({ "spec": { "containers": [ { "name": "pytorch", "image": "i",
                "resources": { "limits": { "nvidia.com/gpu": gpus } } } ] } })
        };
        json!({
            "spec": { "pytorchReplicaSpecs": {
                "Master": { "replicas": 1, "template": template("2") },
                "Worker": { "replicas": 2, "template": template("2") }
            } },
            "status": {
                "conditions": conditions,
                "replicaStatuses": { "Master": { "active": 1 }, "Worker": { "active": 1, "failed": 1 } },
                "startTime": "2026-12-01T10:00:00Z"
            }
        })
    }

    #[test]
    fn roles_gpus_and_counts_come_from_the_spec_and_the_status() {
        let conditions = json!([
            { "type": "Created", "status": "True", "reason": "PyTorchJobCreated", "lastTransitionTime": "2026-12-01T09:59:58Z" },
            { "type": "Running", "status": "True", "reason": "PyTorchJobRunning", "lastTransitionTime": "2026-12-01T10:00:00Z" }
        ]);
        let job = training_job(TrainingKind::PyTorchJob, &meta("ddp"), &body(conditions));
        assert_eq!((job.status, &*job.state), (JobStatus::Running, "Running"));
        let roles: Vec<(&str, i32, u32, i32, i32)> =
            job.roles.iter().map(|r| (&*r.role, r.replicas, r.gpus_per_pod, r.active, r.failed)).collect();
        assert_eq!(roles, [("Master", 1, 2, 1, 0), ("Worker", 2, 2, 1, 1)]);
        assert_eq!(job.gpus(), 6);
        assert_eq!(job.started, Some(1_796_119_200_000));
    }

    #[test]
    fn a_finished_job_is_succeeded_or_failed_with_the_operators_words() {
        let failed = json!([
            { "type": "Created", "status": "True", "lastTransitionTime": "2026-12-01T09:59:58Z" },
            { "type": "Running", "status": "False", "lastTransitionTime": "2026-12-01T10:01:00Z" },
            { "type": "Failed", "status": "True", "reason": "PyTorchJobFailed",
              "message": "PyTorchJob ddp is failed because 1 Worker replica(s) failed.",
              "lastTransitionTime": "2026-12-01T10:01:00Z" }
        ]);
        let job = training_job(TrainingKind::PyTorchJob, &meta("ddp"), &body(failed));
        assert_eq!((job.status, &*job.state), (JobStatus::Failed, "Failed"));
        assert_eq!(job.message.as_deref(), Some("PyTorchJob ddp is failed because 1 Worker replica(s) failed."));
        assert_eq!(job.finished, Some(1_796_119_260_000), "a failed job ends when it failed");
        let restarting = json!([
            { "type": "Running", "status": "False", "lastTransitionTime": "2026-12-01T10:00:00Z" },
            { "type": "Restarting", "status": "True", "reason": "PyTorchJobRestarting",
              "message": "worker restarting", "lastTransitionTime": "2026-12-01T10:02:00Z" }
        ]);
        let job = training_job(TrainingKind::PyTorchJob, &meta("ddp"), &body(restarting));
        assert_eq!(
            (job.status, &*job.state, job.message.as_deref()),
            (JobStatus::Running, "Restarting", Some("worker restarting"))
        );
        let created = training_job(TrainingKind::PyTorchJob, &meta("ddp"), &body(json!([])));
        assert_eq!((created.status, &*created.state), (JobStatus::Pending, "Created"));
    }

    #[test]
    fn a_train_job_is_one_role_of_nodes_with_its_gpus_and_the_jobsets_counts() {
        let body = json!({
            "spec": { "runtimeRef": { "name": "torch-distributed" },
                      "trainer": { "numNodes": 4, "resourcesPerNode": { "limits": { "nvidia.com/gpu": "8" } } } },
            "status": { "jobsStatus": [ { "name": "node", "active": 3, "ready": 3, "succeeded": 0, "failed": 0, "suspended": 0 } ] }
        });
        let job = training_job(TrainingKind::TrainJob, &meta("sft"), &body);
        assert_eq!((job.status, &*job.state, job.gpus()), (JobStatus::Running, "Running", 32));
        assert_eq!((&*job.roles[0].role, job.roles[0].replicas, job.roles[0].active), ("Node", 4, 3));
        let done = json!({ "spec": { "trainer": {} }, "status": { "conditions": [
            { "type": "Complete", "status": "True", "reason": "JobsCompleted", "message": "jobset completed",
              "lastTransitionTime": "2026-12-01T10:00:00Z" } ] } });
        let job = training_job(TrainingKind::TrainJob, &meta("sft"), &done);
        assert_eq!(
            (job.status, job.message.as_deref(), job.roles[0].replicas),
            (JobStatus::Succeeded, Some("jobset completed"), 1)
        );
        assert_eq!(job.finished, Some(1_796_119_200_000));
        let new =
            training_job(TrainingKind::TrainJob, &meta("sft"), &json!({ "spec": { "trainer": { "numNodes": 2 } } }));
        assert_eq!((new.status, &*new.state), (JobStatus::Pending, "Created"));
        assert!(TrainingKind::TrainJob.read_only() && !TrainingKind::PyTorchJob.read_only());
    }

    #[test]
    fn an_object_it_cannot_read_still_shows_by_name() {
        let job =
            training_job(TrainingKind::TfJob, &meta("odd"), &json!({ "spec": { "tfReplicaSpecs": 7 }, "status": "x" }));
        assert_eq!((&*job.name, job.roles.len(), job.status), ("odd", 0, JobStatus::Pending));
    }
}
