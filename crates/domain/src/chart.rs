//! Charts over time: what a chart asks for, what it gets back, and the pure
//! work in between, so the server, the REST API and the browser share one
//! shape.
//!
//! A chart is one [`Frame`] (series on shared bucket times, as uPlot takes
//! them) with a style per series, markers, and notes that say what is
//! missing. The server picks the bucket width from the chart's width in
//! pixels ([`series::bucket_width`]), so no chart receives more than two
//! points per pixel. The usage in each bucket is exact: recent ranges are
//! computed from the ledger's raw intervals ([`accrue`], in one pass over
//! the intervals whatever the number of buckets), older ones from the
//! hourly or daily rollups summed in SQL, both into [`Accruals`].
//!
//! A bucket nobody watched (a stale cluster, before the ledger began) is a
//! gap, not a zero: [`known_time`] says how much of each bucket each
//! cluster was watched, and gauges (GPUs, cost per hour) are averaged over
//! that known time only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gpu::CapacityType;
use crate::lenient;
use crate::series::{self, Frame, Series, Unit};
use crate::usage::{
    self, AllocationInterval, CapacityInterval, CostUnits, Dimension, Gap, MILLI_GPUS_PER_GPU, MS_PER_DAY, MS_PER_HOUR,
    MS_PER_MINUTE, PriceBook, Span, Usage, UsageKey, Utilisation,
};
use crate::validate::Invalid;

/// The finest bucket a chart gets from the raw intervals.
pub const FINEST_STEP_MS: i64 = MS_PER_MINUTE;
/// Ranges up to this long are computed from the raw intervals (when still
/// kept); longer ones from the rollups, on whole hours.
pub const RAW_UP_TO_MS: i64 = 2 * MS_PER_DAY;
/// The width a chart is computed for when the caller does not say.
pub const DEFAULT_WIDTH_PX: u32 = 1000;
/// The most series a breakdown draws; the rest are summed into "other".
pub const MOST_SERIES: usize = 15;
/// The label of the series that sums the smallest ones.
pub const OTHER: &str = "other";

// ---------------------------------------------------------------------------
// The question

/// Which chart: each has its own series, unit and scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Dollars per bucket, stacked by the grouping (the costs page).
    Spend,
    /// Dollars per hour, stacked by the grouping; idle capacity is its own
    /// band for those who see everything.
    CostRate,
    /// GPUs on offer, allocated and utilised (when measured), per group, in
    /// the visible clusters or one cluster or node: node-level counts, as the
    /// overview and node pages show them.
    Gpus,
    /// A team's month: spend so far, the budget, and the forecast to the
    /// month's end.
    Budget,
    /// One workload's GPUs and the pods holding them.
    Workload,
    /// One workload's cost per bucket.
    WorkloadCost,
}

impl ChartKind {
    pub const ALL: [ChartKind; 6] = [
        ChartKind::Spend,
        ChartKind::CostRate,
        ChartKind::Gpus,
        ChartKind::Budget,
        ChartKind::Workload,
        ChartKind::WorkloadCost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChartKind::Spend => "spend",
            ChartKind::CostRate => "cost_rate",
            ChartKind::Gpus => "gpus",
            ChartKind::Budget => "budget",
            ChartKind::Workload => "workload",
            ChartKind::WorkloadCost => "workload_cost",
        }
    }

    pub fn parse(text: &str) -> Result<ChartKind, Invalid> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        ChartKind::ALL.into_iter().find(|k| k.name() == wanted).ok_or_else(|| {
            let known: Vec<&str> = ChartKind::ALL.iter().map(|k| k.name()).collect();
            let shown: String = text.chars().take(40).collect();
            Invalid::new("chart", format!("unknown chart {shown:?}; use {}", known.join(", ")))
        })
    }

    pub fn unit(self) -> Unit {
        match self {
            ChartKind::Spend | ChartKind::Budget | ChartKind::WorkloadCost => Unit::Dollars,
            ChartKind::CostRate => Unit::DollarsPerHour,
            ChartKind::Gpus => Unit::Gpus,
            ChartKind::Workload => Unit::Count,
        }
    }

    /// The groupings a chart can be split by.
    fn groupings(self) -> &'static [Dimension] {
        match self {
            ChartKind::Spend | ChartKind::CostRate => &[
                Dimension::Cluster,
                Dimension::Namespace,
                Dimension::Team,
                Dimension::Workload,
                Dimension::Node,
                Dimension::Model,
                Dimension::CapacityType,
            ],
            ChartKind::Gpus => &[Dimension::Cluster, Dimension::Model, Dimension::CapacityType],
            ChartKind::Budget | ChartKind::Workload | ChartKind::WorkloadCost => &[],
        }
    }
}

/// A chart's question, as a URL or a form carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default)]
pub struct SeriesQuery {
    /// `spend`, `cost_rate`, `gpus`, `budget`, `workload` or `workload_cost`.
    pub chart: String,
    /// What each series is: comma-separated cluster, namespace, team,
    /// workload, node, model, capacity_type (`spend`, `cost_rate`; node for
    /// global admins), or cluster, model, capacity_type (`gpus`). Empty: one
    /// series (or one set of series) for everything.
    pub by: String,
    /// `1h`, `6h`, `24h`, `7d`, `30d`, `month`, `lastmonth`, or `start,end`
    /// as RFC 3339 or Unix milliseconds. Default `24h`; a budget is always
    /// this month. `life` (`workload`, `workload_cost`): the workload's life
    /// in the ledger, from a little before its first GPU was held to a
    /// little after its last was given back, or on to now.
    pub range: String,
    /// The chart's width in pixels, 1 to 10,000 (default 1000): at most two
    /// points per pixel come back.
    #[serde(deserialize_with = "lenient::text")]
    pub width: String,
    /// `gpus`: one cluster; `workload`, `workload_cost`: the workload's cluster.
    pub cluster: String,
    /// `workload`, `workload_cost`: the workload's namespace.
    pub namespace: String,
    /// `workload`, `workload_cost`: `Deployment/name`, `Job/name`, `PyTorchJob/name` or `TFJob/name`.
    pub workload: String,
    /// `gpus`: one node (with `cluster`).
    pub node: String,
    /// `budget`: the team's id.
    #[serde(deserialize_with = "lenient::text")]
    pub team: String,
}

impl SeriesQuery {
    /// The query as URL parameters (empty ones left out).
    pub fn to_query_string(&self) -> String {
        crate::view::query_string([
            ("chart", self.chart.as_str()),
            ("by", &self.by),
            ("range", &self.range),
            ("width", &self.width),
            ("cluster", &self.cluster),
            ("namespace", &self.namespace),
            ("workload", &self.workload),
            ("node", &self.node),
            ("team", &self.team),
        ])
    }
}

/// What a chart is about besides its range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything the caller may see.
    Visible,
    /// One cluster, or one node of it.
    Cluster { cluster: String, node: Option<String> },
    /// One team, by id.
    Team(i64),
    /// One workload (`Deployment/name`, `Job/name`) in a namespace.
    Workload { cluster: String, namespace: String, workload: String },
}

/// A chart's question, checked: which chart, split how, over which
/// buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartRequest {
    pub kind: ChartKind,
    pub by: Vec<Dimension>,
    pub scope: Scope,
    /// The range asked for; a budget's runs to the month's end.
    pub span: Span,
    pub step: i64,
    pub width: u32,
    /// From the raw intervals (true) or the rollups.
    pub raw: bool,
    /// When it was asked: the range's data ends here.
    pub now: i64,
}

/// Reads and checks a chart's question at `now`. `raw_retention_ms` is how
/// long the raw intervals are kept: a recent range short enough is answered
/// from them at minute resolution; any other from the rollups, on whole
/// hours, and must lie within `rollup_retention_ms`.
pub fn parse_request(
    query: &SeriesQuery,
    now: i64,
    raw_retention_ms: i64,
    rollup_retention_ms: i64,
) -> Result<ChartRequest, Invalid> {
    let kind = ChartKind::parse(if query.chart.trim().is_empty() { "spend" } else { &query.chart })?;
    let width = match lenient::int("width", &query.width)? {
        None => DEFAULT_WIDTH_PX,
        Some(w) if (1..=i64::from(series::MAX_WIDTH_PX)).contains(&w) => w as u32,
        Some(_) => return Err(Invalid::new("width", "must be 1 to 10,000 pixels")),
    };
    let by = usage::parse_aggregate(&query.by).map_err(|e| Invalid::new("by", e.message))?;
    if let Some(d) = by.iter().find(|d| !kind.groupings().contains(d)) {
        let allowed: Vec<&str> = kind.groupings().iter().map(|d| d.name()).collect();
        let message = if allowed.is_empty() {
            format!("the {} chart is not split by anything (not by {})", kind.name(), d.name())
        } else {
            format!("the {} chart is not split by {}; use {}", kind.name(), d.name(), allowed.join(", "))
        };
        return Err(Invalid::new("by", message));
    }
    let text = |value: &str| Some(value.trim().to_string()).filter(|v| !v.is_empty());
    let scope = match kind {
        ChartKind::Budget => {
            let team = lenient::int("team", &query.team)?.ok_or_else(|| Invalid::new("team", "is required"))?;
            Scope::Team(team)
        }
        ChartKind::Workload | ChartKind::WorkloadCost => {
            let need = |field: &str, value: &str| text(value).ok_or_else(|| Invalid::new(field, "is required"));
            let workload = need("workload", &query.workload)?;
            if !workload.contains('/') {
                return Err(Invalid::new("workload", "must name its kind, such as Deployment/llm or Job/train"));
            }
            Scope::Workload {
                cluster: need("cluster", &query.cluster)?,
                namespace: need("namespace", &query.namespace)?,
                workload,
            }
        }
        ChartKind::Gpus => match (text(&query.cluster), text(&query.node)) {
            (Some(cluster), node) => Scope::Cluster { cluster, node },
            (None, Some(_)) => return Err(Invalid::new("cluster", "is required with a node")),
            (None, None) => Scope::Visible,
        },
        ChartKind::Spend | ChartKind::CostRate => Scope::Visible,
    };
    let span = if kind == ChartKind::Budget {
        // The month runs on past now: the forecast fills the rest.
        usage::month_of(now)
    } else {
        let range = if query.range.trim().is_empty() { "24h" } else { query.range.trim() };
        usage::parse_window(range, now).map_err(|e| Invalid::new("range", e.message))?
    };
    let known = Span::new(span.start, span.end.min(now));
    let raw = known.len() <= RAW_UP_TO_MS && span.start >= now.saturating_sub(raw_retention_ms);
    if !raw {
        usage::check_retention(span, now, rollup_retention_ms).map_err(|e| Invalid::new("range", e.message))?;
    }
    let finest = if raw { FINEST_STEP_MS } else { MS_PER_HOUR };
    let step = series::bucket_width(span, finest, width)?;
    Ok(ChartRequest { kind, by, scope, span, step, width, raw, now })
}

// ---------------------------------------------------------------------------
// The answer

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Dash {
    #[default]
    Solid,
    Dashed,
    Dotted,
}

/// How one series is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesStyle {
    /// An index into the chart palette: series about the same thing (one
    /// GPU model's capacity and allocation) share a colour.
    pub color: u8,
    pub dash: Dash,
}

/// What the value table shows for each series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Summary {
    /// Amounts per bucket: their total and the largest bucket.
    Total,
    /// A level over time (GPUs, dollars per hour): the latest, the mean and
    /// the peak.
    Latest,
}

/// Something that happened at a time, drawn as a vertical line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Marker {
    pub at: i64,
    pub label: String,
}

/// A chart, ready to draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chart {
    pub chart: ChartKind,
    /// The range answered, Unix milliseconds `[start, end)`.
    pub start: i64,
    pub end: i64,
    /// The bucket width in milliseconds.
    pub step: i64,
    /// When this was computed: data ends here.
    pub now: i64,
    /// `exact` (from the ledger's intervals) or `hourly` (from the rollups).
    pub resolution: String,
    /// Each series' values as they are (not stacked); a null is a gap.
    pub frame: Frame,
    /// One per series.
    pub styles: Vec<SeriesStyle>,
    /// Draw the series as stacked areas, in order, the first at the bottom.
    pub stacked: bool,
    pub summary: Summary,
    pub markers: Vec<Marker>,
    /// What is missing from the numbers ("no prices set for NVIDIA-L4 (spot)").
    pub notes: Vec<String>,
    /// Why there is nothing to draw; None when there is.
    pub empty: Option<String>,
}

impl Chart {
    /// The query string parameter a page keeps its chart range in.
    pub fn is_empty(&self) -> bool {
        self.empty.is_some()
    }
}

/// The figures of one series for its row of the value table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SeriesFigures {
    /// The last value that is not a gap.
    pub latest: Option<f64>,
    pub mean: Option<f64>,
    pub peak: Option<f64>,
    pub total: Option<f64>,
}

pub fn figures(values: &[Option<f64>]) -> SeriesFigures {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return SeriesFigures::default();
    }
    let total: f64 = present.iter().sum();
    SeriesFigures {
        latest: present.last().copied(),
        mean: Some(total / present.len() as f64),
        peak: present.iter().copied().reduce(f64::max),
        total: Some(total),
    }
}

/// A value as the chart's axis, tooltip and table show it.
pub fn format_value(unit: Unit, value: f64) -> String {
    let plain = |v: f64| {
        let digits = if v.abs() >= 100.0 || v == v.trunc() {
            0
        } else if v.abs() >= 10.0 {
            1
        } else {
            2
        };
        group_thousands(&format!("{v:.digits$}"))
    };
    match unit {
        Unit::Dollars => dollars(value),
        Unit::DollarsPerHour => format!("{}/h", dollars(value)),
        Unit::Gpus => format!("{} GPUs", plain(value)),
        Unit::GpuHours => format!("{} GPU-h", plain(value)),
        Unit::Percent => format!("{value:.0}%"),
        Unit::Count => plain(value),
    }
}

fn dollars(value: f64) -> String {
    let digits = if value.abs() >= 1000.0 { 0 } else { 2 };
    let text = group_thousands(&format!("{:.digits$}", value.abs()));
    if value < 0.0 { format!("-${text}") } else { format!("${text}") }
}

fn group_thousands(number: &str) -> String {
    let (sign, rest) = number.strip_prefix('-').map_or(("", number), |r| ("-", r));
    let (whole, fraction) = rest.split_once('.').map_or((rest, None), |(w, f)| (w, Some(f)));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// A series' name for a breakdown row: the values of its dimensions joined,
/// idle as "idle" and a namespace without a team as "(no team)".
pub fn group_label(values: &[&str]) -> String {
    if values.is_empty() {
        return "all".into();
    }
    values
        .iter()
        .map(|v| match *v {
            "" => "(no team)",
            usage::IDLE => "idle",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The label of `key` for `by`, in the dimensions' fixed order.
pub fn key_label(key: &UsageKey, by: &[Dimension]) -> String {
    let idle = key.is_idle();
    let mut parts: Vec<String> = Vec::new();
    for dimension in Dimension::ALL.into_iter().filter(|d| by.contains(d)) {
        let part = match dimension {
            Dimension::Cluster => key.cluster.clone(),
            Dimension::Namespace if idle => usage::IDLE.into(),
            Dimension::Namespace => key.namespace.clone(),
            Dimension::Team if idle => usage::IDLE.into(),
            Dimension::Team => key.team.clone().unwrap_or_default(),
            Dimension::Workload => key.workload.clone(),
            Dimension::Node => key.node.clone(),
            Dimension::Model => key.model.clone(),
            Dimension::CapacityType => key.capacity_type.label().into(),
        };
        parts.push(part);
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    group_label(&parts)
}

/// Keeps the `most` series that `rank` rates highest, in their order, and
/// sums the others into one named `other` (a gap where all of them are).
pub fn keep_largest(series: Vec<Series>, most: usize, rank: impl Fn(&Series) -> f64, other: &str) -> Vec<Series> {
    if series.len() <= most {
        return series;
    }
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by(|a, b| rank(&series[*b]).total_cmp(&rank(&series[*a])).then(a.cmp(b)));
    let kept: std::collections::BTreeSet<usize> = order.iter().take(most.saturating_sub(1)).copied().collect();
    let len = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let mut rest: Vec<Option<f64>> = vec![None; len];
    let mut out = Vec::with_capacity(most);
    for (i, s) in series.into_iter().enumerate() {
        if kept.contains(&i) {
            out.push(s);
            continue;
        }
        for (sum, v) in rest.iter_mut().zip(&s.values) {
            if let Some(v) = v {
                *sum = Some(sum.unwrap_or(0.0) + v);
            }
        }
    }
    out.push(Series { name: other.to_string(), values: rest });
    out
}

/// A team's month as a burn-up: spend so far at each bucket's end (and at
/// `now`), the budget as a level, and the forecast from now to the month's
/// end at `burn_per_hour`, dashed. `spent` holds the dollars of each
/// bucket of `buckets`, which must cover the month.
pub fn budget_frame(
    buckets: &Buckets,
    spent: &[Option<f64>],
    budget: Option<f64>,
    burn_per_hour: f64,
    now: i64,
) -> Frame {
    let month = buckets.span;
    let mut times = vec![month.start];
    let mut so_far = vec![Some(0.0)];
    let mut total = 0.0;
    for i in 0..buckets.len() {
        let bucket = buckets.bucket(i);
        if bucket.start >= now {
            break;
        }
        total += spent.get(i).copied().flatten().unwrap_or(0.0);
        let at = bucket.end.min(now);
        if at > *times.last().unwrap_or(&month.start) {
            times.push(at);
            so_far.push(Some(total));
        }
    }
    let now_at = times.len() - 1;
    for i in 0..buckets.len() {
        let end = buckets.bucket(i).end;
        if end > now && end > *times.last().unwrap_or(&month.start) {
            times.push(end);
            so_far.push(None);
        }
    }
    let forecast = times
        .iter()
        .enumerate()
        .map(|(i, at)| (i >= now_at).then(|| total + burn_per_hour * (at - now).max(0) as f64 / MS_PER_HOUR as f64))
        .collect();
    let mut series = vec![Series { name: "spent".into(), values: so_far }];
    series.push(Series { name: "forecast".into(), values: forecast });
    if let Some(budget) = budget {
        series.push(Series { name: "budget".into(), values: vec![Some(budget); times.len()] });
    }
    Frame { times, series, unit: Unit::Dollars }
}

/// The range that means a workload's whole life, `range=life`.
pub const LIFE: &str = "life";

/// A workload's life as a range: from a little before `first` (when its
/// first GPU was held) to a little after `last` (when its last was given
/// back), or on to now while it holds any (`last` None). The margin is a
/// twentieth of a finished life, at least a minute. Nothing recorded: the
/// last day.
pub fn life_range(first: Option<i64>, last: Option<i64>) -> String {
    let Some(first) = first else { return "24h".into() };
    let margin = last.map_or(MS_PER_MINUTE, |l| (l.saturating_sub(first) / 20).max(MS_PER_MINUTE));
    // Unix ms in 2286: parsed as a range that ends now.
    let end = last.map_or(9_999_999_999_999, |l| l.saturating_add(margin));
    format!("{},{end}", first.saturating_sub(margin))
}

/// The range a "zoom out" goes to: a length that ends now (`24h`) doubles
/// (`48h`); any other range becomes one twice as long around the same
/// middle, ending no later than `now`, as `start,end` in Unix ms.
pub fn zoom_out(range: &str, start: i64, end: i64, now: i64) -> String {
    let range = range.trim();
    if let Some(unit @ ('m' | 'h' | 'd')) = range.chars().last() {
        let digits = &range[..range.len() - 1];
        if !digits.is_empty() && digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let length: i64 = digits.parse().unwrap_or(1);
            return format!("{}{unit}", length.saturating_mul(2));
        }
    }
    let length = (end - start).max(MS_PER_MINUTE);
    let middle = start + (end - start) / 2;
    let mut new_end = middle.saturating_add(length);
    let mut new_start = middle.saturating_sub(length);
    if new_end > now {
        new_start -= new_end - now;
        new_end = now;
    }
    format!("{new_start},{new_end}")
}

// ---------------------------------------------------------------------------
// Buckets and what accrues in them

/// The buckets of a chart: multiples of `step` from the epoch (so days are
/// UTC days), cut to the chart's span at either end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    pub span: Span,
    pub step: i64,
    first: i64,
    count: usize,
}

impl Buckets {
    pub fn new(span: Span, step: i64) -> Buckets {
        let step = step.max(1);
        let count = usize::try_from(usage::point_count(span, step)).unwrap_or(usize::MAX);
        Buckets { span, step, first: usage::bucket_start(span.start, step), count }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The part of the span in bucket `i`.
    pub fn bucket(&self, i: usize) -> Span {
        let start = self.first.saturating_add(self.step.saturating_mul(i as i64));
        Span::new(start.max(self.span.start), start.saturating_add(self.step).min(self.span.end))
    }

    /// Each bucket's start, the first clamped to the span's start.
    pub fn times(&self) -> Vec<i64> {
        (0..self.count).map(|i| self.bucket(i).start).collect()
    }

    /// The bucket holding `at`, if it lies in the span.
    pub fn index(&self, at: i64) -> Option<usize> {
        if !self.span.contains(at) {
            return None;
        }
        usize::try_from((usage::bucket_start(at, self.step) - self.first) / self.step).ok()
    }
}

/// Usage in one bucket, and the pod-milliseconds that earned it (pods
/// holding GPUs × time, for a replica count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accrual {
    pub usage: Usage,
    pub pod_ms: i64,
}

impl Accrual {
    pub fn add(&mut self, other: &Accrual) {
        self.usage.add(&other.usage);
        self.pod_ms = self.pod_ms.saturating_add(other.pod_ms);
    }
}

/// Every amount of [`Usage`] accruing per millisecond over a stretch where
/// nothing changes. Usage is linear in time, so a stretch's usage is its
/// rate times its length, exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Rate {
    allocated: i64,
    capacity: i64,
    idle: i64,
    unpriced: i64,
    util_known: i64,
    wasted: i64,
    pods: i64,
    cost: i128,
    idle_cost: i128,
    on_demand_cost: i128,
    util_weighted: i128,
    wasted_cost: i128,
}

impl Rate {
    fn over(&self, ms: i64) -> Accrual {
        let t = |rate: i64| rate.saturating_mul(ms);
        let c = |rate: i128| rate.saturating_mul(i128::from(ms));
        Accrual {
            usage: Usage {
                allocated: t(self.allocated),
                capacity: t(self.capacity),
                idle: t(self.idle),
                cost: c(self.cost),
                idle_cost: c(self.idle_cost),
                unpriced: t(self.unpriced),
                on_demand_cost: c(self.on_demand_cost),
                util_weighted: c(self.util_weighted),
                util_known: t(self.util_known),
                wasted: t(self.wasted),
                wasted_cost: c(self.wasted_cost),
            },
            pod_ms: t(self.pods),
        }
    }

    fn combine(&mut self, other: &Rate, sign: i64) {
        let s128 = i128::from(sign);
        self.allocated += sign * other.allocated;
        self.capacity += sign * other.capacity;
        self.idle += sign * other.idle;
        self.unpriced += sign * other.unpriced;
        self.util_known += sign * other.util_known;
        self.wasted += sign * other.wasted;
        self.pods += sign * other.pods;
        self.cost += s128 * other.cost;
        self.idle_cost += s128 * other.idle_cost;
        self.on_demand_cost += s128 * other.on_demand_cost;
        self.util_weighted += s128 * other.util_weighted;
        self.wasted_cost += s128 * other.wasted_cost;
    }
}

/// One key's buckets, kept sparse: what covers whole buckets as a running
/// difference of rates, what covers part of one as its amount.
#[derive(Clone, Debug, Default)]
struct Integrator {
    changes: BTreeMap<usize, Rate>,
    parts: BTreeMap<usize, Accrual>,
}

/// Usage per bucket for each (key, cluster), filled from raw intervals by
/// [`accrue`] or from rollup rows by [`Accruals::add_bucket`].
#[derive(Clone, Debug)]
pub struct Accruals<K> {
    buckets: Buckets,
    by_key: BTreeMap<(K, String), Integrator>,
}

impl<K: Ord + Clone> Accruals<K> {
    pub fn new(buckets: Buckets) -> Accruals<K> {
        Accruals { buckets, by_key: BTreeMap::new() }
    }

    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// The keys with anything accrued, each once, in order.
    pub fn keys(&self) -> Vec<K> {
        let mut keys: Vec<K> = self.by_key.keys().map(|(k, _)| k.clone()).collect();
        keys.dedup();
        keys
    }

    /// Adds a whole bucket's usage (a rollup row).
    pub fn add_bucket(&mut self, key: K, cluster: &str, bucket: usize, accrual: &Accrual) {
        if bucket >= self.buckets.len() {
            return;
        }
        let parts = &mut self.by_key.entry((key, cluster.to_string())).or_default().parts;
        parts.entry(bucket).or_default().add(accrual);
    }

    /// Adds `rate` over `stretch` (cut to the span): whole buckets as a
    /// change of rate at their ends, the partly covered ones at once.
    fn add_rate(&mut self, key: &K, cluster: &str, stretch: Span, rate: &Rate) {
        let Some(stretch) = stretch.intersect(self.buckets.span) else { return };
        let (Some(first), Some(last)) = (self.buckets.index(stretch.start), self.buckets.index(stretch.end - 1)) else {
            return;
        };
        let edges = if first == last { vec![first] } else { vec![first, last] };
        let parts: Vec<(usize, Accrual)> = edges
            .into_iter()
            .filter_map(|i| self.buckets.bucket(i).intersect(stretch).map(|covered| (i, rate.over(covered.len()))))
            .collect();
        let integrator = self.by_key.entry((key.clone(), cluster.to_string())).or_default();
        for (i, amount) in parts {
            integrator.parts.entry(i).or_default().add(&amount);
        }
        if last > first + 1 {
            integrator.changes.entry(first + 1).or_default().combine(rate, 1);
            integrator.changes.entry(last).or_default().combine(rate, -1);
        }
    }

    /// Every bucket of (`key`, `cluster`); None when nothing accrued there.
    pub fn dense(&self, key: &K, cluster: &str) -> Option<Vec<Accrual>> {
        let integrator = self.by_key.get(&(key.clone(), cluster.to_string()))?;
        let mut out = vec![Accrual::default(); self.buckets.len()];
        let mut rate = Rate::default();
        let mut changes = integrator.changes.iter().peekable();
        for (i, slot) in out.iter_mut().enumerate() {
            while let Some((_, change)) = changes.next_if(|(at, _)| **at <= i) {
                rate.combine(change, 1);
            }
            if rate != Rate::default() {
                *slot = rate.over(self.buckets.bucket(i).len());
            }
            if let Some(part) = integrator.parts.get(&i) {
                slot.add(part);
            }
        }
        Some(out)
    }

    /// The clusters `key` accrued in.
    pub fn clusters_of(&self, key: &K) -> Vec<String> {
        self.by_key.keys().filter(|(k, _)| k == key).map(|(_, c)| c.clone()).collect()
    }
}

/// Usage in every bucket, from the ledger's raw intervals, exactly as
/// [`usage::usage_over`] computes it for each bucket alone, but in one pass:
/// each interval is split where its price, its utilisation or its
/// cluster's gaps change, and each piece is added as a rate. `group` maps a
/// row's key to its series (None leaves it out).
#[allow(clippy::too_many_arguments)]
pub fn accrue<K: Ord + Clone>(
    buckets: Buckets,
    allocations: &[AllocationInterval],
    capacity: &[CapacityInterval],
    gaps: &[Gap],
    prices: &PriceBook,
    utilisation: &Utilisation,
    now: i64,
    group: impl Fn(&UsageKey) -> Option<K>,
) -> Accruals<K> {
    let mut out = Accruals::new(buckets);
    let span = Span::new(buckets.span.start, buckets.span.end.min(now));
    if span.is_empty() {
        return out;
    }
    let clusters = allocations.iter().map(|a| a.cluster.as_str()).chain(capacity.iter().map(|c| c.cluster.as_str()));
    let billable = usage::billable_spans(span, gaps, clusters);
    for interval in allocations.iter().filter(|a| a.milli_gpus > 0) {
        let Some(key) = group(&UsageKey::of_allocation(interval)) else { continue };
        let held = usage::held_span(interval.start, interval.end, now);
        let open = billable.get(interval.cluster.as_str()).map(Vec::as_slice).unwrap_or_default();
        for piece in open.iter().filter_map(|window| held.intersect(*window)) {
            allocation_rates(&mut out, &key, interval, piece, prices, utilisation);
        }
    }
    for (node, (offered, held)) in usage::nodes(allocations, capacity) {
        let Some(key) = group(&UsageKey::idle(&node)) else { continue };
        let open = billable.get(node.cluster).map(Vec::as_slice).unwrap_or_default();
        for window in open {
            idle_rates(&mut out, &key, &node, &offered, &held, *window, prices, now);
        }
    }
    out
}

fn allocation_rates<K: Ord + Clone>(
    out: &mut Accruals<K>,
    key: &K,
    interval: &AllocationInterval,
    piece: Span,
    prices: &PriceBook,
    utilisation: &Utilisation,
) {
    let (cluster, model, capacity) = (interval.cluster.as_str(), interval.model.as_str(), interval.capacity_type);
    let milli = interval.milli_gpus;
    out.add_rate(key, cluster, piece, &Rate { pods: 1, ..Rate::default() });
    let samples = utilisation.of(interval);
    for (segment, price) in prices.segments(cluster, model, capacity, piece) {
        let held = Rate { allocated: milli, ..Rate::default() };
        out.add_rate(key, cluster, segment, &held);
        charge_rates(out, key, prices, cluster, model, capacity, milli, segment, price, false);
        for (part, basis_points) in usage::covered(samples, segment) {
            let mut rate = Rate {
                util_known: milli,
                util_weighted: i128::from(basis_points) * i128::from(milli),
                ..Rate::default()
            };
            if utilisation.is_waste(basis_points) {
                rate.wasted = milli;
                rate.wasted_cost = price.map(|p| usage::cost_units(milli, 1, p)).unwrap_or_default();
            }
            out.add_rate(key, cluster, part, &rate);
        }
    }
}

/// The cost rates of `milli` GPUs over a segment with one price: its cost,
/// or its time as unpriced; and what it would have cost on demand (a spot
/// segment is split where the on-demand price changes).
#[allow(clippy::too_many_arguments)]
fn charge_rates<K: Ord + Clone>(
    out: &mut Accruals<K>,
    key: &K,
    prices: &PriceBook,
    cluster: &str,
    model: &str,
    capacity: CapacityType,
    milli: i64,
    segment: Span,
    price: Option<crate::cost::Usd>,
    idle: bool,
) {
    let Some(price) = price else {
        out.add_rate(key, cluster, segment, &Rate { unpriced: milli, ..Rate::default() });
        return;
    };
    let cost = usage::cost_units(milli, 1, price);
    let rate = Rate { cost, idle_cost: if idle { cost } else { 0 }, ..Rate::default() };
    out.add_rate(key, cluster, segment, &rate);
    if capacity == CapacityType::Spot {
        for (part, on_demand) in prices.segments(cluster, model, CapacityType::OnDemand, segment) {
            let on_demand = usage::cost_units(milli, 1, on_demand.unwrap_or(price));
            out.add_rate(key, cluster, part, &Rate { on_demand_cost: on_demand, ..Rate::default() });
        }
    } else {
        out.add_rate(key, cluster, segment, &Rate { on_demand_cost: cost, ..Rate::default() });
    }
}

/// A node's capacity and idle GPUs over `window`, swept as
/// [`usage::usage_over`] does: idle is what is offered less what pods of the
/// same model and capacity type hold, never below zero.
#[allow(clippy::too_many_arguments)]
fn idle_rates<K: Ord + Clone>(
    out: &mut Accruals<K>,
    key: &K,
    node: &usage::NodeKey,
    offered: &[&CapacityInterval],
    held: &[&AllocationInterval],
    window: Span,
    prices: &PriceBook,
    now: i64,
) {
    usage::sweep_node(offered, held, window, now, |stretch, offering, idle| {
        out.add_rate(key, node.cluster, stretch, &Rate { capacity: offering, ..Rate::default() });
        if idle <= 0 {
            return;
        }
        for (segment, price) in prices.segments(node.cluster, node.model, node.capacity_type, stretch) {
            out.add_rate(key, node.cluster, segment, &Rate { idle, ..Rate::default() });
            charge_rates(out, key, prices, node.cluster, node.model, node.capacity_type, idle, segment, price, true);
        }
    });
}

/// How much of each bucket each cluster was watched: from `since` (when
/// its history begins; the span's start if absent) to `until` (how far its
/// data reaches, such as the last rollup pass; `now` if absent, and never
/// past it), less its gaps.
pub fn known_time(
    buckets: &Buckets,
    clusters: &[String],
    gaps: &[Gap],
    since: &BTreeMap<String, i64>,
    until: &BTreeMap<String, i64>,
    now: i64,
) -> BTreeMap<String, Vec<i64>> {
    let mut out = BTreeMap::new();
    for cluster in clusters {
        let start = since.get(cluster).copied().unwrap_or(buckets.span.start).max(buckets.span.start);
        let end = until.get(cluster).copied().unwrap_or(now).min(now);
        let watched = Span::new(start, buckets.span.end.min(end).max(start));
        let billable = usage::billable_spans(watched, gaps, std::iter::once(cluster.as_str()));
        let open = billable.get(cluster.as_str()).cloned().unwrap_or_default();
        let known: Vec<i64> = (0..buckets.len())
            .map(|i| {
                let bucket = buckets.bucket(i);
                open.iter().filter_map(|o| o.intersect(bucket)).map(Span::len).sum()
            })
            .collect();
        out.insert(cluster.clone(), known);
    }
    out
}

/// What a series shows of the usage in its buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Dollars per bucket.
    Cost,
    /// Dollars per hour, over the watched part of each bucket.
    CostRate,
    /// GPUs held by pods, on average over the watched part.
    Allocated,
    /// GPUs on offer, on average.
    Capacity,
    /// GPUs busy (allocation × measured utilisation), on average where measured.
    Utilised,
    /// Pods holding GPUs, on average.
    Pods,
    /// GPU-hours per bucket.
    GpuHours,
}

const COST_UNITS_PER_USD: f64 = 3.6e15;

/// One series' values: `metric` of `key`, summed over clusters, each
/// cluster's levels averaged over the time it was watched. A bucket no
/// cluster of `known` was watched in is a gap.
pub fn values<K: Ord + Clone>(
    accruals: &Accruals<K>,
    key: &K,
    metric: Metric,
    known: &BTreeMap<String, Vec<i64>>,
) -> Vec<Option<f64>> {
    let count = accruals.buckets.len();
    let per_cluster: Vec<(String, Vec<Accrual>)> =
        accruals.clusters_of(key).into_iter().filter_map(|c| accruals.dense(key, &c).map(|d| (c, d))).collect();
    (0..count)
        .map(|i| {
            let watched: i64 = known.values().filter_map(|k| k.get(i)).sum();
            if watched <= 0 && !known.is_empty() {
                return None;
            }
            let mut total = 0.0;
            let mut measured = false;
            for (cluster, dense) in &per_cluster {
                let a = dense[i];
                let ms = known
                    .get(cluster)
                    .and_then(|k| k.get(i))
                    .copied()
                    .unwrap_or_else(|| if known.is_empty() { accruals.buckets.bucket(i).len() } else { 0 });
                let level = |amount: f64| if ms > 0 { amount / ms as f64 } else { 0.0 };
                total += match metric {
                    Metric::Cost => a.usage.cost as f64 / COST_UNITS_PER_USD,
                    Metric::GpuHours => usage::gpu_hours(a.usage.allocated),
                    Metric::CostRate => {
                        level(a.usage.cost.saturating_mul(i128::from(MS_PER_HOUR)) as f64 / COST_UNITS_PER_USD)
                    }
                    Metric::Allocated => level(a.usage.allocated as f64) / MILLI_GPUS_PER_GPU as f64,
                    Metric::Capacity => level(a.usage.capacity as f64) / MILLI_GPUS_PER_GPU as f64,
                    Metric::Pods => level(a.pod_ms as f64),
                    Metric::Utilised => {
                        measured |= a.usage.util_known > 0;
                        level(a.usage.util_weighted as f64 / 10_000.0) / MILLI_GPUS_PER_GPU as f64
                    }
                };
            }
            if metric == Metric::Utilised && !measured {
                return None;
            }
            Some(total)
        })
        .collect()
}

/// The cost units of a rollup sum, for tests and callers that hold dollars.
pub fn dollars_of(units: CostUnits) -> f64 {
    units as f64 / COST_UNITS_PER_USD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Usd;
    use crate::usage::{PricePoint, usage_over};
    use CapacityType::{OnDemand, Spot};
    use proptest::prelude::*;

    const H: i64 = MS_PER_HOUR;
    const M: i64 = MS_PER_MINUTE;
    const T0: i64 = 1_795_996_800_000; // 2026-11-30T00:00:00Z

    fn query(pairs: &[(&str, &str)]) -> SeriesQuery {
        let mut q = SeriesQuery::default();
        for (k, v) in pairs {
            let v = v.to_string();
            match *k {
                "chart" => q.chart = v,
                "by" => q.by = v,
                "range" => q.range = v,
                "width" => q.width = v,
                "cluster" => q.cluster = v,
                "namespace" => q.namespace = v,
                "workload" => q.workload = v,
                "node" => q.node = v,
                "team" => q.team = v,
                _ => panic!("{k}"),
            }
        }
        q
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<ChartRequest, Invalid> {
        parse_request(&query(pairs), T0, 35 * MS_PER_DAY, 400 * MS_PER_DAY)
    }

    #[test]
    fn questions_are_read_and_checked() {
        let r = parse(&[("chart", "spend"), ("by", "team"), ("range", "24h"), ("width", "720")]).unwrap();
        assert_eq!((r.kind, r.by.as_slice(), r.step, r.raw), (ChartKind::Spend, &[Dimension::Team][..], M, true));
        assert_eq!(r.span, Span::new(T0 - MS_PER_DAY, T0));
        let r = parse(&[("chart", "spend"), ("range", "24h"), ("width", "100")]).unwrap();
        assert_eq!(r.step, 15 * M, "at most two points per pixel");
        let r = parse(&[("chart", "gpus"), ("by", "model"), ("range", "30d")]).unwrap();
        assert_eq!((r.step, r.raw), (H, false), "30 days come from the hourly rollups");
        let r = parse(&[("chart", "budget"), ("team", "3")]).unwrap();
        assert_eq!((r.scope.clone(), r.span), (Scope::Team(3), usage::month_of(T0)));
        let r = parse(&[("chart", "gpus"), ("cluster", "prod"), ("node", "n1")]).unwrap();
        assert_eq!(r.scope, Scope::Cluster { cluster: "prod".into(), node: Some("n1".into()) });
        let r = parse(&[]).unwrap();
        assert_eq!((r.kind, r.width), (ChartKind::Spend, DEFAULT_WIDTH_PX));
    }

    #[test]
    fn bad_questions_name_the_problem() {
        let field = |pairs: &[(&str, &str)]| parse(pairs).unwrap_err().field;
        assert_eq!(field(&[("range", "2026-11-02T00:00:00Z,2026-11-01T00:00:00Z")]), "range");
        assert!(
            parse(&[("range", "2026-11-02T00:00:00Z,2026-11-01T00:00:00Z")])
                .unwrap_err()
                .message
                .contains("before it starts")
        );
        assert!(parse(&[("range", "500d")]).unwrap_err().message.contains("retained history"));
        assert_eq!(field(&[("width", "0")]), "width");
        assert_eq!(field(&[("width", "10001")]), "width");
        assert_eq!(field(&[("width", "wide")]), "width");
        assert_eq!(field(&[("by", "colour")]), "by");
        assert_eq!(field(&[("chart", "gpus"), ("by", "team")]), "by");
        assert_eq!(field(&[("chart", "pie")]), "chart");
        assert_eq!(field(&[("chart", "budget")]), "team");
        assert_eq!(field(&[("chart", "workload"), ("cluster", "a"), ("namespace", "n")]), "workload");
        assert_eq!(
            field(&[("chart", "workload"), ("cluster", "a"), ("namespace", "n"), ("workload", "llm")]),
            "workload"
        );
        assert_eq!(field(&[("chart", "gpus"), ("node", "n1")]), "cluster");
        assert!(parse(&[("width", "10000")]).is_ok());
    }

    #[test]
    fn a_life_runs_from_just_before_the_first_gpu_to_just_after_the_last() {
        assert_eq!(life_range(None, None), "24h");
        assert_eq!(life_range(Some(T0), None), format!("{},9999999999999", T0 - M));
        assert_eq!(life_range(Some(T0), Some(T0 + 5 * M)), format!("{},{}", T0 - M, T0 + 6 * M));
        assert_eq!(life_range(Some(T0), Some(T0 + 200 * M)), format!("{},{}", T0 - 10 * M, T0 + 210 * M));
    }

    #[test]
    fn zooming_out_doubles_the_range() {
        assert_eq!(zoom_out("24h", 0, 0, T0), "48h");
        assert_eq!(zoom_out("7d", 0, 0, T0), "14d");
        assert_eq!(zoom_out("1000,3000", 1000, 3000, T0), format!("{},{}", 2000 - 60_000, 2000 + 60_000));
        let (start, end) = (T0 - 2 * H, T0 - H);
        assert_eq!(zoom_out("x", start, end, T0), format!("{},{}", T0 - 5 * H / 2, T0 - H / 2), "about the middle");
        assert_eq!(zoom_out("x", T0 - 2 * H, T0, T0), format!("{},{}", T0 - 4 * H, T0), "never past now");
        assert_eq!(zoom_out("month", T0 - 10 * H, T0, T0), format!("{},{}", T0 - 20 * H, T0));
    }

    #[test]
    fn buckets_are_cut_to_the_span() {
        let b = Buckets::new(Span::new(T0 + 10 * M, T0 + 70 * M), H);
        assert_eq!(b.len(), 2);
        assert_eq!(b.bucket(0), Span::new(T0 + 10 * M, T0 + H));
        assert_eq!(b.bucket(1), Span::new(T0 + H, T0 + 70 * M));
        assert_eq!(b.times(), [T0 + 10 * M, T0 + H]);
        assert_eq!((b.index(T0 + 10 * M), b.index(T0 + 65 * M), b.index(T0 + 70 * M)), (Some(0), Some(1), None));
    }

    #[test]
    fn values_read_well() {
        assert_eq!(format_value(Unit::Dollars, 1234.5), "$1,234");
        assert_eq!(format_value(Unit::Dollars, 12.345), "$12.35");
        assert_eq!(format_value(Unit::DollarsPerHour, 4.0), "$4.00/h");
        assert_eq!(format_value(Unit::Gpus, 12.0), "12 GPUs");
        assert_eq!(format_value(Unit::Gpus, 2.5), "2.50 GPUs");
        assert_eq!(format_value(Unit::GpuHours, 1500.0), "1,500 GPU-h");
        assert_eq!(format_value(Unit::Percent, 45.4), "45%");
        assert_eq!(format_value(Unit::Count, 3.0), "3");
        assert_eq!(format_value(Unit::Dollars, -5.0), "-$5.00");
    }

    #[test]
    fn the_largest_series_are_kept_and_the_rest_summed() {
        let s = |name: &str, values: &[Option<f64>]| Series { name: name.into(), values: values.to_vec() };
        let all = vec![
            s("a", &[Some(1.0), None]),
            s("b", &[Some(5.0), Some(5.0)]),
            s("c", &[Some(2.0), Some(1.0)]),
            s("d", &[None, None]),
        ];
        let total = |s: &Series| s.values.iter().flatten().sum::<f64>();
        let kept = keep_largest(all.clone(), 3, total, OTHER);
        let names: Vec<&str> = kept.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "other"]);
        assert_eq!(kept[2].values, [Some(1.0), None], "a gap where every summed series has one");
        assert_eq!(keep_largest(all.clone(), 4, total, OTHER), all);
    }

    #[test]
    fn a_budget_burns_up_to_now_and_is_forecast_after() {
        let month = Span::new(T0, T0 + 4 * MS_PER_DAY);
        let buckets = Buckets::new(month, MS_PER_DAY);
        let now = T0 + MS_PER_DAY + 12 * H;
        let frame = budget_frame(&buckets, &[Some(10.0), Some(6.0), None, None], Some(100.0), 1.0, now);
        assert_eq!(
            frame.times,
            [T0, T0 + MS_PER_DAY, now, T0 + 2 * MS_PER_DAY, T0 + 3 * MS_PER_DAY, T0 + 4 * MS_PER_DAY]
        );
        assert_eq!(frame.series[0].values, [Some(0.0), Some(10.0), Some(16.0), None, None, None]);
        assert_eq!(frame.series[1].values, [None, None, Some(16.0), Some(28.0), Some(52.0), Some(76.0)]);
        assert_eq!(frame.series[2].values, vec![Some(100.0); 6]);
    }

    fn usd(dollars: f64) -> Usd {
        Usd::from_dollars("price", dollars).unwrap()
    }

    fn price(model: &str, capacity_type: CapacityType, dollars: f64, from: i64) -> PricePoint {
        PricePoint {
            cluster: None,
            model: model.into(),
            capacity_type,
            usd_per_gpu_hour: Some(usd(dollars)),
            effective_from: from,
        }
    }

    fn pod(
        i: usize,
        node: &str,
        capacity: CapacityType,
        milli: i64,
        start: i64,
        end: Option<i64>,
    ) -> AllocationInterval {
        AllocationInterval {
            cluster: "prod".into(),
            namespace: if i.is_multiple_of(2) { "ml".into() } else { "nlp".into() },
            team: Some(if i.is_multiple_of(2) { "vision".into() } else { "nlp".into() }),
            workload: format!("Deployment/w{}", i % 3),
            pod: format!("p{i}"),
            node: node.into(),
            model: "H100".into(),
            capacity_type: capacity,
            milli_gpus: milli,
            start,
            end,
        }
    }

    fn node(name: &str, capacity: CapacityType, milli: i64, start: i64, end: Option<i64>) -> CapacityInterval {
        CapacityInterval {
            cluster: "prod".into(),
            node: name.into(),
            model: "H100".into(),
            capacity_type: capacity,
            milli_gpus: milli,
            start,
            end,
        }
    }

    /// Each bucket's accrual equals [`usage_over`] of that bucket alone,
    /// summed by the same grouping.
    #[allow(clippy::too_many_arguments)]
    fn check_against_usage_over(
        span: Span,
        step: i64,
        allocations: &[AllocationInterval],
        capacity: &[CapacityInterval],
        gaps: &[Gap],
        prices: &PriceBook,
        utilisation: &Utilisation,
        now: i64,
    ) {
        let buckets = Buckets::new(span, step);
        let group = |k: &UsageKey| Some(k.team.clone().unwrap_or_else(|| "-".into()));
        let accruals = accrue(buckets, allocations, capacity, gaps, prices, utilisation, now, group);
        for i in 0..buckets.len() {
            let mut expected: BTreeMap<String, Usage> = BTreeMap::new();
            for (key, u) in usage_over(buckets.bucket(i), allocations, capacity, gaps, prices, utilisation, now) {
                expected.entry(group(&key).unwrap()).or_default().add(&u);
            }
            let mut got: BTreeMap<String, Usage> = BTreeMap::new();
            for key in accruals.keys() {
                for cluster in accruals.clusters_of(&key) {
                    let u = accruals.dense(&key, &cluster).unwrap()[i].usage;
                    if !u.is_empty() || u != Usage::default() {
                        got.entry(key.clone()).or_default().add(&u);
                    }
                }
            }
            got.retain(|_, u| !u.is_empty());
            assert_eq!(got, expected, "bucket {i} of {step} ms");
        }
    }

    #[test]
    fn buckets_agree_with_usage_over_each_bucket_alone() {
        let prices = PriceBook::new([
            price("H100", OnDemand, 4.0, T0 - 100 * H),
            price("H100", Spot, 1.5, T0 - 100 * H),
            price("H100", OnDemand, 5.0, T0 + 90 * M),
        ]);
        let allocations = [
            pod(0, "n1", OnDemand, 1000, T0 - H, None),
            pod(1, "n1", OnDemand, 2000, T0 + 17 * M, Some(T0 + 2 * H + 3 * M)),
            pod(2, "n2", Spot, 143, T0 + 5 * M, Some(T0 + 6 * M)),
            pod(3, "n2", Spot, 1000, T0 + 50 * M, None),
        ];
        let capacity =
            [node("n1", OnDemand, 8000, T0 - 10 * H, None), node("n2", Spot, 2000, T0 + 10 * M, Some(T0 + 3 * H))];
        let gaps = [Gap { cluster: "prod".into(), span: Span::new(T0 + 100 * M, T0 + 130 * M) }];
        let mut utilisation = Utilisation::default();
        utilisation.add("prod", "ml", "p0", Span::new(T0, T0 + 40 * M), 5.0);
        utilisation.add("prod", "ml", "p0", Span::new(T0 + 40 * M, T0 + 200 * M), 80.0);
        let span = Span::new(T0 + 3 * M, T0 + 4 * H);
        for step in [M, 5 * M, 15 * M, H, 3 * H, 7 * H] {
            check_against_usage_over(
                span,
                step,
                &allocations,
                &capacity,
                &gaps,
                &prices,
                &utilisation,
                T0 + 3 * H + 7 * M,
            );
        }
    }

    proptest! {
        #[test]
        fn buckets_always_agree_with_usage_over(
            pods in proptest::collection::vec((0usize..2, any::<bool>(), 1i64..3000, 0i64..300, 0i64..300, any::<bool>()), 0..8),
            nodes in proptest::collection::vec((0usize..2, any::<bool>(), 1000i64..9000, 0i64..300, any::<bool>()), 0..3),
            gap in proptest::option::of((0i64..300, 1i64..60)),
            step_minutes in prop::sample::select(vec![1i64, 5, 15, 60, 180]),
            now_minutes in 100i64..320,
        ) {
            let at = |minutes: i64| T0 + minutes * M;
            let names = ["n1", "n2"];
            let capacity_of = |spot: bool| if spot { Spot } else { OnDemand };
            let allocations: Vec<AllocationInterval> = pods.iter().enumerate().map(|(i, (n, spot, milli, start, len, open))| {
                pod(i, names[*n], capacity_of(*spot), *milli, at(*start), (!open).then(|| at(start + len)))
            }).collect();
            let capacity: Vec<CapacityInterval> = nodes.iter().map(|(n, spot, milli, start, open)| {
                node(names[*n], capacity_of(*spot), *milli, at(*start), (!open).then(|| at(start + 240)))
            }).collect();
            let gaps: Vec<Gap> = gap.into_iter().map(|(s, l)| Gap { cluster: "prod".into(), span: Span::new(at(s), at(s + l)) }).collect();
            let prices = PriceBook::new([price("H100", OnDemand, 4.0, at(-10)), price("H100", Spot, 1.5, at(40)), price("H100", OnDemand, 3.0, at(77))]);
            let span = Span::new(at(7), at(290));
            check_against_usage_over(span, step_minutes * M, &allocations, &capacity, &gaps, &prices, &Utilisation::default(), at(now_minutes));
        }
    }

    #[test]
    fn levels_are_averaged_over_the_watched_time_and_gaps_stay_gaps() {
        let prices = PriceBook::new([price("H100", OnDemand, 4.0, T0 - 100 * H)]);
        let allocations = [pod(0, "n1", OnDemand, 2000, T0, None)];
        let capacity = [node("n1", OnDemand, 8000, T0 - H, None)];
        // Watched for the first half of the second hour only; the third not at all.
        let gaps = [Gap { cluster: "prod".into(), span: Span::new(T0 + 90 * M, T0 + 3 * H) }];
        let buckets = Buckets::new(Span::new(T0, T0 + 3 * H), H);
        let accruals =
            accrue(buckets, &allocations, &capacity, &gaps, &prices, &Utilisation::default(), T0 + 3 * H, |k| {
                Some(if k.is_idle() { "idle".to_string() } else { "held".to_string() })
            });
        let known = known_time(&buckets, &["prod".into()], &gaps, &BTreeMap::new(), &BTreeMap::new(), T0 + 3 * H);
        assert_eq!(known["prod"], [H, 30 * M, 0]);
        let held = "held".to_string();
        assert_eq!(values(&accruals, &held, Metric::Allocated, &known), [Some(2.0), Some(2.0), None]);
        assert_eq!(values(&accruals, &held, Metric::Cost, &known), [Some(8.0), Some(4.0), None]);
        assert_eq!(values(&accruals, &held, Metric::CostRate, &known), [Some(8.0), Some(8.0), None]);
        assert_eq!(values(&accruals, &held, Metric::Pods, &known), [Some(1.0), Some(1.0), None]);
        assert_eq!(values(&accruals, &"idle".to_string(), Metric::Capacity, &known), [Some(8.0), Some(8.0), None]);
        assert_eq!(values(&accruals, &held, Metric::Utilised, &known), [None, None, None], "not measured");
        assert_eq!(values(&accruals, &"nobody".to_string(), Metric::Allocated, &known), [Some(0.0), Some(0.0), None]);
    }

    #[test]
    fn levels_count_only_the_time_recorded_before_history_begins_and_past_the_last_rollup() {
        // The ledger first watched the cluster 40 minutes into the first hour, a node of 8 GPUs on
        // since; the current hour (the third) was last rolled up 15 minutes into it, 25 minutes ago.
        let capacity = [node("n1", OnDemand, 8000, T0 + 40 * M, None)];
        let (now, rolled) = (T0 + 2 * H + 40 * M, T0 + 2 * H + 15 * M);
        let buckets = Buckets::new(Span::new(T0 - H, T0 + 3 * H), H);
        let accruals =
            accrue(buckets, &[], &capacity, &[], &PriceBook::default(), &Utilisation::default(), rolled, |_| {
                Some("GPUs".to_string())
            });
        let since = BTreeMap::from([("prod".to_string(), T0 + 40 * M)]);
        let until = BTreeMap::from([("prod".to_string(), rolled)]);
        let known = known_time(&buckets, &["prod".into()], &[], &since, &until, now);
        assert_eq!(known["prod"], [0, 20 * M, H, 15 * M]);
        let capacity = values(&accruals, &"GPUs".to_string(), Metric::Capacity, &known);
        assert_eq!(capacity, [None, Some(8.0), Some(8.0), Some(8.0)], "a gap before, 8 GPUs throughout");
        // Counting to now instead of to the last pass would read the current hour as 3 GPUs.
        let to_now = known_time(&buckets, &["prod".into()], &[], &since, &BTreeMap::new(), now);
        assert_eq!(values(&accruals, &"GPUs".to_string(), Metric::Capacity, &to_now)[3], Some(3.0));
    }
}
