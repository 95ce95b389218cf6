//! Amazon Bedrock through the Converse API (`aws-sdk-bedrockruntime`).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, SdkError};
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::types as sdk;

use crate::document::{document_to_json, json_to_document};
use crate::provider::{ModelError, ModelProvider};
use crate::types::{
    ContentBlock, ConverseRequest, ConverseResponse, Message, Role, StopReason, TokenUsage,
    ToolResultContent, ToolResultStatus, ToolUse,
};

/// Settings of the Bedrock provider; credentials come from the standard AWS chain.
#[derive(Debug, Clone)]
pub struct BedrockConfig {
    /// Default model id (e.g. `us.anthropic.claude-sonnet-4-20250514-v1:0`).
    pub model_id: String,
    /// AWS region; `None` uses the config chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Named profile from the shared config files.
    pub profile: Option<String>,
    /// Endpoint override (e.g. a VPC endpoint or a local test server).
    pub endpoint_url: Option<String>,
    /// Attempts per call including retries of throttling and transient errors.
    pub max_attempts: u32,
    /// Time limit of one call including retries.
    pub timeout: Duration,
    /// First retry delay (grows exponentially, with jitter).
    pub initial_backoff: Duration,
    /// Model ids an agent may request besides the default.
    pub allowed_model_ids: Vec<String>,
}

impl BedrockConfig {
    /// Defaults for `model_id`: 3 attempts, 5 minute timeout.
    pub fn new(model_id: impl Into<String>) -> Self {
        Self {
            model_id: model_id.into(),
            region: None,
            profile: None,
            endpoint_url: None,
            max_attempts: 3,
            timeout: Duration::from_secs(300),
            initial_backoff: Duration::from_secs(1),
            allowed_model_ids: Vec::new(),
        }
    }
}

/// The Bedrock Converse provider.
pub struct BedrockModel {
    client: Client,
    config: BedrockConfig,
}

impl BedrockModel {
    /// Loads AWS configuration from the environment and builds the client.
    pub async fn from_env(config: BedrockConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        let sdk_config = loader.load().await;
        Self::from_sdk_config(&sdk_config, config)
    }

    /// Builds the client from an already loaded AWS configuration.
    pub fn from_sdk_config(sdk_config: &SdkConfig, config: BedrockConfig) -> Self {
        let mut builder = aws_sdk_bedrockruntime::config::Builder::from(sdk_config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(config.max_attempts.max(1))
                    .with_initial_backoff(config.initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(config.timeout)
                    .build(),
            );
        if let Some(region) = &config.region {
            builder = builder.region(Region::new(region.clone()));
        }
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Self {
            client: Client::from_conf(builder.build()),
            config,
        }
    }

    fn model_for(&self, request: &ConverseRequest) -> Result<String, ModelError> {
        match &request.model_id {
            None => Ok(self.config.model_id.clone()),
            Some(id)
                if *id == self.config.model_id || self.config.allowed_model_ids.contains(id) =>
            {
                Ok(id.clone())
            }
            Some(id) => Err(ModelError::Validation(format!(
                "model '{id}' is not allowed for this agent"
            ))),
        }
    }
}

#[async_trait]
impl ModelProvider for BedrockModel {
    fn provider_name(&self) -> &'static str {
        "aws.bedrock"
    }

    fn default_model_id(&self) -> &str {
        &self.config.model_id
    }

    async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, ModelError> {
        let model_id = self.model_for(&request)?;
        let mut call = self.client.converse().model_id(&model_id);
        for message in &request.messages {
            call = call.messages(to_sdk_message(message)?);
        }
        for system in &request.system {
            call = call.system(sdk::SystemContentBlock::Text(system.clone()));
        }
        if !request.tools.is_empty() {
            let mut tools = sdk::ToolConfiguration::builder();
            for tool in &request.tools {
                let spec = sdk::ToolSpecification::builder()
                    .name(&tool.name)
                    .description(&tool.description)
                    .input_schema(sdk::ToolInputSchema::Json(json_to_document(
                        &tool.input_schema,
                    )))
                    .build()
                    .map_err(build_error)?;
                tools = tools.tools(sdk::Tool::ToolSpec(spec));
            }
            call = call.tool_config(tools.build().map_err(build_error)?);
        }
        let inference = &request.inference;
        if inference != &Default::default() {
            let mut config = sdk::InferenceConfiguration::builder()
                .set_max_tokens(inference.max_tokens.map(|t| t.min(i32::MAX as u32) as i32))
                .set_temperature(inference.temperature)
                .set_top_p(inference.top_p);
            for stop in &inference.stop_sequences {
                config = config.stop_sequences(stop);
            }
            call = call.inference_config(config.build());
        }
        let output = call.send().await.map_err(map_sdk_error)?;
        let message = match output.output() {
            Some(sdk::ConverseOutput::Message(message)) => from_sdk_message(message)?,
            _ => {
                return Err(ModelError::Internal(
                    "Converse response carried no message".into(),
                ));
            }
        };
        let usage = output
            .usage()
            .map(|u| TokenUsage {
                input_tokens: u.input_tokens().max(0) as u32,
                output_tokens: u.output_tokens().max(0) as u32,
                total_tokens: u.total_tokens().max(0) as u32,
            })
            .unwrap_or_default();
        Ok(ConverseResponse {
            output: message,
            stop_reason: from_sdk_stop_reason(output.stop_reason()),
            usage,
            model_id,
        })
    }
}

fn build_error(err: aws_smithy_types::error::operation::BuildError) -> ModelError {
    ModelError::Validation(err.to_string())
}

fn to_sdk_message(message: &Message) -> Result<sdk::Message, ModelError> {
    let role = match message.role {
        Role::User => sdk::ConversationRole::User,
        Role::Assistant => sdk::ConversationRole::Assistant,
    };
    let mut builder = sdk::Message::builder().role(role);
    for block in &message.content {
        let block = match block {
            ContentBlock::Text(text) => sdk::ContentBlock::Text(text.clone()),
            ContentBlock::ToolUse(tool_use) => sdk::ContentBlock::ToolUse(
                sdk::ToolUseBlock::builder()
                    .tool_use_id(&tool_use.tool_use_id)
                    .name(&tool_use.name)
                    .input(json_to_document(&tool_use.input))
                    .build()
                    .map_err(build_error)?,
            ),
            ContentBlock::ToolResult(result) => {
                let mut builder = sdk::ToolResultBlock::builder()
                    .tool_use_id(&result.tool_use_id)
                    .status(match result.status {
                        ToolResultStatus::Success => sdk::ToolResultStatus::Success,
                        ToolResultStatus::Error => sdk::ToolResultStatus::Error,
                    });
                for part in &result.content {
                    builder = builder.content(match part {
                        ToolResultContent::Text(text) => {
                            sdk::ToolResultContentBlock::Text(text.clone())
                        }
                        ToolResultContent::Json(value) => {
                            sdk::ToolResultContentBlock::Json(json_to_document(value))
                        }
                    });
                }
                sdk::ContentBlock::ToolResult(builder.build().map_err(build_error)?)
            }
        };
        builder = builder.content(block);
    }
    builder.build().map_err(build_error)
}

fn from_sdk_message(message: &sdk::Message) -> Result<Message, ModelError> {
    let role = match message.role() {
        sdk::ConversationRole::User => Role::User,
        _ => Role::Assistant,
    };
    let mut content = Vec::new();
    for block in message.content() {
        match block {
            sdk::ContentBlock::Text(text) => content.push(ContentBlock::Text(text.clone())),
            sdk::ContentBlock::ToolUse(tool_use) => content.push(ContentBlock::ToolUse(ToolUse {
                tool_use_id: tool_use.tool_use_id().to_string(),
                name: tool_use.name().to_string(),
                input: document_to_json(tool_use.input()),
            })),
            // Reasoning, citations, images: not part of Corral's agent ABI.
            other => tracing::debug!(block = ?other, "ignoring unsupported Converse content block"),
        }
    }
    Ok(Message { role, content })
}

fn from_sdk_stop_reason(reason: &sdk::StopReason) -> StopReason {
    match reason {
        sdk::StopReason::EndTurn => StopReason::EndTurn,
        sdk::StopReason::ToolUse => StopReason::ToolUse,
        sdk::StopReason::MaxTokens => StopReason::MaxTokens,
        sdk::StopReason::StopSequence => StopReason::StopSequence,
        sdk::StopReason::GuardrailIntervened => StopReason::GuardrailIntervened,
        sdk::StopReason::ContentFiltered => StopReason::ContentFiltered,
        sdk::StopReason::MalformedModelOutput => StopReason::MalformedModelOutput,
        sdk::StopReason::MalformedToolUse => StopReason::MalformedToolUse,
        sdk::StopReason::ModelContextWindowExceeded => StopReason::ContextWindowExceeded,
        _ => StopReason::EndTurn,
    }
}

fn map_sdk_error(err: SdkError<ConverseError>) -> ModelError {
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(service) => match service.err() {
            ConverseError::ThrottlingException(e) => {
                ModelError::Throttled(e.message().unwrap_or(&detail).to_string())
            }
            ConverseError::ValidationException(e) => {
                ModelError::Validation(e.message().unwrap_or(&detail).to_string())
            }
            ConverseError::AccessDeniedException(e) => {
                ModelError::Validation(format!("access denied: {}", e.message().unwrap_or(&detail)))
            }
            ConverseError::ResourceNotFoundException(e) => {
                ModelError::Validation(format!("not found: {}", e.message().unwrap_or(&detail)))
            }
            ConverseError::ModelTimeoutException(e) => {
                ModelError::Timeout(e.message().unwrap_or(&detail).to_string())
            }
            ConverseError::ServiceUnavailableException(e) => {
                ModelError::Unavailable(e.message().unwrap_or(&detail).to_string())
            }
            ConverseError::ModelNotReadyException(e) => {
                ModelError::Unavailable(e.message().unwrap_or(&detail).to_string())
            }
            _ => ModelError::Internal(detail),
        },
        SdkError::TimeoutError(_) => ModelError::Timeout(detail),
        SdkError::DispatchFailure(_) => ModelError::Unavailable(detail),
        _ => ModelError::Internal(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ToolResult, ToolSpec};
    use serde_json::json;

    #[test]
    fn messages_round_trip_through_sdk_types() {
        let message = Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Text("calling".into()),
                ContentBlock::ToolUse(ToolUse {
                    tool_use_id: "t1".into(),
                    name: "calc".into(),
                    input: json!({"expression": "1+2", "precise": true, "n": [1, -2, 2.5]}),
                }),
            ],
        };
        let sdk_message = to_sdk_message(&message).unwrap();
        assert_eq!(from_sdk_message(&sdk_message).unwrap(), message);

        let result = Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult(ToolResult {
                tool_use_id: "t1".into(),
                content: vec![ToolResultContent::Json(json!({"value": 3}))],
                status: ToolResultStatus::Success,
            })],
        };
        assert!(to_sdk_message(&result).is_ok());
        let _ = ToolSpec {
            name: "x".into(),
            description: String::new(),
            input_schema: json!({}),
        };
    }

    #[test]
    fn model_override_must_be_allowed() {
        let sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let mut config = BedrockConfig::new("default-model");
        config.allowed_model_ids = vec!["small-model".into()];
        let model = BedrockModel::from_sdk_config(&sdk_config, config);
        let mut request = ConverseRequest::default();
        assert_eq!(model.model_for(&request).unwrap(), "default-model");
        request.model_id = Some("small-model".into());
        assert_eq!(model.model_for(&request).unwrap(), "small-model");
        request.model_id = Some("huge-model".into());
        assert!(matches!(
            model.model_for(&request),
            Err(ModelError::Validation(_))
        ));
    }
}
