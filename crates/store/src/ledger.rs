//! The allocation ledger: every GPU a pod held and every GPU a node offered,
//! as intervals `[start_ms, end_ms)`, and the gaps the ledger cannot vouch
//! for. [`gantry_domain::usage`] computes usage and cost from these.
//!
//! A writer changes the ledger only through [`Store::apply_ledger`], one
//! transaction per batch. At most one interval per pod (and per node) is open,
//! enforced by a partial unique index, so a second writer, or the same one
//! retrying a batch, can never double an interval: its duplicate open is
//! skipped, and a close of an interval already closed changes nothing.

use gantry_domain::gpu::CapacityType;
use gantry_domain::usage::{AllocationInterval, CapacityInterval, Gap, Span};

use crate::{Error, Result, Store};

/// An allocation interval to record. Its `interval.cluster` must be the
/// cluster the batch is for. Record intervals open and close them later:
/// the guard against doubling is the one open interval per pod, so an
/// interval recorded already closed (`end` Some) is added again if its
/// batch is replayed.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAllocation {
    /// The pod's UID: at most one open interval per cluster and UID.
    pub pod_uid: String,
    /// The MIG slices held, as shown (`1g.10gb×2`); None for whole GPUs.
    pub mig: Option<String>,
    pub interval: AllocationInterval,
}

/// An allocation interval as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAllocation {
    pub id: i64,
    pub pod_uid: String,
    pub mig: Option<String>,
    pub interval: AllocationInterval,
}

/// A node's GPU capacity to record; as with [`NewAllocation`], only an open
/// one is guarded against doubling.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCapacity {
    /// The node's UID: at most one open interval per cluster and UID.
    pub node_uid: String,
    pub interval: CapacityInterval,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredCapacity {
    pub id: i64,
    pub node_uid: String,
    pub interval: CapacityInterval,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapReason {
    /// The cluster could not be watched: nothing in the gap is billed.
    Stale,
    /// Gantry was not running; informational, billing goes on.
    Downtime,
}

impl GapReason {
    pub fn label(self) -> &'static str {
        match self {
            GapReason::Stale => "stale",
            GapReason::Downtime => "downtime",
        }
    }

    fn from_label(label: &str) -> GapReason {
        if label == "stale" { GapReason::Stale } else { GapReason::Downtime }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewGap {
    pub start_ms: i64,
    /// None while it lasts (one open gap per cluster); Some to record a gap
    /// already over, such as Gantry's own downtime found at start-up.
    pub end_ms: Option<i64>,
    pub reason: GapReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredGap {
    pub id: i64,
    pub cluster: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub reason: GapReason,
}

/// Ends the open interval `id` at `end_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closing {
    pub id: i64,
    pub end_ms: i64,
}

/// One batch of changes to one cluster's ledger, applied in one
/// transaction: closes first, then opens, so a pod that moved can be closed
/// and opened again in the same batch.
///
/// Times after `now` are held to `now`, and an end before its start to the
/// start, so a skewed clock cannot put usage in the future or make an
/// interval negative (which would fail the whole batch).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LedgerChanges {
    pub open_allocations: Vec<NewAllocation>,
    pub close_allocations: Vec<Closing>,
    pub open_capacity: Vec<NewCapacity>,
    pub close_capacity: Vec<Closing>,
    /// Skipped when the cluster already has an open gap.
    pub open_gap: Option<NewGap>,
    /// Ends the cluster's open gap at this time.
    pub close_gap: Option<i64>,
    /// The ledger now matches the cluster as its caches showed it at this
    /// time (see [`Store::ledger_confirmed`]); recorded with the batch.
    pub confirmed_at: Option<i64>,
}

/// How many rows each part of a batch changed. A part that changed fewer
/// rows than it named met intervals already open (or already closed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerApplied {
    pub allocations_opened: u64,
    pub allocations_closed: u64,
    pub capacity_opened: u64,
    pub capacity_closed: u64,
    pub gaps_opened: u64,
    pub gaps_closed: u64,
}

/// What [`Store::delete_raw_before`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawDeleted {
    pub allocations: u64,
    pub capacity: u64,
    pub gaps: u64,
}

#[derive(sqlx::FromRow)]
struct AllocationRow {
    id: i64,
    cluster: String,
    namespace: String,
    team: Option<String>,
    workload: String,
    pod: String,
    pod_uid: String,
    node: String,
    model: String,
    capacity_type: String,
    milli_gpus: i64,
    mig: Option<String>,
    start_ms: i64,
    end_ms: Option<i64>,
}

impl AllocationRow {
    fn into_stored(self) -> StoredAllocation {
        StoredAllocation {
            id: self.id,
            pod_uid: self.pod_uid,
            mig: self.mig,
            interval: AllocationInterval {
                cluster: self.cluster,
                namespace: self.namespace,
                team: self.team,
                workload: self.workload,
                pod: self.pod,
                node: self.node,
                model: self.model,
                capacity_type: capacity_type(&self.capacity_type),
                milli_gpus: self.milli_gpus,
                start: self.start_ms,
                end: self.end_ms,
            },
        }
    }
}

#[derive(sqlx::FromRow)]
struct CapacityRow {
    id: i64,
    cluster: String,
    node: String,
    node_uid: String,
    model: String,
    capacity_type: String,
    milli_gpus: i64,
    start_ms: i64,
    end_ms: Option<i64>,
}

impl CapacityRow {
    fn into_stored(self) -> StoredCapacity {
        StoredCapacity {
            id: self.id,
            node_uid: self.node_uid,
            interval: CapacityInterval {
                cluster: self.cluster,
                node: self.node,
                model: self.model,
                capacity_type: capacity_type(&self.capacity_type),
                milli_gpus: self.milli_gpus,
                start: self.start_ms,
                end: self.end_ms,
            },
        }
    }
}

#[derive(sqlx::FromRow)]
struct GapRow {
    id: i64,
    cluster: String,
    start_ms: i64,
    end_ms: Option<i64>,
    reason: String,
}

impl GapRow {
    fn into_stored(self) -> StoredGap {
        StoredGap {
            id: self.id,
            cluster: self.cluster,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            reason: GapReason::from_label(&self.reason),
        }
    }
}

pub(crate) fn capacity_type(label: &str) -> CapacityType {
    CapacityType::from_label(label).unwrap_or_default()
}

const ALLOCATION_COLUMNS: &str = "id, cluster, namespace, team, workload, pod, pod_uid, node, model, capacity_type, milli_gpus, mig, start_ms, end_ms";
const CAPACITY_COLUMNS: &str = "id, cluster, node, node_uid, model, capacity_type, milli_gpus, start_ms, end_ms";
const GAP_COLUMNS: &str = "id, cluster, start_ms, end_ms, reason";

/// The rows of `table` that overlap `[$1, $2)`, optionally in cluster `$3`:
/// closed ones that end after the start, and open ones, each half by its own
/// index rather than an OR that would defeat both.
fn overlapping_sql(columns: &str, table: &str, extra: &str, by_cluster: bool) -> String {
    let cluster = if by_cluster { " AND cluster = $3" } else { "" };
    format!(
        "SELECT {columns} FROM {table} WHERE end_ms > $1 AND start_ms < $2{cluster}{extra} \
         UNION ALL \
         SELECT {columns} FROM {table} WHERE end_ms IS NULL AND start_ms < $2{cluster}{extra} \
         ORDER BY start_ms, id"
    )
}

fn overlapping<'q, Row>(
    sql: &'q str,
    span: Span,
    cluster: Option<&'q str>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, Row, sqlx::any::AnyArguments<'q>>
where
    Row: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let query = sqlx::query_as(sql).bind(span.start).bind(span.end);
    match cluster {
        Some(cluster) => query.bind(cluster),
        None => query,
    }
}

impl Store {
    /// The cluster's open allocation intervals, oldest first.
    pub async fn open_allocations(&self, cluster: &str) -> Result<Vec<StoredAllocation>> {
        let sql = format!(
            "SELECT {ALLOCATION_COLUMNS} FROM gpu_allocations WHERE cluster = $1 AND end_ms IS NULL ORDER BY id"
        );
        let rows: Vec<AllocationRow> = sqlx::query_as(&sql).bind(cluster).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(AllocationRow::into_stored).collect())
    }

    /// The cluster's open capacity intervals, oldest first.
    pub async fn open_capacity(&self, cluster: &str) -> Result<Vec<StoredCapacity>> {
        let sql =
            format!("SELECT {CAPACITY_COLUMNS} FROM gpu_capacity WHERE cluster = $1 AND end_ms IS NULL ORDER BY id");
        let rows: Vec<CapacityRow> = sqlx::query_as(&sql).bind(cluster).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(CapacityRow::into_stored).collect())
    }

    /// The cluster's open gap, of either reason.
    pub async fn open_gap(&self, cluster: &str) -> Result<Option<StoredGap>> {
        let sql = format!("SELECT {GAP_COLUMNS} FROM ledger_gaps WHERE cluster = $1 AND end_ms IS NULL");
        let row: Option<GapRow> = sqlx::query_as(&sql).bind(cluster).fetch_optional(&self.pool).await?;
        Ok(row.map(GapRow::into_stored))
    }

    /// Applies one batch of changes to a cluster's ledger, all or nothing
    /// (see [`LedgerChanges`]). A duplicate open is skipped, not an error, so
    /// a batch can be retried whole.
    pub async fn apply_ledger(&self, cluster: &str, changes: &LedgerChanges, now: i64) -> Result<LedgerApplied> {
        let foreign = changes
            .open_allocations
            .iter()
            .map(|a| &a.interval.cluster)
            .chain(changes.open_capacity.iter().map(|c| &c.interval.cluster))
            .find(|c| *c != cluster);
        if let Some(other) = foreign {
            return Err(Error::Config(format!("a ledger batch for cluster {cluster} holds an interval of {other}")));
        }
        let at_most_now = |at: i64| at.min(now);
        let mut applied = LedgerApplied::default();
        let mut tx = self.begin_write().await?;
        // An end before the start is held to the start, in SQL, since only
        // the row knows its start.
        for (table, closings, count) in [
            ("gpu_allocations", &changes.close_allocations, &mut applied.allocations_closed),
            ("gpu_capacity", &changes.close_capacity, &mut applied.capacity_closed),
        ] {
            let sql = format!(
                "UPDATE {table} SET end_ms = CASE WHEN $1 < start_ms THEN start_ms ELSE $1 END \
                 WHERE id = $2 AND cluster = $3 AND end_ms IS NULL"
            );
            for closing in closings {
                let done = sqlx::query(&sql)
                    .bind(at_most_now(closing.end_ms))
                    .bind(closing.id)
                    .bind(cluster)
                    .execute(&mut *tx)
                    .await?;
                *count += done.rows_affected();
            }
        }
        if let Some(end) = changes.close_gap {
            let done = sqlx::query(
                "UPDATE ledger_gaps SET end_ms = CASE WHEN $1 < start_ms THEN start_ms ELSE $1 END \
                 WHERE cluster = $2 AND end_ms IS NULL",
            )
            .bind(at_most_now(end))
            .bind(cluster)
            .execute(&mut *tx)
            .await?;
            applied.gaps_closed = done.rows_affected();
        }
        if let Some(gap) = changes.open_gap {
            let start = at_most_now(gap.start_ms);
            let end = gap.end_ms.map(|end| at_most_now(end).max(start));
            let done = sqlx::query(
                "INSERT INTO ledger_gaps (cluster, start_ms, end_ms, reason) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(cluster)
            .bind(start)
            .bind(end)
            .bind(gap.reason.label())
            .execute(&mut *tx)
            .await?;
            applied.gaps_opened = done.rows_affected();
        }
        for new in &changes.open_capacity {
            let c = &new.interval;
            let start = at_most_now(c.start);
            let done = sqlx::query(
                "INSERT INTO gpu_capacity (cluster, node, node_uid, model, capacity_type, milli_gpus, start_ms, end_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(cluster)
            .bind(&c.node)
            .bind(&new.node_uid)
            .bind(&c.model)
            .bind(c.capacity_type.label())
            .bind(c.milli_gpus)
            .bind(start)
            .bind(c.end.map(|end| at_most_now(end).max(start)))
            .execute(&mut *tx)
            .await?;
            applied.capacity_opened += done.rows_affected();
        }
        for new in &changes.open_allocations {
            let a = &new.interval;
            let start = at_most_now(a.start);
            let done = sqlx::query(
                "INSERT INTO gpu_allocations (cluster, namespace, team, workload, pod, pod_uid, node, model, \
                 capacity_type, milli_gpus, mig, start_ms, end_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
            )
            .bind(cluster)
            .bind(&a.namespace)
            .bind(&a.team)
            .bind(&a.workload)
            .bind(&a.pod)
            .bind(&new.pod_uid)
            .bind(&a.node)
            .bind(&a.model)
            .bind(a.capacity_type.label())
            .bind(a.milli_gpus)
            .bind(&new.mig)
            .bind(start)
            .bind(a.end.map(|end| at_most_now(end).max(start)))
            .execute(&mut *tx)
            .await?;
            applied.allocations_opened += done.rows_affected();
        }
        // History begins at the first confirmation, or earlier where an
        // interval does (a pod bound before Gantry watched the cluster).
        let opened = changes.open_allocations.iter().map(|a| a.interval.start);
        let opened = opened.chain(changes.open_capacity.iter().map(|c| c.interval.start));
        if let Some(begins) = opened.chain(changes.confirmed_at).map(at_most_now).min() {
            sqlx::query(
                "INSERT INTO ledger_history (cluster, begins_ms) VALUES ($1, $2) \
                 ON CONFLICT (cluster) DO UPDATE SET begins_ms = excluded.begins_ms \
                 WHERE excluded.begins_ms < ledger_history.begins_ms",
            )
            .bind(cluster)
            .bind(begins)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(at) = changes.confirmed_at {
            sqlx::query(
                "INSERT INTO ledger_confirmed (cluster, confirmed_ms) VALUES ($1, $2) \
                 ON CONFLICT (cluster) DO UPDATE SET confirmed_ms = excluded.confirmed_ms",
            )
            .bind(cluster)
            .bind(at_most_now(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// When the cluster's ledger last matched its caches (the last batch
    /// with `confirmed_at`); None before the first.
    pub async fn ledger_confirmed(&self, cluster: &str) -> Result<Option<i64>> {
        let at = sqlx::query_scalar("SELECT confirmed_ms FROM ledger_confirmed WHERE cluster = $1")
            .bind(cluster)
            .fetch_optional(&self.pool)
            .await?;
        Ok(at)
    }

    /// Allocation intervals that overlap `span`, in one cluster or all, by
    /// start. Open ones keep `end: None`.
    pub async fn allocations_overlapping(&self, span: Span, cluster: Option<&str>) -> Result<Vec<AllocationInterval>> {
        let sql = overlapping_sql(ALLOCATION_COLUMNS, "gpu_allocations", "", cluster.is_some());
        let rows: Vec<AllocationRow> = overlapping(&sql, span, cluster).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|row| row.into_stored().interval).collect())
    }

    /// Capacity intervals that overlap `span`, in one cluster or all.
    pub async fn capacity_overlapping(&self, span: Span, cluster: Option<&str>) -> Result<Vec<CapacityInterval>> {
        let sql = overlapping_sql(CAPACITY_COLUMNS, "gpu_capacity", "", cluster.is_some());
        let rows: Vec<CapacityRow> = overlapping(&sql, span, cluster).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|row| row.into_stored().interval).collect())
    }

    /// The times clusters were stale within `span` (downtime gaps are not
    /// billing gaps, so they are left out). A gap still open runs to the end
    /// of `span`.
    pub async fn gaps_overlapping(&self, span: Span, cluster: Option<&str>) -> Result<Vec<Gap>> {
        let sql = overlapping_sql(GAP_COLUMNS, "ledger_gaps", " AND reason = 'stale'", cluster.is_some());
        let rows: Vec<GapRow> = overlapping(&sql, span, cluster).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|row| Gap { span: Span::new(row.start_ms, row.end_ms.unwrap_or(span.end)), cluster: row.cluster })
            .collect())
    }

    /// Retention: removes closed intervals and gaps that ended before
    /// `cutoff`. Open ones stay however old they are.
    pub async fn delete_raw_before(&self, cutoff: i64) -> Result<RawDeleted> {
        let mut deleted = RawDeleted::default();
        for (table, count) in [
            ("gpu_allocations", &mut deleted.allocations),
            ("gpu_capacity", &mut deleted.capacity),
            ("ledger_gaps", &mut deleted.gaps),
        ] {
            let sql = format!("DELETE FROM {table} WHERE end_ms < $1");
            *count = sqlx::query(&sql).bind(cutoff).execute(&self.pool).await?.rows_affected();
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::usage::{MS_PER_HOUR, PriceBook, Utilisation, usage_over};

    use super::*;

    const H: i64 = MS_PER_HOUR;
    const T: i64 = 1_793_000_000_000 - 1_793_000_000_000 % H;

    fn pod(name: &str, milli_gpus: i64, start: i64) -> NewAllocation {
        NewAllocation {
            pod_uid: format!("uid-{name}"),
            mig: None,
            interval: AllocationInterval {
                cluster: "prod".into(),
                namespace: "ml".into(),
                team: Some("vision".into()),
                workload: format!("Deployment/{name}"),
                pod: format!("{name}-0"),
                node: "n1".into(),
                model: "H100".into(),
                capacity_type: CapacityType::OnDemand,
                milli_gpus,
                start,
                end: None,
            },
        }
    }

    fn node(name: &str, milli_gpus: i64, start: i64) -> NewCapacity {
        NewCapacity {
            node_uid: format!("uid-{name}"),
            interval: CapacityInterval {
                cluster: "prod".into(),
                node: name.into(),
                model: "H100".into(),
                capacity_type: CapacityType::Spot,
                milli_gpus,
                start,
                end: None,
            },
        }
    }

    crate::store_test!(a_batch_opens_and_closes_intervals_once, |store| {
        let mig = NewAllocation { mig: Some("1g.10gb×2".into()), ..pod("mig", 286, T) };
        let opening = LedgerChanges {
            open_allocations: vec![pod("llm", 2000, T), mig.clone()],
            open_capacity: vec![node("n1", 8000, T - H)],
            ..LedgerChanges::default()
        };
        assert_eq!(store.ledger_confirmed("prod").await.unwrap(), None);
        let applied = store.apply_ledger("prod", &opening, T + H).await.unwrap();
        assert_eq!((applied.allocations_opened, applied.capacity_opened), (2, 1));
        assert_eq!(
            store.ledger_confirmed("prod").await.unwrap(),
            None,
            "a batch without confirmed_at confirms nothing"
        );
        let confirming = LedgerChanges { confirmed_at: Some(T + 2 * H), ..LedgerChanges::default() };
        store.apply_ledger("prod", &confirming, T + H).await.unwrap();
        assert_eq!(store.ledger_confirmed("prod").await.unwrap(), Some(T + H), "never later than now");
        let open = store.open_allocations("prod").await.unwrap();
        assert_eq!(
            open.iter().map(|a| a.interval.clone()).collect::<Vec<_>>(),
            [pod("llm", 2000, T).interval, mig.interval.clone()]
        );
        assert_eq!(open[1].mig.as_deref(), Some("1g.10gb×2"));
        assert_eq!(open[1].pod_uid, "uid-mig");
        assert!(store.open_allocations("lab").await.unwrap().is_empty());

        // A second writer (or a retry) opening the same pods doubles nothing.
        let again = store.apply_ledger("prod", &opening, T + H).await.unwrap();
        assert_eq!(again, LedgerApplied::default());
        assert_eq!(store.open_allocations("prod").await.unwrap().len(), 2);
        assert_eq!(store.open_capacity("prod").await.unwrap().len(), 1);

        // The pod moves: closed and opened again in one batch.
        let llm = open[0].id;
        let moved = LedgerChanges {
            close_allocations: vec![Closing { id: llm, end_ms: T + H / 2 }],
            open_allocations: vec![pod("llm", 1000, T + H / 2)],
            ..LedgerChanges::default()
        };
        let applied = store.apply_ledger("prod", &moved, T + H).await.unwrap();
        assert_eq!((applied.allocations_closed, applied.allocations_opened), (1, 1));
        let replay = store.apply_ledger("prod", &moved, T + H).await.unwrap();
        assert_eq!((replay.allocations_closed, replay.allocations_opened), (0, 0), "a replayed batch is a no-op");
        let open = store.open_allocations("prod").await.unwrap();
        assert_eq!(open.iter().map(|a| a.interval.milli_gpus).collect::<Vec<_>>(), [286, 1000]);

        // A close for another cluster's id changes nothing.
        let other =
            LedgerChanges { close_allocations: vec![Closing { id: open[0].id, end_ms: T + H }], ..Default::default() };
        assert_eq!(store.apply_ledger("lab", &other, T + H).await.unwrap().allocations_closed, 0);
        // An interval of another cluster in the batch is refused before anything is written.
        let foreign = LedgerChanges {
            open_allocations: vec![NewAllocation {
                interval: AllocationInterval { cluster: "lab".into(), ..pod("x", 1000, T).interval },
                ..pod("x", 1000, T)
            }],
            ..Default::default()
        };
        assert!(matches!(store.apply_ledger("prod", &foreign, T + H).await, Err(Error::Config(_))));
    });

    crate::store_test!(history_begins_at_the_earliest_moment_the_ledger_knows, |store| {
        let clusters = ["prod".to_string(), "lab".to_string()];
        assert!(store.history_begins(&clusters).await.unwrap().is_empty());
        let first = LedgerChanges { confirmed_at: Some(T + H), ..LedgerChanges::default() };
        store.apply_ledger("prod", &first, T + H).await.unwrap();
        assert_eq!(store.history_begins(&clusters).await.unwrap().get("prod"), Some(&(T + H)));
        // A node that came up before Gantry first watched moves it back; later batches do not move it on.
        let earlier = LedgerChanges {
            open_capacity: vec![node("n1", 8000, T)],
            confirmed_at: Some(T + 2 * H),
            ..LedgerChanges::default()
        };
        store.apply_ledger("prod", &earlier, T + 2 * H).await.unwrap();
        let later = LedgerChanges {
            open_allocations: vec![pod("llm", 1000, T + 3 * H)],
            confirmed_at: Some(T + 3 * H),
            ..LedgerChanges::default()
        };
        store.apply_ledger("prod", &later, T + 3 * H).await.unwrap();
        let begins = store.history_begins(&clusters).await.unwrap();
        assert_eq!(begins.into_iter().collect::<Vec<_>>(), [("prod".to_string(), T)]);
    });

    crate::store_test!(a_failing_batch_writes_nothing, |store| {
        let good = pod("a", 1000, T);
        let bad = NewAllocation { pod_uid: "uid-b".into(), ..pod("b", -5, T) };
        let batch = LedgerChanges {
            open_allocations: vec![good, bad],
            open_gap: Some(NewGap { start_ms: T, end_ms: None, reason: GapReason::Stale }),
            ..Default::default()
        };
        assert!(store.apply_ledger("prod", &batch, T + H).await.is_err(), "negative GPUs are refused");
        assert!(store.open_allocations("prod").await.unwrap().is_empty());
        assert_eq!(store.open_gap("prod").await.unwrap(), None);
    });

    crate::store_test!(times_are_held_to_now_and_ends_to_their_start, |store| {
        let batch = LedgerChanges { open_allocations: vec![pod("future", 1000, T + 5 * H)], ..Default::default() };
        store.apply_ledger("prod", &batch, T).await.unwrap();
        let open = store.open_allocations("prod").await.unwrap();
        assert_eq!(open[0].interval.start, T, "a start after now is held to now");
        let skewed =
            LedgerChanges { close_allocations: vec![Closing { id: open[0].id, end_ms: T - H }], ..Default::default() };
        store.apply_ledger("prod", &skewed, T + H).await.unwrap();
        let all = store.allocations_overlapping(Span::new(T - H, T + H), Some("prod")).await.unwrap();
        assert_eq!((all[0].start, all[0].end), (T, Some(T)), "an end before the start is held to the start");
    });

    crate::store_test!(gaps_open_once_and_close, |store| {
        let stale = NewGap { start_ms: T, end_ms: None, reason: GapReason::Stale };
        let opened = LedgerChanges { open_gap: Some(stale), ..Default::default() };
        assert_eq!(store.apply_ledger("prod", &opened, T + H).await.unwrap().gaps_opened, 1);
        assert_eq!(
            store.apply_ledger("prod", &opened, T + H).await.unwrap().gaps_opened,
            0,
            "one open gap per cluster"
        );
        let gap = store.open_gap("prod").await.unwrap().unwrap();
        assert_eq!((gap.start_ms, gap.end_ms, gap.reason, gap.cluster.as_str()), (T, None, GapReason::Stale, "prod"));
        // While open, a query sees it run to the end of what it asks about.
        let window = Span::new(T - H, T + 2 * H);
        assert_eq!(
            store.gaps_overlapping(window, None).await.unwrap(),
            [Gap { cluster: "prod".into(), span: Span::new(T, T + 2 * H) }]
        );
        // Closing it, and recording Gantry's own downtime, which is not a billing gap.
        let closed = LedgerChanges {
            close_gap: Some(T + H),
            open_gap: Some(NewGap { start_ms: T + H, end_ms: Some(T + H + 60_000), reason: GapReason::Downtime }),
            ..Default::default()
        };
        let applied = store.apply_ledger("prod", &closed, T + 2 * H).await.unwrap();
        assert_eq!((applied.gaps_closed, applied.gaps_opened), (1, 1));
        assert_eq!(store.open_gap("prod").await.unwrap(), None);
        assert_eq!(
            store.gaps_overlapping(window, Some("prod")).await.unwrap(),
            [Gap { cluster: "prod".into(), span: Span::new(T, T + H) }]
        );
        assert!(store.gaps_overlapping(window, Some("lab")).await.unwrap().is_empty());
        assert!(store.gaps_overlapping(Span::new(T + H, T + 2 * H), None).await.unwrap().is_empty(), "half-open");
    });

    crate::store_test!(overlapping_intervals_feed_the_usage_computation, |store| {
        let mut lab = pod("lab", 1000, T - 3 * H);
        lab.interval.cluster = "lab".into();
        store
            .apply_ledger(
                "prod",
                &LedgerChanges {
                    open_allocations: vec![
                        pod("old", 1000, T - 3 * H),
                        pod("llm", 2000, T - H),
                        pod("late", 1000, T + 2 * H),
                    ],
                    open_capacity: vec![node("n1", 8000, T - 4 * H)],
                    ..Default::default()
                },
                T + 3 * H,
            )
            .await
            .unwrap();
        store
            .apply_ledger("lab", &LedgerChanges { open_allocations: vec![lab], ..Default::default() }, T)
            .await
            .unwrap();
        let old = store.open_allocations("prod").await.unwrap()[0].id;
        let close = LedgerChanges { close_allocations: vec![Closing { id: old, end_ms: T }], ..Default::default() };
        store.apply_ledger("prod", &close, T + 3 * H).await.unwrap();

        let hour = Span::new(T, T + H);
        let held = store.allocations_overlapping(hour, Some("prod")).await.unwrap();
        assert_eq!(
            held.iter().map(|a| a.workload.as_str()).collect::<Vec<_>>(),
            ["Deployment/llm"],
            "the interval that ended at T is out"
        );
        let all = store.allocations_overlapping(hour, None).await.unwrap();
        assert_eq!(all.iter().map(|a| a.cluster.as_str()).collect::<Vec<_>>(), ["lab", "prod"], "by start");
        let earlier = store.allocations_overlapping(Span::new(T - H, T), Some("prod")).await.unwrap();
        assert_eq!(earlier.len(), 2);
        let offered = store.capacity_overlapping(hour, Some("prod")).await.unwrap();
        assert_eq!(offered, [node("n1", 8000, T - 4 * H).interval]);
        assert!(store.capacity_overlapping(Span::new(T - 5 * H, T - 4 * H), None).await.unwrap().is_empty());

        // What the domain computes from them: 2 GPUs held of 8 spot GPUs offered.
        let usage = usage_over(hour, &held, &offered, &[], &PriceBook::default(), &Utilisation::default(), T + 3 * H);
        let (allocated, idle): (i64, i64) = usage.values().fold((0, 0), |(a, i), u| (a + u.allocated, i + u.idle));
        // The pod's model and capacity type differ from the node's (spot), so all 8 are idle.
        assert_eq!((allocated, idle), (2000 * H, 8000 * H));
    });

    crate::store_test!(retention_removes_only_closed_history, |store| {
        store
            .apply_ledger(
                "prod",
                &LedgerChanges {
                    open_allocations: vec![pod("old", 1000, T - 50 * H), pod("open", 1000, T - 50 * H)],
                    open_capacity: vec![node("n1", 8000, T - 50 * H)],
                    open_gap: Some(NewGap { start_ms: T - 49 * H, end_ms: Some(T - 48 * H), reason: GapReason::Stale }),
                    ..Default::default()
                },
                T,
            )
            .await
            .unwrap();
        let old = store.open_allocations("prod").await.unwrap()[0].id;
        let capacity = store.open_capacity("prod").await.unwrap()[0].id;
        store
            .apply_ledger(
                "prod",
                &LedgerChanges {
                    close_allocations: vec![Closing { id: old, end_ms: T - 40 * H }],
                    close_capacity: vec![Closing { id: capacity, end_ms: T - 10 * H }],
                    ..Default::default()
                },
                T,
            )
            .await
            .unwrap();
        let deleted = store.delete_raw_before(T - 20 * H).await.unwrap();
        assert_eq!(deleted, RawDeleted { allocations: 1, capacity: 0, gaps: 1 });
        let left = store.allocations_overlapping(Span::new(T - 100 * H, T), None).await.unwrap();
        assert_eq!(
            left.iter().map(|a| a.workload.as_str()).collect::<Vec<_>>(),
            ["Deployment/open"],
            "open intervals stay"
        );
        assert_eq!(store.capacity_overlapping(Span::new(T - 100 * H, T), None).await.unwrap().len(), 1);
    });
}
