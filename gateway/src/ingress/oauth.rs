//! The gateway as an OAuth protected resource: verifying access tokens, the protected
//! resource metadata (RFC 9728) on every served host, and the `WWW-Authenticate` challenge
//! that points agents to it.
//!
//! A token is accepted only if it is an `at+jwt` signed with one of the public keys in the
//! snapshot (EdDSA only), its issuer is `CONTROL_PLANE_PUBLIC_URL`, it has not expired, its
//! audience is exactly this server's canonical `mcp_url`, and its grant is live in the
//! snapshot. A signature check costs far more than the rest of a request's access check, so
//! verified tokens are remembered (by SHA-256) with what was verified; expiry, audience, key and
//! grant are still checked on every request, so a revocation or a key's removal applies at once.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::json;
use shared::{
    access_key::{self, KeyHash},
    oauth::{ACCESS_TOKEN_TYPE, AccessClaims, SCOPE},
};
use uuid::Uuid;

use crate::{
    ingress::routing::Routing,
    snapshot::{ServedServer, Snapshot},
};

/// Verified tokens remembered at most (the memory is cleared when full).
const CACHE_MAX: usize = 100_000;
/// Clock skew tolerated on expiry.
const LEEWAY_SECS: i64 = 5;

/// What a verified token said that is checked again on each request.
struct Verified {
    kid: String,
    audience: String,
    expires_at: i64,
    grant_id: Uuid,
    /// The person who approved the grant (`sub`).
    subject: Uuid,
}

/// Verifies OAuth access tokens for one issuer.
pub struct Verifier {
    issuer: String,
    verified: RwLock<HashMap<KeyHash, Verified>>,
}

impl Verifier {
    pub fn new(issuer: &str) -> Arc<Self> {
        Arc::new(Self {
            issuer: issuer.to_owned(),
            verified: RwLock::default(),
        })
    }

    /// The grant of `token` and the person it is theirs, if it is a valid access token for
    /// `server` now.
    pub fn grant(
        &self,
        snapshot: &Snapshot,
        server: &ServedServer,
        token: &str,
    ) -> Option<(Uuid, Uuid)> {
        let digest = access_key::hash(token);
        // The usual case: a token seen before, checked under the read lock (no copy made).
        if let Some(verified) = self.verified.read().expect("token cache lock").get(&digest) {
            return Self::live(verified, snapshot, server);
        }
        let verified = self.verify(snapshot, token)?;
        let grant = Self::live(&verified, snapshot, server);
        let mut cache = self.verified.write().expect("token cache lock");
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(digest, verified);
        grant
    }

    /// The grant of a verified token and its person if it is still good for `server` now: the
    /// grant is live and still that person's.
    fn live(
        verified: &Verified,
        snapshot: &Snapshot,
        server: &ServedServer,
    ) -> Option<(Uuid, Uuid)> {
        let live = verified.expires_at + LEEWAY_SECS > chrono::Utc::now().timestamp()
            && verified.audience == server.resource()
            && snapshot.verifying_keys.get(&verified.kid).is_some()
            && server.grants.get(&verified.grant_id) == Some(&verified.subject);
        live.then_some((verified.grant_id, verified.subject))
    }

    /// The full check of a token not seen before (audience and grant are checked by the
    /// caller, against the server of the request).
    fn verify(&self, snapshot: &Snapshot, token: &str) -> Option<Verified> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return None;
        }
        let kid = header.kid?;
        let key = snapshot.verifying_keys.get(&kid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        // The audience is compared with the request's server by the caller.
        validation.validate_aud = false;
        validation.leeway = LEEWAY_SECS as u64;
        match jsonwebtoken::decode::<AccessClaims>(token, key, &validation) {
            Ok(data) if data.claims.scope.split(' ').any(|s| s == SCOPE) => Some(Verified {
                kid,
                audience: data.claims.aud,
                expires_at: data.claims.exp,
                grant_id: data.claims.gid,
                subject: data.claims.sub,
            }),
            Ok(_) => None,
            Err(err) => {
                tracing::debug!(reason = ?err.kind(), "access token refused");
                None
            }
        }
    }
}

/// Whether a bearer value has the shape of a JWT (three base64url parts).
pub fn looks_like_jwt(value: &str) -> bool {
    value.split('.').count() == 3
}

/// The absolute URL of a server's protected resource metadata.
pub fn metadata_url(server: &ServedServer) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        server.endpoint
    )
}

/// The `WWW-Authenticate` value of a 401 on `server` (RFC 6750, RFC 9728 §5.1).
pub fn challenge(server: &ServedServer, credential_given: bool) -> HeaderValue {
    let error = if credential_given {
        ", error=\"invalid_token\""
    } else {
        ""
    };
    let value = format!(
        "Bearer resource_metadata=\"{}\", scope=\"{SCOPE}\"{error}",
        metadata_url(server)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// `GET /.well-known/oauth-protected-resource[/mcp]` on a served host (any origin may read it:
/// it is public, and browser-based agents fetch it).
pub async fn resource_metadata(
    State((routing, issuer)): State<(Routing, Arc<str>)>,
    request: Request,
) -> Response {
    let server = match routing.server_for(&request) {
        Ok(server) => server,
        Err(err) => return err.into_response(),
    };
    let body = json!({
        "resource": format!("{}/mcp", server.endpoint),
        "authorization_servers": [&*issuer],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": server.name,
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
