//! Safe arithmetic for agents: parses an expression (numbers, `+ - * / ^`,
//! parentheses, common functions such as `sqrt`, `sin`, `ln`) with `exmex` and
//! evaluates it. No variables, no side effects, bounded input.

use serde_json::{Value, json};

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 1024;

/// Tool name.
pub const NAME: &str = "evaluate";

/// Tool description shown to models.
pub const DESCRIPTION: &str = "Evaluates an arithmetic expression exactly as written, e.g. \
    \"(17 * 23) + 4\" or \"sqrt(2) ^ 2\". Supports + - * / ^, parentheses and functions \
    such as sqrt, abs, sin, cos, tan, ln, log10, exp, floor, ceil, round.";

/// JSON Schema of the tool input.
pub fn input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "The arithmetic expression to evaluate.",
                "maxLength": MAX_EXPRESSION_LEN
            }
        },
        "required": ["expression"],
        "additionalProperties": false
    })
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    /// The arguments are not `{"expression": string}`.
    #[error("arguments must be an object with a string field \"expression\"")]
    BadArguments,
    /// The expression is longer than [`MAX_EXPRESSION_LEN`].
    #[error("expression is longer than {MAX_EXPRESSION_LEN} bytes")]
    TooLong,
    /// The expression does not parse or uses unknown names.
    #[error("cannot evaluate {expression:?}: {message}")]
    Invalid {
        /// The input.
        expression: String,
        /// The parser's message.
        message: String,
    },
    /// The result is infinite or not a number (e.g. division by zero).
    #[error("{expression:?} has no finite value")]
    NotFinite {
        /// The input.
        expression: String,
    },
}

/// Evaluates `expression` to a finite number.
pub fn evaluate(expression: &str) -> Result<f64, CalcError> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(CalcError::TooLong);
    }
    let value = exmex::eval_str::<f64>(expression).map_err(|e| CalcError::Invalid {
        expression: expression.to_string(),
        message: e.to_string(),
    })?;
    if !value.is_finite() {
        return Err(CalcError::NotFinite {
            expression: expression.to_string(),
        });
    }
    Ok(value)
}

/// Runs the tool: `{"expression": "..."}` → `{"expression": "...", "value": n}`.
/// Whole numbers are returned as JSON integers.
pub fn call(arguments: &Value) -> Result<Value, CalcError> {
    let expression = arguments
        .get("expression")
        .and_then(Value::as_str)
        .ok_or(CalcError::BadArguments)?;
    let value = evaluate(expression)?;
    let number = if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    };
    Ok(json!({"expression": expression, "value": number}))
}

#[cfg(target_arch = "wasm32")]
mod component {
    use corral_tool::{ToolDefinition, ToolError, ToolSet, definition, export_tools};
    use serde_json::Value;

    struct Calculator;

    impl ToolSet for Calculator {
        fn tools() -> Vec<ToolDefinition> {
            vec![definition(
                super::NAME,
                super::DESCRIPTION,
                &super::input_schema(),
            )]
        }

        fn call(name: &str, arguments: Value) -> Result<Value, ToolError> {
            if name != super::NAME {
                return Err(ToolError::UnknownTool(name.to_string()));
            }
            super::call(&arguments).map_err(|e| match e {
                super::CalcError::BadArguments | super::CalcError::TooLong => {
                    ToolError::InvalidArguments(e.to_string())
                }
                other => ToolError::Failed(other.to_string()),
            })
        }
    }

    export_tools!(Calculator);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_arithmetic_and_functions() {
        assert_eq!(
            call(&json!({"expression": "17 * 23 + 4"})).unwrap()["value"],
            395
        );
        assert_eq!(
            call(&json!({"expression": "395 / 5"})).unwrap()["value"],
            79
        );
        assert_eq!(
            call(&json!({"expression": "1 / 4"})).unwrap()["value"],
            0.25
        );
        assert!((evaluate("sqrt(2)^2").unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(evaluate("2 * (3 + 4)").unwrap(), 14.0);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(call(&json!({"expr": "1"})), Err(CalcError::BadArguments));
        assert!(matches!(evaluate("1 +"), Err(CalcError::Invalid { .. })));
        assert!(matches!(evaluate("x * 2"), Err(CalcError::Invalid { .. })));
        assert!(matches!(
            evaluate("1 / 0"),
            Err(CalcError::NotFinite { .. })
        ));
        assert_eq!(evaluate(&"1+".repeat(600)), Err(CalcError::TooLong));
    }
}
