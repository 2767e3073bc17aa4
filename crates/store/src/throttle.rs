//! Login failure counters, per account and per source address. The rules
//! (delays, lockout) are pure code in `gantry_domain::throttle`.

use sqlx::Row;

use crate::{Result, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ThrottleRecord {
    pub failures: i64,
    pub last_failure: i64,
    pub locked_until: Option<i64>,
}

impl Store {
    pub async fn throttle(&self, key: &str) -> Result<Option<ThrottleRecord>> {
        let row = sqlx::query("SELECT failures, last_failure, locked_until FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(ThrottleRecord {
                failures: row.try_get("failures")?,
                last_failure: row.try_get("last_failure")?,
                locked_until: row.try_get("locked_until")?,
            })
        })
        .transpose()
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
