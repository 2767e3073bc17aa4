//! tower-sessions records in Gantry's own database, so sessions survive a
//! restart and are shared by every replica.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::{Store, now_ms};

/// The key of a session's user in its data. The store keeps it in a column
/// too, so one user's sessions are found without decoding every session.
pub const SESSION_USER: &str = "user_id";

fn user_of(record: &Record) -> Option<i64> {
    record.data.get(SESSION_USER).and_then(|v| v.as_i64())
}

fn backend(error: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

fn expiry_ms(record: &Record) -> i64 {
    (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Store {
    async fn upsert_session(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at, user_id = excluded.user_id",
        )
        .bind(record.id.to_string())
        .bind(data)
        .bind(expiry_ms(record))
        .bind(user_of(record))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Deletes every session of a user (after a password change or deletion).
    pub async fn delete_sessions_of(&self, user_id: i64) -> crate::Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits, but a collision must never hand one user
        // another's session, so insert-if-absent and retry with a new id.
        loop {
            let data = serde_json::to_vec(&*record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(data)
            .bind(expiry_ms(record))
            .bind(user_of(record))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.upsert_session(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let data: Option<Vec<u8>> = sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(id.to_string())
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match data {
            None => Ok(None),
            Some(data) => {
                serde_json::from_slice(&data).map(Some).map_err(|e| session_store::Error::Decode(e.to_string()))
            }
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for Store {
    async fn delete_expired(&self) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use time::{Duration, OffsetDateTime};

    crate::store_test!(sessions_round_trip_expire_and_delete, |store| {
        let mut data = HashMap::new();
        data.insert("user_id".to_string(), serde_json::json!(42));
        let mut record =
            Record { id: Id::default(), data, expiry_date: OffsetDateTime::now_utc() + Duration::hours(1) };
        store.create(&mut record).await.unwrap();
        let loaded = store.load(&record.id).await.unwrap().unwrap();
        assert_eq!(loaded.data.get("user_id"), Some(&serde_json::json!(42)));

        // A second create with the same id must not overwrite the first.
        let mut clash = Record { id: record.id, data: HashMap::new(), expiry_date: record.expiry_date };
        store.create(&mut clash).await.unwrap();
        assert_ne!(clash.id, record.id);
        assert!(store.load(&record.id).await.unwrap().unwrap().data.contains_key("user_id"));

        let mut expired = Record {
            id: Id::default(),
            data: HashMap::new(),
            expiry_date: OffsetDateTime::now_utc() - Duration::seconds(1),
        };
        store.create(&mut expired).await.unwrap();
        assert!(store.load(&expired.id).await.unwrap().is_none(), "expired sessions do not load");
        store.delete_expired().await.unwrap();

        assert_eq!(store.delete_sessions_of(42).await.unwrap(), 1);
        assert!(store.load(&record.id).await.unwrap().is_none());
        store.delete(&clash.id).await.unwrap();
        assert!(store.load(&clash.id).await.unwrap().is_none());
    });
}
