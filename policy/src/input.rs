//! Tool arguments (JSON) → the Cedar `context.input` value, shaped by the
//! action's context type in the generated schema.
//!
//! Cedar's schema-directed JSON parser (`Context::from_json_value`) does the
//! typing and checking; this module only bridges what plain JSON cannot say
//! in Cedar's JSON format: JSON numbers typed `decimal` (Cedar has no
//! floats), enum strings typed as the generator's enum entity types, tuples
//! and unions encoded as records, and arguments the schema does not declare
//! (dropped: no policy can refer to them). The shape is precomputed once per
//! tool so a decision does no schema lookups.

use serde_json::{Map, Value, json};

/// Deepest nesting of named types followed (guards recursive `$ref`s).
const MAX_DEPTH: usize = 32;

/// The Cedar type of a value, as far as conversion needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `String`.
    String,
    /// `Long`.
    Long,
    /// `Bool`.
    Bool,
    /// `decimal` (from a JSON number or a decimal string).
    Decimal,
    /// `datetime`, `duration`, `ipaddr`: a string Cedar's parser constructs.
    ExtensionString,
    /// `Set<T>`.
    Set(Box<Shape>),
    /// A record with declared attributes.
    Record(Vec<Attribute>),
    /// An enum entity type: the string names the entity.
    EnumEntity(String),
    /// Another entity type (opaque values): the JSON text names the entity.
    Entity(String),
    /// A type this converter cannot produce.
    Unsupported(String),
}

/// One declared record attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Its type.
    pub shape: Shape,
    /// Whether it must be present.
    pub required: bool,
}

/// How one tool's arguments become `context.input`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputShape {
    root: Shape,
}

impl InputShape {
    /// A tool whose input is not typed: `context.input` is an empty record.
    pub fn untyped() -> Self {
        Self {
            root: Shape::Record(Vec::new()),
        }
    }

    /// The shape of `action`'s `context.input` in a schema in Cedar's JSON format.
    pub fn from_schema_json(schema: &Value, namespace: &str, action: &str) -> Self {
        let context = &schema[namespace]["actions"][action]["appliesTo"]["context"];
        let root = match resolve(schema, namespace, context, 0) {
            Shape::Record(attributes) => attributes
                .into_iter()
                .find(|a| a.name == "input")
                .map(|a| a.shape)
                .unwrap_or(Shape::Record(Vec::new())),
            _ => Shape::Record(Vec::new()),
        };
        Self { root }
    }

    /// The root shape.
    pub fn shape(&self) -> &Shape {
        &self.root
    }

    /// Converts tool arguments into Cedar's JSON value format.
    pub fn convert(&self, arguments: &Value) -> Result<Value, String> {
        convert(&self.root, arguments, "input")
    }
}

fn resolve(schema: &Value, namespace: &str, ty: &Value, depth: usize) -> Shape {
    if depth > MAX_DEPTH {
        return Shape::Unsupported("type nesting too deep".into());
    }
    let Some(kind) = ty.get("type").and_then(Value::as_str) else {
        return Shape::Unsupported(format!("no type in {ty}"));
    };
    match kind {
        "String" => Shape::String,
        "Long" => Shape::Long,
        "Boolean" | "Bool" => Shape::Bool,
        "Set" => Shape::Set(Box::new(resolve(
            schema,
            namespace,
            &ty["element"],
            depth + 1,
        ))),
        "Record" => {
            let attributes = ty
                .get("attributes")
                .and_then(Value::as_object)
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(name, attr)| Attribute {
                            name: name.clone(),
                            shape: resolve(schema, namespace, attr, depth + 1),
                            required: attr
                                .get("required")
                                .and_then(Value::as_bool)
                                .unwrap_or(true),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Shape::Record(attributes)
        }
        "Extension" => extension(ty.get("name").and_then(Value::as_str).unwrap_or_default()),
        "Entity" | "EntityOrCommon" => {
            let name = ty.get("name").and_then(Value::as_str).unwrap_or_default();
            named(schema, namespace, name, depth)
        }
        other => named(schema, namespace, other, depth),
    }
}

fn extension(name: &str) -> Shape {
    match name {
        "decimal" => Shape::Decimal,
        "datetime" | "duration" | "ipaddr" => Shape::ExtensionString,
        other => Shape::Unsupported(format!("extension type {other}")),
    }
}

fn named(schema: &Value, namespace: &str, name: &str, depth: usize) -> Shape {
    if let Some(builtin) = name.strip_prefix("__cedar::") {
        return match builtin {
            "String" => Shape::String,
            "Long" => Shape::Long,
            "Bool" => Shape::Bool,
            other => extension(other),
        };
    }
    let (ns, id) = match name.rsplit_once("::") {
        Some((ns, id)) => (ns, id),
        None => (namespace, name),
    };
    let candidates = [ns, ""];
    for ns in candidates {
        let space = &schema[ns];
        if let Some(common) = space.get("commonTypes").and_then(|c| c.get(id)) {
            return resolve(schema, ns, common, depth + 1);
        }
        if let Some(entity) = space.get("entityTypes").and_then(|e| e.get(id)) {
            let qualified = if ns.is_empty() {
                id.to_string()
            } else {
                format!("{ns}::{id}")
            };
            return if entity.get("enum").is_some() {
                Shape::EnumEntity(qualified)
            } else {
                Shape::Entity(qualified)
            };
        }
    }
    match name {
        "String" => Shape::String,
        "Long" => Shape::Long,
        "Bool" | "Boolean" => Shape::Bool,
        other => extension(other),
    }
}

fn convert(shape: &Shape, value: &Value, path: &str) -> Result<Value, String> {
    let mismatch = |expected: &str| format!("{path}: expected {expected}, got {}", kind_of(value));
    match shape {
        Shape::String => value
            .is_string()
            .then(|| value.clone())
            .ok_or_else(|| mismatch("a string")),
        Shape::Long => value
            .as_i64()
            .map(Value::from)
            .ok_or_else(|| mismatch("an integer")),
        Shape::Bool => value
            .is_boolean()
            .then(|| value.clone())
            .ok_or_else(|| mismatch("a boolean")),
        Shape::Decimal => match value {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| mismatch("a number"))
                .and_then(|f| {
                    decimal_text(f)
                        .ok_or_else(|| format!("{path}: {f} is outside Cedar's decimal range"))
                })
                .map(Value::String),
            Value::String(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(decimal_text)
                .map(Value::String)
                .ok_or_else(|| format!("{path}: `{text}` is not a decimal number")),
            _ => Err(mismatch("a number")),
        },
        Shape::ExtensionString => value
            .is_string()
            .then(|| value.clone())
            .ok_or_else(|| mismatch("a string")),
        Shape::Set(element) => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(element, item, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err(mismatch("an array")),
        },
        Shape::Record(attributes) => convert_record(attributes, value, path),
        Shape::EnumEntity(ty) => match value {
            Value::String(id) => Ok(json!({"__entity": {"type": ty, "id": id}})),
            _ => Err(mismatch("a string")),
        },
        Shape::Entity(ty) => Ok(json!({"__entity": {"type": ty, "id": value.to_string()}})),
        Shape::Unsupported(why) => Err(format!("{path}: cannot be represented in Cedar ({why})")),
    }
}

fn convert_record(attributes: &[Attribute], value: &Value, path: &str) -> Result<Value, String> {
    let is_tuple = !attributes.is_empty() && attributes.iter().all(|a| a.name.starts_with("proj"));
    let is_union =
        !attributes.is_empty() && attributes.iter().all(|a| a.name.starts_with("typeChoice"));
    if is_union {
        for attribute in attributes {
            if let Ok(converted) = convert(&attribute.shape, value, path) {
                let mut record = Map::new();
                record.insert(attribute.name.clone(), converted);
                return Ok(Value::Object(record));
            }
        }
        return Err(format!("{path}: matches none of the allowed types"));
    }
    if is_tuple && let Value::Array(items) = value {
        let mut record = Map::new();
        for attribute in attributes {
            let index: usize = attribute.name["proj".len()..].parse().unwrap_or(usize::MAX);
            let item = items
                .get(index)
                .ok_or_else(|| format!("{path}: tuple is missing element {index}"))?;
            record.insert(
                attribute.name.clone(),
                convert(&attribute.shape, item, &format!("{path}[{index}]"))?,
            );
        }
        return Ok(Value::Object(record));
    }
    let Value::Object(fields) = value else {
        return Err(format!(
            "{path}: expected an object, got {}",
            kind_of(value)
        ));
    };
    let mut record = Map::new();
    for attribute in attributes {
        match fields.get(&attribute.name) {
            Some(Value::Null) | None if !attribute.required => {}
            Some(field) => {
                record.insert(
                    attribute.name.clone(),
                    convert(
                        &attribute.shape,
                        field,
                        &format!("{path}.{}", attribute.name),
                    )?,
                );
            }
            None => return Err(format!("{path}: missing required `{}`", attribute.name)),
        }
    }
    Ok(Value::Object(record))
}

/// A Cedar decimal literal for `value` (four decimal places, Cedar's precision).
pub fn decimal_text(value: f64) -> Option<String> {
    const LIMIT: f64 = 922_337_203_685_477.0;
    if !value.is_finite() || value.abs() >= LIMIT {
        return None;
    }
    let text = format!("{value:.4}");
    let trimmed = text.trim_end_matches('0');
    Some(if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_have_cedar_precision() {
        assert_eq!(decimal_text(450.0).as_deref(), Some("450.0"));
        assert_eq!(decimal_text(12.5).as_deref(), Some("12.5"));
        assert_eq!(decimal_text(-0.123456).as_deref(), Some("-0.1235"));
        assert_eq!(decimal_text(f64::NAN), None);
        assert_eq!(decimal_text(1e300), None);
    }

    #[test]
    fn records_drop_undeclared_fields_and_check_types() {
        let shape = InputShape {
            root: Shape::Record(vec![
                Attribute {
                    name: "amount".into(),
                    shape: Shape::Decimal,
                    required: true,
                },
                Attribute {
                    name: "count".into(),
                    shape: Shape::Long,
                    required: false,
                },
                Attribute {
                    name: "tags".into(),
                    shape: Shape::Set(Box::new(Shape::String)),
                    required: false,
                },
            ]),
        };
        assert_eq!(
            shape.convert(&json!({"amount": 450, "tags": ["a"], "extra": true})),
            Ok(json!({"amount": "450.0", "tags": ["a"]}))
        );
        assert_eq!(
            shape.convert(&json!({"amount": 1, "count": 1.5})),
            Err("input.count: expected an integer, got a number".to_string())
        );
        assert_eq!(
            shape.convert(&json!({})),
            Err("input: missing required `amount`".to_string())
        );
    }
}
