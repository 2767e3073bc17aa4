//! Gantry's own metrics in the Prometheus text format: requests by route
//! and status with latency histograms, database pool use, cached objects,
//! and build info.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;

use crate::web::WebState;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock();
        let series = requests.entry((route.to_string(), method.to_string(), status)).or_default();
        series.count += 1;
        series.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                series.buckets[i] += 1;
            }
        }
    }

    pub fn render(&self, web: &WebState) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP gantry_build_info Build information.\n# TYPE gantry_build_info gauge");
        let _ = writeln!(out, "gantry_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(
            out,
            "# HELP gantry_http_requests_total HTTP requests by route, method and status.\n# TYPE gantry_http_requests_total counter"
        );
        let requests = self.requests.lock();
        for ((route, method, status), s) in requests.iter() {
            let _ = writeln!(
                out,
                "gantry_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP gantry_http_request_duration_seconds Request latency.\n# TYPE gantry_http_request_duration_seconds histogram"
        );
        for ((route, method, status), s) in requests.iter() {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "gantry_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(out, "gantry_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "gantry_http_request_duration_seconds_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "gantry_http_request_duration_seconds_count{{{labels}}} {}", s.count);
        }
        drop(requests);
        let (size, idle) = web.app.store.pool_usage();
        let _ = writeln!(
            out,
            "# HELP gantry_db_pool_connections Database connections by state.\n# TYPE gantry_db_pool_connections gauge"
        );
        let _ = writeln!(out, "gantry_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ =
            writeln!(out, "gantry_db_pool_connections{{state=\"in_use\"}} {}", (size as usize).saturating_sub(idle));
        let _ = writeln!(
            out,
            "gantry_db_pool_connections{{backend=\"{}\",state=\"total\"}} {size}",
            web.app.store.backend().name()
        );
        let _ = writeln!(
            out,
            "# HELP gantry_cached_objects Objects in the watch caches.\n# TYPE gantry_cached_objects gauge"
        );
        for cluster in web.app.hub.clusters() {
            let name = &cluster.name;
            let _ = writeln!(out, "gantry_cached_objects{{cluster=\"{name}\",kind=\"pods\"}} {}", cluster.pods.len());
            let _ = writeln!(out, "gantry_cached_objects{{cluster=\"{name}\",kind=\"nodes\"}} {}", cluster.nodes.len());
            let _ =
                writeln!(out, "gantry_cached_objects{{cluster=\"{name}\",kind=\"events\"}} {}", cluster.events.len());
            let live = i32::from(cluster.status().state == gantry_domain::view::ConnectionState::Live);
            let _ = writeln!(out, "gantry_cluster_live{{cluster=\"{name}\"}} {live}");
        }
        out
    }
}

pub async fn record(State(web): State<WebState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    // The route template keeps label cardinality bounded.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| if request.uri().path().starts_with("/pkg/") { "/pkg/*".into() } else { "page".into() });
    let response = next.run(request).await;
    web.metrics.observe(&route, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
