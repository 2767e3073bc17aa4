//! GPU prices: everyone signed in reads them; global admins set them, with
//! the fleet's GPU models beside them so a missing price stands out. Team
//! budgets live on the team page ([`BudgetNow`], [`BudgetChart`], [`BudgetMonth`]).

use gantry_domain::cost::{BudgetView, GpuPrice, PriceList, price_of};
use gantry_domain::gpu::CapacityType;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::costs::{ClearBudget, DeletePrice, ImportPrices, SetBudget, SetClusterPrice, SetPrice, prices};
use crate::components::chart::{RangeBar, TimeSeries};
use crate::components::common::{Csrf, loaded, outcome};

#[component]
pub fn PricesPage() -> impl IntoView {
    let set = ServerAction::<SetPrice>::new();
    let delete = ServerAction::<DeletePrice>::new();
    let import = ServerAction::<ImportPrices>::new();
    let override_price = ServerAction::<SetClusterPrice>::new();
    let list = crate::loaded::load(
        move || (set.version().get(), delete.version().get(), import.version().get(), override_price.version().get()),
        |_| prices(),
    );
    view! {
        <Title text="GPU prices" />
        <h1>"GPU prices"</h1>
        <p class="muted">
            "US dollars per GPU-hour, per GPU model and capacity type. Team budgets and cost rates use them; "
            "GPUs on nodes of unknown capacity type are charged the on-demand price."
        </p>
        {loaded(list, move |page: PriceList| {
            let can_manage = page.can_manage;
            let unpriced: Vec<(String, CapacityType, i64)> = page
                .fleet
                .iter()
                .filter(|g| price_of(&page.prices, &g.model, g.capacity_type).is_none())
                .map(|g| (g.model.clone(), g.capacity_type, g.gpus))
                .collect();
            let models: Vec<String> = {
                let mut m: Vec<String> = page.fleet.iter().map(|g| g.model.clone()).collect();
                m.dedup();
                m
            };
            view! {
                <div class="table-scroll">
                <table class="grid" data-testid="prices">
                    <thead>
                        <tr><th>"GPU model"</th><th>"Capacity"</th><th class="num">"Per GPU-hour"</th><th></th></tr>
                    </thead>
                    <tbody>
                        {page.prices.is_empty().then(|| view! {
                            <tr><td colspan="4" class="muted">"No prices yet: until a global admin sets a price per GPU-hour for a model, its GPU time is left out of every cost and shown as unpriced."</td></tr>
                        })}
                        {page.prices.iter().map(|p: &GpuPrice| {
                            let (model, capacity) = (p.model.clone(), p.capacity_type.label());
                            view! {
                                <tr data-price=format!("{}/{}", p.model, capacity)>
                                    <td>{p.model.clone()}</td>
                                    <td>{capacity}</td>
                                    <td class="num">{p.usd_per_gpu_hour.label()}</td>
                                    <td>
                                        <a href=format!("/prices?history={}&capacity_type={capacity}", gantry_domain::view::encode(&model)) class="link">"History"</a>
                                        " "
                                        {can_manage.then(|| view! {
                                            <ActionForm action=delete attr:class="inline">
                                                <Csrf />
                                                <input type="hidden" name="model" value=model.clone() />
                                                <input type="hidden" name="capacity_type" value=capacity />
                                                <button type="submit" class="link">"Remove"</button>
                                            </ActionForm>
                                        })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
                {(!unpriced.is_empty()).then(|| view! {
                    <section class="panel warn" data-testid="unpriced">
                        <h2>"GPUs in the fleet without a price"</h2>
                        <ul>
                            {unpriced.into_iter().map(|(model, capacity, gpus)| view! {
                                <li>{format!("{model} ({}): {gpus} GPUs", capacity.label())}</li>
                            }).collect_view()}
                        </ul>
                    </section>
                })}
                {can_manage.then(|| view! {
                    <section class="panel" data-testid="set-price">
                        <h2>"Set a price"</h2>
                        <ActionForm action=set attr:class="inline">
                            <Csrf />
                            <input type="text" name="model" placeholder="GPU model, e.g. NVIDIA-H100-80GB-HBM3" list="fleet-models" required />
                            <datalist id="fleet-models">
                                {models.iter().map(|m| view! { <option value=m.clone()></option> }).collect_view()}
                            </datalist>
                            <select name="capacity_type">
                                <option value="on-demand">"on-demand"</option>
                                <option value="spot">"spot"</option>
                            </select>
                            <input type="text" name="usd_per_gpu_hour" placeholder="USD per GPU-hour, e.g. 2.49" inputmode="decimal" required />
                            <button type="submit">"Save price"</button>
                        </ActionForm>
                    </section>
                })}
                {outcome(set.value(), |_| "Price saved".to_string())}
                {outcome(delete.value(), |_| "Price removed".to_string())}
                {can_manage.then(|| view! {
                    <section class="panel" data-testid="cluster-price">
                        <h2>"A cluster's own price"</h2>
                        <p class="muted">"For a cluster with its own cost per GPU-hour (on-prem, a reserved contract): it wins over the price above there, from now on. An empty price ends it."</p>
                        <ActionForm action=override_price attr:class="inline">
                            <Csrf />
                            <input type="text" name="cluster" placeholder="cluster" required />
                            <input type="text" name="model" placeholder="GPU model" list="fleet-models" required />
                            <select name="capacity_type">
                                <option value="on-demand">"on-demand"</option>
                                <option value="spot">"spot"</option>
                            </select>
                            <input type="text" name="usd_per_gpu_hour" placeholder="USD per GPU-hour" inputmode="decimal" />
                            <button type="submit">"Save"</button>
                        </ActionForm>
                        {outcome(override_price.value(), |_| "Saved".to_string())}
                    </section>
                    <section class="panel" data-testid="import-prices">
                        <h2>"Import a price list"</h2>
                        <p class="muted">
                            "CSV with the header cluster,model,capacity_type,usd_per_gpu_hour (an empty cluster is the price for every cluster). It becomes the whole price list from now on: prices it leaves out are removed. A bad line is named and nothing changes."
                        </p>
                        <ActionForm action=import attr:class="stack">
                            <Csrf />
                            <textarea name="csv" rows="6" placeholder="cluster,model,capacity_type,usd_per_gpu_hour\n,NVIDIA-H100-80GB-HBM3,on-demand,4.00" required></textarea>
                            <button type="submit">"Import"</button>
                        </ActionForm>
                        {outcome(import.value(), |(set, removed): &(u64, u64)| format!("{set} prices set, {removed} removed"))}
                    </section>
                })}
                <p><a href="/api/v1/prices.csv" rel="external" data-testid="export-prices">"Download the price list as CSV"</a></p>
            }
        })}
        <PriceHistory />
    }
}

/// The changes of one price, newest first, when the URL names one
/// (`?history=MODEL&capacity_type=…`).
#[component]
fn PriceHistory() -> impl IntoView {
    use leptos_router::hooks::use_query_map;
    let params = use_query_map();
    let asked = Memo::new(move |_| {
        params.with(|p| {
            p.get("history")
                .map(|model| (model, p.get("capacity_type").unwrap_or_else(|| "on-demand".into()), p.get("cluster")))
        })
    });
    let history = crate::loaded::load(
        move || asked.get(),
        |asked| async move {
            match asked {
                Some((model, capacity, cluster)) => {
                    crate::api::costs::price_history(model, capacity, cluster).await.map(Some)
                }
                None => Ok(None),
            }
        },
    );
    view! {
        {loaded(history, |changes: Option<Vec<gantry_domain::cost::PriceChange>>| {
            changes.map(|changes| view! {
                <section class="panel" data-testid="price-history">
                    <h2>{changes.first().map(|c| format!("History of {} ({})", c.model, c.capacity_type.label())).unwrap_or_else(|| "No history".into())}</h2>
                    <table class="grid small">
                        <thead><tr><th>"From"</th><th class="num">"Per GPU-hour"</th></tr></thead>
                        <tbody>
                            {changes.iter().map(|c| view! {
                                <tr>
                                    <td>{crate::format::timestamp(c.effective_from)}</td>
                                    <td class="num">{c.usd_per_gpu_hour.map_or("removed".to_string(), |p| p.label())}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <p class="muted">"A change applies from its time on; the cost of earlier GPU time keeps the price it had."</p>
                </section>
            })
        })}
    }
}

/// A team's GPU budget now: the alerts this month raised, the budget, and
/// what the team's GPUs cost at this moment. The first part of the team
/// page's budget panel; [`BudgetChart`] and [`BudgetMonth`] follow it.
#[component]
pub fn BudgetNow(budget: BudgetView) -> impl IntoView {
    let rate = budget.rate.clone();
    let over = budget.over_budget();
    let current = budget.budget_usd_per_month;
    let percent = budget.percent_of_budget;
    view! {
        {budget.alerts.iter().map(|a| {
            let text = match a.kind.as_str() {
                "actual" => format!("This month's GPU spend has reached {}% of the budget.", a.percent),
                _ => format!("At the current rate this month's GPU spend will reach {}% of the budget.", a.percent),
            };
            let class = if a.percent < 100 { "warn" } else { "error" };
            view! { <p class=class role="alert" data-testid="budget-alert">{text}</p> }
        }).collect_view()}
        <dl class="facts">
            <dt>"Monthly budget"</dt>
            <dd data-testid="budget-amount">{current.map_or_else(|| "none".to_string(), |b| b.label())}</dd>
            <dt>"Cost now"</dt>
            <dd data-testid="cost-rate">{format!("{}/hour, {} GPUs", rate.usd_per_hour.label(), rate.gpus)}</dd>
            <dt>"A month at this rate"</dt>
            <dd data-testid="cost-month" class:over=over>
                {rate.usd_per_month.cents_label()}
                {of_budget(percent)}
            </dd>
        </dl>
        {over.then(|| view! { <p class="error" role="alert">"At the current rate this team spends more than its monthly budget."</p> })}
    }
}

/// ` (143% of the budget)` after an amount, or nothing without a budget.
fn of_budget(percent: Option<f64>) -> String {
    percent.map(|p| format!(" ({p:.0}% of the budget)")).unwrap_or_default()
}

/// The month's burn-up chart for a team. The page creates it outside its
/// own `loaded` part, from the team id in the URL: a chart (a resource)
/// created inside another resource's Suspense can be created twice while
/// the server renders, and the browser then finds another resource's value
/// under the chart's id, which is a hydration panic (leptos issue 4866).
#[component]
pub fn BudgetChart(#[prop(into)] team: Signal<i64>) -> impl IntoView {
    view! {
        <TimeSeries
            title="This month: spend so far, the budget (dotted), and the forecast at today's rate (dashed)"
            query=Signal::derive(move || gantry_domain::chart::SeriesQuery {
                chart: "budget".into(),
                team: team.get().to_string(),
                ..Default::default()
            })
            range_param="budget_range"
            height=200
            testid="chart-budget"
        />
    }
}

/// The month so far (spend from the ledger, the burn, the forecast), the
/// GPUs behind the cost rate, and for the team's admins the forms that set
/// the budget and where alerts are posted, with the deliveries that fail.
/// The page owns the budget actions, so a save reloads it.
#[component]
pub fn BudgetMonth(
    budget: BudgetView,
    can_manage: bool,
    set: ServerAction<SetBudget>,
    clear: ServerAction<ClearBudget>,
) -> impl IntoView {
    use crate::api::costs::SetWebhook;
    let webhook = ServerAction::<SetWebhook>::new();
    let month = budget.month.clone();
    let rate = budget.rate.clone();
    let team_id = budget.team_id;
    let current = budget.budget_usd_per_month;
    view! {
        <dl class="facts" data-testid="month">
            <dt>"Spent this month"</dt>
            <dd data-testid="month-spent">{format!("{}{}", month.spent.cents_label(), of_budget(month.percent_spent))}</dd>
            <dt>"Burn now"</dt>
            <dd>{format!("{}/hour", month.burn_per_hour.label())}</dd>
            <dt>"Forecast to month end"</dt>
            <dd data-testid="month-forecast">{format!("{}{}", month.forecast.cents_label(), of_budget(month.percent_forecast))}</dd>
        </dl>
        {(rate.unpriced_gpus > 0).then(|| view! {
            <p class="muted" data-testid="unpriced-gpus">
                {format!("{} GPUs have no price and are left out; see ", rate.unpriced_gpus)}
                <a href="/prices">"GPU prices"</a>"."
            </p>
        })}
        {(!rate.lines.is_empty()).then(|| view! {
            <table class="grid small">
                <thead><tr><th>"GPU model"</th><th>"Capacity"</th><th class="num">"GPUs"</th><th class="num">"Per GPU-hour"</th><th class="num">"Per hour"</th></tr></thead>
                <tbody>
                    {rate.lines.iter().map(|l| view! {
                        <tr>
                            <td>{l.model.clone()}</td>
                            <td>{l.capacity_type.label()}</td>
                            <td class="num">{l.gpus}</td>
                            <td class="num">{l.usd_per_gpu_hour.map_or_else(|| "no price".to_string(), |p| p.label())}</td>
                            <td class="num">{l.usd_per_hour.label()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
        {can_manage.then(|| view! {
            <ActionForm action=set attr:class="inline">
                <Csrf />
                <input type="hidden" name="team_id" value=team_id />
                <input type="text" name="usd_per_month" placeholder="USD per month, e.g. 25,000" inputmode="decimal" required />
                <button type="submit">"Set budget"</button>
            </ActionForm>
            {current.is_some().then(|| view! {
                <ActionForm action=clear attr:class="inline">
                    <Csrf />
                    <input type="hidden" name="team_id" value=team_id />
                    <button type="submit" class="link">"Remove budget"</button>
                </ActionForm>
            })}
            {outcome(set.value(), |_| "Budget saved".to_string())}
            {outcome(clear.value(), |_| "Budget removed".to_string())}
            <h3>"Alerts"</h3>
            <p class="muted">
                "At 80% and 100% of the budget, for the spend so far and for the forecast, once a month each: a banner here, an audit record, and a POST of JSON to this address if set."
            </p>
            <ActionForm action=webhook attr:class="inline">
                <Csrf />
                <input type="hidden" name="team_id" value=team_id />
                <input type="url" name="url" placeholder="https://hooks.example.com/gantry (empty removes it)" />
                <button type="submit">"Save webhook"</button>
            </ActionForm>
            <p class="muted" data-testid="webhook">
                {budget.webhook_host.clone().map_or("No webhook.".to_string(), |h| format!("Alerts are posted to {h}."))}
            </p>
            {outcome(webhook.value(), |_| "Webhook saved".to_string())}
            {(!budget.failing_deliveries.is_empty()).then(|| view! {
                <table class="grid small" data-testid="failing-deliveries">
                    <thead><tr><th>"Alert"</th><th class="num">"Attempts"</th><th>"Last error"</th><th>"Next try"</th></tr></thead>
                    <tbody>
                        {budget.failing_deliveries.iter().map(|d| view! {
                            <tr>
                                <td>{crate::format::timestamp(d.created_at)}</td>
                                <td class="num">{d.attempts}</td>
                                <td>{d.last_error.clone().unwrap_or_default()}</td>
                                <td>{crate::format::timestamp(d.next_attempt_at)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        })}
    }
}

/// What the GPUs cost over a window, by team (or namespace, workload,
/// model, cluster, capacity type; node for global admins): GPU-hours, cost,
/// spot savings, idle and waste. The question lives in the URL, so a view
/// can be shared; the form is a plain GET, so it works without JavaScript.
#[component]
pub fn CostsPage() -> impl IntoView {
    use gantry_domain::allocation::AllocationQuery;
    use leptos_router::hooks::use_query_map;
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| AllocationQuery {
            window: p.get("window").unwrap_or_else(|| "24h".into()),
            aggregate: p.get("aggregate").unwrap_or_else(|| "team".into()),
            step: p.get("step").unwrap_or_default(),
            share_idle: p.get("share_idle").is_some_and(|v| v == "true" || v == "on"),
            sort: p.get("sort").unwrap_or_default(),
            order: p.get("order").unwrap_or_default(),
            q: p.get("q").unwrap_or_default(),
            limit: p.get("limit").unwrap_or_default(),
            offset: p.get("offset").unwrap_or_default(),
        })
    });
    let report = crate::loaded::load(move || query.get(), crate::api::costs::allocation);
    view! {
        <Title text="GPU costs" />
        <h1>"GPU costs"</h1>
        <RangeBar param="window" default="24h" />
        <form method="get" class="inline filters" data-testid="costs-form">
            <input type="hidden" name="window" value=move || query.get().window />
            <label>"By "
                <select name="aggregate">
                    {move || {
                        let current = query.get().aggregate;
                        ["team", "namespace", "workload", "model", "cluster", "capacity_type", "team,model", "node"]
                            .into_iter()
                            .map(|value| view! { <option value=value selected=value == current>{value.replace(',', " and ").replace('_', " ")}</option> })
                            .collect_view()
                    }}
                </select>
            </label>
            <label class="check">
                <input type="checkbox" name="share_idle" value="true" prop:checked=move || query.get().share_idle />
                " share idle GPUs across teams"
            </label>
            <input type="hidden" name="sort" value=move || query.get().sort />
            <input type="hidden" name="order" value=move || query.get().order />
            <input type="text" name="q" placeholder="filter rows" prop:value=move || query.get().q />
            <button type="submit">"Show"</button>
        </form>
        <TimeSeries
            title=Signal::derive(move || format!("Spend per bucket, stacked by {}", query.get().aggregate.replace(',', " and ").replace('_', " ")))
            query=Signal::derive(move || gantry_domain::chart::SeriesQuery {
                chart: "spend".into(),
                by: query.get().aggregate,
                ..Default::default()
            })
            range_param="window"
            testid="chart-spend"
        />
        {loaded(report, move |r| render_report(r, query.get_untracked()))}
    }
}

fn render_report(
    report: gantry_domain::allocation::AllocationReport,
    query: gantry_domain::allocation::AllocationQuery,
) -> impl IntoView {
    use gantry_domain::allocation::{AllocationQuery, UtilisationState};
    use gantry_domain::usage::AllocationRow;
    let label = |row: &AllocationRow| {
        [&row.cluster, &row.team, &row.namespace, &row.workload, &row.node, &row.model]
            .iter()
            .filter_map(|v| v.as_deref())
            .map(|v| {
                if v.is_empty() {
                    "(no team)"
                } else if v == gantry_domain::usage::IDLE {
                    "idle"
                } else {
                    v
                }
            })
            .chain(row.capacity_type.map(|c| c.label()))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    // Sorted, filtered and paged by the server, so a month of thousands of
    // workloads is never sent whole; each group keeps its buckets together.
    let rows = report.rows.clone();
    let (sort, descending) =
        (if query.sort.is_empty() { "cost".to_string() } else { query.sort.clone() }, query.order != "asc");
    let totals = report.totals.clone();
    let csv = format!(
        "/api/v1/allocation.csv?{}",
        AllocationQuery { limit: String::new(), offset: String::new(), ..query.clone() }.to_query_string()
    );
    let link = |changed: AllocationQuery| format!("?{}", changed.to_query_string());
    let sort_link = |column: &'static str| {
        let order = if sort == column && descending { "asc" } else { "desc" };
        link(AllocationQuery { sort: column.into(), order: order.into(), offset: String::new(), ..query.clone() })
    };
    // Which column orders the table, for the arrow and for screen readers.
    let arrow = |column: &str| match (sort == column, descending) {
        (false, _) => "",
        (true, true) => " ▼",
        (true, false) => " ▲",
    };
    let aria_sort = |column: &str| match (sort == column, descending) {
        (false, _) => "none",
        (true, true) => "descending",
        (true, false) => "ascending",
    };
    let first = report.offset;
    let per_page = report.limit.unwrap_or(report.groups.max(1));
    let page_link = |offset: usize| link(AllocationQuery { offset: offset.to_string(), ..query.clone() });
    let previous = (first > 0).then(|| page_link(first.saturating_sub(per_page)));
    let next = (first + per_page < report.groups).then(|| page_link(first + per_page));
    let showing = if report.groups == 0 {
        String::new()
    } else {
        format!(
            "{}–{} of {} {}",
            (first + 1).min(report.groups),
            (first + per_page).min(report.groups),
            report.groups,
            if report.groups == 1 { "group" } else { "groups" }
        )
    };

    let utilisation = match &report.utilisation {
        UtilisationState::NotConfigured => {
            "Utilisation not configured (name a Prometheus on a cluster's page).".to_string()
        }
        UtilisationState::Unavailable(why) => format!("Utilisation unavailable: {why}"),
        UtilisationState::Known => totals
            .utilisation_percent
            .map_or("Utilisation: no samples in this window.".into(), |u| format!("Mean utilisation {u:.0}%")),
    };
    let window = format!(
        "{} → {} ({})",
        crate::format::date_time(report.start),
        crate::format::date_time(report.end),
        if report.resolution == "exact" { "exact" } else { "whole hours" }
    );
    view! {
        <p class="muted" data-testid="window">{window}</p>
        <section class="cards">
            <div class="card"><div class="big" data-testid="total-cost">{totals.cost.cents_label()}</div><div>"cost"</div></div>
            <div class="card"><div class="big">{format!("{:.1}", totals.gpu_hours)}</div><div>"GPU-hours held"</div></div>
            <div class="card"><div class="big">{totals.spot_savings.cents_label()}</div><div>"saved by spot"</div></div>
            <div class="card"><div class="big">{totals.idle_cost.cents_label()}</div><div>{format!("idle ({:.1} GPU-hours)", totals.idle_gpu_hours)}</div></div>
            <div class="card"><div class="big">{totals.wasted_cost.cents_label()}</div><div>{format!("wasted ({:.1} GPU-hours under 10% busy)", totals.wasted_gpu_hours)}</div></div>
        </section>
        <p class="muted" data-testid="utilisation">{utilisation}</p>
        {(!report.unpriced.is_empty()).then(|| view! {
            <p class="panel warn" data-testid="unpriced">
                {format!(
                    "No prices set for {}: their GPU time is left out of the cost. ",
                    report.unpriced.iter().map(|u| format!("{} {} ({:.1} GPU-hours)", u.model, u.capacity_type.label(), u.gpu_hours)).collect::<Vec<_>>().join(", ")
                )}
                <a href="/prices">"Set prices"</a>
            </p>
        })}
        {(!report.idle_shown).then(|| view! {
            <p class="muted">"Idle GPUs belong to the clusters; tick \"share idle\" to see your teams' share of them."</p>
        })}
        <div class="table-scroll">
            <table class="grid" data-testid="allocation">
                <thead>
                    <tr>
                        <th aria-sort=aria_sort("name")><a href=sort_link("name")>{report.aggregate.iter().map(|d| d.name().replace('_', " ")).collect::<Vec<_>>().join(" · ")}{arrow("name")}</a></th>
                        <th class="num" aria-sort=aria_sort("gpu_hours")><a href=sort_link("gpu_hours")>"GPU-hours"{arrow("gpu_hours")}</a></th>
                        <th class="num" aria-sort=aria_sort("cost")><a href=sort_link("cost")>"Cost"{arrow("cost")}</a></th>
                        <th class="num" aria-sort=aria_sort("savings")><a href=sort_link("savings")>"Spot savings"{arrow("savings")}</a></th>
                        <th class="num" aria-sort=aria_sort("idle")><a href=sort_link("idle")>"Idle"{arrow("idle")}</a></th>
                        <th class="num">"Utilisation"</th>
                        <th class="num" aria-sort=aria_sort("waste")><a href=sort_link("waste")>"Wasted"{arrow("waste")}</a></th>
                    </tr>
                </thead>
                <tbody>
                    {rows.is_empty().then(|| view! {
                        <tr><td colspan="7" class="muted">{if !query.q.trim().is_empty() {
                            format!("No group matches \"{}\" in this window.", query.q.trim())
                        } else if report.groups > 0 {
                            "No groups on this page: go back to the first.".to_string()
                        } else {
                            "No GPU time in this window. Rows appear once pods hold GPUs in namespaces you can see (the ledger records them as they run).".to_string()
                        }}</td></tr>
                    })}
                    {rows.iter().map(|row| {
                        let t = &row.totals;
                        view! {
                            <tr class:idle=row.idle>
                                <td>{label(row)}</td>
                                <td class="num">{format!("{:.2}", t.gpu_hours)}</td>
                                <td class="num">{t.cost.cents_label()}</td>
                                <td class="num">{t.spot_savings.cents_label()}</td>
                                <td class="num">{if t.idle_gpu_hours > 0.0 { format!("{} ({:.1} h)", t.idle_cost.cents_label(), t.idle_gpu_hours) } else { "—".into() }}</td>
                                <td class="num">{t.utilisation_percent.map_or("—".into(), |u| format!("{u:.0}%"))}</td>
                                <td class="num">{if t.wasted_gpu_hours > 0.0 { t.wasted_cost.cents_label() } else { "—".into() }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <p class="pager" data-testid="costs-pager">
            {previous.map(|href| view! { <a href=href data-testid="costs-previous">"← Previous"</a>" " })}
            <span class="muted" data-testid="costs-showing">{showing}</span>
            {next.map(|href| view! { " "<a href=href data-testid="costs-next">"Next →"</a> })}
        </p>
        <p><a href=csv data-testid="costs-csv" rel="external">"Download as CSV (every group)"</a></p>
    }
}
