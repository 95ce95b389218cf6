//! Builds Corral agents into WebAssembly components and scaffolds new ones.
//!
//! [`build`] detects the language of an agent directory and runs its
//! toolchain against Corral's agent world (`corral:agent@0.2.0`):
//!
//! | language | detected by | toolchain |
//! |---|---|---|
//! | Rust | `Cargo.toml` | `cargo build --target wasm32-wasip2` |
//! | Python | `app.py` / `pyproject.toml` | `componentize-py` (PyPI) |
//! | JavaScript | `package.json` / `app.js` | `@bytecodealliance/componentize-js` (npm) |
//!
//! The Python and JavaScript SDKs and the WIT world are embedded in this
//! crate, so a build always matches the host it came with. Python and JS
//! builds are skipped when the sources (and a Python agent's `.venv`
//! packages), the SDK and the toolchain's version are unchanged (a
//! fingerprint next to the output); cargo does its own. [`scaffold`] writes
//! a working agent per language.

mod error;
mod fingerprint;
mod javascript;
mod python;
mod rust;
mod scaffold;
mod sdk;
mod toolchain;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::BuildError;
pub use scaffold::scaffold;

/// The language an agent is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Rust against the `corral-agent` crate.
    Rust,
    /// Python against the `corral_agent` package.
    Python,
    /// JavaScript (ES modules) against the `corral-agent` module.
    JavaScript,
}

impl Language {
    /// Parses `rust`, `python`/`py`, `js`/`javascript`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Some(Self::Rust),
            "python" | "py" => Some(Self::Python),
            "js" | "javascript" | "ts" | "typescript" => Some(Self::JavaScript),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::JavaScript => "javascript",
        })
    }
}

/// What to build and where.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Directory for the component; default `<agent dir>/build`.
    pub out_dir: Option<PathBuf>,
    /// Override the detected language.
    pub language: Option<Language>,
    /// Python/JS: the entry module (default `app`).
    pub entry: Option<String>,
    /// Rebuild even when the fingerprint says the output is fresh.
    pub force: bool,
    /// The `componentize-py` program [default: `CORRAL_COMPONENTIZE_PY`, else `PATH`].
    pub componentize_py: Option<PathBuf>,
    /// A directory whose `node_modules` holds ComponentizeJS and esbuild
    /// [default: the agent's own, then `CORRAL_JS_TOOLCHAIN`, then `PATH`].
    pub js_toolchain: Option<PathBuf>,
}

/// A built component.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// Path of the component (`<out_dir>/<name>.wasm`).
    pub component: PathBuf,
    /// Language it was built from.
    pub language: Language,
    /// Size in bytes.
    pub bytes: u64,
    /// Time the build took (zero when it was fresh).
    pub elapsed: Duration,
    /// Whether an up-to-date output was reused.
    pub fresh: bool,
}

/// Detects an agent directory's language.
pub fn detect(dir: &Path) -> Result<Language, BuildError> {
    if !dir.is_dir() {
        return Err(BuildError::NotADirectory(dir.to_path_buf()));
    }
    let has = |name: &str| dir.join(name).is_file();
    if has("Cargo.toml") {
        Ok(Language::Rust)
    } else if has("app.py") || has("pyproject.toml") {
        Ok(Language::Python)
    } else if has("package.json") || has("app.js") || has("app.mjs") {
        Ok(Language::JavaScript)
    } else {
        Err(BuildError::UnknownLanguage(dir.to_path_buf()))
    }
}

/// The component name for an agent directory (its file name).
fn agent_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "agent".into())
}

/// Checks a Python/JS entry module name: dotted identifiers only, so it is
/// neither a path nor code when it lands in a generated module.
fn entry_module(options: &BuildOptions) -> Result<&str, BuildError> {
    let entry = options.entry.as_deref().unwrap_or("app");
    let identifier = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if entry.split('.').all(identifier) {
        Ok(entry)
    } else {
        Err(BuildError::InvalidEntry(entry.to_string()))
    }
}

/// A scratch directory next to the output for one build (SDK, WIT, shims),
/// removed when the build ends, failed or not.
struct Staging(PathBuf);

impl Staging {
    fn new(component: &Path, language: &str) -> Result<Self, BuildError> {
        let name = component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = component.with_file_name(format!(".{name}-{language}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| BuildError::io(&dir, e))?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the toolchain `command`, which writes `partial`, and moves that to
/// `component`; on any failure the partial output is removed.
fn run_to(
    command: std::process::Command,
    tool: &str,
    partial: &Path,
    component: &Path,
) -> Result<(), BuildError> {
    let moved = toolchain::run(command, tool)
        .and_then(|_| toolchain::expect_output(partial, tool))
        .and_then(|()| {
            std::fs::rename(partial, component).map_err(|e| BuildError::io(component, e))
        });
    if moved.is_err() {
        let _ = std::fs::remove_file(partial);
    }
    moved
}

/// Builds the agent in `dir` into a component.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<BuildOutput, BuildError> {
    // Toolchains run in other directories: work with absolute paths.
    let dir = &dir.canonicalize().map_err(|e| BuildError::io(dir, e))?;
    let language = match options.language {
        Some(language) => language,
        None => detect(dir)?,
    };
    let name = agent_name(dir);
    let out_dir = options.out_dir.clone().unwrap_or_else(|| dir.join("build"));
    std::fs::create_dir_all(&out_dir).map_err(|e| BuildError::io(&out_dir, e))?;
    let out_dir = out_dir
        .canonicalize()
        .map_err(|e| BuildError::io(&out_dir, e))?;
    let component = out_dir.join(format!("{name}.wasm"));
    let started = Instant::now();
    let fresh = match language {
        Language::Rust => {
            rust::build(dir, &component)?;
            false
        }
        Language::Python => python::build(dir, &component, options)?,
        Language::JavaScript => javascript::build(dir, &component, options)?,
    };
    let bytes = std::fs::metadata(&component)
        .map_err(|e| BuildError::io(&component, e))?
        .len();
    Ok(BuildOutput {
        component,
        language,
        bytes,
        elapsed: if fresh {
            Duration::ZERO
        } else {
            started.elapsed()
        },
        fresh,
    })
}
