//! A team's promotion path: named environments in order, each a cluster and
//! namespace.

pub use gantry_domain::records::Environment;

use crate::{Result, Store, flag};

#[derive(sqlx::FromRow)]
struct EnvironmentRow {
    name: String,
    cluster: String,
    namespace: String,
    protected: i64,
}

impl From<EnvironmentRow> for Environment {
    fn from(row: EnvironmentRow) -> Environment {
        Environment { name: row.name, cluster: row.cluster, namespace: row.namespace, protected: row.protected != 0 }
    }
}

impl Store {
    /// Replaces the team's environments, in promotion order, atomically.
    pub async fn set_environments(&self, team_id: i64, environments: &[Environment]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM environments WHERE team_id = $1").bind(team_id).execute(&mut *tx).await?;
        for (position, env) in environments.iter().enumerate() {
            sqlx::query(
                "INSERT INTO environments (team_id, name, position, cluster, namespace, protected) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(team_id)
            .bind(&env.name)
            .bind(position as i64)
            .bind(&env.cluster)
            .bind(&env.namespace)
            .bind(flag(env.protected))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn environments(&self, team_id: i64) -> Result<Vec<Environment>> {
        let rows: Vec<EnvironmentRow> = sqlx::query_as(
            "SELECT name, cluster, namespace, protected FROM environments WHERE team_id = $1 ORDER BY position",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(EnvironmentRow::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_test!(environments_keep_their_order_and_replace_atomically, |store| {
        let team = store.create_team("vision").await.unwrap();
        let env = |name: &str, protected| Environment {
            name: name.into(),
            cluster: name.into(),
            namespace: "vision".into(),
            protected,
        };
        store.set_environments(team.id, &[env("dev", false), env("staging", false), env("prod", true)]).await.unwrap();
        let names: Vec<String> = store.environments(team.id).await.unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["dev", "staging", "prod"]);
        // A duplicate name fails the whole replacement and keeps the old list.
        assert!(store.set_environments(team.id, &[env("a", false), env("a", false)]).await.is_err());
        assert_eq!(store.environments(team.id).await.unwrap().len(), 3);
        assert!(store.environments(team.id).await.unwrap()[2].protected);
    });
}
