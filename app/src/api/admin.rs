//! Users, teams and members, namespace mapping, environments, the audit log,
//! cluster registration and GPU quotas.

use gantry_domain::cost::BudgetView;
use gantry_domain::records::{AuditRecord, Environment, Member, NamespaceMapping, Team, User};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamDetail {
    pub team: Team,
    pub members: Vec<Member>,
    pub namespaces: Vec<NamespaceMapping>,
    pub environments: Vec<Environment>,
    pub can_manage_members: bool,
    pub can_manage_environments: bool,
    /// The team's budget and what its GPUs cost now.
    pub budget: BudgetView,
    pub can_manage_budget: bool,
    pub is_global_admin: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub team: Option<String>,
    pub action: Option<String>,
    /// Dates as YYYY-MM-DD (UTC).
    pub from: Option<String>,
    pub to: Option<String>,
}

impl AuditQuery {
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("actor", &self.actor),
            ("team", &self.team),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{key}={}", gantry_domain::view::encode(v)));
            }
        }
        parts.join("&")
    }
}

/// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses YYYY-MM-DD into Unix milliseconds at midnight UTC.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000)
}

#[server(prefix = "/fn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<User>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.list_users(&caller).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "create_user")]
pub async fn create_user(
    csrf: String,
    username: String,
    password: String,
    admin: Option<String>,
) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let admin = admin.is_some_and(|a| a == "true" || a == "on");
    state()?.create_user(&caller, username.trim(), &password, admin).await.map(|_| ()).map_err(service)
}

#[server(prefix = "/fn", endpoint = "delete_user")]
pub async fn delete_user(csrf: String, id: i64) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.delete_user(&caller, id).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "set_admin")]
pub async fn set_admin(csrf: String, id: i64, admin: bool) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.set_global_admin(&caller, id, admin).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "reset_password")]
pub async fn reset_password(csrf: String, id: i64, password: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.reset_password(&caller, id, &password).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "list_teams")]
pub async fn list_teams() -> Result<Vec<Team>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.list_teams(&caller).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "create_team")]
pub async fn create_team(csrf: String, name: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.create_team(&caller, name.trim()).await.map(|_| ()).map_err(service)
}

#[server(prefix = "/fn", endpoint = "delete_team")]
pub async fn delete_team(csrf: String, id: i64) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.delete_team(&caller, id).await.map_err(service)?;
    leptos_axum::redirect("/teams");
    Ok(())
}

#[server(prefix = "/fn", endpoint = "team_page")]
pub async fn team_page(id: i64) -> Result<TeamDetail, AppError> {
    use super::ssr::*;
    use gantry_domain::policy::{Action, Target, may};
    let caller = caller().await?;
    let state = state()?;
    let (team, members) = state.team_members(&caller, id).await.map_err(service)?;
    let environments = state.environments(&caller, id).await.map_err(service)?;
    let budget = state.team_budget(&caller, id).await.map_err(service)?;
    let namespaces = state.namespace_mappings(&caller).await.map_err(service)?;
    let allowed = |action| may(&caller.principal, action, &Target::Team(id)).is_allowed();
    Ok(TeamDetail {
        team,
        members,
        namespaces: namespaces.into_iter().filter(|n| n.team_id == id).collect(),
        environments,
        can_manage_members: allowed(Action::ManageMembers),
        can_manage_environments: allowed(Action::ManageEnvironments),
        budget,
        can_manage_budget: allowed(Action::ManageBudget),
        is_global_admin: caller.principal.global_admin,
    })
}

#[server(prefix = "/fn", endpoint = "set_member")]
pub async fn set_member(csrf: String, team_id: i64, username: String, role: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.set_member(&caller, team_id, username.trim(), &role).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "remove_member")]
pub async fn remove_member(csrf: String, team_id: i64, user_id: i64) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.remove_member(&caller, team_id, user_id).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "list_namespaces")]
pub async fn list_namespaces() -> Result<Vec<NamespaceMapping>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.namespace_mappings(&caller).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "map_namespace")]
pub async fn map_namespace(csrf: String, cluster: String, namespace: String, team_id: i64) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.map_namespace(&caller, cluster.trim(), namespace.trim(), team_id).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "unmap_namespace")]
pub async fn unmap_namespace(csrf: String, cluster: String, namespace: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.unmap_namespace(&caller, &cluster, &namespace).await.map_err(service)
}

/// Environments as lines `name cluster/namespace [protected]`, in order.
#[server(prefix = "/fn", endpoint = "set_environments")]
pub async fn set_environments(csrf: String, team_id: i64, lines: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let mut environments = Vec::new();
    for (n, line) in lines.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let parsed = match words.as_slice() {
            [name, place] | [name, place, _] => place.split_once('/').map(|(cluster, namespace)| Environment {
                name: name.to_string(),
                cluster: cluster.to_string(),
                namespace: namespace.to_string(),
                protected: words.get(2) == Some(&"protected"),
            }),
            _ => None,
        };
        match parsed {
            Some(env) => environments.push(env),
            None => {
                return Err(fail(AppError {
                    kind: "invalid".into(),
                    message: format!("line {}: write `name cluster/namespace` and optionally `protected`", n + 1),
                    detail: None,
                    fields: vec![crate::error::FieldError {
                        field: "lines".into(),
                        message: format!("line {} is not `name cluster/namespace [protected]`", n + 1),
                    }],
                }));
            }
        }
    }
    state()?.set_environments(&caller, team_id, environments).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "audit_log")]
pub async fn audit_log(query: AuditQuery) -> Result<Vec<AuditRecord>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let state = state()?;
    let team_id = match query.team.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(name) => {
            Some(state.store.team_by_name(name).await.map_err(|e| service(e.into()))?.map(|t| t.id).unwrap_or(-1))
        }
    };
    let filter = gantry_store::AuditFilter {
        actor: query.actor.filter(|a| !a.trim().is_empty()).map(|a| a.trim().to_string()),
        team_id,
        action: query.action.filter(|a| !a.trim().is_empty()).map(|a| a.trim().to_string()),
        from: query.from.as_deref().and_then(parse_date),
        to: query.to.as_deref().and_then(parse_date).map(|t| t + 86_400_000),
        limit: Some(500),
        ..Default::default()
    };
    state.audit_log(&caller, filter).await.map_err(service)
}

/// The contexts of a pasted kubeconfig, so the admin can choose one.
#[server(prefix = "/fn", endpoint = "kubeconfig_contexts")]
pub async fn kubeconfig_contexts(csrf: String, kubeconfig: String) -> Result<Vec<String>, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.kubeconfig_contexts(&caller, &kubeconfig).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "add_cluster")]
pub async fn add_cluster(csrf: String, name: String, kubeconfig: String, context: String) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let registered = state()?.add_cluster(&caller, name.trim(), &kubeconfig, context.trim()).await.map_err(service)?;
    Ok(format!("Registered {} (Kubernetes {})", registered.name, registered.version))
}

#[server(prefix = "/fn", endpoint = "remove_cluster")]
pub async fn remove_cluster(csrf: String, name: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.remove_cluster(&caller, &name).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "set_quota")]
pub async fn set_quota(csrf: String, cluster: String, namespace: String, gpus: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let gpus = gantry_domain::lenient::int("gpus", &gpus)
        .map_err(|e| service(e.into()))?
        .ok_or_else(|| service(gantry_domain::validate::Invalid::new("gpus", "is required").into()))?;
    state()?.set_gpu_quota(&caller, cluster.trim(), namespace.trim(), gpus).await.map_err(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_to_utc_midnight() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-30"), Some(1_795_996_800_000));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}
