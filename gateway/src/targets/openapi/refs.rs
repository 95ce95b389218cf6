//! `$ref` resolution within one OpenAPI document (local references only).

use serde_json::{Map, Value, json};

use super::SpecError;

/// Deepest nesting followed while inlining references.
const MAX_DEPTH: usize = 64;

/// Escapes one JSON-pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Returns `value` with every local `$ref` inlined. Recursive references are
/// cut with a plain object schema so the result is finite.
pub fn resolve(value: &Value, root: &Value, pointer: &str) -> Result<Value, SpecError> {
    let mut stack = Vec::new();
    resolve_inner(value, root, pointer, &mut stack, 0)
}

fn resolve_inner(
    value: &Value,
    root: &Value,
    pointer: &str,
    stack: &mut Vec<String>,
    depth: usize,
) -> Result<Value, SpecError> {
    if depth > MAX_DEPTH {
        return Err(SpecError::new(pointer, "schema nesting is too deep"));
    }
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref") {
                let reference = reference.as_str().ok_or_else(|| {
                    SpecError::new(&format!("{pointer}/$ref"), "$ref must be a string")
                })?;
                let Some(target_pointer) = reference.strip_prefix('#') else {
                    return Err(SpecError::new(
                        &format!("{pointer}/$ref"),
                        &format!(
                            "external reference {reference:?} is not supported; inline it into the document"
                        ),
                    ));
                };
                if stack.iter().any(|r| r == reference) {
                    return Ok(
                        json!({"type": "object", "description": format!("(recursive reference to {reference})")}),
                    );
                }
                let target = root.pointer(target_pointer).ok_or_else(|| {
                    SpecError::new(
                        &format!("{pointer}/$ref"),
                        &format!("unresolved reference {reference:?}"),
                    )
                })?;
                stack.push(reference.to_string());
                let resolved = resolve_inner(target, root, target_pointer, stack, depth + 1);
                stack.pop();
                let mut resolved = resolved?;
                // OpenAPI 3.1 allows siblings next to $ref (description, ...).
                if let Value::Object(resolved_map) = &mut resolved {
                    for (key, sibling) in map {
                        if key != "$ref" {
                            let child = format!("{pointer}/{}", escape(key));
                            resolved_map.insert(
                                key.clone(),
                                resolve_inner(sibling, root, &child, stack, depth + 1)?,
                            );
                        }
                    }
                }
                return Ok(resolved);
            }
            let mut out = Map::with_capacity(map.len());
            for (key, child) in map {
                let child_pointer = format!("{pointer}/{}", escape(key));
                out.insert(
                    key.clone(),
                    resolve_inner(child, root, &child_pointer, stack, depth + 1)?,
                );
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| resolve_inner(item, root, &format!("{pointer}/{i}"), stack, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlines_local_refs_and_cuts_cycles() {
        let root = json!({
            "components": {"schemas": {
                "Pet": {"type": "object", "properties": {"owner": {"$ref": "#/components/schemas/Person"}}},
                "Person": {"type": "object", "properties": {"pet": {"$ref": "#/components/schemas/Pet"}}}
            }}
        });
        let resolved = resolve(
            &json!({"$ref": "#/components/schemas/Pet", "description": "a pet"}),
            &root,
            "/x",
        )
        .unwrap();
        assert_eq!(resolved["description"], "a pet");
        assert_eq!(resolved["properties"]["owner"]["type"], "object");
        let cut = &resolved["properties"]["owner"]["properties"]["pet"];
        assert!(
            cut["description"]
                .as_str()
                .unwrap()
                .contains("recursive reference")
        );
    }

    #[test]
    fn reports_missing_and_external_refs_with_their_location() {
        let root = json!({});
        let err = resolve(&json!({"a": {"$ref": "#/nope"}}), &root, "/paths/~1x").unwrap_err();
        assert_eq!(err.pointer, "/paths/~1x/a/$ref");
        assert!(err.message.contains("unresolved"));
        let err = resolve(&json!({"$ref": "other.yaml#/Pet"}), &root, "/s").unwrap_err();
        assert!(err.message.contains("external reference"));
    }
}
