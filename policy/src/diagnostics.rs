//! Cedar diagnostics rendered as `file:line:col: message` lines.

use std::fmt::Write as _;

use miette::Diagnostic;

/// 1-based line and column of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

/// One diagnostic as a single line, located at its first labelled span.
pub fn render(file: &str, text: &str, diagnostic: &dyn Diagnostic) -> String {
    let mut out = String::new();
    let label = diagnostic.labels().and_then(|mut labels| labels.next());
    match label {
        Some(label) => {
            let (line, column) = line_col(text, label.offset());
            let _ = write!(out, "{file}:{line}:{column}: {diagnostic}");
            if let Some(note) = label.label() {
                let _ = write!(out, " ({note})");
            }
        }
        None => {
            let _ = write!(out, "{file}: {diagnostic}");
        }
    }
    if let Some(help) = diagnostic.help() {
        let _ = write!(out, "; help: {help}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let text = "permit(\n  principal,\n  action\n);";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 10), (2, 3));
        assert_eq!(line_col(text, text.len()), (4, 3));
        assert_eq!(line_col(text, 10_000), (4, 3));
    }
}
