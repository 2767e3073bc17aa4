//! Deployment actions through Gantry next to the same change made directly: a program that
//! prints numbers (not a timed test).
//!
//!   cargo bench -p gantry --bench workloads      # rewrites the `## Deployment actions` section
//!
//! On one small testbed cluster, with a Deployment `vision/bench-serve` at revisions 1 and 2,
//! interleaved round by round (the order rotates each round):
//! - scale: Gantry's `PUT …/scale` over HTTP with a deployer's bearer token, a raw PATCH of
//!   the scale subresource with kube-rs, and a `kubectl scale` process;
//! - rollback: Gantry's `POST …/rollback`, a raw JSON-patch of the pod template with kube-rs,
//!   and a `kubectl rollout undo` process.
//!
//! Every call is a real change (replicas flip between 1 and 2, the template between the two
//! revisions), and the deployment is left to settle, untimed, before the next call.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, median, ms};
use gantry_cluster::Hub;
use gantry_testbed::{Fleet, Options, Testbed};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CLUSTER: &str = "a";
const NAMESPACE: &str = "vision";
const NAME: &str = "bench-serve";
const SCALE_ROUNDS: usize = 25;
const ROLLBACK_ROUNDS: usize = 15;
const WARM_UP_ROUNDS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    Gantry,
    Raw,
    Kubectl,
}

const WAYS: [Way; 3] = [Way::Gantry, Way::Raw, Way::Kubectl];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !common::under_cargo_bench(&args) {
        return Ok(());
    }
    common::init_logging("workloads");
    let runtime = tokio::runtime::Runtime::new()?;
    let section = runtime.block_on(run())?;
    println!("{section}");
    let path = common::write_section("## Deployment actions", &section)?;
    eprintln!("wrote the Deployment actions section of {}", path.display());
    Ok(())
}

/// Fields drop in order: the server (and its watches) before the testbed.
struct Bench {
    server: Server,
    http: reqwest::Client,
    deployments: Api<Deployment>,
    /// The pod templates of revisions 1 and 2, as a rollback writes them back.
    templates: [Value; 2],
    /// Times of single reads of the deployment (GET), the unit of apiserver round trips.
    reads: std::sync::Mutex<Vec<Duration>>,
    bed: Testbed,
}

async fn run() -> anyhow::Result<String> {
    // Dropped on every way out, a panic included: the testbed stops its processes.
    let bed = Testbed::start(&Fleet::small(CLUSTER), Options::default()).await?;
    let handle = bed.cluster(CLUSTER).ok_or_else(|| anyhow::anyhow!("no cluster {CLUSTER}"))?;
    let client = handle.client().await?;
    let config = handle.config().await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    deployments.create(&PostParams::default(), &serde_json::from_value(manifest("ghcr.io/acme/serve:1"))?).await?;
    settle(&deployments).await?;
    let image2 = json!({ "spec": { "template": { "spec": { "containers": [ { "name": "serve", "image": "ghcr.io/acme/serve:2" } ] } } } });
    deployments.patch(NAME, &PatchParams::default(), &Patch::Strategic(&image2)).await?;
    settle(&deployments).await?;
    let templates = templates(&Api::namespaced(client.clone(), NAMESPACE)).await?;

    let hub = Hub::new();
    hub.connect(CLUSTER, config)?;
    anyhow::ensure!(hub.wait_synced(Duration::from_secs(120)).await, "the caches did not sync");
    let server = Server::start(hub).await?;
    let bench = Bench { server, http: reqwest::Client::new(), deployments, templates, reads: Default::default(), bed };

    let mut scale: [Vec<Duration>; 3] = Default::default();
    let mut replicas = 1;
    for round in 0..WARM_UP_ROUNDS + SCALE_ROUNDS {
        for i in 0..3 {
            let way = WAYS[(round + i) % 3];
            replicas = 3 - replicas;
            let took = bench.scale(way, replicas).await?;
            if round >= WARM_UP_ROUNDS {
                scale[way as usize].push(took);
            }
            settle(&bench.deployments).await?;
        }
        tracing::info!("scale round {round} done");
    }

    let mut rollback: [Vec<Duration>; 3] = Default::default();
    for round in 0..WARM_UP_ROUNDS + ROLLBACK_ROUNDS {
        for i in 0..3 {
            let way = WAYS[(round + i) % 3];
            let took = bench.rollback(way).await?;
            if round >= WARM_UP_ROUNDS {
                rollback[way as usize].push(took);
            }
            settle(&bench.deployments).await?;
        }
        tracing::info!("rollback round {round} done");
    }
    let reads = std::mem::take(&mut *bench.reads.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    drop(bench);
    Ok(report(&scale, &rollback, &reads))
}

impl Bench {
    fn action_url(&self, action: &str) -> String {
        self.server.url(&format!("/api/v1/clusters/{CLUSTER}/namespaces/{NAMESPACE}/deployments/{NAME}/{action}"))
    }

    /// Reads the deployment, recording how long the round trip took.
    async fn read(&self) -> anyhow::Result<Deployment> {
        let began = Instant::now();
        let d = self.deployments.get(NAME).await?;
        self.reads.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(began.elapsed());
        Ok(d)
    }

    async fn scale(&self, way: Way, replicas: i32) -> anyhow::Result<Duration> {
        self.read().await?;
        let began = Instant::now();
        match way {
            Way::Gantry => {
                let response = self
                    .http
                    .put(self.action_url("scale"))
                    .bearer_auth(&self.server.deployer_token)
                    .json(&json!({ "replicas": replicas }))
                    .send()
                    .await?;
                let status = response.status();
                let body = response.text().await?;
                anyhow::ensure!(status.is_success(), "Gantry's scale answered {status}: {body}");
            }
            Way::Raw => {
                let patch = json!({ "spec": { "replicas": replicas } });
                self.deployments.patch_scale(NAME, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
            Way::Kubectl => {
                let mut command = self.bed.kubectl();
                command.args(["--context", CLUSTER, "-n", NAMESPACE, "scale", &format!("deployment/{NAME}")]);
                command.arg(format!("--replicas={replicas}"));
                return tokio::task::spawn_blocking(move || run_command(command)).await?;
            }
        }
        Ok(began.elapsed())
    }

    async fn rollback(&self, way: Way) -> anyhow::Result<Duration> {
        // Untimed: which template is live, so the raw patch writes the other one back (as a
        // rollback to the previous revision does).
        let live = self.read().await?;
        let other = usize::from(image_of(&live) == "ghcr.io/acme/serve:1");
        let began = Instant::now();
        match way {
            Way::Gantry => {
                let response = self
                    .http
                    .post(self.action_url("rollback"))
                    .bearer_auth(&self.server.deployer_token)
                    .json(&json!({}))
                    .send()
                    .await?;
                let status = response.status();
                let body = response.text().await?;
                anyhow::ensure!(status.is_success(), "Gantry's rollback answered {status}: {body}");
            }
            Way::Raw => {
                let patch: json_patch::Patch = serde_json::from_value(json!([
                    { "op": "replace", "path": "/spec/template", "value": self.templates[other] }
                ]))?;
                self.deployments.patch(NAME, &PatchParams::default(), &Patch::<()>::Json(patch)).await?;
            }
            Way::Kubectl => {
                let mut command = self.bed.kubectl();
                command.args(["--context", CLUSTER, "-n", NAMESPACE, "rollout", "undo", &format!("deployment/{NAME}")]);
                return tokio::task::spawn_blocking(move || run_command(command)).await?;
            }
        }
        let took = began.elapsed();
        let now = self.deployments.get(NAME).await?;
        anyhow::ensure!(image_of(&now) != image_of(&live), "{way:?} rollback left the image at {}", image_of(&now));
        Ok(took)
    }
}

fn manifest(image: &str) -> Value {
    let labels = json!({ "app.kubernetes.io/name": NAME });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": NAME, "namespace": NAMESPACE, "labels": labels },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [ {
                    "name": "serve",
                    "image": image,
                    "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } }
                } ] }
            }
        }
    })
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// The templates of revisions 1 and 2, without the label the controller adds to its
/// ReplicaSets.
async fn templates(sets: &Api<ReplicaSet>) -> anyhow::Result<[Value; 2]> {
    let mut found: [Option<Value>; 2] = [None, None];
    for rs in sets.list(&ListParams::default()).await? {
        let Some(mut template) = rs.spec.map(|s| s.template) else { continue };
        if let Some(labels) = template.as_mut().and_then(|t| t.metadata.as_mut()).and_then(|m| m.labels.as_mut()) {
            labels.remove("pod-template-hash");
        }
        let image = template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        match image.as_str() {
            "ghcr.io/acme/serve:1" => found[0] = Some(serde_json::to_value(template)?),
            "ghcr.io/acme/serve:2" => found[1] = Some(serde_json::to_value(template)?),
            _ => {}
        }
    }
    match found {
        [Some(one), Some(two)] => Ok([one, two]),
        _ => anyhow::bail!("the ReplicaSets of revisions 1 and 2 were not found"),
    }
}

/// Waits until the controller has acted on the latest spec and every replica is ready, so
/// the next timed call starts from a quiet deployment.
async fn settle(api: &Api<Deployment>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = api.get(NAME).await?;
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let done = d.status.as_ref().is_some_and(|s| {
            s.observed_generation >= d.metadata.generation
                && s.replicas == Some(want)
                && s.updated_replicas == Some(want)
                && s.ready_replicas == Some(want)
        });
        if done {
            // The controller's status write is the last thing; give the other watchers
            // (Gantry's included) a moment to see it.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the deployment did not settle within 60 s: {:?}", d.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn run_command(mut command: Command) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let output = command.stdout(Stdio::piped()).stderr(Stdio::piped()).output()?;
    let took = began.elapsed();
    anyhow::ensure!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(took)
}

fn report(scale: &[Vec<Duration>; 3], rollback: &[Vec<Duration>; 3], reads: &[Duration]) -> String {
    let mut out = vec![
        "## Deployment actions".to_string(),
        String::new(),
        format!(
            "Measured {} with `cargo bench -p gantry --bench workloads` (release build; or `scripts/bench.sh`) on {}. \
             One small testbed cluster (Kubernetes {}, kwok {}), Deployment `{NAMESPACE}/{NAME}`; Gantry runs in the \
             benchmark's process with a SQLite store and is called over HTTP with a deployer's bearer token.",
            common::today(),
            common::machine(),
            gantry_testbed::K8S_VERSION,
            gantry_testbed::KWOK_VERSION,
        ),
        String::new(),
        "| Action | Gantry API (median) | Raw kube-rs request (median) | `kubectl` process (median) | Gantry − raw | kubectl ÷ Gantry |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    let mut verdicts = Vec::new();
    for (label, samples, rounds) in [
        ("Scale (replicas 1 ↔ 2): `PUT …/scale` / PATCH `…/scale` / `kubectl scale`", scale, SCALE_ROUNDS),
        (
            "Rollback to the previous revision: `POST …/rollback` / JSON-patch of `spec.template` / `kubectl rollout undo`",
            rollback,
            ROLLBACK_ROUNDS,
        ),
    ] {
        let [gantry, raw, kubectl] = [0, 1, 2].map(|i| median(&samples[i]));
        let added = gantry.as_secs_f64() - raw.as_secs_f64();
        let faster = kubectl.as_secs_f64() / gantry.as_secs_f64().max(1e-9);
        out.push(format!(
            "| {label}, {rounds} rounds | {} | {} | {} | **{:+.1} ms** | **{faster:.1}×** |",
            ms(gantry),
            ms(raw),
            ms(kubectl),
            added * 1000.0
        ));
        verdicts.push((label.split(':').next().unwrap_or(label).to_string(), added, faster));
    }
    out.push(format!(
        "| One read of the deployment (GET), the unit of an apiserver round trip, median of {} | {} | | | | |",
        reads.len(),
        ms(median(reads))
    ));
    out.push(String::new());
    out.push("Goals: Gantry adds ≤ 20 ms to the raw request, and is ≥ 5× faster than a `kubectl` process.".to_string());
    for (action, added, faster) in verdicts {
        let first = if added * 1000.0 <= 20.0 { "met" } else { "**missed**" };
        let second = if faster >= 5.0 { "met" } else { "**missed**" };
        out.push(format!("- {action}: +{:.1} ms ({first}); {faster:.1}× ({second}).", added * 1000.0));
    }
    out.extend([
        String::new(),
        format!(
            "Where the time goes: Gantry's scale makes 2 apiserver requests (a GET for the optimistic-concurrency \
             check, then the PUT of the scale subresource) and its rollback 3 (the LIST of the ReplicaSets, the GET \
             of the concurrency guard, and the PATCH), against 1 for the raw request and 3 for `kubectl rollout \
             undo` (GET, LIST, PATCH) plus its process start; each round trip costs about {} here. Every Gantry call \
             also checks the bearer token in the database (a SELECT; its last use is written at most once a \
             minute), reads the namespace mappings for the policy and inserts an audit record.",
            ms(median(reads))
        ),
        String::new(),
        "Method: each round calls the three ways once, in an order that rotates every round, after two warm-up \
         rounds; every call makes a real change and the deployment settles (untimed) before the next. Gantry's time \
         is the whole HTTP exchange and covers its token check, the policy, a fresh read of the deployment \
         (optimistic concurrency; a rollback also lists the ReplicaSets), the write and the audit record; the raw \
         request is the write alone; `kubectl` is the process's wall time."
            .to_string(),
        String::new(),
    ]);
    out.join("\n")
}
