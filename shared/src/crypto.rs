//! Encryption of source secrets at rest: XChaCha20-Poly1305 (random 192-bit nonces are safe at
//! any volume we will see) under a 32-byte key from `SECRETS_KEY`. Each ciphertext is bound to
//! its row through the associated data, so a ciphertext copied into another row does not
//! decrypt. A key's id is derived from the key itself, so operators cannot mislabel keys; old
//! keys stay usable for decryption until a rotation has re-encrypted every row.

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    XChaCha20Poly1305,
    aead::{Aead, Generate, KeyInit, Nonce, Payload},
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 24;

/// A key and its id.
#[derive(Clone)]
pub struct SecretKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What can go wrong; never includes key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The configured key is not 32 bytes of base64.
    #[error("{0} must be 32 random bytes, base64-encoded (for example `openssl rand -base64 32`)")]
    BadKey(&'static str),
    /// No configured key has this id.
    #[error("no configured key has id {0}; add the old key to SECRETS_OLD_KEYS")]
    UnknownKey(String),
    /// The ciphertext was altered, belongs to another row, or the key is wrong.
    #[error("secret does not decrypt (altered, moved, or wrong key)")]
    Decrypt,
}

impl SecretKey {
    /// Parses a base64 key; `setting` names the setting in the error.
    pub fn from_base64(encoded: &SecretString, setting: &'static str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(encoded.expose_secret().trim())
            .map_err(|_| CryptoError::BadKey(setting))?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey(setting));
        }
        let digest = Sha256::digest(&bytes);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let cipher =
            XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| CryptoError::BadKey(setting))?;
        Ok(Self { id, cipher })
    }

    /// The key's id, stored beside each ciphertext.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current key (encrypts) and older keys (decrypt only).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: SecretKey,
    old: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring from the current key and any older ones.
    pub fn new(current: SecretKey, old: Vec<SecretKey>) -> Self {
        Self { current, old }
    }

    /// The key new ciphertexts are sealed with.
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// Seals `plaintext` for the row identified by `aad`; returns nonce ‖ ciphertext and the
    /// key id.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> (Vec<u8>, String) {
        let nonce = Nonce::<XChaCha20Poly1305>::generate();
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Only fails for inputs of gigabytes; secrets are bounded far below that.
            .expect("XChaCha20-Poly1305 encrypts any bounded input");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        (out, self.current.id.clone())
    }

    /// Opens what [`Keyring::seal`] produced for the same `aad`.
    pub fn open(&self, sealed: &[u8], key_id: &str, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::<XChaCha20Poly1305>::try_from(nonce).map_err(|_| CryptoError::Decrypt)?;
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Associated data binding a source's ciphertext to that source.
fn source_aad(source_id: uuid::Uuid) -> Vec<u8> {
    format!("mcp-gateway/source/{source_id}").into_bytes()
}

impl Keyring {
    /// Seals a source's secret fields (a JSON object) for that source.
    pub fn seal_source(
        &self,
        source_id: uuid::Uuid,
        secrets: &serde_json::Map<String, serde_json::Value>,
    ) -> (Vec<u8>, String) {
        let plaintext = serde_json::to_vec(secrets).expect("a JSON map serializes");
        self.seal(&plaintext, &source_aad(source_id))
    }

    /// Opens a source's secret fields.
    pub fn open_source(
        &self,
        source_id: uuid::Uuid,
        sealed: &[u8],
        key_id: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, CryptoError> {
        let plaintext = self.open(sealed, key_id, &source_aad(source_id))?;
        serde_json::from_slice(&plaintext).map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_base64(
            &SecretString::from(STANDARD.encode([byte; 32])),
            "SECRETS_KEY",
        )
        .unwrap()
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_row_and_a_known_key() {
        let ring = Keyring::new(key(1), vec![]);
        let (sealed, id) = ring.seal(b"hunter2", b"row-1");
        assert!(
            !sealed.windows(7).any(|w| w == b"hunter2"),
            "no plaintext in the ciphertext"
        );
        assert_eq!(ring.open(&sealed, &id, b"row-1").unwrap(), b"hunter2");
        assert!(matches!(
            ring.open(&sealed, &id, b"row-2"),
            Err(CryptoError::Decrypt)
        ));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            ring.open(&tampered, &id, b"row-1"),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            Keyring::new(key(2), vec![]).open(&sealed, &id, b"row-1"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn old_keys_still_open_after_rotation() {
        let (sealed, id) = Keyring::new(key(1), vec![]).seal(b"s", b"r");
        let rotated = Keyring::new(key(2), vec![key(1)]);
        assert_eq!(rotated.open(&sealed, &id, b"r").unwrap(), b"s");
        assert_ne!(rotated.current().id(), id);
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        for bad in ["", "not base64!", &STANDARD.encode([0u8; 16])] {
            let err = SecretKey::from_base64(&SecretString::from(bad.to_owned()), "SECRETS_KEY")
                .unwrap_err();
            assert!(err.to_string().contains("SECRETS_KEY"));
        }
    }
}
