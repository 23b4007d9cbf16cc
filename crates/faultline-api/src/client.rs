//! A minimal async client for Faultline's HTTP API, used by the CLI.
//!
//! It maps error bodies to `ClientError::Api` so callers can print the
//! server's message in one line. It is not a general SDK: it grows only with
//! what the CLI needs.

use serde::de::DeserializeOwned;

use crate::{
    CoverageGaps, CreateIncident, ErrorBody, Incident, IncidentList, NoteRequest, NotificationList, OnCallList, ReopenRequest, ResponseMetrics, RoleRequest,
    SeverityRequest, TransitionRequest,
};
use crate::{Published, StatusUpdateRequest, TitleRequest};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{message} (HTTP {status}, {code})")]
    Api { status: u16, code: String, message: String },
    #[error("cannot reach Faultline at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("unexpected response from Faultline (HTTP {status}): {reason}")]
    BadResponse { status: u16, reason: String },
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// `base` like `http://127.0.0.1:8080`. Needs a rustls crypto provider
    /// installed process-wide first (the CLI's `main` does it).
    pub fn new(base: &str, token: Option<String>) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Unreachable { url: base.to_owned(), reason: e.to_string() })?;
        Ok(Client { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        // `#42` names incident 42; in a URL `#` would start a fragment.
        let path = path.replace("/incidents/#", "/incidents/");
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    async fn send<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let resp = rb.send().await.map_err(|e| ClientError::Unreachable { url: self.base.clone(), reason: root_cause(&e) })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| ClientError::BadResponse { status, reason: e.to_string() })?;
        if (200..300).contains(&status) {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse { status, reason: e.to_string() })
        } else {
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => Err(ClientError::Api { status, code: b.error.code, message: b.error.message }),
                Err(_) => Err(ClientError::BadResponse { status, reason: String::from_utf8_lossy(&bytes).chars().take(200).collect() }),
            }
        }
    }

    /// Any read endpoint as untyped JSON (for views whose shape the CLI only prints).
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<serde_json::Value, ClientError> {
        self.send(self.request(reqwest::Method::GET, path).query(query)).await
    }

    pub async fn list_incidents(&self, query: &[(&str, String)]) -> Result<IncidentList, ClientError> {
        self.send(self.request(reqwest::Method::GET, "/api/v1/incidents").query(query)).await
    }

    pub async fn incident(&self, id: &str) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::GET, &format!("/api/v1/incidents/{id}"))).await
    }

    pub async fn create_incident(&self, body: &CreateIncident) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::POST, "/api/v1/incidents").json(body)).await
    }

    pub async fn change_severity(&self, id: &str, body: &SeverityRequest) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/severity")).json(body)).await
    }

    /// Assigns a role, or unassigns it when `body.user` is `None`.
    pub async fn assign_role(&self, id: &str, body: &RoleRequest) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/roles")).json(body)).await
    }

    pub async fn add_note(&self, id: &str, body: &NoteRequest) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/notes")).json(body)).await
    }

    /// Renames the incident, or sets its public title (`body.public`).
    pub async fn change_title(&self, id: &str, body: &TitleRequest) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/title")).json(body)).await
    }

    /// Publishes the comms lead's status-page update for the incident.
    pub async fn post_status_update(&self, id: &str, body: &StatusUpdateRequest) -> Result<Published, ClientError> {
        self.send(self.request(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/status-updates")).json(body)).await
    }

    pub async fn reopen(&self, id: &str, body: &ReopenRequest) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/reopen")).json(body)).await
    }

    /// The notification outbox rows and ledger of one incident.
    pub async fn notifications(&self, id: &str) -> Result<NotificationList, ClientError> {
        self.send(self.request(reqwest::Method::GET, &format!("/api/v1/incidents/{id}/notifications"))).await
    }

    /// MTTA / MTTM / MTTR distributions; `query` takes `from`, `to`, `severity`.
    pub async fn response_metrics(&self, query: &[(&str, String)]) -> Result<ResponseMetrics, ClientError> {
        self.send(self.request(reqwest::Method::GET, "/api/v1/metrics/response").query(query)).await
    }

    /// Who is on call; `query` takes `schedule`, `at`.
    pub async fn oncall(&self, query: &[(&str, String)]) -> Result<OnCallList, ClientError> {
        self.send(self.request(reqwest::Method::GET, "/api/v1/oncall").query(query)).await
    }

    /// Coverage gaps; `query` takes `schedule`, `from`, `to`.
    pub async fn coverage_gaps(&self, query: &[(&str, String)]) -> Result<CoverageGaps, ClientError> {
        self.send(self.request(reqwest::Method::GET, "/api/v1/oncall/gaps").query(query)).await
    }

    /// `action` is one of `ack`, `mitigate`, `resolve`.
    pub async fn transition(&self, id: &str, action: &str, body: &TransitionRequest) -> Result<Incident, ClientError> {
        self.send(self.request(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/{action}")).json(body)).await
    }
}

/// reqwest's top-level message is "error sending request"; the cause chain
/// says what actually happened (connection refused, DNS, timeout).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
