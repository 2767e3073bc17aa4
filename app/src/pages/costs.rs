//! GPU prices: everyone signed in reads them; global admins set them, with
//! the fleet's GPU models beside them so a missing price stands out. Team
//! budgets live on the team page ([`BudgetPanel`]).

use gantry_domain::cost::{BudgetView, GpuPrice, PriceList, price_of};
use gantry_domain::gpu::CapacityType;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::costs::{ClearBudget, DeletePrice, SetBudget, SetPrice, prices};
use crate::components::common::{Csrf, loaded, outcome};

#[component]
pub fn PricesPage() -> impl IntoView {
    let set = ServerAction::<SetPrice>::new();
    let delete = ServerAction::<DeletePrice>::new();
    let list = Resource::new(move || (set.version().get(), delete.version().get()), |_| prices());
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
                <table class="grid" data-testid="prices">
                    <thead>
                        <tr><th>"GPU model"</th><th>"Capacity"</th><th class="num">"Per GPU-hour"</th><th></th></tr>
                    </thead>
                    <tbody>
                        {page.prices.is_empty().then(|| view! {
                            <tr><td colspan="4" class="muted">"No prices yet."</td></tr>
                        })}
                        {page.prices.iter().map(|p: &GpuPrice| {
                            let (model, capacity) = (p.model.clone(), p.capacity_type.label());
                            view! {
                                <tr data-price=format!("{}/{}", p.model, capacity)>
                                    <td>{p.model.clone()}</td>
                                    <td>{capacity}</td>
                                    <td class="num">{p.usd_per_gpu_hour.label()}</td>
                                    <td>
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
            }
        })}
    }
}

/// A team's budget against what its GPUs cost now, and for its admins the
/// form that sets it. The page owns the actions, so a save reloads it.
#[component]
pub fn BudgetPanel(
    budget: BudgetView,
    can_manage: bool,
    set: ServerAction<SetBudget>,
    clear: ServerAction<ClearBudget>,
) -> impl IntoView {
    let rate = budget.rate.clone();
    let team_id = budget.team_id;
    let over = budget.over_budget();
    let current = budget.budget_usd_per_month;
    let percent = budget.percent_of_budget;
    view! {
        <section class="panel" data-testid="budget">
            <h2>"GPU budget"</h2>
            <dl class="facts">
                <dt>"Monthly budget"</dt>
                <dd data-testid="budget-amount">{current.map_or_else(|| "none".to_string(), |b| b.label())}</dd>
                <dt>"Cost now"</dt>
                <dd data-testid="cost-rate">{format!("{}/hour, {} GPUs", rate.usd_per_hour.label(), rate.gpus)}</dd>
                <dt>"A month at this rate"</dt>
                <dd data-testid="cost-month" class:over=over>
                    {rate.usd_per_month.label()}
                    {percent.map(|p| format!(" ({p:.0}% of the budget)"))}
                </dd>
            </dl>
            {over.then(|| view! { <p class="error" role="alert">"At the current rate this team spends more than its monthly budget."</p> })}
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
            })}
        </section>
    }
}
