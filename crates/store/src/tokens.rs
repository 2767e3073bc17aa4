//! API tokens for CI/CD. The secret is shown once; only its SHA-256 is kept.
//! A plain hash is enough here (unlike passwords) because the secret is 256
//! random bits, so there is nothing to brute-force.

use base64::Engine;
use gantry_domain::policy::Role;
pub use gantry_domain::records::TokenRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Error, Result, Store, flag, is_unique_violation, now_ms};

pub const TOKEN_PREFIX: &str = "gantry_";

#[derive(Clone, Debug)]
pub struct NewToken {
    pub user_id: i64,
    pub name: String,
    pub max_role: Role,
    pub team_ids: Option<Vec<i64>>,
    pub admin: bool,
    pub expires_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenLookup {
    Valid(TokenRecord),
    Expired,
    Revoked,
    Unknown,
}

pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    user_id: i64,
    name: String,
    prefix: String,
    max_role: String,
    /// The team subset as comma-separated ids; NULL when the token has none.
    team_ids: Option<String>,
    admin: i64,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for TokenRecord {
    fn from(row: TokenRow) -> TokenRecord {
        TokenRecord {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            prefix: row.prefix,
            max_role: Role::parse(&row.max_role).unwrap_or(Role::Viewer),
            team_ids: row.team_ids.map(|t| t.split(',').filter_map(|id| id.parse().ok()).collect()),
            admin: row.admin != 0,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// How precisely a token's last use is recorded, in milliseconds.
pub const LAST_USE_RESOLUTION_MS: i64 = 60_000;

const COLUMNS: &str =
    "id, user_id, name, prefix, max_role, team_ids, admin, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    /// Creates a token and returns it with its secret, which is not stored.
    pub async fn create_token(&self, new: &NewToken) -> Result<(TokenRecord, String)> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let secret = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
        let teams = new.team_ids.as_ref().map(|ids| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        let created_at = now_ms();
        let id = sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, max_role, team_ids, admin, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(new.user_id)
        .bind(&new.name)
        .bind(hash_token(&secret))
        .bind(&prefix)
        .bind(new.max_role.as_str())
        .bind(teams)
        .bind(flag(new.admin))
        .bind(created_at)
        .bind(new.expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(format!("you already have a token named {}", new.name))
            } else {
                e.into()
            }
        })?;
        let record = TokenRecord {
            id,
            user_id: new.user_id,
            name: new.name.clone(),
            prefix,
            max_role: new.max_role,
            team_ids: new.team_ids.clone(),
            admin: new.admin,
            created_at,
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        Ok((record, secret))
    }

    /// Finds a token by its secret and records its use when valid. The time
    /// of last use is kept to the minute ([`LAST_USE_RESOLUTION_MS`]), so a
    /// script calling the API in a loop reads the database but does not
    /// write to it on every request.
    pub async fn use_token(&self, secret: &str, now: i64) -> Result<TokenLookup> {
        let row: Option<TokenRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"))
            .bind(hash_token(secret))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(TokenLookup::Unknown) };
        let token = TokenRecord::from(row);
        if token.revoked_at.is_some() {
            return Ok(TokenLookup::Revoked);
        }
        if token.expires_at.is_some_and(|at| at <= now) {
            return Ok(TokenLookup::Expired);
        }
        if token.last_used_at.is_some_and(|at| now - at < LAST_USE_RESOLUTION_MS) {
            return Ok(TokenLookup::Valid(token));
        }
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token.id)
            .execute(&self.pool)
            .await?;
        Ok(TokenLookup::Valid(TokenRecord { last_used_at: Some(now), ..token }))
    }

    pub async fn tokens_of(&self, user_id: i64) -> Result<Vec<TokenRecord>> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(TokenRow::into).collect())
    }

    /// A token by id, whatever its state.
    pub async fn token(&self, token_id: i64) -> Result<Option<TokenRecord>> {
        let row: Option<TokenRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"))
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(TokenRow::into))
    }

    /// Whether a token still grants anything: it exists, is not revoked and
    /// has not expired.
    pub async fn token_alive(&self, token_id: i64, now: i64) -> Result<bool> {
        Ok(self
            .token(token_id)
            .await?
            .is_some_and(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|at| at > now)))
    }

    /// Revokes every live token of a user (after an administrator reset
    /// their password, which says the account may be in the wrong hands).
    pub async fn revoke_tokens_of(&self, user_id: i64, now: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Revokes one of the user's tokens. Revoking twice is not an error.
    pub async fn revoke_token(&self, user_id: i64, token_id: i64) -> Result<TokenRecord> {
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(token_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        let row: Option<TokenRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1 AND user_id = $2"))
                .bind(token_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(TokenRow::into).ok_or(Error::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_domain::validate::Username;

    crate::store_test!(tokens_are_hashed_used_expired_and_revoked, |store| {
        let user = store.create_user(&Username::parse("ci").unwrap(), "h", false).await.unwrap();
        let new = NewToken {
            user_id: user.id,
            name: "deploy".into(),
            max_role: Role::Deployer,
            team_ids: Some(vec![3, 5]),
            admin: false,
            expires_at: Some(now_ms() + 10 * 60_000),
        };
        let (record, secret) = store.create_token(&new).await.unwrap();
        assert!(secret.starts_with(TOKEN_PREFIX) && secret.len() > 40);
        assert!(secret.starts_with(&record.prefix));
        assert!(matches!(store.create_token(&new).await, Err(Error::Conflict(_))));

        let first_use = now_ms();
        let TokenLookup::Valid(found) = store.use_token(&secret, first_use).await.unwrap() else { panic!("valid") };
        assert_eq!(found.team_ids, Some(vec![3, 5]));
        assert_eq!(store.tokens_of(user.id).await.unwrap()[0].last_used_at, Some(first_use), "last use is recorded");
        // Within the resolution, a use reads but does not write; after it, the time moves on.
        assert!(matches!(store.use_token(&secret, first_use + 1_000).await.unwrap(), TokenLookup::Valid(_)));
        assert_eq!(store.tokens_of(user.id).await.unwrap()[0].last_used_at, Some(first_use));
        let later = first_use + LAST_USE_RESOLUTION_MS;
        assert!(matches!(store.use_token(&secret, later).await.unwrap(), TokenLookup::Valid(_)));
        assert_eq!(store.tokens_of(user.id).await.unwrap()[0].last_used_at, Some(later));
        assert_eq!(store.use_token("gantry_nope", now_ms()).await.unwrap(), TokenLookup::Unknown);
        assert_eq!(store.use_token(&secret, now_ms() + 20 * 60_000).await.unwrap(), TokenLookup::Expired);

        let revoked = store.revoke_token(user.id, record.id).await.unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(store.use_token(&secret, now_ms()).await.unwrap(), TokenLookup::Revoked);
        assert!(
            matches!(store.revoke_token(user.id + 1, record.id).await, Err(Error::NotFound)),
            "only the owner revokes"
        );
        assert!(!store.token_alive(record.id, now_ms()).await.unwrap());

        let other = NewToken { name: "other".into(), expires_at: None, ..new.clone() };
        let (other, _) = store.create_token(&other).await.unwrap();
        assert!(store.token_alive(other.id, now_ms()).await.unwrap());
        assert_eq!(store.revoke_tokens_of(user.id, now_ms()).await.unwrap(), 1, "only the live one");
        assert!(!store.token_alive(other.id, now_ms()).await.unwrap());
        assert!(!store.token_alive(999_999, now_ms()).await.unwrap());
    });
}
