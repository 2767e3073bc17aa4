use gantry_domain::view::ResourceKind;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::admin::SetQuota;
use crate::api::fleet::{QuotaPage, quotas};
use crate::components::common::{Csrf, GpuBar, loaded, outcome};
use crate::live::use_live;

/// GPU quotas per team namespace: used against hard limits.
#[component]
pub fn QuotasPage() -> impl IntoView {
    let live = use_live();
    let set = ServerAction::<SetQuota>::new();
    let data = crate::loaded::load(move || (live.version(&[ResourceKind::Quota]), set.version().get()), |_| quotas());
    view! {
        <Title text="GPU quotas" />
        <h1>"GPU quotas"</h1>
        {loaded(data, move |page: QuotaPage| {
            let can_set = page.can_set;
            let namespaces = page.namespaces.clone();
            view! {
                <table class="grid" data-testid="quotas">
                    <thead>
                        <tr>
                            <th>"Cluster"</th>
                            <th>"Namespace"</th>
                            <th>"Team"</th>
                            <th>"Quota"</th>
                            <th>"GPUs used / hard"</th>
                            <th>"Owner"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {page.quotas.is_empty().then(|| view! { <tr><td colspan="6" class="muted empty">"No GPU quotas in your teams' namespaces: a global admin sets them below (a ResourceQuota on requests.nvidia.com/gpu)."</td></tr> })}
                        {page
                            .quotas
                            .into_iter()
                            .map(|q| {
                                view! {
                                    <tr data-namespace=q.namespace.clone()>
                                        <td>{q.cluster.clone()}</td>
                                        <td>{q.namespace.clone()}</td>
                                        <td>{q.team.clone().unwrap_or_else(|| "—".into())}</td>
                                        <td class="mono small">{q.name.clone()}</td>
                                        <td><GpuBar allocated=q.gpus_used total=q.gpus_hard.unwrap_or(0) /></td>
                                        <td>{if q.managed_by_gantry { "Gantry" } else { "other" }}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
                {can_set.then(move || view! {
                    <section class="panel">
                        <h2>"Set a team's GPU quota"</h2>
                        <ActionForm action=set attr:class="inline">
                            <Csrf />
                            <input type="text" name="cluster" placeholder="cluster" list="quota-clusters" required />
                            <input type="text" name="namespace" placeholder="namespace" list="quota-namespaces" required />
                            <datalist id="quota-clusters">
                                {let mut clusters: Vec<String> = namespaces.iter().map(|(c, _, _)| c.clone()).collect();
                                clusters.dedup();
                                clusters.into_iter().map(|c| view! { <option value=c></option> }).collect_view()}
                            </datalist>
                            <datalist id="quota-namespaces">
                                {namespaces.iter().map(|(c, n, t)| view! { <option value=n.clone()>{format!("{c}/{n} ({t})")}</option> }).collect_view()}
                            </datalist>
                            <input type="number" name="gpus" min="0" placeholder="GPUs" required />
                            <button type="submit">"Set quota"</button>
                        </ActionForm>
                        {outcome(set.value(), |_: &()| "Quota saved".to_string())}
                    </section>
                })}
            }
        })}
    }
}
