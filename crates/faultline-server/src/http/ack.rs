//! `/ack/{token}`: the one-click acknowledge link a page carries, for the
//! paged person on their phone, without logging in. `GET` only shows what
//! the link will do and a button (link scanners and previews fetch with GET,
//! so GET never acknowledges); `POST` acknowledges as the paged user. A link
//! that was used, has expired or was altered is refused with a page saying
//! which (410, 410, 403), and an incident already acknowledged or resolved
//! says so (409).
//!
//! These pages answer HTML, errors included: a person reads them, not a
//! script. What is not here: signing (`faultline_engine::ack_link`), the
//! acknowledge rule (the core state machine, through `commands::execute`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use faultline_core::incident::{Actor, Command};
use faultline_core::status_page::xml;
use faultline_engine::ack_link::{AckLink, AckLinkError};
use faultline_store::{StoreError, commands};

use super::AppState;
use crate::metrics::EventLabels;

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}button{{font-size:1.2rem;padding:.6rem 1.2rem}}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>",
        t = xml(title)
    );
    (status, Html(html)).into_response()
}

fn store_down(e: &StoreError) -> Response {
    tracing::error!(error = %e, "acknowledge link: store error");
    page(StatusCode::SERVICE_UNAVAILABLE, "Try again", "<p>Faultline cannot reach its database right now. Try the link again in a moment.</p>")
}

/// The link's claims, or the page refusing it.
async fn check(state: &AppState, token: &str) -> Result<AckLink, Response> {
    let now = state.clock.now();
    let key = state.response.driver.ack_key(now).await.map_err(|e| store_down(&e))?;
    key.verify(token, now).map_err(|e| match e {
        AckLinkError::Malformed => page(StatusCode::BAD_REQUEST, "Not an acknowledge link", &format!("<p>{}.</p>", xml(&e.to_string()))),
        AckLinkError::Tampered => {
            page(StatusCode::FORBIDDEN, "Link refused", &format!("<p>{}. Use the link from your page as it came.</p>", xml(&e.to_string())))
        }
        AckLinkError::Expired(_) => page(
            StatusCode::GONE,
            "Link expired",
            &format!("<p>{}. Acknowledge in Faultline or with <code>faultline incidents ack</code>.</p>", xml(&e.to_string())),
        ),
    })
}

pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = match check(&state, &token).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let incident = match state.store.incident(link.incident).await {
        Ok(Some((i, _))) => i,
        Ok(None) => return page(StatusCode::NOT_FOUND, "No such incident", "<p>The incident this link is for no longer exists.</p>"),
        Err(e) => return store_down(&e),
    };
    let body = format!(
        "<p><strong>{}</strong> ({}, {})</p><p>Acknowledge it as <strong>{}</strong>? Escalation stops and the incident's channels are told.</p>\
         <form method=\"post\"><button type=\"submit\">Acknowledge as {}</button></form>",
        xml(&incident.title),
        incident.severity,
        incident.status,
        xml(link.user.as_str()),
        xml(link.user.as_str())
    );
    page(StatusCode::OK, "Acknowledge incident", &body)
}

pub async fn acknowledge(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = match check(&state, &token).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let now = state.clock.now();
    let incident = match state.store.incident(link.incident).await {
        Ok(Some((i, _))) => i,
        Ok(None) => return page(StatusCode::NOT_FOUND, "No such incident", "<p>The incident this link is for no longer exists.</p>"),
        Err(e) => return store_down(&e),
    };
    match state.response.responses.use_ack_link(&link.nonce, link.incident, &link.user, now).await {
        Ok(true) => {}
        Ok(false) => return page(StatusCode::GONE, "Link already used", "<p>This acknowledge link was already used; each link works once.</p>"),
        Err(e) => return store_down(&e),
    }
    let by = Actor::User(link.user.clone());
    match commands::execute(state.store.as_ref(), link.incident, Command::Acknowledge, by, now).await {
        Ok((_, ev)) => {
            state.metrics.timeline_events.get_or_create(&EventLabels { kind: ev.event.kind() }).inc();
            state.response.driver.wake();
            let body = format!("<p><strong>{}</strong> is acknowledged by {}. Escalation has stopped.</p>", xml(&incident.title), xml(link.user.as_str()));
            page(StatusCode::OK, "Acknowledged", &body)
        }
        Err(StoreError::Invalid(e)) => {
            let now_status = match state.store.incident(link.incident).await {
                Ok(Some((i, _))) => i.status,
                _ => incident.status,
            };
            let body = format!("<p><strong>{}</strong> is already {now_status}: {}.</p>", xml(&incident.title), xml(&e.to_string()));
            page(StatusCode::CONFLICT, "Nothing to acknowledge", &body)
        }
        Err(e) => store_down(&e),
    }
}
