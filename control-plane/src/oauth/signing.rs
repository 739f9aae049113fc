//! The keys that sign OAuth access tokens: Ed25519, generated here, the private half sealed
//! with `SECRETS_KEY` like source secrets. Gateways read only the public halves. Rotation
//! retires the active key and creates a new one; a retired key keeps verifying until every
//! token it signed has expired, then housekeeping deletes it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use shared::{
    crypto::Keyring,
    oauth::{ACCESS_TOKEN_TYPE, AccessClaims},
};
use sqlx::PgPool;

use crate::{
    activity::{Action, Activity},
    db::oauth as db,
};

/// Associated data binding a sealed private key to its key id.
fn aad(kid: &str) -> Vec<u8> {
    format!("mcp-gateway/oauth-signing-key/{kid}").into_bytes()
}

/// A key id: the first 12 bytes of the public key's SHA-256, base64url.
fn kid_of(public: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12])
}

/// Makes sure a key exists before the first token is asked for, so gateways already hold its
/// public half by then. Best effort: a control plane also starts while its database is away,
/// and [`sign`] creates the key if it is still missing.
pub async fn prepare(pool: &PgPool, keyring: &Keyring) {
    if let Err(err) = active(pool, keyring).await {
        tracing::warn!(error = %err, "cannot prepare the OAuth signing key yet; it will be made on first use");
    }
}

/// The active key, created on first use (several replicas may race: one insert wins, and
/// every one then reads the winner's key). See [`prepare`].
async fn active(pool: &PgPool, keyring: &Keyring) -> anyhow::Result<db::SigningKeyRow> {
    if let Some(row) = db::active_signing_key(pool).await? {
        return Ok(row);
    }
    insert_new(pool, keyring).await?;
    db::active_signing_key(pool)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no active OAuth signing key"))
}

/// Retires the active key and makes a new one, in one transaction with its activity record
/// (the command line's `oauth rotate-signing-key`).
pub async fn rotate(pool: &PgPool, keyring: &Keyring) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    db::retire_signing_key(&mut *tx).await?;
    let kid = insert_new(&mut *tx, keyring).await?;
    Activity::cli(Action::SigningKeyRotate)
        .detail("kid", kid.as_str())
        .record(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(kid)
}

async fn insert_new(db: impl sqlx::PgExecutor<'_>, keyring: &Keyring) -> anyhow::Result<String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let kid = kid_of(&public);
    let (sealed, key_id) = keyring.seal(&seed, &aad(&kid));
    db::insert_signing_key(db, &kid, &public, &sealed, &key_id).await?;
    Ok(kid)
}

/// Re-seals every private key under the current `SECRETS_KEY`; returns how many changed.
pub async fn reseal_all(pool: &PgPool, keyring: &Keyring) -> anyhow::Result<usize> {
    let mut changed = 0;
    for row in db::signing_keys(pool).await? {
        if row.private_key_key_id == keyring.current().id() {
            continue;
        }
        let seed = keyring.open(&row.private_key, &row.private_key_key_id, &aad(&row.kid))?;
        let (sealed, key_id) = keyring.seal(&seed, &aad(&row.kid));
        db::reseal_signing_key(pool, &row.kid, &sealed, &key_id).await?;
        changed += 1;
    }
    Ok(changed)
}

/// Signs `claims` with the active key (read at each issue, so a rotation by another process
/// applies at once; tokens are issued at most once an hour per agent).
pub async fn sign(
    pool: &PgPool,
    keyring: &Keyring,
    claims: &AccessClaims,
) -> anyhow::Result<String> {
    let row = active(pool, keyring).await?;
    let seed = keyring.open(&row.private_key, &row.private_key_key_id, &aad(&row.kid))?;
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("signing key {} is not 32 bytes", row.kid))?;
    let der = SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .map_err(|err| anyhow::anyhow!("cannot encode the signing key: {err}"))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(row.kid);
    header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_der(der.as_bytes()),
    )?)
}

/// The public keys as a JWK set (`/oauth/jwks`), for verifiers other than our gateways.
pub async fn jwks(pool: &PgPool) -> Result<serde_json::Value, sqlx::Error> {
    let keys: Vec<_> = db::signing_keys(pool)
        .await?
        .into_iter()
        .map(|row| {
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                "kid": row.kid, "x": URL_SAFE_NO_PAD.encode(&row.public_key)})
        })
        .collect();
    Ok(serde_json::json!({ "keys": keys }))
}
