//! Node autoscaling, read from the caches: a cluster's pools (Karpenter's
//! NodePools, else nodes grouped by their pool label), the nodes on their
//! way in or out (NodeClaims), the autoscaler's recent events, and what it
//! says about a pod that waits for a node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use gantry_domain::view::{Autoscaling, EventRow, NodeClaimRow, NodePoolRow, Provisioning, ResourceKind};

use super::workloads::event_row;
use super::{Viewer, visible_clusters};
use crate::autoscaling::{LABEL_NODE_POOL, NodeClaimSummary, NodePoolSummary};
use crate::hub::{ClusterCache, Hub};
use crate::summary::{EventSummary, Key, NodeSummary};

/// How many of the autoscaler's events a cluster's page lists.
const RECENT_EVENTS: usize = 50;

/// Whether an event comes from a node autoscaler.
fn from_autoscaler(event: &EventSummary) -> bool {
    matches!(&*event.source, "karpenter" | "cluster-autoscaler")
}

/// The cluster's node autoscaling as `viewer` may see it (None for a
/// cluster it does not see). Events about pods in namespaces hidden from the
/// viewer are left out.
pub fn autoscaling(hub: &Hub, viewer: &Viewer, name: &str) -> Option<Autoscaling> {
    let cluster = visible_clusters(hub, viewer).into_iter().find(|c| &*c.name == name)?;
    let karpenter = cluster.node_pools.is_synced();
    let mut pools: Vec<NodePoolRow> =
        cluster.node_pools.read(|pools| pools.values().map(|p| pool_row(&cluster.name, p)).collect());
    let known: BTreeSet<String> = pools.iter().map(|p| p.name.clone()).collect();
    pools.extend(cluster.nodes.read(|nodes| labelled_pools(&cluster.name, nodes.values(), &known)));
    let claims = cluster.node_claims.read(|claims| claims.values().map(|c| claim_row(&cluster.name, c)).collect());
    let mut events: Vec<EventRow> = cluster.events.read(|events| {
        events
            .iter()
            .filter(|(key, e)| from_autoscaler(e) && (&*e.kind != "Pod" || viewer.sees(name, &key.namespace)))
            .map(|(_, e)| event_row(e))
            .collect()
    });
    events.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
    events.truncate(RECENT_EVENTS);
    let refused = [ResourceKind::NodePool, ResourceKind::NodeClaim].into_iter().find_map(|k| cluster.refused(k));
    Some(Autoscaling { karpenter, refused, pools, claims, events })
}

fn pool_row(cluster: &str, p: &NodePoolSummary) -> NodePoolRow {
    let texts = |items: &[Box<str>]| items.iter().map(|t| t.to_string()).collect();
    NodePoolRow {
        cluster: cluster.to_string(),
        name: p.name.to_string(),
        source: "NodePool".into(),
        nodes: p.nodes,
        gpus: p.gpus,
        gpu_limit: p.gpu_limit,
        cpu_millis: p.cpu_millis,
        cpu_limit_millis: p.cpu_limit_millis,
        gpu_model: p.gpu_model.as_deref().map(str::to_string),
        instance_types: texts(&p.instance_types),
        capacity_types: texts(&p.capacity_types),
        consolidation: p.consolidation.as_deref().map(str::to_string),
        ready: p.ready,
        message: p.message.as_deref().map(str::to_string),
    }
}

/// Nodes grouped by their pool label, but for Karpenter's pools that have a
/// NodePool (those come from it).
fn labelled_pools<'a>(
    cluster: &str,
    nodes: impl Iterator<Item = &'a NodeSummary>,
    node_pools: &BTreeSet<String>,
) -> Vec<NodePoolRow> {
    let mut groups: BTreeMap<(&'static str, &str), Vec<&NodeSummary>> = BTreeMap::new();
    for node in nodes {
        if let Some((label, value)) = &node.pool
            && !(*label == LABEL_NODE_POOL && node_pools.contains(&**value))
        {
            groups.entry((label, value)).or_default().push(node);
        }
    }
    groups
        .into_iter()
        .map(|((label, value), nodes)| {
            let distinct = |f: fn(&NodeSummary) -> Option<String>| -> Vec<String> {
                nodes.iter().filter_map(|n| f(n)).collect::<BTreeSet<_>>().into_iter().collect()
            };
            let models = distinct(|n| Some(n.gpus.model.clone()).filter(|m| !m.is_empty()));
            NodePoolRow {
                cluster: cluster.to_string(),
                name: value.to_string(),
                source: label.to_string(),
                nodes: nodes.len() as i64,
                gpus: nodes.iter().map(|n| n.gpus.capacity).sum(),
                gpu_limit: None,
                cpu_millis: nodes.iter().map(|n| n.cpu_millis).sum(),
                cpu_limit_millis: None,
                gpu_model: (models.len() == 1).then(|| models[0].clone()),
                instance_types: distinct(|n| n.gpus.instance_type.clone()),
                capacity_types: distinct(|n| Some(n.gpus.capacity_type.label().to_string()).filter(|c| c != "unknown")),
                consolidation: None,
                ready: None,
                message: None,
            }
        })
        .collect()
}

fn claim_row(cluster: &str, c: &NodeClaimSummary) -> NodeClaimRow {
    let text = |t: &Option<Box<str>>| t.as_deref().map(str::to_string);
    NodeClaimRow {
        cluster: cluster.to_string(),
        name: c.name.to_string(),
        pool: text(&c.pool),
        instance_type: text(&c.instance_type),
        capacity_type: text(&c.capacity_type),
        zone: text(&c.zone),
        node: text(&c.node),
        gpus: c.gpus,
        state: c.state.to_string(),
        message: text(&c.message),
        created: c.created,
    }
}

/// (namespace, pod) → the newest thing a node autoscaler said about the pod.
pub(super) type AutoscalerWords = HashMap<(Arc<str>, Box<str>), (i64, Provisioning)>;

/// What the node autoscalers last said about each pod of the cluster that
/// they spoke of: Karpenter's `Nominated` (a NodeClaim is made for it; the
/// claim's instance type and state joined from the cache) or its
/// `FailedScheduling`; cluster-autoscaler's `TriggeredScaleUp` or
/// `NotTriggerScaleUp`.
pub(super) fn autoscaler_words(cluster: &ClusterCache) -> AutoscalerWords {
    let mut newest = AutoscalerWords::new();
    cluster.events.read(|events| {
        for (key, e) in events.iter().filter(|(_, e)| &*e.kind == "Pod" && from_autoscaler(e)) {
            let creating = match &*e.reason {
                "Nominated" | "TriggeredScaleUp" => true,
                "FailedScheduling" | "NotTriggerScaleUp" => false,
                _ => continue,
            };
            let at = e.last_seen.unwrap_or(0);
            let slot = (key.namespace.clone(), e.object.clone());
            if newest.get(&slot).is_some_and(|(seen, _)| *seen > at) {
                continue;
            }
            let node_claim = creating.then(|| nominated_claim(&e.message)).flatten();
            newest.insert(
                slot,
                (
                    at,
                    Provisioning {
                        creating,
                        node_claim: node_claim.map(str::to_string),
                        instance_type: None,
                        capacity_type: None,
                        state: None,
                        message: e.message.to_string(),
                    },
                ),
            );
        }
    });
    cluster.node_claims.read(|claims| {
        for (_, words) in newest.values_mut() {
            let Some(name) = words.node_claim.as_deref() else { continue };
            if let Some(claim) = claims.get(&Key { namespace: Arc::from(""), name: name.into() }) {
                words.instance_type = claim.instance_type.as_deref().map(str::to_string);
                words.capacity_type = claim.capacity_type.as_deref().map(str::to_string);
                words.state = Some(claim.state.to_string());
            }
        }
    });
    newest
}

/// The NodeClaim a `Nominated` event names: "Pod should schedule on: nodeclaim/h100-x2k9q".
fn nominated_claim(message: &str) -> Option<&str> {
    message.split([' ', ',']).find_map(|word| word.strip_prefix("nodeclaim/")).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_is_read_from_karpenters_nomination() {
        assert_eq!(nominated_claim("Pod should schedule on: nodeclaim/h100-x2k9q"), Some("h100-x2k9q"));
        assert_eq!(nominated_claim("Pod should schedule on: nodeclaim/a-1, node/a-1"), Some("a-1"));
        assert_eq!(nominated_claim("Pod should schedule on: node/a-1"), None);
        assert_eq!(nominated_claim("Pod should schedule on: nodeclaim/"), None);
    }
}
