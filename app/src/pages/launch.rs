//! Launch forms for model deployments and training jobs, with a live "does
//! it fit right now?" preview.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::workloads::{LaunchChoices, LaunchDeployment, LaunchJob, launch_options, preview_fit};
use crate::components::common::{Csrf, ErrorNote, browser_fetch, loaded};

#[derive(Clone, Copy)]
struct Placement {
    cluster: RwSignal<String>,
    namespace: RwSignal<String>,
    gpu_model: RwSignal<String>,
    gpus: RwSignal<String>,
    pods: RwSignal<String>,
}

impl Placement {
    fn new(options: &LaunchChoices) -> Placement {
        let first = options.namespaces.first().cloned().unwrap_or_default();
        Placement {
            cluster: RwSignal::new(first.0),
            namespace: RwSignal::new(first.1),
            gpu_model: RwSignal::new(String::new()),
            gpus: RwSignal::new("1".into()),
            pods: RwSignal::new("1".into()),
        }
    }
}

/// Cluster, namespace and GPU model pickers bound to `place`.
#[component]
fn PlacementFields(options: LaunchChoices, place: Placement, prefix: &'static str) -> impl IntoView {
    let namespaces = options.namespaces.clone();
    let mut clusters: Vec<String> = namespaces.iter().map(|(c, _)| c.clone()).collect();
    clusters.dedup();
    let models = options.gpu_models.clone();
    view! {
        <label>
            "Cluster"
            <select name=format!("{prefix}[cluster]") on:change=move |ev| place.cluster.set(event_target_value(&ev))>
                {clusters.into_iter().map(|c| view! { <option value=c.clone()>{c.clone()}</option> }).collect_view()}
            </select>
        </label>
        <label>
            "Namespace"
            <select name=format!("{prefix}[namespace]") on:change=move |ev| place.namespace.set(event_target_value(&ev))>
                {namespaces
                    .into_iter()
                    .map(|(c, n)| {
                        let label = format!("{n} ({c})");
                        view! { <option value=n.clone() data-cluster=c>{label}</option> }
                    })
                    .collect_view()}
            </select>
        </label>
        <label>
            "GPU model (optional)"
            <select name=format!("{prefix}[gpu_model]") on:change=move |ev| place.gpu_model.set(event_target_value(&ev))>
                <option value="">"any"</option>
                {move || {
                    let cluster = place.cluster.get();
                    models
                        .iter()
                        .filter(|(c, _)| *c == cluster)
                        .flat_map(|(_, ms)| ms.clone())
                        .map(|m| view! { <option value=m.clone()>{m.clone()}</option> })
                        .collect_view()
                }}
            </select>
        </label>
    }
}

/// The fit preview for the current placement and size.
#[component]
fn FitPreview(place: Placement) -> impl IntoView {
    // Browser-only, like every preview that follows typing.
    let fit = browser_fetch(
        move || (place.cluster.get(), place.namespace.get(), place.gpu_model.get(), place.gpus.get(), place.pods.get()),
        |(c, n, m, g, p)| preview_fit(c, n, m, g, p),
    );
    move || match fit.get() {
        Some(Ok(p)) => view! { <crate::components::common::FitNote preview=p /> }.into_any(),
        Some(Err(error)) => view! { <ErrorNote error /> }.into_any(),
        None => ().into_any(),
    }
}

#[component]
pub fn LaunchDeploymentPage() -> impl IntoView {
    let options = crate::loaded::load(|| (), |_| launch_options());
    let launch = ServerAction::<LaunchDeployment>::new();
    view! {
        <Title text="Launch a deployment" />
        <h1>"Launch a model deployment"</h1>
        {loaded(options, move |options: LaunchChoices| {
            if options.namespaces.is_empty() {
                return view! { <p class="muted" data-testid="no-namespaces">"You have no namespace where you may deploy: that needs the deployer role in a team."</p> }.into_any();
            }
            let place = Placement::new(&options);
            view! {
                <ActionForm action=launch attr:class="stack wide" attr:data-testid="launch-form">
                    <Csrf />
                    <PlacementFields options=options.clone() place prefix="input" />
                    <label>"Name" <input type="text" name="input[name]" required placeholder="llama-serve" /></label>
                    <label>"Container image" <input type="text" name="input[image]" required placeholder="ghcr.io/acme/llama:1.0" /></label>
                    <label>"Model" <input type="text" name="input[model]" placeholder="llama-3-8b" /></label>
                    <label>"Model version" <input type="text" name="input[model_version]" placeholder="v1" /></label>
                    <label>
                        "GPUs per replica"
                        <input type="number" name="input[gpus]" min="0" value="1" on:input=move |ev| place.gpus.set(event_target_value(&ev)) />
                    </label>
                    <label>
                        "Replicas"
                        <input
                            type="number"
                            name="input[replicas]"
                            min="0"
                            max=options.replica_cap
                            value="1"
                            on:input=move |ev| place.pods.set(event_target_value(&ev))
                        />
                    </label>
                    <FitPreview place />
                    <label>"CPU request" <input type="text" name="input[cpu]" placeholder="4" /></label>
                    <label>"Memory" <input type="text" name="input[memory]" placeholder="32Gi" /></label>
                    <label>"Container port" <input type="number" name="input[port]" placeholder="8080" /></label>
                    <label>"Readiness probe path" <input type="text" name="input[readiness_path]" placeholder="/healthz" /></label>
                    <label>
                        "Environment (NAME=value or NAME=secret:SECRET/KEY, one per line)"
                        <textarea name="input[env]" rows="3"></textarea>
                    </label>
                    <fieldset>
                        <legend>"Autoscaling"</legend>
                        <label class="check"><input type="checkbox" name="input[autoscale]" value="true" /> "Autoscale on CPU"</label>
                        <label>"Min" <input type="number" name="input[min_replicas]" min="1" value="1" /></label>
                        <label>"Max" <input type="number" name="input[max_replicas]" min="1" value="4" /></label>
                        <label>"Target CPU %" <input type="number" name="input[target_cpu_percent]" min="1" max="100" value="80" /></label>
                    </fieldset>
                    <button type="submit" disabled=move || launch.pending().get()>"Launch"</button>
                </ActionForm>
                {move || launch.value().get().and_then(|r| r.err()).map(|error| view! { <ErrorNote error /> })}
            }
            .into_any()
        })}
    }
}

#[component]
pub fn LaunchJobPage() -> impl IntoView {
    let options = crate::loaded::load(|| (), |_| launch_options());
    let launch = ServerAction::<LaunchJob>::new();
    view! {
        <Title text="Launch a job" />
        <h1>"Launch a training job"</h1>
        {loaded(options, move |options: LaunchChoices| {
            if options.namespaces.is_empty() {
                return view! { <p class="muted">"You have no namespace where you may run jobs: that needs the deployer role in a team."</p> }.into_any();
            }
            let place = Placement::new(&options);
            // The fit preview asks about every pod at once: a PyTorchJob's master too.
            let kind = RwSignal::new("Job".to_string());
            let parallelism = RwSignal::new("1".to_string());
            Effect::new(move |_| {
                let workers = parallelism.get().trim().parse::<i64>().unwrap_or(1);
                let pods = if kind.get() == "PyTorchJob" { workers + 1 } else { workers };
                place.pods.set(pods.to_string());
            });
            view! {
                <ActionForm action=launch attr:class="stack wide" attr:data-testid="job-form">
                    <Csrf />
                    <PlacementFields options=options.clone() place prefix="input" />
                    <label>"Name" <input type="text" name="input[name]" required placeholder="train-resnet" /></label>
                    <label>"Container image" <input type="text" name="input[image]" required /></label>
                    <label>"Command" <input type="text" name="input[command]" placeholder="python train.py" /></label>
                    <label>"Arguments (one per line)" <textarea name="input[args]" rows="3"></textarea></label>
                    <label>"Environment (NAME=value or NAME=secret:SECRET/KEY)" <textarea name="input[env]" rows="3"></textarea></label>
                    <label>
                        "GPUs per pod"
                        <input type="number" name="input[gpus]" min="0" value="1" on:input=move |ev| place.gpus.set(event_target_value(&ev)) />
                    </label>
                    <label>
                        "Kind"
                        <select name="input[kind]" data-testid="job-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                            <option value="Job" selected>"Job (Kubernetes): pods in parallel, completions in all"</option>
                            <option value="PyTorchJob">"PyTorchJob (Kubeflow training operator): a master and workers"</option>
                        </select>
                    </label>
                    <label>
                        {move || if kind.get() == "PyTorchJob" { "Workers (plus one master, with the same GPUs)" } else { "Parallelism" }}
                        <input type="number" name="input[parallelism]" min="1" value="1" on:input=move |ev| parallelism.set(event_target_value(&ev)) />
                    </label>
                    <FitPreview place />
                    <label>"Completions" <input type="number" name="input[completions]" min="1" value="1" /></label>
                    <label>"Retries (backoffLimit)" <input type="number" name="input[backoff_limit]" min="0" value="6" /></label>
                    <label>"Deadline in seconds (optional)" <input type="number" name="input[active_deadline_seconds]" min="1" /></label>
                    <label>"CPU request" <input type="text" name="input[cpu]" /></label>
                    <label>"Memory" <input type="text" name="input[memory]" /></label>
                    <button type="submit" disabled=move || launch.pending().get()>"Launch job"</button>
                </ActionForm>
                {move || launch.value().get().and_then(|r| r.err()).map(|error| view! { <ErrorNote error /> })}
            }
            .into_any()
        })}
    }
}
