//! Gantry's own records (users, teams, tokens, the audit log) as the store
//! returns them and the UI and API show them. No secrets live here: password
//! hashes and token secrets stay in the store.

use serde::{Deserialize, Serialize};

use crate::policy::Role;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: i64,
    pub username: String,
    pub global_admin: bool,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub members: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    /// The identity-provider group that gives this role (refreshed at each
    /// sign-in); None: given by a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_group: Option<String>,
}

/// Which team owns a namespace of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceMapping {
    pub cluster: String,
    pub namespace: String,
    pub team_id: i64,
    /// The team's name (ignored when creating a mapping).
    #[serde(default)]
    pub team: String,
}

/// One step of a team's promotion path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Environment {
    pub name: String,
    pub cluster: String,
    pub namespace: String,
    /// Promoting into it needs the team admin role.
    #[serde(default)]
    pub protected: bool,
}

/// An API token as its owner sees it: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The first characters of the secret, so a user can tell tokens apart.
    pub prefix: String,
    pub max_role: Role,
    pub team_ids: Option<Vec<i64>>,
    pub admin: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    Ok,
    Denied,
    Failed,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Denied => "denied",
            AuditResult::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> AuditResult {
        match text {
            "ok" => AuditResult::Ok,
            "denied" => AuditResult::Denied,
            _ => AuditResult::Failed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
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
    pub result: AuditResult,
    pub detail: Option<String>,
}

/// A filter over the audit log as a person (the audit page) or a script
/// (the REST API) types it: every field optional; `team` a team's name or
/// id; `from` and `to` days as YYYY-MM-DD (UTC, `to` inclusive) or Unix
/// milliseconds (`to` exclusive). The service checks and applies it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default)]
pub struct AuditQuery {
    /// Exact username.
    pub actor: Option<String>,
    /// A team's name or id.
    pub team: Option<String>,
    /// Exact action, e.g. deployment.scale.
    pub action: Option<String>,
    /// YYYY-MM-DD (UTC) or Unix milliseconds, inclusive.
    pub from: Option<String>,
    /// YYYY-MM-DD (UTC, the whole day) or Unix milliseconds, exclusive.
    pub to: Option<String>,
    /// At most this many records, newest first.
    pub limit: Option<i64>,
}

impl AuditQuery {
    /// The query as URL parameters, for links (the CSV export) and the address bar.
    pub fn to_query_string(&self) -> String {
        let limit = self.limit.map(|l| l.to_string());
        fn text(value: &Option<String>) -> &str {
            value.as_deref().unwrap_or_default()
        }
        crate::view::query_string([
            ("actor", text(&self.actor)),
            ("team", text(&self.team)),
            ("action", text(&self.action)),
            ("from", text(&self.from)),
            ("to", text(&self.to)),
            ("limit", text(&limit)),
        ])
    }
}

/// One revision of a deployment, as its history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revision {
    pub revision: i64,
    pub replica_set: String,
    pub images: Vec<String>,
    pub model_version: Option<String>,
    pub change_cause: Option<String>,
    pub created: String,
    pub replicas: i32,
    pub current: bool,
    /// Who made it, from Gantry's audit log, when Gantry made the change.
    pub by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_results_round_trip() {
        for r in [AuditResult::Ok, AuditResult::Denied, AuditResult::Failed] {
            assert_eq!(AuditResult::parse(r.as_str()), r);
        }
        assert_eq!(AuditResult::parse("garbage"), AuditResult::Failed);
    }
}
