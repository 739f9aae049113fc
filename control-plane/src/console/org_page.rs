//! An organization's page: who is in it with which role and, for its owners and admins, the
//! open invitations and the link just made (shown once). The forms on it are handled by
//! [`super::members`], [`super::invitations`] and [`super::org_settings`], which answer with
//! this page when the API refuses.

use askama::Template;
use axum::{extract::Path, response::Response};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use uuid::Uuid;

use crate::{
    console::{
        api::Reply,
        items::{InvitationItem, Invitations, MemberItem, Members, OrgItem, when},
        pages::{Fail, Nav, show},
        session::Session,
    },
    orgs::Role,
};

/// The cookie that carries a new accept link to the one page view that shows it.
const LINK_COOKIE: &str = "mcpgw_invitation_link";
/// Long enough for the redirect that follows the form, short enough not to linger.
pub const LINK_SECS: i64 = 60;

/// An accept link just made, for the invitation it belongs to.
pub struct NewLink {
    pub email: String,
    pub url: String,
}

/// A member's row: what the caller may do to them.
pub struct Row {
    pub member: MemberItem,
    pub me: bool,
    /// Roles the caller may give them (empty: none).
    pub roles: Vec<&'static str>,
    pub removable: bool,
    /// The caller (an owner) may hand the organization over to them.
    pub transferable: bool,
}

impl Row {
    fn joined(&self) -> String {
        when(&self.member.joined_at)
    }
}

#[derive(Template)]
#[template(path = "console/organization.html")]
pub struct OrgPage {
    nav: Option<Nav>,
    org: OrgItem,
    /// The caller's user id (their own row, leaving).
    me: Uuid,
    rows: Vec<Row>,
    invitations: Vec<InvitationItem>,
    /// Roles the caller may invite with.
    invite_roles: Vec<&'static str>,
    new_link: Option<NewLink>,
    email: String,
    email_error: Option<String>,
    error: Option<String>,
    /// The settings form (owners of a team organization): what was typed, and why it was
    /// refused.
    pub settings_name: String,
    pub settings_slug: String,
    pub settings_error: Option<String>,
}

/// The caller's organization `id` (404 when they are not in it).
pub fn org_of(session: &Session, id: &str) -> Result<OrgItem, Fail> {
    session
        .nav
        .orgs
        .iter()
        .find(|o| o.id.to_string() == id)
        .cloned()
        .ok_or_else(Fail::not_found)
}

/// Roles an `actor` may hand out: admins up to admin, owners every role.
fn grantable(actor: Role) -> Vec<&'static str> {
    match actor {
        Role::Owner => vec!["member", "admin", "owner"],
        Role::Admin => vec!["member", "admin"],
        Role::Member => Vec::new(),
    }
}

pub fn row(org: &OrgItem, caller: Uuid, member: MemberItem) -> Row {
    let me = member.user_id == caller;
    // Only owners touch owners; an admin may lower or remove themselves as anyone may leave.
    let may_touch = org.role == Role::Owner || (org.manages() && member.role != Role::Owner);
    Row {
        roles: if may_touch && !me {
            grantable(org.role)
        } else {
            Vec::new()
        },
        removable: may_touch && !me,
        transferable: org.role == Role::Owner && !me && member.role != Role::Owner,
        me,
        member,
    }
}

/// Everything the page shows; `new_link` is a link just created, shown this once.
pub async fn page(
    session: &Session,
    org: OrgItem,
    new_link: Option<NewLink>,
) -> Result<OrgPage, Fail> {
    let (rows, invitations) = if org.manages() && !org.personal {
        let path = format!("/organizations/{}/members", org.id);
        let members: Members = session.api.get(&session.caller, &path).await.parse()?;
        let rows = members
            .items
            .into_iter()
            .map(|m| row(&org, session.user_id, m))
            .collect();
        (rows, invitations_of(session, org.id).await?)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(OrgPage {
        nav: Some(session.nav.clone()),
        settings_name: org.name.clone(),
        settings_slug: org.slug.clone().unwrap_or_default(),
        settings_error: None,
        invite_roles: grantable(org.role),
        me: session.user_id,
        org,
        rows,
        invitations,
        new_link,
        email: String::new(),
        email_error: None,
        error: None,
    })
}

/// `GET /organizations/{id}`: becomes the current organization.
pub async fn show_org(mut session: Session, Path(id): Path<String>) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    session.enter(org.id);
    let (jar, new_link) = take_link(session.jar.clone(), org.id);
    session.jar = jar;
    // Only for whoever may invite (the cookie is this browser's, not this account's).
    let new_link = new_link.filter(|_| org.manages());
    let page = page(&session, org, new_link).await?;
    Ok(show(session.jar, &page))
}

/// The page again after the API refused an invitation: the address typed and the reason.
pub async fn refused_invitation(
    session: &Session,
    org: OrgItem,
    email: &str,
    reply: &Reply,
) -> Result<OrgPage, Fail> {
    let mut page = page(session, org, None).await?;
    page.email = email.to_owned();
    page.email_error = reply.field_errors().get("email").cloned();
    page.error = Some(reply.message());
    Ok(page)
}

/// Organization `org`'s invitations, newest first.
pub async fn invitations_of(session: &Session, org: Uuid) -> Result<Vec<InvitationItem>, Fail> {
    let path = format!("/organizations/{org}/invitations");
    let list: Invitations = session.api.get(&session.caller, &path).await.parse()?;
    Ok(list.items)
}

/// The cookie carrying a new accept link to `org`'s page (empty and 0 seconds: its removal).
pub fn link_cookie(org: Uuid, value: String, secs: i64, secure: bool) -> Cookie<'static> {
    Cookie::build((LINK_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path(format!("/organizations/{org}"))
        .max_age(cookie::time::Duration::seconds(secs))
        .build()
}

/// The link made just before this view of `org`'s page, if any; the cookie is dropped so the
/// next view does not show it.
pub fn take_link(jar: CookieJar, org: Uuid) -> (CookieJar, Option<NewLink>) {
    let Some(value) = jar.get(LINK_COOKIE).map(|c| c.value().to_owned()) else {
        return (jar, None);
    };
    let jar = jar.remove(link_cookie(org, String::new(), 0, false));
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(value.as_bytes())
            .into_owned()
            .collect();
    let link = match (fields.get("email"), fields.get("url")) {
        (Some(email), Some(url)) => Some(NewLink {
            email: email.clone(),
            url: url.clone(),
        }),
        _ => None,
    };
    (jar, link)
}
