//! Training jobs: the list, and one job with its pods, events and logs.

use gantry_domain::chart;
use gantry_domain::view::{JobRow, ResourceKind};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::fleet::{JobDetail as Data, job_page, jobs};
use crate::api::workloads::CancelJob;
use crate::components::chart::{RangeBar, TimeSeries};
use crate::components::common::{Csrf, JobBadge, loaded, loaded_quietly, outcome};
use crate::components::table::{FilterBar, Pager, SortHeader, use_list_query};
use crate::format;
use crate::live::use_live;
use crate::pages::workloads::{EventList, HealthLine, PodTable};

#[component]
pub fn JobsPage() -> impl IntoView {
    let query = use_list_query();
    let live = use_live();
    let data = crate::loaded::load(
        move || (query.get(), live.version(&[ResourceKind::Job, ResourceKind::TrainingJob])),
        |(query, _)| jobs(query),
    );
    view! {
        <Title text="Jobs" />
        <div class="heading">
            <h1>"Training jobs"</h1>
            <A href="/launch/job" attr:class="button">"Launch a job"</A>
        </div>
        <FilterBar query statuses=&["pending", "running", "succeeded", "failed", "suspended"] />
        {loaded(data, move |page| {
            view! {
                <table class="grid" data-testid="jobs">
                    <thead>
                        <tr>
                            <SortHeader query column="name" label="Job" />
                            <th>"Kind"</th>
                            <th>"Team"</th>
                            <SortHeader query column="status" label="Status" />
                            <SortHeader query column="gpus" label="GPUs" />
                            <th>"Pods"</th>
                            <SortHeader query column="started" label="Started" />
                            <SortHeader query column="duration" label="Duration" />
                            <th title="What its GPUs have cost since it started, at the prices set">"Cost so far"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {page.items.is_empty().then(|| view! { <tr><td colspan="9" class="muted empty">"No jobs match. Without a filter, the training jobs in your teams' namespaces are listed here; \"Launch a job\" starts one."</td></tr> })}
                        {page.items.iter().map(job_row).collect_view()}
                    </tbody>
                </table>
                <Pager query page=page.page pages=page.pages() total=page.total />
            }
        })}
    }
}

fn job_row(j: &JobRow) -> impl IntoView + use<> {
    let name = j.name.clone();
    let href = job_href(j);
    let key = name.clone();
    view! {
        <tr data-job=key>
            <td>
                <A href=href>{name}</A>
                <div class="muted small">{format!("{}/{}", j.cluster, j.namespace)}</div>
            </td>
            <td data-testid="job-kind">{j.kind.clone()}</td>
            <td>{j.team.clone().unwrap_or_else(|| "—".into())}</td>
            <td>
                <JobBadge status=j.status />
                {j.state.clone().filter(|s| s == "Restarting").map(|s| view! { <span class="badge warn">{s}</span> })}
                {j.message.clone().map(|m| view! { <div class="muted small">{m}</div> })}
            </td>
            <td>{job_gpus(j)}</td>
            <td data-testid="job-pods">{job_pods(j)}</td>
            <td>{format::ago(j.started)}</td>
            <td>{format::run_time(j.started, j.finished)}</td>
            <td data-testid="job-cost">{j.cost_so_far.map(|c| c.cents_label()).unwrap_or_else(|| "—".into())}</td>
        </tr>
    }
}

/// A job's page; a training job's names its kind, which its charts need
/// (its GPU-hours are the ledger's `PyTorchJob/<name>`, not `Job/<name>`).
fn job_href(j: &JobRow) -> String {
    let page = format!("/clusters/{}/namespaces/{}/jobs/{}", j.cluster, j.namespace, j.name);
    if j.kind == JobRow::PLAIN_KIND { page } else { format!("{page}?kind={}", j.kind) }
}

/// "3 × 2" for a Job; per role for a training job ("Master 1 × 8 · Worker 2 × 8").
fn job_gpus(j: &JobRow) -> String {
    if j.gpus() == 0 {
        return "—".into();
    }
    if j.roles.is_empty() {
        return format!("{} × {}", j.parallelism, j.gpus_per_pod);
    }
    j.roles.iter().map(|r| format!("{} {} × {}", r.role, r.replicas, r.gpus_per_pod)).collect::<Vec<_>>().join(" · ")
}

/// Pods by state, per role for a training job ("Master 1/1 · Worker 1/2 ready").
fn job_pods(j: &JobRow) -> String {
    if j.roles.is_empty() {
        return format!("{} active · {} done · {} failed", j.active, j.succeeded, j.failed);
    }
    j.roles
        .iter()
        .map(|r| {
            let failed = if r.failed > 0 { format!(", {} failed", r.failed) } else { String::new() };
            format!("{} {}/{} active{failed}", r.role, r.active, r.replicas)
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    // Job, or the training operator's kind the jobs list links with.
    let kind = Memo::new(move |_| {
        let named = query.with(|q| q.get("kind")).unwrap_or_default();
        ["PyTorchJob", "TFJob", "TrainJob"].into_iter().find(|k| *k == named).unwrap_or(JobRow::PLAIN_KIND)
    });
    let key = Memo::new(move |_| {
        params.with(|p| {
            (
                p.get("cluster").unwrap_or_default(),
                p.get("namespace").unwrap_or_default(),
                p.get("name").unwrap_or_default(),
            )
        })
    });
    let live = use_live();
    let data = crate::loaded::load(
        move || {
            (
                key.get(),
                live.version(&[ResourceKind::Job, ResourceKind::TrainingJob, ResourceKind::Pod, ResourceKind::Event]),
            )
        },
        |((c, n, name), _)| job_page(c, n, name),
    );
    let cancel = ServerAction::<CancelJob>::new();
    view! {
        <Title text=move || key.get().2 />
        {loaded(data, move |page: Data| {
            let j = page.job.clone();
            view! {
                <h1>{j.name.clone()} " " <JobBadge status=j.status /></h1>
                <p class="muted">{format!("{} in {}/{}", j.kind, j.cluster, j.namespace)}</p>
                <dl class="facts" data-testid="job-facts">
                    <dt>"GPUs"</dt>
                    <dd>{if j.roles.is_empty() { format!("{} per pod × {} in parallel", j.gpus_per_pod, j.parallelism) } else { job_gpus(&j) }}</dd>
                    {(!j.roles.is_empty()).then(|| view! {
                        <dt>"Replicas"</dt>
                        <dd data-testid="job-roles">{job_pods(&j)}</dd>
                    })}
                    <dt>"Completions"</dt>
                    <dd>{format!("{} of {} succeeded, {} failed, {} active", j.succeeded, j.completions, j.failed, j.active)}</dd>
                    <dt>"Started"</dt>
                    <dd>{format::ago(j.started)}</dd>
                    <dt>"Duration"</dt>
                    <dd>{format::run_time(j.started, j.finished)}</dd>
                    <dt>"Team"</dt>
                    <dd>{j.team.clone().unwrap_or_else(|| "—".into())}</dd>
                </dl>
                {j.message.clone().map(|m| view! { <p class="muted">{m}</p> })}
            }
        })}
        // The charts stand outside the Suspense of the job's data, so their
        // own data is read in the same order on the server and in the
        // browser; their range is the job's life, which the server reads
        // from the ledger (`range=life`).
        <section class="charts" data-testid="job-charts">
            <h2>"Over the job's life"</h2>
            <RangeBar default=chart::LIFE life="the job's life" />
            <div class="chart-grid">
                <TimeSeries
                    title="GPUs held and pods holding them"
                    query=Signal::derive(move || chart_query(&key.get(), kind.get(), "workload"))
                    default_range=chart::LIFE
                    live=&[ResourceKind::Job, ResourceKind::Pod]
                    testid="chart-job-gpus"
                />
                <TimeSeries
                    title="Cost per bucket"
                    query=Signal::derive(move || chart_query(&key.get(), kind.get(), "workload_cost"))
                    default_range=chart::LIFE
                    live=&[ResourceKind::Pod]
                    testid="chart-job-cost"
                />
            </div>
        </section>
        {loaded_quietly(data, move |page: Data| {
            let j = page.job.clone();
            let first_pod = page.pods.first().map(|p| p.name.clone());
            view! {
                {let (c, n, name) = (j.cluster.clone(), j.namespace.clone(), j.name.clone());
                page.can_cancel.then(move || view! {
                    <ActionForm action=cancel attr:class="inline">
                        <Csrf />
                        <input type="hidden" name="cluster" value=c />
                        <input type="hidden" name="namespace" value=n />
                        <input type="hidden" name="name" value=name />
                        <button type="submit" class="danger" data-testid="cancel-job">"Cancel job (deletes its pods)"</button>
                    </ActionForm>
                    {outcome(cancel.value(), |_: &()| "Cancelled".to_string())}
                })}
                <h2>"Health"</h2>
                <HealthLine pods=page.pods.clone() />
                <h2>"Pods"</h2>
                <PodTable pods=page.pods.clone() />
                <h2>"Logs"</h2>
                {match first_pod {
                    Some(pod) => view! { <LogViewer cluster=j.cluster.clone() namespace=j.namespace.clone() pod /> }.into_any(),
                    None => view! { <p class="muted">"No pods yet."</p> }.into_any(),
                }}
                <h2>"Events"</h2>
                <EventList events=page.events.clone() />
            }
        })}
    }
}

/// The chart question about one job, by (cluster, namespace, name) and its kind.
fn chart_query((cluster, namespace, name): &(String, String, String), kind: &str, chart: &str) -> chart::SeriesQuery {
    crate::components::chart::workload_query(chart, cluster, namespace, format!("{kind}/{name}"))
}

/// Follows a pod's log over Server-Sent Events, keeping the last lines.
#[component]
fn LogViewer(cluster: String, namespace: String, pod: String) -> impl IntoView {
    let url = format!("/api/v1/clusters/{cluster}/namespaces/{namespace}/pods/{pod}/logs");
    let lines = RwSignal::new(Vec::<String>::new());
    let following = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        let stream_url = format!("{url}?follow=true&format=sse");
        Effect::new(move |_| follow(&stream_url, lines, following));
    }
    view! {
        <p class="muted small">
            {move || if following.get() { "Following the log (last 2,000 lines kept)." } else { "Not following." }}
            " " <a href=format!("{url}?follow=false") target="_blank">"Open the full log"</a>
        </p>
        <pre class="logs" data-testid="logs">{move || lines.get().join("\n")}</pre>
    }
}

#[cfg(feature = "hydrate")]
fn follow(url: &str, lines: RwSignal<Vec<String>>, following: RwSignal<bool>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    const KEEP: usize = 2000;
    let Ok(source) = web_sys::EventSource::new(url) else { return };
    let on_line = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
        if let Some(text) = event.data().as_string() {
            lines.update(|l| {
                l.push(text);
                if l.len() > KEEP {
                    let extra = l.len() - KEEP;
                    l.drain(..extra);
                }
            });
        }
    });
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| following.set(true));
    let source_for_end = source.clone();
    let on_end = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        following.set(false);
        source_for_end.close();
    });
    let _ = source.add_event_listener_with_callback("line", on_line.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    on_line.forget();
    on_open.forget();
    on_end.forget();
    on_cleanup(move || source.close());
}
