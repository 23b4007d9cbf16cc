//! One-click acknowledge links: a page carries a link that acknowledges its
//! incident as the paged person without logging in.
//!
//! What it is: the link's token — `v1.<incident>.<expires ms>.<nonce>.<user
//! hex>.<mac>` — signed with HMAC-SHA256 under the server's [`AckLinkKey`],
//! and its verification: a changed byte is [`AckLinkError::Tampered`], a
//! link past its time [`AckLinkError::Expired`]. The nonce is derived from
//! the page's idempotency key, so a page replayed after a crash carries the
//! same link; single use is the store's (`ResponseStore::use_ack_link`
//! records the nonce once).
//!
//! What it is not: the HTTP pages (`faultline-server`'s `http::ack`), or
//! where the key lives (generated once and kept in the store by the driver).

use std::fmt;

use faultline_core::{IncidentId, Timestamp, UserId};
use sha2::{Digest, Sha256};

/// How long a page's acknowledge link works.
pub const LINK_LIFETIME_HOURS: i64 = 24;

/// The server's secret for signing links (32 random bytes). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AckLinkKey([u8; 32]);

impl fmt::Debug for AckLinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckLinkKey(***)")
    }
}

/// What a valid link says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckLink {
    pub incident: IncidentId,
    pub user: UserId,
    pub expires_at: Timestamp,
    /// Identifies the link for single use.
    pub nonce: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckLinkError {
    #[error("this link is not an acknowledge link")]
    Malformed,
    #[error("this link has been altered: it does not carry Faultline's signature")]
    Tampered,
    #[error("this link expired at {0}")]
    Expired(Timestamp),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

impl AckLinkKey {
    /// A new random key from the operating system.
    pub fn generate() -> Result<AckLinkKey, String> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| format!("cannot get randomness from the operating system: {e}"))?;
        Ok(AckLinkKey(k))
    }

    /// The key as stored (hex).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<AckLinkKey> {
        unhex(s.trim()).and_then(|v| <[u8; 32]>::try_from(v).ok()).map(AckLinkKey)
    }

    /// HMAC-SHA256 (RFC 2104) of `msg`.
    fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in self.0.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let inner = Sha256::new().chain_update(ipad).chain_update(msg).finalize();
        Sha256::new().chain_update(opad).chain_update(inner).finalize().into()
    }

    /// The token for a page to `user` about `incident` whose outbox key is
    /// `page_key`, valid until `expires_at`.
    pub fn sign(&self, incident: IncidentId, user: &UserId, page_key: &str, expires_at: Timestamp) -> String {
        let nonce = hex(&Sha256::digest(page_key.as_bytes())[..12]);
        let body = format!("v1.{incident}.{}.{nonce}.{}", expires_at.as_millis(), hex(user.as_str().as_bytes()));
        let mac = hex(&self.mac(body.as_bytes()));
        format!("{body}.{mac}")
    }

    /// Checks the signature, then the time.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<AckLink, AckLinkError> {
        let (body, mac) = token.rsplit_once('.').ok_or(AckLinkError::Malformed)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [version, incident, expires, nonce, user] = parts[..] else { return Err(AckLinkError::Malformed) };
        if version != "v1" {
            return Err(AckLinkError::Malformed);
        }
        let given = unhex(mac).ok_or(AckLinkError::Malformed)?;
        let want = self.mac(body.as_bytes());
        // Constant time: the comparison does not stop at the first difference.
        if given.len() != want.len() || given.iter().zip(want.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return Err(AckLinkError::Tampered);
        }
        // Signed by us: what follows can only fail for a link we never made.
        let incident: IncidentId = incident.parse().map_err(|_| AckLinkError::Malformed)?;
        let expires_at = Timestamp::from_millis(expires.parse().map_err(|_| AckLinkError::Malformed)?);
        let user = unhex(user).and_then(|b| String::from_utf8(b).ok()).and_then(|u| UserId::new(u).ok()).ok_or(AckLinkError::Malformed)?;
        if now >= expires_at {
            return Err(AckLinkError::Expired(expires_at));
        }
        Ok(AckLink { incident, user, expires_at, nonce: nonce.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_until_they_expire_and_any_change_is_refused() {
        let key = AckLinkKey([0x0b; 32]);
        let id: IncidentId = "0190a5a4-0000-7000-8000-000000000001".parse().unwrap();
        let alice = UserId::new("alice").unwrap();
        let t = Timestamp::from_millis(1_000_000);
        let token = key.sign(id, &alice, "inc/e0/c0/s0/alice/trigger/hook", t);
        assert_eq!(token, key.sign(id, &alice, "inc/e0/c0/s0/alice/trigger/hook", t), "deterministic: a replayed page carries the same link");
        let link = key.verify(&token, Timestamp::from_millis(999_999)).unwrap();
        assert_eq!((link.incident, link.user.as_str(), link.expires_at), (id, "alice", t));
        assert_eq!(key.verify(&token, t), Err(AckLinkError::Expired(t)));
        // Another user, a later expiry, another key: refused.
        let forged = token.replace(&hex(b"alice"), &hex(b"mallory"));
        assert_eq!(key.verify(&forged, Timestamp::EPOCH), Err(AckLinkError::Tampered));
        let later = token.replace(".1000000.", ".9000000.");
        assert_eq!(key.verify(&later, Timestamp::EPOCH), Err(AckLinkError::Tampered));
        assert_eq!(AckLinkKey([1; 32]).verify(&token, Timestamp::EPOCH), Err(AckLinkError::Tampered));
        assert_eq!(key.verify("nonsense", Timestamp::EPOCH), Err(AckLinkError::Malformed));
        assert_eq!(AckLinkKey::from_hex(&key.to_hex()), Some(key));
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2: key "Jefe" (padded with zeros to our 32 bytes
        // is the same HMAC: keys shorter than the block are zero-padded).
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(b"Jefe");
        let mac = hex(&AckLinkKey(k).mac(b"what do ya want for nothing?"));
        assert_eq!(mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
