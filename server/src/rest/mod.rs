//! The REST API under /api/v1: the same operations as the UI, for scripts
//! and CI/CD. Every handler takes an [`ApiCaller`] (session cookie or bearer
//! token) and calls the service layer, which authorises and audits.

pub mod access;
pub mod costs;
pub mod fleet;
pub mod sso;
pub mod usage;
pub mod workloads;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use gantry_domain::error::ErrorBody;
use gantry_service::{Caller, Credentials, ErrorKind, ServiceError, WireError};
use http::StatusCode;
use http::request::Parts;
use tower_sessions::Session;

use app::routes::Access;

use crate::web::WebState;

/// Every error the API answers with: Gantry's one error shape,
/// `{"error": {"kind", "message", "detail"?, "fields"?}}`, with the status
/// its kind stands for.
#[derive(Debug)]
pub struct ApiError(pub WireError);

impl ApiError {
    pub fn forbidden(message: &str) -> ApiError {
        ApiError(WireError::forbidden(message))
    }

    fn rejected(status: StatusCode, what: &str, reason: String) -> ApiError {
        let kind = match ErrorKind::from_status(status.as_u16()) {
            ErrorKind::Internal => ErrorKind::BadRequest,
            kind => kind,
        };
        ApiError(WireError::new(kind, format!("{what} is not valid: {reason}")))
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        ApiError(error.into_wire())
    }
}

impl From<WireError> for ApiError {
    fn from(error: WireError) -> ApiError {
        ApiError(error)
    }
}

impl From<gantry_domain::validate::Invalid> for ApiError {
    fn from(error: gantry_domain::validate::Invalid) -> ApiError {
        ApiError(error.into())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::rejected(rejection.status(), "the path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::rejected(rejection.status(), "the query", rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::rejected(rejection.status(), "the request body", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody { error: self.0 })).into_response()
    }
}

pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// A JSON body whose problems (bad syntax, wrong types, too large) come
/// back as a clear 4xx in Gantry's error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

/// Path parameters; a value of the wrong type is a 400 in Gantry's error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters; a value of the wrong type is a 400 in Gantry's error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The authenticated caller of an API request. A state-changing request
/// with a session cookie must carry the session's CSRF token in
/// `X-CSRF-Token`; the service compares it.
pub struct ApiCaller(pub Caller);

fn is_safe(method: &http::Method) -> bool {
    matches!(*method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS)
}

impl FromRequestParts<WebState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, web: &WebState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, web)
            .await
            .map_err(|_| ApiError::from(ServiceError::internal("session layer missing")))?;
        let credentials = Credentials::of(parts, Some(&session));
        let caller = if is_safe(&parts.method) {
            web.app.signed_in(&credentials).await?
        } else {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
            web.app.acting_caller(&credentials, sent).await?
        };
        Ok(ApiCaller(caller))
    }
}

/// A REST route as its handler's `#[utoipa::path]` declares it: method,
/// path, and who may call it (the `x-gantry-access` extension). The router,
/// the OpenAPI document and the route × role test all come from these
/// declarations, so a route cannot be served without an access rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredRoute {
    pub method: http::Method,
    pub path: String,
    pub access: Access,
}

/// The OpenAPI extension that carries a route's access rule.
pub const ACCESS_EXTENSION: &str = "x-gantry-access";

/// The REST API under /api/v1: every handler, registered from its own
/// declaration, and the OpenAPI document those declarations make. Unknown
/// API paths, and anything the framework answers by itself, answer in
/// Gantry's error shape.
pub fn api() -> (axum::Router<WebState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, openapi) = OpenApiRouter::<WebState>::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(access::login))
        .routes(routes!(access::logout))
        .routes(routes!(access::me))
        .routes(routes!(access::list_users))
        .routes(routes!(access::create_user))
        .routes(routes!(access::delete_user))
        .routes(routes!(access::list_teams))
        .routes(routes!(access::create_team))
        .routes(routes!(access::delete_team))
        .routes(routes!(access::members))
        .routes(routes!(access::set_member))
        .routes(routes!(access::remove_member))
        .routes(routes!(sso::overview))
        .routes(routes!(sso::set_admin_group))
        .routes(routes!(sso::remove_admin_group))
        .routes(routes!(sso::team_mappings))
        .routes(routes!(sso::set_team_mapping))
        .routes(routes!(sso::remove_team_mapping))
        .routes(routes!(access::environments))
        .routes(routes!(access::set_environments))
        .routes(routes!(costs::budget))
        .routes(routes!(costs::set_budget))
        .routes(routes!(costs::clear_budget))
        .routes(routes!(costs::prices))
        .routes(routes!(costs::set_price))
        .routes(routes!(costs::delete_price))
        .routes(routes!(access::namespaces))
        .routes(routes!(access::map_namespace))
        .routes(routes!(access::unmap_namespace))
        .routes(routes!(access::list_tokens))
        .routes(routes!(access::create_token))
        .routes(routes!(access::revoke_token))
        .routes(routes!(access::audit))
        .routes(routes!(access::audit_csv))
        .routes(routes!(fleet::overview))
        .routes(routes!(fleet::clusters))
        .routes(routes!(fleet::add_cluster))
        .routes(routes!(fleet::remove_cluster))
        .routes(routes!(fleet::nodes))
        .routes(routes!(fleet::autoscaling))
        .routes(routes!(fleet::node))
        .routes(routes!(fleet::pods))
        .routes(routes!(fleet::jobs))
        .routes(routes!(fleet::deployments))
        .routes(routes!(fleet::pending))
        .routes(routes!(fleet::quotas))
        .routes(routes!(fleet::set_quota))
        .routes(routes!(workloads::preview))
        .routes(routes!(workloads::launch))
        .routes(routes!(workloads::get_deployment))
        .routes(routes!(workloads::update))
        .routes(routes!(workloads::delete_deployment))
        .routes(routes!(workloads::scale))
        .routes(routes!(workloads::autoscale))
        .routes(routes!(workloads::rollback))
        .routes(routes!(workloads::history))
        .routes(routes!(workloads::diff))
        .routes(routes!(workloads::promote))
        .routes(routes!(workloads::launch_job))
        .routes(routes!(workloads::get_job))
        .routes(routes!(workloads::cancel_job))
        .routes(routes!(crate::streams::logs))
        .routes(routes!(crate::streams::events))
        .routes(routes!(usage::allocation))
        .routes(routes!(usage::allocation_csv))
        .routes(routes!(usage::series))
        .routes(routes!(usage::price_history))
        .routes(routes!(usage::prices_csv))
        .routes(routes!(usage::import_prices))
        .routes(routes!(usage::set_cluster_price))
        .routes(routes!(usage::clear_cluster_price))
        .routes(routes!(usage::prometheus))
        .routes(routes!(usage::set_prometheus))
        .routes(routes!(usage::remove_prometheus))
        .routes(routes!(usage::set_webhook))
        .routes(routes!(usage::clear_webhook))
        .split_for_parts();
    let mut openapi = openapi;
    crate::openapi::document_errors(&mut openapi);
    let router = router
        .route(
            "/api/v1/{*rest}",
            axum::routing::any(|| async { ApiError(WireError::not_found("no such API endpoint")) }),
        )
        .layer(axum::middleware::map_response(in_error_shape));
    (router, openapi)
}

/// Every declared route with its access rule; an error names a route whose
/// declaration lacks a valid `x-gantry-access`.
pub fn declared(openapi: &utoipa::openapi::OpenApi) -> Result<Vec<DeclaredRoute>, String> {
    let mut routes = Vec::new();
    for (path, item) in &openapi.paths.paths {
        let operations = [
            (http::Method::GET, &item.get),
            (http::Method::POST, &item.post),
            (http::Method::PUT, &item.put),
            (http::Method::PATCH, &item.patch),
            (http::Method::DELETE, &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let access = operation
                .extensions
                .as_ref()
                .and_then(|e| e.get(ACCESS_EXTENSION))
                .and_then(|v| v.as_str())
                .and_then(Access::parse)
                .ok_or_else(|| format!("{method} {path} declares no valid {ACCESS_EXTENSION}"))?;
            routes.push(DeclaredRoute { method, path: path.clone(), access });
        }
    }
    Ok(routes)
}

/// Rewrites an error the framework answered by itself (405 for a method a
/// path does not have, 413 for a body over the limit, …) into Gantry's error
/// shape. Gantry's own errors are JSON already and pass unchanged.
async fn in_error_shape(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let kind = ErrorKind::from_status(status.as_u16());
    let message = match kind {
        ErrorKind::MethodNotAllowed => "this path does not take that method".to_string(),
        ErrorKind::TooLarge => "the request body is too large".to_string(),
        _ => status.canonical_reason().unwrap_or("the request was refused").to_lowercase(),
    };
    let mut shaped = ApiError(WireError::new(kind, message)).into_response();
    *shaped.status_mut() = status;
    if let Some(allow) = response.headers().get(http::header::ALLOW) {
        shaped.headers_mut().insert(http::header::ALLOW, allow.clone());
    }
    shaped
}
