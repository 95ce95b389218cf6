//! `corral new`: a working agent per language, ready for `corral build`.

use std::path::{Path, PathBuf};

use crate::{BuildError, Language};

/// Where the Rust SDK (`corral-agent`) lives: `CORRAL_SDK_RUST`, else the
/// checkout this binary was built from. New Rust agents depend on it by path
/// because the crate is not published to crates.io.
fn rust_sdk() -> PathBuf {
    std::env::var_os("CORRAL_SDK_RUST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"))
}

/// Writes a new agent called `name` in `<parent>/<name>`; returns its directory.
pub fn scaffold(language: Language, name: &str, parent: &Path) -> Result<PathBuf, BuildError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(BuildError::InvalidName(name.to_string()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(BuildError::Exists(dir));
    }
    let files: Vec<(&str, String)> = match language {
        Language::Python => vec![
            ("app.py", PYTHON_APP.replace("{name}", name)),
            ("pyproject.toml", PYPROJECT.replace("{name}", name)),
            (".gitignore", "build/\n__pycache__/\n".into()),
        ],
        Language::JavaScript => vec![
            ("app.js", JS_APP.replace("{name}", name)),
            ("package.json", PACKAGE_JSON.replace("{name}", name)),
            (".gitignore", "build/\nnode_modules/\n".into()),
        ],
        Language::Rust => {
            let sdk = rust_sdk();
            let sdk = sdk.canonicalize().map_err(|e| BuildError::io(&sdk, e))?;
            vec![
                (
                    "Cargo.toml",
                    CARGO_TOML
                        .replace("{name}", name)
                        .replace("{sdk}", &sdk.display().to_string().replace('\\', "/")),
                ),
                ("src/lib.rs", RUST_LIB.replace("{name}", name)),
                (".gitignore", "build/\ntarget/\n".into()),
            ]
        }
    };
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| BuildError::io(&path, e))?;
    }
    Ok(dir)
}

const PYTHON_APP: &str = r#""""{name}: a Corral agent.

Build it with `corral build {name}`, then try it with
`corral run {name}/build/{name}.wasm --builtin-tools -i '{"prompt": "What is 6 * 7?"}'`.
"""

from corral_agent import Agent, Context, Message, ToolLoop, prompt_of

agent = Agent()

# The conversation so far; module state lives as long as the session.
history: list[Message] = []


@agent.entrypoint
def invoke(payload: dict, context: Context) -> dict:
    outcome = ToolLoop("You are a helpful assistant.", max_steps=8).ask(
        history, prompt_of(payload)
    )
    return {"response": outcome.text, "steps": outcome.steps}
"#;

const PYPROJECT: &str = r#"[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"
# Pure-Python dependencies installed into .venv are bundled by `corral build`.
dependencies = []
"#;

const JS_APP: &str = r#"// {name}: a Corral agent.
//
// Build it with `corral build {name}`, then try it with
// `corral run {name}/build/{name}.wasm --builtin-tools -i '{"prompt": "What is 6 * 7?"}'`.

import { Agent, ToolLoop, promptOf } from "corral-agent";

const agent = new Agent();

// The conversation so far; module state lives as long as the session.
const history = [];

agent.entrypoint((payload, context) => {
  const outcome = new ToolLoop("You are a helpful assistant.", { maxSteps: 8 }).ask(
    history,
    promptOf(payload),
  );
  return { response: outcome.text, steps: outcome.steps };
});

export const handler = agent.handler();
"#;

const PACKAGE_JSON: &str = r#"{
  "name": "{name}",
  "version": "0.1.0",
  "type": "module",
  "main": "app.js",
  "private": true
}
"#;

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
corral-agent = { path = "{sdk}" }
serde_json = "1"

# Its own workspace, even when created inside another one.
[workspace]

[profile.release]
opt-level = "s"
"#;

const RUST_LIB: &str = r#"//! {name}: a Corral agent.
//!
//! Build it with `corral build {name}`, then try it with
//! `corral run {name}/build/{name}.wasm --builtin-tools -i '{"prompt": "What is 6 * 7?"}'`.

use std::sync::Mutex;

use corral_agent::model::Message;
use corral_agent::{Agent, AgentError, Invocation, Response, ToolLoop, export_agent};
use serde_json::json;

/// The conversation so far; it lives as long as the session.
static HISTORY: Mutex<Vec<Message>> = Mutex::new(Vec::new());

struct App;

impl Agent for App {
    fn invoke(invocation: Invocation) -> Result<Response, AgentError> {
        let prompt = invocation.prompt()?;
        let mut history = HISTORY.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = ToolLoop::new("You are a helpful assistant.")
            .max_steps(8)
            .ask(&mut history, &prompt)?;
        Ok(Response::json(&json!({"response": outcome.text, "steps": outcome.steps})))
    }
}

export_agent!(App);
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_each_language_and_refuses_to_overwrite() {
        let parent = tempfile::tempdir().unwrap();
        for (language, file) in [
            (Language::Python, "app.py"),
            (Language::JavaScript, "app.js"),
            (Language::Rust, "src/lib.rs"),
        ] {
            let name = format!("my-{language}");
            let dir = scaffold(language, &name, parent.path()).unwrap();
            assert!(dir.join(file).is_file());
            assert_eq!(crate::detect(&dir).unwrap(), language);
            let err = scaffold(language, &name, parent.path()).unwrap_err();
            assert!(matches!(err, BuildError::Exists(_)), "{err}");
        }
        let err = scaffold(Language::Python, "../escape", parent.path()).unwrap_err();
        assert!(matches!(err, BuildError::InvalidName(_)), "{err}");
    }
}
