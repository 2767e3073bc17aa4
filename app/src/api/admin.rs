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
    /// Map and unmap namespaces, delete the team (global admins).
    pub can_manage_namespaces: bool,
    /// The identity-provider groups that give roles here (for those who manage members).
    pub group_mappings: Vec<gantry_domain::sso::GroupMapping>,
}

pub use gantry_domain::records::AuditQuery;

#[server(prefix = "/fn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<User>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.list_users(&caller).await.map_err(service)
}

/// Single sign-on's effective configuration (no secret) and every group mapping (global admins).
#[server(prefix = "/fn", endpoint = "sso_overview")]
pub async fn sso_overview() -> Result<gantry_domain::sso::SsoOverview, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.sso_overview(&caller).await.map_err(service)
}

/// Members of `group` get `role` in the team, or (role global_admin, no
/// team) are global admins, from their next sign-in on.
#[server(prefix = "/fn", endpoint = "set_group_mapping")]
pub async fn set_group_mapping(csrf: String, group: String, team_id: String, role: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let team = parse_team(&team_id, &role)?;
    state()?.set_group_mapping(&caller, team, &group, &role).await.map_err(service).map(|_| ())
}

#[server(prefix = "/fn", endpoint = "remove_group_mapping")]
pub async fn remove_group_mapping(csrf: String, group: String, team_id: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let team = parse_team(&team_id, if team_id.trim().is_empty() { "global_admin" } else { "" })?;
    state()?.remove_group_mapping(&caller, team, &group).await.map_err(service)
}

/// The team of a group mapping form: none for global admin, else a team id.
#[cfg(feature = "ssr")]
fn parse_team(team_id: &str, role: &str) -> Result<Option<i64>, AppError> {
    use super::ssr::fail;
    match (team_id.trim(), role) {
        (_, "global_admin") => Ok(None),
        ("", _) => Err(fail(gantry_domain::validate::Invalid::new("team_id", "choose a team"))),
        (id, _) => {
            id.parse().map(Some).map_err(|_| fail(gantry_domain::validate::Invalid::new("team_id", "is not a team id")))
        }
    }
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
    let group_mappings = if allowed(Action::ManageMembers) {
        state.team_group_mappings(&caller, id).await.map_err(service)?
    } else {
        Vec::new()
    };
    Ok(TeamDetail {
        team,
        members,
        namespaces: namespaces.into_iter().filter(|n| n.team_id == id).collect(),
        environments,
        can_manage_members: allowed(Action::ManageMembers),
        can_manage_environments: allowed(Action::ManageEnvironments),
        budget,
        can_manage_budget: allowed(Action::ManageBudget),
        can_manage_namespaces: allowed(Action::ManageNamespaces) && allowed(Action::ManageTeams),
        group_mappings,
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
                return Err(fail(gantry_domain::validate::Invalid::new(
                    "lines",
                    format!("line {} is not `name cluster/namespace [protected]`", n + 1),
                )));
            }
        }
    }
    state()?.set_environments(&caller, team_id, environments).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "audit_log")]
pub async fn audit_log(query: AuditQuery) -> Result<Vec<AuditRecord>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let query = AuditQuery { limit: Some(query.limit.unwrap_or(500)), ..query };
    state()?.audit_log(&caller, &query).await.map_err(service)
}

/// The contexts of a pasted kubeconfig, so the admin can choose one.
#[server(prefix = "/fn", endpoint = "kubeconfig_contexts")]
pub async fn kubeconfig_contexts(csrf: String, kubeconfig: String) -> Result<Vec<String>, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.kubeconfig_contexts(&caller, &kubeconfig).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "add_cluster")]
pub async fn add_cluster(
    csrf: String,
    name: String,
    kubeconfig: String,
    context: String,
    accept_risks: Option<String>,
) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let accept_risks = accept_risks.is_some_and(|v| v == "true" || v == "on");
    let registered =
        state()?.add_cluster(&caller, name.trim(), &kubeconfig, context.trim(), accept_risks).await.map_err(service)?;
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
