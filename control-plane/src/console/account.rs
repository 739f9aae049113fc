//! Accounts in the console: sign up, sign in (and back to the page that asked), sign out,
//! change the password, delete the account. Each form calls the API route of the same name.

use std::collections::BTreeMap;

use askama::Template;
use axum::{
    extract::Query,
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    console::{
        pages::{self, Confirm, Fail, Nav, done, show, show_with},
        session::{self, Form, Session, Visitor},
    },
    web::next,
};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
    /// Sign-up only: the address to fill in (an invitation's).
    email: Option<String>,
}

/// `?next=` for a link that keeps the way back (sign-in to sign-up and back), or "" for home.
fn next_query(next: &str) -> String {
    if matches!(next, "/" | "/servers") || next::checked(next).is_none() {
        return String::new();
    }
    let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("?next={encoded}")
}

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignIn {
    nav: Option<Nav>,
    csrf: String,
    email: String,
    next: String,
    error: Option<String>,
    signup: bool,
    /// Sign-up, keeping where sign-in would have led.
    signup_link: String,
}

#[derive(Template)]
#[template(path = "console/signup.html")]
struct SignUp {
    nav: Option<Nav>,
    csrf: String,
    email: String,
    next: String,
    signin_link: String,
    errors: BTreeMap<String, String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct Account {
    nav: Option<Nav>,
    errors: BTreeMap<String, String>,
    error: Option<String>,
    changed: bool,
}

/// Where sign-in leads: the page that asked, when it is one of this site's.
fn next_or_home(next: Option<&str>) -> String {
    next.and_then(next::checked)
        .unwrap_or("/servers")
        .to_owned()
}

/// `GET /signin`.
pub async fn sign_in_page(visitor: Visitor, Query(query): Query<Next>) -> Response {
    let next = next_or_home(query.next.as_deref());
    let page = SignIn {
        nav: None,
        csrf: visitor.csrf,
        email: String::new(),
        signup_link: format!("/signup{}", next_query(&next)),
        next,
        error: None,
        signup: visitor.state.config.signup_enabled,
    };
    show(visitor.jar, &page)
}

/// `POST /signin`: the API's signin; its token becomes the console's session cookie.
pub async fn sign_in(visitor: Visitor, form: Form) -> Response {
    let body = json!({"email": form.get("email"), "password": form.get("password")});
    let reply = visitor
        .api
        .call(&visitor.caller, Method::POST, "/signin", Some(&body))
        .await;
    let next = next_or_home(Some(form.get("next")));
    if let Some(token) = reply.body["access_token"]
        .as_str()
        .filter(|_| reply.is_success())
    {
        let jar = visitor
            .jar
            .add(session::session_cookie(&visitor.state, token.to_owned()));
        return done(jar, &next);
    }
    let error = match reply.status {
        StatusCode::UNAUTHORIZED | StatusCode::UNPROCESSABLE_ENTITY => {
            "That email and password do not match an account.".to_owned()
        }
        _ => reply.message(),
    };
    let page = SignIn {
        nav: None,
        csrf: visitor.csrf,
        email: form.get("email").to_owned(),
        signup_link: format!("/signup{}", next_query(&next)),
        next,
        error: Some(error),
        signup: visitor.state.config.signup_enabled,
    };
    show_with(visitor.jar, reply.status, &page)
}

/// `GET /signup`: `?next=` leads back to the page that asked (an invitation) once the
/// account exists; `?email=` fills in the address.
pub async fn sign_up_page(visitor: Visitor, Query(query): Query<Next>) -> Response {
    let next = next_or_home(query.next.as_deref());
    let page = SignUp {
        nav: None,
        csrf: visitor.csrf,
        email: query.email.unwrap_or_default(),
        signin_link: format!("/signin{}", next_query(&next)),
        next,
        errors: BTreeMap::new(),
        error: None,
    };
    show(visitor.jar, &page)
}

/// `POST /signup`: creates the account, then signs in with it.
pub async fn sign_up(visitor: Visitor, form: Form) -> Response {
    let body = json!({"email": form.get("email"), "password": form.get("password")});
    let reply = visitor
        .api
        .call(&visitor.caller, Method::POST, "/signup", Some(&body))
        .await;
    if reply.is_success() {
        return sign_in(visitor, form).await;
    }
    let next = next_or_home(Some(form.get("next")));
    let page = SignUp {
        nav: None,
        csrf: visitor.csrf,
        email: form.get("email").to_owned(),
        signin_link: format!("/signin{}", next_query(&next)),
        next,
        errors: reply.field_errors(),
        error: Some(reply.message()),
    };
    show_with(visitor.jar, reply.status, &page)
}

/// `POST /signout`: the token is revoked and the cookie dropped. A `next` (an invitation
/// opened in the wrong account) is where signing in again leads.
pub async fn sign_out(session: Session, form: Form) -> Response {
    let reply = session
        .api
        .call(&session.caller, Method::POST, "/signout", None)
        .await;
    if !reply.is_success() {
        tracing::warn!(status = %reply.status, "console sign-out: the API refused");
    }
    let jar = session.jar.add(session::cleared_session(&session.state));
    done(jar, &format!("/signin{}", next_query(form.get("next"))))
}

/// `GET /account`.
pub async fn account_page(session: Session) -> Response {
    let page = Account {
        nav: Some(session.nav),
        errors: BTreeMap::new(),
        error: None,
        changed: false,
    };
    show(session.jar, &page)
}

/// `POST /account/password`: the API revokes older tokens and returns a new one, which
/// replaces the cookie.
pub async fn change_password(session: Session, form: Form) -> Response {
    let body = json!({"current_password": form.get("current_password"),
                      "new_password": form.get("new_password")});
    let reply = session
        .api
        .call(&session.caller, Method::PUT, "/me/password", Some(&body))
        .await;
    let mut jar = session.jar;
    if let Some(token) = reply.body["access_token"]
        .as_str()
        .filter(|_| reply.is_success())
    {
        jar = jar.add(session::session_cookie(&session.state, token.to_owned()));
    }
    let mut errors = reply.field_errors();
    if reply.code() == "wrong_password" {
        errors.insert("current_password".into(), reply.message());
    }
    let page = Account {
        nav: Some(session.nav),
        error: (!reply.is_success() && errors.is_empty()).then(|| reply.message()),
        errors,
        changed: reply.is_success(),
    };
    let status = if reply.is_success() {
        StatusCode::OK
    } else {
        reply.status
    };
    show_with(jar, status, &page)
}

/// `GET /account/delete`: asks first.
pub async fn delete_page(session: Session) -> Response {
    let page = Confirm::new(
        &session.nav,
        "Delete your account?",
        "/account/delete".into(),
        "/account".into(),
    )
    .message(format!(
        "The account {} and everything it owns go for good: sources (and their secrets), \
         MCP servers, access keys, connected agents. Agents using these servers stop working.",
        session.nav.email
    ))
    .button("Delete my account");
    show(session.jar, &page)
}

/// `POST /account/delete`.
pub async fn delete(session: Session, _form: Form) -> Result<Response, Fail> {
    let reply = session
        .api
        .call(&session.caller, Method::DELETE, "/me", None)
        .await;
    if !reply.is_success() {
        return Err(reply.into());
    }
    let jar = session.jar.add(session::cleared_session(&session.state));
    Ok(done(jar, "/signin").into_response())
}

/// `/`: the servers for a signed-in person (sign-in otherwise).
pub async fn home(session: Session) -> Response {
    pages::done(session.jar, "/servers")
}
