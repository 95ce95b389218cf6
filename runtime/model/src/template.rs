//! `${name}` / `${name.path.0}` templates for scripted replies.

use std::collections::HashMap;

use serde_json::Value;

/// Template variables: plain strings and JSON documents addressable by path.
#[derive(Debug, Default, Clone)]
pub struct Vars {
    strings: HashMap<String, String>,
    json: HashMap<String, Value>,
}

impl Vars {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a string variable.
    pub fn insert(&mut self, name: String, value: String) {
        self.strings.insert(name, value);
    }

    /// Sets a JSON variable reachable as `${name.field.0}`.
    pub fn set_json(&mut self, name: &str, value: Value) {
        self.json.insert(name.to_string(), value);
    }

    /// Adds all variables of `other`, overriding.
    pub fn extend(&mut self, other: Vars) {
        self.strings.extend(other.strings);
        self.json.extend(other.json);
    }

    fn lookup(&self, key: &str) -> Option<String> {
        if let Some(value) = self.strings.get(key) {
            return Some(value.clone());
        }
        let (root, path) = key.split_once('.')?;
        let mut node = self.json.get(root)?;
        for part in path.split('.') {
            node = match node {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(match node {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// Replaces `${var}` occurrences; unknown variables are left as written.
pub fn render(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let key = after[..end].trim();
                match vars.lookup(key) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Renders every string inside a JSON value.
pub fn render_value(value: &Value, vars: &Vars) -> Value {
    match value {
        Value::String(s) => Value::String(render(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|v| render_value(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render_value(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_strings_paths_and_unknowns() {
        let mut vars = Vars::new();
        vars.insert("name".into(), "Ada".into());
        vars.set_json("r", json!({"items": [{"n": 1}, {"n": "two"}]}));
        assert_eq!(render("hi ${name}!", &vars), "hi Ada!");
        assert_eq!(
            render("${r.items.1.n} ${r.items.0}", &vars),
            "two {\"n\":1}"
        );
        assert_eq!(
            render("${missing} ${r.nope}", &vars),
            "${missing} ${r.nope}"
        );
        assert_eq!(render("open ${ end", &vars), "open ${ end");
        assert_eq!(
            render_value(&json!({"a": ["${name}", 3]}), &vars),
            json!({"a": ["Ada", 3]})
        );
    }
}
