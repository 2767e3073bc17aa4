//! Cost allocation over any window: GPU-hours, cost, spot savings, idle and
//! waste, grouped by any of cluster, namespace, team, workload, node, model
//! and capacity type, optionally as a series, scoped like every other read.
//!
//! Windows of a day or less are answered exactly from the ledger's raw
//! intervals; longer ones from the hourly (or daily) rollups, on whole hours,
//! so a 30-day question reads a few thousand rows, never the intervals.

use std::collections::BTreeMap;

use gantry_domain::allocation::{
    AllocationQuery, AllocationReport, DEFAULT_PAGE, GroupPage, UnpricedTime, UtilisationState,
};
use gantry_domain::gpu::CapacityType;
use gantry_domain::policy::{Action, Target, Visibility};
use gantry_domain::usage::{
    self, AllocationRow, Dimension, HourlyRow, IDLE, MS_PER_DAY, MS_PER_HOUR, PriceBook, Span, UsageKey,
};
use gantry_store::{Tier, UsageFilter, UsageGroup, UsageQuestion, now_ms};

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

/// Windows up to this long are answered from the raw intervals.
const EXACT_UP_TO_MS: i64 = MS_PER_DAY;

impl AppState {
    /// One page of the answer: 100 groups unless the question says.
    pub async fn allocation(&self, caller: &Caller, query: &AllocationQuery) -> Result<AllocationReport> {
        self.allocation_page(caller, query, Some(DEFAULT_PAGE)).await
    }

    async fn allocation_page(
        &self,
        caller: &Caller,
        query: &AllocationQuery,
        default_limit: Option<usize>,
    ) -> Result<AllocationReport> {
        self.authorize(caller, Action::ViewPrices, &Target::Global, &Audit::default()).await?;
        let now = now_ms();
        let text = |value: &str, default: &'static str| {
            if value.trim().is_empty() { default.to_string() } else { value.trim().to_string() }
        };
        let window = usage::parse_window(&text(&query.window, "24h"), now)?;
        let by = usage::parse_aggregate(&text(&query.aggregate, "team"))?;
        let step = match query.step.trim() {
            "" => None,
            step => Some(usage::parse_step(step)?),
        };
        let page = query.page(default_limit)?;
        let exact = window.len() <= EXACT_UP_TO_MS;
        let retention = if exact { self.config.raw_retention_ms } else { self.config.rollup_retention_ms };
        usage::check_retention(window, now, retention)?;
        if let Some(step) = step {
            usage::check_points(window, step)?;
        }
        let viewer = self.viewer(caller).await?;
        let everything = viewer.visibility.is_everything();
        if by.contains(&Dimension::Node) && !everything {
            return Err(ServiceError::forbidden(
                "a breakdown by node shows every team's pods on each node; it needs a global admin",
            ));
        }
        let visibility = &viewer.visibility;
        let (rows, groups, totals, window) = if exact || query.share_idle {
            // Every row at the finest grain, with idle shared first if asked
            // (it needs every row of a cluster to share), then cut to what
            // the caller sees, summed up and paged here.
            let (rows, window) = if exact {
                (self.raw_rows(window, visibility).await?, window)
            } else {
                self.rolled_up_rows(window, &by, step, visibility, true).await?
            };
            let rows = if query.share_idle { share_idle(&rows) } else { rows };
            let rows: Vec<HourlyRow> = rows.into_iter().filter(|r| visible(r, visibility)).collect();
            let breakdown = usage::aggregate(&rows, &by, false, step.map(|s| (window, s)));
            let (page_rows, groups) = page.cut(breakdown);
            (page_rows, groups, rows, window)
        } else {
            // Ranked and paged in the database; the totals from the
            // rollups without the breakdown's finer keys.
            let ((rows, groups, span), (totals, _)) = futures::try_join!(
                self.rolled_up_page(window, &by, step, visibility, &page),
                self.rolled_up_rows(window, &[], None, visibility, false),
            )?;
            let totals: Vec<HourlyRow> = totals.into_iter().filter(|r| visible(r, visibility)).collect();
            let rows: Vec<HourlyRow> = rows.into_iter().filter(|r| visible(r, visibility)).collect();
            let breakdown = usage::aggregate(&rows, &by, false, step.map(|s| (span, s)));
            // The page's groups, in the page's order (the database chose them).
            let (page_rows, _) = GroupPage { limit: None, offset: 0, ..page.clone() }.cut(breakdown);
            (page_rows, groups, totals, span)
        };
        Ok(AllocationReport {
            start: window.start,
            end: window.end,
            aggregate: by,
            step,
            share_idle: query.share_idle,
            resolution: if exact { "exact" } else { "hourly" }.into(),
            totals: usage::totals(&totals),
            unpriced: unpriced(&totals),
            utilisation: self.utilisation_state().await?,
            idle_shown: everything || query.share_idle,
            rows,
            groups,
            offset: page.offset,
            limit: page.limit,
        })
    }

    /// Exactly, from the raw intervals (a day at most).
    async fn raw_rows(&self, window: Span, visibility: &Visibility) -> Result<Vec<HourlyRow>> {
        let now = now_ms();
        let prices = PriceBook::new(self.store.price_points().await?);
        let mut rows = Vec::new();
        for cluster in self.hub.names().into_iter().filter(|c| visibility.cluster(c)) {
            let allocations = self.store.allocations_overlapping(window, Some(&cluster)).await?;
            let capacity = self.store.capacity_overlapping(window, Some(&cluster)).await?;
            let gaps = self.store.gaps_overlapping(window, Some(&cluster)).await?;
            let utilisation = self.utilisation(&cluster, window).await;
            rows.extend(usage::usage_by_hour(window, &allocations, &capacity, &gaps, &prices, &utilisation, now));
        }
        Ok(rows)
    }

    /// The rollups' question for a window: the tier and grain that answer
    /// it (whole days, with the hours at either edge, when a daily answer
    /// will do), the window on whole hours, and the dimensions to sum by in
    /// the database: those the breakdown asks for and those the rest of the
    /// answer needs: model and capacity type (unpriced time), cluster and
    /// namespace when the caller sees only some (visibility), cluster when
    /// idle is shared. A question without the workload reads the namespace
    /// rollups. Returns the tier, the span, the dimensions, the bucket and
    /// the filter.
    fn rollup_question(
        window: Span,
        by: &[Dimension],
        step: Option<i64>,
        visibility: &Visibility,
        share_idle: bool,
    ) -> (Tier, Span, Vec<Dimension>, Option<i64>, UsageFilter) {
        let by_node = by.contains(&Dimension::Node);
        let daily_will_do = !by_node && step.is_none_or(|s| s % MS_PER_DAY == 0);
        let (tier, grain) = match (by_node, daily_will_do) {
            (true, _) => {
                (Tier::HourlyNodes, if step.is_some_and(|s| s < MS_PER_DAY) { MS_PER_HOUR } else { MS_PER_DAY })
            }
            (false, true) => (Tier::Daily, MS_PER_DAY),
            (false, false) => (Tier::Hourly, MS_PER_HOUR),
        };
        let span = Span::new(usage::bucket_start(window.start, MS_PER_HOUR), ceil_to(window.end, MS_PER_HOUR));
        let mut dimensions = by.to_vec();
        dimensions.extend([Dimension::Model, Dimension::CapacityType]);
        if share_idle || !visibility.is_everything() {
            dimensions.push(Dimension::Cluster);
        }
        if !visibility.is_everything() {
            dimensions.push(Dimension::Namespace);
        }
        // Buckets only where the answer has them, or idle is shared per one.
        let bucket = (step.is_some() || share_idle).then_some(grain);
        let mut filter = UsageFilter::default();
        if let Visibility::Only(seen) = visibility {
            // Sharing idle needs every row of the caller's clusters; otherwise
            // the database keeps to the caller's namespaces.
            if share_idle {
                filter.clusters = Some(seen.keys().cloned().collect());
            } else {
                let pairs =
                    seen.iter().flat_map(|(c, names)| names.iter().map(move |n| (c.clone(), n.clone()))).collect();
                filter.namespaces = Some(pairs);
            }
        }
        (tier, span, dimensions, bucket, filter)
    }

    /// Every group of the rollups' answer, at the grain of
    /// [`AppState::rollup_question`], as hourly rows (bucket as the hour).
    async fn rolled_up_rows(
        &self,
        window: Span,
        by: &[Dimension],
        step: Option<i64>,
        visibility: &Visibility,
        share_idle: bool,
    ) -> Result<(Vec<HourlyRow>, Span)> {
        let (tier, span, dimensions, bucket, filter) = Self::rollup_question(window, by, step, visibility, share_idle);
        let groups = self.store.usage_totals(tier, span, &dimensions, bucket, &filter).await?;
        Ok((groups.into_iter().map(hourly_row).collect(), span))
    }

    /// One page of the rollups' answer, ranked by `by` in the database: the
    /// rows of the page's groups and how many groups match in all.
    async fn rolled_up_page(
        &self,
        window: Span,
        by: &[Dimension],
        step: Option<i64>,
        visibility: &Visibility,
        page: &GroupPage,
    ) -> Result<(Vec<HourlyRow>, usize, Span)> {
        let (tier, span, dimensions, bucket_ms, filter) = Self::rollup_question(window, by, step, visibility, false);
        let question = UsageQuestion { tier, span, by: &dimensions, bucket_ms, filter: &filter };
        let (groups, matching) = self.store.usage_page(question, by, page).await?;
        Ok((groups.into_iter().map(hourly_row).collect(), matching, span))
    }

    /// Whether any cluster names a Prometheus, and whether they answered at
    /// their last use.
    pub(crate) async fn utilisation_state(&self) -> Result<UtilisationState> {
        let configured = self.store.all_cluster_prometheus().await?;
        if configured.is_empty() {
            return Ok(UtilisationState::NotConfigured);
        }
        let problems: Vec<String> = configured
            .iter()
            .filter_map(|p| self.prometheus_problem(&p.cluster).map(|why| format!("{}: {why}", p.cluster)))
            .collect();
        Ok(if problems.is_empty() {
            UtilisationState::Known
        } else {
            UtilisationState::Unavailable(problems.join("; "))
        })
    }

    /// The answer as CSV, one line per row (for a spreadsheet).
    pub async fn allocation_csv(&self, caller: &Caller, query: &AllocationQuery) -> Result<String> {
        let report = self.allocation_page(caller, query, None).await?;
        Ok(to_csv(&report))
    }
}

fn ceil_to(at: i64, step: i64) -> i64 {
    let start = usage::bucket_start(at, step);
    if start == at { at } else { start + step }
}

/// A rollup group as an hourly row (its bucket as the hour).
fn hourly_row(group: UsageGroup) -> HourlyRow {
    let idle = group.idle;
    let text = |value: Option<String>| value.unwrap_or_default();
    HourlyRow {
        hour: group.bucket.unwrap_or_default(),
        key: UsageKey {
            cluster: text(group.cluster),
            namespace: if idle { String::new() } else { text(group.namespace) },
            team: group.team.filter(|t| !t.is_empty() && !idle),
            workload: if idle { IDLE.to_string() } else { text(group.workload) },
            node: text(group.node),
            model: text(group.model),
            capacity_type: group.capacity_type.unwrap_or(CapacityType::Unknown),
        },
        usage: group.usage,
    }
}

/// Spreads each cluster's idle capacity in each hour over that hour's
/// allocation rows, exactly, by the domain's rule.
fn share_idle(rows: &[HourlyRow]) -> Vec<HourlyRow> {
    let all = [
        Dimension::Cluster,
        Dimension::Namespace,
        Dimension::Team,
        Dimension::Workload,
        Dimension::Node,
        Dimension::Model,
        Dimension::CapacityType,
    ];
    let span =
        Span::new(rows.iter().map(|r| r.hour).min().unwrap_or(0), rows.iter().map(|r| r.hour).max().unwrap_or(0) + 1);
    usage::aggregate(rows, &all, true, Some((span, MS_PER_HOUR))).into_iter().map(back_to_hourly).collect()
}

fn back_to_hourly(row: AllocationRow) -> HourlyRow {
    let idle = row.idle;
    HourlyRow {
        hour: row.bucket.unwrap_or_default(),
        key: UsageKey {
            cluster: row.cluster.unwrap_or_default(),
            namespace: if idle { String::new() } else { row.namespace.unwrap_or_default() },
            team: row.team.filter(|t| !t.is_empty() && !idle),
            workload: if idle { IDLE.to_string() } else { row.workload.unwrap_or_default() },
            node: row.node.unwrap_or_default(),
            model: row.model.unwrap_or_default(),
            capacity_type: row.capacity_type.unwrap_or(CapacityType::Unknown),
        },
        usage: row.totals.usage,
    }
}

/// Idle rows are the cluster's, seen whole by those who see everything; a
/// team sees its own namespaces' rows.
fn visible(row: &HourlyRow, visibility: &Visibility) -> bool {
    if row.key.is_idle() {
        return visibility.is_everything();
    }
    visibility.namespace(&row.key.cluster, &row.key.namespace)
}

fn unpriced(rows: &[HourlyRow]) -> Vec<UnpricedTime> {
    let mut by_model: BTreeMap<(String, CapacityType), i64> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.usage.unpriced > 0) {
        *by_model.entry((row.key.model.clone(), row.key.capacity_type)).or_default() += row.usage.unpriced;
    }
    by_model
        .into_iter()
        .map(|((model, capacity_type), time)| UnpricedTime { model, capacity_type, gpu_hours: usage::gpu_hours(time) })
        .collect()
}

fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_string() };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

/// The report's rows as CSV with a header line.
pub fn to_csv(report: &AllocationReport) -> String {
    let mut out = String::from(
        "bucket,cluster,namespace,team,workload,node,model,capacity_type,idle,gpu_hours,cost_usd,spot_savings_usd,\
         idle_gpu_hours,idle_cost_usd,unpriced_gpu_hours,utilisation_percent,wasted_gpu_hours,wasted_cost_usd\n",
    );
    for row in &report.rows {
        let t = &row.totals;
        let text = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
        let fields = [
            row.bucket.map(|b| b.to_string()).unwrap_or_default(),
            text(&row.cluster),
            text(&row.namespace),
            text(&row.team),
            text(&row.workload),
            text(&row.node),
            text(&row.model),
            row.capacity_type.map(|c| c.label().to_string()).unwrap_or_default(),
            row.idle.to_string(),
            format!("{:.6}", t.gpu_hours),
            format!("{:.6}", t.cost.dollars()),
            format!("{:.6}", t.spot_savings.dollars()),
            format!("{:.6}", t.idle_gpu_hours),
            format!("{:.6}", t.idle_cost.dollars()),
            format!("{:.6}", t.unpriced_gpu_hours),
            t.utilisation_percent.map(|u| format!("{u:.2}")).unwrap_or_default(),
            format!("{:.6}", t.wasted_gpu_hours),
            format!("{:.6}", t.wasted_cost.dollars()),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}
