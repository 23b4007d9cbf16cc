//! OTLP/gRPC: the trace, metrics and logs collector services on a tonic
//! server (gzip accepted and sent).
//!
//! Backpressure answers RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo`
//! detail (queue full; the OTLP spec makes that retryable) or UNAVAILABLE
//! (pipeline stopped); undecodable messages are INVALID_ARGUMENT (tonic
//! decodes them); a missing ingest token is UNAUTHENTICATED. Not here:
//! protocol conversion (`traces.rs`, `metrics.rs`).

use std::future::Future;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};

use crate::http::{ProtoAny, RpcStatus};
use crate::ingest::{Batch, Ingest};
use crate::{logs_from_request, metrics_from_request, spans_from_request};

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone)]
struct Otlp(Ingest);

impl Otlp {
    fn check_token<T>(&self, req: &Request<T>, signal: &str) -> Result<(), Status> {
        let Some(token) = &self.0.shared.cfg.token else { return Ok(()) };
        let got = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        if got.strip_prefix("Bearer ") == Some(token.as_str()) {
            Ok(())
        } else {
            self.0.shared.metrics.request("grpc", signal, "unauthorized");
            Err(Status::unauthenticated("missing or wrong ingest token"))
        }
    }

    fn enqueue(&self, signal: &str, batch: Batch) -> Result<(), Status> {
        match self.0.offer(batch) {
            Ok(()) => Ok(()),
            Err(true) => {
                self.0.shared.metrics.request("grpc", signal, "backpressure");
                let secs = i64::from(self.0.shared.cfg.retry_after_secs);
                let retry = RetryInfo { retry_delay: Some(ProtoDuration { seconds: secs, nanos: 0 }) };
                let msg = "ingest queue is full; retry later";
                let st = RpcStatus {
                    code: Code::ResourceExhausted as i32,
                    message: msg.into(),
                    details: vec![ProtoAny {
                        type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                        value: retry.encode_to_vec(),
                    }],
                };
                Err(Status::with_details(Code::ResourceExhausted, msg, st.encode_to_vec().into()))
            }
            Err(false) => {
                self.0.shared.metrics.request("grpc", signal, "unavailable");
                Err(Status::unavailable("ingest pipeline is not running"))
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.check_token(&request, "traces")?;
        let decoded = spans_from_request(request.get_ref());
        let n = decoded.spans.len() as u64;
        if n > 0 {
            self.enqueue("traces", Batch::Spans(decoded.spans))?;
        }
        let m = &self.0.shared.metrics;
        m.request("grpc", "traces", "ok");
        m.records("traces", "accepted", n);
        m.records("traces", "rejected", decoded.rejected.rejected.max(0) as u64);
        let p = decoded.rejected;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (p.rejected > 0)
                .then_some(ExportTracePartialSuccess { rejected_spans: p.rejected, error_message: p.message }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.check_token(&request, "metrics")?;
        let decoded = metrics_from_request(request.get_ref());
        let n = decoded.points.len() as u64;
        if n > 0 {
            self.enqueue("metrics", Batch::Metrics(decoded.points))?;
        }
        let m = &self.0.shared.metrics;
        m.request("grpc", "metrics", "ok");
        m.records("metrics", "accepted", n);
        m.records("metrics", "rejected", decoded.rejected.rejected.max(0) as u64);
        let p = decoded.rejected;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (p.rejected > 0)
                .then_some(ExportMetricsPartialSuccess { rejected_data_points: p.rejected, error_message: p.message }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.check_token(&request, "logs")?;
        let decoded = logs_from_request(request.get_ref());
        if !decoded.events.is_empty() {
            self.enqueue("logs", Batch::Logs(decoded.events))?;
        }
        let m = &self.0.shared.metrics;
        m.request("grpc", "logs", "ok");
        m.records("logs", "accepted", decoded.records);
        let p = decoded.rejected;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (p.rejected > 0)
                .then_some(ExportLogsPartialSuccess { rejected_log_records: p.rejected, error_message: p.message }),
        }))
    }
}

impl Ingest {
    /// Serves OTLP/gRPC (traces, metrics, logs) on `listener` until `shutdown` resolves.
    pub async fn serve_grpc(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let svc = Otlp(self.clone());
        let max = self.shared.cfg.max_decoded_bytes;
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(svc.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
            )
            .add_service(
                MetricsServiceServer::new(svc.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
            )
            .add_service(
                LogsServiceServer::new(svc)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
            )
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
            .await
    }
}
