//! The AgentCore REST-JSON protocol pieces Corral's HTTP APIs share (the
//! runtime control plane, gateways and policies, memory): error responses
//! AWS clients turn into their modelled exceptions, JSON bodies, paging
//! tokens, resource ids and ARNs.

pub mod pagination;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The header AWS clients read an error's type from.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// An error response: `body` (at least `{"message": …}`) with `status` and
/// `x-amzn-ErrorType: <error_type>`.
pub fn error_response(status: StatusCode, error_type: &'static str, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(ERROR_TYPE_HEADER, HeaderValue::from_static(error_type));
    response
}

/// [`error_response`] with just a message.
pub fn error_message(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    error_response(status, error_type, json!({ "message": message }))
}

/// Parses a JSON request body; an empty one reads as `{}` (boto3 sends
/// none when every member is optional).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
}

/// Ten random lowercase alphanumerics: AgentCore's id suffix.
pub fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// Now, in epoch seconds (AgentCore's timestamps).
pub fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The id an ARN of any partition, region and account names for resource
/// type `kind` (`arn:aws:bedrock-agentcore:<region>:<account>:<kind>/<id>[/…]`);
/// any other identifier is returned as given.
pub fn arn_resource_id<'a>(identifier: &'a str, kind: &str) -> &'a str {
    if !identifier.starts_with("arn:") {
        return identifier;
    }
    let resource = identifier.splitn(6, ':').nth(5).unwrap_or(identifier);
    resource
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .unwrap_or(identifier)
}

/// Whether `name` matches `[a-zA-Z][a-zA-Z0-9_]{0,47}` (runtime, endpoint,
/// policy engine and policy names).
pub fn valid_name(name: &str) -> bool {
    name.len() <= 48
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn arns_of_any_region_and_account_name_their_id() {
        let arn = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/agent-0123456789";
        assert_eq!(arn_resource_id(arn, "runtime"), "agent-0123456789");
        assert_eq!(
            arn_resource_id(&format!("{arn}/runtime-endpoint/prod"), "runtime"),
            "agent-0123456789"
        );
        assert_eq!(
            arn_resource_id(
                "arn:aws:bedrock-agentcore:us-east-1:000000000000:policy-engine/e-0123456789/policy/p",
                "policy-engine"
            ),
            "e-0123456789"
        );
        assert_eq!(arn_resource_id("plain-name", "runtime"), "plain-name");
        assert_eq!(arn_resource_id(arn, "gateway"), arn);
    }

    #[test]
    fn names_and_bodies() {
        assert!(valid_name("agent_1"));
        for bad in ["", "1agent", "with-dash", &"a".repeat(49)] {
            assert!(!valid_name(bad), "{bad}");
        }
        let empty: Value = parse_json(b"  ").unwrap();
        assert_eq!(empty, json!({}));
        assert!(parse_json::<Value>(b"{not json").is_err());
    }
}
