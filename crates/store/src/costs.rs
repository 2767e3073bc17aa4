//! GPU prices and team budgets.
//!
//! Prices are points in time: a price per GPU-hour for a model and capacity
//! type, globally or for one cluster, in effect from `effective_from` until
//! the next point for the same key. Points are only ever appended, so a
//! change never rewrites what the past cost; a point without a price removes
//! the price from its time on (see [`PricePoint`]). The current price list is
//! the newest point of each key, by effective time and then by insertion, so
//! of two points for the same time the later written wins, as in
//! [`gantry_domain::usage::PriceBook`].

use std::collections::{BTreeMap, BTreeSet};

use gantry_domain::cost::Usd;
pub use gantry_domain::cost::{GpuPrice, TeamBudget};
use gantry_domain::gpu::CapacityType;
use gantry_domain::usage::PricePoint;

use crate::ledger::capacity_type;
use crate::{Result, Store, now_ms};

/// A price point as stored, with when it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceRecord {
    pub id: i64,
    pub point: PricePoint,
    pub created_at: i64,
}

/// One line of an imported price list: a price for a model and capacity
/// type, globally (`cluster` None) or for one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedPrice {
    pub cluster: Option<String>,
    pub model: String,
    pub capacity_type: CapacityType,
    pub usd_per_gpu_hour: Usd,
}

/// What [`Store::replace_prices_at`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PricesReplaced {
    /// Prices written, one per line of the list.
    pub set: u64,
    /// Prices in effect before that the list left out, now removed.
    pub removed: u64,
}

#[derive(sqlx::FromRow)]
struct PointRow {
    id: i64,
    cluster: Option<String>,
    model: String,
    capacity_type: String,
    micro_usd_per_hour: Option<i64>,
    effective_from: i64,
    created_at: i64,
}

impl PointRow {
    fn into_record(self) -> PriceRecord {
        PriceRecord {
            id: self.id,
            point: PricePoint {
                cluster: self.cluster,
                model: self.model,
                capacity_type: capacity_type(&self.capacity_type),
                usd_per_gpu_hour: self.micro_usd_per_hour.map(Usd::from_micros),
                effective_from: self.effective_from,
            },
            created_at: self.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct BudgetRow {
    micro_usd_per_month: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct CurrentRow {
    model: String,
    capacity_type: String,
    micro_usd_per_hour: i64,
    effective_from: i64,
}

const POINT_COLUMNS: &str = "id, cluster, model, capacity_type, micro_usd_per_hour, effective_from, created_at";

/// The current prices of one scope (`cluster IS NULL` for the global list,
/// `cluster = $1` for one cluster's): each key's newest point, unless it is
/// a removal.
fn current_prices_sql(scope: &str) -> String {
    format!(
        "SELECT p.model, p.capacity_type, p.micro_usd_per_hour, p.effective_from FROM gpu_price_points p \
         WHERE p.cluster {scope} AND p.micro_usd_per_hour IS NOT NULL AND NOT EXISTS ( \
             SELECT 1 FROM gpu_price_points q \
             WHERE q.cluster {scope} AND q.model = p.model AND q.capacity_type = p.capacity_type \
             AND (q.effective_from > p.effective_from OR (q.effective_from = p.effective_from AND q.id > p.id))) \
         ORDER BY p.model, p.capacity_type"
    )
}

impl CurrentRow {
    fn into_price(self) -> GpuPrice {
        GpuPrice {
            model: self.model,
            capacity_type: capacity_type(&self.capacity_type),
            usd_per_gpu_hour: Usd::from_micros(self.micro_usd_per_hour),
            updated_at: self.effective_from,
        }
    }
}

/// A price's key: cluster (None = global), model, capacity type label.
type PriceKey = (Option<String>, String, &'static str);

async fn append_point(
    tx: &mut sqlx::AnyConnection,
    cluster: Option<&str>,
    model: &str,
    capacity_type: CapacityType,
    price: Option<Usd>,
    effective_from: i64,
    created_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO gpu_price_points (cluster, model, capacity_type, micro_usd_per_hour, effective_from, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(cluster)
    .bind(model)
    .bind(capacity_type.label())
    .bind(price.map(Usd::micros))
    .bind(effective_from)
    .bind(created_at)
    .execute(tx)
    .await?;
    Ok(())
}

impl Store {
    /// The current global price list, by model then capacity type: each
    /// key's newest point (even one dated ahead), leaving out removed
    /// prices. `updated_at` is when the price took effect.
    pub async fn gpu_prices(&self) -> Result<Vec<GpuPrice>> {
        let rows: Vec<CurrentRow> = sqlx::query_as(&current_prices_sql("IS NULL")).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(CurrentRow::into_price).collect())
    }

    /// Sets the global price of one GPU-hour of a model on a capacity type,
    /// in effect from `price.updated_at`.
    pub async fn set_gpu_price(&self, price: &GpuPrice) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        append_point(
            &mut conn,
            None,
            &price.model,
            price.capacity_type,
            Some(price.usd_per_gpu_hour),
            price.updated_at,
            now_ms(),
        )
        .await
    }

    /// Removes a global price from now on (or from its own time, if that is
    /// later, so the removal is what stays current); false when there was no
    /// current price. The time it was priced keeps its price.
    pub async fn delete_gpu_price(&self, model: &str, capacity_type: CapacityType) -> Result<bool> {
        // One statement: the removal is written only if a current price is
        // there to remove.
        let done = sqlx::query(
            "INSERT INTO gpu_price_points (cluster, model, capacity_type, micro_usd_per_hour, effective_from, created_at) \
             SELECT CAST(NULL AS TEXT), p.model, p.capacity_type, CAST(NULL AS BIGINT), \
                    CASE WHEN p.effective_from > $3 THEN p.effective_from ELSE $3 END, $3 \
             FROM gpu_price_points p \
             WHERE p.cluster IS NULL AND p.model = $1 AND p.capacity_type = $2 AND p.micro_usd_per_hour IS NOT NULL \
             AND NOT EXISTS ( \
                 SELECT 1 FROM gpu_price_points q \
                 WHERE q.cluster IS NULL AND q.model = p.model AND q.capacity_type = p.capacity_type \
                 AND (q.effective_from > p.effective_from OR (q.effective_from = p.effective_from AND q.id > p.id)))",
        )
        .bind(model)
        .bind(capacity_type.label())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every price point, global and per cluster, in the order
    /// [`gantry_domain::usage::PriceBook::new`] needs: by effective time, then
    /// as written.
    pub async fn price_points(&self) -> Result<Vec<PricePoint>> {
        let sql = format!("SELECT {POINT_COLUMNS} FROM gpu_price_points ORDER BY effective_from, id");
        let rows: Vec<PointRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|row| row.into_record().point).collect())
    }

    /// The points of one price, newest first: the global one, or with
    /// `cluster`, that cluster's own.
    pub async fn price_history(
        &self,
        model: &str,
        capacity_type: CapacityType,
        cluster: Option<&str>,
    ) -> Result<Vec<PriceRecord>> {
        let scope = if cluster.is_some() { "cluster = $3" } else { "cluster IS NULL" };
        let sql = format!(
            "SELECT {POINT_COLUMNS} FROM gpu_price_points WHERE model = $1 AND capacity_type = $2 AND {scope} \
             ORDER BY effective_from DESC, id DESC"
        );
        let query = sqlx::query_as(&sql).bind(model).bind(capacity_type.label());
        let query = match cluster {
            Some(cluster) => query.bind(cluster),
            None => query,
        };
        let rows: Vec<PointRow> = query.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(PointRow::into_record).collect())
    }

    /// Sets (Some) or ends (None) a cluster's own price for a model and
    /// capacity type, from `effective_from` on. While set it wins over the
    /// global price there; once ended, the global price applies again.
    pub async fn set_cluster_price(
        &self,
        cluster: &str,
        model: &str,
        capacity_type: CapacityType,
        price: Option<Usd>,
        effective_from: i64,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        append_point(&mut conn, Some(cluster), model, capacity_type, price, effective_from, now_ms()).await
    }

    /// A cluster's own prices now in effect (its overrides), by model then
    /// capacity type; `updated_at` is when each took effect.
    pub async fn cluster_prices(&self, cluster: &str) -> Result<Vec<GpuPrice>> {
        let rows: Vec<CurrentRow> =
            sqlx::query_as(&current_prices_sql("= $1")).bind(cluster).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(CurrentRow::into_price).collect())
    }

    /// Makes `prices` the whole price list from `at` on, global prices and
    /// cluster overrides alike, in one transaction: every line becomes a
    /// point at `at`, and every price in effect that the list leaves out is
    /// removed at `at`. A line the database refuses (a negative price, a
    /// capacity type other than on-demand or spot) fails the import, and
    /// nothing of it is written.
    pub async fn replace_prices_at(&self, prices: &[ImportedPrice], at: i64) -> Result<PricesReplaced> {
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {POINT_COLUMNS} FROM gpu_price_points ORDER BY effective_from, id");
        let points: Vec<PointRow> = sqlx::query_as(&sql).fetch_all(&mut *tx).await?;
        // Each key's newest point, as the list stands.
        let mut current: BTreeMap<(Option<String>, String, String), bool> = BTreeMap::new();
        for row in points {
            current.insert((row.cluster, row.model, row.capacity_type), row.micro_usd_per_hour.is_some());
        }
        let listed: BTreeSet<PriceKey> =
            prices.iter().map(|p| (p.cluster.clone(), p.model.clone(), p.capacity_type.label())).collect();
        let created_at = now_ms();
        let mut replaced = PricesReplaced::default();
        for price in prices {
            let cluster = price.cluster.as_deref();
            append_point(
                &mut tx,
                cluster,
                &price.model,
                price.capacity_type,
                Some(price.usd_per_gpu_hour),
                at,
                created_at,
            )
            .await?;
            replaced.set += 1;
        }
        for ((cluster, model, label), priced) in current {
            let capacity = capacity_type(&label);
            if priced && !listed.contains(&(cluster.clone(), model.clone(), capacity.label())) {
                append_point(&mut tx, cluster.as_deref(), &model, capacity, None, at, created_at).await?;
                replaced.removed += 1;
            }
        }
        tx.commit().await?;
        Ok(replaced)
    }

    pub async fn team_budget(&self, team_id: i64) -> Result<Option<TeamBudget>> {
        let row: Option<BudgetRow> =
            sqlx::query_as("SELECT micro_usd_per_month, updated_at FROM team_budgets WHERE team_id = $1")
                .bind(team_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| TeamBudget {
            team_id,
            usd_per_month: Usd::from_micros(row.micro_usd_per_month),
            updated_at: row.updated_at,
        }))
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

    const H: i64 = gantry_domain::usage::MS_PER_HOUR;

    fn dollars(value: f64) -> Usd {
        Usd::from_dollars("price", value).unwrap()
    }

    fn book(points: Vec<PricePoint>) -> gantry_domain::usage::PriceBook {
        gantry_domain::usage::PriceBook::new(points)
    }

    crate::store_test!(a_price_change_keeps_the_past_and_a_removal_leaves_it_unpriced, |store| {
        use gantry_domain::usage::Span;
        let t = now_ms() - 100 * H;
        store.set_gpu_price(&price("H100", CapacityType::OnDemand, 2_000_000, t)).await.unwrap();
        store.set_gpu_price(&price("H100", CapacityType::OnDemand, 4_000_000, t + H)).await.unwrap();
        assert_eq!(store.gpu_prices().await.unwrap(), [price("H100", CapacityType::OnDemand, 4_000_000, t + H)]);
        assert!(store.delete_gpu_price("H100", CapacityType::OnDemand).await.unwrap());
        assert!(store.gpu_prices().await.unwrap().is_empty());

        let history = store.price_history("H100", CapacityType::OnDemand, None).await.unwrap();
        let prices: Vec<Option<Usd>> = history.iter().map(|r| r.point.usd_per_gpu_hour).collect();
        assert_eq!(prices, [None, Some(dollars(4.0)), Some(dollars(2.0))], "newest first");
        let removed_at = history[0].point.effective_from;
        assert!(removed_at > t + H && history[0].created_at >= removed_at);
        assert!(store.price_history("H100", CapacityType::Spot, None).await.unwrap().is_empty());

        // The points make the book the ledger is priced with.
        let book = book(store.price_points().await.unwrap());
        let segments = book.segments("prod", "H100", CapacityType::OnDemand, Span::new(t - H, removed_at + H));
        assert_eq!(
            segments,
            [
                (Span::new(t - H, t), None),
                (Span::new(t, t + H), Some(dollars(2.0))),
                (Span::new(t + H, removed_at), Some(dollars(4.0))),
                (Span::new(removed_at, removed_at + H), None),
            ]
        );

        // A price set again after its removal is current again.
        store.set_gpu_price(&price("H100", CapacityType::OnDemand, 3_000_000, removed_at + H)).await.unwrap();
        assert_eq!(
            store.gpu_prices().await.unwrap(),
            [price("H100", CapacityType::OnDemand, 3_000_000, removed_at + H)]
        );
    });

    crate::store_test!(a_removal_of_a_price_dated_ahead_still_removes_it, |store| {
        let ahead = now_ms() + 1000 * H;
        store.set_gpu_price(&price("L4", CapacityType::Spot, 500_000, ahead)).await.unwrap();
        assert_eq!(store.gpu_prices().await.unwrap().len(), 1, "the newest point is the list, even ahead of now");
        assert!(store.delete_gpu_price("L4", CapacityType::Spot).await.unwrap());
        assert!(store.gpu_prices().await.unwrap().is_empty());
        let history = store.price_history("L4", CapacityType::Spot, None).await.unwrap();
        assert_eq!(history[0].point.effective_from, ahead, "removed from the time it would have started");
        assert_eq!(history[0].point.usd_per_gpu_hour, None);
    });

    crate::store_test!(a_cluster_price_overrides_the_global_one_until_it_ends, |store| {
        use gantry_domain::usage::Span;
        let t = 1_790_000_000_000;
        store.set_gpu_price(&price("H100", CapacityType::OnDemand, 4_000_000, t)).await.unwrap();
        store.set_cluster_price("lab", "H100", CapacityType::OnDemand, Some(dollars(1.0)), t + H).await.unwrap();
        store.set_cluster_price("lab", "H100", CapacityType::Spot, Some(dollars(0.5)), t + H).await.unwrap();
        assert_eq!(
            store.cluster_prices("lab").await.unwrap(),
            [
                price("H100", CapacityType::OnDemand, 1_000_000, t + H),
                price("H100", CapacityType::Spot, 500_000, t + H),
            ]
        );
        assert!(store.cluster_prices("prod").await.unwrap().is_empty());
        assert_eq!(store.gpu_prices().await.unwrap().len(), 1, "an override is not a global price");

        store.set_cluster_price("lab", "H100", CapacityType::OnDemand, None, t + 2 * H).await.unwrap();
        assert_eq!(store.cluster_prices("lab").await.unwrap(), [price("H100", CapacityType::Spot, 500_000, t + H)]);
        let history = store.price_history("H100", CapacityType::OnDemand, Some("lab")).await.unwrap();
        assert_eq!(history.iter().map(|r| r.point.usd_per_gpu_hour).collect::<Vec<_>>(), [None, Some(dollars(1.0))]);
        assert!(history.iter().all(|r| r.point.cluster.as_deref() == Some("lab")));

        let book = book(store.price_points().await.unwrap());
        let three_hours = Span::new(t, t + 3 * H);
        assert_eq!(
            book.segments("lab", "H100", CapacityType::OnDemand, three_hours),
            [
                (Span::new(t, t + H), Some(dollars(4.0))),
                (Span::new(t + H, t + 2 * H), Some(dollars(1.0))),
                (Span::new(t + 2 * H, t + 3 * H), Some(dollars(4.0))),
            ],
            "the global price before the override and after it ends"
        );
        assert_eq!(
            book.segments("prod", "H100", CapacityType::OnDemand, three_hours),
            [(three_hours, Some(dollars(4.0)))]
        );
        let refused = store.set_cluster_price("lab", "H100", CapacityType::Unknown, Some(dollars(1.0)), t).await;
        assert!(refused.is_err());
    });

    crate::store_test!(an_imported_price_list_replaces_the_list_whole_or_not_at_all, |store| {
        let t = 1_790_000_000_000;
        store.set_gpu_price(&price("H100", CapacityType::OnDemand, 4_000_000, t)).await.unwrap();
        store.set_gpu_price(&price("A100", CapacityType::OnDemand, 2_000_000, t)).await.unwrap();
        store.set_gpu_price(&price("B200", CapacityType::OnDemand, 9_000_000, t)).await.unwrap();
        assert!(store.delete_gpu_price("B200", CapacityType::OnDemand).await.unwrap());
        store.set_cluster_price("lab", "H100", CapacityType::OnDemand, Some(dollars(1.0)), t).await.unwrap();
        let line = |cluster: Option<&str>, model: &str, capacity_type, value| ImportedPrice {
            cluster: cluster.map(Into::into),
            model: model.into(),
            capacity_type,
            usd_per_gpu_hour: dollars(value),
        };
        let before = store.price_points().await.unwrap();
        let broken = [line(None, "H100", CapacityType::OnDemand, 3.5), line(None, "L4", CapacityType::Unknown, 1.0)];
        assert!(store.replace_prices_at(&broken, t + H).await.is_err());
        assert_eq!(store.price_points().await.unwrap(), before, "nothing of a refused import is written");

        let list = [
            line(None, "H100", CapacityType::OnDemand, 3.5),
            line(None, "L4", CapacityType::Spot, 0.4),
            line(Some("edge"), "L4", CapacityType::Spot, 0.3),
        ];
        let replaced = store.replace_prices_at(&list, t + H).await.unwrap();
        assert_eq!(replaced, PricesReplaced { set: 3, removed: 2 }, "A100 and lab's H100; B200 was already gone");
        assert_eq!(
            store.gpu_prices().await.unwrap(),
            [price("H100", CapacityType::OnDemand, 3_500_000, t + H), price("L4", CapacityType::Spot, 400_000, t + H),]
        );
        assert!(store.cluster_prices("lab").await.unwrap().is_empty());
        assert_eq!(store.cluster_prices("edge").await.unwrap(), [price("L4", CapacityType::Spot, 300_000, t + H)]);
        // The past keeps its prices.
        let book = book(store.price_points().await.unwrap());
        let hour = gantry_domain::usage::Span::new(t, t + H);
        assert_eq!(book.segments("prod", "A100", CapacityType::OnDemand, hour), [(hour, Some(dollars(2.0)))]);
        // Importing the same list again changes no price.
        assert_eq!(store.replace_prices_at(&list, t + 2 * H).await.unwrap(), PricesReplaced { set: 3, removed: 0 });
    });

    // The store's write transactions take the write lock when they begin.
    // A SQLite transaction that reads first and writes later cannot wait for
    // another writer (SQLite answers "database is locked" at once rather than
    // risk a deadlock), so an import met by any other write failed: once in
    // CI, by the refused import above whose rollback was still on its way.
    crate::store_test!(an_import_waits_for_another_writer_instead_of_failing, |store| {
        let t = 1_790_000_000_000;
        let mut other = store.pool().begin().await.unwrap();
        append_point(&mut other, None, "A100", CapacityType::Spot, Some(dollars(1.0)), t, t).await.unwrap();
        let list = [ImportedPrice {
            cluster: None,
            model: "H100".into(),
            capacity_type: CapacityType::OnDemand,
            usd_per_gpu_hour: dollars(3.5),
        }];
        let import = store.replace_prices_at(&list, t + H);
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            other.rollback().await.unwrap();
        };
        let (imported, ()) = tokio::join!(import, release);
        assert_eq!(imported.unwrap(), PricesReplaced { set: 1, removed: 0 });
        assert_eq!(store.gpu_prices().await.unwrap(), [price("H100", CapacityType::OnDemand, 3_500_000, t + H)]);
    });

    /// A database that ran the migrations up to 0003 with prices in the old
    /// table, migrated by opening a store on it.
    async fn prices_survive_the_migration(url: String, config: crate::StoreConfig) {
        use sqlx::Connection;
        let backend = if url.starts_with("sqlite:") { "sqlite" } else { "postgres" };
        let old = crate::testing::TempDir::new("gantry-migrations");
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(backend);
        for entry in std::fs::read_dir(&source).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if name.as_str() < "0004" {
                std::fs::copy(&path, old.path.join(name)).unwrap();
            }
        }
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.path.as_path()).await.unwrap().run(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO gpu_prices (model, capacity_type, micro_usd_per_hour, updated_at) \
             VALUES ('H100', 'on-demand', 4000000, 10), ('H100', 'spot', 1500000, 20), ('A100', 'on-demand', 2250001, 30)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();

        let store = crate::Store::open(&config).await.unwrap();
        assert!(store.ready().await);
        assert_eq!(
            store.gpu_prices().await.unwrap(),
            [
                price("A100", CapacityType::OnDemand, 2_250_001, 30),
                price("H100", CapacityType::OnDemand, 4_000_000, 10),
                price("H100", CapacityType::Spot, 1_500_000, 20),
            ]
        );
        let history = store.price_history("H100", CapacityType::Spot, None).await.unwrap();
        assert_eq!((history.len(), history[0].created_at), (1, 20), "copied as one point, in effect since it was set");
        assert!(
            sqlx::query("SELECT 1 FROM gpu_prices").fetch_all(store.pool()).await.is_err(),
            "the old table is gone"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn prices_survive_the_migration_sqlite() {
        let dir = crate::testing::TempDir::new("gantry-store-test");
        let url = format!("sqlite://{}?mode=rwc", dir.path.join("gantry.db").display());
        let config = crate::StoreConfig { data_dir: dir.path.clone(), database_url: None, max_connections: 2 };
        prices_survive_the_migration(url, config).await;
    }

    #[tokio::test]
    async fn prices_survive_the_migration_postgres() {
        let Some(url) = crate::testing::postgres_database_url().await else {
            assert!(std::env::var_os("GANTRY_REQUIRE_POSTGRES").is_none(), "GANTRY_TEST_POSTGRES_URL is not set");
            return;
        };
        let config = crate::StoreConfig {
            data_dir: std::path::PathBuf::from("/nonexistent"),
            database_url: Some(url.clone()),
            max_connections: 2,
        };
        prices_survive_the_migration(url, config).await;
    }
}
