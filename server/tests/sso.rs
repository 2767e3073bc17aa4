//! Single sign-on, end to end. Against a real OpenID provider (Ory Hydra,
//! with the testbed's login pages): people sign in through its form, are
//! made on first sign-in and get their team roles from their groups; a
//! group removed at the provider takes the role at the next sign-in and from
//! open sessions at their refresh; a person the provider deactivates loses
//! sessions and API tokens; sign-out ends at the provider; replayed, forged
//! and refused callbacks end on the sign-in page with no session.
//!
//! ID tokens no real provider would issue (for another audience, expired,
//! unsigned, from another issuer, with the wrong nonce, tampered with) come
//! from a forged provider written here: the one kind of case a mock is for.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, Who};
use gantry_testbed::{IdentityProvider, IdentityUser};
use reqwest::header::LOCATION;
use serde_json::{Value, json};

const CLIENT: &str = "gantry";
const SECRET: &str = "gantry-client-secret";
const REFRESH: Duration = Duration::from_secs(2);

fn sso_config(issuer: &str, base: &str) -> gantry_service::SsoConfig {
    gantry_service::SsoConfig {
        provider_name: "Testbed IdP".into(),
        issuer: issuer.into(),
        client_id: CLIENT.into(),
        client_secret: SECRET.into(),
        scopes: ["profile", "email", "groups", "offline_access"].map(String::from).to_vec(),
        groups_claim: "groups".into(),
        redirect_url: format!("{base}/auth/sso/callback"),
        refresh_interval: REFRESH,
    }
}

/// A browser: cookies kept, redirects not followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_string()).unwrap_or_default()
}

fn param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_string())
}

/// Follows redirects until one leads under `stop_at` (returned, not
/// requested), or a page answers (its URL and text).
async fn follow(browser: &reqwest::Client, url: &str, stop_at: &str) -> (String, Option<String>) {
    let mut url = reqwest::Url::parse(url).unwrap();
    for _ in 0..20 {
        if url.as_str().starts_with(stop_at) {
            return (url.to_string(), None);
        }
        let response = browser.get(url.clone()).send().await.unwrap();
        if response.status().is_redirection() {
            url = url.join(&location(&response)).unwrap();
            continue;
        }
        return (url.to_string(), Some(response.text().await.unwrap()));
    }
    panic!("more than 20 redirects from {url}");
}

fn hidden(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no input {name} in {page}"));
    let rest = &page[at..];
    let value = &rest[rest.find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_string()
}

/// Clicks "Sign in with …" and fills in the provider's form: returns the
/// URL of Gantry's callback the provider sent the browser to (not yet requested).
async fn through_provider(app: &TestApp, idp: &IdentityProvider, browser: &reqwest::Client, user: &str) -> String {
    let start = browser.get(app.url("/auth/sso/start?next=%2Fworkloads")).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let (url, page) = follow(browser, &location(&start), &app.url("/auth/sso/callback")).await;
    let page = page.unwrap_or_else(|| panic!("no login form at {url}"));
    let form = [
        ("login_challenge", hidden(&page, "login_challenge")),
        ("username", user.into()),
        ("password", format!("{user}-password")),
    ];
    let posted = browser.post(format!("{}/login", idp.pages_url())).form(&form).send().await.unwrap();
    assert_eq!(posted.status(), 303, "{}", idp.log_tail(20));
    let (callback, page) = follow(browser, &location(&posted), &app.url("/auth/sso/callback")).await;
    assert!(page.is_none(), "stopped at {callback}: {page:?}");
    callback
}

/// Signs `user` in through the provider; returns the browser, signed in.
async fn sign_in(app: &TestApp, idp: &IdentityProvider, user: &str) -> reqwest::Client {
    let browser = browser();
    let callback = through_provider(app, idp, &browser, user).await;
    let landed = browser.get(&callback).send().await.unwrap();
    assert_eq!(
        (landed.status().as_u16(), location(&landed)),
        (303, "/workloads".into()),
        "{}",
        problem(app, &browser).await
    );
    browser
}

/// What the sign-in page says went wrong (said once).
async fn problem(app: &TestApp, browser: &reqwest::Client) -> String {
    let options: Value = browser
        .post(app.url("/fn/sign_in_options"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    options["problem"].as_str().unwrap_or_default().to_string()
}

async fn me(app: &TestApp, browser: &reqwest::Client) -> (u16, Value) {
    let response = browser.get(app.url("/api/v1/me")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn teams(me: &Value) -> Vec<(String, String)> {
    me["teams"]
        .as_array()
        .map(|teams| {
            teams
                .iter()
                .map(|t| (t["team"].as_str().unwrap_or_default().into(), t["role"].as_str().unwrap_or_default().into()))
                .collect()
        })
        .unwrap_or_default()
}

/// The audit log's records of `action`, as the admin reads them.
async fn audited(app: &TestApp, admin: &str, action: &str) -> Vec<Value> {
    let all: Value = reqwest::Client::new()
        .get(app.url("/api/v1/audit?limit=500"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = all.get("records").or(Some(&all)).and_then(|r| r.as_array()).cloned().unwrap_or_default();
    rows.into_iter().filter(|r| r["action"] == action).collect()
}

#[tokio::test]
async fn people_sign_in_through_the_provider_with_roles_from_their_groups() {
    let idp = IdentityProvider::start(vec![
        IdentityUser::new("ada", &["vision-deployers", "unmapped"]),
        // The name of a local account: it is not taken over.
        IdentityUser::new("viewer", &["vision-viewers"]),
        IdentityUser::new("nobody", &[]),
        IdentityUser::new("root", &["platform-admins"]),
    ])
    .await
    .unwrap();
    let issuer = idp.issuer();
    let app = common::spawn_app_with_sso(Backend::Sqlite, Default::default(), |base| sso_config(&issuer, base))
        .await
        .unwrap();
    idp.register_client(CLIENT, SECRET, &[app.url("/auth/sso/callback")], &[app.url("/login")]).await.unwrap();
    let admin = app.token(Who::Admin).await.unwrap();
    let http = reqwest::Client::new();
    for (path, body) in [
        (format!("/api/v1/teams/{}/group-mappings/vision-deployers", app.vision), json!({ "role": "deployer" })),
        (format!("/api/v1/teams/{}/group-mappings/vision-viewers", app.vision), json!({ "role": "viewer" })),
        ("/api/v1/sso/admin-groups/platform-admins".to_string(), json!({})),
    ] {
        let response = http.put(app.url(&path)).bearer_auth(&admin).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "PUT {path}: {}", response.text().await.unwrap());
    }
    let overview: Value =
        http.get(app.url("/api/v1/sso")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(overview["settings"]["issuer"], issuer.as_str(), "{overview}");
    assert_eq!(overview["settings"]["problem"], Value::Null, "the provider answers: {overview}");
    assert!(!overview.to_string().contains(SECRET), "the secret is never shown: {overview}");
    assert_eq!(overview["mappings"].as_array().unwrap().len(), 3);

    // Ada: made on first sign-in, a deployer in vision from her group.
    let ada = sign_in(&app, &idp, "ada").await;
    let (status, ada_me) = me(&app, &ada).await;
    assert_eq!(status, 200);
    assert_eq!(ada_me["username"], "ada");
    assert_eq!(teams(&ada_me), vec![("vision".into(), "deployer".into())]);
    assert_eq!(ada_me["global_admin"], false);

    // The provider's "viewer" is not the local viewer.
    let other = sign_in(&app, &idp, "viewer").await;
    let (_, other_me) = me(&app, &other).await;
    let name = other_me["username"].as_str().unwrap();
    assert!(name.starts_with("viewer-") && name != "viewer", "{other_me}");
    assert_eq!(teams(&other_me), vec![("vision".into(), "viewer".into())]);

    // No mapped group: signed in, in no team, and the overview says why.
    let nobody = sign_in(&app, &idp, "nobody").await;
    let (_, nobody_me) = me(&app, &nobody).await;
    assert!(teams(&nobody_me).is_empty(), "{nobody_me}");
    let overview_page = nobody.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(overview_page.contains("You are not in a team yet"), "{overview_page}");

    let root = sign_in(&app, &idp, "root").await;
    assert_eq!(me(&app, &root).await.1["global_admin"], true);

    let created = audited(&app, &admin, "user.sso.create").await;
    assert_eq!(created.len(), 4, "{created:?}");
    assert!(created.iter().any(|r| r["detail"].as_str().unwrap_or_default().contains("belongs to another account")));
    assert!(audited(&app, &admin, "login.sso").await.iter().filter(|r| r["result"] == "ok").count() >= 4);
    assert!(!audited(&app, &admin, "membership.sso").await.is_empty());

    // An API token of Ada's, made in her session.
    let csrf = me(&app, &ada).await.1["csrf"].as_str().unwrap().to_string();
    let made: Value = ada
        .post(app.url("/api/v1/tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ada_token = made["token"].as_str().unwrap_or_else(|| panic!("{made}")).to_string();

    // Her group removed at the provider: her open session loses the role at its refresh…
    idp.set_groups("ada", vec![]);
    tokio::time::sleep(REFRESH + Duration::from_millis(500)).await;
    let (status, ada_me) = me(&app, &ada).await;
    assert_eq!(status, 200);
    assert!(teams(&ada_me).is_empty(), "the refresh took the role: {ada_me}");
    // …and her next sign-in has none either; given back, it returns.
    let again = sign_in(&app, &idp, "ada").await;
    assert!(teams(&me(&app, &again).await.1).is_empty());
    idp.set_groups("ada", vec!["vision-deployers".into()]);
    let again = sign_in(&app, &idp, "ada").await;
    assert_eq!(teams(&me(&app, &again).await.1), vec![("vision".into(), "deployer".into())]);
    let removed = audited(&app, &admin, "membership.sso").await;
    assert!(removed.iter().any(|r| r["detail"].as_str().unwrap_or_default().contains("removed")), "{removed:?}");

    // Deactivated at the provider: at the next refresh her session ends, and her token is refused.
    let token_works = |token: String| {
        let app_url = app.url("/api/v1/me");
        async move { reqwest::Client::new().get(app_url).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(token_works(ada_token.clone()).await, 200);
    idp.set_active("ada", false);
    tokio::time::sleep(REFRESH + Duration::from_millis(500)).await;
    assert_eq!(me(&app, &again).await.0, 401, "the session ended");
    assert_eq!(token_works(ada_token.clone()).await, 401, "her API token is refused");
    assert_eq!(audited(&app, &admin, "login.sso.refresh").await.iter().filter(|r| r["result"] == "denied").count(), 1);

    // Sign-out ends Gantry's session and goes through the provider's end-session endpoint back to /login.
    let csrf = me(&app, &root).await.1["csrf"].as_str().unwrap().to_string();
    let out = root
        .post(app.url("/fn/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    let to = location(&out);
    assert!(to.starts_with(&format!("{issuer}/oauth2/sessions/logout?")) && to.contains("id_token_hint="), "{to}");
    assert_eq!(me(&app, &root).await.0, 401);
    let (back, _) = follow(&root, &to, &app.url("/login")).await;
    assert!(back.starts_with(&app.url("/login")), "{back}");

    // Replayed: the callback that signed Ada in, once more, signs nobody in.
    let browser = browser();
    let callback = through_provider(&app, &idp, &browser, "root").await;
    assert_eq!(location(&browser.get(&callback).send().await.unwrap()), "/workloads");
    let replay = browser.get(&callback).send().await.unwrap();
    assert_eq!(location(&replay), "/login");
    assert_eq!(me(&app, &browser).await.0, 401, "a refused answer ends the session");
    assert!(problem(&app, &browser).await.contains("already used"));

    // A state that is not this browser's, and an error from the provider.
    let forged_state = browser.get(app.url("/auth/sso/start")).send().await.unwrap();
    assert_eq!(forged_state.status(), 303);
    let refused = browser.get(app.url("/auth/sso/callback?code=stolen&state=someone-elses")).send().await.unwrap();
    assert_eq!(location(&refused), "/login");
    assert!(problem(&app, &browser).await.contains("state mismatch"));
    let start = browser.get(app.url("/auth/sso/start")).send().await.unwrap();
    let state = param(&location(&start), "state").unwrap();
    let url = format!("/auth/sso/callback?state={state}&error=access_denied&error_description=The+user+said+no");
    assert_eq!(location(&browser.get(app.url(&url)).send().await.unwrap()), "/login");
    let said = problem(&app, &browser).await;
    assert!(said.contains("access_denied") && said.contains("The user said no"), "{said}");
    assert_eq!(me(&app, &browser).await.0, 401);
    let denied = audited(&app, &admin, "login.sso").await;
    assert!(denied.iter().filter(|r| r["result"] == "denied").count() >= 3, "{denied:?}");
}

/// A provider that issues whatever ID token the test asks for: the code
/// sent to its token endpoint names the case, and carries the nonce.
mod forged {
    use std::sync::Arc;

    use axum::extract::{Form, State};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use base64::Engine;
    use openidconnect::PrivateSigningKey;
    use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
    use serde_json::{Value, json};

    /// Two signing keys: the provider signs with one and publishes only that
    /// one, and rotates to the other when told.
    pub const KEYS: [&str; 2] = [
        include_str!("fixtures/forged-provider-test-key.pem"),
        include_str!("fixtures/forged-provider-test-key-2.pem"),
    ];

    pub struct Provider {
        pub issuer: String,
        keys: Vec<CoreRsaPrivateSigningKey>,
        current: std::sync::atomic::AtomicUsize,
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    impl Provider {
        fn current(&self) -> usize {
            self.current.load(std::sync::atomic::Ordering::SeqCst)
        }

        /// Signs with the other key from now on, and publishes only it.
        pub fn rotate(&self) {
            self.current.store(1 - self.current(), std::sync::atomic::Ordering::SeqCst);
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
            let key = &self.keys[self.current()];
            let signature = key.sign(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, signed.as_bytes()).unwrap();
            format!("{signed}.{}", b64(&signature))
        }

        /// The ID token for `case` ("good", "audience", …) and the flow's nonce.
        fn id_token(&self, case: &str, nonce: &str) -> String {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
            let mut claims = json!({
                "iss": self.issuer, "aud": ["gantry"], "sub": format!("forged-{case}"), "iat": now, "exp": now + 300,
                "nonce": nonce, "preferred_username": format!("forged-{case}"), "groups": [],
            });
            let header = json!({ "alg": "RS256", "kid": format!("forged-{}", self.current()), "typ": "JWT" });
            match case {
                "audience" => claims["aud"] = json!(["someone-else"]),
                "expired" => {
                    claims["iat"] = json!(now - 7200);
                    claims["exp"] = json!(now - 3600);
                }
                "issuer" => claims["iss"] = json!("http://issuer.example"),
                "nonce" => claims["nonce"] = json!("not-the-flows-nonce"),
                "no-nonce" => {
                    claims.as_object_mut().unwrap().remove("nonce");
                }
                "groups" => claims["groups"] = json!("admins"),
                "unsigned" => {
                    let none = json!({ "alg": "none", "typ": "JWT" });
                    return format!("{}.{}.", b64(none.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
                }
                "tampered" => {
                    let token = self.sign(&header, &claims);
                    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
                    claims["sub"] = json!("someone-else");
                    parts[1] = b64(claims.to_string().as_bytes());
                    return parts.join(".");
                }
                _ => {}
            }
            self.sign(&header, &claims)
        }
    }

    async fn discovery(State(p): State<Arc<Provider>>) -> Json<Value> {
        Json(json!({
            "issuer": p.issuer,
            "authorization_endpoint": format!("{}/authorize", p.issuer),
            "token_endpoint": format!("{}/token", p.issuer),
            "jwks_uri": format!("{}/jwks", p.issuer),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }))
    }

    async fn jwks(State(p): State<Arc<Provider>>) -> Json<Value> {
        let current = p.current();
        let mut key = serde_json::to_value(p.keys[current].as_verification_key()).unwrap();
        key["kid"] = json!(format!("forged-{current}"));
        Json(json!({ "keys": [key] }))
    }

    async fn token(State(p): State<Arc<Provider>>, Form(form): Form<Vec<(String, String)>>) -> Json<Value> {
        let code = form.iter().find(|(k, _)| k == "code").map(|(_, v)| v.as_str()).unwrap_or_default();
        let (case, nonce) = code.split_once('.').unwrap_or((code, ""));
        Json(
            json!({ "access_token": "forged", "token_type": "Bearer", "expires_in": 300, "id_token": p.id_token(case, nonce) }),
        )
    }

    pub async fn start() -> Arc<Provider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let keys = KEYS
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                let kid = openidconnect::JsonWebKeyId::new(format!("forged-{i}"));
                CoreRsaPrivateSigningKey::from_pem(pem, Some(kid)).unwrap()
            })
            .collect();
        let provider = Arc::new(Provider { issuer, keys, current: Default::default() });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        provider
    }
}

#[tokio::test]
async fn id_tokens_no_real_provider_would_issue_are_refused() {
    let provider = forged::start().await;
    let issuer = provider.issuer.clone();
    let app = common::spawn_app_with_sso(Backend::Sqlite, Default::default(), |base| sso_config(&issuer, base))
        .await
        .unwrap();
    let admin = app.token(Who::Admin).await.unwrap();
    // Each case: (the code's case, what the sign-in page must say).
    let cases = [
        ("audience", "audience"),
        ("expired", "expired"),
        ("unsigned", "ID token was refused"),
        ("issuer", "issuer"),
        ("nonce", "nonce"),
        ("no-nonce", "nonce"),
        ("tampered", "signature"),
        ("groups", "not a list of groups"),
    ];
    for (case, says) in cases {
        let browser = browser();
        let start = browser.get(app.url("/auth/sso/start")).send().await.unwrap();
        let to = location(&start);
        assert!(to.starts_with(&format!("{issuer}/authorize?")), "{to}");
        let (state, nonce) = (param(&to, "state").unwrap(), param(&to, "nonce").unwrap());
        assert!(
            param(&to, "code_challenge").is_some() && param(&to, "code_challenge_method").as_deref() == Some("S256")
        );
        let url = format!("/auth/sso/callback?code={case}.{nonce}&state={state}");
        let answer = browser.get(app.url(&url)).send().await.unwrap();
        assert_eq!(location(&answer), "/login", "{case}");
        let said = problem(&app, &browser).await;
        assert!(said.to_lowercase().contains(&says.to_lowercase()), "{case}: {said}");
        assert_eq!(me(&app, &browser).await.0, 401, "{case}: no session");
    }
    let denied = audited(&app, &admin, "login.sso").await;
    assert_eq!(denied.iter().filter(|r| r["result"] == "denied").count(), cases.len(), "{denied:?}");

    // The control: the same provider's good token signs in, so the refusals above are the tokens'.
    let browser = browser();
    let to = location(&browser.get(app.url("/auth/sso/start?next=/costs")).send().await.unwrap());
    let (state, nonce) = (param(&to, "state").unwrap(), param(&to, "nonce").unwrap());
    let answer =
        browser.get(app.url(&format!("/auth/sso/callback?code=good.{nonce}&state={state}"))).send().await.unwrap();
    assert_eq!(location(&answer), "/costs", "{}", problem(&app, &browser).await);
    assert_eq!(me(&app, &browser).await.1["username"], "forged-good");

    // The provider rotates its signing key: Gantry, holding the old key set,
    // reads the new one and signs the next person in.
    provider.rotate();
    let browser = self::browser();
    let to = location(&browser.get(app.url("/auth/sso/start")).send().await.unwrap());
    let (state, nonce) = (param(&to, "state").unwrap(), param(&to, "nonce").unwrap());
    let answer =
        browser.get(app.url(&format!("/auth/sso/callback?code=good.{nonce}&state={state}"))).send().await.unwrap();
    assert_eq!(location(&answer), "/", "after the rotation: {}", problem(&app, &browser).await);
}

#[tokio::test]
async fn a_provider_that_does_not_answer_or_is_none_leaves_password_sign_in_working() {
    // Nothing listens on port 9 of this machine.
    let app =
        common::spawn_app_with_sso(Backend::Sqlite, Default::default(), |base| sso_config("http://127.0.0.1:9", base))
            .await
            .unwrap();
    let browser = browser();
    let start = browser.get(app.url("/auth/sso/start")).send().await.unwrap();
    assert_eq!(location(&start), "/login");
    let said = problem(&app, &browser).await;
    assert!(said.contains("does not answer as an OpenID provider"), "{said}");
    let admin = app.token(Who::Admin).await.unwrap();
    let overview: Value = reqwest::Client::new()
        .get(app.url("/api/v1/sso"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(overview["settings"]["problem"].as_str().unwrap_or_default().contains("does not answer"), "{overview}");
    let (client, _) = app.sign_in(Who::Deployer).await;
    assert_eq!(me(&app, &client).await.0, 200, "local sign-in works");

    // A server that answers, but is no OpenID provider (its discovery path is a web page).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let not_a_provider = format!("http://{}", listener.local_addr().unwrap());
    let site = axum::Router::new().fallback(|| async { axum::response::Html("<h1>Welcome to our intranet</h1>") });
    tokio::spawn(async move { axum::serve(listener, site).await });
    let app = common::spawn_app_with_sso(Backend::Sqlite, Default::default(), |base| sso_config(&not_a_provider, base))
        .await
        .unwrap();
    let browser = self::browser();
    assert_eq!(location(&browser.get(app.url("/auth/sso/start")).send().await.unwrap()), "/login");
    let said = problem(&app, &browser).await;
    assert!(said.contains("does not answer as an OpenID provider"), "{said}");
    let (client, _) = app.sign_in(Who::Viewer).await;
    assert_eq!(me(&app, &client).await.0, 200, "local sign-in works");
}

#[tokio::test]
async fn a_client_secret_the_provider_rejects_is_said_on_the_sign_in_and_settings_pages() {
    let idp = IdentityProvider::start(vec![IdentityUser::new("ada", &[])]).await.unwrap();
    let issuer = idp.issuer();
    let app = common::spawn_app_with_sso(Backend::Sqlite, Default::default(), |base| gantry_service::SsoConfig {
        client_secret: "not-the-registered-secret".into(),
        ..sso_config(&issuer, base)
    })
    .await
    .unwrap();
    idp.register_client(CLIENT, SECRET, &[app.url("/auth/sso/callback")], &[app.url("/login")]).await.unwrap();
    let browser = browser();
    let callback = through_provider(&app, &idp, &browser, "ada").await;
    assert_eq!(location(&browser.get(&callback).send().await.unwrap()), "/login");
    let said = problem(&app, &browser).await;
    assert!(said.contains("refused the authorization code") && said.contains("invalid_client"), "{said}");
    assert_eq!(me(&app, &browser).await.0, 401);
    let admin = app.token(Who::Admin).await.unwrap();
    let overview: Value = reqwest::Client::new()
        .get(app.url("/api/v1/sso"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown = overview["settings"]["problem"].as_str().unwrap_or_default();
    assert!(shown.contains("invalid_client"), "the settings say it too: {overview}");
    let (client, _) = app.sign_in(Who::Deployer).await;
    assert_eq!(me(&app, &client).await.0, 200, "local sign-in works");
}

/// A page fires several requests at once. When the session's refresh is
/// due, they must not each spend the same refresh token: a provider that
/// rotates refresh tokens (Hydra does) takes a reused one for a stolen one
/// and revokes the lot, and Gantry would then end the session and refuse
/// the person's API tokens.
#[tokio::test]
async fn requests_at_once_when_a_refresh_is_due_refresh_once() {
    let idp = IdentityProvider::start(vec![IdentityUser::new("ada", &["vision-deployers"])]).await.unwrap();
    let issuer = idp.issuer();
    let app = common::spawn_app_with_sso(Backend::Sqlite, Default::default(), |base| sso_config(&issuer, base))
        .await
        .unwrap();
    idp.register_client(CLIENT, SECRET, &[app.url("/auth/sso/callback")], &[app.url("/login")]).await.unwrap();
    let ada = sign_in(&app, &idp, "ada").await;
    for round in 0..3 {
        tokio::time::sleep(REFRESH + Duration::from_millis(300)).await;
        let answers = futures::future::join_all((0..6).map(|_| me(&app, &ada))).await;
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        assert!(statuses.iter().all(|s| *s == 200), "round {round}: {statuses:?}");
    }
    assert_eq!(me(&app, &ada).await.0, 200, "still signed in");
    let admin = app.token(Who::Admin).await.unwrap();
    assert!(audited(&app, &admin, "login.sso.refresh").await.is_empty(), "no refresh was refused");
}
