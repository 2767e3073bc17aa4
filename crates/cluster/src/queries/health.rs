//! The overview's "unhealthy workloads" panel: the troubled pods (the pod
//! totals keep their keys, so this reads those few, not every pod) grouped by
//! the workload that owns them, and the Deployments past their progress
//! deadline. What counts as trouble is `gantry_domain::health`'s to say.

use std::collections::BTreeMap;

use gantry_domain::health::{self, PodHealth, UnhealthyWorkload, WorkloadKind};
use gantry_domain::view::{Millis, RolloutState};

use super::{Viewer, visible_clusters};
use crate::hub::{ClusterCache, Hub};
use crate::summary::{Key, OwnerKind};

/// (kind, namespace, name) of a workload in one cluster.
pub(super) type Workload = (WorkloadKind, String, String);

/// A troubled pod as read under the pods' lock: its key, its controller, and
/// what the kubelet says, with its restarts.
type TroubledPod = (Key, OwnerKind, Option<Box<str>>, PodHealth, u32);

#[derive(Default)]
struct Findings {
    pods: Vec<(PodHealth, u32)>,
    rollout_failed: Option<String>,
}

pub fn unhealthy(hub: &Hub, viewer: &Viewer, now: Millis) -> Vec<UnhealthyWorkload> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        let mut found: BTreeMap<Workload, Findings> = BTreeMap::new();
        for (workload, health, restarts) in troubled_pods(&cluster, viewer) {
            found.entry(workload).or_default().pods.push((health, restarts));
        }
        cluster.deployments.read(|deployments| {
            for (key, d) in deployments.iter().filter(|(k, _)| viewer.sees(&cluster.name, &k.namespace)) {
                if let RolloutState::Failed(message) = &d.rollout {
                    let workload = (WorkloadKind::Deployment, key.namespace.to_string(), d.name.to_string());
                    found.entry(workload).or_default().rollout_failed = Some(message.clone());
                }
            }
        });
        for ((kind, namespace, name), findings) in found {
            let pods = findings.pods.iter().map(|(h, r)| (h, *r));
            if let Some((troubles, restarts, detail)) =
                health::workload_health(pods, findings.rollout_failed.as_deref(), now)
            {
                rows.push(UnhealthyWorkload {
                    cluster: cluster.name.to_string(),
                    namespace,
                    kind,
                    name,
                    troubles,
                    restarts,
                    detail,
                });
            }
        }
    }
    rows
}

/// The troubled pods the viewer sees, each with the workload that owns it
/// (a ReplicaSet's Deployment, a Job, or the pod itself).
pub(super) fn troubled_pods(cluster: &ClusterCache, viewer: &Viewer) -> Vec<(Workload, PodHealth, u32)> {
    let pods: Vec<TroubledPod> = cluster.pods.read_tallied(|pods, tally| {
        tally
            .troubled
            .iter()
            .filter(|key| viewer.sees(&cluster.name, &key.namespace))
            .filter_map(|key| {
                let pod = pods.get(key)?;
                let health = pod.health.as_deref()?.clone();
                Some((key.clone(), pod.owner_kind, pod.owner.clone(), health, pod.restarts))
            })
            .collect()
    });
    cluster.replica_sets.read(|replica_sets| {
        pods.into_iter()
            .map(|(key, owner_kind, owner, health, restarts)| {
                let namespace = key.namespace.to_string();
                let workload = match (owner_kind, owner) {
                    (OwnerKind::ReplicaSet, Some(rs)) => {
                        let rs_key = Key { namespace: key.namespace.clone(), name: rs.clone() };
                        match replica_sets.get(&rs_key).and_then(|r| r.deployment.as_deref()) {
                            Some(deployment) => (WorkloadKind::Deployment, namespace, deployment.to_string()),
                            None => (WorkloadKind::Pod, namespace, key.name.to_string()),
                        }
                    }
                    (OwnerKind::Job | OwnerKind::TrainingJob(_), Some(job)) => {
                        (WorkloadKind::Job, namespace, job.to_string())
                    }
                    _ => (WorkloadKind::Pod, namespace, key.name.to_string()),
                };
                (workload, health, restarts)
            })
            .collect()
    })
}
