//! The REST API under /api/v1: the same operations as the UI, for scripts
//! and CI/CD. Every handler takes an [`ApiCaller`] (session cookie or bearer
//! token) and calls the service layer, which authorises and audits.

pub mod access;
pub mod costs;
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
            Err(rejection) => Err(ApiError(ServiceError::new(
                ErrorKind::Invalid,
                format!("the request body is not valid: {}", rejection.body_text()),
            ))),
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
        let unauthenticated =
            || ApiError(ServiceError::unauthenticated("sign in or send an API token (Authorization: Bearer …)"));
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

/// One REST route: its method and path, who may call it, and its handler.
/// The router is built from this table, and the route × role test walks it.
pub struct Route {
    pub method: http::Method,
    pub path: &'static str,
    pub access: app::routes::Access,
    pub handler: axum::routing::MethodRouter<WebState>,
}

/// Every REST route under /api/v1.
pub fn table() -> Vec<Route> {
    use app::routes::Access::*;
    use axum::routing::{delete, get, patch, post, put};
    use gantry_domain::policy::Role::*;
    use http::Method;
    let route = |method: Method, path: &'static str, access, handler| Route { method, path, access, handler };
    vec![
        route(Method::POST, "/login", Public, post(access::login)),
        route(Method::POST, "/logout", SignedIn, post(access::logout)),
        route(Method::GET, "/me", SignedIn, get(access::me)),
        route(Method::GET, "/users", Admin, get(access::list_users)),
        route(Method::POST, "/users", Admin, post(access::create_user)),
        route(Method::DELETE, "/users/{id}", Admin, delete(access::delete_user)),
        route(Method::GET, "/teams", SignedIn, get(access::list_teams)),
        route(Method::POST, "/teams", Admin, post(access::create_team)),
        route(Method::DELETE, "/teams/{id}", Admin, delete(access::delete_team)),
        route(Method::GET, "/teams/{id}/members", Team(Viewer), get(access::members)),
        route(Method::PUT, "/teams/{id}/members/{username}", Team(TeamAdmin), put(access::set_member)),
        route(Method::DELETE, "/teams/{id}/members/{username}", Team(TeamAdmin), delete(access::remove_member)),
        route(Method::GET, "/teams/{id}/environments", Team(Viewer), get(access::environments)),
        route(Method::PUT, "/teams/{id}/environments", Team(TeamAdmin), put(access::set_environments)),
        route(Method::GET, "/teams/{id}/budget", Team(Viewer), get(costs::budget)),
        route(Method::PUT, "/teams/{id}/budget", Team(TeamAdmin), put(costs::set_budget)),
        route(Method::DELETE, "/teams/{id}/budget", Team(TeamAdmin), delete(costs::clear_budget)),
        route(Method::GET, "/prices", SignedIn, get(costs::prices)),
        route(Method::PUT, "/prices/{model}/{capacity_type}", Admin, put(costs::set_price)),
        route(Method::DELETE, "/prices/{model}/{capacity_type}", Admin, delete(costs::delete_price)),
        route(Method::GET, "/namespaces", SignedIn, get(access::namespaces)),
        route(Method::POST, "/namespaces", Admin, post(access::map_namespace)),
        route(Method::DELETE, "/namespaces/{cluster}/{namespace}", Admin, delete(access::unmap_namespace)),
        route(Method::GET, "/tokens", SignedIn, get(access::list_tokens)),
        route(Method::POST, "/tokens", SignedIn, post(access::create_token)),
        route(Method::DELETE, "/tokens/{id}", SignedIn, delete(access::revoke_token)),
        route(Method::GET, "/audit", AnyTeamAdmin, get(access::audit)),
        route(Method::GET, "/audit.csv", AnyTeamAdmin, get(access::audit_csv)),
        route(Method::GET, "/overview", SignedIn, get(fleet::overview)),
        route(Method::GET, "/clusters", SignedIn, get(fleet::clusters)),
        route(Method::POST, "/clusters", Admin, post(fleet::add_cluster)),
        route(Method::DELETE, "/clusters/{cluster}", Admin, delete(fleet::remove_cluster)),
        route(Method::GET, "/clusters/{cluster}/nodes", Team(Viewer), get(fleet::nodes)),
        route(Method::GET, "/clusters/{cluster}/nodes/{node}", Team(Viewer), get(fleet::node)),
        route(Method::GET, "/pods", SignedIn, get(fleet::pods)),
        route(Method::GET, "/jobs", SignedIn, get(fleet::jobs)),
        route(Method::GET, "/deployments", SignedIn, get(fleet::deployments)),
        route(Method::GET, "/pending", SignedIn, get(fleet::pending)),
        route(Method::GET, "/quotas", SignedIn, get(fleet::quotas)),
        route(Method::PUT, "/clusters/{cluster}/namespaces/{namespace}/quota", Admin, put(fleet::set_quota)),
        route(Method::POST, "/preview", Team(Viewer), post(workloads::preview)),
        route(
            Method::POST,
            "/clusters/{cluster}/namespaces/{namespace}/deployments",
            Team(Deployer),
            post(workloads::launch),
        ),
        route(
            Method::GET,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}",
            Team(Viewer),
            get(workloads::get_deployment),
        ),
        route(
            Method::PATCH,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}",
            Team(Deployer),
            patch(workloads::update),
        ),
        route(
            Method::DELETE,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}",
            Team(Deployer),
            delete(workloads::delete_deployment),
        ),
        route(
            Method::PUT,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/scale",
            Team(Deployer),
            put(workloads::scale),
        ),
        route(
            Method::PUT,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/autoscale",
            Team(Deployer),
            put(workloads::autoscale),
        ),
        route(
            Method::POST,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/rollback",
            Team(Deployer),
            post(workloads::rollback),
        ),
        route(
            Method::GET,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/history",
            Team(Viewer),
            get(workloads::history),
        ),
        route(
            Method::GET,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/diff",
            Team(Viewer),
            get(workloads::diff),
        ),
        route(
            Method::POST,
            "/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/promote",
            Team(Deployer),
            post(workloads::promote),
        ),
        route(
            Method::POST,
            "/clusters/{cluster}/namespaces/{namespace}/jobs",
            Team(Deployer),
            post(workloads::launch_job),
        ),
        route(
            Method::GET,
            "/clusters/{cluster}/namespaces/{namespace}/jobs/{name}",
            Team(Viewer),
            get(workloads::get_job),
        ),
        route(
            Method::DELETE,
            "/clusters/{cluster}/namespaces/{namespace}/jobs/{name}",
            Team(Deployer),
            delete(workloads::cancel_job),
        ),
        route(
            Method::GET,
            "/clusters/{cluster}/namespaces/{namespace}/pods/{pod}/logs",
            Team(Viewer),
            get(crate::streams::logs),
        ),
        route(Method::GET, "/events", SignedIn, get(crate::streams::events)),
    ]
}

pub fn router() -> axum::Router<WebState> {
    let router = table().into_iter().fold(axum::Router::new(), |router, route| router.route(route.path, route.handler));
    // Unknown API paths answer in the API's error format, not with a page.
    router.fallback(|| async { ApiError(ServiceError::not_found("no such API endpoint")) })
}
