//! Connected agents (OAuth grants). "My connections": every agent the caller connected, on
//! every server of every organization they are in. A server's page lists its grants
//! (everyone's for its owners and admins, with the person's email; a member's own). Each is
//! disconnectable, after a question.

use askama::Template;
use axum::{extract::Path, http::Method, response::Response};

use crate::console::{
    items::{GrantItem, Grants},
    pages::{Confirm, Fail, Nav, segment, show},
    servers,
    session::{Form, Session},
};

#[derive(Template)]
#[template(path = "console/connections.html")]
struct List {
    nav: Option<Nav>,
    grants: Vec<GrantItem>,
}

impl List {
    /// The organization a grant's server belongs to, as the caller names it.
    fn org_name(&self, grant: &GrantItem) -> String {
        self.nav
            .as_ref()
            .and_then(|n| n.orgs.iter().find(|o| o.id == grant.organization_id))
            .map(|o| o.label())
            .unwrap_or_default()
    }
}

async fn mine(session: &Session) -> Result<Vec<GrantItem>, Fail> {
    let grants: Grants = session
        .api
        .get(&session.caller, "/me/grants")
        .await
        .parse()?;
    Ok(grants.items)
}

/// `GET /connections`.
pub async fn list(session: Session) -> Result<Response, Fail> {
    let page = List {
        nav: Some(session.nav.clone()),
        grants: mine(&session).await?,
    };
    Ok(show(session.jar, &page))
}

/// `GET /connections/{grant_id}/disconnect`: asks first.
pub async fn disconnect_page(
    session: Session,
    Path(grant_id): Path<String>,
) -> Result<Response, Fail> {
    let grants = mine(&session).await?;
    let grant = grants
        .iter()
        .find(|g| g.id.to_string() == grant_id)
        .ok_or_else(Fail::not_found)?;
    let confirm = Confirm::new(
        &session.nav,
        format!(
            "Disconnect {} from “{}”?",
            grant.client_name, grant.server_name
        ),
        format!("/connections/{}/disconnect", grant.id),
        "/connections".into(),
    )
    .message(format!(
        "{} (returning to {}) loses access within a second; connecting it again needs your \
         approval.",
        grant.client_name, grant.redirect_host
    ))
    .button("Disconnect");
    Ok(show(session.jar, &confirm))
}

/// `POST /connections/{grant_id}/disconnect`.
pub async fn disconnect(
    session: Session,
    Path(grant_id): Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let grants = mine(&session).await?;
    let grant = grants
        .iter()
        .find(|g| g.id.to_string() == grant_id)
        .ok_or_else(Fail::not_found)?;
    let path = format!(
        "/mcp-servers/{}/grants/{}",
        grant.server_id,
        segment(&grant_id)
    );
    session.act(Method::DELETE, &path, "/connections").await
}

/// `GET /servers/{id}/grants/{grant_id}/disconnect`: asks first (owners and admins may end
/// anyone's connection, a member their own).
pub async fn server_disconnect_page(
    session: Session,
    Path((id, grant_id)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let server = servers::server(&session, &id).await?;
    let grants = servers::grants(&session, server.id).await?;
    let Some(grant) = grants.iter().find(|g| g.id.to_string() == grant_id) else {
        return Err(Fail::not_found());
    };
    let whose = if grant.user_email.eq_ignore_ascii_case(&session.nav.email) {
        "your".to_owned()
    } else {
        format!("{}'s", grant.user_email)
    };
    let confirm = Confirm::new(
        &session.nav,
        format!("Disconnect {whose} agent {}?", grant.client_name),
        format!("/servers/{}/grants/{}/disconnect", server.id, grant.id),
        format!("/servers/{}", server.id),
    )
    .message(format!(
        "{} (returning to {}) loses access to “{}” within a second; connecting again needs a new approval.",
        grant.client_name, grant.redirect_host, server.name
    ))
    .button("Disconnect");
    Ok(show(session.jar, &confirm))
}

/// `POST /servers/{id}/grants/{grant_id}/disconnect`.
pub async fn server_disconnect(
    session: Session,
    Path((id, grant_id)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!(
        "/mcp-servers/{}/grants/{}",
        segment(&id),
        segment(&grant_id)
    );
    session
        .act(Method::DELETE, &path, &format!("/servers/{}", segment(&id)))
        .await
}
