//! The session cookies: HTTP-only, `SameSite=Lax`, each sent only to the path that reads it.

use axum_extra::extract::cookie::{Cookie, SameSite};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "mcpgw_session";
/// Path the cookie is sent to: the API only.
const COOKIE_PATH: &str = "/api/v1";

/// The HTTP-only session cookie carrying `token`.
pub fn session_cookie(token: String, max_age_secs: u64, secure: bool) -> Cookie<'static> {
    scoped_cookie(SESSION_COOKIE, token, COOKIE_PATH, max_age_secs, secure)
}

/// An HTTP-only, `SameSite=Lax` cookie sent only to `path`.
pub fn scoped_cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    max_age_secs: u64,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path(path)
        .max_age(cookie_duration(max_age_secs))
        .build()
}

/// A cookie that makes the browser drop the session cookie.
pub fn cleared_cookie(secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path(COOKIE_PATH)
        .max_age(cookie_duration(0))
        .build()
}

fn cookie_duration(secs: u64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}
