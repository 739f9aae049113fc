//! `/docs`: the Swagger UI viewer of the OpenAPI document (utoipa-swagger-ui, its files
//! vendored and served from here), with the headers of the other pages: a
//! Content-Security-Policy that lets it run only its own files from this origin, no framing,
//! no MIME sniffing, no URL leaks.
//!
//! What the viewer needs, and nothing more: its scripts are files (`swagger-ui-bundle.js`,
//! `swagger-initializer.js`...; the page has no inline script, so none is allowed); its
//! stylesheet, plus the one `<style>` element the bundle adds, allowed by its hash (no
//! `'unsafe-inline'`); `data:` images (the stylesheet's SVG icons); it fetches the document
//! and "Try it out" calls the API on this origin. The online validator badge, which would
//! send the document's address to swagger.io, is off. The browser test renders the viewer in
//! Chromium and fails on any violation, so an upgrade of the vendored Swagger UI that changes
//! that `<style>` shows up there.

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    middleware,
    response::Response,
};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::state::AppState;

/// The viewer's policy; the style hash is that of the `<style>` element Swagger UI 5.32 adds.
const CSP: &str = "default-src 'none'; script-src 'self'; \
                   style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
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
