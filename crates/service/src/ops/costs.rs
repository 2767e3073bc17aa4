//! GPU prices (global admins set them; every signed-in user reads them) and
//! team budgets (a team's admins set them; its members read them, next to
//! what the team's GPUs cost now).

use gantry_domain::cost::{self, Amount, BudgetView, GpuPrice, PriceList, TeamBudget, Usd};
use gantry_domain::gpu::CapacityType;
use gantry_domain::policy::{Action, Target};
use gantry_domain::validate::Invalid;
use gantry_store::now_ms;

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

fn per_hour(price: Usd) -> String {
    format!("{price}/GPU-hour")
}

/// A price as the audit log names it, from the input as given.
fn price_object(model: &str, capacity_type: &str) -> String {
    format!("price/{}/{}", model.chars().take(128).collect::<String>(), capacity_type.trim())
}

fn per_month(budget: Usd) -> String {
    format!("{budget}/month")
}

impl AppState {
    /// The price now set for a model and capacity type, as the audit log shows it.
    async fn current_price(&self, model: &str, capacity_type: CapacityType) -> Result<Option<String>> {
        let prices = self.store.gpu_prices().await?;
        Ok(prices
            .iter()
            .find(|p| p.model == model && p.capacity_type == capacity_type)
            .map(|p| per_hour(p.usd_per_gpu_hour)))
    }

    pub async fn price_list(&self, caller: &Caller) -> Result<PriceList> {
        self.authorize(caller, Action::ViewPrices, &Target::Global, &Audit::default()).await?;
        let prices = self.store.gpu_prices().await?;
        let can_manage =
            gantry_domain::policy::may(&caller.principal, Action::ManagePrices, &Target::Global).is_allowed();
        let fleet = if can_manage { gantry_cluster::queries::gpu_inventory(&self.hub) } else { Vec::new() };
        Ok(PriceList { prices, fleet, can_manage })
    }

    /// Sets the price of one GPU-hour of `model` on `capacity_type`
    /// (`on-demand` or `spot`).
    pub async fn set_gpu_price(&self, caller: &Caller, model: &str, capacity_type: &str, price: &Amount) -> Result<()> {
        let audit = Audit::global("price.set", price_object(model, capacity_type));
        self.authorize(caller, Action::ManagePrices, &Target::Global, &audit).await?;
        let (mut before, mut after) = (None, None);
        let result = async {
            let (model, capacity_type) = cost::price_key(model, capacity_type)?;
            let price = price.parse("usd_per_gpu_hour")?;
            if price > Usd::MAX_GPU_HOUR {
                return Err(Invalid::new("usd_per_gpu_hour", format!("at most {}", per_hour(Usd::MAX_GPU_HOUR))).into());
            }
            before = self.current_price(&model, capacity_type).await?;
            after = Some(per_hour(price));
            let price = GpuPrice { model, capacity_type, usd_per_gpu_hour: price, updated_at: now_ms() };
            Ok(self.store.set_gpu_price(&price).await?)
        }
        .await;
        self.record(caller, &audit, &result, (before, after)).await;
        result
    }

    pub async fn delete_gpu_price(&self, caller: &Caller, model: &str, capacity_type: &str) -> Result<()> {
        let audit = Audit::global("price.delete", price_object(model, capacity_type));
        self.authorize(caller, Action::ManagePrices, &Target::Global, &audit).await?;
        let mut before = None;
        let result = async {
            let (model, capacity_type) = cost::price_key(model, capacity_type)?;
            before = self.current_price(&model, capacity_type).await?;
            if !self.store.delete_gpu_price(&model, capacity_type).await? {
                return Err(ServiceError::not_found(format!("no {} price for {model}", capacity_type.label())));
            }
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (before, Some("no price".into()))).await;
        result
    }

    /// The team's budget, and what the GPUs its pods hold in all its
    /// namespaces cost now at the current prices.
    pub async fn team_budget(&self, caller: &Caller, team_id: i64) -> Result<BudgetView> {
        self.authorize(caller, Action::ViewNamespace, &Target::Team(team_id), &Audit::default()).await?;
        let team = self.store.team(team_id).await?.ok_or_else(|| ServiceError::not_found("no such team"))?;
        let budget = self.store.team_budget(team_id).await?.map(|b| b.usd_per_month);
        let ownership = self.store.ownership().await?;
        let uses = gantry_cluster::queries::gpu_uses(&self.hub, |cluster, namespace| {
            ownership.owner(cluster, namespace) == Some(team_id)
        });
        let rate = cost::cost_rate(&uses, &self.store.gpu_prices().await?);
        Ok(BudgetView::new(team_id, team.name, budget, rate))
    }

    pub async fn set_team_budget(&self, caller: &Caller, team_id: i64, usd_per_month: &Amount) -> Result<()> {
        let audit = Audit::team("budget.set", team_id, format!("team/{team_id}/budget"));
        self.authorize(caller, Action::ManageBudget, &Target::Team(team_id), &audit).await?;
        let (mut before, mut after) = (None, None);
        let result = async {
            let usd_per_month = usd_per_month.parse("usd_per_month")?;
            after = Some(per_month(usd_per_month));
            self.store.team(team_id).await?.ok_or_else(|| ServiceError::not_found("no such team"))?;
            before = self.store.team_budget(team_id).await?.map(|b| per_month(b.usd_per_month));
            let budget = TeamBudget { team_id, usd_per_month, updated_at: now_ms() };
            Ok(self.store.set_team_budget(&budget).await?)
        }
        .await;
        self.record(caller, &audit, &result, (before, after)).await;
        result
    }

    pub async fn clear_team_budget(&self, caller: &Caller, team_id: i64) -> Result<()> {
        let audit = Audit::team("budget.clear", team_id, format!("team/{team_id}/budget"));
        self.authorize(caller, Action::ManageBudget, &Target::Team(team_id), &audit).await?;
        let mut before = None;
        let result = async {
            before = self.store.team_budget(team_id).await?.map(|b| per_month(b.usd_per_month));
            if !self.store.clear_team_budget(team_id).await? {
                return Err(ServiceError::not_found("the team has no budget"));
            }
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (before, Some("no budget".into()))).await;
        result
    }
}
