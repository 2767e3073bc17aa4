use gantry_domain::view::{ListQuery, NodeRow, ResourceKind};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::admin::{AddCluster, KubeconfigContexts, RemoveCluster};
use crate::api::fleet::{ClusterDetail as ClusterData, NodeDetail as NodeData, cluster_page, clusters, node_page};
use crate::components::chart::{RangeBar, TimeSeries};
use crate::components::common::{Csrf, GpuBar, StateBadge, loaded, loaded_quietly, outcome};
use crate::components::preparation::PreparationBanner;
use crate::components::table::{FilterBar, Pager, SortHeader, use_list_query};
use crate::format;
use crate::live::use_live;

#[component]
pub fn ClustersPage() -> impl IntoView {
    let live = use_live();
    let data = crate::loaded::load(
        move || live.version(&[ResourceKind::Cluster, ResourceKind::Node, ResourceKind::Pod]),
        |_| clusters(),
    );
    view! {
        <Title text="Clusters" />
        <h1>"Clusters"</h1>
        <PreparationBanner />
        {loaded(data, |(list, admin)| {
            view! {
                <ClusterTable clusters=list />
                <Show when=move || admin>
                    <AddClusterForm />
                </Show>
            }
        })}
    }
}

#[component]
fn AddClusterForm() -> impl IntoView {
    let contexts = ServerAction::<KubeconfigContexts>::new();
    let add = ServerAction::<AddCluster>::new();
    let remove = ServerAction::<RemoveCluster>::new();
    let kubeconfig = RwSignal::new(String::new());
    let listed = move || contexts.value().get().and_then(Result::ok).unwrap_or_default();
    view! {
        <section class="panel">
            <h2>"Add a cluster"</h2>
            <p class="muted">
                "Choose a kubeconfig file or paste one, list its contexts, and pick one. It must embed its credentials (no exec plugins, no file paths). The cluster must answer before anything is stored; credentials are encrypted at rest and never sent back to a browser."
            </p>
            <label>"Kubeconfig file " <input type="file" data-testid="kubeconfig-file" on:change=move |ev| read_file(ev, kubeconfig) /></label>
            <ActionForm action=contexts attr:class="stack">
                <Csrf />
                <textarea
                    name="kubeconfig"
                    rows="8"
                    placeholder="apiVersion: v1\nkind: Config\n…"
                    prop:value=move || kubeconfig.get()
                    on:input=move |ev| kubeconfig.set(event_target_value(&ev))
                ></textarea>
                <button type="submit">"List contexts"</button>
            </ActionForm>
            {outcome(contexts.value(), |list: &Vec<String>| format!("Contexts: {}", list.join(", ")))}
            <ActionForm action=add attr:class="stack">
                <Csrf />
                <input type="hidden" name="kubeconfig" prop:value=move || kubeconfig.get() />
                <label>"Name in Gantry" <input type="text" name="name" required /></label>
                <label>"Context" <input type="text" name="context" list="kubeconfig-contexts" required /></label>
                <datalist id="kubeconfig-contexts">
                    {move || listed().into_iter().map(|c| view! { <option value=c></option> }).collect_view()}
                </datalist>
                <label class="check">
                    <input type="checkbox" name="accept_risks" value="true" />
                    " Register it even if the context turns off TLS verification or uses a proxy (Gantry names the risk first)"
                </label>
                <button type="submit">"Add cluster"</button>
            </ActionForm>
            {outcome(add.value(), |message: &String| message.clone())}
            <h3>"Remove a cluster"</h3>
            <ActionForm action=remove attr:class="inline">
                <Csrf />
                <input type="text" name="name" placeholder="cluster name" required />
                <button type="submit" class="danger">"Remove"</button>
            </ActionForm>
            {outcome(remove.value(), |_: &()| "Removed".to_string())}
        </section>
    }
}

/// Reads the chosen file into the kubeconfig text (in the browser; the
/// server only ever receives the text).
fn read_file(event: leptos::ev::Event, into: RwSignal<String>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(file) = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|files| files.get(0))
        else {
            return;
        };
        leptos::task::spawn_local(async move {
            if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
                into.set(text.as_string().unwrap_or_default());
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (event, into);
}

#[component]
pub fn ClusterPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("cluster").unwrap_or_default());
    let query = use_list_query();
    let live = use_live();
    let data = crate::loaded::load(
        move || {
            let kinds = [
                ResourceKind::Cluster,
                ResourceKind::Node,
                ResourceKind::Pod,
                ResourceKind::NodePool,
                ResourceKind::NodeClaim,
            ];
            (name(), query.get(), live.version(&kinds))
        },
        |(name, query, _)| cluster_page(name, query),
    );
    view! {
        <Title text=name />
        {loaded(data, move |page: ClusterData| {
            let c = page.cluster.clone();
            view! {
                <h1>{format!("Cluster {}", c.name)} " " <StateBadge state=c.state /></h1>
                <p class="muted">
                    {format!(
                        "Kubernetes {} · last contact {} · {} nodes, {} with GPUs · {} pods",
                        c.version.clone().unwrap_or_else(|| "unknown".into()),
                        format::ago(c.last_contact),
                        c.nodes,
                        c.gpu_nodes,
                        c.pods,
                    )}
                </p>
                {c.message.clone().map(|m| view! { <p class="error">{m}</p> })}
            }
        })}
        // Outside the page's data, so a live update does not rebuild the chart.
        <section class="charts">
            <RangeBar />
            <TimeSeries
                title="GPUs allocated against capacity (dashed)"
                query=Signal::derive(move || gantry_domain::chart::SeriesQuery {
                    chart: "gpus".into(),
                    cluster: name(),
                    ..Default::default()
                })
                live=&[ResourceKind::Node, ResourceKind::Pod]
                testid="chart-cluster-gpus"
            />
        </section>
        {loaded_quietly(data, move |page: ClusterData| {
            let c = page.cluster.clone();
            view! {
                <NodesTable query page=page.nodes.clone() />
                <crate::pages::autoscaling::AutoscalingPanel autoscaling=page.autoscaling.clone() />
                {page.can_manage.then(|| view! { <PrometheusPanel cluster=c.name.clone() settings=page.prometheus.clone() /> })}
            }
        })}
    }
}

/// Where the cluster's GPU utilisation comes from: a Prometheus that
/// scrapes NVIDIA's DCGM exporter (global admins set it).
#[component]
fn PrometheusPanel(cluster: String, settings: Option<gantry_domain::view::PrometheusSettings>) -> impl IntoView {
    use crate::api::costs::SetPrometheus;
    use crate::components::common::{Csrf, outcome};
    let save = ServerAction::<SetPrometheus>::new();
    let state = match &settings {
        None => "Utilisation not configured: Gantry reads it from a Prometheus that scrapes NVIDIA's DCGM exporter."
            .to_string(),
        Some(s) => match &s.problem {
            None => format!("Utilisation from {}{}.", s.url, if s.has_token { " (with a token)" } else { "" }),
            Some(why) => format!("Utilisation unavailable from {}: {why}", s.url),
        },
    };
    view! {
        <section class="panel" data-testid="prometheus">
            <h2>"GPU utilisation"</h2>
            <p class="muted" data-testid="prometheus-state">{state}</p>
            <ActionForm action=save attr:class="inline">
                <Csrf />
                <input type="hidden" name="cluster" value=cluster />
                <input type="url" name="url" placeholder="http://prometheus.monitoring:9090 (empty removes it)" prop:value=settings.as_ref().map(|s| s.url.clone()).unwrap_or_default() />
                <input type="password" name="token" placeholder="bearer token (optional)" autocomplete="off" />
                <label class="check"><input type="checkbox" name="save_anyway" value="true" />" save even if it does not answer now"</label>
                <button type="submit">"Save"</button>
            </ActionForm>
            {outcome(save.value(), |m: &String| m.clone())}
        </section>
    }
}

#[component]
fn NodesTable(query: Memo<ListQuery>, page: gantry_domain::view::Page<NodeRow>) -> impl IntoView {
    view! {
        <FilterBar query statuses=&["gpu", "cpu", "spot", "on-demand", "not-ready"] places=false />
        <div class="table-scroll">
        <table class="grid" data-testid="nodes">
            <thead>
                <tr>
                    <SortHeader query column="name" label="Node" />
                    <SortHeader query column="model" label="GPU model" />
                    <SortHeader query column="gpus" label="GPUs" />
                    <SortHeader query column="allocated" label="Allocated" />
                    <SortHeader query column="free" label="Free" />
                    <th>"MIG"</th>
                    <th>"Capacity"</th>
                    <th>"Instance"</th>
                    <th>"Zone"</th>
                    <SortHeader query column="pods" label="Pods" />
                    <th>"Status"</th>
                </tr>
            </thead>
            <tbody>
                {page.items.is_empty().then(|| view! {
                    <tr><td colspan="11" class="muted">"No nodes match. Without a filter, every node the cluster's apiserver lists appears here."</td></tr>
                })}
                {page.items.iter().map(node_row).collect_view()}
            </tbody>
        </table>
        </div>
        <Pager query page=page.page pages=page.pages() total=page.total />
    }
}

fn node_row(n: &NodeRow) -> impl IntoView + use<> {
    let mig = n.gpus.mig.iter().map(|m| format!("{} ×{}", m.profile, m.allocatable)).collect::<Vec<_>>().join(", ");
    let name = n.name.clone();
    let href = format!("/clusters/{}/nodes/{}", n.cluster, n.name);
    let key = name.clone();
    view! {
        <tr data-node=key>
            <td>
                <A href=href>{name}</A>
            </td>
            <td data-testid="gpu-model">{if n.gpus.model.is_empty() { "—".to_string() } else { n.gpus.model.clone() }}</td>
            <td>{n.gpus.capacity}</td>
            <td>
                <GpuBar allocated=n.gpu_allocated total=n.gpus.allocatable />
            </td>
            <td>{n.gpu_free}</td>
            <td>{if mig.is_empty() { "—".to_string() } else { mig }}</td>
            <td>
                <span class=format!("badge cap-{}", n.gpus.capacity_type.label())>{n.gpus.capacity_type.label()}</span>
            </td>
            <td>{n.gpus.instance_type.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{n.gpus.zone.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{n.pods}</td>
            <td data-testid="node-status"><NodeStatus node=n.clone() /></td>
        </tr>
    }
}

/// Ready or NotReady, cordoned, and the conditions that need attention, as badges.
#[component]
fn NodeStatus(node: NodeRow) -> impl IntoView {
    let pressures: Vec<String> = node.conditions.iter().filter(|c| c.kind != "Ready").map(|c| c.label()).collect();
    view! {
        {if node.ready {
            view! { <span class="badge node-ready">"Ready"</span> }.into_any()
        } else {
            view! { <span class="badge bad">"NotReady"</span> }.into_any()
        }}
        {node.unschedulable.then(|| view! { <span class="badge warn">"cordoned"</span> })}
        {pressures.into_iter().map(|p| view! { <span class="badge bad">{p}</span> }).collect_view()}
        {(!node.taints.is_empty()).then(|| {
            let n = node.taints.len();
            view! { <span class="badge" title=node.taints.join("\n")>{if n == 1 { "1 taint".to_string() } else { format!("{n} taints") }}</span> }
        })}
    }
}

#[component]
pub fn NodePage() -> impl IntoView {
    let params = use_params_map();
    let key = move || params.with(|p| (p.get("cluster").unwrap_or_default(), p.get("node").unwrap_or_default()));
    let live = use_live();
    let data = crate::loaded::load(
        move || (key(), live.version(&[ResourceKind::Node, ResourceKind::Pod])),
        |((cluster, node), _)| node_page(cluster, node),
    );
    view! {
        <Title text=move || key().1 />
        {loaded(data, |page: NodeData| {
            let n = page.node.clone();
            view! {
                <h1>{format!("Node {}", n.name)}</h1>
                <dl class="facts">
                    <dt>"Cluster"</dt>
                    <dd>{let cluster = n.cluster.clone(); view! { <A href=format!("/clusters/{cluster}")>{cluster.clone()}</A> }}</dd>
                    <dt>"GPU model"</dt>
                    <dd>{if n.gpus.model.is_empty() { "none".to_string() } else { n.gpus.model.clone() }}</dd>
                    <dt>"GPUs"</dt>
                    <dd>
                        <GpuBar allocated=n.gpu_allocated total=n.gpus.allocatable />
                        {format!(" capacity {}, allocatable {}, free {}", n.gpus.capacity, n.gpus.allocatable, n.gpu_free)}
                    </dd>
                    <dt>"GPU memory"</dt>
                    <dd>{n.gpus.memory_mib.map(|m| format!("{m} MiB")).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"MIG"</dt>
                    <dd>
                        {if n.gpus.mig.is_empty() {
                            "—".to_string()
                        } else {
                            n.gpus.mig.iter().map(|m| format!("{}: {}/{}", m.profile, m.allocatable, m.capacity)).collect::<Vec<_>>().join(", ")
                        }}
                    </dd>
                    <dt>"Capacity type"</dt>
                    <dd>{n.gpus.capacity_type.label()}</dd>
                    <dt>"Instance type"</dt>
                    <dd>{n.gpus.instance_type.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Zone"</dt>
                    <dd>{n.gpus.zone.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"CPU / memory"</dt>
                    <dd>{format!("{} cores · {}", format::cores(n.cpu_millis), format::bytes(n.memory_bytes))}</dd>
                    <dt>"Status"</dt>
                    <dd data-testid="node-status"><NodeStatus node=n.clone() /></dd>
                    <dt>"Taints"</dt>
                    <dd data-testid="taints">{if n.taints.is_empty() { "none".to_string() } else { n.taints.join(", ") }}</dd>
                </dl>
                {(!n.conditions.is_empty()).then(|| view! {
                    <h2>"Conditions that need attention"</h2>
                    <div class="table-scroll">
                        <table class="grid small" data-testid="node-conditions">
                            <thead>
                                <tr><th>"Condition"</th><th>"Status"</th><th>"Reason"</th><th>"Since"</th><th>"Message"</th></tr>
                            </thead>
                            <tbody>
                                {n.conditions.iter().map(|c| view! {
                                    <tr data-condition=c.kind.clone()>
                                        <td>{c.kind.clone()}</td>
                                        <td>{c.status.clone()}</td>
                                        <td>{c.reason.clone().unwrap_or_default()}</td>
                                        <td>{format::ago(c.since)}</td>
                                        <td>{c.message.clone().unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })}
                {(!n.ready).then(|| view! {
                    <p class="panel warn" data-testid="not-ready-note">
                        "This node is not Ready. Kubernetes taints it and, once its pods' toleration runs out (300 s unless they set their own), evicts them so their controllers start them elsewhere: pods being moved off show as Terminating below, and those already moved in the table that follows."
                    </p>
                    <h2>"Pods moved off since it went NotReady"</h2>
                    <MovedOff pods=n.moved_off.clone() />
                })}
            }
        })}
        <section class="charts">
            <RangeBar />
            <TimeSeries
                title="GPUs allocated against capacity (dashed), every team's pods"
                query=Signal::derive(move || {
                    let (cluster, node) = key();
                    gantry_domain::chart::SeriesQuery { chart: "gpus".into(), cluster, node, ..Default::default() }
                })
                live=&[ResourceKind::Node, ResourceKind::Pod]
                testid="chart-node-gpus"
            />
        </section>
        {loaded_quietly(data, |page: NodeData| {
            view! {
                <h2>"Pods on this node"</h2>
                <crate::pages::workloads::PodTable pods=page.pods />
            }
        })}
    }
}

/// The pods deleted from a NotReady node, and where their owners' pods run now.
#[component]
fn MovedOff(pods: Vec<gantry_domain::view::MovedPod>) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="grid small" data-testid="moved-off">
                <thead>
                    <tr><th>"Pod"</th><th>"Owner"</th><th>"Deleted"</th><th>"Its owner's pods now on"</th></tr>
                </thead>
                <tbody>
                    {pods.is_empty().then(|| view! {
                        <tr><td colspan="4" class="muted empty">"None yet: pods deleted from this node while it is NotReady (evicted once their toleration runs out) are listed here, with where their replacements run."</td></tr>
                    })}
                    {pods.into_iter().map(|p| view! {
                        <tr data-pod=p.name.clone()>
                            <td>{p.name.clone()} <div class="muted small">{p.namespace.clone()}</div></td>
                            <td>{p.owner.clone().unwrap_or_else(|| "—".into())}</td>
                            <td>{format::ago(Some(p.deleted_at))}</td>
                            <td data-testid="now-on">{if p.now_on.is_empty() { "not yet scheduled".to_string() } else { p.now_on.join(", ") }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Every cluster with its state, version, last contact, nodes, GPUs and pods.
#[component]
pub fn ClusterTable(clusters: Vec<gantry_domain::view::ClusterSummary>) -> impl IntoView {
    let none = clusters.is_empty();
    view! {
        <div class="table-scroll">
        <table class="grid" data-testid="clusters">
            <thead>
                <tr>
                    <th>"Cluster"</th>
                    <th>"State"</th>
                    <th>"Kubernetes"</th>
                    <th>"Last contact"</th>
                    <th>"Nodes"</th>
                    <th>"GPU nodes"</th>
                    <th>"GPUs allocated"</th>
                    <th>"Pods"</th>
                </tr>
            </thead>
            <tbody>
                {none.then(|| view! {
                    <tr><td colspan="8" class="muted">"No clusters you can see. A global admin registers clusters (on this page, from a kubeconfig); you see those in which your teams own namespaces."</td></tr>
                })}
                {clusters
                    .into_iter()
                    .map(|c| {
                        let name = c.name.clone();
                        let href = format!("/clusters/{name}");
                        let key = name.clone();
                        view! {
                            <tr data-cluster=key>
                                <td>
                                    <A href=href>{name}</A>
                                </td>
                                <td>
                                    <StateBadge state=c.state />
                                    {c.message.clone().map(|m| view! { <div class="muted small">{m}</div> })}
                                </td>
                                <td>{c.version.clone().unwrap_or_else(|| "—".into())}</td>
                                <td>{format::ago(c.last_contact)}</td>
                                <td>{c.nodes}</td>
                                <td>{c.gpu_nodes}</td>
                                <td>
                                    <GpuBar allocated=c.gpu_allocated total=c.gpu_capacity />
                                </td>
                                <td>{c.pods}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        </div>
    }
}
