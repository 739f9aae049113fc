//! MCP servers in the console: the list (deleted ones too, with restore), creation with a
//! source picker, and each server's page: its MCP URL, rename, `public`, attached sources,
//! access keys, connected agents and how to connect an agent. Deleting, detaching, revoking
//! and disconnecting each ask first.

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::{Method, StatusCode},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::console::{
    connections::{GrantItem, Grants},
    members::MemberItem,
    pages::{Confirm, Fail, Nav, done, segment, show, show_with},
    server_access,
    session::{Form, Session},
    sources::{self, SourceItem},
};

/// Servers per page of the list.
const PAGE: i64 = 50;

/// A server as the API shows it.
#[derive(Deserialize)]
pub struct ServerItem {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub mcp_url: String,
    pub source_ids: Vec<Uuid>,
    pub public: bool,
    /// `all` members may connect, or only the `listed_members`.
    pub member_access: String,
    pub listed_members: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

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

/// A key as the API lists it.
#[derive(Deserialize)]
struct KeyItem {
    id: Uuid,
    name: String,
    prefix: String,
    status: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Template)]
#[template(path = "console/server.html")]
struct Detail {
    nav: Option<Nav>,
    server: ServerItem,
    attached: Vec<SourceItem>,
    available: Vec<SourceItem>,
    keys: Vec<KeyItem>,
    grants: Vec<GrantItem>,
    /// The organization's members, to pick who may connect (team organizations).
    members: Vec<MemberItem>,
    name_error: Option<String>,
    error: Option<String>,
    /// A key just created: shown this once.
    new_key: Option<String>,
    /// The connection instructions may mention access keys (owners and admins make them).
    manager: bool,
}

impl Detail {
    fn listed(&self, member: &MemberItem) -> bool {
        self.server.listed_members.contains(&member.user_id)
    }
}

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

/// Everything the server's page shows an owner or admin, from a few API calls; the server's
/// organization becomes the current one.
async fn detail(session: &mut Session, id: &str) -> Result<Detail, Fail> {
    let server = server(session, id).await?;
    session.enter(server.organization_id);
    let team = !session.nav.org.personal;
    let (sources, keys, grants, members) = if server.deleted_at.is_some() {
        (Vec::new(), Vec::new(), Vec::new(), Vec::new())
    } else {
        let keys = format!("/mcp-servers/{}/keys", server.id);
        let (sources, keys, grants, members) = tokio::join!(
            sources::all(session, server.organization_id),
            session.api.get(&session.caller, &keys),
            grants(session, server.id),
            server_access::members(session, server.organization_id, team),
        );
        let keys: Items<KeyItem> = keys.parse()?;
        (sources?.items, keys.items, grants?, members?)
    };
    let (attached, available) = sources
        .into_iter()
        .partition(|s| server.source_ids.contains(&s.id));
    Ok(Detail {
        nav: Some(session.nav.clone()),
        server,
        attached,
        available,
        keys,
        grants,
        members,
        name_error: None,
        error: None,
        new_key: None,
        manager: true,
    })
}

/// `GET /servers/{id}`: everything for its owners and admins; for a member, how to connect
/// and their own connections.
pub async fn show_server(mut session: Session, Path(id): Path<String>) -> Result<Response, Fail> {
    let found = server(&session, &id).await?;
    session.enter(found.organization_id);
    if !session.nav.manages() {
        return server_access::member_page(session, found).await;
    }
    let page = detail(&mut session, &id).await?;
    Ok(show(session.jar, &page))
}

/// The page again with the API's refusal (the access form).
pub async fn refused(
    mut session: Session,
    id: &str,
    reply: &crate::console::api::Reply,
) -> Result<Response, Fail> {
    let mut page = detail(&mut session, id).await?;
    page.error = Some(reply.message());
    Ok(show_with(session.jar, reply.status, &page))
}

/// `POST /servers/{id}/rename`.
pub async fn rename(
    mut session: Session,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, Fail> {
    let body = json!({"name": form.get("name")});
    let path = format!("/mcp-servers/{}", segment(&id));
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &path, Some(&body))
        .await;
    if reply.is_success() {
        return Ok(done(session.jar, &format!("/servers/{}", segment(&id))));
    }
    if reply.status != StatusCode::UNPROCESSABLE_ENTITY {
        return Err(reply.into());
    }
    let mut page = detail(&mut session, &id).await?;
    page.name_error = reply.field_errors().get("name").cloned();
    page.error = Some(reply.message());
    Ok(show_with(session.jar, reply.status, &page))
}

/// `POST /servers/{id}/attach`.
pub async fn attach(
    session: Session,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, Fail> {
    let path = format!(
        "/mcp-servers/{}/sources/{}",
        segment(&id),
        segment(form.get("source_id"))
    );
    session
        .act(Method::PUT, &path, &format!("/servers/{}", segment(&id)))
        .await
}

/// `GET /servers/{id}/sources/{source_id}/detach`: asks first.
pub async fn detach_page(
    mut session: Session,
    Path((id, source_id)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let page = detail(&mut session, &id).await?;
    let Some(source) = page.attached.iter().find(|s| s.id.to_string() == source_id) else {
        return Err(Fail::not_found());
    };
    let confirm = Confirm::new(
        &session.nav,
        format!("Detach {} from “{}”?", source.label(), page.server.name),
        format!("/servers/{}/sources/{}/detach", page.server.id, source.id),
        format!("/servers/{}", page.server.id),
    )
    .message("Agents of this server stop searching this source at once. The source itself stays.")
    .button("Detach");
    Ok(show(session.jar, &confirm))
}

/// `POST /servers/{id}/sources/{source_id}/detach`.
pub async fn detach(
    session: Session,
    Path((id, source_id)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!(
        "/mcp-servers/{}/sources/{}",
        segment(&id),
        segment(&source_id)
    );
    session
        .act(Method::DELETE, &path, &format!("/servers/{}", segment(&id)))
        .await
}

/// `GET /servers/{id}/public`: making a server public (or private again) asks first.
pub async fn public_page(session: Session, Path(id): Path<String>) -> Result<Response, Fail> {
    let server = server(&session, &id).await?;
    let (title, message, button) = if server.public {
        (
            format!("Require access keys on “{}”?", server.name),
            "Agents then need an access key or an approved OAuth connection.",
            "Require keys",
        )
    } else {
        (
            format!("Make “{}” public?", server.name),
            "Anyone who knows its URL can then search and read its sources, without a key. Only do this for data that is public anyway.",
            "Make public",
        )
    };
    let confirm = Confirm::new(
        &session.nav,
        title,
        format!("/servers/{}/public", server.id),
        format!("/servers/{}", server.id),
    )
    .message(message)
    .button(button);
    Ok(show(session.jar, &confirm))
}

/// `POST /servers/{id}/public`: flips `public`.
pub async fn toggle_public(
    session: Session,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let server = server(&session, &id).await?;
    let body = json!({"public": !server.public});
    let path = format!("/mcp-servers/{}", server.id);
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &path, Some(&body))
        .await;
    if !reply.is_success() {
        return Err(reply.into());
    }
    Ok(done(session.jar, &format!("/servers/{}", server.id)))
}

/// `GET /servers/{id}/delete`: asks first.
pub async fn delete_page(session: Session, Path(id): Path<String>) -> Result<Response, Fail> {
    let server = server(&session, &id).await?;
    let confirm = Confirm::new(
        &session.nav,
        format!("Delete “{}”?", server.name),
        format!("/servers/{}/delete", server.id),
        format!("/servers/{}", server.id),
    )
    .message(format!(
        "Agents using {} stop working at once, and connected agents are disconnected. The server \
         stays in your list as deleted and can be restored (it may get another URL).",
        server.mcp_url
    ))
    .button("Delete server");
    Ok(show(session.jar, &confirm))
}

/// `POST /servers/{id}/delete`: a soft delete.
pub async fn delete(
    session: Session,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!("/mcp-servers/{}", segment(&id));
    session.act(Method::DELETE, &path, "/servers").await
}

/// `POST /servers/{id}/restore`: not destructive, so no question.
pub async fn restore(
    session: Session,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!("/mcp-servers/{}/restore", segment(&id));
    session
        .act(Method::POST, &path, &format!("/servers/{}", segment(&id)))
        .await
}

/// `POST /servers/{id}/keys`: the new key is shown on this answer and never again (the page
/// is not cached, and the key is not in any URL).
pub async fn create_key(
    mut session: Session,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, Fail> {
    let body = json!({"name": form.get("name")});
    let path = format!("/mcp-servers/{}/keys", segment(&id));
    let reply = session
        .api
        .call(&session.caller, Method::POST, &path, Some(&body))
        .await;
    let mut page = detail(&mut session, &id).await?;
    if reply.is_success() {
        page.new_key = reply.body["key"].as_str().map(str::to_owned);
        return Ok(show_with(session.jar, StatusCode::CREATED, &page));
    }
    if reply.status != StatusCode::UNPROCESSABLE_ENTITY && reply.status != StatusCode::CONFLICT {
        return Err(reply.into());
    }
    page.error = Some(match reply.field_errors().get("name") {
        Some(problem) => format!("Key name {problem}"),
        None => reply.message(),
    });
    Ok(show_with(session.jar, reply.status, &page))
}

/// `GET /servers/{id}/keys/{key_id}/revoke`: asks first.
pub async fn revoke_page(
    mut session: Session,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let page = detail(&mut session, &id).await?;
    let Some(key) = page.keys.iter().find(|k| k.id.to_string() == key_id) else {
        return Err(Fail::not_found());
    };
    let confirm = Confirm::new(
        &session.nav,
        format!("Revoke the key “{}” ({}…)?", key.name, key.prefix),
        format!("/servers/{}/keys/{}/revoke", page.server.id, key.id),
        format!("/servers/{}", page.server.id),
    )
    .message("Agents using this key are refused within a second. This cannot be undone.")
    .button("Revoke key");
    Ok(show(session.jar, &confirm))
}

/// `POST /servers/{id}/keys/{key_id}/revoke`.
pub async fn revoke(
    session: Session,
    Path((id, key_id)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!("/mcp-servers/{}/keys/{}", segment(&id), segment(&key_id));
    session
        .act(Method::DELETE, &path, &format!("/servers/{}", segment(&id)))
        .await
}

/// A time as people read it.
pub fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn when_opt(at: Option<&DateTime<Utc>>) -> String {
    at.map_or_else(|| "never".to_owned(), when)
}

impl ServerItem {
    fn deleted(&self) -> String {
        when_opt(self.deleted_at.as_ref())
    }
}

impl KeyItem {
    fn created(&self) -> String {
        when(&self.created_at)
    }

    fn last_used(&self) -> String {
        when_opt(self.last_used_at.as_ref())
    }
}
