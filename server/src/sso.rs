//! Single sign-on's two browser endpoints: `/auth/sso/start` sends the
//! browser to the identity provider, `/auth/sso/callback` is where it comes
//! back. Both are plain links and redirects, so they work without
//! JavaScript; the flow itself is `gantry_service::sso`.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use gantry_service::{ClientAddress, SsoCallback};
use serde::Deserialize;
use tower_sessions::Session;

use crate::web::WebState;

#[derive(Deserialize)]
struct Start {
    next: Option<String>,
}

/// Begins a sign-in; a provider that cannot be used sends the browser back
/// to the sign-in page, which says why.
async fn start(State(web): State<WebState>, session: Session, Query(start): Query<Start>) -> Response {
    match web.app.sso_begin(&session, start.next.as_deref().unwrap_or("/")).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

/// The provider's answer: on to where the person was going, or back to the
/// sign-in page with the reason.
async fn callback(
    State(web): State<WebState>,
    session: Session,
    address: Option<axum::Extension<ClientAddress>>,
    answer: Result<Query<SsoCallback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // An answer that cannot be read is refused (and audited) like a forged one.
    let answer = answer.map(|Query(a)| a).unwrap_or_default();
    let source = address.and_then(|a| a.0.0);
    match web.app.sso_finish(&session, &answer, source.as_deref()).await {
        Ok(next) => Redirect::to(&next).into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

pub fn routes() -> Router<WebState> {
    Router::new().route("/auth/sso/start", get(start)).route("/auth/sso/callback", get(callback))
}
