//! One MCP server's page for its organization's owners and admins: its MCP URL, rename,
//! `public`, who may connect, attached sources, access keys, connected agents and how to
//! connect an agent. Deleting, detaching and revoking each ask first. Members get
//! [`super::server_access`]'s page instead.

use askama::Template;
use axum::{
    extract::Path,
    http::{Method, StatusCode},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::console::{
    api::Reply,
    items::{GrantItem, MemberItem, ServerItem, when, when_opt},
    pages::{Confirm, Fail, Nav, done, segment, show, show_with},
    server_access,
    servers::{grants, server},
    session::{Form, Session},
    sources::{self, SourceItem},
};

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
pub async fn refused(mut session: Session, id: &str, reply: &Reply) -> Result<Response, Fail> {
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

impl KeyItem {
    fn created(&self) -> String {
        when(&self.created_at)
    }

    fn last_used(&self) -> String {
        when_opt(self.last_used_at.as_ref())
    }
}

/// `POST /servers/{id}/access`: `member_access` and, for `listed`, the checked members.
pub async fn update(
    session: Session,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, Fail> {
    let access = form.get("member_access");
    let body = if access == "listed" {
        let listed: Vec<Uuid> = form
            .all("listed_members")
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        json!({"member_access": access, "listed_members": listed})
    } else {
        json!({"member_access": access})
    };
    let path = format!("/mcp-servers/{}", segment(&id));
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &path, Some(&body))
        .await;
    if reply.is_success() {
        return Ok(done(
            session.jar,
            &format!("/servers/{}#access-heading", segment(&id)),
        ));
    }
    if reply.status != StatusCode::UNPROCESSABLE_ENTITY {
        return Err(reply.into());
    }
    refused(session, &id, &reply).await
}
