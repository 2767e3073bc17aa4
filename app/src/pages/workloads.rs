use gantry_domain::health;
use gantry_domain::view::{DeploymentRow, PodRow, ResourceKind};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::fleet::{deployments, pods};
use crate::components::common::{RolloutBadge, loaded};
use crate::components::table::{FilterBar, Pager, SortHeader, use_list_query};
use crate::format;
use crate::live::use_live;

pub fn deployment_href(cluster: &str, namespace: &str, name: &str) -> String {
    format!("/clusters/{cluster}/namespaces/{namespace}/deployments/{name}")
}

#[component]
pub fn WorkloadsPage() -> impl IntoView {
    let query = use_list_query();
    let live = use_live();
    let data = crate::loaded::load(
        move || {
            (query.get(), live.version(&[ResourceKind::Deployment, ResourceKind::ReplicaSet, ResourceKind::Autoscaler]))
        },
        |(query, _)| deployments(query),
    );
    view! {
        <Title text="Deployments" />
        <div class="heading">
            <h1>"Model deployments"</h1>
            <A href="/launch/deployment" attr:class="button">"Launch a deployment"</A>
        </div>
        <FilterBar query statuses=&["complete", "progressing", "failed"] />
        {loaded(data, move |page| {
            view! {
                <table class="grid" data-testid="deployments">
                    <thead>
                        <tr>
                            <SortHeader query column="name" label="Deployment" />
                            <th>"Team"</th>
                            <SortHeader query column="model" label="Model" />
                            <th>"Image"</th>
                            <SortHeader query column="ready" label="Ready" />
                            <SortHeader query column="gpus" label="GPUs" />
                            <th>"Revision"</th>
                            <th>"Rollout"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {page.items.is_empty().then(|| view! { <tr><td colspan="8" class="muted empty">"No deployments match. Without a filter, the model deployments in your teams' namespaces are listed here; \"Launch a deployment\" starts one."</td></tr> })}
                        {page.items.iter().map(deployment_row).collect_view()}
                    </tbody>
                </table>
                <Pager query page=page.page pages=page.pages() total=page.total />
            }
        })}
    }
}

fn deployment_row(d: &DeploymentRow) -> impl IntoView + use<> {
    let model = match (&d.model, &d.model_version) {
        (Some(m), Some(v)) => format!("{m} {v}"),
        (Some(m), None) => m.clone(),
        (None, Some(v)) => v.clone(),
        (None, None) => "—".into(),
    };
    let name = d.name.clone();
    let href = deployment_href(&d.cluster, &d.namespace, &d.name);
    let key = name.clone();
    view! {
        <tr data-deployment=key>
            <td>
                <A href=href>{name}</A>
                <div class="muted small">{format!("{}/{}", d.cluster, d.namespace)}</div>
            </td>
            <td>{d.team.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{model}</td>
            <td class="mono small">{d.image.clone()}</td>
            <td data-testid="ready">{format!("{}/{}", d.ready, d.desired)}</td>
            <td>
                {if d.gpus_per_replica > 0 {
                    format!("{} × {}{}", d.desired, d.gpus_per_replica, d.gpu_model.as_ref().map(|m| format!(" {m}")).unwrap_or_default())
                } else {
                    "—".into()
                }}
            </td>
            <td>{d.revision.map(|r| r.to_string()).unwrap_or_else(|| "—".into())}</td>
            <td>
                <RolloutBadge state=d.rollout.clone() />
                {d.troubles.iter().map(|t| view! { <span class="badge trouble" data-trouble=format!("{t:?}")>{t.label()}</span> }).collect_view()}
            </td>
        </tr>
    }
}

#[component]
pub fn PodsPage() -> impl IntoView {
    let query = use_list_query();
    let live = use_live();
    let data = crate::loaded::load(move || (query.get(), live.version(&[ResourceKind::Pod])), |(query, _)| pods(query));
    view! {
        <Title text="Pods" />
        <h1>"Pods"</h1>
        <FilterBar query statuses=&["Pending", "Running", "Succeeded", "Failed"] />
        {loaded(data, move |page| {
            view! {
                <table class="grid" data-testid="pods">
                    <thead>
                        <tr>
                            <SortHeader query column="name" label="Pod" />
                            <SortHeader query column="phase" label="Phase" />
                            <SortHeader query column="node" label="Node" />
                            <SortHeader query column="gpus" label="GPUs" />
                            <th>"Ready"</th>
                            <th>"Restarts"</th>
                            <SortHeader query column="created" label="Age" />
                        </tr>
                    </thead>
                    <tbody>
                        {page.items.is_empty().then(|| view! { <tr><td colspan="7" class="muted empty">"No pods match. Without a filter, every pod in your teams' namespaces is listed here."</td></tr> })}
                        {page.items.iter().map(pod_row).collect_view()}
                    </tbody>
                </table>
                <Pager query page=page.page pages=page.pages() total=page.total />
            }
        })}
    }
}

fn pod_row(p: &PodRow) -> impl IntoView + use<> {
    view! {
        <tr data-pod=p.name.clone()>
            <td>
                {p.name.clone()}
                <div class="muted small">{format!("{}/{}", p.cluster, p.namespace)}</div>
            </td>
            <td>
                <span class=format!("badge phase-{}", p.phase.to_lowercase())>{p.phase.clone()}</span>
                {p.health.waiting.clone().map(|w| view! { <span class="badge trouble" data-testid="waiting">{w}</span> })}
                {p.health.evicted.clone().map(|m| view! { <div class="muted small">{format!("Evicted: {m}")}</div> })}
                {p.reason.clone().map(|r| view! { <div class="muted small">{r}</div> })}
            </td>
            <td>
                {match p.node.clone() {
                    Some(node) => {
                        let href = format!("/clusters/{}/nodes/{}", p.cluster, node);
                        view! { <A href=href>{node}</A> }.into_any()
                    }
                    None => "—".into_any(),
                }}
            </td>
            <td>{p.gpus}</td>
            <td>{p.ready.clone()}</td>
            <td data-testid="restarts">
                {p.restarts}
                {p.health.last_termination.clone().map(|t| view! {
                    <div class="muted small" data-testid="last-termination">
                        {format!("last: {} {}", t.label(), format::ago(t.at))}
                    </div>
                })}
            </td>
            <td>{format::ago(p.created)}</td>
        </tr>
    }
}

/// Pods of one node, job or deployment.
#[component]
pub fn PodTable(pods: Vec<PodRow>) -> impl IntoView {
    view! {
        <table class="grid" data-testid="pod-table">
            <thead>
                <tr>
                    <th>"Pod"</th>
                    <th>"Phase"</th>
                    <th>"Node"</th>
                    <th>"GPUs"</th>
                    <th>"Ready"</th>
                    <th>"Restarts"</th>
                    <th>"Age"</th>
                </tr>
            </thead>
            <tbody>
                {pods.is_empty().then(|| view! { <tr><td colspan="7" class="muted empty">"No pods: they appear here as soon as their controller creates them."</td></tr> })}
                {pods.iter().map(pod_row).collect_view()}
            </tbody>
        </table>
    }
}

/// A workload's health in one line (what the overview's unhealthy panel
/// would say about it), and its pods' recent restarts with their reasons,
/// newest first.
#[component]
pub fn HealthLine(
    pods: Vec<PodRow>,
    /// The Deployment's ProgressDeadlineExceeded message (empty: none).
    #[prop(optional, into)]
    rollout_failed: String,
) -> impl IntoView {
    let now = format::now_ms();
    let failed = Some(rollout_failed.as_str()).filter(|m| !m.is_empty());
    let verdict = health::workload_health(pods.iter().map(|p| (&p.health, p.restarts.max(0) as u32)), failed, now);
    let restarts: i32 = pods.iter().map(|p| p.restarts.max(0)).sum();
    let line = match verdict {
        Some((troubles, _, detail)) => {
            let what = troubles.iter().map(|t| t.label()).collect::<Vec<_>>().join(", ");
            view! { <p class="health trouble" data-testid="health"><strong>{format!("Unhealthy: {what}")}</strong>{format!(" · {detail}")}</p> }.into_any()
        }
        None if restarts > 0 => view! { <p class="health good" data-testid="health">{format!("Healthy · {restarts} container restarts in total")}</p> }.into_any(),
        None => view! { <p class="health good" data-testid="health">"Healthy · no container restarts"</p> }.into_any(),
    };
    let mut restarted: Vec<&PodRow> =
        pods.iter().filter(|p| p.restarts > 0 || p.health.last_termination.is_some()).collect();
    restarted.sort_by_key(|p| std::cmp::Reverse(p.health.last_termination.as_ref().and_then(|t| t.at)));
    let list = (!restarted.is_empty()).then(|| {
        let rows = restarted
            .into_iter()
            .take(10)
            .map(|p| {
                let last = p.health.last_termination.clone();
                view! {
                    <tr data-pod=p.name.clone()>
                        <td>{p.name.clone()}</td>
                        <td>{p.restarts}</td>
                        <td>{last.as_ref().map(|t| t.reason.clone()).unwrap_or_else(|| "—".into())}</td>
                        <td>{last.as_ref().map(|t| t.exit_code.to_string()).unwrap_or_else(|| "—".into())}</td>
                        <td>{format::ago(last.as_ref().and_then(|t| t.at))}</td>
                        <td>{p.health.waiting.clone().unwrap_or_default()}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-scroll">
                <table class="grid small" data-testid="restarts-table">
                    <thead>
                        <tr>
                            <th>"Pod"</th>
                            <th>"Restarts"</th>
                            <th>"Last exit"</th>
                            <th>"Exit code"</th>
                            <th>"When"</th>
                            <th>"Now waiting"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
    });
    view! { {line} {list} }
}

/// Recent events of an object.
#[component]
pub fn EventList(events: Vec<gantry_domain::view::EventRow>) -> impl IntoView {
    view! {
        <table class="grid small" data-testid="events">
            <thead>
                <tr>
                    <th>"When"</th>
                    <th>"Type"</th>
                    <th>"Reason"</th>
                    <th>"Object"</th>
                    <th>"Message"</th>
                </tr>
            </thead>
            <tbody>
                {events.is_empty().then(|| view! { <tr><td colspan="5" class="muted empty">"No recent events: Kubernetes records scheduling decisions, image pulls and failures here."</td></tr> })}
                {events
                    .into_iter()
                    .map(|e| {
                        view! {
                            <tr class=if e.kind == "Warning" { "warning" } else { "" }>
                                <td>{format::ago(e.last_seen)}</td>
                                <td>{e.kind.clone()}</td>
                                <td>{e.reason.clone()}</td>
                                <td class="mono small">{e.object.clone()}</td>
                                <td>{if e.count > 1 { format!("{} (×{})", e.message, e.count) } else { e.message.clone() }}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
