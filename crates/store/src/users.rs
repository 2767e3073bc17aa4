use gantry_domain::policy::{Membership, Principal, Role};
pub use gantry_domain::records::User;
use gantry_domain::validate::Username;

use crate::{Error, Result, Store, flag, is_unique_violation, now_ms};

/// A user with their password hash. Deliberately not `Serialize`.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials").field("user", &self.user).finish_non_exhaustive()
    }
}

/// A user's columns, global admin counting a group that makes them one.
const USER_COLUMNS: &str =
    "id, username, CASE WHEN admin_from_group IS NULL THEN global_admin ELSE 1 END AS global_admin, created_at";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    global_admin: i64,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> User {
        User { id: row.id, username: row.username, global_admin: row.global_admin != 0, created_at: row.created_at }
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl From<CredentialsRow> for UserCredentials {
    fn from(row: CredentialsRow) -> UserCredentials {
        UserCredentials { user: row.user.into(), password_hash: row.password_hash }
    }
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    team_id: i64,
    name: String,
    role: String,
}

impl From<MembershipRow> for Membership {
    fn from(row: MembershipRow) -> Membership {
        Membership { team_id: row.team_id, team_name: row.name, role: Role::parse(&row.role).unwrap_or(Role::Viewer) }
    }
}

impl Store {
    pub async fn create_user(&self, username: &Username, password_hash: &str, global_admin: bool) -> Result<User> {
        let created_at = now_ms();
        let id = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, global_admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username.as_str())
        .bind(password_hash)
        .bind(flag(global_admin))
        .bind(created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(format!("the username {username} is taken"))
            } else {
                e.into()
            }
        })?;
        Ok(User { id, username: username.to_string(), global_admin, created_at })
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    pub async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let row: Option<CredentialsRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"))
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(CredentialsRow::into))
    }

    pub async fn user_credentials_by_id(&self, id: i64) -> Result<Option<UserCredentials>> {
        let row: Option<CredentialsRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(CredentialsRow::into))
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(UserRow::into))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(UserRow::into).collect())
    }

    pub async fn set_password_hash(&self, id: i64, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    pub async fn set_global_admin(&self, id: i64, global_admin: bool) -> Result<()> {
        let done = sqlx::query("UPDATE users SET global_admin = $1 WHERE id = $2")
            .bind(flag(global_admin))
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    pub async fn delete_user(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Sessions hold the user id inside their data, so they are cleared by
        // the caller; tokens and memberships cascade.
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM memberships WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// The user with every team role they hold, as the policy sees them.
    /// None for a user who is gone, or whom the identity provider deactivated.
    pub async fn principal(&self, user_id: i64) -> Result<Option<Principal>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND deactivated_at IS NULL"))
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(user) = row.map(User::from) else { return Ok(None) };
        let rows: Vec<MembershipRow> = sqlx::query_as(
            "SELECT m.team_id, t.name, m.role FROM memberships m JOIN teams t ON t.id = m.team_id \
             WHERE m.user_id = $1 ORDER BY t.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(Principal {
            user_id,
            username: user.username,
            global_admin: user.global_admin,
            memberships: rows.into_iter().map(MembershipRow::into).collect(),
            via_token: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::policy::Role;
    use gantry_domain::validate::Username;

    crate::store_test!(users_are_unique_and_carry_their_roles, |store| {
        let alice = store.create_user(&Username::parse("alice").unwrap(), "hash-a", false).await.unwrap();
        let again = store.create_user(&Username::parse("alice").unwrap(), "hash-b", true).await;
        assert!(matches!(again, Err(crate::Error::Conflict(_))), "{again:?}");
        assert_eq!(store.count_users().await.unwrap(), 1, "a failed creation leaves nothing behind");

        let team = store.create_team("vision").await.unwrap();
        store.set_membership(team.id, alice.id, Role::Deployer).await.unwrap();
        let principal = store.principal(alice.id).await.unwrap().unwrap();
        assert_eq!(principal.role_in(team.id), Some(Role::Deployer));
        assert!(!principal.global_admin);

        let creds = store.user_credentials("alice").await.unwrap().unwrap();
        assert_eq!(creds.password_hash, "hash-a");
        assert!(!format!("{creds:?}").contains("hash-a"), "Debug must not print the hash");
        store.set_password_hash(alice.id, "hash-c").await.unwrap();
        assert_eq!(store.user_credentials("alice").await.unwrap().unwrap().password_hash, "hash-c");

        store.delete_user(alice.id).await.unwrap();
        assert!(store.principal(alice.id).await.unwrap().is_none());
        assert!(store.members(team.id).await.unwrap().is_empty());
    });
}
