//! GPU prices and team budgets.

use gantry_domain::cost::PriceList;
use leptos::prelude::*;

use crate::error::AppError;

#[server(prefix = "/fn", endpoint = "prices")]
pub async fn prices() -> Result<PriceList, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.price_list(&caller).await.map_err(service)
}

/// Sets a price as typed: `2.49` or `$2.49` per GPU-hour.
#[server(prefix = "/fn", endpoint = "set_price")]
pub async fn set_price(
    csrf: String,
    model: String,
    capacity_type: String,
    usd_per_gpu_hour: String,
) -> Result<(), AppError> {
    use super::ssr::*;
    use gantry_domain::cost::Amount;
    let caller = acting_caller(&csrf).await?;
    state()?.set_gpu_price(&caller, &model, &capacity_type, &Amount::Typed(usd_per_gpu_hour)).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "delete_price")]
pub async fn delete_price(csrf: String, model: String, capacity_type: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.delete_gpu_price(&caller, &model, &capacity_type).await.map_err(service)
}

/// Sets a team's monthly budget as typed: `25000` or `$25,000`.
#[server(prefix = "/fn", endpoint = "set_budget")]
pub async fn set_budget(csrf: String, team_id: i64, usd_per_month: String) -> Result<(), AppError> {
    use super::ssr::*;
    use gantry_domain::cost::Amount;
    let caller = acting_caller(&csrf).await?;
    state()?.set_team_budget(&caller, team_id, &Amount::Typed(usd_per_month)).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "clear_budget")]
pub async fn clear_budget(csrf: String, team_id: i64) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.clear_team_budget(&caller, team_id).await.map_err(service)
}
