//! The pod lists: every pod, paged straight off the ordered caches in their
//! own order or by partial selection in any other, and the pods waiting for
//! a node, with the scheduler's reasons.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use gantry_domain::view::{ListQuery, Page, PendingRow, PodRow};

use super::paging::{PartialPage, RunPager};
use super::tables::{self, PodFields};
use super::{Viewer, visible_clusters};
use crate::hub::{ClusterCache, Hub};
use crate::summary::{Key, PodSummary};

pub(super) fn pod_row(cluster: &str, namespace: &str, p: &PodSummary, reason: Option<String>) -> PodRow {
    PodRow {
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        name: p.name.to_string(),
        phase: if p.deleting { "Terminating".into() } else { p.phase.as_str().into() },
        node: p.node.as_deref().map(str::to_string),
        gpus: i64::from(p.gpus),
        ready: format!("{}/{}", p.ready, p.containers),
        restarts: p.restarts.min(i32::MAX as u32) as i32,
        created: p.created,
        owner: p.owner.as_deref().map(str::to_string),
        reason: reason.or_else(|| p.unschedulable.as_deref().map(str::to_string)),
        health: p.health.as_deref().cloned().unwrap_or_default(),
    }
}

/// A page of pods in the default order, (cluster, namespace, name), which is
/// the caches' own order: clusters are kept by name and each cluster's pods by
/// (namespace, name). With no filter but the place, the page is read straight
/// from the ordered maps: whole namespaces are skipped by their running
/// counts, and only the page's rows are built, so a page costs O(namespaces
/// + page) however many pods there are.
fn pods_in_cache_order(hub: &Hub, viewer: &Viewer, query: &ListQuery, page: usize) -> Page<PodRow> {
    let mut pager = RunPager::new(page, query.per_page());
    let mut items = Vec::new();
    let mut clusters = visible_clusters(hub, viewer);
    if query.desc {
        clusters.reverse();
    }
    for cluster in clusters {
        cluster.pods.read_tallied(|pods, tally| {
            let mut spans: Vec<(&Arc<str>, usize)> = tally
                .namespaces
                .iter()
                .filter(|(namespace, _)| {
                    viewer.sees(&cluster.name, namespace) && query.matches_place(&cluster.name, namespace)
                })
                .map(|(namespace, counts)| (namespace, counts.pods))
                .collect();
            spans.sort_unstable();
            if query.desc {
                spans.reverse();
            }
            for (namespace, count) in spans {
                let Some(wanted) = pager.run(count) else { continue };
                let in_namespace = pods.range(namespace_keys(namespace));
                let row = |(key, pod): (&Key, &PodSummary)| pod_row(&cluster.name, &key.namespace, pod, None);
                if query.desc {
                    items.extend(in_namespace.rev().skip(wanted.start).take(wanted.len()).map(row));
                } else {
                    items.extend(in_namespace.skip(wanted.start).take(wanted.len()).map(row));
                }
            }
        });
    }
    match pager.finish(items) {
        Ok(page) => page,
        Err(last) => pods_in_cache_order(hub, viewer, query, last),
    }
}

/// Every key of one namespace, and nothing else, in a map ordered by
/// (namespace, name): no namespace holds a NUL, so `namespace + "\0"` is the
/// next namespace after it.
fn namespace_keys(namespace: &Arc<str>) -> Range<Key> {
    let first = Key { namespace: namespace.clone(), name: "".into() };
    let after = Key { namespace: Arc::from(format!("{namespace}\0")), name: "".into() };
    first..after
}

/// Sorts and pages pods as [`ListQuery::paginate`] would (a stable sort by the
/// column's key, reversed when descending), but builds rows only for the pods
/// that can land on the requested page: each cluster keeps its first
/// `page × per_page` pods by a partial selection, so a page of 50 out of
/// 30,000 pods costs one pass over the cache instead of 30,000 rows and a full
/// sort with strings built for every comparison.
pub fn pods(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<PodRow> {
    if tables::pods_in_stored_order(query) {
        return pods_in_cache_order(hub, viewer, query, query.page());
    }
    let column = tables::pod_column(query);
    let mut page = PartialPage::new(query);
    for cluster in visible_clusters(hub, viewer) {
        cluster.pods.read(|pods| {
            let hits = pods
                .iter()
                .filter(|(key, pod)| {
                    viewer.sees(&cluster.name, &key.namespace)
                        && tables::pod_matches(query, &cluster.name, &key.namespace, pod)
                })
                .map(|(key, pod)| (PodFields::of_pod(&cluster.name, &key.namespace, pod).key(column), (key, pod)));
            page.offer(hits, |(key, pod)| pod_row(&cluster.name, &key.namespace, pod, None));
        });
    }
    page.finish(|a, b| PodFields::of_row(a).key(column).cmp(&PodFields::of_row(b).key(column)))
}

pub(super) fn pods_where(cluster: &ClusterCache, namespace: &str, keep: impl Fn(&PodSummary) -> bool) -> Vec<PodRow> {
    let mut rows: Vec<PodRow> = cluster.pods.read(|pods| {
        pods.iter()
            .filter(|(k, p)| &*k.namespace == namespace && keep(p))
            .map(|(k, p)| pod_row(&cluster.name, &k.namespace, p, None))
            .collect()
    });
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// (namespace, pod) → (when, message) of its newest FailedScheduling event.
type SchedulerReasons = HashMap<(Arc<str>, Box<str>), (i64, Box<str>)>;

/// Pods waiting for a node, with the scheduler's own reason.
pub fn pending(hub: &Hub, viewer: &Viewer, query: &ListQuery) -> Page<PendingRow> {
    let mut rows = Vec::new();
    for cluster in visible_clusters(hub, viewer) {
        // The newest FailedScheduling message per pod.
        let reasons: SchedulerReasons = cluster.events.read(|events| {
            let mut newest = SchedulerReasons::new();
            let scheduler = |e: &crate::summary::EventSummary| {
                &*e.reason == "FailedScheduling" && &*e.kind == "Pod" && &*e.source != "karpenter"
            };
            for (key, e) in events.iter().filter(|(_, e)| scheduler(e)) {
                let at = e.last_seen.unwrap_or(0);
                let slot = newest.entry((key.namespace.clone(), e.object.clone())).or_insert((i64::MIN, Box::from("")));
                if at >= slot.0 {
                    *slot = (at, e.message.clone());
                }
            }
            newest
        });
        let mut autoscaler = super::autoscaling::autoscaler_words(&cluster);
        cluster.pods.read(|pods| {
            for (key, pod) in pods {
                if !tables::pending_matches(query, &cluster.name, &key.namespace, pod)
                    || !viewer.sees(&cluster.name, &key.namespace)
                {
                    continue;
                }
                let reason = reasons
                    .get(&(key.namespace.clone(), pod.name.clone()))
                    .map(|(_, m)| m.to_string())
                    .or_else(|| pod.unschedulable.as_deref().map(str::to_string))
                    .unwrap_or_else(|| "Waiting for the scheduler".to_string());
                rows.push(PendingRow {
                    cluster: cluster.name.to_string(),
                    namespace: key.namespace.to_string(),
                    name: pod.name.to_string(),
                    gpus: i64::from(pod.gpus),
                    since: pod.created,
                    owner: pod.owner.as_deref().map(str::to_string),
                    reason,
                    autoscaler: autoscaler.remove(&(key.namespace.clone(), pod.name.clone())).map(|(_, words)| words),
                });
            }
        });
    }
    query.paginate(rows, tables::pending_key)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::summary::{OwnerKind, PodPhase};

    fn key(namespace: &str, name: &str) -> Key {
        Key { namespace: Arc::from(namespace), name: name.into() }
    }

    #[test]
    fn a_namespace_range_holds_that_namespace_only() {
        let keys = [
            key("", "x"),
            key("vision", ""),
            key("vision", "a"),
            key("vision", "zzz"),
            key("vision-dev", "a"),
            key("vision.x", "a"),
            key("visio", "z"),
            key("visionz", "a"),
        ];
        let map: BTreeMap<Key, ()> = keys.iter().map(|k| (k.clone(), ())).collect();
        let names = |namespace: &str| {
            map.range(namespace_keys(&Arc::from(namespace))).map(|(k, _)| k.name.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(names("vision"), ["", "a", "zzz"]);
        assert_eq!(names("visio"), ["z"]);
        assert_eq!(names(""), ["x"]);
        assert!(names("nlp").is_empty());
        // Read backwards, as a descending page is.
        let backwards: Vec<&str> =
            map.range(namespace_keys(&Arc::from("vision"))).rev().map(|(k, _)| &*k.name).collect();
        assert_eq!(backwards, ["zzz", "a", ""]);
    }

    /// A pod's row sorts exactly as the cached pod did, so the final sort of
    /// the rows kept agrees with the partial selection over the pods.
    #[test]
    fn a_row_sorts_like_its_pod() {
        let pod = |name: &str, phase, node: Option<&str>, gpus, created, deleting| PodSummary {
            name: name.into(),
            phase,
            node: node.map(Arc::from),
            gpus,
            ready: 1,
            containers: 2,
            restarts: 3,
            created,
            owner_kind: OwnerKind::Other,
            owner: None,
            unschedulable: None,
            deleting,
            bound: None,
            finished: None,
            mig: None,
            health: None,
        };
        let pods = [
            pod("a", PodPhase::Running, Some("gpu-1"), 4, Some(5), false),
            pod("b", PodPhase::Running, Some("gpu-1"), 0, None, true),
            pod("c", PodPhase::Pending, None, 8, Some(1), false),
        ];
        for p in &pods {
            let row = pod_row("prod", "vision", p, None);
            for column in ["", "gpus", "created", "phase", "node", "no-such-column"] {
                assert_eq!(
                    PodFields::of_row(&row).key(column),
                    PodFields::of_pod("prod", "vision", p).key(column),
                    "{} by {column:?}",
                    p.name
                );
            }
        }
    }
}
