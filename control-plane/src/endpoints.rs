//! Giving MCP servers endpoints from the configured pool.
//!
//! Allocation runs inside the caller's transaction under a transaction-scoped advisory lock, so
//! concurrent creations take endpoints one after another instead of racing; the partial unique
//! index on live endpoint hosts stays the final guard, and its violation is answered 409.
//! A fixed endpoint is free for a user when no live server holds it and no *other* user
//! released it within the cooldown. Wildcard entries supply generated subdomains without limit.
//!
//! Fixed endpoints are scarce (each needs DNS and a certificate), and one the user deleted stays
//! theirs for the cooldown: without a bound, one account could take every fixed endpoint, delete
//! its servers, and keep everyone else out for the whole cooldown while taking them back at will.
//! So each user holds at most a share of the fixed entries, live or reserved, and never all of
//! them; past the share a user gets wildcard names, or a 409 saying so.

use std::time::Duration;

use axum::http::StatusCode;
use shared::model::{EndpointPool, PoolEntry};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ApiError;

/// Arbitrary constant naming the allocation lock (`pg_advisory_xact_lock`).
const ALLOCATION_LOCK: i64 = 0x6d63_7067_7700_0001;
/// Length of generated wildcard labels: 16 base-36 characters are over 80 bits.
const GENERATED_LABEL_LEN: usize = 16;

/// An endpoint given to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`.
    pub url: String,
    /// Routing key.
    pub host: String,
}

/// The pool and its rules.
#[derive(Debug, Clone)]
pub struct Allocator {
    pub pool: EndpointPool,
    pub cooldown: Duration,
    pub max_servers_per_user: u32,
    /// `FIXED_ENDPOINTS_PER_USER`, before the all-but-one bound of [`Allocator::fixed_share`].
    pub fixed_endpoints_per_user: u32,
}

impl Allocator {
    /// Takes a free endpoint for `organization_id`, preferring `preferred` (a restored server's old
    /// host) when it is still free. Must run inside a transaction.
    pub async fn allocate(
        &self,
        tx: &mut PgConnection,
        organization_id: Uuid,
        preferred: Option<&str>,
    ) -> Result<Endpoint, ApiError> {
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(ALLOCATION_LOCK)
            .execute(&mut *tx)
            .await?;
        self.check_server_limit(tx, organization_id).await?;
        let held = self.fixed_held(tx, organization_id).await?;
        let within_share = held < self.fixed_share();
        if let Some(host) = self
            .free_fixed(tx, organization_id, preferred, within_share)
            .await?
        {
            let url = self.pool.fixed_url(&host).unwrap_or_default().to_owned();
            return Ok(Endpoint { url, host });
        }
        // A restored server keeps its generated wildcard name when nobody else has it. (Not a
        // fixed host: those are only ever taken above, within the share.)
        if let Some(preferred) =
            preferred.filter(|h| self.pool.covers(h) && self.pool.fixed_url(h).is_none())
            && self.is_free_for(tx, organization_id, preferred).await?
        {
            return Ok(self.wildcard_endpoint(preferred));
        }
        match self.pool.wildcards().next() {
            Some(PoolEntry::Wildcard { base, .. }) => {
                let host = format!("{}.{base}", random_label());
                Ok(self.wildcard_endpoint(&host))
            }
            _ if !within_share => Err(self.share_reached(held)),
            _ => Err(ApiError::conflict(
                "pool_exhausted",
                "No endpoint is free: add URLs to MCP_GATEWAY_URL_POOLS (and route them to the \
                 gateway in the reverse proxy), or delete a server you no longer need.",
            )),
        }
    }

    /// The most fixed endpoints one user may hold: `FIXED_ENDPOINTS_PER_USER`, but never every
    /// fixed entry (when there are two or more), so one account can never lock others out.
    pub fn fixed_share(&self) -> i64 {
        let total = i64::try_from(self.pool.fixed_hosts().len()).unwrap_or(i64::MAX);
        i64::from(self.fixed_endpoints_per_user).min((total - 1).max(1))
    }

    /// Fixed endpoints `organization_id` holds: on its live servers, or released by it within the
    /// cooldown and not taken since (reserved for them).
    async fn fixed_held(
        &self,
        tx: &mut PgConnection,
        organization_id: Uuid,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "select count(*) from unnest($1::text[]) as p(host) \
             where exists (select 1 from mcp_servers s where s.endpoint_host = p.host \
                           and s.deleted_at is null and s.organization_id = $2) \
                or (not exists (select 1 from mcp_servers s where s.endpoint_host = p.host and s.deleted_at is null) \
                    and exists (select 1 from endpoint_releases r where r.endpoint_host = p.host and r.organization_id = $2 \
                                and r.released_at > now() - make_interval(secs => $3)))",
        )
        .bind(self.pool.fixed_hosts())
        .bind(organization_id)
        .bind(self.cooldown.as_secs_f64())
        .fetch_one(tx)
        .await
    }

    fn share_reached(&self, held: i64) -> ApiError {
        ApiError::conflict(
            "endpoint_share_reached",
            format!(
                "You hold {held} of the pool's fixed endpoints, the most one account may hold \
                 (FIXED_ENDPOINTS_PER_USER; endpoints you deleted stay yours, and count, until \
                 ENDPOINT_COOLDOWN_SECS has passed). Restore or replace one of your servers, or \
                 ask an administrator for a wildcard entry in MCP_GATEWAY_URL_POOLS."
            ),
        )
    }

    /// An organization at the limit may only take back an endpoint still reserved for it (its
    /// own, cooling down): live servers plus reserved endpoints never exceed the limit, so one
    /// organization cannot drain the pool by creating and deleting servers.
    async fn check_server_limit(
        &self,
        tx: &mut PgConnection,
        organization_id: Uuid,
    ) -> Result<(), ApiError> {
        let (live, reserved): (i64, i64) = sqlx::query_as(
            "select (select count(*) from mcp_servers where organization_id = $1 and deleted_at is null),                     (select count(distinct r.endpoint_host) from endpoint_releases r                      where r.organization_id = $1 and r.endpoint_host = any($2)                        and r.released_at > now() - make_interval(secs => $3)                        and not exists (select 1 from mcp_servers s where s.endpoint_host = r.endpoint_host and s.deleted_at is null))",
        )
        .bind(organization_id)
        .bind(self.pool.fixed_hosts())
        .bind(self.cooldown.as_secs_f64())
        .fetch_one(&mut *tx)
        .await?;
        if reserved == 0 && live >= i64::from(self.max_servers_per_user) {
            return Err(ApiError::conflict(
                "server_limit_reached",
                format!(
                    "This organization has {live} MCP servers, the most one organization may have                      (MAX_SERVERS_PER_USER); delete one you no longer need."
                ),
            ));
        }
        Ok(())
    }

    /// The first free fixed host: the preferred one, then one this user released recently
    /// (reserved for them during the cooldown), then in configuration order. Outside its share
    /// (`within_share` false) a user may only take back one reserved for them.
    async fn free_fixed(
        &self,
        tx: &mut PgConnection,
        organization_id: Uuid,
        preferred: Option<&str>,
        within_share: bool,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "select p.host from unnest($1::text[]) with ordinality as p(host, ord) \
             where not exists (select 1 from mcp_servers s where s.endpoint_host = p.host and s.deleted_at is null) \
               and not exists (select 1 from endpoint_releases r where r.endpoint_host = p.host \
                               and r.organization_id <> $2 and r.released_at > now() - make_interval(secs => $3)) \
               and ($5 or exists (select 1 from endpoint_releases r where r.endpoint_host = p.host \
                                  and r.organization_id = $2 and r.released_at > now() - make_interval(secs => $3))) \
             order by p.host = $4 desc, \
                      exists (select 1 from endpoint_releases r where r.endpoint_host = p.host and r.organization_id = $2 \
                              and r.released_at > now() - make_interval(secs => $3)) desc, \
                      p.ord limit 1",
        )
        .bind(self.pool.fixed_hosts())
        .bind(organization_id)
        .bind(self.cooldown.as_secs_f64())
        .bind(preferred.unwrap_or_default())
        .bind(within_share)
        .fetch_optional(tx)
        .await
    }

    async fn is_free_for(
        &self,
        tx: &mut PgConnection,
        organization_id: Uuid,
        host: &str,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "select not exists (select 1 from mcp_servers where endpoint_host = $1 and deleted_at is null) \
               and not exists (select 1 from endpoint_releases where endpoint_host = $1 and organization_id <> $2 \
                               and released_at > now() - make_interval(secs => $3))",
        )
        .bind(host)
        .bind(organization_id)
        .bind(self.cooldown.as_secs_f64())
        .fetch_one(tx)
        .await
    }

    /// The URL of a host under a wildcard entry.
    fn wildcard_endpoint(&self, host: &str) -> Endpoint {
        // The most specific wildcard wins (`*.mcp.example.com` before `*.example.com`).
        let entry = self
            .pool
            .wildcards()
            .filter(|e| matches!(e, PoolEntry::Wildcard { base, .. } if host.strip_suffix(base.as_str()).is_some_and(|l| l.ends_with('.'))))
            .max_by_key(|e| match e {
                PoolEntry::Wildcard { base, .. } => base.len(),
                PoolEntry::Fixed { .. } => 0,
            });
        let url = match entry {
            Some(PoolEntry::Wildcard {
                scheme,
                port: Some(port),
                ..
            }) => format!("{scheme}://{host}:{port}"),
            Some(PoolEntry::Wildcard { scheme, .. }) => format!("{scheme}://{host}"),
            _ => format!("https://{host}"),
        };
        Endpoint {
            url,
            host: host.to_owned(),
        }
    }

    /// Ends the cooldown of every endpoint an organization released (an administrator's remedy
    /// when one person's accounts hold fixed endpoints reserved), named by its id or, for a
    /// personal organization, its account's; returns the fixed hosts that became free for
    /// everyone, in order. Deleted organizations' releases can be cleared by their id.
    pub async fn clear_reservations(
        &self,
        db: &sqlx::PgPool,
        organization_id: Uuid,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "with cleared as (delete from endpoint_releases \
                              where organization_id = $1 or organization_id = \
                                    (select id from organizations where personal_user_id = $1) \
                              returning endpoint_host, released_at) \
             select distinct c.endpoint_host from cleared c \
             where c.endpoint_host = any($2) and c.released_at > now() - make_interval(secs => $3) \
               and not exists (select 1 from mcp_servers s where s.endpoint_host = c.endpoint_host and s.deleted_at is null) \
             order by 1",
        )
        .bind(organization_id)
        .bind(self.pool.fixed_hosts())
        .bind(self.cooldown.as_secs_f64())
        .fetch_all(db)
        .await
    }

    /// Pool figures for administrators.
    pub async fn status(&self, db: &sqlx::PgPool) -> Result<PoolStatus, sqlx::Error> {
        let live = crate::db::servers::live_endpoints(db).await?;
        let fixed = self.pool.fixed_hosts();
        let cooling: Vec<String> = sqlx::query_scalar(
            "select distinct r.endpoint_host from endpoint_releases r \
             where r.endpoint_host = any($1) and r.released_at > now() - make_interval(secs => $2) \
               and not exists (select 1 from mcp_servers s where s.endpoint_host = r.endpoint_host and s.deleted_at is null) \
             order by 1",
        )
        .bind(&fixed)
        .bind(self.cooldown.as_secs_f64())
        .fetch_all(db)
        .await?;
        let used = live
            .iter()
            .filter(|(_, _, host)| fixed.contains(host))
            .count();
        let orphaned = live
            .iter()
            .filter(|(_, _, host)| !self.pool.covers(host))
            .map(|(id, endpoint, _)| OrphanedServer {
                server_id: *id,
                endpoint: endpoint.clone(),
            })
            .collect();
        Ok(PoolStatus {
            total: fixed.len(),
            used,
            free: fixed.len() - used,
            cooling_down: cooling,
            wildcards: self
                .pool
                .wildcards()
                .filter_map(|e| match e {
                    PoolEntry::Wildcard { scheme, base, .. } => {
                        Some(format!("{scheme}://*.{base}"))
                    }
                    PoolEntry::Fixed { .. } => None,
                })
                .collect(),
            wildcard_servers: live
                .iter()
                .filter(|(_, _, h)| !fixed.contains(h) && self.pool.covers(h))
                .count(),
            orphaned,
        })
    }
}

/// Pool usage.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PoolStatus {
    /// Fixed endpoints configured.
    pub total: usize,
    /// Fixed endpoints held by live servers.
    pub used: usize,
    /// Fixed endpoints not held by a live server (some may be cooling down).
    pub free: usize,
    /// Free fixed endpoints that only their last holder can take until the cooldown ends.
    pub cooling_down: Vec<String>,
    /// Wildcard entries (unlimited).
    pub wildcards: Vec<String>,
    /// Live servers on generated wildcard subdomains.
    pub wildcard_servers: usize,
    /// Live servers whose endpoint is no longer in `MCP_GATEWAY_URL_POOLS`.
    pub orphaned: Vec<OrphanedServer>,
}

/// A live server on an endpoint that left the pool.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrphanedServer {
    pub server_id: Uuid,
    pub endpoint: String,
}

/// An unguessable DNS label: lowercase letters and digits from a v4 UUID's random bits.
fn random_label() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = Uuid::new_v4().as_u128();
    (0..GENERATED_LABEL_LEN)
        .map(|_| {
            let c = ALPHABET[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

/// The unique-index violation, should it ever surface: a clear 409, never a 500.
pub fn endpoint_taken() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "endpoint_conflict",
        "The endpoint was taken meanwhile; try again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_labels_are_long_lowercase_and_distinct() {
        let a = random_label();
        assert_eq!(a.len(), GENERATED_LABEL_LEN);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, random_label());
    }
}
