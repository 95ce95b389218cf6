//! A deterministic offline model driven by a script of rules or canned turns.
//!
//! The same conversation always produces the same reply, so demos and tests
//! run without network access. See `examples/scripts/` for scripts.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::provider::{ModelError, ModelProvider};
use crate::template::{Vars, render, render_value};
use crate::types::{
    ContentBlock, ConverseRequest, ConverseResponse, Message, Role, StopReason, TokenUsage,
    ToolResultStatus, ToolUse,
};

/// Errors loading a script.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script file could not be read.
    #[error("cannot read script {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The script is not valid TOML/JSON of the expected shape.
    #[error("invalid script: {0}")]
    Parse(String),
    /// A rule's regular expression does not compile.
    #[error("invalid regex in rule {rule}: {message}")]
    Regex {
        /// Rule name or index.
        rule: String,
        /// The regex error.
        message: String,
    },
}

/// A parsed script.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Model id reported in responses.
    #[serde(default = "default_model_id")]
    pub model_id: String,
    /// Artificial latency per call, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Canned turns, replayed by position (the n-th assistant turn gets `turns[n]`).
    #[serde(default)]
    pub turns: Vec<Reply>,
    /// Reply when nothing matches.
    #[serde(default)]
    pub fallback: Option<Reply>,
}

fn default_model_id() -> String {
    "corral.scripted-v1".to_string()
}

/// One rule: a condition and the reply it produces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name for diagnostics.
    #[serde(default)]
    pub name: Option<String>,
    /// When the rule applies.
    #[serde(default)]
    pub when: Condition,
    /// What the model answers.
    #[serde(flatten)]
    pub reply: Reply,
}

/// Conditions on the conversation; all given ones must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Regex the current user prompt must match; named groups become variables.
    #[serde(default)]
    pub user_matches: Option<String>,
    /// Regex the joined system prompts must match.
    #[serde(default)]
    pub system_matches: Option<String>,
    /// Regex the model's answer in the previous turn must match; named
    /// groups become variables.
    #[serde(default)]
    pub previous_answer_matches: Option<String>,
    /// Whether the current turn already has tool results.
    #[serde(default)]
    pub tool_results: Option<bool>,
    /// The last message carries a result of this tool.
    #[serde(default)]
    pub last_tool: Option<String>,
    /// Status of the last tool result.
    #[serde(default)]
    pub last_tool_status: Option<ToolResultStatus>,
    /// The request offers this tool.
    #[serde(default)]
    pub tool_offered: Option<String>,
    /// Number of assistant messages so far in the current turn.
    #[serde(default)]
    pub step: Option<usize>,
}

/// A scripted reply.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Text (a template: `${var}`).
    #[serde(default)]
    pub text: Option<String>,
    /// Tool uses to request; their tools must be offered.
    #[serde(default)]
    pub tool_use: Vec<ToolCallTemplate>,
    /// Stop reason override.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// Fail the call instead of answering.
    #[serde(default)]
    pub error: Option<ScriptedFailure>,
}

/// A tool request in a reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallTemplate {
    /// Tool name; `calc` also matches an offered `target___calc`.
    pub name: String,
    /// Arguments; strings inside are templates.
    #[serde(default = "empty_object")]
    pub input: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A scripted failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFailure {
    /// `throttled`, `validation`, `unavailable`, `timeout` or `internal`.
    pub kind: String,
    /// Error message.
    #[serde(default)]
    pub message: String,
}

struct CompiledRule {
    rule: Rule,
    user_matches: Option<Regex>,
    system_matches: Option<Regex>,
    previous_answer_matches: Option<Regex>,
}

/// The scripted model provider.
pub struct ScriptedModel {
    script: Script,
    rules: Vec<CompiledRule>,
}

impl ScriptedModel {
    /// Builds a model from a parsed script.
    pub fn new(script: Script) -> Result<Self, ScriptError> {
        let mut rules = Vec::with_capacity(script.rules.len());
        for (index, rule) in script.rules.iter().enumerate() {
            let label = rule.name.clone().unwrap_or_else(|| format!("#{index}"));
            let compile = |pattern: &Option<String>| -> Result<Option<Regex>, ScriptError> {
                pattern
                    .as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|e| ScriptError::Regex {
                        rule: label.clone(),
                        message: e.to_string(),
                    })
            };
            rules.push(CompiledRule {
                user_matches: compile(&rule.when.user_matches)?,
                system_matches: compile(&rule.when.system_matches)?,
                previous_answer_matches: compile(&rule.when.previous_answer_matches)?,
                rule: rule.clone(),
            });
        }
        Ok(Self { script, rules })
    }

    /// Parses a TOML script.
    pub fn from_toml(text: &str) -> Result<Self, ScriptError> {
        let script: Script = toml::from_str(text).map_err(|e| ScriptError::Parse(e.to_string()))?;
        Self::new(script)
    }

    /// Parses a JSON script.
    pub fn from_json(text: &str) -> Result<Self, ScriptError> {
        let script: Script =
            serde_json::from_str(text).map_err(|e| ScriptError::Parse(e.to_string()))?;
        Self::new(script)
    }

    /// Loads a `.toml` or `.json` script file.
    pub fn from_file(path: &Path) -> Result<Self, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if path.extension().is_some_and(|ext| ext == "json") {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// A model that echoes the user's prompt; used when no script is given.
    pub fn echo() -> Self {
        Self {
            script: Script {
                model_id: default_model_id(),
                latency_ms: 0,
                rules: Vec::new(),
                turns: Vec::new(),
                fallback: Some(Reply {
                    text: Some("${user}".into()),
                    ..Reply::default()
                }),
            },
            rules: Vec::new(),
        }
    }

    /// Computes the reply for a request (pure, deterministic).
    pub fn reply(&self, request: &ConverseRequest) -> Result<ConverseResponse, ModelError> {
        let view = ConversationView::new(request);
        let (reply, vars) = self.select(&view)?;
        if let Some(failure) = &reply.error {
            let message = render(&failure.message, &vars);
            return Err(match failure.kind.as_str() {
                "throttled" => ModelError::Throttled(message),
                "validation" => ModelError::Validation(message),
                "unavailable" => ModelError::Unavailable(message),
                "timeout" => ModelError::Timeout(message),
                _ => ModelError::Internal(message),
            });
        }
        let mut content = Vec::new();
        if let Some(text) = &reply.text {
            content.push(ContentBlock::Text(render(text, &vars)));
        }
        for (index, call) in reply.tool_use.iter().enumerate() {
            let Some(name) = view.resolve_tool(&call.name) else {
                return Err(ModelError::Validation(format!(
                    "script asks for tool '{}' which the request does not offer",
                    call.name
                )));
            };
            content.push(ContentBlock::ToolUse(ToolUse {
                tool_use_id: format!("tooluse_{:04}_{index}", view.assistant_messages),
                name: name.to_string(),
                input: render_value(&call.input, &vars),
            }));
        }
        let has_tool_use = !reply.tool_use.is_empty();
        let stop_reason = reply.stop_reason.unwrap_or(if has_tool_use {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        });
        let output = Message {
            role: Role::Assistant,
            content,
        };
        let usage = TokenUsage::new(estimate_tokens(request), estimate_message_tokens(&output));
        Ok(ConverseResponse {
            output,
            stop_reason,
            usage,
            model_id: request
                .model_id
                .clone()
                .unwrap_or_else(|| self.script.model_id.clone()),
        })
    }

    fn select<'a>(&'a self, view: &ConversationView<'_>) -> Result<(&'a Reply, Vars), ModelError> {
        let mut vars = view.base_vars();
        for compiled in &self.rules {
            if let Some(captures) = self.matches(compiled, view) {
                vars.extend(captures);
                return Ok((&compiled.rule.reply, vars));
            }
        }
        if let Some(turn) = self.script.turns.get(view.assistant_messages) {
            return Ok((turn, vars));
        }
        match &self.script.fallback {
            Some(reply) => Ok((reply, vars)),
            None => Err(ModelError::Validation(format!(
                "scripted model has no rule or turn for this conversation (prompt: {:?})",
                view.prompt
            ))),
        }
    }

    fn matches(&self, compiled: &CompiledRule, view: &ConversationView<'_>) -> Option<Vars> {
        let when = &compiled.rule.when;
        let mut captures = Vars::new();
        if let Some(regex) = &compiled.user_matches {
            let found = regex.captures(view.prompt)?;
            for name in regex.capture_names().flatten() {
                if let Some(value) = found.name(name) {
                    captures.insert(name.to_string(), value.as_str().trim().to_string());
                }
            }
        }
        if let Some(regex) = &compiled.system_matches
            && !regex.is_match(&view.system)
        {
            return None;
        }
        if let Some(regex) = &compiled.previous_answer_matches {
            let found = regex.captures(view.previous_answer?)?;
            for name in regex.capture_names().flatten() {
                if let Some(value) = found.name(name) {
                    captures.insert(name.to_string(), value.as_str().trim().to_string());
                }
            }
        }
        if let Some(expected) = when.tool_results
            && expected != view.turn_has_tool_results
        {
            return None;
        }
        if let Some(tool) = &when.last_tool {
            let last = view.last_tool_name?;
            if !tool_name_matches(last, tool) {
                return None;
            }
        }
        if let Some(status) = when.last_tool_status
            && view.last_tool_status != Some(status)
        {
            return None;
        }
        if let Some(tool) = &when.tool_offered
            && view.resolve_tool(tool).is_none()
        {
            return None;
        }
        if let Some(step) = when.step
            && step != view.turn_steps
        {
            return None;
        }
        // A rule whose tool uses cannot be satisfied does not apply.
        if compiled
            .rule
            .reply
            .tool_use
            .iter()
            .any(|call| view.resolve_tool(&call.name).is_none())
        {
            return None;
        }
        Some(captures)
    }
}

#[async_trait]
impl ModelProvider for ScriptedModel {
    fn provider_name(&self) -> &'static str {
        "corral.scripted"
    }

    fn default_model_id(&self) -> &str {
        &self.script.model_id
    }

    async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, ModelError> {
        if self.script.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.script.latency_ms)).await;
        }
        self.reply(&request)
    }
}

/// `wanted` names `offered` exactly or as its `___`-separated tool part.
fn tool_name_matches(offered: &str, wanted: &str) -> bool {
    offered == wanted
        || offered
            .strip_suffix(wanted)
            .is_some_and(|prefix| prefix.ends_with("___"))
}

/// Facts about a request that rules test.
struct ConversationView<'a> {
    request: &'a ConverseRequest,
    prompt: &'a str,
    previous_answer: Option<&'a str>,
    system: String,
    assistant_messages: usize,
    turn_steps: usize,
    turn_has_tool_results: bool,
    last_tool_name: Option<&'a str>,
    last_tool_status: Option<ToolResultStatus>,
    last_results: Vec<(String, String, Value)>,
}

impl<'a> ConversationView<'a> {
    fn new(request: &'a ConverseRequest) -> Self {
        let messages = &request.messages;
        // The turn starts at the last user message that has text.
        let turn_start = messages
            .iter()
            .rposition(|m| m.role == Role::User && m.content.iter().any(is_text))
            .unwrap_or(0);
        let prompt = messages
            .get(turn_start)
            .and_then(|m| {
                m.content.iter().rev().find_map(|block| match block {
                    ContentBlock::Text(text) => Some(text.as_str()),
                    _ => None,
                })
            })
            .unwrap_or("");
        let turn = &messages[turn_start.min(messages.len())..];
        let previous_answer = messages[..turn_start.min(messages.len())]
            .iter()
            .rev()
            .filter(|m| m.role == Role::Assistant)
            .find_map(|m| {
                m.content.iter().rev().find_map(|block| match block {
                    ContentBlock::Text(text) => Some(text.as_str()),
                    _ => None,
                })
            });
        let names: HashMap<&str, &str> = messages
            .iter()
            .flat_map(|m| m.tool_uses())
            .map(|u| (u.tool_use_id.as_str(), u.name.as_str()))
            .collect();
        let mut last_tool_name = None;
        let mut last_tool_status = None;
        let mut last_results = Vec::new();
        if let Some(last) = messages.last() {
            for result in last.tool_results() {
                let name = names.get(result.tool_use_id.as_str()).copied();
                if last_tool_name.is_none() {
                    last_tool_name = name;
                    last_tool_status = Some(result.status);
                }
                let text = result.text();
                let json = result
                    .content
                    .iter()
                    .find_map(|c| match c {
                        crate::types::ToolResultContent::Json(v) => Some(v.clone()),
                        _ => None,
                    })
                    .or_else(|| serde_json::from_str(&text).ok())
                    .unwrap_or(Value::String(text.clone()));
                last_results.push((name.unwrap_or("").to_string(), text, json));
            }
        }
        Self {
            request,
            prompt,
            previous_answer,
            system: request.system.join("\n"),
            assistant_messages: messages
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .count(),
            turn_steps: turn.iter().filter(|m| m.role == Role::Assistant).count(),
            turn_has_tool_results: turn.iter().any(|m| m.tool_results().next().is_some()),
            last_tool_name,
            last_tool_status,
            last_results,
        }
    }

    fn resolve_tool(&self, wanted: &str) -> Option<&'a str> {
        let offered = &self.request.tools;
        if let Some(exact) = offered.iter().find(|t| t.name == wanted) {
            return Some(exact.name.as_str());
        }
        let mut candidates = offered
            .iter()
            .filter(|t| tool_name_matches(&t.name, wanted));
        let first = candidates.next()?;
        match candidates.next() {
            None => Some(first.name.as_str()),
            Some(_) => None,
        }
    }

    fn base_vars(&self) -> Vars {
        let mut vars = Vars::new();
        vars.insert("user".into(), self.prompt.to_string());
        vars.insert(
            "previous_answer".into(),
            self.previous_answer.unwrap_or_default().to_string(),
        );
        if let Some((name, text, json)) = self.last_results.first() {
            vars.insert("tool_name".into(), name.clone());
            vars.insert("tool_result".into(), text.clone());
            vars.set_json("tool_result", json.clone());
        }
        let joined: Vec<String> = self
            .last_results
            .iter()
            .map(|(name, text, _)| format!("{name}: {text}"))
            .collect();
        vars.insert("tool_results".into(), joined.join("; "));
        vars
    }
}

fn is_text(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::Text(_))
}

/// Deterministic token estimate: about four characters a token.
fn estimate_tokens(request: &ConverseRequest) -> u32 {
    let mut chars: usize = request.system.iter().map(String::len).sum();
    chars += request
        .messages
        .iter()
        .map(|m| {
            serde_json::to_string(&m.content)
                .map(|s| s.len())
                .unwrap_or(0)
        })
        .sum::<usize>();
    chars += request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.input_schema.to_string().len())
        .sum::<usize>();
    chars.div_ceil(4).min(u32::MAX as usize) as u32
}

fn estimate_message_tokens(message: &Message) -> u32 {
    let chars = serde_json::to_string(&message.content)
        .map(|s| s.len())
        .unwrap_or(0);
    chars.div_ceil(4).max(1).min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ToolResult, ToolResultContent, ToolSpec};
    use serde_json::json;

    const SCRIPT: &str = r#"
        [[rules]]
        name = "calculate"
        when.user_matches = '(?i)what is (?P<expression>[-+*/().0-9 ]+)'
        when.tool_results = false
        text = "Let me compute ${expression}."
        tool_use = [{ name = "calculator", input = { expression = "${expression}" } }]

        [[rules]]
        name = "answer"
        when.last_tool = "calculator"
        when.last_tool_status = "success"
        text = "The answer is ${tool_result.value}."

        [[rules]]
        name = "tool failed"
        when.last_tool_status = "error"
        text = "The tool failed: ${tool_result}"

        [fallback]
        text = "No script for: ${user}"
    "#;

    fn calc_tool() -> ToolSpec {
        ToolSpec {
            name: "builtin___calculator".into(),
            description: "evaluates".into(),
            input_schema: json!({"type": "object"}),
        }
    }

    #[test]
    fn multi_step_tool_loop_is_deterministic() {
        let model = ScriptedModel::from_toml(SCRIPT).unwrap();
        let mut request = ConverseRequest {
            messages: vec![Message::user("What is 6 * 7?")],
            tools: vec![calc_tool()],
            ..ConverseRequest::default()
        };
        let first = model.reply(&request).unwrap();
        assert_eq!(first.stop_reason, StopReason::ToolUse);
        let tool_use = first.output.tool_uses().next().unwrap().clone();
        assert_eq!(tool_use.name, "builtin___calculator");
        assert_eq!(tool_use.input, json!({"expression": "6 * 7"}));
        assert_eq!(
            model.reply(&request).unwrap(),
            first,
            "same input, same reply"
        );

        request.messages.push(first.output);
        request.messages.push(Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult(ToolResult {
                tool_use_id: tool_use.tool_use_id,
                content: vec![ToolResultContent::Json(json!({"value": 42}))],
                status: ToolResultStatus::Success,
            })],
        });
        let second = model.reply(&request).unwrap();
        assert_eq!(second.stop_reason, StopReason::EndTurn);
        assert_eq!(second.output.text(), "The answer is 42.");
        assert!(second.usage.input_tokens > first.usage.input_tokens);
    }

    #[test]
    fn previous_answer_captures_feed_templates() {
        let model = ScriptedModel::from_toml(
            r#"
            [[rules]]
            when.user_matches = 'divide (?:it|that) by (?P<d>[0-9]+)'
            when.previous_answer_matches = '= (?P<prev>[0-9]+)'
            text = "${prev} / ${d}"
            "#,
        )
        .unwrap();
        let request = ConverseRequest {
            messages: vec![
                Message::user("What is 2+3?"),
                Message::assistant("2+3 = 5."),
                Message::user("Now divide that by 5"),
            ],
            ..ConverseRequest::default()
        };
        assert_eq!(model.reply(&request).unwrap().output.text(), "5 / 5");
        let first_turn = ConverseRequest {
            messages: vec![Message::user("Now divide that by 5")],
            ..ConverseRequest::default()
        };
        assert!(
            model.reply(&first_turn).is_err(),
            "no previous answer, no match, no fallback"
        );
    }

    #[test]
    fn rule_needing_unoffered_tool_falls_through() {
        let model = ScriptedModel::from_toml(SCRIPT).unwrap();
        let request = ConverseRequest {
            messages: vec![Message::user("What is 1+1")],
            ..ConverseRequest::default()
        };
        let reply = model.reply(&request).unwrap();
        assert_eq!(reply.output.text(), "No script for: What is 1+1");
    }

    #[test]
    fn canned_turns_replay_by_position() {
        let model = ScriptedModel::from_json(
            r#"{"turns": [{"text": "one"}, {"text": "two"}], "fallback": {"error": {"kind": "throttled", "message": "slow down"}}}"#,
        )
        .unwrap();
        let mut request = ConverseRequest {
            messages: vec![Message::user("hi")],
            ..ConverseRequest::default()
        };
        assert_eq!(model.reply(&request).unwrap().output.text(), "one");
        request.messages.push(Message::assistant("one"));
        request.messages.push(Message::user("again"));
        assert_eq!(model.reply(&request).unwrap().output.text(), "two");
        request.messages.push(Message::assistant("two"));
        assert_eq!(
            model.reply(&request).unwrap_err(),
            ModelError::Throttled("slow down".into())
        );
    }

    #[test]
    fn bad_scripts_are_rejected() {
        assert!(matches!(
            ScriptedModel::from_toml("[[rules]]\nwhen.user_matches = '('\ntext='x'"),
            Err(ScriptError::Regex { .. })
        ));
        assert!(matches!(
            ScriptedModel::from_toml("nonsense = 1"),
            Err(ScriptError::Parse(_))
        ));
    }

    #[test]
    fn ambiguous_suffix_does_not_resolve() {
        let request = ConverseRequest {
            tools: vec![
                ToolSpec {
                    name: "a___calc".into(),
                    ..calc_tool()
                },
                ToolSpec {
                    name: "b___calc".into(),
                    ..calc_tool()
                },
            ],
            ..ConverseRequest::default()
        };
        let view = ConversationView::new(&request);
        assert_eq!(view.resolve_tool("calc"), None);
        assert_eq!(view.resolve_tool("a___calc"), Some("a___calc"));
        assert!(!tool_name_matches("xcalc", "calc"));
    }
}
