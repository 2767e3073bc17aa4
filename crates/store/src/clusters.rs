//! Registered clusters. Credentials arrive here already encrypted; the store
//! never sees a kubeconfig in the clear.

use crate::{Error, Result, Store, now_ms};

#[derive(Clone, sqlx::FromRow)]
pub struct StoredCluster {
    pub name: String,
    /// Where it came from: "upload", "kubeconfig-flag" or "in-cluster".
    pub source: String,
    pub context: Option<String>,
    /// AEAD ciphertext of the kubeconfig (nonce first).
    #[sqlx(rename = "credentials")]
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
        let clusters =
            sqlx::query_as("SELECT name, source, context, credentials, created_at FROM clusters ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(clusters)
    }

    /// Removes a stored cluster and everything that named it (its namespace
    /// mappings and the environments in it), in one transaction, so a new
    /// cluster registered under the same name inherits nothing.
    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM clusters WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Store::forget_cluster_in(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the namespace mappings and environments of a cluster that is
    /// not stored (one from a kubeconfig file) when it is removed.
    pub async fn forget_cluster(&self, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Store::forget_cluster_in(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forget_cluster_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM team_namespaces WHERE cluster = $1").bind(name).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM environments WHERE cluster = $1").bind(name).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM cluster_prometheus WHERE cluster = $1").bind(name).execute(&mut **tx).await?;
        Ok(())
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
        let team = store.create_team("vision").await.unwrap().id;
        store.map_namespace("prod", "vision", team).await.unwrap();
        store.map_namespace("dev", "vision", team).await.unwrap();
        let env = |name: &str, cluster: &str| crate::Environment {
            name: name.into(),
            cluster: cluster.into(),
            namespace: "vision".into(),
            protected: false,
        };
        store.set_environments(team, &[env("dev", "dev"), env("prod", "prod")]).await.unwrap();
        store.delete_cluster("prod").await.unwrap();
        assert!(matches!(store.delete_cluster("prod").await, Err(Error::NotFound)));
        // A cluster registered again under the same name inherits nothing.
        let ownership = store.ownership().await.unwrap();
        assert_eq!(ownership.owner("prod", "vision"), None);
        assert_eq!(ownership.owner("dev", "vision"), Some(team));
        assert_eq!(store.environments(team).await.unwrap(), vec![env("dev", "dev")]);
    });
}
