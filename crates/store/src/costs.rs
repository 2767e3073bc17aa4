//! GPU prices and team budgets.

use gantry_domain::cost::Usd;
pub use gantry_domain::cost::{GpuPrice, TeamBudget};
use gantry_domain::gpu::CapacityType;
use sqlx::Row;

use crate::{Result, Store};

impl Store {
    /// Every price, by model then capacity type.
    pub async fn gpu_prices(&self) -> Result<Vec<GpuPrice>> {
        let rows = sqlx::query(
            "SELECT model, capacity_type, micro_usd_per_hour, updated_at FROM gpu_prices ORDER BY model, capacity_type",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GpuPrice {
                    model: row.try_get("model")?,
                    capacity_type: CapacityType::from_label(&row.try_get::<String, _>("capacity_type")?)
                        .unwrap_or_default(),
                    usd_per_gpu_hour: Usd::from_micros(row.try_get("micro_usd_per_hour")?),
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Sets the price of one GPU-hour of a model on a capacity type.
    pub async fn set_gpu_price(&self, price: &GpuPrice) -> Result<()> {
        sqlx::query(
            "INSERT INTO gpu_prices (model, capacity_type, micro_usd_per_hour, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (model, capacity_type) DO UPDATE \
             SET micro_usd_per_hour = excluded.micro_usd_per_hour, updated_at = excluded.updated_at",
        )
        .bind(&price.model)
        .bind(price.capacity_type.label())
        .bind(price.usd_per_gpu_hour.micros())
        .bind(price.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a price; false when there was none.
    pub async fn delete_gpu_price(&self, model: &str, capacity_type: CapacityType) -> Result<bool> {
        let done = sqlx::query("DELETE FROM gpu_prices WHERE model = $1 AND capacity_type = $2")
            .bind(model)
            .bind(capacity_type.label())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn team_budget(&self, team_id: i64) -> Result<Option<TeamBudget>> {
        let row = sqlx::query("SELECT micro_usd_per_month, updated_at FROM team_budgets WHERE team_id = $1")
            .bind(team_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(TeamBudget {
                team_id,
                usd_per_month: Usd::from_micros(row.try_get("micro_usd_per_month")?),
                updated_at: row.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    pub async fn set_team_budget(&self, budget: &TeamBudget) -> Result<()> {
        sqlx::query(
            "INSERT INTO team_budgets (team_id, micro_usd_per_month, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (team_id) DO UPDATE \
             SET micro_usd_per_month = excluded.micro_usd_per_month, updated_at = excluded.updated_at",
        )
        .bind(budget.team_id)
        .bind(budget.usd_per_month.micros())
        .bind(budget.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a team's budget; false when it had none.
    pub async fn clear_team_budget(&self, team_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM team_budgets WHERE team_id = $1").bind(team_id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(model: &str, capacity_type: CapacityType, micros: i64, at: i64) -> GpuPrice {
        GpuPrice { model: model.into(), capacity_type, usd_per_gpu_hour: Usd::from_micros(micros), updated_at: at }
    }

    crate::store_test!(prices_are_set_replaced_and_removed_per_model_and_capacity, |store| {
        assert!(store.gpu_prices().await.unwrap().is_empty());
        store.set_gpu_price(&price("H100", CapacityType::OnDemand, 4_000_000, 1)).await.unwrap();
        store.set_gpu_price(&price("H100", CapacityType::Spot, 1_500_000, 2)).await.unwrap();
        store.set_gpu_price(&price("A100", CapacityType::OnDemand, 2_250_001, 3)).await.unwrap();
        // Setting again replaces: one price per model and capacity type.
        store.set_gpu_price(&price("H100", CapacityType::OnDemand, 3_900_000, 4)).await.unwrap();
        assert_eq!(
            store.gpu_prices().await.unwrap(),
            [
                price("A100", CapacityType::OnDemand, 2_250_001, 3),
                price("H100", CapacityType::OnDemand, 3_900_000, 4),
                price("H100", CapacityType::Spot, 1_500_000, 2),
            ]
        );
        assert!(store.delete_gpu_price("H100", CapacityType::Spot).await.unwrap());
        assert!(!store.delete_gpu_price("H100", CapacityType::Spot).await.unwrap(), "already gone");
        assert_eq!(store.gpu_prices().await.unwrap().len(), 2);
        // The database refuses what the service would never send.
        let unknown = store.set_gpu_price(&price("L4", CapacityType::Unknown, 1, 5)).await;
        assert!(unknown.is_err(), "capacity type 'unknown' has no price");
        let negative = store.set_gpu_price(&price("L4", CapacityType::Spot, -1, 5)).await;
        assert!(negative.is_err());
        assert_eq!(store.gpu_prices().await.unwrap().len(), 2, "nothing half-written");
    });

    crate::store_test!(budgets_are_per_team_and_go_with_the_team, |store| {
        let vision = store.create_team("vision").await.unwrap();
        let nlp = store.create_team("nlp").await.unwrap();
        assert_eq!(store.team_budget(vision.id).await.unwrap(), None);
        let budget =
            |team_id, micros, at| TeamBudget { team_id, usd_per_month: Usd::from_micros(micros), updated_at: at };
        store.set_team_budget(&budget(vision.id, 50_000_000_000, 1)).await.unwrap();
        store.set_team_budget(&budget(nlp.id, 9_000_000_000, 1)).await.unwrap();
        store.set_team_budget(&budget(vision.id, 60_000_000_000, 2)).await.unwrap();
        assert_eq!(store.team_budget(vision.id).await.unwrap(), Some(budget(vision.id, 60_000_000_000, 2)));
        assert!(store.clear_team_budget(nlp.id).await.unwrap());
        assert!(!store.clear_team_budget(nlp.id).await.unwrap());
        assert_eq!(store.team_budget(nlp.id).await.unwrap(), None);
        store.delete_team(vision.id).await.unwrap();
        assert_eq!(store.team_budget(vision.id).await.unwrap(), None, "deleting a team deletes its budget");
    });
}
