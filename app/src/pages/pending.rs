use gantry_domain::view::ResourceKind;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::fleet::pending;
use crate::components::common::loaded;
use crate::components::table::{FilterBar, Pager, SortHeader, use_list_query};
use crate::format;
use crate::live::use_live;

/// Pods waiting for a node, with the scheduler's own words.
#[component]
pub fn PendingPage() -> impl IntoView {
    let query = use_list_query();
    let live = use_live();
    let data = crate::loaded::load(
        move || (query.get(), live.version(&[ResourceKind::Pod, ResourceKind::Event, ResourceKind::NodeClaim])),
        |(query, _)| pending(query),
    );
    view! {
        <Title text="Pending" />
        <h1>"Pending pods"</h1>
        <p class="muted">"Pods the scheduler has not placed yet, with its reason and, where a node autoscaler runs, what it is doing about them. Filter with status \"gpu\" for GPU pods only."</p>
        <FilterBar query statuses=&["gpu"] />
        {loaded(data, move |page| {
            let (number, pages, total) = (page.page, page.pages(), page.total);
            view! {
                <table class="grid" data-testid="pending">
                    <thead>
                        <tr>
                            <SortHeader query column="name" label="Pod" />
                            <SortHeader query column="gpus" label="GPUs" />
                            <SortHeader query column="since" label="Waiting" />
                            <th>"Owner"</th>
                            <th>"Why"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {page.items.is_empty().then(|| view! { <tr><td colspan="5" class="muted empty">"Nothing is waiting for a node: pods the scheduler cannot place yet are listed here with its reason."</td></tr> })}
                        {page
                            .items
                            .into_iter()
                            .map(|p| {
                                view! {
                                    <tr data-pod=p.name.clone()>
                                        <td>
                                            {p.name.clone()}
                                            <div class="muted small">{format!("{}/{}", p.cluster, p.namespace)}</div>
                                        </td>
                                        <td>{p.gpus}</td>
                                        <td>{format::ago(p.since)}</td>
                                        <td>{p.owner.clone().unwrap_or_else(|| "—".into())}</td>
                                        <td class="reason" data-testid="reason">
                                            {p.reason.clone()}
                                            {p.autoscaler.as_ref().map(|a| {
                                                let class = if a.creating { "autoscaler coming" } else { "autoscaler" };
                                                view! { <div class=class data-testid="autoscaler">{crate::pages::autoscaling::provisioning_line(a)}</div> }
                                            })}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
                <Pager query page=number pages total />
            }
        })}
    }
}
