//! Changing who is in an organization, from its page ([`super::org_page`]): owners and admins
//! change roles, remove members and hand ownership over (invitations are in
//! [`super::invitations`]); anyone may leave a team organization. Each change asks first, and
//! the page only offers what the API lets the caller do.

use axum::{
    extract::{Path, Query},
    http::Method,
    response::Response,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    console::{
        items::{MemberItem, Members, OrgItem},
        org_page::{Row, org_of, row},
        pages::{Confirm, Fail, done, show},
        session::{Form, Session},
    },
    orgs::Role,
};

/// An organization and one of its members, as the caller sees them.
async fn member_of(session: &Session, id: &str, user_id: &str) -> Result<(OrgItem, Row), Fail> {
    let org = org_of(session, id)?;
    if user_id == session.user_id.to_string() {
        // Anyone may see themselves (to leave), without the members list admins get.
        let me = MemberItem {
            user_id: session.user_id,
            email: session.nav.email.clone(),
            role: org.role,
            joined_at: org.created_at,
        };
        let row = row(&org, session.user_id, me);
        return Ok((org, row));
    }
    let path = format!("/organizations/{}/members", org.id);
    let members: Members = session.api.get(&session.caller, &path).await.parse()?;
    let member = members
        .items
        .into_iter()
        .find(|m| m.user_id.to_string() == user_id)
        .ok_or_else(Fail::not_found)?;
    let row = row(&org, session.user_id, member);
    Ok((org, row))
}

#[derive(Deserialize)]
pub struct RoleQuery {
    role: Option<String>,
}

fn role_asked(query: &RoleQuery) -> Result<Role, Fail> {
    query
        .role
        .as_deref()
        .and_then(Role::parse)
        .ok_or_else(Fail::not_found)
}

/// `GET /organizations/{id}/members/{user_id}/role?role=admin`: asks first.
pub async fn role_page(
    session: Session,
    Path((id, user_id)): Path<(String, String)>,
    Query(query): Query<RoleQuery>,
) -> Result<Response, Fail> {
    let role = role_asked(&query)?;
    let (org, row) = member_of(&session, &id, &user_id).await?;
    let mut warnings = Vec::new();
    if role == Role::Member {
        warnings.push(format!(
            "As a member, {} no longer sees sources, keys or usage, and loses connections to \
             servers that are not shared with them.",
            row.member.email
        ));
    }
    if role == Role::Owner {
        warnings.push("Owners may do everything, including deleting the organization.".into());
    }
    let confirm = Confirm::new(
        &session.nav,
        format!(
            "Make {} {} of “{}”?",
            row.member.email,
            article(role),
            org.name
        ),
        format!(
            "/organizations/{}/members/{}/role?role={}",
            org.id, row.member.user_id, role
        ),
        format!("/organizations/{}", org.id),
    )
    .message(format!("Their role is {} now.", row.member.role))
    .warnings(warnings)
    .button(format!("Make {role}"));
    Ok(show(session.jar, &confirm))
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Owner => "an owner",
        Role::Admin => "an admin",
        Role::Member => "a member",
    }
}

/// `POST /organizations/{id}/members/{user_id}/role?role=admin`.
pub async fn change_role(
    session: Session,
    Path((id, user_id)): Path<(String, String)>,
    Query(query): Query<RoleQuery>,
    _form: Form,
) -> Result<Response, Fail> {
    let role = role_asked(&query)?;
    let org = org_of(&session, &id)?;
    let path = format!(
        "/organizations/{}/members/{}",
        org.id,
        crate::console::pages::segment(&user_id)
    );
    let body = json!({"role": role});
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &path, Some(&body))
        .await;
    if !reply.is_success() {
        return Err(reply.into());
    }
    Ok(done(session.jar, &format!("/organizations/{}", org.id)))
}

/// `GET /organizations/{id}/members/{user_id}/remove`: asks first (leaving, for oneself).
pub async fn remove_page(
    session: Session,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let (org, row) = member_of(&session, &id, &user_id).await?;
    if org.personal {
        return Err(Fail::not_found());
    }
    let action = format!(
        "/organizations/{}/members/{}/remove",
        org.id, row.member.user_id
    );
    let confirm = if row.me {
        Confirm::new(
            &session.nav,
            format!("Leave “{}”?", org.name),
            action,
            format!("/organizations/{}", org.id),
        )
        .message(
            "You lose access to its servers at once, and your connected agents are \
             disconnected. Coming back needs a new invitation.",
        )
        .button("Leave organization")
    } else {
        Confirm::new(
            &session.nav,
            format!("Remove {} from “{}”?", row.member.email, org.name),
            action,
            format!("/organizations/{}", org.id),
        )
        .message(format!(
            "{} loses access to its servers within a second, and their connected agents are \
             disconnected.",
            row.member.email
        ))
        .button("Remove member")
    };
    Ok(show(session.jar, &confirm))
}

/// `POST /organizations/{id}/members/{user_id}/remove`.
pub async fn remove(
    session: Session,
    Path((id, user_id)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    let leaving = user_id == session.user_id.to_string();
    let path = format!(
        "/organizations/{}/members/{}",
        org.id,
        crate::console::pages::segment(&user_id)
    );
    // Someone who left is back in their personal organization.
    let then = match session.nav.orgs.iter().find(|o| o.personal) {
        Some(personal) if leaving => format!("/organizations?org={}", personal.id),
        _ => format!("/organizations/{}", org.id),
    };
    session.act(Method::DELETE, &path, &then).await
}

/// `GET /organizations/{id}/members/{user_id}/transfer`: an owner hands the organization over
/// (the member becomes an owner, the caller an admin); asks first.
pub async fn transfer_page(
    session: Session,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let (org, row) = member_of(&session, &id, &user_id).await?;
    if !row.transferable {
        return Err(Fail::not_found());
    }
    let confirm = Confirm::new(
        &session.nav,
        format!("Hand “{}” over to {}?", org.name, row.member.email),
        format!(
            "/organizations/{}/members/{}/transfer",
            org.id, row.member.user_id
        ),
        format!("/organizations/{}", org.id),
    )
    .message(format!(
        "{} becomes an owner and you become an admin: you keep managing sources, servers and \
         members, but no longer owners or the organization itself.",
        row.member.email
    ))
    .button("Transfer ownership");
    Ok(show(session.jar, &confirm))
}

/// `POST /organizations/{id}/members/{user_id}/transfer`: two API calls, in the order that
/// never leaves the organization without an owner.
pub async fn transfer(
    session: Session,
    Path((id, user_id)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, Fail> {
    let (org, row) = member_of(&session, &id, &user_id).await?;
    if !row.transferable {
        return Err(Fail::not_found());
    }
    let them = format!("/organizations/{}/members/{}", org.id, row.member.user_id);
    let up = json!({"role": "owner"});
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &them, Some(&up))
        .await;
    if !reply.is_success() {
        return Err(reply.into());
    }
    let me = format!("/organizations/{}/members/{}", org.id, session.user_id);
    let down = json!({"role": "admin"});
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &me, Some(&down))
        .await;
    if !reply.is_success() {
        return Err(reply.into());
    }
    Ok(done(session.jar, &format!("/organizations/{}", org.id)))
}
