//! Sessions: who is calling and from where. A session token is taken from
//! `Authorization: Bearer` or, for browsers, from the HTTP-only session cookie ([`cookie`]); it
//! must verify, be unrevoked and carry the user's current token version. The user row is read
//! on every request, so a role change or an account deletion applies at once.
//!
//! Also here: signing in with a password ([`signin`]), the cross-origin rule for cookie
//! sessions ([`origin`]), and where a request came from ([`Seen`], for the activity log).

pub mod cookie;
pub mod origin;
pub mod signin;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts},
};
use axum_extra::extract::CookieJar;

use crate::{
    activity::Seen,
    auth::jwt::Claims,
    db::users::{self, User},
    error::ApiError,
    session::cookie::SESSION_COOKIE,
    state::AppState,
};

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

impl FromRequestParts<AppState> for Seen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, state.config.trust_forwarded_for))
    }
}
