//! The authenticated caller. A session token is taken from `Authorization: Bearer` or, for
//! browsers, from the HTTP-only session cookie; it must verify, be unrevoked and carry the
//! user's current token version. The user row is read on every request, so a role change or an
//! account deletion applies at once.

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts},
};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};

use crate::{
    auth::jwt::Claims,
    db::users::{self, User},
    error::ApiError,
    state::AppState,
};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "mcpgw_session";
/// Path the cookie is sent to: the API only.
const COOKIE_PATH: &str = "/api/v1";

/// A signed-in user and the claims of the token used.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub claims: Claims,
}

/// A signed-in user with the admin role (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = token_from(parts).ok_or_else(ApiError::unauthenticated)?;
        Self::from_token(state, &token).await
    }
}

impl AuthUser {
    /// The user of a session token that verifies, is unrevoked and carries the user's current
    /// token version.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let claims = state
            .tokens
            .verify(token)
            .ok_or_else(ApiError::unauthenticated)?;
        Self::from_claims(state, claims).await
    }

    /// The user of verified `claims`, if their token is unrevoked and of the user's current
    /// token version.
    pub async fn from_claims(state: &AppState, claims: Claims) -> Result<Self, ApiError> {
        let row = users::session(&state.pool, claims.sub, claims.jti)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        if row.revoked || row.user.token_version != claims.ver {
            return Err(ApiError::unauthenticated());
        }
        Ok(Self {
            user: row.user,
            claims,
        })
    }
}

impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    /// `None` for anonymous callers, invalid tokens, and when the database cannot say.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        match <Self as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            // Anonymous callers, bad tokens and an unreachable database alike: whoever asks
            // optionally (the health report) still answers, just without the private part.
            Err(_) => Ok(None),
        }
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller =
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if !caller.user.is_admin() {
            return Err(ApiError::forbidden(
                "admin_required",
                "This route is for administrators.",
            ));
        }
        Ok(Self(caller))
    }
}

/// The bearer token wins over the cookie when both are present.
fn token_from(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    CookieJar::from_headers(&parts.headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

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
