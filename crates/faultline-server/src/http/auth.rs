//! Request authentication: `ReadAccess`, `AdminAccess` and `IngestAccess` extractors.
//!
//! A handler that takes `AdminAccess` can only run for a valid admin token;
//! `ReadAccess` accepts read and admin tokens; `IngestAccess` ingest and
//! admin tokens, or anyone under `ingest_auth = "none"`. Missing, malformed,
//! unknown or revoked tokens get 401 (with `WWW-Authenticate`); a valid token
//! without the needed scope gets 403. The decision itself is
//! `crate::auth::authorize`; the header is read by the workspace's one
//! parser, `faultline_receivers::auth::credential` (`Bearer`, or Basic with
//! the token as the password). Open endpoints (`/healthz`, `/readyz`,
//! `/metrics`) simply take none of them.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use faultline_core::incident::Actor;
use faultline_store::TokenRecord;

use super::AppState;
use super::error::ApiError;
use crate::auth::{Denied, Need, authorize};
use crate::metrics::AuthLabels;

/// A read or admin token.
pub struct ReadAccess(pub TokenRecord);

/// A valid token with the admin scope.
pub struct AdminAccess(pub TokenRecord);

/// May ingest: an ingest or admin token (`None` when ingest is open by
/// `ingest_auth = "none"`).
pub struct IngestAccess(pub Option<TokenRecord>);

impl AdminAccess {
    /// Who the timeline records as having acted: the token's user, else
    /// the token (automation).
    pub fn actor(&self) -> Actor {
        match &self.0.user {
            Some(u) => Actor::User(u.clone()),
            None => Actor::Token(self.0.name.clone()),
        }
    }
}

/// The credential a request carries (see `faultline_receivers::auth::credential`).
pub fn request_credential(headers: &HeaderMap) -> Option<Result<String, faultline_receivers::auth::MalformedCredential>> {
    headers.get(AUTHORIZATION).map(|v| v.to_str().map_err(|_| faultline_receivers::auth::MalformedCredential).and_then(faultline_receivers::auth::credential))
}

/// Authorises a request for `need`, counting refusals, as an API error.
pub async fn require(headers: &HeaderMap, state: &AppState, need: Need) -> Result<TokenRecord, ApiError> {
    authorize(state.store.as_ref(), request_credential(headers), need).await.map_err(|d| {
        state.metrics.auth_failures.get_or_create(&AuthLabels { outcome: d.outcome() }).inc();
        let message = d.message(need);
        match d {
            Denied::Forbidden { .. } => ApiError::forbidden(message),
            Denied::Store(e) => e.into(),
            _ => ApiError::unauthorized(message),
        }
    })
}

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require(&parts.headers, state, Need::Read).await.map(ReadAccess)
    }
}

impl FromRequestParts<AppState> for AdminAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require(&parts.headers, state, Need::Admin).await.map(AdminAccess)
    }
}

impl FromRequestParts<AppState> for IngestAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.ingest_auth == crate::config::IngestAuthMode::None {
            return Ok(IngestAccess(None));
        }
        require(&parts.headers, state, Need::Ingest).await.map(|t| IngestAccess(Some(t)))
    }
}
