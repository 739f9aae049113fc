//! `/docs`: the Swagger UI viewer of the OpenAPI document (utoipa-swagger-ui, its files
//! vendored and served from here), with the headers of the other pages: a
//! Content-Security-Policy that lets it run only its own files from this origin, no framing,
//! no MIME sniffing, no URL leaks.
//!
//! What the viewer needs, and nothing more: its scripts are files (`swagger-ui-bundle.js`,
//! `swagger-initializer.js`...; the page has no inline script, so none is allowed); its
//! stylesheet embeds `data:` SVG icons; React sets style attributes, hence `'unsafe-inline'`
//! for styles only; it fetches the document and "Try it out" calls the API on this origin.
//! The online validator badge, which would send the document's address to swagger.io, is off.

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    middleware,
    response::Response,
};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::state::AppState;

/// The viewer's policy.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// The headers every response of the viewer carries.
const HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// The viewer at `path`, showing the document served at `document_path`.
pub fn viewer(
    path: &'static str,
    document_path: &'static str,
    document: utoipa::openapi::OpenApi,
) -> Router<AppState> {
    let config = Config::default().validator_url("none");
    let viewer = SwaggerUi::new(path)
        .url(document_path, document)
        .config(config);
    Router::from(viewer).layer(middleware::map_response(secure))
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
