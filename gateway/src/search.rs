//! The built-in tool search (`x_amz_bedrock_agentcore_search`): ranks the
//! catalogue against a natural-language query with BM25 over tool names,
//! descriptions and parameter names, so an agent with hundreds of tools can
//! find the few it needs. A lexical ranker needs no model download and is
//! deterministic; names and descriptions carry most of the signal.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::catalog::ToolEntry;

/// Name of the search tool, as AgentCore names it.
pub const SEARCH_TOOL: &str = "x_amz_bedrock_agentcore_search";

/// Results returned per query, as AgentCore.
pub const SEARCH_RESULTS: usize = 10;

/// The search tool's description.
pub const SEARCH_DESCRIPTION: &str = "A special tool that returns a trimmed down list of tools \
    given a context. Use this tool only when there are many tools available and you want to get \
    a subset that matches the provided context.";

/// The search tool's input schema.
pub fn search_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Search query to find relevant tools."}
        },
        "required": ["query"]
    })
}

/// Splits text into lower-case terms: words, `snake_case` and `camelCase`
/// parts, with a light suffix stemmer.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(stem(&word.to_lowercase()));
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
    out.retain(|t| !STOP_WORDS.contains(&t.as_str()));
    out
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

/// Ranks `entries` for `query`; returns the best [`SEARCH_RESULTS`] with a
/// positive score, best first (ties keep catalogue order).
pub fn rank<'a>(entries: &[&'a ToolEntry], query: &str) -> Vec<&'a ToolEntry> {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    let query_terms = terms(query);
    if query_terms.is_empty() || entries.is_empty() {
        return Vec::new();
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
    let mut scored: Vec<(f64, usize)> = documents
        .iter()
        .enumerate()
        .map(|(index, doc)| {
            let len = doc.len() as f64;
            let score: f64 = query_terms
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
                .sum();
            (score, index)
        })
        .filter(|(score, _)| *score > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(SEARCH_RESULTS)
        .map(|(_, i)| entries[i])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::ToolDef;

    fn entry(target: &str, name: &str, description: &str, params: &[&str]) -> ToolEntry {
        let properties: serde_json::Map<String, Value> = params
            .iter()
            .map(|p| (p.to_string(), json!({"type": "string"})))
            .collect();
        ToolEntry {
            exposed_name: format!("{target}___{name}"),
            target: target.into(),
            target_index: 0,
            tool: ToolDef {
                name: name.into(),
                description: description.into(),
                input_schema: json!({"type": "object", "properties": properties}),
                output_schema: None,
            },
        }
    }

    #[test]
    fn splits_and_stems_terms() {
        assert_eq!(
            terms("getWeatherForecasts for_cities"),
            vec!["get", "weather", "forecast", "city"]
        );
        assert_eq!(terms("HTTPServer"), vec!["httpserver"]);
    }

    #[test]
    fn ranks_relevant_tools_first() {
        let mut entries = vec![
            entry(
                "crm",
                "create_customer",
                "Creates a customer record",
                &["email", "name"],
            ),
            entry(
                "billing",
                "refund_order",
                "Refunds an order payment to the customer",
                &["order_id", "amount"],
            ),
            entry(
                "weather",
                "get_forecast",
                "Weather forecast for a city",
                &["city"],
            ),
            entry(
                "billing",
                "list_invoices",
                "Lists invoices of a customer",
                &["customer_id"],
            ),
        ];
        for i in 0..100 {
            entries.push(entry(
                "filler",
                &format!("noop_{i}"),
                "Does nothing useful at all",
                &[],
            ));
        }
        let refs: Vec<&ToolEntry> = entries.iter().collect();
        let found = rank(&refs, "I need to refund a payment for an order");
        assert_eq!(found[0].exposed_name, "billing___refund_order");
        let found = rank(&refs, "what's the weather in Paris?");
        assert_eq!(found[0].exposed_name, "weather___get_forecast");
        assert!(rank(&refs, "zebra quantum").is_empty());
        assert!(rank(&refs, "customer").len() <= SEARCH_RESULTS);
    }
}
