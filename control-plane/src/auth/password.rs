//! bcrypt hashing and verification, run on the blocking pool so the async workers keep serving
//! while a hash is computed (a cost-12 hash takes a few hundred milliseconds of CPU).
//!
//! bcrypt reads the first 72 bytes of a password. New passwords are at most 72 bytes
//! ([`Password`]), so every byte counts; a candidate longer than 72 bytes never matches, so
//! `P + "anything"` cannot pass for a 72-byte `P`. (The crate's `non_truncating_*` functions
//! refuse 72-byte passwords, as they count the terminating NUL: hence the explicit check.)

use secrecy::{ExposeSecret, SecretString};

use crate::{
    domain::{Password, password::MAX_BYTES},
    error::ApiError,
};

/// Hashes a validated password with the configured cost.
pub async fn hash(password: &Password, cost: u32) -> Result<String, ApiError> {
    let secret = password.secret().clone();
    tokio::task::spawn_blocking(move || bcrypt::hash(secret.expose_secret(), cost))
        .await?
        .map_err(ApiError::internal)
}

/// Checks `candidate` against `hash`. A candidate over 72 bytes, or a corrupt hash, does not
/// match; the hash is computed anyway so the answer takes as long as any other.
pub async fn verify(candidate: SecretString, hash: String) -> Result<bool, ApiError> {
    let matched = tokio::task::spawn_blocking(move || {
        let candidate = candidate.expose_secret().as_bytes();
        let fits = candidate.len() <= MAX_BYTES;
        let matched = bcrypt::verify(candidate, &hash).unwrap_or(false);
        fits && matched
    })
    .await?;
    Ok(matched)
}

/// A hash of a random password with the configured cost. Signin verifies against it when the
/// email is unknown, so an unknown email takes as long as a wrong password.
pub async fn dummy_hash(cost: u32) -> anyhow::Result<String> {
    let random = uuid::Uuid::new_v4().to_string();
    Ok(tokio::task::spawn_blocking(move || bcrypt::hash(random, cost)).await??)
}
