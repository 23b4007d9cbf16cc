//! API tokens: generation, hashing and lookup.
//!
//! A token is `flt_` followed by 48 hex characters (192 random bits). Only its
//! SHA-256 is stored; a plain hash (no salt, no KDF) is right here because the
//! secret is random and long, not a human password. What this module is not:
//! HTTP — the request extractors live in `http::auth`.

use faultline_core::{Timestamp, UserId};
use faultline_store::{Store, StoreError, TokenRecord, TokenScope};
use sha2::{Digest, Sha256};

pub const TOKEN_PREFIX: &str = "flt_";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash_token(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token name {0:?}: use 1-64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates and stores a token; returns the record and the secret, which is
/// shown once and never stored.
/// `user`: the person the token belongs to (actions are recorded as them);
/// the caller checks it is a user of the response configuration.
pub async fn create_token(store: &dyn Store, name: &str, scope: TokenScope, user: Option<UserId>, now: Timestamp) -> Result<(TokenRecord, String), TokenError> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(TokenError::BadName(name.to_owned()));
    }
    let mut secret_bytes = [0u8; 24];
    getrandom::fill(&mut secret_bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let secret = format!("{TOKEN_PREFIX}{}", hex(&secret_bytes));
    let mut id_bytes = [0u8; 6];
    getrandom::fill(&mut id_bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let record = TokenRecord {
        id: format!("tok_{}", hex(&id_bytes)),
        name: name.to_owned(),
        scope,
        token_hash: hash_token(&secret),
        created_at: now,
        revoked_at: None,
        user,
    };
    store.insert_token(&record).await?;
    Ok((record, secret))
}

/// What a presented token resolves to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid(TokenRecord),
    Unknown,
    Revoked,
}

pub async fn verify(store: &dyn Store, secret: &str) -> Result<Verdict, StoreError> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
        return Ok(Verdict::Unknown);
    }
    Ok(match store.token_by_hash(&hash_token(secret)).await? {
        None => Verdict::Unknown,
        Some(t) if t.revoked_at.is_some() => Verdict::Revoked,
        Some(t) => Verdict::Valid(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
