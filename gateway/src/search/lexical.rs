//! The lexical half of tool search: BM25 over tool names, descriptions and
//! parameter names. Needs no model and is deterministic; it finds tools
//! whose words the query shares.

use std::collections::HashMap;

use serde_json::Value;

use crate::catalog::ToolEntry;

/// Splits text into lower-case words: words, `snake_case` and `camelCase`
/// parts ("getOrder-status" → get, order, status).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(word.to_lowercase());
            word.clear();
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && previous_lower {
                flush(&mut word, &mut out);
            }
            previous_lower = c.is_lowercase() || c.is_numeric();
            word.push(c);
        } else {
            previous_lower = false;
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The terms BM25 matches: [`words`], stemmed lightly, stop words dropped.
pub fn terms(text: &str) -> Vec<String> {
    words(text)
        .iter()
        .map(|w| stem(w))
        .filter(|t| !STOP_WORDS.contains(&t.as_str()))
        .collect()
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "of", "to", "for", "and", "or", "in", "on", "is", "it", "by", "with", "me",
    "my", "i", "can", "do", "what", "which", "how", "from", "this", "that", "be", "are", "tool",
    "tools",
];

fn stem(word: &str) -> String {
    for suffix in ["ings", "ing", "ies", "es", "ed", "s"] {
        if word.len() >= suffix.len() + 3
            && let Some(root) = word.strip_suffix(suffix)
        {
            return if suffix == "ies" {
                format!("{root}y")
            } else {
                root.to_string()
            };
        }
    }
    word.to_string()
}

/// Text of a tool that the index sees; the name counts twice.
fn document(entry: &ToolEntry) -> Vec<String> {
    let mut text = format!("{} {} {} ", entry.tool.name, entry.tool.name, entry.target);
    text.push_str(&entry.tool.description);
    if let Some(properties) = entry
        .tool
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
    {
        for (name, schema) in properties {
            text.push(' ');
            text.push_str(name);
            if let Some(description) = schema.get("description").and_then(Value::as_str) {
                text.push(' ');
                text.push_str(description);
            }
        }
    }
    terms(&text)
}

/// BM25 score of every entry for `query`, in `entries` order (0 where no
/// query term occurs).
pub fn scores(entries: &[&ToolEntry], query: &str) -> Vec<f64> {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    let query_terms = terms(query);
    if query_terms.is_empty() || entries.is_empty() {
        return vec![0.0; entries.len()];
    }
    let documents: Vec<Vec<String>> = entries.iter().map(|e| document(e)).collect();
    let average_len = documents.iter().map(Vec::len).sum::<usize>() as f64 / documents.len() as f64;
    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    for doc in &documents {
        let mut seen: Vec<&str> = doc.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for term in seen {
            *document_frequency.entry(term).or_default() += 1;
        }
    }
    let n = documents.len() as f64;
    documents
        .iter()
        .map(|doc| {
            let len = doc.len() as f64;
            query_terms
                .iter()
                .map(|term| {
                    let tf = doc.iter().filter(|t| *t == term).count() as f64;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let df = *document_frequency.get(term.as_str()).unwrap_or(&0) as f64;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / average_len.max(1.0)))
                })
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tests::entry;

    #[test]
    fn splits_and_stems_terms() {
        assert_eq!(
            terms("getWeatherForecasts for_cities"),
            vec!["get", "weather", "forecast", "city"]
        );
        assert_eq!(terms("HTTPServer"), vec!["httpserver"]);
    }

    #[test]
    fn scores_shared_words_and_nothing_else() {
        let entries = [
            entry(
                "billing",
                "refund_order",
                "Refunds an order payment",
                &["order_id"],
            ),
            entry(
                "weather",
                "get_forecast",
                "Weather forecast for a city",
                &["city"],
            ),
        ];
        let refs: Vec<&ToolEntry> = entries.iter().collect();
        let found = scores(&refs, "refund a payment");
        assert!(found[0] > 0.0 && found[1] == 0.0, "{found:?}");
        assert_eq!(scores(&refs, "the of"), vec![0.0, 0.0]);
    }
}
