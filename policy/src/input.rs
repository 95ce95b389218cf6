//! Tool arguments (JSON) → the Cedar `context.input` value, shaped by the
//! action's context type in the generated schema.
//!
//! The shape is read once per tool from the generated schema, so a decision
//! does no schema lookups. Conversion builds Cedar values directly rather
//! than going through Cedar's schema-directed JSON parser, which costs tens
//! of microseconds per request (measured); the shape enforces the same
//! typing: JSON numbers become `decimal` (Cedar has no floats), enum strings
//! the generator's enum entity types, tuples and unions its records, and
//! arguments the schema does not declare are dropped (no policy can refer
//! to them).

use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use cedar_policy_core::ast::{Name, RestrictedExpr, UnreservedId};
use serde_json::Value;

/// A Cedar extension constructor (`decimal`, `datetime`, ...), its name
/// parsed once. `RestrictedExpression::new_decimal` and its siblings run
/// Cedar's parser over the constructor's name on every call, a few
/// microseconds per decision; this builds the same expression through
/// `cedar-policy-core` (pinned to the version `cedar-policy` wraps).
struct Extension {
    name: LazyLock<Option<Name>>,
    fallback: fn(&str) -> RestrictedExpression,
}

impl Extension {
    /// `name("text")`.
    fn call(&self, text: &str) -> RestrictedExpression {
        match &*self.name {
            Some(name) => RestrictedExpression::from(RestrictedExpr::call_extension_fn(
                name.clone(),
                [RestrictedExpr::val(text)],
            )),
            None => (self.fallback)(text),
        }
    }
}

macro_rules! extension {
    ($name:literal, $fallback:path) => {
        Extension {
            name: LazyLock::new(|| {
                UnreservedId::from_str($name)
                    .ok()
                    .map(Name::unqualified_name)
            }),
            fallback: |text| $fallback(text),
        }
    };
}

static DECIMAL: Extension = extension!("decimal", RestrictedExpression::new_decimal);
static DATETIME: Extension = extension!("datetime", RestrictedExpression::new_datetime);
static DURATION: Extension = extension!("duration", RestrictedExpression::new_duration);
static IP: Extension = extension!("ip", RestrictedExpression::new_ip);

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
    /// `datetime`: an ISO 8601 string.
    Datetime,
    /// `duration`: a string such as `1h30m`.
    Duration,
    /// `ipaddr`: an IP address or CIDR string.
    IpAddr,
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

    /// Converts tool arguments into the Cedar value of `context.input`.
    pub fn convert(&self, arguments: &Value) -> Result<RestrictedExpression, String> {
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
        "datetime" => Shape::Datetime,
        "duration" => Shape::Duration,
        "ipaddr" => Shape::IpAddr,
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

fn convert(shape: &Shape, value: &Value, path: &str) -> Result<RestrictedExpression, String> {
    let mismatch = |expected: &str| format!("{path}: expected {expected}, got {}", kind_of(value));
    let text = |expected: &str| {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| mismatch(expected))
    };
    match shape {
        Shape::String => text("a string").map(RestrictedExpression::new_string),
        Shape::Long => value
            .as_i64()
            .map(RestrictedExpression::new_long)
            .ok_or_else(|| mismatch("an integer")),
        Shape::Bool => value
            .as_bool()
            .map(RestrictedExpression::new_bool)
            .ok_or_else(|| mismatch("a boolean")),
        Shape::Decimal => {
            let number = match value {
                Value::Number(n) => n.as_f64().ok_or_else(|| mismatch("a number"))?,
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{path}: `{s}` is not a decimal number"))?,
                _ => return Err(mismatch("a number")),
            };
            decimal_text(number)
                .map(|text| DECIMAL.call(&text))
                .ok_or_else(|| format!("{path}: {number} is outside Cedar's decimal range"))
        }
        Shape::Datetime => text("a date-time string").map(|t| DATETIME.call(&t)),
        Shape::Duration => text("a duration string").map(|t| DURATION.call(&t)),
        Shape::IpAddr => text("an IP address string").map(|t| IP.call(&t)),
        Shape::Set(element) => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(element, item, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(RestrictedExpression::new_set),
            _ => Err(mismatch("an array")),
        },
        Shape::Record(attributes) => convert_record(attributes, value, path),
        Shape::EnumEntity(ty) => entity(ty, &text("a string")?, path),
        Shape::Entity(ty) => entity(ty, &value.to_string(), path),
        Shape::Unsupported(why) => Err(format!("{path}: cannot be represented in Cedar ({why})")),
    }
}

fn entity(ty: &str, id: &str, path: &str) -> Result<RestrictedExpression, String> {
    let ty = EntityTypeName::from_str(ty).map_err(|e| format!("{path}: {e}"))?;
    Ok(RestrictedExpression::new_entity_uid(
        EntityUid::from_type_name_and_id(ty, EntityId::new(id)),
    ))
}

fn record(
    fields: Vec<(String, RestrictedExpression)>,
    path: &str,
) -> Result<RestrictedExpression, String> {
    RestrictedExpression::new_record(fields).map_err(|e| format!("{path}: {e}"))
}

fn convert_record(
    attributes: &[Attribute],
    value: &Value,
    path: &str,
) -> Result<RestrictedExpression, String> {
    let is_tuple = !attributes.is_empty() && attributes.iter().all(|a| a.name.starts_with("proj"));
    let is_union =
        !attributes.is_empty() && attributes.iter().all(|a| a.name.starts_with("typeChoice"));
    if is_union {
        for attribute in attributes {
            if let Ok(converted) = convert(&attribute.shape, value, path) {
                return record(vec![(attribute.name.clone(), converted)], path);
            }
        }
        return Err(format!("{path}: matches none of the allowed types"));
    }
    if is_tuple && let Value::Array(items) = value {
        let mut fields = Vec::with_capacity(attributes.len());
        for attribute in attributes {
            let index: usize = attribute.name["proj".len()..].parse().unwrap_or(usize::MAX);
            let item = items
                .get(index)
                .ok_or_else(|| format!("{path}: tuple is missing element {index}"))?;
            fields.push((
                attribute.name.clone(),
                convert(&attribute.shape, item, &format!("{path}[{index}]"))?,
            ));
        }
        return record(fields, path);
    }
    let Value::Object(object) = value else {
        return Err(format!(
            "{path}: expected an object, got {}",
            kind_of(value)
        ));
    };
    let mut fields = Vec::with_capacity(attributes.len());
    for attribute in attributes {
        match object.get(&attribute.name) {
            Some(Value::Null) | None if !attribute.required => {}
            Some(field) => fields.push((
                attribute.name.clone(),
                convert(
                    &attribute.shape,
                    field,
                    &format!("{path}.{}", attribute.name),
                )?,
            )),
            None => return Err(format!("{path}: missing required `{}`", attribute.name)),
        }
    }
    record(fields, path)
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
    use serde_json::json;

    #[test]
    fn extension_values_equal_cedars_own() {
        assert!(DECIMAL.name.is_some() && DATETIME.name.is_some());
        assert!(DURATION.name.is_some() && IP.name.is_some());
        assert_eq!(
            DECIMAL.call("12.5"),
            RestrictedExpression::new_decimal("12.5")
        );
        assert_eq!(
            DATETIME.call("2026-11-29"),
            RestrictedExpression::new_datetime("2026-11-29")
        );
        assert_eq!(
            DURATION.call("1h"),
            RestrictedExpression::new_duration("1h")
        );
        assert_eq!(
            IP.call("10.0.0.1"),
            RestrictedExpression::new_ip("10.0.0.1")
        );
    }

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
        assert!(
            shape
                .convert(&json!({"amount": 450, "tags": ["a"], "extra": true}))
                .is_ok()
        );
        assert!(shape.convert(&json!({"amount": "12.25"})).is_ok());
        let error = |v: Value| shape.convert(&v).err().unwrap_or_default();
        assert_eq!(
            error(json!({"amount": 1, "count": 1.5})),
            "input.count: expected an integer, got a number"
        );
        assert_eq!(error(json!({})), "input: missing required `amount`");
        assert_eq!(
            error(json!({"amount": "lots"})),
            "input.amount: `lots` is not a decimal number"
        );
        assert_eq!(
            error(json!({"amount": 1, "tags": "a"})),
            "input.tags: expected an array, got a string"
        );
    }
}
