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
    let data = Resource::new(
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
            </td>
        </tr>
    }
}

#[component]
pub fn PodsPage() -> impl IntoView {
    let query = use_list_query();
    let live = use_live();
    let data = Resource::new(move || (query.get(), live.version(&[ResourceKind::Pod])), |(query, _)| pods(query));
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
            <td>{p.restarts}</td>
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
