//! The merged tool catalogue: exposed names, lookup, pagination.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{CallError, GatewayError};
use crate::naming::exposed_name;
use crate::tool::ToolDef;

/// One tool in the catalogue.
#[derive(Debug, Clone)]
pub struct ToolEntry {
    /// Name clients call it by.
    pub exposed_name: String,
    /// The target serving it.
    pub target: String,
    /// Index of the target in the gateway.
    pub target_index: usize,
    /// The tool as the target declares it (original name).
    pub tool: ToolDef,
}

/// An immutable snapshot of all tools.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: Vec<ToolEntry>,
    by_name: HashMap<String, usize>,
    version: u64,
    unavailable: Vec<String>,
}

impl Catalog {
    /// Builds a catalogue from each target's tools, in target order.
    pub fn build(targets: &[(String, Vec<ToolDef>)], version: u64) -> Result<Self, GatewayError> {
        let mut catalog = Catalog {
            version,
            ..Catalog::default()
        };
        for (index, (target, tools)) in targets.iter().enumerate() {
            for tool in tools {
                let name = exposed_name(target, &tool.name);
                if let Some(&existing) = catalog.by_name.get(&name) {
                    return Err(GatewayError::DuplicateToolName {
                        name,
                        first: catalog.entries[existing].target.clone(),
                        second: target.clone(),
                    });
                }
                catalog.by_name.insert(name.clone(), catalog.entries.len());
                catalog.entries.push(ToolEntry {
                    exposed_name: name,
                    target: target.clone(),
                    target_index: index,
                    tool: tool.clone(),
                });
            }
        }
        Ok(catalog)
    }

    /// Marks `targets` as not reached yet (their tools are missing).
    pub fn with_unavailable(mut self, targets: Vec<String>) -> Self {
        self.unavailable = targets;
        self
    }

    /// Targets whose tools are missing because their server has not been
    /// reached yet.
    pub fn unavailable(&self) -> &[String] {
        &self.unavailable
    }

    /// All entries, in order.
    pub fn entries(&self) -> &[ToolEntry] {
        &self.entries
    }

    /// The entry exposed as `name`.
    pub fn get(&self, name: &str) -> Option<&ToolEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Snapshot version; grows whenever the catalogue is rebuilt.
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// Encodes a listing offset as an opaque cursor.
pub fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("corral:{offset}"))
}

/// Decodes a cursor from [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<usize, CallError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CallError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| CallError::InvalidCursor)?;
    text.strip_prefix("corral:")
        .and_then(|n| n.parse().ok())
        .ok_or(CallError::InvalidCursor)
}

/// One page of a listing.
pub struct Page<T> {
    /// Items on this page.
    pub items: Vec<T>,
    /// Cursor of the next page, if any.
    pub next_cursor: Option<String>,
}

/// Cuts `items` into the page starting at `cursor`.
pub fn paginate<T: Clone>(
    items: &[T],
    cursor: Option<&str>,
    page_size: usize,
) -> Result<Page<T>, CallError> {
    let start = match cursor {
        Some(cursor) => decode_cursor(cursor)?,
        None => 0,
    };
    if start > items.len() {
        return Err(CallError::InvalidCursor);
    }
    let end = (start + page_size.max(1)).min(items.len());
    Ok(Page {
        items: items[start..end].to_vec(),
        next_cursor: (end < items.len()).then(|| encode_cursor(end)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> ToolDef {
        ToolDef {
            name: name.into(),
            description: String::new(),
            input_schema: json!({"type": "object"}),
            output_schema: None,
        }
    }

    #[test]
    fn builds_and_rejects_duplicates() {
        let catalog = Catalog::build(
            &[
                ("a".into(), vec![tool("x"), tool("y")]),
                ("b".into(), vec![tool("x")]),
            ],
            1,
        )
        .unwrap();
        assert_eq!(catalog.len(), 3);
        assert_eq!(catalog.get("b___x").unwrap().target_index, 1);
        assert_eq!(catalog.get("a___y").unwrap().tool.name, "y");
        let err = Catalog::build(&[("a".into(), vec![tool("x"), tool("x")])], 1).unwrap_err();
        assert!(matches!(err, GatewayError::DuplicateToolName { .. }));
    }

    #[test]
    fn paginates_with_opaque_cursors() {
        let items: Vec<u32> = (0..7).collect();
        let first = paginate(&items, None, 3).unwrap();
        assert_eq!(first.items, vec![0, 1, 2]);
        let second = paginate(&items, first.next_cursor.as_deref(), 3).unwrap();
        assert_eq!(second.items, vec![3, 4, 5]);
        let third = paginate(&items, second.next_cursor.as_deref(), 3).unwrap();
        assert_eq!(third.items, vec![6]);
        assert!(third.next_cursor.is_none());
        assert!(matches!(
            paginate(&items, Some("garbage!"), 3),
            Err(CallError::InvalidCursor)
        ));
        assert!(matches!(
            paginate(&items, Some(&encode_cursor(99)), 3),
            Err(CallError::InvalidCursor)
        ));
    }
}
