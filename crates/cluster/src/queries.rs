//! Read models built from the caches. Every function takes a [`Viewer`] and
//! returns only what that viewer may see; sorting, filtering and paging
//! happen here, on the server, so a 30,000-pod list never leaves it whole.
//!
//! The parts that need no cache stand alone and are unit-tested on plain
//! rows: `paging` cuts lists into pages (page bounds, paging by runs of known
//! length off the ordered caches, partial selection of a sorted page) and
//! `tables` says what each table filters and sorts by. The adapters only
//! read the caches and apply them: `fleet` (clusters, overview, nodes, GPU
//! counts, quotas), `pod_lists` (pods, pending pods, with what the node
//! autoscaler says of them), `autoscaling` (node pools, node claims, scale
//! events) and `workloads` (deployments, jobs, with their pods and events).

use std::collections::BTreeMap;
use std::sync::Arc;

use gantry_domain::policy::Visibility;

use crate::hub::{ClusterCache, Hub};

mod autoscaling;
mod fleet;
mod health;
mod paging;
mod pod_lists;
mod tables;
mod workloads;

pub use autoscaling::autoscaling;
pub use fleet::{
    cluster, clusters, free_gpus, gpu_inventory, gpu_models, gpu_uses, gpu_uses_by_namespace, is_live, node, nodes,
    overview, pod_phases, quotas,
};
pub use health::unhealthy;
pub use pod_lists::{pending, pods};
pub use workloads::{deployment, deployments, job, jobs};

/// What the asking user may see, and which team owns which namespace (to
/// label rows).
pub struct Viewer {
    pub visibility: Visibility,
    /// cluster → namespace → team name
    pub teams: BTreeMap<String, BTreeMap<String, String>>,
}

impl Viewer {
    pub fn everything() -> Viewer {
        Viewer { visibility: Visibility::Everything, teams: BTreeMap::new() }
    }

    pub fn team(&self, cluster: &str, namespace: &str) -> Option<String> {
        self.teams.get(cluster).and_then(|n| n.get(namespace)).cloned()
    }

    fn sees(&self, cluster: &str, namespace: &str) -> bool {
        self.visibility.namespace(cluster, namespace)
    }
}

fn visible_clusters(hub: &Hub, viewer: &Viewer) -> Vec<Arc<ClusterCache>> {
    hub.clusters().into_iter().filter(|c| viewer.visibility.cluster(&c.name)).collect()
}
