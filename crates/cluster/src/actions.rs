//! The changes Gantry makes to clusters, done the way kubectl does them so
//! every other tool sees a consistent cluster. Each one is guarded by a
//! resourceVersion precondition: a concurrent change makes it fail with
//! [`ActionError::Conflict`] instead of being overwritten.
//!
//! Authorisation and audit happen in the caller (the service layer); this
//! module only talks to Kubernetes. Namespaces and names arrive as checked
//! types ([`LabelName`], [`KubeName`]): they travel inside API paths, where a
//! `?` or `/` would change what the request asks for.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{AsyncBufReadExt, Stream, StreamExt, TryStreamExt};
use gantry_domain::manifest::{
    self, Autoscale, DeploymentSpec, DeploymentUpdate, FIELD_MANAGER, JobKind, JobSpec, MANAGED_BY, MANAGED_BY_LABEL,
};
use gantry_domain::rollout::{self, REVISION_ANNOTATION, ReplicaSetRevision, RollbackError};
use gantry_domain::validate::{KubeName, LabelName};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use serde_json::Value;

use crate::hub::{ClusterCache, one_line};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Someone else changed the object first. `current` describes it now.
    #[error("{message}")]
    Conflict { message: String, current: String },
    #[error("{0}")]
    Invalid(String),
    /// The cluster refused (for example its own RBAC or a quota).
    #[error("the cluster refused: {0}")]
    Refused(String),
    #[error("the cluster is unreachable: {0}")]
    Unavailable(String),
}

pub type ActionResult<T> = Result<T, ActionError>;

fn describe(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind} {namespace}/{name}")
}

/// Maps a kube error to what a user can act on.
fn map_error(error: kube::Error, what: &str) -> ActionError {
    match error {
        kube::Error::Api(status) => match status.code {
            404 => ActionError::NotFound(what.to_string()),
            409 if status.reason == "AlreadyExists" => ActionError::AlreadyExists(what.to_string()),
            409 => {
                ActionError::Conflict { message: format!("{what} was changed by someone else"), current: String::new() }
            }
            400 | 422 => ActionError::Invalid(status.message),
            403 => ActionError::Refused(status.message),
            _ => ActionError::Unavailable(status.message),
        },
        other => ActionError::Unavailable(one_line(&other)),
    }
}

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

fn json_patch(ops: Value) -> ActionResult<json_patch::Patch> {
    serde_json::from_value(ops).map_err(|e| ActionError::Invalid(format!("internal patch error: {e}")))
}

/// What a launch created, for the audit log and the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launched {
    pub objects: Vec<String>,
}

/// Creates the Deployment, its Service and (when asked) its autoscaler with
/// server-side apply. If a later object fails, the earlier ones are removed
/// again so nothing is left half-created.
pub async fn launch_deployment(
    cluster: &ClusterCache,
    spec: &DeploymentSpec,
    team: Option<&str>,
    actor: &str,
) -> ActionResult<Launched> {
    let ns = spec.namespace.as_str();
    let name = spec.name.as_str();
    let deployments: Api<Deployment> = cluster.api(ns);
    let services: Api<Service> = cluster.api(ns);
    let autoscalers: Api<HorizontalPodAutoscaler> = cluster.api(ns);
    let what = describe("deployment", ns, name);
    // Server-side apply would update an existing object; a launch must not.
    match deployments.get_opt(name).await {
        Ok(Some(_)) => return Err(ActionError::AlreadyExists(what)),
        Ok(None) => {}
        Err(e) => return Err(map_error(e, &format!("namespace {ns}"))),
    }
    if services.get_opt(name).await.map_err(|e| map_error(e, &what))?.is_some() {
        return Err(ActionError::AlreadyExists(describe("service", ns, name)));
    }
    let apply = PatchParams::apply(FIELD_MANAGER);
    deployments
        .patch(name, &apply, &Patch::Apply(spec.deployment(team, actor)))
        .await
        .map_err(|e| map_error(e, &what))?;
    let mut created = vec![format!("deployment/{name}")];
    let rest = async {
        services
            .patch(name, &apply, &Patch::Apply(spec.service(team)))
            .await
            .map_err(|e| map_error(e, &describe("service", ns, name)))?;
        created.push(format!("service/{name}"));
        if let Some(hpa) = spec.autoscaler(team) {
            autoscalers
                .patch(name, &apply, &Patch::Apply(hpa))
                .await
                .map_err(|e| map_error(e, &describe("autoscaler", ns, name)))?;
            created.push(format!("horizontalpodautoscaler/{name}"));
        }
        Ok::<(), ActionError>(())
    }
    .await;
    match rest {
        Ok(()) => Ok(Launched { objects: created }),
        Err(error) => {
            let mut undone = Vec::new();
            if created.iter().any(|o| o.starts_with("service/"))
                && services.delete(name, &DeleteParams::default()).await.is_ok()
            {
                undone.push("service");
            }
            let cleanup = deployments.delete(name, &DeleteParams::foreground()).await;
            if cleanup.is_ok() {
                undone.push("deployment");
            }
            let left = if cleanup.is_ok() {
                "nothing was left behind".to_string()
            } else {
                format!("the deployment {name} still exists and must be deleted")
            };
            Err(match error {
                ActionError::Invalid(m) => ActionError::Invalid(format!("{m} (launch undone: {left})")),
                ActionError::Refused(m) => ActionError::Refused(format!("{m} (launch undone: {left})")),
                other => {
                    ActionError::Unavailable(format!("{other} (launch undone: {left}; removed {})", undone.join(", ")))
                }
            })
        }
    }
}

async fn current_deployment(cluster: &ClusterCache, ns: &str, name: &str) -> ActionResult<Deployment> {
    let api: Api<Deployment> = cluster.api(ns);
    api.get(name).await.map_err(|e| map_error(e, &describe("deployment", ns, name)))
}

fn replicas_of(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn state_line(d: &Deployment) -> String {
    let revision =
        d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)).cloned().unwrap_or_default();
    format!("replicas {}, image {}, revision {}", replicas_of(d), image_of(d), revision)
}

/// Refuses a change whose author saw an older spec. The generation only
/// moves when the spec changes, unlike resourceVersion, which every status
/// update of the controller bumps.
fn check_expected(d: &Deployment, expected: Option<i64>, what: &str) -> ActionResult<()> {
    let current = d.metadata.generation.unwrap_or(0);
    match expected {
        Some(seen) if seen != current => Err(ActionError::Conflict {
            message: format!(
                "{what} was changed by someone else since you loaded it; review its current state and try again"
            ),
            current: state_line(d),
        }),
        _ => Ok(()),
    }
}

/// How often a write is retried when only the status moved underneath it.
const WRITE_ATTEMPTS: usize = 5;

/// Reads the deployment, checks the expected generation, and runs `write`
/// with it. The write is guarded by the exact resourceVersion it read; when
/// that fails because the controller updated the status meanwhile, it reads
/// again and retries, but a change to the spec is always a conflict.
async fn guarded<T, F, Fut>(
    cluster: &ClusterCache,
    ns: &str,
    name: &str,
    expected: Option<i64>,
    mut write: F,
) -> ActionResult<T>
where
    F: FnMut(Deployment) -> Fut,
    Fut: std::future::Future<Output = ActionResult<T>>,
{
    let what = describe("deployment", ns, name);
    let mut seen_generation = expected;
    for attempt in 0..WRITE_ATTEMPTS {
        if attempt > 0 {
            // Let a burst of status updates (a rollout in progress) pass.
            tokio::time::sleep(Duration::from_millis(25 * attempt as u64)).await;
        }
        let d = current_deployment(cluster, ns, name).await?;
        check_expected(&d, seen_generation, &what)?;
        seen_generation = d.metadata.generation;
        match write(d).await {
            Err(ActionError::Conflict { .. }) => continue,
            other => return other,
        }
    }
    let current = current_deployment(cluster, ns, name).await.map(|d| state_line(&d)).unwrap_or_default();
    Err(ActionError::Conflict { message: format!("{what} kept changing; try again"), current })
}

/// Sets replicas through the scale subresource. Returns (before, after).
pub async fn scale(
    cluster: &ClusterCache,
    ns: &LabelName,
    name: &KubeName,
    replicas: i32,
    expected: Option<i64>,
) -> ActionResult<(i32, i32)> {
    let (ns, name) = (ns.as_str(), name.as_str());
    let what = describe("deployment", ns, name);
    let api: Api<Deployment> = cluster.api(ns);
    guarded(cluster, ns, name, expected, |d| {
        let (api, what) = (api.clone(), what.clone());
        async move {
            let before = replicas_of(&d);
            let request = Scale {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(ns.to_string()),
                    resource_version: d.metadata.resource_version.clone(),
                    ..Default::default()
                },
                spec: Some(ScaleSpec { replicas: Some(replicas) }),
                status: None,
            };
            api.replace_scale(name, &PostParams::default(), &request).await.map_err(|e| map_error(e, &what))?;
            Ok((before, replicas))
        }
    })
    .await
}
/// Creates or updates the deployment's autoscaler.
pub async fn set_autoscaler(
    cluster: &ClusterCache,
    ns: &LabelName,
    name: &KubeName,
    autoscale: &Autoscale,
) -> ActionResult<Option<String>> {
    let (ns, name) = (ns.as_str(), name.as_str());
    let what = describe("deployment", ns, name);
    let d = current_deployment(cluster, ns, name).await?;
    let api: Api<HorizontalPodAutoscaler> = cluster.api(ns);
    let before = api
        .get_opt(name)
        .await
        .map_err(|e| map_error(e, &what))?
        .map(|h| format!("autoscale {}..{}", h.spec.min_replicas.unwrap_or(1), h.spec.max_replicas));
    let labels: BTreeMap<String, String> = d.metadata.labels.clone().unwrap_or_default();
    let hpa = manifest::hpa(ns, name, autoscale, &labels);
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(hpa))
        .await
        .map_err(|e| map_error(e, &what))?;
    Ok(before)
}

pub async fn remove_autoscaler(cluster: &ClusterCache, ns: &LabelName, name: &KubeName) -> ActionResult<()> {
    let (ns, name) = (ns.as_str(), name.as_str());
    let api: Api<HorizontalPodAutoscaler> = cluster.api(ns);
    api.delete(name, &DeleteParams::default())
        .await
        .map(|_| ())
        .map_err(|e| map_error(e, &describe("autoscaler", ns, name)))
}

/// Changes image, model version or surge settings: a rolling update.
pub async fn update(
    cluster: &ClusterCache,
    ns: &LabelName,
    name: &KubeName,
    change: &DeploymentUpdate,
    expected: Option<i64>,
    actor: &str,
) -> ActionResult<(String, String)> {
    update_named(cluster, ns.as_str(), name.as_str(), change, expected, actor).await
}

async fn update_named(
    cluster: &ClusterCache,
    ns: &str,
    name: &str,
    change: &DeploymentUpdate,
    expected: Option<i64>,
    actor: &str,
) -> ActionResult<(String, String)> {
    let what = describe("deployment", ns, name);
    let api: Api<Deployment> = cluster.api(ns);
    guarded(cluster, ns, name, expected, |d| {
        let (api, what) = (api.clone(), what.clone());
        async move {
            let version = d.metadata.resource_version.clone().unwrap_or_default();
            let patch = json_patch(change.patch(&to_value(&d), &version, actor))?;
            let after = api
                .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                .await
                .map_err(|e| map_error(e, &what))?;
            Ok((state_line(&d), state_line(&after)))
        }
    })
    .await
}

/// The deployment's revisions, newest first, read from its ReplicaSets.
pub async fn history(
    cluster: &ClusterCache,
    ns: &LabelName,
    name: &KubeName,
) -> ActionResult<(Deployment, Vec<ReplicaSetRevision>)> {
    let (ns, name) = (ns.as_str(), name.as_str());
    let d = current_deployment(cluster, ns, name).await?;
    let revisions = revisions_of(cluster, ns, name, &d).await?;
    Ok((d, revisions))
}

/// The revisions of a deployment already read: its ReplicaSets, newest first.
async fn revisions_of(
    cluster: &ClusterCache,
    ns: &str,
    name: &str,
    d: &Deployment,
) -> ActionResult<Vec<ReplicaSetRevision>> {
    Ok(revisions_in(&replica_sets(cluster, ns, name).await?, d))
}

/// Every ReplicaSet in the namespace (those of the deployment are picked by
/// owner uid once the deployment has been read).
async fn replica_sets(cluster: &ClusterCache, ns: &str, name: &str) -> ActionResult<Vec<ReplicaSet>> {
    let api: Api<ReplicaSet> = cluster.api(ns);
    let sets = api.list(&Default::default()).await.map_err(|e| map_error(e, &describe("deployment", ns, name)))?;
    Ok(sets.items)
}

fn revisions_in(sets: &[ReplicaSet], d: &Deployment) -> Vec<ReplicaSetRevision> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let revisions = sets
        .iter()
        .filter(|rs| rs.metadata.owner_references.as_ref().is_some_and(|o| o.iter().any(|r| r.uid == uid)))
        .filter_map(|rs| {
            let annotations = rs.metadata.annotations.clone().unwrap_or_default();
            let revision = rollout::parse_revision(annotations.get(REVISION_ANNOTATION).map(String::as_str))?;
            Some(ReplicaSetRevision {
                name: rs.metadata.name.clone().unwrap_or_default(),
                revision,
                created: rs.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
                annotations,
                template: rs.spec.as_ref().map(|s| to_value(&s.template)).unwrap_or(Value::Null),
                replicas: rs.status.as_ref().map_or(0, |s| s.replicas),
            })
        })
        .collect();
    rollout::sort_history(revisions)
}

/// The revision number the controller will give the next template change:
/// one more than the highest any ReplicaSet carries.
pub async fn next_revision(cluster: &ClusterCache, ns: &LabelName, name: &KubeName) -> ActionResult<i64> {
    let (d, revisions) = history(cluster, ns, name).await?;
    Ok(revision_after(&d, &revisions))
}

fn revision_after(d: &Deployment, revisions: &[ReplicaSetRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0).max(current_revision(d)) + 1
}

/// What a rollback did, in revision numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RolledBack {
    /// The revision that was current.
    pub from: i64,
    /// The revision whose template was restored.
    pub restored: i64,
    /// The number the controller gives the restored template.
    pub next: i64,
}

pub fn current_revision(d: &Deployment) -> i64 {
    rollout::parse_revision(
        d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)).map(String::as_str),
    )
    .unwrap_or(0)
}

pub fn template_of(d: &Deployment) -> Value {
    d.spec.as_ref().map(|s| to_value(&s.template)).unwrap_or(Value::Null)
}

/// `kubectl rollout undo`: copies the chosen revision's pod template into
/// the Deployment, so the controller makes it the next revision. Three
/// requests: the list of ReplicaSets, the read of the concurrency guard, and
/// a JSON patch that fails if the deployment changed since that read (the
/// list comes first to keep that window short: during a rollout the
/// controller rewrites the status several times a second).
pub async fn rollback(
    cluster: &ClusterCache,
    ns: &LabelName,
    name: &KubeName,
    to: Option<i64>,
    expected: Option<i64>,
) -> ActionResult<RolledBack> {
    let (ns, name) = (ns.as_str(), name.as_str());
    let what = describe("deployment", ns, name);
    let api: Api<Deployment> = cluster.api(ns);
    let sets = replica_sets(cluster, ns, name).await?;
    guarded(cluster, ns, name, expected, |d| {
        let (api, what, sets) = (api.clone(), what.clone(), &sets);
        async move {
            let revisions = revisions_in(sets, &d);
            let current = current_revision(&d);
            let source = rollout::rollback_source(&revisions, current, to).map_err(|e| match e {
                RollbackError::UnknownRevision(n) => ActionError::NotFound(format!("revision {n} of {what}")),
                other => ActionError::Invalid(other.to_string()),
            })?;
            if rollout::same_template(&template_of(&d), &source.template) {
                return Err(ActionError::Invalid(format!(
                    "the current template already matches revision {}",
                    source.revision
                )));
            }
            let annotations = d.metadata.annotations.clone().unwrap_or_default();
            let version = d.metadata.resource_version.clone().unwrap_or_default();
            let patch = json_patch(rollout::rollback_patch(source, &annotations, &version))?;
            api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                .await
                .map_err(|e| map_error(e, &what))?;
            Ok(RolledBack { from: current, restored: source.revision, next: revision_after(&d, &revisions) })
        }
    })
    .await
}

/// Deletes the deployment (and the Service and autoscaler Gantry made with it).
pub async fn delete_deployment(
    cluster: &ClusterCache,
    ns: &LabelName,
    name: &KubeName,
    expected: Option<i64>,
) -> ActionResult<String> {
    let (ns, name) = (ns.as_str(), name.as_str());
    let what = describe("deployment", ns, name);
    let api: Api<Deployment> = cluster.api(ns);
    let before = guarded(cluster, ns, name, expected, |d| {
        let (api, what) = (api.clone(), what.clone());
        async move {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: d.metadata.resource_version.clone(),
                    uid: d.metadata.uid.clone(),
                }),
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..Default::default()
            };
            api.delete(name, &params).await.map_err(|e| map_error(e, &what))?;
            Ok(state_line(&d))
        }
    })
    .await?;
    let managed = |meta: &ObjectMeta| {
        meta.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str) == Some(MANAGED_BY)
    };
    // What Gantry made with it goes too; one that cannot is named, not left behind in silence.
    let services: Api<Service> = cluster.api(ns);
    let service = async {
        match services.get_opt(name).await? {
            Some(service) if managed(&service.metadata) => {
                services.delete(name, &DeleteParams::default()).await.map(|_| ())
            }
            _ => Ok(()),
        }
    };
    let autoscalers: Api<HorizontalPodAutoscaler> = cluster.api(ns);
    let autoscaler = async {
        match autoscalers.get_opt(name).await? {
            Some(hpa) if managed(&hpa.metadata) => autoscalers.delete(name, &DeleteParams::default()).await.map(|_| ()),
            _ => Ok(()),
        }
    };
    let (service, autoscaler) = tokio::join!(service, autoscaler);
    let left: Vec<ActionError> = [("service", service), ("horizontalpodautoscaler", autoscaler)]
        .into_iter()
        .filter_map(|(kind, result)| result.err().map(|e| map_error(e, &describe(kind, ns, name))))
        .filter(|e| !matches!(e, ActionError::NotFound(_)))
        .collect();
    match left.first() {
        None => Ok(before),
        Some(first) => {
            let why: Vec<String> = left.iter().map(ToString::to_string).collect();
            let message = format!(
                "{what} was deleted, but not what Gantry made with it ({}); delete that by hand",
                why.join("; ")
            );
            Err(match first {
                ActionError::Refused(_) => ActionError::Refused(message),
                _ => ActionError::Unavailable(message),
            })
        }
    }
}

/// The deployment as JSON, for promotion and diffs.
pub async fn deployment_json(
    cluster: &ClusterCache,
    ns: &LabelName,
    name: &KubeName,
) -> ActionResult<Option<Deployment>> {
    let api: Api<Deployment> = cluster.api(ns.as_str());
    api.get_opt(name.as_str()).await.map_err(|e| map_error(e, &describe("deployment", ns.as_str(), name.as_str())))
}

/// Copies image and model version from `source` into the deployment of the
/// same name in the target namespace, creating it (like the source) when it
/// does not exist there yet. Returns (before, after) summaries.
pub async fn promote(
    source: &Deployment,
    target_cluster: &ClusterCache,
    target_ns: &LabelName,
    team: Option<&str>,
    actor: &str,
) -> ActionResult<(Option<String>, String)> {
    let target_ns = target_ns.as_str();
    let name = source.metadata.name.clone().unwrap_or_default();
    let what = describe("deployment", target_ns, &name);
    let image = image_of(source);
    let version = source
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(rollout::MODEL_VERSION_LABEL))
        .cloned()
        .unwrap_or_default();
    let api: Api<Deployment> = target_cluster.api(target_ns);
    match api.get_opt(&name).await.map_err(|e| map_error(e, &what))? {
        Some(_) => {
            let change = DeploymentUpdate {
                image: gantry_domain::validate::Image::parse(&image).ok(),
                model_version: (!version.is_empty()).then_some(version),
                max_surge: None,
                max_unavailable: None,
            };
            let (before, after) =
                update_named(target_cluster, target_ns, &name, &change, None, &format!("{actor} (promotion)")).await?;
            Ok((Some(before), after))
        }
        None => {
            let mut copy = Deployment {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(target_ns.to_string()),
                    labels: source.metadata.labels.clone(),
                    annotations: Some(BTreeMap::from([(
                        rollout::CHANGE_CAUSE_ANNOTATION.to_string(),
                        format!("gantry: promoted {image} by {actor}"),
                    )])),
                    ..Default::default()
                },
                spec: source.spec.clone(),
                status: None,
            };
            if let (Some(team), Some(labels)) = (team, copy.metadata.labels.as_mut()) {
                labels.insert(manifest::TEAM_LABEL.to_string(), team.to_string());
            }
            // Server-side apply needs the type fields the typed struct omits.
            let mut value = to_value(&copy);
            value["apiVersion"] = Value::from("apps/v1");
            value["kind"] = Value::from("Deployment");
            let created = api
                .patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(value))
                .await
                .map_err(|e| map_error(e, &what))?;
            Ok((None, state_line(&created)))
        }
    }
}

pub async fn launch_job(cluster: &ClusterCache, spec: &JobSpec, team: Option<&str>, actor: &str) -> ActionResult<()> {
    match spec.kind {
        JobKind::Batch => launch_batch_job(cluster, spec, team, actor).await,
        JobKind::PyTorch => launch_pytorch_job(cluster, spec, team, actor).await,
    }
}

/// Creates a Kubeflow PyTorchJob, in a cluster whose training operator serves them.
async fn launch_pytorch_job(
    cluster: &ClusterCache,
    spec: &JobSpec,
    team: Option<&str>,
    actor: &str,
) -> ActionResult<()> {
    use crate::training::TrainingKind;
    let ns = spec.namespace.as_str();
    let what = describe("pytorchjob", ns, spec.name.as_str());
    match crate::hub::serves_training_kind(cluster.client(), TrainingKind::PyTorchJob).await {
        Some(true) => {}
        Some(false) => {
            return Err(ActionError::Invalid(format!(
                "cluster {} has no Kubeflow training operator: it does not serve PyTorchJobs (kubeflow.org/v1)",
                cluster.name
            )));
        }
        None => return Err(ActionError::Unavailable(format!("could not ask cluster {} what it serves", cluster.name))),
    }
    let object: kube::api::DynamicObject =
        serde_json::from_value(spec.object(team, actor)).map_err(|e| ActionError::Invalid(e.to_string()))?;
    cluster
        .training_api(TrainingKind::PyTorchJob, ns)
        .create(&PostParams { field_manager: Some(FIELD_MANAGER.to_string()), ..Default::default() }, &object)
        .await
        .map(|_| ())
        .map_err(|e| map_error(e, &what))
}

async fn launch_batch_job(cluster: &ClusterCache, spec: &JobSpec, team: Option<&str>, actor: &str) -> ActionResult<()> {
    let ns = spec.namespace.as_str();
    let what = describe("job", ns, spec.name.as_str());
    let job: Job = serde_json::from_value(spec.job(team, actor)).map_err(|e| ActionError::Invalid(e.to_string()))?;
    let api: Api<Job> = cluster.api(ns);
    api.create(&PostParams { field_manager: Some(FIELD_MANAGER.to_string()), ..Default::default() }, &job)
        .await
        .map(|_| ())
        .map_err(|e| map_error(e, &what))
}

/// Deletes a job with foreground propagation, so its pods go first.
pub async fn cancel_job(cluster: &ClusterCache, ns: &LabelName, name: &KubeName) -> ActionResult<String> {
    match cluster.training_kind_of(ns.as_str(), name.as_str()) {
        Some(kind) if kind.read_only() => Err(ActionError::Invalid(format!(
            "{} {}/{} is listed read-only: Gantry does not run Kubeflow Trainer's {}s",
            kind.kind(),
            ns.as_str(),
            name.as_str(),
            kind.kind()
        ))),
        Some(kind) => cancel_training_job(cluster, kind, ns.as_str(), name.as_str()).await,
        None => cancel_batch_job(cluster, ns.as_str(), name.as_str()).await,
    }
}

/// Deletes a training operator's job (PyTorchJob, TFJob) and, in the
/// foreground, the pods and Services the operator made for it. Returns its
/// pods' counts before.
async fn cancel_training_job(
    cluster: &ClusterCache,
    kind: crate::training::TrainingKind,
    ns: &str,
    name: &str,
) -> ActionResult<String> {
    let what = describe(&kind.kind().to_lowercase(), ns, name);
    let api = cluster.training_api(kind, ns);
    let job = api.get(name).await.map_err(|e| map_error(e, &what))?;
    let summary = crate::training::of_object(kind, &job);
    let before = summary
        .roles
        .iter()
        .map(|r| format!("{} {} active, {} succeeded, {} failed", r.role, r.active, r.succeeded, r.failed))
        .collect::<Vec<_>>()
        .join("; ");
    api.delete(name, &foreground_delete(job.metadata.uid.clone())).await.map_err(|e| map_error(e, &what))?;
    Ok(before)
}

/// Deletes the object with this uid (not a namesake made since), its
/// dependents (pods, Services) first.
fn foreground_delete(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: uid.map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
        ..Default::default()
    }
}

async fn cancel_batch_job(cluster: &ClusterCache, ns: &str, name: &str) -> ActionResult<String> {
    let what = describe("job", ns, name);
    let api: Api<Job> = cluster.api(ns);
    let job = api.get(name).await.map_err(|e| map_error(e, &what))?;
    let status = job.status.unwrap_or_default();
    let before = format!(
        "active {}, succeeded {}, failed {}",
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0)
    );
    api.delete(name, &foreground_delete(job.metadata.uid.clone())).await.map_err(|e| map_error(e, &what))?;
    Ok(before)
}

/// Creates or updates the ResourceQuota Gantry owns in a namespace. Returns
/// the previous hard GPU limit.
pub async fn set_gpu_quota(cluster: &ClusterCache, ns: &LabelName, hard_gpus: i64) -> ActionResult<Option<i64>> {
    let ns = ns.as_str();
    let what = describe("resourcequota", ns, manifest::QUOTA_NAME);
    let api: Api<ResourceQuota> = cluster.api(ns);
    let before = api
        .get_opt(manifest::QUOTA_NAME)
        .await
        .map_err(|e| map_error(e, &format!("namespace {ns}")))?
        .map(|q| crate::summary::quota(&q).gpus_hard)
        .unwrap_or(None);
    api.patch(
        manifest::QUOTA_NAME,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(manifest::gpu_quota(ns, hard_gpus)),
    )
    .await
    .map_err(|e| map_error(e, &what))?;
    Ok(before)
}

/// Log lines of a pod's container, following when asked. `limit_bytes`
/// bounds what is read in total.
pub async fn log_lines(
    cluster: &ClusterCache,
    ns: &LabelName,
    pod: &KubeName,
    container: Option<String>,
    follow: bool,
    tail_lines: i64,
    limit_bytes: i64,
) -> ActionResult<impl Stream<Item = Result<String, ActionError>> + use<>> {
    let (ns, pod) = (ns.as_str(), pod.as_str());
    let what = describe("pod", ns, pod);
    // A followed log stays open as long as the pod writes: no read timeout.
    let api: Api<Pod> = if follow { cluster.streaming_api(ns) } else { cluster.api(ns) };
    let params = LogParams {
        container,
        follow,
        tail_lines: Some(tail_lines),
        limit_bytes: Some(limit_bytes),
        timestamps: false,
        ..Default::default()
    };
    let reader = api.log_stream(pod, &params).await.map_err(|e| map_error(e, &what))?;
    Ok(reader.lines().map_err(|e| ActionError::Unavailable(e.to_string())).boxed())
}

/// Pods of a job, from the API (not the cache), to confirm a cancel.
pub async fn job_pods(cluster: &ClusterCache, ns: &LabelName, job: &KubeName) -> ActionResult<Vec<String>> {
    let (ns, job) = (ns.as_str(), job.as_str());
    let api: Api<Pod> = cluster.api(ns);
    let pods = api
        .list(&kube::api::ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .map_err(|e| map_error(e, &describe("job", ns, job)))?;
    Ok(pods.items.into_iter().filter_map(|p| p.metadata.name).collect())
}
