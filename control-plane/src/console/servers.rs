//! MCP servers in the console: the list (deleted ones too, with restore), creation with a
//! source picker, and reading one server and its connected agents for the pages that show
//! one ([`super::server`], [`super::server_access`], [`super::connections`]).

use askama::Template;
use axum::{
    extract::Query,
    http::{Method, StatusCode},
    response::Response,
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::console::{
    items::{GrantItem, Grants, ServerItem},
    pages::{Fail, Nav, done, segment, show, show_with},
    session::{Form, Session},
    sources::{self, SourceItem},
};

/// Servers per page of the list.
const PAGE: i64 = 50;

#[derive(Deserialize)]
struct ServerPage {
    items: Vec<ServerItem>,
    total: i64,
}

#[derive(Deserialize)]
pub struct ListQuery {
    offset: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/servers.html")]
struct List {
    nav: Option<Nav>,
    servers: Vec<ServerItem>,
    /// Owners and admins: new server, sources, deleted servers.
    manages: bool,
    total: i64,
    offset: i64,
    previous: Option<i64>,
    next: Option<i64>,
}

/// `GET /servers`: the current organization's, newest first, a page at a time, soft-deleted
/// ones included for its owners and admins (a member sees the servers they may connect to).
pub async fn list(session: Session, Query(query): Query<ListQuery>) -> Result<Response, Fail> {
    let offset = query.offset.unwrap_or(0).max(0);
    let path = format!(
        "/mcp-servers?organization_id={}&include_deleted={}&limit={PAGE}&offset={offset}",
        session.nav.org.id,
        session.nav.manages()
    );
    let page: ServerPage = session.api.get(&session.caller, &path).await.parse()?;
    let list = List {
        nav: Some(session.nav.clone()),
        manages: session.nav.manages(),
        previous: (offset > 0).then(|| (offset - PAGE).max(0)),
        next: (offset + PAGE < page.total).then_some(offset + PAGE),
        servers: page.items,
        total: page.total,
        offset,
    };
    Ok(show(session.jar, &list))
}

#[derive(Template)]
#[template(path = "console/server_new.html")]
struct NewServer {
    nav: Option<Nav>,
    sources: Vec<SourceItem>,
    name: String,
    chosen: Vec<Uuid>,
    name_error: Option<String>,
    sources_error: Option<String>,
    error: Option<String>,
}

impl NewServer {
    fn is_chosen(&self, id: &Uuid) -> bool {
        self.chosen.contains(id)
    }
}

/// `GET /servers/new`: in the current organization, with its sources.
pub async fn new_page(session: Session) -> Result<Response, Fail> {
    let sources = sources::all(&session, session.nav.org.id).await?.items;
    let page = NewServer {
        nav: Some(session.nav.clone()),
        sources,
        name: String::new(),
        chosen: Vec::new(),
        name_error: None,
        sources_error: None,
        error: None,
    };
    Ok(show(session.jar, &page))
}

/// The checked source ids; a malformed one is kept out (the API would refuse it anyway).
fn chosen(form: &Form) -> Vec<Uuid> {
    form.all("source_ids")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// `POST /servers/new`.
pub async fn create(session: Session, form: Form) -> Result<Response, Fail> {
    let chosen = chosen(&form);
    let body = json!({"name": form.get("name"), "source_ids": chosen,
                      "organization_id": session.nav.org.id});
    let reply = session
        .api
        .call(&session.caller, Method::POST, "/mcp-servers", Some(&body))
        .await;
    if reply.is_success() {
        let id = reply.body["id"].as_str().unwrap_or_default();
        return Ok(done(session.jar, &format!("/servers/{id}")));
    }
    if !matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::NOT_FOUND
    ) {
        return Err(reply.into());
    }
    let errors = reply.field_errors();
    let page = NewServer {
        nav: Some(session.nav.clone()),
        sources: sources::all(&session, session.nav.org.id).await?.items,
        name: form.get("name").to_owned(),
        chosen,
        name_error: errors.get("name").cloned(),
        sources_error: errors.get("source_ids").cloned(),
        error: Some(reply.message()),
    };
    Ok(show_with(session.jar, reply.status, &page))
}

/// Server `id` (deleted ones too), as the caller may see it.
pub async fn server(session: &Session, id: &str) -> Result<ServerItem, Fail> {
    let path = format!("/mcp-servers/{}?include_deleted=true", segment(id));
    Ok(session.api.get(&session.caller, &path).await.parse()?)
}

/// The server's connected agents: everyone's for its owners and admins, one's own for a
/// member.
pub async fn grants(session: &Session, server: Uuid) -> Result<Vec<GrantItem>, Fail> {
    let path = format!("/mcp-servers/{server}/grants");
    let grants: Grants = session.api.get(&session.caller, &path).await.parse()?;
    Ok(grants.items)
}
