//! Who may send: how a sender's credential is read from a request, and the
//! seam through which the server decides whether it may ingest.
//!
//! [`credential`] is the one parser of an `Authorization` value in the
//! workspace (the server's API extractors use it too): `Bearer <token>` (the
//! scheme case-insensitive, as RFC 9110 says) or `Basic base64(user:token)`
//! with the token as the password (or as the user when the password is
//! empty), which is what Prometheus's `basic_auth` and a `https://:token@host`
//! URL send. [`Authenticator`] is implemented by the server over its token
//! store; the receivers only ask it. What this is not: token storage,
//! hashing or scopes (the server's `auth` module).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;

/// The secret an `Authorization` header value carries, or why it carries none.
pub fn credential(authorization: &str) -> Result<String, MalformedCredential> {
    let value = authorization.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(MalformedCredential)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return if rest.is_empty() || rest.contains(' ') { Err(MalformedCredential) } else { Ok(rest.to_owned()) };
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).map_err(|_| MalformedCredential)?;
        let text = String::from_utf8(decoded).map_err(|_| MalformedCredential)?;
        let (user, password) = text.split_once(':').ok_or(MalformedCredential)?;
        let secret = if password.is_empty() { user } else { password };
        return if secret.is_empty() { Err(MalformedCredential) } else { Ok(secret.to_owned()) };
    }
    Err(MalformedCredential)
}

/// An `Authorization` value that is neither `Bearer <token>` nor `Basic` with a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed Authorization header: expected `Bearer <token>` or Basic auth with the token as the password")]
pub struct MalformedCredential;

/// Compares two secrets in time that depends only on their lengths, so the
/// answer's timing does not tell a guesser how much of a secret was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a sender may not ingest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    /// For the sender: what to send instead (never echoes the secret).
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// No, a malformed, an unknown or a revoked credential (HTTP 401, gRPC UNAUTHENTICATED).
    Unauthenticated,
    /// A valid token whose scope does not allow ingest (HTTP 403, gRPC PERMISSION_DENIED).
    Forbidden,
    /// The token store did not answer (HTTP 503, gRPC UNAVAILABLE).
    Unavailable,
}

pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;

/// Decides whether a request may ingest, from the credential it carried
/// (`None`: no `Authorization` at all; `Some(Err)`: one that could not be read).
pub trait Authenticator: Send + Sync {
    fn authenticate<'a>(&'a self, credential: Option<Result<String, MalformedCredential>>) -> AuthFuture<'a>;
}

/// How the receivers authenticate: `Open` takes anyone (a library user's
/// choice, or the server's explicit `ingest_auth = "none"`), otherwise every
/// request is asked about.
#[derive(Clone, Default)]
pub enum IngestAuth {
    #[default]
    Open,
    Required(Arc<dyn Authenticator>),
}

impl IngestAuth {
    /// Checks a request's `Authorization` value (if any) against the authenticator.
    pub async fn check(&self, authorization: Option<&[u8]>) -> Result<(), Refusal> {
        match self {
            IngestAuth::Open => Ok(()),
            IngestAuth::Required(a) => {
                let cred = authorization.map(|v| std::str::from_utf8(v).map_err(|_| MalformedCredential).and_then(credential));
                a.authenticate(cred).await
            }
        }
    }
}

impl std::fmt::Debug for IngestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IngestAuth::Open => "IngestAuth::Open",
            IngestAuth::Required(_) => "IngestAuth::Required",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_carry_the_token_and_anything_else_is_malformed() {
        assert_eq!(credential("Bearer flt_abc").as_deref(), Ok("flt_abc"));
        assert_eq!(credential("bearer  flt_abc ").as_deref(), Ok("flt_abc"));
        assert_eq!(credential("BEARER flt_abc").as_deref(), Ok("flt_abc"));
        // Prometheus basic_auth { username: prometheus, password: <token> }.
        let basic = base64::engine::general_purpose::STANDARD.encode("prometheus:flt_abc");
        assert_eq!(credential(&format!("Basic {basic}")).as_deref(), Ok("flt_abc"));
        // curl -u flt_abc: (the token as the user, no password).
        let user_only = base64::engine::general_purpose::STANDARD.encode("flt_abc:");
        assert_eq!(credential(&format!("basic {user_only}")).as_deref(), Ok("flt_abc"));
        for bad in ["", "Bearer", "Bearer ", "flt_abc", "Token flt_abc", "Bearer a b", "Basic !!!", "Basic Og==", "Basic bm9jb2xvbg=="] {
            assert_eq!(credential(bad), Err(MalformedCredential), "{bad:?}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_secrets() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
