//! What the account routes answer, shared by sign-up and sign-in ([`super::auth`]), `/me`
//! ([`super::me`]) and the administrators' user list: a user as the API shows it and a new
//! session.

use axum::response::IntoResponse;
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{db::users::User, session::cookie::session_cookie, state::AppState};

/// A user as the API shows it (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// `user` or `admin`.
    #[schema(example = "user")]
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserView {
    /// What signup answers for a taken email: shaped like a new account (a fresh random id,
    /// role `user`, created now) so the answer does not reveal that the email is taken.
    pub fn lookalike(email: &str) -> Self {
        let now = Utc::now();
        Self {
            id: Uuid::new_v4(),
            email: email.to_owned(),
            role: "user".to_owned(),
            created_at: now,
            updated_at: now,
        }
    }
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            role: user.role,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A session token, also set as an HTTP-only cookie.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// The response that signs a user in: token in the body and in the cookie.
pub fn signed_in(state: &AppState, jar: CookieJar, token: String) -> impl IntoResponse + use<> {
    let expires_in = state.tokens.ttl().as_secs();
    let jar = jar.add(session_cookie(
        token.clone(),
        expires_in,
        state.config.cookie_secure,
    ));
    (
        jar,
        axum::Json(TokenResponse {
            access_token: token,
            token_type: "bearer",
            expires_in,
        }),
    )
}
