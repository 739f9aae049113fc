//! Agent access keys: `mcpk_` followed by 256 random bits in base64url. Only a SHA-256 of a key
//! is stored. Keys carry full entropy, so a fast hash is as good as a slow one here, and it
//! lets the gateway check a key on every request; comparisons are constant-time.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every key starts with, so leaked keys are recognisable (and scannable).
pub const PREFIX: &str = "mcpk_";
/// Characters of a key shown in listings.
const SHOWN: usize = PREFIX.len() + 6;
/// Length of a key: the prefix and 43 base64url characters.
const KEY_LEN: usize = PREFIX.len() + 43;

/// The SHA-256 of a key.
pub type KeyHash = [u8; 32];

/// A new key: the key itself (shown once), its hash and the part shown in listings.
pub struct NewKey {
    pub key: String,
    pub hash: KeyHash,
    pub shown_prefix: String,
}

/// Generates a key from the operating system's random source.
pub fn generate() -> NewKey {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewKey {
        hash: hash(&key),
        shown_prefix: key[..SHOWN].to_owned(),
        key,
    }
}

/// The hash a key is stored and looked up by.
pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether `candidate` has the shape of a key (cheap filter before hashing).
pub fn well_formed(candidate: &str) -> bool {
    candidate.len() == KEY_LEN
        && candidate.starts_with(PREFIX)
        && candidate[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Constant-time equality of two hashes.
pub fn same(a: &KeyHash, b: &KeyHash) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_well_formed_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a.key, b.key);
        assert!(well_formed(&a.key), "{}", a.key);
        assert!(a.key.starts_with(&a.shown_prefix));
        assert!(same(&a.hash, &hash(&a.key)));
        assert!(!same(&a.hash, &b.hash));
        assert!(!well_formed("mcpk_short"));
        assert!(!well_formed(&a.key.replace("mcpk_", "xxxx_")));
        assert!(!well_formed(&format!("{}!", &a.key[..a.key.len() - 1])));
    }
}
