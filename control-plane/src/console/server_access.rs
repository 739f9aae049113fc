//! Who may connect to a server, and what a member sees of it. Owners and admins choose between
//! every member of the organization and the members they list (owners and admins always may;
//! the form is on [`super::server`]'s page, the members to pick from come from here);
//! a member gets a page with the server's name, MCP URL, how to connect and their own
//! connections: no keys, no sources, no usage (the API would refuse them those anyway).

use askama::Template;
use axum::response::Response;
use uuid::Uuid;

use crate::console::{
    items::{GrantItem, MemberItem, Members, ServerItem},
    pages::{Fail, Nav, show},
    servers,
    session::Session,
};

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
