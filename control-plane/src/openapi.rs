//! The OpenAPI document: general information and security schemes here, paths and schemas from
//! the routes themselves (utoipa-axum), so the document cannot drift from the router.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use shared::model::SourceType;

use crate::{error::ErrorBody, session::cookie::SESSION_COOKIE};

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Path of the interactive viewer.
pub const DOCS_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MCP gateway control plane",
        description = "Manage accounts, data sources and MCP servers. Every error has the body \
                       `{\"error\": {\"code\", \"message\"}}`; unknown routes are 404 \
                       `route_not_found`, bodies over the size limit 413 `payload_too_large`.",
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes, &SourceTypes),
    tags(
        (name = "account", description = "Signup, signin, signout and the caller's own account"),
        (name = "sources", description = "An organization's data sources"),
        (name = "mcp-servers", description = "A user's MCP servers and their endpoints"),
        (name = "activity", description = "The activity log: who changed what, when and from where"),
        (name = "admin", description = "Administrator-only routes"),
        (name = "health", description = "Health report and probes"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
    }
}

/// Completes the `sources` tag with the source types, taken from [`SourceType::ALL`] so the
/// list never goes stale.
struct SourceTypes;

impl Modify for SourceTypes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let names: Vec<&str> = SourceType::ALL.iter().map(|t| t.as_str()).collect();
        for tag in openapi.tags.iter_mut().flatten() {
            if tag.name == "sources" {
                tag.description = Some(format!(
                    "An organization's data sources: {}",
                    names.join(", ")
                ));
            }
        }
    }
}
