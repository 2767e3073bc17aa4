use gantry_domain::health::{UnhealthyWorkload, WorkloadKind};
use gantry_domain::view::{Overview, ResourceKind};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::fleet::fleet_overview;
use crate::components::chart::{RangeBar, TimeSeries};
use crate::components::common::{GpuBar, loaded};
use crate::components::preparation::PreparationBanner;
use crate::live::use_live;

/// Live changes that move the fleet's GPU charts.
const FLEET_CHANGES: &[ResourceKind] = &[ResourceKind::Node, ResourceKind::Pod];

#[component]
pub fn OverviewPage() -> impl IntoView {
    let live = use_live();
    let data = crate::loaded::load(
        move || {
            live.version(&[
                ResourceKind::Cluster,
                ResourceKind::Node,
                ResourceKind::Pod,
                ResourceKind::Job,
                ResourceKind::Deployment,
            ])
        },
        |_| fleet_overview(),
    );
    let gpus = gantry_domain::chart::SeriesQuery { chart: "gpus".into(), by: "model".into(), ..Default::default() };
    let cost =
        gantry_domain::chart::SeriesQuery { chart: "cost_rate".into(), by: "model".into(), ..Default::default() };
    view! {
        <Title text="Overview" />
        <h1>"Fleet overview"</h1>
        <PreparationBanner />
        <NoTeamNote />
        {loaded(data, render)}
        <section class="charts" data-testid="overview-charts">
            <h2>"Over time"</h2>
            <RangeBar />
            <div class="chart-grid">
                <TimeSeries
                    title="GPUs by model: on offer (dashed), allocated, utilised (dotted)"
                    query=Signal::stored(gpus)
                    live=FLEET_CHANGES
                    testid="chart-gpus"
                />
                <TimeSeries
                    title="GPU cost per hour, by model"
                    query=Signal::stored(cost)
                    live=FLEET_CHANGES
                    testid="chart-cost-rate"
                />
            </div>
        </section>
    }
}

/// A signed-in user in no team sees nothing of any namespace: say so, and
/// who can change it, instead of a page of zeros.
#[component]
pub fn NoTeamNote() -> impl IntoView {
    let session = crate::Session::use_context();
    // Under a Suspense: read outside one, the session may still be loading
    // while the server renders, and the note would be missing.
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let me = session.me.await.ok().flatten()?;
                (me.teams.is_empty() && !me.global_admin).then(|| {
                    view! {
                        <p class="panel warn" data-testid="no-team">
                            "You are not in a team yet, so no namespaces, workloads or costs are yours to see; a global admin can add you to one. "
                            <A href="/teams">"See the teams"</A>
                        </p>
                    }
                })
            })}
        </Transition>
    }
}

/// Workloads that need a person: crash-looping, OOM-killed in the last hour,
/// not available past their progress deadline, or with evicted pods.
#[component]
fn UnhealthyPanel(workloads: Vec<UnhealthyWorkload>) -> impl IntoView {
    let healthy = workloads.is_empty();
    view! {
        <section class=if healthy { "panel" } else { "panel warn" } data-testid="unhealthy">
            <h2>{if healthy { "Unhealthy workloads: none".to_string() } else { format!("Unhealthy workloads: {}", workloads.len()) }}</h2>
            {if healthy {
                view! { <p class="muted">"Nothing is crash-looping, OOM-killed in the last hour, short of replicas past its progress deadline or evicted in the namespaces you can see."</p> }.into_any()
            } else {
                let rows = workloads
                    .into_iter()
                    .map(|w| {
                        let href = match w.kind {
                            WorkloadKind::Deployment => Some(format!("/clusters/{}/namespaces/{}/deployments/{}", w.cluster, w.namespace, w.name)),
                            WorkloadKind::Job => Some(format!("/clusters/{}/namespaces/{}/jobs/{}", w.cluster, w.namespace, w.name)),
                            WorkloadKind::Pod => None,
                        };
                        let href = href.unwrap_or_else(|| format!("/pods?q={}", w.name));
                        let label = w.name.clone();
                        let name = view! { <A href=href>{label}</A> };
                        view! {
                            <tr data-workload=w.name.clone()>
                                <td>
                                    {name}
                                    <div class="muted small">{format!("{:?} · {}/{}", w.kind, w.cluster, w.namespace)}</div>
                                </td>
                                <td>
                                    {w.troubles.iter().map(|t| view! { <span class="badge trouble" data-trouble=format!("{t:?}")>{t.label()}</span> }).collect_view()}
                                </td>
                                <td>{w.restarts}</td>
                                <td class="small">{w.detail.clone()}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <div class="table-scroll">
                        <table class="grid">
                            <thead>
                                <tr>
                                    <th>"Workload"</th>
                                    <th>"Trouble"</th>
                                    <th>"Restarts"</th>
                                    <th>"What the kubelet says"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

fn render(o: Overview) -> impl IntoView {
    let free = o.gpu_capacity - o.gpu_allocated;
    view! {
        <section class="cards">
            <div class="card">
                <div class="big" data-testid="clusters-count">{o.clusters.len()}</div>
                <div>"clusters"</div>
            </div>
            <div class="card">
                <div class="big">{o.nodes}</div>
                <div>"nodes"</div>
            </div>
            <div class="card">
                <div class="big" data-testid="gpu-allocated">{format!("{}/{}", o.gpu_allocated, o.gpu_capacity)}</div>
                <div>{format!("GPUs allocated · {free} free")}</div>
            </div>
            <div class="card">
                <div class="big">
                    <A href="/pending?status=gpu">{o.pending_gpu_pods}</A>
                </div>
                <div>"GPU pods pending"</div>
            </div>
            <div class="card">
                <div class="big">
                    <A href="/jobs?status=running">{o.running_jobs}</A>
                </div>
                <div>"jobs running"</div>
            </div>
            <div class="card">
                <div class="big">
                    <A href="/workloads">{format!("{}/{}", o.deployments_ready, o.deployments)}</A>
                </div>
                <div>"deployments ready"</div>
            </div>
            <div class="card">
                <div class="big" data-testid="cost-rate">
                    <A href="/prices">{format!("{}/h", o.cost.usd_per_hour.label())}</A>
                </div>
                <div>
                    {format!("GPU cost now · {} a month at this rate", o.cost.usd_per_month.cents_label())}
                    {(o.cost.unpriced_gpus > 0).then(|| format!(" · {} GPUs without a price", o.cost.unpriced_gpus))}
                </div>
            </div>
        </section>
        <UnhealthyPanel workloads=o.unhealthy />
        <h2>"GPUs by model"</h2>
        <div class="table-scroll">
        <table class="grid" data-testid="gpu-models">
            <thead>
                <tr>
                    <th>"Model"</th>
                    <th>"Nodes"</th>
                    <th>"Allocated"</th>
                    <th>"Free"</th>
                    <th>"Spot"</th>
                    <th>"On-demand"</th>
                </tr>
            </thead>
            <tbody>
                {o.gpu_models.is_empty().then(|| view! {
                    <tr><td colspan="6" class="muted">"No GPU nodes in the clusters you can see. Nodes appear here once a registered cluster has nodes with NVIDIA GPUs (nvidia.com/gpu)."</td></tr>
                })}
                {o
                    .gpu_models
                    .into_iter()
                    .map(|m| {
                        view! {
                            <tr>
                                <td>{m.model.clone()}</td>
                                <td>{m.nodes}</td>
                                <td>
                                    <GpuBar allocated=m.allocated total=m.allocatable />
                                </td>
                                <td>{m.free}</td>
                                <td>{m.spot_gpus}</td>
                                <td>{m.on_demand_gpus}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        </div>
        <h2>"Clusters"</h2>
        <crate::pages::clusters::ClusterTable clusters=o.clusters />
    }
}
