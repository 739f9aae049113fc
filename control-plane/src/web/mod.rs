//! The HTML side of the control plane, shared by the web console and the OAuth pages:
//! rendering askama templates (escaped by default) with the pages' security headers, and the
//! static assets every page loads from this origin (no CDN, no external font).
//!
//! The Content-Security-Policy allows this origin's stylesheet, and this origin's one script
//! file for the console pages (the OAuth pages run no script at all); never an inline script.

pub mod assets;
pub mod next;
pub mod text;

use askama::Template;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// What a page may load and where its forms may go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'a> {
    /// Allow `/assets/console.js` (and nothing else) to run.
    pub script: bool,
    /// An extra origin a form may lead to (the OAuth consent form's redirect origin).
    pub form_target: Option<&'a str>,
}

impl Policy<'static> {
    /// The console's pages: this origin's script file, forms to this origin.
    pub const CONSOLE: Self = Self {
        script: true,
        form_target: None,
    };
}

/// Renders `page` with the pages' security headers.
pub fn render(status: StatusCode, page: &impl Template, policy: Policy<'_>) -> Response {
    let html = match page.render() {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(error = %err, "cannot render page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "page error").into_response();
        }
    };
    let mut response = (status, axum::response::Html(html)).into_response();
    secure(&mut response, policy);
    response
}

/// The security headers of every page: strict CSP, no framing, no caching, no URL leaks.
pub fn secure(response: &mut Response, policy: Policy<'_>) {
    let form_action = match policy.form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let script = if policy.script {
        "script-src 'self'; connect-src 'self'; "
    } else {
        ""
    };
    let csp = format!(
        "default-src 'none'; {script}style-src 'self'; img-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on the forms' POSTs, which
    // the same-origin check refuses. `same-origin` still never shows the URL to another site.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
