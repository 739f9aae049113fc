//! Administrators' pages: every user, the endpoint pool's state, and deleting any server for
//! good. The API refuses non-administrators (403), and so do these pages.

use askama::Template;
use axum::{extract::Query, http::Method, response::Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::console::{
    items::when,
    pages::{Confirm, Fail, Nav, segment, show},
    session::{Form, Session},
};

/// Users per page.
const PAGE: i64 = 100;

#[derive(Deserialize)]
struct User {
    id: uuid::Uuid,
    email: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl User {
    fn created(&self) -> String {
        when(&self.created_at)
    }
}

#[derive(Deserialize)]
struct Users {
    items: Vec<User>,
    total: i64,
}

#[derive(Deserialize)]
struct Orphan {
    server_id: uuid::Uuid,
    endpoint: String,
}

#[derive(Deserialize)]
struct Pool {
    total: usize,
    used: usize,
    free: usize,
    cooling_down: Vec<String>,
    wildcards: Vec<String>,
    wildcard_servers: usize,
    orphaned: Vec<Orphan>,
}

#[derive(Deserialize)]
pub struct AdminQuery {
    offset: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/admin.html")]
struct Admin {
    nav: Option<Nav>,
    users: Vec<User>,
    total: i64,
    pool: Pool,
    previous: Option<i64>,
    next: Option<i64>,
}

/// `GET /admin`.
pub async fn overview(session: Session, Query(query): Query<AdminQuery>) -> Result<Response, Fail> {
    let offset = query.offset.unwrap_or(0).max(0);
    let users = format!("/users?limit={PAGE}&offset={offset}");
    let (users, pool) = tokio::join!(
        session.api.get(&session.caller, &users),
        session.api.get(&session.caller, "/admin/pool"),
    );
    let users: Users = users.parse()?;
    let page = Admin {
        nav: Some(session.nav.clone()),
        previous: (offset > 0).then(|| (offset - PAGE).max(0)),
        next: (offset + PAGE < users.total).then_some(offset + PAGE),
        users: users.items,
        total: users.total,
        pool: pool.parse()?,
    };
    Ok(show(session.jar, &page))
}

#[derive(Deserialize)]
pub struct ServerId {
    id: Option<String>,
}

/// `GET /admin/servers/delete?id=`: asks first.
pub async fn hard_delete_page(
    session: Session,
    Query(query): Query<ServerId>,
) -> Result<Response, Fail> {
    // Only administrators get this far with a question to answer.
    session
        .api
        .get(&session.caller, "/admin/pool")
        .await
        .parse::<Pool>()?;
    let id = query.id.unwrap_or_default();
    let id: uuid::Uuid = id.trim().parse().map_err(|_| {
        Fail::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "A server id is a UUID such as 0b0e6c52-…; copy it from the server's address.",
        )
    })?;
    let page = Confirm::new(
        &session.nav,
        format!("Delete the server {id} for good?"),
        format!("/admin/servers/{id}/delete"),
        "/admin".into(),
    )
    .message("Whoever owns it, the server, its keys, grants and call log are deleted and cannot be restored. Its endpoint is released (the cooldown applies).")
    .button("Delete for good");
    Ok(show(session.jar, &page))
}

/// `POST /admin/servers/{id}/delete`.
pub async fn hard_delete(
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!("/admin/mcp-servers/{}", segment(&id));
    session.act(Method::DELETE, &path, "/admin").await
}
