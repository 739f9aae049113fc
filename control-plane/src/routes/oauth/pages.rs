//! The HTML pages of the authorization flow, rendered by the web layer (`crate::web`) with
//! headers that keep them from being framed, cached or leaking their URL: the
//! Content-Security-Policy allows this origin's stylesheet and nothing else, no script at all,
//! and form submissions to this origin plus the one redirect origin the consent form's answer
//! goes to (Chromium applies `form-action` to the redirect that follows a form POST).

use askama::Template;
use axum::{http::StatusCode, response::Response};

use crate::web::{self, Policy};

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
    /// A team organization's name (none for a personal server).
    pub organization_name: Option<&'a str>,
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

/// Renders `page` with the web layer's security headers and no script; `form_target` is the
/// extra origin the page's form may lead to.
pub fn render(status: StatusCode, page: &impl Template, form_target: Option<&str>) -> Response {
    web::render(
        status,
        page,
        Policy {
            script: false,
            form_target,
        },
    )
}

/// The security headers of every page of the flow.
pub fn secure(response: &mut Response, form_target: Option<&str>) {
    web::secure(
        response,
        Policy {
            script: false,
            form_target,
        },
    );
}
