//! The append-only audit log. Both schemas refuse UPDATE and DELETE on the
//! table with a trigger, so not even a bug here can rewrite history.

pub use gantry_domain::records::{AuditRecord, AuditResult};
use serde::{Deserialize, Serialize};

use crate::{Result, Store};

/// One thing that happened, about to be written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditEntry {
    pub actor_id: Option<i64>,
    pub actor: String,
    pub source: Option<String>,
    pub action: String,
    pub team_id: Option<i64>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub object: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub result: Option<AuditResult>,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub team_id: Option<i64>,
    pub action: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Restricts to these teams (a team admin's view); None means all.
    #[serde(skip)]
    pub only_teams: Option<Vec<i64>>,
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor: String,
    source: Option<String>,
    action: String,
    team_id: Option<i64>,
    cluster: Option<String>,
    namespace: Option<String>,
    object: Option<String>,
    before: Option<String>,
    after: Option<String>,
    result: String,
    detail: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> AuditRecord {
        AuditRecord {
            id: row.id,
            at: row.at,
            actor_id: row.actor_id,
            actor: row.actor,
            source: row.source,
            action: row.action,
            team_id: row.team_id,
            cluster: row.cluster,
            namespace: row.namespace,
            object: row.object,
            before: row.before,
            after: row.after,
            result: AuditResult::parse(&row.result),
            detail: row.detail,
        }
    }
}

impl Store {
    pub async fn append_audit(&self, entry: &AuditEntry, at: i64) -> Result<i64> {
        let id = sqlx::query_scalar(
            "INSERT INTO audit_log (at, actor_id, actor, source, action, team_id, cluster, namespace, object, before, after, result, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(at)
        .bind(entry.actor_id)
        .bind(&entry.actor)
        .bind(&entry.source)
        .bind(&entry.action)
        .bind(entry.team_id)
        .bind(&entry.cluster)
        .bind(&entry.namespace)
        .bind(&entry.object)
        .bind(&entry.before)
        .bind(&entry.after)
        .bind(entry.result.unwrap_or(AuditResult::Ok).as_str())
        .bind(&entry.detail)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Newest first. The filter's text fields match exactly.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut sql = String::from(
            "SELECT id, at, actor_id, actor, source, action, team_id, cluster, namespace, object, before, after, result, detail \
             FROM audit_log WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.actor.is_some() {
            sql += &format!(" AND actor = {}", next());
        }
        if filter.team_id.is_some() {
            sql += &format!(" AND team_id = {}", next());
        }
        if filter.action.is_some() {
            sql += &format!(" AND action = {}", next());
        }
        if filter.from.is_some() {
            sql += &format!(" AND at >= {}", next());
        }
        if filter.to.is_some() {
            sql += &format!(" AND at < {}", next());
        }
        if filter.before_id.is_some() {
            sql += &format!(" AND id < {}", next());
        }
        if let Some(teams) = &filter.only_teams {
            if teams.is_empty() {
                return Ok(Vec::new());
            }
            // Integers from the session, not user text: safe to inline.
            let list = teams.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            sql += &format!(" AND team_id IN ({list})");
        }
        sql += &format!(" ORDER BY id DESC LIMIT {}", filter.limit.unwrap_or(200).clamp(1, 100_000));
        let mut query = sqlx::query_as::<_, AuditRow>(&sql);
        if let Some(actor) = &filter.actor {
            query = query.bind(actor);
        }
        if let Some(team) = filter.team_id {
            query = query.bind(team);
        }
        if let Some(action) = &filter.action {
            query = query.bind(action);
        }
        if let Some(from) = filter.from {
            query = query.bind(from);
        }
        if let Some(to) = filter.to {
            query = query.bind(to);
        }
        if let Some(before) = filter.before_id {
            query = query.bind(before);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(AuditRow::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_test!(audit_is_filtered_and_append_only, |store| {
        let entry = |actor: &str, action: &str, team: Option<i64>| AuditEntry {
            actor: actor.into(),
            action: action.into(),
            team_id: team,
            cluster: Some("prod".into()),
            namespace: Some("vision".into()),
            object: Some("deployment/llama".into()),
            before: Some("replicas 1".into()),
            after: Some("replicas 3".into()),
            ..Default::default()
        };
        store.append_audit(&entry("alice", "login", None), 1_000).await.unwrap();
        store.append_audit(&entry("alice", "deployment.scale", Some(1)), 2_000).await.unwrap();
        store
            .append_audit(
                &AuditEntry { result: Some(AuditResult::Denied), ..entry("bob", "deployment.scale", Some(2)) },
                3_000,
            )
            .await
            .unwrap();

        let all = store.audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(all.iter().map(|r| r.at).collect::<Vec<_>>(), vec![3_000, 2_000, 1_000], "newest first");
        assert_eq!(all[0].result, AuditResult::Denied);
        assert_eq!(all[1].before.as_deref(), Some("replicas 1"));

        let scale = AuditFilter { action: Some("deployment.scale".into()), ..Default::default() };
        assert_eq!(store.audit(&scale).await.unwrap().len(), 2);
        let by_alice = AuditFilter { actor: Some("alice".into()), from: Some(1_500), ..Default::default() };
        assert_eq!(store.audit(&by_alice).await.unwrap().len(), 1);
        let team_one = AuditFilter { only_teams: Some(vec![1]), ..Default::default() };
        assert_eq!(store.audit(&team_one).await.unwrap().len(), 1);
        let no_teams = AuditFilter { only_teams: Some(vec![]), ..Default::default() };
        assert!(store.audit(&no_teams).await.unwrap().is_empty());
        let injection = AuditFilter { actor: Some("x' OR '1'='1".into()), ..Default::default() };
        assert!(store.audit(&injection).await.unwrap().is_empty());

        let update = sqlx::query("UPDATE audit_log SET actor = 'mallory'").execute(store.pool()).await;
        assert!(update.is_err(), "UPDATE must be refused");
        let delete = sqlx::query("DELETE FROM audit_log").execute(store.pool()).await;
        assert!(delete.is_err(), "DELETE must be refused");
        // SQLite has no TRUNCATE (its DELETE without WHERE runs the row triggers).
        if store.backend() == crate::Backend::Postgres {
            let truncate = sqlx::query("TRUNCATE audit_log").execute(store.pool()).await;
            assert!(truncate.is_err(), "TRUNCATE must be refused");
        }
        assert_eq!(store.audit(&AuditFilter::default()).await.unwrap().len(), 3);
    });
}
