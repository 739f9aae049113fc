//! `POST /signup`, `POST /signin`, `POST /signout`.

use axum::{
    extract::State,
    http::{StatusCode, request::Parts},
    response::IntoResponse,
};
use axum_extra::extract::CookieJar;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{MalformedJson, NotJson, NotSignedIn};
use crate::{
    activity::{Action, Seen},
    auth::password,
    db::users,
    domain::{Email, Password},
    error::{ApiError, ErrorBody, FieldError},
    extract::{Json, client_ip},
    routes::account::{TokenResponse, UserView, signed_in},
    session::{AuthUser, cookie::cleared_cookie, signin},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(signin))
        .routes(routes!(signout))
}

/// Email and password of a new or returning user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// A valid address of at most 254 bytes (no quoted local part, no IP-literal domain);
    /// stored trimmed and lower-cased.
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    email: String,
    /// At least 8 characters and at most 72 bytes (UTF-8, bcrypt's limit): `maxLength` counts
    /// characters, which equal bytes for ASCII; a character outside ASCII counts 2 to 4 bytes.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 72, example = "correct horse battery")]
    password: SecretString,
}

/// Create an account.
///
/// The answer is the same whether or not the email already had an account: only signing in
/// tells. A taken email keeps its account and password.
#[utoipa::path(
    post, path = "/signup", tag = "account",
    request_body = Credentials,
    responses(
        (status = 201, description = "Account created; a taken email gets the same answer (an `id` that belongs to no account) and the existing account is not changed, so signup does not reveal who has an account", body = UserView),
        MalformedJson,
        (status = 403, description = "Signup is disabled (`signup_disabled`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid email or password length", body = ErrorBody),
        (status = 429, description = "Too many attempts from this client (`rate_limited`, with `Retry-After`)", body = ErrorBody),
    )
)]
async fn signup(
    State(state): State<AppState>,
    parts: Parts,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    let client = client_ip(&parts, state.config.trust_forwarded_for);
    // Every signup costs a bcrypt hash: the per-client signin budget covers signups too.
    if let Err(wait) = state.signin_limiter.check_client(client) {
        tracing::warn!(%client, "signup rate limit reached");
        return Err(ApiError::rate_limited(
            "signup",
            wait.as_secs_f64().ceil() as u64,
        ));
    }
    if !state.config.signup_enabled {
        return Err(ApiError::forbidden(
            "signup_disabled",
            "Signup is disabled; ask an administrator.",
        ));
    }
    let (email, password) = validate(body)?;
    let hash = password::hash(&password, state.config.bcrypt_cost).await?;
    // A taken address is answered like a new one, after the same work (a hash and an insert),
    // so signup does not tell who has an account; the existing account is not touched.
    let view = match users::insert_unless_taken(&state.pool, email.as_str(), &hash).await? {
        Some(user) => {
            tracing::info!(user_id = %user.id, "account created");
            signed_up(&state, &parts, user.id).await;
            UserView::from(user)
        }
        None => {
            tracing::info!("signup for a taken email answered like a new account");
            UserView::lookalike(email.as_str())
        }
    };
    Ok((StatusCode::CREATED, axum::Json(view)))
}

fn validate(body: Credentials) -> Result<(Email, Password), ApiError> {
    let email = Email::parse(&body.email);
    let password = Password::parse(body.password);
    match (email, password) {
        (Ok(email), Ok(password)) => Ok((email, password)),
        (email, password) => {
            let mut fields = Vec::new();
            if let Err(reason) = email {
                fields.push(FieldError::new("email", reason));
            }
            if let Err(reason) = password {
                fields.push(FieldError::new("password", reason));
            }
            Err(ApiError::validation(fields))
        }
    }
}

/// Sign in and get a session token.
///
/// A wrong password and an unknown email get the same answer in about the same time. Failures
/// are limited per (email, client address) and, more loosely, per email; see the README.
#[utoipa::path(
    post, path = "/signin", tag = "account",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in; the token is also set as an HTTP-only cookie", body = TokenResponse),
        MalformedJson,
        (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid email", body = ErrorBody),
        (status = 429, description = "Too many attempts for this client or email (`rate_limited`, with `Retry-After`)", body = ErrorBody),
    )
)]
async fn signin(
    State(state): State<AppState>,
    parts: Parts,
    jar: CookieJar,
    Json(body): Json<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|reason| ApiError::validation(vec![FieldError::new("email", reason)]))?;
    let client = client_ip(&parts, state.config.trust_forwarded_for);
    let (user_id, version) = match signin::authenticate(&state, client, &email, body.password).await
    {
        Ok(signed_in) => signed_in,
        Err(refusal) => {
            if let signin::Refusal::WrongCredentials(account) = refusal {
                record_signin(&state, &parts, Err(account)).await;
            }
            return Err(refusal.into());
        }
    };
    let token = state
        .tokens
        .issue(user_id, version)
        .map_err(ApiError::internal)?;
    tracing::info!(%user_id, "signed in");
    record_signin(&state, &parts, Ok(user_id)).await;
    Ok(signed_in(&state, jar, token))
}

/// Sign out: the token used is revoked, and the cookie cleared.
#[utoipa::path(
    post, path = "/signout", tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Signed out; the token no longer works"),
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin (`cross_origin_request`)", body = ErrorBody),
    )
)]
async fn signout(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    jar: CookieJar,
) -> Result<impl IntoResponse, ApiError> {
    users::revoke_token(
        &state.pool,
        caller.claims.jti,
        caller.user.id,
        caller.claims.expires_at(),
    )
    .await?;
    tracing::info!(user_id = %caller.user.id, "signed out");
    signed_out(&state, seen, caller.user.id).await;
    Ok((
        StatusCode::NO_CONTENT,
        jar.add(cleared_cookie(state.config.cookie_secure)),
    ))
}

/// `POST /signup` succeeded (after the account committed).
async fn signed_up(state: &AppState, parts: &Parts, user: Uuid) {
    let activity = Seen::of(parts, state.config.trust_forwarded_for)
        .activity(Action::Signup)
        .by(user);
    activity.record_now(&state.pool).await;
}

/// `POST /signin`: `Ok(user)` signed in, or `Err(account)` refused. A refusal is linked to the
/// account its email names only when there is one, so only that account's owner (and
/// administrators) see it; an unknown email leaves an unlinked record, and the email typed is
/// never stored (people type passwords into email fields).
async fn record_signin(state: &AppState, parts: &Parts, outcome: Result<Uuid, Option<Uuid>>) {
    let activity = Seen::of(parts, state.config.trust_forwarded_for).activity(Action::Signin);
    let activity = match outcome {
        Ok(user) => activity.by(user),
        Err(account) => activity.on_user(account).failed("invalid_credentials"),
    };
    activity.record_now(&state.pool).await;
}

/// `POST /signout` (after the token's revocation committed).
async fn signed_out(state: &AppState, seen: Seen, user: Uuid) {
    let activity = seen.activity(Action::Signout).by(user);
    activity.record_now(&state.pool).await;
}
