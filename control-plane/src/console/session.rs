//! Who is looking at a console page. The console keeps the session token in a cookie of its
//! own (HTTP-only, `SameSite=Lax`, sent to the console's paths) and hands it to the API as a
//! bearer token. A page asked for without a live session sends the browser to sign-in, which
//! brings it back to that page afterwards.

use std::collections::HashMap;

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;

use crate::{
    auth::{AuthUser, session::scoped_cookie},
    console::{
        api::{Api, Caller},
        pages::{Fail, Nav},
    },
    state::AppState,
    web::{forms, next},
};

/// The console's session cookie.
const SESSION_COOKIE: &str = "mcpgw_console";
/// The console's pages; the API's own cookie stays on `/api/v1`.
const COOKIE_PATH: &str = "/";
/// Longest form body read (the API's body limit applies to what the console sends on).
const MAX_FORM: usize = 64 * 1024;

/// A signed-in person's request: the API client acting as them, their navigation bar, and the
/// browser's cookies with a fresh form token.
pub struct Session {
    pub user_id: uuid::Uuid,
    pub api: Api,
    pub caller: Caller,
    pub nav: Nav,
    pub jar: CookieJar,
    pub state: AppState,
}

impl Session {
    /// Sends a body-less write (attach, detach, delete, restore, revoke...) to the API and,
    /// when it succeeds, redirects to `then`; a refusal is shown as the API worded it.
    pub async fn act(
        self,
        method: axum::http::Method,
        api_path: &str,
        then: &str,
    ) -> Result<Response, Fail> {
        let reply = self.api.call(&self.caller, method, api_path, None).await;
        if !reply.is_success() {
            return Err(reply.into());
        }
        Ok(crate::console::pages::done(self.jar, then))
    }
}

/// Anyone's request (sign-in, sign-up).
pub struct Visitor {
    pub api: Api,
    pub caller: Caller,
    pub jar: CookieJar,
    pub csrf: String,
    pub state: AppState,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Fail> {
        let api = parts
            .extensions
            .get::<Api>()
            .cloned()
            .ok_or_else(|| Fail::internal("the console's API client is missing"))?;
        let jar = CookieJar::from_headers(&parts.headers);
        let (jar, csrf) = forms::issue(state, jar);
        Ok(Self {
            api,
            caller: Caller::of(parts),
            jar,
            csrf,
            state: state.clone(),
        })
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let visitor = Visitor::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token = visitor
            .jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned());
        let user = match token.as_deref() {
            Some(token) => AuthUser::from_token(state, token).await.ok(),
            None => None,
        };
        let (Some(user), Some(token)) = (user, token) else {
            return Err(to_sign_in(parts).into_response());
        };
        Ok(Self {
            user_id: user.user.id,
            api: visitor.api,
            caller: visitor.caller.with_token(token),
            nav: Nav {
                email: user.user.email.clone(),
                admin: user.user.is_admin(),
                csrf: visitor.csrf,
            },
            jar: visitor.jar,
            state: visitor.state,
        })
    }
}

/// Sign-in, then back here: to this page for a GET, to the page the form was on for a POST.
fn to_sign_in(parts: &Parts) -> Redirect {
    let here = if parts.method == axum::http::Method::GET {
        parts.uri.path_and_query().map(|p| p.as_str().to_owned())
    } else {
        parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            })
    };
    let next = here.as_deref().and_then(next::checked).unwrap_or("/");
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Redirect::to(&format!("/signin?next={next}"))
}

/// The cookie that carries a new session.
pub fn session_cookie(
    state: &AppState,
    token: String,
) -> axum_extra::extract::cookie::Cookie<'static> {
    scoped_cookie(
        SESSION_COOKIE,
        token,
        COOKIE_PATH,
        state.tokens.ttl().as_secs(),
        state.config.cookie_secure,
    )
}

/// The cookie that ends the session in this browser.
pub fn cleared_session(state: &AppState) -> axum_extra::extract::cookie::Cookie<'static> {
    scoped_cookie(
        SESSION_COOKIE,
        String::new(),
        COOKIE_PATH,
        0,
        state.config.cookie_secure,
    )
}

/// A submitted console form: from this origin, with this browser's form token (403
/// otherwise). Checkboxes may repeat a name, so values are lists.
pub struct Form(pub HashMap<String, Vec<String>>);

impl Form {
    /// The first value of `name`, trimmed of nothing (the API decides), or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = Fail;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Fail> {
        let (parts, body) = request.into_parts();
        let jar = CookieJar::from_headers(&parts.headers);
        let bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| Fail::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
        let mut fields: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(&bytes) {
            fields
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        let form = Self(fields);
        if !forms::genuine(state, &parts.headers, &jar, form.get("csrf")) {
            tracing::warn!("console form refused: foreign origin or missing anti-forgery token");
            return Err(Fail::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ));
        }
        Ok(form)
    }
}
