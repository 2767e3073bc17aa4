//! Single sign-on's settings and which provider groups give which roles.

use axum::Json;
use axum::extract::State;
use gantry_domain::error::ErrorBody;
use gantry_domain::sso::{GroupMapping, SsoOverview};

use super::access::{Done, RoleRequest, done};
use super::{ApiCaller, ApiResult, Body, Path};
use crate::web::WebState;

/// The effective single sign-on configuration (never the client secret),
/// whether the provider answers now, and every group mapping.
#[utoipa::path(get, path = "/api/v1/sso", responses((status = 200, body = SsoOverview), (status = 403, body = ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn overview(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<SsoOverview> {
    Ok(Json(web.app.sso_overview(&caller).await?))
}

/// Members of the group are global admins, from their next sign-in on.
#[utoipa::path(put, path = "/api/v1/sso/admin-groups/{group}", params(("group" = String, Path, example = "platform-admins")), responses((status = 200, body = GroupMapping), (status = 422, body = ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn set_admin_group(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(group): Path<String>,
) -> ApiResult<GroupMapping> {
    Ok(Json(web.app.set_group_mapping(&caller, None, &group, "global_admin").await?))
}

#[utoipa::path(delete, path = "/api/v1/sso/admin-groups/{group}", params(("group" = String, Path, example = "platform-admins")), responses((status = 200, body = Done), (status = 404, body = ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn remove_admin_group(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(group): Path<String>,
) -> ApiResult<Done> {
    web.app.remove_group_mapping(&caller, None, &group).await?;
    Ok(done())
}

/// The provider groups that give roles in this team.
#[utoipa::path(get, path = "/api/v1/teams/{id}/group-mappings", params(("id" = i64, Path, example = 1)), responses((status = 200, body = Vec<GroupMapping>), (status = 403, body = ErrorBody)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn team_mappings(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Vec<GroupMapping>> {
    Ok(Json(web.app.team_group_mappings(&caller, id).await?))
}

/// Members of the group get this role in the team, from their next sign-in on.
#[utoipa::path(put, path = "/api/v1/teams/{id}/group-mappings/{group}", params(("id" = i64, Path, example = 1), ("group" = String, Path, example = "ml-vision-deployers")), request_body = RoleRequest, responses((status = 200, body = GroupMapping), (status = 422, body = ErrorBody)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn set_team_mapping(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((id, group)): Path<(i64, String)>,
    Body(request): Body<RoleRequest>,
) -> ApiResult<GroupMapping> {
    Ok(Json(web.app.set_group_mapping(&caller, Some(id), &group, &request.role).await?))
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}/group-mappings/{group}", params(("id" = i64, Path, example = 1), ("group" = String, Path, example = "ml-vision-deployers")), responses((status = 200, body = Done), (status = 404, body = ErrorBody)), extensions(("x-gantry-access" = json!("team:team_admin"))))]
pub async fn remove_team_mapping(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((id, group)): Path<(i64, String)>,
) -> ApiResult<Done> {
    web.app.remove_group_mapping(&caller, Some(id), &group).await?;
    Ok(done())
}
