//! OpenAPI 3.0/3.1 documents → tools: one per operation, with an input schema
//! merged from path, query and header parameters and the JSON request body.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::SpecError;
use super::refs::{escape, resolve};
use crate::naming::sanitize;
use crate::tool::ToolDef;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Where an input property goes in the HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Substituted into the path.
    Path,
    /// A query parameter.
    Query,
    /// A request header.
    Header,
    /// A field of the JSON body.
    BodyField,
    /// The whole JSON body.
    Body,
}

/// One input property and its destination.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Property name in the tool input.
    pub property: String,
    /// Name on the wire.
    pub wire_name: String,
    /// Destination.
    pub location: Location,
}

/// One operation as a tool.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The tool definition.
    pub tool: ToolDef,
    /// HTTP method (upper case).
    pub method: String,
    /// Path template (`/pets/{petId}`).
    pub path: String,
    /// Server URL for this operation.
    pub server: String,
    /// `server`, parsed once at load: each call sets only its path.
    pub base_url: url::Url,
    /// Property bindings.
    pub bindings: Vec<Binding>,
    /// Content type of the body, when there is one.
    pub body_content_type: Option<String>,
}

/// Parses JSON or YAML text into a JSON value.
pub fn parse_text(text: &str) -> Result<Value, SpecError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        serde_json::from_str(text).map_err(|e| SpecError::new("", &format!("not valid JSON: {e}")))
    } else {
        yaml_serde::from_str(text).map_err(|e| SpecError::new("", &format!("not valid YAML: {e}")))
    }
}

/// Turns a parsed document into operations.
pub fn operations(doc: &Value) -> Result<Vec<Operation>, SpecError> {
    if !doc.is_object() {
        return Err(SpecError::new("", "the document must be an object"));
    }
    if doc.get("swagger").is_some() {
        return Err(SpecError::new(
            "/swagger",
            "Swagger 2.0 documents are not supported; convert to OpenAPI 3",
        ));
    }
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or_else(|| SpecError::new("/openapi", "missing the \"openapi\" version field"))?;
    if !(version.starts_with("3.0") || version.starts_with("3.1")) {
        return Err(SpecError::new(
            "/openapi",
            &format!("OpenAPI {version} is not supported (3.0 and 3.1 are)"),
        ));
    }
    let default_server = server_url(doc.get("servers"), "/servers")?;
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| SpecError::new("/paths", "missing \"paths\""))?;

    let mut out = Vec::new();
    let mut operation_ids: HashMap<String, String> = HashMap::new();
    let mut tool_names: HashMap<String, usize> = HashMap::new();
    for (path, item) in paths {
        let item_pointer = format!("/paths/{}", escape(path));
        let item = resolve(item, doc, &item_pointer)?;
        let path_params = item
            .get("parameters")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        let path_server = match item.get("servers") {
            Some(servers) => Some(server_url(
                Some(servers),
                &format!("{item_pointer}/servers"),
            )?),
            None => None,
        };
        for method in METHODS {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            let pointer = format!("{item_pointer}/{method}");
            if let Some(id) = operation.get("operationId").and_then(Value::as_str)
                && let Some(previous) = operation_ids.insert(id.to_string(), pointer.clone())
            {
                return Err(SpecError::new(
                    &format!("{pointer}/operationId"),
                    &format!("duplicate operationId {id:?} (also at {previous})"),
                ));
            }
            let server = match operation.get("servers") {
                Some(servers) => server_url(Some(servers), &format!("{pointer}/servers"))?,
                None => path_server
                    .clone()
                    .unwrap_or_else(|| default_server.clone()),
            };
            let mut op = operation_tool(
                path,
                method,
                operation,
                (&path_params, &item_pointer),
                &pointer,
                server,
            )?;
            let base = op.tool.name.clone();
            let count = tool_names.entry(base.clone()).or_insert(0);
            *count += 1;
            if *count > 1 {
                op.tool.name = format!("{base}_{count}");
            }
            out.push(op);
        }
    }
    Ok(out)
}

fn server_url(servers: Option<&Value>, pointer: &str) -> Result<String, SpecError> {
    let server = servers
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .ok_or_else(|| {
            SpecError::new(
                pointer,
                "at least one server with an absolute URL is required",
            )
        })?;
    let mut url = server
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| SpecError::new(&format!("{pointer}/0/url"), "server has no url"))?
        .to_string();
    if let Some(variables) = server.get("variables").and_then(Value::as_object) {
        for (name, variable) in variables {
            let default = variable
                .get("default")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    SpecError::new(
                        &format!("{pointer}/0/variables/{}", escape(name)),
                        "server variable has no default",
                    )
                })?;
            url = url.replace(&format!("{{{name}}}"), default);
        }
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(SpecError::new(
            &format!("{pointer}/0/url"),
            &format!("server URL {url:?} must be an absolute http(s) URL"),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn operation_tool(
    path: &str,
    method: &str,
    operation: &Value,
    (path_params, item_pointer): (&Value, &str),
    pointer: &str,
    server: String,
) -> Result<Operation, SpecError> {
    let raw_name = operation
        .get("operationId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{method}_{}", path.trim_matches('/')));
    let mut name = String::with_capacity(raw_name.len());
    for c in sanitize(&raw_name).chars() {
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('_').to_string();
    let name = if name.is_empty() {
        method.to_string()
    } else {
        name
    };
    let description = [operation.get("summary"), operation.get("description")]
        .iter()
        .filter_map(|v| v.and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let description = if description.is_empty() {
        format!("{} {path}", method.to_uppercase())
    } else {
        description
    };

    // Parameters: path-level first, overridden by operation-level (same name and location).
    let mut params: BTreeMap<(String, String), (Value, String)> = BTreeMap::new();
    let op_params = operation
        .get("parameters")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    for (list, list_pointer) in [
        (path_params, format!("{item_pointer}/parameters")),
        (&op_params, format!("{pointer}/parameters")),
    ] {
        let Some(list) = list.as_array() else {
            return Err(SpecError::new(&list_pointer, "parameters must be an array"));
        };
        for (i, param) in list.iter().enumerate() {
            let param_pointer = format!("{list_pointer}/{i}");
            let name = param
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| SpecError::new(&param_pointer, "parameter has no name"))?;
            let location = param
                .get("in")
                .and_then(Value::as_str)
                .ok_or_else(|| SpecError::new(&param_pointer, "parameter has no \"in\""))?;
            params.insert(
                (location.to_string(), name.to_string()),
                (param.clone(), param_pointer),
            );
        }
    }

    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut bindings = Vec::new();
    let mut taken: HashMap<String, ()> = HashMap::new();
    for ((location, name), (param, param_pointer)) in &params {
        let location = match location.as_str() {
            "path" => Location::Path,
            "query" => Location::Query,
            "header" => Location::Header,
            "cookie" => {
                if param.get("required").and_then(Value::as_bool) == Some(true) {
                    return Err(SpecError::new(
                        param_pointer,
                        "required cookie parameters are not supported",
                    ));
                }
                continue;
            }
            other => {
                return Err(SpecError::new(
                    param_pointer,
                    &format!("unknown parameter location {other:?}"),
                ));
            }
        };
        let mut schema = param
            .get("schema")
            .cloned()
            .or_else(|| {
                param
                    .get("content")
                    .and_then(Value::as_object)
                    .and_then(|c| c.values().next())
                    .and_then(|m| m.get("schema"))
                    .cloned()
            })
            .unwrap_or_else(|| json!({"type": "string"}));
        if let (Some(description), Value::Object(map)) = (param.get("description"), &mut schema) {
            map.entry("description").or_insert(description.clone());
        }
        let property = if taken.contains_key(name) {
            format!("{}_{name}", location_prefix(&location))
        } else {
            name.clone()
        };
        taken.insert(property.clone(), ());
        let is_required = location == Location::Path
            || param.get("required").and_then(Value::as_bool) == Some(true);
        if is_required {
            required.push(Value::String(property.clone()));
        }
        properties.insert(property.clone(), schema);
        bindings.push(Binding {
            property,
            wire_name: name.clone(),
            location,
        });
    }
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
            && !bindings
                .iter()
                .any(|b| b.location == Location::Path && b.wire_name == name)
        {
            return Err(SpecError::new(
                pointer,
                &format!("path parameter {{{name}}} is not declared"),
            ));
        }
    }

    let mut body_content_type = None;
    if let Some(body) = operation.get("requestBody") {
        let body_pointer = format!("{pointer}/requestBody");
        let content = body
            .get("content")
            .and_then(Value::as_object)
            .ok_or_else(|| SpecError::new(&body_pointer, "requestBody has no content"))?;
        let body_required = body.get("required").and_then(Value::as_bool) == Some(true);
        let json_media = content.iter().find(|(media, _)| is_json(media));
        match json_media {
            Some((media, media_type)) => {
                body_content_type = Some(media.clone());
                let schema = media_type
                    .get("schema")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let flat = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .filter(|props| props.keys().all(|k| !taken.contains_key(k)));
                match flat {
                    Some(body_props) => {
                        let body_required_fields: Vec<&str> = schema
                            .get("required")
                            .and_then(Value::as_array)
                            .map(|r| r.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        for (name, prop_schema) in body_props {
                            properties.insert(name.clone(), prop_schema.clone());
                            if body_required && body_required_fields.contains(&name.as_str()) {
                                required.push(Value::String(name.clone()));
                            }
                            bindings.push(Binding {
                                property: name.clone(),
                                wire_name: name.clone(),
                                location: Location::BodyField,
                            });
                        }
                    }
                    None => {
                        let property = if taken.contains_key("body") {
                            "request_body"
                        } else {
                            "body"
                        };
                        properties.insert(property.to_string(), schema);
                        if body_required {
                            required.push(Value::String(property.to_string()));
                        }
                        bindings.push(Binding {
                            property: property.to_string(),
                            wire_name: property.to_string(),
                            location: Location::Body,
                        });
                    }
                }
            }
            None if body_required => {
                let media: Vec<&String> = content.keys().collect();
                return Err(SpecError::new(
                    &format!("{body_pointer}/content"),
                    &format!("request body media types {media:?} are not supported (only JSON)"),
                ));
            }
            None => {}
        }
    }

    let mut input_schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        input_schema["required"] = Value::Array(required);
    }
    let output_schema = operation
        .get("responses")
        .and_then(|r| r.get("200").or_else(|| r.get("201")))
        .and_then(|r| r.get("content"))
        .and_then(Value::as_object)
        .and_then(|c| c.iter().find(|(m, _)| is_json(m)))
        .and_then(|(_, m)| m.get("schema"))
        .filter(|s| s.get("type").and_then(Value::as_str) == Some("object"))
        .cloned();
    let base_url = url::Url::parse(&server).map_err(|e| {
        SpecError::new(
            pointer,
            &format!("server URL {server:?} is not a valid URL: {e}"),
        )
    })?;
    Ok(Operation {
        tool: ToolDef {
            name,
            description,
            input_schema,
            output_schema,
        },
        method: method.to_uppercase(),
        path: path.to_string(),
        server,
        base_url,
        bindings,
        body_content_type,
    })
}

fn location_prefix(location: &Location) -> &'static str {
    match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
        Location::BodyField | Location::Body => "body",
    }
}

/// Whether a media type is JSON (`application/json`, `application/x+json`).
pub fn is_json(media: &str) -> bool {
    let media = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json") || media == "*/*"
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETSTORE: &str = r##"
openapi: 3.0.3
info: {title: Pets, version: "1"}
servers:
  - url: "http://{host}/v1"
    variables: {host: {default: "127.0.0.1:9"}}
paths:
  /pets:
    get:
      operationId: listPets
      summary: List all pets
      parameters:
        - {name: limit, in: query, schema: {type: integer}, description: How many}
        - {name: X-Trace, in: header, schema: {type: string}}
    post:
      operationId: create pet!
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NewPet"}
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, schema: {type: string}}
    get:
      summary: Info for a pet
    put:
      operationId: replacePet
      requestBody:
        content:
          application/json:
            schema: {type: array, items: {type: string}}
components:
  schemas:
    NewPet:
      type: object
      required: [name]
      properties:
        name: {type: string}
        tag: {type: string}
"##;

    #[test]
    fn operations_become_tools() {
        let doc = parse_text(PETSTORE).unwrap();
        let ops = operations(&doc).unwrap();
        let names: Vec<&str> = ops.iter().map(|o| o.tool.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["listPets", "create_pet", "get_pets_petId", "replacePet"]
        );
        let list = &ops[0];
        assert_eq!(list.server, "http://127.0.0.1:9/v1");
        assert_eq!(list.tool.description, "List all pets");
        assert_eq!(
            list.tool.input_schema["properties"]["limit"]["description"],
            "How many"
        );
        assert!(list.tool.input_schema.get("required").is_none());
        let create = &ops[1];
        assert_eq!(create.tool.input_schema["required"], json!(["name"]));
        assert!(
            create
                .bindings
                .iter()
                .all(|b| b.location == Location::BodyField)
        );
        let get = &ops[2];
        assert_eq!(get.tool.input_schema["required"], json!(["petId"]));
        assert_eq!(get.method, "GET");
        let replace = &ops[3];
        assert_eq!(replace.bindings.last().unwrap().location, Location::Body);
    }

    #[test]
    fn errors_name_the_place_in_the_document() {
        let err = operations(&json!({"swagger": "2.0"})).unwrap_err();
        assert_eq!(err.pointer, "/swagger");
        let err = operations(&json!({"openapi": "3.0.0", "paths": {}})).unwrap_err();
        assert_eq!(err.pointer, "/servers");
        let err = operations(&json!({
            "openapi": "3.1.0", "servers": [{"url": "http://x"}],
            "paths": {"/a/{id}": {"get": {"operationId": "a"}}}
        }))
        .unwrap_err();
        assert_eq!(err.pointer, "/paths/~1a~1{id}/get");
        assert!(err.message.contains("{id}"));
        let err = operations(&json!({
            "openapi": "3.1.0", "servers": [{"url": "http://x"}],
            "paths": {"/a": {"get": {"operationId": "dup"}}, "/b": {"get": {"operationId": "dup"}}}
        }))
        .unwrap_err();
        assert!(err.message.contains("duplicate operationId"), "{err:?}");
        let err = operations(&json!({
            "openapi": "3.1.0", "servers": [{"url": "http://x"}],
            "paths": {"/a": {"post": {"requestBody": {"required": true, "content": {"application/xml": {}}}}}}
        }))
        .unwrap_err();
        assert_eq!(err.pointer, "/paths/~1a/post/requestBody/content");
        assert!(parse_text("{not json").is_err());
        assert!(parse_text("a: [unclosed").is_err());
    }
}
