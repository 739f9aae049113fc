//! The OAuth 2.1 authorization server for agents (MCP authorization), minus its HTTP
//! endpoints (those are `routes::oauth`): its settings and per-client limits ([`OAuth`]), who
//! a client is ([`clients`]: registrations and client ID metadata documents, fetched by
//! [`documents`]), the keys access tokens are signed with ([`signing`]), and clean-up.
//!
//! Anyone may call the endpoints, so what they cost is bounded per client address (IPv6:
//! per /64): `/oauth/authorize` requests and registrations by rate limits, metadata document
//! fetches as [`documents`] says.
//!
//! Access tokens are Ed25519-signed JWTs ([`signing`]) whose audience is the server's
//! canonical `mcp_url` and which name their grant: gateways verify them with public keys and
//! refuse them as soon as the grant is gone. Codes and refresh tokens are opaque and stored
//! hashed.

pub mod clients;
pub mod documents;
pub mod signing;

use std::{net::IpAddr, sync::Arc, time::Duration};

use shared::Settings;
use sqlx::PgPool;

use crate::{
    auth::rate_limit::PerClient,
    db::oauth as db,
    oauth::clients::{Client, is_document_url},
};

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

    /// The client behind `client_id`, for a request from `from`; `Err` with a sentence for the
    /// error page. Reading a registration does not count as its use (see [`clients::IDLE_CLIENT_DAYS`]).
    pub async fn client(
        &self,
        pool: &PgPool,
        client_id: &str,
        from: IpAddr,
    ) -> Result<Client, String> {
        if is_document_url(client_id) {
            return self.documents.client(client_id, from).await;
        }
        match db::registered_client(pool, client_id).await {
            Ok(Some(row)) => Ok(Client {
                client_id: row.client_id,
                client_name: row.client_name,
                redirect_uris: row.redirect_uris,
                from_document: false,
            }),
            Ok(None) => Err("This client is not registered here (unknown client_id).".to_owned()),
            Err(err) => {
                tracing::error!(error = %err, "cannot read OAuth client");
                Err(
                    "The authorization server cannot answer right now; try again shortly."
                        .to_owned(),
                )
            }
        }
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

/// Periodic clean-up: expired codes and refresh tokens, idle registrations, retired keys.
pub async fn housekeeping(pool: &PgPool, oauth: &OAuth) {
    let result: anyhow::Result<()> = async {
        let mut conn = pool.acquire().await?;
        let expired = db::purge_expired(&mut conn).await?;
        let idle = db::purge_idle_clients(&mut *conn, clients::IDLE_CLIENT_DAYS).await?;
        // A retired key verifies until every token it signed has expired (plus clock skew).
        let after = oauth.access_ttl.as_secs() as i64 + 300;
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
