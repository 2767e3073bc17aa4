//! Signing in and out, the caller's profile, password and API tokens.

use gantry_domain::records::TokenRecord;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTokenView {
    pub name: String,
    pub secret: String,
    pub expires_at: Option<i64>,
}

/// The signed-in user, or None. Carries the CSRF token forms echo back.
#[server(prefix = "/fn", endpoint = "me")]
pub async fn me() -> Result<Option<gantry_domain::view::Me>, AppError> {
    use super::ssr::*;
    let Some(caller) = maybe_caller().await? else { return Ok(None) };
    let csrf = state()?.csrf_token(&caller, &session().await?).await;
    Ok(Some(caller.me(csrf)))
}

/// Signs in: checks the password (throttled), rotates the session id, and
/// sends the browser on to `next`.
#[server(prefix = "/fn", endpoint = "login")]
pub async fn login(username: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use super::ssr::*;
    let session = session().await?;
    state()?.sign_in(&session, &username, &password, source().as_deref()).await.map_err(service)?;
    leptos_axum::redirect(gantry_domain::validate::redirect_target(next.as_deref().unwrap_or("/")));
    Ok(())
}

/// What the sign-in page offers (single sign-on, passwords), and why the
/// last sign-in through the identity provider failed.
#[server(prefix = "/fn", endpoint = "sign_in_options")]
pub async fn sign_in_options() -> Result<gantry_domain::sso::SignInOptions, AppError> {
    use super::ssr::*;
    Ok(state()?.sign_in_options(&session().await?).await)
}

/// Signs out: the session is deleted on the server, not just forgotten by
/// the browser.
#[server(prefix = "/fn", endpoint = "logout")]
pub async fn logout(csrf: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let provider = state()?.sign_out(&caller, &session().await?).await.map_err(service)?;
    leptos_axum::redirect(provider.as_deref().unwrap_or("/login"));
    Ok(())
}

/// Changes the caller's password; every session ends and they sign in again.
#[server(prefix = "/fn", endpoint = "change_password")]
pub async fn change_password(csrf: String, current: String, new: String, confirm: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    if new != confirm {
        return Err(fail(gantry_domain::validate::Invalid::new("confirm", "does not match the new password")));
    }
    state()?.change_password(&caller, &current, &new).await.map_err(service)?;
    let _ = session().await?.flush().await;
    leptos_axum::redirect("/login?changed=1");
    Ok(())
}

#[server(prefix = "/fn", endpoint = "my_tokens")]
pub async fn my_tokens() -> Result<Vec<TokenRecord>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.my_tokens(&caller).await.map_err(service)
}

/// Creates a token and returns its secret, shown once.
#[server(prefix = "/fn", endpoint = "create_token")]
pub async fn create_token(
    csrf: String,
    name: String,
    max_role: String,
    expires_in_days: String,
    admin: Option<String>,
) -> Result<NewTokenView, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let days =
        match expires_in_days.trim() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                fail(gantry_domain::validate::Invalid::new("expires_in_days", "must be a whole number"))
            })?),
        };
    let request = gantry_service::TokenRequest {
        name,
        max_role: Some(max_role).filter(|r| !r.is_empty()),
        teams: None,
        admin: admin.is_some_and(|a| a == "true" || a == "on"),
        expires_in_days: days,
        expires_in_seconds: None,
    };
    let created = state()?.create_token(&caller, &request).await.map_err(service)?;
    Ok(NewTokenView { name: created.name, secret: created.secret, expires_at: created.expires_at })
}

#[server(prefix = "/fn", endpoint = "revoke_token")]
pub async fn revoke_token(csrf: String, id: i64) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.revoke_token(&caller, id).await.map_err(service)
}
