//! Typed errors of the gateway.

use std::time::Duration;

/// Errors loading configuration or building the catalogue.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is malformed.
    #[error("invalid gateway configuration: {0}")]
    Config(String),
    /// The outbound HTTP client could not be built (TLS roots, settings).
    #[error("cannot build the outbound HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The attached policy engine could not be loaded.
    #[error("policy engine: {0}")]
    Policy(#[from] corral_policy::PolicyError),
    /// A target's configuration is invalid or unsupported.
    #[error("target '{target}': {message}")]
    Target {
        /// Target name.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// An OpenAPI document is invalid or unsupported.
    #[error("target '{target}': OpenAPI document invalid at {pointer}: {message}")]
    OpenApi {
        /// Target name.
        target: String,
        /// JSON pointer into the document (e.g. `/paths/~1pets/get`).
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// Two tools would be exposed under the same name.
    #[error("duplicate tool name '{name}' (from targets {first} and {second})")]
    DuplicateToolName {
        /// The exposed name.
        name: String,
        /// First target.
        first: String,
        /// Second target.
        second: String,
    },
}

/// Why a tool call failed before or while reaching its target.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No such tool in the caller's catalogue.
    #[error("unknown tool: {0}")]
    NotFound(String),
    /// A policy denied the call; the target never saw it.
    #[error("tool execution denied: {reason}")]
    Denied {
        /// Why.
        reason: String,
        /// Determining policies.
        policy_ids: Vec<String>,
    },
    /// The arguments do not fit the tool's input schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The target failed (unreachable, error status, function error, trap).
    /// `message` is what callers see; `detail` (upstream URLs, library
    /// errors) goes only to logs and spans.
    #[error("upstream failure{}: {message}", status.map(|s| format!(" (status {s})")).unwrap_or_default())]
    Upstream {
        /// HTTP-like status, when the upstream has one.
        status: Option<u16>,
        /// Bounded, client-safe error text: no internal URL or type name.
        message: String,
        /// The underlying error, for logs and spans only.
        detail: Option<String>,
    },
    /// The call did not finish within the per-call timeout.
    #[error("tool call timed out after {0:?}")]
    Timeout(Duration),
    /// The response exceeded the size cap.
    #[error("tool response exceeds {0} bytes")]
    ResponseTooLarge(usize),
    /// Too many calls are in flight to this target.
    #[error("target '{target}' is at its limit of {limit} concurrent calls")]
    Overloaded {
        /// Target name.
        target: String,
        /// The limit.
        limit: usize,
    },
    /// The tool's target has not been reached yet (an MCP server that is
    /// down or still starting); the gateway keeps retrying it.
    #[error("target '{target}' is unavailable: its server has not been reached yet")]
    Unavailable {
        /// Target name.
        target: String,
    },
    /// A listing cursor is malformed.
    #[error("invalid cursor")]
    InvalidCursor,
}

impl CallError {
    /// An upstream failure: `message` for callers, `detail` for logs only.
    pub fn upstream(
        status: Option<u16>,
        message: impl Into<String>,
        detail: impl ToString,
    ) -> Self {
        CallError::Upstream {
            status,
            message: message.into(),
            detail: Some(detail.to_string()),
        }
    }

    /// What logs and spans record beyond the client-safe text.
    pub fn detail(&self) -> Option<&str> {
        match self {
            CallError::Upstream { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }

    /// The message with the detail, for logs and spans (never for clients).
    pub fn for_logs(&self) -> String {
        match self.detail() {
            Some(detail) => format!("{self} ({detail})"),
            None => self.to_string(),
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes total)", &text[..end], text.len())
}

/// An HTTP client error with its cause chain (connection refused, timeout,
/// ...) for logs and spans; a query string in its URL (which may carry an
/// API key or the caller's arguments) is replaced by `?redacted`.
pub(crate) fn describe_http_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url()
        && url.query().is_some()
    {
        let mut redacted = url.clone();
        redacted.set_query(Some("redacted"));
        text = text.replace(url.as_str(), redacted.as_str());
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt("short", 10), "short");
        let long = "é".repeat(100);
        let cut = excerpt(&long, 11);
        assert!(cut.starts_with("ééééé…"), "{cut}");
        assert!(cut.contains("200 bytes total"));
        assert_eq!(
            CallError::Upstream {
                status: Some(503),
                message: "down".into(),
                detail: Some("http://10.0.0.7/internal refused".into()),
            }
            .to_string(),
            "upstream failure (status 503): down"
        );
    }

    #[tokio::test]
    async fn http_error_details_keep_the_cause_and_hide_the_query() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/pets?api_key=secret-key",
            listener.local_addr().unwrap()
        );
        drop(listener);
        let error = reqwest::Client::new().get(&url).send().await.unwrap_err();
        let detail = describe_http_error(&error);
        assert!(!detail.contains("secret-key"), "{detail}");
        assert!(detail.contains("/pets?redacted"), "{detail}");
        assert!(detail.to_lowercase().contains("connect"), "{detail}");
    }
}
