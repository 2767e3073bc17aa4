//! Gantry's own metrics in the Prometheus text format, through the official
//! client library: requests by route template, method and status with
//! latency histograms, database pool use, cached objects and cluster
//! liveness. Every label takes values from a bounded set (route templates,
//! the HTTP methods Gantry serves, registered clusters), so no request can
//! add series. `--metrics-token` makes the endpoint need a bearer token.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::web::WebState;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The methods Gantry serves; anything else is counted as `other`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
    Other,
}

impl Method {
    fn of(method: &http::Method) -> Method {
        match *method {
            http::Method::GET => Method::GET,
            http::Method::HEAD => Method::HEAD,
            http::Method::POST => Method::POST,
            http::Method::PUT => Method::PUT,
            http::Method::PATCH => Method::PATCH,
            http::Method::DELETE => Method::DELETE,
            http::Method::OPTIONS => Method::OPTIONS,
            _ => Method::Other,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route template (`/api/v1/clusters/{cluster}/nodes`), `/pkg/*`, or `page`.
    route: String,
    method: Method,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CachedLabels {
    cluster: String,
    kind: &'static str,
}

/// Label values come from the registered clusters, the team mapping and the
/// nodes' GPU labels: bounded by the fleet, not by requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AllocationLabels {
    cluster: String,
    team: String,
    namespace: String,
    model: String,
    capacity_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    backend: &'static str,
    state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
    pool: Family<PoolLabels, Gauge>,
    cached: Family<CachedLabels, Gauge>,
    live: Family<ClusterLabels, Gauge>,
    allocated: Family<AllocationLabels, Gauge>,
    cost_rate: Family<AllocationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// One scrape at a time refills the gauges, so two never interleave.
    rendering: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gantry");
        let build = Family::<Vec<(String, String)>, Gauge>::default();
        build.get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())]).set(1);
        registry.register("build_info", "Build information", build);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register("http_request_duration_seconds", "Request latency", durations.clone());
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register("db_pool_connections", "Database connections by state", pool.clone());
        let cached = Family::<CachedLabels, Gauge>::default();
        registry.register("cached_objects", "Objects in the watch caches", cached.clone());
        let live = Family::<ClusterLabels, Gauge>::default();
        registry.register("cluster_live", "1 while the cluster's caches are live", live.clone());
        let allocated = Family::<AllocationLabels, Gauge>::default();
        registry.register("gpu_allocated", "GPUs held now by scheduled, unfinished pods", allocated.clone());
        let cost_rate = Family::<AllocationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "gpu_cost_per_hour_dollars",
            "What the GPUs held now cost per hour at the current prices (unpriced GPUs are left out)",
            cost_rate.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            pool,
            cached,
            live,
            allocated,
            cost_rate,
            rendering: tokio::sync::Mutex::new(()),
        }
    }
}

impl Metrics {
    fn observe(&self, route: String, method: &http::Method, status: u16, seconds: f64) {
        let labels = RequestLabels { route, method: Method::of(method), status };
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }

    /// The text exposition, with the state behind the gate read now.
    pub async fn render(&self, web: &WebState) -> String {
        let _one_at_a_time = self.rendering.lock().await;
        let state = web.app.runtime_metrics().await;
        let backend = state.database_backend;
        let in_use = (state.database_connections as usize).saturating_sub(state.database_idle);
        self.pool.get_or_create(&PoolLabels { backend, state: "idle" }).set(state.database_idle as i64);
        self.pool.get_or_create(&PoolLabels { backend, state: "in_use" }).set(in_use as i64);
        // Removed clusters disappear from the next scrape.
        self.cached.clear();
        self.live.clear();
        for c in state.clusters {
            for (kind, count) in [("pods", c.pods), ("nodes", c.nodes), ("events", c.events)] {
                self.cached.get_or_create(&CachedLabels { cluster: c.name.clone(), kind }).set(count as i64);
            }
            self.live.get_or_create(&ClusterLabels { cluster: c.name }).set(i64::from(c.live));
        }
        self.allocated.clear();
        self.cost_rate.clear();
        for a in state.allocations {
            let labels = AllocationLabels {
                cluster: a.cluster,
                team: a.team,
                namespace: a.namespace,
                model: a.model,
                capacity_type: a.capacity_type,
            };
            self.allocated.get_or_create(&labels).set(a.gpus);
            if let Some(cost) = a.usd_per_hour {
                self.cost_rate.get_or_create(&labels).set(cost);
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("could not encode the metrics: {e}");
        }
        out
    }
}

/// `GET /metrics`, behind a bearer token when `--metrics-token` is set.
pub async fn endpoint(State(web): State<WebState>, headers: http::HeaderMap) -> Response {
    if let Some(expected) = web.metrics_token.as_deref() {
        let sent = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !gantry_service::auth::same_secret(expected, sent.trim()) {
            return crate::rest::ApiError(gantry_service::WireError::unauthenticated(
                "the metrics need the bearer token set with --metrics-token",
            ))
            .into_response();
        }
    }
    (
        [(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        web.metrics.render(&web).await,
    )
        .into_response()
}

pub async fn record(State(web): State<WebState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The route template keeps label values bounded.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| if request.uri().path().starts_with("/pkg/") { "/pkg/*".into() } else { "page".into() });
    let response = next.run(request).await;
    web.metrics.observe(route, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Shared by the router's state.
pub type SharedMetrics = Arc<Metrics>;
