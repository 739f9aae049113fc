//! What every console page shares: the navigation bar, the error page, the confirmation page
//! every destructive action goes through, and the step from an API answer to a page.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;

use crate::{
    console::{api::Reply, items::OrgItem},
    orgs::Role,
    web::{self, Policy},
};

/// The signed-in person's navigation bar (and the sign-out form's token): their
/// organizations for the switcher, the current one, and what their role there lets them reach
/// (a page never links to what the API would refuse them).
#[derive(Debug, Clone)]
pub struct Nav {
    pub email: String,
    pub admin: bool,
    pub csrf: String,
    /// The caller's organizations, the personal one first.
    pub orgs: Vec<OrgItem>,
    /// The organization the servers and sources pages show and create in.
    pub org: OrgItem,
}

impl Nav {
    /// Whether the caller runs the current organization (owner or admin): sources, keys,
    /// usage, members and invitations.
    pub fn manages(&self) -> bool {
        self.org.role >= Role::Admin
    }

    /// The caller's role in organization `id`, when they are in it.
    pub fn role_in(&self, id: uuid::Uuid) -> Option<Role> {
        self.orgs.iter().find(|o| o.id == id).map(|o| o.role)
    }
}

/// Renders a console page, with the cookies the request set.
pub fn show(jar: CookieJar, page: &impl Template) -> Response {
    show_with(jar, StatusCode::OK, page)
}

/// [`show`] with another status (a form shown again with its errors is 422).
pub fn show_with(jar: CookieJar, status: StatusCode, page: &impl Template) -> Response {
    (jar, web::render(status, page, Policy::CONSOLE)).into_response()
}

/// A page that could not be shown: a status and a sentence (or a trip to sign-in).
#[derive(Debug)]
pub struct Fail {
    status: StatusCode,
    message: String,
}

impl Fail {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "console page failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; it has been logged.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "There is nothing here, or it is not yours.",
        )
    }
}

impl From<Reply> for Fail {
    /// The API's refusal, as a page: its status and its sentence. Server errors keep their
    /// cause in the API's log and show a fixed sentence.
    fn from(reply: Reply) -> Self {
        match reply.status {
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => Self::not_found(),
            s if s.is_server_error() => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service cannot answer right now; try again shortly.",
            ),
            s => Self::new(s, reply.message()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    status: u16,
    message: &'a str,
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/signin").into_response();
        }
        let page = ErrorPage {
            nav: None,
            status: self.status.as_u16(),
            message: &self.message,
        };
        web::render(self.status, &page, Policy::CONSOLE)
    }
}

/// "Are you sure?": what will happen, what it touches, and one button that does it.
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub struct Confirm {
    pub nav: Option<Nav>,
    pub title: String,
    pub message: String,
    /// Named consequences (servers that use a source...).
    pub warnings: Vec<String>,
    pub action: String,
    pub button: String,
    pub cancel: String,
    pub error: Option<String>,
}

impl Confirm {
    pub fn new(nav: &Nav, title: impl Into<String>, action: String, cancel: String) -> Self {
        Self {
            nav: Some(nav.clone()),
            title: title.into(),
            message: String::new(),
            warnings: Vec::new(),
            action,
            button: "Delete".into(),
            cancel,
            error: None,
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn button(mut self, button: impl Into<String>) -> Self {
        self.button = button.into();
        self
    }

    pub fn warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }
}

/// 303 after a form that worked (POST, redirect, GET).
pub fn done(jar: CookieJar, to: &str) -> Response {
    (jar, Redirect::to(to)).into_response()
}

/// A path segment from the browser, encoded so it stays one segment when handed to the API.
pub fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
