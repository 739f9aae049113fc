//! Organizations in the console: the caller's organizations (what the switcher in the
//! navigation lists), the page that lists them with the caller's role in each, and creating a
//! team organization. Its members and invitations are in [`super::members`] and
//! [`super::invitations`].

use askama::Template;
use axum::{
    http::{Method, StatusCode},
    response::Response,
};
use serde_json::json;

use crate::console::{
    items::OrgItem,
    pages::{Fail, Nav, done, show, show_with},
    session::{Form, Session},
};

#[derive(Template)]
#[template(path = "console/organizations.html")]
struct List {
    nav: Option<Nav>,
    orgs: Vec<OrgItem>,
    name: String,
    slug: String,
    name_error: Option<String>,
    slug_error: Option<String>,
    error: Option<String>,
}

impl List {
    fn of(session: &Session) -> Self {
        Self {
            nav: Some(session.nav.clone()),
            orgs: session.nav.orgs.clone(),
            name: String::new(),
            slug: String::new(),
            name_error: None,
            slug_error: None,
            error: None,
        }
    }
}

/// `GET /organizations`: the caller's organizations and a form to create a team one.
pub async fn list(session: Session) -> Response {
    let page = List::of(&session);
    show(session.jar, &page)
}

/// `POST /organizations`: a team organization, with the caller as its owner; its page next,
/// where the first invitations are made.
pub async fn create(mut session: Session, form: Form) -> Result<Response, Fail> {
    let body = json!({"name": form.get("name"), "slug": form.get("slug")});
    let reply = session
        .api
        .call(&session.caller, Method::POST, "/organizations", Some(&body))
        .await;
    if reply.is_success() {
        let org: OrgItem = reply.parse()?;
        session.nav.orgs.push(org.clone());
        session.enter(org.id);
        return Ok(done(session.jar, &format!("/organizations/{}", org.id)));
    }
    if !matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
    ) {
        return Err(reply.into());
    }
    let errors = reply.field_errors();
    let mut page = List::of(&session);
    page.name = form.get("name").to_owned();
    page.slug = form.get("slug").to_owned();
    page.name_error = errors.get("name").cloned();
    page.slug_error = errors.get("slug").cloned().or_else(|| {
        (reply.code() == "slug_taken").then(|| "is taken by another organization".to_owned())
    });
    page.error = Some(reply.message());
    Ok(show_with(session.jar, reply.status, &page))
}
