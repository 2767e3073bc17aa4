//! The route × role matrix. For every REST route, server function and page,
//! built from the route declarations themselves (`gantry_server::rest::declared`,
//! `app::routes`, and the server-function registry), each of five callers
//! (anonymous, a viewer, a deployer, a team admin of another team, a global
//! admin) must be allowed or refused exactly as the route's `Access` says,
//! and an allowed call must succeed. A route without a decision, or without
//! a sample request here, fails the test.

mod common;

use app::routes::Access;
use common::{Who, rand_suffix};
use gantry_domain::policy::Role;
use gantry_testbed::shared::eventually;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Every REST route with its access, from the handlers' own declarations.
fn rest_routes() -> Vec<gantry_server::rest::DeclaredRoute> {
    let (_, openapi) = gantry_server::rest::api();
    gantry_server::rest::declared(&openapi).unwrap_or_else(|e| panic!("{e}"))
}

/// A declared path under /api/v1, as the samples below name it.
fn relative(path: &str) -> &str {
    path.strip_prefix("/api/v1").unwrap_or(path)
}

/// What the fixture world contains, besides the teams and users.
struct Fixture {
    vision: i64,
    /// A deployment in a/vision with at least two revisions.
    deployment: String,
    job: String,
    pod: String,
    node: String,
}

/// Whether `who`, calling with an API token, passes `access`.
fn allowed(access: Access, who: Who) -> bool {
    match (access, who) {
        (Access::Public, _) => true,
        (_, Who::Anonymous) => false,
        // Token management needs a person: no token passes, not even an admin's.
        (Access::Person, _) => false,
        (_, Who::Admin) => true,
        (Access::SignedIn, _) => true,
        (Access::Team(needed), Who::Viewer) => needed <= Role::Viewer,
        (Access::Team(needed), Who::Deployer) => needed <= Role::Deployer,
        (Access::Team(_), Who::OtherTeamAdmin) => false,
        (Access::AnyTeamAdmin, w) => w == Who::OtherTeamAdmin,
        (Access::Admin, _) => false,
    }
}

async fn fixture(app: &common::TestApp) -> Fixture {
    let client = common::bed().cluster("a").unwrap().client().await.unwrap();
    let deployments = Api::<Deployment>::namespaced(client.clone(), "vision");
    // Unique names: the two matrices run at once on the shared clusters.
    let suffix = rand_suffix();
    let name = format!("matrix-app-{suffix}");
    let job_name = format!("matrix-job-{suffix}");
    let name = name.as_str();
    let spec = |image: &str| -> Deployment {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": name, "namespace": "vision", "labels": { "app.kubernetes.io/name": name } },
            "spec": { "replicas": 1, "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
                "template": { "metadata": { "labels": { "app.kubernetes.io/name": name } },
                    "spec": { "containers": [ { "name": "main", "image": image } ] } } }
        }))
        .unwrap()
    };
    deployments.create(&PostParams::default(), &spec("example/app:1")).await.unwrap();
    eventually("revision 1", 30, || async {
        let d = deployments.get(name).await.ok()?;
        (d.metadata.annotations?.get("deployment.kubernetes.io/revision")? == "1").then_some(())
    })
    .await;
    let patch = json!({ "spec": { "template": { "spec": { "containers": [ { "name": "main", "image": "example/app:2" } ] } } } });
    deployments.patch(name, &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": job_name, "namespace": "vision" },
        "spec": { "template": { "metadata": { "annotations": {
                "pod-complete.stage.kwok.x-k8s.io/delay": "3600s", "pod-complete.stage.kwok.x-k8s.io/jitter-delay": "3600s" } },
            "spec": { "restartPolicy": "Never", "containers": [ { "name": "train", "image": "example/trainer:1" } ] } } }
    }))
    .unwrap();
    Api::<Job>::namespaced(client.clone(), "vision").create(&PostParams::default(), &job).await.unwrap();
    let pods = Api::<Pod>::namespaced(client, "vision");
    let pod = eventually("the job's pod runs", 60, || async {
        let list =
            pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job_name}"))).await.ok()?;
        list.items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))?
            .metadata
            .name
    })
    .await;
    // Wait until Gantry's caches have seen it all.
    eventually("the cache has the fixture", 30, || async {
        app.state.hub().cluster("a")?.jobs.read(|jobs| jobs.keys().any(|k| *k.name == *job_name)).then_some(())
    })
    .await;
    let node =
        app.state.hub().cluster("b").unwrap().nodes.read(|nodes| nodes.values().next().unwrap().name.to_string());
    Fixture { vision: app.vision, deployment: name.into(), job: job_name, pod, node }
}

enum Payload {
    None,
    Json(Value),
    /// A CSV body.
    Csv(String),
}

impl Payload {
    fn onto(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Payload::None => request,
            Payload::Json(body) => request.json(&body),
            Payload::Csv(body) => request.header("content-type", "text/csv").body(body),
        }
    }
}

const PRICE_CSV: &str = "cluster,model,capacity_type,usd_per_gpu_hour\n,NVIDIA-L4,spot,0.55\n";

/// Makes a throwaway deployment for a destructive call.
async fn scratch_deployment(app: &common::TestApp) -> String {
    let name = format!("scratch-{}", rand_suffix());
    let caller = app.state.cli_caller("admin").await.unwrap();
    let input = gantry_domain::manifest::LaunchDeploymentInput {
        cluster: "a".into(),
        namespace: "vision".into(),
        name: name.clone(),
        image: "example/app:1".into(),
        replicas: "1".into(),
        ..Default::default()
    };
    app.state.launch_deployment(&caller, &input).await.unwrap();
    name
}

async fn scratch_job(app: &common::TestApp) -> String {
    let name = format!("scratch-job-{}", rand_suffix());
    let caller = app.state.cli_caller("admin").await.unwrap();
    let input = gantry_domain::manifest::LaunchJobInput {
        cluster: "a".into(),
        namespace: "vision".into(),
        name: name.clone(),
        image: "example/trainer:1".into(),
        ..Default::default()
    };
    app.state.launch_job(&caller, &input).await.unwrap();
    name
}

async fn scratch_user(app: &common::TestApp) -> i64 {
    let name = gantry_domain::validate::Username::parse(&format!("u-{}", rand_suffix())).unwrap();
    app.state.store().create_user(&name, "x", false).await.unwrap().id
}

/// A throwaway token of the caller (of the admin for an anonymous caller), to revoke.
async fn scratch_token(app: &common::TestApp, who: Who) -> i64 {
    let user = if who == Who::Anonymous { "admin" } else { who.username() };
    let user_id = app.state.store().user_credentials(user).await.unwrap().unwrap().user.id;
    let new = gantry_store::NewToken {
        user_id,
        name: format!("gone-{}", rand_suffix()),
        max_role: Role::Viewer,
        team_ids: None,
        admin: false,
        expires_at: None,
    };
    app.state.store().create_token(&new).await.unwrap().0.id
}

/// A budget for the fixture team, to clear.
async fn scratch_budget(app: &common::TestApp, fx: &Fixture) {
    let budget = gantry_store::TeamBudget {
        team_id: fx.vision,
        usd_per_month: gantry_domain::cost::Usd::from_micros(1_000_000_000),
        updated_at: 0,
    };
    app.state.store().set_team_budget(&budget).await.unwrap();
}

/// A price of a made-up model, to remove; returns the model.
async fn scratch_price(app: &common::TestApp) -> String {
    let model = format!("gone-{}", rand_suffix());
    let price = gantry_store::GpuPrice {
        model: model.clone(),
        capacity_type: gantry_domain::gpu::CapacityType::OnDemand,
        usd_per_gpu_hour: gantry_domain::cost::Usd::from_micros(1_000_000),
        updated_at: 0,
    };
    app.state.store().set_gpu_price(&price).await.unwrap();
    model
}

/// A Prometheus for cluster b, to remove.
async fn scratch_prometheus(app: &common::TestApp) {
    let settings = gantry_store::ClusterPrometheus {
        cluster: "b".into(),
        url: "http://127.0.0.1:9".into(),
        sealed_token: None,
        updated_at: 0,
    };
    app.state.store().set_cluster_prometheus(&settings).await.unwrap();
}

/// A revision of the fixture deployment other than the current one.
async fn old_revision(app: &common::TestApp, fx: &Fixture) -> i64 {
    let caller = app.state.cli_caller("admin").await.unwrap();
    let history = app.state.deployment_history(&caller, "a", "vision", &fx.deployment).await.unwrap();
    history.iter().find(|r| !r.current).unwrap().revision
}

/// The concrete request for a REST route template.
async fn rest_sample(
    app: &common::TestApp,
    fx: &Fixture,
    method: &http::Method,
    path: &str,
    who: Who,
) -> (String, Payload) {
    let d = format!("/clusters/a/namespaces/vision/deployments/{}", fx.deployment);
    let unique = rand_suffix();
    let kubeconfig = common::bed().cluster("b").unwrap().kubeconfig_yaml();
    let p = |s: String| s;
    let (path, payload) = match (method.as_str(), path) {
        ("POST", "/login") => {
            let user = if who == Who::Anonymous { "admin" } else { who.username() };
            (p("/login".into()), Payload::Json(json!({ "username": user, "password": common::PASSWORD })))
        }
        ("POST", "/logout") => ("/logout".into(), Payload::None),
        ("GET", "/me") => ("/me".into(), Payload::None),
        ("GET", "/users") => ("/users".into(), Payload::None),
        ("POST", "/users") => (
            "/users".into(),
            Payload::Json(json!({ "username": format!("new-{unique}"), "password": common::PASSWORD })),
        ),
        ("DELETE", "/users/{id}") => (format!("/users/{}", scratch_user(app).await), Payload::None),
        ("GET", "/teams") => ("/teams".into(), Payload::None),
        ("POST", "/teams") => ("/teams".into(), Payload::Json(json!({ "name": format!("team-{unique}") }))),
        ("DELETE", "/teams/{id}") => {
            let id = app.state.store().create_team(&format!("gone-{unique}")).await.unwrap().id;
            (format!("/teams/{id}"), Payload::None)
        }
        ("GET", "/teams/{id}/members") => (format!("/teams/{}/members", fx.vision), Payload::None),
        ("PUT", "/teams/{id}/members/{username}") => {
            scratch_user(app).await;
            (format!("/teams/{}/members/viewer", fx.vision), Payload::Json(json!({ "role": "viewer" })))
        }
        ("DELETE", "/teams/{id}/members/{username}") => {
            let id = scratch_user(app).await;
            app.state.store().set_membership(fx.vision, id, Role::Viewer).await.unwrap();
            let name = app.state.store().user(id).await.unwrap().unwrap().username;
            (format!("/teams/{}/members/{name}", fx.vision), Payload::None)
        }
        ("GET", "/sso") => ("/sso".into(), Payload::None),
        ("PUT", "/sso/admin-groups/{group}") => (format!("/sso/admin-groups/admins-{unique}"), Payload::None),
        ("DELETE", "/sso/admin-groups/{group}") => {
            let group = format!("gone-{unique}");
            app.state.store().set_group_mapping(&group, gantry_store::Grant::GlobalAdmin).await.unwrap();
            (format!("/sso/admin-groups/{group}"), Payload::None)
        }
        ("GET", "/teams/{id}/group-mappings") => (format!("/teams/{}/group-mappings", fx.vision), Payload::None),
        ("PUT", "/teams/{id}/group-mappings/{group}") => {
            (format!("/teams/{}/group-mappings/g-{unique}", fx.vision), Payload::Json(json!({ "role": "viewer" })))
        }
        ("DELETE", "/teams/{id}/group-mappings/{group}") => {
            let group = format!("gone-{unique}");
            let grant = gantry_store::Grant::Team { team_id: fx.vision, role: Role::Viewer };
            app.state.store().set_group_mapping(&group, grant).await.unwrap();
            (format!("/teams/{}/group-mappings/{group}", fx.vision), Payload::None)
        }
        ("GET", "/teams/{id}/environments") => (format!("/teams/{}/environments", fx.vision), Payload::None),
        ("PUT", "/teams/{id}/environments") => (
            format!("/teams/{}/environments", fx.vision),
            Payload::Json(json!([
                { "name": "staging", "cluster": "a", "namespace": "vision" },
                { "name": "prod", "cluster": "b", "namespace": "vision" }
            ])),
        ),
        ("GET", "/teams/{id}/budget") => (format!("/teams/{}/budget", fx.vision), Payload::None),
        ("PUT", "/teams/{id}/budget") => {
            (format!("/teams/{}/budget", fx.vision), Payload::Json(json!({ "usd_per_month": 25000 })))
        }
        ("DELETE", "/teams/{id}/budget") => {
            scratch_budget(app, fx).await;
            (format!("/teams/{}/budget", fx.vision), Payload::None)
        }
        ("GET", "/prices") => ("/prices".into(), Payload::None),
        ("PUT", "/prices/{model}/{capacity_type}") => {
            ("/prices/NVIDIA-L4/spot".into(), Payload::Json(json!({ "usd_per_gpu_hour": 0.55 })))
        }
        ("DELETE", "/prices/{model}/{capacity_type}") => {
            (format!("/prices/{}/on-demand", scratch_price(app).await), Payload::None)
        }
        ("GET", "/namespaces") => ("/namespaces".into(), Payload::None),
        ("POST", "/namespaces") => (
            "/namespaces".into(),
            Payload::Json(json!({ "cluster": "a", "namespace": format!("ns-{unique}"), "team_id": fx.vision })),
        ),
        ("DELETE", "/namespaces/{cluster}/{namespace}") => {
            app.state.store().map_namespace("a", &format!("gone-{unique}"), fx.vision).await.unwrap();
            (format!("/namespaces/a/gone-{unique}"), Payload::None)
        }
        ("GET", "/tokens") => ("/tokens".into(), Payload::None),
        ("POST", "/tokens") => ("/tokens".into(), Payload::Json(json!({ "name": format!("t-{unique}") }))),
        ("DELETE", "/tokens/{id}") => (format!("/tokens/{}", scratch_token(app, who).await), Payload::None),
        ("GET", "/audit") => ("/audit".into(), Payload::None),
        ("GET", "/audit.csv") => ("/audit.csv".into(), Payload::None),
        ("GET", "/overview") => ("/overview".into(), Payload::None),
        ("GET", "/clusters") => ("/clusters".into(), Payload::None),
        ("POST", "/clusters") => (
            "/clusters".into(),
            Payload::Json(json!({ "name": format!("c-{unique}"), "context": "b", "kubeconfig": kubeconfig })),
        ),
        ("DELETE", "/clusters/{cluster}") => {
            let caller = app.state.cli_caller("admin").await.unwrap();
            app.state.add_cluster(&caller, &format!("gone-{unique}"), &kubeconfig, "b", false).await.unwrap();
            (format!("/clusters/gone-{unique}"), Payload::None)
        }
        ("GET", "/clusters/{cluster}/nodes") => ("/clusters/b/nodes".into(), Payload::None),
        ("GET", "/clusters/{cluster}/autoscaling") => ("/clusters/b/autoscaling".into(), Payload::None),
        ("GET", "/clusters/{cluster}/nodes/{node}") => (format!("/clusters/b/nodes/{}", fx.node), Payload::None),
        ("GET", "/pods") | ("GET", "/jobs") | ("GET", "/deployments") | ("GET", "/pending") | ("GET", "/quotas") => {
            (path.to_string(), Payload::None)
        }
        ("PUT", "/clusters/{cluster}/namespaces/{namespace}/quota") => {
            ("/clusters/b/namespaces/vision/quota".into(), Payload::Json(json!({ "gpus": 64 })))
        }
        ("POST", "/preview") => (
            "/preview".into(),
            Payload::Json(json!({ "cluster": "a", "namespace": "vision", "gpus_per_pod": 1, "pods": 1 })),
        ),
        ("POST", "/clusters/{cluster}/namespaces/{namespace}/deployments") => (
            "/clusters/a/namespaces/vision/deployments".into(),
            Payload::Json(json!({ "name": format!("l-{unique}"), "image": "example/app:1", "replicas": 1 })),
        ),
        ("GET", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}") => (d.clone(), Payload::None),
        ("PATCH", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}") => {
            (d.clone(), Payload::Json(json!({ "image": format!("example/app:{unique}") })))
        }
        ("DELETE", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}") => {
            let name = scratch_deployment(app).await;
            (format!("/clusters/a/namespaces/vision/deployments/{name}?confirm={name}"), Payload::None)
        }
        ("PUT", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/scale") => {
            (format!("{d}/scale"), Payload::Json(json!({ "replicas": 1 })))
        }
        ("PUT", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/autoscale") => (
            format!("{d}/autoscale"),
            Payload::Json(json!({ "enabled": true, "min_replicas": 1, "max_replicas": 2, "target_cpu_percent": 80 })),
        ),
        ("POST", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/rollback") => {
            (format!("{d}/rollback"), Payload::Json(json!({})))
        }
        ("GET", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/history") => {
            (format!("{d}/history"), Payload::None)
        }
        ("GET", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/diff") => {
            (format!("{d}/diff?revision={}", old_revision(app, fx).await), Payload::None)
        }
        ("POST", "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/promote") => {
            (format!("{d}/promote"), Payload::None)
        }
        ("POST", "/clusters/{cluster}/namespaces/{namespace}/jobs") => (
            "/clusters/a/namespaces/vision/jobs".into(),
            Payload::Json(json!({ "name": format!("j-{unique}"), "image": "example/trainer:1" })),
        ),
        ("GET", "/clusters/{cluster}/namespaces/{namespace}/jobs/{name}") => {
            (format!("/clusters/a/namespaces/vision/jobs/{}", fx.job), Payload::None)
        }
        ("DELETE", "/clusters/{cluster}/namespaces/{namespace}/jobs/{name}") => {
            (format!("/clusters/a/namespaces/vision/jobs/{}", scratch_job(app).await), Payload::None)
        }
        ("GET", "/clusters/{cluster}/namespaces/{namespace}/pods/{pod}/logs") => {
            (format!("/clusters/a/namespaces/vision/pods/{}/logs?follow=false", fx.pod), Payload::None)
        }
        ("GET", "/events") => ("/events".into(), Payload::None),
        ("GET", "/allocation") => ("/allocation?window=24h&aggregate=team".into(), Payload::None),
        ("GET", "/allocation.csv") => ("/allocation.csv?window=24h".into(), Payload::None),
        ("GET", "/series") => ("/series?chart=spend&by=team&range=24h&width=800".into(), Payload::None),
        ("GET", "/prices/history") => ("/prices/history?model=NVIDIA-L4&capacity_type=spot".into(), Payload::None),
        ("GET", "/prices.csv") => ("/prices.csv".into(), Payload::None),
        ("PUT", "/prices.csv") => ("/prices.csv".into(), Payload::Csv(PRICE_CSV.into())),
        ("PUT", "/clusters/{cluster}/prices/{model}/{capacity_type}") => {
            ("/clusters/b/prices/NVIDIA-L4/spot".into(), Payload::Json(json!({ "usd_per_gpu_hour": 0.5 })))
        }
        ("DELETE", "/clusters/{cluster}/prices/{model}/{capacity_type}") => {
            ("/clusters/b/prices/NVIDIA-L4/spot".into(), Payload::None)
        }
        ("GET", "/clusters/{cluster}/prometheus") => ("/clusters/b/prometheus".into(), Payload::None),
        ("PUT", "/clusters/{cluster}/prometheus") => (
            "/clusters/b/prometheus".into(),
            Payload::Json(json!({ "url": "http://127.0.0.1:9", "save_anyway": true })),
        ),
        ("DELETE", "/clusters/{cluster}/prometheus") => {
            scratch_prometheus(app).await;
            ("/clusters/b/prometheus".into(), Payload::None)
        }
        ("PUT", "/teams/{id}/webhook") => {
            (format!("/teams/{}/webhook", fx.vision), Payload::Json(json!({ "url": "http://127.0.0.1:9/hook" })))
        }
        ("DELETE", "/teams/{id}/webhook") => (format!("/teams/{}/webhook", fx.vision), Payload::None),
        (m, t) => panic!("no sample request for {m} {t}: add one to the route × role test"),
    };
    (format!("/api/v1{path}"), payload)
}

/// The concrete request for a server function.
async fn server_fn_sample(app: &common::TestApp, fx: &Fixture, endpoint: &str, who: Who) -> String {
    let unique = rand_suffix();
    let d = format!("cluster=a&namespace=vision&name={}", fx.deployment);
    let kubeconfig: String = url_encode(&common::bed().cluster("b").unwrap().kubeconfig_yaml());
    match endpoint {
        "me" | "sign_in_options" | "my_tokens" | "list_users" | "list_teams" | "list_namespaces" | "overview"
        | "clusters" | "preparation" | "quotas" | "launch_options" => String::new(),
        "login" => format!(
            "username={}&password={}",
            if who == Who::Anonymous { "admin" } else { who.username() },
            common::PASSWORD
        ),
        "logout" => "csrf=".into(),
        "change_password" => format!("csrf=&current={0}&new={0}&confirm={0}", common::PASSWORD),
        "create_token" => format!("csrf=&name=t-{unique}&max_role=&expires_in_days=7"),
        "revoke_token" => format!("csrf=&id={}", scratch_token(app, who).await),
        "create_user" => format!("csrf=&username=f-{unique}&password={}", common::PASSWORD),
        "delete_user" => format!("csrf=&id={}", scratch_user(app).await),
        "set_admin" => format!("csrf=&id={}&admin=false", scratch_user(app).await),
        "reset_password" => format!("csrf=&id={}&password={}", scratch_user(app).await, common::PASSWORD),
        "create_team" => format!("csrf=&name=ft-{unique}"),
        "delete_team" => {
            format!("csrf=&id={}", app.state.store().create_team(&format!("fgone-{unique}")).await.unwrap().id)
        }
        "team_page" => format!("id={}", fx.vision),
        "sso_overview" => String::new(),
        "set_group_mapping" => format!("csrf=&group=g-{unique}&team_id={}&role=viewer", fx.vision),
        "remove_group_mapping" => {
            let group = format!("gone-{unique}");
            let grant = gantry_store::Grant::Team { team_id: fx.vision, role: Role::Viewer };
            app.state.store().set_group_mapping(&group, grant).await.unwrap();
            format!("csrf=&group={group}&team_id={}", fx.vision)
        }
        "set_member" => format!("csrf=&team_id={}&username=viewer&role=viewer", fx.vision),
        "remove_member" => {
            let id = scratch_user(app).await;
            app.state.store().set_membership(fx.vision, id, Role::Viewer).await.unwrap();
            format!("csrf=&team_id={}&user_id={id}", fx.vision)
        }
        "map_namespace" => format!("csrf=&cluster=a&namespace=fns-{unique}&team_id={}", fx.vision),
        "unmap_namespace" => {
            app.state.store().map_namespace("a", &format!("fgone-{unique}"), fx.vision).await.unwrap();
            format!("csrf=&cluster=a&namespace=fgone-{unique}")
        }
        "set_environments" => {
            format!("csrf=&team_id={}&lines={}", fx.vision, url_encode("staging a/vision\nprod b/vision"))
        }
        "set_budget" => format!("csrf=&team_id={}&usd_per_month={}", fx.vision, url_encode("$25,000")),
        "clear_budget" => {
            scratch_budget(app, fx).await;
            format!("csrf=&team_id={}", fx.vision)
        }
        "prices" => String::new(),
        "set_price" => "csrf=&model=NVIDIA-L4&capacity_type=spot&usd_per_gpu_hour=0.55".into(),
        "delete_price" => format!("csrf=&model={}&capacity_type=on-demand", scratch_price(app).await),
        "audit_log" => "query[actor]=".into(),
        "kubeconfig_contexts" => format!("csrf=&kubeconfig={kubeconfig}"),
        "add_cluster" => format!("csrf=&name=fc-{unique}&context=b&kubeconfig={kubeconfig}"),
        "remove_cluster" => {
            let caller = app.state.cli_caller("admin").await.unwrap();
            let raw = common::bed().cluster("b").unwrap().kubeconfig_yaml();
            app.state.add_cluster(&caller, &format!("fgone-{unique}"), &raw, "b", false).await.unwrap();
            format!("csrf=&name=fgone-{unique}")
        }
        "set_quota" => "csrf=&cluster=b&namespace=vision&gpus=64".into(),
        "cluster_page" => "name=b&query[q]=".into(),
        "node_page" => format!("cluster=b&name={}", fx.node),
        "pods" | "jobs" | "deployments" | "pending" => "query[q]=".into(),
        "job_page" => format!("cluster=a&namespace=vision&name={}", fx.job),
        "preview_fit" => "cluster=a&namespace=vision&gpu_model=&gpus=1&pods=1".into(),
        "launch_deployment" => format!(
            "csrf=&input[cluster]=a&input[namespace]=vision&input[name]=fl-{unique}&input[image]=example/app:1&input[replicas]=1"
        ),
        "launch_job" => format!(
            "csrf=&input[cluster]=a&input[namespace]=vision&input[name]=fj-{unique}&input[image]=example/trainer:1"
        ),
        "deployment_page" => d,
        "scale_deployment" => format!("csrf=&{d}&replicas=1&version="),
        "autoscale_deployment" => format!("csrf=&{d}&enabled=true&min_replicas=1&max_replicas=2&target_cpu_percent=80"),
        "update_deployment" => {
            format!("csrf=&{d}&image=example/app:f{unique}&model_version=&max_surge=&max_unavailable=&version=")
        }
        "rollback_deployment" => format!("csrf=&{d}&to_revision=&version="),
        "deployment_diff" => format!("{d}&revision={}", old_revision(app, fx).await),
        "delete_deployment" => {
            let name = scratch_deployment(app).await;
            format!("csrf=&cluster=a&namespace=vision&name={name}&confirm={name}&version=")
        }
        "promote_deployment" => format!("csrf=&{d}"),
        "cancel_job" => format!("csrf=&cluster=a&namespace=vision&name={}", scratch_job(app).await),
        "allocation" => "query[window]=24h&query[aggregate]=team".into(),
        "series" => "query[chart]=gpus&query[by]=model&query[range]=6h&query[width]=600".into(),
        "price_history" => "model=NVIDIA-L4&capacity_type=spot".into(),
        "set_cluster_price" => "csrf=&cluster=b&model=NVIDIA-L4&capacity_type=spot&usd_per_gpu_hour=0.5".into(),
        "import_prices" => format!("csrf=&csv={}", url_encode(PRICE_CSV)),
        "set_webhook" => format!("csrf=&team_id={}&url={}", fx.vision, url_encode("http://127.0.0.1:9/hook")),
        "set_prometheus" => format!("csrf=&cluster=b&url={}&token=&save_anyway=true", url_encode("http://127.0.0.1:9")),
        other => panic!("no sample request for server function {other}: add one to the route × role test"),
    }
}

async fn page_sample(fx: &Fixture, template: &str) -> String {
    match template {
        "/clusters/:cluster" => "/clusters/b".into(),
        "/clusters/:cluster/nodes/:node" => format!("/clusters/b/nodes/{}", fx.node),
        "/clusters/:cluster/namespaces/:namespace/deployments/:name" => {
            format!("/clusters/a/namespaces/vision/deployments/{}", fx.deployment)
        }
        "/clusters/:cluster/namespaces/:namespace/jobs/:name" => {
            format!("/clusters/a/namespaces/vision/jobs/{}", fx.job)
        }
        "/teams/:id" => format!("/teams/{}", fx.vision),
        t if !t.contains(':') => t.to_string(),
        other => panic!("no sample path for page {other}: add one to the route × role test"),
    }
}

fn url_encode(text: &str) -> String {
    gantry_domain::view::encode(text)
}

struct Outcome {
    failures: Vec<String>,
    checked: usize,
}

impl Outcome {
    fn check(&mut self, what: &str, who: Who, access: Access, status: u16, body: &str) {
        self.checked += 1;
        let expected = allowed(access, who);
        let ok = if status >= 500 {
            false
        } else if expected {
            (200..400).contains(&status)
        } else if who == Who::Anonymous {
            status == 401 || (status == 302 || status == 303)
        } else {
            status == 403
        };
        if !ok {
            let body: String = body.chars().take(300).collect();
            self.failures.push(format!(
                "{what} as {who:?} ({access:?}): status {status}, expected {}: {body}",
                if expected { "success" } else { "refusal" }
            ));
        }
    }

    /// A route for a person, called with a session: it must succeed.
    fn check_person(&mut self, what: &str, who: Who, status: u16, body: &str) {
        self.checked += 1;
        if !(200..400).contains(&status) {
            let body: String = body.chars().take(300).collect();
            self.failures.push(format!("{what} as {who:?}: status {status}, expected success: {body}"));
        }
    }

    /// A change in a protected environment: refused (403, or 401 when
    /// anonymous) unless the caller is a team admin of its team (here only
    /// the global admin), whom the policy lets through to whatever the
    /// object's state says.
    fn check_protected(&mut self, what: &str, who: Who, status: u16, body: &str) {
        self.checked += 1;
        let ok = match who {
            Who::Anonymous => status == 401,
            Who::Admin => !matches!(status, 401 | 403) && status < 500,
            _ => status == 403 && (body.contains("protected environment") || who == Who::OtherTeamAdmin),
        };
        if !ok {
            let body: String = body.chars().take(300).collect();
            self.failures.push(format!("{what} as {who:?}: status {status}: {body}"));
        }
    }
}

#[tokio::test]
async fn every_route_allows_and_refuses_exactly_as_its_access_says() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    every_route_as_its_access_says(app).await;
}

/// The same matrix, unchanged, with people who came through single sign-on:
/// their accounts made on first sign-in, their roles from their groups.
#[tokio::test]
async fn every_route_allows_and_refuses_exactly_as_its_access_says_for_people_from_single_sign_on() {
    let app = common::spawn_app_with_sso_people(common::Backend::Sqlite).await.unwrap();
    every_route_as_its_access_says(app).await;
}

async fn every_route_as_its_access_says(app: common::TestApp) {
    let fx = fixture(&app).await;
    let mut tokens = Vec::new();
    for who in Who::ALL {
        tokens.push((who, app.token(who).await));
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut outcome = Outcome { failures: Vec::new(), checked: 0 };

    // REST, from the router's own table.
    for route in rest_routes() {
        for (who, token) in &tokens {
            let (path, payload) = rest_sample(&app, &fx, &route.method, relative(&route.path), *who).await;
            let mut request = http.request(route.method.clone(), app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request = payload.onto(request);
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            // Streams never end; the status is enough.
            let body =
                if path.ends_with("/events") { String::new() } else { response.text().await.unwrap_or_default() };
            outcome.check(&format!("{} {}", route.method, route.path), *who, route.access, status, &body);
        }
    }

    // Server functions, from the registry every #[server] function joins.
    let registered: Vec<String> = server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .filter(|p| p.starts_with("/fn/"))
        .collect();
    assert!(registered.len() >= 40, "server functions are registered: {registered:?}");
    for path in registered {
        let endpoint = path.trim_start_matches("/fn/");
        let access = app::routes::server_fn_access(endpoint)
            .unwrap_or_else(|| panic!("server function {endpoint} has no entry in app::routes::SERVER_FNS"));
        for (who, token) in &tokens {
            let body = server_fn_sample(&app, &fx, endpoint, *who).await;
            let mut request =
                http.post(app.url(&path)).header("content-type", "application/x-www-form-urlencoded").body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            outcome.check(&format!("server fn {endpoint}"), *who, access, status, &text);
        }
    }

    // Pages, from the router's route list.
    let pages = gantry_server::web::route_list();
    assert!(pages.len() >= 20);
    for listing in pages {
        let template = listing.path().replace("{", ":").replace("}", "");
        let template = if template.is_empty() { "/".to_string() } else { template };
        let access = app::routes::page_access(&template)
            .unwrap_or_else(|| panic!("page {template} has no entry in app::routes::PAGES"));
        let path = page_sample(&fx, &template).await;
        for (who, token) in &tokens {
            // As a browser navigates: the Accept header makes redirects real 302s.
            let mut request = http.get(app.url(&path)).header("accept", "text/html,application/xhtml+xml");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let location =
                response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
            if status == 302 {
                assert!(location.starts_with("/login"), "page {path} redirects to {location}");
            }
            let text = response.text().await.unwrap_or_default();
            outcome.check(&format!("page {template}"), *who, access, status, &text);
        }
    }

    // Routes for a person, not a token: signed in with a session, every
    // caller may use them (each on their own account).
    for who in [Who::Viewer, Who::Deployer, Who::OtherTeamAdmin, Who::Admin] {
        let (session, csrf) = app.sign_in(who).await;
        for route in rest_routes().into_iter().filter(|r| r.access == Access::Person) {
            let (path, payload) = rest_sample(&app, &fx, &route.method, relative(&route.path), who).await;
            let mut request = session.request(route.method.clone(), app.url(&path)).header("x-csrf-token", &csrf);
            request = payload.onto(request);
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            outcome.check_person(&format!("{} {} (session)", route.method, route.path), who, status, &text);
        }
        for (endpoint, access) in app::routes::SERVER_FNS.iter().filter(|(_, a)| *a == Access::Person) {
            // The password change ends every session of the user: it goes last, alone.
            if *endpoint == "change_password" {
                continue;
            }
            let body = server_fn_sample(&app, &fx, endpoint, who).await.replacen("csrf=", &format!("csrf={csrf}"), 1);
            let response = session
                .post(app.url(&format!("/fn/{endpoint}")))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            outcome.check_person(&format!("server fn {endpoint} (session)"), who, status, &text);
            let _ = access;
        }
    }

    // A protected environment: every change in b/vision (prod) needs a team
    // admin. Nobody in the fixture is vision's team admin, so only the global
    // admin passes; a refusal is a 403 whatever the object.
    let environments = app.state.store().environments(fx.vision).await.unwrap();
    let protected: Vec<_> =
        environments.into_iter().map(|e| gantry_store::Environment { protected: e.cluster == "b", ..e }).collect();
    app.state.store().set_environments(fx.vision, &protected).await.unwrap();
    let into_prod = |text: &str| {
        text.replace("/clusters/a/namespaces/vision", "/clusters/b/namespaces/vision")
            .replace("cluster=a&namespace=vision", "cluster=b&namespace=vision")
            .replace("input[cluster]=a&input[namespace]=vision", "input[cluster]=b&input[namespace]=vision")
    };
    for route in rest_routes().into_iter().filter(|r| r.access == Access::Team(Role::Deployer)) {
        for (who, token) in &tokens {
            let (path, payload) = rest_sample(&app, &fx, &route.method, relative(&route.path), *who).await;
            // A promotion changes its target: the sample already promotes from
            // staging into prod. Everything else changes the namespace it names.
            let path = if path.ends_with("/promote") { path } else { into_prod(&path) };
            if !path.contains("/clusters/b/namespaces/vision") && !path.ends_with("/promote") {
                continue;
            }
            let mut request = http.request(route.method.clone(), app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request = payload.onto(request);
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            outcome.check_protected(&format!("{} {} in prod", route.method, route.path), *who, status, &text);
        }
    }
    for (endpoint, _) in app::routes::SERVER_FNS.iter().filter(|(_, a)| *a == Access::Team(Role::Deployer)) {
        for (who, token) in &tokens {
            let sample = server_fn_sample(&app, &fx, endpoint, *who).await;
            let body = if *endpoint == "promote_deployment" { sample } else { into_prod(&sample) };
            if !body.contains("cluster]=b") && !body.contains("cluster=b") && *endpoint != "promote_deployment" {
                continue;
            }
            let mut request = http
                .post(app.url(&format!("/fn/{endpoint}")))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            outcome.check_protected(&format!("server fn {endpoint} in prod"), *who, status, &text);
        }
    }

    assert!(outcome.checked > 500, "checked {} combinations", outcome.checked);
    assert!(
        outcome.failures.is_empty(),
        "{} of {} checks failed:\n{}",
        outcome.failures.len(),
        outcome.checked,
        outcome.failures.join("\n")
    );
}

#[tokio::test]
async fn every_access_table_entry_names_a_real_route() {
    let routes = rest_routes();
    let rest: Vec<&str> = routes.iter().map(|r| r.path.as_str()).collect();
    assert!(rest.len() > 40);
    let pages: Vec<String> = gantry_server::web::route_list()
        .iter()
        .map(|l| l.path().replace("{", ":").replace("}", ""))
        .map(|p| if p.is_empty() { "/".to_string() } else { p })
        .collect();
    for (page, _) in app::routes::PAGES {
        assert!(pages.contains(&page.to_string()), "{page} is in PAGES but not a route");
    }
    let fns: Vec<String> =
        server_fn::axum::server_fn_paths().map(|(p, _)| p.trim_start_matches("/fn/").to_string()).collect();
    for (endpoint, _) in app::routes::SERVER_FNS {
        assert!(fns.contains(&endpoint.to_string()), "{endpoint} is in SERVER_FNS but not a server function");
    }
}
