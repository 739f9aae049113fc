//! `/oauth/authorize`: where an agent sends its user's browser. `GET` checks the request and
//! shows a sign-in form (no session) or the consent page (a session); `POST` takes the forms.
//!
//! A refused request gets an error page and the browser is sent nowhere (see [`request::Refusal`]);
//! only the person's own answer (Approve, with `code`, or Deny, with `access_denied`) goes back
//! to the client's redirect URI, with `state` and `iss`. A `resource` that is not one of the
//! signed-in user's live servers is `invalid_target`, whether it belongs to someone else or to
//! no one. The pages' session lives 15 minutes (enough for one connection, short on a shared
//! browser), and the consent page offers to switch accounts. Forms carry an anti-forgery token bound to a random cookie of this browser
//! and to the request, and a POST from another origin is refused.
//!
//! Anyone may send these requests, and each may name a client whose metadata document must
//! be fetched: they are limited per client address (IPv6: per /64) by
//! `OAUTH_AUTHORIZE_REQUESTS_PER_MINUTE_PER_CLIENT` (429 with a page and `Retry-After`), and
//! the fetches by [`crate::oauth::documents`].

mod consent;
mod request;

use consent::{approve, consent, host_of, redirect_to_client};
use request::{Refusal, Request, check};

use std::{collections::HashMap, net::IpAddr};

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use shared::oauth::{CODE_PREFIX, SCOPE, canonical_resource, random_token};

use crate::{
    activity::{Action, Seen},
    db::oauth as db,
    domain::Email,
    extract::client_ip,
    oauth::{CODE_TTL, clients::Client},
    routes::oauth::{
        page_session,
        pages::{self, Consent, ErrorPage, SignIn},
    },
    session::{AuthUser, cookie::scoped_cookie, signin},
    state::AppState,
    web::next,
};

/// Random per-browser value the forms' anti-forgery tokens are bound to.
const FORM_COOKIE: &str = "mcpgw_oauth_form";
const COOKIE_PATH: &str = "/oauth";

/// `GET /oauth/authorize`.
pub async fn show(
    State(state): State<AppState>,
    parts: Parts,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Response {
    let from = client_ip(&parts, state.config.trust_forwarded_for);
    if let Err(wait) = state.oauth.check_authorize(from) {
        return too_many(wait);
    }
    let request = match check(&state, query.as_deref().unwrap_or_default(), from).await {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    let (jar, form_cookie) = form_cookie(jar, state.config.cookie_secure);
    match session(&state, &jar).await {
        Some(user) => (jar, consent(&state, &request, &user, &form_cookie).await).into_response(),
        None => (
            jar,
            sign_in(&state, &request, &form_cookie, "", None, StatusCode::OK),
        )
            .into_response(),
    }
}

/// `POST /oauth/authorize`: the sign-in form, or Approve / Deny.
pub async fn submit(
    State(state): State<AppState>,
    parts: Parts,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    let from = client_ip(&parts, state.config.trust_forwarded_for);
    if let Err(wait) = state.oauth.check_authorize(from) {
        return too_many(wait);
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let request = match check(&state, field("request"), from).await {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    let form_value = jar.get(FORM_COOKIE).map(|c| c.value().to_owned());
    let genuine = same_origin(&parts.headers, &state.oauth.issuer)
        && form_value.as_deref().is_some_and(|cookie| {
            state
                .tokens
                .check_form_token(field("csrf"), &binding(cookie, &request.raw))
        });
    if !genuine {
        tracing::warn!("authorization form refused: missing or forged anti-forgery token");
        return page_error(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Start the connection again from the app.",
        );
    }
    let form_cookie = form_value.unwrap_or_default();
    match field("action") {
        "signin" => {
            let password = SecretString::from(field("password").to_owned());
            sign_in_submitted(
                &state,
                &parts,
                jar,
                &request,
                &form_cookie,
                field("email"),
                password,
            )
            .await
        }
        "approve" => match session(&state, &jar).await {
            Some(user) => {
                approve(
                    &state,
                    &request,
                    &user,
                    &Seen::of(&parts, state.config.trust_forwarded_for),
                )
                .await
            }
            None => sign_in(
                &state,
                &request,
                &form_cookie,
                "",
                Some("Your session ended; sign in again."),
                StatusCode::UNAUTHORIZED,
            ),
        },
        "switch" => {
            // "Not you?": end this browser's session and sign in again.
            let jar = page_session::end(&state, jar).await;
            let page = sign_in(&state, &request, &form_cookie, "", None, StatusCode::OK);
            (jar, page).into_response()
        }
        "deny" => {
            tracing::info!(client_id = %request.client.client_id, "authorization denied by the user");
            redirect_to_client(
                &state,
                &request.redirect_uri,
                request.state.as_deref(),
                &[
                    ("error", "access_denied"),
                    ("error_description", "The user denied the request."),
                ],
            )
        }
        _ => page_error(StatusCode::BAD_REQUEST, "Unknown action."),
    }
}

/// The signed-in user of the pages' session cookie.
async fn session(state: &AppState, jar: &CookieJar) -> Option<AuthUser> {
    page_session::current(state, jar).await
}

/// The browser's form cookie, created if it has none.
fn form_cookie(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(existing) = jar.get(FORM_COOKIE) {
        let value = existing.value().to_owned();
        return (jar, value);
    }
    let value = random_token("");
    let cookie = scoped_cookie(FORM_COOKIE, value.clone(), COOKIE_PATH, 24 * 3600, secure);
    (jar.add(cookie), value)
}

/// What a form token is bound to: this browser's form cookie and this request.
fn binding(form_cookie: &str, raw_request: &str) -> String {
    let digest = Sha256::digest(format!("{form_cookie}\n{raw_request}"));
    URL_SAFE_NO_PAD.encode(digest)
}

/// A POST is genuine only from this origin (browsers send `Origin` on form posts).
fn same_origin(headers: &HeaderMap, issuer: &str) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin.eq_ignore_ascii_case(issuer),
        // Old browsers and non-browser clients: the anti-forgery token still has to match.
        None => true,
    }
}

fn sign_in(
    state: &AppState,
    request: &Request,
    form_cookie: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = state.tokens.form_token(&binding(form_cookie, &request.raw));
    let page = SignIn {
        client_name: &request.client.client_name,
        redirect_host: &host_of(&request.redirect_uri),
        request: &request.raw,
        csrf: &csrf,
        email,
        error,
    };
    pages::render(status, &page, None)
}

async fn sign_in_submitted(
    state: &AppState,
    parts: &Parts,
    jar: CookieJar,
    request: &Request,
    form_cookie: &str,
    email: &str,
    password: SecretString,
) -> Response {
    let again =
        |error: &str, status| sign_in(state, request, form_cookie, email, Some(error), status);
    let Ok(email) = Email::parse(email) else {
        return again(
            "Enter a valid email address.",
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let client = client_ip(parts, state.config.trust_forwarded_for);
    let activity = Seen::of(parts, state.config.trust_forwarded_for)
        .activity(Action::Signin)
        .detail("via", "oauth");
    let (user_id, version) = match signin::authenticate(state, client, &email, password).await {
        Ok(signed_in) => signed_in,
        Err(signin::Refusal::TooMany(wait)) => {
            let message = format!(
                "Too many attempts; wait {} seconds and try again.",
                wait.as_secs().max(1)
            );
            return again(&message, StatusCode::TOO_MANY_REQUESTS);
        }
        Err(signin::Refusal::WrongCredentials(account)) => {
            // Linked only to an existing account, like `POST /signin`.
            activity
                .on_user(account)
                .failed("invalid_credentials")
                .record_now(&state.pool)
                .await;
            return again("The email or password is wrong.", StatusCode::UNAUTHORIZED);
        }
        Err(signin::Refusal::Failed(err)) => {
            tracing::error!(error = %err.code(), "signin failed (authorization page)");
            return again(
                "Signing in is not possible right now; try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let cookie = match page_session::start(state, user_id, version) {
        Ok(cookie) => cookie,
        Err(err) => {
            tracing::error!(error = %err, "cannot issue a session");
            return again(
                "Signing in is not possible right now; try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    activity.by(user_id).record_now(&state.pool).await;
    tracing::info!(%user_id, "signed in (authorization page)");
    // Back to the same request, now with a session: the consent page.
    let back = format!("/oauth/authorize?{}", request.raw);
    (jar.add(cookie), next::back_to(&back, "/oauth/authorize")).into_response()
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => page_error(StatusCode::BAD_REQUEST, &message),
        Refusal::Invalid { error, description } => page_error(
            StatusCode::BAD_REQUEST,
            &format!("{description} (OAuth error: {error})"),
        ),
    }
}

/// 429 with `Retry-After`: this address sent too many authorization requests.
fn too_many(wait_secs: u64) -> Response {
    let mut response = page_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many authorization requests from this address; wait a minute and try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    response
}

fn page_error(status: StatusCode, message: &str) -> Response {
    pages::render(status, &ErrorPage { message }, None)
}

fn unavailable(err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "authorization page failed");
    page_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The authorization server cannot answer right now; try again shortly.",
    )
}
