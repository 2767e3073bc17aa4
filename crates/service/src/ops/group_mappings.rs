//! Which identity-provider groups give which roles: team admins manage their
//! own team's mappings, global admins every team's and the groups that make
//! global admins.

use gantry_domain::policy::{Action, Role, Target};
use gantry_domain::sso::{Grant, GroupMapping, MAX_GROUP_CHARS, SsoOverview};
use gantry_domain::validate::Invalid;

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

/// The policy question and audit record for a change to `team`'s mappings
/// (None: the global-admin ones).
fn guard(team_id: Option<i64>, action: &'static str, group: &str) -> (Action, Target, Audit) {
    let object = format!("group/{}", group.chars().take(64).collect::<String>());
    match team_id {
        None => (Action::ManageUsers, Target::Global, Audit::global(action, object)),
        Some(team_id) => (Action::ManageMembers, Target::Team(team_id), Audit::team(action, team_id, object)),
    }
}

fn group_name(group: &str) -> Result<&str> {
    let group = group.trim();
    if group.is_empty() || group.chars().count() > MAX_GROUP_CHARS || group.chars().any(char::is_control) {
        return Err(Invalid::new("group", "must be a group name of 1 to 256 characters").into());
    }
    Ok(group)
}

impl AppState {
    /// Single sign-on's effective configuration and every group mapping (global admins).
    pub async fn sso_overview(&self, caller: &Caller) -> Result<SsoOverview> {
        self.authorize(caller, Action::ManageUsers, &Target::Global, &Audit::default()).await?;
        let settings = self.sso_settings().await;
        Ok(SsoOverview { settings, mappings: self.store.group_mappings().await? })
    }

    /// A team's group mappings (its team admins, global admins).
    pub async fn team_group_mappings(&self, caller: &Caller, team_id: i64) -> Result<Vec<GroupMapping>> {
        self.authorize(caller, Action::ManageMembers, &Target::Team(team_id), &Audit::default()).await?;
        let all = self.store.group_mappings().await?;
        Ok(all.into_iter().filter(|m| matches!(m.grant, Grant::Team { team_id: t, .. } if t == team_id)).collect())
    }

    /// Members of `group` get `role` in the team (None: they are global
    /// admins; `role` is then ignored), from their next sign-in on.
    pub async fn set_group_mapping(
        &self,
        caller: &Caller,
        team_id: Option<i64>,
        group: &str,
        role: &str,
    ) -> Result<GroupMapping> {
        let (action, target, audit) = guard(team_id, "sso.group_mapping.set", group);
        self.authorize(caller, action, &target, &audit).await?;
        let mut before = None;
        let result = async {
            let group = group_name(group)?;
            let grant = match team_id {
                None => Grant::GlobalAdmin,
                Some(team_id) => Grant::Team {
                    team_id,
                    role: Role::parse(role)
                        .ok_or_else(|| Invalid::new("role", "must be viewer, deployer or team_admin"))?,
                },
            };
            before = self
                .store
                .group_mappings()
                .await?
                .into_iter()
                .find(|m| m.group == group && team_of(&m.grant) == team_id)
                .map(|m| describe(&m));
            self.store.set_group_mapping(group, grant).await.map_err(|e| match e {
                gantry_store::Error::NotFound => ServiceError::not_found("no such team"),
                other => other.into(),
            })
        }
        .await;
        let after = result.as_ref().ok().map(describe);
        self.record(caller, &audit, &result, (before, after)).await?;
        result
    }

    /// Removes a group's mapping in the team (None: its global-admin
    /// mapping). The roles it gave go at each person's next sign-in or
    /// session refresh.
    pub async fn remove_group_mapping(&self, caller: &Caller, team_id: Option<i64>, group: &str) -> Result<()> {
        let (action, target, audit) = guard(team_id, "sso.group_mapping.remove", group);
        self.authorize(caller, action, &target, &audit).await?;
        let result = self.store.remove_group_mapping(group.trim(), team_id).await.map_err(|e| match e {
            gantry_store::Error::NotFound => ServiceError::not_found(format!("the group {group} is not mapped there")),
            other => other.into(),
        });
        self.record(caller, &audit, &result, (None, Some("removed".into()))).await?;
        result
    }
}

fn team_of(grant: &Grant) -> Option<i64> {
    match grant {
        Grant::Team { team_id, .. } => Some(*team_id),
        Grant::GlobalAdmin => None,
    }
}

fn describe(mapping: &GroupMapping) -> String {
    match mapping.grant {
        Grant::GlobalAdmin => format!("{} → global admin", mapping.group),
        Grant::Team { role, .. } => {
            format!("{} → {} {}", mapping.group, mapping.team_name.as_deref().unwrap_or("?"), role.as_str())
        }
    }
}
