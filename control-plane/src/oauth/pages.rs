//! The HTML pages of the authorization flow, rendered with askama (escaped by default) and
//! served with headers that keep them from being framed, cached or leaking their URL: the
//! Content-Security-Policy allows this origin's stylesheet and nothing else, no script at all,
//! and form submissions to this origin plus the one redirect origin the consent form's answer
//! goes to (Chromium applies `form-action` to the redirect that follows a form POST).

use askama::Template;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::oauth::error::no_store;

/// The sign-in form shown to a visitor without a session.
#[derive(Template)]
#[template(path = "oauth/signin.html")]
pub struct SignIn<'a> {
    pub client_name: &'a str,
    pub redirect_host: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

/// What the owner approves or denies.
#[derive(Template)]
#[template(path = "oauth/consent.html")]
pub struct Consent<'a> {
    pub client_name: &'a str,
    pub client_host: &'a str,
    pub from_document: bool,
    pub redirect_host: &'a str,
    pub server_name: &'a str,
    pub mcp_url: &'a str,
    pub sources: Vec<(String, String)>,
    pub email: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
}

/// A request that cannot be answered with a redirect (unknown client, bad redirect URI...).
#[derive(Template)]
#[template(path = "oauth/error.html")]
pub struct ErrorPage<'a> {
    pub message: &'a str,
}

/// Renders `page` with the pages' security headers; `form_target` is the extra origin the
/// page's form may lead to.
pub fn render(status: StatusCode, page: &impl Template, form_target: Option<&str>) -> Response {
    let html = match page.render() {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(error = %err, "cannot render page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "page error").into_response();
        }
    };
    let mut response = (status, axum::response::Html(html)).into_response();
    secure(&mut response, form_target);
    response
}

/// The security headers of every page of the flow.
pub fn secure(response: &mut Response, form_target: Option<&str>) {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
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
    no_store(response);
}

/// The one stylesheet.
pub async fn stylesheet() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/console.css"),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
