//! The OpenAPI document served at /api/openapi.json.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{rest, streams};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gantry API",
        description = "Gantry's REST API. Authenticate with `Authorization: Bearer <token>` (create tokens at /tokens or with `gantry token create`), or with the session cookie from POST /api/v1/login plus the `X-CSRF-Token` header on changes.",
    ),
    paths(
        rest::access::login,
        rest::access::logout,
        rest::access::me,
        rest::access::list_users,
        rest::access::create_user,
        rest::access::delete_user,
        rest::access::list_teams,
        rest::access::create_team,
        rest::access::delete_team,
        rest::access::members,
        rest::access::set_member,
        rest::access::remove_member,
        rest::access::environments,
        rest::access::set_environments,
        rest::costs::budget,
        rest::costs::set_budget,
        rest::costs::clear_budget,
        rest::costs::prices,
        rest::costs::set_price,
        rest::costs::delete_price,
        rest::access::namespaces,
        rest::access::map_namespace,
        rest::access::unmap_namespace,
        rest::access::list_tokens,
        rest::access::create_token,
        rest::access::revoke_token,
        rest::access::audit,
        rest::access::audit_csv,
        rest::fleet::overview,
        rest::fleet::clusters,
        rest::fleet::add_cluster,
        rest::fleet::remove_cluster,
        rest::fleet::nodes,
        rest::fleet::node,
        rest::fleet::pods,
        rest::fleet::jobs,
        rest::fleet::deployments,
        rest::fleet::pending,
        rest::fleet::quotas,
        rest::fleet::set_quota,
        rest::workloads::preview,
        rest::workloads::launch,
        rest::workloads::get_deployment,
        rest::workloads::update,
        rest::workloads::delete_deployment,
        rest::workloads::scale,
        rest::workloads::autoscale,
        rest::workloads::rollback,
        rest::workloads::history,
        rest::workloads::diff,
        rest::workloads::promote,
        rest::workloads::launch_job,
        rest::workloads::get_job,
        rest::workloads::cancel_job,
        streams::logs,
        streams::events,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".into())
}
