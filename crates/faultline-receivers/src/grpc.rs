//! OTLP/gRPC: the trace, metrics and logs collector services on a tonic
//! server (gzip accepted and sent).
//!
//! Every service receives the message bytes through a pass-through codec
//! (`RawServer`): traces (the volume) run the same zero-copy decoder as
//! OTLP/HTTP, metrics and logs are decoded with prost here, so an
//! undecodable message is answered INVALID_ARGUMENT by us (tonic's codec
//! would answer INTERNAL, which senders retry).
//!
//! Backpressure answers RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo`
//! detail (queue full; the OTLP spec makes that retryable) or UNAVAILABLE
//! (pipeline stopped); undecodable messages are INVALID_ARGUMENT; a missing or wrong ingest token is UNAUTHENTICATED, a
//! token without the ingest scope PERMISSION_DENIED. Not here:
//! protocol conversion (`traces.rs`, `metrics.rs`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse};
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
struct RawCodec<R>(PhantomData<fn() -> R>);

struct RawDecoder;
struct ProstEncoder<R>(PhantomData<fn() -> R>);

impl<R: Message + Send + 'static> tonic::codec::Codec for RawCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = ProstEncoder<R>;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> ProstEncoder<R> {
        ProstEncoder(PhantomData)
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

impl<R: Message> tonic::codec::Encoder for ProstEncoder<R> {
    type Item = R;
    type Error = Status;
    fn encode(&mut self, item: R, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

/// One OTLP collector service served from raw message bytes, so that an
/// undecodable message is ours to answer (INVALID_ARGUMENT; tonic's prost
/// codec would say INTERNAL, which the OTLP spec tells senders to retry).
trait RawExport: Send + Sync + 'static {
    /// The gRPC service name (`package.Service`).
    const NAME: &'static str;
    type Reply: Message + Send + 'static;
    fn export(otlp: Otlp, meta: tonic::metadata::MetadataMap, bytes: Bytes) -> BoxFuture<Self::Reply, Status>;
}

struct TraceExport;
struct MetricsExport;
struct LogsExport;

impl RawExport for TraceExport {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    type Reply = ExportTraceServiceResponse;
    fn export(otlp: Otlp, meta: tonic::metadata::MetadataMap, bytes: Bytes) -> BoxFuture<Self::Reply, Status> {
        Box::pin(async move { otlp.export_traces(&meta, bytes).await })
    }
}

impl RawExport for MetricsExport {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    type Reply = ExportMetricsServiceResponse;
    fn export(otlp: Otlp, meta: tonic::metadata::MetadataMap, bytes: Bytes) -> BoxFuture<Self::Reply, Status> {
        Box::pin(async move {
            otlp.check_token(&meta, "metrics").await?;
            let request = otlp.decode::<ExportMetricsServiceRequest>("metrics", &bytes)?;
            otlp.export_metrics(&request)
        })
    }
}

impl RawExport for LogsExport {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    type Reply = ExportLogsServiceResponse;
    fn export(otlp: Otlp, meta: tonic::metadata::MetadataMap, bytes: Bytes) -> BoxFuture<Self::Reply, Status> {
        Box::pin(async move {
            otlp.check_token(&meta, "logs").await?;
            let request = otlp.decode::<ExportLogsServiceRequest>("logs", &bytes)?;
            otlp.export_logs(&request)
        })
    }
}

struct ExportRaw<E>(Otlp, PhantomData<fn() -> E>);

impl<E: RawExport> tonic::server::UnaryService<Bytes> for ExportRaw<E> {
    type Response = E::Reply;
    type Future = BoxFuture<Response<E::Reply>, Status>;
    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let otlp = self.0.clone();
        Box::pin(async move {
            let (meta, _, bytes) = request.into_parts();
            E::export(otlp, meta, bytes).await.map(Response::new)
        })
    }
}

/// An OTLP service (`E`) on raw bytes: only its `Export` method exists.
struct RawServer<E> {
    otlp: Otlp,
    max_decoding: usize,
    _export: PhantomData<fn() -> E>,
}

impl<E> Clone for RawServer<E> {
    fn clone(&self) -> Self {
        RawServer { otlp: self.otlp.clone(), max_decoding: self.max_decoding, _export: PhantomData }
    }
}

impl<E: RawExport> tonic::server::NamedService for RawServer<E> {
    const NAME: &'static str = E::NAME;
}

impl<E, B> tonic::codegen::Service<http::Request<B>> for RawServer<E>
where
    E: RawExport,
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
        let is_export = req.uri().path().strip_prefix('/').and_then(|p| p.strip_prefix(E::NAME)) == Some("/Export");
        if !is_export {
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
            let mut grpc = tonic::server::Grpc::new(RawCodec::<E::Reply>(PhantomData))
                .apply_compression_config(encodings, encodings)
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(ExportRaw::<E>(otlp, PhantomData), req).await)
        })
    }
}

impl Otlp {
    /// Decodes a metrics or logs request; undecodable is INVALID_ARGUMENT.
    fn decode<M: Message + Default>(&self, signal: &str, bytes: &[u8]) -> Result<M, Status> {
        M::decode(bytes).map_err(|e| {
            self.0.shared.metrics.request("grpc", signal, "bad_payload");
            Status::invalid_argument(crate::DecodeError::Protobuf(e.to_string()).to_string())
        })
    }

    fn export_metrics(&self, request: &ExportMetricsServiceRequest) -> Result<ExportMetricsServiceResponse, Status> {
        let decoded = metrics_from_request(request);
        let n = decoded.points.len() as u64;
        if n > 0 {
            self.enqueue("metrics", Batch::Metrics(decoded.points))?;
        }
        let m = &self.0.shared.metrics;
        m.request("grpc", "metrics", "ok");
        m.records("metrics", "accepted", n);
        m.records("metrics", "rejected", decoded.rejected.rejected.max(0) as u64);
        let p = decoded.rejected;
        Ok(ExportMetricsServiceResponse {
            partial_success: (p.rejected > 0).then_some(ExportMetricsPartialSuccess { rejected_data_points: p.rejected, error_message: p.message }),
        })
    }

    fn export_logs(&self, request: &ExportLogsServiceRequest) -> Result<ExportLogsServiceResponse, Status> {
        let decoded = logs_from_request(request);
        if !decoded.events.is_empty() {
            self.enqueue("logs", Batch::Logs(decoded.events))?;
        }
        let m = &self.0.shared.metrics;
        m.request("grpc", "logs", "ok");
        m.records("logs", "accepted", decoded.records);
        let p = decoded.rejected;
        Ok(ExportLogsServiceResponse {
            partial_success: (p.rejected > 0).then_some(ExportLogsPartialSuccess { rejected_log_records: p.rejected, error_message: p.message }),
        })
    }
}

impl Ingest {
    /// Serves OTLP/gRPC (traces, metrics, logs) on `listener` until `shutdown` resolves.
    pub async fn serve_grpc(&self, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<(), tonic::transport::Error> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if tx.send(stream).await.is_err() {
                    break;
                }
            }
        });
        let served = self.serve_grpc_connections(rx, shutdown).await;
        accept.abort();
        served
    }

    /// Serves OTLP/gRPC on connections the caller accepted (and bounded:
    /// the server's connection cap and idle timeout) until `shutdown`
    /// resolves or the sender is dropped.
    pub async fn serve_grpc_connections<IO>(
        &self,
        connections: tokio::sync::mpsc::Receiver<IO>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let otlp = Otlp(self.clone());
        let max_decoding = self.shared.cfg.max_decoded_bytes;
        tonic::transport::Server::builder()
            // The same whole-request deadline as OTLP/HTTP.
            .timeout(self.shared.cfg.request_timeout)
            .add_service(RawServer::<TraceExport> { otlp: otlp.clone(), max_decoding, _export: PhantomData })
            .add_service(RawServer::<MetricsExport> { otlp: otlp.clone(), max_decoding, _export: PhantomData })
            .add_service(RawServer::<LogsExport> { otlp, max_decoding, _export: PhantomData })
            .serve_with_incoming_shutdown(Incoming(connections), shutdown)
            .await
    }
}

/// The accepted connections as the stream tonic serves.
struct Incoming<IO>(tokio::sync::mpsc::Receiver<IO>);

impl<IO> futures_core::Stream for Incoming<IO> {
    type Item = Result<Accepted<IO>, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(|io| Ok(Accepted(io))))
    }
}

/// One accepted connection, for tonic (which asks each for its `connect_info`).
struct Accepted<IO>(IO);

impl<IO> tonic::transport::server::Connected for Accepted<IO> {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl<IO: AsyncRead + Unpin> AsyncRead for Accepted<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Accepted<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>, data: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
