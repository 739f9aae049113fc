//! Who may call a server, the second step of admission (`admission.rs`): the agent's access
//! key (`Authorization: Bearer mcpk_…`) must be one of the keys of the server behind the Host,
//! unexpired and unrevoked, or its OAuth access token must be valid for that server (see
//! `oauth.rs`), unless the server is public. Checked on every MCP request from the snapshot (a
//! SHA-256 and constant-time compares: no database, no bcrypt), so a revocation is effective as
//! soon as its change notification arrives. Then the rate limit: per key, per OAuth grant, and
//! on a public server per client address (`client.rs`), so that anonymous callers cannot use up
//! the budget of everyone else on that server. The key's use is noted for the batched last-used
//! update, and the key is removed from the request: nothing after admission (tools, upstream
//! calls, logs) ever sees it.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{extract::Request, http::header};
use chrono::{DateTime, Utc};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use shared::access_key;
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::types::Caller;
use crate::{
    ingress::error::{Credential, HttpError},
    ingress::oauth::{Verifier, challenge, looks_like_jwt},
    snapshot::{ServedServer, SnapshotStore},
    sql,
};

/// Whose rate budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Budget {
    Key(Uuid),
    Grant(Uuid),
    /// An anonymous caller of a public server, by address (IPv6 by /64).
    Client {
        server: Uuid,
        address: IpAddr,
    },
}

impl Budget {
    fn of(caller: Caller, server: Uuid, address: impl FnOnce() -> IpAddr) -> Self {
        match (caller.key_id, caller.grant_id) {
            (Some(key), _) => Self::Key(key),
            (None, Some(grant)) => Self::Grant(grant),
            (None, None) => Self::Client {
                server,
                address: address(),
            },
        }
    }
}

/// The access check's state.
#[derive(Clone)]
pub struct Access {
    limiter: Arc<DefaultKeyedRateLimiter<Budget>>,
    clock: DefaultClock,
    usage: Arc<Usage>,
    tokens: Arc<Verifier>,
    store: Arc<SnapshotStore>,
    trust_forwarded_for: bool,
}

/// How the access check counts and whom it trusts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests a minute per key, grant, or client address of a public server.
    pub per_minute: u32,
    /// Whether a public server's callers are told apart by `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

impl Access {
    /// Rate limits as `limits` say; OAuth tokens are verified for `issuer` with the keys of
    /// the snapshot in `store`.
    pub fn new(limits: Limits, usage: Arc<Usage>, issuer: &str, store: Arc<SnapshotStore>) -> Self {
        let per_minute = NonZeroU32::new(limits.per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            clock: DefaultClock::default(),
            usage,
            tokens: Verifier::new(issuer),
            store,
            trust_forwarded_for: limits.trust_forwarded_for,
        }
    }

    /// Forgets limiter state of keys idle long enough to have their full budget back.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }

    /// Who is calling `server`, once their credential and rate budget pass; the credential is
    /// then removed from the request. The refusal otherwise (401 with the challenge, 429).
    pub fn admit(&self, server: &ServedServer, request: &mut Request) -> Result<Caller, HttpError> {
        let now = Utc::now();
        let caller = match (server.public, bearer(request)) {
            (true, _) => Caller {
                key_id: None,
                grant_id: None,
                user_id: None,
            },
            (false, None) => return Err(refuse(server, Credential::None)),
            (false, Some(credential)) => {
                check(self, server, credential, now).map_err(|given| refuse(server, given))?
            }
        };
        let budget = Budget::of(caller, server.id, || {
            crate::ingress::client::address(request, self.trust_forwarded_for)
        });
        if let Err(not_until) = self.limiter.check_key(&budget) {
            let wait = not_until.wait_time_from(self.clock.now());
            metrics::counter!("rate_limit_rejections_total", "limiter" => "access_key")
                .increment(1);
            return Err(HttpError::rate_limited(wait.as_secs_f64().ceil() as u64));
        }
        if let Some(id) = caller.key_id {
            self.usage.touch(id, now);
        }
        request.headers_mut().remove(header::AUTHORIZATION);
        Ok(caller)
    }
}

/// An access key of this server (`mcpk_…`), or an OAuth access token for it.
/// Keys are checked for expiry at `now`.
fn check(
    access: &Access,
    server: &ServedServer,
    credential: &str,
    now: DateTime<Utc>,
) -> Result<Caller, Credential> {
    if credential.starts_with(access_key::PREFIX) {
        let hash = access_key::well_formed(credential).then(|| access_key::hash(credential));
        return match hash.and_then(|hash| server.key(&hash, now)) {
            Some(id) => Ok(Caller {
                key_id: Some(id),
                grant_id: None,
                user_id: None,
            }),
            None => Err(Credential::Key),
        };
    }
    if !looks_like_jwt(credential) {
        return Err(Credential::Key);
    }
    let snapshot = access.store.load().ok_or(Credential::Token)?;
    match access.tokens.grant(&snapshot, server, credential) {
        Some((grant_id, user_id)) => Ok(Caller {
            key_id: None,
            grant_id: Some(grant_id),
            user_id: Some(user_id),
        }),
        None => Err(Credential::Token),
    }
}

fn refuse(server: &ServedServer, given: Credential) -> HttpError {
    let reason = if given == Credential::None {
        "missing"
    } else {
        "invalid"
    };
    metrics::counter!("gateway_auth_failures_total", "reason" => reason).increment(1);
    HttpError::unauthorized(given, challenge(server, given != Credential::None))
}

/// The bearer token of the request, if any.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Last use of each key since the previous flush. Requests only note the time in memory; a
/// task writes the batch every `flush_every`. A key is noted once a second at most (the time
/// kept is that second's first use): a lock-free look at the seconds last noted spares a busy
/// key's calls the map's lock, which both runtime workers would otherwise take on every call.
pub struct Usage {
    seen: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    /// By a key's bits: part of its id and the second it was last noted in.
    noted: [AtomicU64; NOTED_SLOTS],
}

const NOTED_SLOTS: usize = 256;

impl Default for Usage {
    fn default() -> Self {
        Self {
            seen: Mutex::default(),
            noted: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Usage {
    /// Notes that `key_id` was used at `now`.
    fn touch(&self, key_id: Uuid, now: DateTime<Utc>) {
        let (high, low) = key_id.as_u64_pair();
        let mark = (low << 32) | (now.timestamp() as u64 & 0xffff_ffff);
        let noted = &self.noted[high as usize % NOTED_SLOTS];
        if noted.load(Ordering::Relaxed) == mark {
            return;
        }
        noted.store(mark, Ordering::Relaxed);
        self.seen.lock().expect("usage lock").insert(key_id, now);
    }

    fn take(&self) -> HashMap<Uuid, DateTime<Utc>> {
        std::mem::take(&mut *self.seen.lock().expect("usage lock"))
    }

    /// Writes the noted uses every `every` until the process ends. A failed write keeps the
    /// times for the next round (newer times win).
    pub async fn flush_every(self: Arc<Self>, pool: PgPool, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.flush(&pool).await;
        }
    }

    /// Writes what was noted since the last flush.
    pub async fn flush(&self, pool: &PgPool) {
        let seen = self.take();
        if seen.is_empty() {
            return;
        }
        let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) =
            seen.iter().map(|(k, v)| (*k, *v)).unzip();
        let written = sqlx::query(sql::RECORD_KEY_USES)
            .bind(&ids)
            .bind(&times)
            .execute(pool)
            .await;
        if let Err(err) = written {
            tracing::warn!(error = %err, keys = ids.len(), "cannot record key usage; will retry");
            let mut current = self.seen.lock().expect("usage lock");
            for (id, at) in seen {
                current.entry(id).or_insert(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_used_is_noted_with_the_time_of_its_use() {
        let usage = Usage::default();
        let keys: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
        let before = Utc::now();
        for _ in 0..3 {
            for key in &keys {
                usage.touch(*key, Utc::now());
            }
        }
        let seen = usage.take();
        assert_eq!(
            seen.len(),
            keys.len(),
            "slots shared by keys never hide one"
        );
        assert!(seen.values().all(|at| *at >= before && *at <= Utc::now()));
    }
}
