//! OTLP export of encoded span batches: gRPC (`TraceService/Export`) through
//! tonic, or HTTP/protobuf through reqwest, each on the sink worker's own
//! single-thread runtime.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

use crate::batch_sink::{BatchDelivery, SpanEncoding};
use crate::error::ExportError;
use crate::finished_span::FinishedSpan;
use crate::otlp_proto::{ExportHeader, encode_span};
use crate::{OtlpConfig, OtlpProtocol, TelemetryError};

/// The gRPC method OTLP trace export calls.
const EXPORT_METHOD: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Most of an error response body kept in the error.
const ERROR_BODY_LIMIT: usize = 512;

/// Spans as OTLP protobuf `Span` messages.
#[derive(Debug)]
pub(crate) struct OtlpSpans;

impl SpanEncoding for OtlpSpans {
    fn encode(&self, span: &FinishedSpan<'_>, out: &mut Vec<u8>) {
        encode_span(span, out);
    }
}

/// Sends batches to an OTLP collector.
#[derive(Debug)]
pub(crate) struct OtlpDelivery {
    header: ExportHeader,
    transport: Transport,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

#[derive(Debug)]
enum Transport {
    Grpc {
        channel: Channel,
        metadata: MetadataMap,
    },
    Http {
        client: reqwest::Client,
        url: String,
        headers: http::HeaderMap,
    },
}

impl OtlpDelivery {
    /// A delivery to `config`'s collector, describing spans with `header`.
    /// Nothing connects until the first batch.
    pub(crate) fn new(config: &OtlpConfig, header: ExportHeader) -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(TelemetryError::Runtime)?;
        let setup_error =
            |source: Box<dyn std::error::Error + Send + Sync>| TelemetryError::Exporter {
                endpoint: config.endpoint.clone(),
                source,
            };
        let transport = match config.protocol {
            OtlpProtocol::Grpc => {
                if config.endpoint.starts_with("https:") {
                    return Err(TelemetryError::InvalidSetting {
                        name: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                        message: "OTLP/gRPC is built without TLS; use `http://` or \
                                  OTLP/HTTP (`http/protobuf`), which supports `https://`"
                            .into(),
                    });
                }
                let endpoint = Endpoint::from_shared(config.endpoint.clone())
                    .map_err(|error| setup_error(error.into()))?
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout);
                // The channel's connection task runs on this runtime.
                let channel = {
                    let _entered = runtime.enter();
                    endpoint.connect_lazy()
                };
                Transport::Grpc {
                    channel,
                    metadata: MetadataMap::from_headers(http_headers(&config.headers)?),
                }
            }
            OtlpProtocol::HttpProtobuf => Transport::Http {
                client: reqwest::Client::builder()
                    .timeout(config.timeout)
                    .build()
                    .map_err(|error| setup_error(error.into()))?,
                url: config.endpoint.clone(),
                headers: http_headers(&config.headers)?,
            },
        };
        Ok(Self {
            header,
            transport,
            timeout: config.timeout,
            runtime,
        })
    }
}

impl BatchDelivery for OtlpDelivery {
    fn deliver(&mut self, batch: &[u8], _spans: usize) -> Result<(), ExportError> {
        let body = self.header.request(batch);
        let (transport, timeout) = (&self.transport, self.timeout);
        self.runtime.block_on(async move {
            tokio::time::timeout(timeout, transport.send(body))
                .await
                .unwrap_or(Err(ExportError::Timeout(timeout)))
        })
    }
}

impl Transport {
    /// Sends one `ExportTraceServiceRequest`. A partial success (spans the
    /// collector rejected) counts as delivered, as in the SDK's exporters.
    async fn send(&self, body: Vec<u8>) -> Result<(), ExportError> {
        match self {
            Transport::Grpc { channel, metadata } => {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready().await.map_err(ExportError::GrpcConnect)?;
                let mut request = tonic::Request::new(Bytes::from(body));
                *request.metadata_mut() = metadata.clone();
                grpc.unary(request, PathAndQuery::from_static(EXPORT_METHOD), RawCodec)
                    .await
                    .map_err(ExportError::Grpc)?;
                Ok(())
            }
            Transport::Http {
                client,
                url,
                headers,
            } => {
                let response = client
                    .post(url)
                    .headers(headers.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .map_err(ExportError::Http)?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let mut body = response.text().await.unwrap_or_default();
                if body.len() > ERROR_BODY_LIMIT {
                    let mut end = ERROR_BODY_LIMIT;
                    while !body.is_char_boundary(end) {
                        end -= 1;
                    }
                    body.truncate(end);
                }
                Err(ExportError::HttpStatus { status, body })
            }
        }
    }
}

/// `headers` as HTTP headers (names lowercased, as gRPC metadata needs).
fn http_headers(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<http::HeaderMap, TelemetryError> {
    let mut map = http::HeaderMap::new();
    for (key, value) in headers {
        let invalid = |message: &str| TelemetryError::InvalidSetting {
            name: format!("telemetry.headers.{key}"),
            message: message.into(),
        };
        let name = http::HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| invalid("not a valid header name"))?;
        let value =
            http::HeaderValue::from_str(value).map_err(|_| invalid("not a valid header value"))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// A gRPC codec for messages that are already encoded: the request is sent
/// as is and the response (an `ExportTraceServiceResponse`) kept as bytes.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn headers_become_lowercase_metadata_and_bad_ones_are_typed_errors() {
        let headers: BTreeMap<String, String> =
            [("X-Tenant".to_string(), "acme".to_string())].into();
        let metadata = match http_headers(&headers) {
            Ok(map) => MetadataMap::from_headers(map),
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            metadata.get("x-tenant").and_then(|v| v.to_str().ok()),
            Some("acme")
        );
        for (key, value) in [("bad key", "v"), ("x-ok", "line\nbreak")] {
            let headers: BTreeMap<String, String> = [(key.to_string(), value.to_string())].into();
            assert!(
                matches!(http_headers(&headers), Err(TelemetryError::InvalidSetting { ref name, .. }) if name == &format!("telemetry.headers.{key}")),
                "{key}: {value:?}"
            );
        }
    }

    #[test]
    fn grpc_over_https_is_refused_up_front() {
        let config = OtlpConfig {
            endpoint: "https://collector.example:4317".into(),
            protocol: OtlpProtocol::Grpc,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(1),
        };
        let header = ExportHeader::new(
            &opentelemetry_sdk::Resource::builder_empty().build(),
            &opentelemetry::InstrumentationScope::builder("corral").build(),
        );
        assert!(matches!(
            OtlpDelivery::new(&config, header),
            Err(TelemetryError::InvalidSetting { .. })
        ));
    }
}
