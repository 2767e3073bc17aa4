//! The OpenAPI document served at /api/openapi.json: its title, description
//! and security scheme. The paths come from each handler's own
//! `#[utoipa::path]` declaration, gathered by `rest::api()`.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gantry API",
        description = "Gantry's REST API. Authenticate with `Authorization: Bearer <token>` (create tokens at /tokens or with `gantry token create`), or with the session cookie from POST /api/v1/login plus the `X-CSRF-Token` header on changes.",
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
