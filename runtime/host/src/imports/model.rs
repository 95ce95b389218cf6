//! `corral:agent/model`: forwards Converse calls to the configured provider.

use std::time::Instant;

use corral_telemetry::{DirectSpan, KeyValue, span_attributes};

use super::model_convert::{error_to_wit, request_from_wit, response_to_wit};
use crate::bindings::model::{ConverseRequest, ConverseResponse, Host, ModelError};
use crate::session_log::{LogLevel, LogSource};
use crate::state::SessionState;

impl SessionState {
    async fn converse_live(
        &mut self,
        request: ConverseRequest,
    ) -> Result<ConverseResponse, ModelError> {
        if let Some(refusal) = self.model_limit_reached() {
            self.log.push(
                LogSource::Host,
                LogLevel::Warn,
                refusal.clone(),
                vec![("event".into(), "limit_exceeded".into())],
            );
            return Err(ModelError::LimitExceeded(refusal));
        }
        let request = request_from_wit(request)?;
        let model = self.services.model.clone();
        let requested = request
            .model_id
            .clone()
            .unwrap_or_else(|| model.default_model_id().to_string());
        let step = self.scope.begin_step();
        // `session.id` and `gen_ai.conversation.id` come from the
        // invocation's session at close.
        let provider = model.provider_name();
        let span = step.child(move || {
            (
                corral_telemetry::span_name("chat", &requested),
                // Room for the response's three.
                span_attributes(
                    [
                        KeyValue::new("gen_ai.operation.name", "chat"),
                        KeyValue::new("gen_ai.provider.name", provider),
                        KeyValue::new("gen_ai.request.model", requested),
                    ],
                    3,
                ),
            )
        });
        let capture = corral_telemetry::capture_content() && span.is_recording();
        if capture {
            record_prompt(&span, &request);
        }
        let started = Instant::now();
        let result = span.in_scope(model.converse(request)).await;
        match &result {
            Ok(r) => {
                // One look-up of the span for the three, not one `record`
                // each, and the stop reason's static name is not copied.
                span.set_attributes([
                    KeyValue::new("gen_ai.response.finish_reasons", r.stop_reason.as_str()),
                    KeyValue::new("gen_ai.usage.input_tokens", i64::from(r.usage.input_tokens)),
                    KeyValue::new(
                        "gen_ai.usage.output_tokens",
                        i64::from(r.usage.output_tokens),
                    ),
                ]);
                if capture {
                    let output = serde_json::to_string(&r.output).unwrap_or_default();
                    span.set_attribute("gen_ai.output.messages", output);
                }
                self.scope.pending_tool_uses = r
                    .output
                    .tool_uses()
                    .map(|u| (u.name.clone(), u.tool_use_id.clone()))
                    .collect();
            }
            Err(e) => span.record_error(e.kind(), e.to_string()),
        }
        let elapsed = started.elapsed();
        self.scope.stats.model_calls += 1;
        match result {
            Ok(response) => {
                self.scope.stats.input_tokens += u64::from(response.usage.input_tokens);
                self.scope.stats.output_tokens += u64::from(response.usage.output_tokens);
                let tools: Vec<&str> = response
                    .output
                    .tool_uses()
                    .map(|u| u.name.as_str())
                    .collect();
                self.log.push(
                    LogSource::Host,
                    LogLevel::Info,
                    format!(
                        "model {} -> {}{} ({} in / {} out tokens, {} ms)",
                        response.model_id,
                        response.stop_reason.as_str(),
                        if tools.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", tools.join(", "))
                        },
                        response.usage.input_tokens,
                        response.usage.output_tokens,
                        elapsed.as_millis()
                    ),
                    vec![("event".into(), "model_call".into())],
                );
                Ok(response_to_wit(response))
            }
            Err(error) => {
                self.log.push(
                    LogSource::Host,
                    LogLevel::Warn,
                    format!(
                        "model call failed after {} ms: {error}",
                        elapsed.as_millis()
                    ),
                    vec![("event".into(), "model_call".into())],
                );
                Err(error_to_wit(error))
            }
        }
    }
}

/// Puts the prompt on `span` (content capture is on).
fn record_prompt(span: &DirectSpan, request: &corral_model::ConverseRequest) {
    let messages = serde_json::to_string(&request.messages).unwrap_or_default();
    span.set_attribute("gen_ai.input.messages", messages);
    if !request.system.is_empty() {
        let system = serde_json::to_string(&request.system).unwrap_or_default();
        span.set_attribute("gen_ai.system_instructions", system);
    }
}

impl SessionState {
    /// Why another model call would exceed this invocation's limits, if it would.
    fn model_limit_reached(&self) -> Option<String> {
        let limits = &self.run_limits;
        let stats = &self.scope.stats;
        if let Some(max) = limits.max_model_calls_per_invocation
            && stats.model_calls >= max
        {
            return Some(format!(
                "model call limit reached: {max} model calls per invocation"
            ));
        }
        if let Some(max) = limits.max_tokens_per_invocation {
            let used = stats.input_tokens + stats.output_tokens;
            if used >= max {
                return Some(format!(
                    "token limit reached: {used} of {max} tokens per invocation used"
                ));
            }
        }
        None
    }
}

/// Every call crosses the host-call seam ([`crate::host_calls`]): recorded
/// for the journal, or answered from it on replay.
impl Host for SessionState {
    async fn converse(
        &mut self,
        request: ConverseRequest,
    ) -> wasmtime::Result<Result<ConverseResponse, ModelError>> {
        crate::host_calls::journaled!(
            self,
            "model",
            "converse",
            &request,
            self.converse_live(request).await
        )
    }
}
