//! Sign-in, API tokens, and turning a session or a token into a [`Caller`].

use std::time::Duration;

use gantry_domain::policy::Principal;
use gantry_domain::throttle::{Counters, Gate};
use gantry_store::{AuditEntry, AuditResult, ThrottleRecord, TokenLookup, now_ms};

use crate::error::{ErrorKind, Result, ServiceError};
use crate::passwords::{self, Verdict};
use crate::state::{AppState, Caller, Via};

const WRONG_CREDENTIALS: &str = "wrong username or password";

fn counters(record: Option<ThrottleRecord>) -> Counters {
    record.map_or_else(Counters::default, |r| Counters {
        failures: r.failures,
        last_failure: r.last_failure,
        locked_until: r.locked_until,
    })
}

fn record(c: Counters) -> ThrottleRecord {
    ThrottleRecord { failures: c.failures, last_failure: c.last_failure, locked_until: c.locked_until }
}

impl AppState {
    async fn audit_login(
        &self,
        username: &str,
        user_id: Option<i64>,
        source: Option<&str>,
        action: &str,
        result: AuditResult,
        detail: Option<String>,
    ) {
        let entry = AuditEntry {
            actor_id: user_id,
            actor: username.chars().take(64).collect(),
            source: source.map(str::to_string),
            action: action.to_string(),
            result: Some(result),
            detail,
            ..Default::default()
        };
        if let Err(e) = self.store.append_audit(&entry, now_ms()).await {
            tracing::error!("could not write the audit log: {e}");
        }
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
        let keys = [
            (format!("user:{username}"), self.config.throttle_account),
            (format!("addr:{}", source.unwrap_or("unknown")), self.config.throttle_address),
        ];
        let mut delay = 0;
        for (key, rules) in &keys {
            match rules.gate(counters(self.store.throttle(key).await?), now) {
                Gate::Open => {}
                Gate::Delay(ms) => delay = delay.max(ms),
                Gate::Locked(until) => {
                    self.audit_login(
                        username,
                        None,
                        source,
                        "login",
                        AuditResult::Denied,
                        Some(format!("locked out ({key})")),
                    )
                    .await;
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
            passwords::verify(password.to_string(), credentials.as_ref().map(|c| c.password_hash.clone())).await?;
        let Some(credentials) = credentials.filter(|_| verdict != Verdict::Wrong) else {
            for (key, rules) in &keys {
                let (next, newly_locked) = rules.fail(counters(self.store.throttle(key).await?), now_ms());
                self.store.put_throttle(key, record(next)).await?;
                if newly_locked {
                    let minutes = rules.lockout_ms / 60_000;
                    self.audit_login(
                        username,
                        None,
                        source,
                        "login.lockout",
                        AuditResult::Denied,
                        Some(format!("{key} locked for {minutes} minutes")),
                    )
                    .await;
                }
            }
            self.audit_login(username, None, source, "login", AuditResult::Failed, Some(WRONG_CREDENTIALS.into()))
                .await;
            return Err(ServiceError::unauthenticated(WRONG_CREDENTIALS));
        };
        self.store.clear_throttle(&keys[0].0).await?;
        if verdict == Verdict::RightButRehash {
            let fresh = passwords::hash(password.to_string()).await?;
            self.store.set_password_hash(credentials.user.id, &fresh).await?;
        }
        let principal = self
            .store
            .principal(credentials.user.id)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated(WRONG_CREDENTIALS))?;
        self.audit_login(username, Some(principal.user_id), source, "login", AuditResult::Ok, None).await;
        Ok(principal)
    }

    pub async fn audit_logout(&self, caller: &Caller) {
        self.audit_login(
            &caller.principal.username,
            Some(caller.principal.user_id),
            caller.source.as_deref(),
            "logout",
            AuditResult::Ok,
            None,
        )
        .await;
    }

    /// The caller behind a session's user id; None when the user is gone.
    pub async fn session_caller(&self, user_id: i64, source: Option<String>) -> Result<Option<Caller>> {
        Ok(self.store.principal(user_id).await?.map(|principal| Caller { principal, via: Via::Session, source }))
    }

    /// The caller behind an `Authorization: Bearer` token, with the token's
    /// narrower rights.
    pub async fn token_caller(&self, secret: &str, source: Option<String>) -> Result<Caller> {
        match self.store.use_token(secret, now_ms()).await? {
            TokenLookup::Valid(token) => {
                let owner = self
                    .store
                    .principal(token.user_id)
                    .await?
                    .ok_or_else(|| ServiceError::unauthenticated("the token's owner no longer exists"))?;
                let principal = owner.narrowed(token.max_role, token.team_ids.as_deref(), token.admin);
                Ok(Caller { principal, via: Via::Token { id: token.id, name: token.name }, source })
            }
            TokenLookup::Expired => Err(ServiceError::unauthenticated("the API token has expired")),
            TokenLookup::Revoked => Err(ServiceError::unauthenticated("the API token was revoked")),
            TokenLookup::Unknown => Err(ServiceError::unauthenticated("unknown API token")),
        }
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
