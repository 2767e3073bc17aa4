//! Sign-in, the caller, users, teams, namespaces, environments, tokens and
//! the audit log.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gantry_domain::error::ErrorBody;
use gantry_domain::records::{AuditQuery, AuditRecord, Environment, Member, NamespaceMapping, Team, TokenRecord, User};
use gantry_domain::view::Me;
use gantry_service::{ClientAddress, TokenRequest};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use utoipa::ToSchema;

use super::{ApiCaller, ApiError, ApiResult, Body, Path, Query};
use crate::web::WebState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub(super) fn done() -> Json<Done> {
    Json(Done { ok: true, message: None })
}

/// Signs in and sets the session cookie. The reply carries the CSRF token
/// that cookie-authenticated changes must send as `X-CSRF-Token`.
#[utoipa::path(post, path = "/api/v1/login", request_body = LoginRequest, responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)), extensions(("x-gantry-access" = json!("public"))))]
pub async fn login(
    State(web): State<WebState>,
    session: Session,
    address: Option<axum::Extension<ClientAddress>>,
    Body(request): Body<LoginRequest>,
) -> ApiResult<Me> {
    let source = address.and_then(|a| a.0.0.clone());
    let (caller, csrf) = web.app.sign_in(&session, &request.username, &request.password, source.as_deref()).await?;
    Ok(Json(caller.me(csrf)))
}

/// Ends the session on the server.
#[utoipa::path(post, path = "/api/v1/logout", responses((status = 200, body = Done), (status = 401, body = ErrorBody)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn logout(State(web): State<WebState>, ApiCaller(caller): ApiCaller, session: Session) -> ApiResult<Done> {
    web.app.sign_out(&caller, &session).await?;
    Ok(done())
}

/// The caller, with their teams and roles.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = ErrorBody)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn me(State(web): State<WebState>, ApiCaller(caller): ApiCaller, session: Session) -> ApiResult<Me> {
    let csrf = web.app.csrf_token(&caller, &session).await;
    Ok(Json(caller.me(csrf)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub global_admin: bool,
}

#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn list_users(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<User>> {
    Ok(Json(web.app.list_users(&caller).await?))
}

#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser, responses((status = 200, body = User), (status = 422, body = ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn create_user(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(new): Body<NewUser>,
) -> ApiResult<User> {
    Ok(Json(web.app.create_user(&caller, &new.username, &new.password, new.global_admin).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", params(("id" = i64, Path, example = 1)), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn delete_user(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.delete_user(&caller, id).await?;
    Ok(done())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTeam {
    pub name: String,
}

#[utoipa::path(get, path = "/api/v1/teams", responses((status = 200, body = Vec<Team>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn list_teams(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<Team>> {
    Ok(Json(web.app.list_teams(&caller).await?))
}

#[utoipa::path(post, path = "/api/v1/teams", request_body = NewTeam, responses((status = 200, body = Team)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn create_team(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(new): Body<NewTeam>,
) -> ApiResult<Team> {
    Ok(Json(web.app.create_team(&caller, &new.name).await?))
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}", params(("id" = i64, Path, example = 1)), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn delete_team(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.delete_team(&caller, id).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/api/v1/teams/{id}/members", params(("id" = i64, Path, example = 1)), responses((status = 200, body = Vec<Member>)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn members(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Vec<Member>> {
    let (_, members) = web.app.team_members(&caller, id).await?;
    Ok(Json(members))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleRequest {
    /// viewer, deployer or team_admin
    pub role: String,
}

#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{username}", params(("id" = i64, Path, example = 1), ("username" = String, Path, example = "alice")), request_body = RoleRequest, responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn set_member(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((id, username)): Path<(i64, String)>,
    Body(request): Body<RoleRequest>,
) -> ApiResult<Done> {
    web.app.set_member(&caller, id, &username, &request.role).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{username}", params(("id" = i64, Path, example = 1), ("username" = String, Path, example = "alice")), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn remove_member(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((id, username)): Path<(i64, String)>,
) -> ApiResult<Done> {
    web.app.remove_member_named(&caller, id, &username).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/api/v1/teams/{id}/environments", params(("id" = i64, Path, example = 1)), responses((status = 200, body = Vec<Environment>)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn environments(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Vec<Environment>> {
    Ok(Json(web.app.environments(&caller, id).await?))
}

#[utoipa::path(put, path = "/api/v1/teams/{id}/environments", params(("id" = i64, Path, example = 1)), request_body = Vec<Environment>, responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn set_environments(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
    Body(envs): Body<Vec<Environment>>,
) -> ApiResult<Done> {
    web.app.set_environments(&caller, id, envs).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/api/v1/namespaces", responses((status = 200, body = Vec<NamespaceMapping>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn namespaces(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<NamespaceMapping>> {
    Ok(Json(web.app.namespace_mappings(&caller).await?))
}

#[utoipa::path(post, path = "/api/v1/namespaces", request_body = NamespaceMapping, responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn map_namespace(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(m): Body<NamespaceMapping>,
) -> ApiResult<Done> {
    web.app.map_namespace(&caller, &m.cluster, &m.namespace, m.team_id).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/api/v1/namespaces/{cluster}/{namespace}", params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision")), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn unmap_namespace(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace)): Path<(String, String)>,
) -> ApiResult<Done> {
    web.app.unmap_namespace(&caller, &cluster, &namespace).await?;
    Ok(done())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    pub name: String,
    /// viewer, deployer or team_admin; defaults to your best role.
    pub max_role: Option<String>,
    pub teams: Option<Vec<i64>>,
    #[serde(default)]
    pub admin: bool,
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTokenOut {
    pub id: i64,
    pub name: String,
    /// Shown once; only its hash is stored.
    pub token: String,
    pub expires_at: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/tokens", responses((status = 200, body = Vec<TokenRecord>)), extensions(("x-gantry-access" = json!("person"))))]
pub async fn list_tokens(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<TokenRecord>> {
    Ok(Json(web.app.my_tokens(&caller).await?))
}

#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, responses((status = 200, body = CreatedTokenOut)), extensions(("x-gantry-access" = json!("person"))))]
pub async fn create_token(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(new): Body<NewToken>,
) -> ApiResult<CreatedTokenOut> {
    let request = TokenRequest {
        name: new.name,
        max_role: new.max_role,
        teams: new.teams,
        admin: new.admin,
        expires_in_days: new.expires_in_days,
        expires_in_seconds: None,
    };
    let created = web.app.create_token(&caller, &request).await?;
    Ok(Json(CreatedTokenOut {
        id: created.id,
        name: created.name,
        token: created.secret,
        expires_at: created.expires_at,
    }))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", params(("id" = i64, Path, example = 1)), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("person"))))]
pub async fn revoke_token(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.revoke_token(&caller, id).await?;
    Ok(done())
}

/// The audit log, newest first, filtered; global admins see all of it, team admins their teams' part.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), responses((status = 200, body = Vec<AuditRecord>)), extensions(("x-gantry-access" = json!("any_team_admin"))))]
pub async fn audit(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Vec<AuditRecord>> {
    let query = AuditQuery { limit: Some(query.limit.unwrap_or(200)), ..query };
    Ok(Json(web.app.audit_log(&caller, &query).await?))
}

/// The same records as CSV, for a spreadsheet (up to 100,000).
#[utoipa::path(get, path = "/api/v1/audit.csv", params(AuditQuery), responses((status = 200, content_type = "text/csv", body = String)), extensions(("x-gantry-access" = json!("any_team_admin"))))]
pub async fn audit_csv(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let query = AuditQuery { limit: Some(query.limit.unwrap_or(100_000)), ..query };
    let records = web.app.audit_log(&caller, &query).await?;
    Ok((
        [
            (http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (http::header::CONTENT_DISPOSITION, "attachment; filename=\"gantry-audit.csv\""),
        ],
        gantry_service::to_csv(&records),
    )
        .into_response())
}
