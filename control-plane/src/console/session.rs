//! Who is looking at a console page. The console keeps the session token in a cookie of its
//! own (HTTP-only, `SameSite=Lax`, sent to the console's paths) and hands it to the API as a
//! bearer token. A page asked for without a live session sends the browser to sign-in, which
//! brings it back to that page afterwards.

use std::collections::HashMap;

use uuid::Uuid;

use axum::{
    extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::{
    console::{
        api::{Api, Caller},
        forms,
        items::OrgItem,
        pages::{Fail, Nav},
    },
    session::{AuthUser, cookie::scoped_cookie},
    state::AppState,
    web::next,
};

/// The console's session cookie.
const SESSION_COOKIE: &str = "mcpgw_console";
/// The console's pages; the API's own cookie stays on `/api/v1`.
const COOKIE_PATH: &str = "/";
/// Which organization the servers and sources pages show and create in.
///
/// A cookie rather than `?org=` on every link: every page, form, redirect and crumb of the
/// console would otherwise have to carry the parameter, and one forgotten link would silently
/// switch a person back to their personal organization (and create a server there). `?org=<id>`
/// is still honoured on any page (it switches and is remembered), so a link can name the
/// organization it leads into: the switcher and an accepted invitation use it.
const ORG_COOKIE: &str = "mcpgw_org";
/// A year: the cookie only remembers a choice, it grants nothing (the API checks membership).
const ORG_COOKIE_SECS: u64 = 365 * 24 * 3600;
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
    /// Makes `org` (one of the caller's) the current organization, remembered in this browser:
    /// a page that belongs to an organization (a server's, a members page) shows it as the
    /// current one, so the navigation and the role it adapts to match what is shown.
    pub fn enter(&mut self, org: Uuid) {
        if self.nav.org.id == org {
            return;
        }
        if let Some(found) = self.nav.orgs.iter().find(|o| o.id == org) {
            self.nav.org = found.clone();
            self.remember(org);
        }
    }

    fn remember(&mut self, org: Uuid) {
        let cookie = scoped_cookie(
            ORG_COOKIE,
            org.to_string(),
            COOKIE_PATH,
            ORG_COOKIE_SECS,
            self.state.config.cookie_secure,
        );
        self.jar = self.jar.clone().add(cookie);
    }

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
        Self::of(parts, state)
    }
}

impl Visitor {
    fn of(parts: &Parts, state: &AppState) -> Result<Self, Fail> {
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
        Self::resolve(parts, state)
            .await?
            .ok_or_else(|| to_sign_in(parts).into_response())
    }
}

/// A page for visitors and members alike (an invitation): the session when there is one.
impl OptionalFromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Response> {
        Self::resolve(parts, state).await
    }
}

impl Session {
    async fn resolve(parts: &Parts, state: &AppState) -> Result<Option<Self>, Response> {
        let visitor = Visitor::of(parts, state).map_err(IntoResponse::into_response)?;
        let token = visitor
            .jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned());
        let user = match token.as_deref() {
            Some(token) => AuthUser::from_token(state, token).await.ok(),
            None => None,
        };
        let (Some(user), Some(token)) = (user, token) else {
            return Ok(None);
        };
        let caller = visitor.caller.with_token(token);
        let orgs = organizations_of(&visitor.api, &caller)
            .await
            .map_err(IntoResponse::into_response)?;
        let asked = asked_org(parts).or_else(|| {
            visitor
                .jar
                .get(ORG_COOKIE)
                .and_then(|c| c.value().parse().ok())
        });
        let Some(org) = current(&orgs, asked).cloned() else {
            return Err(
                Fail::internal("an account without a personal organization").into_response()
            );
        };
        let mut session = Self {
            user_id: user.user.id,
            api: visitor.api,
            caller,
            nav: Nav {
                email: user.user.email.clone(),
                admin: user.user.is_admin(),
                csrf: visitor.csrf,
                org: org.clone(),
                orgs,
            },
            jar: visitor.jar,
            state: visitor.state,
        };
        // A `?org=` choice is remembered; a stale cookie (an organization left) is replaced.
        if session.jar.get(ORG_COOKIE).map(|c| c.value().to_owned()) != Some(org.id.to_string()) {
            session.remember(org.id);
        }
        Ok(Some(session))
    }
}

/// `?org=<id>` of the page asked for.
fn asked_org(parts: &Parts) -> Option<Uuid> {
    url::form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(name, _)| name == "org")
        .and_then(|(_, value)| value.parse().ok())
}

/// The organization asked for when the caller is in it, else the personal one (listed first).
fn current(orgs: &[OrgItem], asked: Option<Uuid>) -> Option<&OrgItem> {
    asked
        .and_then(|id| orgs.iter().find(|o| o.id == id))
        .or_else(|| orgs.iter().find(|o| o.personal))
        .or_else(|| orgs.first())
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

#[derive(Deserialize)]
struct OrgList {
    items: Vec<OrgItem>,
}

/// The caller's organizations, the personal one first (the API's order).
async fn organizations_of(api: &Api, caller: &Caller) -> Result<Vec<OrgItem>, Fail> {
    let list: OrgList = api.get(caller, "/organizations").await.parse()?;
    Ok(list.items)
}
