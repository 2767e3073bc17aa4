//! GPU usage history and what it cost, computed from an exact ledger of
//! allocation.
//!
//! Every GPU a pod holds is an interval `[start, end)` in unix milliseconds,
//! and so is every node's GPU capacity. Usage over any span is computed from
//! those intervals in integers only, so hourly rollups summed over a window
//! agree to the unit with the same window computed at once, and the rows of
//! any breakdown add up exactly to its totals. Dollars are rounded once, when
//! shown ([`to_usd`]).
//!
//! Units, which the store and the API must keep:
//! - a GPU amount is in milli-GPUs (1000 = one GPU); a MIG slice counts as
//!   its share of seven ([`mig_milli_gpus`]);
//! - GPU time is in milli-GPU-milliseconds ([`MilliGpuMs`]): 3.6 × 10⁹ of
//!   them are one GPU-hour;
//! - cost is in [`CostUnits`], milli-GPU-milliseconds × micro-dollars per
//!   GPU-hour: 3.6 × 10⁹ units are one micro-dollar.
//!
//! A price takes effect at a time and holds until the next one, so changing a
//! price never rewrites the past. Time inside a gap (a cluster that was
//! stale) is billed nowhere, and nothing after `now` is counted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use crate::cost::Usd;
use crate::gpu::{CapacityType, MIG_PREFIX};
use crate::validate::Invalid;

pub const MILLI_GPUS_PER_GPU: i64 = 1_000;
pub const MS_PER_MINUTE: i64 = 60_000;
pub const MS_PER_HOUR: i64 = 3_600_000;
pub const MS_PER_DAY: i64 = 86_400_000;
/// How long raw intervals are kept; older history exists only as hourly rollups.
pub const RAW_RETENTION_MS: i64 = 35 * MS_PER_DAY;
/// How long hourly rollups are kept.
pub const ROLLUP_RETENTION_MS: i64 = 400 * MS_PER_DAY;
/// The most points one query may return, so no request can make the server
/// build millions of buckets.
pub const MAX_POINTS: usize = 10_000;
/// The workload of a node's idle capacity in hourly rows, and its namespace,
/// team and workload label once aggregated. Real workloads are `Kind/name`,
/// so this can never collide with one.
pub const IDLE: &str = "__idle__";
/// GPU time below this utilisation counts as wasted.
pub const DEFAULT_WASTE_THRESHOLD_PERCENT: f64 = 10.0;

/// GPU time: milli-GPUs × milliseconds.
pub type MilliGpuMs = i64;
/// Exact cost: milli-GPU-milliseconds × micro-dollars per GPU-hour.
pub type CostUnits = i128;

const UNITS_PER_MICRO_USD: i128 = MILLI_GPUS_PER_GPU as i128 * MS_PER_HOUR as i128;
const MILLI_GPU_MS_PER_GPU_HOUR: f64 = (MILLI_GPUS_PER_GPU * MS_PER_HOUR) as f64;
/// Utilisation is kept in hundredths of a percent so that weighted sums stay
/// exact integers.
const BASIS_POINTS_PER_PERCENT: f64 = 100.0;

// ---------------------------------------------------------------------------
// Quantities

/// The milli-GPUs a MIG slice stands for: an `Ng.*` profile is N sevenths of
/// a GPU (A100 and H100 have seven compute slices), rounded to the nearest
/// milli-GPU: 1g = 143, 2g = 286, 3g = 429, 4g = 571, 5g = 714, 6g = 857,
/// 7g = 1000. No seventh falls on a half, so there are no ties; seven 1g
/// slices cost 0.1% more than a whole GPU, the price of whole amounts.
///
/// Takes the profile (`1g.10gb`, `1g.10gb+me`) or the resource name
/// (`nvidia.com/mig-3g.40gb`). The A30's four-slice profiles are not told
/// apart from the seven-slice ones.
pub fn mig_milli_gpus(profile: &str) -> Option<i64> {
    let profile = profile.trim();
    let profile = profile.strip_prefix(MIG_PREFIX).unwrap_or(profile);
    let (slices, memory) = profile.split_once("g.")?;
    if memory.is_empty() || slices.len() != 1 || !slices.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let slices: i64 = slices.parse().ok()?;
    (1..=7).contains(&slices).then(|| (slices * 2 * MILLI_GPUS_PER_GPU + 7) / 14)
}

/// GPU time of `milli_gpus` held for `ms`.
pub fn gpu_time(milli_gpus: i64, ms: i64) -> MilliGpuMs {
    milli_gpus.saturating_mul(ms)
}

/// GPU time in GPU-hours, for display only.
pub fn gpu_hours(time: MilliGpuMs) -> f64 {
    time as f64 / MILLI_GPU_MS_PER_GPU_HOUR
}

/// The exact cost of `milli_gpus` held for `ms` at `price` per GPU-hour.
pub fn cost_units(milli_gpus: i64, ms: i64, price: Usd) -> CostUnits {
    i128::from(milli_gpus).saturating_mul(i128::from(ms)).saturating_mul(i128::from(price.micros()))
}

/// The one place exact cost becomes dollars: rounded half away from zero to
/// the micro-dollar.
pub fn to_usd(units: CostUnits) -> Usd {
    Usd::from_micros(saturate_i64(div_round(units, UNITS_PER_MICRO_USD)))
}

/// `numerator / denominator` rounded half away from zero (`denominator > 0`).
fn div_round(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.unsigned_abs() * 2 >= denominator.unsigned_abs() { quotient + numerator.signum() } else { quotient }
}

fn saturate_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

// ---------------------------------------------------------------------------
// Spans

/// A half-open span of time `[start, end)` in unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub const fn new(start: i64, end: i64) -> Span {
        Span { start, end }
    }

    /// Milliseconds in the span; 0 for an empty or reversed one.
    pub fn len(self) -> i64 {
        self.end.saturating_sub(self.start).max(0)
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    pub fn contains(self, at: i64) -> bool {
        self.start <= at && at < self.end
    }

    pub fn overlaps(self, other: Span) -> bool {
        self.intersect(other).is_some()
    }

    /// The time both spans share, or None when they share none.
    pub fn intersect(self, other: Span) -> Option<Span> {
        let shared = Span::new(self.start.max(other.start), self.end.min(other.end));
        (!shared.is_empty()).then_some(shared)
    }
}

/// The start of the bucket of `step` that holds `at`, buckets being aligned
/// to multiples of the step from the unix epoch (so `1d` buckets are UTC days).
pub fn bucket_start(at: i64, step: i64) -> i64 {
    if step <= 0 { at } else { at.saturating_sub(at.rem_euclid(step)) }
}

/// The parts of `span` in each bucket of `step`, in time order.
pub fn buckets(span: Span, step: i64) -> impl Iterator<Item = Span> {
    let first = (step > 0 && !span.is_empty()).then(|| bucket_start(span.start, step));
    let first = first.map(|start| Span::new(start, start.saturating_add(step)));
    std::iter::successors(first, move |previous| {
        (previous.end < span.end && !previous.is_empty())
            .then(|| Span::new(previous.end, previous.end.saturating_add(step)))
    })
    .filter_map(move |bucket| bucket.intersect(span))
}

/// The parts of `span` in each UTC hour.
pub fn hours_in(span: Span) -> impl Iterator<Item = Span> {
    buckets(span, MS_PER_HOUR)
}

/// How many buckets of `step` a span touches.
pub fn point_count(span: Span, step: i64) -> u64 {
    if step <= 0 || span.is_empty() {
        return 0;
    }
    let first = i128::from(bucket_start(span.start, step));
    let last = i128::from(bucket_start(span.end - 1, step));
    u64::try_from((last - first) / i128::from(step) + 1).unwrap_or(u64::MAX)
}

/// A window split where hourly rollups can answer it: whole hours in the
/// middle, and partial hours at either edge, which only raw intervals can
/// prorate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowParts {
    pub head: Option<Span>,
    pub whole_hours: Option<Span>,
    pub tail: Option<Span>,
}

pub fn window_parts(window: Span) -> WindowParts {
    if window.is_empty() {
        return WindowParts { head: None, whole_hours: None, tail: None };
    }
    let first_whole = bucket_start(window.start.saturating_add(MS_PER_HOUR - 1), MS_PER_HOUR);
    let last_whole = bucket_start(window.end, MS_PER_HOUR);
    if first_whole >= last_whole {
        return WindowParts { head: Some(window), whole_hours: None, tail: None };
    }
    let part = |start, end| Some(Span::new(start, end)).filter(|s| !s.is_empty());
    WindowParts {
        head: part(window.start, first_whole),
        whole_hours: part(first_whole, last_whole),
        tail: part(last_whole, window.end),
    }
}

// ---------------------------------------------------------------------------
// Windows and steps

const WINDOW_FORMS: &str = "must be a length such as 30m, 6h or 7d, or today, yesterday, month, lastmonth, \
     or start,end as RFC 3339 times (2026-11-01T00:00:00Z) or unix milliseconds";

/// Reads the window a user asks for. A window ending in the future ends now;
/// an empty one is refused, since it would answer nothing.
pub fn parse_window(text: &str, now_ms: i64) -> Result<Span, Invalid> {
    let text = text.trim();
    let span = match text.to_ascii_lowercase().as_str() {
        "today" => Span::new(bucket_start(now_ms, MS_PER_DAY), now_ms),
        "yesterday" => {
            let today = bucket_start(now_ms, MS_PER_DAY);
            Span::new(today - MS_PER_DAY, today)
        }
        "month" => Span::new(month_of(now_ms).start, now_ms),
        "lastmonth" => {
            let this_month = month_of(now_ms);
            Span::new(month_of(this_month.start - 1).start, this_month.start)
        }
        lower => match text.split_once(',') {
            Some((start, end)) => explicit_window(start, end)?,
            None => {
                let length = parse_length(lower).ok_or_else(|| Invalid::new("window", WINDOW_FORMS))?;
                Span::new(now_ms.saturating_sub(length), now_ms)
            }
        },
    };
    let span = Span::new(span.start, span.end.min(now_ms));
    if span.start > now_ms {
        return Err(Invalid::new("window", "the window starts in the future"));
    }
    if span.is_empty() {
        return Err(Invalid::new("window", "the window is empty"));
    }
    Ok(span)
}

fn explicit_window(start: &str, end: &str) -> Result<Span, Invalid> {
    let (start, end) = (parse_instant(start)?, parse_instant(end)?);
    if end < start {
        return Err(Invalid::new("window", "the window ends before it starts"));
    }
    Ok(Span::new(start, end))
}

/// An RFC 3339 time or unix milliseconds.
fn parse_instant(text: &str) -> Result<i64, Invalid> {
    let text = text.trim();
    let shown: String = text.chars().take(40).collect();
    let bad = || {
        Invalid::new("window", format!("{shown:?} is not an RFC 3339 time (2026-11-01T00:00:00Z) or unix milliseconds"))
    };
    if !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?;
    i64::try_from(time.unix_timestamp_nanos().div_euclid(1_000_000)).map_err(|_| bad())
}

/// `<n>m`, `<n>h` or `<n>d` in milliseconds, or None for any other text.
fn parse_length(text: &str) -> Option<i64> {
    let unit = match text.as_bytes().last()? {
        b'm' => MS_PER_MINUTE,
        b'h' => MS_PER_HOUR,
        b'd' => MS_PER_DAY,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(unit)
}

/// Refuses a window that reaches back past what is kept, instead of quietly
/// answering with less.
pub fn check_retention(span: Span, now: i64, retention_ms: i64) -> Result<(), Invalid> {
    if span.start < now.saturating_sub(retention_ms) {
        let days = retention_ms / MS_PER_DAY;
        return Err(Invalid::new("window", format!("the window starts before the retained history ({days} days)")));
    }
    Ok(())
}

/// Reads a step such as `5m`, `1h` or `7d`, in milliseconds.
pub fn parse_step(text: &str) -> Result<i64, Invalid> {
    match parse_length(&text.trim().to_ascii_lowercase()) {
        Some(step) if step > 0 => Ok(step),
        Some(_) => Err(Invalid::new("step", "must be longer than zero")),
        None => Err(Invalid::new("step", "must be a length such as 5m, 15m, 1h, 6h, 1d or 7d")),
    }
}

/// The number of points `step` gives over `span`. History older than a day
/// may exist only as hourly rollups, so a longer window needs whole hours.
pub fn check_points(span: Span, step: i64) -> Result<usize, Invalid> {
    if step <= 0 {
        return Err(Invalid::new("step", "must be longer than zero"));
    }
    if span.len() > MS_PER_DAY && step % MS_PER_HOUR != 0 {
        return Err(Invalid::new("step", "must be a whole number of hours for a window longer than a day"));
    }
    let points = point_count(span, step);
    match usize::try_from(points) {
        Ok(points) if points <= MAX_POINTS => Ok(points),
        _ => Err(Invalid::new("step", format!("the step would return {} points; at most 10,000", grouped(points)))),
    }
}

fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// Calendar

/// The UTC calendar month holding `now`.
pub fn month_of(now: i64) -> Span {
    let date = utc_date(now);
    let first = date.replace_day(1).unwrap_or(date);
    let start = midnight_ms(first);
    let end = first_of_next_month(first).map(midnight_ms).unwrap_or_else(|| midnight_ms(Date::MAX) + MS_PER_DAY);
    Span::new(start, end)
}

/// The UTC date at `ms`, held to the years the calendar knows (±9999).
fn utc_date(ms: i64) -> Date {
    match OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(time) => time.date(),
        Err(_) if ms < 0 => Date::MIN,
        Err(_) => Date::MAX,
    }
}

fn midnight_ms(date: Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() * 1000
}

fn first_of_next_month(first: Date) -> Option<Date> {
    let (year, month) = match first.month() {
        Month::December => (first.year().checked_add(1)?, Month::January),
        month => (first.year(), month.next()),
    };
    Date::from_calendar_date(year, month, 1).ok()
}

// ---------------------------------------------------------------------------
// Ledger

/// GPUs one pod held on one node, from when it got them until it let go
/// (`end` None while it still holds them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocationInterval {
    pub cluster: String,
    pub namespace: String,
    /// The namespace's team at the time, so a later move does not rewrite history.
    pub team: Option<String>,
    /// `Deployment/llm`, `Job/train`, `Pod/x`.
    pub workload: String,
    pub pod: String,
    pub node: String,
    pub model: String,
    pub capacity_type: CapacityType,
    pub milli_gpus: i64,
    pub start: i64,
    pub end: Option<i64>,
}

/// GPUs a node offered over a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityInterval {
    pub cluster: String,
    pub node: String,
    pub model: String,
    pub capacity_type: CapacityType,
    pub milli_gpus: i64,
    pub start: i64,
    pub end: Option<i64>,
}

/// A time a cluster was stale: what happened then is unknown, so nothing in
/// it is billed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub cluster: String,
    pub span: Span,
}

/// A price from `effective_from` until the next point for the same model,
/// capacity type and cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PricePoint {
    /// Some for a cluster's own price, which wins over the global one.
    pub cluster: Option<String>,
    pub model: String,
    pub capacity_type: CapacityType,
    /// None: the price was removed at `effective_from`. A global removal
    /// leaves the time after it unpriced until a new point; a cluster's
    /// removal ends its override, so the global price applies there again.
    pub usd_per_gpu_hour: Option<Usd>,
    pub effective_from: i64,
}

/// Price points in time order, looked up by model and capacity type.
///
/// Before a model's first price point its time is unpriced: prices are not
/// applied backwards. A global removal point makes the time after it
/// unpriced until the next point. A cluster override, once in effect, wins
/// until the next override point for that cluster; a removal point ends it,
/// and the global price (or its absence) applies from then on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceBook {
    lines: BTreeMap<String, BTreeMap<CapacityType, PriceLine>>,
}

/// Each timeline holds (effective from, price or None for removed).
type Timeline = Vec<(i64, Option<Usd>)>;

#[derive(Clone, Debug, Default, PartialEq)]
struct PriceLine {
    global: Timeline,
    by_cluster: BTreeMap<String, Timeline>,
}

impl PriceBook {
    /// Two points for the same key and time: the later in `points` wins.
    /// A point for capacity type Unknown is taken as on-demand.
    pub fn new(points: impl IntoIterator<Item = PricePoint>) -> PriceBook {
        let mut book = PriceBook::default();
        for point in points {
            let line = book.lines.entry(point.model).or_default().entry(charged_as(point.capacity_type)).or_default();
            let timeline = match point.cluster {
                Some(cluster) => line.by_cluster.entry(cluster).or_default(),
                None => &mut line.global,
            };
            timeline.push((point.effective_from, point.usd_per_gpu_hour));
        }
        for line in book.lines.values_mut().flat_map(|by_capacity| by_capacity.values_mut()) {
            keep_last_per_time(&mut line.global);
            line.by_cluster.values_mut().for_each(keep_last_per_time);
        }
        book
    }

    /// The prices over `span`, as consecutive segments covering all of it;
    /// None where no price applies. Unknown capacity is charged on-demand; a
    /// spot GPU with no spot price is unpriced, never charged on-demand.
    pub fn segments(&self, cluster: &str, model: &str, capacity: CapacityType, span: Span) -> Vec<(Span, Option<Usd>)> {
        if span.is_empty() {
            return Vec::new();
        }
        let line = self.lines.get(model).and_then(|by_capacity| by_capacity.get(&charged_as(capacity)));
        let global = line.map(|l| l.global.as_slice()).unwrap_or_default();
        let local = line.and_then(|l| l.by_cluster.get(cluster)).map(Vec::as_slice).unwrap_or_default();
        let mut cuts: Vec<i64> =
            global.iter().chain(local).map(|(from, _)| *from).filter(|from| span.contains(*from)).collect();
        cuts.extend([span.start, span.end]);
        cuts.sort_unstable();
        cuts.dedup();
        let mut segments: Vec<(Span, Option<Usd>)> = Vec::new();
        for pair in cuts.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            // A removed override (Some(None)) falls back to the global price.
            let price = price_at(local, start).flatten().or_else(|| price_at(global, start).flatten());
            match segments.last_mut() {
                Some((last, last_price)) if *last_price == price => last.end = end,
                _ => segments.push((Span::new(start, end), price)),
            }
        }
        segments
    }
}

/// Unknown capacity is charged the on-demand price, as [`crate::cost::price_of`] does.
fn charged_as(capacity: CapacityType) -> CapacityType {
    if capacity == CapacityType::Unknown { CapacityType::OnDemand } else { capacity }
}

fn keep_last_per_time(timeline: &mut Timeline) {
    timeline.sort_by_key(|(from, _)| *from);
    let mut kept: Timeline = Vec::with_capacity(timeline.len());
    for point in timeline.drain(..) {
        match kept.last_mut() {
            Some(last) if last.0 == point.0 => *last = point,
            _ => kept.push(point),
        }
    }
    *timeline = kept;
}

/// The point in effect at `at`: None before the first point, Some(None)
/// after a removal.
fn price_at(timeline: &[(i64, Option<Usd>)], at: i64) -> Option<Option<Usd>> {
    let after = timeline.partition_point(|(from, _)| *from <= at);
    after.checked_sub(1).and_then(|i| timeline.get(i)).map(|(_, price)| *price)
}

/// GPU utilisation as the caller measured it: per pod, spans with their mean
/// percent. Time no sample covers has unknown utilisation and is never
/// counted as wasted. Where samples overlap, the one that starts first
/// speaks for the shared time (the earlier added on a tie), so no time is
/// counted twice.
#[derive(Clone, Debug, PartialEq)]
pub struct Utilisation {
    /// GPU time below this percent is wasted.
    pub threshold_percent: f64,
    /// Per (cluster, namespace, pod): spans sorted by start, with utilisation
    /// in hundredths of a percent.
    samples: BTreeMap<(String, String, String), Vec<(Span, i64)>>,
}

impl Default for Utilisation {
    fn default() -> Utilisation {
        Utilisation::new(DEFAULT_WASTE_THRESHOLD_PERCENT)
    }
}

impl Utilisation {
    pub fn new(threshold_percent: f64) -> Utilisation {
        Utilisation { threshold_percent, samples: BTreeMap::new() }
    }

    /// Records a sample; percentages are held to 0–100 and kept to the
    /// hundredth. A sample that is not a number is left out (unknown).
    pub fn add(&mut self, cluster: &str, namespace: &str, pod: &str, span: Span, mean_percent: f64) {
        if span.is_empty() || mean_percent.is_nan() {
            return;
        }
        let basis_points = (mean_percent.clamp(0.0, 100.0) * BASIS_POINTS_PER_PERCENT).round() as i64;
        let samples = self.samples.entry((cluster.to_string(), namespace.to_string(), pod.to_string())).or_default();
        let at = samples.partition_point(|(existing, _)| existing.start <= span.start);
        samples.insert(at, (span, basis_points));
    }

    pub(crate) fn of(&self, interval: &AllocationInterval) -> &[(Span, i64)] {
        let key = (interval.cluster.clone(), interval.namespace.clone(), interval.pod.clone());
        self.samples.get(&key).map(Vec::as_slice).unwrap_or_default()
    }

    pub(crate) fn is_waste(&self, basis_points: i64) -> bool {
        (basis_points as f64) < self.threshold_percent * BASIS_POINTS_PER_PERCENT
    }
}

/// The parts of `piece` the samples cover, each with its utilisation.
pub(crate) fn covered(samples: &[(Span, i64)], piece: Span) -> impl Iterator<Item = (Span, i64)> + '_ {
    let mut cursor = piece.start;
    samples.iter().take_while(move |(span, _)| span.start < piece.end).filter_map(move |(span, basis_points)| {
        let part = Span::new(span.start.max(cursor), span.end.min(piece.end));
        (!part.is_empty()).then(|| {
            cursor = part.end;
            (part, *basis_points)
        })
    })
}

// ---------------------------------------------------------------------------
// Usage

/// What an hourly row (or any sum of them) is about. The idle row of a node
/// has namespace "", team None and workload [`IDLE`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UsageKey {
    pub cluster: String,
    pub namespace: String,
    pub team: Option<String>,
    pub workload: String,
    pub node: String,
    pub model: String,
    pub capacity_type: CapacityType,
}

impl UsageKey {
    pub fn is_idle(&self) -> bool {
        self.workload == IDLE
    }

    pub(crate) fn of_allocation(interval: &AllocationInterval) -> UsageKey {
        UsageKey {
            cluster: interval.cluster.clone(),
            namespace: interval.namespace.clone(),
            team: interval.team.clone(),
            workload: interval.workload.clone(),
            node: interval.node.clone(),
            model: interval.model.clone(),
            capacity_type: interval.capacity_type,
        }
    }

    pub(crate) fn idle(node: &NodeKey) -> UsageKey {
        UsageKey {
            cluster: node.cluster.to_string(),
            namespace: String::new(),
            team: None,
            workload: IDLE.to_string(),
            node: node.node.to_string(),
            model: node.model.to_string(),
            capacity_type: node.capacity_type,
        }
    }
}

/// Exact sums of GPU time and cost. Every field adds up, so any set of rows
/// can be summed, split or shared without losing a unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// GPU time pods held (0 on idle rows).
    pub allocated: MilliGpuMs,
    /// The node's GPU time on offer (only on idle rows, or where idle was shared).
    pub capacity: MilliGpuMs,
    /// GPU time on offer that no pod held, never negative at any instant.
    pub idle: MilliGpuMs,
    /// All cost, idle cost included.
    pub cost: CostUnits,
    /// The part of `cost` that paid for idle time.
    pub idle_cost: CostUnits,
    /// GPU time with no price, left out of the cost.
    pub unpriced: MilliGpuMs,
    /// What the priced time would have cost on demand; where there is no
    /// on-demand price, its own cost. `on_demand_cost − cost` is the spot saving.
    pub on_demand_cost: CostUnits,
    /// Σ utilisation in hundredths of a percent × GPU time, where known.
    pub util_weighted: i128,
    /// GPU time whose utilisation is known.
    pub util_known: MilliGpuMs,
    /// GPU time whose utilisation was under the threshold.
    pub wasted: MilliGpuMs,
    /// The cost of the wasted time.
    pub wasted_cost: CostUnits,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.allocated = self.allocated.saturating_add(other.allocated);
        self.capacity = self.capacity.saturating_add(other.capacity);
        self.idle = self.idle.saturating_add(other.idle);
        self.cost = self.cost.saturating_add(other.cost);
        self.idle_cost = self.idle_cost.saturating_add(other.idle_cost);
        self.unpriced = self.unpriced.saturating_add(other.unpriced);
        self.on_demand_cost = self.on_demand_cost.saturating_add(other.on_demand_cost);
        self.util_weighted = self.util_weighted.saturating_add(other.util_weighted);
        self.util_known = self.util_known.saturating_add(other.util_known);
        self.wasted = self.wasted.saturating_add(other.wasted);
        self.wasted_cost = self.wasted_cost.saturating_add(other.wasted_cost);
    }

    pub fn is_empty(&self) -> bool {
        self.allocated == 0 && self.capacity == 0 && self.idle == 0
    }

    /// Shares every field among parts in proportion to `weights`, so that
    /// each field's parts sum exactly to the whole (largest remainder).
    fn split(&self, weights: &[i64]) -> Vec<Usage> {
        let time = |whole: MilliGpuMs| -> Vec<MilliGpuMs> {
            split_exactly(i128::from(whole), weights).into_iter().map(saturate_i64).collect()
        };
        let (allocated, capacity, idle) = (time(self.allocated), time(self.capacity), time(self.idle));
        let (unpriced, util_known, wasted) = (time(self.unpriced), time(self.util_known), time(self.wasted));
        let cost = split_exactly(self.cost, weights);
        let idle_cost = split_exactly(self.idle_cost, weights);
        let on_demand_cost = split_exactly(self.on_demand_cost, weights);
        let util_weighted = split_exactly(self.util_weighted, weights);
        let wasted_cost = split_exactly(self.wasted_cost, weights);
        // Every list has one part per weight.
        (0..weights.len())
            .map(|i| Usage {
                allocated: allocated[i],
                capacity: capacity[i],
                idle: idle[i],
                cost: cost[i],
                idle_cost: idle_cost[i],
                unpriced: unpriced[i],
                on_demand_cost: on_demand_cost[i],
                util_weighted: util_weighted[i],
                util_known: util_known[i],
                wasted: wasted[i],
                wasted_cost: wasted_cost[i],
            })
            .collect()
    }
}

/// `whole` shared in proportion to `weights` (largest remainder): each part
/// is its exact share rounded down, and the units left over go to the parts
/// whose shares lost most in rounding, the earlier on a tie. The parts sum to
/// `whole` exactly. Negative weights count as 0; all-zero weights get nothing.
fn split_exactly(whole: i128, weights: &[i64]) -> Vec<i128> {
    let weights: Vec<i128> = weights.iter().map(|w| i128::from((*w).max(0))).collect();
    let total: i128 = weights.iter().fold(0i128, |sum, w| sum.saturating_add(*w));
    if total == 0 {
        return vec![0; weights.len()];
    }
    let (quotient, remainder) = (whole.div_euclid(total), whole.rem_euclid(total));
    let mut parts = Vec::with_capacity(weights.len());
    let mut lost = Vec::with_capacity(weights.len());
    for weight in &weights {
        let spread = remainder.saturating_mul(*weight);
        parts.push(quotient.saturating_mul(*weight).saturating_add(spread / total));
        lost.push(spread % total);
    }
    let handed_out = parts.iter().fold(0i128, |sum, part| sum.saturating_add(*part));
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| lost[*b].cmp(&lost[*a]).then(a.cmp(b)));
    let left_over = usize::try_from(whole.saturating_sub(handed_out)).unwrap_or(0);
    for i in order.into_iter().take(left_over) {
        parts[i] += 1;
    }
    parts
}

/// One hour of usage of one key, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourlyRow {
    /// The start of the UTC hour.
    pub hour: i64,
    pub key: UsageKey,
    pub usage: Usage,
}

/// The rows of one UTC hour. Open intervals run to `min(now, hour end)`.
pub fn rollup(
    hour_start: i64,
    allocations: &[AllocationInterval],
    capacity: &[CapacityInterval],
    gaps: &[Gap],
    prices: &PriceBook,
    utilisation: &Utilisation,
    now: i64,
) -> Vec<HourlyRow> {
    let hour = bucket_start(hour_start, MS_PER_HOUR);
    let span = Span::new(hour, hour.saturating_add(MS_PER_HOUR));
    let usage = usage_over(span, allocations, capacity, gaps, prices, utilisation, now);
    usage.into_iter().map(|(key, usage)| HourlyRow { hour, key, usage }).collect()
}

/// Hourly rows for any span straight from the intervals, partial hours
/// prorated: for the edges of a window, and for windows the raw intervals
/// still cover. Each row's `hour` is the start of the hour it falls in.
pub fn usage_by_hour(
    span: Span,
    allocations: &[AllocationInterval],
    capacity: &[CapacityInterval],
    gaps: &[Gap],
    prices: &PriceBook,
    utilisation: &Utilisation,
    now: i64,
) -> Vec<HourlyRow> {
    let mut rows = Vec::new();
    for part in hours_in(Span::new(span.start, span.end.min(now))) {
        let hour = bucket_start(part.start, MS_PER_HOUR);
        let usage = usage_over(part, allocations, capacity, gaps, prices, utilisation, now);
        rows.extend(usage.into_iter().map(|(key, usage)| HourlyRow { hour, key, usage }));
    }
    rows
}

/// Usage over any span, exactly. Every amount is a sum over instants, so the
/// usage of two adjacent spans adds up to the usage of both at once, to the
/// unit; this is what makes hourly rollups trustworthy.
///
/// An allocation row per allocation key; an idle row per node, model and
/// capacity type that offered GPUs: at each instant its idle GPUs are its
/// capacity less what pods of the same model and capacity type held on it,
/// never below zero. Rows with no GPU time are left out.
pub fn usage_over(
    span: Span,
    allocations: &[AllocationInterval],
    capacity: &[CapacityInterval],
    gaps: &[Gap],
    prices: &PriceBook,
    utilisation: &Utilisation,
    now: i64,
) -> BTreeMap<UsageKey, Usage> {
    let mut out: BTreeMap<UsageKey, Usage> = BTreeMap::new();
    let span = Span::new(span.start, span.end.min(now));
    if span.is_empty() {
        return out;
    }
    let clusters = allocations.iter().map(|a| a.cluster.as_str()).chain(capacity.iter().map(|c| c.cluster.as_str()));
    let billable = billable_spans(span, gaps, clusters);
    for interval in allocations.iter().filter(|a| a.milli_gpus > 0) {
        let held = held_span(interval.start, interval.end, now);
        let open = billable.get(interval.cluster.as_str()).map(Vec::as_slice).unwrap_or_default();
        for piece in open.iter().filter_map(|window| held.intersect(*window)) {
            let usage = out.entry(UsageKey::of_allocation(interval)).or_default();
            add_allocation(usage, interval, piece, prices, utilisation);
        }
    }
    for (node, (offered, held)) in nodes(allocations, capacity) {
        let open = billable.get(node.cluster).map(Vec::as_slice).unwrap_or_default();
        let mut usage = Usage::default();
        for window in open {
            add_idle(&mut usage, &node, &offered, &held, *window, prices, now);
        }
        out.entry(UsageKey::idle(&node)).or_default().add(&usage);
    }
    out.retain(|_, usage| !usage.is_empty());
    out
}

pub(crate) fn held_span(start: i64, end: Option<i64>, now: i64) -> Span {
    Span::new(start, end.unwrap_or(now).min(now))
}

/// Per cluster, the parts of `span` outside its gaps.
pub(crate) fn billable_spans<'a>(
    span: Span,
    gaps: &[Gap],
    clusters: impl Iterator<Item = &'a str>,
) -> BTreeMap<&'a str, Vec<Span>> {
    let mut billable = BTreeMap::new();
    for cluster in clusters {
        billable.entry(cluster).or_insert_with(|| {
            let mut holes: Vec<Span> = gaps.iter().filter(|g| g.cluster == cluster).map(|g| g.span).collect();
            holes.sort_unstable();
            let mut open = Vec::new();
            let mut cursor = span.start;
            for hole in holes.into_iter().filter_map(|hole| hole.intersect(span)) {
                if hole.start > cursor {
                    open.push(Span::new(cursor, hole.start));
                }
                cursor = cursor.max(hole.end);
            }
            if cursor < span.end {
                open.push(Span::new(cursor, span.end));
            }
            open
        });
    }
    billable
}

/// The capacity of one model and capacity type on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NodeKey<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) node: &'a str,
    pub(crate) model: &'a str,
    pub(crate) capacity_type: CapacityType,
}

pub(crate) type NodeIntervals<'a> = (Vec<&'a CapacityInterval>, Vec<&'a AllocationInterval>);

pub(crate) fn nodes<'a>(
    allocations: &'a [AllocationInterval],
    capacity: &'a [CapacityInterval],
) -> BTreeMap<NodeKey<'a>, NodeIntervals<'a>> {
    let mut nodes: BTreeMap<NodeKey<'a>, NodeIntervals<'a>> = BTreeMap::new();
    for offer in capacity.iter().filter(|c| c.milli_gpus > 0) {
        let key = NodeKey {
            cluster: &offer.cluster,
            node: &offer.node,
            model: &offer.model,
            capacity_type: offer.capacity_type,
        };
        nodes.entry(key).or_default().0.push(offer);
    }
    for held in allocations.iter().filter(|a| a.milli_gpus > 0) {
        let key =
            NodeKey { cluster: &held.cluster, node: &held.node, model: &held.model, capacity_type: held.capacity_type };
        if let Some((_, allocations)) = nodes.get_mut(&key) {
            allocations.push(held);
        }
    }
    nodes
}

fn add_allocation(
    usage: &mut Usage,
    interval: &AllocationInterval,
    piece: Span,
    prices: &PriceBook,
    utilisation: &Utilisation,
) {
    let (cluster, model, capacity) = (&interval.cluster, &interval.model, interval.capacity_type);
    let milli_gpus = interval.milli_gpus;
    let samples = utilisation.of(interval);
    for (segment, price) in prices.segments(cluster, model, capacity, piece) {
        usage.allocated = usage.allocated.saturating_add(gpu_time(milli_gpus, segment.len()));
        let charge = charge(prices, cluster, model, capacity, milli_gpus, segment, price);
        usage.cost = usage.cost.saturating_add(charge.cost);
        usage.unpriced = usage.unpriced.saturating_add(charge.unpriced);
        usage.on_demand_cost = usage.on_demand_cost.saturating_add(charge.on_demand_cost);
        for (part, basis_points) in covered(samples, segment) {
            let time = gpu_time(milli_gpus, part.len());
            usage.util_known = usage.util_known.saturating_add(time);
            usage.util_weighted = usage.util_weighted.saturating_add(i128::from(basis_points) * i128::from(time));
            if utilisation.is_waste(basis_points) {
                usage.wasted = usage.wasted.saturating_add(time);
                let cost = price.map(|p| cost_units(milli_gpus, part.len(), p)).unwrap_or_default();
                usage.wasted_cost = usage.wasted_cost.saturating_add(cost);
            }
        }
    }
}

/// Sweeps one node's capacity and allocations over `window` and adds its
/// capacity and idle time, idle priced like the node's GPUs.
fn add_idle(
    usage: &mut Usage,
    node: &NodeKey,
    offered: &[&CapacityInterval],
    held: &[&AllocationInterval],
    window: Span,
    prices: &PriceBook,
    now: i64,
) {
    sweep_node(offered, held, window, now, |stretch, offering, idle| {
        usage.capacity = usage.capacity.saturating_add(gpu_time(offering, stretch.len()));
        if idle > 0 {
            add_idle_stretch(usage, node, idle, stretch, prices);
        }
    });
}

/// Sweeps one node's capacity and allocations over `window`: calls `each`
/// with every stretch in which the node offered GPUs, the milli-GPUs it
/// offered then and how many of them were idle (offered less held, never
/// below zero). The ledger's totals and the charts' rates both use it.
pub fn sweep_node(
    offered: &[&CapacityInterval],
    held: &[&AllocationInterval],
    window: Span,
    now: i64,
    mut each: impl FnMut(Span, i64, i64),
) {
    // (time, change in GPUs offered, change in GPUs held)
    let mut changes: Vec<(i64, i64, i64)> = Vec::new();
    for offer in offered {
        if let Some(part) = held_span(offer.start, offer.end, now).intersect(window) {
            changes.extend([(part.start, offer.milli_gpus, 0), (part.end, -offer.milli_gpus, 0)]);
        }
    }
    for allocation in held {
        if let Some(part) = held_span(allocation.start, allocation.end, now).intersect(window) {
            changes.extend([(part.start, 0, allocation.milli_gpus), (part.end, 0, -allocation.milli_gpus)]);
        }
    }
    changes.sort_unstable_by_key(|change| change.0);
    let (mut offering, mut holding) = (0i64, 0i64);
    for (i, (at, offer_change, held_change)) in changes.iter().enumerate() {
        offering = offering.saturating_add(*offer_change);
        holding = holding.saturating_add(*held_change);
        let Some((next, _, _)) = changes.get(i + 1) else { break };
        let stretch = Span::new(*at, *next);
        if stretch.is_empty() || offering <= 0 {
            continue;
        }
        each(stretch, offering, offering.saturating_sub(holding.max(0)));
    }
}

fn add_idle_stretch(usage: &mut Usage, node: &NodeKey, idle_milli_gpus: i64, stretch: Span, prices: &PriceBook) {
    for (segment, price) in prices.segments(node.cluster, node.model, node.capacity_type, stretch) {
        usage.idle = usage.idle.saturating_add(gpu_time(idle_milli_gpus, segment.len()));
        let charge = charge(prices, node.cluster, node.model, node.capacity_type, idle_milli_gpus, segment, price);
        usage.cost = usage.cost.saturating_add(charge.cost);
        usage.idle_cost = usage.idle_cost.saturating_add(charge.cost);
        usage.unpriced = usage.unpriced.saturating_add(charge.unpriced);
        usage.on_demand_cost = usage.on_demand_cost.saturating_add(charge.on_demand_cost);
    }
}

#[derive(Default)]
struct Charge {
    cost: CostUnits,
    unpriced: MilliGpuMs,
    on_demand_cost: CostUnits,
}

/// The cost of GPUs over a segment with one price, and what they would have
/// cost on demand (their own price where there is no on-demand one).
fn charge(
    prices: &PriceBook,
    cluster: &str,
    model: &str,
    capacity: CapacityType,
    milli_gpus: i64,
    segment: Span,
    price: Option<Usd>,
) -> Charge {
    let Some(price) = price else {
        return Charge { unpriced: gpu_time(milli_gpus, segment.len()), ..Charge::default() };
    };
    let cost = cost_units(milli_gpus, segment.len(), price);
    let on_demand_cost = if capacity == CapacityType::Spot {
        prices
            .segments(cluster, model, CapacityType::OnDemand, segment)
            .into_iter()
            .map(|(part, on_demand)| cost_units(milli_gpus, part.len(), on_demand.unwrap_or(price)))
            .fold(0i128, i128::saturating_add)
    } else {
        cost
    };
    Charge { cost, unpriced: 0, on_demand_cost }
}

// ---------------------------------------------------------------------------
// Aggregation

/// What a breakdown of usage can be grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Cluster,
    Namespace,
    Team,
    Workload,
    Node,
    Model,
    CapacityType,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::Cluster,
        Dimension::Namespace,
        Dimension::Team,
        Dimension::Workload,
        Dimension::Node,
        Dimension::Model,
        Dimension::CapacityType,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Cluster => "cluster",
            Dimension::Namespace => "namespace",
            Dimension::Team => "team",
            Dimension::Workload => "workload",
            Dimension::Node => "node",
            Dimension::Model => "model",
            Dimension::CapacityType => "capacity_type",
        }
    }
}

/// Reads `team,model`: names separated by commas, in any case, repeats
/// ignored; empty text groups by nothing (one row, plus idle).
pub fn parse_aggregate(text: &str) -> Result<Vec<Dimension>, Invalid> {
    let mut dimensions = Vec::new();
    let mut unknown = Vec::new();
    for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let normalised = name.to_ascii_lowercase().replace('-', "_");
        match Dimension::ALL.into_iter().find(|d| d.name() == normalised) {
            Some(dimension) if !dimensions.contains(&dimension) => dimensions.push(dimension),
            Some(_) => {}
            None => unknown.push(name.chars().take(40).collect::<String>()),
        }
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
        return Err(Invalid::new("aggregate", format!("unknown: {}; use {}", unknown.join(", "), known.join(", "))));
    }
    Ok(dimensions)
}

/// Sums for a set of rows, in dollars and hours, rounded for display from
/// exact sums (the rounded figures of rows need not add up to the rounded
/// total; their `usage` does, exactly).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    /// GPU-hours pods held.
    pub gpu_hours: f64,
    /// Everything, idle included.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub cost: Usd,
    /// What spot saved against the on-demand price of the same GPUs.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub spot_savings: Usd,
    pub idle_gpu_hours: f64,
    /// The part of `cost` that paid for idle GPUs.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub idle_cost: Usd,
    /// GPU-hours with no price, left out of the cost.
    pub unpriced_gpu_hours: f64,
    /// Mean GPU utilisation over the time it is known; None if never known.
    pub utilisation_percent: Option<f64>,
    /// GPU-hours held below the utilisation threshold.
    pub wasted_gpu_hours: f64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub wasted_cost: Usd,
    /// The exact sums behind the figures; the server's, not sent.
    #[serde(skip)]
    pub usage: Usage,
}

impl Totals {
    pub fn of(usage: Usage) -> Totals {
        Totals {
            gpu_hours: gpu_hours(usage.allocated),
            cost: to_usd(usage.cost),
            spot_savings: to_usd(usage.on_demand_cost.saturating_sub(usage.cost)),
            idle_gpu_hours: gpu_hours(usage.idle),
            idle_cost: to_usd(usage.idle_cost),
            unpriced_gpu_hours: gpu_hours(usage.unpriced),
            utilisation_percent: (usage.util_known > 0)
                .then(|| usage.util_weighted as f64 / usage.util_known as f64 / BASIS_POINTS_PER_PERCENT),
            wasted_gpu_hours: gpu_hours(usage.wasted),
            wasted_cost: to_usd(usage.wasted_cost),
            usage,
        }
    }
}

pub fn totals(rows: &[HourlyRow]) -> Totals {
    let mut usage = Usage::default();
    for row in rows {
        usage.add(&row.usage);
    }
    Totals::of(usage)
}

/// One line of a breakdown. A dimension not grouped by is None. Idle
/// capacity has `idle` set and [`IDLE`] as its namespace, team and workload
/// when those are grouped by; its cluster, node, model and capacity type
/// stay. A team of "" is a namespace that had no team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllocationRow {
    /// The start of the step's bucket (clamped to the window's start);
    /// None without a step.
    pub bucket: Option<i64>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub team: Option<String>,
    pub workload: Option<String>,
    pub node: Option<String>,
    pub model: Option<String>,
    pub capacity_type: Option<CapacityType>,
    pub idle: bool,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    bucket: Option<i64>,
    cluster: Option<String>,
    namespace: Option<String>,
    team: Option<String>,
    workload: Option<String>,
    node: Option<String>,
    model: Option<String>,
    capacity_type: Option<CapacityType>,
    idle: bool,
}

impl RowKey {
    fn of(hour: i64, key: &UsageKey, by: &[Dimension], step: Option<(Span, i64)>) -> RowKey {
        let idle = key.is_idle();
        let kept = |dimension: Dimension, value: &str| by.contains(&dimension).then(|| value.to_string());
        let labelled = |dimension: Dimension, value: &str| kept(dimension, if idle { IDLE } else { value });
        RowKey {
            bucket: step.map(|(window, step)| bucket_start(hour, step).max(window.start)),
            cluster: kept(Dimension::Cluster, &key.cluster),
            namespace: labelled(Dimension::Namespace, &key.namespace),
            team: labelled(Dimension::Team, key.team.as_deref().unwrap_or_default()),
            workload: labelled(Dimension::Workload, &key.workload),
            node: kept(Dimension::Node, &key.node),
            model: kept(Dimension::Model, &key.model),
            capacity_type: by.contains(&Dimension::CapacityType).then_some(key.capacity_type),
            idle,
        }
    }

    fn into_row(self, usage: Usage) -> AllocationRow {
        AllocationRow {
            bucket: self.bucket,
            cluster: self.cluster,
            namespace: self.namespace,
            team: self.team,
            workload: self.workload,
            node: self.node,
            model: self.model,
            capacity_type: self.capacity_type,
            idle: self.idle,
            totals: Totals::of(usage),
        }
    }
}

/// A breakdown of hourly rows by `by`, sorted by cost, highest first, then
/// by key. With `step`, rows are also split into buckets of the step
/// aligned to the epoch; a bucket is labelled by its start, or the window's
/// start for the first one. Rows are hourly, so a step under an hour puts
/// each hour in the bucket of its start.
///
/// With `share_idle`, each cluster's idle capacity in each hour is charged to
/// the pods that held GPUs in that cluster in that hour, in proportion to
/// their GPU time; every sum is shared exactly, so totals do not move. An
/// hour with idle capacity and no allocation in that cluster keeps its idle
/// row.
pub fn aggregate(
    rows: &[HourlyRow],
    by: &[Dimension],
    share_idle: bool,
    step: Option<(Span, i64)>,
) -> Vec<AllocationRow> {
    let rows: Vec<(i64, &UsageKey, Usage)> =
        if share_idle { spread_idle(rows) } else { rows.iter().map(|r| (r.hour, &r.key, r.usage)).collect() };
    let mut groups: BTreeMap<RowKey, Usage> = BTreeMap::new();
    for (hour, key, usage) in rows {
        groups.entry(RowKey::of(hour, key, by, step)).or_default().add(&usage);
    }
    let mut out: Vec<AllocationRow> = groups.into_iter().map(|(key, usage)| key.into_row(usage)).collect();
    // Stable, so rows of equal cost stay in key order.
    out.sort_by_key(|row| std::cmp::Reverse(row.totals.usage.cost));
    out
}

/// The rows with each cluster-hour's idle usage shared over its allocation
/// rows.
fn spread_idle(rows: &[HourlyRow]) -> Vec<(i64, &UsageKey, Usage)> {
    // Per (hour, cluster): its idle rows and its allocation rows.
    let mut cluster_hours: BTreeMap<(i64, &str), [Vec<&HourlyRow>; 2]> = BTreeMap::new();
    for row in rows {
        let [idle, held] = cluster_hours.entry((row.hour, row.key.cluster.as_str())).or_default();
        if row.key.is_idle() { idle.push(row) } else { held.push(row) }
    }
    let mut out = Vec::with_capacity(rows.len());
    for [idle, held] in cluster_hours.into_values() {
        let weights: Vec<i64> = held.iter().map(|r| r.usage.allocated.max(0)).collect();
        if idle.is_empty() || weights.iter().all(|w| *w == 0) {
            out.extend(idle.iter().chain(&held).map(|r| (r.hour, &r.key, r.usage)));
            continue;
        }
        let mut idle_usage = Usage::default();
        idle.iter().for_each(|r| idle_usage.add(&r.usage));
        for (row, share) in held.iter().zip(idle_usage.split(&weights)) {
            let mut usage = row.usage;
            usage.add(&share);
            out.push((row.hour, &row.key, usage));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Budgets

/// The month's spend if the current burn goes on to its end.
pub fn forecast(month: Span, spent_so_far: Usd, now: i64, burn_per_hour: Usd) -> Usd {
    let remaining = Span::new(now.clamp(month.start, month.end.max(month.start)), month.end).len();
    let to_come = div_round(i128::from(burn_per_hour.micros()) * i128::from(remaining), i128::from(MS_PER_HOUR));
    Usd::from_micros(saturate_i64(i128::from(spent_so_far.micros()) + to_come))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The month's spend so far has reached the level.
    Actual,
    /// The forecast for the month reaches it.
    Forecast,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub kind: AlertKind,
    /// 80 or 100: the percent of the budget reached.
    pub percent: u8,
}

pub const ALERT_PERCENTS: [u8; 2] = [80, 100];

/// The budget levels reached. A forecast alert is left out for a level the
/// actual spend has already reached, since it would say nothing new. A zero
/// budget raises none: there is nothing to measure against.
pub fn crossed_thresholds(budget: Usd, spent: Usd, forecast: Usd) -> Vec<Alert> {
    if budget.micros() <= 0 {
        return Vec::new();
    }
    let reached = |amount: Usd, percent: u8| {
        i128::from(amount.micros()) * 100 >= i128::from(budget.micros()) * i128::from(percent)
    };
    let actual = ALERT_PERCENTS
        .into_iter()
        .filter(|p| reached(spent, *p))
        .map(|percent| Alert { kind: AlertKind::Actual, percent });
    let forecast = ALERT_PERCENTS
        .into_iter()
        .filter(|p| !reached(spent, *p) && reached(forecast, *p))
        .map(|percent| Alert { kind: AlertKind::Forecast, percent });
    actual.chain(forecast).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use CapacityType::{OnDemand, Spot, Unknown};
    use proptest::prelude::*;

    const H: i64 = MS_PER_HOUR;
    const MINUTE: i64 = MS_PER_MINUTE;
    /// Cost units of one dollar.
    const DOLLAR: i128 = UNITS_PER_MICRO_USD * 1_000_000;

    fn at(text: &str) -> i64 {
        parse_instant(text).unwrap()
    }

    /// 2026-11-02T10:00:00Z, the hour most tests look at.
    fn t0() -> i64 {
        at("2026-11-02T10:00:00Z")
    }

    fn usd(dollars: f64) -> Usd {
        Usd::from_dollars("price", dollars).unwrap()
    }

    fn pod(name: &str, milli_gpus: i64, start: i64, end: Option<i64>) -> AllocationInterval {
        AllocationInterval {
            cluster: "prod".into(),
            namespace: "ml".into(),
            team: Some("vision".into()),
            workload: format!("Deployment/{name}"),
            pod: format!("{name}-0"),
            node: "n1".into(),
            model: "H100".into(),
            capacity_type: OnDemand,
            milli_gpus,
            start,
            end,
        }
    }

    fn node(milli_gpus: i64, start: i64, end: Option<i64>) -> CapacityInterval {
        CapacityInterval {
            cluster: "prod".into(),
            node: "n1".into(),
            model: "H100".into(),
            capacity_type: OnDemand,
            milli_gpus,
            start,
            end,
        }
    }

    fn price(model: &str, capacity_type: CapacityType, dollars: f64, effective_from: i64) -> PricePoint {
        PricePoint {
            cluster: None,
            model: model.into(),
            capacity_type,
            usd_per_gpu_hour: Some(usd(dollars)),
            effective_from,
        }
    }

    /// H100: $4 on demand, $1.50 spot; L4: $1 on demand only; all long before t0.
    fn prices() -> PriceBook {
        let since = t0() - 1000 * H;
        PriceBook::new([
            price("H100", OnDemand, 4.0, since),
            price("H100", Spot, 1.5, since),
            price("L4", OnDemand, 1.0, since),
        ])
    }

    fn hour(allocations: &[AllocationInterval], capacity: &[CapacityInterval], gaps: &[Gap]) -> Vec<HourlyRow> {
        rollup(t0(), allocations, capacity, gaps, &prices(), &Utilisation::default(), t0() + 10 * H)
    }

    fn row<'a>(rows: &'a [HourlyRow], workload: &str) -> &'a Usage {
        &rows.iter().find(|r| r.key.workload == workload).unwrap_or_else(|| panic!("no row {workload}")).usage
    }

    fn dollars(units: CostUnits) -> f64 {
        to_usd(units).dollars()
    }

    #[test]
    fn mig_slices_count_as_their_share_of_seven() {
        let cases = [
            ("1g.10gb", Some(143)),
            ("1g.10gb+me", Some(143)),
            ("2g.20gb", Some(286)),
            ("3g.40gb", Some(429)),
            ("4g.40gb", Some(571)),
            ("5g.60gb", Some(714)),
            ("6g.70gb", Some(857)),
            ("7g.80gb", Some(1000)),
            ("nvidia.com/mig-3g.40gb", Some(429)),
            ("", None),
            ("0g.5gb", None),
            ("8g.80gb", None),
            ("12g.10gb", None),
            ("1g", None),
            ("1g.", None),
            ("g.10gb", None),
            ("1c.3g.40gb", None),
            ("mig", None),
        ];
        for (profile, want) in cases {
            assert_eq!(mig_milli_gpus(profile), want, "{profile}");
        }
    }

    #[test]
    fn dollars_are_rounded_once_half_away_from_zero() {
        let micro = UNITS_PER_MICRO_USD;
        assert_eq!(to_usd(micro * 3 / 2).micros(), 2);
        assert_eq!(to_usd(micro * 3 / 2 - 1).micros(), 1);
        assert_eq!(to_usd(-micro * 3 / 2).micros(), -2);
        assert_eq!(to_usd(0).micros(), 0);
        assert_eq!(to_usd(cost_units(1000, H, usd(2.49))), usd(2.49));
        assert_eq!(to_usd(i128::MAX).micros(), i64::MAX);
        assert_eq!(gpu_hours(gpu_time(1000, H)), 1.0);
        assert_eq!(gpu_hours(gpu_time(500, 30 * MINUTE)), 0.25);
    }

    #[test]
    fn spans_split_at_utc_hours() {
        let window = Span::new(t0() + 30 * MINUTE, t0() + 2 * H + 15 * MINUTE);
        let hours: Vec<Span> = hours_in(window).collect();
        assert_eq!(
            hours,
            [
                Span::new(t0() + 30 * MINUTE, t0() + H),
                Span::new(t0() + H, t0() + 2 * H),
                Span::new(t0() + 2 * H, t0() + 2 * H + 15 * MINUTE),
            ]
        );
        assert_eq!(hours_in(Span::new(t0(), t0())).count(), 0);
        assert_eq!(buckets(window, 0).count(), 0, "a zero step must not loop");
        assert_eq!(
            window_parts(window),
            WindowParts {
                head: Some(Span::new(t0() + 30 * MINUTE, t0() + H)),
                whole_hours: Some(Span::new(t0() + H, t0() + 2 * H)),
                tail: Some(Span::new(t0() + 2 * H, t0() + 2 * H + 15 * MINUTE)),
            }
        );
        let inside = Span::new(t0() + MINUTE, t0() + 2 * MINUTE);
        assert_eq!(window_parts(inside), WindowParts { head: Some(inside), whole_hours: None, tail: None });
        let a = Span::new(0, 10);
        assert_eq!(a.intersect(Span::new(5, 20)), Some(Span::new(5, 10)));
        assert_eq!(a.intersect(Span::new(10, 20)), None, "half-open spans that touch share nothing");
        assert!(a.overlaps(Span::new(9, 11)) && !a.overlaps(Span::new(-5, 0)));
        assert!(a.contains(0) && !a.contains(10));
        assert_eq!(Span::new(5, 1).len(), 0);
    }

    #[test]
    fn windows_parse_every_form() {
        let now = at("2026-11-15T10:30:00Z");
        let ok = |text: &str| parse_window(text, now);
        let span = |start: &str, end: i64| Ok(Span::new(at(start), end));
        assert_eq!(ok("30m"), Ok(Span::new(now - 30 * MINUTE, now)));
        assert_eq!(ok("6h"), Ok(Span::new(now - 6 * H, now)));
        assert_eq!(ok(" 6H "), Ok(Span::new(now - 6 * H, now)));
        assert_eq!(ok("7d"), Ok(Span::new(now - 7 * MS_PER_DAY, now)));
        assert_eq!(ok("today"), span("2026-11-15T00:00:00Z", now));
        assert_eq!(ok("yesterday"), span("2026-11-14T00:00:00Z", at("2026-11-15T00:00:00Z")));
        assert_eq!(ok("month"), span("2026-11-01T00:00:00Z", now));
        assert_eq!(ok("lastmonth"), span("2026-10-01T00:00:00Z", at("2026-11-01T00:00:00Z")));
        assert_eq!(
            ok("2026-11-01T00:00:00Z,2026-11-02T00:00:00Z"),
            span("2026-11-01T00:00:00Z", at("2026-11-02T00:00:00Z"))
        );
        assert_eq!(
            ok("2026-11-01T02:00:00+02:00, 2026-11-02T00:00:00.5Z"),
            span("2026-11-01T00:00:00Z", at("2026-11-02T00:00:00Z") + 500)
        );
        let (a, b) = (at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"));
        assert_eq!(ok(&format!("{a},{b}")), Ok(Span::new(a, b)), "unix milliseconds");
        assert_eq!(ok(&format!("{a},2026-11-03T00:00:00Z")), Ok(Span::new(a, b)), "mixed");
        assert_eq!(
            ok("2026-11-01T00:00:00Z,2030-01-01T00:00:00Z"),
            span("2026-11-01T00:00:00Z", now),
            "clamped to now"
        );
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let now = at("2026-11-15T10:30:00Z");
        let cases = [
            ("", "must be a length"),
            ("abc", "must be a length"),
            ("5", "must be a length"),
            ("h", "must be a length"),
            ("-5h", "must be a length"),
            ("5x", "must be a length"),
            ("1w", "must be a length"),
            ("1.5h", "must be a length"),
            ("9999999999d", "must be a length"),
            ("0h", "the window is empty"),
            ("2026-11-02T00:00:00Z,2026-11-01T00:00:00Z", "the window ends before it starts"),
            ("2026-11-01T00:00:00Z,2026-11-01T00:00:00Z", "the window is empty"),
            ("2026-12-01T00:00:00Z,2026-12-02T00:00:00Z", "the window starts in the future"),
            ("2026-02-31T00:00:00Z,2026-03-01T00:00:00Z", "\"2026-02-31T00:00:00Z\" is not an RFC 3339 time"),
            ("2026-11-01,2026-11-02", "is not an RFC 3339 time"),
            ("2026-11-01T00:00:00,2026-11-02T00:00:00Z", "is not an RFC 3339 time"),
            ("a,b", "\"a\" is not an RFC 3339 time"),
            ("1,2,3", "\"2,3\" is not an RFC 3339 time"),
            (",", "\"\" is not an RFC 3339 time"),
        ];
        for (text, want) in cases {
            let error = parse_window(text, now).unwrap_err();
            assert_eq!(error.field, "window");
            assert!(error.message.contains(want), "{text:?}: {}", error.message);
        }
    }

    #[test]
    fn calendar_windows_cross_years_and_leap_days() {
        let now = at("2027-01-10T05:00:00Z");
        assert_eq!(parse_window("month", now), Ok(Span::new(at("2027-01-01T00:00:00Z"), now)));
        assert_eq!(
            parse_window("lastmonth", now),
            Ok(Span::new(at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z")))
        );
        let new_year = at("2027-01-01T00:00:00Z");
        assert_eq!(parse_window("month", new_year).unwrap_err().message, "the window is empty");
        assert_eq!(parse_window("lastmonth", new_year), Ok(Span::new(at("2026-12-01T00:00:00Z"), new_year)));
        assert_eq!(parse_window("yesterday", new_year), Ok(Span::new(at("2026-12-31T00:00:00Z"), new_year)));

        let february = parse_window("lastmonth", at("2028-03-05T12:00:00Z")).unwrap();
        assert_eq!(february, Span::new(at("2028-02-01T00:00:00Z"), at("2028-03-01T00:00:00Z")));
        assert_eq!(february.len(), 29 * MS_PER_DAY, "2028 is a leap year");
        assert_eq!(month_of(at("2028-02-29T23:59:59.999Z")), february);
        assert_eq!(month_of(at("2027-02-10T00:00:00Z")).len(), 28 * MS_PER_DAY);
        assert_eq!(month_of(at("2026-12-31T23:59:59Z")).end, new_year);
        let leap_day = parse_window("2028-02-29T00:00:00Z,2028-03-01T00:00:00Z", at("2028-03-05T00:00:00Z"));
        assert_eq!(leap_day.map(Span::len), Ok(MS_PER_DAY));
        assert!(parse_window("2027-02-29T00:00:00Z,2027-03-01T00:00:00Z", at("2028-03-05T00:00:00Z")).is_err());
        // Far outside the calendar: no panic.
        assert!(!month_of(i64::MAX).is_empty() && !month_of(i64::MIN).is_empty());
    }

    #[test]
    fn windows_older_than_the_history_are_refused() {
        let now = t0();
        let back = |days: i64| Span::new(now - days * MS_PER_DAY, now);
        assert_eq!(check_retention(back(34), now, RAW_RETENTION_MS), Ok(()));
        assert_eq!(check_retention(back(35), now, RAW_RETENTION_MS), Ok(()));
        let error = check_retention(back(36), now, RAW_RETENTION_MS).unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.message.as_str()),
            ("window", "the window starts before the retained history (35 days)")
        );
        assert_eq!(check_retention(back(399), now, ROLLUP_RETENTION_MS), Ok(()));
        assert!(check_retention(back(401), now, ROLLUP_RETENTION_MS).unwrap_err().message.contains("(400 days)"));
    }

    #[test]
    fn steps_parse_and_cap_the_points() {
        for (text, want) in [
            ("5m", 5 * MINUTE),
            ("15m", 15 * MINUTE),
            ("1h", H),
            (" 6H ", 6 * H),
            ("1d", MS_PER_DAY),
            ("7d", 7 * MS_PER_DAY),
        ] {
            assert_eq!(parse_step(text), Ok(want), "{text}");
        }
        for bad in ["", "0m", "1w", "1.5h", "-1h", "h", "1 h"] {
            assert_eq!(parse_step(bad).unwrap_err().field, "step", "{bad}");
        }
        let day = Span::new(t0() + 30 * MINUTE, t0() + 30 * MINUTE + MS_PER_DAY);
        assert_eq!(check_points(day, 5 * MINUTE), Ok(288));
        assert_eq!(check_points(day, H), Ok(25), "an unaligned day touches 25 hours");
        let two_days = Span::new(t0(), t0() + 2 * MS_PER_DAY);
        assert!(check_points(two_days, 15 * MINUTE).unwrap_err().message.contains("whole number of hours"));
        assert_eq!(check_points(two_days, 90 * MINUTE).unwrap_err().field, "step");
        let midnight = at("2026-11-02T00:00:00Z");
        assert_eq!(check_points(Span::new(midnight, midnight + 400 * MS_PER_DAY), H), Ok(9_600));
        assert_eq!(check_points(Span::new(midnight, midnight + 10_000 * H), H), Ok(10_000));
        let error = check_points(Span::new(midnight, midnight + 730 * MS_PER_DAY), H).unwrap_err();
        assert_eq!(error.message, "the step would return 17,520 points; at most 10,000");
        assert!(check_points(Span::new(midnight, midnight + 10_001 * H), H).is_err());
        // 1d buckets are UTC days: 10:30 on the 1st to 10:30 on the 3rd touches three.
        assert_eq!(check_points(Span::new(at("2026-11-01T10:30:00Z"), at("2026-11-03T10:30:00Z")), MS_PER_DAY), Ok(3));
        assert!(check_points(day, 0).is_err());
    }

    #[test]
    fn prices_change_at_their_effective_time_and_overrides_win() {
        let (t, half) = (t0(), t0() + 30 * MINUTE);
        let book = PriceBook::new([
            price("H100", OnDemand, 2.0, t - H),
            price("H100", OnDemand, 4.0, half),
            PricePoint { cluster: Some("lab".into()), ..price("H100", OnDemand, 1.0, t + 15 * MINUTE) },
            price("H100", Spot, 9.0, t - H),
            price("H100", Spot, 1.5, t - H),
            price("L4", OnDemand, 1.0, half),
        ]);
        let hour = Span::new(t, t + H);
        let prod = book.segments("prod", "H100", OnDemand, hour);
        assert_eq!(prod, [(Span::new(t, half), Some(usd(2.0))), (Span::new(half, t + H), Some(usd(4.0)))]);
        assert_eq!(book.segments("prod", "H100", Unknown, hour), prod, "unknown capacity pays on-demand");
        let lab = book.segments("lab", "H100", OnDemand, hour);
        assert_eq!(
            lab,
            [(Span::new(t, t + 15 * MINUTE), Some(usd(2.0))), (Span::new(t + 15 * MINUTE, t + H), Some(usd(1.0)))]
        );
        assert_eq!(
            book.segments("prod", "H100", Spot, hour),
            [(hour, Some(usd(1.5)))],
            "the later of two points at one time wins"
        );
        assert_eq!(book.segments("prod", "L4", Spot, hour), [(hour, None)], "spot is never charged on-demand");
        assert_eq!(
            book.segments("prod", "L4", OnDemand, hour),
            [(Span::new(t, half), None), (Span::new(half, t + H), Some(usd(1.0)))]
        );
        assert_eq!(book.segments("prod", "B200", OnDemand, hour), [(hour, None)]);
        assert!(book.segments("prod", "H100", OnDemand, Span::new(t, t)).is_empty());
    }

    #[test]
    fn a_removed_price_leaves_time_unpriced_and_a_removed_override_falls_back() {
        let (t, quarter, half) = (t0(), t0() + 15 * MINUTE, t0() + 30 * MINUTE);
        let removed = |cluster: Option<&str>, at| PricePoint {
            cluster: cluster.map(Into::into),
            usd_per_gpu_hour: None,
            ..price("H100", OnDemand, 0.0, at)
        };
        let book = PriceBook::new([
            price("H100", OnDemand, 4.0, t - H),
            removed(None, half),
            price("H100", OnDemand, 5.0, t + H),
            PricePoint { cluster: Some("lab".into()), ..price("H100", OnDemand, 1.0, t - H) },
            removed(Some("lab"), quarter),
        ]);
        let two_hours = Span::new(t, t + 2 * H);
        assert_eq!(
            book.segments("prod", "H100", OnDemand, two_hours),
            [
                (Span::new(t, half), Some(usd(4.0))),
                (Span::new(half, t + H), None),
                (Span::new(t + H, t + 2 * H), Some(usd(5.0)))
            ],
            "unpriced from the removal until the next price"
        );
        assert_eq!(
            book.segments("lab", "H100", OnDemand, two_hours),
            [
                (Span::new(t, quarter), Some(usd(1.0))),
                (Span::new(quarter, half), Some(usd(4.0))),
                (Span::new(half, t + H), None),
                (Span::new(t + H, t + 2 * H), Some(usd(5.0)))
            ],
            "the override ends and the global timeline applies"
        );
        let hour = Span::new(t, t + H);
        let same_time = PriceBook::new([price("H100", OnDemand, 4.0, t), removed(None, t)]);
        assert_eq!(same_time.segments("prod", "H100", OnDemand, hour), [(hour, None)], "the later point wins");
        let rows = rollup(t, &[pod("llm", 1000, t, None)], &[], &[], &book, &Utilisation::default(), t + H);
        let usage = row(&rows, "Deployment/llm");
        assert_eq!((dollars(usage.cost), gpu_hours(usage.unpriced)), (2.0, 0.5));
    }

    #[test]
    fn a_pod_pays_for_the_part_of_the_hour_it_held_gpus() {
        let rows = hour(
            &[
                pod("short", 2000, t0() + 15 * MINUTE, Some(t0() + 45 * MINUTE)),
                pod("long", 1000, t0() - H, Some(t0() + 2 * H)),
                pod("before", 1000, t0() - 2 * H, Some(t0())),
            ],
            &[],
            &[],
        );
        assert_eq!(gpu_hours(row(&rows, "Deployment/short").allocated), 1.0);
        assert_eq!(dollars(row(&rows, "Deployment/short").cost), 4.0);
        assert_eq!(dollars(row(&rows, "Deployment/long").cost), 4.0);
        assert!(
            rows.iter().all(|r| r.key.workload != "Deployment/before"),
            "an interval ending at the hour is not in it"
        );
        assert!(rows.iter().all(|r| r.hour == t0() && r.usage.capacity == 0));

        // A window from 10:30 to 12:15 prorates its edge hours.
        let window = Span::new(t0() + 30 * MINUTE, t0() + 2 * H + 15 * MINUTE);
        let parts = usage_by_hour(
            window,
            &[pod("long", 1000, t0() - H, None)],
            &[],
            &[],
            &prices(),
            &Utilisation::default(),
            t0() + 10 * H,
        );
        let per_hour: Vec<(i64, f64)> = parts.iter().map(|r| (r.hour, dollars(r.usage.cost))).collect();
        assert_eq!(per_hour, [(t0(), 2.0), (t0() + H, 4.0), (t0() + 2 * H, 1.0)]);
    }

    #[test]
    fn a_price_change_inside_the_hour_splits_it() {
        let book = PriceBook::new([price("H100", OnDemand, 2.0, 0), price("H100", OnDemand, 4.0, t0() + 30 * MINUTE)]);
        let rows = rollup(t0(), &[pod("llm", 1000, t0(), None)], &[], &[], &book, &Utilisation::default(), t0() + H);
        assert_eq!(dollars(row(&rows, "Deployment/llm").cost), 3.0);
        // The past keeps its price: the hour before is all at $2.
        let before =
            rollup(t0() - H, &[pod("llm", 1000, t0() - H, None)], &[], &[], &book, &Utilisation::default(), t0() + H);
        assert_eq!(dollars(row(&before, "Deployment/llm").cost), 2.0);
    }

    #[test]
    fn a_cluster_override_wins_for_that_cluster_only() {
        let since = t0() - H;
        let book = PriceBook::new([
            price("H100", OnDemand, 4.0, since),
            PricePoint { cluster: Some("lab".into()), ..price("H100", OnDemand, 1.0, since) },
        ]);
        let lab =
            AllocationInterval { cluster: "lab".into(), workload: "Job/lab".into(), ..pod("x", 1000, t0(), None) };
        let rows =
            rollup(t0(), &[pod("prod", 1000, t0(), None), lab], &[], &[], &book, &Utilisation::default(), t0() + H);
        assert_eq!(dollars(row(&rows, "Deployment/prod").cost), 4.0);
        assert_eq!(dollars(row(&rows, "Job/lab").cost), 1.0);
    }

    #[test]
    fn spot_is_charged_its_own_price_and_shows_its_saving() {
        let spot = AllocationInterval { capacity_type: Spot, ..pod("spot", 1000, t0(), None) };
        let unknown = AllocationInterval { capacity_type: Unknown, ..pod("unknown", 1000, t0(), None) };
        let spot_l4 = AllocationInterval { capacity_type: Spot, model: "L4".into(), ..pod("l4", 1000, t0(), None) };
        let rows = hour(&[spot, unknown, spot_l4, pod("od", 1000, t0(), None)], &[], &[]);
        let figures = |workload: &str| Totals::of(*row(&rows, workload));
        let spot = figures("Deployment/spot");
        assert_eq!((spot.cost, spot.spot_savings), (usd(1.5), usd(2.5)));
        let unknown = figures("Deployment/unknown");
        assert_eq!((unknown.cost, unknown.spot_savings), (usd(4.0), usd(0.0)), "unknown capacity pays on-demand");
        let l4 = figures("Deployment/l4");
        assert_eq!(
            (l4.cost, l4.unpriced_gpu_hours, l4.spot_savings),
            (usd(0.0), 1.0, usd(0.0)),
            "no spot price: unpriced"
        );
        assert_eq!(figures("Deployment/od").spot_savings, usd(0.0));
        assert_eq!(totals(&rows).spot_savings, usd(2.5));
    }

    #[test]
    fn a_node_idle_capacity_is_its_own_row() {
        let rows = hour(&[pod("llm", 2000, t0(), None)], &[node(8000, t0() - H, None)], &[]);
        let idle = row(&rows, IDLE);
        assert_eq!((gpu_hours(idle.capacity), gpu_hours(idle.idle), gpu_hours(idle.allocated)), (8.0, 6.0, 0.0));
        assert_eq!((dollars(idle.cost), dollars(idle.idle_cost)), (24.0, 24.0));
        let key = &rows.iter().find(|r| r.key.is_idle()).unwrap().key;
        assert_eq!((key.namespace.as_str(), key.team.as_deref(), key.node.as_str()), ("", None, "n1"));
        assert_eq!(row(&rows, "Deployment/llm").capacity, 0);
        assert_eq!(dollars(totals(&rows).usage.cost), 32.0);

        // More held than offered: no negative idle.
        let over = hour(&[pod("a", 1000, t0(), None), pod("b", 1000, t0(), None)], &[node(1000, t0(), None)], &[]);
        assert_eq!((row(&over, IDLE).idle, gpu_hours(row(&over, IDLE).capacity)), (0, 1.0));
        // A node that offered GPUs for half the hour.
        let half = hour(&[], &[node(1000, t0() + 30 * MINUTE, Some(t0() + 2 * H))], &[]);
        assert_eq!(dollars(row(&half, IDLE).cost), 2.0);
    }

    #[test]
    fn mig_slices_are_priced_as_their_fraction() {
        let book = PriceBook::new([price("H100", OnDemand, 7.0, 0)]);
        let slice = mig_milli_gpus("1g.10gb").unwrap();
        let rows = rollup(t0(), &[pod("mig", slice, t0(), None)], &[], &[], &book, &Utilisation::default(), t0() + H);
        assert_eq!(to_usd(row(&rows, "Deployment/mig").cost), usd(1.001));
    }

    #[test]
    fn unknown_models_are_unpriced_not_free() {
        let b200 = AllocationInterval { model: "B200".into(), ..pod("new", 2000, t0(), None) };
        let rows = hour(&[b200], &[], &[]);
        let figures = totals(&rows);
        assert_eq!((figures.gpu_hours, figures.unpriced_gpu_hours, figures.cost), (2.0, 2.0, usd(0.0)));
    }

    #[test]
    fn time_in_a_gap_is_billed_nowhere() {
        let gaps = [
            Gap { cluster: "prod".into(), span: Span::new(t0() - H, t0() + 20 * MINUTE) },
            Gap { cluster: "prod".into(), span: Span::new(t0() + 10 * MINUTE, t0() + 30 * MINUTE) },
            Gap { cluster: "lab".into(), span: Span::new(t0(), t0() + H) },
        ];
        let rows = hour(&[pod("llm", 1000, t0(), None)], &[node(8000, 0, None)], &gaps);
        assert_eq!(dollars(row(&rows, "Deployment/llm").cost), 2.0);
        assert_eq!(gpu_hours(row(&rows, IDLE).capacity), 4.0);
        assert_eq!(dollars(row(&rows, IDLE).cost), 14.0);
        let stale = [Gap { cluster: "prod".into(), span: Span::new(0, t0() + 2 * H) }];
        assert!(hour(&[pod("llm", 1000, t0(), None)], &[node(8000, 0, None)], &stale).is_empty());
    }

    #[test]
    fn open_intervals_end_now() {
        let now = t0() + 20 * MINUTE;
        let allocations = [pod("open", 3000, t0() - H, None), pod("ends-later", 1000, t0(), Some(t0() + 5 * H))];
        let rows = rollup(t0(), &allocations, &[node(8000, 0, None)], &[], &prices(), &Utilisation::default(), now);
        assert_eq!(gpu_hours(row(&rows, "Deployment/open").allocated), 1.0);
        assert_eq!(gpu_hours(row(&rows, "Deployment/ends-later").allocated), 1.0 / 3.0);
        assert_eq!(gpu_hours(row(&rows, IDLE).capacity), 8.0 / 3.0);
        assert!(
            rollup(t0() + H, &allocations, &[], &[], &prices(), &Utilisation::default(), now).is_empty(),
            "the future is empty"
        );
    }

    #[test]
    fn utilisation_is_weighted_and_low_use_is_wasted() {
        let mut utilisation = Utilisation::default();
        let half = t0() + 30 * MINUTE;
        utilisation.add("prod", "ml", "llm-0", Span::new(t0() - H, half), 5.0);
        utilisation.add("prod", "ml", "llm-0", Span::new(half, t0() + 2 * H), 50.0);
        // Overlaps the first sample: the first speaks for the shared time.
        utilisation.add("prod", "ml", "llm-0", Span::new(t0(), half), 90.0);
        utilisation.add("prod", "ml", "llm-0", Span::new(t0(), half), f64::NAN);
        let rows = rollup(
            t0(),
            &[pod("llm", 1000, t0(), None), pod("quiet", 1000, t0(), None)],
            &[],
            &[],
            &prices(),
            &utilisation,
            t0() + H,
        );
        let llm = Totals::of(*row(&rows, "Deployment/llm"));
        assert_eq!(llm.utilisation_percent, Some(27.5));
        assert_eq!((llm.wasted_gpu_hours, llm.wasted_cost), (0.5, usd(2.0)));
        let quiet = Totals::of(*row(&rows, "Deployment/quiet"));
        assert_eq!((quiet.utilisation_percent, quiet.wasted_gpu_hours), (None, 0.0), "unknown is not wasted");
        assert_eq!(totals(&rows).utilisation_percent, Some(27.5), "the mean is over the known time only");
    }

    fn hourly(hour: i64, cluster: &str, team: Option<&str>, workload: &str, usage: Usage) -> HourlyRow {
        let idle = workload == IDLE;
        HourlyRow {
            hour,
            key: UsageKey {
                cluster: cluster.into(),
                namespace: if idle { String::new() } else { "ml".into() },
                team: team.map(Into::into),
                workload: workload.into(),
                node: "n1".into(),
                model: "H100".into(),
                capacity_type: OnDemand,
            },
            usage,
        }
    }

    fn held(gpus: i64, dollars: i64) -> Usage {
        let allocated = gpu_time(gpus * 1000, H);
        Usage {
            allocated,
            cost: i128::from(dollars) * DOLLAR,
            on_demand_cost: i128::from(dollars) * DOLLAR,
            ..Usage::default()
        }
    }

    fn idle(gpus: i64, dollars: i64) -> Usage {
        let cost = i128::from(dollars) * DOLLAR;
        let time = gpu_time(gpus * 1000, H);
        Usage { capacity: time, idle: time, cost, idle_cost: cost, on_demand_cost: cost, ..Usage::default() }
    }

    fn summed(rows: &[AllocationRow]) -> Usage {
        let mut sum = Usage::default();
        rows.iter().for_each(|r| sum.add(&r.totals.usage));
        sum
    }

    #[test]
    fn idle_stays_its_own_row_unless_shared() {
        let t = t0();
        let rows = [
            hourly(t, "prod", Some("a"), "Job/a", held(1, 3)),
            hourly(t, "prod", Some("b"), "Job/b", held(2, 6)),
            hourly(t, "prod", None, IDLE, idle(5, 15)),
        ];
        let kept = aggregate(&rows, &[Dimension::Team], false, None);
        let lines: Vec<(Option<&str>, bool, f64)> =
            kept.iter().map(|r| (r.team.as_deref(), r.idle, r.totals.cost.dollars())).collect();
        assert_eq!(lines, [(Some(IDLE), true, 15.0), (Some("b"), false, 6.0), (Some("a"), false, 3.0)]);
        assert!(kept.iter().all(|r| r.cluster.is_none() && r.namespace.is_none() && r.bucket.is_none()));

        let shared = aggregate(&rows, &[Dimension::Team], true, None);
        let lines: Vec<(Option<&str>, f64, f64, f64)> = shared
            .iter()
            .map(|r| {
                (r.team.as_deref(), r.totals.cost.dollars(), r.totals.idle_cost.dollars(), r.totals.idle_gpu_hours)
            })
            .collect();
        assert_eq!(lines, [(Some("b"), 16.0, 10.0, 5.0 * 2.0 / 3.0), (Some("a"), 8.0, 5.0, 5.0 / 3.0)]);
        assert_eq!(summed(&shared), totals(&rows).usage);
        assert_eq!(summed(&kept), totals(&rows).usage);
    }

    #[test]
    fn shared_idle_adds_up_to_the_unit() {
        let t = t0();
        // One micro-dollar of idle over three equal pods: 3.6e9 units do not split evenly by 7.
        let crumbs =
            Usage { idle: 1, cost: UNITS_PER_MICRO_USD + 1, idle_cost: UNITS_PER_MICRO_USD + 1, ..Usage::default() };
        let rows = [
            hourly(t, "prod", Some("a"), "Job/a", held(1, 1)),
            hourly(t, "prod", Some("b"), "Job/b", held(1, 1)),
            hourly(t, "prod", Some("c"), "Job/c", held(1, 1)),
            hourly(t, "prod", None, IDLE, crumbs),
        ];
        let shared = aggregate(&rows, &[Dimension::Workload], true, None);
        assert_eq!(shared.len(), 3);
        let idle_parts: Vec<i128> = shared.iter().map(|r| r.totals.usage.idle_cost).collect();
        assert_eq!(idle_parts.iter().sum::<i128>(), UNITS_PER_MICRO_USD + 1);
        assert!(idle_parts.iter().all(|p| (p - (UNITS_PER_MICRO_USD + 1) / 3).abs() <= 1), "{idle_parts:?}");
        assert_eq!(summed(&shared), totals(&rows).usage);
    }

    #[test]
    fn idle_with_nobody_to_share_it_stays() {
        let t = t0();
        let rows = [
            hourly(t, "prod", Some("a"), "Job/a", held(1, 4)),
            hourly(t, "prod", None, IDLE, idle(1, 4)),
            hourly(t, "lab", None, IDLE, idle(2, 8)),
            hourly(t + H, "prod", None, IDLE, idle(1, 4)),
        ];
        let shared = aggregate(&rows, &[Dimension::Cluster], true, None);
        let lines: Vec<(Option<&str>, bool, f64)> =
            shared.iter().map(|r| (r.cluster.as_deref(), r.idle, r.totals.cost.dollars())).collect();
        assert_eq!(lines, [(Some("lab"), true, 8.0), (Some("prod"), false, 8.0), (Some("prod"), true, 4.0)]);
        assert_eq!(summed(&shared), totals(&rows).usage);
    }

    #[test]
    fn steps_bucket_rows_by_utc_day() {
        let window = Span::new(at("2026-11-01T10:30:00Z"), at("2026-11-03T00:00:00Z"));
        let rows = [
            hourly(at("2026-11-01T10:00:00Z"), "prod", Some("a"), "Job/a", held(1, 2)),
            hourly(at("2026-11-01T23:00:00Z"), "prod", Some("a"), "Job/a", held(1, 3)),
            hourly(at("2026-11-02T00:00:00Z"), "prod", Some("a"), "Job/a", held(1, 5)),
        ];
        let days = aggregate(&rows, &[], false, Some((window, MS_PER_DAY)));
        let lines: Vec<(Option<i64>, f64)> = days.iter().map(|r| (r.bucket, r.totals.cost.dollars())).collect();
        assert_eq!(
            lines,
            [(Some(window.start), 5.0), (Some(at("2026-11-02T00:00:00Z")), 5.0)],
            "equal costs stay in time order"
        );
    }

    #[test]
    fn aggregate_dimensions_parse() {
        use Dimension::*;
        assert_eq!(parse_aggregate("team,model"), Ok(vec![Team, Model]));
        assert_eq!(parse_aggregate(" Team , capacity-type,team "), Ok(vec![Team, CapacityType]));
        assert_eq!(parse_aggregate("capacity_type,cluster,namespace,workload,node").map(|d| d.len()), Ok(5));
        assert_eq!(parse_aggregate(""), Ok(vec![]));
        let error = parse_aggregate("team,colour,size").unwrap_err();
        assert_eq!(error.field, "aggregate");
        assert_eq!(
            error.message,
            "unknown: colour, size; use cluster, namespace, team, workload, node, model, capacity_type"
        );
        assert_eq!(serde_json::to_string(&CapacityType).unwrap(), "\"capacity_type\"");
    }

    #[test]
    fn rows_travel_as_json() {
        let rows = hour(&[pod("llm", 1000, t0(), None)], &[node(8000, 0, None)], &[]);
        let json = serde_json::to_string(&rows).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<HourlyRow>>(&json).unwrap(),
            rows,
            "exact i128 sums survive storage as JSON"
        );
        let line = &aggregate(&rows, &[Dimension::Team], false, None)[0];
        let value = serde_json::to_value(line).unwrap();
        assert_eq!(value["cost"], 28.0);
        assert_eq!(value["team"], IDLE);
        assert!(value.get("usage").is_none() && value.get("totals").is_none(), "{value}");
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn the_api_schema_shows_dollars_not_exact_sums() {
        use utoipa::PartialSchema;
        let row = serde_json::to_value(AllocationRow::schema()).unwrap().to_string();
        assert!(row.contains("#/components/schemas/Totals") && row.contains("\"capacity_type\""), "{row}");
        let totals = serde_json::to_value(Totals::schema()).unwrap().to_string();
        assert!(totals.contains("\"spot_savings\""), "{totals}");
        assert!(!totals.contains("\"usage\"") && !totals.contains("on_demand_cost"), "{totals}");
    }

    #[test]
    fn forecasts_run_the_current_burn_to_the_month_end() {
        let november = month_of(at("2026-11-16T00:00:00Z"));
        let spent = usd(1000.0);
        assert_eq!(forecast(november, spent, at("2026-11-16T00:00:00Z"), usd(10.0)), usd(1000.0 + 15.0 * 24.0 * 10.0));
        assert_eq!(forecast(november, spent, november.end + H, usd(10.0)), spent, "a month that is over");
        assert_eq!(forecast(november, Usd::default(), november.start - H, usd(1.0)), usd(720.0), "the whole month");
        assert_eq!(
            forecast(november, spent, november.end - 1, Usd::from_micros(1)),
            spent,
            "rounded to the micro-dollar"
        );
    }

    #[test]
    fn budget_alerts_fire_at_80_and_100_percent() {
        use AlertKind::{Actual, Forecast};
        let alert = |kind, percent| Alert { kind, percent };
        let budget = usd(1000.0);
        let cases = [
            (0.0, 0.0, vec![]),
            (500.0, 799.99, vec![]),
            (500.0, 800.0, vec![alert(Forecast, 80)]),
            (850.0, 1200.0, vec![alert(Actual, 80), alert(Forecast, 100)]),
            (1000.0, 1000.0, vec![alert(Actual, 80), alert(Actual, 100)]),
        ];
        for (spent, forecast, want) in cases {
            assert_eq!(crossed_thresholds(budget, usd(spent), usd(forecast)), want, "{spent} / {forecast}");
        }
        assert!(crossed_thresholds(Usd::default(), usd(5.0), usd(5.0)).is_empty());
    }

    // ----- properties

    const NAMES: [&str; 2] = ["a", "b"];
    const MODELS: [&str; 3] = ["H100", "L4", "A100"];
    const CAPACITY_TYPES: [CapacityType; 3] = [OnDemand, Spot, Unknown];
    const BASE: i64 = 1_790_000_000_000;

    fn any_end(start: i64, length: Option<i64>) -> Option<i64> {
        length.map(|length| start + length)
    }

    fn allocations(range: i64) -> impl Strategy<Value = AllocationInterval> {
        (
            0..2usize,
            0..2usize,
            0..3usize,
            0..2usize,
            0..2usize,
            0..3usize,
            0..3usize,
            0..=10_000i64,
            0..range,
            proptest::option::of(0..range),
        )
            .prop_map(|(cluster, namespace, team, name, node, model, capacity, milli_gpus, start, length)| {
                AllocationInterval {
                    cluster: NAMES[cluster].into(),
                    namespace: NAMES[namespace].into(),
                    team: [None, Some("t1".into()), Some("t2".into())][team].clone(),
                    workload: format!("Job/{}", NAMES[name]),
                    pod: NAMES[name].into(),
                    node: NAMES[node].into(),
                    model: MODELS[model].into(),
                    capacity_type: CAPACITY_TYPES[capacity],
                    milli_gpus,
                    start: BASE + start,
                    end: any_end(BASE + start, length),
                }
            })
    }

    fn capacities(range: i64) -> impl Strategy<Value = CapacityInterval> {
        (0..2usize, 0..2usize, 0..3usize, 0..3usize, 0..=10_000i64, 0..range, proptest::option::of(0..range)).prop_map(
            |(cluster, node, model, capacity, milli_gpus, start, length)| CapacityInterval {
                cluster: NAMES[cluster].into(),
                node: NAMES[node].into(),
                model: MODELS[model].into(),
                capacity_type: CAPACITY_TYPES[capacity],
                milli_gpus,
                start: BASE + start,
                end: any_end(BASE + start, length),
            },
        )
    }

    fn gaps(range: i64) -> impl Strategy<Value = Gap> {
        (0..2usize, 0..range, 0..range / 4).prop_map(|(cluster, start, length)| Gap {
            cluster: NAMES[cluster].into(),
            span: Span::new(BASE + start, BASE + start + length),
        })
    }

    fn price_points(range: i64) -> impl Strategy<Value = PricePoint> {
        let price = proptest::option::weighted(0.8, 0..=Usd::MAX_GPU_HOUR.micros());
        (0..3usize, 0..2usize, 0..2usize, price, -range..range).prop_map(|(cluster, model, capacity, micros, from)| {
            PricePoint {
                cluster: [None, Some("a".into()), Some("b".into())][cluster].clone(),
                model: MODELS[model].into(),
                capacity_type: CAPACITY_TYPES[capacity],
                usd_per_gpu_hour: micros.map(Usd::from_micros),
                effective_from: BASE + from,
            }
        })
    }

    #[derive(Clone, Debug)]
    struct Ledger {
        allocations: Vec<AllocationInterval>,
        capacity: Vec<CapacityInterval>,
        gaps: Vec<Gap>,
        prices: PriceBook,
        utilisation: Utilisation,
    }

    impl Ledger {
        fn usage(&self, span: Span, now: i64) -> BTreeMap<UsageKey, Usage> {
            usage_over(span, &self.allocations, &self.capacity, &self.gaps, &self.prices, &self.utilisation, now)
        }

        fn by_hour(&self, span: Span, now: i64) -> Vec<HourlyRow> {
            usage_by_hour(span, &self.allocations, &self.capacity, &self.gaps, &self.prices, &self.utilisation, now)
        }
    }

    fn ledgers(range: i64) -> impl Strategy<Value = Ledger> {
        let samples = (0..2usize, 0..2usize, 0..2usize, 0..range, 1..range, 0.0..100.0f64);
        (
            proptest::collection::vec(allocations(range), 0..10),
            proptest::collection::vec(capacities(range), 0..5),
            proptest::collection::vec(gaps(range), 0..3),
            proptest::collection::vec(price_points(range), 0..8),
            proptest::collection::vec(samples, 0..8),
        )
            .prop_map(|(allocations, capacity, gaps, prices, samples)| {
                let mut utilisation = Utilisation::default();
                for (cluster, namespace, pod, start, length, percent) in samples {
                    let span = Span::new(BASE + start, BASE + start + length);
                    utilisation.add(NAMES[cluster], NAMES[namespace], NAMES[pod], span, percent);
                }
                Ledger { allocations, capacity, gaps, prices: PriceBook::new(prices), utilisation }
            })
    }

    fn merged<'a>(maps: impl IntoIterator<Item = &'a BTreeMap<UsageKey, Usage>>) -> BTreeMap<UsageKey, Usage> {
        let mut sum: BTreeMap<UsageKey, Usage> = BTreeMap::new();
        for (key, usage) in maps.into_iter().flatten() {
            sum.entry(key.clone()).or_default().add(usage);
        }
        sum
    }

    const THREE_DAYS: i64 = 3 * MS_PER_DAY;

    proptest! {
        #[test]
        fn splitting_a_window_changes_no_sum(
            ledger in ledgers(THREE_DAYS),
            start in 0..THREE_DAYS,
            lengths in (0..THREE_DAYS, 0..THREE_DAYS),
            now in 0..2 * THREE_DAYS,
        ) {
            let (start, now) = (BASE + start, BASE + now);
            let (split, end) = (start + lengths.0, start + lengths.0 + lengths.1);
            let whole = ledger.usage(Span::new(start, end), now);
            let halves = [ledger.usage(Span::new(start, split), now), ledger.usage(Span::new(split, end), now)];
            prop_assert_eq!(merged(&halves), whole);
        }

        #[test]
        fn hourly_rollups_add_up_to_the_window(ledger in ledgers(THREE_DAYS), first_hour in 0..24i64, hours in 0..30i64) {
            let start = bucket_start(BASE, H) + first_hour * H;
            let window = Span::new(start, start + hours * H);
            let now = BASE + THREE_DAYS;
            let mut sum: BTreeMap<UsageKey, Usage> = BTreeMap::new();
            for hour in hours_in(window) {
                let rows = rollup(hour.start, &ledger.allocations, &ledger.capacity, &ledger.gaps, &ledger.prices, &ledger.utilisation, now);
                for row in rows {
                    prop_assert_eq!(row.hour, hour.start);
                    sum.entry(row.key).or_default().add(&row.usage);
                }
            }
            prop_assert_eq!(sum, ledger.usage(window, now));
        }

        #[test]
        fn breakdowns_add_up_to_the_totals(
            ledger in ledgers(6 * H),
            chosen in proptest::collection::vec(any::<bool>(), 7),
            share_idle in any::<bool>(),
            step in proptest::option::of(prop_oneof![Just(H), Just(2 * H), Just(MS_PER_DAY)]),
        ) {
            let window = Span::new(BASE, BASE + 6 * H);
            let rows = ledger.by_hour(window, BASE + 6 * H);
            let by: Vec<Dimension> = Dimension::ALL.into_iter().zip(chosen).filter(|(_, on)| *on).map(|(d, _)| d).collect();
            let parts = aggregate(&rows, &by, share_idle, step.map(|step| (window, step)));
            prop_assert_eq!(summed(&parts), totals(&rows).usage);
            let costs: Vec<CostUnits> = parts.iter().map(|r| r.totals.usage.cost).collect();
            prop_assert!(costs.windows(2).all(|pair| pair[0] >= pair[1]), "sorted by cost");
        }

        #[test]
        fn realistic_inputs_never_overflow(ledger in ledgers(400 * MS_PER_DAY), chosen in proptest::collection::vec(any::<bool>(), 7)) {
            let window = Span::new(BASE - MS_PER_DAY, BASE + 400 * MS_PER_DAY);
            let now = window.end;
            let usage = ledger.usage(window, now);
            for (key, usage) in &usage {
                prop_assert!(usage.util_known <= usage.allocated && usage.wasted <= usage.util_known);
                prop_assert!(usage.idle <= usage.capacity && usage.unpriced <= usage.allocated + usage.idle);
                prop_assert!(usage.cost >= 0 && usage.wasted_cost <= usage.cost && usage.idle_cost <= usage.cost);
                prop_assert!(key.is_idle() || usage.capacity == 0);
            }
            let rows: Vec<HourlyRow> = usage.into_iter().map(|(key, usage)| HourlyRow { hour: BASE, key, usage }).collect();
            let by: Vec<Dimension> = Dimension::ALL.into_iter().zip(chosen).filter(|(_, on)| *on).map(|(d, _)| d).collect();
            for share in [false, true] {
                let parts = aggregate(&rows, &by, share, Some((window, 7 * MS_PER_DAY)));
                prop_assert_eq!(summed(&parts), totals(&rows).usage);
            }
            let month = month_of(now);
            let spent = totals(&rows).cost;
            let _ = crossed_thresholds(Usd::MAX, spent, forecast(month, spent, now, Usd::MAX_GPU_HOUR.times(100_000)));
        }

        #[test]
        fn exact_shares_sum_to_the_whole(whole in 0..i128::from(u64::MAX) * 1_000_000, weights in proptest::collection::vec(0..1_000_000_000_000i64, 1..20)) {
            let parts = split_exactly(whole, &weights);
            let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            if total == 0 {
                prop_assert!(parts.iter().all(|p| *p == 0));
            } else {
                prop_assert_eq!(parts.iter().sum::<i128>(), whole);
                for (part, weight) in parts.iter().zip(&weights) {
                    // Within one unit of the exact share.
                    let exact = whole * i128::from(*weight);
                    prop_assert!((part * total - exact).abs() < total, "{} for weight {}", part, weight);
                }
            }
        }

        #[test]
        fn any_window_text_is_answered(text in "\\PC{0,40}", now in 0..4_000_000_000_000i64) {
            let _ = parse_window(&text, now);
            let _ = parse_step(&text);
            let _ = parse_aggregate(&text);
        }
    }
}
