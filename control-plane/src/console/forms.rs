//! Anti-forgery for the console's forms. A POST is taken only when it comes from this origin
//! (the Origin rule of the REST API, `session::origin`) and carries a token bound to a random
//! HTTP-only cookie of this browser: another site can neither read the cookie nor mint a
//! token for it (tokens are signed with the session key and expire after 30 minutes).

use axum::http::HeaderMap;
use axum_extra::extract::CookieJar;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{session::cookie::scoped_cookie, state::AppState};

/// The random per-browser value form tokens are bound to.
const FORM_COOKIE: &str = "mcpgw_console_form";
/// A year: the cookie only names the browser, it grants nothing.
const FORM_COOKIE_SECS: u64 = 365 * 24 * 3600;

/// The browser's form cookie (made when missing) and a fresh form token bound to it.
pub fn issue(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let (jar, value) = match jar.get(FORM_COOKIE) {
        Some(cookie) => {
            let value = cookie.value().to_owned();
            (jar, value)
        }
        None => {
            let mut bytes = [0u8; 24];
            if getrandom::fill(&mut bytes).is_err() {
                tracing::error!("no randomness for the form cookie");
            }
            let value = URL_SAFE_NO_PAD.encode(bytes);
            let cookie = scoped_cookie(
                FORM_COOKIE,
                value.clone(),
                "/",
                FORM_COOKIE_SECS,
                state.config.cookie_secure,
            );
            (jar.add(cookie), value)
        }
    };
    let token = state.tokens.form_token(&binding(&value));
    (jar, token)
}

/// Whether a form POST is genuine: same origin (or an allowed one) and a current token for
/// this browser's cookie.
pub fn genuine(state: &AppState, headers: &HeaderMap, jar: &CookieJar, token: &str) -> bool {
    crate::session::origin::origin_allowed(headers, &state.config.cors_allowed_origins)
        && jar.get(FORM_COOKIE).is_some_and(|cookie| {
            state
                .tokens
                .check_form_token(token, &binding(cookie.value()))
        })
}

/// Console tokens cannot be replayed on the OAuth pages (their binding includes the request).
fn binding(cookie: &str) -> String {
    format!("console:{cookie}")
}
