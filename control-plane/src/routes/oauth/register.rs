//! `POST /oauth/register`: dynamic client registration (RFC 7591) of public clients only; the
//! rules a registration must meet are `oauth::clients`'.

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    db::oauth as db,
    error::oauth::{OAuthError, no_store},
    oauth::clients::{check_redirect_uris, clean_name},
    state::AppState,
};

/// A registration request; fields beyond these are ignored, as RFC 7591 asks.
#[derive(Deserialize)]
struct Registration {
    redirect_uris: Option<Value>,
    client_name: Option<Value>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
}

/// `POST /oauth/register`: dynamic client registration of a public client.
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let client =
        crate::extract::client_address(peer.ip(), &headers, state.config.trust_forwarded_for);
    if let Err(wait) = state.oauth.check_registration(client) {
        return OAuthError::slow_down(wait);
    }
    match registration(&state.pool, &body).await {
        Ok(created) => {
            let mut response = (StatusCode::CREATED, Json(created)).into_response();
            no_store(&mut response);
            response
        }
        Err(err) => err.into_response(),
    }
}

async fn registration(pool: &sqlx::PgPool, body: &[u8]) -> Result<Value, OAuthError> {
    let request: Registration = serde_json::from_slice(body).map_err(|_| {
        OAuthError::invalid_client_metadata("The body must be a JSON object of client metadata.")
    })?;
    let redirect_uris = check_redirect_uris(request.redirect_uris.as_ref())
        .map_err(OAuthError::invalid_redirect_uri)?;
    match request.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(
                "Only public clients are supported: token_endpoint_auth_method must be \"none\".",
            ));
        }
    }
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".to_owned(), "refresh_token".to_owned()]);
    if grant_types
        .iter()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types may contain only authorization_code and refresh_token.",
        ));
    }
    if request
        .response_types
        .as_ref()
        .is_some_and(|r| r.iter().any(|t| t != "code"))
    {
        return Err(OAuthError::invalid_client_metadata(
            "response_types may contain only code.",
        ));
    }
    let client_name = clean_name(
        request
            .client_name
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("MCP client"),
    );
    let client_id = shared::oauth::random_token("mcpcl_");
    db::insert_client(pool, &client_id, &client_name, &redirect_uris).await?;
    tracing::info!(client_name = %client_name, "OAuth client registered");
    Ok(json!({
        "client_id": client_id,
        "client_id_issued_at": chrono::Utc::now().timestamp(),
        "client_name": client_name,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": shared::oauth::SCOPE,
    }))
}
