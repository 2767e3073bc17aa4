//! Server functions, one module per area. Each is a public endpoint: it
//! authenticates (session cookie or bearer token), checks the CSRF token when
//! it changes state, and calls the service layer, which authorises through
//! the policy module and audits.

pub mod access;
pub mod admin;
pub mod costs;
pub mod fleet;
pub mod workloads;

/// Every server function lives under this prefix (the route table and the
/// route × role test enumerate it).
pub const PREFIX: &str = "/fn";

#[cfg(feature = "ssr")]
pub mod ssr {
    use gantry_service::{AppState, Caller, ServiceError};
    use http::request::Parts;
    use leptos::prelude::*;
    use tower_sessions::Session;

    use crate::error::AppError;

    pub const SESSION_USER: &str = "user_id";
    pub const SESSION_CSRF: &str = "csrf";
    pub const SESSION_LOGIN_AT: &str = "login_at";

    /// The peer address, put into request extensions by the server.
    #[derive(Clone, Debug)]
    pub struct ClientAddress(pub Option<String>);

    pub fn state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| AppError::new("internal", "server state missing"))
    }

    fn status_for(error: &AppError) -> http::StatusCode {
        let code = match error.kind.as_str() {
            "unauthenticated" => 401,
            "forbidden" => 403,
            "not_found" => 404,
            "invalid" => 422,
            "conflict" => 409,
            "too_many_requests" => 429,
            "unavailable" => 503,
            "request" => 400,
            _ => 500,
        };
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Converts a service error and sets the matching HTTP status. A page
    /// (not a server function call) that needs a signed-in user sends the
    /// browser to the sign-in page instead.
    pub fn fail(error: impl Into<AppError>) -> AppError {
        let error = error.into();
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(status_for(&error));
        }
        let page = parts().filter(|p| p.method == http::Method::GET && !p.uri.path().starts_with("/fn/"));
        if let Some(parts) = page.filter(|_| error.is_signed_out()) {
            let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            if !path.starts_with("/login") {
                leptos_axum::redirect(&format!("/login?next={}", gantry_domain::view::encode(path)));
            }
        }
        error
    }

    pub fn service(error: ServiceError) -> AppError {
        fail(AppError::from(error))
    }

    fn parts() -> Option<Parts> {
        use_context::<Parts>()
    }

    pub fn source() -> Option<String> {
        parts().and_then(|p| p.extensions.get::<ClientAddress>().cloned()).and_then(|a| a.0)
    }

    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|_| fail(AppError::new("internal", "sessions are not configured")))
    }

    fn bearer() -> Option<String> {
        let parts = parts()?;
        let value = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
    }

    /// The caller, or None when nobody is signed in.
    pub async fn maybe_caller() -> Result<Option<Caller>, AppError> {
        let state = state()?;
        if let Some(token) = bearer() {
            return state.token_caller(&token, source()).await.map(Some).map_err(service);
        }
        let session = session().await?;
        let Some(user_id) = session.get::<i64>(SESSION_USER).await.ok().flatten() else { return Ok(None) };
        // The absolute lifetime: idle expiry is tower-sessions' job.
        let login_at = session.get::<i64>(SESSION_LOGIN_AT).await.ok().flatten().unwrap_or(0);
        let age = gantry_store::now_ms() - login_at;
        if age > state.config.session_absolute.as_millis() as i64 {
            let _ = session.flush().await;
            return Ok(None);
        }
        let caller = state.session_caller(user_id, source()).await.map_err(service)?;
        if caller.is_none() {
            let _ = session.flush().await;
        }
        Ok(caller)
    }

    pub async fn caller() -> Result<Caller, AppError> {
        maybe_caller().await?.ok_or_else(|| fail(AppError::new("unauthenticated", "sign in to continue")))
    }

    /// The caller of a state-changing request. Cookie sessions must echo the
    /// session's CSRF token; bearer tokens are not sent by browsers on their
    /// own, so they need none.
    pub async fn acting_caller(csrf: &str) -> Result<Caller, AppError> {
        let caller = caller().await?;
        if caller.via == gantry_service::Via::Session {
            let session = session().await?;
            let expected = session.get::<String>(SESSION_CSRF).await.ok().flatten().unwrap_or_default();
            if expected.is_empty() || !constant_time_eq(expected.as_bytes(), csrf.as_bytes()) {
                return Err(fail(AppError::new(
                    "forbidden",
                    "the form's security token is missing or stale; reload the page and try again",
                )));
            }
        }
        Ok(caller)
    }

    fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Only same-site relative paths, so `next` cannot send a user elsewhere.
    pub fn safe_next(next: &str) -> String {
        if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
            next.to_string()
        } else {
            "/".to_string()
        }
    }
}
