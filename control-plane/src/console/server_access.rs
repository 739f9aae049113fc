//! Who may connect to a server, and what a member sees of it. Owners and admins choose between
//! every member of the organization and the members they list (owners and admins always may);
//! a member gets a page with the server's name, MCP URL, how to connect and their own
//! connections: no keys, no sources, no usage (the API would refuse them those anyway).

use askama::Template;
use axum::{
    extract::Path,
    http::{Method, StatusCode},
    response::Response,
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::console::{
    connections::GrantItem,
    members::MemberItem,
    pages::{Fail, Nav, done, segment, show},
    servers::{self, ServerItem},
    session::{Form, Session},
};

#[derive(Deserialize)]
struct Members {
    items: Vec<MemberItem>,
}

/// Organization `org`'s members, for the picker (none for a personal organization: there is
/// nobody to list).
pub async fn members(session: &Session, org: Uuid, team: bool) -> Result<Vec<MemberItem>, Fail> {
    if !team {
        return Ok(Vec::new());
    }
    let path = format!("/organizations/{org}/members");
    let list: Members = session.api.get(&session.caller, &path).await.parse()?;
    Ok(list.items)
}

#[derive(Template)]
#[template(path = "console/server_member.html")]
struct MemberView {
    nav: Option<Nav>,
    server: ServerItem,
    grants: Vec<GrantItem>,
    /// Members connect through OAuth only: the instructions leave access keys out.
    manager: bool,
}

/// A member's page of `server` (one they may connect to: the API found it for them).
pub async fn member_page(session: Session, server: ServerItem) -> Result<Response, Fail> {
    if server.deleted_at.is_some() {
        return Err(Fail::not_found());
    }
    let grants = servers::grants(&session, server.id).await?;
    let page = MemberView {
        nav: Some(session.nav.clone()),
        server,
        grants,
        manager: false,
    };
    Ok(show(session.jar, &page))
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
    servers::refused(session, &id, &reply).await
}
