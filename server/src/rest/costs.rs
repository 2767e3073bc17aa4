//! GPU prices and team budgets.

use axum::Json;
use axum::extract::State;
use gantry_domain::cost::{Amount, BudgetView, GpuPrice};
use serde::Deserialize;
use utoipa::ToSchema;

use super::access::{Done, done};
use super::{ApiCaller, ApiResult, Body, Path};
use crate::web::WebState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PriceRequest {
    /// US dollars per GPU-hour, for example 2.49.
    pub usd_per_gpu_hour: f64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BudgetRequest {
    /// US dollars per month, for example 25000.
    pub usd_per_month: f64,
}

#[utoipa::path(get, path = "/api/v1/prices", responses((status = 200, body = Vec<GpuPrice>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn prices(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<GpuPrice>> {
    Ok(Json(web.app.price_list(&caller).await?.prices))
}

/// Sets the price of one GPU-hour of a model (as its nodes' `nvidia.com/gpu.product` label
/// says it) on `on-demand` or `spot` capacity.
#[utoipa::path(put, path = "/api/v1/prices/{model}/{capacity_type}", params(("model" = String, Path, example = "NVIDIA-L4"), ("capacity_type" = String, Path, description = "on-demand or spot", pattern = "^(on-demand|spot)$", example = "spot")), request_body = PriceRequest, responses((status = 200, body = Done), (status = 422, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn set_price(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((model, capacity_type)): Path<(String, String)>,
    Body(request): Body<PriceRequest>,
) -> ApiResult<Done> {
    web.app.set_gpu_price(&caller, &model, &capacity_type, &Amount::Dollars(request.usd_per_gpu_hour)).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/api/v1/prices/{model}/{capacity_type}", params(("model" = String, Path, example = "NVIDIA-L4"), ("capacity_type" = String, Path, description = "on-demand or spot", pattern = "^(on-demand|spot)$", example = "spot")), responses((status = 200, body = Done), (status = 404, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn delete_price(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((model, capacity_type)): Path<(String, String)>,
) -> ApiResult<Done> {
    web.app.delete_gpu_price(&caller, &model, &capacity_type).await?;
    Ok(done())
}

/// The team's monthly budget and what its GPUs cost now, at the current prices.
#[utoipa::path(get, path = "/api/v1/teams/{id}/budget", params(("id" = i64, Path, example = 1)), responses((status = 200, body = BudgetView)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn budget(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<BudgetView> {
    Ok(Json(web.app.team_budget(&caller, id).await?))
}

#[utoipa::path(put, path = "/api/v1/teams/{id}/budget", params(("id" = i64, Path, example = 1)), request_body = BudgetRequest, responses((status = 200, body = Done), (status = 422, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn set_budget(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
    Body(request): Body<BudgetRequest>,
) -> ApiResult<Done> {
    web.app.set_team_budget(&caller, id, &Amount::Dollars(request.usd_per_month)).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}/budget", params(("id" = i64, Path, example = 1)), responses((status = 200, body = Done), (status = 404, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn clear_budget(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.clear_team_budget(&caller, id).await?;
    Ok(done())
}
