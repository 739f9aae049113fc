//! Checking a password to sign someone in: the one path `POST /signin` and the OAuth
//! authorization page share, so both apply the same limits (see [`crate::auth::rate_limit`]) and
//! count the same failures.

use std::{net::IpAddr, time::Duration};

use axum::http::StatusCode;
use secrecy::SecretString;
use uuid::Uuid;

use crate::{auth::password, db::users, domain::Email, error::ApiError, state::AppState};

/// Who signed in: the user's id and token version.
pub type SignedIn = (Uuid, i32);

/// Why a sign-in was refused.
pub enum Refusal {
    /// A limit is spent; try again after this long.
    TooMany(Duration),
    /// Wrong password or unknown email (the two are not told apart).
    WrongCredentials(Option<uuid::Uuid>),
    /// The database or the hashing failed.
    Failed(ApiError),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::TooMany(wait) => {
                ApiError::rate_limited("signin", wait.as_secs_f64().ceil() as u64)
            }
            Refusal::WrongCredentials(_) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The email or password is wrong.",
            ),
            Refusal::Failed(err) => err,
        }
    }
}

/// Checks `password` for `email`, asked from `client`, within the signin limits. A wrong
/// password counts against this (email, client) pair and the email; a right one counts nothing.
pub async fn authenticate(
    state: &AppState,
    client: IpAddr,
    email: &Email,
    password: SecretString,
) -> Result<SignedIn, Refusal> {
    let limiter = &state.signin_limiter;
    if let Err(wait) = limiter
        .check_client(client)
        .and_then(|()| limiter.check_account(email.as_str(), client))
    {
        tracing::warn!(%client, "signin rate limit reached");
        return Err(Refusal::TooMany(wait));
    }
    let account = users::credentials_by_email(&state.pool, email.as_str())
        .await
        .map_err(|err| Refusal::Failed(err.into()))?;
    // An unknown email is checked against a dummy hash: it takes as long as a wrong password.
    let (hash, account) = match account {
        Some((id, version, hash)) => (hash, Some((id, version))),
        None => (state.dummy_hash.to_string(), None),
    };
    let matched = password::verify(password, hash)
        .await
        .map_err(Refusal::Failed)?;
    match account.filter(|_| matched) {
        Some(signed_in) => Ok(signed_in),
        None => {
            limiter.record_failure(email.as_str(), client);
            tracing::info!("signin refused: wrong email or password");
            metrics::counter!("signin_failures_total").increment(1);
            Err(Refusal::WrongCredentials(account.map(|(id, _)| id)))
        }
    }
}
