//! Invitations in the console. Owners and admins invite an address with a role on the
//! organization's page, which shows the accept link once; the invited person opens the link
//! (`GET /invitations/{token}`, where the API's `accept_url` points), signs in or up with that
//! address and accepts, and lands in the organization.
//!
//! The link is shown once, and never by a reload that makes another: the form POSTs, the
//! link goes into a short-lived HTTP-only cookie (`SameSite=Strict`, only sent to that
//! organization's page, a minute long), and the redirected GET shows it and drops the cookie.
//! Reloading shows the page without the link; the link never appears in a URL or in history.

use askama::Template;
use axum::{
    extract::Path,
    http::{Method, StatusCode},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::{
    console::{
        items::{OrgItem, when},
        org_page::{self, LINK_SECS, link_cookie, org_of},
        pages::{Confirm, Fail, Nav, done, segment, show, show_with},
        session::{Form, Session, Visitor},
    },
    orgs::Role,
};

/// `POST /organizations/{id}/invitations`: invites, then shows the organization's page with
/// the link (once).
pub async fn create(
    session: Session,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    let body = json!({"email": form.get("email"), "role": form.get("role")});
    let path = format!("/organizations/{}/invitations", org.id);
    let reply = session
        .api
        .call(&session.caller, Method::POST, &path, Some(&body))
        .await;
    if reply.is_success() {
        let url = reply.body["accept_url"].as_str().unwrap_or_default();
        // The invitation's fields are flattened into the answer, beside `accept_url`.
        let email = reply.body["email"].as_str().unwrap_or_default();
        // Form-encoded: a cookie value holds neither spaces, commas nor semicolons.
        let value = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("email", email)
            .append_pair("url", url)
            .finish();
        let cookie = link_cookie(org.id, value, LINK_SECS, session.state.config.cookie_secure);
        let jar = session.jar.add(cookie);
        return Ok(done(jar, &format!("/organizations/{}#new-link", org.id)));
    }
    if !matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
    ) {
        return Err(reply.into());
    }
    let page = org_page::refused_invitation(&session, org, form.get("email"), &reply).await?;
    Ok(show_with(session.jar, reply.status, &page))
}

/// `GET /organizations/{id}/invitations/{invitation_id}/revoke`: asks first.
pub async fn revoke_page(
    session: Session,
    Path((id, invitation_id)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    let invitation = org_page::invitations_of(&session, org.id)
        .await?
        .into_iter()
        .find(|i| i.id.to_string() == invitation_id && i.status == "pending")
        .ok_or_else(Fail::not_found)?;
    let confirm = Confirm::new(
        &session.nav,
        format!("Revoke the invitation of {}?", invitation.email),
        format!(
            "/organizations/{}/invitations/{}/revoke",
            org.id, invitation.id
        ),
        format!("/organizations/{}", org.id),
    )
    .message("Its link stops working at once. You can invite the address again later.")
    .button("Revoke invitation");
    Ok(show(session.jar, &confirm))
}

/// `POST /organizations/{id}/invitations/{invitation_id}/revoke`.
pub async fn revoke(
    session: Session,
    Path((id, invitation_id)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    let path = format!(
        "/organizations/{}/invitations/{}",
        org.id,
        segment(&invitation_id)
    );
    session
        .act(Method::DELETE, &path, &format!("/organizations/{}", org.id))
        .await
}

/// An invitation as anyone holding its link sees it.
#[derive(Deserialize)]
struct Preview {
    organization_name: String,
    email: String,
    role: Role,
    status: String,
    expires_at: DateTime<Utc>,
}

#[derive(Template)]
#[template(path = "console/invitation.html")]
struct AcceptPage {
    nav: Option<Nav>,
    invitation: Preview,
    /// This page's path, where sign-in and sign-up lead back to.
    here: String,
    /// `here`, encoded for a query string.
    here_query: String,
    email_query: String,
    /// Signed in as the invited address.
    invited: bool,
}

impl AcceptPage {
    pub fn expires(&self) -> String {
        when(&self.invitation.expires_at)
    }
}

fn encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `GET /invitations/{token}`: what the invitation is for and the one step that suits the
/// visitor (sign in or up, accept, or switch accounts); a used, revoked or expired link says
/// so.
pub async fn accept_page(
    session: Option<Session>,
    visitor: Visitor,
    Path(token): Path<String>,
) -> Result<Response, Fail> {
    let path = format!("/invitations/{}", segment(&token));
    let reply = visitor.api.get(&visitor.caller, &path).await;
    if reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::BAD_REQUEST {
        return Err(Fail::new(
            StatusCode::NOT_FOUND,
            "This invitation link is not valid. Check that it was copied whole, or ask for a new one.",
        ));
    }
    let invitation: Preview = reply.parse()?;
    let here = format!("/invitations/{}", segment(&token));
    let (nav, jar) = match session {
        Some(s) => (Some(s.nav), s.jar),
        None => (None, visitor.jar),
    };
    let invited = nav
        .as_ref()
        .is_some_and(|n| n.email.eq_ignore_ascii_case(&invitation.email));
    let page = AcceptPage {
        nav,
        here_query: encoded(&here),
        email_query: encoded(&invitation.email),
        here,
        invited,
        invitation,
    };
    Ok(show(jar, &page))
}

/// `POST /invitations/{token}/accept`: joins, and opens the organization's servers.
pub async fn accept(
    session: Session,
    Path(token): Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!("/invitations/{}/accept", segment(&token));
    let reply = session
        .api
        .call(&session.caller, Method::POST, &path, None)
        .await;
    if reply.status == StatusCode::CONFLICT && reply.code() == "already_member" {
        return Err(Fail::new(
            StatusCode::CONFLICT,
            "You are a member of this organization already: choose it in the organization menu.",
        ));
    }
    let org: OrgItem = reply.parse()?;
    Ok(done(session.jar, &format!("/servers?org={}", org.id)))
}
