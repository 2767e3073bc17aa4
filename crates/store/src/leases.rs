//! Leader leases: of several replicas sharing one database, the holder of a
//! lease does the work it names (rolling up, firing budget alerts,
//! delivering webhooks), and another takes over when it stops renewing.
//!
//! Times come from each replica's clock, so clocks must agree to well within
//! a lease's time to live. A holder should renew at a fraction of it (a
//! third, say) and stop the work as soon as a renewal fails.

use crate::{Result, Store};

impl Store {
    /// Takes the lease `name` for `holder` until `now + ttl_ms`, if it is
    /// free, expired, or already `holder`'s (a renewal); true when `holder`
    /// has it now. One statement, so of two replicas asking at once exactly
    /// one wins.
    pub async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up at once (at shutdown), if `holder` has it; true
    /// when it did.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Who holds the lease at `now`; None when it is free or expired.
    pub async fn lease_holder(&self, name: &str, now: i64) -> Result<Option<String>> {
        let holder = sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at > $2")
            .bind(name)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(holder)
    }
}

#[cfg(test)]
mod tests {
    const TTL: i64 = 30_000;

    crate::store_test!(one_replica_holds_a_lease_until_it_expires, |store| {
        let t = 1_000_000;
        // Two replicas race for each of several leases: exactly one wins each.
        for round in 0..10 {
            let name = format!("rollups-{round}");
            let (a, b) = tokio::join!(store.try_lease(&name, "a", TTL, t), store.try_lease(&name, "b", TTL, t));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(a != b, "round {round}: a {a}, b {b}");
            let winner = if a { "a" } else { "b" };
            assert_eq!(store.lease_holder(&name, t).await.unwrap().as_deref(), Some(winner));
        }

        assert!(store.try_lease("alerts", "a", TTL, t).await.unwrap());
        assert!(!store.try_lease("alerts", "b", TTL, t + TTL - 1).await.unwrap(), "held until it expires");
        // Renewal by the holder extends it.
        assert!(store.try_lease("alerts", "a", TTL, t + TTL - 1).await.unwrap());
        assert!(!store.try_lease("alerts", "b", TTL, t + TTL + 10).await.unwrap(), "renewed, so still held");
        assert_eq!(store.lease_holder("alerts", t + 2 * TTL - 2).await.unwrap().as_deref(), Some("a"));
        assert_eq!(store.lease_holder("alerts", t + 2 * TTL - 1).await.unwrap(), None, "expired");
        // After expiry the other takes over, and the old holder cannot renew.
        assert!(store.try_lease("alerts", "b", TTL, t + 2 * TTL - 1).await.unwrap());
        assert!(!store.try_lease("alerts", "a", TTL, t + 2 * TTL).await.unwrap());
        assert_eq!(store.lease_holder("alerts", t + 2 * TTL).await.unwrap().as_deref(), Some("b"));

        // Released: free at once for the other; releasing what one does not hold does nothing.
        assert!(!store.release_lease("alerts", "a").await.unwrap());
        assert!(store.release_lease("alerts", "b").await.unwrap());
        assert_eq!(store.lease_holder("alerts", t + 2 * TTL).await.unwrap(), None);
        assert!(store.try_lease("alerts", "a", TTL, t + 2 * TTL).await.unwrap());
        assert_eq!(store.lease_holder("nothing", t).await.unwrap(), None);
    });
}
