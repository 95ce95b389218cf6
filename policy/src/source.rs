//! Policy documents: a directory of `.cedar` files with an optional
//! `engine.json` manifest, parsed into identified Cedar policies.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{PolicyId, PolicySet};
use serde::Deserialize;

use crate::diagnostics::render;
use crate::error::PolicyError;

/// AgentCore's limit on one policy statement, in bytes.
pub const MAX_POLICY_BYTES: usize = 10_000;

/// AgentCore's quota of policies per engine (Corral's default; configurable).
pub const DEFAULT_MAX_POLICIES: usize = 1_000;

/// Whether a policy's decision counts (`ACTIVE`) or is only recorded (`LOG_ONLY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PolicyStatus {
    /// The policy takes part in decisions.
    #[default]
    Active,
    /// The policy is evaluated and its would-be effect audited, but it decides nothing.
    LogOnly,
}

/// How validation findings are treated (AgentCore's `validationMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValidationMode {
    /// Any validation error or warning rejects the policy.
    #[default]
    FailOnAnyFindings,
    /// Validation findings are reported but the policy is kept.
    IgnoreAllFindings,
}

/// Where a policy's text came from.
#[derive(Debug)]
pub struct PolicySource {
    /// File name (or label) used in diagnostics.
    pub file: String,
    /// The whole text the policy was parsed from.
    pub text: Arc<str>,
}

/// One parsed policy with its settings.
#[derive(Debug, Clone)]
pub struct PolicyDefinition {
    /// Policy id (its name), reported in decisions.
    pub id: String,
    /// The parsed Cedar policy, carrying `id` as its Cedar policy id.
    pub policy: cedar_policy::Policy,
    /// ACTIVE or LOG_ONLY.
    pub status: PolicyStatus,
    /// How validation findings are treated.
    pub validation_mode: ValidationMode,
    /// The text it came from.
    pub source: Arc<PolicySource>,
}

/// A named set of policies: the content of a policy engine.
#[derive(Debug, Clone, Default)]
pub struct PolicyBundle {
    /// Engine name.
    pub name: String,
    /// The policies, in load order.
    pub policies: Vec<PolicyDefinition>,
    /// Most policies the engine accepts.
    pub max_policies: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    validation_mode: Option<ValidationMode>,
    #[serde(default)]
    max_policies: Option<usize>,
    #[serde(default)]
    policies: Option<Vec<ManifestPolicy>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManifestPolicy {
    name: String,
    file: String,
    #[serde(default)]
    status: PolicyStatus,
    #[serde(default)]
    validation_mode: Option<ValidationMode>,
    #[serde(default)]
    description: Option<String>,
}

/// File name of the optional manifest in a policy directory.
pub const MANIFEST_FILE: &str = "engine.json";

impl PolicyBundle {
    /// An empty bundle named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            policies: Vec::new(),
            max_policies: DEFAULT_MAX_POLICIES,
        }
    }

    /// Loads a policy directory: the policies `engine.json` lists, or else
    /// every `*.cedar` file (each named after its file stem, ACTIVE).
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let io = |path: &Path, e: std::io::Error| PolicyError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => Some(serde_json::from_str::<Manifest>(&text).map_err(|e| {
                PolicyError::Manifest {
                    path: manifest_path.display().to_string(),
                    message: e.to_string(),
                }
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&manifest_path, e)),
        };
        let default_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "policies".into());
        let mut bundle = Self::new(
            manifest
                .as_ref()
                .and_then(|m| m.name.clone())
                .unwrap_or(default_name),
        );
        if let Some(max) = manifest.as_ref().and_then(|m| m.max_policies) {
            bundle.max_policies = max;
        }
        let default_mode = manifest
            .as_ref()
            .and_then(|m| m.validation_mode)
            .unwrap_or_default();
        let _ = manifest.as_ref().map(|m| &m.description);
        let entries: Vec<(String, String, PolicyStatus, ValidationMode)> =
            match manifest.and_then(|m| m.policies) {
                Some(listed) => listed
                    .into_iter()
                    .map(|p| {
                        let _ = &p.description;
                        (
                            p.name,
                            p.file,
                            p.status,
                            p.validation_mode.unwrap_or(default_mode),
                        )
                    })
                    .collect(),
                None => {
                    let mut files = Vec::new();
                    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
                        let path = entry.map_err(|e| io(dir, e))?.path();
                        if path.extension().is_some_and(|x| x == "cedar") {
                            let stem = path
                                .file_stem()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            let file = path
                                .file_name()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            files.push((stem, file, PolicyStatus::Active, default_mode));
                        }
                    }
                    files.sort_by(|a, b| a.0.cmp(&b.0));
                    files
                }
            };
        let mut diagnostics = Vec::new();
        for (name, file, status, mode) in entries {
            let path = dir.join(&file);
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            if let Err(found) = bundle.add_document(&name, &file, &text, status, mode) {
                match found {
                    PolicyError::Parse { diagnostics: d } => diagnostics.extend(d),
                    other => return Err(other),
                }
            }
        }
        if !diagnostics.is_empty() {
            return Err(PolicyError::Parse { diagnostics });
        }
        Ok(bundle)
    }

    /// Parses `text` (one or more Cedar policies) and adds it under `name`.
    /// A single policy gets the id `name`; several get their `@id("…")`
    /// annotation or `name_1`, `name_2`, ….
    pub fn add_document(
        &mut self,
        name: &str,
        file: &str,
        text: &str,
        status: PolicyStatus,
        validation_mode: ValidationMode,
    ) -> Result<(), PolicyError> {
        let source = Arc::new(PolicySource {
            file: file.to_string(),
            text: Arc::from(text),
        });
        let parsed = PolicySet::from_str(text).map_err(|errors| PolicyError::Parse {
            diagnostics: errors.iter().map(|e| render(file, text, e)).collect(),
        })?;
        if parsed.templates().next().is_some() {
            return Err(PolicyError::Parse {
                diagnostics: vec![format!(
                    "{file}: policy templates are not supported; write static policies"
                )],
            });
        }
        let policies: Vec<&cedar_policy::Policy> = parsed.policies().collect();
        if policies.is_empty() {
            return Err(PolicyError::Parse {
                diagnostics: vec![format!("{file}: contains no policy")],
            });
        }
        let single = policies.len() == 1;
        let mut added = Vec::with_capacity(policies.len());
        for (index, policy) in policies.into_iter().enumerate() {
            let id = match (single, policy.annotation("id")) {
                (true, _) => name.to_string(),
                (false, Some(id)) => id.to_string(),
                (false, None) => format!("{name}_{}", index + 1),
            };
            let size = policy.to_string().len();
            if size > MAX_POLICY_BYTES {
                return Err(PolicyError::TooLarge {
                    id,
                    size,
                    limit: MAX_POLICY_BYTES,
                });
            }
            if self
                .policies
                .iter()
                .chain(added.iter())
                .any(|p: &PolicyDefinition| p.id == id)
            {
                return Err(PolicyError::DuplicateId(id));
            }
            added.push(PolicyDefinition {
                policy: policy.new_id(PolicyId::new(&id)),
                id,
                status,
                validation_mode,
                source: source.clone(),
            });
        }
        if self.policies.len() + added.len() > self.max_policies {
            return Err(PolicyError::TooMany {
                count: self.policies.len() + added.len(),
                limit: self.max_policies,
            });
        }
        self.policies.extend(added);
        Ok(())
    }

    /// The policy with `id`.
    pub fn get(&self, id: &str) -> Option<&PolicyDefinition> {
        self.policies.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let mut bundle = PolicyBundle::new("t");
        let text = "permit(\n  principal,\n  action ==,\n  resource\n);";
        let Err(PolicyError::Parse { diagnostics }) = bundle.add_document(
            "broken",
            "broken.cedar",
            text,
            PolicyStatus::Active,
            ValidationMode::default(),
        ) else {
            panic!("expected a parse error");
        };
        assert!(
            diagnostics[0].starts_with("broken.cedar:3:"),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn multi_policy_files_use_id_annotations() {
        let mut bundle = PolicyBundle::new("t");
        let text = r#"@id("a") permit(principal, action, resource);
            forbid(principal, action, resource);"#;
        bundle
            .add_document(
                "f",
                "f.cedar",
                text,
                PolicyStatus::Active,
                ValidationMode::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = bundle.policies.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "f_2"]);
        let duplicate = bundle.add_document(
            "a",
            "a.cedar",
            "permit(principal, action, resource);",
            PolicyStatus::Active,
            ValidationMode::default(),
        );
        assert!(matches!(duplicate, Err(PolicyError::DuplicateId(id)) if id == "a"));
    }

    #[test]
    fn oversized_policies_and_too_many_policies_are_rejected() {
        let mut bundle = PolicyBundle::new("t");
        let big = format!(
            "permit(principal, action, resource) when {{ \"{}\" == \"x\" }};",
            "a".repeat(MAX_POLICY_BYTES)
        );
        assert!(matches!(
            bundle.add_document(
                "big",
                "big.cedar",
                &big,
                PolicyStatus::Active,
                ValidationMode::default()
            ),
            Err(PolicyError::TooLarge { .. })
        ));
        bundle.max_policies = 1;
        let one = "permit(principal, action, resource);";
        bundle
            .add_document(
                "one",
                "one.cedar",
                one,
                PolicyStatus::Active,
                ValidationMode::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            bundle.add_document(
                "two",
                "two.cedar",
                one,
                PolicyStatus::Active,
                ValidationMode::default()
            ),
            Err(PolicyError::TooMany { count: 2, limit: 1 })
        ));
    }
}
