//! The agent loop: ask the model, run the tools it requests, feed the results
//! back, until the model ends its turn or the step limit is reached.

use crate::bindings::corral::agent::log::Level;
use crate::bindings::corral::agent::model::{
    ContentBlock, ConverseRequest, InferenceConfig, Message, Role, StopReason, TokenUsage,
    ToolResult, ToolSpec,
};
use crate::bindings::corral::agent::tools::ToolError;
use crate::bindings::corral::agent::types::AgentError;
use crate::host::{AgentHost, WitHost};

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The model ended its turn.
    EndTurn,
    /// The model hit its output token cap.
    MaxTokens,
    /// The model produced a stop sequence.
    StopSequence,
    /// The step limit was reached while the model still wanted tools.
    StepLimit,
    /// A guardrail, filter or context limit ended generation.
    Halted(StopReason),
}

/// One tool call the loop made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRecord {
    /// Tool name.
    pub name: String,
    /// Whether it succeeded.
    pub ok: bool,
}

/// What a loop run produced.
#[derive(Debug, Clone)]
pub struct LoopOutcome {
    /// Text of the model's last message.
    pub text: String,
    /// Model calls made.
    pub steps: u32,
    /// Tool calls made, in order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// Why the loop stopped.
    pub stop: StopCause,
    /// Tokens used across all steps.
    pub usage: TokenUsage,
}

#[derive(Debug, Clone)]
enum ToolSelection {
    All,
    Named(Vec<String>),
    Disabled,
}

/// Configuration of the agent loop.
#[derive(Debug, Clone)]
pub struct ToolLoop {
    system: Vec<String>,
    max_steps: u32,
    inference: InferenceConfig,
    model_id: Option<String>,
    tools: ToolSelection,
    history_limit: Option<usize>,
}

impl ToolLoop {
    /// A loop with a system prompt, up to 10 steps and all session tools.
    pub fn new(system_prompt: impl Into<String>) -> Self {
        Self {
            system: vec![system_prompt.into()],
            max_steps: 10,
            inference: InferenceConfig {
                max_tokens: None,
                temperature: None,
                top_p: None,
                stop_sequences: Vec::new(),
            },
            model_id: None,
            tools: ToolSelection::All,
            history_limit: None,
        }
    }

    /// At most `steps` model calls per run (at least one).
    pub fn max_steps(mut self, steps: u32) -> Self {
        self.max_steps = steps.max(1);
        self
    }

    /// Output token cap per model call.
    pub fn max_tokens(mut self, tokens: u32) -> Self {
        self.inference.max_tokens = Some(tokens);
        self
    }

    /// Sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.inference.temperature = Some(temperature);
        self
    }

    /// A specific model instead of the host's default.
    pub fn model(mut self, model_id: impl Into<String>) -> Self {
        self.model_id = Some(model_id.into());
        self
    }

    /// Offer only these tools (by exact name) to the model.
    pub fn only_tools<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tools = ToolSelection::Named(names.into_iter().map(Into::into).collect());
        self
    }

    /// Offer no tools.
    pub fn without_tools(mut self) -> Self {
        self.tools = ToolSelection::Disabled;
        self
    }

    /// Keep at most about `messages` messages of history, dropping whole old
    /// turns so tool uses and their results stay paired.
    pub fn history_limit(mut self, messages: usize) -> Self {
        self.history_limit = Some(messages.max(1));
        self
    }

    /// Appends `prompt` as a user message and runs the loop on the real host.
    /// When the run fails, the turn is taken back out of `conversation`, so
    /// the next prompt does not follow an unanswered one.
    pub fn ask(
        &self,
        conversation: &mut Vec<Message>,
        prompt: &str,
    ) -> Result<LoopOutcome, AgentError> {
        self.ask_with(&WitHost, conversation, prompt)
    }

    /// [`ToolLoop::ask`] on any host.
    pub fn ask_with<H: AgentHost>(
        &self,
        host: &H,
        conversation: &mut Vec<Message>,
        prompt: &str,
    ) -> Result<LoopOutcome, AgentError> {
        let before = conversation.len();
        conversation.push(Message::user(prompt));
        self.run_with(host, conversation).inspect_err(|_| {
            conversation.truncate(before);
        })
    }

    /// Runs the loop on the real host.
    pub fn run(&self, conversation: &mut Vec<Message>) -> Result<LoopOutcome, AgentError> {
        self.run_with(&WitHost, conversation)
    }

    /// Runs the loop on any host; `conversation` receives every new message.
    pub fn run_with<H: AgentHost>(
        &self,
        host: &H,
        conversation: &mut Vec<Message>,
    ) -> Result<LoopOutcome, AgentError> {
        if let Some(limit) = self.history_limit {
            trim_history(conversation, limit);
        }
        let tools = self.tool_specs(host)?;
        let mut outcome = LoopOutcome {
            text: String::new(),
            steps: 0,
            tool_calls: Vec::new(),
            stop: StopCause::StepLimit,
            usage: TokenUsage {
                input_tokens: 0,
                output_tokens: 0,
                total_tokens: 0,
            },
        };
        while outcome.steps < self.max_steps {
            outcome.steps += 1;
            let request = ConverseRequest {
                model_id: self.model_id.clone(),
                system: self.system.clone(),
                messages: conversation.clone(),
                tools: tools.clone(),
                inference: self.inference.clone(),
            };
            let response = host.converse(&request)?;
            add_usage(&mut outcome.usage, &response.usage);
            let message = response.output;
            outcome.text = message.text();
            let uses: Vec<(String, String, String)> = message
                .content
                .iter()
                .filter_map(|block| match block {
                    ContentBlock::ToolUse(u) => {
                        Some((u.tool_use_id.clone(), u.name.clone(), u.input.clone()))
                    }
                    _ => None,
                })
                .collect();
            conversation.push(message);
            let wants_tools = response.stop_reason == StopReason::ToolUse && !uses.is_empty();
            if !wants_tools {
                outcome.stop = match response.stop_reason {
                    StopReason::EndTurn | StopReason::ToolUse => StopCause::EndTurn,
                    StopReason::MaxTokens => StopCause::MaxTokens,
                    StopReason::StopSequence => StopCause::StopSequence,
                    other => StopCause::Halted(other),
                };
                return Ok(outcome);
            }
            let mut results = Vec::with_capacity(uses.len());
            for (id, name, input) in uses {
                // Only tools the model was offered run: an allow-list must
                // hold even when the model (or a prompt injection) names
                // another one.
                let offered = tools.iter().any(|tool| tool.name == name);
                let called = if offered {
                    host.call_tool(&name, &input)
                } else {
                    Err(ToolError::NotFound(name.clone()))
                };
                let result = match called {
                    Ok(output) => {
                        host.log(Level::Debug, &format!("tool {name} succeeded"));
                        ToolResult::success(&id, &output)
                    }
                    Err(error) => {
                        host.log(
                            Level::Warn,
                            &format!("tool {name} failed: {}", error.explain()),
                        );
                        ToolResult::failure(&id, &error)
                    }
                };
                outcome.tool_calls.push(ToolCallRecord {
                    name,
                    ok: result.status == crate::model::ToolResultStatus::Success,
                });
                results.push(ContentBlock::ToolResult(result));
            }
            conversation.push(Message {
                role: Role::User,
                content: results,
            });
        }
        host.log(
            Level::Warn,
            &format!("tool loop stopped at its step limit of {}", self.max_steps),
        );
        // The conversation ends with tool results; an assistant turn keeps
        // user and assistant messages alternating for the next prompt.
        conversation.push(Message::assistant(format!(
            "(I stopped at my step limit of {} before finishing.)",
            self.max_steps
        )));
        Ok(outcome)
    }

    fn tool_specs<H: AgentHost>(&self, host: &H) -> Result<Vec<ToolSpec>, AgentError> {
        if matches!(self.tools, ToolSelection::Disabled) {
            return Ok(Vec::new());
        }
        let listed = host
            .list_tools()
            .map_err(|e| AgentError::ToolFailed(format!("cannot list tools: {}", e.explain())))?;
        Ok(listed
            .into_iter()
            .filter(|tool| match &self.tools {
                ToolSelection::Named(names) => names.contains(&tool.name),
                _ => true,
            })
            .map(|tool| ToolSpec {
                name: tool.name,
                description: tool.description,
                input_schema: tool.input_schema,
            })
            .collect())
    }
}

fn add_usage(total: &mut TokenUsage, step: &TokenUsage) {
    total.input_tokens = total.input_tokens.saturating_add(step.input_tokens);
    total.output_tokens = total.output_tokens.saturating_add(step.output_tokens);
    total.total_tokens = total.total_tokens.saturating_add(step.total_tokens);
}

/// Drops the oldest turns until at most `limit` messages remain (the newest
/// turn is always kept whole). History always starts at a user prompt.
fn trim_history(conversation: &mut Vec<Message>, limit: usize) {
    while conversation.len() > limit {
        let next_turn = conversation
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, m)| m.is_prompt())
            .map(|(i, _)| i);
        match next_turn {
            Some(start) => {
                conversation.drain(..start);
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;
    use crate::bindings::corral::agent::model::{ConverseResponse, ModelError, ToolUse};
    use crate::bindings::corral::agent::tools::{Denial, ToolInfo};

    /// A host whose model replies from a queue and whose tools are closures.
    struct FakeHost {
        replies: RefCell<VecDeque<ConverseResponse>>,
        requests: RefCell<Vec<ConverseRequest>>,
        calls: RefCell<Vec<(String, String)>>,
    }

    impl FakeHost {
        fn new(replies: Vec<ConverseResponse>) -> Self {
            Self {
                replies: RefCell::new(replies.into()),
                requests: RefCell::default(),
                calls: RefCell::default(),
            }
        }
    }

    impl AgentHost for FakeHost {
        fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse, ModelError> {
            self.requests.borrow_mut().push(request.clone());
            self.replies
                .borrow_mut()
                .pop_front()
                .ok_or_else(|| ModelError::Internal("no reply queued".into()))
        }

        fn list_tools(&self) -> Result<Vec<ToolInfo>, ToolError> {
            Ok(["calc", "refund"]
                .iter()
                .map(|name| ToolInfo {
                    name: name.to_string(),
                    description: format!("{name} tool"),
                    input_schema: "{\"type\":\"object\"}".into(),
                })
                .collect())
        }

        fn call_tool(&self, name: &str, arguments: &str) -> Result<String, ToolError> {
            self.calls
                .borrow_mut()
                .push((name.to_string(), arguments.to_string()));
            match name {
                "calc" => Ok("{\"value\":4}".into()),
                _ => Err(ToolError::Denied(Denial {
                    reason: "not allowed".into(),
                    policy_ids: vec!["p1".into()],
                })),
            }
        }

        fn log(&self, _level: Level, _message: &str) {}
    }

    fn usage(n: u32) -> TokenUsage {
        TokenUsage {
            input_tokens: n,
            output_tokens: 1,
            total_tokens: n + 1,
        }
    }

    fn tool_turn(calls: &[(&str, &str)]) -> ConverseResponse {
        ConverseResponse {
            output: Message {
                role: Role::Assistant,
                content: calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, input))| {
                        ContentBlock::ToolUse(ToolUse {
                            tool_use_id: format!("t{i}"),
                            name: name.to_string(),
                            input: input.to_string(),
                        })
                    })
                    .collect(),
            },
            stop_reason: StopReason::ToolUse,
            usage: usage(10),
        }
    }

    fn final_turn(text: &str) -> ConverseResponse {
        ConverseResponse {
            output: Message::assistant(text),
            stop_reason: StopReason::EndTurn,
            usage: usage(20),
        }
    }

    #[test]
    fn runs_tools_and_feeds_results_back() {
        let host = FakeHost::new(vec![
            tool_turn(&[("calc", "{\"expression\":\"2+2\"}"), ("refund", "{}")]),
            final_turn("4, and the refund was denied"),
        ]);
        let mut conversation = vec![Message::user("2+2 and refund me")];
        let outcome = ToolLoop::new("sys")
            .run_with(&host, &mut conversation)
            .unwrap();
        assert_eq!(outcome.stop, StopCause::EndTurn);
        assert_eq!(outcome.steps, 2);
        assert_eq!(outcome.text, "4, and the refund was denied");
        assert_eq!(outcome.usage.input_tokens, 30);
        assert_eq!(
            outcome.tool_calls,
            vec![
                ToolCallRecord {
                    name: "calc".into(),
                    ok: true
                },
                ToolCallRecord {
                    name: "refund".into(),
                    ok: false
                },
            ]
        );
        assert_eq!(conversation.len(), 4);
        let ContentBlock::ToolResult(denied) = &conversation[2].content[1] else {
            panic!("expected tool result");
        };
        assert_eq!(denied.status, crate::model::ToolResultStatus::Error);
        let requests = host.requests.borrow();
        assert_eq!(requests[0].tools.len(), 2);
        assert_eq!(requests[0].system, vec!["sys".to_string()]);
        assert_eq!(
            requests[1].messages.len(),
            3,
            "second call sees tool results"
        );
    }

    #[test]
    fn stops_at_step_limit() {
        let host = FakeHost::new(vec![
            tool_turn(&[("calc", "{}")]),
            tool_turn(&[("calc", "{}")]),
            tool_turn(&[("calc", "{}")]),
        ]);
        let mut conversation = vec![Message::user("loop")];
        let outcome = ToolLoop::new("s")
            .max_steps(2)
            .run_with(&host, &mut conversation)
            .unwrap();
        assert_eq!(outcome.stop, StopCause::StepLimit);
        assert_eq!(outcome.steps, 2);
        assert_eq!(host.calls.borrow().len(), 2);
    }

    #[test]
    fn tools_not_offered_never_run() {
        let host = FakeHost::new(vec![
            tool_turn(&[("refund", "{}")]),
            final_turn("could not refund"),
        ]);
        let outcome = ToolLoop::new("s")
            .only_tools(["calc"])
            .run_with(&host, &mut vec![Message::user("refund me")])
            .unwrap();
        assert!(host.calls.borrow().is_empty(), "refund was not offered");
        assert_eq!(
            outcome.tool_calls,
            vec![ToolCallRecord {
                name: "refund".into(),
                ok: false
            }]
        );
    }

    #[test]
    fn a_failed_turn_is_taken_back_and_the_step_limit_ends_with_the_assistant() {
        let mut conversation = vec![Message::user("1"), Message::assistant("a")];
        let err = ToolLoop::new("s")
            .ask_with(&FakeHost::new(vec![]), &mut conversation, "2")
            .unwrap_err();
        assert!(matches!(err, AgentError::ModelFailed(_)));
        assert_eq!(conversation.len(), 2, "the unanswered prompt is removed");

        let host = FakeHost::new(vec![tool_turn(&[("calc", "{}")])]);
        ToolLoop::new("s")
            .max_steps(1)
            .ask_with(&host, &mut conversation, "3")
            .unwrap();
        let last = conversation.last().unwrap();
        assert_eq!(last.role, Role::Assistant);
        assert!(last.text().contains("step limit of 1"));
    }

    #[test]
    fn model_errors_become_agent_errors() {
        let host = FakeHost::new(vec![]);
        let err = ToolLoop::new("s")
            .run_with(&host, &mut vec![Message::user("x")])
            .unwrap_err();
        assert!(matches!(err, AgentError::ModelFailed(_)));
    }

    #[test]
    fn tool_selection_filters_catalogue() {
        let host = FakeHost::new(vec![final_turn("ok")]);
        ToolLoop::new("s")
            .only_tools(["calc"])
            .run_with(&host, &mut vec![Message::user("x")])
            .unwrap();
        assert_eq!(host.requests.borrow()[0].tools.len(), 1);
        let host = FakeHost::new(vec![final_turn("ok")]);
        ToolLoop::new("s")
            .without_tools()
            .run_with(&host, &mut vec![Message::user("x")])
            .unwrap();
        assert!(host.requests.borrow()[0].tools.is_empty());
    }

    #[test]
    fn history_trimming_keeps_whole_turns() {
        let mut conversation = vec![
            Message::user("one"),
            tool_turn(&[("calc", "{}")]).output,
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult(ToolResult::success("t0", "1"))],
            },
            Message::assistant("done one"),
            Message::user("two"),
            Message::assistant("done two"),
        ];
        trim_history(&mut conversation, 3);
        assert_eq!(conversation.len(), 2);
        assert_eq!(conversation[0].text(), "two");
    }
}
