//! The OAuth 2.1 authorization server for agents (MCP authorization). Each MCP server's
//! `mcp_url` is a protected resource served by the gateways; this module issues the tokens
//! they accept:
//! - `GET /.well-known/oauth-authorization-server` (RFC 8414) and `GET /oauth/jwks`;
//! - `/oauth/authorize`: sign-in and consent pages ([`authorize`]);
//! - `POST /oauth/token`: authorization code with PKCE, refresh with rotation ([`token`]);
//! - `POST /oauth/register` (RFC 7591) and client ID metadata documents ([`clients`],
//!   [`documents`]);
//! - `POST /oauth/revoke` (RFC 7009).
//!
//! Anyone may call these endpoints, so what they cost is bounded per client address (IPv6:
//! per /64): `/oauth/authorize` requests and registrations by rate limits, metadata document
//! fetches as [`documents`] says.
//!
//! Access tokens are Ed25519-signed JWTs ([`signing`]) whose audience is the server's
//! canonical `mcp_url` and which name their grant: gateways verify them with public keys and
//! refuse them as soon as the grant is gone. Codes and refresh tokens are opaque and stored
//! hashed.

pub mod authorize;
pub mod clients;
pub mod documents;
pub mod page_session;
pub mod pages;
pub mod signing;
pub mod token;

use std::{net::IpAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderName, Method, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use shared::Settings;
use tower_http::cors::{Any, CorsLayer};

use crate::{auth::rate_limit::PerClient, db::oauth as db, state::AppState};

/// Lifetime of an authorization code.
pub const CODE_TTL: Duration = Duration::from_secs(60);

/// What the OAuth endpoints need, built once.
pub struct OAuth {
    /// `CONTROL_PLANE_PUBLIC_URL`.
    pub issuer: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub documents: documents::Documents,
    registrations: PerClient,
    authorize_requests: PerClient,
}

impl OAuth {
    pub fn new(settings: &Settings) -> anyhow::Result<Arc<Self>> {
        let limits = &settings.control_plane;
        Ok(Arc::new(Self {
            issuer: settings.common.control_plane_public_url.clone(),
            access_ttl: Duration::from_secs(limits.oauth_access_token_ttl_secs),
            refresh_ttl: Duration::from_secs(limits.oauth_refresh_token_ttl_secs),
            documents: documents::Documents::new(
                &limits.oauth_cimd_allow_http_hosts,
                PerClient::per_minute(limits.oauth_document_fetches_per_minute_per_client),
            )?,
            registrations: PerClient::per_hour(limits.oauth_registrations_per_hour_per_client),
            authorize_requests: PerClient::per_minute(
                limits.oauth_authorize_requests_per_minute_per_client,
            ),
        }))
    }

    /// `Err(seconds to wait)` once an address has registered too many clients this hour.
    pub fn check_registration(&self, client: IpAddr) -> Result<(), u64> {
        limited(&self.registrations, client, "oauth_register")
    }

    /// `Err(seconds to wait)` once an address has sent too many authorization requests.
    pub fn check_authorize(&self, client: IpAddr) -> Result<(), u64> {
        limited(&self.authorize_requests, client, "oauth_authorize")
    }

    /// An absolute URL of this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Forgets idle limiter state.
    pub fn forget_idle(&self) {
        self.registrations.forget_idle();
        self.authorize_requests.forget_idle();
        self.documents.forget_idle();
    }
}

/// Counts a request from `client` against `limiter`; `Err(whole seconds to wait)` when over it
/// (counted in `rate_limit_rejections_total` under `name`).
pub(crate) fn limited(limiter: &PerClient, client: IpAddr, name: &'static str) -> Result<(), u64> {
    limiter.check(client).map_err(|wait| {
        metrics::counter!("rate_limit_rejections_total", "limiter" => name).increment(1);
        wait.as_secs_f64().ceil() as u64
    })
}

/// The OAuth routes (outside `/api/v1`).
pub fn router() -> Router<AppState> {
    // What agents call from code: any origin may, without credentials (browser-based clients
    // such as MCP Inspector discover, register and redeem from their own origin).
    let for_agents = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/oauth/jwks", get(jwks))
        .route("/oauth/token", post(token::token))
        .route("/oauth/register", post(clients::register))
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
        Err(err) => crate::error::oauth::OAuthError::from(err).into_response(),
    }
}

/// Periodic clean-up: expired codes and refresh tokens, idle registrations, retired keys.
pub async fn housekeeping(state: &AppState) {
    let result: anyhow::Result<()> = async {
        let mut conn = state.pool.acquire().await?;
        let expired = db::purge_expired(&mut conn).await?;
        let idle = db::purge_idle_clients(&mut *conn, clients::IDLE_CLIENT_DAYS).await?;
        // A retired key verifies until every token it signed has expired (plus clock skew).
        let after = state.oauth.access_ttl.as_secs() as i64 + 300;
        let keys = db::purge_retired_signing_keys(&mut *conn, after).await?;
        if expired + idle + keys > 0 {
            tracing::debug!(
                expired,
                idle_clients = idle,
                retired_keys = keys,
                "OAuth clean-up"
            );
        }
        Ok(())
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "OAuth clean-up failed");
    }
}
