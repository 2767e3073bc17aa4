//! GPU prices (global admins set them; every signed-in user reads them) and
//! team budgets (a team's admins set them; its members read them, next to
//! what the team's GPUs cost now).

use gantry_domain::cost::{self, Amount, BudgetView, GpuPrice, PriceChange, PriceList, TeamBudget, Usd};
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
        self.record(caller, &audit, &result, (before, after)).await?;
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
        self.record(caller, &audit, &result, (before, Some("no price".into()))).await?;
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
        let month = self.month_spend(&team.name, budget, &rate).await?;
        let (alerts, webhook_host, failing) = self.budget_notices(team_id).await?;
        let mut view = BudgetView::new(team_id, team.name, budget, rate);
        view.month = month;
        view.alerts = alerts;
        // The webhook's host and its failures are for those who manage the budget.
        if gantry_domain::policy::may(&caller.principal, Action::ManageBudget, &Target::Team(team_id)).is_allowed() {
            view.webhook_host = webhook_host;
            view.failing_deliveries = failing;
        }
        Ok(view)
    }

    /// Sets (or, with None, removes) where the team's budget alerts are
    /// posted; the team's admins decide.
    pub async fn set_team_webhook(&self, caller: &Caller, team_id: i64, url: Option<&str>) -> Result<()> {
        let audit = Audit::team("budget.webhook", team_id, format!("team/{team_id}/webhook"));
        self.authorize(caller, Action::ManageBudget, &Target::Team(team_id), &audit).await?;
        let mut after = None;
        let result = async {
            let url = url.map(crate::budgets::webhook_url).transpose()?;
            self.store.team(team_id).await?.ok_or_else(|| ServiceError::not_found("no such team"))?;
            after = Some(match &url {
                Some(url) => format!("posts to {}", url.split('/').take(3).collect::<Vec<_>>().join("/")),
                None => "no webhook".into(),
            });
            Ok(self.store.set_team_webhook(team_id, url.as_deref()).await?)
        }
        .await;
        self.record(caller, &audit, &result, (None, after)).await?;
        result
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
        self.record(caller, &audit, &result, (before, after)).await?;
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
        self.record(caller, &audit, &result, (before, Some("no budget".into()))).await?;
        result
    }
}

impl AppState {
    /// Every change of one price, newest first (every signed-in user reads prices).
    pub async fn price_history(
        &self,
        caller: &Caller,
        model: &str,
        capacity_type: &str,
        cluster: Option<&str>,
    ) -> Result<Vec<PriceChange>> {
        self.authorize(caller, Action::ViewPrices, &Target::Global, &Audit::default()).await?;
        let (model, capacity_type) = cost::price_key(model, capacity_type)?;
        let cluster = cluster.map(str::trim).filter(|c| !c.is_empty());
        Ok(self
            .store
            .price_history(&model, capacity_type, cluster)
            .await?
            .into_iter()
            .map(|record| PriceChange {
                cluster: record.point.cluster,
                model: record.point.model,
                capacity_type: record.point.capacity_type,
                usd_per_gpu_hour: record.point.usd_per_gpu_hour,
                effective_from: record.point.effective_from,
            })
            .collect())
    }

    /// Sets (Some) or ends (None) a cluster's own price for a model and
    /// capacity type, such as an on-prem cluster's cost per GPU-hour; from now
    /// on, never rewriting the past.
    pub async fn set_cluster_price(
        &self,
        caller: &Caller,
        cluster: &str,
        model: &str,
        capacity_type: &str,
        price: Option<&Amount>,
    ) -> Result<()> {
        let action = if price.is_some() { "price.cluster.set" } else { "price.cluster.clear" };
        let object =
            format!("cluster/{}/{}", cluster.chars().take(64).collect::<String>(), price_object(model, capacity_type));
        let audit = Audit {
            action,
            cluster: Some(cluster.chars().take(64).collect()),
            object: Some(object),
            ..Default::default()
        };
        self.authorize(caller, Action::ManagePrices, &Target::Global, &audit).await?;
        let mut after = None;
        let result = async {
            let (model, capacity_type) = cost::price_key(model, capacity_type)?;
            self.cluster(cluster)?;
            let price = match price {
                Some(amount) => {
                    let usd = amount.parse("usd_per_gpu_hour")?;
                    if usd > Usd::MAX_GPU_HOUR {
                        return Err(Invalid::new(
                            "usd_per_gpu_hour",
                            format!("at most {}", per_hour(Usd::MAX_GPU_HOUR)),
                        )
                        .into());
                    }
                    Some(usd)
                }
                None => None,
            };
            after = Some(price.map_or_else(|| "the global price".to_string(), per_hour));
            Ok(self.store.set_cluster_price(cluster, &model, capacity_type, price, now_ms()).await?)
        }
        .await;
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }

    /// The price list now as CSV: global prices, then each cluster's own.
    pub async fn price_list_csv(&self, caller: &Caller) -> Result<String> {
        self.authorize(caller, Action::ViewPrices, &Target::Global, &Audit::default()).await?;
        let line = |cluster: Option<&str>, p: GpuPrice| cost::PriceLine {
            cluster: cluster.map(str::to_string),
            model: p.model,
            capacity_type: p.capacity_type,
            usd_per_gpu_hour: p.usd_per_gpu_hour,
        };
        let mut lines: Vec<cost::PriceLine> =
            self.store.gpu_prices().await?.into_iter().map(|p| line(None, p)).collect();
        for cluster in self.hub.names() {
            lines.extend(self.store.cluster_prices(&cluster).await?.into_iter().map(|p| line(Some(&cluster), p)));
        }
        Ok(cost::price_csv(&lines))
    }

    /// Makes an uploaded CSV the price list from now on, all of it or
    /// nothing: a bad line is named by line and column and nothing changes.
    /// Prices the list leaves out are removed from now on.
    pub async fn import_price_list(&self, caller: &Caller, csv: &str) -> Result<(u64, u64)> {
        let audit = Audit::global("price.import", "prices");
        self.authorize(caller, Action::ManagePrices, &Target::Global, &audit).await?;
        let mut after = None;
        let result = async {
            if csv.len() > 1024 * 1024 {
                return Err(Invalid::new("csv", "is larger than 1 MiB").into());
            }
            let lines = cost::parse_price_csv(csv)?;
            let imported: Vec<gantry_store::ImportedPrice> = lines
                .into_iter()
                .map(|l| gantry_store::ImportedPrice {
                    cluster: l.cluster,
                    model: l.model,
                    capacity_type: l.capacity_type,
                    usd_per_gpu_hour: l.usd_per_gpu_hour,
                })
                .collect();
            let done = self.store.replace_prices_at(&imported, now_ms()).await?;
            after = Some(format!("{} prices set, {} removed", done.set, done.removed));
            Ok((done.set, done.removed))
        }
        .await;
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }
}
