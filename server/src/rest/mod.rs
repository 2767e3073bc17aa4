//! The REST API under /api/v1: the same operations as the UI, for scripts
//! and CI/CD. Every handler takes an [`ApiCaller`] (session cookie or bearer
//! token) and calls the service layer, which authorises and audits.

pub mod access;
pub mod fleet;
pub mod workloads;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use gantry_service::{Caller, ErrorKind, ServiceError};
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_sessions::Session;
use utoipa::ToSchema;

use app::api::ssr::{ClientAddress, SESSION_CSRF, SESSION_LOGIN_AT, SESSION_USER};

use crate::web::WebState;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// unauthenticated, forbidden, not_found, invalid, conflict, too_many_requests, unavailable or internal.
    pub kind: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl ApiError {
    pub fn forbidden(message: &str) -> ApiError {
        ApiError(ServiceError::forbidden(message))
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        ApiError(error)
    }
}

impl From<gantry_domain::validate::Invalid> for ApiError {
    fn from(error: gantry_domain::validate::Invalid) -> ApiError {
        ApiError(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let body = ErrorBody {
            error: ErrorDetail {
                kind,
                message: e.message,
                detail: e.detail,
                fields: e.fields.into_iter().map(|f| FieldProblem { field: f.field, message: f.message }).collect(),
            },
        };
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// A JSON body whose problems (bad syntax, wrong types, too large) come
/// back as a clear 4xx in Gantry's error format.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => {
                Err(ApiError(ServiceError::new(ErrorKind::Invalid, format!("the request body is not valid: {}", rejection.body_text()))))
            }
        }
    }
}

/// The authenticated caller of an API request.
pub struct ApiCaller(pub Caller);

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

fn source(parts: &Parts) -> Option<String> {
    parts.extensions.get::<ClientAddress>().and_then(|a| a.0.clone())
}

impl FromRequestParts<WebState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, web: &WebState) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(parts) {
            return Ok(ApiCaller(web.app.token_caller(&token, source(parts)).await?));
        }
        let session = Session::from_request_parts(parts, web)
            .await
            .map_err(|_| ApiError(ServiceError::internal("session layer missing")))?;
        let unauthenticated = || ApiError(ServiceError::unauthenticated("sign in or send an API token (Authorization: Bearer …)"));
        let user_id = session.get::<i64>(SESSION_USER).await.ok().flatten().ok_or_else(unauthenticated)?;
        let login_at = session.get::<i64>(SESSION_LOGIN_AT).await.ok().flatten().unwrap_or(0);
        if gantry_store::now_ms() - login_at > web.app.config.session_absolute.as_millis() as i64 {
            let _ = session.flush().await;
            return Err(unauthenticated());
        }
        let caller = web.app.session_caller(user_id, source(parts)).await?.ok_or_else(unauthenticated)?;
        if !matches!(parts.method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS) {
            let expected = session.get::<String>(SESSION_CSRF).await.ok().flatten().unwrap_or_default();
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if expected.is_empty() || expected != sent {
                return Err(ApiError(ServiceError::forbidden(
                    "a cookie-authenticated change needs the X-CSRF-Token header (see GET /api/v1/me)",
                )));
            }
        }
        Ok(ApiCaller(caller))
    }
}

pub fn router() -> axum::Router<WebState> {
    use axum::routing::{delete, get, post, put};
    axum::Router::new()
        .route("/login", post(access::login))
        .route("/logout", post(access::logout))
        .route("/me", get(access::me))
        .route("/users", get(access::list_users).post(access::create_user))
        .route("/users/{id}", delete(access::delete_user))
        .route("/teams", get(access::list_teams).post(access::create_team))
        .route("/teams/{id}", delete(access::delete_team))
        .route("/teams/{id}/members", get(access::members))
        .route("/teams/{id}/members/{username}", put(access::set_member).delete(access::remove_member))
        .route("/teams/{id}/environments", get(access::environments).put(access::set_environments))
        .route("/namespaces", get(access::namespaces).post(access::map_namespace))
        .route("/namespaces/{cluster}/{namespace}", delete(access::unmap_namespace))
        .route("/tokens", get(access::list_tokens).post(access::create_token))
        .route("/tokens/{id}", delete(access::revoke_token))
        .route("/audit", get(access::audit))
        .route("/audit.csv", get(access::audit_csv))
        .route("/overview", get(fleet::overview))
        .route("/clusters", get(fleet::clusters).post(fleet::add_cluster))
        .route("/clusters/{cluster}", delete(fleet::remove_cluster))
        .route("/clusters/{cluster}/nodes", get(fleet::nodes))
        .route("/clusters/{cluster}/nodes/{node}", get(fleet::node))
        .route("/pods", get(fleet::pods))
        .route("/jobs", get(fleet::jobs))
        .route("/deployments", get(fleet::deployments))
        .route("/pending", get(fleet::pending))
        .route("/quotas", get(fleet::quotas))
        .route("/clusters/{cluster}/namespaces/{namespace}/quota", put(fleet::set_quota))
        .route("/preview", post(workloads::preview))
        .route("/clusters/{cluster}/namespaces/{namespace}/deployments", post(workloads::launch))
        .route(
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}",
            get(workloads::get_deployment).patch(workloads::update).delete(workloads::delete_deployment),
        )
        .route("/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/scale", put(workloads::scale))
        .route("/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/autoscale", put(workloads::autoscale))
        .route("/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/rollback", post(workloads::rollback))
        .route("/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/history", get(workloads::history))
        .route("/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/diff", get(workloads::diff))
        .route("/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/promote", post(workloads::promote))
        .route("/clusters/{cluster}/namespaces/{namespace}/jobs", post(workloads::launch_job))
        .route("/clusters/{cluster}/namespaces/{namespace}/jobs/{name}", get(workloads::get_job).delete(workloads::cancel_job))
        .route("/clusters/{cluster}/namespaces/{namespace}/pods/{pod}/logs", get(crate::streams::logs))
        .route("/events", get(crate::streams::events))
        // Unknown API paths answer in the API's error format, not with a page.
        .fallback(|| async { ApiError(ServiceError::not_found("no such API endpoint")) })
}
