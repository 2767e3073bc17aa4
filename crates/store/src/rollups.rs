//! Hourly and daily rollups of the ledger, so that a question about 30 or
//! 400 days reads a few thousand pre-summed rows, summed again in SQL.
//!
//! Five tables hold the same sums at different grains: `usage_hourly` per
//! hour and (cluster, namespace, team, workload, model, capacity type);
//! `usage_hourly_nodes` per hour and (cluster, node, model, capacity type);
//! `usage_hourly_namespaces` per hour with the keys of `usage_hourly` but
//! every workload of a namespace together (idle capacity kept as its own
//! row); `usage_daily` and `usage_daily_namespaces` per UTC day with the
//! keys of their hourly tables, recomputed from them whenever one of the
//! day's hours is replaced. An hour is written whole by
//! [`Store::replace_hour`], so rolling an hour up again (after a crash, a
//! late price, a retry) replaces it instead of adding to it.
//!
//! A question reads the smallest table that has its dimensions (no
//! workload: the namespace tables, dozens of rows a day instead of
//! thousands), and a daily question reads whole UTC days from the daily
//! table and its partial first and last days' hours from the hourly one.
//!
//! # Units
//!
//! GPU time stays in milli-GPU-milliseconds, the ledger's own unit, so an
//! hour served from the rollups agrees to the unit with the same hour
//! computed from raw intervals, and a window's whole hours from rollups add
//! up exactly with its partial edge hours from raw intervals. Storing
//! milli-GPU-seconds instead would round every row and break that. A row
//! holds at most one cluster's day of one key, which fits an i64 with room to
//! spare (a day of 100,000 GPUs is 8.6 × 10¹⁵).
//!
//! Sums over many rows need not fit: SQLite's `SUM()` fails on overflow,
//! PostgreSQL's returns NUMERIC, which the `Any` driver cannot decode, and
//! cost at the highest price Gantry accepts over 8,000 GPUs and 400 days is
//! 7.7 × 10²⁰ nano-dollars. So a question is first summed plainly, each sum
//! cast to BIGINT, which fits every realistic question (a month of the
//! 6,400-GPU scale fleet costs ~10¹⁶ nano-dollars); if either backend says a
//! sum overflowed (SQLite's "integer overflow", PostgreSQL's SQLSTATE 22003),
//! the question is asked again with every column summed in two halves,
//! `SUM(v / 10⁹)` and `SUM(v % 10⁹)`: each half fits for up to ~9 × 10⁹ rows,
//! and Rust joins them into an exact i128. Either way no float, no NUMERIC,
//! no rounding in the sum; the plain form reads half the columns, which is
//! most of a large question's time.
//!
//! Money and utilisation are kept coarser than the domain's exact i128 sums,
//! in units that fit a day's row in an i64: cost as nano-dollars (one is
//! 3.6 × 10⁶ cost units; a row is off by at most half a nano-dollar, and
//! exact whenever its cost is a whole number of them), and utilisation
//! as busy milli-GPU-milliseconds (`util_weighted` ÷ 10,000: the GPU time at
//! 100 % that the measured utilisation amounts to). Both are rounded half
//! away from zero by [`to_stored`] and read back by [`from_stored`]. Kept
//! exactly, `util_weighted` of one workload's day would overflow an i64 past
//! ~10,000 GPUs. What is left: one key's day costs at most 9.2 × 10¹⁸
//! nano-dollars, which is 38,000 GPUs of one workload at the highest price
//! accepted ($10,000 per GPU-hour), or 3.8 million at $100; past it the
//! day's recompute fails (the hour's replacement with it), it never wraps.
//!
//! # PostgreSQL partitions and scaling out
//!
//! On PostgreSQL the three hourly tables are partitioned by range of `hour_ms`,
//! one partition per UTC month, created by [`Store::ensure_partitions`] (rows
//! of a month without one wait in a DEFAULT partition and move when it is
//! created). Retention then drops whole months instead of deleting millions
//! of rows, and a query over a window reads only its months. The primary
//! keys include `hour_ms`, as partitioning requires, and nothing else had to
//! give for it.
//!
//! Beyond one PostgreSQL server the same schema distributes on `cluster`
//! (Citus: `create_distributed_table('usage_hourly', 'cluster')`, likewise
//! for the other rollup tables and the ledger tables): every
//! write (a ledger batch, an hour's replacement with its day's recompute)
//! touches one cluster, so it stays on one shard, and a fleet-wide question
//! is a GROUP BY that each shard answers for its clusters and the
//! coordinator adds up. Every rollup key includes `cluster`, as a
//! distributed primary key must; the ledger tables would need their primary
//! keys widened to `(cluster, id)`. Monthly time partitions combine with
//! distribution. The one thing to revisit there is the temporary table that
//! carries a viewer's visible namespaces into a query: Citus plans a join of
//! a local table with a distributed one by sending the local rows to the
//! workers, acceptable for the thousands it holds; a reference table of
//! visibility would avoid even that.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use gantry_domain::allocation::{GroupOrder, GroupPage};
use gantry_domain::usage::{self, Dimension, HourlyRow, IDLE, MS_PER_DAY, MS_PER_HOUR, Span, Usage};
use sqlx::Connection;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::ledger::capacity_type;
use crate::{Backend, Error, Result, Store};

/// Cost units in one nano-dollar: 3.6 × 10⁹ units are a micro-dollar.
pub(crate) const COST_UNITS_PER_NANO_USD: i128 = 3_600_000;
/// `util_weighted` (hundredths of a percent × milli-GPU-ms) in one busy
/// milli-GPU-millisecond.
pub(crate) const UTIL_WEIGHT_PER_BUSY_MS: i128 = 10_000;
/// Each stored value is summed as `v / SPLIT` and `v % SPLIT`.
const SPLIT: i128 = 1_000_000_000;
/// The most (cluster, namespace) pairs written to the scope table per
/// statement: 800 parameters, under every limit either backend has had.
const SCOPE_CHUNK: usize = 400;
/// The most clusters or teams a filter may name in its IN lists.
const MAX_LISTED: usize = 1_000;
/// Rows per multi-row INSERT when writing an hour.
const INSERT_CHUNK: usize = 40;

/// An exact amount in a stored unit `per` times coarser, rounded half away
/// from zero and held to an i64.
pub(crate) fn to_stored(exact: i128, per: i128) -> i64 {
    let quotient = exact / per;
    let remainder = exact % per;
    let rounded = if remainder.unsigned_abs() * 2 >= per.unsigned_abs() { quotient + exact.signum() } else { quotient };
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

/// A stored amount (or a sum of them) back in exact units.
pub(crate) fn from_stored(stored: i128, per: i128) -> i128 {
    stored.saturating_mul(per)
}

/// Which rollups a question reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Per hour, by cluster, namespace, team, workload, model and capacity type.
    Hourly,
    /// Per hour, by cluster, node, model and capacity type: a node's pods and
    /// its idle capacity are one row, with `allocated` and `idle` apart.
    HourlyNodes,
    /// Per UTC day, with the keys of [`Tier::Hourly`]; the hours of a span's
    /// partial days come from the hourly rollups. Buckets must be whole days.
    Daily,
}

/// The table a part of a question reads: a [`Tier`], narrowed to the
/// namespace tables when no workload is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Hourly,
    HourlyNamespaces,
    HourlyNodes,
    Daily,
    DailyNamespaces,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Hourly => "usage_hourly",
            Table::HourlyNamespaces => "usage_hourly_namespaces",
            Table::HourlyNodes => "usage_hourly_nodes",
            Table::Daily => "usage_daily",
            Table::DailyNamespaces => "usage_daily_namespaces",
        }
    }

    fn time_column(self) -> &'static str {
        if matches!(self, Table::Daily | Table::DailyNamespaces) { "day_ms" } else { "hour_ms" }
    }
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Hourly => "hourly",
            Tier::HourlyNodes => "hourly_nodes",
            Tier::Daily => "daily",
        }
    }

    fn column(self, dimension: Dimension) -> Option<&'static str> {
        let by_node = self == Tier::HourlyNodes;
        match dimension {
            Dimension::Cluster => Some("cluster"),
            Dimension::Model => Some("model"),
            Dimension::CapacityType => Some("capacity_type"),
            Dimension::Node => by_node.then_some("node"),
            Dimension::Namespace => (!by_node).then_some("namespace"),
            Dimension::Team => (!by_node).then_some("team"),
            Dimension::Workload => (!by_node).then_some("workload"),
        }
    }

    /// The parts of `span` this tier reads, and from which tables: a daily
    /// question reads its whole UTC days from the daily table and the hours
    /// at either edge from the hourly one, so a window that starts or ends
    /// inside a day counts exactly its hours. Without a workload in the
    /// question (`by_workload` false), the namespace tables, which hold the
    /// same sums without the workload, answer it from far fewer rows.
    fn plan(self, span: Span, by_workload: bool) -> Vec<(Table, Span)> {
        let (hourly, daily) = match (self, by_workload) {
            (Tier::HourlyNodes, _) => return vec![(Table::HourlyNodes, span)],
            (_, true) => (Table::Hourly, Table::Daily),
            (_, false) => (Table::HourlyNamespaces, Table::DailyNamespaces),
        };
        if self == Tier::Hourly {
            return vec![(hourly, span)];
        }
        let first_day = usage::bucket_start(span.start + MS_PER_DAY - 1, MS_PER_DAY);
        let end_day = usage::bucket_start(span.end, MS_PER_DAY);
        if first_day >= end_day {
            return vec![(hourly, span)];
        }
        [
            (hourly, Span::new(span.start, first_day)),
            (daily, Span::new(first_day, end_day)),
            (hourly, Span::new(end_day, span.end)),
        ]
        .into_iter()
        .filter(|(_, part)| !part.is_empty())
        .collect()
    }
}

/// A usage question: which rollups, over what span, grouped by what, in
/// buckets of what length (None: one row per group), seen by whom.
#[derive(Clone, Copy, Debug)]
pub struct UsageQuestion<'a> {
    pub tier: Tier,
    pub span: Span,
    pub by: &'a [Dimension],
    pub bucket_ms: Option<i64>,
    pub filter: &'a UsageFilter,
}

/// What a usage question may see. None is no restriction; an empty list
/// lets nothing through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageFilter {
    /// Only these clusters (at most 1,000).
    pub clusters: Option<Vec<String>>,
    /// Only these (cluster, namespace) pairs: a team member's visibility.
    /// Any number; they travel in a temporary table, not the SQL text.
    /// Idle rows (namespace "") are outside every such list.
    pub namespaces: Option<Vec<(String, String)>>,
    /// Only these teams ("" for namespaces without one; at most 1,000).
    pub teams: Option<Vec<String>>,
    /// Only this workload (`Deployment/llm`, or [`IDLE`]).
    pub workload: Option<String>,
}

/// One group of a usage question: the values of the dimensions grouped by
/// (None for the others), the bucket, and the exact sums. Idle capacity has
/// `idle` set and [`IDLE`] as its namespace, team and workload when those
/// are grouped by, as in [`gantry_domain::usage::AllocationRow`]. A team of
/// "" is a namespace that had none.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageGroup {
    /// The start of the bucket (`time - time % bucket_ms`); None without one.
    pub bucket: Option<i64>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub team: Option<String>,
    pub workload: Option<String>,
    pub node: Option<String>,
    pub model: Option<String>,
    pub capacity_type: Option<gantry_domain::gpu::CapacityType>,
    /// Always false in [`Tier::HourlyNodes`], whose rows mix both.
    pub idle: bool,
    pub usage: Usage,
}

/// What [`Store::delete_rollups_before`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RollupsDeleted {
    /// Of `usage_hourly` and `usage_hourly_namespaces`.
    pub hourly_rows: u64,
    pub node_rows: u64,
    /// Of `usage_daily` and `usage_daily_namespaces`.
    pub daily_rows: u64,
    /// Whole monthly partitions dropped (PostgreSQL); their rows are not
    /// counted above.
    pub partitions: u64,
}

/// One of the sums a usage question can ask for, as [`Usage`] names it; in
/// the order of [`VALUE_COLUMNS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sum {
    Allocated,
    Capacity,
    Idle,
    Unpriced,
    UtilKnown,
    UtilWeighted,
    Wasted,
    Cost,
    IdleCost,
    OnDemandCost,
    WastedCost,
}

impl Sum {
    /// Every sum, in the order of [`VALUE_COLUMNS`].
    pub const ALL: [Sum; 11] = [
        Sum::Allocated,
        Sum::Capacity,
        Sum::Idle,
        Sum::Unpriced,
        Sum::UtilKnown,
        Sum::UtilWeighted,
        Sum::Wasted,
        Sum::Cost,
        Sum::IdleCost,
        Sum::OnDemandCost,
        Sum::WastedCost,
    ];

    fn column(self) -> &'static str {
        VALUE_COLUMNS[self as usize]
    }
}

/// The value columns, in the order of [`stored_values`] and [`Sum`].
const VALUE_COLUMNS: [&str; 11] = [
    "allocated",
    "capacity",
    "idle",
    "unpriced",
    "util_known",
    "util_busy",
    "wasted",
    "cost_nanos",
    "idle_cost_nanos",
    "on_demand_cost_nanos",
    "wasted_cost_nanos",
];
const WORKLOAD_KEYS: [&str; 6] = ["cluster", "namespace", "team", "workload", "model", "capacity_type"];
/// The `workload` of a row of the namespace tables that sums every workload
/// of its namespace (the other value there is [`IDLE`]).
const ALL_WORKLOADS: &str = "";
const NODE_KEYS: [&str; 4] = ["cluster", "node", "model", "capacity_type"];
const PARTITIONED: [&str; 3] = ["usage_hourly", "usage_hourly_namespaces", "usage_hourly_nodes"];

fn stored_values(usage: &Usage) -> [i64; 11] {
    let cost = |units| to_stored(units, COST_UNITS_PER_NANO_USD);
    [
        usage.allocated,
        usage.capacity,
        usage.idle,
        usage.unpriced,
        usage.util_known,
        to_stored(usage.util_weighted, UTIL_WEIGHT_PER_BUSY_MS),
        usage.wasted,
        cost(usage.cost),
        cost(usage.idle_cost),
        cost(usage.on_demand_cost),
        cost(usage.wasted_cost),
    ]
}

fn stored_rows(groups: BTreeMap<Vec<&str>, Usage>) -> Vec<(Vec<&str>, [i64; 11])> {
    groups.into_iter().map(|(key, usage)| (key, stored_values(&usage))).collect()
}

/// How a question's columns are summed: plainly, or in two halves after a
/// plain sum overflowed (see the module's notes on units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Summing {
    Plain,
    Halves,
}

/// The columns of a usage question's rows, in order: the bucket (with a
/// step), one text column per dimension, the idle flag (all but the node
/// tables), the row count, then the asked `sums` (two columns each when
/// summed in halves). The rows are read by position, as [`Rows`] hands
/// them over.
struct Layout {
    bucket: bool,
    dimensions: Vec<Dimension>,
    idle: bool,
    sums: Vec<Sum>,
    summing: Summing,
}

impl Layout {
    /// The names of the columns, in order, as [`totals_query`] writes them
    /// for the dimensions' `columns`.
    fn names(&self, columns: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if self.bucket {
            names.push("bucket".into());
        }
        names.extend(columns.iter().map(|c| (*c).to_string()));
        if self.idle {
            names.push("idle".into());
        }
        names.push("n".into());
        for i in self.sums.iter().map(|&sum| sum as usize) {
            match self.summing {
                Summing::Plain => names.push(format!("v{i}")),
                Summing::Halves => names.extend([format!("v{i}h"), format!("v{i}l")]),
            }
        }
        names
    }

    /// The group of one row; None for a group of no rows (SQL's sums over
    /// nothing, which a GROUP BY never returns, but a plain total may).
    fn group<R: GroupRow + ?Sized>(&self, row: &R) -> std::result::Result<Option<UsageGroup>, sqlx::Error> {
        let mut column = 0;
        let mut next = || {
            column += 1;
            column - 1
        };
        let bucket = if self.bucket { Some(row.int(next())?) } else { None };
        let (mut cluster, mut namespace, mut team, mut workload) = (None, None, None, None);
        let (mut node, mut model, mut capacity) = (None, None, None);
        for &dimension in &self.dimensions {
            let slot = match dimension {
                Dimension::Cluster => &mut cluster,
                Dimension::Namespace => &mut namespace,
                Dimension::Team => &mut team,
                Dimension::Workload => &mut workload,
                Dimension::Node => &mut node,
                Dimension::Model => &mut model,
                Dimension::CapacityType => &mut capacity,
            };
            *slot = Some(row.text(next())?);
        }
        let idle = self.idle && row.int(next())? != 0;
        if row.int(next())? == 0 {
            return Ok(None);
        }
        // Sums not asked for stay zero.
        let mut sums = [0i128; VALUE_COLUMNS.len()];
        for &sum in &self.sums {
            sums[sum as usize] = match self.summing {
                Summing::Plain => i128::from(row.int(next())?),
                Summing::Halves => {
                    let high = row.int(next())?;
                    i128::from(high) * SPLIT + i128::from(row.int(next())?)
                }
            };
        }
        let label = |value: Option<String>| if idle { value.map(|_| IDLE.to_string()) } else { value };
        Ok(Some(UsageGroup {
            bucket,
            cluster,
            namespace: label(namespace),
            team: label(team),
            workload: label(workload),
            node,
            model,
            capacity_type: capacity.map(|label| capacity_type(&label)),
            idle,
            usage: usage_of_sums(sums),
        }))
    }

    /// The groups of `rows`, in their order.
    fn groups(&self, rows: &Rows) -> std::result::Result<Vec<UsageGroup>, sqlx::Error> {
        match rows {
            Rows::Json(rows) => self.groups_of(rows.iter().map(Vec::as_slice)),
            Rows::Database(rows) => self.groups_of(rows.iter()),
        }
    }

    /// The groups of `rows`, in their order, whichever form they have.
    fn groups_of<'r, R: GroupRow + ?Sized + 'r>(
        &self,
        rows: impl ExactSizeIterator<Item = &'r R>,
    ) -> std::result::Result<Vec<UsageGroup>, sqlx::Error> {
        let mut groups = Vec::with_capacity(rows.len());
        for row in rows {
            groups.extend(self.group(row)?);
        }
        Ok(groups)
    }
}

/// The rows of a usage question, in the form [`asked`] chose for the
/// backend: on SQLite parsed from one JSON array of arrays per query, on
/// PostgreSQL the database's rows themselves.
enum Rows {
    Json(Vec<Vec<serde_json::Value>>),
    Database(Vec<AnyRow>),
}

impl Rows {
    /// The last column of the first row (a page's count of matching
    /// groups), or None when there are no rows.
    fn first_row_last_int(&self) -> std::result::Result<Option<i64>, sqlx::Error> {
        fn last<R: GroupRow + ?Sized>(row: &R) -> std::result::Result<i64, sqlx::Error> {
            row.int(row.columns().saturating_sub(1))
        }
        match self {
            Rows::Json(rows) => rows.first().map(|row| last(row.as_slice())).transpose(),
            Rows::Database(rows) => rows.first().map(last).transpose(),
        }
    }
}

/// One row of a usage question, its columns read by position: so that a
/// group is read the same way whichever form [`Rows`] has.
trait GroupRow {
    fn columns(&self) -> usize;
    fn int(&self, column: usize) -> std::result::Result<i64, sqlx::Error>;
    fn text(&self, column: usize) -> std::result::Result<String, sqlx::Error>;
}

impl GroupRow for AnyRow {
    fn columns(&self) -> usize {
        self.len()
    }

    fn int(&self, column: usize) -> std::result::Result<i64, sqlx::Error> {
        self.try_get(column)
    }

    fn text(&self, column: usize) -> std::result::Result<String, sqlx::Error> {
        self.try_get(column)
    }
}

impl GroupRow for [serde_json::Value] {
    fn columns(&self) -> usize {
        self.len()
    }

    fn int(&self, column: usize) -> std::result::Result<i64, sqlx::Error> {
        self.get(column).and_then(serde_json::Value::as_i64).ok_or_else(|| malformed(self))
    }

    fn text(&self, column: usize) -> std::result::Result<String, sqlx::Error> {
        let text = self.get(column).and_then(serde_json::Value::as_str).ok_or_else(|| malformed(self))?;
        Ok(text.to_string())
    }
}

fn malformed(row: &[serde_json::Value]) -> sqlx::Error {
    sqlx::Error::Decode(format!("a usage row not as its question laid it out: {row:?}").into())
}

/// `sql` as it is asked of `backend`, its rows ordered by their first
/// `ordered_by` columns (the columns a question groups by). On SQLite the
/// rows come back as one row of one column, a JSON array of arrays of the
/// values of `names`: SQLite hands rows to the caller one at a time across
/// a thread (a wake-up each), and a chart's ten thousand rows cost more
/// that way than the query itself. PostgreSQL streams its rows over the
/// connection, and building and parsing the JSON made its largest answer
/// (every group of a month, as the CSV export asks) take half as long
/// again, so its rows are asked for plainly.
fn asked(sql: &str, names: &[String], ordered_by: usize, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let listed = |names: &[String]| names.iter().map(|n| format!("q.{n}")).collect::<Vec<_>>().join(", ");
            let order =
                if ordered_by == 0 { String::new() } else { format!(" ORDER BY {}", listed(&names[..ordered_by])) };
            format!("SELECT json_group_array(json_array({}){order}) FROM ({sql}) q", listed(names))
        }
        Backend::Postgres if ordered_by == 0 => sql.to_string(),
        Backend::Postgres => {
            let ordinals: Vec<String> = (1..=ordered_by).map(|i| i.to_string()).collect();
            format!("{sql} ORDER BY {}", ordinals.join(", "))
        }
    }
}

/// What every part of a question's SQL shares: the dimensions' columns,
/// the bucket, the filter, which sums and how they are taken.
#[derive(Clone, Copy)]
struct Shape<'a> {
    columns: &'a [&'static str],
    bucket_ms: Option<i64>,
    filter: &'a UsageFilter,
    sums: &'a [Sum],
    summing: Summing,
}

/// A usage question, checked: the tables and spans it reads, the columns
/// of its dimensions, and how its rows are laid out.
struct Prepared {
    parts: Vec<(Table, Span)>,
    columns: Vec<&'static str>,
    layout: Layout,
}

/// The groups of a question's parts as one answer. The parts of a daily
/// question are whole days apart, so buckets that divide a day never span
/// two of them and their groups are apart already; without buckets (or
/// with buckets longer than a day) their groups meet: added here, in order.
fn merge_parts(groups: Vec<UsageGroup>, parts: usize, bucket_ms: Option<i64>) -> Vec<UsageGroup> {
    if parts == 1 || bucket_ms.is_some_and(|bucket| MS_PER_DAY % bucket == 0) {
        return groups;
    }
    let mut merged: BTreeMap<GroupKey, UsageGroup> = BTreeMap::new();
    for group in groups {
        match merged.entry(group_key(&group)) {
            Entry::Occupied(mut seen) => seen.get_mut().usage.add(&group.usage),
            Entry::Vacant(slot) => {
                slot.insert(group);
            }
        }
    }
    merged.into_values().collect()
}

/// Usage from the exact sums of [`VALUE_COLUMNS`], in their order.
fn usage_of_sums(sums: [i128; VALUE_COLUMNS.len()]) -> Usage {
    // GPU time is an i64 in the domain too; beyond it, it saturates there.
    let time = |sum: i128| i64::try_from(sum).unwrap_or(i64::MAX);
    let cost = |sum: i128| from_stored(sum, COST_UNITS_PER_NANO_USD);
    let [
        allocated,
        capacity,
        idle,
        unpriced,
        util_known,
        util_busy,
        wasted,
        cost_nanos,
        idle_cost,
        on_demand,
        wasted_cost,
    ] = sums;
    Usage {
        allocated: time(allocated),
        capacity: time(capacity),
        idle: time(idle),
        unpriced: time(unpriced),
        util_known: time(util_known),
        util_weighted: from_stored(util_busy, UTIL_WEIGHT_PER_BUSY_MS),
        wasted: time(wasted),
        cost: cost(cost_nanos),
        idle_cost: cost(idle_cost),
        on_demand_cost: cost(on_demand),
        wasted_cost: cost(wasted_cost),
    }
}

/// Whether the database refused a statement because a sum overflowed a
/// 64-bit integer.
fn is_overflow(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else { return false };
    error.code().as_deref() == Some("22003") || error.message().contains("integer overflow")
}

enum Bind {
    Int(i64),
    Text(String),
}

/// Adds a parameter and returns its placeholder.
fn param(binds: &mut Vec<Bind>, value: Bind) -> String {
    binds.push(value);
    format!("${}", binds.len())
}

/// Writes rows `(keys, values)` of one hour into `table`, several per statement.
async fn insert_rows(
    conn: &mut AnyConnection,
    table: &str,
    keys: &[&str],
    hour_ms: i64,
    rows: &[(Vec<&str>, [i64; 11])],
) -> Result<()> {
    let width = 1 + keys.len() + VALUE_COLUMNS.len();
    let columns = format!("hour_ms, {}, {}", keys.join(", "), VALUE_COLUMNS.join(", "));
    for chunk in rows.chunks(INSERT_CHUNK) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|row| {
                let params: Vec<String> = (1..=width).map(|i| format!("${}", row * width + i)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!("INSERT INTO {table} ({columns}) VALUES {}", tuples.join(", "));
        let mut query = sqlx::query(&sql);
        for (key, values) in chunk {
            query = query.bind(hour_ms);
            // Owned: a borrowed &str bound here makes the future not Send for
            // every lifetime (a rustc limitation), so it could not be spawned.
            for value in key {
                query = query.bind(value.to_string());
            }
            for value in values {
                query = query.bind(*value);
            }
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A stable 64-bit FNV-1a hash, for PostgreSQL advisory lock keys.
fn lock_key(text: &str) -> i64 {
    let hash = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// `p202611` for the UTC month that starts at `month_start`.
fn month_suffix(month_start: i64) -> Result<String> {
    let time = time::OffsetDateTime::from_unix_timestamp(month_start.div_euclid(1000))
        .ok()
        .filter(|time| (1970..=9999).contains(&time.year()))
        .ok_or_else(|| Error::Config(format!("no monthly partition for the time {month_start}")))?;
    Ok(format!("p{:04}{:02}", time.year(), u8::from(time.month())))
}

/// The month a partition named `{table}_pYYYYMM` holds.
fn partition_month(table: &str, name: &str) -> Option<Span> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month = time::Month::try_from(digits[4..].parse::<u8>().ok()?).ok()?;
    let first = time::Date::from_calendar_date(year, month, 1).ok()?;
    let start = first.midnight().assume_utc().unix_timestamp() * 1000;
    let month = usage::month_of(start);
    (month.start == start).then_some(month)
}

/// The partitions of a partitioned table (PostgreSQL). Boxed with one named
/// lifetime: as a plain `async fn` over `&mut AnyConnection`, callers' futures
/// stop being `Send` for every lifetime (a rustc limitation) and cannot be spawned.
fn partitions_of<'a>(
    conn: &'a mut AnyConnection,
    table: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>>> + Send + 'a>> {
    Box::pin(async move {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(c.relname AS TEXT) FROM pg_catalog.pg_inherits i \
             JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid \
             JOIN pg_catalog.pg_class p ON p.oid = i.inhparent \
             WHERE CAST(p.relname AS TEXT) = $1 AND pg_catalog.pg_table_is_visible(p.oid) ORDER BY 1",
        )
        .bind(table.to_string())
        .fetch_all(&mut *conn)
        .await?;
        Ok(names)
    })
}

/// A group's identity: its bucket and the values of its dimensions, in the
/// order groups are returned.
type GroupKey = (Option<i64>, [Option<String>; 7], bool);

fn group_key(group: &UsageGroup) -> GroupKey {
    // Idle rows' namespace and team are "" in the tables, so they sort first
    // here too, as they do in SQL.
    let stored =
        |value: &Option<String>| if group.idle { value.as_ref().map(|_| String::new()) } else { value.clone() };
    let dimensions = [
        group.cluster.clone(),
        stored(&group.namespace),
        stored(&group.team),
        group.workload.clone(),
        group.node.clone(),
        group.model.clone(),
        group.capacity_type.map(|c| c.label().to_string()),
    ];
    (group.bucket, dimensions, group.idle)
}

/// The FROM and WHERE conditions of one part of a usage question: its
/// table over its span, within the filter.
fn part_source(table: Table, span: Span, filter: &UsageFilter, binds: &mut Vec<Bind>) -> (String, Vec<String>) {
    let time = table.time_column();
    let start = param(binds, Bind::Int(span.start));
    let end = param(binds, Bind::Int(span.end));
    let mut conditions = vec![format!("u.{time} >= {start} AND u.{time} < {end}")];
    for (column, list) in [("cluster", &filter.clusters), ("team", &filter.teams)] {
        let Some(list) = list else { continue };
        let params: Vec<String> = list.iter().map(|value| param(binds, Bind::Text(value.clone()))).collect();
        conditions.push(format!("u.{column} IN ({})", params.join(", ")));
    }
    if let Some(workload) = &filter.workload {
        let p = param(binds, Bind::Text(workload.clone()));
        conditions.push(format!("u.workload = {p}"));
    }
    // A viewer's namespaces are joined first, so each reads its own rows by
    // the (cluster, namespace, time) index instead of every row of the span
    // being checked against them. SQLite keeps the order of a CROSS JOIN;
    // PostgreSQL plans it like any inner join. The scope table's key is
    // (cluster, namespace), so no row is counted twice.
    let from = if filter.namespaces.is_some() {
        conditions.push("u.cluster = s.cluster AND u.namespace = s.namespace".into());
        format!("gantry_usage_scope s CROSS JOIN {} u", table.name())
    } else {
        format!("{} u", table.name())
    };
    (from, conditions)
}

/// The SQL expression of a row's idle flag (all but the node tables).
fn idle_flag(column_prefix: &str) -> String {
    // IDLE is a constant without quotes, safe to write into the SQL.
    format!("CAST(CASE WHEN {column_prefix}workload = '{IDLE}' THEN 1 ELSE 0 END AS BIGINT)")
}

/// The SQL of one part of a usage question, with its parameters.
/// Its columns are named (`bucket`, the dimensions' columns, `idle`, `n`,
/// then `v0`… or `v0h`, `v0l`… for the sums), so a paged question can read
/// them from a common table expression and [`one_row`] by name.
/// Parameters are numbered on from `binds`.
fn totals_query(
    table: Table,
    span: Span,
    shape: &Shape,
    binds: &mut Vec<Bind>,
    extra_condition: Option<&str>,
) -> String {
    let Shape { columns, bucket_ms, filter, sums, summing } = *shape;
    let time = table.time_column();
    let mut groups: Vec<String> = Vec::new();
    if let Some(bucket) = bucket_ms {
        let p = param(binds, Bind::Int(bucket));
        groups.push(format!("CAST(u.{time} - (u.{time} % {p}) AS BIGINT) AS bucket"));
    }
    groups.extend(columns.iter().map(|column| format!("u.{column} AS {column}")));
    if table != Table::HourlyNodes {
        groups.push(format!("{} AS idle", idle_flag("u.")));
    }
    let (from, mut conditions) = part_source(table, span, filter, binds);
    conditions.extend(extra_condition.map(str::to_string));
    let sums: Vec<String> = sums
        .iter()
        .map(|&sum| (sum as usize, sum.column()))
        .map(|(i, c)| match summing {
            Summing::Plain => format!("COALESCE(CAST(SUM(u.{c}) AS BIGINT), 0) AS v{i}"),
            Summing::Halves => format!(
                "COALESCE(CAST(SUM(u.{c} / {SPLIT}) AS BIGINT), 0) AS v{i}h, \
                 COALESCE(CAST(SUM(u.{c} % {SPLIT}) AS BIGINT), 0) AS v{i}l"
            ),
        })
        .collect();
    let mut sql = format!(
        "SELECT {}COUNT(*) AS n{} FROM {from} WHERE {}",
        groups.iter().map(|g| format!("{g}, ")).collect::<String>(),
        sums.iter().map(|s| format!(", {s}")).collect::<String>(),
        conditions.join(" AND ")
    );
    if !groups.is_empty() {
        let ordinals: Vec<String> = (1..=groups.len()).map(|i| i.to_string()).collect();
        sql.push_str(&format!(" GROUP BY {}", ordinals.join(", ")));
    }
    sql
}

/// A page of a usage question, ready to be written as SQL.
struct PagePlan<'a> {
    parts: &'a [(Table, Span)],
    shape: Shape<'a>,
    /// The columns groups are ranked by (idle too, where the tables have it).
    page_columns: &'a [&'static str],
    idle: bool,
    page: &'a GroupPage,
    backend: Backend,
}

/// The SQL of one page of a question's groups (see [`Store::usage_page`]).
/// First the matching groups are formed from the rollup rows themselves
/// (only the page's columns and the figure ordered by, summed as floats,
/// which never overflow, and only to order by), ranked, and the page's
/// keys kept; then each part of the question is summed as
/// [`totals_query`] would, for those keys alone. The last column is the
/// number of matching groups. `count_only` asks for that number alone (for
/// a page past the end, which has no rows to carry it).
fn page_query(plan: &PagePlan, binds: &mut Vec<Bind>, count_only: bool) -> String {
    let page = plan.page;
    let mut keys: Vec<&str> = plan.page_columns.to_vec();
    if plan.idle {
        keys.push("idle");
    }
    let measured: &[&str] = match page.order {
        GroupOrder::Cost => &["cost_nanos"],
        GroupOrder::GpuHours => &["allocated"],
        GroupOrder::Savings => &["on_demand_cost_nanos", "cost_nanos"],
        GroupOrder::Idle => &["idle_cost_nanos"],
        GroupOrder::Waste => &["wasted_cost_nanos"],
        GroupOrder::Name => &[],
    };
    let sources: Vec<String> = plan
        .parts
        .iter()
        .map(|&(table, span)| {
            let (from, conditions) = part_source(table, span, plan.shape.filter, binds);
            let mut columns: Vec<String> = plan.page_columns.iter().map(|c| format!("u.{c} AS {c}")).collect();
            if plan.idle {
                columns.push(format!("{} AS idle", idle_flag("u.")));
            }
            columns.extend(measured.iter().map(|m| format!("u.{m} AS {m}")));
            format!("SELECT {} FROM {from} WHERE {}", columns.join(", "), conditions.join(" AND "))
        })
        .collect();
    let mut matching: Vec<String> = Vec::new();
    if !page.needle.is_empty() {
        let escaped = page.needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        for column in plan.page_columns {
            let p = param(binds, Bind::Text(pattern.clone()));
            matching.push(format!("LOWER(r.{column}) LIKE {p} ESCAPE '\\'"));
        }
        if plan.idle && "idle".contains(&page.needle) {
            matching.push("r.idle = 1".into());
        }
        if matching.is_empty() {
            matching.push("1 = 0".into());
        }
    }
    let filter = if matching.is_empty() { String::new() } else { format!(" WHERE ({})", matching.join(" OR ")) };
    let rows = format!("({}) r", sources.join(" UNION ALL "));
    let key_list = keys.iter().map(|k| format!("r.{k}")).collect::<Vec<_>>().join(", ");
    let grouping = if keys.is_empty() { String::new() } else { format!(" GROUP BY {key_list}") };
    if count_only {
        return format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS total_groups FROM (SELECT 1 AS one FROM {rows}{filter}{grouping}) g"
        );
    }
    // Ranked as floating point on both backends: it cannot overflow, and on
    // PostgreSQL it is not `numeric` (`* 1.0` was: a third slower to sum).
    let float = |column: &str| format!("SUM(CAST(r.{column} AS DOUBLE PRECISION))");
    let measure = match measured {
        [] => None,
        [one] => Some(float(one)),
        [minuend, subtrahend, ..] => Some(format!("{} - {}", float(minuend), float(subtrahend))),
    };
    let direction = if page.descending { "DESC" } else { "ASC" };
    let by_values = if page.order == GroupOrder::Name { direction } else { "ASC" };
    // Names in the order of their bytes (code points), as Rust orders them,
    // whatever the database's own collation.
    let collate = match plan.backend {
        Backend::Postgres => " COLLATE \"C\"",
        Backend::Sqlite => "",
    };
    let mut order: Vec<String> = measure.iter().map(|_| format!("measure {direction}")).collect();
    order.extend(
        keys.iter()
            .map(|k| if *k == "idle" { format!("{k} {by_values}") } else { format!("{k}{collate} {by_values}") }),
    );
    let limit = param(binds, Bind::Int(page.limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX))));
    let offset = param(binds, Bind::Int(i64::try_from(page.offset).unwrap_or(i64::MAX)));
    // Each part keeps to the page's keys: an IN list the database builds
    // once from the ranked page (a hundred keys, not a join per row), read
    // by the (workload, time) indexes when the page is of workloads.
    let mut own_keys: Vec<String> = plan.page_columns.iter().map(|c| format!("u.{c}")).collect();
    if plan.idle {
        own_keys.push(idle_flag("u."));
    }
    let on_page = format!("({}) IN (SELECT {} FROM ranked)", own_keys.join(", "), keys.join(", "));
    let parts: Vec<String> =
        plan.parts.iter().map(|&(table, span)| totals_query(table, span, &plan.shape, binds, Some(&on_page))).collect();
    // The matching groups are kept (`grouped`), then ranked and counted
    // from there: a window function counting them as they are ranked made
    // the database carry every group through one more step (a third of the
    // ranking's time on SQLite, a fifth on PostgreSQL).
    let measured_column = measure.map(|m| format!(", {m} AS measure")).unwrap_or_default();
    format!(
        "WITH grouped AS MATERIALIZED (SELECT {}{measured_column} FROM {rows}{filter}{grouping}), \
         ranked AS MATERIALIZED (SELECT {} FROM grouped ORDER BY {} LIMIT {limit} OFFSET {offset}) \
         SELECT paged.*, (SELECT CAST(COUNT(*) AS BIGINT) FROM grouped) AS total_groups FROM ({}) paged",
        keys.iter().map(|k| format!("r.{k} AS {k}")).collect::<Vec<_>>().join(", "),
        keys.join(", "),
        order.join(", "),
        parts.join(" UNION ALL "),
    )
}

/// `query` with `binds` bound in order.
fn bound<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for bind in binds {
        query = match bind {
            Bind::Int(value) => query.bind(*value),
            // Owned, for the reason `insert_rows` gives.
            Bind::Text(value) => query.bind(value.clone()),
        };
    }
    query
}

impl Store {
    /// Replaces one cluster's rows of one hour with `rows` (the domain's
    /// [`usage::rollup`] of that hour), in both hourly tables, and
    /// recomputes that day's rows of the cluster in `usage_daily`, all in
    /// one transaction. Replacing an hour again with the same rows changes
    /// nothing, so a rollup can always be retried. Rows must all be of
    /// `cluster` and `hour_ms` (the start of a UTC hour).
    pub async fn replace_hour(&self, cluster: &str, hour_ms: i64, rows: &[HourlyRow]) -> Result<()> {
        if hour_ms.rem_euclid(MS_PER_HOUR) != 0 {
            return Err(Error::Config(format!("{hour_ms} is not the start of an hour")));
        }
        if let Some(row) = rows.iter().find(|r| r.hour != hour_ms || r.key.cluster != cluster) {
            return Err(Error::Config(format!(
                "a row of cluster {} at {} in the rollup of cluster {cluster} at {hour_ms}",
                row.key.cluster, row.hour
            )));
        }
        let mut by_workload: BTreeMap<Vec<&str>, Usage> = BTreeMap::new();
        let mut by_namespace: BTreeMap<Vec<&str>, Usage> = BTreeMap::new();
        let mut by_node: BTreeMap<Vec<&str>, Usage> = BTreeMap::new();
        for row in rows {
            let key = &row.key;
            let team = key.team.as_deref().unwrap_or_default();
            let capacity = key.capacity_type.label();
            by_workload
                .entry(vec![cluster, &key.namespace, team, &key.workload, &key.model, capacity])
                .or_default()
                .add(&row.usage);
            let workloads = if key.is_idle() { IDLE } else { ALL_WORKLOADS };
            by_namespace
                .entry(vec![cluster, &key.namespace, team, workloads, &key.model, capacity])
                .or_default()
                .add(&row.usage);
            by_node.entry(vec![cluster, &key.node, &key.model, capacity]).or_default().add(&row.usage);
        }
        let (by_workload, by_namespace, by_node) =
            (stored_rows(by_workload), stored_rows(by_namespace), stored_rows(by_node));
        let day = hour_ms - hour_ms.rem_euclid(MS_PER_DAY);

        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Two replacements of the same cluster's day at once would each
            // recompute the day without the other's hour and then collide on
            // its rows; SQLite has one writer at a time anyway.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_key(&format!("gantry rollup {cluster}")))
                .execute(&mut *tx)
                .await?;
        }
        for table in PARTITIONED {
            let sql = format!("DELETE FROM {table} WHERE cluster = $1 AND hour_ms = $2");
            sqlx::query(&sql).bind(cluster).bind(hour_ms).execute(&mut *tx).await?;
        }
        insert_rows(&mut tx, "usage_hourly", &WORKLOAD_KEYS, hour_ms, &by_workload).await?;
        insert_rows(&mut tx, "usage_hourly_namespaces", &WORKLOAD_KEYS, hour_ms, &by_namespace).await?;
        insert_rows(&mut tx, "usage_hourly_nodes", &NODE_KEYS, hour_ms, &by_node).await?;
        let keys = WORKLOAD_KEYS.join(", ");
        let values = VALUE_COLUMNS.join(", ");
        let sums: Vec<String> = VALUE_COLUMNS.iter().map(|c| format!("SUM({c})")).collect();
        for (daily, hourly) in [("usage_daily", "usage_hourly"), ("usage_daily_namespaces", "usage_hourly_namespaces")]
        {
            let delete = format!("DELETE FROM {daily} WHERE cluster = $1 AND day_ms = $2");
            sqlx::query(&delete).bind(cluster).bind(day).execute(&mut *tx).await?;
            let insert = format!(
                "INSERT INTO {daily} (day_ms, {keys}, {values}) \
                 SELECT $2, {keys}, {} FROM {hourly} \
                 WHERE cluster = $1 AND hour_ms >= $2 AND hour_ms < $3 GROUP BY {keys}",
                sums.join(", ")
            );
            sqlx::query(&insert).bind(cluster).bind(day).bind(day + MS_PER_DAY).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The time before which the cluster's hours are final, if any.
    pub async fn rollup_watermark(&self, cluster: &str) -> Result<Option<i64>> {
        let watermark = sqlx::query_scalar("SELECT final_ms FROM rollup_watermarks WHERE cluster = $1")
            .bind(cluster)
            .fetch_optional(&self.pool)
            .await?;
        Ok(watermark)
    }

    /// Sets the watermark, after a pass that rolled up the cluster's hours
    /// as of `rolled_to_ms`; it may move back, to have hours rolled up again.
    pub async fn set_rollup_watermark(&self, cluster: &str, final_ms: i64, rolled_to_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO rollup_watermarks (cluster, final_ms, rolled_to_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (cluster) DO UPDATE SET final_ms = excluded.final_ms, rolled_to_ms = excluded.rolled_to_ms",
        )
        .bind(cluster)
        .bind(final_ms)
        .bind(rolled_to_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sums of the rows of `tier` whose hour (or day) starts within `span`,
    /// grouped by `by` (plus idle or not) and, with `bucket_ms`, by buckets of
    /// that length aligned to the epoch, all in SQL. Groups come in order of
    /// bucket, then the dimensions. A dimension or filter the tier does not
    /// have (node in [`Tier::Hourly`], namespace in [`Tier::HourlyNodes`]) is
    /// refused, and so is a [`Tier::Daily`] bucket that is not whole days.
    pub async fn usage_totals(
        &self,
        tier: Tier,
        span: Span,
        by: &[Dimension],
        bucket_ms: Option<i64>,
        filter: &UsageFilter,
    ) -> Result<Vec<UsageGroup>> {
        self.usage_sums(UsageQuestion { tier, span, by, bucket_ms, filter }, &Sum::ALL).await
    }

    /// [`Store::usage_totals`] with only `sums` summed, the others left at
    /// zero: a chart of spend needs one sum of eleven, and every other is
    /// work in the database and on the wire for each of its thousands of
    /// rows.
    pub async fn usage_sums(&self, question: UsageQuestion<'_>, sums: &[Sum]) -> Result<Vec<UsageGroup>> {
        let UsageQuestion { tier, span, by, bucket_ms, filter } = question;
        let Some(Prepared { parts, columns, mut layout }) = self.prepare(tier, span, by, bucket_ms, filter, sums)?
        else {
            return Ok(Vec::new());
        };
        let rows = loop {
            let names = layout.names(&columns);
            let grouped_by = usize::from(layout.bucket) + columns.len() + usize::from(layout.idle);
            let queries: Vec<(String, Vec<Bind>)> = parts
                .iter()
                .map(|&(table, part)| {
                    let mut binds = Vec::new();
                    let shape =
                        Shape { columns: &columns, bucket_ms, filter, sums: &layout.sums, summing: layout.summing };
                    let sql = totals_query(table, part, &shape, &mut binds, None);
                    (asked(&sql, &names, grouped_by, self.backend), binds)
                })
                .collect();
            match self.fetch_rows(&queries, filter.namespaces.as_deref()).await {
                Err(Error::Database(error)) if layout.summing == Summing::Plain && is_overflow(&error) => {
                    layout.summing = Summing::Halves;
                }
                result => break result?,
            }
        };
        let groups = layout.groups(&rows)?;
        Ok(merge_parts(groups, parts.len(), bucket_ms))
    }

    /// One page of the groups of [`Store::usage_totals`]'s question, ranked
    /// by `page.by` (a subset of `by`) and idle: the groups that match
    /// `page.needle` in one of those columns, in `page.order`, `page.offset`
    /// skipped, at most `page.limit`; and how many match in all. The rows
    /// of a page's group are all its rows of the finer grain `by` asks
    /// for, in every bucket, so the caller can sum them up to the page's
    /// grain. Ranking, paging and counting happen in the database, which
    /// returns only the page's rows: a month of 80,000 workloads' days is
    /// not read out to show a hundred of them.
    pub async fn usage_page(
        &self,
        question: UsageQuestion<'_>,
        page_by: &[Dimension],
        page: &GroupPage,
    ) -> Result<(Vec<UsageGroup>, usize)> {
        let UsageQuestion { tier, span, by, bucket_ms, filter } = question;
        let Some(prepared) = self.prepare(tier, span, by, bucket_ms, filter, &Sum::ALL)? else {
            return Ok((Vec::new(), 0));
        };
        let mut page_by: Vec<Dimension> = page_by.to_vec();
        page_by.sort_unstable();
        page_by.dedup();
        if let Some(outside) = page_by.iter().find(|d| !prepared.layout.dimensions.contains(d)) {
            return Err(Error::Config(format!("a page by {} in a question without it", outside.name())));
        }
        let page_columns: Vec<&str> = page_by.iter().filter_map(|&d| tier.column(d)).collect();
        let mut layout = prepared.layout;
        let ask = |layout: &Layout, count_only: bool| {
            let mut binds = Vec::new();
            let plan = PagePlan {
                parts: &prepared.parts,
                shape: Shape {
                    columns: &prepared.columns,
                    bucket_ms,
                    filter,
                    sums: &layout.sums,
                    summing: layout.summing,
                },
                page_columns: &page_columns,
                idle: layout.idle,
                page,
                backend: self.backend,
            };
            let sql = page_query(&plan, &mut binds, count_only);
            let mut names = if count_only { Vec::new() } else { layout.names(&prepared.columns) };
            names.push("total_groups".into());
            vec![(asked(&sql, &names, 0, self.backend), binds)]
        };
        let rows = loop {
            match self.fetch_rows(&ask(&layout, false), filter.namespaces.as_deref()).await {
                Err(Error::Database(error)) if layout.summing == Summing::Plain && is_overflow(&error) => {
                    layout.summing = Summing::Halves;
                }
                result => break result?,
            }
        };
        let matching = match rows.first_row_last_int()? {
            Some(count) => count,
            None if page.offset == 0 => 0,
            None => {
                let counted = self.fetch_rows(&ask(&layout, true), filter.namespaces.as_deref()).await?;
                counted.first_row_last_int()?.unwrap_or_default()
            }
        };
        let groups = layout.groups(&rows)?;
        let mut groups = merge_parts(groups, prepared.parts.len(), bucket_ms);
        groups.sort_by_cached_key(group_key);
        Ok((groups, usize::try_from(matching).unwrap_or_default()))
    }

    /// The parts, columns and layout of a usage question asking for
    /// `sums`, checked; None when nothing can pass its filter.
    fn prepare(
        &self,
        tier: Tier,
        span: Span,
        by: &[Dimension],
        bucket_ms: Option<i64>,
        filter: &UsageFilter,
        sums: &[Sum],
    ) -> Result<Option<Prepared>> {
        let nothing_passes = [filter.clusters.as_ref().map(Vec::len), filter.teams.as_ref().map(Vec::len)]
            .contains(&Some(0))
            || filter.namespaces.as_ref().is_some_and(Vec::is_empty);
        if nothing_passes || span.is_empty() {
            return Ok(None);
        }
        let unsupported = |what: &str| Error::Config(format!("the {} rollups have no {what}", tier.name()));
        if bucket_ms.is_some_and(|bucket| bucket <= 0) {
            return Err(Error::Config("a bucket must be longer than zero".into()));
        }
        if tier == Tier::Daily && bucket_ms.is_some_and(|bucket| bucket % MS_PER_DAY != 0) {
            return Err(Error::Config("the daily rollups have buckets of whole days only".into()));
        }
        let mut dimensions: Vec<Dimension> = by.to_vec();
        dimensions.sort_unstable();
        dimensions.dedup();
        let mut columns = Vec::new();
        for &dimension in &dimensions {
            columns.push(tier.column(dimension).ok_or_else(|| unsupported(dimension.name()))?);
        }
        if tier == Tier::HourlyNodes {
            let asked = [("team", filter.teams.is_some()), ("workload", filter.workload.is_some())];
            if let Some((what, _)) = asked.into_iter().find(|(_, asked)| *asked) {
                return Err(unsupported(what));
            }
            if filter.namespaces.is_some() {
                return Err(unsupported("namespace"));
            }
        }
        for (column, list) in [("cluster", &filter.clusters), ("team", &filter.teams)] {
            if list.as_ref().is_some_and(|list| list.len() > MAX_LISTED) {
                return Err(Error::Config(format!("at most {MAX_LISTED} {column}s in a usage filter")));
            }
        }
        let by_workload = dimensions.contains(&Dimension::Workload) || filter.workload.is_some();
        let parts = tier.plan(span, by_workload);
        let layout = Layout {
            bucket: bucket_ms.is_some(),
            dimensions,
            idle: tier != Tier::HourlyNodes,
            sums: sums.to_vec(),
            summing: Summing::Plain,
        };
        Ok(Some(Prepared { parts, columns, layout }))
    }

    /// The rows of every query of a question (each written by [`asked`]),
    /// in order, within the viewer's `namespaces` if given.
    async fn fetch_rows(
        &self,
        queries: &[(String, Vec<Bind>)],
        namespaces: Option<&[(String, String)]>,
    ) -> Result<Rows> {
        let mut conn = self.pool.acquire().await?;
        match namespaces {
            None => self.rows_of(&mut conn, queries).await,
            Some(pairs) => {
                // A viewer may see thousands of namespaces: too many for an
                // IN list (parameter limits, one plan per length), so they go
                // into a temporary table of this connection, inside a
                // transaction that is rolled back, so the next user of the
                // connection finds it empty. The table itself stays, so the
                // catalog is not churned on every question.
                self.ensure_scope_table(&mut conn).await?;
                let mut tx = conn.begin().await?;
                for chunk in pairs.chunks(SCOPE_CHUNK) {
                    let tuples: Vec<String> =
                        (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
                    let sql = format!(
                        "INSERT INTO gantry_usage_scope (cluster, namespace) VALUES {} ON CONFLICT DO NOTHING",
                        tuples.join(", ")
                    );
                    let mut insert = sqlx::query(&sql);
                    for (cluster, namespace) in chunk {
                        insert = insert.bind(cluster).bind(namespace);
                    }
                    insert.execute(&mut *tx).await?;
                }
                if self.backend == Backend::Postgres {
                    // Without statistics PostgreSQL takes a temporary table
                    // for some 900 rows, and so reads every row of the span
                    // (a hash join over a scan) where a team's one namespace
                    // reads a tenth of them by its index: a team member's
                    // 30-day chart spent 134 ms in the query instead of 55.
                    // Counted afresh each time (a fraction of a millisecond):
                    // one viewer sees one namespace, another thousands. The
                    // statistics are rolled back with the rows (a few dead
                    // catalog rows per question, which autovacuum clears).
                    sqlx::query("ANALYZE gantry_usage_scope").execute(&mut *tx).await?;
                }
                let rows = self.rows_of(&mut tx, queries).await?;
                tx.rollback().await?;
                Ok(rows)
            }
        }
    }

    /// The rows of `queries` on `conn`, in order, read as [`asked`] wrote
    /// them for this backend.
    async fn rows_of(&self, conn: &mut AnyConnection, queries: &[(String, Vec<Bind>)]) -> Result<Rows> {
        match self.backend {
            Backend::Sqlite => {
                let mut rows = Vec::new();
                for (sql, binds) in queries {
                    let json: String = bound(sqlx::query(sql), binds).fetch_one(&mut *conn).await?.try_get(0)?;
                    let parsed: Vec<Vec<serde_json::Value>> =
                        serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))?;
                    rows.extend(parsed);
                }
                Ok(Rows::Json(rows))
            }
            Backend::Postgres => {
                let mut rows = Vec::new();
                for (sql, binds) in queries {
                    rows.extend(bound(sqlx::query(sql), binds).fetch_all(&mut *conn).await?);
                }
                Ok(Rows::Database(rows))
            }
        }
    }

    async fn ensure_scope_table(&self, conn: &mut AnyConnection) -> Result<()> {
        // Asked first rather than CREATE ... IF NOT EXISTS, which PostgreSQL
        // answers with a notice logged on every question.
        let exists_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_temp_master WHERE type = 'table' AND name = 'gantry_usage_scope'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM pg_catalog.pg_class \
                 WHERE relname = 'gantry_usage_scope' AND relpersistence = 't' AND pg_catalog.pg_table_is_visible(oid)"
            }
        };
        let exists: i64 = sqlx::query_scalar(exists_sql).fetch_one(&mut *conn).await?;
        if exists == 0 {
            sqlx::query(
                "CREATE TEMPORARY TABLE gantry_usage_scope \
                 (cluster TEXT NOT NULL, namespace TEXT NOT NULL, PRIMARY KEY (cluster, namespace))",
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Creates the monthly partitions of the hourly tables for the UTC month
    /// holding `month_start_ms`, moving in any of its rows that waited in the
    /// default partition; true when it created them. Idempotent and safe to
    /// run from several replicas at once; a no-op on SQLite. Run it ahead of
    /// each month (for this month and the next, say).
    pub async fn ensure_partitions(&self, month_start_ms: i64) -> Result<bool> {
        if self.backend != Backend::Postgres {
            return Ok(false);
        }
        let month = usage::month_of(month_start_ms);
        let suffix = month_suffix(month.start)?;
        let (start, end) = (month.start, month.end);
        let mut created = false;
        let mut tx = self.begin_write().await?;
        // Self-exclusive, always in this order: a second replica waits here,
        // then finds the partitions made. Writers are not blocked by it.
        // One statement per query: `raw_sql` futures are not `Send` for every
        // lifetime (a rustc limitation), and this runs in the background loop.
        for table in PARTITIONED {
            sqlx::query(&format!("LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")).execute(&mut *tx).await?;
        }
        for table in PARTITIONED {
            let name = format!("{table}_{suffix}");
            if partitions_of(&mut tx, table).await?.contains(&name) {
                continue;
            }
            for statement in [
                format!("CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
                format!(
                    "WITH moved AS (DELETE FROM {table}_default WHERE hour_ms >= {start} AND hour_ms < {end} RETURNING *) \
                     INSERT INTO {name} SELECT * FROM moved"
                ),
                format!("ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})"),
            ] {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
            created = true;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Retention: removes rollup rows whose whole hour (or day) lies before
    /// `cutoff`. On PostgreSQL, monthly partitions wholly before it are
    /// detached and dropped first, which costs no row-by-row delete.
    pub async fn delete_rollups_before(&self, cutoff: i64) -> Result<RollupsDeleted> {
        let mut deleted = RollupsDeleted::default();
        if self.backend == Backend::Postgres {
            for table in PARTITIONED {
                let names = {
                    let mut conn = self.pool.acquire().await?;
                    partitions_of(&mut conn, table).await?
                };
                for name in names {
                    if partition_month(table, &name).is_some_and(|month| month.end <= cutoff) {
                        let mut tx = self.begin_write().await?;
                        for statement in
                            [format!("ALTER TABLE {table} DETACH PARTITION {name}"), format!("DROP TABLE {name}")]
                        {
                            sqlx::query(&statement).execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                        deleted.partitions += 1;
                    }
                }
            }
        }
        let last_hour = cutoff.saturating_sub(MS_PER_HOUR);
        for table in PARTITIONED {
            let sql = format!("DELETE FROM {table} WHERE hour_ms <= $1");
            let count = sqlx::query(&sql).bind(last_hour).execute(&self.pool).await?.rows_affected();
            *if table == "usage_hourly_nodes" { &mut deleted.node_rows } else { &mut deleted.hourly_rows } += count;
        }
        for table in ["usage_daily", "usage_daily_namespaces"] {
            let sql = format!("DELETE FROM {table} WHERE day_ms <= $1");
            deleted.daily_rows +=
                sqlx::query(&sql).bind(cutoff.saturating_sub(MS_PER_DAY)).execute(&self.pool).await?.rows_affected();
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gantry_domain::cost::Usd;
    use gantry_domain::gpu::CapacityType::{self, OnDemand, Spot};
    use gantry_domain::usage::{
        AllocationInterval, CapacityInterval, MS_PER_MINUTE, PriceBook, PricePoint, Totals, UsageKey, Utilisation,
        aggregate, rollup,
    };

    use super::*;

    const H: i64 = MS_PER_HOUR;
    const DAY: i64 = MS_PER_DAY;
    /// 2026-11-02T10:00:00Z.
    const T: i64 = 1_793_613_600_000;
    /// Cost units of one dollar.
    const DOLLAR: i128 = 3_600_000_000 * 1_000_000;

    fn key(cluster: &str, namespace: &str, team: Option<&str>, workload: &str, node: &str) -> UsageKey {
        UsageKey {
            cluster: cluster.into(),
            namespace: namespace.into(),
            team: team.map(Into::into),
            workload: workload.into(),
            node: node.into(),
            model: "H100".into(),
            capacity_type: OnDemand,
        }
    }

    /// `gpus` held for the hour at `dollars` per GPU-hour.
    fn held(hour: i64, key: UsageKey, gpus: i64, dollars: i128) -> HourlyRow {
        let time = gpus * 1000 * H;
        let cost = i128::from(gpus) * dollars * DOLLAR;
        let usage = Usage { allocated: time, cost, on_demand_cost: cost, ..Usage::default() };
        HourlyRow { hour, key, usage }
    }

    /// A node's `offered` GPUs of which `idle` were idle, at `dollars`.
    fn idle(hour: i64, cluster: &str, node: &str, offered: i64, idle: i64, dollars: i128) -> HourlyRow {
        let cost = i128::from(idle) * dollars * DOLLAR;
        let usage = Usage {
            capacity: offered * 1000 * H,
            idle: idle * 1000 * H,
            cost,
            idle_cost: cost,
            on_demand_cost: cost,
            ..Usage::default()
        };
        HourlyRow { hour, key: key(cluster, "", None, IDLE, node), usage }
    }

    fn totals(groups: &[UsageGroup]) -> Usage {
        let mut sum = Usage::default();
        groups.iter().for_each(|g| sum.add(&g.usage));
        sum
    }

    fn everything() -> UsageFilter {
        UsageFilter::default()
    }

    #[test]
    fn stored_units_round_half_away_from_zero() {
        let nano = COST_UNITS_PER_NANO_USD;
        let cases = [
            (0, 0),
            (nano, 1),
            (nano / 2, 1),
            (nano / 2 - 1, 0),
            (-nano / 2, -1),
            (-(nano / 2 - 1), 0),
            (7 * nano + nano / 2, 8),
            (7 * nano + nano / 2 - 1, 7),
            (DOLLAR, 1_000_000_000),
            (i128::MAX, i64::MAX),
            (i128::MIN, i64::MIN),
        ];
        for (units, nanos) in cases {
            assert_eq!(to_stored(units, nano), nanos, "{units} cost units");
        }
        assert_eq!(from_stored(1_000_000_000, nano), DOLLAR, "a dollar back exactly");
        for stored in [0, 1, -1, 123_456_789, i64::MAX, i64::MIN] {
            assert_eq!(to_stored(from_stored(i128::from(stored), nano), nano), stored, "whole units round-trip");
        }
        // Utilisation: 50 % of one GPU for an hour is half an hour busy.
        let weighted = 5_000 * 1_000 * i128::from(H);
        assert_eq!(to_stored(weighted, UTIL_WEIGHT_PER_BUSY_MS), 1_000 * H / 2);
        assert_eq!(to_stored(15_000, UTIL_WEIGHT_PER_BUSY_MS), 2);
        assert_eq!(to_stored(14_999, UTIL_WEIGHT_PER_BUSY_MS), 1);
    }

    crate::store_test!(a_daily_question_counts_the_hours_of_its_partial_days, |store| {
        let day = T - T.rem_euclid(DAY);
        let hours = [day + 20 * H, day + 22 * H, day + DAY + 3 * H, day + DAY + 10 * H, day + 2 * DAY + H];
        for (i, hour) in hours.into_iter().enumerate() {
            let workload = if i % 2 == 0 { "Job/a" } else { "Job/b" };
            let rows = [
                held(hour, key("prod", "ml", Some("vision"), workload, "n1"), 1, 1 + i as i128),
                idle(hour, "prod", "n1", 2, 1, 1),
            ];
            store.replace_hour("prod", hour, &rows).await.unwrap();
        }
        // From 21:00 of the first day to 02:00 of the third: the first day's
        // 22:00, all of the second day, the third day's 01:00.
        let window = Span::new(day + 21 * H, day + 2 * DAY + 2 * H);
        let costs = |groups: Vec<UsageGroup>| -> Vec<(Option<i64>, Option<String>, bool, i128)> {
            groups.into_iter().map(|g| (g.bucket, g.workload.or(g.team), g.idle, g.usage.cost / DOLLAR)).collect()
        };
        let all = everything();
        for by in [&[Dimension::Team][..], &[Dimension::Workload], &[]] {
            for bucket in [None, Some(DAY)] {
                let ask = |tier| store.usage_totals(tier, window, by, bucket, &all);
                let (daily, hourly) = (ask(Tier::Daily).await.unwrap(), ask(Tier::Hourly).await.unwrap());
                assert_eq!(costs(daily), costs(hourly), "by {by:?}, bucket {bucket:?}");
            }
        }
        let by_team = store.usage_totals(Tier::Daily, window, &[Dimension::Team], None, &everything()).await.unwrap();
        assert_eq!(
            costs(by_team),
            [(None, Some(IDLE.into()), true, 4), (None, Some("vision".into()), false, 2 + 3 + 4 + 5)],
            "the hours at 22:00, 03:00, 10:00 and 01:00, and their idle GPU"
        );
        let six_hours = store.usage_totals(Tier::Daily, window, &[], Some(6 * H), &everything()).await;
        assert!(matches!(six_hours, Err(Error::Config(_))), "{six_hours:?}");
    });

    crate::store_test!(an_hour_is_replaced_whole_and_its_day_follows, |store| {
        let llm = |node| key("prod", "ml", Some("vision"), "Deployment/llm", node);
        let hour = [held(T, llm("n1"), 2, 4), held(T, llm("n2"), 1, 4), idle(T, "prod", "n1", 8, 5, 4)];
        store.replace_hour("prod", T, &hour).await.unwrap();
        let lab = [held(T, key("lab", "ml", Some("vision"), "Job/nb", "l1"), 1, 2)];
        store.replace_hour("lab", T, &lab).await.unwrap();
        let prod = UsageFilter { clusters: Some(vec!["prod".into()]), ..everything() };
        let one_hour = Span::new(T, T + H);

        let workloads = store.usage_totals(Tier::Hourly, one_hour, &[Dimension::Workload], None, &prod).await.unwrap();
        let lines: Vec<(Option<&str>, bool, i128)> =
            workloads.iter().map(|g| (g.workload.as_deref(), g.idle, g.usage.cost / DOLLAR)).collect();
        assert_eq!(lines, [(Some("Deployment/llm"), false, 12), (Some(IDLE), true, 20)], "nodes summed away");
        let nodes = store.usage_totals(Tier::HourlyNodes, one_hour, &[Dimension::Node], None, &prod).await.unwrap();
        let lines: Vec<(Option<&str>, i64, i64, i128)> = nodes
            .iter()
            .map(|g| {
                (g.node.as_deref(), g.usage.allocated / (1000 * H), g.usage.idle / (1000 * H), g.usage.cost / DOLLAR)
            })
            .collect();
        assert_eq!(lines, [(Some("n1"), 2, 5, 28), (Some("n2"), 1, 0, 4)], "a node's pods and idle in one row");

        // The day is the sum of its hours.
        let later = [held(T + H, llm("n1"), 3, 4)];
        store.replace_hour("prod", T + H, &later).await.unwrap();
        let day = Span::new(T - T % DAY, T - T % DAY + DAY);
        let daily = store.usage_totals(Tier::Daily, day, &[], None, &prod).await.unwrap();
        let hourly = store.usage_totals(Tier::Hourly, day, &[], None, &prod).await.unwrap();
        assert_eq!(daily, hourly);
        assert_eq!(totals(&daily).cost, (12 + 20 + 12) * DOLLAR);

        // Replacing an hour again replaces it, in every table.
        let again = [held(T, llm("n1"), 1, 4)];
        store.replace_hour("prod", T, &again).await.unwrap();
        store.replace_hour("prod", T, &again).await.unwrap();
        for tier in [Tier::Hourly, Tier::HourlyNodes, Tier::Daily] {
            let groups = store.usage_totals(tier, day, &[], None, &prod).await.unwrap();
            assert_eq!(totals(&groups).cost, (4 + 12) * DOLLAR, "{tier:?}");
        }
        // An hour with nothing in it empties the hour.
        store.replace_hour("prod", T, &[]).await.unwrap();
        let daily = store.usage_totals(Tier::Daily, day, &[], None, &prod).await.unwrap();
        assert_eq!(totals(&daily).cost, 12 * DOLLAR);
        let lab_only = UsageFilter { clusters: Some(vec!["lab".into()]), ..everything() };
        let lab_day = store.usage_totals(Tier::Daily, day, &[], None, &lab_only).await.unwrap();
        assert_eq!(totals(&lab_day).cost, 2 * DOLLAR, "another cluster's rows are not touched");

        for (cluster, hour, rows) in [
            ("prod", T + 1, vec![]),
            ("prod", T, vec![held(T + H, llm("n1"), 1, 4)]),
            ("lab", T, vec![held(T, llm("n1"), 1, 4)]),
        ] {
            let refused = store.replace_hour(cluster, hour, &rows).await;
            assert!(matches!(refused, Err(Error::Config(_))), "{cluster} {hour}: {refused:?}");
        }
    });

    crate::store_test!(rollups_answer_exactly_what_the_domain_computes, |store| {
        let q = 15 * MS_PER_MINUTE;
        let pod =
            |namespace: &str, team: Option<&str>, workload: &str, node: &str, capacity_type, milli_gpus, start, end| {
                AllocationInterval {
                    cluster: "prod".into(),
                    namespace: namespace.into(),
                    team: team.map(Into::into),
                    workload: workload.into(),
                    pod: format!("{}-0", workload.to_lowercase().replace('/', "-")),
                    node: node.into(),
                    model: "H100".into(),
                    capacity_type,
                    milli_gpus,
                    start,
                    end,
                }
            };
        let allocations = [
            pod("ml", Some("vision"), "Deployment/llm", "n1", OnDemand, 2000, T - 2 * q, None),
            pod("ml", Some("vision"), "Deployment/llm", "n2", Spot, 1000, T + q, Some(T + 2 * H + 3 * q)),
            pod("research", None, "Job/train", "n2", Spot, 500, T + 2 * q, Some(T + H + q)),
        ];
        let node = |name: &str, capacity_type, milli_gpus| CapacityInterval {
            cluster: "prod".into(),
            node: name.into(),
            model: "H100".into(),
            capacity_type,
            milli_gpus,
            start: T - H,
            end: None,
        };
        let capacity = [node("n1", OnDemand, 8000), node("n2", Spot, 4000)];
        let price = |capacity_type: CapacityType, dollars: f64, effective_from| PricePoint {
            cluster: None,
            model: "H100".into(),
            capacity_type,
            usd_per_gpu_hour: Some(Usd::from_dollars("price", dollars).unwrap()),
            effective_from,
        };
        let book = PriceBook::new([price(OnDemand, 4.0, 0), price(Spot, 1.5, 0), price(OnDemand, 5.0, T + H + q)]);
        let mut utilisation = Utilisation::default();
        utilisation.add("prod", "ml", "deployment-llm-0", Span::new(T, T + H), 50.0);
        utilisation.add("prod", "research", "job-train-0", Span::new(T + 2 * q, T + H), 5.0);
        let now = T + 3 * H;
        let mut all = Vec::new();
        for hour in [T, T + H, T + 2 * H] {
            let rows = rollup(hour, &allocations, &capacity, &[], &book, &utilisation, now);
            store.replace_hour("prod", hour, &rows).await.unwrap();
            all.extend(rows);
        }
        let window = Span::new(T, T + 3 * H);
        let expected = |by: &[Dimension], step: Option<i64>| -> BTreeMap<String, Usage> {
            let rows = aggregate(&all, by, false, step.map(|step| (window, step)));
            rows.into_iter()
                .map(|r| {
                    let label = format!(
                        "{:?} {:?} {:?} {:?} {:?} {:?} {}",
                        r.bucket, r.cluster, r.namespace, r.team, r.workload, r.capacity_type, r.idle
                    );
                    (label, r.totals.usage)
                })
                .collect()
        };
        let got = |groups: Vec<UsageGroup>| -> BTreeMap<String, Usage> {
            groups
                .into_iter()
                .map(|g| {
                    let label = format!(
                        "{:?} {:?} {:?} {:?} {:?} {:?} {}",
                        g.bucket, g.cluster, g.namespace, g.team, g.workload, g.capacity_type, g.idle
                    );
                    (label, g.usage)
                })
                .collect()
        };
        use Dimension::{Cluster, Namespace, Node, Team, Workload};
        let by_capacity = Dimension::CapacityType;
        let questions: [&[Dimension]; 5] =
            [&[], &[Team], &[Namespace, Workload], &[Cluster, by_capacity], &[Workload, Team, Namespace]];
        for by in questions {
            for step in [None, Some(H), Some(2 * H)] {
                let groups = store.usage_totals(Tier::Hourly, window, by, step, &everything()).await.unwrap();
                assert_eq!(got(groups), expected(by, step), "by {by:?} step {step:?}");
            }
        }
        let sum = totals(&store.usage_totals(Tier::Hourly, window, &[], None, &everything()).await.unwrap());
        assert!(sum.cost > 0 && sum.wasted > 0 && sum.util_weighted > 0 && sum.on_demand_cost > sum.cost, "{sum:?}");
        // Only the sums asked for are summed; the others stay zero, the groups the same.
        let filter = everything();
        let question = UsageQuestion {
            tier: Tier::Hourly,
            span: window,
            by: &[Namespace, Workload],
            bucket_ms: Some(H),
            filter: &filter,
        };
        let every = store.usage_sums(question, &Sum::ALL).await.unwrap();
        let only = |sums: &[Sum], keep: fn(&Usage) -> Usage| {
            let store = store.clone();
            let (sums, every) = (sums.to_vec(), every.clone());
            async move {
                let want: Vec<UsageGroup> =
                    every.into_iter().map(|g| UsageGroup { usage: keep(&g.usage), ..g }).collect();
                assert_eq!(store.usage_sums(question, &sums).await.unwrap(), want, "{sums:?}");
            }
        };
        only(&[Sum::Cost], |u| Usage { cost: u.cost, ..Usage::default() }).await;
        only(&[Sum::UtilWeighted, Sum::Unpriced], |u| Usage {
            unpriced: u.unpriced,
            util_weighted: u.util_weighted,
            ..Usage::default()
        })
        .await;
        only(&[], |_| Usage::default()).await;
        // The day holds the same, and each node's row its pods and its idle capacity.
        let day = Span::new(T - T % DAY, T - T % DAY + DAY);
        let daily = store.usage_totals(Tier::Daily, day, &[Team], None, &everything()).await.unwrap();
        assert_eq!(got(daily.into_iter().map(|g| UsageGroup { bucket: None, ..g }).collect()), expected(&[Team], None));
        let nodes = store.usage_totals(Tier::HourlyNodes, window, &[Node], None, &everything()).await.unwrap();
        for group in nodes {
            let mut want = Usage::default();
            for row in aggregate(&all, &[Node], false, None).iter().filter(|r| r.node == group.node) {
                want.add(&row.totals.usage);
            }
            assert_eq!(group.usage, want, "{:?}", group.node);
        }
    });

    crate::store_test!(filters_keep_to_what_a_viewer_may_see, |store| {
        let prod = [
            held(T, key("prod", "ml", Some("vision"), "Deployment/llm", "n1"), 2, 4),
            held(T, key("prod", "research", None, "Job/train", "n1"), 1, 4),
            idle(T, "prod", "n1", 8, 5, 4),
        ];
        store.replace_hour("prod", T, &prod).await.unwrap();
        store.replace_hour("lab", T, &[held(T, key("lab", "ml", Some("vision"), "Job/nb", "l1"), 1, 2)]).await.unwrap();
        let hour = Span::new(T, T + H);
        let by = [Dimension::Cluster, Dimension::Namespace];
        let ask = |tier, filter: UsageFilter| {
            let store = store.clone();
            async move { store.usage_totals(tier, hour, &by, None, &filter).await }
        };
        let seen = |groups: Vec<UsageGroup>| -> Vec<(String, String)> {
            groups.into_iter().map(|g| (g.cluster.unwrap_or_default(), g.namespace.unwrap_or_default())).collect()
        };
        let pair = |cluster: &str, namespace: &str| (cluster.to_string(), namespace.to_string());
        assert_eq!(
            seen(ask(Tier::Hourly, everything()).await.unwrap()),
            [pair("lab", "ml"), pair("prod", IDLE), pair("prod", "ml"), pair("prod", "research")]
        );

        // Thousands of visible namespaces, most of them empty.
        let mut visible: Vec<(String, String)> = (0..1_500).map(|i| pair("prod", &format!("ns-{i}"))).collect();
        visible.push(pair("prod", "ml"));
        let mine = UsageFilter { namespaces: Some(visible.clone()), ..everything() };
        for _ in 0..3 {
            assert_eq!(seen(ask(Tier::Hourly, mine.clone()).await.unwrap()), [pair("prod", "ml")]);
        }
        // The next question, maybe on the same connection, sees none of them.
        let theirs = UsageFilter { namespaces: Some(vec![pair("lab", "ml"), pair("lab", "ml")]), ..everything() };
        assert_eq!(seen(ask(Tier::Hourly, theirs).await.unwrap()), [pair("lab", "ml")]);
        let day = Span::new(T - T % DAY, T - T % DAY + DAY);
        assert_eq!(seen(store.usage_totals(Tier::Daily, day, &by, None, &mine).await.unwrap()), [pair("prod", "ml")]);
        let nobody = UsageFilter { namespaces: Some(vec![]), ..everything() };
        assert!(ask(Tier::Hourly, nobody).await.unwrap().is_empty());

        let teams =
            |teams: &[&str]| UsageFilter { teams: Some(teams.iter().map(|t| t.to_string()).collect()), ..everything() };
        assert_eq!(seen(ask(Tier::Hourly, teams(&["vision"])).await.unwrap()), [pair("lab", "ml"), pair("prod", "ml")]);
        assert_eq!(
            seen(ask(Tier::Hourly, teams(&[""])).await.unwrap()),
            [pair("prod", IDLE), pair("prod", "research")],
            "\"\" is no team, idle capacity included"
        );
        let vision_in_lab = UsageFilter { clusters: Some(vec!["lab".into()]), ..teams(&["vision"]) };
        assert_eq!(seen(ask(Tier::Hourly, vision_in_lab).await.unwrap()), [pair("lab", "ml")]);
        let one_workload = UsageFilter { workload: Some("Job/train".into()), ..everything() };
        assert_eq!(seen(ask(Tier::Hourly, one_workload).await.unwrap()), [pair("prod", "research")]);
        let no_clusters = UsageFilter { clusters: Some(vec![]), ..everything() };
        assert!(ask(Tier::Hourly, no_clusters).await.unwrap().is_empty());

        // What a tier does not have is refused, not ignored.
        let by_node = store.usage_totals(Tier::Hourly, hour, &[Dimension::Node], None, &everything()).await;
        assert!(matches!(by_node, Err(Error::Config(_))));
        let nodes_by_namespace =
            store.usage_totals(Tier::HourlyNodes, hour, &[Dimension::Namespace], None, &everything()).await;
        assert!(matches!(nodes_by_namespace, Err(Error::Config(_))));
        let nodes_of_mine = UsageFilter { namespaces: Some(visible), ..everything() };
        assert!(matches!(
            store.usage_totals(Tier::HourlyNodes, hour, &[], None, &nodes_of_mine).await,
            Err(Error::Config(_))
        ));
        assert!(matches!(
            store.usage_totals(Tier::Hourly, hour, &[], Some(0), &everything()).await,
            Err(Error::Config(_))
        ));

        // With nothing to group by, one total, or none where there are no rows.
        let fleet = store.usage_totals(Tier::HourlyNodes, hour, &[], None, &everything()).await.unwrap();
        assert_eq!((fleet.len(), fleet[0].usage.cost), (1, (8 + 4 + 20 + 2) * DOLLAR));
        let before = Span::new(T - 2 * H, T);
        assert!(store.usage_totals(Tier::HourlyNodes, before, &[], None, &everything()).await.unwrap().is_empty());
        assert!(store.usage_totals(Tier::Hourly, Span::new(T, T), &[], None, &everything()).await.unwrap().is_empty());
    });

    crate::store_test!(a_page_holds_the_groups_the_whole_answer_ranks_there, |store| {
        // Ten workloads over three days (partial first and last days, so a
        // daily question has three parts), in two namespaces, half on spot
        // (saving a varying share), some partly wasted, with idle GPUs.
        let day = T - T.rem_euclid(DAY);
        let hours = [day + 20 * H, day + 23 * H, day + DAY + 5 * H, day + DAY + 17 * H, day + 2 * DAY + H];
        for (h, &hour) in hours.iter().enumerate() {
            let mut rows = vec![idle(hour, "prod", "n1", 40, 3 + h as i64, 2)];
            for i in 0..10i64 {
                if (i + h as i64) % 4 == 3 {
                    continue; // not every workload every hour
                }
                let namespace = if i % 2 == 0 { "ml" } else { "research" };
                let mut key = key("prod", namespace, Some("vision"), &format!("Job/w{i}"), "n1");
                if i % 2 == 1 {
                    key.capacity_type = Spot;
                }
                let mut row = held(hour, key, 1 + i, i128::from(1 + (i * 7) % 5));
                row.usage.on_demand_cost = row.usage.cost * i128::from(1 + i % 3);
                row.usage.wasted_cost = row.usage.cost * i128::from(i % 4) / 4;
                rows.push(row);
            }
            store.replace_hour("prod", hour, &rows).await.unwrap();
        }
        let window = Span::new(day + 21 * H, day + 2 * DAY + 2 * H);
        let by = [Dimension::Workload, Dimension::Model, Dimension::CapacityType];
        let orders = [
            GroupOrder::Cost,
            GroupOrder::GpuHours,
            GroupOrder::Savings,
            GroupOrder::Idle,
            GroupOrder::Waste,
            GroupOrder::Name,
        ];
        type Key = (Option<String>, bool);
        for (tier, bucket) in [(Tier::Daily, Some(DAY)), (Tier::Daily, None), (Tier::Hourly, Some(6 * H))] {
            let all = everything();
            let whole = store.usage_totals(tier, window, &by, bucket, &all).await.unwrap();
            let mut per_group: BTreeMap<Key, Usage> = BTreeMap::new();
            for group in &whole {
                per_group.entry((group.workload.clone(), group.idle)).or_default().add(&group.usage);
            }
            for order in orders {
                for descending in [true, false] {
                    for needle in ["", "w1", "idle", "RESEARCH-none", "job/w_"] {
                        let needle = needle.to_lowercase();
                        let mut ranked: Vec<(&Key, &Usage)> = per_group
                            .iter()
                            .filter(|((workload, idle), _)| {
                                needle.is_empty()
                                    || (*idle && "idle".contains(&needle))
                                    || workload.as_deref().is_some_and(|w| w.to_lowercase().contains(&needle))
                            })
                            .collect();
                        ranked.sort_by(|(a_key, a), (b_key, b)| {
                            let by_measure = order.measure(a).cmp(&order.measure(b));
                            let by_measure = if descending { by_measure.reverse() } else { by_measure };
                            let by_key = a_key.cmp(b_key);
                            let by_key =
                                if descending && order == GroupOrder::Name { by_key.reverse() } else { by_key };
                            by_measure.then(by_key)
                        });
                        let mut paged: Vec<Key> = Vec::new();
                        for offset in (0..=ranked.len()).step_by(3) {
                            let page = GroupPage { order, descending, needle: needle.clone(), limit: Some(3), offset };
                            let question =
                                UsageQuestion { tier, span: window, by: &by, bucket_ms: bucket, filter: &all };
                            let (groups, matching) =
                                store.usage_page(question, &[Dimension::Workload], &page).await.unwrap();
                            let context =
                                format!("{tier:?} {bucket:?} {order:?} desc {descending} {needle:?} @{offset}");
                            assert_eq!(matching, ranked.len(), "{context}");
                            let mut sums: BTreeMap<Key, Usage> = BTreeMap::new();
                            for group in &groups {
                                sums.entry((group.workload.clone(), group.idle)).or_default().add(&group.usage);
                            }
                            let want: Vec<&Key> = ranked.iter().skip(offset).take(3).map(|(k, _)| *k).collect();
                            let mut want_sorted = want.clone();
                            want_sorted.sort();
                            assert_eq!(sums.keys().collect::<Vec<_>>(), want_sorted, "{context}");
                            for (key, usage) in &sums {
                                assert_eq!(usage, &per_group[key], "{context}: every row of {key:?}");
                            }
                            paged.extend(want.into_iter().cloned());
                        }
                        let every: Vec<Key> = ranked.iter().map(|(k, _)| (*k).clone()).collect();
                        assert_eq!(paged, every, "pages in turn are the whole answer");
                    }
                }
            }
        }
        // A page past the end still says how many groups there are.
        let all = everything();
        let question = UsageQuestion { tier: Tier::Daily, span: window, by: &by, bucket_ms: None, filter: &all };
        let far = GroupPage { limit: Some(5), offset: 50, ..GroupPage::everything() };
        let (groups, matching) = store.usage_page(question, &[Dimension::Workload], &far).await.unwrap();
        assert_eq!((groups.len(), matching), (0, 11), "ten workloads and idle");
        // A team viewer's page: only their namespaces, never the idle row.
        let mine = UsageFilter { namespaces: Some(vec![("prod".into(), "ml".into())]), ..everything() };
        let question = UsageQuestion { filter: &mine, ..question };
        let (groups, matching) =
            store.usage_page(question, &[Dimension::Workload], &GroupPage::everything()).await.unwrap();
        assert_eq!(matching, 5);
        assert!(
            groups
                .iter()
                .all(|g| !g.idle && g.workload.as_deref().is_some_and(|w| w.ends_with(['0', '2', '4', '6', '8'])))
        );
        // Paging by a dimension the question does not have is refused.
        let by_team = store.usage_page(question, &[Dimension::Team], &GroupPage::everything()).await;
        assert!(matches!(by_team, Err(Error::Config(_))), "{by_team:?}");
    });

    crate::store_test!(the_largest_sums_stay_exact_on_both_backends, |store| {
        // 8,000 GPUs held for 400 days at the highest price Gantry accepts
        // ($10,000 per GPU-hour), fully used: one row a day, each a day's sums.
        let first_day = T - T % DAY - 400 * DAY;
        let day_time: i64 = 8_000 * 1_000 * DAY;
        let day_cost = i128::from(day_time) * i128::from(Usd::MAX_GPU_HOUR.micros());
        let usage = Usage {
            allocated: day_time,
            cost: day_cost,
            on_demand_cost: day_cost,
            util_known: day_time,
            util_weighted: 10_000 * i128::from(day_time),
            ..Usage::default()
        };
        for day in 0..400 {
            let hour = first_day + day * DAY;
            let row = HourlyRow { hour, key: key("prod", "ml", Some("vision"), "Job/train", "n1"), usage };
            store.replace_hour("prod", hour, &[row]).await.unwrap();
        }
        let span = Span::new(first_day, first_day + 400 * DAY);
        let mut want = Usage::default();
        (0..400).for_each(|_| want.add(&usage));
        assert!(want.cost / COST_UNITS_PER_NANO_USD > i128::from(i64::MAX), "the cost in nano-dollars passes an i64");
        assert!(want.util_weighted > i128::from(i64::MAX));
        for tier in [Tier::Hourly, Tier::HourlyNodes, Tier::Daily] {
            let groups = store.usage_totals(tier, span, &[], None, &everything()).await.unwrap();
            assert_eq!(totals(&groups), want, "{tier:?}");
            let months =
                store.usage_totals(tier, span, &[Dimension::Cluster], Some(30 * DAY), &everything()).await.unwrap();
            assert_eq!(months.len() as u64, usage::point_count(span, 30 * DAY), "{tier:?}");
            assert_eq!(totals(&months), want, "{tier:?} in 30-day buckets");
            let question = UsageQuestion { tier, span, by: &[], bucket_ms: None, filter: &everything() };
            let cost = store.usage_sums(question, &[Sum::Cost]).await.unwrap();
            assert_eq!(totals(&cost), Usage { cost: want.cost, ..Usage::default() }, "{tier:?}, the cost alone");
        }
        let utilisation = Totals::of(want).utilisation_percent;
        assert_eq!(utilisation, Some(100.0));
    });

    crate::store_test!(watermarks_are_per_cluster, |store| {
        assert_eq!(store.rollup_watermark("prod").await.unwrap(), None);
        store.set_rollup_watermark("prod", T, T).await.unwrap();
        store.set_rollup_watermark("lab", T - H, T).await.unwrap();
        store.set_rollup_watermark("prod", T + H, T + 2 * H).await.unwrap();
        assert_eq!(store.rollup_watermark("prod").await.unwrap(), Some(T + H));
        assert_eq!(store.rollup_watermark("lab").await.unwrap(), Some(T - H));
        store.set_rollup_watermark("prod", T - 5 * H, T + 3 * H).await.unwrap();
        assert_eq!(store.rollup_watermark("prod").await.unwrap(), Some(T - 5 * H), "it may move back, to redo hours");
        let reach = store.rollups_reach(&["prod".into(), "lab".into(), "dev".into()]).await.unwrap();
        assert_eq!(reach.into_iter().collect::<Vec<_>>(), [("lab".to_string(), T), ("prod".to_string(), T + 3 * H)]);
    });

    crate::store_test!(retention_drops_whole_months_and_deletes_the_rest, |store| {
        let at = |text: &str| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap().unix_timestamp()
                * 1000
        };
        let hours = [
            at("2026-10-15T10:00:00Z"),
            at("2026-10-31T23:00:00Z"),
            at("2026-11-02T10:00:00Z"),
            at("2026-12-01T00:00:00Z"),
            at("2026-12-02T05:00:00Z"),
        ];
        for hour in hours {
            let rows =
                [held(hour, key("prod", "ml", Some("vision"), "Job/a", "n1"), 1, 1), idle(hour, "prod", "n1", 2, 1, 1)];
            store.replace_hour("prod", hour, &rows).await.unwrap();
        }
        let all = Span::new(hours[0] - DAY, hours[4] + DAY);
        let cost = |tier| {
            let store = store.clone();
            async move { totals(&store.usage_totals(tier, all, &[], None, &everything()).await.unwrap()).cost / DOLLAR }
        };
        assert_eq!(cost(Tier::Hourly).await, 10);

        let postgres = store.backend() == crate::Backend::Postgres;
        let november = at("2026-11-01T00:00:00Z");
        assert_eq!(store.ensure_partitions(november + 5 * DAY).await.unwrap(), postgres);
        assert!(!store.ensure_partitions(november).await.unwrap(), "idempotent");
        let (a, b) = tokio::join!(
            store.ensure_partitions(at("2026-10-01T00:00:00Z")),
            store.ensure_partitions(at("2026-10-20T00:00:00Z"))
        );
        assert_eq!(a.unwrap() ^ b.unwrap(), postgres, "two at once make it once");
        if postgres {
            let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool());
            assert_eq!(
                count("SELECT COUNT(*) FROM usage_hourly_p202611").await.unwrap(),
                2,
                "November's rows moved in"
            );
            assert_eq!(count("SELECT COUNT(*) FROM usage_hourly_nodes_p202610").await.unwrap(), 2);
            assert_eq!(
                count("SELECT COUNT(*) FROM usage_hourly_default").await.unwrap(),
                4,
                "December waits in the default"
            );
        }
        assert_eq!(cost(Tier::Hourly).await, 10, "moving rows changes no sum");
        assert_eq!(cost(Tier::HourlyNodes).await, 10);

        let deleted = store.delete_rollups_before(at("2026-12-01T01:00:00Z")).await.unwrap();
        if postgres {
            assert_eq!(deleted.partitions, 6, "October and November, of the three tables");
            assert_eq!((deleted.hourly_rows, deleted.node_rows), (4, 1), "what is left before the cutoff");
            let left: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(relname AS TEXT) FROM pg_catalog.pg_class WHERE CAST(relname AS TEXT) LIKE 'usage_hourly%_p2026%'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            assert!(left.is_empty(), "{left:?}");
        } else {
            assert_eq!((deleted.partitions, deleted.hourly_rows, deleted.node_rows), (0, 16, 4));
        }
        assert_eq!(deleted.daily_rows, 12, "the days of October and November; December 1st is not over");
        assert_eq!(cost(Tier::Hourly).await, 2, "December 2nd's hour");
        assert_eq!(cost(Tier::Daily).await, 4, "December 1st and 2nd");
        // A month created after its rows were deleted is simply empty.
        assert_eq!(store.ensure_partitions(november).await.unwrap(), postgres);
    });
}

#[cfg(test)]
mod spawnable {
    use super::*;

    fn send<T: Send>(_: T) {}

    /// The background loop spawns these; a future that is not `Send` (easy
    /// to make by accident with sqlx's generic executors) fails to compile.
    /// A Tokio test because a lazy pool starts its maintenance task at once.
    #[tokio::test]
    async fn the_maintenance_futures_are_send() {
        sqlx::any::install_default_drivers();
        if let Ok(pool) = sqlx::AnyPool::connect_lazy("sqlite::memory:") {
            let store = Store { pool, backend: Backend::Sqlite };
            send(store.delete_raw_before(0));
            send(store.delete_rollups_before(0));
            send(store.ensure_partitions(0));
            send(store.replace_hour("a", 0, &[]));
        }
    }
}
