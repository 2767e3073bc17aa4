//! The HTTP surface: health, metrics, the REST API, server functions, the
//! Leptos pages, static files, and the middleware around all of them.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gantry_service::AppState;
use http::StatusCode;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::services::ServeDir;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::assets::SiteFiles;
use crate::metrics::Metrics;
use crate::security;

#[derive(Clone)]
pub struct WebState {
    pub app: AppState,
    pub leptos: LeptosOptions,
    pub metrics: Arc<Metrics>,
    pub secure_cookies: bool,
    /// Reverse proxies in front of Gantry that append to X-Forwarded-For.
    pub proxy_hops: usize,
    /// `scheme://host[:port]` Gantry is served at; empty: whatever Host a request names.
    pub public_origins: Vec<String>,
    pub metrics_token: Option<String>,
    /// The identity provider's origin, where sign-out's redirect may go
    /// (the CSP's form-action), when single sign-on is on.
    pub sso_origin: Option<String>,
    /// Flips to true on shutdown, so long-lived streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Requests that change something, still running.
    changes: TaskTracker,
}

/// What shutting down needs from the router: the flag that says it has
/// begun (readiness goes 503, streams end) and the changes still running,
/// which it waits for before the process ends.
#[derive(Clone)]
pub struct Lifecycle {
    pub stopping: tokio::sync::watch::Receiver<bool>,
    changes: TaskTracker,
}

impl Lifecycle {
    pub fn new(stopping: tokio::sync::watch::Receiver<bool>) -> Lifecycle {
        Lifecycle { stopping, changes: TaskTracker::new() }
    }

    /// Once the listener has closed: waits up to `limit` for the changes
    /// still running (their callers may have gone), so each ends done or
    /// undone, and audited. False when some were still running at `limit`.
    pub async fn finish_changes(&self, limit: std::time::Duration) -> bool {
        self.changes.close();
        if !self.changes.is_empty() {
            tracing::info!("waiting for {} change(s) still running", self.changes.len());
        }
        tokio::time::timeout(limit, self.changes.wait()).await.is_ok()
    }
}

impl FromRef<WebState> for LeptosOptions {
    fn from_ref(state: &WebState) -> LeptosOptions {
        state.leptos.clone()
    }
}

pub struct WebConfig {
    pub site_root: PathBuf,
    pub listen: std::net::SocketAddr,
    pub secure_cookies: bool,
    /// How many trusted reverse proxies append to X-Forwarded-For (0: none; the peer is the client).
    pub proxy_hops: usize,
    /// The origins Gantry is served at (`https://gantry.example.com`); when
    /// set, other hosts are refused and changes must come from these.
    pub public_origins: Vec<String>,
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
}

impl WebConfig {
    /// A local server: plain http, no proxy, any host, open metrics.
    pub fn local(site_root: PathBuf, listen: std::net::SocketAddr) -> WebConfig {
        WebConfig {
            site_root,
            listen,
            secure_cookies: false,
            proxy_hops: 0,
            public_origins: Vec::new(),
            metrics_token: None,
        }
    }
}

pub fn leptos_options(config: &WebConfig) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("gantry")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .env(leptos::config::Env::PROD)
        .build()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(web): State<WebState>) -> Response {
    if *web.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        match web.app.readiness().await {
            Ok(()) => (StatusCode::OK, "ready").into_response(),
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
        }
    }
}

/// The icon browsers ask for on every page (built into the binary, so any
/// build has it).
async fn favicon() -> Response {
    const ICON: &[u8] = include_bytes!("../static/favicon.ico");
    ([(http::header::CONTENT_TYPE, "image/x-icon"), (http::header::CACHE_CONTROL, "public, max-age=86400")], ICON)
        .into_response()
}

/// Context every server function and page render receives: the service
/// state, the site's hashed file names and this response's CSP nonce.
fn context(app: AppState, site: Option<Arc<SiteFiles>>) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(app.clone());
        if let Some(site) = &site {
            let files = site.current();
            provide_context(files.names());
            if let Some(manifest) = files.split_manifest() {
                provide_context(manifest);
            }
        }
        let parts = leptos::prelude::use_context::<http::request::Parts>();
        if let Some(nonce) = parts.as_ref().and_then(|p| p.extensions.get::<security::CspNonce>()) {
            provide_context(leptos::nonce::Nonce::from_value(nonce.0.clone()));
        }
        if let Some(csrf) = parts.as_ref().and_then(|p| p.extensions.get::<app::PageCsrf>()) {
            provide_context(csrf.clone());
        }
    }
}

async fn server_functions(State(web): State<WebState>, request: Request) -> Response {
    leptos_axum::handle_server_fns_with_context(context(web.app.clone(), None), request).await.into_response()
}

/// Gantry's own server-function errors set their status (see
/// `app::api::ssr::fail`). What is left at 500 is the framework refusing a
/// request it could not read (malformed arguments, an undecodable body)
/// before the function ran: the caller's mistake, so it gets the status of
/// the error's kind.
async fn server_function_status(request: Request, next: axum::middleware::Next) -> Response {
    let is_server_fn = request.uri().path().starts_with(app::api::PREFIX);
    let response = next.run(request).await;
    if !is_server_fn || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    if let Ok(error) = serde_json::from_slice::<gantry_service::WireError>(&bytes) {
        parts.status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// A request that changes something (any method but GET, HEAD, OPTIONS and
/// TRACE) runs to its end in a task of its own, even when its caller goes
/// away: a browser tab closed, a client's timeout, a proxy dropping
/// connections as Gantry shuts down. Dropping it part-way would leave a
/// change made with no audit record, or a launch half-created with nothing
/// to undo it.
async fn run_changes_to_completion(
    State(web): State<WebState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    match web.changes.spawn(next.run(request)).await {
        Ok(response) => response,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "Gantry is shutting down").into_response(),
    }
}

/// Serves `router` on `listener` (handlers see the client's address) until
/// `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Which answers are compressed (gzip or brotli, as the client accepts,
/// when 1 KiB or more): JSON and CSV, such as a month of allocation by
/// workload (tens of megabytes of JSON), and pages the browser says this
/// site or the person asked for ([`security::FirstParty`]). A page another site's
/// page made the browser load is not: it carries the CSRF token beside input
/// that site chose, and its compressed length would leak the token (BREACH).
/// Nor are streams: a followed log is text/plain and events are
/// text/event-stream, and compressing either would hold lines back until a
/// compressor's buffer fills. Assets under /pkg and /assets are served
/// precompressed and already say so.
fn compressible(_: StatusCode, _: http::Version, headers: &http::HeaderMap, extensions: &http::Extensions) -> bool {
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.starts_with("application/json")
        || content_type.starts_with("text/csv")
        || (content_type.starts_with("text/html") && extensions.get::<security::FirstParty>().is_some())
}

/// Every route of the app, wrapped in its middleware.
/// The app's routes, listed once per process. Listing runs the app with
/// every resource in the process held back (leptos_router sets a
/// process-wide flag while it runs), so a page rendering meanwhile, for
/// another router in the same process, would wait for its data forever.
/// Tests list the routes through this too.
pub fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

pub fn router(app: AppState, config: &WebConfig, lifecycle: &Lifecycle) -> Router {
    let leptos = leptos_options(config);
    let web = WebState {
        app: app.clone(),
        leptos: leptos.clone(),
        metrics: Arc::new(Metrics::default()),
        secure_cookies: config.secure_cookies,
        proxy_hops: config.proxy_hops,
        public_origins: config.public_origins.clone(),
        metrics_token: config.metrics_token.clone(),
        sso_origin: app.sso_origin(),
        shutdown: lifecycle.stopping.clone(),
        changes: lifecycle.changes.clone(),
    };
    let sessions = SessionManagerLayer::new(app.session_store())
        .with_name(security::SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(app.config.session_idle).unwrap_or(time::Duration::hours(2)),
        ));
    let (api, openapi) = crate::rest::api();
    let openapi = openapi.to_pretty_json().unwrap_or_else(|_| "{}".into());
    let routes = route_list();
    let shell_options = leptos.clone();
    // `cargo leptos build --release --precompress` writes .br and .gz twins.
    let pkg = ServeDir::new(config.site_root.join("pkg")).precompressed_br().precompressed_gzip();
    let vendored = ServeDir::new(config.site_root.join("assets")).precompressed_br().precompressed_gzip();
    let site = Arc::new(SiteFiles::new(&config.site_root.join("pkg"), &leptos.output_name));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/favicon.ico", get(favicon))
        .route("/metrics", get(crate::metrics::endpoint))
        .route(
            "/api/openapi.json",
            get(move || async move { ([(http::header::CONTENT_TYPE, "application/json")], openapi) }),
        )
        .merge(api)
        .merge(crate::sso::routes())
        .route("/fn/{*name}", get(server_functions).post(server_functions))
        .merge(
            Router::new()
                .leptos_routes_with_context(&web, routes, context(app.clone(), Some(site.clone())), move || {
                    app::shell(shell_options.clone())
                })
                .route_layer(axum::middleware::from_fn(security::page_csrf)),
        )
        .route_layer(axum::middleware::from_fn_with_state(web.clone(), crate::metrics::record))
        // Cache-Control for both, and hashed names to fixed files: crate::assets.
        .nest_service("/pkg", pkg)
        .nest_service("/assets", vendored)
        .layer(axum::middleware::from_fn_with_state(site.clone(), crate::assets::cache_control))
        .fallback(leptos_axum::file_and_error_handler_with_context::<WebState, _>(
            context(app.clone(), Some(site)),
            app::shell,
        ))
        .layer(axum::middleware::from_fn_with_state(web.clone(), run_changes_to_completion))
        .layer(axum::middleware::from_fn(server_function_status))
        .layer(axum::middleware::from_fn_with_state(web.clone(), security::same_origin))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(web.clone(), security::headers))
        .layer(axum::middleware::from_fn_with_state(web.clone(), security::client_address_layer))
        .layer(axum::extract::DefaultBodyLimit::max(2 * 1024 * 1024))
        .layer(axum::middleware::from_fn(security::mark_first_party))
        .layer(CompressionLayer::new().compress_when(SizeAbove::new(1024).and(compressible)))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(web)
}
