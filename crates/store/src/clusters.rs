//! Registered clusters. Credentials arrive here already encrypted; the store
//! never sees a kubeconfig in the clear.

use sqlx::Row;

use crate::{Error, Result, Store, now_ms};

#[derive(Clone)]
pub struct StoredCluster {
    pub name: String,
    /// Where it came from: "upload", "kubeconfig-flag" or "in-cluster".
    pub source: String,
    pub context: Option<String>,
    /// AEAD ciphertext of the kubeconfig (nonce first).
    pub sealed_credentials: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for StoredCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCluster").field("name", &self.name).field("source", &self.source).finish_non_exhaustive()
    }
}

impl Store {
    /// Adds a cluster, or replaces one of the same name when `replace` is set.
    pub async fn put_cluster(&self, cluster: &StoredCluster, replace: bool) -> Result<()> {
        let sql = if replace {
            "INSERT INTO clusters (name, source, context, credentials, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET source = excluded.source, context = excluded.context, credentials = excluded.credentials"
        } else {
            "INSERT INTO clusters (name, source, context, credentials, created_at) VALUES ($1, $2, $3, $4, $5)"
        };
        sqlx::query(sql)
            .bind(&cluster.name)
            .bind(&cluster.source)
            .bind(&cluster.context)
            .bind(&cluster.sealed_credentials)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if crate::is_unique_violation(&e) {
                    Error::Conflict(format!("a cluster named {} is already registered", cluster.name))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub async fn clusters(&self) -> Result<Vec<StoredCluster>> {
        let rows = sqlx::query("SELECT name, source, context, credentials, created_at FROM clusters ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredCluster {
                    name: row.try_get("name")?,
                    source: row.try_get("source")?,
                    context: row.try_get("context")?,
                    sealed_credentials: row.try_get("credentials")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM clusters WHERE name = $1").bind(name).execute(&self.pool).await?;
        if done.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_test!(clusters_are_stored_sealed, |store| {
        let cluster = StoredCluster {
            name: "prod".into(),
            source: "upload".into(),
            context: Some("prod-admin".into()),
            sealed_credentials: vec![1, 2, 3, 0, 255],
            created_at: 0,
        };
        store.put_cluster(&cluster, false).await.unwrap();
        assert!(matches!(store.put_cluster(&cluster, false).await, Err(Error::Conflict(_))));
        store.put_cluster(&StoredCluster { sealed_credentials: vec![9], ..cluster.clone() }, true).await.unwrap();
        let all = store.clusters().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].sealed_credentials, vec![9]);
        assert!(!format!("{:?}", all[0]).contains('9'), "Debug hides credentials");
        store.delete_cluster("prod").await.unwrap();
        assert!(matches!(store.delete_cluster("prod").await, Err(Error::NotFound)));
    });
}
