//! Users, teams, memberships, the namespace mapping, environments, API
//! tokens and passwords.

use gantry_domain::policy::{self, Action, Role, Target};
use gantry_domain::validate::{Invalid, LabelName, Password, Username};
use gantry_store::{Environment, Member, NamespaceMapping, NewToken, Team, TokenRecord, User, now_ms};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::passwords::Verdict;
use crate::state::{AppState, Audit, Caller};

/// A token as its creator sees it once: with the secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    pub id: i64,
    pub name: String,
    pub secret: String,
    pub expires_at: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRequest {
    pub name: String,
    /// viewer, deployer or team_admin; defaults to the caller's best role.
    pub max_role: Option<String>,
    /// Limit to these team ids; None keeps all the caller's teams.
    pub teams: Option<Vec<i64>>,
    /// Keep global admin rights (only for global admins).
    pub admin: bool,
    /// Days until expiry; None or 0 means it never expires.
    pub expires_in_days: Option<i64>,
    /// Exact lifetime in seconds (the command line's 12h or 90m); wins over days.
    #[serde(skip)]
    pub expires_in_seconds: Option<i64>,
}

fn token_name(input: &str) -> Result<String> {
    let name = input.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err(Invalid::new("name", "must be 1 to 64 printable characters").into());
    }
    Ok(name.to_string())
}

impl AppState {
    /// Creates a user (global admins only). Nothing is stored if any check fails.
    pub async fn create_user(
        &self,
        caller: &Caller,
        username: &str,
        password: &str,
        global_admin: bool,
    ) -> Result<User> {
        let audit = Audit::global("user.create", format!("user/{}", username.chars().take(64).collect::<String>()));
        self.authorize(caller, Action::ManageUsers, &Target::Global, &audit).await?;
        let result = async {
            let username = Username::parse(username)?;
            let password = Password::parse(password)?;
            let hash = self.passwords.hash(password.expose().to_string()).await?;
            Ok(self.store.create_user(&username, &hash, global_admin).await?)
        }
        .await;
        let after = result.as_ref().ok().map(|u: &User| format!("admin: {}", u.global_admin));
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }

    /// `gantry admin create`: the operator at the server makes a global admin.
    pub async fn create_admin_from_cli(&self, username: &str, password: &str) -> Result<User> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let hash = self.passwords.hash(password.expose().to_string()).await?;
        let user = self.store.create_user(&username, &hash, true).await?;
        let entry = gantry_store::AuditEntry {
            actor_id: None,
            actor: "cli".into(),
            source: Some("cli".into()),
            action: "user.create".into(),
            object: Some(format!("user/{}", user.username)),
            after: Some("admin: true".into()),
            ..Default::default()
        };
        self.store.append_audit(&entry, now_ms()).await?;
        Ok(user)
    }

    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<User>> {
        self.authorize(caller, Action::ManageUsers, &Target::Global, &Audit::default()).await?;
        Ok(self.store.list_users().await?)
    }

    pub async fn delete_user(&self, caller: &Caller, user_id: i64) -> Result<()> {
        let audit = Audit::global("user.delete", format!("user/{user_id}"));
        self.authorize(caller, Action::ManageUsers, &Target::Global, &audit).await?;
        let result = async {
            if user_id == caller.principal.user_id {
                return Err(ServiceError::invalid("you cannot delete your own account"));
            }
            let user = self.store.user(user_id).await?.ok_or_else(|| ServiceError::not_found("no such user"))?;
            self.store.delete_user(user_id).await?;
            self.store.delete_sessions_of(user_id).await?;
            Ok(user.username)
        }
        .await;
        let before = result.as_ref().ok().map(|name| format!("user {name}"));
        self.record(caller, &audit, &result, (before, Some("deleted".into()))).await?;
        result.map(|_| ())
    }

    pub async fn set_global_admin(&self, caller: &Caller, user_id: i64, global_admin: bool) -> Result<()> {
        let audit = Audit::global("user.admin", format!("user/{user_id}"));
        self.authorize(caller, Action::ManageUsers, &Target::Global, &audit).await?;
        let result = async {
            if user_id == caller.principal.user_id && !global_admin {
                return Err(ServiceError::invalid("you cannot remove your own admin rights"));
            }
            Ok(self.store.set_global_admin(user_id, global_admin).await?)
        }
        .await;
        self.record(
            caller,
            &audit,
            &result,
            (Some(format!("admin: {}", !global_admin)), Some(format!("admin: {global_admin}"))),
        )
        .await?;
        result
    }

    pub async fn reset_password(&self, caller: &Caller, user_id: i64, password: &str) -> Result<()> {
        let audit = Audit::global("user.password_reset", format!("user/{user_id}"));
        self.authorize(caller, Action::ManageUsers, &Target::Global, &audit).await?;
        let result = async {
            let password = Password::parse(password)?;
            self.store.user(user_id).await?.ok_or_else(|| ServiceError::not_found("no such user"))?;
            let hash = self.passwords.hash(password.expose().to_string()).await?;
            self.store.set_password_hash(user_id, &hash).await?;
            // A reset says the account may be in the wrong hands: its sessions
            // and its API tokens end with the old password.
            self.store.delete_sessions_of(user_id).await?;
            self.store.revoke_tokens_of(user_id, now_ms()).await?;
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (None, None)).await?;
        result
    }

    /// Changes the caller's own password after checking the current one.
    /// Every session of the user ends, including this one.
    pub async fn change_password(&self, caller: &Caller, current: &str, new: &str) -> Result<()> {
        let audit = Audit::global("password.change", format!("user/{}", caller.principal.username));
        self.authorize(caller, Action::ManageSelf, &Target::Global, &audit).await?;
        let result = async {
            let new = Password::parse(new)?;
            if current.len() > Password::MAX_BYTES {
                return Err(ServiceError::invalid("the current password is wrong"));
            }
            let stored = self.store.user_credentials_by_id(caller.principal.user_id).await?.map(|c| c.password_hash);
            if self.passwords.verify(current.to_string(), stored).await? == Verdict::Wrong {
                return Err(ServiceError::invalid("the current password is wrong"));
            }
            let hash = self.passwords.hash(new.expose().to_string()).await?;
            self.store.set_password_hash(caller.principal.user_id, &hash).await?;
            self.store.delete_sessions_of(caller.principal.user_id).await?;
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (None, None)).await?;
        result
    }

    /// Teams the caller may see: all for global admins, else their own.
    pub async fn list_teams(&self, caller: &Caller) -> Result<Vec<Team>> {
        let teams = self.store.list_teams().await?;
        Ok(teams.into_iter().filter(|t| policy::sees_team(&caller.principal, t.id)).collect())
    }

    pub async fn create_team(&self, caller: &Caller, name: &str) -> Result<Team> {
        let audit = Audit::global("team.create", format!("team/{}", name.chars().take(64).collect::<String>()));
        self.authorize(caller, Action::ManageTeams, &Target::Global, &audit).await?;
        let result = async {
            let name = LabelName::parse("team", name)?;
            Ok(self.store.create_team(name.as_str()).await?)
        }
        .await;
        self.record(caller, &audit, &result, (None, Some("created".into()))).await?;
        result
    }

    pub async fn delete_team(&self, caller: &Caller, team_id: i64) -> Result<()> {
        let audit = Audit::team("team.delete", team_id, format!("team/{team_id}"));
        self.authorize(caller, Action::ManageTeams, &Target::Global, &audit).await?;
        let result = self.store.delete_team(team_id).await.map_err(ServiceError::from);
        self.record(caller, &audit, &result, (None, Some("deleted".into()))).await?;
        result
    }

    pub async fn team_members(&self, caller: &Caller, team_id: i64) -> Result<(Team, Vec<Member>)> {
        self.authorize(caller, Action::ViewNamespace, &Target::Team(team_id), &Audit::default()).await?;
        let team = self.store.team(team_id).await?.ok_or_else(|| ServiceError::not_found("no such team"))?;
        Ok((team, self.store.members(team_id).await?))
    }

    /// Adds a user to a team or changes their role there (team admins).
    pub async fn set_member(&self, caller: &Caller, team_id: i64, username: &str, role: &str) -> Result<()> {
        let audit =
            Audit::team("team.member.set", team_id, format!("user/{}", username.chars().take(64).collect::<String>()));
        self.authorize(caller, Action::ManageMembers, &Target::Team(team_id), &audit).await?;
        let mut before = None;
        let result = async {
            let role =
                Role::parse(role).ok_or_else(|| Invalid::new("role", "must be viewer, deployer or team_admin"))?;
            let user = self
                .store
                .user_credentials(username)
                .await?
                .ok_or_else(|| ServiceError::from(Invalid::new("username", "no such user")))?
                .user;
            before = self
                .store
                .members(team_id)
                .await?
                .into_iter()
                .find(|m| m.user_id == user.id)
                .map(|m| m.role.as_str().to_string());
            self.store.set_membership(team_id, user.id, role).await?;
            Ok(role)
        }
        .await;
        let after = result.as_ref().ok().map(|r| r.as_str().to_string());
        self.record(caller, &audit, &result, (before, after)).await?;
        result.map(|_| ())
    }

    pub async fn remove_member(&self, caller: &Caller, team_id: i64, user_id: i64) -> Result<()> {
        let audit = Audit::team("team.member.remove", team_id, format!("user/{user_id}"));
        self.authorize(caller, Action::ManageMembers, &Target::Team(team_id), &audit).await?;
        let result = self.store.remove_membership(team_id, user_id).await.map_err(ServiceError::from);
        self.record(caller, &audit, &result, (None, Some("removed".into()))).await?;
        result
    }

    /// [`remove_member`](Self::remove_member) by username: the policy answers
    /// before anything is looked up, so a refusal never says who is a member.
    pub async fn remove_member_named(&self, caller: &Caller, team_id: i64, username: &str) -> Result<()> {
        let audit = Audit::team(
            "team.member.remove",
            team_id,
            format!("user/{}", username.chars().take(64).collect::<String>()),
        );
        self.authorize(caller, Action::ManageMembers, &Target::Team(team_id), &audit).await?;
        let result = async {
            let member = self.store.members(team_id).await?.into_iter().find(|m| m.username == username);
            let member = member.ok_or_else(|| ServiceError::not_found(format!("{username} is not a member")))?;
            Ok(self.store.remove_membership(team_id, member.user_id).await?)
        }
        .await;
        self.record(caller, &audit, &result, (None, Some("removed".into()))).await?;
        result
    }

    pub async fn namespace_mappings(&self, caller: &Caller) -> Result<Vec<NamespaceMapping>> {
        let all = self.store.namespace_mappings().await?;
        Ok(all.into_iter().filter(|m| policy::sees_team(&caller.principal, m.team_id)).collect())
    }

    /// Gives a namespace of a cluster to a team (global admins).
    pub async fn map_namespace(&self, caller: &Caller, cluster: &str, namespace: &str, team_id: i64) -> Result<()> {
        let audit = Audit {
            action: "namespace.map",
            team_id: Some(team_id),
            cluster: Some(cluster.chars().take(64).collect()),
            namespace: Some(namespace.chars().take(64).collect()),
            object: Some(format!("namespace/{}", namespace.chars().take(64).collect::<String>())),
        };
        self.authorize(caller, Action::ManageNamespaces, &Target::Global, &audit).await?;
        let mut before = None;
        let result = async {
            let namespace = LabelName::parse("namespace", namespace)?;
            if cluster.trim().is_empty() || cluster.len() > 64 {
                return Err(Invalid::new("cluster", "is required").into());
            }
            self.store.team(team_id).await?.ok_or_else(|| ServiceError::from(Invalid::new("team", "no such team")))?;
            before = self.store.ownership().await?.owner(cluster, namespace.as_str()).map(|t| format!("team {t}"));
            Ok(self.store.map_namespace(cluster, namespace.as_str(), team_id).await?)
        }
        .await;
        self.record(caller, &audit, &result, (before, Some(format!("team {team_id}")))).await?;
        result
    }

    pub async fn unmap_namespace(&self, caller: &Caller, cluster: &str, namespace: &str) -> Result<()> {
        let audit = Audit {
            action: "namespace.unmap",
            cluster: Some(cluster.chars().take(64).collect()),
            namespace: Some(namespace.chars().take(64).collect()),
            ..Default::default()
        };
        self.authorize(caller, Action::ManageNamespaces, &Target::Global, &audit).await?;
        let result = self.store.unmap_namespace(cluster, namespace).await.map_err(ServiceError::from);
        self.record(caller, &audit, &result, (None, Some("unowned".into()))).await?;
        result
    }

    pub async fn environments(&self, caller: &Caller, team_id: i64) -> Result<Vec<Environment>> {
        self.authorize(caller, Action::ViewNamespace, &Target::Team(team_id), &Audit::default()).await?;
        Ok(self.store.environments(team_id).await?)
    }

    /// Replaces a team's promotion path. Every environment must be a
    /// namespace the team owns.
    pub async fn set_environments(&self, caller: &Caller, team_id: i64, environments: Vec<Environment>) -> Result<()> {
        let audit = Audit::team("environments.set", team_id, format!("team/{team_id}"));
        self.authorize(caller, Action::ManageEnvironments, &Target::Team(team_id), &audit).await?;
        let before = self.store.environments(team_id).await.ok().map(|e| describe_envs(&e));
        let result = async {
            self.store
                .team(team_id)
                .await?
                .ok_or_else(|| ServiceError::not_found(format!("team {team_id} does not exist")))?;
            let ownership = self.store.ownership().await?;
            if environments.len() > 10 {
                return Err(Invalid::new("environments", "at most 10").into());
            }
            for env in &environments {
                LabelName::parse("environment", &env.name)?;
                if ownership.owner(&env.cluster, &env.namespace) != Some(team_id) {
                    return Err(Invalid::new(
                        "environments",
                        format!("{}/{} is not a namespace of this team", env.cluster, env.namespace),
                    )
                    .into());
                }
            }
            self.store.set_environments(team_id, &environments).await.map_err(|e| match e {
                gantry_store::Error::Database(_) => ServiceError::invalid("environment names must be unique"),
                other => other.into(),
            })
        }
        .await;
        self.record(caller, &audit, &result, (before, Some(describe_envs(&environments)))).await?;
        result
    }

    pub async fn create_token(&self, caller: &Caller, request: &TokenRequest) -> Result<CreatedToken> {
        let audit =
            Audit::global("token.create", format!("token/{}", request.name.chars().take(64).collect::<String>()));
        self.authorize(caller, Action::ManageSelf, &Target::Global, &audit).await?;
        let result = async {
            let name = token_name(&request.name)?;
            let max_role = match request.max_role.as_deref().filter(|r| !r.is_empty()) {
                None => None,
                Some(text) => Some(
                    Role::parse(text)
                        .ok_or_else(|| Invalid::new("max_role", "must be viewer, deployer or team_admin"))?,
                ),
            };
            let scope = policy::token_scope(&caller.principal, max_role, request.teams.as_deref(), request.admin)?;
            let expires_at = match request.expires_in_days {
                _ if request.expires_in_seconds.is_some_and(|s| s > 0) => {
                    Some(now_ms() + request.expires_in_seconds.unwrap_or(0) * 1000)
                }
                None | Some(0) => None,
                Some(days) if (1..=3650).contains(&days) => Some(now_ms() + days * 86_400_000),
                Some(_) => return Err(Invalid::new("expires_in_days", "must be between 1 and 3650").into()),
            };
            let (record, secret) = self
                .store
                .create_token(&NewToken {
                    user_id: caller.principal.user_id,
                    name: name.clone(),
                    max_role: scope.max_role,
                    team_ids: scope.teams,
                    admin: scope.admin,
                    expires_at,
                })
                .await?;
            Ok(CreatedToken { id: record.id, name, secret, expires_at })
        }
        .await;
        let after = result.as_ref().ok().map(|t| format!("token {} expires {:?}", t.name, t.expires_at));
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }

    pub async fn my_tokens(&self, caller: &Caller) -> Result<Vec<TokenRecord>> {
        self.authorize(caller, Action::ManageSelf, &Target::Global, &Audit::default()).await?;
        Ok(self.store.tokens_of(caller.principal.user_id).await?)
    }

    pub async fn revoke_token(&self, caller: &Caller, token_id: i64) -> Result<()> {
        let audit = Audit::global("token.revoke", format!("token/{token_id}"));
        self.authorize(caller, Action::ManageSelf, &Target::Global, &audit).await?;
        let result =
            self.store.revoke_token(caller.principal.user_id, token_id).await.map(|_| ()).map_err(ServiceError::from);
        self.record(caller, &audit, &result, (None, Some("revoked".into()))).await?;
        result
    }
}

fn describe_envs(environments: &[Environment]) -> String {
    environments
        .iter()
        .map(|e| format!("{}={}/{}{}", e.name, e.cluster, e.namespace, if e.protected { " (protected)" } else { "" }))
        .collect::<Vec<_>>()
        .join(" → ")
}
