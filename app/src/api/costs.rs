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

/// GPU usage and spend over a window, grouped as asked (scoped to what the
/// caller may see).
#[server(prefix = "/fn", endpoint = "allocation")]
pub async fn allocation(
    query: gantry_domain::allocation::AllocationQuery,
) -> Result<gantry_domain::allocation::AllocationReport, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.allocation(&caller, &query).await.map_err(service)
}

/// One chart's series (see `GET /api/v1/series`), scoped to what the
/// caller may see.
#[server(prefix = "/fn", endpoint = "series")]
pub async fn series(query: gantry_domain::chart::SeriesQuery) -> Result<gantry_domain::chart::Chart, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.chart(&caller, &query).await.map_err(service)
}

/// Every change of one price, newest first.
#[server(prefix = "/fn", endpoint = "price_history")]
pub async fn price_history(
    model: String,
    capacity_type: String,
    cluster: Option<String>,
) -> Result<Vec<gantry_domain::cost::PriceChange>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.price_history(&caller, &model, &capacity_type, cluster.as_deref()).await.map_err(service)
}

/// A cluster's own price (an on-prem cluster's cost per GPU-hour): set as
/// typed, or removed when empty.
#[server(prefix = "/fn", endpoint = "set_cluster_price")]
pub async fn set_cluster_price(
    csrf: String,
    cluster: String,
    model: String,
    capacity_type: String,
    usd_per_gpu_hour: String,
) -> Result<(), AppError> {
    use super::ssr::*;
    use gantry_domain::cost::Amount;
    let caller = acting_caller(&csrf).await?;
    let price = Some(Amount::Typed(usd_per_gpu_hour.clone())).filter(|_| !usd_per_gpu_hour.trim().is_empty());
    state()?.set_cluster_price(&caller, cluster.trim(), &model, &capacity_type, price.as_ref()).await.map_err(service)
}

/// Makes a CSV the whole price list from now on (all or nothing).
#[server(prefix = "/fn", endpoint = "import_prices")]
pub async fn import_prices(csrf: String, csv: String) -> Result<(u64, u64), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.import_price_list(&caller, &csv).await.map_err(service)
}

/// Where a team's budget alerts are posted; an empty URL removes it.
#[server(prefix = "/fn", endpoint = "set_webhook")]
pub async fn set_webhook(csrf: String, team_id: i64, url: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let url = Some(url.trim()).filter(|u| !u.is_empty());
    state()?.set_team_webhook(&caller, team_id, url).await.map_err(service)
}

/// A cluster's Prometheus (where its GPU utilisation comes from); an empty
/// URL removes it.
#[server(prefix = "/fn", endpoint = "set_prometheus")]
pub async fn set_prometheus(
    csrf: String,
    cluster: String,
    url: String,
    token: String,
    save_anyway: Option<String>,
) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let state = state()?;
    if url.trim().is_empty() {
        state.remove_cluster_prometheus(&caller, cluster.trim()).await.map_err(service)?;
        return Ok("Utilisation is no longer read for this cluster".into());
    }
    let token = Some(token.trim()).filter(|t| !t.is_empty());
    let anyway = save_anyway.is_some_and(|v| v == "true" || v == "on");
    let saved = state.set_cluster_prometheus(&caller, cluster.trim(), &url, token, anyway).await.map_err(service)?;
    Ok(match saved.problem {
        None => format!("Saved: {} answers", saved.url),
        Some(problem) => format!("Saved, but it does not answer yet: {problem}"),
    })
}
