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
    use gantry_service::{AppState, Caller, Credentials, ServiceError};
    use http::request::Parts;
    use leptos::prelude::*;
    use tower_sessions::Session;

    use crate::error::{AppError, ErrorKind};

    pub fn state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| AppError::new(ErrorKind::Internal, "server state missing"))
    }

    /// Sets the HTTP status of an error. A page (not a server function call)
    /// that needs a signed-in user sends the browser to the sign-in page
    /// instead.
    pub fn fail(error: impl Into<AppError>) -> AppError {
        let error = error.into();
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(
                http::StatusCode::from_u16(error.status()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
            );
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
        parts().and_then(|p| p.extensions.get::<gantry_service::ClientAddress>().cloned()).and_then(|a| a.0)
    }

    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|_| fail(AppError::new(ErrorKind::Internal, "sessions are not configured")))
    }

    /// The request being served and its session.
    pub async fn request() -> Result<(Parts, Session), AppError> {
        let parts = parts().ok_or_else(|| fail(AppError::new(ErrorKind::Internal, "no request to serve")))?;
        Ok((parts, session().await?))
    }

    /// The caller, or None when nobody is signed in.
    pub async fn maybe_caller() -> Result<Option<Caller>, AppError> {
        let (parts, session) = request().await?;
        state()?.caller(&Credentials::of(&parts, Some(&session))).await.map_err(service)
    }

    pub async fn caller() -> Result<Caller, AppError> {
        maybe_caller().await?.ok_or_else(|| fail(AppError::new(ErrorKind::Unauthenticated, "sign in to continue")))
    }

    /// The caller of a state-changing request: a cookie session must echo
    /// the form's CSRF token (the service compares it).
    pub async fn acting_caller(csrf: &str) -> Result<Caller, AppError> {
        let (parts, session) = request().await?;
        state()?.acting_caller(&Credentials::of(&parts, Some(&session)), Some(csrf)).await.map_err(service)
    }
}
