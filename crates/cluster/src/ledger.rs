//! What the GPU allocation ledger reads from a cluster's caches: the pods
//! that hold GPUs now, the pods that finished holding them (with when), and
//! the nodes that offer GPUs. One pass over the pods; nothing is asked of
//! the apiserver.

use std::collections::HashMap;

use gantry_domain::gpu::CapacityType;
use gantry_domain::usage::{MILLI_GPUS_PER_GPU, mig_milli_gpus};
use gantry_domain::view::Millis;

use crate::hub::ClusterCache;
use crate::summary::OwnerKind;

/// A pod holding GPUs on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldGpus {
    /// Who the pod is, across restarts of Gantry and re-creations under the
    /// same name: `namespace/name@created`.
    pub uid: String,
    pub namespace: String,
    pub pod: String,
    pub node: String,
    /// `Deployment/llm`, `Job/train`, `ReplicaSet/x` (no deployment), or `Pod/name`.
    pub workload: String,
    pub model: String,
    pub capacity_type: CapacityType,
    pub milli_gpus: i64,
    /// The MIG slices held, as shown (`1g.10gb×2`); None for whole GPUs.
    pub mig: Option<String>,
    /// When it was bound to its node, if the apiserver said.
    pub bound: Option<Millis>,
}

/// A node offering GPUs (whole ones and MIG slices at their fraction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedGpus {
    /// `name@created`.
    pub uid: String,
    pub node: String,
    pub model: String,
    pub capacity_type: CapacityType,
    pub milli_gpus: i64,
    pub created: Option<Millis>,
}

/// A cluster's GPUs as its caches show them now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerSnapshot {
    pub held: Vec<HeldGpus>,
    /// Pods still in the cache that finished, by uid, with when their last
    /// container did: their intervals end there, not when Gantry noticed.
    pub finished: HashMap<String, Millis>,
    pub offered: Vec<OfferedGpus>,
}

/// Reads the snapshot under the caches' read locks, one at a time.
pub fn snapshot(cluster: &ClusterCache) -> LedgerSnapshot {
    let nodes: HashMap<String, (String, CapacityType, i64, Option<Millis>)> = cluster.nodes.read(|nodes| {
        nodes
            .values()
            .map(|n| {
                let mig: i64 =
                    n.gpus.mig.iter().map(|m| mig_milli_gpus(&m.profile).unwrap_or(0) * m.capacity.max(0)).sum();
                let milli = n.gpus.capacity.max(0) * MILLI_GPUS_PER_GPU + mig;
                (n.name.to_string(), (n.gpus.model.clone(), n.gpus.capacity_type, milli, n.created))
            })
            .collect()
    });
    let deployments: HashMap<(String, String), String> = cluster.replica_sets.read(|sets| {
        sets.iter()
            .filter_map(|(key, rs)| {
                Some(((key.namespace.to_string(), rs.name.to_string()), rs.deployment.as_deref()?.to_string()))
            })
            .collect()
    });
    let mut snapshot = LedgerSnapshot::default();
    cluster.pods.read(|pods| {
        for (key, pod) in pods {
            let mig_milli = pod.mig.as_ref().map_or(0, |m| i64::from(m.1));
            let milli_gpus = i64::from(pod.gpus) * MILLI_GPUS_PER_GPU + mig_milli;
            let Some(node) = pod.node.as_deref().filter(|_| milli_gpus > 0) else { continue };
            let uid = format!("{}/{}@{}", key.namespace, key.name, pod.created.unwrap_or_default());
            if !pod.holds_gpus() {
                if let Some(at) = pod.finished {
                    snapshot.finished.insert(uid, at);
                }
                continue;
            }
            let namespace = key.namespace.to_string();
            let workload = match (pod.owner_kind, pod.owner.as_deref()) {
                (OwnerKind::ReplicaSet, Some(rs)) => match deployments.get(&(namespace.clone(), rs.to_string())) {
                    Some(deployment) => format!("Deployment/{deployment}"),
                    None => format!("ReplicaSet/{rs}"),
                },
                (OwnerKind::Job, Some(job)) => format!("Job/{job}"),
                (OwnerKind::TrainingJob(kind), Some(job)) => format!("{}/{job}", kind.kind()),
                _ => format!("Pod/{}", key.name),
            };
            // A pod whose node is gone holds nothing any more.
            let Some((model, capacity_type, _, _)) = nodes.get(node) else { continue };
            let (model, capacity_type) = (model.clone(), *capacity_type);
            snapshot.held.push(HeldGpus {
                uid,
                namespace,
                pod: key.name.to_string(),
                node: node.to_string(),
                workload,
                model,
                capacity_type,
                milli_gpus,
                mig: pod.mig.as_ref().map(|m| m.0.to_string()),
                bound: pod.bound,
            });
        }
    });
    snapshot.offered = nodes
        .into_iter()
        .filter(|(_, (_, _, milli, _))| *milli > 0)
        .map(|(node, (model, capacity_type, milli_gpus, created))| OfferedGpus {
            uid: format!("{node}@{}", created.unwrap_or_default()),
            node,
            model,
            capacity_type,
            milli_gpus,
            created,
        })
        .collect();
    snapshot.offered.sort_by(|a, b| a.uid.cmp(&b.uid));
    snapshot
}
