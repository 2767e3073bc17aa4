//! Where each cluster's Prometheus answers (GPU utilisation comes from its
//! DCGM metrics). The bearer token arrives sealed by the service, as cluster
//! credentials do; the store keeps bytes it cannot read.

use crate::{Result, Store};

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClusterPrometheus {
    pub cluster: String,
    pub url: String,
    /// AEAD ciphertext of the bearer token (nonce first); None without one.
    pub sealed_token: Option<Vec<u8>>,
    pub updated_at: i64,
}

impl std::fmt::Debug for ClusterPrometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPrometheus")
            .field("cluster", &self.cluster)
            .field("url", &self.url)
            .field("token", &self.sealed_token.as_ref().map(|_| "(sealed)"))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl Store {
    /// Sets a cluster's Prometheus, replacing what it had.
    pub async fn set_cluster_prometheus(&self, settings: &ClusterPrometheus) -> Result<()> {
        sqlx::query(
            "INSERT INTO cluster_prometheus (cluster, url, sealed_token, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (cluster) DO UPDATE \
             SET url = excluded.url, sealed_token = excluded.sealed_token, updated_at = excluded.updated_at",
        )
        .bind(&settings.cluster)
        .bind(&settings.url)
        .bind(&settings.sealed_token)
        .bind(settings.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn cluster_prometheus(&self, cluster: &str) -> Result<Option<ClusterPrometheus>> {
        let settings =
            sqlx::query_as("SELECT cluster, url, sealed_token, updated_at FROM cluster_prometheus WHERE cluster = $1")
                .bind(cluster)
                .fetch_optional(&self.pool)
                .await?;
        Ok(settings)
    }

    /// Every cluster's settings, by cluster.
    pub async fn all_cluster_prometheus(&self) -> Result<Vec<ClusterPrometheus>> {
        let settings =
            sqlx::query_as("SELECT cluster, url, sealed_token, updated_at FROM cluster_prometheus ORDER BY cluster")
                .fetch_all(&self.pool)
                .await?;
        Ok(settings)
    }

    /// Removes a cluster's settings; false when it had none.
    pub async fn delete_cluster_prometheus(&self, cluster: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM cluster_prometheus WHERE cluster = $1").bind(cluster).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_test!(prometheus_settings_are_per_cluster_with_a_sealed_token, |store| {
        assert_eq!(store.cluster_prometheus("prod").await.unwrap(), None);
        let prod = ClusterPrometheus {
            cluster: "prod".into(),
            url: "https://prometheus.prod:9090".into(),
            sealed_token: Some(vec![0, 1, 2, 255, 0x53]),
            updated_at: 10,
        };
        store.set_cluster_prometheus(&prod).await.unwrap();
        let lab = ClusterPrometheus {
            cluster: "lab".into(),
            url: "http://prom.lab".into(),
            sealed_token: None,
            updated_at: 5,
        };
        store.set_cluster_prometheus(&lab).await.unwrap();
        assert_eq!(store.cluster_prometheus("prod").await.unwrap(), Some(prod.clone()), "bytes come back as written");
        assert_eq!(store.all_cluster_prometheus().await.unwrap(), [lab.clone(), prod.clone()]);
        let shown = format!("{prod:?}");
        assert!(shown.contains("(sealed)") && !shown.contains("255") && !shown.contains("83"), "{shown}");

        let replaced =
            ClusterPrometheus { sealed_token: None, url: "https://thanos.prod".into(), updated_at: 20, ..prod };
        store.set_cluster_prometheus(&replaced).await.unwrap();
        assert_eq!(store.cluster_prometheus("prod").await.unwrap(), Some(replaced), "the token can be cleared");
        assert!(store.delete_cluster_prometheus("prod").await.unwrap());
        assert!(!store.delete_cluster_prometheus("prod").await.unwrap());
        assert_eq!(store.all_cluster_prometheus().await.unwrap(), [lab]);
    });
}
