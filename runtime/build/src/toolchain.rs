//! Finding and running the language toolchains.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildError;

/// `program` from the environment variable `env` if set, else from `PATH`.
pub(crate) fn find(
    program: &'static str,
    env: &str,
    install: &'static str,
) -> Result<PathBuf, BuildError> {
    find_with(program, env, std::env::var_os(env), install)
}

/// [`find`] with the environment variable's value given.
fn find_with(
    program: &'static str,
    env: &str,
    configured: Option<std::ffi::OsString>,
    install: &'static str,
) -> Result<PathBuf, BuildError> {
    if let Some(path) = configured {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(BuildError::ToolchainMissing {
                tool: program,
                why: format!("{env}={} is not a file", path.display()),
                install,
            })
        };
    }
    on_path(program).ok_or_else(|| BuildError::ToolchainMissing {
        tool: program,
        why: format!("not on PATH and {env} is unset"),
        install,
    })
}

/// The first `program` on `PATH`.
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Runs `command`; a non-zero exit becomes [`BuildError::ToolFailed`] with
/// the tail of its output. Returns stdout.
pub(crate) fn run(mut command: Command, tool: &str) -> Result<String, BuildError> {
    let output = command.output().map_err(|source| BuildError::Io {
        path: PathBuf::from(tool),
        source,
    })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        return Err(BuildError::ToolFailed {
            tool: tool.to_string(),
            status: output.status.to_string(),
            output: tail(&text, 4_000),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The last `max` bytes of `text`, on a char boundary.
fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_string()
}

/// Checks that a tool wrote `path`.
pub(crate) fn expect_output(path: &Path, tool: &str) -> Result<(), BuildError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(BuildError::NoOutput {
            tool: tool.to_string(),
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_override_names_the_variable_and_the_install_command() {
        let err = find_with(
            "componentize-py",
            "CORRAL_COMPONENTIZE_PY",
            Some("/nonexistent/componentize-py".into()),
            "pip install componentize-py",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pip install componentize-py"), "{err}");
        assert!(
            err.contains("CORRAL_COMPONENTIZE_PY=/nonexistent/componentize-py"),
            "{err}"
        );
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }
}
