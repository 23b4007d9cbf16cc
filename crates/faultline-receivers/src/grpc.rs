//! OTLP/gRPC: the trace, metrics and logs collector services on a tonic
//! server (gzip accepted and sent).
//!
//! Traces (the volume) skip prost: [`RawTraceServer`] receives the message
//! bytes through a pass-through codec and runs the same zero-copy decoder as
//! OTLP/HTTP. Metrics and logs use opentelemetry-proto's generated servers.
//!
//! Backpressure answers RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo`
//! detail (queue full; the OTLP spec makes that retryable) or UNAVAILABLE
//! (pipeline stopped); undecodable messages are INVALID_ARGUMENT (tonic
//! decodes them); a missing or wrong ingest token is UNAUTHENTICATED, a
//! token without the ingest scope PERMISSION_DENIED. Not here:
//! protocol conversion (`traces.rs`, `metrics.rs`).

use std::future::Future;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{BoxFuture, http};
use tonic::{Code, Request, Response, Status};

use crate::auth::RefusalKind;
use crate::http::{ProtoAny, RpcStatus};
use crate::ingest::{Batch, Ingest};
use crate::{logs_from_request, metrics_from_request};

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
    /// Asks the authenticator about the request's `authorization` metadata
    /// (the same `Bearer`/Basic parsing as HTTP, `auth::credential`).
    async fn check_token(&self, meta: &tonic::metadata::MetadataMap, signal: &str) -> Result<(), Status> {
        let given = meta.get("authorization").map(|v| v.as_bytes());
        match self.0.shared.cfg.auth.check(given).await {
            Ok(()) => Ok(()),
            Err(refusal) => {
                let (outcome, status) = match refusal.kind {
                    RefusalKind::Unauthenticated => ("unauthorized", Status::unauthenticated(refusal.message)),
                    RefusalKind::Forbidden => ("forbidden", Status::permission_denied(refusal.message)),
                    RefusalKind::Unavailable => ("unavailable", Status::unavailable(refusal.message)),
                };
                self.0.shared.metrics.request("grpc", signal, outcome);
                Err(status)
            }
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
                    details: vec![ProtoAny { type_url: "type.googleapis.com/google.rpc.RetryInfo".into(), value: retry.encode_to_vec() }],
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

impl Otlp {
    /// Export for traces from raw message bytes.
    async fn export_traces(&self, meta: &tonic::metadata::MetadataMap, bytes: Bytes) -> Result<ExportTraceServiceResponse, Status> {
        self.check_token(meta, "traces").await?;
        let decoded = match crate::decode_traces_protobuf(&bytes) {
            Ok(d) => d,
            Err(e) => {
                self.0.shared.metrics.request("grpc", "traces", "bad_payload");
                return Err(Status::invalid_argument(e.to_string()));
            }
        };
        let n = decoded.spans.len() as u64;
        let p = decoded.rejected;
        if n > 0 {
            let spans = decoded.spans.into_iter().map(|s| s.into_owned()).collect();
            self.enqueue("traces", Batch::Spans(spans))?;
        }
        let m = &self.0.shared.metrics;
        m.request("grpc", "traces", "ok");
        m.records("traces", "accepted", n);
        m.records("traces", "rejected", p.rejected.max(0) as u64);
        Ok(ExportTraceServiceResponse {
            partial_success: (p.rejected > 0).then_some(ExportTracePartialSuccess { rejected_spans: p.rejected, error_message: p.message }),
        })
    }
}

/// Hands the (decompressed) message bytes through; encodes responses with prost.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawDecoder;
struct ProstEncoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = ProstEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> ProstEncoder {
        ProstEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl tonic::codec::Encoder for ProstEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;
    fn encode(&mut self, item: ExportTraceServiceResponse, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

struct ExportRaw(Otlp);

impl tonic::server::UnaryService<Bytes> for ExportRaw {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<ExportTraceServiceResponse>, Status>;
    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            let (meta, _, bytes) = request.into_parts();
            svc.export_traces(&meta, bytes).await.map(Response::new)
        })
    }
}

const TRACE_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP trace service, decoding with the zero-copy decoder.
#[derive(Clone)]
struct RawTraceServer {
    otlp: Otlp,
    max_decoding: usize,
}

impl tonic::server::NamedService for RawTraceServer {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tonic::codegen::Service<http::Request<B>> for RawTraceServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != TRACE_EXPORT_PATH {
            return Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                response.headers_mut().insert("grpc-status", (Code::Unimplemented as i32).into());
                response.headers_mut().insert(http::header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
                Ok(response)
            });
        }
        let mut encodings = tonic::codegen::EnabledCompressionEncodings::default();
        encodings.enable(CompressionEncoding::Gzip);
        let (otlp, max) = (self.otlp.clone(), self.max_decoding);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec).apply_compression_config(encodings, encodings).apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(ExportRaw(otlp), req).await)
        })
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(&self, request: Request<ExportMetricsServiceRequest>) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.check_token(request.metadata(), "metrics").await?;
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
            partial_success: (p.rejected > 0).then_some(ExportMetricsPartialSuccess { rejected_data_points: p.rejected, error_message: p.message }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(&self, request: Request<ExportLogsServiceRequest>) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.check_token(request.metadata(), "logs").await?;
        let decoded = logs_from_request(request.get_ref());
        if !decoded.events.is_empty() {
            self.enqueue("logs", Batch::Logs(decoded.events))?;
        }
        let m = &self.0.shared.metrics;
        m.request("grpc", "logs", "ok");
        m.records("logs", "accepted", decoded.records);
        let p = decoded.rejected;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (p.rejected > 0).then_some(ExportLogsPartialSuccess { rejected_log_records: p.rejected, error_message: p.message }),
        }))
    }
}

impl Ingest {
    /// Serves OTLP/gRPC (traces, metrics, logs) on `listener` until `shutdown` resolves.
    pub async fn serve_grpc(&self, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<(), tonic::transport::Error> {
        let svc = Otlp(self.clone());
        let max = self.shared.cfg.max_decoded_bytes;
        tonic::transport::Server::builder()
            .add_service(RawTraceServer { otlp: svc.clone(), max_decoding: max })
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
