//! Who may call a server: the agent's access key (`Authorization: Bearer mcpk_…`) must be one
//! of the keys of the server behind the Host, unexpired and unrevoked, unless the server is
//! public. Checked on every MCP request from the snapshot (a SHA-256 and constant-time
//! compares: no database, no bcrypt), so a revocation is effective as soon as its change
//! notification arrives. Then the per-key rate limit. The key's use is noted for the batched
//! last-used update, and the key is removed from the request: nothing after this layer (tools,
//! upstream calls, logs) ever sees it.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use shared::access_key;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{error::HttpError, snapshot::ServedServer};

/// Who is calling, for the audit log: the key's id, or none on a public server.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub key_id: Option<Uuid>,
}

/// The access check's state.
#[derive(Clone)]
pub struct Access {
    limiter: Arc<DefaultKeyedRateLimiter<Uuid>>,
    clock: DefaultClock,
    usage: Arc<Usage>,
}

impl Access {
    /// `per_minute` requests a minute per key (per server when public).
    pub fn new(per_minute: u32, usage: Arc<Usage>) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            clock: DefaultClock::default(),
            usage,
        }
    }

    /// Forgets limiter state of keys idle long enough to have their full budget back.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

/// The middleware; runs after host routing.
pub async fn require_key(
    State(access): State<Access>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(server) = request.extensions().get::<Arc<ServedServer>>().cloned() else {
        return HttpError::unknown_host().into_response();
    };
    let presented = bearer(&request);
    let key_id = match (server.public, presented) {
        (true, _) => None,
        (false, None) => return refuse("missing", false),
        (false, Some(key)) => {
            let hash = access_key::well_formed(key).then(|| access_key::hash(key));
            match hash.and_then(|hash| server.key(&hash, Utc::now())) {
                Some(id) => Some(id),
                None => return refuse("invalid", true),
            }
        }
    };
    let limit_key = key_id.unwrap_or(server.id);
    if let Err(not_until) = access.limiter.check_key(&limit_key) {
        let wait = not_until.wait_time_from(access.clock.now());
        metrics::counter!("rate_limit_rejections_total", "limiter" => "access_key").increment(1);
        return HttpError::rate_limited(wait.as_secs_f64().ceil() as u64).into_response();
    }
    if let Some(id) = key_id {
        access.usage.touch(id);
    }
    request.headers_mut().remove(header::AUTHORIZATION);
    request.extensions_mut().insert(Caller { key_id });
    next.run(request).await
}

fn refuse(reason: &'static str, key_given: bool) -> Response {
    metrics::counter!("gateway_auth_failures_total", "reason" => reason).increment(1);
    HttpError::unauthorized(key_given).into_response()
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
/// task writes the batch every `flush_every`.
#[derive(Default)]
pub struct Usage {
    seen: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

impl Usage {
    fn touch(&self, key_id: Uuid) {
        self.seen
            .lock()
            .expect("usage lock")
            .insert(key_id, Utc::now());
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
        let written = sqlx::query(
            "insert into mcp_server_key_usage (key_id, last_used_at) \
             select u.key_id, u.at from unnest($1::uuid[], $2::timestamptz[]) as u(key_id, at) \
             where exists (select 1 from mcp_server_keys k where k.id = u.key_id) \
             on conflict (key_id) do update \
             set last_used_at = greatest(mcp_server_key_usage.last_used_at, excluded.last_used_at)",
        )
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
