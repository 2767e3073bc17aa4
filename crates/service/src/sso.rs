//! Single sign-on through an OpenID Connect provider: the authorization-code
//! flow with PKCE, `state` and `nonce` (the `openidconnect` crate does the
//! protocol and verifies ID tokens: signature against the provider's JWKS,
//! issuer, audience, expiry, nonce), users made on first sign-in and linked
//! by the provider's subject, team roles from the provider's groups, and
//! sessions whose groups are refreshed while they last.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_domain::sso::{SsoSettings, groups_claim};
use gantry_store::{AuditResult, SsoSignIn, now_ms};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreTokenResponse};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Caller};

/// The flow under way: what the callback must find in the session.
const SESSION_PENDING: &str = "sso_pending";
/// A session made through the provider: its tokens and when its groups were last read.
const SESSION_SSO: &str = "sso";
/// A sign-in through the provider that failed, for the sign-in page to say why (once).
const SESSION_PROBLEM: &str = "sso_problem";
/// How long a person may take at the provider's page.
const PENDING_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// How long discovery (and the keys) are reused before they are read again.
const METADATA_LIFETIME: Duration = Duration::from_secs(600);

/// How Gantry talks to its identity provider (flags `--oidc-*`).
#[derive(Clone)]
pub struct SsoConfig {
    /// The button's words: "Sign in with {name}".
    pub provider_name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Asked for besides `openid`.
    pub scopes: Vec<String>,
    pub groups_claim: String,
    /// Where the provider sends people back: `https://gantry.example.com/auth/sso/callback`.
    pub redirect_url: String,
    /// How often an open session's groups are read again from the provider.
    pub refresh_interval: Duration,
}

impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

type OidcClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// The provider as last discovered, and what went wrong when it was not.
pub struct Sso {
    config: SsoConfig,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<(ProviderMetadataWithLogout, Instant)>>,
    /// Why discovery failed when last tried (None: it answered).
    problem: std::sync::Mutex<Option<String>>,
    /// Why the provider refused Gantry's last code exchange (a wrong client
    /// secret, say); None once one succeeds.
    exchange_problem: std::sync::Mutex<Option<String>>,
    /// When each person's next refresh is due (ms since the epoch), as this
    /// replica last read it from the store: until then, requests go by
    /// without asking the store at all.
    next_refresh: std::sync::Mutex<std::collections::HashMap<i64, i64>>,
}

/// The flow under way, kept in the session between the redirect to the
/// provider and its callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    started_at: i64,
}

/// A session made through the provider: its ID token, the hint sign-out
/// gives the provider. The refresh token is the person's, kept sealed in the
/// store (see `refresh_sso_session`).
#[derive(Clone, Serialize, Deserialize)]
struct SsoSession {
    id_token: String,
}

/// What the provider sent back to the callback.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Who the verified ID token names, and their groups.
struct Identity {
    subject: String,
    preferred_username: Option<String>,
    email: Option<String>,
    groups: Vec<String>,
}

impl Sso {
    /// Checks the configuration's URLs; one line naming the bad setting otherwise.
    pub fn new(config: SsoConfig) -> std::result::Result<Sso, String> {
        IssuerUrl::new(config.issuer.clone()).map_err(|e| format!("--oidc-issuer {:?}: {e}", config.issuer))?;
        let redirect = RedirectUrl::new(config.redirect_url.clone())
            .map_err(|e| format!("--oidc-redirect-url {:?}: {e}", config.redirect_url))?;
        if !matches!(redirect.url().scheme(), "http" | "https") {
            return Err(format!("--oidc-redirect-url {:?}: must be an http(s) URL", config.redirect_url));
        }
        if config.client_id.trim().is_empty() {
            return Err("--oidc-client-id is required with --oidc-issuer".into());
        }
        if config.groups_claim.trim().is_empty() {
            return Err("--oidc-groups-claim must name a claim".into());
        }
        let http = reqwest::Client::builder()
            // The provider's answers are never followed elsewhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("an HTTP client for the identity provider: {e}"))?;
        Ok(Sso {
            config,
            http,
            discovered: Default::default(),
            problem: Default::default(),
            exchange_problem: Default::default(),
            next_refresh: Default::default(),
        })
    }

    /// Reads the provider's discovery document and keys (cached for ten
    /// minutes; `fresh` reads them again, as after a key rotation).
    pub async fn metadata(&self, fresh: bool) -> Result<ProviderMetadataWithLogout> {
        let mut discovered = self.discovered.lock().await;
        if let Some((metadata, at)) = discovered.as_ref()
            && !fresh
            && at.elapsed() < METADATA_LIFETIME
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(ServiceError::internal)?;
        match ProviderMetadataWithLogout::discover_async(issuer, &self.http).await {
            Ok(metadata) => {
                *discovered = Some((metadata.clone(), Instant::now()));
                self.set_problem(None);
                Ok(metadata)
            }
            Err(error) => {
                let why = format!(
                    "the identity provider at {} does not answer as an OpenID provider: {}",
                    self.config.issuer,
                    error_chain(&error)
                );
                tracing::error!("{why}");
                self.set_problem(Some(why.clone()));
                // A provider that stopped answering keeps its last good keys for a while.
                match discovered.as_ref() {
                    Some((metadata, at)) if at.elapsed() < METADATA_LIFETIME * 6 => Ok(metadata.clone()),
                    _ => Err(ServiceError::unavailable(why)),
                }
            }
        }
    }

    fn set_problem(&self, problem: Option<String>) {
        if let Ok(mut slot) = self.problem.lock() {
            *slot = problem;
        }
    }

    /// Whether the person's refresh may be due, as far as this replica knows.
    fn refresh_may_be_due(&self, user_id: i64, now: i64) -> bool {
        let Ok(next) = self.next_refresh.lock() else { return true };
        next.get(&user_id).is_none_or(|due| *due <= now)
    }

    fn note_next_refresh(&self, user_id: i64, due: i64) {
        if let Ok(mut next) = self.next_refresh.lock() {
            next.insert(user_id, due);
        }
    }

    fn set_exchange_problem(&self, problem: Option<String>) {
        if let Ok(mut slot) = self.exchange_problem.lock() {
            *slot = problem;
        }
    }

    fn client(&self, metadata: ProviderMetadataWithLogout) -> Result<OidcClient> {
        let redirect = RedirectUrl::new(self.config.redirect_url.clone()).map_err(ServiceError::internal)?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// The effective configuration, without the secret, and whether the provider answers.
    pub fn settings(&self, local_passwords: bool) -> SsoSettings {
        SsoSettings {
            provider_name: self.config.provider_name.clone(),
            issuer: self.config.issuer.clone(),
            client_id: self.config.client_id.clone(),
            client_secret_set: !self.config.client_secret.is_empty(),
            scopes: self.scopes(),
            groups_claim: self.config.groups_claim.clone(),
            redirect_url: self.config.redirect_url.clone(),
            refresh_minutes: self.config.refresh_interval.as_secs() / 60,
            local_passwords,
            problem: self
                .problem
                .lock()
                .ok()
                .and_then(|p| p.clone())
                .or_else(|| self.exchange_problem.lock().ok().and_then(|p| p.clone())),
        }
    }

    fn scopes(&self) -> Vec<String> {
        let mut scopes = vec!["openid".to_string()];
        for scope in &self.config.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }

    /// Where sign-out sends the browser: the provider's end-session endpoint,
    /// when it has one, back to Gantry's sign-in page afterwards.
    async fn end_session_url(&self, id_token: &str) -> Option<String> {
        let metadata = self.metadata(false).await.ok()?;
        let endpoint = metadata.additional_metadata().end_session_endpoint.clone()?;
        let id_token: CoreIdToken = id_token.parse().ok()?;
        let mut back = openidconnect::url::Url::parse(&self.config.redirect_url).ok()?;
        back.set_path("/login");
        back.set_query(None);
        let request = openidconnect::LogoutRequest::from(endpoint)
            .set_id_token_hint(&id_token)
            .set_client_id(ClientId::new(self.config.client_id.clone()))
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(back.to_string()).ok()?);
        Some(request.http_get_url().to_string())
    }

    /// Verifies an ID token (signature, issuer, audience, expiry, and the
    /// nonce when one is expected) and reads who it names. A signature by an
    /// unknown key reads the provider's keys again once (key rotation).
    async fn identity(&self, client: OidcClient, token: &CoreIdToken, nonce: Option<&Nonce>) -> Result<Identity> {
        let verify = |client: &OidcClient| {
            let verifier = client.id_token_verifier();
            match nonce {
                Some(nonce) => token.claims(&verifier, nonce).cloned(),
                // A refreshed ID token need not carry the nonce again.
                None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())).cloned(),
            }
        };
        let claims = match verify(&client) {
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.client(self.metadata(true).await?)?;
                verify(&fresh)
            }
            other => other,
        }
        .map_err(|e| refused(format!("the identity provider's ID token was refused: {}", error_chain(&e))))?;
        // The signature is verified: read the groups from the same token's payload.
        let payload = token.to_string();
        let raw = payload
            .split('.')
            .nth(1)
            .and_then(base64_url)
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .unwrap_or_default();
        let groups = groups_claim(&raw, &self.config.groups_claim).map_err(|e| refused(e.0))?;
        Ok(Identity {
            subject: claims.subject().to_string(),
            preferred_username: claims.preferred_username().map(|u| u.to_string()),
            email: claims.email().map(|e| e.to_string()),
            groups,
        })
    }
}

fn base64_url(part: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

/// An error and its causes, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn refused(message: impl Into<String>) -> ServiceError {
    ServiceError::unauthenticated(message)
}

fn session_error(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("session store: {error}"))
}

impl AppState {
    fn sso(&self) -> Result<&Arc<Sso>> {
        self.sso.as_ref().ok_or_else(|| ServiceError::not_found("single sign-on is not configured"))
    }

    /// The identity provider's origin (`scheme://host[:port]`), when single sign-on is on.
    pub fn sso_origin(&self) -> Option<String> {
        let issuer = openidconnect::url::Url::parse(&self.sso.as_ref()?.config.issuer).ok()?;
        Some(issuer.origin().ascii_serialization())
    }

    /// What the sign-in page offers, and why the last sign-in through the
    /// provider failed (said once).
    pub async fn sign_in_options(&self, session: &Session) -> gantry_domain::sso::SignInOptions {
        let problem = session.remove::<String>(SESSION_PROBLEM).await.ok().flatten();
        gantry_domain::sso::SignInOptions {
            provider: self.sso.as_ref().map(|sso| sso.config.provider_name.clone()),
            local_passwords: self.config.local_passwords,
            problem,
        }
    }

    /// The effective single sign-on configuration, read after asking the
    /// provider again (so it shows whether it answers now); None when off.
    /// Callers authorise first.
    pub(crate) async fn sso_settings(&self) -> Option<SsoSettings> {
        let sso = self.sso.as_ref()?;
        let _ = sso.metadata(true).await;
        Some(sso.settings(self.config.local_passwords))
    }

    /// Starts a sign-in: remembers `state`, `nonce` and the PKCE verifier in
    /// the session, and returns the provider's authorization URL.
    pub async fn sso_begin(&self, session: &Session, next: &str) -> Result<String> {
        let started = self.sso_authorization_url(session, next).await;
        if let Err(error) = &started {
            let _ = session.insert(SESSION_PROBLEM, format!("Single sign-on is unavailable: {}", error.message)).await;
            let _ = session.save().await;
        }
        started
    }

    async fn sso_authorization_url(&self, session: &Session, next: &str) -> Result<String> {
        let sso = self.sso()?;
        let client = sso.client(sso.metadata(false).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request =
            client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
        for scope in sso.scopes().into_iter().filter(|s| s != "openid") {
            request = request.add_scope(Scope::new(scope));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: gantry_domain::validate::redirect_target(next).to_string(),
            started_at: now_ms(),
        };
        session.insert(SESSION_PENDING, pending).await.map_err(session_error)?;
        session.save().await.map_err(session_error)?;
        Ok(url.to_string())
    }

    /// Finishes a sign-in at the callback: the flow must be this session's
    /// (its `state`), used once, and the ID token valid for this client and
    /// this flow's nonce. Then the user is found by subject (or made), their
    /// roles brought up to date from their groups, and a session started.
    /// Every outcome is audited; a refusal leaves no session and a message
    /// for the sign-in page.
    pub async fn sso_finish(&self, session: &Session, callback: &Callback, source: Option<&str>) -> Result<String> {
        match self.sso_sign_in(session, callback, source).await {
            Ok(next) => Ok(next),
            Err((actor, error)) => {
                let detail = error.message.clone();
                self.audit_sign_in(&actor, None, source, "login.sso", AuditResult::Denied, Some(detail.clone()))
                    .await?;
                // No session survives a refused answer, not even one held before it.
                let _ = session.flush().await;
                let _ = session.insert(SESSION_PROBLEM, format!("Single sign-on failed: {detail}")).await;
                let _ = session.save().await;
                Err(error)
            }
        }
    }

    async fn sso_sign_in(
        &self,
        session: &Session,
        callback: &Callback,
        source: Option<&str>,
    ) -> std::result::Result<String, (String, ServiceError)> {
        let unknown = |e: ServiceError| ("(single sign-on)".to_string(), e);
        let sso = self.sso().map_err(|e| unknown(e.clone()))?;
        // Taken out at once: a replayed callback finds nothing.
        let pending =
            session.remove::<Pending>(SESSION_PENDING).await.ok().flatten().ok_or_else(|| {
                unknown(refused("this sign-in was not started here, or was already used; start again"))
            })?;
        if now_ms() - pending.started_at > PENDING_LIFETIME_MS {
            return Err(unknown(refused("the sign-in took more than 10 minutes; start again")));
        }
        if !crate::auth::same_secret(&pending.state, callback.state.as_deref().unwrap_or_default()) {
            return Err(unknown(refused("the provider's answer does not belong to this sign-in (state mismatch)")));
        }
        if let Some(error) = &callback.error {
            let description = callback.error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            let error: String = format!("{error}{description}").chars().take(300).collect();
            return Err(unknown(refused(format!("the identity provider said {error}"))));
        }
        let code = callback.code.clone().filter(|c| !c.is_empty());
        let code = code.ok_or_else(|| unknown(refused("the provider's answer carries no authorization code")))?;
        let client = sso.client(sso.metadata(false).await.map_err(unknown)?).map_err(unknown)?;
        let tokens: CoreTokenResponse = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| unknown(ServiceError::internal(e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&sso.http)
            .await
            .map_err(|e| {
                let why = format!("the identity provider refused the authorization code: {}", error_chain(&e));
                sso.set_exchange_problem(Some(why.clone()));
                unknown(refused(why))
            })?;
        sso.set_exchange_problem(None);
        let id_token = tokens.id_token().ok_or_else(|| unknown(refused("the provider sent no ID token")))?;
        let identity = sso.identity(client, id_token, Some(&Nonce::new(pending.nonce))).await.map_err(unknown)?;
        let actor = identity.preferred_username.clone().unwrap_or_else(|| identity.subject.clone());
        let caller = self.sso_apply(&identity, source).await.map_err(|e| (actor.clone(), e))?;
        let sealed = tokens.refresh_token().map(|t| self.sealer.seal(t.secret().as_bytes()));
        let user_id = caller.principal.user_id;
        self.store.save_sso_refresh(user_id, sealed.as_deref()).await.map_err(|e| (actor.clone(), e.into()))?;
        let sso_session = SsoSession { id_token: id_token.to_string() };
        self.start_session(session, &caller.principal).await.map_err(|e| (actor.clone(), e))?;
        session.insert(SESSION_SSO, sso_session).await.map_err(|e| (actor, session_error(e)))?;
        let _ = session.save().await;
        Ok(pending.next)
    }

    /// Finds or makes the user, brings their roles up to date, audits it.
    async fn sso_apply(&self, identity: &Identity, source: Option<&str>) -> Result<Caller> {
        let sso = self.sso()?;
        let outcome = self
            .store
            .sso_sign_in(&SsoSignIn {
                issuer: &sso.config.issuer,
                subject: &identity.subject,
                preferred_username: identity.preferred_username.as_deref(),
                email: identity.email.as_deref(),
                groups: &identity.groups,
            })
            .await?;
        let user = &outcome.user;
        if outcome.created {
            let taken = if outcome.name_was_taken {
                format!(
                    "; the name {:?} belongs to another account, so this one is {}",
                    identity.preferred_username.as_deref().unwrap_or_default(),
                    user.username
                )
            } else {
                String::new()
            };
            let detail = format!("subject {} at {}{taken}", identity.subject, sso.config.issuer);
            self.audit_sign_in(&user.username, Some(user.id), source, "user.sso.create", AuditResult::Ok, Some(detail))
                .await?;
        }
        if !outcome.changes.is_empty() {
            let detail = outcome.changes.join("; ");
            self.audit_sign_in(&user.username, Some(user.id), source, "membership.sso", AuditResult::Ok, Some(detail))
                .await?;
        }
        let groups = format!("groups: {}", identity.groups.join(", "));
        self.audit_sign_in(&user.username, Some(user.id), source, "login.sso", AuditResult::Ok, Some(groups)).await?;
        let principal = self
            .store
            .principal(user.id)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated("the user vanished while signing in"))?;
        Ok(Caller { principal, via: crate::state::Via::Session { id: None }, source: source.map(str::to_string) })
    }

    /// For a session made through the provider, once per refresh interval
    /// of its person: reads their groups again with their refresh token and
    /// brings their roles up to date. One request (of any replica) claims a
    /// due refresh in the store, so a page's parallel requests never spend
    /// one refresh token twice (a provider that rotates them takes a reused
    /// one for a stolen one and revokes the lot). A provider that refuses the
    /// refresh (the person was deactivated or removed) ends the session and
    /// deactivates the user, so their other sessions and API tokens stop
    /// working too. A provider that cannot be reached changes nothing.
    pub(crate) async fn refresh_sso_session(&self, session: &Session, user_id: i64) -> Result<bool> {
        let Some(sso) = &self.sso else { return Ok(true) };
        if !matches!(session.get::<SsoSession>(SESSION_SSO).await, Ok(Some(_))) {
            return Ok(true);
        }
        let now = now_ms();
        let interval = sso.config.refresh_interval.as_millis() as i64;
        if !sso.refresh_may_be_due(user_id, now) {
            return Ok(true);
        }
        // A read first: most requests find the refresh not yet due, and
        // remember when it will be without writing anything.
        match self.store.sso_refreshed_at(user_id).await? {
            None => return Ok(true),
            Some(at) if at + interval > now => {
                sso.note_next_refresh(user_id, at + interval);
                return Ok(true);
            }
            Some(_) => {}
        }
        let due_before = now - interval;
        // Another request may have claimed it since; without a refresh
        // token, groups are read at sign-in only.
        let Some(Some(sealed)) = self.store.claim_sso_refresh(user_id, due_before).await? else { return Ok(true) };
        let Some(refresh_token) = self.sealer.open(&sealed).ok().and_then(|t| String::from_utf8(t).ok()) else {
            tracing::warn!("a stored refresh token cannot be opened (was the secret key changed?)");
            return Ok(true);
        };
        let Ok(metadata) = sso.metadata(false).await else { return Ok(true) };
        let client = sso.client(metadata)?;
        let refresh_token = RefreshToken::new(refresh_token);
        let request = client.exchange_refresh_token(&refresh_token).map_err(ServiceError::internal)?;
        let tokens: CoreTokenResponse = match request.request_async(&sso.http).await {
            Ok(tokens) => tokens,
            Err(openidconnect::RequestTokenError::ServerResponse(error)) => {
                let why = format!("the identity provider refused to refresh the session: {error}");
                self.store.deactivate_user(user_id).await?;
                let name = self.store.user(user_id).await?.map(|u| u.username).unwrap_or_default();
                self.audit_sign_in(&name, Some(user_id), None, "login.sso.refresh", AuditResult::Denied, Some(why))
                    .await?;
                let _ = session.flush().await;
                return Ok(false);
            }
            Err(error) => {
                tracing::warn!("could not refresh a single sign-on session: {}", error_chain(&error));
                return Ok(true);
            }
        };
        let next = tokens.refresh_token().unwrap_or(&refresh_token);
        self.store.save_sso_refresh(user_id, Some(&self.sealer.seal(next.secret().as_bytes()))).await?;
        let Some(id_token) = tokens.id_token() else { return Ok(true) };
        let identity = match sso.identity(client, id_token, None).await {
            Ok(identity) => identity,
            Err(error) => {
                tracing::warn!("a refreshed ID token was refused: {}", error.message);
                return Ok(true);
            }
        };
        let outcome = self
            .store
            .sso_sign_in(&SsoSignIn {
                issuer: &sso.config.issuer,
                subject: &identity.subject,
                preferred_username: identity.preferred_username.as_deref(),
                email: identity.email.as_deref(),
                groups: &identity.groups,
            })
            .await?;
        if !outcome.changes.is_empty() {
            let detail = format!("at session refresh: {}", outcome.changes.join("; "));
            self.audit_sign_in(
                &outcome.user.username,
                Some(user_id),
                None,
                "membership.sso",
                AuditResult::Ok,
                Some(detail),
            )
            .await?;
        }
        Ok(true)
    }

    /// Where the browser goes after signing out: the provider's end-session
    /// endpoint for a session made through it, else None.
    pub(crate) async fn sso_sign_out_url(&self, session: &Session) -> Option<String> {
        let sso = self.sso.as_ref()?;
        let state = session.get::<SsoSession>(SESSION_SSO).await.ok().flatten()?;
        sso.end_session_url(&state.id_token).await
    }
}
