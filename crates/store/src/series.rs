//! Queries behind charts that the rollup and ledger queries do not answer at
//! the grain a chart needs: one node's hourly rows, one workload's raw
//! intervals, and the hour each cluster's rollups begin (before it, a chart
//! shows a gap, not a zero).

use std::collections::BTreeMap;

use gantry_domain::usage::{AllocationInterval, Span, Usage};

use crate::ledger::capacity_type;
use crate::rollups::{COST_UNITS_PER_NANO_USD, UTIL_WEIGHT_PER_BUSY_MS, from_stored};
use crate::{Result, Store, UsageGroup};

/// One stored hour of one node (a row of `usage_hourly_nodes`).
#[derive(sqlx::FromRow)]
struct NodeHourRow {
    hour_ms: i64,
    model: String,
    capacity_type: String,
    allocated: i64,
    capacity: i64,
    idle: i64,
    unpriced: i64,
    util_known: i64,
    util_busy: i64,
    wasted: i64,
    cost_nanos: i64,
    idle_cost_nanos: i64,
    on_demand_cost_nanos: i64,
    wasted_cost_nanos: i64,
}

impl NodeHourRow {
    fn into_group(self, cluster: &str, node: &str) -> UsageGroup {
        let cost = |nanos: i64| from_stored(i128::from(nanos), COST_UNITS_PER_NANO_USD);
        UsageGroup {
            bucket: Some(self.hour_ms),
            cluster: Some(cluster.to_string()),
            namespace: None,
            team: None,
            workload: None,
            node: Some(node.to_string()),
            model: Some(self.model),
            capacity_type: Some(capacity_type(&self.capacity_type)),
            idle: false,
            usage: Usage {
                allocated: self.allocated,
                capacity: self.capacity,
                idle: self.idle,
                unpriced: self.unpriced,
                util_known: self.util_known,
                util_weighted: from_stored(i128::from(self.util_busy), UTIL_WEIGHT_PER_BUSY_MS),
                wasted: self.wasted,
                cost: cost(self.cost_nanos),
                idle_cost: cost(self.idle_cost_nanos),
                on_demand_cost: cost(self.on_demand_cost_nanos),
                wasted_cost: cost(self.wasted_cost_nanos),
            },
        }
    }
}

#[derive(sqlx::FromRow)]
struct IntervalRow {
    cluster: String,
    namespace: String,
    team: Option<String>,
    workload: String,
    pod: String,
    node: String,
    model: String,
    capacity_type: String,
    milli_gpus: i64,
    start_ms: i64,
    end_ms: Option<i64>,
}

const INTERVAL_COLUMNS: &str =
    "id, cluster, namespace, team, workload, pod, node, model, capacity_type, milli_gpus, start_ms, end_ms";

impl Store {
    /// One node's hourly rows (one per model and capacity type) whose hour
    /// starts within `span`, oldest first. Each row is one hour of one
    /// node, so nothing is summed here and no sum can overflow.
    pub async fn node_hours(&self, cluster: &str, node: &str, span: Span) -> Result<Vec<UsageGroup>> {
        let rows: Vec<NodeHourRow> = sqlx::query_as(
            "SELECT hour_ms, model, capacity_type, allocated, capacity, idle, unpriced, util_known, util_busy, \
             wasted, cost_nanos, idle_cost_nanos, on_demand_cost_nanos, wasted_cost_nanos \
             FROM usage_hourly_nodes WHERE cluster = $1 AND node = $2 AND hour_ms >= $3 AND hour_ms < $4 \
             ORDER BY hour_ms, model, capacity_type",
        )
        .bind(cluster)
        .bind(node)
        .bind(span.start)
        .bind(span.end)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| row.into_group(cluster, node)).collect())
    }

    /// When the ledger's history of each of `clusters` begins (see
    /// [`Store::apply_ledger`]); a cluster it never recorded is left out.
    pub async fn history_begins(&self, clusters: &[String]) -> Result<BTreeMap<String, i64>> {
        self.per_cluster("SELECT begins_ms FROM ledger_history WHERE cluster = $1", clusters).await
    }

    /// The time each of `clusters`' rollups were last computed as of: the
    /// current hour's rollup holds what happened up to then, and no later.
    /// A cluster never rolled up is left out.
    pub async fn rollups_reach(&self, clusters: &[String]) -> Result<BTreeMap<String, i64>> {
        self.per_cluster("SELECT rolled_to_ms FROM rollup_watermarks WHERE cluster = $1", clusters).await
    }

    /// One time per cluster from `sql` (which takes the cluster as $1).
    async fn per_cluster(&self, sql: &str, clusters: &[String]) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for cluster in clusters {
            let at: Option<Option<i64>> = sqlx::query_scalar(sql).bind(cluster).fetch_optional(&self.pool).await?;
            if let Some(Some(at)) = at {
                out.insert(cluster.clone(), at);
            }
        }
        Ok(out)
    }

    /// When one workload first held GPUs, in the raw intervals kept, and
    /// when it last gave them back: None while it still holds some. None
    /// for both when nothing of it is kept.
    pub async fn workload_life(
        &self,
        cluster: &str,
        namespace: &str,
        workload: &str,
    ) -> Result<(Option<i64>, Option<i64>)> {
        let (first, last, open): (Option<i64>, Option<i64>, i64) = sqlx::query_as(
            "SELECT MIN(start_ms), MAX(end_ms), COUNT(*) - COUNT(end_ms) FROM gpu_allocations \
             WHERE cluster = $1 AND namespace = $2 AND workload = $3",
        )
        .bind(cluster)
        .bind(namespace)
        .bind(workload)
        .fetch_one(&self.pool)
        .await?;
        Ok((first, if open > 0 { None } else { last }))
    }

    /// One workload's allocation intervals that overlap `span`, by start.
    pub async fn workload_allocations(
        &self,
        span: Span,
        cluster: &str,
        namespace: &str,
        workload: &str,
    ) -> Result<Vec<AllocationInterval>> {
        let filter = "cluster = $3 AND namespace = $4 AND workload = $5";
        let sql = format!(
            "SELECT {INTERVAL_COLUMNS} FROM gpu_allocations WHERE end_ms > $1 AND start_ms < $2 AND {filter} \
             UNION ALL \
             SELECT {INTERVAL_COLUMNS} FROM gpu_allocations WHERE end_ms IS NULL AND start_ms < $2 AND {filter} \
             ORDER BY start_ms, id"
        );
        let rows: Vec<IntervalRow> = sqlx::query_as(&sql)
            .bind(span.start)
            .bind(span.end)
            .bind(cluster)
            .bind(namespace)
            .bind(workload)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| AllocationInterval {
                cluster: row.cluster,
                namespace: row.namespace,
                team: row.team,
                workload: row.workload,
                pod: row.pod,
                node: row.node,
                model: row.model,
                capacity_type: capacity_type(&row.capacity_type),
                milli_gpus: row.milli_gpus,
                start: row.start_ms,
                end: row.end_ms,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::gpu::CapacityType;
    use gantry_domain::usage::{CapacityInterval, HourlyRow, MS_PER_HOUR, UsageKey};

    use crate::store_test;
    use crate::{Closing, LedgerChanges, NewAllocation, NewCapacity};

    const HOUR: i64 = 1_795_996_800_000;

    fn node_row(hour: i64, node: &str, model: &str, allocated: i64, capacity: i64) -> HourlyRow {
        HourlyRow {
            hour,
            key: UsageKey {
                cluster: "prod".into(),
                namespace: String::new(),
                team: None,
                workload: gantry_domain::usage::IDLE.into(),
                node: node.into(),
                model: model.into(),
                capacity_type: CapacityType::Spot,
            },
            usage: gantry_domain::usage::Usage {
                allocated,
                capacity,
                cost: 7_200_000_000_000,
                util_weighted: 50_000,
                ..Default::default()
            },
        }
    }

    store_test!(one_nodes_hours_come_back_alone_and_whole, |store| {
        let rows = [node_row(HOUR, "n1", "H100", 0, 8 * MS_PER_HOUR * 1000), node_row(HOUR, "n2", "L4", 0, 3)];
        store.replace_hour("prod", HOUR, &rows).await.unwrap();
        store
            .replace_hour("prod", HOUR + MS_PER_HOUR, &[node_row(HOUR + MS_PER_HOUR, "n1", "H100", 0, 5)])
            .await
            .unwrap();
        let span = gantry_domain::usage::Span::new(HOUR, HOUR + 2 * MS_PER_HOUR);
        let hours = store.node_hours("prod", "n1", span).await.unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].bucket, Some(HOUR));
        assert_eq!((hours[0].model.as_deref(), hours[0].capacity_type), (Some("H100"), Some(CapacityType::Spot)));
        assert_eq!(hours[0].usage.capacity, 8 * MS_PER_HOUR * 1000);
        assert_eq!(hours[0].usage.cost, 7_200_000_000_000, "a whole number of nano-dollars comes back exactly");
        assert_eq!(hours[0].usage.util_weighted, 50_000);
        assert_eq!(hours[1].usage.capacity, 5);
        assert!(store.node_hours("prod", "n3", span).await.unwrap().is_empty());
        let short = gantry_domain::usage::Span::new(HOUR + 1, HOUR + 2 * MS_PER_HOUR);
        assert_eq!(store.node_hours("prod", "n1", short).await.unwrap().len(), 1, "hours starting within the span");
    });

    store_test!(a_workloads_intervals_come_back_and_no_others, |store| {
        let allocation = |pod: &str, namespace: &str, workload: &str, start: i64, end: Option<i64>| NewAllocation {
            pod_uid: format!("uid-{pod}"),
            mig: None,
            interval: gantry_domain::usage::AllocationInterval {
                cluster: "prod".into(),
                namespace: namespace.into(),
                team: Some("vision".into()),
                workload: workload.into(),
                pod: pod.into(),
                node: "n1".into(),
                model: "H100".into(),
                capacity_type: CapacityType::OnDemand,
                milli_gpus: 1000,
                start,
                end,
            },
        };
        let changes = LedgerChanges {
            open_allocations: vec![
                allocation("a-1", "ml", "Deployment/a", HOUR, None),
                allocation("a-0", "ml", "Deployment/a", HOUR - 10 * MS_PER_HOUR, Some(HOUR - 9 * MS_PER_HOUR)),
                allocation("b-1", "ml", "Deployment/b", HOUR, None),
                allocation("a-x", "other", "Deployment/a", HOUR, None),
            ],
            open_capacity: vec![NewCapacity {
                node_uid: "uid-n1".into(),
                interval: CapacityInterval {
                    cluster: "prod".into(),
                    node: "n1".into(),
                    model: "H100".into(),
                    capacity_type: CapacityType::OnDemand,
                    milli_gpus: 8000,
                    start: HOUR - 20 * MS_PER_HOUR,
                    end: None,
                },
            }],
            ..Default::default()
        };
        store.apply_ledger("prod", &changes, HOUR + MS_PER_HOUR).await.unwrap();
        let span = gantry_domain::usage::Span::new(HOUR - MS_PER_HOUR, HOUR + MS_PER_HOUR);
        let found = store.workload_allocations(span, "prod", "ml", "Deployment/a").await.unwrap();
        assert_eq!(found.iter().map(|a| a.pod.as_str()).collect::<Vec<_>>(), ["a-1"]);
        let all = gantry_domain::usage::Span::new(0, HOUR + MS_PER_HOUR);
        let found = store.workload_allocations(all, "prod", "ml", "Deployment/a").await.unwrap();
        assert_eq!(found.iter().map(|a| a.pod.as_str()).collect::<Vec<_>>(), ["a-0", "a-1"]);
        assert_eq!((found[0].end, found[1].end), (Some(HOUR - 9 * MS_PER_HOUR), None));
        assert!(store.workload_allocations(all, "dev", "ml", "Deployment/a").await.unwrap().is_empty());
        assert_eq!(store.workload_life("dev", "ml", "Deployment/a").await.unwrap(), (None, None));
        let running = store.workload_life("prod", "ml", "Deployment/a").await.unwrap();
        assert_eq!(running, (Some(HOUR - 10 * MS_PER_HOUR), None), "one pod still holds its GPU");
        let open = store.open_allocations("prod").await.unwrap();
        let a1 = open.iter().find(|a| a.interval.pod == "a-1").unwrap().id;
        let closing =
            LedgerChanges { close_allocations: vec![Closing { id: a1, end_ms: HOUR + 5 }], ..Default::default() };
        store.apply_ledger("prod", &closing, HOUR + MS_PER_HOUR).await.unwrap();
        let ended = store.workload_life("prod", "ml", "Deployment/a").await.unwrap();
        assert_eq!(ended, (Some(HOUR - 10 * MS_PER_HOUR), Some(HOUR + 5)));
    });
}
