//! AWS Lambda targets, invoked the way AgentCore Gateway invokes them: the
//! tool arguments are the event, and `context.client_context.custom` carries
//! `bedrockAgentCoreToolName` (`<target>___<tool>`) and the gateway, target and
//! request ids, so existing AgentCore Lambda handlers work unchanged.

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Target, TargetCall, TargetKind, record_upstream_outcome};
use crate::error::{CallError, excerpt};
use crate::tool::{ToolDef, ToolOutput};

/// Message format version passed in the client context.
const MESSAGE_VERSION: &str = "1.0";

/// A Lambda function exposing inline tool definitions.
pub struct LambdaTarget {
    client: Client,
    function: String,
    tools: Vec<ToolDef>,
}

impl LambdaTarget {
    /// A target invoking `function` (ARN or name) with `tools`.
    pub fn new(client: Client, function: String, tools: Vec<ToolDef>) -> Self {
        Self {
            client,
            function,
            tools,
        }
    }
}

/// The region in a Lambda function ARN (`arn:aws:lambda:<region>:...`).
pub fn region_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.next()?;
    (parts.next() == Some("lambda")).then_some(())?;
    parts.next().filter(|r| !r.is_empty())
}

/// The `custom` client-context map AgentCore passes.
pub fn client_context(call: &TargetCall<'_>) -> Value {
    let mut custom = json!({
        "bedrockAgentCoreGatewayId": call.gateway_id,
        "bedrockAgentCoreTargetId": call.target,
        "bedrockAgentCoreMessageVersion": MESSAGE_VERSION,
        "bedrockAgentCoreToolName": call.exposed_name,
        "bedrockAgentCoreAwsRequestId": call.request_id,
        "bedrockAgentCoreMcpMessageId": call.request_id,
    });
    if let Some(session) = call.session_id {
        custom["bedrockAgentCoreSessionId"] = Value::String(session.to_string());
    }
    json!({ "custom": custom })
}

#[async_trait]
impl Target for LambdaTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Lambda
    }

    async fn list_tools(&self) -> Result<Vec<ToolDef>, CallError> {
        Ok(self.tools.clone())
    }

    async fn call(&self, call: TargetCall<'_>) -> Result<ToolOutput, CallError> {
        if !self.tools.iter().any(|t| t.name == call.tool) {
            return Err(CallError::NotFound(call.exposed_name.to_string()));
        }
        let span = tracing::info_span!(
            "lambda.invoke",
            otel.name = %format!("Lambda.Invoke {}", self.function),
            otel.kind = "client",
            rpc.system = "aws-api",
            rpc.service = "Lambda",
            rpc.method = "Invoke",
            faas.invoked_name = %self.function,
            faas.invoked_provider = "aws",
        );
        let result = corral_telemetry::in_span(&span, self.invoke(&call)).await;
        record_upstream_outcome(&span, &result, "function_error");
        result
    }
}

impl LambdaTarget {
    /// Invokes the function (carrying the current trace context in W3C
    /// headers) and maps its answer.
    async fn invoke(&self, call: &TargetCall<'_>) -> Result<ToolOutput, CallError> {
        let context = STANDARD.encode(client_context(call).to_string());
        let trace_headers = corral_telemetry::current_trace_headers();
        let output = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .client_context(context)
            .payload(Blob::new(call.arguments.to_string()))
            .customize()
            .mutate_request(move |request| {
                for (name, value) in &trace_headers {
                    request.headers_mut().insert(name.clone(), value.clone());
                }
            })
            .send()
            .await
            .map_err(|error| {
                let status = error.raw_response().map(|r| r.status().as_u16());
                let message = match &error {
                    SdkError::ServiceError(service) => format!(
                        "{}: {}",
                        service.err().code().unwrap_or("LambdaError"),
                        service.err().message().unwrap_or("")
                    ),
                    other => DisplayErrorContext(other).to_string(),
                };
                let kind = match &error {
                    SdkError::ServiceError(service) => {
                        service.err().code().unwrap_or("LambdaError").to_string()
                    }
                    _ => "the function could not be reached".to_string(),
                };
                CallError::upstream(
                    status,
                    format!("the function call failed: {kind}"),
                    format!("invoking {} failed: {message}", self.function),
                )
            })?;
        let payload = output.payload().map(|b| b.as_ref()).unwrap_or_default();
        if payload.len() > call.max_response_bytes {
            return Err(CallError::ResponseTooLarge(call.max_response_bytes));
        }
        let text = String::from_utf8_lossy(payload);
        if let Some(kind) = output.function_error() {
            // Lambda reports handler failures as 200 with X-Amz-Function-Error.
            return Ok(ToolOutput::error(
                format!("Lambda function error ({kind}): {}", excerpt(&text, 2048)),
                Some(output.status_code().clamp(0, u16::MAX as i32) as u16),
            ));
        }
        let value: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(_) => return Ok(ToolOutput::text(text.into_owned())),
        };
        // Handlers written for AgentCore return an MCP-shaped result.
        if let Some(content) = value.get("content").and_then(Value::as_array) {
            let content = content
                .iter()
                .map(|block| {
                    if block.get("type").is_none() && block.get("text").is_some() {
                        json!({"type": "text", "text": block["text"]})
                    } else {
                        block.clone()
                    }
                })
                .collect();
            return Ok(ToolOutput {
                content,
                structured: value.get("structuredContent").cloned(),
                is_error: value
                    .get("isError")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                status: None,
            });
        }
        Ok(ToolOutput::json(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_region_from_arn() {
        assert_eq!(
            region_of_arn("arn:aws:lambda:eu-west-1:123456789012:function:f"),
            Some("eu-west-1")
        );
        assert_eq!(region_of_arn("my-function"), None);
    }

    #[test]
    fn client_context_carries_agentcore_fields() {
        let call = TargetCall {
            tool: "get_order",
            exposed_name: "orders___get_order",
            arguments: json!({}),
            gateway_id: "gw-1",
            target: "orders",
            request_id: "req-1",
            session_id: Some("sess"),
            max_response_bytes: 10,
        };
        let context = client_context(&call);
        assert_eq!(
            context["custom"]["bedrockAgentCoreToolName"],
            "orders___get_order"
        );
        assert_eq!(context["custom"]["bedrockAgentCoreGatewayId"], "gw-1");
        assert_eq!(context["custom"]["bedrockAgentCoreSessionId"], "sess");
    }
}
