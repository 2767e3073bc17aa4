//! Chart-ready series: one question ([`SeriesQuery`]) for every chart, its
//! buckets sized to the chart's width, its usage computed exactly and
//! scoped like every other read.
//!
//! Like the allocation query, a short recent range is computed from the
//! ledger's raw intervals (here at down to one-minute buckets, in one pass,
//! [`chart::accrue`]); anything longer from the hourly or daily rollups,
//! summed in SQL by bucket. Time nobody watched (a stale cluster, before
//! the cluster's history begins) comes back as gaps.

use std::collections::{BTreeMap, BTreeSet};

use gantry_domain::allocation::UtilisationState;
use gantry_domain::chart::{
    self, Accrual, Accruals, Buckets, Chart, ChartKind, ChartRequest, Dash, Marker, Metric, Scope, SeriesQuery,
    SeriesStyle, Summary,
};
use gantry_domain::gpu::CapacityType;
use gantry_domain::policy::{Action, Target, Visibility};
use gantry_domain::series::{Frame, Series};
use gantry_domain::usage::{self, Dimension, Gap, MS_PER_DAY, MS_PER_HOUR, PriceBook, Span, UsageKey};
use gantry_domain::validate::{Invalid, KubeName, LabelName};
use gantry_store::{Sum, Tier, UsageFilter, UsageGroup, UsageQuestion, now_ms};

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

/// How a series is labelled when a chart is not split.
const UNSPLIT: &str = "GPUs in use";

/// Dimension values of a row, with the idle row labelled as idle.
fn row_label(group: &UsageGroup, by: &[Dimension]) -> String {
    if group.idle {
        return "idle".into();
    }
    let mut parts: Vec<String> = Vec::new();
    for dimension in Dimension::ALL.into_iter().filter(|d| by.contains(d)) {
        let value = match dimension {
            Dimension::Cluster => group.cluster.clone(),
            Dimension::Namespace => group.namespace.clone(),
            Dimension::Team => group.team.clone(),
            Dimension::Workload => group.workload.clone(),
            Dimension::Node => group.node.clone(),
            Dimension::Model => group.model.clone(),
            Dimension::CapacityType => group.capacity_type.map(|c| c.label().to_string()),
        };
        parts.push(value.unwrap_or_default());
    }
    if parts.is_empty() {
        return UNSPLIT.into();
    }
    chart::group_label(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

fn key_label(key: &UsageKey, by: &[Dimension]) -> String {
    if key.is_idle() {
        return "idle".into();
    }
    if by.is_empty() { UNSPLIT.into() } else { chart::key_label(key, by) }
}

/// Whether a row of `key` is the caller's to see: idle capacity is the
/// clusters', seen by those who see everything.
fn sees(visibility: &Visibility, key: &UsageKey) -> bool {
    if key.is_idle() { visibility.is_everything() } else { visibility.namespace(&key.cluster, &key.namespace) }
}

/// GPU time (milli-GPU-ms) with no price in `groups`, by GPU model and
/// capacity type; idle capacity is not charged to anyone, so not counted.
fn unpriced_of(groups: &[UsageGroup]) -> BTreeMap<(String, CapacityType), i64> {
    let mut unpriced: BTreeMap<(String, CapacityType), i64> = BTreeMap::new();
    for group in groups.iter().filter(|group| group.usage.unpriced > 0 && !group.idle) {
        let model = group.model.clone().unwrap_or_default();
        *unpriced.entry((model, group.capacity_type.unwrap_or_default())).or_default() += group.usage.unpriced;
    }
    unpriced
}

/// What a chart computes: per series key, usage per bucket and cluster.
struct Computed {
    accruals: Accruals<String>,
    known: BTreeMap<String, Vec<i64>>,
    /// GPU time (milli-GPU-ms) with no price, by GPU model and capacity type.
    unpriced: BTreeMap<(String, CapacityType), i64>,
}

impl AppState {
    /// The series of one chart, scoped to what the caller may see.
    pub async fn chart(&self, caller: &Caller, query: &SeriesQuery) -> Result<Chart> {
        self.authorize(caller, Action::ViewPrices, &Target::Global, &Audit::default()).await?;
        let now = now_ms();
        let (retention, rollup_retention) = (self.config.raw_retention_ms, self.config.rollup_retention_ms);
        // A workload's life is read from the ledger once the caller may see the workload.
        let life = query.range.trim() == chart::LIFE;
        let placeholder = SeriesQuery { range: String::new(), ..query.clone() };
        let mut request =
            chart::parse_request(if life { &placeholder } else { query }, now, retention, rollup_retention)?;
        let ownership = self.ownership().await?;
        match &request.scope {
            Scope::Visible => {}
            Scope::Cluster { cluster, node } => {
                self.authorize(caller, Action::ViewCluster, &ownership.cluster(cluster), &Audit::default()).await?;
                if let Some(node) = node {
                    KubeName::parse("node", node)?;
                }
            }
            Scope::Team(team) => {
                self.authorize(caller, Action::ViewNamespace, &Target::Team(*team), &Audit::default()).await?;
            }
            Scope::Workload { cluster, namespace, .. } => {
                LabelName::parse("namespace", namespace)?;
                let target = ownership.namespace(cluster, namespace);
                self.authorize(caller, Action::ViewNamespace, &target, &Audit::default()).await?;
            }
        }
        if life {
            let Scope::Workload { cluster, namespace, workload } = &request.scope else {
                return Err(Invalid::new("range", "life is the range of one workload's chart").into());
            };
            let (first, last) = self.store.workload_life(cluster, namespace, workload).await?;
            let range = chart::life_range(first, last);
            request = chart::parse_request(&SeriesQuery { range, ..query.clone() }, now, retention, rollup_retention)?;
        }
        let viewer = self.viewer(caller).await?;
        if request.by.contains(&Dimension::Node) && !viewer.visibility.is_everything() {
            return Err(ServiceError::forbidden(
                "a breakdown by node shows every team's pods on each node; it needs a global admin",
            ));
        }
        let mut chart = match request.kind {
            ChartKind::Spend | ChartKind::CostRate => self.breakdown_chart(&request, &viewer.visibility, now).await?,
            ChartKind::Gpus => self.gpus_chart(&request, &viewer.visibility, now).await?,
            ChartKind::Budget => self.budget_chart(caller, &request, now).await?,
            ChartKind::Workload | ChartKind::WorkloadCost => self.workload_chart(&request, now).await?,
        };
        if chart.empty.is_none() && chart.frame.series.iter().all(|s| s.values.iter().all(Option::is_none)) {
            chart.empty = Some("Nothing was recorded in this range: Gantry's history of these clusters begins later, or they were unreachable the whole time.".into());
        }
        if let (Visibility::Only(seen), Scope::Visible) = (&viewer.visibility, &request.scope)
            && seen.is_empty()
        {
            chart.empty = Some(if caller.principal.memberships.is_empty() {
                "You are not in a team yet, so there is nothing of yours to chart; a global admin can add you to one."
                    .into()
            } else {
                "Your teams have no namespaces yet, so there is nothing of theirs to chart; a global admin maps namespaces to teams on each team's page."
                    .into()
            });
        }
        Ok(chart)
    }

    /// The clusters a chart about everything visible covers: every
    /// registered one, or those where the caller's teams have namespaces
    /// (whether or not they are registered now: their history remains).
    fn visible_clusters(&self, visibility: &Visibility) -> Vec<String> {
        match visibility {
            Visibility::Everything => self.hub.names().into_iter().collect(),
            Visibility::Only(seen) => seen.keys().cloned().collect(),
        }
    }

    /// Usage per bucket from the raw intervals of `clusters` (or of one
    /// workload), grouped by `group`.
    async fn raw_usage(
        &self,
        request: &ChartRequest,
        clusters: &[String],
        workload: Option<(&str, &str, &str)>,
        with_capacity: bool,
        group: impl Fn(&UsageKey) -> Option<String>,
    ) -> Result<Computed> {
        let now = request.now;
        let buckets = Buckets::new(request.span, request.step);
        let span = request.span;
        let prices = PriceBook::new(self.store.price_points().await?);
        let (mut allocations, mut capacity, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
        for cluster in clusters {
            match workload {
                Some((c, namespace, name)) => {
                    allocations.extend(self.store.workload_allocations(span, c, namespace, name).await?)
                }
                None => allocations.extend(self.store.allocations_overlapping(span, Some(cluster)).await?),
            }
            if with_capacity {
                capacity.extend(self.store.capacity_overlapping(span, Some(cluster)).await?);
            }
            gaps.extend(self.store.gaps_overlapping(span, Some(cluster)).await?);
        }
        let since = self.history_begins(clusters).await?;
        let utilisation = usage::Utilisation::new(self.config.waste_threshold_percent);
        let mut unpriced: BTreeMap<(String, CapacityType), i64> = BTreeMap::new();
        for a in allocations.iter().filter(|a| group(&key_of(a)).is_some()) {
            let held = Span::new(a.start.max(span.start), a.end.unwrap_or(now).min(span.end).min(now));
            for (part, price) in prices.segments(&a.cluster, &a.model, a.capacity_type, held) {
                if price.is_none() {
                    *unpriced.entry((a.model.clone(), a.capacity_type)).or_default() +=
                        usage::gpu_time(a.milli_gpus, part.len());
                }
            }
        }
        let accruals = chart::accrue(buckets, &allocations, &capacity, &gaps, &prices, &utilisation, now, group);
        let known = chart::known_time(&buckets, clusters, &gaps, &since, &BTreeMap::new(), now);
        Ok(Computed { accruals, known, unpriced })
    }

    /// When each cluster's history begins: the earliest moment its ledger
    /// knows of, or now for a cluster it has not recorded yet. Before it, a
    /// chart has a gap, not zero GPUs.
    async fn history_begins(&self, clusters: &[String]) -> Result<BTreeMap<String, i64>> {
        let mut begins = self.store.history_begins(clusters).await?;
        for cluster in clusters {
            begins.entry(cluster.clone()).or_insert_with(now_ms);
        }
        Ok(begins)
    }

    /// Usage per bucket from the rollups (whole hours; whole days when the
    /// buckets are), grouped by `label`.
    async fn rolled_up_usage(
        &self,
        request: &ChartRequest,
        tier: Tier,
        clusters: &[String],
        dimensions: &[Dimension],
        filter: &UsageFilter,
        label: impl Fn(&UsageGroup) -> String,
    ) -> Result<Computed> {
        let buckets = Buckets::new(request.span, request.step);
        let tier = if tier == Tier::Hourly && request.step % MS_PER_DAY == 0 { Tier::Daily } else { tier };
        let span = Span::new(usage::bucket_start(request.span.start, MS_PER_HOUR), request.span.end);
        let mut dimensions = dimensions.to_vec();
        dimensions.push(Dimension::Cluster);
        // Spend and cost rate draw the cost alone: summing only it spares the
        // database ten sums over each of a month's thousands of rows.
        let sums: &[Sum] = match request.kind {
            ChartKind::Spend | ChartKind::CostRate => &[Sum::Cost],
            _ => &Sum::ALL,
        };
        let question = UsageQuestion { tier, span, by: &dimensions, bucket_ms: Some(request.step), filter };
        let groups = self.store.usage_sums(question, sums).await?;
        // Time without a price is told by GPU model and capacity type: asked
        // apart, over the whole span, so that the series need not be split
        // by them (which multiplies the rows read by the models in use).
        let whole = if tier == Tier::HourlyNodes { tier } else { Tier::Daily };
        let by_price = [Dimension::Model, Dimension::CapacityType];
        let question = UsageQuestion { tier: whole, span, by: &by_price, bucket_ms: None, filter };
        let unpriced = unpriced_of(&self.store.usage_sums(question, &[Sum::Unpriced]).await?);
        self.usage_of_groups(request, buckets, clusters, groups, unpriced, label).await
    }

    async fn usage_of_groups(
        &self,
        request: &ChartRequest,
        buckets: Buckets,
        clusters: &[String],
        groups: Vec<UsageGroup>,
        unpriced: BTreeMap<(String, CapacityType), i64>,
        label: impl Fn(&UsageGroup) -> String,
    ) -> Result<Computed> {
        let now = request.now;
        let mut accruals = Accruals::new(buckets);
        for group in &groups {
            let at = group.bucket.unwrap_or(request.span.start).max(request.span.start);
            let Some(index) = buckets.index(at) else { continue };
            let cluster = group.cluster.clone().unwrap_or_default();
            accruals.add_bucket(label(group), &cluster, index, &Accrual { usage: group.usage, pod_ms: 0 });
        }
        let gaps: Vec<Gap> = self.store.gaps_overlapping(request.span, None).await?;
        let since = self.history_begins(clusters).await?;
        // The current hour's rollup counts up to its last pass, not to now.
        let reach = self.store.rollups_reach(clusters).await?;
        let known = chart::known_time(&buckets, clusters, &gaps, &since, &reach, now);
        Ok(Computed { accruals, known, unpriced })
    }

    /// Spend or cost rate, split as asked, stacked.
    async fn breakdown_chart(&self, request: &ChartRequest, visibility: &Visibility, now: i64) -> Result<Chart> {
        let clusters = self.visible_clusters(visibility);
        let by = request.by.clone();
        let computed = if request.raw {
            let everything = visibility.is_everything();
            let (visibility, by) = (visibility.clone(), by.clone());
            let group = move |key: &UsageKey| sees(&visibility, key).then(|| key_label(key, &by));
            self.raw_usage(request, &clusters, None, everything, group).await?
        } else {
            let by_node = by.contains(&Dimension::Node);
            let tier = if by_node { Tier::HourlyNodes } else { Tier::Hourly };
            let mut filter = UsageFilter::default();
            if let Visibility::Only(seen) = visibility {
                filter.namespaces = Some(
                    seen.iter().flat_map(|(c, names)| names.iter().map(move |n| (c.clone(), n.clone()))).collect(),
                );
            }
            let by_for_label = by.clone();
            self.rolled_up_usage(request, tier, &clusters, &by, &filter, move |g| row_label(g, &by_for_label)).await?
        };
        let metric = if request.kind == ChartKind::Spend { Metric::Cost } else { Metric::CostRate };
        let series: Vec<Series> = computed
            .accruals
            .keys()
            .into_iter()
            .map(|key| Series { values: chart::values(&computed.accruals, &key, metric, &computed.known), name: key })
            .collect();
        let rank = |s: &Series| s.values.iter().flatten().sum::<f64>();
        let mut series = chart::keep_largest(series, chart::MOST_SERIES, rank, chart::OTHER);
        // Largest at the bottom of the stack; idle and the rest on top.
        series.sort_by(|a, b| {
            let last = |s: &Series| s.name == "idle" || s.name == chart::OTHER;
            last(a).cmp(&last(b)).then(rank(b).total_cmp(&rank(a)))
        });
        let styles = (0..series.len()).map(|i| SeriesStyle { color: i as u8, dash: Dash::Solid }).collect();
        let mut out = self.answer(request, &computed, series, styles, now);
        out.stacked = true;
        out.summary = if request.kind == ChartKind::Spend { Summary::Total } else { Summary::Latest };
        if out.frame.series.is_empty() {
            out.empty = Some(
                "No GPU time in this range in the namespaces you can see: series appear once pods hold GPUs (the ledger records them as they run).".into(),
            );
        }
        Ok(out)
    }

    /// GPUs on offer, allocated and (where measured) utilised.
    async fn gpus_chart(&self, request: &ChartRequest, visibility: &Visibility, now: i64) -> Result<Chart> {
        let (clusters, node) = match &request.scope {
            Scope::Cluster { cluster, node } => (vec![cluster.clone()], node.clone()),
            _ => (self.visible_clusters(visibility), None),
        };
        let by = request.by.clone();
        let label = move |values: Vec<String>| {
            if values.is_empty() { "GPUs".to_string() } else { values.join(" · ") }
        };
        let pick = |by: &[Dimension], cluster: &str, model: &str, capacity: CapacityType| -> Vec<String> {
            let mut parts = Vec::new();
            for dimension in Dimension::ALL.into_iter().filter(|d| by.contains(d)) {
                match dimension {
                    Dimension::Cluster => parts.push(cluster.to_string()),
                    Dimension::Model => parts.push(if model.is_empty() { "unknown".into() } else { model.to_string() }),
                    Dimension::CapacityType => parts.push(capacity.label().to_string()),
                    _ => {}
                }
            }
            parts
        };
        let computed = if request.raw {
            let (by, node) = (by.clone(), node.clone());
            let group = move |key: &UsageKey| {
                if node.as_ref().is_some_and(|n| *n != key.node) {
                    return None;
                }
                Some(label(pick(&by, &key.cluster, &key.model, key.capacity_type)))
            };
            self.raw_usage(request, &clusters, None, true, group).await?
        } else {
            let by_label = by.clone();
            let to_label = move |g: &UsageGroup| {
                label(pick(
                    &by_label,
                    g.cluster.as_deref().unwrap_or_default(),
                    g.model.as_deref().unwrap_or_default(),
                    g.capacity_type.unwrap_or_default(),
                ))
            };
            match &node {
                Some(node) => {
                    let buckets = Buckets::new(request.span, request.step);
                    let span = Span::new(usage::bucket_start(request.span.start, MS_PER_HOUR), request.span.end);
                    let rows = self.store.node_hours(&clusters[0], node, span).await?;
                    let unpriced = unpriced_of(&rows);
                    self.usage_of_groups(request, buckets, &clusters, rows, unpriced, to_label).await?
                }
                None => {
                    // Not split by node: the namespace rollups hold the same
                    // sums per model (idle capacity as rows of its own) in a
                    // tenth of the rows of the node rollups.
                    let filter = UsageFilter { clusters: Some(clusters.clone()), ..Default::default() };
                    let tier = if by.contains(&Dimension::Node) { Tier::HourlyNodes } else { Tier::Hourly };
                    self.rolled_up_usage(request, tier, &clusters, &by, &filter, to_label).await?
                }
            }
        };
        let state = self.utilisation_state().await?;
        let mut series = Vec::new();
        let mut styles = Vec::new();
        for (i, key) in computed.accruals.keys().into_iter().enumerate() {
            let color = i as u8;
            let values = |metric| chart::values(&computed.accruals, &key, metric, &computed.known);
            let name = |what: &str| if key == "GPUs" { what.to_string() } else { format!("{key} {what}") };
            series.push(Series { name: name("capacity"), values: values(Metric::Capacity) });
            styles.push(SeriesStyle { color, dash: Dash::Dashed });
            series.push(Series { name: name("allocated"), values: values(Metric::Allocated) });
            styles.push(SeriesStyle { color, dash: Dash::Solid });
            let utilised = values(Metric::Utilised);
            if utilised.iter().any(Option::is_some) {
                series.push(Series { name: name("utilised"), values: utilised });
                styles.push(SeriesStyle { color, dash: Dash::Dotted });
            }
        }
        let mut out = self.answer(request, &computed, series, styles, now);
        out.notes.retain(|n| !n.starts_with("No prices"));
        match state {
            UtilisationState::NotConfigured => out.notes.push(
                "Utilisation not configured: name a Prometheus on a cluster's page to see how busy allocated GPUs are."
                    .into(),
            ),
            UtilisationState::Unavailable(why) => out.notes.push(format!("Utilisation unavailable: {why}")),
            UtilisationState::Known if request.raw => out
                .notes
                .push("Utilisation is measured per hour: choose a range longer than two days to see it.".into()),
            UtilisationState::Known => {}
        }
        if out.frame.series.is_empty() {
            out.empty = Some(match (&request.scope, node) {
                (_, Some(node)) => format!("Node {node} offered no GPUs in this range."),
                (Scope::Cluster { cluster, .. }, None) => format!("Cluster {cluster} had no GPU nodes in this range."),
                _ => "No GPU nodes in the clusters you can see in this range.".into(),
            });
        }
        Ok(out)
    }

    /// A team's month: spend so far, its budget, the forecast.
    async fn budget_chart(&self, caller: &Caller, request: &ChartRequest, now: i64) -> Result<Chart> {
        let Scope::Team(team_id) = request.scope else {
            return Err(ServiceError::invalid("a budget chart is about a team"));
        };
        let view = self.team_budget(caller, team_id).await?;
        let ownership = self.ownership().await?;
        let clusters: Vec<String> =
            ownership.namespaces_of(team_id).map(|(c, _)| c.to_string()).collect::<BTreeSet<_>>().into_iter().collect();
        let filter = UsageFilter { teams: Some(vec![view.team.clone()]), ..Default::default() };
        let request = ChartRequest { raw: false, ..request.clone() };
        let computed =
            self.rolled_up_usage(&request, Tier::Hourly, &clusters, &[], &filter, |_| "spent".into()).await?;
        let spent = chart::values(&computed.accruals, &"spent".to_string(), Metric::Cost, &BTreeMap::new());
        let budget = view.budget_usd_per_month.map(|b| b.dollars());
        let frame =
            chart::budget_frame(computed.accruals.buckets(), &spent, budget, view.month.burn_per_hour.dollars(), now);
        let mut styles =
            vec![SeriesStyle { color: 0, dash: Dash::Solid }, SeriesStyle { color: 0, dash: Dash::Dashed }];
        if budget.is_some() {
            styles.push(SeriesStyle { color: 3, dash: Dash::Dotted });
        }
        let mut notes = unpriced_notes(&computed.unpriced);
        if budget.is_none() {
            notes.push("This team has no monthly budget: its team admins can set one below.".into());
        }
        Ok(Chart {
            chart: request.kind,
            start: request.span.start,
            end: request.span.end,
            step: request.step,
            now,
            resolution: "hourly".into(),
            frame,
            styles,
            stacked: false,
            summary: Summary::Latest,
            markers: Vec::new(),
            notes,
            empty: None,
        })
    }

    /// One workload's GPUs and pods, or its cost, with markers at its
    /// revisions and at the changes Gantry made to it.
    async fn workload_chart(&self, request: &ChartRequest, now: i64) -> Result<Chart> {
        let Scope::Workload { cluster, namespace, workload } = &request.scope else {
            return Err(ServiceError::invalid("a workload chart is about a workload"));
        };
        let clusters = vec![cluster.clone()];
        let computed = if request.raw {
            let place = Some((cluster.as_str(), namespace.as_str(), workload.as_str()));
            self.raw_usage(request, &clusters, place, false, |_| Some(String::new())).await?
        } else {
            let filter = UsageFilter {
                namespaces: Some(vec![(cluster.clone(), namespace.clone())]),
                workload: Some(workload.clone()),
                ..Default::default()
            };
            self.rolled_up_usage(request, Tier::Hourly, &clusters, &[], &filter, |_| String::new()).await?
        };
        let key = String::new();
        let values = |metric| chart::values(&computed.accruals, &key, metric, &computed.known);
        let (series, styles) = if request.kind == ChartKind::Workload {
            let mut series = vec![Series { name: "GPUs held".into(), values: values(Metric::Allocated) }];
            let mut styles = vec![SeriesStyle { color: 0, dash: Dash::Solid }];
            if request.raw {
                series.push(Series { name: "pods holding GPUs".into(), values: values(Metric::Pods) });
                styles.push(SeriesStyle { color: 1, dash: Dash::Dashed });
            }
            (series, styles)
        } else {
            (vec![Series { name: "cost".into(), values: values(Metric::Cost) }], vec![SeriesStyle::default()])
        };
        let mut out = self.answer(request, &computed, series, styles, now);
        out.summary = if request.kind == ChartKind::Workload { Summary::Latest } else { Summary::Total };
        if request.kind == ChartKind::Workload && !request.raw {
            out.notes.push(
                "Pods are counted from the raw ledger, kept for the last 35 days; older ranges show GPUs only.".into(),
            );
        }
        out.markers = self.workload_markers(cluster, namespace, workload, request.span).await;
        if computed.accruals.keys().is_empty() {
            out.empty = Some(format!(
                "{workload} held no GPUs in this range: the ledger records pods that hold GPUs, from when they are bound to a node."
            ));
        }
        Ok(out)
    }

    /// Revisions (from the ReplicaSets) and the changes Gantry's audit log
    /// recorded, within `span`. Best effort: a chart is still drawn when the
    /// cluster does not answer.
    async fn workload_markers(&self, cluster: &str, namespace: &str, workload: &str, span: Span) -> Vec<Marker> {
        let mut markers = Vec::new();
        let (kind, name) = workload.split_once('/').unwrap_or(("", workload));
        if kind == "Deployment"
            && let (Ok(ns), Ok(deployment), Ok(cache)) =
                (LabelName::parse("namespace", namespace), KubeName::parse("name", name), self.cluster(cluster))
            && let Ok((_, revisions)) = gantry_cluster::actions::history(&cache, &ns, &deployment).await
        {
            for r in revisions {
                let Some(at) = rfc3339_ms(&r.created) else { continue };
                let image = r.images().join(", ");
                markers.push(Marker { at, label: format!("revision {}: {image}", r.revision) });
            }
        }
        let object = format!("{}/{}", kind.to_ascii_lowercase(), name);
        let filter = gantry_store::AuditFilter {
            from: Some(span.start),
            to: Some(span.end),
            limit: Some(2000),
            ..Default::default()
        };
        if let Ok(records) = self.store.audit(&filter).await {
            for r in records.into_iter().filter(|r| {
                r.cluster.as_deref() == Some(cluster)
                    && r.namespace.as_deref() == Some(namespace)
                    && r.object.as_deref() == Some(object.as_str())
                    && r.result == gantry_store::AuditResult::Ok
            }) {
                let verb = r.action.rsplit('.').next().unwrap_or(&r.action).to_string();
                let change = match (&r.before, &r.after) {
                    (Some(before), Some(after)) => format!(" {before} → {after}"),
                    (None, Some(after)) => format!(" {after}"),
                    _ => String::new(),
                };
                markers.push(Marker { at: r.at, label: format!("{verb}{change} by {}", r.actor) });
            }
        }
        markers.retain(|m| span.contains(m.at));
        markers.sort_by_key(|m| m.at);
        markers
    }

    /// The chart around `series`, with the notes its computation left.
    fn answer(
        &self,
        request: &ChartRequest,
        computed: &Computed,
        series: Vec<Series>,
        styles: Vec<SeriesStyle>,
        now: i64,
    ) -> Chart {
        let buckets = computed.accruals.buckets();
        Chart {
            chart: request.kind,
            start: request.span.start,
            end: request.span.end,
            step: request.step,
            now,
            resolution: if request.raw { "exact" } else { "hourly" }.into(),
            frame: Frame { times: buckets.times(), series, unit: request.kind.unit() },
            styles,
            stacked: false,
            summary: Summary::Latest,
            markers: Vec::new(),
            notes: unpriced_notes(&computed.unpriced),
            empty: None,
        }
    }
}

fn unpriced_notes(unpriced: &BTreeMap<(String, CapacityType), i64>) -> Vec<String> {
    let which: Vec<String> = unpriced
        .iter()
        .filter(|(_, time)| **time > 0)
        .map(|((model, capacity), time)| {
            let model = if model.is_empty() { "an unknown GPU model" } else { model.as_str() };
            format!("{model} ({}, {} GPU-hours)", capacity.label(), gpu_hours_label(usage::gpu_hours(*time)))
        })
        .collect();
    if which.is_empty() {
        return Vec::new();
    }
    vec![format!("No prices set for {}: that GPU time is left out of the cost.", which.join(", "))]
}

fn gpu_hours_label(hours: f64) -> String {
    if hours >= 10.0 {
        format!("{hours:.0}")
    } else if hours >= 0.01 {
        format!("{hours:.2}")
    } else {
        "under 0.01".into()
    }
}

fn rfc3339_ms(text: &str) -> Option<i64> {
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The key an allocation interval's usage is kept under.
fn key_of(interval: &usage::AllocationInterval) -> UsageKey {
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

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_domain::usage::IDLE;

    #[test]
    fn rows_are_labelled_like_the_costs_table() {
        let group = |team: Option<&str>, idle: bool| UsageGroup {
            bucket: None,
            cluster: Some("prod".into()),
            namespace: None,
            team: team.map(str::to_string),
            workload: None,
            node: None,
            model: Some("H100".into()),
            capacity_type: Some(CapacityType::Spot),
            idle,
            usage: Default::default(),
        };
        assert_eq!(row_label(&group(Some("vision"), false), &[Dimension::Team]), "vision");
        assert_eq!(row_label(&group(Some(""), false), &[Dimension::Team]), "(no team)");
        assert_eq!(row_label(&group(Some(IDLE), true), &[Dimension::Team]), "idle");
        assert_eq!(row_label(&group(Some("vision"), false), &[Dimension::Model, Dimension::Team]), "vision · H100");
        assert_eq!(row_label(&group(Some("vision"), false), &[]), UNSPLIT);
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(rfc3339_ms("yesterday"), None);
    }
}
