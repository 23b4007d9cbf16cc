//! Request authentication: `ReadAccess` and `AdminAccess` extractors.
//!
//! A handler that takes `AdminAccess` can only run for a valid admin token;
//! `ReadAccess` accepts any valid token. Missing, malformed, unknown or
//! revoked tokens get 401 (with `WWW-Authenticate`); a valid token without the
//! needed scope gets 403. Open endpoints (`/healthz`, `/readyz`, `/metrics`)
//! simply take neither extractor.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use faultline_core::incident::Actor;
use faultline_store::{TokenRecord, TokenScope};

use super::AppState;
use super::error::ApiError;
use crate::auth::{Verdict, verify};
use crate::metrics::AuthLabels;

/// Any valid token.
pub struct ReadAccess(pub TokenRecord);

/// A valid token with the admin scope.
pub struct AdminAccess(pub TokenRecord);

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

async fn authenticate(parts: &Parts, state: &AppState) -> Result<TokenRecord, ApiError> {
    let fail = |outcome: &'static str, msg: &str| {
        state.metrics.auth_failures.get_or_create(&AuthLabels { outcome }).inc();
        ApiError::unauthorized(msg)
    };
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Err(fail("missing", "missing Authorization header: send `Authorization: Bearer <token>`"));
    };
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| fail("malformed", "malformed Authorization header: expected `Bearer <token>`"))?;
    match verify(state.store.as_ref(), secret).await? {
        Verdict::Valid(t) => Ok(t),
        Verdict::Unknown => Err(fail("unknown", "invalid token")),
        Verdict::Revoked => Err(fail("revoked", "token has been revoked")),
    }
}

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(ReadAccess)
    }
}

impl FromRequestParts<AppState> for AdminAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = authenticate(parts, state).await?;
        if token.scope != TokenScope::Admin {
            state.metrics.auth_failures.get_or_create(&AuthLabels { outcome: "forbidden" }).inc();
            return Err(ApiError::forbidden(format!("token {:?} has scope {}; this endpoint needs an admin token", token.name, token.scope.as_str())));
        }
        Ok(AdminAccess(token))
    }
}
