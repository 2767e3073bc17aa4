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
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::metrics::Metrics;
use crate::security;

#[derive(Clone)]
pub struct WebState {
    pub app: AppState,
    pub leptos: LeptosOptions,
    pub metrics: Arc<Metrics>,
    pub secure_cookies: bool,
    pub trust_proxy: bool,
    /// Flips to true on shutdown, so long-lived streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
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
    pub trust_proxy: bool,
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
    if web.app.store.ready().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the database is unreachable or not migrated").into_response()
    }
}

async fn metrics(State(web): State<WebState>) -> Response {
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], web.metrics.render(&web)).into_response()
}

async fn openapi() -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], crate::openapi::document()).into_response()
}

/// Context every server function and page render receives: the service
/// state and this response's CSP nonce.
fn context(app: AppState) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(app.clone());
        let parts = leptos::prelude::use_context::<http::request::Parts>();
        if let Some(nonce) = parts.as_ref().and_then(|p| p.extensions.get::<security::CspNonce>()) {
            provide_context(leptos::nonce::Nonce::from_value(nonce.0.clone()));
        }
    }
}

async fn server_functions(State(web): State<WebState>, request: Request) -> Response {
    let response = leptos_axum::handle_server_fns_with_context(context(web.app.clone()), request).await.into_response();
    // Gantry's own errors set their status (see `app::api::ssr::fail`). What
    // is left at 500 is the framework refusing malformed arguments before the
    // function ran: that is the caller's mistake, so answer 400.
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let kind = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string));
    if kind.as_deref() == Some("request") {
        parts.status = StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
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

/// Every route of the app, wrapped in its middleware.
pub fn router(app: AppState, config: &WebConfig, shutdown: tokio::sync::watch::Receiver<bool>) -> Router {
    let leptos = leptos_options(config);
    let web = WebState {
        app: app.clone(),
        leptos: leptos.clone(),
        metrics: Arc::new(Metrics::default()),
        secure_cookies: config.secure_cookies,
        trust_proxy: config.trust_proxy,
        shutdown,
    };
    let sessions = SessionManagerLayer::new(app.store.clone())
        .with_name(security::SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(app.config.session_idle).unwrap_or(time::Duration::hours(2)),
        ));
    let routes = generate_route_list(app::App);
    let shell_options = leptos.clone();
    // `cargo leptos build --release --precompress` writes .br and .gz twins.
    let pkg = ServeDir::new(config.site_root.join("pkg")).precompressed_br().precompressed_gzip();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .nest("/api/v1", crate::rest::router())
        .route("/fn/{*name}", get(server_functions).post(server_functions))
        .leptos_routes_with_context(&web, routes, context(app.clone()), move || app::shell(shell_options.clone()))
        .route_layer(axum::middleware::from_fn_with_state(web.clone(), crate::metrics::record))
        .nest_service(
            "/pkg",
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("no-cache"),
                ))
                .service(pkg),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<WebState, _>(context(app.clone()), app::shell))
        .layer(axum::middleware::from_fn_with_state(web.clone(), security::same_origin))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(web.clone(), security::headers))
        .layer(axum::middleware::from_fn_with_state(web.clone(), security::client_address))
        .layer(axum::extract::DefaultBodyLimit::max(2 * 1024 * 1024))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(web)
}
