//! GPU usage and spend over time: cost allocation over any window, the
//! price list's history and CSV, clusters' own prices and Prometheus, and
//! where a team's budget alerts are posted.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gantry_domain::allocation::{AllocationQuery, AllocationReport};
use gantry_domain::chart::{Chart, SeriesQuery};
use gantry_domain::cost::{Amount, PriceChange};
use gantry_domain::error::ErrorBody;
use gantry_domain::view::PrometheusSettings;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{Done, done};
use super::costs::PriceRequest;
use super::{ApiCaller, ApiResult, Body, Path, Query};
use crate::web::WebState;

/// GPU-hours, cost, spot savings, idle and waste over a window, grouped by
/// any of cluster, namespace, team, workload, node, model and capacity
/// type, optionally as a series. A team member sees their team's rows.
#[utoipa::path(get, path = "/api/v1/allocation", params(AllocationQuery),
    responses((status = 200, body = AllocationReport), (status = 422, body = ErrorBody)),
    extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn allocation(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(query): Query<AllocationQuery>,
) -> ApiResult<AllocationReport> {
    Ok(Json(web.app.allocation(&caller, &query).await?))
}

/// Chart-ready series: aligned on shared bucket times, at most two points
/// per pixel of `width`, gaps (a stale cluster, before the history begins)
/// as nulls, scoped to what the caller may see. `chart` chooses what is
/// drawn: `spend` and `cost_rate` split `by` any of the allocation's
/// dimensions; `gpus` (capacity, allocated and utilised, for the visible
/// clusters, or one `cluster` or `node`); `budget` (a `team`'s month);
/// `workload` and `workload_cost` (one `workload` in a `cluster` and
/// `namespace`, with markers at its revisions).
#[utoipa::path(get, path = "/api/v1/series", params(SeriesQuery),
    responses((status = 200, body = Chart), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn series(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(query): Query<SeriesQuery>,
) -> ApiResult<Chart> {
    Ok(Json(web.app.chart(&caller, &query).await?))
}

/// The same rows as CSV.
#[utoipa::path(get, path = "/api/v1/allocation.csv", params(AllocationQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 422, body = ErrorBody)),
    extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn allocation_csv(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(query): Query<AllocationQuery>,
) -> Result<Response, super::ApiError> {
    let csv = web.app.allocation_csv(&caller, &query).await?;
    Ok(csv_response(csv, "gantry-allocation.csv"))
}

fn csv_response(csv: String, file: &'static str) -> Response {
    (
        [
            (http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        csv,
    )
        .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    pub model: String,
    /// on-demand or spot
    pub capacity_type: String,
    /// A cluster's own price; the global one without.
    pub cluster: Option<String>,
}

/// Every change of one price, newest first.
#[utoipa::path(get, path = "/api/v1/prices/history", params(HistoryParams),
    responses((status = 200, body = Vec<PriceChange>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn price_history(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(p): Query<HistoryParams>,
) -> ApiResult<Vec<PriceChange>> {
    Ok(Json(web.app.price_history(&caller, &p.model, &p.capacity_type, p.cluster.as_deref()).await?))
}

/// The price list now, as CSV (`cluster,model,capacity_type,usd_per_gpu_hour`;
/// an empty cluster is the global price).
#[utoipa::path(get, path = "/api/v1/prices.csv", responses((status = 200, content_type = "text/csv", body = String)),
    extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn prices_csv(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, super::ApiError> {
    Ok(csv_response(web.app.price_list_csv(&caller).await?, "gantry-prices.csv"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    /// Prices written, one per line.
    pub set: u64,
    /// Prices in effect before that the list left out, now removed.
    pub removed: u64,
}

/// Makes the uploaded CSV the whole price list from now on, all of it or
/// nothing: a bad line is named by line and column.
#[utoipa::path(put, path = "/api/v1/prices.csv", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = Imported), (status = 422, body = ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn import_prices(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    body: String,
) -> ApiResult<Imported> {
    let (set, removed) = web.app.import_price_list(&caller, &body).await?;
    Ok(Json(Imported { set, removed }))
}

type ClusterPrice = Path<(String, String, String)>;

/// Sets a cluster's own price for a model and capacity type (an on-prem
/// cluster's cost per GPU-hour, say); it wins over the global price there.
#[utoipa::path(put, path = "/api/v1/clusters/{cluster}/prices/{model}/{capacity_type}",
    params(("cluster" = String, Path), ("model" = String, Path), ("capacity_type" = String, Path)),
    request_body = PriceRequest, responses((status = 200, body = Done), (status = 422, body = ErrorBody)),
    extensions(("x-gantry-access" = json!("admin"))))]
pub async fn set_cluster_price(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, model, capacity_type)): ClusterPrice,
    Body(request): Body<PriceRequest>,
) -> ApiResult<Done> {
    let price = Amount::Dollars(request.usd_per_gpu_hour);
    web.app.set_cluster_price(&caller, &cluster, &model, &capacity_type, Some(&price)).await?;
    Ok(done())
}

/// Ends a cluster's own price: the global price applies there again.
#[utoipa::path(delete, path = "/api/v1/clusters/{cluster}/prices/{model}/{capacity_type}",
    params(("cluster" = String, Path), ("model" = String, Path), ("capacity_type" = String, Path)),
    responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn clear_cluster_price(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, model, capacity_type)): ClusterPrice,
) -> ApiResult<Done> {
    web.app.set_cluster_price(&caller, &cluster, &model, &capacity_type, None).await?;
    Ok(done())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PrometheusRequest {
    /// The Prometheus that scrapes the cluster's DCGM exporter, e.g. http://prometheus.monitoring:9090.
    pub url: String,
    /// A bearer token, if it needs one (kept sealed).
    pub token: Option<String>,
    /// Save it even if it does not answer now (Gantry keeps trying).
    #[serde(default)]
    pub save_anyway: bool,
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/prometheus", params(("cluster" = String, Path, example = "prod")),
    responses((status = 200, body = Option<PrometheusSettings>)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn prometheus(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(cluster): Path<String>,
) -> ApiResult<Option<PrometheusSettings>> {
    Ok(Json(web.app.cluster_prometheus(&caller, &cluster).await?))
}

/// Where the cluster's GPU utilisation comes from. It must answer as a
/// Prometheus, unless `save_anyway`.
#[utoipa::path(put, path = "/api/v1/clusters/{cluster}/prometheus", params(("cluster" = String, Path, example = "prod")),
    request_body = PrometheusRequest, responses((status = 200, body = PrometheusSettings), (status = 422, body = ErrorBody)),
    extensions(("x-gantry-access" = json!("admin"))))]
pub async fn set_prometheus(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(cluster): Path<String>,
    Body(request): Body<PrometheusRequest>,
) -> ApiResult<PrometheusSettings> {
    let token = request.token.as_deref();
    Ok(Json(web.app.set_cluster_prometheus(&caller, &cluster, &request.url, token, request.save_anyway).await?))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{cluster}/prometheus", params(("cluster" = String, Path, example = "prod")),
    responses((status = 200, body = Done), (status = 404, body = ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn remove_prometheus(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(cluster): Path<String>,
) -> ApiResult<Done> {
    web.app.remove_cluster_prometheus(&caller, &cluster).await?;
    Ok(done())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookRequest {
    /// An http(s) URL that budget alerts are posted to as JSON.
    pub url: String,
}

/// Where the team's budget alerts are posted (its team admins set it).
#[utoipa::path(put, path = "/api/v1/teams/{id}/webhook", params(("id" = i64, Path, example = 1)), request_body = WebhookRequest,
    responses((status = 200, body = Done), (status = 422, body = ErrorBody)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn set_webhook(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
    Body(request): Body<WebhookRequest>,
) -> ApiResult<Done> {
    web.app.set_team_webhook(&caller, id, Some(&request.url)).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}/webhook", params(("id" = i64, Path, example = 1)),
    responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn clear_webhook(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.set_team_webhook(&caller, id, None).await?;
    Ok(done())
}
