//! [`Divergence`]: where a replayed guest first did something other than
//! what its journal recorded.

use serde::Serialize;

/// How a replay diverged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DivergenceKind {
    /// The guest made a different call (interface, function or arguments).
    DifferentCall,
    /// The guest made a call where the journal has none.
    ExtraCall,
    /// The invocation ended before making a recorded call.
    MissingCall,
    /// The invocation returned a different response.
    Response,
    /// A recorded answer does not fit the call's result type (a corrupt or
    /// hand-edited journal).
    UnreadableAnswer,
}

impl DivergenceKind {
    fn describe(self) -> &'static str {
        match self {
            DivergenceKind::DifferentCall => "the agent made a different host call",
            DivergenceKind::ExtraCall => "the agent made a host call the journal does not have",
            DivergenceKind::MissingCall => "the agent did not make a recorded host call",
            DivergenceKind::Response => "the agent returned a different response",
            DivergenceKind::UnreadableAnswer => "a recorded answer does not fit the call",
        }
    }
}

/// The first difference between a replayed run and its journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// What differed.
    pub kind: DivergenceKind,
    /// The invocation, counted from 1 since the sandbox started (0: while
    /// instantiating).
    pub invocation: u64,
    /// Its request id.
    pub request_id: String,
    /// The agent-loop step within the invocation (model calls so far; the
    /// number of its `step N` span, `corral.step`).
    pub step: u32,
    /// Model calls since the sandbox started (the step `--until` counts).
    pub session_step: u64,
    /// Journal offset of the recorded entry (or the last one matched).
    pub offset: Option<u64>,
    /// What the journal has.
    pub recorded: Option<serde_json::Value>,
    /// What the agent did instead.
    pub actual: Option<serde_json::Value>,
    /// Where the two first differ (`$.messages[2].content[0].text`), and how.
    pub difference: String,
}

impl Divergence {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        kind: DivergenceKind,
        invocation: u64,
        request_id: String,
        step: u32,
        session_step: u64,
        offset: Option<u64>,
        recorded: Option<serde_json::Value>,
        actual: Option<serde_json::Value>,
    ) -> Self {
        let difference = match (&recorded, &actual) {
            (Some(recorded), Some(actual)) => first_difference(recorded, actual, "$")
                .unwrap_or_else(|| "the values are equal".into()),
            (Some(_), None) => "the journal has this call; the agent did not make it".into(),
            (None, Some(_)) => "the agent made this call; the journal ends here".into(),
            (None, None) => String::new(),
        };
        Self {
            kind,
            invocation,
            request_id,
            step,
            session_step,
            offset,
            recorded,
            actual,
            difference,
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in invocation {} (request {}), step {} (session step {})",
            self.kind.describe(),
            self.invocation,
            self.request_id,
            self.step,
            self.session_step
        )?;
        if let Some(offset) = self.offset {
            write!(f, ", journal offset {offset}")?;
        }
        if !self.difference.is_empty() {
            write!(f, ": {}", self.difference)?;
        }
        Ok(())
    }
}

impl std::error::Error for Divergence {}

/// The first path where `recorded` and `actual` differ, with both values.
fn first_difference(
    recorded: &serde_json::Value,
    actual: &serde_json::Value,
    path: &str,
) -> Option<String> {
    use serde_json::Value;
    match (recorded, actual) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => {
                        if let Some(found) = first_difference(value, other, &here) {
                            return Some(found);
                        }
                    }
                    None => return Some(format!("{here}: recorded {}, now absent", short(value))),
                }
            }
            b.iter()
                .find(|(key, _)| !a.contains_key(*key))
                .map(|(key, value)| format!("{path}.{key}: absent before, now {}", short(value)))
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(found) = first_difference(x, y, &format!("{path}[{i}]")) {
                    return Some(found);
                }
            }
            (a.len() != b.len())
                .then(|| format!("{path}: recorded {} items, now {}", a.len(), b.len()))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: recorded {}, now {}", short(a), short(b))),
    }
}

/// A value for a one-line report: long strings cut in the middle.
fn short(value: &serde_json::Value) -> String {
    const MAX: usize = 200;
    let text = value.to_string();
    if text.len() <= MAX {
        return text;
    }
    let mut head = MAX / 2;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - MAX / 2;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…{}", &text[..head], &text[tail..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_first_differing_path() {
        let recorded = json!({"system": [{"text": "You are a calculator."}], "messages": [1, 2]});
        let actual =
            json!({"system": [{"text": "You are a helpful calculator."}], "messages": [1, 2]});
        assert_eq!(
            first_difference(&recorded, &actual, "$").as_deref(),
            Some(
                r#"$.system[0].text: recorded "You are a calculator.", now "You are a helpful calculator.""#
            )
        );
        assert_eq!(
            first_difference(&json!([1, 2]), &json!([1, 2, 3]), "$").as_deref(),
            Some("$: recorded 2 items, now 3")
        );
        assert_eq!(
            first_difference(&json!({"a": 1}), &json!({"a": 1}), "$"),
            None
        );
    }

    #[test]
    fn long_values_are_shortened_on_char_boundaries() {
        let long = json!("é".repeat(300));
        let text = short(&long);
        assert!(text.contains('…'));
        assert!(text.len() < 220);
    }

    #[test]
    fn display_names_invocation_step_and_offset() {
        let divergence = Divergence::new(
            DivergenceKind::DifferentCall,
            3,
            "r-3".into(),
            1,
            5,
            Some(42),
            Some(json!({"a": 1})),
            Some(json!({"a": 2})),
        );
        let text = divergence.to_string();
        assert!(text.contains("invocation 3"), "{text}");
        assert!(text.contains("session step 5"), "{text}");
        assert!(text.contains("journal offset 42"), "{text}");
        assert!(text.contains("$.a: recorded 1, now 2"), "{text}");
    }
}
