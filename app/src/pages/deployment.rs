//! One model deployment: its state, live rollout progress, scale, update,
//! roll back (with history and diff), promote and delete.

use gantry_domain::rollout::DiffLine;
use gantry_domain::view::ResourceKind;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::workloads::{
    AutoscaleDeployment, DeleteDeployment, DeploymentDetail as Data, PromoteDeployment, RollbackDeployment,
    ScaleDeployment, UpdateDeployment, deployment_diff, deployment_page, preview_fit,
};
use crate::components::chart::{RangeBar, TimeSeries};
use crate::components::common::{Csrf, ErrorNote, RolloutBadge, browser_fetch, loaded, loaded_quietly, outcome};
use crate::format;
use crate::live::use_live;
use crate::pages::workloads::{EventList, HealthLine, PodTable};

#[derive(Clone, PartialEq)]
struct Key {
    cluster: String,
    namespace: String,
    name: String,
}

#[component]
pub fn DeploymentPage() -> impl IntoView {
    let params = use_params_map();
    let key = Memo::new(move |_| {
        params.with(|p| Key {
            cluster: p.get("cluster").unwrap_or_default(),
            namespace: p.get("namespace").unwrap_or_default(),
            name: p.get("name").unwrap_or_default(),
        })
    });
    let live = use_live();
    let scale = ServerAction::<ScaleDeployment>::new();
    let autoscale = ServerAction::<AutoscaleDeployment>::new();
    let update = ServerAction::<UpdateDeployment>::new();
    let rollback = ServerAction::<RollbackDeployment>::new();
    let delete = ServerAction::<DeleteDeployment>::new();
    let promote = ServerAction::<PromoteDeployment>::new();
    let data = crate::loaded::load(
        move || {
            (
                key.get(),
                live.version(&[
                    ResourceKind::Deployment,
                    ResourceKind::ReplicaSet,
                    ResourceKind::Pod,
                    ResourceKind::Event,
                    ResourceKind::Autoscaler,
                ]),
                scale.version().get()
                    + autoscale.version().get()
                    + update.version().get()
                    + rollback.version().get()
                    + promote.version().get(),
            )
        },
        |(k, _, _)| deployment_page(k.cluster, k.namespace, k.name),
    );
    // Page-level state survives the re-render a live update causes.
    let typed_replicas = RwSignal::new(None::<String>);
    let diff_of = RwSignal::new(None::<i64>);
    Effect::new(move |_| {
        if let Some(Ok(_)) = scale.value().get() {
            typed_replicas.set(None);
        }
    });
    let actions = Actions { scale, autoscale, update, rollback, delete, promote, typed_replicas, diff_of };
    view! {
        <Title text=move || key.get().name />
        {move || {
            let k = key.get();
            view! {
                <h1>{k.name.clone()}</h1>
                <p class="muted">{format!("Deployment in {}/{}", k.cluster, k.namespace)}</p>
            }
        }}
        {loaded(data, move |page: Data| view! { <Summary page /> })}
        // Outside the page's data, so a live update does not rebuild the charts.
        <section class="charts" data-testid="deployment-charts">
            <h2>"Over time"</h2>
            <RangeBar />
            <div class="chart-grid">
                <TimeSeries
                    title="GPUs held and pods holding them; lines mark revisions and changes"
                    query=Signal::derive(move || workload_query(&key.get(), "workload"))
                    live=&[ResourceKind::Deployment, ResourceKind::ReplicaSet, ResourceKind::Pod]
                    testid="chart-deployment-gpus"
                />
                <TimeSeries
                    title="Cost per bucket"
                    query=Signal::derive(move || workload_query(&key.get(), "workload_cost"))
                    live=&[ResourceKind::Pod]
                    testid="chart-deployment-cost"
                />
            </div>
        </section>
        {loaded_quietly(data, move |page: Data| view! { <Body page actions /> })}
    }
}

fn workload_query(key: &Key, chart: &str) -> gantry_domain::chart::SeriesQuery {
    crate::components::chart::workload_query(chart, &key.cluster, &key.namespace, format!("Deployment/{}", key.name))
}

#[derive(Clone, Copy)]
struct Actions {
    scale: ServerAction<ScaleDeployment>,
    autoscale: ServerAction<AutoscaleDeployment>,
    update: ServerAction<UpdateDeployment>,
    rollback: ServerAction<RollbackDeployment>,
    delete: ServerAction<DeleteDeployment>,
    promote: ServerAction<PromoteDeployment>,
    typed_replicas: RwSignal<Option<String>>,
    diff_of: RwSignal<Option<i64>>,
}

/// Which deployment, at which version the user saw it.
#[derive(Clone)]
struct Ident {
    cluster: String,
    namespace: String,
    name: String,
    version: String,
}

/// Hidden fields that name the deployment and the version the user saw.
#[component]
fn Target(ident: StoredValue<Ident>) -> impl IntoView {
    let i = ident.get_value();
    view! {
        <Csrf />
        <input type="hidden" name="cluster" value=i.cluster />
        <input type="hidden" name="namespace" value=i.namespace />
        <input type="hidden" name="name" value=i.name />
        <input type="hidden" name="version" value=i.version />
    }
}

/// The deployment now: replicas, revision, rollout, image, model, GPUs.
#[component]
fn Summary(page: Data) -> impl IntoView {
    let d = page.deployment.clone();
    let model =
        format!("{} {}", d.model.clone().unwrap_or_else(|| "—".into()), d.model_version.clone().unwrap_or_default());
    view! {
        <section class="cards">
            <div class="card">
                <div class="big" data-testid="replicas">{format!("{}/{}", d.ready, d.desired)}</div>
                <div>"ready"</div>
            </div>
            <div class="card">
                <div class="big">{d.updated}</div>
                <div>"updated"</div>
            </div>
            <div class="card">
                <div class="big">{d.available}</div>
                <div>"available"</div>
            </div>
            <div class="card">
                <div class="big" data-testid="revision">{d.revision.map(|r| r.to_string()).unwrap_or_else(|| "—".into())}</div>
                <div>"revision"</div>
            </div>
        </section>
        <p data-testid="rollout">
            <RolloutBadge state=d.rollout.clone() />
        </p>
        <dl class="facts">
            <dt>"Image"</dt>
            <dd class="mono" data-testid="image">{d.image.clone()}</dd>
            <dt>"Model"</dt>
            <dd>{model}</dd>
            <dt>"GPUs"</dt>
            <dd>
                {if d.gpus_per_replica > 0 {
                    format!("{} per replica{}", d.gpus_per_replica, d.gpu_model.as_ref().map(|m| format!(" on {m}")).unwrap_or_default())
                } else {
                    "none".into()
                }}
            </dd>
            <dt>"Autoscaling"</dt>
            <dd>
                {match &d.autoscaler {
                    Some(a) => format!(
                        "{}..{} replicas at {}% CPU (now {})",
                        a.min,
                        a.max,
                        a.target_cpu_percent.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                        a.current,
                    ),
                    None => "off".into(),
                }}
            </dd>
            <dt>"Team"</dt>
            <dd>{d.team.clone().unwrap_or_else(|| "—".into())}</dd>
            <dt>"Created"</dt>
            <dd>{format::ago(d.created)}</dd>
        </dl>
    }
}

#[component]
fn Body(page: Data, actions: Actions) -> impl IntoView {
    let d = page.deployment.clone();
    let ident = StoredValue::new(Ident {
        cluster: d.cluster.clone(),
        namespace: d.namespace.clone(),
        name: d.name.clone(),
        version: d.version.to_string(),
    });
    let can_change = page.can_change;
    view! {
        <h2>"Health"</h2>
        <HealthLine
            pods=page.pods.clone()
            rollout_failed=match &page.deployment.rollout {
                gantry_domain::view::RolloutState::Failed(message) => message.clone(),
                _ => String::new(),
            }
        />
        {(!can_change).then(|| view! {
            <p class="muted" data-testid="read-only">"You can look at this deployment but not change it: that needs the deployer role in its team."</p>
        })}
        {let page = page.clone(); can_change.then(move || view! {
            <div class="actions">
                <section class="panel">
                    <h2>"Scale"</h2>
                    <ScaleForm page=page.clone() action=actions.scale ident typed=actions.typed_replicas />
                </section>
                <section class="panel">
                    <h2>"Autoscaling"</h2>
                    <ActionForm action=actions.autoscale attr:class="stack">
                        <Target ident />
                        <label class="check"><input type="checkbox" name="enabled" value="true" checked=d.autoscaler.is_some() /> "Autoscale on CPU"</label>
                        <label>"Min replicas" <input type="number" name="min_replicas" min="1" value=d.autoscaler.as_ref().map(|a| a.min).unwrap_or(1) /></label>
                        <label>"Max replicas" <input type="number" name="max_replicas" min="1" value=d.autoscaler.as_ref().map(|a| a.max).unwrap_or(d.desired.max(1) * 2) /></label>
                        <label>"Target CPU %" <input type="number" name="target_cpu_percent" min="1" max="100" value=d.autoscaler.as_ref().and_then(|a| a.target_cpu_percent).unwrap_or(80) /></label>
                        <button type="submit">"Save autoscaling"</button>
                    </ActionForm>
                    {outcome(actions.autoscale.value(), |m: &String| m.clone())}
                </section>
                <section class="panel">
                    <h2>"Update"</h2>
                    <ActionForm action=actions.update attr:class="stack">
                        <Target ident />
                        <label>"New image" <input type="text" name="image" placeholder=d.image.clone() data-testid="new-image" /></label>
                        <label>"Model version" <input type="text" name="model_version" placeholder=d.model_version.clone().unwrap_or_default() /></label>
                        <label>"Max surge" <input type="text" name="max_surge" placeholder="25%" /></label>
                        <label>"Max unavailable" <input type="text" name="max_unavailable" placeholder="25%" /></label>
                        <button type="submit">"Start rolling update"</button>
                    </ActionForm>
                    {outcome(actions.update.value(), |m: &String| m.clone())}
                </section>
            </div>
        })}
        <h2>"Revisions"</h2>
        <History page=page.clone() action=actions.rollback can_change ident diff_of=actions.diff_of />
        {page.promote_to.clone().map(move |to| view! {
            <section class="panel">
                <h2>"Promote"</h2>
                {
                    let protected = page.promote_protected;
                    let allowed = page.can_promote;
                    view! {
                        <p>
                            {format!("Copy this image and model version to {to}")}
                            {if protected { " (protected: needs a team admin)" } else { "" }}
                        </p>
                        {if allowed {
                            view! {
                                <ActionForm action=actions.promote attr:class="inline">
                                    <Target ident />
                                    <button type="submit" data-testid="promote">{format!("Promote to {to}")}</button>
                                </ActionForm>
                            }.into_any()
                        } else {
                            view! { <p class="muted">"Your role does not allow promoting there."</p> }.into_any()
                        }}
                        {outcome(actions.promote.value(), |m: &String| m.clone())}
                    }
                }
            </section>
        })}
        <h2>"Pods"</h2>
        <PodTable pods=page.pods.clone() />
        <h2>"Events"</h2>
        <EventList events=page.events.clone() />
        {can_change.then(move || view! {
            <section class="panel danger-zone">
                <h2>"Delete"</h2>
                <p>"This deletes the deployment, its pods, and the Service and autoscaler Gantry created with it. Type the name to confirm."</p>
                <ActionForm action=actions.delete attr:class="inline">
                    <Target ident />
                    <input type="text" name="confirm" placeholder=d.name.clone() required />
                    <button type="submit" class="danger">"Delete deployment"</button>
                </ActionForm>
                {outcome(actions.delete.value(), |_: &()| "Deleted".to_string())}
            </section>
        })}
    }
}

#[component]
fn ScaleForm(
    page: Data,
    action: ServerAction<ScaleDeployment>,
    ident: StoredValue<Ident>,
    /// What the user typed; lives on the page so a live refresh keeps it.
    typed: RwSignal<Option<String>>,
) -> impl IntoView {
    let d = page.deployment;
    let desired = d.desired.to_string();
    let replicas = move || typed.get().unwrap_or_else(|| desired.clone());
    let (cluster, namespace, model, gpus) =
        (d.cluster.clone(), d.namespace.clone(), d.gpu_model.clone().unwrap_or_default(), d.gpus_per_replica);
    let fit = browser_fetch(replicas.clone(), move |r| {
        preview_fit(cluster.clone(), namespace.clone(), model.clone(), gpus.to_string(), r)
    });
    view! {
        <ActionForm action attr:class="stack">
            <Target ident />
            <label>
                "Replicas"
                <input
                    type="number"
                    name="replicas"
                    min="0"
                    data-testid="scale-replicas"
                    prop:value=replicas
                    on:input=move |ev| typed.set(Some(event_target_value(&ev)))
                />
            </label>
            {move || match fit.get() {
                Some(Ok(p)) => view! { <crate::components::common::FitNote preview=p /> }.into_any(),
                _ => ().into_any(),
            }}
            <button type="submit" data-testid="scale-submit">"Scale"</button>
        </ActionForm>
        {outcome(action.value(), |m: &String| m.clone())}
    }
}

#[component]
fn History(
    page: Data,
    action: ServerAction<RollbackDeployment>,
    can_change: bool,
    ident: StoredValue<Ident>,
    /// The revision whose diff is shown; lives on the page.
    diff_of: RwSignal<Option<i64>>,
) -> impl IntoView {
    let d = page.deployment.clone();
    let (cluster, namespace, name) = (d.cluster.clone(), d.namespace.clone(), d.name.clone());
    let diff = browser_fetch(
        move || diff_of.get(),
        move |revision| {
            let (cluster, namespace, name) = (cluster.clone(), namespace.clone(), name.clone());
            async move {
                match revision {
                    Some(r) => deployment_diff(cluster, namespace, name, r).await.map(Some),
                    None => Ok(None),
                }
            }
        },
    );
    view! {
        <table class="grid" data-testid="history">
            <thead>
                <tr>
                    <th>"Revision"</th>
                    <th>"Image"</th>
                    <th>"Model version"</th>
                    <th>"Change cause"</th>
                    <th>"By"</th>
                    <th>"Created"</th>
                    <th>"Pods"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>
                {page.history.is_empty().then(|| view! { <tr><td colspan="8" class="muted empty">"No revisions yet: each rollout of the deployment makes one (a ReplicaSet)."</td></tr> })}
                {page
                    .history
                    .iter()
                    .map(|r| {
                        let revision = r.revision;
                        let current = r.current;
                        view! {
                            <tr class:current=current data-revision=revision>
                                <td>{revision}{if current { " (current)" } else { "" }}</td>
                                <td class="mono small">{r.images.join(", ")}</td>
                                <td>{r.model_version.clone().unwrap_or_else(|| "—".into())}</td>
                                <td class="small">{r.change_cause.clone().unwrap_or_else(|| "—".into())}</td>
                                <td>{r.by.clone().unwrap_or_else(|| "—".into())}</td>
                                <td class="small">{r.created.clone()}</td>
                                <td>{r.replicas}</td>
                                <td class="row-actions">
                                    {(!current).then(move || view! {
                                        <button type="button" class="link" on:click=move |_| diff_of.set(Some(revision)) data-testid=format!("diff-{revision}")>
                                            "Diff"
                                        </button>
                                        {can_change.then(move || view! {
                                            <ActionForm action attr:class="inline">
                                                <Target ident />
                                                <input type="hidden" name="to_revision" value=revision />
                                                <button type="submit" data-testid=format!("rollback-{revision}")>
                                                    "Roll back to this"
                                                </button>
                                            </ActionForm>
                                        })}
                                    })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        {outcome(action.value(), |m: &String| m.clone())}
        {move || match diff.get() {
            Some(Ok(Some(lines))) => view! { <DiffView lines revision=diff_of.get_untracked().unwrap_or(0) /> }.into_any(),
            Some(Err(error)) => view! { <ErrorNote error /> }.into_any(),
            _ => ().into_any(),
        }}
        <p class="muted small">
            "Rolling back copies that revision's pod template into the deployment, as "
            <code>"kubectl rollout undo"</code>
            " does; the controller then makes it the next revision."
        </p>
        <A href="/workloads">"← All deployments"</A>
    }
}

#[component]
fn DiffView(lines: Vec<DiffLine>, revision: i64) -> impl IntoView {
    let changed = lines.iter().any(|l| !matches!(l, DiffLine::Same(_)));
    view! {
        <section class="panel">
            <h3>{format!("Pod template: revision {revision} → current")}</h3>
            <Show when=move || !changed>
                <p>"No difference."</p>
            </Show>
            <pre class="diff" data-testid="diff">
                {lines
                    .into_iter()
                    .filter(|l| !matches!(l, DiffLine::Same(_)))
                    .map(|l| match l {
                        DiffLine::Removed(t) => view! { <span class="del">{format!("- {t}\n")}</span> }.into_any(),
                        DiffLine::Added(t) => view! { <span class="add">{format!("+ {t}\n")}</span> }.into_any(),
                        DiffLine::Same(t) => view! { <span>{format!("  {t}\n")}</span> }.into_any(),
                    })
                    .collect_view()}
            </pre>
        </section>
    }
}
