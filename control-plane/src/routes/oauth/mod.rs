//! The OAuth 2.1 authorization server's endpoints (outside `/api/v1`). Each MCP server's
//! `mcp_url` is a protected resource served by the gateways; these endpoints issue the tokens
//! they accept:
//! - `GET /.well-known/oauth-authorization-server` (RFC 8414) and `GET /oauth/jwks`;
//! - `/oauth/authorize`: sign-in and consent pages ([`authorize`]);
//! - `POST /oauth/token`: authorization code with PKCE, refresh with rotation ([`token`]);
//! - `POST /oauth/register` (RFC 7591, [`register`]);
//! - `POST /oauth/revoke` (RFC 7009).
//!
//! What they rely on (settings, limits, clients, signing keys) is `crate::oauth`.

pub mod authorize;
pub mod page_session;
pub mod pages;
pub mod register;
pub mod token;

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderName, Method, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use tower_http::cors::{Any, CorsLayer};

use crate::{error::oauth::OAuthError, oauth::signing, state::AppState};

/// The OAuth routes (outside `/api/v1`).
pub fn router() -> Router<AppState> {
    // What agents call from code: any origin may, without credentials (browser-based clients
    // such as MCP Inspector discover, register and redeem from their own origin).
    let for_agents = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/oauth/jwks", get(jwks))
        .route("/oauth/token", post(token::token))
        .route("/oauth/register", post(register::register))
        .route("/oauth/revoke", post(token::revoke))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    HeaderName::from_static("mcp-protocol-version"),
                ])
                .max_age(Duration::from_secs(600)),
        );
    // What people's browsers navigate to.
    Router::new()
        .route(
            "/oauth/authorize",
            get(authorize::show).post(authorize::submit),
        )
        .merge(for_agents)
}

/// RFC 8414 authorization server metadata.
async fn metadata(State(state): State<AppState>) -> Json<serde_json::Value> {
    let oauth = &state.oauth;
    Json(json!({
        "issuer": oauth.issuer,
        "authorization_endpoint": oauth.url("/oauth/authorize"),
        "token_endpoint": oauth.url("/oauth/token"),
        "registration_endpoint": oauth.url("/oauth/register"),
        "revocation_endpoint": oauth.url("/oauth/revoke"),
        "jwks_uri": oauth.url("/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "scopes_supported": [shared::oauth::SCOPE],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// The public signing keys.
async fn jwks(State(state): State<AppState>) -> Response {
    match signing::jwks(&state.pool).await {
        Ok(keys) => Json(keys).into_response(),
        Err(err) => OAuthError::from(err).into_response(),
    }
}
