//! The GPU allocation ledger, written from the watch caches: every GPU a pod
//! holds and every GPU a node offers becomes an interval in Gantry's own
//! database, opened and closed as the caches change, and rolled up by the
//! hour (see `gantry_domain::usage` for the arithmetic and `gantry_store`'s
//! ledger and rollup tables for storage).
//!
//! Only the replica holding the background lease writes (see
//! [`crate::background`]); a second writer could not double an interval
//! anyway (one open interval per pod, enforced by the database).
//!
//! Times. An interval starts when the scheduler bound the pod (the
//! apiserver's PodScheduled time) and ends when its last container finished,
//! or when Gantry saw it gone. After a restart, a pod that vanished while
//! Gantry was down is closed at the last moment the ledger matched the
//! cluster (`ledger_confirmed`): what is not known is not charged, and the
//! downtime is recorded as a gap (informational). While a cluster cannot be
//! watched, nothing changes in its ledger and the time is a `stale` gap,
//! which the rollups do not bill.

use std::collections::{BTreeMap, HashMap};

use gantry_cluster::ClusterCache;
use gantry_cluster::ledger::{LedgerSnapshot, snapshot};
use gantry_domain::usage::{self, AllocationInterval, CapacityInterval, MS_PER_HOUR, PriceBook, Span, Utilisation};
use gantry_domain::view::ConnectionState;
use gantry_store::{
    Closing, GapReason, LedgerChanges, NewAllocation, NewCapacity, NewGap, StoredAllocation, StoredCapacity, now_ms,
};

use crate::error::Result;
use crate::state::AppState;

/// A pass that finds the ledger last confirmed longer ago than this treats
/// the time in between as Gantry's downtime.
const DOWNTIME_AFTER_MS: i64 = 60_000;
/// How many hours one rollup pass catches up at most, so a long first
/// catch-up does not hold the background loop for minutes.
const CATCH_UP_HOURS: i64 = 24;

/// What the writer keeps between passes, per cluster: the intervals open in
/// the database (reloaded after each change and at each new term of
/// leadership), and whether this term has confirmed the cluster yet.
#[derive(Default)]
pub struct LedgerWriter {
    clusters: HashMap<String, OpenIntervals>,
}

struct OpenIntervals {
    allocations: HashMap<String, StoredAllocation>,
    capacity: HashMap<String, StoredCapacity>,
    /// When the ledger last matched the caches, before this term's first pass.
    confirmed: Option<i64>,
    /// This term has recorded the cluster at least once.
    caught_up: bool,
}

impl LedgerWriter {
    /// Forgets what it knew: another replica may have written meanwhile.
    pub fn new_term(&mut self) {
        self.clusters.clear();
    }
}

/// The ledger's view of a namespace: the team that owns it now.
type Teams = BTreeMap<(String, String), String>;

impl AppState {
    /// Records every registered cluster's GPUs as the caches show them now.
    pub(crate) async fn record_ledger(&self, writer: &mut LedgerWriter) -> Result<()> {
        let teams = self.ledger_teams().await?;
        for cluster in self.hub.clusters() {
            if let Err(e) = self.record_cluster(writer, &cluster, &teams).await {
                tracing::warn!(cluster = %cluster.name, "could not record the GPU ledger: {}", e.message);
            }
        }
        Ok(())
    }

    async fn ledger_teams(&self) -> Result<Teams> {
        Ok(self.store.namespace_mappings().await?.into_iter().map(|m| ((m.cluster, m.namespace), m.team)).collect())
    }

    async fn record_cluster(&self, writer: &mut LedgerWriter, cluster: &ClusterCache, teams: &Teams) -> Result<()> {
        let name = cluster.name.to_string();
        let now = now_ms();
        self.ensure_open(writer, &name).await?;
        let status = cluster.status();
        match status.state {
            ConnectionState::Live => {}
            ConnectionState::Stale => {
                let confirmed = writer.clusters.get(&name).and_then(|open| open.confirmed);
                if self.store.open_gap(&name).await?.is_none() {
                    let start = status.last_contact.or(confirmed).unwrap_or(now);
                    let gap = NewGap { start_ms: start, end_ms: None, reason: GapReason::Stale };
                    let changes = LedgerChanges { open_gap: Some(gap), ..Default::default() };
                    self.store.apply_ledger(&name, &changes, now).await?;
                }
                return Ok(());
            }
            // Not synced yet: nothing to compare with.
            ConnectionState::Connecting => return Ok(()),
        }
        self.record_snapshot(writer, &name, &snapshot(cluster), teams, now).await
    }

    /// Makes a live cluster's ledger match `snapshot`, as of `now`: the part
    /// of [`record_cluster`](Self::record_cluster) after the caches are read.
    async fn record_snapshot(
        &self,
        writer: &mut LedgerWriter,
        name: &str,
        snapshot: &LedgerSnapshot,
        teams: &Teams,
        now: i64,
    ) -> Result<()> {
        self.ensure_open(writer, name).await?;
        let has_gap = self.store.open_gap(name).await?.is_some();
        let Some(open) = writer.clusters.get_mut(name) else { return Ok(()) };
        let changes = plan(name, snapshot, open, teams, has_gap, now);
        let changed = !(changes.open_allocations.is_empty()
            && changes.close_allocations.is_empty()
            && changes.open_capacity.is_empty()
            && changes.close_capacity.is_empty());
        self.store.apply_ledger(name, &changes, now).await?;
        if changed {
            let caught_up = open.caught_up;
            *open = self.load_open(name).await?;
            open.caught_up = caught_up;
        }
        open.caught_up = true;
        open.confirmed = Some(now);
        Ok(())
    }

    /// Loads the cluster's open intervals into the writer, the first time in a term.
    async fn ensure_open(&self, writer: &mut LedgerWriter, name: &str) -> Result<()> {
        if !writer.clusters.contains_key(name) {
            let open = self.load_open(name).await?;
            writer.clusters.insert(name.to_string(), open);
        }
        Ok(())
    }

    async fn load_open(&self, cluster: &str) -> Result<OpenIntervals> {
        Ok(OpenIntervals {
            allocations: self
                .store
                .open_allocations(cluster)
                .await?
                .into_iter()
                .map(|a| (a.pod_uid.clone(), a))
                .collect(),
            capacity: self.store.open_capacity(cluster).await?.into_iter().map(|c| (c.node_uid.clone(), c)).collect(),
            confirmed: self.store.ledger_confirmed(cluster).await?,
            caught_up: false,
        })
    }

    /// Rolls up, for each cluster, every hour from its watermark to now
    /// (the current hour again on every pass, and the one before it, which a
    /// late close may still change), at most [`CATCH_UP_HOURS`] per pass.
    pub(crate) async fn roll_up(&self, writer: &LedgerWriter) -> Result<()> {
        self.roll_up_as_of(writer, self.hub.names(), now_ms()).await
    }

    /// [`roll_up`](Self::roll_up) of `clusters` as of `now`.
    async fn roll_up_as_of(
        &self,
        writer: &LedgerWriter,
        clusters: impl IntoIterator<Item = String>,
        now: i64,
    ) -> Result<()> {
        let prices = PriceBook::new(self.store.price_points().await?);
        let current = usage::bucket_start(now, MS_PER_HOUR);
        for cluster in clusters {
            let confirmed_then = writer.clusters.get(&cluster).and_then(|o| o.confirmed);
            let watermark = match self.store.rollup_watermark(&cluster).await? {
                Some(mark) => mark,
                // The first roll-up starts with the ledger's oldest open interval.
                None => self.oldest_open(&cluster).await?.unwrap_or(current),
            };
            // A restart may have closed intervals back at the last confirmation.
            let from = confirmed_then.map_or(watermark, |c| watermark.min(usage::bucket_start(c, MS_PER_HOUR)));
            let from = from.max(now - self.config.rollup_retention_ms);
            let mut hour = usage::bucket_start(from, MS_PER_HOUR);
            let last = current.min(hour + (CATCH_UP_HOURS - 1) * MS_PER_HOUR);
            while hour <= last {
                let span = Span::new(hour, hour + MS_PER_HOUR);
                let allocations = self.store.allocations_overlapping(span, Some(&cluster)).await?;
                let capacity = self.store.capacity_overlapping(span, Some(&cluster)).await?;
                let gaps = self.store.gaps_overlapping(span, Some(&cluster)).await?;
                let utilisation = self.utilisation(&cluster, span).await;
                let rows = usage::rollup(hour, &allocations, &capacity, &gaps, &prices, &utilisation, now);
                self.store.replace_hour(&cluster, hour, &rows).await?;
                hour += MS_PER_HOUR;
            }
            // Hours before the previous one are final, unless a restart reopens them.
            self.store.set_rollup_watermark(&cluster, last.min(current - MS_PER_HOUR).max(from), now).await?;
        }
        Ok(())
    }

    async fn oldest_open(&self, cluster: &str) -> Result<Option<i64>> {
        let open = self.store.open_allocations(cluster).await?;
        let capacity = self.store.open_capacity(cluster).await?;
        Ok(open.iter().map(|a| a.interval.start).chain(capacity.iter().map(|c| c.interval.start)).min())
    }

    /// Utilisation of the cluster's pods over `span`, from its Prometheus
    /// when one is configured and answers; unknown otherwise (and why is
    /// kept for the costs page).
    pub(crate) async fn utilisation(&self, cluster: &str, span: Span) -> Utilisation {
        let mut utilisation = Utilisation::new(self.config.waste_threshold_percent);
        let client = match self.prometheus_client(cluster).await {
            Ok(Some(client)) => client,
            Ok(None) => return utilisation,
            Err(e) => {
                self.note_prometheus(cluster, Some(e.message.clone()));
                return utilisation;
            }
        };
        // The part of the span that has happened: the current hour is still going.
        let known = Span::new(span.start, span.end.min(now_ms()).max(span.start));
        match client.utilisation(known).await {
            Ok(pods) => {
                for pod in pods {
                    utilisation.add(cluster, &pod.namespace, &pod.pod, span, pod.mean_percent);
                }
                self.note_prometheus(cluster, None);
            }
            Err(e) => {
                tracing::warn!(%cluster, "utilisation unavailable: {e}");
                self.note_prometheus(cluster, Some(e.to_string()));
            }
        }
        utilisation
    }

    /// Deletes raw intervals and rollups past their retention.
    pub(crate) async fn apply_retention(&self) -> Result<()> {
        self.apply_retention_as_of(now_ms()).await
    }

    async fn apply_retention_as_of(&self, now: i64) -> Result<()> {
        let raw = self.store.delete_raw_before(now - self.config.raw_retention_ms).await?;
        let rollups = self.store.delete_rollups_before(now - self.config.rollup_retention_ms).await?;
        let month = usage::month_of(now);
        self.store.ensure_partitions(month.start).await?;
        self.store.ensure_partitions(month.end).await?;
        if raw.allocations + raw.capacity + rollups.hourly_rows + rollups.daily_rows + rollups.partitions > 0 {
            tracing::info!(?raw, ?rollups, "deleted usage history past its retention");
        }
        Ok(())
    }
}

/// The ledger's passes at a chosen time over a given snapshot, for benchmarks
/// and tests that write days of history in minutes: the same functions the
/// background loop runs, with the clock and the caches as parameters.
#[cfg(feature = "testing")]
impl AppState {
    /// One pass of [`record_ledger`](Self::record_ledger) over one live
    /// cluster whose caches show `snapshot` at `now` (the namespace mappings
    /// are read as on every pass).
    pub async fn record_snapshot_at(
        &self,
        writer: &mut LedgerWriter,
        cluster: &str,
        snapshot: &LedgerSnapshot,
        now: i64,
    ) -> Result<()> {
        let teams = self.ledger_teams().await?;
        self.record_snapshot(writer, cluster, snapshot, &teams, now).await
    }

    /// One pass of [`roll_up`](Self::roll_up) over one cluster as of `now`.
    pub async fn roll_up_at(&self, writer: &LedgerWriter, cluster: &str, now: i64) -> Result<()> {
        self.roll_up_as_of(writer, [cluster.to_string()], now).await
    }

    /// One pass of [`apply_retention`](Self::apply_retention) as of `now`.
    pub async fn apply_retention_at(&self, now: i64) -> Result<()> {
        self.apply_retention_as_of(now).await
    }
}

/// What to change so the ledger matches the snapshot. Pure: the rules of
/// the module doc, in one place.
fn plan(
    cluster: &str,
    snapshot: &LedgerSnapshot,
    open: &OpenIntervals,
    teams: &Teams,
    has_gap: bool,
    now: i64,
) -> LedgerChanges {
    let mut changes = LedgerChanges { confirmed_at: Some(now), ..Default::default() };
    if has_gap {
        changes.close_gap = Some(now);
    }
    // The first pass of a term after the ledger went unconfirmed for a while:
    // Gantry was down (or no replica held the lease) in between.
    let down_since = open.confirmed.filter(|confirmed| !open.caught_up && now - confirmed > DOWNTIME_AFTER_MS);
    if let Some(since) = down_since
        && !has_gap
    {
        changes.open_gap = Some(NewGap { start_ms: since, end_ms: Some(now), reason: GapReason::Downtime });
    }
    // Where an interval that was not open begins: the bind time for a pod
    // bound since the last confirmation (or on the ledger's first run), else
    // now (it was closed on purpose, say its node went away, and is back).
    // Bind times have whole seconds, so a pod bound in the second of the
    // last confirmation may have been bound after it: it begins at the
    // confirmation, when it was last known not to hold GPUs (not at now,
    // which after a leader's death is up to a lease's time later).
    let start_of = |bound: Option<i64>| match (bound, open.confirmed) {
        (Some(bound), None) => bound,
        (Some(bound), Some(confirmed)) if bound > confirmed => bound,
        (Some(bound), Some(confirmed)) if bound + 1_000 > confirmed => confirmed,
        _ => now,
    };
    // Where an interval whose holder is gone ends: when it finished, if
    // known; else the last confirmation when the pass follows a downtime.
    let end_of = |finished: Option<i64>| finished.or(down_since).unwrap_or(now);

    let held: HashMap<&str, _> = snapshot.held.iter().map(|h| (h.uid.as_str(), h)).collect();
    for h in &snapshot.held {
        if open.allocations.contains_key(&h.uid) {
            continue;
        }
        changes.open_allocations.push(NewAllocation {
            pod_uid: h.uid.clone(),
            mig: h.mig.clone(),
            interval: AllocationInterval {
                cluster: cluster.to_string(),
                namespace: h.namespace.clone(),
                team: teams.get(&(cluster.to_string(), h.namespace.clone())).cloned(),
                workload: h.workload.clone(),
                pod: h.pod.clone(),
                node: h.node.clone(),
                model: h.model.clone(),
                capacity_type: h.capacity_type,
                milli_gpus: h.milli_gpus,
                start: start_of(h.bound),
                end: None,
            },
        });
    }
    for (uid, stored) in &open.allocations {
        // Still held, on the same node with the same GPUs: nothing to do.
        let same = held.get(uid.as_str()).is_some_and(|h| {
            h.node == stored.interval.node
                && h.milli_gpus == stored.interval.milli_gpus
                && h.model == stored.interval.model
        });
        if same {
            continue;
        }
        let end = end_of(snapshot.finished.get(uid).copied());
        changes.close_allocations.push(Closing { id: stored.id, end_ms: end });
        // Changed but still held (resized, or a node relabelled): reopen now.
        if let Some(h) = held.get(uid.as_str()) {
            changes.open_allocations.retain(|a| a.pod_uid != *uid);
            let mut reopened =
                NewAllocation { pod_uid: h.uid.clone(), mig: h.mig.clone(), interval: stored.interval.clone() };
            reopened.interval.node = h.node.clone();
            reopened.interval.model = h.model.clone();
            reopened.interval.capacity_type = h.capacity_type;
            reopened.interval.milli_gpus = h.milli_gpus;
            reopened.interval.start = end;
            changes.open_allocations.push(reopened);
        }
    }

    let offered: HashMap<&str, _> = snapshot.offered.iter().map(|o| (o.uid.as_str(), o)).collect();
    for o in &snapshot.offered {
        if open.capacity.contains_key(&o.uid) {
            continue;
        }
        changes.open_capacity.push(NewCapacity {
            node_uid: o.uid.clone(),
            interval: CapacityInterval {
                cluster: cluster.to_string(),
                node: o.node.clone(),
                model: o.model.clone(),
                capacity_type: o.capacity_type,
                milli_gpus: o.milli_gpus,
                start: start_of(o.created),
                end: None,
            },
        });
    }
    for (uid, stored) in &open.capacity {
        let same = offered.get(uid.as_str()).is_some_and(|o| {
            o.milli_gpus == stored.interval.milli_gpus
                && o.model == stored.interval.model
                && o.capacity_type == stored.interval.capacity_type
        });
        if same {
            continue;
        }
        let end = end_of(None);
        changes.close_capacity.push(Closing { id: stored.id, end_ms: end });
        if let Some(o) = offered.get(uid.as_str()) {
            changes.open_capacity.retain(|c| c.node_uid != *uid);
            let mut reopened = NewCapacity { node_uid: o.uid.clone(), interval: stored.interval.clone() };
            reopened.interval.model = o.model.clone();
            reopened.interval.capacity_type = o.capacity_type;
            reopened.interval.milli_gpus = o.milli_gpus;
            reopened.interval.start = end;
            changes.open_capacity.push(reopened);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use gantry_cluster::ledger::{HeldGpus, OfferedGpus};
    use gantry_domain::gpu::CapacityType;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn held(pod: &str, milli: i64, bound: Option<i64>) -> HeldGpus {
        HeldGpus {
            uid: format!("vision/{pod}@1"),
            namespace: "vision".into(),
            pod: pod.into(),
            node: "n1".into(),
            workload: format!("Deployment/{pod}"),
            model: "H100".into(),
            capacity_type: CapacityType::OnDemand,
            milli_gpus: milli,
            mig: None,
            bound,
        }
    }

    fn stored(id: i64, h: &HeldGpus, start: i64) -> StoredAllocation {
        StoredAllocation {
            id,
            pod_uid: h.uid.clone(),
            mig: None,
            interval: AllocationInterval {
                cluster: "a".into(),
                namespace: h.namespace.clone(),
                team: None,
                workload: h.workload.clone(),
                pod: h.pod.clone(),
                node: h.node.clone(),
                model: h.model.clone(),
                capacity_type: h.capacity_type,
                milli_gpus: h.milli_gpus,
                start,
                end: None,
            },
        }
    }

    fn open(allocations: Vec<StoredAllocation>, confirmed: Option<i64>, caught_up: bool) -> OpenIntervals {
        OpenIntervals {
            allocations: allocations.into_iter().map(|a| (a.pod_uid.clone(), a)).collect(),
            capacity: HashMap::new(),
            confirmed,
            caught_up,
        }
    }

    fn teams() -> Teams {
        [(("a".to_string(), "vision".to_string()), "vision".to_string())].into()
    }

    #[test]
    fn a_new_pod_opens_at_its_bind_time_with_its_team() {
        let snapshot = LedgerSnapshot { held: vec![held("llm", 2000, Some(NOW - 5_000))], ..Default::default() };
        let changes = plan("a", &snapshot, &open(vec![], Some(NOW - 10_000), true), &teams(), false, NOW);
        assert_eq!(changes.open_allocations.len(), 1);
        let interval = &changes.open_allocations[0].interval;
        assert_eq!(
            (interval.start, interval.team.as_deref(), interval.milli_gpus),
            (NOW - 5_000, Some("vision"), 2000)
        );
        assert_eq!(changes.confirmed_at, Some(NOW));
        assert!(changes.close_allocations.is_empty() && changes.open_gap.is_none());
    }

    #[test]
    fn a_pod_seen_again_is_left_alone_and_a_finished_one_ends_when_it_finished() {
        let llm = held("llm", 1000, Some(NOW - 50_000));
        let done = held("done", 1000, Some(NOW - 50_000));
        let snapshot = LedgerSnapshot {
            held: vec![llm.clone()],
            finished: [(done.uid.clone(), NOW - 2_000)].into(),
            ..Default::default()
        };
        let state = open(vec![stored(1, &llm, NOW - 50_000), stored(2, &done, NOW - 50_000)], Some(NOW - 5_000), true);
        let changes = plan("a", &snapshot, &state, &teams(), false, NOW);
        assert!(changes.open_allocations.is_empty());
        assert_eq!(changes.close_allocations, vec![Closing { id: 2, end_ms: NOW - 2_000 }]);
    }

    #[test]
    fn after_a_downtime_vanished_pods_end_at_the_last_confirmation_and_the_gap_is_recorded() {
        let gone = held("gone", 1000, Some(NOW - 3_600_000));
        let new = held("new", 1000, Some(NOW - 600_000));
        let old = held("old", 1000, Some(NOW - 7_200_000));
        let confirmed = NOW - 1_800_000;
        let snapshot = LedgerSnapshot { held: vec![new.clone(), old.clone()], ..Default::default() };
        // `old` was closed on purpose before the downtime and is back: it restarts now.
        let state = open(vec![stored(7, &gone, NOW - 3_600_000)], Some(confirmed), false);
        let changes = plan("a", &snapshot, &state, &teams(), false, NOW);
        assert_eq!(
            changes.close_allocations,
            vec![Closing { id: 7, end_ms: confirmed }],
            "not charged for the downtime"
        );
        let starts: BTreeMap<&str, i64> =
            changes.open_allocations.iter().map(|a| (a.interval.pod.as_str(), a.interval.start)).collect();
        assert_eq!(
            starts,
            [("new", NOW - 600_000), ("old", NOW)].into(),
            "bound during the downtime: from its bind time"
        );
        assert_eq!(
            changes.open_gap,
            Some(NewGap { start_ms: confirmed, end_ms: Some(NOW), reason: GapReason::Downtime })
        );
    }

    #[test]
    fn a_pod_bound_in_the_second_of_the_last_confirmation_opens_at_the_confirmation() {
        // Confirmed at .400 of a second; the pod was bound later in that
        // second, which the apiserver writes as the second's start. The
        // next pass (a new leader's, 23 s later) must not start it at now.
        let second = NOW - 23_000;
        let confirmed = second + 400;
        let snapshot = LedgerSnapshot { held: vec![held("llm", 1000, Some(second))], ..Default::default() };
        let changes = plan("a", &snapshot, &open(vec![], Some(confirmed), false), &teams(), false, NOW);
        assert_eq!(changes.open_allocations[0].interval.start, confirmed);
    }

    #[test]
    fn a_resized_pod_is_closed_and_reopened_now() {
        let before = held("llm", 1000, Some(NOW - 60_000));
        let after = HeldGpus { milli_gpus: 2000, ..before.clone() };
        let snapshot = LedgerSnapshot { held: vec![after], ..Default::default() };
        let state = open(vec![stored(3, &before, NOW - 60_000)], Some(NOW - 5_000), true);
        let changes = plan("a", &snapshot, &state, &teams(), false, NOW);
        assert_eq!(changes.close_allocations, vec![Closing { id: 3, end_ms: NOW }]);
        assert_eq!(changes.open_allocations.len(), 1);
        assert_eq!(
            (changes.open_allocations[0].interval.start, changes.open_allocations[0].interval.milli_gpus),
            (NOW, 2000)
        );
    }

    #[test]
    fn a_node_opens_from_its_creation_on_the_first_run() {
        let node = OfferedGpus {
            uid: "n1@5".into(),
            node: "n1".into(),
            model: "H100".into(),
            capacity_type: CapacityType::Spot,
            milli_gpus: 8000,
            created: Some(NOW - 86_400_000),
        };
        let snapshot = LedgerSnapshot { offered: vec![node], ..Default::default() };
        let changes = plan("a", &snapshot, &open(vec![], None, false), &teams(), true, NOW);
        assert_eq!(changes.open_capacity[0].interval.start, NOW - 86_400_000);
        assert_eq!(changes.close_gap, Some(NOW), "a stale gap ends when the cluster is live again");
    }
}
