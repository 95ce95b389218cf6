//! The no-code harness: a prebuilt agent component, shipped inside Corral,
//! that runs the tool loop as a file says (`harness.toml`):
//!
//! ```toml
//! system_prompt = "You are Acme's support assistant. Use the tools, then answer briefly."
//! model_id = "us.anthropic.claude-sonnet-4-20250514-v1:0"  # optional: the host's model
//! max_steps = 8
//! tools = ["calculator___evaluate", "orders___getOrder"]  # optional: every session tool
//! temperature = 0.2
//!
//! [memory]
//! enabled = true                 # record every turn
//! namespace = "/facts/{actorId}" # retrieve long-term records into the prompt
//! top_k = 3
//!
//! [output]
//! format = "json"                # or "text"
//! ```
//!
//! The model *provider* is the host's (`--model` on `corral run`/`serve`):
//! a deployed file must not make the server send its credentials elsewhere.

use std::path::{Path, PathBuf};

pub use corral_harness_config::{
    ENV_VAR, HarnessConfig, HarnessConfigError, MemorySettings, OutputFormat, OutputSettings,
};

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The harness agent component.
pub const COMPONENT: &[u8] = CORRAL_HARNESS_AGENT;

/// Why a harness file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HarnessFileError {
    /// The file cannot be read.
    #[error("cannot read harness file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a harness (unknown or mistyped field).
    #[error("invalid harness file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the field and line.
        #[source]
        source: toml::de::Error,
    },
    /// A field is out of range.
    #[error("invalid harness file {path}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field and what is wrong with it.
        #[source]
        source: HarnessConfigError,
    },
}

/// Reads and validates a harness file.
pub fn load(path: &Path) -> Result<HarnessConfig, HarnessFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| HarnessFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ParseError::Toml(source) => HarnessFileError::Parse {
            path: path.to_path_buf(),
            source,
        },
        ParseError::Invalid(source) => HarnessFileError::Invalid {
            path: path.to_path_buf(),
            source,
        },
    })
}

enum ParseError {
    Toml(toml::de::Error),
    Invalid(HarnessConfigError),
}

fn parse(text: &str) -> Result<HarnessConfig, ParseError> {
    let config: HarnessConfig = toml::from_str(text).map_err(ParseError::Toml)?;
    config.validate().map_err(ParseError::Invalid)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<HarnessConfig, HarnessFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("harness.toml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    /// The error and its cause, as `corral` prints them.
    fn explained(text: &str) -> String {
        let err = load_text(text).unwrap_err();
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        format!("{err}: {}", cause.unwrap_or_default())
    }

    #[test]
    fn the_documented_example_loads() {
        let doc = include_str!("lib.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let config = load_text(&example).unwrap();
        assert_eq!(config.max_steps, 8);
        assert_eq!(config.memory.namespace.as_deref(), Some("/facts/{actorId}"));
        assert_eq!(config.output.format, OutputFormat::Json);
    }

    #[test]
    fn errors_name_the_field() {
        let err = load_text("system_prompt = \"x\"\nmax_step = 3\n").unwrap_err();
        assert!(matches!(err, HarnessFileError::Parse { .. }));
        let err = explained("system_prompt = \"x\"\nmax_step = 3\n");
        assert!(err.contains("unknown field `max_step`"), "{err}");
        let err = explained("system_prompt = \"x\"\nmax_steps = \"many\"\n");
        assert!(err.contains("max_steps"), "{err}");
        let err = explained("system_prompt = \"x\"\n[memory]\ntop_k = 0\n");
        assert!(
            err.contains("memory.top_k: must be between 1 and 50"),
            "{err}"
        );
        let err = explained("max_steps = 3\n");
        assert!(err.contains("system_prompt"), "{err}");
        let err = explained("system_prompt = \"x\"\n[output]\nformat = \"xml\"\n");
        assert!(err.contains("format"), "{err}");
    }
}
