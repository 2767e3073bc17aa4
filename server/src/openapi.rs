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

/// The error answers an operation can give, each a status with Gantry's one
/// error body (`ErrorBody`), added to every operation of `openapi` from what
/// it takes and who may call it, so that a client (or a schema fuzzer) finds
/// every status it can meet documented. A status an operation declares
/// itself keeps its own description. Public operations (sign-in) are marked
/// as needing no credentials.
///
/// - 400: a path, query or body that does not parse (an operation that takes any);
/// - 401 and 403: not signed in, or not allowed (any but a public operation);
/// - 404: a named thing that does not exist (an operation with path parameters or a body);
/// - 409: a change that conflicts with the current state (a change);
/// - 413: a body over the limit (an operation with a body);
/// - 422: a value that parses but is not allowed (an operation with parameters or a body);
/// - 503: the database is unreachable (every operation).
pub fn document_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            (false, &mut item.get),
            (true, &mut item.post),
            (true, &mut item.put),
            (true, &mut item.patch),
            (true, &mut item.delete),
        ];
        for (changes, operation) in operations {
            let Some(operation) = operation else { continue };
            let public = operation
                .extensions
                .as_ref()
                .and_then(|e| e.get(crate::rest::ACCESS_EXTENSION))
                .and_then(|v| v.as_str())
                .and_then(app::routes::Access::parse)
                == Some(app::routes::Access::Public);
            if public {
                // Callable without credentials: an empty requirement lifts the
                // document's bearer requirement for this operation.
                operation.security = Some(vec![utoipa::openapi::security::SecurityRequirement::default()]);
            }
            let parameters = operation.parameters.as_ref().map_or(&[][..], Vec::as_slice);
            let in_path = parameters.iter().any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path);
            let body = operation.request_body.is_some();
            let statuses = [
                (400, "The path, query or body does not parse", !parameters.is_empty() || body),
                (401, "Not signed in: no session and no valid API token", !public),
                (403, "Signed in, but the caller's role does not allow this", !public),
                (404, "What the request names does not exist, or the caller cannot see it", in_path || body),
                (409, "The change conflicts with the current state", changes),
                (413, "The body is over the size limit", body),
                (422, "A value parses but is not allowed; `fields` says which", !parameters.is_empty() || body),
                (503, "The database is unreachable; try again", true),
            ];
            for (status, description, applies) in statuses {
                if !applies {
                    continue;
                }
                operation.responses.responses.entry(status.to_string()).or_insert_with(|| {
                    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
                    RefOr::T(
                        ResponseBuilder::new().description(description).content("application/json", content).build(),
                    )
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn every_operation_lists_the_errors_it_can_answer_in_the_one_error_shape() {
        let (_, openapi) = crate::rest::api();
        let document: Value = serde_json::to_value(&openapi).unwrap();
        assert!(document["components"]["schemas"]["ErrorBody"].is_object(), "the error body is a named schema");
        let operation = |path: &str, method: &str| &document["paths"][path][method]["responses"];
        let members = operation("/api/v1/teams/{id}/members", "get");
        for status in ["400", "401", "403", "404", "422", "503"] {
            assert_eq!(
                members[status]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                "GET members lists {status}"
            );
        }
        assert!(members["409"].is_null(), "a read conflicts with nothing");
        let overview = operation("/api/v1/overview", "get");
        assert!(overview["404"].is_null() && overview["400"].is_null(), "no parameters: nothing to be bad or missing");
        assert!(operation("/api/v1/teams", "post")["409"].is_object(), "a change can conflict");
        // Sign-in needs no credentials; everything else needs a bearer token.
        assert_eq!(document["paths"]["/api/v1/login"]["post"]["security"], serde_json::json!([{}]));
        assert!(document["paths"]["/api/v1/me"]["get"]["security"].is_null());
        assert_eq!(document["security"], serde_json::json!([{"bearer": []}]));
    }
}
