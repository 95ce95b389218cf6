//! Exposed tool names: `<target>___<tool>`, at most 64 characters.

use sha2::{Digest, Sha256};

/// Separator between target and tool (three underscores, as AgentCore).
pub const SEPARATOR: &str = "___";

/// Longest exposed name; many model APIs reject longer tool names.
pub const MAX_NAME_LEN: usize = 64;

/// Replaces characters outside `[A-Za-z0-9_-]` with `_`.
pub fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".to_string()
    } else {
        cleaned
    }
}

/// The name a target's tool is exposed under. Names longer than
/// [`MAX_NAME_LEN`] keep a readable prefix and end in a hash of the full name,
/// so distinct tools stay distinct and the mapping back is a table lookup.
pub fn exposed_name(target: &str, tool: &str) -> String {
    let full = format!("{}{SEPARATOR}{}", sanitize(target), sanitize(tool));
    if full.len() <= MAX_NAME_LEN {
        return full;
    }
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    let prefix_len = MAX_NAME_LEN - 9;
    format!("{}_{}", &full[..prefix_len], &digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_target_separator_tool() {
        assert_eq!(
            exposed_name("weather", "get_forecast"),
            "weather___get_forecast"
        );
        assert_eq!(exposed_name("my api", "list/pets"), "my_api___list_pets");
    }

    #[test]
    fn long_names_are_shortened_uniquely() {
        let a = exposed_name(
            "a-very-long-target-name-for-testing",
            "an_operation_with_a_long_name_number_one",
        );
        let b = exposed_name(
            "a-very-long-target-name-for-testing",
            "an_operation_with_a_long_name_number_two",
        );
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert_eq!(b.len(), MAX_NAME_LEN);
        assert_ne!(a, b);
        assert!(a.starts_with("a-very-long-target-name-for-testing___an_operation"));
        assert_eq!(
            a,
            exposed_name(
                "a-very-long-target-name-for-testing",
                "an_operation_with_a_long_name_number_one"
            )
        );
    }
}
