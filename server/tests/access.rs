//! Sign-in, sessions, tokens, CSRF, throttling, bad input and the plumbing
//! endpoints, over HTTP against a real server. The account tests run on both
//! SQLite and PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, Who};
use gantry_domain::throttle::ThrottleRules;
use gantry_service::ServiceConfig;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("gantry_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
}

async fn login_raw(
    app: &common::TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/v1/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

both_backends!(session_id_rotates_at_login_and_logout_ends_it_on_the_server, |app| {
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let first = login_raw(&app, &plain, "deployer", PASSWORD).await;
    assert_eq!(first.status(), 200);
    let cookie_1 = session_cookie(&first).expect("a session cookie");
    let set_cookie = first.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_lowercase();
    assert!(set_cookie.contains("httponly") && set_cookie.contains("samesite=lax"), "{set_cookie}");
    let me = plain.get(app.url("/api/v1/me")).header(COOKIE, &cookie_1).send().await.unwrap();
    assert_eq!(me.status(), 200);

    // Signing in again from the same session gives a new id; the old one is dead.
    let second = plain
        .post(app.url("/api/v1/login"))
        .header(COOKIE, &cookie_1)
        .json(&json!({ "username": "deployer", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie_2 = session_cookie(&second).expect("a rotated cookie");
    assert_ne!(cookie_1, cookie_2);
    assert_eq!(plain.get(app.url("/api/v1/me")).header(COOKIE, &cookie_1).send().await.unwrap().status(), 401);
    let me: Value =
        plain.get(app.url("/api/v1/me")).header(COOKIE, &cookie_2).send().await.unwrap().json().await.unwrap();
    let csrf = me["csrf"].as_str().unwrap().to_string();

    let out = plain
        .post(app.url("/api/v1/logout"))
        .header(COOKIE, &cookie_2)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(
        plain.get(app.url("/api/v1/me")).header(COOKIE, &cookie_2).send().await.unwrap().status(),
        401,
        "a replayed cookie after logout is refused: the session is gone from the server"
    );
    let audit = app
        .state
        .store()
        .audit(&gantry_store::AuditFilter { actor: Some("deployer".into()), ..Default::default() })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert!(actions.contains(&"login") && actions.contains(&"logout"), "{actions:?}");
});

both_backends!(failed_sign_ins_slow_down_then_lock_out_and_are_audited, |_app| {
    // Timings are only ever checked from below: a sleep is guaranteed, while
    // how long the password check itself takes depends on the machine.
    let fast = ThrottleRules {
        free_failures: 2,
        base_delay_ms: 1_500,
        max_delay_ms: 3_000,
        lockout_after: 4,
        lockout_ms: 60_000,
        window_ms: 60_000,
    };
    let backend = _app.backend;
    drop(_app);
    let app = common::spawn_app_with(backend, ServiceConfig { throttle_account: fast, ..ServiceConfig::default() })
        .await
        .unwrap();
    let client = app.browser();
    let mut times = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let response = login_raw(&app, &client, "viewer", "wrong password!").await;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["message"], "wrong username or password");
        times.push(started.elapsed());
    }
    assert!(times[2] >= Duration::from_millis(1_500), "the third failure is delayed: {times:?}");
    assert!(times[3] >= Duration::from_millis(3_000), "and the fourth twice as long: {times:?}");
    let locked = login_raw(&app, &client, "viewer", PASSWORD).await;
    assert_eq!(locked.status(), 429, "even the right password is refused while locked out");
    let body: Value = locked.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("too many failed sign-ins"));
    // Another account from the same address is not locked.
    assert_eq!(login_raw(&app, &client, "deployer", PASSWORD).await.status(), 200);
    let lockouts = app
        .state
        .store()
        .audit(&gantry_store::AuditFilter { action: Some("login.lockout".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(lockouts.len(), 1);
    let failures = app
        .state
        .store()
        .audit(&gantry_store::AuditFilter {
            action: Some("login".into()),
            actor: Some("viewer".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(failures.iter().filter(|r| r.result == gantry_store::AuditResult::Failed).count() >= 4);
    assert!(
        failures.iter().any(|r| r.result == gantry_store::AuditResult::Denied),
        "the locked-out attempt is audited too"
    );
});

both_backends!(tokens_authenticate_until_revoked_or_expired, |app| {
    let (client, csrf) = app.sign_in(Who::Deployer).await;
    let created: Value = client
        .post(app.url("/api/v1/tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "ci", "max_role": "viewer", "expires_in_days": 30 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    let anonymous = reqwest::Client::new();
    let me: Value =
        anonymous.get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "deployer");
    assert_eq!(me["teams"][0]["role"], "viewer", "the token carries only the rights asked for");
    let tokens: Value = client.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    assert!(tokens[0]["last_used_at"].is_i64(), "the list shows when it was last used");
    assert!(!tokens.to_string().contains(&secret), "the secret is never shown again");
    // A token limited to viewer cannot scale.
    let scale = anonymous
        .put(app.url("/api/v1/clusters/a/namespaces/vision/deployments/none/scale"))
        .bearer_auth(&secret)
        .json(&json!({ "replicas": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(scale.status(), 403);

    let revoke =
        client.delete(app.url(&format!("/api/v1/tokens/{id}"))).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(revoke.status(), 200);
    let refused = anonymous.get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["message"], "the API token was revoked");

    let user = app.state.store().user_credentials("deployer").await.unwrap().unwrap().user;
    let (_, expired) = app
        .state
        .store()
        .create_token(&gantry_store::NewToken {
            user_id: user.id,
            name: "old".into(),
            max_role: gantry_domain::policy::Role::Deployer,
            team_ids: None,
            admin: false,
            expires_at: Some(gantry_store::now_ms() - 1),
        })
        .await
        .unwrap();
    let response = anonymous.get(app.url("/api/v1/me")).bearer_auth(&expired).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["message"], "the API token has expired");
    assert_eq!(anonymous.get(app.url("/api/v1/me")).bearer_auth("gantry_forged").send().await.unwrap().status(), 401);
});

#[tokio::test]
async fn cookie_changes_need_the_csrf_token_and_a_same_site_origin() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let (client, csrf) = app.sign_in(Who::Admin).await;
    let team = |name: &str| json!({ "name": name });
    let missing = client.post(app.url("/api/v1/teams")).json(&team("no-token")).send().await.unwrap();
    assert_eq!(missing.status(), 403);
    let wrong = client
        .post(app.url("/api/v1/teams"))
        .header("x-csrf-token", "nope")
        .json(&team("wrong-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let cross = client
        .post(app.url("/api/v1/teams"))
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .json(&team("cross-site"))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("cross-site"));
    let ok = client
        .post(app.url("/api/v1/teams"))
        .header("x-csrf-token", &csrf)
        .header("origin", &app.base)
        .json(&team("good"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Server functions take the token as a form field.
    let form = |csrf: &str| format!("csrf={csrf}&name=from-form");
    let bad = client
        .post(app.url("/fn/create_team"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("stale"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 403);
    let good = client
        .post(app.url("/fn/create_team"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let names: Vec<String> = app.state.store().list_teams().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"good".to_string()) && names.contains(&"from-form".to_string()));
    for refused in ["no-token", "wrong-token", "cross-site"] {
        assert!(!names.contains(&refused.to_string()), "{refused} must not exist");
    }
}

#[tokio::test]
async fn bad_usernames_and_bodies_get_clear_4xx_and_create_nothing() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let (client, csrf) = app.sign_in(Who::Admin).await;
    let before = app.state.store().count_users().await.unwrap();
    for username in
        ["", &"a".repeat(65), "ålice", "Ꭺdmin", "x'; DROP TABLE users; --", "<script>alert(1)</script>", "a b"]
    {
        let response = client
            .post(app.url("/api/v1/users"))
            .header("x-csrf-token", &csrf)
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{username:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["fields"][0]["field"], "username", "{username:?}: {body}");
    }
    let short = client
        .post(app.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "username": "ok", "password": "short" }))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 422);
    let long = client
        .post(app.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "username": "ok", "password": "x".repeat(1025) }))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status(), 422);
    assert_eq!(app.state.store().count_users().await.unwrap(), before, "no user was half-created");

    for body in ["{", "[]", "null", "{\"username\": 5}", "\u{0}"] {
        let response = client
            .post(app.url("/api/v1/users"))
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{body:?}: {}", response.status());
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].as_str().unwrap().contains("not valid"), "{body:?}");
    }
    let huge = client
        .post(app.url("/api/v1/clusters"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "big", "context": "x", "kubeconfig": "a".repeat(1024 * 1024 + 10) }))
        .send()
        .await
        .unwrap();
    assert!(huge.status().is_client_error());
    let garbage = client
        .post(app.url("/api/v1/clusters"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "garbage", "context": "x", "kubeconfig": "{{{ not yaml" }))
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 422);
    assert!(garbage.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("kubeconfig"));
    assert!(app.state.store().clusters().await.unwrap().is_empty(), "nothing is stored");
    assert_eq!(client.get(app.url("/api/v1/nope")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_kubeconfig_upload_registers_a_cluster_with_sealed_credentials() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let (client, csrf) = app.sign_in(Who::Admin).await;
    let kubeconfig = common::bed().cluster("b").unwrap().kubeconfig_yaml();
    let unknown = client
        .post(app.url("/api/v1/clusters"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "second-b", "context": "nope", "kubeconfig": kubeconfig }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);
    let added = client
        .post(app.url("/api/v1/clusters"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "second-b", "context": "b", "kubeconfig": kubeconfig }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200, "{:?}", added.text().await);
    let stored = app.state.store().clusters().await.unwrap();
    assert_eq!(stored.len(), 1);
    let token = common::bed().cluster("b").unwrap().admin_token().to_string();
    assert!(
        !String::from_utf8_lossy(&stored[0].sealed_credentials).contains(&token),
        "credentials are encrypted at rest"
    );
    let clusters: Value = client.get(app.url("/api/v1/clusters")).send().await.unwrap().json().await.unwrap();
    assert!(clusters.as_array().unwrap().iter().any(|c| c["name"] == "second-b"));
    assert!(!clusters.to_string().contains(&token), "credentials never go back to the browser");
}

#[tokio::test]
async fn plumbing_endpoints_and_security_headers() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let client = app.browser();
    assert_eq!(client.get(app.url("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(client.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    let openapi: Value = client.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    for path in [
        "/api/v1/clusters",
        "/api/v1/clusters/{cluster}/nodes",
        "/api/v1/jobs",
        "/api/v1/deployments",
        "/api/v1/pending",
        "/api/v1/me",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} is documented");
    }
    let _ = client.get(app.url("/api/v1/overview")).send().await.unwrap();
    let metrics = client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("gantry_http_requests_total{route=\"/api/v1/overview\",method=\"GET\",status=\"401\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("gantry_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("gantry_db_pool_connections"));
    assert!(metrics.contains("gantry_build_info"));
    let page = client.get(app.url("/login")).send().await.unwrap();
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'nonce-"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the inline hydration script carries the CSP nonce");
}

/// GPUs held now by running pods in a/nlp on A100 nodes, counted from the
/// apiserver itself (not from Gantry's caches).
async fn a100_gpus_in_nlp() -> i64 {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, ListParams};
    let client = common::bed().cluster("a").unwrap().client().await.unwrap();
    let a100: Vec<String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels("nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let pods = Api::<Pod>::namespaced(client, "nlp").list(&ListParams::default()).await.unwrap().items;
    pods.iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| a100.contains(n)))
        .flat_map(|p| p.spec.as_ref().unwrap().containers.iter())
        .filter_map(|c| c.resources.as_ref()?.limits.as_ref()?.get("nvidia.com/gpu")?.0.parse::<i64>().ok())
        .sum()
}

both_backends!(prices_and_budgets_follow_roles_refuse_bad_input_and_are_audited, |app| {
    use gantry_store::AuditFilter;
    let admin = app.token(Who::Admin).await.unwrap();
    let deployer = app.token(Who::Deployer).await.unwrap();
    let nlp_admin = app.token(Who::OtherTeamAdmin).await.unwrap();
    let viewer = app.token(Who::Viewer).await.unwrap();
    let http = reqwest::Client::new();
    let put = |path: &str, token: &str, body: Value| http.put(app.url(path)).bearer_auth(token).json(&body).send();

    // Prices: global admins only; every signed-in user reads them.
    let a100 = "/api/v1/prices/NVIDIA-A100-SXM4-80GB/on-demand";
    assert_eq!(put(a100, &deployer, json!({ "usd_per_gpu_hour": 0.01 })).await.unwrap().status(), 403);
    assert_eq!(put(a100, &admin, json!({ "usd_per_gpu_hour": 2.5 })).await.unwrap().status(), 200);
    let spot = "/api/v1/prices/NVIDIA-A100-SXM4-80GB/spot";
    assert_eq!(put(spot, &admin, json!({ "usd_per_gpu_hour": 1 })).await.unwrap().status(), 200);
    for (path, body, says) in [
        (a100, json!({ "usd_per_gpu_hour": -1 }), "cannot be negative"),
        (a100, json!({ "usd_per_gpu_hour": 20000 }), "at most"),
        ("/api/v1/prices/NVIDIA-A100-SXM4-80GB/reserved", json!({ "usd_per_gpu_hour": 1 }), "on-demand or spot"),
        (a100, json!({ "usd_per_gpu_hour": "cheap" }), "usd_per_gpu_hour"),
        (a100, json!({}), "usd_per_gpu_hour"),
    ] {
        let response = put(path, &admin, body.clone()).await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(matches!(status, 400 | 422) && text.contains(says), "{path} {body}: {status} {text}");
    }
    let prices: Value =
        http.get(app.url("/api/v1/prices")).bearer_auth(&viewer).send().await.unwrap().json().await.unwrap();
    let listed: Vec<(String, String, f64)> = prices
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let text = |k: &str| p[k].as_str().unwrap().to_string();
            (text("model"), text("capacity_type"), p["usd_per_gpu_hour"].as_f64().unwrap())
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("NVIDIA-A100-SXM4-80GB".to_string(), "on-demand".to_string(), 2.5),
            ("NVIDIA-A100-SXM4-80GB".to_string(), "spot".to_string(), 1.0),
        ],
        "refused changes left nothing behind"
    );

    // A GPU pod of team nlp; the budget view prices what the team holds, as the apiserver counts it.
    let name = format!("budget-probe-{}", format!("{:?}", app.backend).to_lowercase());
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "nlp" },
        "spec": { "nodeSelector": { "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB" },
            "containers": [ { "name": "main", "image": "example/model:1",
                "resources": { "limits": { "nvidia.com/gpu": "2" } } } ] }
    }))
    .unwrap();
    let client = common::bed().cluster("a").unwrap().client().await.unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "nlp")
        .create(&Default::default(), &pod)
        .await
        .unwrap();
    let budget_url = app.url(&format!("/api/v1/teams/{}/budget", app.nlp));
    let view = gantry_testbed::shared::eventually("the budget view prices the team's GPUs", 60, || async {
        let view: Value = http.get(&budget_url).bearer_auth(&nlp_admin).send().await.ok()?.json().await.ok()?;
        let expected = a100_gpus_in_nlp().await;
        (expected >= 2 && view["rate"]["gpus"].as_i64() == Some(expected)).then_some((view, expected))
    })
    .await;
    let (view, gpus) = view;
    assert_eq!(view["rate"]["usd_per_hour"].as_f64(), Some(2.5 * gpus as f64), "{view}");
    assert_eq!(view["rate"]["usd_per_month"].as_f64(), Some(2.5 * gpus as f64 * 730.0));
    // The overview's cost (from the caches' running totals) agrees with the budget's (a pass over the pods):
    // the nlp admin sees exactly team nlp's namespaces. The other backend's run of this test adds its own
    // pod to nlp at about this time, so the two are compared once both have seen the same pods.
    let overview_url = app.url("/api/v1/overview");
    gantry_testbed::shared::eventually("the overview's cost agrees with the budget's", 30, || async {
        let overview: Value = http.get(&overview_url).bearer_auth(&nlp_admin).send().await.ok()?.json().await.ok()?;
        let view: Value = http.get(&budget_url).bearer_auth(&nlp_admin).send().await.ok()?.json().await.ok()?;
        (overview["cost"] == view["rate"] && view["rate"]["gpus"].as_i64() >= Some(2)).then_some(())
    })
    .await;
    assert_eq!(view["budget_usd_per_month"], Value::Null);

    // Budgets: the team's admins (and global admins); members read them; others are refused.
    let nlp_budget = format!("/api/v1/teams/{}/budget", app.nlp);
    let vision_budget = format!("/api/v1/teams/{}/budget", app.vision);
    assert_eq!(put(&vision_budget, &nlp_admin, json!({ "usd_per_month": 1 })).await.unwrap().status(), 403);
    assert_eq!(put(&vision_budget, &deployer, json!({ "usd_per_month": 1 })).await.unwrap().status(), 403);
    assert_eq!(http.get(app.url(&nlp_budget)).bearer_auth(&viewer).send().await.unwrap().status(), 403);
    assert_eq!(put(&nlp_budget, &nlp_admin, json!({ "usd_per_month": 1000 })).await.unwrap().status(), 200);
    for body in [json!({ "usd_per_month": -5 }), json!({ "usd_per_month": 1e12 }), json!({ "usd_per_month": "lots" })] {
        let response = put(&nlp_budget, &nlp_admin, body.clone()).await.unwrap();
        assert!(matches!(response.status().as_u16(), 400 | 422), "{body}: {}", response.status());
    }
    let view: Value = http.get(&budget_url).bearer_auth(&nlp_admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["budget_usd_per_month"].as_f64(), Some(1000.0), "bad input changed nothing");
    let month = view["rate"]["usd_per_month"].as_f64().unwrap();
    assert!((view["percent_of_budget"].as_f64().unwrap() - month / 10.0).abs() < 1e-6, "{view}");
    let clear = || http.delete(app.url(&nlp_budget)).bearer_auth(&nlp_admin).send();
    assert_eq!(clear().await.unwrap().status(), 200);
    assert_eq!(clear().await.unwrap().status(), 404, "no budget left to remove");

    kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client, "nlp")
        .delete(&name, &Default::default())
        .await
        .unwrap();

    // Every change and every refusal is in the audit log, with before and after.
    let audit = app.state.store().audit(&AuditFilter::default()).await.unwrap();
    let find = |action: &str, actor: &str, result: &str| {
        audit.iter().find(|r| r.action == action && r.actor.starts_with(actor) && r.result.as_str() == result)
    };
    assert!(find("price.set", "deployer", "denied").is_some());
    let on_demand = Some("price/NVIDIA-A100-SXM4-80GB/on-demand");
    let set =
        audit.iter().find(|r| r.action == "price.set" && r.result.as_str() == "ok" && r.object.as_deref() == on_demand);
    assert_eq!((set.unwrap().before.as_deref(), set.unwrap().after.as_deref()), (None, Some("$2.50/GPU-hour")));
    assert!(find("price.set", "admin", "failed").is_some(), "refused input is audited as failed");
    let budget = find("budget.set", "nlp-admin", "ok").unwrap();
    assert_eq!((budget.team_id, budget.after.as_deref()), (Some(app.nlp), Some("$1,000.00/month")));
    assert!(find("budget.set", "nlp-admin", "denied").is_some());
    assert!(find("budget.clear", "nlp-admin", "ok").is_some());
});
