//! The command line: serve (default), migrate, and admin role management without SQL.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shared::Settings;
use sqlx::PgPool;

use shared::crypto::Keyring;

use crate::{
    activity::{Action, Activity},
    db::{sources, users},
    domain::Email,
};

/// MCP gateway control plane.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML settings file (also `MCP_GATEWAY_CONFIG`); the environment overrides it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when omitted.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the REST API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Manage the encryption of source secrets.
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Manage the OAuth authorization server.
    Oauth {
        #[command(subcommand)]
        action: OAuthAction,
    },
}

/// OAuth key management.
#[derive(Debug, Subcommand)]
pub enum OAuthAction {
    /// Retire the key that signs access tokens and start signing with a new one. Tokens signed
    /// by the old key keep working until they expire (OAUTH_ACCESS_TOKEN_TTL_SECS); then the
    /// old key is deleted.
    RotateSigningKey,
}

/// Key management.
#[derive(Debug, Subcommand)]
pub enum SecretsAction {
    /// Re-encrypt every source secret (and the OAuth signing keys) under the current
    /// SECRETS_KEY. Run it after moving the previous key to SECRETS_OLD_KEYS; afterwards the old
    /// key can be dropped.
    Rotate,
}

/// Role changes.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Give an existing user the admin role.
    Grant {
        /// The user's email.
        email: String,
    },
    /// Take the admin role away.
    Revoke {
        /// The user's email.
        email: String,
    },
}

/// Applies migrations, saying which database could not be reached without printing secrets.
pub async fn migrate(pool: &PgPool, settings: &Settings) -> anyhow::Result<()> {
    let target = describe_database(settings);
    shared::db::MIGRATOR
        .run(pool)
        .await
        .with_context(|| format!("cannot migrate the database {target}"))?;
    tracing::info!(database = %target, "migrations applied");
    Ok(())
}

/// Sets `email`'s role; an unknown email is an error naming it.
pub async fn set_role(pool: &PgPool, email: &str, admin: bool) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|reason| anyhow::anyhow!("email {reason}"))?;
    let role = if admin { "admin" } else { "user" };
    let mut tx = pool.begin().await?;
    let Some(user_id) = users::set_role(&mut *tx, email.as_str(), role).await? else {
        anyhow::bail!(
            "no user with email {}; they must sign up first",
            email.as_str()
        );
    };
    let action = if admin {
        Action::RoleGrant
    } else {
        Action::RoleRevoke
    };
    Activity::cli(action)
        .on_user(user_id)
        .detail("role", role)
        .record(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(email = email.as_str(), role, "role changed");
    Ok(())
}

/// Re-seals every source secret that is not under the current key, in batches of 1,000 rows
/// per transaction (one statement each). Returns how many were re-sealed. The activity log records the run (and a
/// run that failed part way, as a failure: the batches before the failure stay re-sealed).
pub async fn rotate_secrets(pool: &PgPool, keyring: &Keyring) -> anyhow::Result<u64> {
    let activity = Activity::cli(Action::SecretsRotate).detail("key_id", keyring.current().id());
    match reseal_everything(pool, keyring).await {
        Ok((sources, signing_keys)) => {
            activity
                .detail("resealed", sources)
                .detail("signing_keys", signing_keys)
                .record(pool)
                .await?;
            Ok(sources)
        }
        Err(err) => {
            activity.failed("rotation_failed").record_now(pool).await;
            Err(err)
        }
    }
}

/// `(source secrets, signing keys)` re-sealed.
async fn reseal_everything(pool: &PgPool, keyring: &Keyring) -> anyhow::Result<(u64, usize)> {
    let current = keyring.current().id().to_owned();
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let batch = sources::sealed_under_other_keys(&mut *tx, &current, 1000).await?;
        if batch.is_empty() {
            break;
        }
        let mut resealed = Vec::with_capacity(batch.len());
        for (id, sealed, key_id) in batch {
            let secrets = keyring
                .open_source(id, &sealed, &key_id)
                .with_context(|| format!("cannot decrypt the secrets of source {id}"))?;
            let (sealed, new_key_id) = keyring.seal_source(id, &secrets);
            resealed.push((id, sealed, new_key_id));
        }
        sources::reseal_many(&mut *tx, &resealed).await?;
        total += resealed.len() as u64;
        tx.commit().await?;
    }
    let keys = crate::oauth::signing::reseal_all(pool, keyring).await?;
    tracing::info!(resealed = total, signing_keys = keys, key_id = %current, "source secrets and OAuth signing keys are all under the current key");
    Ok((total, keys))
}

/// `host:port/database` of the configured database, without user or password.
pub fn describe_database(settings: &Settings) -> String {
    match shared::db::connect_options(settings) {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        ),
        Err(_) => "(unparsable DATABASE_URL)".to_owned(),
    }
}
