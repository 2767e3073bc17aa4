//! Who is asking: sign-in, sessions, API tokens, CSRF, and turning the
//! credentials of a request into a [`Caller`]. Both adapters (server
//! functions and the REST API) describe a request as [`Credentials`] and ask
//! here, so there is one way to authenticate and one CSRF comparison.

use std::time::Duration;

use gantry_domain::policy::Principal;
use gantry_domain::throttle::{Counters, Gate, ThrottleRules};
use gantry_store::{AuditEntry, AuditResult, SESSION_USER, ThrottleRecord, TokenLookup, now_ms};
use tower_sessions::Session;
use tower_sessions::session::Id;
use tower_sessions::session_store::SessionStore;

use crate::error::{ErrorKind, Result, ServiceError};
use crate::passwords::Verdict;
use crate::state::{AppState, Caller, Via};

/// The session's synchronizer token, echoed by every cookie-authenticated change.
pub const SESSION_CSRF: &str = "csrf";
/// When the session's user signed in: the absolute lifetime counts from here.
pub const SESSION_LOGIN_AT: &str = "login_at";

const WRONG_CREDENTIALS: &str = "wrong username or password";

/// The client's address as the server determined it (the peer, or what a
/// trusted proxy appended), put into each request's extensions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAddress(pub Option<String>);

/// What a request presents to prove who sent it.
#[derive(Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The secret of an `Authorization: Bearer` header.
    pub bearer: Option<&'a str>,
    pub session: Option<&'a Session>,
    pub source: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// Reads the bearer token and the client address from a request.
    pub fn of(parts: &'a http::request::Parts, session: Option<&'a Session>) -> Credentials<'a> {
        let bearer = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let source = parts.extensions.get::<ClientAddress>().and_then(|a| a.0.as_deref());
        Credentials { bearer, session, source }
    }
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn counters(record: Option<ThrottleRecord>) -> Counters {
    record.map_or_else(Counters::default, |r| Counters {
        failures: r.failures,
        last_failure: r.last_failure,
        locked_until: r.locked_until,
    })
}

/// A value of the caller's session. A session whose store (the database)
/// cannot be reached is a 503, not "signed out"; one that cannot be decoded
/// counts as no value.
async fn session_value<T: serde::de::DeserializeOwned>(session: &Session, key: &str) -> Result<Option<T>> {
    use tower_sessions::session::Error;
    use tower_sessions::session_store::Error as StoreError;
    match session.get::<T>(key).await {
        Ok(value) => Ok(value),
        Err(Error::Store(StoreError::Backend(why))) => {
            tracing::warn!("the session store cannot be read: {why}");
            Err(ServiceError::unavailable("the database cannot be reached; try again in a moment"))
        }
        Err(_) => Ok(None),
    }
}

fn session_error(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("session store: {error}"))
}

impl AppState {
    /// One sign-in record (password or single sign-on), accepted or refused.
    pub(crate) async fn audit_sign_in(
        &self,
        username: &str,
        user_id: Option<i64>,
        source: Option<&str>,
        action: &str,
        result: AuditResult,
        detail: Option<String>,
    ) -> Result<()> {
        let entry = AuditEntry {
            actor_id: user_id,
            actor: username.chars().take(64).collect(),
            source: source.map(str::to_string),
            action: action.to_string(),
            result: Some(result),
            detail,
            ..Default::default()
        };
        self.append_audit(&entry).await
    }

    /// Checks a username and password, with per-account and per-address
    /// throttling, and audits the attempt either way.
    pub async fn login(&self, username: &str, password: &str, source: Option<&str>) -> Result<Principal> {
        if username.is_empty() || password.is_empty() {
            return Err(ServiceError::invalid("enter a username and a password"));
        }
        if username.len() > 64 || password.len() > gantry_domain::validate::Password::MAX_BYTES {
            return Err(ServiceError::invalid("the username or password is too long"));
        }
        let now = now_ms();
        let keys: [(String, ThrottleRules); 2] = [
            (format!("user:{username}"), self.config.throttle_account),
            (format!("addr:{}", source.unwrap_or("unknown")), self.config.throttle_address),
        ];
        let mut delay = 0;
        for (key, rules) in &keys {
            match rules.gate(counters(self.store.throttle(key).await?), now) {
                Gate::Open => {}
                Gate::Delay(ms) => delay = delay.max(ms),
                Gate::Locked(until) => {
                    self.audit_sign_in(
                        username,
                        None,
                        source,
                        "login",
                        AuditResult::Denied,
                        Some(format!("locked out ({key})")),
                    )
                    .await?;
                    let minutes = ((until - now) / 60_000).max(1);
                    return Err(ServiceError::new(
                        ErrorKind::TooManyRequests,
                        format!(
                            "too many failed sign-ins; try again in {minutes} minute{}",
                            if minutes == 1 { "" } else { "s" }
                        ),
                    ));
                }
            }
        }
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        let credentials = self.store.user_credentials(username).await?;
        let verdict =
            self.passwords.verify(password.to_string(), credentials.as_ref().map(|c| c.password_hash.clone())).await?;
        let Some(credentials) = credentials.filter(|_| verdict != Verdict::Wrong) else {
            for (key, rules) in &keys {
                // One statement per key: parallel failures all count.
                let (_, newly_locked) = self.store.record_failure(key, rules, now_ms()).await?;
                if newly_locked {
                    let minutes = rules.lockout_ms / 60_000;
                    self.audit_sign_in(
                        username,
                        None,
                        source,
                        "login.lockout",
                        AuditResult::Denied,
                        Some(format!("{key} locked for {minutes} minutes")),
                    )
                    .await?;
                }
            }
            self.audit_sign_in(username, None, source, "login", AuditResult::Failed, Some(WRONG_CREDENTIALS.into()))
                .await?;
            return Err(ServiceError::unauthenticated(WRONG_CREDENTIALS));
        };
        if !self.config.local_passwords && !credentials.user.global_admin {
            self.audit_sign_in(
                username,
                Some(credentials.user.id),
                source,
                "login",
                AuditResult::Denied,
                Some("passwords are for global admins only; sign in through the identity provider".into()),
            )
            .await?;
            return Err(ServiceError::forbidden(
                "sign in through the identity provider: passwords are kept for administrators",
            ));
        }
        self.store.clear_throttle(&keys[0].0).await?;
        if verdict == Verdict::RightButRehash {
            let fresh = self.passwords.hash(password.to_string()).await?;
            self.store.set_password_hash(credentials.user.id, &fresh).await?;
        }
        let principal = self
            .store
            .principal(credentials.user.id)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated(WRONG_CREDENTIALS))?;
        self.audit_sign_in(username, Some(principal.user_id), source, "login", AuditResult::Ok, None).await?;
        Ok(principal)
    }

    /// Signs in and starts a session: a new session id (against fixation),
    /// the user, a fresh CSRF token and the time of sign-in. Returns the caller
    /// and the CSRF token.
    pub async fn sign_in(
        &self,
        session: &Session,
        username: &str,
        password: &str,
        source: Option<&str>,
    ) -> Result<(Caller, String)> {
        let principal = self.login(username.trim(), password, source).await?;
        let csrf = self.start_session(session, &principal).await?;
        let caller = Caller { principal, via: Via::Session { id: session.id() }, source: source.map(str::to_string) };
        Ok((caller, csrf))
    }

    /// Starts a session for someone who proved who they are: a new session
    /// id (against fixation), the user, a fresh CSRF token and the time of
    /// sign-in. Returns the CSRF token.
    pub(crate) async fn start_session(&self, session: &Session, principal: &Principal) -> Result<String> {
        session.cycle_id().await.map_err(session_error)?;
        let csrf = hex::encode(rand::random::<[u8; 32]>());
        session.insert(SESSION_USER, principal.user_id).await.map_err(session_error)?;
        session.insert(SESSION_CSRF, csrf.clone()).await.map_err(session_error)?;
        session.insert(SESSION_LOGIN_AT, now_ms()).await.map_err(session_error)?;
        // Saved now, so the id exists for streams opened right after.
        session.save().await.map_err(session_error)?;
        Ok(csrf)
    }

    /// Ends the session on the server, not just in the browser. Returns
    /// where the browser goes next when the session was made through the
    /// identity provider and it has an end-session endpoint.
    pub async fn sign_out(&self, caller: &Caller, session: &Session) -> Result<Option<String>> {
        let provider_sign_out = self.sso_sign_out_url(session).await;
        self.audit_sign_in(
            &caller.principal.username,
            Some(caller.principal.user_id),
            caller.source.as_deref(),
            "logout",
            AuditResult::Ok,
            None,
        )
        .await?;
        session.flush().await.map_err(session_error)?;
        Ok(provider_sign_out)
    }

    /// The CSRF token a session caller's forms must echo; empty for others.
    pub async fn csrf_token(&self, caller: &Caller, session: &Session) -> String {
        match caller.via {
            Via::Session { .. } => session.get::<String>(SESSION_CSRF).await.ok().flatten().unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// The caller behind a request, or None when nobody is signed in. A bearer
    /// token wins over a session; a session past its absolute lifetime, or
    /// whose user is gone, is ended.
    pub async fn caller(&self, credentials: &Credentials<'_>) -> Result<Option<Caller>> {
        let source = credentials.source.map(str::to_string);
        if let Some(secret) = credentials.bearer {
            return self.token_caller(secret, source).await.map(Some);
        }
        let Some(session) = credentials.session else { return Ok(None) };
        let Some(user_id) = session_value::<i64>(session, SESSION_USER).await? else { return Ok(None) };
        let login_at = session_value::<i64>(session, SESSION_LOGIN_AT).await?.unwrap_or(0);
        let principal = if self.within_lifetime(login_at) && self.refresh_sso_session(session, user_id).await? {
            self.store.principal(user_id).await?
        } else {
            None
        };
        match principal {
            Some(principal) => Ok(Some(Caller { principal, via: Via::Session { id: session.id() }, source })),
            None => {
                let _ = session.flush().await;
                Ok(None)
            }
        }
    }

    /// The caller of a state-changing request. A cookie session must echo
    /// its CSRF token; bearer tokens are not sent by browsers on their own,
    /// so they need none.
    pub async fn acting_caller(&self, credentials: &Credentials<'_>, sent_csrf: Option<&str>) -> Result<Caller> {
        let caller = self.signed_in(credentials).await?;
        if let (Via::Session { .. }, Some(session)) = (&caller.via, credentials.session) {
            let expected = session_value::<String>(session, SESSION_CSRF).await?.unwrap_or_default();
            if expected.is_empty() || !same_secret(&expected, sent_csrf.unwrap_or_default()) {
                return Err(ServiceError::forbidden(
                    "the request's security token (the form's csrf field, or the X-CSRF-Token header) is missing or stale; reload the page and try again",
                ));
            }
        }
        Ok(caller)
    }

    /// The caller, or 401.
    pub async fn signed_in(&self, credentials: &Credentials<'_>) -> Result<Caller> {
        self.caller(credentials)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated("sign in or send an API token (Authorization: Bearer …)"))
    }

    fn within_lifetime(&self, login_at: i64) -> bool {
        now_ms() - login_at <= self.config.session_absolute.as_millis() as i64
    }

    /// The caller behind an `Authorization: Bearer` token, with the token's
    /// narrower rights.
    async fn token_caller(&self, secret: &str, source: Option<String>) -> Result<Caller> {
        match self.store.use_token(secret, now_ms()).await? {
            TokenLookup::Valid(token) => {
                let owner = self.store.principal(token.user_id).await?.ok_or_else(|| {
                    ServiceError::unauthenticated(
                        "the token's owner no longer exists, or the identity provider no longer lets them in",
                    )
                })?;
                let principal = owner.narrowed(token.max_role, token.team_ids.as_deref(), token.admin);
                Ok(Caller { principal, via: Via::Token { id: token.id, name: token.name }, source })
            }
            TokenLookup::Expired => Err(ServiceError::unauthenticated("the API token has expired")),
            TokenLookup::Revoked => Err(ServiceError::unauthenticated("the API token was revoked")),
            TokenLookup::Unknown => Err(ServiceError::unauthenticated("unknown API token")),
        }
    }

    /// The caller's rights as they are now, for a long-lived request such as
    /// an event stream: None once the session was signed out or expired, the
    /// token revoked or expired, or the user deleted.
    pub async fn recheck(&self, caller: &Caller) -> Result<Option<Caller>> {
        let still = match &caller.via {
            Via::Session { id: Some(id) } => {
                self.session_user(id).await?.filter(|user| *user == caller.principal.user_id)
            }
            Via::Session { id: None } => None,
            Via::Token { id, .. } => self.store.token_alive(*id, now_ms()).await?.then_some(caller.principal.user_id),
            Via::Cli => Some(caller.principal.user_id),
        };
        let Some(user_id) = still else { return Ok(None) };
        let Some(owner) = self.store.principal(user_id).await? else { return Ok(None) };
        let principal = match &caller.via {
            Via::Token { id, .. } => match self.store.token(*id).await? {
                Some(token) => owner.narrowed(token.max_role, token.team_ids.as_deref(), token.admin),
                None => return Ok(None),
            },
            _ => owner,
        };
        Ok(Some(Caller { principal, ..caller.clone() }))
    }

    /// The user of a stored session that is still within its lifetimes.
    async fn session_user(&self, id: &Id) -> Result<Option<i64>> {
        let Some(record) = self.store.load(id).await.map_err(session_error)? else { return Ok(None) };
        let user = record.data.get(SESSION_USER).and_then(|v| v.as_i64());
        let login_at = record.data.get(SESSION_LOGIN_AT).and_then(|v| v.as_i64()).unwrap_or(0);
        Ok(user.filter(|_| self.within_lifetime(login_at)))
    }

    /// The operator at the command line acts as the named user.
    pub async fn cli_caller(&self, username: &str) -> Result<Caller> {
        let credentials = self
            .store
            .user_credentials(username)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no user named {username}")))?;
        let principal =
            self.store.principal(credentials.user.id).await?.ok_or_else(|| ServiceError::not_found("user vanished"))?;
        Ok(Caller { principal, via: Via::Cli, source: Some("cli".into()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
        assert!(same_secret("", ""));
    }
}
