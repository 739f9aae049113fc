//! What every handler can reach: the pool, the token keys, the limiters and the settings the
//! handlers read, built once at startup.

use std::{sync::Arc, time::Instant};

use shared::{Settings, model::SourceRules};
use sqlx::PgPool;

use shared::crypto::Keyring;

use crate::{
    auth::{jwt::TokenKeys, rate_limit::SigninLimiter},
    endpoints::Allocator,
    oauth::OAuth,
};

/// Settings the request handlers read, copied out of [`Settings`] once.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    pub bcrypt_cost: u32,
    pub cookie_secure: bool,
    pub signup_enabled: bool,
    pub trust_forwarded_for: bool,
    pub cors_allowed_origins: Vec<String>,
    pub source_rules: SourceRules,
    pub audit_retention_days: u32,
    pub max_sources_per_user: u32,
    pub max_organizations_per_user: u32,
    pub activity_retention_days: u32,
}

impl HandlerConfig {
    fn from_settings(settings: &Settings) -> Self {
        Self {
            bcrypt_cost: settings.control_plane.bcrypt_cost,
            cookie_secure: settings.control_plane.cookie_secure,
            signup_enabled: settings.control_plane.signup_enabled,
            trust_forwarded_for: settings.control_plane.trust_forwarded_for,
            cors_allowed_origins: settings.control_plane.cors_allowed_origins.clone(),
            source_rules: SourceRules::for_deployment(settings),
            audit_retention_days: settings.control_plane.audit_retention_days,
            max_sources_per_user: settings.control_plane.max_sources_per_user,
            max_organizations_per_user: settings.control_plane.max_organizations_per_user,
            activity_retention_days: settings.control_plane.activity_retention_days,
        }
    }
}

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<HandlerConfig>,
    pub tokens: Arc<TokenKeys>,
    pub signin_limiter: Arc<SigninLimiter>,
    /// Encrypts and decrypts source secrets.
    pub keyring: Arc<Keyring>,
    /// The endpoint pool and its allocation rules.
    pub allocator: Arc<Allocator>,
    /// Verified against when a signin names an unknown email (same cost as real hashes).
    pub dummy_hash: Arc<str>,
    pub started_at: Instant,
    /// The OAuth authorization server's settings, metadata-document fetcher and limits.
    pub oauth: Arc<OAuth>,
}

impl AppState {
    /// Builds the state; computes the dummy hash once (off the async workers).
    pub async fn new(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        let secret = settings
            .control_plane
            .jwt_secret
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("JWT_SECRET is not set"))?;
        Ok(Self {
            pool,
            config: Arc::new(HandlerConfig::from_settings(settings)),
            tokens: Arc::new(TokenKeys::new(
                secret,
                std::time::Duration::from_secs(settings.control_plane.jwt_ttl_secs),
            )),
            signin_limiter: SigninLimiter::new(
                settings.control_plane.signin_attempts_per_minute_per_client,
                settings.control_plane.signin_attempts_per_minute_per_email,
                settings.control_plane.signin_failures_per_hour_per_email,
            ),
            keyring: Arc::new(settings.common.keyring()?),
            allocator: Arc::new(Allocator {
                pool: settings.control_plane.endpoint_pool()?,
                cooldown: std::time::Duration::from_secs(
                    settings.control_plane.endpoint_cooldown_secs,
                ),
                max_servers_per_user: settings.control_plane.max_servers_per_user,
                fixed_endpoints_per_user: settings.control_plane.fixed_endpoints_per_user,
            }),
            dummy_hash: crate::auth::password::dummy_hash(settings.control_plane.bcrypt_cost)
                .await?
                .into(),
            started_at: Instant::now(),
            oauth: OAuth::new(settings)?,
        })
    }
}
