//! Login failure counters, per account and per source address. The rules
//! (delays, lockout) are pure code in `gantry_domain::throttle`.

use gantry_domain::throttle::ThrottleRules;

use crate::{Result, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct ThrottleRecord {
    pub failures: i64,
    pub last_failure: i64,
    pub locked_until: Option<i64>,
}

impl Store {
    pub async fn throttle(&self, key: &str) -> Result<Option<ThrottleRecord>> {
        let record = sqlx::query_as("SELECT failures, last_failure, locked_until FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(record)
    }

    /// Counts one failure for `key`, atomically in one statement, so parallel
    /// failures are never lost: the same rules as [`ThrottleRules::fail`],
    /// written in SQL. Returns the counters after it, and whether this very
    /// failure started a lockout (exactly one of parallel failures does).
    pub async fn record_failure(&self, key: &str, rules: &ThrottleRules, now: i64) -> Result<(ThrottleRecord, bool)> {
        // The previous counters are forgotten when their lockout is over, or
        // when there is none and the last failure is older than the window.
        const FORGET: &str = "((login_throttle.locked_until IS NOT NULL AND login_throttle.locked_until <= $2) \
             OR (login_throttle.locked_until IS NULL AND $2 - login_throttle.last_failure > $5))";
        let sql = format!(
            "INSERT INTO login_throttle (key, failures, last_failure, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $2 + $4 ELSE NULL END) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN {FORGET} THEN 1 ELSE login_throttle.failures + 1 END, \
               locked_until = CASE \
                 WHEN {FORGET} THEN CASE WHEN 1 >= $3 THEN $2 + $4 ELSE NULL END \
                 WHEN login_throttle.locked_until IS NULL AND login_throttle.failures + 1 >= $3 THEN $2 + $4 \
                 ELSE login_throttle.locked_until END, \
               last_failure = $2 \
             RETURNING failures, last_failure, locked_until"
        );
        let record: ThrottleRecord = sqlx::query_as(&sql)
            .bind(key)
            .bind(now)
            .bind(rules.lockout_after)
            .bind(rules.lockout_ms)
            .bind(rules.window_ms)
            .fetch_one(&self.pool)
            .await?;
        let newly_locked = record.locked_until.is_some() && record.failures == rules.lockout_after.max(1);
        Ok((record, newly_locked))
    }

    pub async fn put_throttle(&self, key: &str, record: ThrottleRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_throttle (key, failures, last_failure, locked_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure, \
             locked_until = excluded.locked_until",
        )
        .bind(key)
        .bind(record.failures)
        .bind(record.last_failure)
        .bind(record.locked_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn clear_throttle(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_test!(failures_follow_the_pure_rules, |store| {
        use gantry_domain::throttle::Counters;
        let rules = ThrottleRules {
            free_failures: 1,
            base_delay_ms: 10,
            max_delay_ms: 100,
            lockout_after: 3,
            lockout_ms: 1_000,
            window_ms: 500,
        };
        // Failures close together, one after the window, one in a lockout,
        // one after it: the database must agree with the pure rules each time.
        let mut expected = Counters::default();
        for now in [100, 200, 300, 400, 1_500, 1_600, 1_700, 1_800, 4_000, 4_100, 4_200] {
            let (want, want_locked) = rules.fail(expected, now);
            let (got, got_locked) = store.record_failure("user:pure", &rules, now).await.unwrap();
            assert_eq!(
                (got.failures, got.last_failure, got.locked_until, got_locked),
                (want.failures, want.last_failure, want.locked_until, want_locked),
                "at {now}"
            );
            expected = want;
        }
    });

    crate::store_test!(parallel_failures_all_count, |store| {
        let rules = ThrottleRules { lockout_after: 30, ..ThrottleRules::PER_ACCOUNT };
        let now = crate::now_ms();
        let attempts: Vec<_> = (0..50)
            .map(|_| {
                let (store, rules) = (store.clone(), rules);
                tokio::spawn(async move { store.record_failure("user:raced", &rules, now).await.unwrap() })
            })
            .collect();
        let mut results = Vec::new();
        for attempt in attempts {
            results.push(attempt.await.unwrap());
        }
        assert_eq!(store.throttle("user:raced").await.unwrap().unwrap().failures, 50, "no failure is lost");
        assert_eq!(results.iter().filter(|(_, locked)| *locked).count(), 1, "one failure starts the lockout");
    });

    crate::store_test!(throttle_counters_persist, |store| {
        assert_eq!(store.throttle("user:alice").await.unwrap(), None);
        let record = ThrottleRecord { failures: 3, last_failure: 10, locked_until: Some(99) };
        store.put_throttle("user:alice", record).await.unwrap();
        store.put_throttle("user:alice", ThrottleRecord { failures: 4, ..record }).await.unwrap();
        assert_eq!(store.throttle("user:alice").await.unwrap().unwrap().failures, 4);
        store.clear_throttle("user:alice").await.unwrap();
        assert_eq!(store.throttle("user:alice").await.unwrap(), None);
    });
}
