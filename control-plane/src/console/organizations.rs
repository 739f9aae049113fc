//! Organizations in the console: the caller's organizations (what the switcher in the
//! navigation lists), the page that lists them with the caller's role in each, and creating a
//! team organization. Its members and invitations are in [`super::members`] and
//! [`super::invitations`].

use askama::Template;
use axum::{
    http::{Method, StatusCode},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    console::{
        api::{Api, Caller},
        pages::{Fail, Nav, done, show, show_with},
        session::{Form, Session},
    },
    orgs::Role,
};

/// An organization as the API shows it to one of its members.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgItem {
    pub id: Uuid,
    pub name: String,
    pub slug: Option<String>,
    pub personal: bool,
    /// The caller's role in it.
    pub role: Role,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

impl OrgItem {
    /// How the switcher and lists name it.
    pub fn label(&self) -> String {
        if self.personal {
            "Personal".to_owned()
        } else {
            self.name.clone()
        }
    }

    /// The caller runs it (owner or admin).
    pub fn manages(&self) -> bool {
        self.role >= Role::Admin
    }

    pub fn role_name(&self) -> &'static str {
        self.role.as_str()
    }
}

#[derive(Deserialize)]
struct OrgList {
    items: Vec<OrgItem>,
}

/// The caller's organizations, the personal one first (the API's order).
pub async fn mine(api: &Api, caller: &Caller) -> Result<Vec<OrgItem>, Fail> {
    let list: OrgList = api.get(caller, "/organizations").await.parse()?;
    Ok(list.items)
}

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
