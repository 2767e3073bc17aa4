//! The question "what did these GPUs cost?" as the API and the costs page
//! ask it, and its answer. The arithmetic is in [`crate::usage`].

use serde::{Deserialize, Serialize};

use crate::gpu::CapacityType;
use crate::lenient;
use std::collections::BTreeMap;

use crate::usage::{AllocationRow, Dimension, Totals, Usage};
use crate::validate::Invalid;

/// A cost-allocation question, as typed into the page's form or a URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default)]
pub struct AllocationQuery {
    /// `24h`, `7d`, `30d`, `today`, `yesterday`, `month`, `lastmonth`, or
    /// `start,end` as RFC 3339 or Unix milliseconds. Default `24h`.
    pub window: String,
    /// Comma-separated: cluster, namespace, team, workload, node, model,
    /// capacity_type. Default `team`.
    pub aggregate: String,
    /// A series step such as `1h` or `1d`; empty for one row per group.
    pub step: String,
    /// Spread each cluster's idle capacity over its teams by their share of
    /// the allocation (like OpenCost's shareIdle); by default idle stays on
    /// the cluster as its own row.
    #[serde(deserialize_with = "lenient::flag")]
    pub share_idle: bool,
    /// What orders the groups: `cost` (the default), `gpu_hours`, `savings`,
    /// `idle`, `waste`, or `name`.
    pub sort: String,
    /// `desc` (the default) or `asc`.
    pub order: String,
    /// Only groups with a value that contains this text, in any case
    /// (`idle` finds the idle rows).
    pub q: String,
    /// Groups per page, 1 to 10,000: 100 by default (the CSV export has
    /// every group unless given). A group keeps all its buckets on one page.
    pub limit: String,
    /// Groups skipped before the page: 0 by default.
    pub offset: String,
}

impl AllocationQuery {
    /// The query as URL parameters, for links and the address bar.
    pub fn to_query_string(&self) -> String {
        crate::view::query_string([
            ("window", self.window.as_str()),
            ("aggregate", &self.aggregate),
            ("step", &self.step),
            ("sort", &self.sort),
            ("order", &self.order),
            ("q", &self.q),
            ("limit", &self.limit),
            ("offset", &self.offset),
            ("share_idle", if self.share_idle { "true" } else { "" }),
        ])
    }

    /// Which groups of the answer to return and in what order; `limit`
    /// stands when the question gives none (None: every group).
    pub fn page(&self, default_limit: Option<usize>) -> Result<GroupPage, Invalid> {
        let order = match self.sort.trim() {
            "" | "cost" => GroupOrder::Cost,
            "gpu_hours" => GroupOrder::GpuHours,
            "savings" => GroupOrder::Savings,
            "idle" => GroupOrder::Idle,
            "waste" => GroupOrder::Waste,
            "name" => GroupOrder::Name,
            _ => return Err(Invalid::new("sort", "must be cost, gpu_hours, savings, idle, waste or name")),
        };
        let descending = match self.order.trim() {
            "" | "desc" => true,
            "asc" => false,
            _ => return Err(Invalid::new("order", "must be asc or desc")),
        };
        let limit = match lenient::int("limit", &self.limit)? {
            None => default_limit,
            Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Some(n as usize),
            Some(_) => return Err(Invalid::new("limit", "must be 1 to 10,000 groups")),
        };
        let offset = match lenient::int("offset", &self.offset)? {
            None => 0,
            Some(n) if n >= 0 => usize::try_from(n).map_err(|_| Invalid::new("offset", "is too large"))?,
            Some(_) => return Err(Invalid::new("offset", "must be zero or more")),
        };
        if self.q.chars().count() > 200 {
            return Err(Invalid::new("q", "must be at most 200 characters"));
        }
        Ok(GroupPage { order, descending, needle: self.q.trim().to_lowercase(), limit, offset })
    }
}

/// The most groups one page holds.
pub const MAX_PAGE: usize = 10_000;
/// Groups on a page when the question does not say.
pub const DEFAULT_PAGE: usize = 100;

/// What orders the groups of an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupOrder {
    #[default]
    Cost,
    GpuHours,
    /// What spot saved against on-demand.
    Savings,
    /// The cost of idle GPUs.
    Idle,
    /// The cost of GPUs held under the utilisation threshold.
    Waste,
    /// The group's values, in order of the dimensions.
    Name,
}

impl GroupOrder {
    /// The figure a group is ordered by (None: by its values alone).
    pub fn measure(self, usage: &Usage) -> Option<i128> {
        match self {
            GroupOrder::Cost => Some(usage.cost),
            GroupOrder::GpuHours => Some(i128::from(usage.allocated)),
            GroupOrder::Savings => Some(usage.on_demand_cost - usage.cost),
            GroupOrder::Idle => Some(usage.idle_cost),
            GroupOrder::Waste => Some(usage.wasted_cost),
            GroupOrder::Name => None,
        }
    }
}

/// One page of an answer's groups: those that match `needle`, in `order`,
/// `offset` skipped, at most `limit` (None: all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupPage {
    pub order: GroupOrder,
    pub descending: bool,
    /// Lower case; empty matches every group.
    pub needle: String,
    pub limit: Option<usize>,
    pub offset: usize,
}

impl GroupPage {
    /// Every group, by cost, highest first.
    pub fn everything() -> GroupPage {
        GroupPage { descending: true, ..GroupPage::default() }
    }

    /// Whether a group with these values (and idle or not) is on the
    /// answer: a value contains the needle, in any case.
    pub fn matches<'a>(&self, values: impl IntoIterator<Item = &'a str>, idle: bool) -> bool {
        self.needle.is_empty()
            || (idle && "idle".contains(&self.needle))
            || values.into_iter().any(|value| value.to_lowercase().contains(&self.needle))
    }

    /// The page of `rows` (a breakdown, a row per group and bucket): whole
    /// groups, in order, each group's rows by bucket; and how many groups
    /// match in all.
    pub fn cut(&self, rows: Vec<AllocationRow>) -> (Vec<AllocationRow>, usize) {
        let mut groups: BTreeMap<GroupKey, (Usage, Vec<AllocationRow>)> = BTreeMap::new();
        for row in rows {
            let key = group_key(&row);
            if !self.matches(key.1.iter().flatten().map(String::as_str), key.0) {
                continue;
            }
            let (usage, rows) = groups.entry(key).or_default();
            usage.add(&row.totals.usage);
            rows.push(row);
        }
        let matching = groups.len();
        let mut ordered: Vec<(GroupKey, (Usage, Vec<AllocationRow>))> = groups.into_iter().collect();
        // Stable: equal figures stay in the order of their values.
        ordered.sort_by(|(a_key, (a, _)), (b_key, (b, _))| {
            let by_measure = self.order.measure(a).cmp(&self.order.measure(b));
            let by_values = if self.order == GroupOrder::Name { a_key.cmp(b_key) } else { std::cmp::Ordering::Equal };
            let ordering = by_measure.then(by_values);
            if self.descending { ordering.reverse() } else { ordering }
        });
        let page = ordered
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .flat_map(|(_, (_, mut rows))| {
                rows.sort_by_key(|row| row.bucket);
                rows
            })
            .collect();
        (page, matching)
    }
}

/// A group's identity: idle or not, and its values in order of the
/// dimensions (capacity type as its label).
type GroupKey = (bool, [Option<String>; 7]);

fn group_key(row: &AllocationRow) -> GroupKey {
    (
        row.idle,
        [
            row.cluster.clone(),
            row.namespace.clone(),
            row.team.clone(),
            row.workload.clone(),
            row.node.clone(),
            row.model.clone(),
            row.capacity_type.map(|c| c.label().to_string()),
        ],
    )
}

/// Whether GPU utilisation is known for the rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum UtilisationState {
    /// No cluster in the answer names a Prometheus.
    #[default]
    NotConfigured,
    /// Read from each cluster's Prometheus (DCGM exporter metrics).
    Known,
    /// A configured Prometheus did not answer; the reason says why.
    Unavailable(String),
}

/// GPU time of one model and capacity type that had no price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnpricedTime {
    pub model: String,
    pub capacity_type: CapacityType,
    pub gpu_hours: f64,
}

/// The answer: rows by the asked dimensions (and step), with their totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllocationReport {
    /// The window answered, Unix milliseconds [start, end).
    pub start: i64,
    pub end: i64,
    pub aggregate: Vec<Dimension>,
    /// The step of the series in milliseconds; None for one row per group.
    pub step: Option<i64>,
    pub share_idle: bool,
    /// `exact` (from the raw intervals: windows of a day or less) or
    /// `hourly` (from hourly rollups: longer windows start and end on the hour).
    pub resolution: String,
    /// The page's groups (each with its buckets, in order), in the order asked.
    pub rows: Vec<AllocationRow>,
    /// Groups that match the question in all; `rows` holds those from
    /// `offset` on, at most `limit` of them.
    pub groups: usize,
    pub offset: usize,
    /// None: every group.
    pub limit: Option<usize>,
    /// Of the whole window, every group (the filter `q` aside).
    pub totals: Totals,
    /// Models and capacity types whose GPU time had no price, with the GPU-hours left out.
    pub unpriced: Vec<UnpricedTime>,
    pub utilisation: UtilisationState,
    /// Idle capacity appears (as its own rows, or shared): global admins
    /// see every cluster's idle; a team sees it only shared into its rows.
    pub idle_shown: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;

    fn row(workload: &str, bucket: Option<i64>, cost: i128, allocated: i64) -> AllocationRow {
        AllocationRow {
            bucket,
            cluster: None,
            namespace: None,
            team: None,
            workload: Some(workload.into()),
            node: None,
            model: None,
            capacity_type: None,
            idle: workload == crate::usage::IDLE,
            totals: Totals::of(Usage { cost, allocated, ..Usage::default() }),
        }
    }

    fn names(rows: &[AllocationRow]) -> Vec<(String, Option<i64>)> {
        rows.iter().map(|r| (r.workload.clone().unwrap_or_default(), r.bucket)).collect()
    }

    #[test]
    fn a_page_holds_whole_groups_in_order_with_their_buckets() {
        let rows = vec![
            row("Job/a", Some(2), 5, 1),
            row("Job/b", Some(1), 4, 9),
            row("Job/a", Some(1), 5, 1),
            row("Job/c", Some(1), 1, 3),
            row(crate::usage::IDLE, Some(1), 7, 0),
        ];
        let page = |sort: &str, order: &str, q: &str, limit: &str, offset: &str| {
            let query = AllocationQuery {
                sort: sort.into(),
                order: order.into(),
                q: q.into(),
                limit: limit.into(),
                offset: offset.into(),
                ..AllocationQuery::default()
            };
            query.page(Some(DEFAULT_PAGE)).unwrap().cut(rows.clone())
        };
        let (by_cost, groups) = page("", "", "", "2", "");
        assert_eq!(groups, 4);
        assert_eq!(
            names(&by_cost),
            [("Job/a".into(), Some(1)), ("Job/a".into(), Some(2)), (crate::usage::IDLE.into(), Some(1))],
            "Job/a (5 + 5, both its buckets, in order), then the idle group (7)"
        );
        let (next, _) = page("cost", "desc", "", "2", "2");
        assert_eq!(names(&next), [("Job/b".into(), Some(1)), ("Job/c".into(), Some(1))]);
        let (by_hours, _) = page("gpu_hours", "asc", "", "", "");
        assert_eq!(names(&by_hours)[0].0, crate::usage::IDLE);
        let (by_name, _) = page("name", "asc", "", "", "");
        assert_eq!(names(&by_name)[0].0, "Job/a");
        let (found, groups) = page("", "", "JOB/B", "", "");
        assert_eq!((names(&found), groups), (vec![("Job/b".into(), Some(1))], 1), "any case");
        let (idle, _) = page("", "", "idle", "", "");
        assert!(idle.iter().all(|r| r.idle));
        let (past_the_end, groups) = page("", "", "", "10", "10");
        assert_eq!((past_the_end.len(), groups), (0, 4));
    }

    #[test]
    fn bad_paging_is_named() {
        let field = |query: AllocationQuery| query.page(Some(DEFAULT_PAGE)).unwrap_err().field;
        let ask = AllocationQuery::default;
        assert_eq!(field(AllocationQuery { sort: "price".into(), ..ask() }), "sort");
        assert_eq!(field(AllocationQuery { order: "up".into(), ..ask() }), "order");
        for limit in ["0", "10001", "-1", "ten"] {
            assert_eq!(field(AllocationQuery { limit: limit.into(), ..ask() }), "limit", "{limit}");
        }
        for offset in ["-1", "x"] {
            assert_eq!(field(AllocationQuery { offset: offset.into(), ..ask() }), "offset", "{offset}");
        }
        assert_eq!(field(AllocationQuery { q: "x".repeat(201), ..ask() }), "q");
        let fine = AllocationQuery { limit: "10000".into(), offset: "5".into(), ..ask() }.page(None).unwrap();
        assert_eq!((fine.limit, fine.offset, fine.order, fine.descending), (Some(10_000), 5, GroupOrder::Cost, true));
        assert_eq!(ask().page(None).unwrap().limit, None, "every group when no default is given (the CSV)");
    }
}
