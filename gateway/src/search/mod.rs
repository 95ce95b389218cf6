//! The built-in tool search (`x_amz_bedrock_agentcore_search`): ranks the
//! catalogue against a natural-language query so an agent with hundreds of
//! tools can find the few it needs.
//!
//! With an embedder (the local all-MiniLM-L6-v2 model by default), the score
//! is hybrid: [`SEMANTIC_WEIGHT`] of the min-max-normalised cosine between
//! query and tool, the rest of the normalised BM25 score, so "buy five
//! widgets" finds `createOrder` and exact words still count. Without one, or
//! when it fails, search is lexical (BM25) alone.

pub(crate) mod lexical;

use std::collections::HashMap;
use std::sync::Arc;

use corral_memory::embed::{EmbedError, Embedder};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, ToolEntry};

/// Name of the search tool, as AgentCore names it.
pub const SEARCH_TOOL: &str = "x_amz_bedrock_agentcore_search";

/// Results returned per query, as AgentCore.
pub const SEARCH_RESULTS: usize = 10;

/// Weight of the semantic score in the hybrid; the lexical score has the
/// rest. On the labelled set in `gateway/tests/fixtures/search/` recall@5 is
/// 0.929 at 0.9 and at 1.0, 0.905 at 0.7 and 0.833 at 0.5 (BM25 alone:
/// 0.357); the small lexical share keeps words the model has no meaning
/// for (operation ids, product codes) in the ranking.
pub const SEMANTIC_WEIGHT: f64 = 0.9;

/// Characters of a query that are searched; the rest is ignored (the
/// model reads at most 256 tokens anyway).
pub const MAX_QUERY_CHARS: usize = 2_000;

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

type TextKey = [u8; 32];

/// Ranks tools for queries; caches each tool's vector by the text embedded.
pub struct ToolSearch {
    embedder: Option<Arc<dyn Embedder>>,
    vectors: Mutex<HashMap<TextKey, Arc<[f32]>>>,
    /// Held while tools are embedded; holds the newest catalogue version
    /// warmed, so an older warm-up finishing late changes nothing.
    embedding: tokio::sync::Mutex<u64>,
    /// Queries embedded at once (one per core): a local model is CPU-bound.
    queries: tokio::sync::Semaphore,
}

impl std::fmt::Debug for ToolSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSearch")
            .field("embedder", &self.embedder.as_ref().map(|e| e.fingerprint()))
            .field("cached_vectors", &self.vectors.lock().len())
            .finish()
    }
}

impl ToolSearch {
    /// Hybrid search with `embedder`; lexical alone without one.
    pub fn new(embedder: Option<Arc<dyn Embedder>>) -> Self {
        ToolSearch {
            embedder,
            vectors: Mutex::new(HashMap::new()),
            embedding: tokio::sync::Mutex::new(0),
            queries: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
        }
    }

    /// Whether a semantic embedder takes part.
    pub fn is_semantic(&self) -> bool {
        self.embedder.is_some()
    }

    /// Embeds the tools of catalogue `version` not embedded yet (before the
    /// first query needs them) and forgets tools no longer in it; does
    /// nothing if a newer version was warmed already.
    pub async fn warm(&self, entries: &[&ToolEntry], version: u64) -> Result<(), EmbedError> {
        let Some(embedder) = &self.embedder else {
            return Ok(());
        };
        let mut warmed = self.embedding.lock().await;
        if version < *warmed {
            return Ok(());
        }
        self.embed_missing(embedder.as_ref(), entries).await?;
        let keep: std::collections::HashSet<TextKey> =
            entries.iter().map(|e| key(&embedding_text(e))).collect();
        self.vectors.lock().retain(|k, _| keep.contains(k));
        *warmed = version;
        Ok(())
    }

    /// [`ToolSearch::warm`] for every tool of `catalog`.
    pub async fn warm_catalog(&self, catalog: &Catalog) -> Result<(), EmbedError> {
        let entries: Vec<&ToolEntry> = catalog.entries().iter().collect();
        self.warm(&entries, catalog.version()).await
    }

    /// The best [`SEARCH_RESULTS`] of `entries` for `query`, best first
    /// (ties keep catalogue order). The semantic part gets `deadline`;
    /// past it, or while the catalogue is still being embedded, the
    /// ranking is by words alone.
    pub async fn rank<'a>(
        &self,
        entries: &[&'a ToolEntry],
        query: &str,
        deadline: std::time::Duration,
    ) -> Vec<&'a ToolEntry> {
        let query = truncated(query, MAX_QUERY_CHARS);
        if entries.is_empty() || query.trim().is_empty() {
            return Vec::new();
        }
        let lexical = lexical::scores(entries, query);
        let semantic = match &self.embedder {
            None => None,
            Some(embedder) => {
                let scores = self.semantic_scores(embedder.as_ref(), entries, query);
                match tokio::time::timeout(deadline, scores).await {
                    Ok(Ok(scores)) => Some(scores),
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "semantic tool search failed; ranking by words alone");
                        None
                    }
                    Err(_) => {
                        tracing::warn!(
                            ?deadline,
                            "semantic tool search timed out; ranking by words alone"
                        );
                        None
                    }
                }
            }
        };
        let by_meaning = semantic.is_some();
        let scores: Vec<f64> = match semantic {
            Some(semantic) => {
                let semantic = min_max(&semantic);
                let lexical = min_max(&lexical);
                semantic
                    .iter()
                    .zip(&lexical)
                    .map(|(s, l)| SEMANTIC_WEIGHT * s + (1.0 - SEMANTIC_WEIGHT) * l)
                    .collect()
            }
            // Words alone: a tool sharing no word with the query is no match.
            None => lexical,
        };
        let mut ranked: Vec<(f64, usize)> = scores
            .into_iter()
            .enumerate()
            .filter(|(_, score)| by_meaning || *score > 0.0)
            .map(|(index, score)| (score, index))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked
            .into_iter()
            .take(SEARCH_RESULTS)
            .map(|(_, index)| entries[index])
            .collect()
    }

    /// Cosine similarity of each entry to `query`.
    async fn semantic_scores(
        &self,
        embedder: &dyn Embedder,
        entries: &[&ToolEntry],
        query: &str,
    ) -> Result<Vec<f64>, EmbedError> {
        let tools = self.tool_vectors(embedder, entries).await?;
        let query = {
            let _permit = self
                .queries
                .acquire()
                .await
                .map_err(|_| EmbedError::Unavailable("tool search is shutting down".into()))?;
            embedder
                .embed(&[query.to_string()])
                .await?
                .pop()
                .ok_or_else(|| EmbedError::BadResponse("no vector for the query".into()))?
        };
        Ok(tools.iter().map(|tool| dot(tool, &query) as f64).collect())
    }

    /// Each entry's vector. Tools not embedded yet are embedded here only
    /// when no warm-up is running; otherwise this fails at once (and the
    /// search ranks by words) rather than waiting for the whole catalogue.
    async fn tool_vectors(
        &self,
        embedder: &dyn Embedder,
        entries: &[&ToolEntry],
    ) -> Result<Vec<Arc<[f32]>>, EmbedError> {
        let keys: Vec<TextKey> = entries.iter().map(|e| key(&embedding_text(e))).collect();
        if let Some(vectors) = self.cached(&keys) {
            return Ok(vectors);
        }
        let Ok(_warming) = self.embedding.try_lock() else {
            return Err(EmbedError::Unavailable(
                "the tool catalogue is still being embedded".into(),
            ));
        };
        self.embed_missing(embedder, entries).await?;
        self.cached(&keys)
            .ok_or_else(|| EmbedError::BadResponse("a tool vector went missing".into()))
    }

    /// The vectors of `keys`, if all are cached.
    fn cached(&self, keys: &[TextKey]) -> Option<Vec<Arc<[f32]>>> {
        let cache = self.vectors.lock();
        keys.iter().map(|k| cache.get(k).cloned()).collect()
    }

    /// Embeds the entries without a cached vector (call with `embedding` held).
    async fn embed_missing(
        &self,
        embedder: &dyn Embedder,
        entries: &[&ToolEntry],
    ) -> Result<(), EmbedError> {
        let missing: Vec<(TextKey, String)> = {
            let cache = self.vectors.lock();
            entries
                .iter()
                .map(|e| embedding_text(e))
                .map(|text| (key(&text), text))
                .filter(|(k, _)| !cache.contains_key(k))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = missing.iter().map(|(_, text)| text.clone()).collect();
        let vectors = embedder.embed(&texts).await?;
        if vectors.len() != texts.len() {
            return Err(EmbedError::BadResponse(format!(
                "{} vectors for {} tools",
                vectors.len(),
                texts.len()
            )));
        }
        let mut cache = self.vectors.lock();
        for ((k, _), vector) in missing.into_iter().zip(vectors) {
            cache.insert(k, Arc::from(vector));
        }
        Ok(())
    }
}

/// What is embedded for a tool: its name as words, then its description
/// ("createOrder" → "create order: Create a new purchase order…").
pub fn embedding_text(entry: &ToolEntry) -> String {
    format!(
        "{}: {}",
        lexical::words(&entry.tool.name).join(" "),
        entry.tool.description
    )
}

fn key(text: &str) -> TextKey {
    Sha256::digest(text.as_bytes()).into()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales scores to 0..=1 (all 0 when they are all equal).
fn min_max(scores: &[f64]) -> Vec<f64> {
    let (lo, hi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(*s), hi.max(*s))
        });
    if hi - lo <= f64::EPSILON {
        return vec![0.0; scores.len()];
    }
    scores.iter().map(|s| (s - lo) / (hi - lo)).collect()
}

fn truncated(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tool::ToolDef;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(30);

    pub(crate) fn entry(target: &str, name: &str, description: &str, params: &[&str]) -> ToolEntry {
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

    fn catalogue() -> Vec<ToolEntry> {
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
        entries
    }

    #[tokio::test]
    async fn words_alone_rank_relevant_tools_first_and_miss_nothing_shared() {
        let entries = catalogue();
        let refs: Vec<&ToolEntry> = entries.iter().collect();
        let search = ToolSearch::new(None);
        let found = search
            .rank(&refs, "I need to refund a payment for an order", LONG)
            .await;
        assert_eq!(found[0].exposed_name, "billing___refund_order");
        let found = search
            .rank(&refs, "what's the weather in Paris?", LONG)
            .await;
        assert_eq!(found[0].exposed_name, "weather___get_forecast");
        assert!(search.rank(&refs, "zebra quantum", LONG).await.is_empty());
        assert!(search.rank(&refs, "customer", LONG).await.len() <= SEARCH_RESULTS);
    }

    /// Maps a few words to fixed axes: "money" words to one, "sky" words to
    /// another; counts the texts it embeds.
    struct AxisEmbedder {
        embedded: AtomicUsize,
        fail: bool,
        delay: Duration,
    }

    impl AxisEmbedder {
        fn new() -> Self {
            AxisEmbedder {
                embedded: AtomicUsize::new(0),
                fail: false,
                delay: Duration::ZERO,
            }
        }
    }

    #[async_trait]
    impl Embedder for AxisEmbedder {
        fn fingerprint(&self) -> String {
            "axis".into()
        }
        fn dimensions(&self) -> usize {
            3
        }
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
            tokio::time::sleep(self.delay).await;
            if self.fail {
                return Err(EmbedError::Unavailable("down".into()));
            }
            self.embedded.fetch_add(texts.len(), Ordering::SeqCst);
            Ok(texts
                .iter()
                .map(|t| {
                    let t = t.to_lowercase();
                    let money = ["refund", "money back", "payment"]
                        .iter()
                        .any(|w| t.contains(w));
                    let sky = ["weather", "umbrella", "forecast"]
                        .iter()
                        .any(|w| t.contains(w));
                    vec![money as u8 as f32, sky as u8 as f32, 0.1]
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn meaning_ranks_tools_that_share_no_word_and_vectors_are_cached() {
        let entries = catalogue();
        let refs: Vec<&ToolEntry> = entries.iter().collect();
        let embedder = Arc::new(AxisEmbedder::new());
        let search = ToolSearch::new(Some(embedder.clone()));
        search.warm(&refs, 1).await.unwrap();
        assert_eq!(embedder.embedded.load(Ordering::SeqCst), refs.len());
        let found = search.rank(&refs, "do I need an umbrella", LONG).await;
        assert_eq!(found[0].exposed_name, "weather___get_forecast");
        assert_eq!(found.len(), SEARCH_RESULTS);
        let found = search.rank(&refs, "I want my money back", LONG).await;
        assert_eq!(found[0].exposed_name, "billing___refund_order");
        // Two queries embedded, no tool again.
        assert_eq!(embedder.embedded.load(Ordering::SeqCst), refs.len() + 2);
        // A smaller catalogue drops the vectors of the tools that left; an
        // older catalogue's warm-up finishing late changes nothing.
        search.warm(&refs[..4], 2).await.unwrap();
        assert_eq!(search.vectors.lock().len(), 4);
        search.warm(&refs, 1).await.unwrap();
        assert_eq!(search.vectors.lock().len(), 4);
    }

    #[tokio::test]
    async fn a_failing_or_slow_embedder_falls_back_to_words() {
        let entries = catalogue();
        let refs: Vec<&ToolEntry> = entries.iter().collect();
        let failing = ToolSearch::new(Some(Arc::new(AxisEmbedder {
            fail: true,
            ..AxisEmbedder::new()
        })));
        let found = failing.rank(&refs, "refund a payment", LONG).await;
        assert_eq!(found[0].exposed_name, "billing___refund_order");
        assert_eq!(found.len(), 1, "words alone: only tools sharing one");
        let slow = ToolSearch::new(Some(Arc::new(AxisEmbedder {
            delay: Duration::from_secs(60),
            ..AxisEmbedder::new()
        })));
        let started = std::time::Instant::now();
        let found = slow
            .rank(&refs, "refund a payment", Duration::from_millis(50))
            .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(found[0].exposed_name, "billing___refund_order");
    }

    #[test]
    fn tool_names_become_words() {
        let e = entry("shop", "createOrder", "Create an order", &[]);
        assert_eq!(embedding_text(&e), "create order: Create an order");
        let e = entry("shop", "get_order-status", "Status", &[]);
        assert_eq!(embedding_text(&e), "get order status: Status");
        assert_eq!(truncated("héllo", 2), "hé");
    }
}
