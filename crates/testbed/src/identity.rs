//! A real OpenID Connect provider for Gantry's single-sign-on tests: Ory Hydra
//! ([`HYDRA_VERSION`](crate::HYDRA_VERSION), built from the Go module proxy on first use, see
//! `go/build-hydra.sh`) with an in-memory SQLite database, and the testbed's own login, consent
//! and logout pages in front of a user table the test controls.
//!
//! One Hydra per [`IdentityProvider::start`], supervised like the testbed's control planes (it
//! dies with the test process), in `--dev` mode (plain HTTP) on free loopback ports, with its
//! configuration and log in a temporary directory removed when it is dropped. The pages are an
//! axum server on a thread of its own:
//!
//! - `GET /login` is a plain HTML form (no JavaScript): `username`, `password` and a submit
//!   button "Sign in". A wrong password shows the form again with "wrong username or password",
//!   a deactivated user with "account disabled"; a right one is accepted (`remember: false`, so
//!   every sign-in shows the form).
//! - `GET /consent` accepts at once, granting the requested scopes and audience, with the ID
//!   token claims `preferred_username`, `email`, `name` (the username) and `groups`.
//! - `GET /logout` accepts at once.
//! - `POST /token-hook` is Hydra's `oauth2.token_hook`, called for every token grant (code
//!   exchange and refresh): it puts the user's *current* claims in the ID token, so a refresh
//!   after [`set_groups`](IdentityProvider::set_groups) carries the new groups, and answers
//!   403 for a deactivated user, so Hydra refuses the grant (`access_denied`).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::binaries::Hydra;
use crate::process::{Process, SpawnSpec, Supervisor, free_port, log_tail, stop_all};
use crate::{Error, Result};

/// How long Hydra gets between SIGTERM and SIGKILL (its database is in memory).
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long Hydra may take to answer discovery once started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The scopes a [`register_client`](IdentityProvider::register_client) client may ask for.
pub const CLIENT_SCOPES: &str = "openid profile email groups offline_access";

/// A user of the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityUser {
    /// What the login form takes, and the ID token's `preferred_username` and `name`.
    pub username: String,
    pub password: String,
    /// The ID token's `sub`.
    pub subject: String,
    pub email: String,
    /// The ID token's `groups`.
    pub groups: Vec<String>,
}

impl IdentityUser {
    /// A user whose password is `<username>-password`, subject `<username>-id` and email
    /// `<username>@example.com`.
    pub fn new(username: &str, groups: &[&str]) -> IdentityUser {
        IdentityUser {
            username: username.to_string(),
            password: format!("{username}-password"),
            subject: format!("{username}-id"),
            email: format!("{username}@example.com"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }
}

/// A user and whether they may sign in.
#[derive(Clone, Debug)]
struct Account {
    user: IdentityUser,
    active: bool,
}

/// The user table, by username, shared by the pages and the provider's setters.
type Accounts = Arc<Mutex<BTreeMap<String, Account>>>;

/// A running Hydra and its pages. Dropping it stops both and removes its directory.
pub struct IdentityProvider {
    dir: PathBuf,
    public_port: u16,
    admin_port: u16,
    accounts: Accounts,
    supervisor: Supervisor,
    process: Process,
    pages: Pages,
    http: reqwest::Client,
}

impl IdentityProvider {
    /// Builds Hydra (the first time on this machine: minutes) and starts it with DSN=memory
    /// on free ports, plus the login, consent and logout pages, and waits until its discovery
    /// document answers.
    pub async fn start(users: Vec<IdentityUser>) -> Result<IdentityProvider> {
        let hydra = tokio::task::spawn_blocking(Hydra::ensure)
            .await
            .map_err(|e| Error::Binaries(format!("the Hydra build task failed: {e}")))??;
        let accounts: Accounts = Arc::new(Mutex::new(
            users.into_iter().map(|user| (user.username.clone(), Account { user, active: true })).collect(),
        ));
        let dir = unique_temp_dir();
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let (public_port, admin_port) = (free_port()?, free_port()?);
        let pages = Pages::start(Arc::clone(&accounts), format!("http://127.0.0.1:{admin_port}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| failure(ErrorKind::Other, "building an HTTP client", e.to_string()))?;
        let supervisor = Supervisor::start()?;
        let spawned = match spec(&hydra.binary, &dir, public_port, admin_port, pages.addr) {
            Ok(spec) => supervisor.spawn(spec).await,
            Err(e) => Err(e),
        };
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                supervisor.shutdown();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut provider = IdentityProvider {
            process: Process::new(child, dir.join("hydra.log")),
            dir,
            public_port,
            admin_port,
            accounts,
            supervisor,
            pages,
            http,
        };
        // From here on an error drops `provider`, which stops Hydra and removes its directory.
        for attempt in 1.. {
            match provider.wait_ready().await {
                Ok(()) => break,
                // Someone took a port between `free_port` and Hydra binding it.
                Err(e) if attempt < 5 && log_tail(&provider.process.log, 30).contains("address already in use") => {
                    tracing::warn!("Hydra's port was taken, retrying on others: {e}");
                    stop_all(&[&provider.process], STOP_GRACE);
                    provider.public_port = free_port()?;
                    provider.admin_port = free_port()?;
                    provider.pages.set_admin(format!("http://127.0.0.1:{}", provider.admin_port));
                    let child = provider
                        .supervisor
                        .spawn(spec(
                            &hydra.binary,
                            &provider.dir,
                            provider.public_port,
                            provider.admin_port,
                            provider.pages.addr,
                        )?)
                        .await?;
                    provider.process.replace(child);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(provider)
    }

    /// `http://127.0.0.1:<public port>`, no trailing slash: the ID tokens' `iss` and the
    /// discovery document's `issuer`, character for character. Discovery is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.public_port)
    }

    /// `http://127.0.0.1:<admin port>`, Hydra's admin API (`/admin/...`).
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// `http://127.0.0.1:<port>`, the login, consent and logout pages (`/login`, ...).
    pub fn pages_url(&self) -> String {
        format!("http://{}", self.pages.addr)
    }

    /// Hydra's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.exit_status().is_none().then(|| self.process.pid()).flatten()
    }

    /// Hydra's log (stdout and stderr), in the provider's directory.
    pub fn log(&self) -> &Path {
        &self.process.log
    }

    /// The last `lines` lines of Hydra's log, for a failing test's message.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.process.log, lines)
    }

    /// Registers a confidential client (`client_secret_basic`; Hydra wants a secret of 6
    /// characters or more) with the grant types `authorization_code` and `refresh_token`,
    /// response type `code`, the scopes [`CLIENT_SCOPES`], and these redirect and
    /// post-logout redirect URIs, through Hydra's admin API.
    pub async fn register_client(
        &self,
        client_id: &str,
        secret: &str,
        redirect_uris: &[String],
        post_logout_redirect_uris: &[String],
    ) -> Result<()> {
        let url = format!("{}/admin/clients", self.admin_url());
        let body = json!({
            "client_id": client_id,
            "client_secret": secret,
            "client_name": client_id,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": CLIENT_SCOPES,
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
            "token_endpoint_auth_method": "client_secret_basic",
        });
        let context = format!("registering the client {client_id} at {url}");
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| failure(ErrorKind::Other, context.clone(), e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(failure(ErrorKind::InvalidInput, context, format!("{status}: {text}")));
        }
        Ok(())
    }

    /// Replaces a user's groups. Takes effect at their next sign-in and at the next token
    /// grant (a refresh gets an ID token with the new groups). Panics for an unknown user.
    pub fn set_groups(&self, username: &str, groups: Vec<String>) {
        self.account(username, |account| account.user.groups = groups);
    }

    /// Deactivates (`false`) or reactivates a user. A deactivated user's sign-in is refused
    /// ("account disabled") and their refresh tokens no longer work (the token hook answers
    /// 403, so Hydra answers `access_denied`). Panics for an unknown user.
    pub fn set_active(&self, username: &str, active: bool) {
        self.account(username, |account| account.active = active);
    }

    /// Adds a user, or replaces the one with the same username (active either way).
    pub fn add_user(&self, user: IdentityUser) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.insert(user.username.clone(), Account { user, active: true });
    }

    fn account(&self, username: &str, change: impl FnOnce(&mut Account)) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let account = accounts.get_mut(username).unwrap_or_else(|| panic!("no identity provider user {username}"));
        change(account);
    }

    async fn wait_ready(&self) -> Result<()> {
        let started = Instant::now();
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer());
        loop {
            if let Some(status) = self.process.exit_status() {
                return Err(failure(
                    ErrorKind::Other,
                    "starting Hydra",
                    format!(
                        "it exited ({status}); last lines of {}:\n{}",
                        self.process.log.display(),
                        log_tail(&self.process.log, 30)
                    ),
                ));
            }
            // Hydra makes its signing key at the first discovery request, which
            // takes seconds on a busy machine; a request cut short (499) aborts
            // the key and the next one starts over. So: wait until it is alive
            // (cheap), then ask for discovery once, with time to finish.
            let alive = format!("{}/health/alive", self.issuer());
            let alive = self.http.get(&alive).timeout(Duration::from_secs(2)).send().await;
            if alive.is_ok_and(|a| a.status().is_success()) {
                let answer = self.http.get(&discovery).timeout(READY_TIMEOUT).send().await;
                if answer.is_ok_and(|a| a.status().is_success()) {
                    return Ok(());
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(failure(
                    ErrorKind::TimedOut,
                    "starting Hydra",
                    format!(
                        "discovery did not answer within {}s; last lines of {}:\n{}",
                        READY_TIMEOUT.as_secs(),
                        self.process.log.display(),
                        log_tail(&self.process.log, 30)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        stop_all(&[&self.process], STOP_GRACE);
        self.supervisor.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
        // The pages stop when `pages` is dropped, after Hydra.
    }
}

/// Hydra's configuration (JSON, which is YAML) written into `dir`, and how to run it.
fn spec(program: &Path, dir: &Path, public_port: u16, admin_port: u16, pages: SocketAddr) -> Result<SpawnSpec> {
    let issuer = format!("http://127.0.0.1:{public_port}");
    let pages = format!("http://{pages}");
    let secret: [u8; 24] = rand::random();
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let config = json!({
        "dsn": "memory",
        "serve": {
            "public": { "host": "127.0.0.1", "port": public_port },
            "admin": { "host": "127.0.0.1", "port": admin_port },
        },
        "urls": {
            "self": { "issuer": issuer, "public": issuer },
            "login": format!("{pages}/login"),
            "consent": format!("{pages}/consent"),
            "logout": format!("{pages}/logout"),
        },
        "secrets": { "system": [secret] },
        "oidc": { "subject_identifiers": { "supported_types": ["public"] } },
        "webfinger": {
            "oidc_discovery": {
                "supported_scope": ["profile", "email", "groups"],
                "supported_claims": ["preferred_username", "email", "name", "groups"],
            },
        },
        "oauth2": { "token_hook": format!("{pages}/token-hook") },
        "log": { "level": "info", "format": "text", "leak_sensitive_values": true },
    });
    let path = dir.join("hydra.yml");
    std::fs::write(&path, config.to_string()).map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(SpawnSpec {
        program: program.to_path_buf(),
        args: vec![
            "serve".into(),
            "all".into(),
            "--dev".into(),
            "--sqa-opt-out".into(),
            "--config".into(),
            path.display().to_string(),
        ],
        log: dir.join("hydra.log"),
        cwd: dir.to_path_buf(),
        env: vec![("DSN".into(), "memory".into())],
    })
}

/// The login, consent and logout pages and the token hook: an HTTP server on a loopback port
/// of its own, on a thread of its own (it answers Hydra whatever the test's runtime does).
struct Pages {
    addr: SocketAddr,
    admin: Arc<Mutex<String>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone)]
struct PagesState {
    accounts: Accounts,
    /// Hydra's admin URL (it changes if Hydra is restarted on other ports).
    admin: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl Pages {
    fn start(accounts: Accounts, admin: String) -> Result<Pages> {
        // Bound here, so the port is ours before Hydra is told it.
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .map_err(Error::io("binding the identity provider's pages"))?;
        let addr = listener.local_addr().map_err(Error::io("binding the identity provider's pages"))?;
        listener.set_nonblocking(true).map_err(Error::io("binding the identity provider's pages"))?;
        let admin = Arc::new(Mutex::new(admin));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| failure(ErrorKind::Other, "building an HTTP client", e.to_string()))?;
        let state = PagesState { accounts, admin: Arc::clone(&admin), http };
        let app = axum::Router::new()
            .route("/login", axum::routing::get(login_page).post(login_submit))
            .route("/consent", axum::routing::get(consent))
            .route("/logout", axum::routing::get(logout))
            .route("/token-hook", axum::routing::post(token_hook))
            .with_state(state);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("starting the identity provider's runtime"))?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(Error::io("binding the identity provider's pages"))?
        };
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("identity-pages".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(Error::io("starting the identity provider's thread"))?;
        Ok(Pages { addr, admin, shutdown: Some(shutdown), thread: Some(thread) })
    }

    fn set_admin(&self, admin: String) {
        *self.admin.lock().unwrap_or_else(|e| e.into_inner()) = admin;
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl PagesState {
    /// `<admin>/admin/oauth2/auth/requests/<path>`.
    fn flow_url(&self, path: &str) -> String {
        let admin = self.admin.lock().unwrap_or_else(|e| e.into_inner()).clone();
        format!("{admin}/admin/oauth2/auth/requests/{path}")
    }

    /// A GET (`body` none) or PUT to Hydra's admin API of a login, consent or logout request;
    /// its JSON answer.
    async fn call(&self, path: &str, challenge: (&str, &str), body: Option<Value>) -> Result<Value, PageError> {
        let url = self.flow_url(path);
        let request = match &body {
            None => self.http.get(&url),
            Some(body) => self.http.put(&url).json(body),
        };
        let response =
            request.query(&[challenge]).send().await.map_err(|e| PageError(format!("calling Hydra at {url}: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(PageError(format!("Hydra answered {status} at {url}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| PageError(format!("Hydra's answer at {url} is not JSON ({e}): {text}")))
    }

    /// Accepts a request and returns the redirect Hydra asks for.
    async fn accept(&self, path: &str, challenge: (&str, &str), body: Value) -> Result<Response, PageError> {
        let answer = self.call(path, challenge, Some(body)).await?;
        let to = answer["redirect_to"].as_str().ok_or_else(|| PageError(format!("no redirect_to in {answer}")))?;
        Ok(Redirect::to(to).into_response())
    }

    fn by_subject(&self, subject: &str) -> Option<Account> {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.values().find(|a| a.user.subject == subject).cloned()
    }
}

/// A failure of a page: Hydra's admin API failed or answered unexpectedly (502, with the text).
struct PageError(String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        tracing::warn!("identity provider page: {}", self.0);
        (StatusCode::BAD_GATEWAY, self.0).into_response()
    }
}

/// What the ID token says of a user now.
fn id_token_claims(user: &IdentityUser) -> Value {
    json!({
        "preferred_username": user.username,
        "name": user.username,
        "email": user.email,
        "email_verified": true,
        "groups": user.groups,
    })
}

#[derive(Deserialize)]
struct LoginQuery {
    login_challenge: String,
}

async fn login_page(State(state): State<PagesState>, Query(query): Query<LoginQuery>) -> Result<Response, PageError> {
    let challenge = ("login_challenge", query.login_challenge.as_str());
    let request = state.call("login", challenge, None).await?;
    if request["skip"].as_bool() == Some(true) {
        let subject = request["subject"].as_str().unwrap_or_default();
        return match state.by_subject(subject) {
            Some(account) if account.active => {
                state.accept("login/accept", challenge, json!({ "subject": subject, "remember": false })).await
            }
            _ => {
                state
                    .accept(
                        "login/reject",
                        challenge,
                        json!({ "error": "access_denied", "error_description": "account disabled" }),
                    )
                    .await
            }
        };
    }
    Ok(login_form(&query.login_challenge, "", None).into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    login_challenge: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login_submit(State(state): State<PagesState>, Form(form): Form<LoginForm>) -> Result<Response, PageError> {
    let account = {
        let accounts = state.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.get(&form.username).cloned()
    };
    let refused = match &account {
        Some(account) if account.user.password == form.password => (!account.active).then_some("account disabled"),
        _ => Some("wrong username or password"),
    };
    if let Some(error) = refused {
        let page = login_form(&form.login_challenge, &form.username, Some(error));
        return Ok((StatusCode::OK, page).into_response());
    }
    let subject = account.map(|a| a.user.subject).unwrap_or_default();
    state
        .accept(
            "login/accept",
            ("login_challenge", form.login_challenge.as_str()),
            json!({ "subject": subject, "remember": false }),
        )
        .await
}

/// The login form, with `error` above it.
fn login_form(challenge: &str, username: &str, error: Option<&str>) -> Html<String> {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e))).unwrap_or_default();
    Html(format!(
        "<!doctype html>\n<html>\n<head><meta charset=\"utf-8\"><title>Testbed identity provider</title></head>\n\
         <body>\n<h1>Testbed identity provider</h1>\n{error}\
         <form method=\"post\" action=\"/login\">\n\
         <input type=\"hidden\" name=\"login_challenge\" value=\"{challenge}\">\n\
         <label>Username <input name=\"username\" value=\"{username}\" autocomplete=\"username\"></label>\n\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n</body>\n</html>\n",
        challenge = escape(challenge),
        username = escape(username),
    ))
}

/// `text` safe in HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Deserialize)]
struct ConsentQuery {
    consent_challenge: String,
}

async fn consent(State(state): State<PagesState>, Query(query): Query<ConsentQuery>) -> Result<Response, PageError> {
    let challenge = ("consent_challenge", query.consent_challenge.as_str());
    let request = state.call("consent", challenge, None).await?;
    let subject = request["subject"].as_str().unwrap_or_default();
    match state.by_subject(subject) {
        Some(account) if account.active => {
            let body = json!({
                "grant_scope": request["requested_scope"],
                "grant_access_token_audience": request["requested_access_token_audience"],
                "remember": false,
                "session": { "id_token": id_token_claims(&account.user) },
            });
            state.accept("consent/accept", challenge, body).await
        }
        _ => {
            let body = json!({ "error": "access_denied", "error_description": "account disabled" });
            state.accept("consent/reject", challenge, body).await
        }
    }
}

#[derive(Deserialize)]
struct LogoutQuery {
    logout_challenge: String,
}

async fn logout(State(state): State<PagesState>, Query(query): Query<LogoutQuery>) -> Result<Response, PageError> {
    state.accept("logout/accept", ("logout_challenge", query.logout_challenge.as_str()), json!({})).await
}

/// Hydra's token hook: the user's current claims over the ID token's (keeping Hydra's own,
/// such as `sid`), 403 for a deactivated user, 204 (no change) for a subject not in the table.
async fn token_hook(State(state): State<PagesState>, axum::Json(body): axum::Json<Value>) -> Response {
    let id_token = &body["session"]["id_token"];
    let subject = id_token["subject"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| id_token["id_token_claims"]["sub"].as_str())
        .unwrap_or_default();
    let Some(account) = state.by_subject(subject) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if !account.active {
        return (StatusCode::FORBIDDEN, "account disabled").into_response();
    }
    let mut claims = match &id_token["id_token_claims"]["ext"] {
        Value::Object(extra) => extra.clone(),
        _ => serde_json::Map::new(),
    };
    if let Value::Object(current) = id_token_claims(&account.user) {
        claims.extend(current);
    }
    let access_token = match &body["session"]["extra"] {
        Value::Object(extra) => Value::Object(extra.clone()),
        _ => json!({}),
    };
    axum::Json(json!({ "session": { "id_token": claims, "access_token": access_token } })).into_response()
}

fn failure(kind: ErrorKind, context: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Io { context: context.into(), source: std::io::Error::new(kind, message.into()) }
}

fn unique_temp_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nonce: u32 = rand::random();
    std::env::temp_dir().join(format!("gantry-identity-{}-{n}-{nonce:08x}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_can_be_shared_between_tests() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<IdentityProvider>();
    }

    #[test]
    fn the_login_form_escapes_what_it_echoes() {
        let Html(page) = login_form("a\"b", "<x>", Some("wrong username or password"));
        assert!(page.contains("<title>Testbed identity provider</title>"));
        assert!(page.contains("value=\"a&quot;b\"") && page.contains("value=\"&lt;x&gt;\""));
        assert!(page.contains("wrong username or password") && page.contains(">Sign in</button>"));
    }
}
