//! Telemetry settings from the standard `OTEL_*` environment variables and
//! the `[telemetry]` section of a config file (the environment wins).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::TelemetryError;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (collector port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (collector port 4318).
    HttpProtobuf,
}

impl OtlpProtocol {
    fn parse(name: &str, value: &str) -> Result<Self, TelemetryError> {
        match value.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(TelemetryError::InvalidSetting {
                name: name.into(),
                message: format!("`{other}` is not supported; use `grpc` or `http/protobuf`"),
            }),
        }
    }
}

/// Where and how spans are exported over OTLP.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The traces endpoint: for HTTP the full URL (`…/v1/traces`), for gRPC
    /// the collector address.
    pub endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Extra headers (gRPC metadata) on every export: the config file's, then
    /// `OTEL_EXPORTER_OTLP_HEADERS`, then `OTEL_EXPORTER_OTLP_TRACES_HEADERS`.
    pub headers: BTreeMap<String, String>,
    /// Time limit of one export request.
    pub timeout: Duration,
}

/// Batching of finished spans before export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Spans waiting for export beyond this are dropped (and counted).
    pub max_queue_size: usize,
    /// Largest batch per export request.
    pub max_export_batch_size: usize,
    /// Longest a finished span waits before its batch is sent.
    pub scheduled_delay: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(1000),
        }
    }
}

/// Resolved telemetry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// OTLP export, when an endpoint is configured.
    pub otlp: Option<OtlpConfig>,
    /// Directory of the local span store, when enabled.
    pub local_store: Option<PathBuf>,
    /// Resource attributes below the environment's (`service.name` included).
    pub resource: BTreeMap<String, String>,
    /// Whether prompts, completions and tool payloads go on spans.
    pub capture_content: bool,
    /// Batching limits (shared by OTLP and the local store).
    pub queue: QueueConfig,
}

impl TelemetryConfig {
    /// No export, no store.
    pub fn disabled() -> Self {
        Self {
            otlp: None,
            local_store: None,
            resource: BTreeMap::new(),
            capture_content: false,
            queue: QueueConfig::default(),
        }
    }

    /// Whether any span sink is configured.
    pub fn is_enabled(&self) -> bool {
        self.otlp.is_some() || self.local_store.is_some()
    }

    /// Settings from the process environment over `file`.
    pub fn from_env(file: &TelemetryFile) -> Result<Self, TelemetryError> {
        Self::resolve(file, |name| std::env::var(name).ok())
    }

    /// Settings from `env` (a variable lookup) over `file`.
    pub fn resolve(
        file: &TelemetryFile,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true");
        let exporter_off = env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none");

        let protocol = match (
            env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            env("OTEL_EXPORTER_OTLP_PROTOCOL"),
            &file.protocol,
        ) {
            (Some(v), _, _) => OtlpProtocol::parse("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", &v)?,
            (None, Some(v), _) => OtlpProtocol::parse("OTEL_EXPORTER_OTLP_PROTOCOL", &v)?,
            (None, None, Some(v)) => OtlpProtocol::parse("telemetry.protocol", v)?,
            (None, None, None) => OtlpProtocol::HttpProtobuf,
        };
        let base = |endpoint: &str| match protocol {
            OtlpProtocol::Grpc => endpoint.trim().to_string(),
            OtlpProtocol::HttpProtobuf => {
                format!("{}/v1/traces", endpoint.trim().trim_end_matches('/'))
            }
        };
        let endpoint = if let Some(full) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(full.trim().to_string())
        } else if let Some(endpoint) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(base(&endpoint))
        } else {
            file.endpoint.as_deref().map(base)
        };
        if let Some(endpoint) = &endpoint {
            check_endpoint(endpoint)?;
        }
        let timeout = match env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_TIMEOUT"))
        {
            Some(ms) => Duration::from_millis(parse_number("OTEL_EXPORTER_OTLP_TIMEOUT", &ms)?),
            None => Duration::from_millis(file.timeout_ms.unwrap_or(10_000)),
        };
        let mut headers = file.headers.clone();
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(value) = env(name) {
                headers.extend(parse_headers(name, &value)?);
            }
        }
        let otlp = endpoint
            .filter(|_| !disabled && !exporter_off)
            .map(|endpoint| OtlpConfig {
                endpoint,
                protocol,
                headers,
                timeout,
            });

        let mut queue = QueueConfig::default();
        if let Some(v) = env("OTEL_BSP_MAX_QUEUE_SIZE") {
            queue.max_queue_size = parse_number("OTEL_BSP_MAX_QUEUE_SIZE", &v)? as usize;
        } else if let Some(v) = file.max_queue_size {
            queue.max_queue_size = v;
        }
        if let Some(v) = env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            queue.max_export_batch_size =
                parse_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)? as usize;
        }
        if let Some(v) = env("OTEL_BSP_SCHEDULE_DELAY") {
            queue.scheduled_delay =
                Duration::from_millis(parse_number("OTEL_BSP_SCHEDULE_DELAY", &v)?);
        } else if let Some(ms) = file.schedule_delay_ms {
            queue.scheduled_delay = Duration::from_millis(ms);
        }
        if queue.max_queue_size == 0 || queue.max_export_batch_size == 0 {
            return Err(TelemetryError::InvalidSetting {
                name: "OTEL_BSP_MAX_QUEUE_SIZE".into(),
                message: "queue and batch sizes must be at least 1".into(),
            });
        }
        queue.max_export_batch_size = queue.max_export_batch_size.min(queue.max_queue_size);

        let capture_content = match env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") {
            Some(v) => matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"),
            None => file.capture_content.unwrap_or(false),
        };
        let local_store = if disabled || file.local_store == Some(false) {
            None
        } else {
            env("CORRAL_TRACE_DIR")
                .map(PathBuf::from)
                .or_else(|| file.store_dir.clone())
        };
        let mut resource = file.resource_attributes.clone();
        resource
            .entry("service.name".into())
            .or_insert_with(|| file.service_name.clone().unwrap_or_else(|| "corral".into()));
        Ok(Self {
            otlp,
            local_store,
            resource,
            capture_content,
            queue,
        })
    }
}

/// The `[telemetry]` section of a Corral config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    /// OTLP base endpoint (like `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf` (like `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub protocol: Option<String>,
    /// Export request time limit in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Headers sent with every export.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `service.name` unless `OTEL_SERVICE_NAME` says otherwise [default: corral].
    pub service_name: Option<String>,
    /// Resource attributes (the environment's `OTEL_RESOURCE_ATTRIBUTES` win).
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
    /// Put prompts, completions and tool payloads on spans [default: false].
    pub capture_content: Option<bool>,
    /// Keep spans in the local store [default: true].
    pub local_store: Option<bool>,
    /// Directory of the local span store.
    pub store_dir: Option<PathBuf>,
    /// Spans queued for export before new ones are dropped [default: 2048].
    pub max_queue_size: Option<usize>,
    /// Longest wait before a batch is exported, in milliseconds [default: 1000].
    pub schedule_delay_ms: Option<u64>,
}

fn check_endpoint(endpoint: &str) -> Result<(), TelemetryError> {
    match endpoint.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.host().is_some() => Ok(()),
        Ok(_) => Err(TelemetryError::InvalidSetting {
            name: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            message: format!("`{endpoint}` needs a scheme and host, e.g. http://localhost:4318"),
        }),
        Err(error) => Err(TelemetryError::InvalidSetting {
            name: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            message: format!("`{endpoint}`: {error}"),
        }),
    }
}

/// `key=value` pairs separated by commas, values percent-encoded: the
/// `OTEL_EXPORTER_OTLP_HEADERS` format.
fn parse_headers(name: &str, value: &str) -> Result<BTreeMap<String, String>, TelemetryError> {
    value
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let invalid = || TelemetryError::InvalidSetting {
                name: name.into(),
                message: format!("`{pair}` is not `key=value`"),
            };
            let (key, value) = pair.split_once('=').ok_or_else(invalid)?;
            let key = key.trim();
            if key.is_empty() {
                return Err(invalid());
            }
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| TelemetryError::InvalidSetting {
                    name: name.into(),
                    message: format!("the value of `{key}` is not UTF-8 once decoded"),
                })?;
            Ok((key.to_string(), value.into_owned()))
        })
        .collect()
}

fn parse_number(name: &str, value: &str) -> Result<u64, TelemetryError> {
    value
        .trim()
        .parse()
        .map_err(|_| TelemetryError::InvalidSetting {
            name: name.into(),
            message: format!("`{value}` is not a whole number"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        file: &TelemetryFile,
        vars: &[(&str, &str)],
    ) -> Result<TelemetryConfig, TelemetryError> {
        TelemetryConfig::resolve(file, |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn nothing_configured_means_no_export() -> Result<(), TelemetryError> {
        let config = resolve(&TelemetryFile::default(), &[])?;
        assert_eq!(config.otlp, None);
        assert_eq!(config.local_store, None);
        assert_eq!(
            config.resource.get("service.name").map(String::as_str),
            Some("corral")
        );
        assert!(!config.capture_content);
        Ok(())
    }

    #[test]
    fn headers_come_from_the_file_then_the_environment() -> Result<(), TelemetryError> {
        let file = TelemetryFile {
            endpoint: Some("http://127.0.0.1:4317".into()),
            headers: [("x-tenant".to_string(), "file".to_string())].into(),
            ..TelemetryFile::default()
        };
        let config = resolve(
            &file,
            &[
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "x-tenant=env, authorization=Bearer%20t0k%3D",
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-scope=traces"),
            ],
        )?;
        let Some(otlp) = config.otlp else {
            panic!("no otlp config");
        };
        let headers: Vec<(&str, &str)> = otlp
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("authorization", "Bearer t0k="),
                ("x-scope", "traces"),
                ("x-tenant", "env")
            ]
        );
        let bad = resolve(&file, &[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")]);
        assert!(
            matches!(bad, Err(TelemetryError::InvalidSetting { ref name, .. }) if name == "OTEL_EXPORTER_OTLP_HEADERS"),
            "{bad:?}"
        );
        Ok(())
    }

    #[test]
    fn endpoint_env_turns_export_on_with_signal_path() -> Result<(), TelemetryError> {
        let config = resolve(
            &TelemetryFile::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")],
        )?;
        let Some(otlp) = config.otlp else {
            panic!("no otlp config");
        };
        assert_eq!(otlp.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(otlp.protocol, OtlpProtocol::HttpProtobuf);
        let grpc = resolve(
            &TelemetryFile::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        )?;
        assert_eq!(
            grpc.otlp.map(|o| (o.endpoint, o.protocol)),
            Some(("http://127.0.0.1:4317".to_string(), OtlpProtocol::Grpc))
        );
        Ok(())
    }

    #[test]
    fn environment_wins_over_file() -> Result<(), TelemetryError> {
        let file = TelemetryFile {
            endpoint: Some("http://collector:4318".into()),
            protocol: Some("http/protobuf".into()),
            capture_content: Some(true),
            max_queue_size: Some(10),
            ..TelemetryFile::default()
        };
        let from_file = resolve(&file, &[])?;
        assert_eq!(
            from_file.otlp.as_ref().map(|o| o.endpoint.as_str()),
            Some("http://collector:4318/v1/traces")
        );
        assert!(from_file.capture_content);
        assert_eq!(from_file.queue.max_queue_size, 10);
        let overridden = resolve(
            &file,
            &[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://other:9999/custom",
                ),
                (
                    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                    "false",
                ),
            ],
        )?;
        assert_eq!(
            overridden.otlp.map(|o| o.endpoint),
            Some("http://other:9999/custom".to_string())
        );
        assert!(!overridden.capture_content);
        Ok(())
    }

    #[test]
    fn disabled_sdk_or_exporter_none_turns_export_off() -> Result<(), TelemetryError> {
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let config = resolve(&TelemetryFile::default(), &[on[0], off])?;
            assert_eq!(config.otlp, None, "{off:?}");
        }
        Ok(())
    }

    #[test]
    fn bad_values_are_typed_errors() {
        for vars in [
            vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")],
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost")],
            vec![("OTEL_BSP_MAX_QUEUE_SIZE", "lots")],
            vec![("OTEL_BSP_MAX_QUEUE_SIZE", "0")],
        ] {
            let result = resolve(&TelemetryFile::default(), &vars);
            assert!(
                matches!(result, Err(TelemetryError::InvalidSetting { .. })),
                "{vars:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn file_section_parses_from_toml() -> Result<(), Box<dyn std::error::Error>> {
        let file: TelemetryFile = toml::from_str(
            "endpoint = \"http://localhost:4317\"\nprotocol = \"grpc\"\n[resource_attributes]\n\"deployment.environment\" = \"dev\"\n",
        )?;
        let config = resolve(&file, &[])?;
        assert_eq!(config.otlp.map(|o| o.protocol), Some(OtlpProtocol::Grpc));
        assert_eq!(
            config
                .resource
                .get("deployment.environment")
                .map(String::as_str),
            Some("dev")
        );
        Ok(())
    }
}
