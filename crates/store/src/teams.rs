use gantry_domain::policy::{Ownership, Role};
pub use gantry_domain::records::{Member, NamespaceMapping, Team};

use crate::{Error, Result, Store, is_unique_violation, now_ms};

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: i64,
    name: String,
    members: i64,
}

impl From<TeamRow> for Team {
    fn from(row: TeamRow) -> Team {
        Team { id: row.id, name: row.name, members: row.members }
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: i64,
    username: String,
    role: String,
    from_group: Option<String>,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Member {
        Member {
            user_id: row.id,
            username: row.username,
            role: Role::parse(&row.role).unwrap_or(Role::Viewer),
            from_group: row.from_group,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MappingRow {
    cluster: String,
    namespace: String,
    team_id: i64,
    name: String,
}

impl From<MappingRow> for NamespaceMapping {
    fn from(row: MappingRow) -> NamespaceMapping {
        NamespaceMapping { cluster: row.cluster, namespace: row.namespace, team_id: row.team_id, team: row.name }
    }
}

impl Store {
    pub async fn create_team(&self, name: &str) -> Result<Team> {
        let id = sqlx::query_scalar("INSERT INTO teams (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now_ms())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) { Error::Conflict(format!("a team named {name} exists")) } else { e.into() }
            })?;
        Ok(Team { id, name: name.to_string(), members: 0 })
    }

    pub async fn list_teams(&self) -> Result<Vec<Team>> {
        let rows: Vec<TeamRow> = sqlx::query_as(
            "SELECT t.id, t.name, (SELECT COUNT(*) FROM memberships m WHERE m.team_id = t.id) AS members \
             FROM teams t ORDER BY t.name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(TeamRow::into).collect())
    }

    pub async fn team(&self, id: i64) -> Result<Option<Team>> {
        Ok(self.list_teams().await?.into_iter().find(|t| t.id == id))
    }

    pub async fn team_by_name(&self, name: &str) -> Result<Option<Team>> {
        Ok(self.list_teams().await?.into_iter().find(|t| t.name == name))
    }

    pub async fn delete_team(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for table in ["memberships", "team_namespaces", "environments", "team_budgets"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE team_id = $1")).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM teams WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds the user to the team, or changes their role there.
    pub async fn set_membership(&self, team_id: i64, user_id: i64, role: Role) -> Result<()> {
        sqlx::query(
            "INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role, from_group = NULL",
        )
        .bind(team_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound,
            _ => e.into(),
        })?;
        Ok(())
    }

    pub async fn remove_membership(&self, team_id: i64, user_id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM memberships WHERE team_id = $1 AND user_id = $2")
            .bind(team_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    pub async fn members(&self, team_id: i64) -> Result<Vec<Member>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT u.id, u.username, m.role, m.from_group FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.team_id = $1 ORDER BY u.username",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(MemberRow::into).collect())
    }

    /// Gives a namespace to a team; a namespace has at most one owner.
    pub async fn map_namespace(&self, cluster: &str, namespace: &str, team_id: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO team_namespaces (cluster, namespace, team_id) VALUES ($1, $2, $3) \
             ON CONFLICT (cluster, namespace) DO UPDATE SET team_id = excluded.team_id",
        )
        .bind(cluster)
        .bind(namespace)
        .bind(team_id)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound,
            _ => e.into(),
        })?;
        Ok(())
    }

    pub async fn unmap_namespace(&self, cluster: &str, namespace: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM team_namespaces WHERE cluster = $1 AND namespace = $2")
            .bind(cluster)
            .bind(namespace)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    pub async fn namespace_mappings(&self) -> Result<Vec<NamespaceMapping>> {
        let rows: Vec<MappingRow> = sqlx::query_as(
            "SELECT n.cluster, n.namespace, n.team_id, t.name FROM team_namespaces n JOIN teams t ON t.id = n.team_id \
             ORDER BY n.cluster, n.namespace",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(MappingRow::into).collect())
    }

    /// Who owns each namespace, and which namespaces are a protected
    /// environment of the team that owns them.
    pub async fn ownership(&self) -> Result<Ownership> {
        let mappings = self.namespace_mappings().await?;
        let protected: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.cluster, e.namespace FROM environments e JOIN team_namespaces n \
             ON n.cluster = e.cluster AND n.namespace = e.namespace AND n.team_id = e.team_id WHERE e.protected = 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(Ownership::new(mappings.into_iter().map(|m| (m.cluster, m.namespace, m.team_id))).with_protected(protected))
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::policy::Role;
    use gantry_domain::validate::Username;

    crate::store_test!(teams_members_and_namespaces, |store| {
        let vision = store.create_team("vision").await.unwrap();
        assert!(matches!(store.create_team("vision").await, Err(crate::Error::Conflict(_))));
        let bob = store.create_user(&Username::parse("bob").unwrap(), "h", false).await.unwrap();
        store.set_membership(vision.id, bob.id, Role::Viewer).await.unwrap();
        store.set_membership(vision.id, bob.id, Role::TeamAdmin).await.unwrap();
        let members = store.members(vision.id).await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].role, Role::TeamAdmin);
        assert_eq!(store.list_teams().await.unwrap()[0].members, 1);
        assert!(matches!(store.set_membership(9999, bob.id, Role::Viewer).await, Err(crate::Error::NotFound)));

        store.map_namespace("prod", "vision", vision.id).await.unwrap();
        store.map_namespace("dev", "vision-dev", vision.id).await.unwrap();
        let ownership = store.ownership().await.unwrap();
        assert_eq!(ownership.owner("prod", "vision"), Some(vision.id));
        assert_eq!(ownership.owner("prod", "nlp"), None);
        store.unmap_namespace("dev", "vision-dev").await.unwrap();
        assert_eq!(store.namespace_mappings().await.unwrap().len(), 1);

        store.remove_membership(vision.id, bob.id).await.unwrap();
        assert!(matches!(store.remove_membership(vision.id, bob.id).await, Err(crate::Error::NotFound)));
        store.delete_team(vision.id).await.unwrap();
        assert!(store.namespace_mappings().await.unwrap().is_empty());
    });
}
