//! Rust agents: `cargo build --target wasm32-wasip2 --release`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BuildError, toolchain};

/// The Rust target agents are built for.
pub(crate) const TARGET: &str = "wasm32-wasip2";

/// Builds the crate in `dir` and copies its component to `component`.
/// Cargo does its own freshness checks, so this always runs it.
pub(crate) fn build(dir: &Path, component: &Path) -> Result<(), BuildError> {
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| toolchain::on_path("cargo"))
        .ok_or(BuildError::ToolchainMissing {
            tool: "cargo",
            why: "not on PATH".into(),
            install: "curl https://sh.rustup.rs -sSf | sh (then rustup target add wasm32-wasip2)",
        })?;
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--target", TARGET])
        // A build inside another cargo invocation must not inherit its
        // host-only flags (an explicit CARGO_TARGET_DIR is honoured: the
        // artifact's path comes from cargo's messages).
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    let stdout = toolchain::run(cmd, "cargo build").map_err(|e| match e {
        BuildError::ToolFailed { output, .. } if output.contains("may not be installed") => {
            BuildError::ToolchainMissing {
                tool: "the wasm32-wasip2 Rust target",
                why: "cargo cannot find its standard library".into(),
                install: "rustup target add wasm32-wasip2",
            }
        }
        other => other,
    })?;
    let built = component_artifact(&stdout).ok_or_else(|| BuildError::NoOutput {
        tool: "cargo build".into(),
        path: dir.join("target").join(TARGET).join("release"),
    })?;
    std::fs::copy(&built, component).map_err(|e| BuildError::io(component, e))?;
    Ok(())
}

/// The `.wasm` of the last cdylib artifact in cargo's JSON messages.
fn component_artifact(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .filter_map(|m| {
            m["filenames"].as_array().and_then(|files| {
                files
                    .iter()
                    .filter_map(|f| f.as_str())
                    .find(|f| f.ends_with(".wasm"))
                    .map(PathBuf::from)
            })
        })
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cdylib_wasm_in_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libserde.rlib"]}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["cdylib"]},"filenames":["/t/wasm32-wasip2/release/my_agent.wasm"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            component_artifact(messages),
            Some(PathBuf::from("/t/wasm32-wasip2/release/my_agent.wasm"))
        );
        assert_eq!(component_artifact("not json"), None);
    }
}
