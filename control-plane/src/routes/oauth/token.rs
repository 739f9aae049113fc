//! `POST /oauth/token` and `POST /oauth/revoke`.
//!
//! Codes are single-use and live a minute; redeeming one checks the client, the redirect URI,
//! the PKCE verifier and the resource it was issued for. Only a redemption that passes these
//! checks spends the code: a wrong one is `invalid_grant` and leaves the code to its client,
//! up to three wrong ones, after which the code is deleted. A code presented again after it
//! was redeemed ends its grant (and so every token issued from it). Refresh tokens rotate on every use; a used
//! one presented again means it was copied, and ends its grant too. Every failure is one of
//! OAuth's error codes with a fixed sentence.

use std::collections::HashMap;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::{
    access_key::hash,
    oauth::{AccessClaims, REFRESH_TOKEN_PREFIX, canonical_resource, random_token},
};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{
    activity::{Action, Seen},
    db::oauth::{self as db, Redeemable},
    error::oauth::{OAuthError, no_store},
    oauth::signing,
    state::AppState,
};

/// Wrong redemptions after which a code is deleted. An S256 verifier has at least 256 bits
/// of entropy, so a few tries leave nothing to guess, and a client that sent a wrong field
/// by mistake can still retry.
const MAX_CODE_FAILURES: i32 = 3;

/// The form fields of a request, each at most once.
type Form = HashMap<String, String>;

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    let mut form = Form::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if form.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(
                "A parameter is given more than once.",
            ));
        }
    }
    Ok(form)
}

fn required<'a>(form: &'a Form, name: &'static str) -> Result<&'a str, OAuthError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing.")))
}

/// `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let form = parse_form(&headers, &body)?;
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => redeem_code(&state, &form).await,
            Some("refresh_token") => refresh(&state, &form).await,
            Some(_) => Err(OAuthError::unsupported_grant_type()),
            None => Err(OAuthError::invalid_request("grant_type is missing.")),
        }
    }
    .await;
    match result {
        Ok(tokens) => {
            let mut response = (StatusCode::OK, Json(tokens)).into_response();
            no_store(&mut response);
            response
        }
        Err(err) => {
            tracing::info!(error = err.code(), "token request refused");
            err.into_response()
        }
    }
}

async fn redeem_code(state: &AppState, form: &Form) -> Result<serde_json::Value, OAuthError> {
    let code = required(form, "code")?;
    let client_id = required(form, "client_id")?;
    let redirect_uri = required(form, "redirect_uri")?;
    let verifier = required(form, "code_verifier")?;
    let code_hash = hash(code);
    // One transaction: the code is spent exactly when the tokens are stored, so a failure on
    // our side leaves it usable for the client's retry (which must not look like a replay).
    let mut tx = state.pool.begin().await?;
    let Some(found) = db::code_for_update(&mut tx, &code_hash).await? else {
        return Err(OAuthError::invalid_grant("The code is unknown or expired."));
    };
    if found.used_at.is_some() {
        // RFC 6749 §4.1.2: a code used twice revokes what it issued.
        db::end_grant(&mut *tx, found.grant_id, None).await?;
        tx.commit().await?;
        tracing::warn!(grant_id = %found.grant_id, "authorization code replayed; grant ended");
        return Err(OAuthError::invalid_grant("The code was already used."));
    }
    if let Err(refused) = check_code(&found, client_id, redirect_uri, verifier, form) {
        // A wrong verifier (or client, redirect URI, resource) does not spend the code: the
        // client's own redemption may still come. The row lock makes the count exact.
        if db::fail_code(&mut tx, &code_hash, MAX_CODE_FAILURES).await? {
            tracing::warn!(grant_id = %found.grant_id, "authorization code deleted after wrong redemptions");
        }
        tx.commit().await?;
        return Err(refused);
    }
    let tokens = issue(state, &mut tx, &found).await?;
    db::use_code(&mut *tx, &code_hash).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// Whether the code may be redeemed by this request.
fn check_code(
    found: &Redeemable,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
    form: &Form,
) -> Result<(), OAuthError> {
    if found.expires_at < Utc::now() {
        return Err(OAuthError::invalid_grant("The code is unknown or expired."));
    }
    if found.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "The code was issued to another client.",
        ));
    }
    if found.redirect_uri.as_deref() != Some(redirect_uri) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request.",
        ));
    }
    if !pkce_matches(
        verifier,
        found.code_challenge.as_deref().unwrap_or_default(),
    ) {
        return Err(OAuthError::invalid_grant(
            "The code_verifier does not match the code_challenge.",
        ));
    }
    check_resource(form, found)
}

async fn refresh(state: &AppState, form: &Form) -> Result<serde_json::Value, OAuthError> {
    let presented = required(form, "refresh_token")?;
    let client_id = required(form, "client_id")?;
    let token_hash = hash(presented);
    let mut tx = state.pool.begin().await?;
    let Some(found) = db::refresh_for_update(&mut tx, &token_hash).await? else {
        return Err(OAuthError::invalid_grant(
            "The refresh token is unknown, expired or revoked.",
        ));
    };
    if found.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "The refresh token was issued to another client.",
        ));
    }
    if found.used_at.is_some() {
        // A rotated-away token came back: someone holds a copy. End the grant.
        db::end_grant(&mut *tx, found.grant_id, None).await?;
        tx.commit().await?;
        tracing::warn!(grant_id = %found.grant_id, "refresh token reused; grant ended");
        return Err(OAuthError::invalid_grant(
            "The refresh token was already used; the connection is revoked.",
        ));
    }
    if found.expires_at < Utc::now() {
        return Err(OAuthError::invalid_grant(
            "The refresh token is unknown, expired or revoked.",
        ));
    }
    check_resource(form, &found)?;
    // Rotation in one transaction: the old token is spent only with the new one stored.
    let tokens = issue(state, &mut tx, &found).await?;
    db::use_refresh(&mut *tx, &token_hash).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// An optional `resource` must name what the grant is for (RFC 8707).
fn check_resource(form: &Form, found: &Redeemable) -> Result<(), OAuthError> {
    match form.get("resource").filter(|r| !r.is_empty()) {
        None => Ok(()),
        Some(resource)
            if canonical_resource(resource).as_deref() == Some(found.resource.as_str()) =>
        {
            Ok(())
        }
        Some(_) => Err(OAuthError::invalid_target(
            "resource differs from the one authorized.",
        )),
    }
}

/// RFC 7636 S256: BASE64URL(SHA256(verifier)) equals the challenge; the verifier is 43 to
/// 128 unreserved characters.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// A new access token and refresh token under the grant; the refresh token is stored in the
/// caller's transaction.
async fn issue(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    grant: &Redeemable,
) -> Result<serde_json::Value, OAuthError> {
    let oauth = &state.oauth;
    let now = Utc::now();
    let claims = AccessClaims {
        iss: oauth.issuer.clone(),
        sub: grant.user_id,
        aud: grant.resource.clone(),
        iat: now.timestamp(),
        exp: now.timestamp() + oauth.access_ttl.as_secs() as i64,
        jti: Uuid::new_v4(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.clone(),
        gid: grant.grant_id,
    };
    let access_token = signing::sign(&state.pool, &state.keyring, &claims).await?;
    let refresh_token = random_token(REFRESH_TOKEN_PREFIX);
    let refresh_expires = now + oauth.refresh_ttl;
    db::insert_refresh(
        tx,
        &hash(&refresh_token),
        grant.grant_id,
        &grant.resource,
        refresh_expires,
    )
    .await?;
    tracing::info!(grant_id = %grant.grant_id, server_id = %grant.server_id, "OAuth tokens issued");
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": oauth.access_ttl.as_secs(),
        "refresh_token": refresh_token,
        "scope": grant.scope,
    }))
}

/// `POST /oauth/revoke` (RFC 7009): a refresh token or an access token ends its grant. The
/// answer is 200 whether or not the token was known, so it reveals nothing.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    seen: Seen,
    body: axum::body::Bytes,
) -> Response {
    let result: Result<(), OAuthError> = async {
        let form = parse_form(&headers, &body)?;
        let token = required(&form, "token")?;
        let client_id = form.get("client_id").map(String::as_str);
        let grant = if token.starts_with(REFRESH_TOKEN_PREFIX) {
            db::grant_of_refresh(&state.pool, &hash(token)).await?
        } else {
            grant_of_access_token(&state, token).await
        };
        if let Some((grant_id, owner)) = grant
            && client_id.is_none_or(|c| c == owner)
        {
            let mut tx = state.pool.begin().await?;
            if let Some((user_id, server_id)) = db::revoke_grant(&mut *tx, grant_id, &owner).await?
            {
                seen.activity(Action::GrantRevoke)
                    .by_oauth_client()
                    .on_user(user_id)
                    .server(server_id)
                    .grant(grant_id)
                    .detail("client_id", owner.as_str())
                    .record(&mut *tx)
                    .await?;
                tracing::info!(%grant_id, "grant revoked by its client");
            }
            tx.commit().await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(err) => err.into_response(),
    }
}

/// The grant of one of our access tokens (signature checked; expiry not: revoking an expired
/// token still ends its grant).
async fn grant_of_access_token(state: &AppState, token: &str) -> Option<(Uuid, String)> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let kid = header.kid?;
    let keys = db::signing_keys(&state.pool).await.ok()?;
    let key = keys.iter().find(|k| k.kid == kid)?;
    let decoding =
        jsonwebtoken::DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&key.public_key))
            .ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss"]);
    validation.set_issuer(&[&state.oauth.issuer]);
    let data = jsonwebtoken::decode::<AccessClaims>(token, &decoding, &validation).ok()?;
    Some((data.claims.gid, data.claims.client_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_matches("short", challenge));
    }
}
