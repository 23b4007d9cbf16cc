//! API tokens: generation, hashing and lookup.
//!
//! A token is `flt_` followed by 48 hex characters (192 random bits). Only its
//! SHA-256 is stored; a plain hash (no salt, no KDF) is right here because the
//! secret is random and long, not a human password. Scopes: `read` reads,
//! `admin` reads and changes everything (and may ingest), `ingest` only sends
//! telemetry and alerts (`allows`); `authorize` is the one decision from a
//! presented credential to a token, used by the API extractors and, through
//! `IngestTokens`, by the telemetry receivers. What this module is not:
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

/// What a route needs from the token it is called with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Read,
    Admin,
    Ingest,
}

/// Whether a token of `scope` may do what `need` asks: admin tokens do
/// everything, read tokens only read, ingest tokens only send.
pub fn allows(scope: TokenScope, need: Need) -> bool {
    matches!((scope, need), (TokenScope::Admin, _) | (TokenScope::Read, Need::Read) | (TokenScope::Ingest, Need::Ingest))
}

/// Why a credential does not give what was needed.
#[derive(Debug)]
pub enum Denied {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Forbidden { name: String, scope: TokenScope },
    Store(StoreError),
}

impl Denied {
    /// The `outcome` label of `faultline_auth_failures_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Malformed => "malformed",
            Denied::Unknown => "unknown",
            Denied::Revoked => "revoked",
            Denied::Forbidden { .. } => "forbidden",
            Denied::Store(_) => "store_unavailable",
        }
    }

    /// What the caller is told (never the secret).
    pub fn message(&self, need: Need) -> String {
        match self {
            Denied::Missing if need == Need::Ingest => {
                "missing Authorization header: send `Authorization: Bearer <token>` (or Basic auth with the token as the password) with an ingest token from `faultline token create --scope ingest`".into()
            }
            Denied::Missing => "missing Authorization header: send `Authorization: Bearer <token>`".into(),
            Denied::Malformed => faultline_receivers::auth::MalformedCredential.to_string(),
            Denied::Unknown => "invalid token".into(),
            Denied::Revoked => "token has been revoked".into(),
            Denied::Forbidden { name, scope } => {
                let wanted = match need {
                    Need::Admin => "this endpoint needs an admin token",
                    Need::Read => "this endpoint needs a read or admin token",
                    Need::Ingest => "ingest needs an ingest or admin token",
                };
                format!("token {name:?} has scope {}; {wanted}", scope.as_str())
            }
            Denied::Store(_) => "the token store is not answering; retry shortly".into(),
        }
    }
}

/// From a request's credential (`None`: no `Authorization`; see
/// `faultline_receivers::auth::credential`) to the token that may do `need`.
pub async fn authorize(
    store: &dyn Store,
    credential: Option<Result<String, faultline_receivers::auth::MalformedCredential>>,
    need: Need,
) -> Result<TokenRecord, Denied> {
    let secret = credential.ok_or(Denied::Missing)?.map_err(|_| Denied::Malformed)?;
    let token = match verify(store, &secret).await.map_err(Denied::Store)? {
        Verdict::Valid(t) => t,
        Verdict::Unknown => return Err(Denied::Unknown),
        Verdict::Revoked => return Err(Denied::Revoked),
    };
    if !allows(token.scope, need) {
        return Err(Denied::Forbidden { name: token.name, scope: token.scope });
    }
    Ok(token)
}

/// The receivers' `Authenticator`: ingest or admin tokens from the store;
/// refusals are counted in `faultline_auth_failures_total` like the API's.
pub struct IngestTokens {
    pub store: std::sync::Arc<dyn Store>,
    pub failures: crate::metrics::AuthFailures,
}

impl faultline_receivers::auth::Authenticator for IngestTokens {
    fn authenticate<'a>(
        &'a self,
        credential: Option<Result<String, faultline_receivers::auth::MalformedCredential>>,
    ) -> faultline_receivers::auth::AuthFuture<'a> {
        use faultline_receivers::auth::{Refusal, RefusalKind};
        Box::pin(async move {
            authorize(self.store.as_ref(), credential, Need::Ingest).await.map(drop).map_err(|d| {
                self.failures.get_or_create(&crate::metrics::AuthLabels { outcome: d.outcome() }).inc();
                if let Denied::Store(e) = &d {
                    tracing::warn!(error = %e, "cannot check an ingest token");
                }
                let kind = match d {
                    Denied::Forbidden { .. } => RefusalKind::Forbidden,
                    Denied::Store(_) => RefusalKind::Unavailable,
                    _ => RefusalKind::Unauthenticated,
                };
                Refusal { kind, message: d.message(Need::Ingest) }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_only_their_own_jobs() {
        use TokenScope::*;
        assert!(allows(Admin, Need::Read) && allows(Admin, Need::Admin) && allows(Admin, Need::Ingest));
        assert!(allows(Read, Need::Read) && !allows(Read, Need::Admin) && !allows(Read, Need::Ingest));
        assert!(allows(Ingest, Need::Ingest) && !allows(Ingest, Need::Read) && !allows(Ingest, Need::Admin));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
