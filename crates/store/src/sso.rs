//! Single sign-on's records: the link from a provider's subject to a
//! Gantry user, the group → role mappings, and the memberships groups give.

use gantry_domain::policy::Role;
use gantry_domain::records::User;
pub use gantry_domain::sso::{Grant, GroupMapping};
use gantry_domain::sso::{GroupRoles, roles_from_groups, username_for};

use crate::{Error, Result, Store, is_unique_violation, now_ms};

/// Stands in for a password hash on accounts made by single sign-on: not a
/// PHC string, so no password ever matches it.
pub const NO_PASSWORD: &str = "!sso";

/// Who the identity provider says signed in.
#[derive(Clone, Debug)]
pub struct SsoSignIn<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub preferred_username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub groups: &'a [String],
}

/// What a sign-in through the provider did.
#[derive(Clone, Debug)]
pub struct SsoOutcome {
    pub user: User,
    /// The user was made now (just in time).
    pub created: bool,
    /// The preferred name was taken by another account, so this one got another.
    pub name_was_taken: bool,
    /// The roles the person's groups gave or took, in words, for the audit log.
    pub changes: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct MappingRow {
    id: i64,
    group_name: String,
    team_id: Option<i64>,
    team_name: Option<String>,
    role: String,
    created_at: i64,
}

impl MappingRow {
    fn into_mapping(self) -> Option<GroupMapping> {
        let grant = match (self.team_id, Role::parse(&self.role)) {
            (Some(team_id), Some(role)) => Grant::Team { team_id, role },
            (None, _) if self.role == "global_admin" => Grant::GlobalAdmin,
            _ => return None,
        };
        Some(GroupMapping {
            id: self.id,
            group: self.group_name,
            team_name: self.team_name,
            grant,
            created_at: self.created_at,
        })
    }
}

const MAPPING_COLUMNS: &str = "SELECT g.id, g.group_name, g.team_id, t.name AS team_name, g.role, g.created_at \
     FROM group_mappings g LEFT JOIN teams t ON t.id = g.team_id";

impl Store {
    pub async fn group_mappings(&self) -> Result<Vec<GroupMapping>> {
        let rows: Vec<MappingRow> =
            sqlx::query_as(&format!("{MAPPING_COLUMNS} ORDER BY g.group_name, t.name")).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().filter_map(MappingRow::into_mapping).collect())
    }

    /// Maps a group to a grant, replacing what it gave in that team (or as
    /// global admin); a team that does not exist is not found.
    pub async fn set_group_mapping(&self, group: &str, grant: Grant) -> Result<GroupMapping> {
        let (team_id, role) = match grant {
            Grant::Team { team_id, role } => (Some(team_id), role.as_str()),
            Grant::GlobalAdmin => (None, "global_admin"),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM group_mappings WHERE group_name = $1 AND COALESCE(team_id, 0) = $2")
            .bind(group)
            .bind(team_id.unwrap_or(0))
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO group_mappings (group_name, team_id, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(group)
        .bind(team_id)
        .bind(role)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound,
            _ => e.into(),
        })?;
        tx.commit().await?;
        let row: Option<MappingRow> =
            sqlx::query_as(&format!("{MAPPING_COLUMNS} WHERE g.id = $1")).bind(id).fetch_optional(&self.pool).await?;
        row.and_then(MappingRow::into_mapping).ok_or(Error::NotFound)
    }

    /// Removes a group's mapping in a team (None: its global-admin mapping).
    /// The roles it gave go at each person's next sign-in or session refresh.
    pub async fn remove_group_mapping(&self, group: &str, team_id: Option<i64>) -> Result<()> {
        let done = sqlx::query("DELETE FROM group_mappings WHERE group_name = $1 AND COALESCE(team_id, 0) = $2")
            .bind(group)
            .bind(team_id.unwrap_or(0))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    /// The user a provider's subject is linked to, made on first sign-in,
    /// with the memberships their groups give brought up to date: roles
    /// from groups they lost are removed, those from groups they gained are
    /// added, and memberships a person gave by hand are left as they are.
    /// One transaction: a failure changes nothing.
    pub async fn sso_sign_in(&self, sign_in: &SsoSignIn<'_>) -> Result<SsoOutcome> {
        let mappings = self.group_mappings().await?;
        let wanted = roles_from_groups(&mappings, sign_in.groups);
        let now = now_ms();
        let groups = serde_json::to_string(sign_in.groups).unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin_write().await?;
        let linked: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM sso_identities WHERE issuer = $1 AND subject = $2")
                .bind(sign_in.issuer)
                .bind(sign_in.subject)
                .fetch_optional(&mut *tx)
                .await?;
        let (user_id, created, name_was_taken) = match linked {
            Some(id) => (id, false, false),
            None => {
                let taken: Vec<String> = sqlx::query_scalar("SELECT username FROM users").fetch_all(&mut *tx).await?;
                let hints = [sign_in.preferred_username, sign_in.email];
                let name = username_for(&hints, sign_in.subject, |name| taken.iter().any(|t| t == name))
                    .ok_or_else(|| Error::Conflict("no free username for this person".into()))?;
                let preferred = username_for(&hints, sign_in.subject, |_| false);
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO users (username, password_hash, global_admin, created_at) VALUES ($1, $2, 0, $3) RETURNING id",
                )
                .bind(name.as_str())
                .bind(NO_PASSWORD)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO sso_identities (issuer, subject, user_id, email, groups, first_seen, last_sign_in) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(sign_in.issuer)
                .bind(sign_in.subject)
                .bind(id)
                .bind(sign_in.email)
                .bind(&groups)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::Conflict("this person signed in twice at once; try again".into())
                    } else {
                        e.into()
                    }
                })?;
                (id, true, preferred.is_some_and(|p| p != name))
            }
        };
        sqlx::query(
            "UPDATE sso_identities SET email = $1, groups = $2, last_sign_in = $3 WHERE issuer = $4 AND subject = $5",
        )
        .bind(sign_in.email)
        .bind(&groups)
        .bind(now)
        .bind(sign_in.issuer)
        .bind(sign_in.subject)
        .execute(&mut *tx)
        .await?;
        let changes = apply_group_roles(&mut tx, user_id, &wanted).await?;
        sqlx::query("UPDATE users SET deactivated_at = NULL WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
        let row: (String, i64, Option<String>, i64) =
            sqlx::query_as("SELECT username, global_admin, admin_from_group, created_at FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        let user =
            User { id: user_id, username: row.0, global_admin: row.1 != 0 || row.2.is_some(), created_at: row.3 };
        Ok(SsoOutcome { user, created, name_was_taken, changes })
    }

    /// Keeps the person's latest refresh token (sealed by the caller) and
    /// counts their groups as read now.
    pub async fn save_sso_refresh(&self, user_id: i64, sealed_refresh_token: Option<&[u8]>) -> Result<()> {
        sqlx::query("UPDATE sso_identities SET refresh_token = $1, refreshed_at = $2 WHERE user_id = $3")
            .bind(sealed_refresh_token)
            .bind(now_ms())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When the person's groups were last read (ms since the epoch); None
    /// for a user who never came through the provider.
    pub async fn sso_refreshed_at(&self, user_id: i64) -> Result<Option<i64>> {
        let at: Option<(i64,)> = sqlx::query_as("SELECT refreshed_at FROM sso_identities WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(at.map(|(at,)| at))
    }

    /// Claims the person's group refresh when their groups were last read
    /// before `due_before`: one caller (of any replica) gets the sealed
    /// refresh token, every other one None until the next is due.
    pub async fn claim_sso_refresh(&self, user_id: i64, due_before: i64) -> Result<Option<Option<Vec<u8>>>> {
        let claimed: Option<(Option<Vec<u8>>,)> = sqlx::query_as(
            "UPDATE sso_identities SET refreshed_at = $1 WHERE user_id = $2 AND refreshed_at < $3 \
             RETURNING refresh_token",
        )
        .bind(now_ms())
        .bind(user_id)
        .bind(due_before)
        .fetch_optional(&self.pool)
        .await?;
        Ok(claimed.map(|(token,)| token))
    }

    /// The provider no longer lets this user in: their sessions and tokens
    /// are refused until they sign in through it again.
    pub async fn deactivate_user(&self, user_id: i64) -> Result<()> {
        sqlx::query("UPDATE users SET deactivated_at = $1 WHERE id = $2 AND deactivated_at IS NULL")
            .bind(now_ms())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Brings the memberships groups give to `wanted`; returns what changed.
async fn apply_group_roles(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: i64,
    wanted: &GroupRoles,
) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let current: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT m.team_id, t.name, m.role, m.from_group FROM memberships m JOIN teams t ON t.id = m.team_id \
         WHERE m.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    for (team_id, team, role, from_group) in &current {
        if from_group.is_some() && !wanted.teams.contains_key(team_id) {
            sqlx::query("DELETE FROM memberships WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
            changes
                .push(format!("{team}: {role} removed (no longer in group {})", from_group.as_deref().unwrap_or("")));
        }
    }
    for (team_id, (role, group)) in &wanted.teams {
        let existing = current.iter().find(|(id, ..)| id == team_id);
        match existing {
            // A membership given by hand stays as it is.
            Some((_, _, _, None)) => continue,
            Some((_, _, had, Some(had_group))) if had == role.as_str() && had_group == group => continue,
            _ => {}
        }
        sqlx::query(
            "INSERT INTO memberships (team_id, user_id, role, from_group) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role, from_group = excluded.from_group",
        )
        .bind(team_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(group)
        .execute(&mut **tx)
        .await?;
        let team: Option<String> =
            sqlx::query_scalar("SELECT name FROM teams WHERE id = $1").bind(team_id).fetch_optional(&mut **tx).await?;
        let before = existing.map(|(_, _, had, _)| format!(" (was {had})")).unwrap_or_default();
        changes.push(format!("{}: {} from group {group}{before}", team.unwrap_or_default(), role.as_str()));
    }
    let had_admin: Option<String> = sqlx::query_scalar("SELECT admin_from_group FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?;
    if had_admin != wanted.admin_group {
        sqlx::query("UPDATE users SET admin_from_group = $1 WHERE id = $2")
            .bind(wanted.admin_group.as_deref())
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        changes.push(match &wanted.admin_group {
            Some(group) => format!("global admin from group {group}"),
            None => format!("global admin removed (no longer in group {})", had_admin.unwrap_or_default()),
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|g| g.to_string()).collect()
    }

    crate::store_test!(groups_give_and_take_roles_and_leave_manual_ones, |store| {
        let vision = store.create_team("vision").await.unwrap();
        let nlp = store.create_team("nlp").await.unwrap();
        let local = store
            .create_user(&gantry_domain::validate::Username::parse("alice").unwrap(), "hash", false)
            .await
            .unwrap();
        store
            .set_group_mapping("ml-vision-deployers", Grant::Team { team_id: vision.id, role: Role::Viewer })
            .await
            .unwrap();
        let replaced = store
            .set_group_mapping("ml-vision-deployers", Grant::Team { team_id: vision.id, role: Role::Deployer })
            .await
            .unwrap();
        assert_eq!(replaced.team_name.as_deref(), Some("vision"));
        store.set_group_mapping("nlp-viewers", Grant::Team { team_id: nlp.id, role: Role::Viewer }).await.unwrap();
        store.set_group_mapping("platform-admins", Grant::GlobalAdmin).await.unwrap();
        store.set_group_mapping("platform-admins", Grant::GlobalAdmin).await.unwrap();
        let no_team = store.set_group_mapping("x", Grant::Team { team_id: 999, role: Role::Viewer }).await;
        assert!(matches!(no_team, Err(Error::NotFound)), "{no_team:?}");

        let first_groups = groups(&["ml-vision-deployers", "platform-admins"]);
        let sign_in = SsoSignIn {
            issuer: "https://idp",
            subject: "s-1",
            preferred_username: Some("alice"),
            email: Some("alice@example.com"),
            groups: &first_groups,
        };
        let first = store.sso_sign_in(&sign_in).await.unwrap();
        assert!(first.created && first.name_was_taken, "{first:?}");
        assert_ne!(first.user.id, local.id, "the local alice is not taken over");
        assert!(first.user.username.starts_with("alice-"), "{first:?}");
        assert!(first.user.global_admin);
        assert_eq!(first.changes.len(), 2, "{:?}", first.changes);
        let principal = store.principal(first.user.id).await.unwrap().unwrap();
        assert_eq!(principal.role_in(vision.id), Some(Role::Deployer));
        assert!(principal.global_admin);
        let credentials = store.user_credentials(&first.user.username).await.unwrap().unwrap();
        assert_eq!(credentials.password_hash, NO_PASSWORD);

        // A membership given by hand in nlp stays; the group's vision role goes.
        store.set_membership(nlp.id, first.user.id, Role::TeamAdmin).await.unwrap();
        let later_groups = groups(&["nlp-viewers"]);
        let later = store.sso_sign_in(&SsoSignIn { groups: &later_groups, ..sign_in.clone() }).await.unwrap();
        assert!(!later.created);
        assert_eq!(later.user.id, first.user.id, "linked by subject");
        assert!(!later.user.global_admin);
        let principal = store.principal(first.user.id).await.unwrap().unwrap();
        assert_eq!(principal.role_in(vision.id), None, "{:?}", later.changes);
        assert_eq!(principal.role_in(nlp.id), Some(Role::TeamAdmin), "the manual membership stays");
        assert!(!principal.global_admin);

        // One claim of a due refresh wins; the next waits for its turn.
        store.save_sso_refresh(first.user.id, Some(b"sealed-1")).await.unwrap();
        assert_eq!(store.claim_sso_refresh(first.user.id, now_ms() - 60_000).await.unwrap(), None, "not due");
        let due = now_ms() + 1;
        let claimed = store.claim_sso_refresh(first.user.id, due).await.unwrap();
        assert_eq!(claimed, Some(Some(b"sealed-1".to_vec())));
        let again = store.claim_sso_refresh(first.user.id, now_ms() - 60_000).await.unwrap();
        assert_eq!(again, None, "claimed just now: not due again for another interval");

        // Deactivated by the provider: no principal, until the next sign-in.
        store.deactivate_user(first.user.id).await.unwrap();
        assert!(store.principal(first.user.id).await.unwrap().is_none());
        store.sso_sign_in(&sign_in).await.unwrap();
        assert!(store.principal(first.user.id).await.unwrap().is_some());
        let mappings = store.group_mappings().await.unwrap();
        assert_eq!(mappings.len(), 3, "{mappings:?}");
        store.remove_group_mapping("platform-admins", None).await.unwrap();
        assert!(matches!(store.remove_group_mapping("platform-admins", None).await, Err(Error::NotFound)));
        assert!(matches!(store.remove_group_mapping("nlp-viewers", Some(vision.id)).await, Err(Error::NotFound)));
    });
}
