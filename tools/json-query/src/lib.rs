//! jq-style queries over JSON for agents, with the `jaq` interpreter: e.g.
//! `.orders[] | select(.total > 100) | .id`.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::{Value, json};

/// Tool name.
pub const NAME: &str = "query";

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

/// Most results returned by one query.
pub const MAX_RESULTS: usize = 1000;

/// Tool description shown to models.
pub const DESCRIPTION: &str = "Runs a jq filter over a JSON document and returns every result, \
    e.g. filter \".items[] | select(.price > 10) | .name\". Supports the usual jq language: \
    paths, pipes, select, map, keys, length, sort_by, group_by, string functions.";

/// JSON Schema of the tool input.
pub fn input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "filter": {"type": "string", "description": "The jq filter.", "maxLength": MAX_FILTER_LEN},
            "input": {"description": "The JSON document to query."}
        },
        "required": ["filter", "input"],
        "additionalProperties": false
    })
}

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The arguments are not `{"filter": string, "input": any}`.
    #[error("arguments must be an object with a string \"filter\" and an \"input\" document")]
    BadArguments,
    /// The filter is too long.
    #[error("filter is longer than {MAX_FILTER_LEN} bytes")]
    TooLong,
    /// The filter does not parse or compile.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// The filter failed at run time (e.g. indexing a number).
    #[error("filter failed: {0}")]
    Runtime(String),
}

/// Runs `filter` over `input`, returning at most [`MAX_RESULTS`] results.
pub fn query(filter: &str, input: &Value) -> Result<Vec<Value>, QueryError> {
    if filter.len() > MAX_FILTER_LEN {
        return Err(QueryError::TooLong);
    }
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: filter,
                path: (),
            },
        )
        .map_err(|errors| QueryError::InvalidFilter(format!("{errors:?}")))?;
    let compiled = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| QueryError::InvalidFilter(format!("{errors:?}")))?;
    let text = input.to_string();
    let value = jaq_json::read::parse_single(text.as_bytes())
        .map_err(|e| QueryError::Runtime(format!("cannot read input: {e:?}")))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&compiled.lut, Vars::new([]));
    let mut results = Vec::new();
    for output in compiled
        .id
        .run((ctx, value))
        .map(unwrap_valr)
        .take(MAX_RESULTS)
    {
        let output = output.map_err(|e| QueryError::Runtime(e.to_string()))?;
        let rendered = output.to_string();
        let value = serde_json::from_str(&rendered).unwrap_or(Value::String(rendered));
        results.push(value);
    }
    Ok(results)
}

/// Runs the tool: `{"filter", "input"}` → `{"results": [...]}`.
pub fn call(arguments: &Value) -> Result<Value, QueryError> {
    let filter = arguments
        .get("filter")
        .and_then(Value::as_str)
        .ok_or(QueryError::BadArguments)?;
    let input = arguments.get("input").ok_or(QueryError::BadArguments)?;
    Ok(json!({ "results": query(filter, input)? }))
}

#[cfg(target_arch = "wasm32")]
mod component {
    use corral_tool::{ToolDefinition, ToolError, ToolSet, definition, export_tools};
    use serde_json::Value;

    struct JsonQuery;

    impl ToolSet for JsonQuery {
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
                super::QueryError::Runtime(_) => ToolError::Failed(e.to_string()),
                other => ToolError::InvalidArguments(other.to_string()),
            })
        }
    }

    export_tools!(JsonQuery);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_documents() {
        let input = json!({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 20}]});
        assert_eq!(
            query(".items[] | select(.price > 10) | .name", &input).unwrap(),
            vec![json!("b")]
        );
        assert_eq!(
            query("[.items[].price] | add", &input).unwrap(),
            vec![json!(25)]
        );
        assert_eq!(query(".items | length", &input).unwrap(), vec![json!(2)]);
        assert_eq!(
            call(&json!({"filter": ".a", "input": {"a": [1, 2]}})).unwrap(),
            json!({"results": [[1, 2]]})
        );
    }

    #[test]
    fn reports_bad_filters_and_inputs() {
        assert!(matches!(
            query(".[", &json!({})),
            Err(QueryError::InvalidFilter(_))
        ));
        assert!(matches!(
            query(".a.b", &json!({"a": 1})),
            Err(QueryError::Runtime(_))
        ));
        assert_eq!(call(&json!({"filter": "."})), Err(QueryError::BadArguments));
        assert_eq!(
            query(&".".repeat(5000), &json!(1)),
            Err(QueryError::TooLong)
        );
        assert_eq!(
            query("range(5000)", &json!(null)).unwrap().len(),
            MAX_RESULTS
        );
    }
}
