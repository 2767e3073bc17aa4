//! Sign-in, the caller, users, teams, namespaces, environments, tokens and
//! the audit log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use gantry_domain::view::{Me, TeamRole};
use gantry_service::{ServiceError, TokenRequest};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use utoipa::{IntoParams, ToSchema};

use app::api::ssr::{ClientAddress, SESSION_CSRF, SESSION_LOGIN_AT, SESSION_USER};

use super::{ApiCaller, ApiError, ApiResult, Body};
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

fn done() -> Json<Done> {
    Json(Done { ok: true, message: None })
}

fn me_of(caller: &gantry_service::Caller, csrf: String) -> Me {
    Me {
        id: caller.principal.user_id,
        username: caller.principal.username.clone(),
        global_admin: caller.principal.global_admin,
        teams: caller
            .principal
            .memberships
            .iter()
            .map(|m| TeamRole { team_id: m.team_id, team: m.team_name.clone(), role: m.role })
            .collect(),
        csrf,
    }
}

/// Signs in and sets the session cookie. The reply carries the CSRF token
/// that cookie-authenticated changes must send as `X-CSRF-Token`.
#[utoipa::path(post, path = "/api/v1/login", request_body = LoginRequest, responses((status = 200, body = Me), (status = 401, body = super::ErrorBody), (status = 429, body = super::ErrorBody)))]
pub async fn login(
    State(web): State<WebState>,
    session: Session,
    address: Option<axum::Extension<ClientAddress>>,
    Body(request): Body<LoginRequest>,
) -> ApiResult<Me> {
    let source = address.and_then(|a| a.0.0.clone());
    let principal = web.app.login(request.username.trim(), &request.password, source.as_deref()).await?;
    session.cycle_id().await.map_err(|e| ApiError(ServiceError::internal(e)))?;
    let csrf = hex::encode(rand::random::<[u8; 32]>());
    session.insert(SESSION_USER, principal.user_id).await.map_err(|e| ApiError(ServiceError::internal(e)))?;
    session.insert(SESSION_CSRF, csrf.clone()).await.map_err(|e| ApiError(ServiceError::internal(e)))?;
    session.insert(SESSION_LOGIN_AT, gantry_store::now_ms()).await.map_err(|e| ApiError(ServiceError::internal(e)))?;
    let caller = gantry_service::Caller { principal, via: gantry_service::Via::Session, source };
    Ok(Json(me_of(&caller, csrf)))
}

/// Ends the session on the server.
#[utoipa::path(post, path = "/api/v1/logout", responses((status = 200, body = Done), (status = 401, body = super::ErrorBody)))]
pub async fn logout(State(web): State<WebState>, ApiCaller(caller): ApiCaller, session: Session) -> ApiResult<Done> {
    web.app.audit_logout(&caller).await;
    session.flush().await.map_err(|e| ApiError(ServiceError::internal(e)))?;
    Ok(done())
}

/// The caller, with their teams and roles.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = super::ErrorBody)))]
pub async fn me(ApiCaller(caller): ApiCaller, session: Session) -> ApiResult<Me> {
    let csrf = match caller.via {
        gantry_service::Via::Session => session.get::<String>(SESSION_CSRF).await.ok().flatten().unwrap_or_default(),
        _ => String::new(),
    };
    Ok(Json(me_of(&caller, csrf)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub global_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub global_admin: bool,
}

#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = Vec<UserOut>), (status = 403, body = super::ErrorBody)))]
pub async fn list_users(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<UserOut>> {
    let users = web.app.list_users(&caller).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserOut { id: u.id, username: u.username, global_admin: u.global_admin, created_at: u.created_at })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser, responses((status = 200, body = UserOut), (status = 422, body = super::ErrorBody)))]
pub async fn create_user(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(new): Body<NewUser>,
) -> ApiResult<UserOut> {
    let u = web.app.create_user(&caller, &new.username, &new.password, new.global_admin).await?;
    Ok(Json(UserOut { id: u.id, username: u.username, global_admin: u.global_admin, created_at: u.created_at }))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", params(("id" = i64, Path)), responses((status = 200, body = Done)))]
pub async fn delete_user(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.delete_user(&caller, id).await?;
    Ok(done())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamOut {
    pub id: i64,
    pub name: String,
    pub members: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTeam {
    pub name: String,
}

#[utoipa::path(get, path = "/api/v1/teams", responses((status = 200, body = Vec<TeamOut>)))]
pub async fn list_teams(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<TeamOut>> {
    let teams = web.app.list_teams(&caller).await?;
    Ok(Json(teams.into_iter().map(|t| TeamOut { id: t.id, name: t.name, members: t.members }).collect()))
}

#[utoipa::path(post, path = "/api/v1/teams", request_body = NewTeam, responses((status = 200, body = TeamOut)))]
pub async fn create_team(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(new): Body<NewTeam>,
) -> ApiResult<TeamOut> {
    let t = web.app.create_team(&caller, &new.name).await?;
    Ok(Json(TeamOut { id: t.id, name: t.name, members: t.members }))
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}", params(("id" = i64, Path)), responses((status = 200, body = Done)))]
pub async fn delete_team(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.delete_team(&caller, id).await?;
    Ok(done())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub user_id: i64,
    pub username: String,
    pub role: gantry_domain::policy::Role,
}

#[utoipa::path(get, path = "/api/v1/teams/{id}/members", params(("id" = i64, Path)), responses((status = 200, body = Vec<MemberOut>)))]
pub async fn members(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Vec<MemberOut>> {
    let (_, members) = web.app.team_members(&caller, id).await?;
    Ok(Json(
        members.into_iter().map(|m| MemberOut { user_id: m.user_id, username: m.username, role: m.role }).collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleRequest {
    /// viewer, deployer or team_admin
    pub role: String,
}

#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{username}", params(("id" = i64, Path), ("username" = String, Path)), request_body = RoleRequest, responses((status = 200, body = Done)))]
pub async fn set_member(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((id, username)): Path<(i64, String)>,
    Body(request): Body<RoleRequest>,
) -> ApiResult<Done> {
    web.app.set_member(&caller, id, &username, &request.role).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{username}", params(("id" = i64, Path), ("username" = String, Path)), responses((status = 200, body = Done)))]
pub async fn remove_member(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((id, username)): Path<(i64, String)>,
) -> ApiResult<Done> {
    let (_, members) = web.app.team_members(&caller, id).await?;
    let member = members
        .into_iter()
        .find(|m| m.username == username)
        .ok_or_else(|| ApiError(ServiceError::not_found(format!("{username} is not a member"))))?;
    web.app.remove_member(&caller, id, member.user_id).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/api/v1/teams/{id}/environments", params(("id" = i64, Path)), responses((status = 200, body = Vec<EnvironmentIo>)))]
pub async fn environments(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Vec<EnvironmentIo>> {
    let envs = web.app.environments(&caller, id).await?;
    Ok(Json(
        envs.into_iter()
            .map(|e| EnvironmentIo { name: e.name, cluster: e.cluster, namespace: e.namespace, protected: e.protected })
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentIo {
    pub name: String,
    pub cluster: String,
    pub namespace: String,
    #[serde(default)]
    pub protected: bool,
}

#[utoipa::path(put, path = "/api/v1/teams/{id}/environments", params(("id" = i64, Path)), request_body = Vec<EnvironmentIo>, responses((status = 200, body = Done)))]
pub async fn set_environments(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
    Body(envs): Body<Vec<EnvironmentIo>>,
) -> ApiResult<Done> {
    let envs = envs
        .into_iter()
        .map(|e| gantry_store::Environment {
            name: e.name,
            cluster: e.cluster,
            namespace: e.namespace,
            protected: e.protected,
        })
        .collect();
    web.app.set_environments(&caller, id, envs).await?;
    Ok(done())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NamespaceIo {
    pub cluster: String,
    pub namespace: String,
    pub team_id: i64,
    #[serde(default)]
    pub team: String,
}

#[utoipa::path(get, path = "/api/v1/namespaces", responses((status = 200, body = Vec<NamespaceIo>)))]
pub async fn namespaces(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<NamespaceIo>> {
    let all = web.app.namespace_mappings(&caller).await?;
    Ok(Json(
        all.into_iter()
            .map(|m| NamespaceIo { cluster: m.cluster, namespace: m.namespace, team_id: m.team_id, team: m.team })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/namespaces", request_body = NamespaceIo, responses((status = 200, body = Done)))]
pub async fn map_namespace(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(m): Body<NamespaceIo>,
) -> ApiResult<Done> {
    web.app.map_namespace(&caller, &m.cluster, &m.namespace, m.team_id).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/api/v1/namespaces/{cluster}/{namespace}", params(("cluster" = String, Path), ("namespace" = String, Path)), responses((status = 200, body = Done)))]
pub async fn unmap_namespace(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace)): Path<(String, String)>,
) -> ApiResult<Done> {
    web.app.unmap_namespace(&caller, &cluster, &namespace).await?;
    Ok(done())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub max_role: gantry_domain::policy::Role,
    pub teams: Option<Vec<i64>>,
    pub admin: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
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

#[utoipa::path(get, path = "/api/v1/tokens", responses((status = 200, body = Vec<TokenOut>)))]
pub async fn list_tokens(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<TokenOut>> {
    let tokens = web.app.my_tokens(&caller).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenOut {
                id: t.id,
                name: t.name,
                prefix: t.prefix,
                max_role: t.max_role,
                teams: t.team_ids,
                admin: t.admin,
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_used_at: t.last_used_at,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, responses((status = 200, body = CreatedTokenOut)))]
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

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", params(("id" = i64, Path)), responses((status = 200, body = Done)))]
pub async fn revoke_token(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Done> {
    web.app.revoke_token(&caller, id).await?;
    Ok(done())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact username.
    pub actor: Option<String>,
    /// Team id.
    pub team: Option<i64>,
    /// Exact action, e.g. deployment.scale.
    pub action: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
    pub limit: Option<i64>,
}

impl AuditParams {
    fn filter(self) -> gantry_store::AuditFilter {
        gantry_store::AuditFilter {
            actor: self.actor.filter(|a| !a.is_empty()),
            team_id: self.team,
            action: self.action.filter(|a| !a.is_empty()),
            from: self.from,
            to: self.to,
            limit: self.limit,
            ..Default::default()
        }
    }
}

#[utoipa::path(get, path = "/api/v1/audit", params(AuditParams), responses((status = 200, body = Vec<gantry_store::AuditRecord>)))]
pub async fn audit(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(params): Query<AuditParams>,
) -> ApiResult<Vec<gantry_store::AuditRecord>> {
    Ok(Json(web.app.audit_log(&caller, params.filter()).await?))
}

/// Also accepts the UI's filter form (dates as YYYY-MM-DD and a team name).
#[derive(Debug, Default, Deserialize)]
pub struct CsvParams {
    pub actor: Option<String>,
    pub team: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit.csv", responses((status = 200, content_type = "text/csv", body = String)))]
pub async fn audit_csv(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(params): Query<CsvParams>,
) -> Result<Response, ApiError> {
    let text = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let date = |v: Option<String>| -> Option<i64> {
        let v = text(v)?;
        v.parse::<i64>().ok().or_else(|| app::api::admin::parse_date(&v))
    };
    let team_id = match text(params.team) {
        None => None,
        Some(t) => match t.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                Some(web.app.store.team_by_name(&t).await.map_err(|e| ApiError(e.into()))?.map(|t| t.id).unwrap_or(-1))
            }
        },
    };
    let filter = gantry_store::AuditFilter {
        actor: text(params.actor),
        team_id,
        action: text(params.action),
        from: date(params.from),
        to: date(params.to.clone())
            .map(|t| if params.to.as_deref().is_some_and(|v| v.contains('-')) { t + 86_400_000 } else { t }),
        limit: Some(100_000),
        ..Default::default()
    };
    let records = web.app.audit_log(&caller, filter).await?;
    Ok((
        [
            (http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (http::header::CONTENT_DISPOSITION, "attachment; filename=\"gantry-audit.csv\""),
        ],
        gantry_service::to_csv(&records),
    )
        .into_response())
}
