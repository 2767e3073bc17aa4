use gantry_domain::policy::{Membership, Principal, Role};
pub use gantry_domain::records::User;
use gantry_domain::validate::Username;
use sqlx::Row;

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

fn user_from(row: &sqlx::any::AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        global_admin: row.try_get::<i64, _>("global_admin")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn create_user(&self, username: &Username, password_hash: &str, global_admin: bool) -> Result<User> {
        let created_at = now_ms();
        let row = sqlx::query(
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
        Ok(User { id: row.try_get("id")?, username: username.to_string(), global_admin, created_at })
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    pub async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let row =
            sqlx::query("SELECT id, username, global_admin, created_at, password_hash FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| Ok(UserCredentials { user: user_from(&row)?, password_hash: row.try_get("password_hash")? }))
            .transpose()
    }

    pub async fn user_credentials_by_id(&self, id: i64) -> Result<Option<UserCredentials>> {
        let row = sqlx::query("SELECT id, username, global_admin, created_at, password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok(UserCredentials { user: user_from(&row)?, password_hash: row.try_get("password_hash")? }))
            .transpose()
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, username, global_admin, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT id, username, global_admin, created_at FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from).collect()
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
        let mut tx = self.pool.begin().await?;
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
    pub async fn principal(&self, user_id: i64) -> Result<Option<Principal>> {
        let Some(user) = self.user(user_id).await? else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT m.team_id, t.name, m.role FROM memberships m JOIN teams t ON t.id = m.team_id \
             WHERE m.user_id = $1 ORDER BY t.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let memberships = rows
            .iter()
            .map(|row| {
                let role: String = row.try_get("role")?;
                Ok(Membership {
                    team_id: row.try_get("team_id")?,
                    team_name: row.try_get("name")?,
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Principal { user_id, username: user.username, global_admin: user.global_admin, memberships }))
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
