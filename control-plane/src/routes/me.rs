//! `GET /me`, `PUT /me/password`, `DELETE /me`: the caller's own account.

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

use crate::routes::responses::{MalformedJson, NotJson, NotSignedIn};
use crate::{
    activity::{Action, Seen},
    auth::password,
    db::users,
    domain::Password,
    error::{ApiError, ErrorBody, FieldError},
    extract::{Json, client_ip},
    routes::{
        account::{TokenResponse, UserView, signed_in},
        write::recorded,
    },
    session::{AuthUser, cookie::cleared_cookie},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, delete_me))
        .routes(routes!(change_password))
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/me", tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserView),
        NotSignedIn,
    )
)]
async fn me(caller: AuthUser) -> axum::Json<UserView> {
    axum::Json(UserView::from(caller.user))
}

/// The current password and the new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    /// At least 8 characters and at most 72 bytes (UTF-8, bcrypt's limit): `maxLength` counts
    /// characters, which equal bytes for ASCII; a character outside ASCII counts 2 to 4 bytes.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 72)]
    new_password: SecretString,
}

/// Change the password. Every token issued before is revoked; a fresh one is returned.
#[utoipa::path(
    put, path = "/me/password", tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Password changed; use the new token", body = TokenResponse),
        MalformedJson,
        NotSignedIn,
        (status = 403, description = "Current password is wrong (`wrong_password`), or cookie request from a foreign origin", body = ErrorBody),
        NotJson,
        (status = 422, description = "New password too short or too long", body = ErrorBody),
        (status = 429, description = "Too many attempts for this account (`rate_limited`)", body = ErrorBody),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    parts: Parts,
    jar: CookieJar,
    Json(body): Json<PasswordChange>,
) -> Result<impl IntoResponse, ApiError> {
    let new_password = Password::parse(body.new_password)
        .map_err(|reason| ApiError::validation(vec![FieldError::new("new_password", reason)]))?;
    // Guessing the current password with a stolen token is limited like signin: failures
    // count against the account's (email, client) pair.
    let client = client_ip(&parts, state.config.trust_forwarded_for);
    if let Err(wait) = state
        .signin_limiter
        .check_account(&caller.user.email, client)
    {
        return Err(ApiError::rate_limited(
            "password",
            wait.as_secs_f64().ceil() as u64,
        ));
    }
    let current_hash = users::hashed_password(&state.pool, caller.user.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let activity = seen.activity(Action::PasswordChange).by(caller.user.id);
    if !password::verify(body.current_password, current_hash).await? {
        activity
            .failed("wrong_password")
            .record_now(&state.pool)
            .await;
        state
            .signin_limiter
            .record_failure(&caller.user.email, client);
        return Err(ApiError::forbidden(
            "wrong_password",
            "The current password is wrong.",
        ));
    }
    let hash = password::hash(&new_password, state.config.bcrypt_cost).await?;
    let version = recorded(&state.pool, async |tx| {
        let version = users::set_password(&mut *tx, caller.user.id, &hash).await?;
        Ok((version, activity))
    })
    .await?;
    let token = state
        .tokens
        .issue(caller.user.id, version)
        .map_err(ApiError::internal)?;
    tracing::info!(user_id = %caller.user.id, "password changed; earlier tokens revoked");
    Ok(signed_in(&state, jar, token))
}

/// Delete the account and everything it owns: its personal organization (sources, MCP servers,
/// their links) and the team organizations it alone is in. The only owner of a team
/// organization that has other members must make one of them an owner first.
#[utoipa::path(
    delete, path = "/me", tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Account and all its data deleted"),
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin", body = ErrorBody),
        (status = 409, description = "The account is the only owner of a team organization with other members (`sole_owner`)", body = ErrorBody),
    )
)]
async fn delete_me(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    jar: CookieJar,
) -> Result<impl IntoResponse, ApiError> {
    // The record has no foreign key: it outlives the account, for administrators.
    recorded(&state.pool, async |tx| {
        leave_organizations(tx, caller.user.id).await?;
        let deleted = users::delete(&mut *tx, caller.user.id).await?;
        let activity = deleted.then(|| seen.activity(Action::AccountDelete).by(caller.user.id));
        Ok(((), activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, "account deleted");
    Ok((
        StatusCode::NO_CONTENT,
        jar.add(cleared_cookie(state.config.cookie_secure)),
    ))
}

/// Before an account goes: refuses (409 `sole_owner`) if it is the only owner of a team
/// organization others are in; deletes the team organizations it alone is in.
async fn leave_organizations(
    tx: &mut sqlx::PgConnection,
    user_id: uuid::Uuid,
) -> Result<(), ApiError> {
    let owned = crate::db::organizations::solely_owned(&mut *tx, user_id).await?;
    let shared: Vec<&str> = owned
        .iter()
        .filter(|(_, _, members)| *members > 1)
        .map(|(_, name, _)| name.as_str())
        .collect();
    if !shared.is_empty() {
        return Err(ApiError::conflict(
            "sole_owner",
            format!(
                "You are the only owner of {}; make another member an owner (or delete the organization) first.",
                shared.join(", ")
            ),
        ));
    }
    for (id, _, _) in owned {
        crate::db::organizations::delete(&mut *tx, id).await?;
    }
    Ok(())
}
