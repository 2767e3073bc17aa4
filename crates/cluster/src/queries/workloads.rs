//! The workload read models: deployments and jobs, listed or one at a time
//! with their pods and recent events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gantry_domain::health::{self, PodHealth, Trouble, WorkloadKind};
use gantry_domain::view::{
    AutoscalerView, DeploymentRow, EventRow, JobRow, ListQuery, Page, PodRow, ReplicaRole, RolloutState, now_ms,
};

use super::pod_lists::pods_where;
use super::{Viewer, tables, visible_clusters};
use crate::hub::{ClusterCache, Hub};
use crate::summary::OwnerKind;
use crate::training::TrainingJobSummary;

fn job_row(cluster: &str, namespace: &str, j: &crate::summary::JobSummary, viewer: &Viewer) -> JobRow {
    JobRow {
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        name: j.name.to_string(),
        team: viewer.team(cluster, namespace).or_else(|| j.team.as_deref().map(str::to_string)),
        status: j.status,
        gpus_per_pod: i64::from(j.gpus_per_pod),
        parallelism: j.parallelism,
        completions: j.completions,
        active: j.active,
        succeeded: j.succeeded,
        failed: j.failed,
        started: j.started,
        finished: j.finished,
        message: j.message.as_deref().map(str::to_string),
        kind: JobRow::PLAIN_KIND.to_string(),
        state: None,
        roles: Vec::new(),
        cost_so_far: None,
    }
}

/// A training operator's job as a row of the jobs list: its pods' counts
/// are the sums over its roles.
fn training_row(cluster: &str, namespace: &str, j: &TrainingJobSummary, viewer: &Viewer) -> JobRow {
    let sum = |count: fn(&crate::training::RoleSummary) -> i32| j.roles.iter().map(count).sum::<i32>();
    let pods = sum(|r| r.replicas);
    JobRow {
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        name: j.name.to_string(),
        team: viewer.team(cluster, namespace).or_else(|| j.team.as_deref().map(str::to_string)),
        status: j.status,
        gpus_per_pod: j.roles.iter().map(|r| i64::from(r.gpus_per_pod)).max().unwrap_or(0),
        parallelism: pods,
        completions: pods,
        active: sum(|r| r.active),
        succeeded: sum(|r| r.succeeded),
        failed: sum(|r| r.failed),
        started: j.started,
        finished: j.finished,
        message: j.message.as_deref().map(str::to_string),
        kind: j.kind.kind().to_string(),
        state: Some(j.state.to_string()),
        roles: j
            .roles
            .iter()
            .map(|r| ReplicaRole {
                role: r.role.to_string(),
                replicas: r.replicas,
                gpus_per_pod: i64::from(r.gpus_per_pod),
                active: r.active,
                succeeded: r.succeeded,
                failed: r.failed,
            })
            .collect(),
        cost_so_far: None,
    }
}

pub fn jobs(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<JobRow> {
    let status = tables::job_status(query);
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        cluster.jobs.read(|jobs| {
            for (key, job) in jobs {
                if viewer.sees(&cluster.name, &key.namespace)
                    && tables::job_matches(query, status, &cluster.name, &key.namespace, (job.status, &job.name))
                {
                    rows.push(job_row(&cluster.name, &key.namespace, job, viewer));
                }
            }
        });
        for cache in &cluster.training_jobs {
            cache.read(|jobs| {
                for (key, job) in jobs {
                    if viewer.sees(&cluster.name, &key.namespace)
                        && tables::job_matches(query, status, &cluster.name, &key.namespace, (job.status, &job.name))
                    {
                        rows.push(training_row(&cluster.name, &key.namespace, job, viewer));
                    }
                }
            });
        }
    }
    let now = crate::hub::now_ms();
    query.paginate(rows, |j, column| tables::job_key(j, column, now))
}

/// What a deployment row needs from the rest of a cluster's cache, gathered
/// in one pass over autoscalers, replica sets and pods for all the rows of a
/// list (not one pass per row: a list of 2,000 deployments stays linear).
#[derive(Default)]
struct RowContext {
    autoscalers: HashMap<(Arc<str>, Box<str>), AutoscalerView>,
    /// The scheduler's words for a deployment whose new pods cannot be placed.
    unschedulable: HashMap<(Arc<str>, Box<str>), String>,
    /// What is wrong with its pods (crash-looping, OOM-killed…), for those in trouble.
    troubles: HashMap<DeploymentId, Vec<Trouble>>,
}

impl RowContext {
    fn gather(
        cluster: &ClusterCache,
        viewer: &Viewer,
        deployments: &[(Arc<str>, crate::summary::DeploymentSummary)],
    ) -> Self {
        let wanted: HashSet<(Arc<str>, Box<str>)> =
            deployments.iter().map(|(namespace, d)| (namespace.clone(), d.name.clone())).collect();
        let autoscalers = cluster.autoscalers.read(|hpas| {
            hpas.iter()
                .filter_map(|(k, h)| {
                    let target = (k.namespace.clone(), h.target.clone());
                    wanted.contains(&target).then(|| {
                        let view = AutoscalerView {
                            min: h.min,
                            max: h.max,
                            target_cpu_percent: h.target_cpu_percent,
                            current: h.current,
                        };
                        (target, view)
                    })
                })
                .collect()
        });
        // A complete rollout is not stuck, whatever its pods say.
        let rolling: HashSet<(Arc<str>, Box<str>)> = deployments
            .iter()
            .filter(|(_, d)| d.rollout != RolloutState::Complete)
            .map(|(namespace, d)| (namespace.clone(), d.name.clone()))
            .collect();
        let mut unschedulable = HashMap::new();
        if !rolling.is_empty() {
            let owners: HashMap<(Arc<str>, Box<str>), Box<str>> = cluster.replica_sets.read(|sets| {
                sets.iter()
                    .filter_map(|(k, rs)| {
                        let deployment = (k.namespace.clone(), rs.deployment.clone()?);
                        rolling.contains(&deployment).then(|| ((k.namespace.clone(), rs.name.clone()), deployment.1))
                    })
                    .collect()
            });
            cluster.pods.read(|pods| {
                for (k, p) in pods {
                    let (Some(owner), Some(reason)) = (&p.owner, &p.unschedulable) else { continue };
                    if p.owner_kind != OwnerKind::ReplicaSet || !p.is_unscheduled() {
                        continue;
                    }
                    if let Some(deployment) = owners.get(&(k.namespace.clone(), owner.clone())) {
                        unschedulable
                            .entry((k.namespace.clone(), deployment.clone()))
                            .or_insert_with(|| reason.to_string());
                    }
                }
            });
        }
        RowContext { autoscalers, unschedulable, troubles: troubles_of(cluster, viewer, &wanted) }
    }
}

/// A deployment in one cluster: its namespace and name.
type DeploymentId = (Arc<str>, Box<str>);

/// The troubles of the wanted deployments' pods, from the few pods in
/// trouble (the rollout's own state is shown apart).
fn troubles_of(
    cluster: &ClusterCache,
    viewer: &Viewer,
    wanted: &HashSet<DeploymentId>,
) -> HashMap<DeploymentId, Vec<Trouble>> {
    let mut pods: HashMap<DeploymentId, Vec<(PodHealth, u32)>> = HashMap::new();
    for ((kind, namespace, name), health, restarts) in super::health::troubled_pods(cluster, viewer) {
        let id: DeploymentId = (namespace.into(), name.into());
        if kind == WorkloadKind::Deployment && wanted.contains(&id) {
            pods.entry(id).or_default().push((health, restarts));
        }
    }
    let now = now_ms();
    pods.into_iter()
        .filter_map(|(id, pods)| {
            let (troubles, _, _) = health::workload_health(pods.iter().map(|(h, r)| (h, *r)), None, now)?;
            Some((id, troubles))
        })
        .collect()
}

fn deployment_row(
    cluster: &ClusterCache,
    namespace: &Arc<str>,
    d: &crate::summary::DeploymentSummary,
    viewer: &Viewer,
    context: &RowContext,
) -> DeploymentRow {
    let id = (namespace.clone(), d.name.clone());
    // A rollout whose new pods cannot be scheduled is stuck even before its
    // progress deadline; say so with the scheduler's words.
    let rollout = match context.unschedulable.get(&id) {
        Some(reason) => RolloutState::Failed(format!("pods cannot be scheduled: {reason}")),
        None => d.rollout.clone(),
    };
    DeploymentRow {
        cluster: cluster.name.to_string(),
        namespace: namespace.to_string(),
        name: d.name.to_string(),
        team: viewer.team(&cluster.name, namespace).or_else(|| d.team.as_deref().map(str::to_string)),
        desired: d.desired,
        updated: d.updated,
        ready: d.ready,
        available: d.available,
        image: d.image.to_string(),
        model: d.model.as_deref().map(str::to_string),
        model_version: d.model_version.as_deref().map(str::to_string),
        gpus_per_replica: i64::from(d.gpus_per_replica),
        gpu_model: d.gpu_model.as_deref().map(str::to_string),
        revision: d.revision,
        managed_by_gantry: d.managed_by_gantry,
        version: d.generation,
        autoscaler: context.autoscalers.get(&id).cloned(),
        rollout,
        created: d.created,
        troubles: context.troubles.get(&id).cloned().unwrap_or_default(),
    }
}

/// Rows for the given deployments of one cluster.
fn deployment_rows(
    cluster: &ClusterCache,
    viewer: &Viewer,
    deployments: Vec<(Arc<str>, crate::summary::DeploymentSummary)>,
) -> Vec<DeploymentRow> {
    let context = RowContext::gather(cluster, viewer, &deployments);
    deployments.iter().map(|(namespace, d)| deployment_row(cluster, namespace, d, viewer, &context)).collect()
}

pub fn deployments(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<DeploymentRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        let matching = cluster.deployments.read(|ds| {
            ds.iter()
                .filter(|(k, d)| {
                    viewer.sees(&cluster.name, &k.namespace)
                        && tables::deployment_matches(query, &cluster.name, &k.namespace, d)
                })
                .map(|(k, d)| (k.namespace.clone(), d.clone()))
                .collect()
        });
        rows.extend(deployment_rows(&cluster, viewer, matching));
    }
    if let Some(status) = query.status_filter() {
        rows.retain(|d| tables::rollout_matches(status, &d.rollout));
    }
    query.paginate(rows, tables::deployment_key)
}

fn deployment_in(cluster: &ClusterCache, viewer: &Viewer, namespace: &str, name: &str) -> Option<DeploymentRow> {
    let key = crate::summary::Key { namespace: namespace.into(), name: name.into() };
    let summary = cluster.deployments.read(|ds| ds.get(&key).cloned())?;
    deployment_rows(cluster, viewer, vec![(key.namespace, summary)]).pop()
}

/// One deployment with its pods and recent events.
pub fn deployment(
    hub: &Hub,
    viewer: &Viewer,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Option<(DeploymentRow, Vec<PodRow>, Vec<EventRow>)> {
    if !viewer.sees(cluster, namespace) {
        return None;
    }
    let cluster = hub.cluster(cluster)?;
    let row = deployment_in(&cluster, viewer, namespace, name)?;
    let replica_sets: Vec<Box<str>> = cluster.replica_sets.read(|sets| {
        sets.iter()
            .filter(|(k, rs)| &*k.namespace == namespace && rs.deployment.as_deref() == Some(name))
            .map(|(_, rs)| rs.name.clone())
            .collect()
    });
    let pods = pods_where(&cluster, namespace, |p| {
        p.owner_kind == OwnerKind::ReplicaSet && p.owner.as_ref().is_some_and(|o| replica_sets.contains(o))
    });
    let mut objects: Vec<String> = vec![name.to_string()];
    objects.extend(replica_sets.iter().map(|r| r.to_string()));
    objects.extend(pods.iter().map(|p| p.name.clone()));
    let events = events_for(&cluster, namespace, &objects);
    Some((row, pods, events))
}

/// An event as the pages list it.
pub(super) fn event_row(e: &crate::summary::EventSummary) -> EventRow {
    EventRow {
        kind: if e.warning { "Warning".into() } else { "Normal".into() },
        reason: e.reason.to_string(),
        message: e.message.to_string(),
        count: e.count,
        last_seen: e.last_seen,
        object: format!("{}/{}", e.kind.to_lowercase(), e.object),
    }
}

fn events_for(cluster: &ClusterCache, namespace: &str, objects: &[String]) -> Vec<EventRow> {
    let mut rows: Vec<EventRow> = cluster.events.read(|events| {
        events
            .iter()
            .filter(|(k, e)| &*k.namespace == namespace && objects.iter().any(|o| **o == *e.object))
            .map(|(_, e)| event_row(e))
            .collect()
    });
    rows.sort_by_key(|r| std::cmp::Reverse(r.last_seen));
    rows.truncate(100);
    rows
}

/// One job with its pods and recent events.
pub fn job(
    hub: &Hub,
    viewer: &Viewer,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Option<(JobRow, Vec<PodRow>, Vec<EventRow>)> {
    if !viewer.sees(cluster, namespace) {
        return None;
    }
    let cluster = hub.cluster(cluster)?;
    let row = cluster
        .jobs
        .read(|jobs| {
            jobs.iter()
                .find(|(k, _)| &*k.namespace == namespace && &*k.name == name)
                .map(|(_, j)| job_row(&cluster.name, namespace, j, viewer))
        })
        .or_else(|| {
            cluster.training_jobs.iter().find_map(|cache| {
                cache.read(|jobs| {
                    jobs.iter()
                        .find(|(k, _)| &*k.namespace == namespace && &*k.name == name)
                        .map(|(_, j)| training_row(&cluster.name, namespace, j, viewer))
                })
            })
        })?;
    let owner_kind = crate::training::TrainingKind::ALL
        .into_iter()
        .find(|k| k.kind() == row.kind)
        .map_or(OwnerKind::Job, OwnerKind::TrainingJob);
    let pods = pods_where(&cluster, namespace, |p| p.owner_kind == owner_kind && p.owner.as_deref() == Some(name));
    let mut objects = vec![name.to_string()];
    objects.extend(pods.iter().map(|p| p.name.clone()));
    let events = events_for(&cluster, namespace, &objects);
    Some((row, pods, events))
}
