//! The Cedar schema of a gateway: AgentCore Policy's entity model plus one
//! action per tool, generated from the tools' input JSON schemas by the Cedar
//! project's `cedar-policy-mcp-schema-generator`.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use cedar_policy::{Entities, EntityId, EntityTypeName, EntityUid, Schema, SchemaFragment};
use cedar_policy_mcp_schema_generator::{SchemaGenerator, SchemaGeneratorConfig};
use serde_json::{Value, json};

use crate::error::PolicyError;
use crate::input::InputShape;

/// Cedar namespace of AgentCore Policy's entity model.
pub const NAMESPACE: &str = "AgentCore";

/// The action group every tool action belongs to.
pub const CALL_TOOL_ACTION: &str = "CallTool";

/// The root action group (`CallTool` is in it).
pub const MCP_ACTION: &str = "Mcp";

/// AgentCore's entity model with Corral's own context record. The
/// generator adds one action per tool, in `CallTool`, whose context is
/// `{ input: <tool input>, corral: CorralContext }`.
const SCHEMA_STUB: &str = r#"
namespace AgentCore {
  @mcp_principal("OAuthUser")
  entity OAuthUser = { "id": String } tags String;

  @mcp_principal("IamEntity")
  entity IamEntity = { "id": String };

  @mcp_resource("Gateway")
  entity Gateway;

  @mcp_context("corral")
  type CorralContext = {
    "sessionId"?: String,
    "agent"?: String,
    "actorId"?: String,
    "step"?: Long,
    "epochSeconds": Long,
    "hour": Long,
    "weekday": Long,
  };

  action "Mcp";

  @mcp_action("CallTool")
  action "CallTool" in [Action::"Mcp"];
}
"#;

/// A tool as the policy engine sees it: its exposed name and input schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSignature {
    /// Exposed name (`<target>___<tool>`), the Cedar action id.
    pub name: String,
    /// JSON Schema of the tool's input object.
    pub input_schema: Value,
}

impl ToolSignature {
    /// A signature from a name and input schema.
    pub fn new(name: impl Into<String>, input_schema: Value) -> Self {
        Self {
            name: name.into(),
            input_schema,
        }
    }
}

/// What the engine knows about one tool action.
#[derive(Debug)]
pub struct ActionInfo {
    /// `AgentCore::Action::"<tool>"`.
    pub uid: EntityUid,
    /// How to turn the tool's arguments into the Cedar `context.input` value.
    pub input: InputShape,
    /// The action entity and its groups, ready for a request.
    pub entities: Entities,
    /// Why the tool's input could not be typed, when the generator refused it
    /// (its `context.input` is then an empty record).
    pub untyped_reason: Option<String>,
}

/// The generated schema of one tool catalogue.
#[derive(Debug)]
pub struct CatalogSchema {
    /// The Cedar schema policies are validated against.
    pub schema: Schema,
    /// The schema in Cedar's human-readable format.
    pub text: String,
    /// Per tool action, by exposed name.
    pub actions: HashMap<String, ActionInfo>,
    /// Tool names in catalogue order.
    pub tool_names: Vec<String>,
}

impl CatalogSchema {
    /// Generates the schema for `tools`.
    pub fn generate(tools: &[ToolSignature]) -> Result<Self, PolicyError> {
        // Cedar identifiers cannot hold every exposed tool name (`-` is legal
        // in target names), and the generator names a namespace after each
        // tool; such tools are generated under an alias and the action renamed.
        let aliases: Vec<String> = tools
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if is_cedar_identifier(&t.name) {
                    t.name.clone()
                } else {
                    format!("corral_tool_{i}")
                }
            })
            .collect();
        let mut untyped: BTreeMap<usize, String> = BTreeMap::new();
        let generated = loop {
            let included: Vec<usize> = (0..tools.len())
                .filter(|i| !untyped.contains_key(i))
                .collect();
            match run_generator(tools, &aliases, &included) {
                Ok(fragment) => break fragment,
                Err(error) if included.is_empty() => return Err(PolicyError::Schema(error)),
                Err(_) => {
                    // Find the tools the generator cannot translate, one by one.
                    let before = untyped.len();
                    for &i in &included {
                        if let Err(error) = run_generator(tools, &aliases, &[i]) {
                            untyped.insert(i, error);
                        }
                    }
                    if untyped.len() == before {
                        // Individually fine but not together: type everything as untyped.
                        for &i in &included {
                            untyped.insert(
                                i,
                                "tool conflicts with another tool's generated types".into(),
                            );
                        }
                    }
                }
            }
        };
        let mut json = generated
            .to_json_value()
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        rename_actions(&mut json, tools, &aliases)?;
        add_untyped_actions(&mut json, tools, &untyped)?;
        let fragment = SchemaFragment::from_json_value(json.clone())
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        let text = fragment
            .to_cedarschema()
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        let schema = Schema::from_schema_fragments([fragment])
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        let all_actions = schema
            .action_entities()
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        let group_entities: Vec<cedar_policy::Entity> = [CALL_TOOL_ACTION, MCP_ACTION]
            .iter()
            .filter_map(|g| all_actions.get(&action_uid(g)).cloned())
            .collect();
        let mut actions = HashMap::with_capacity(tools.len());
        for (i, tool) in tools.iter().enumerate() {
            let uid = action_uid(&tool.name);
            let input = match untyped.get(&i) {
                Some(_) => InputShape::untyped(),
                None => InputShape::from_schema_json(&json, NAMESPACE, &tool.name),
            };
            let mut entities: Vec<cedar_policy::Entity> = group_entities.clone();
            if let Some(entity) = all_actions.get(&uid) {
                entities.push(entity.clone());
            }
            let entities = Entities::from_entities(entities, None)
                .map_err(|e| PolicyError::Schema(e.to_string()))?;
            actions.insert(
                tool.name.clone(),
                ActionInfo {
                    uid,
                    input,
                    entities,
                    untyped_reason: untyped.get(&i).cloned(),
                },
            );
        }
        Ok(Self {
            schema,
            text,
            actions,
            tool_names: tools.iter().map(|t| t.name.clone()).collect(),
        })
    }
}

/// `AgentCore::Action::"<name>"`.
pub fn action_uid(name: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name("Action"), EntityId::new(name))
}

/// `AgentCore::<ty>`.
pub fn type_name(ty: &str) -> EntityTypeName {
    // Every decision names its principal and gateway: the entity model's
    // types are parsed once, not by Cedar's parser on each call.
    static KNOWN: std::sync::LazyLock<Vec<(&'static str, EntityTypeName)>> =
        std::sync::LazyLock::new(|| {
            ["OAuthUser", "IamEntity", "Gateway", "Action"]
                .into_iter()
                .map(|ty| (ty, parse_type_name(ty)))
                .collect()
        });
    KNOWN
        .iter()
        .find(|(known, _)| *known == ty)
        .map(|(_, name)| name.clone())
        .unwrap_or_else(|| parse_type_name(ty))
}

fn parse_type_name(ty: &str) -> EntityTypeName {
    // Only called with the fixed identifiers of this module's entity model.
    EntityTypeName::from_str(&format!("{NAMESPACE}::{ty}"))
        .unwrap_or_else(|_| unreachable_type_name())
}

#[allow(clippy::expect_used)]
fn unreachable_type_name() -> EntityTypeName {
    EntityTypeName::from_str("AgentCore::Invalid").expect("a literal entity type name parses")
}

fn run_generator(
    tools: &[ToolSignature],
    aliases: &[String],
    included: &[usize],
) -> Result<SchemaFragment, String> {
    let config = SchemaGeneratorConfig::default()
        .objects_as_records(true)
        .encode_numbers_as_decimal(true)
        .inline_empty_records(true);
    let mut generator = SchemaGenerator::from_cedarschema_str_with_config(SCHEMA_STUB, config)
        .map_err(|e| e.to_string())?;
    let listed: Vec<Value> = included
        .iter()
        .map(|&i| {
            let schema = match &tools[i].input_schema {
                Value::Object(map) if !map.is_empty() => tools[i].input_schema.clone(),
                _ => json!({"type": "object", "properties": {}}),
            };
            json!({"name": aliases[i], "inputSchema": schema})
        })
        .collect();
    let description = mcp_tools_sdk::description::ServerDescription::from_json_str(
        &json!({"result": {"tools": listed}}).to_string(),
    )
    .map_err(|e| e.to_string())?;
    generator
        .add_actions_from_server_description(&description)
        .map_err(|e| e.to_string())?;
    let (fragment, _) = SchemaFragment::from_cedarschema_str(&generator.get_schema_as_str())
        .map_err(|e| e.to_string())?;
    Ok(fragment)
}

fn rename_actions(
    json: &mut Value,
    tools: &[ToolSignature],
    aliases: &[String],
) -> Result<(), PolicyError> {
    let actions = json
        .get_mut(NAMESPACE)
        .and_then(|ns| ns.get_mut("actions"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| PolicyError::Schema("generated schema has no AgentCore actions".into()))?;
    for (tool, alias) in tools.iter().zip(aliases) {
        if &tool.name != alias
            && let Some(action) = actions.remove(alias)
        {
            actions.insert(tool.name.clone(), action);
        }
    }
    Ok(())
}

fn add_untyped_actions(
    json: &mut Value,
    tools: &[ToolSignature],
    untyped: &BTreeMap<usize, String>,
) -> Result<(), PolicyError> {
    let actions = json
        .get_mut(NAMESPACE)
        .and_then(|ns| ns.get_mut("actions"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| PolicyError::Schema("generated schema has no AgentCore actions".into()))?;
    for &i in untyped.keys() {
        actions.insert(
            tools[i].name.clone(),
            json!({
                "memberOf": [{"id": CALL_TOOL_ACTION}],
                "appliesTo": {
                    "principalTypes": ["OAuthUser", "IamEntity"],
                    "resourceTypes": ["Gateway"],
                    "context": {"type": "Record", "attributes": {
                        "input": {"type": "Record", "attributes": {}},
                        "corral": {"type": "EntityOrCommon", "name": "CorralContext"}
                    }}
                }
            }),
        );
    }
    Ok(())
}

/// Whether `name` is a Cedar identifier (and so can name a namespace).
fn is_cedar_identifier(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar",
    ];
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund() -> ToolSignature {
        ToolSignature::new(
            "RefundTool___process_refund",
            json!({"type": "object", "properties": {
                "orderId": {"type": "string"},
                "amount": {"type": "number"},
                "count": {"type": "integer"},
                "express": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "address": {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]}
            }, "required": ["orderId", "amount"]}),
        )
    }

    #[test]
    fn tools_become_typed_actions_in_call_tool() {
        let schema = CatalogSchema::generate(&[refund()]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            schema
                .text
                .contains("action \"RefundTool___process_refund\" in [Action::\"CallTool\"]"),
            "{}",
            schema.text
        );
        for field in [
            "amount: decimal",
            "count?: Long",
            "tags?: Set<String>",
            "express?: Bool",
        ] {
            assert!(schema.text.contains(field), "{field} in {}", schema.text);
        }
        assert!(
            schema
                .text
                .contains("type RefundTool___process_refundInput"),
            "{}",
            schema.text
        );
        let shape = schema.actions["RefundTool___process_refund"]
            .input
            .shape()
            .clone();
        let crate::input::Shape::Record(attributes) = shape else {
            panic!("input is a record");
        };
        let address = attributes
            .iter()
            .find(|a| a.name == "address")
            .map(|a| a.shape.clone());
        assert!(
            matches!(address, Some(crate::input::Shape::Record(_))),
            "{address:?}"
        );
        assert!(
            schema.actions["RefundTool___process_refund"]
                .untyped_reason
                .is_none()
        );
    }

    #[test]
    fn names_that_are_not_identifiers_and_untranslatable_inputs_still_get_actions() {
        let tools = [
            ToolSignature::new(
                "my-api___list",
                json!({"type": "object", "properties": {"q": {"type": "string"}}}),
            ),
            ToolSignature::new(
                "odd___tool",
                json!({"type": "object", "properties": {"e": {"type": "string", "enum": []}}}),
            ),
            refund(),
        ];
        let schema = CatalogSchema::generate(&tools).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            schema.text.contains("action \"my-api___list\""),
            "{}",
            schema.text
        );
        assert!(schema.actions["odd___tool"].untyped_reason.is_some());
        assert!(
            schema.actions["RefundTool___process_refund"]
                .untyped_reason
                .is_none()
        );
        assert!(!schema.text.contains("corral_tool_0\""), "{}", schema.text);
    }
}
