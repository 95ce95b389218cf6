//! The search tool over the committed labelled set (67 tools across 12
//! OpenAPI targets, 42 natural-language queries): recall@5 with the local
//! all-MiniLM-L6-v2 model (hybrid with BM25) against words alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::search_set::{labelled, search, search_gateway};
use corral_gateway::Gateway;
use corral_memory::embed::BertEmbedder;

/// Recall@5 over `queries`, and the queries whose tool was not in the top 5.
async fn recall_at_5(gateway: &Gateway, queries: &[(String, String)]) -> (f64, Vec<String>) {
    let mut misses = Vec::new();
    for (query, expected) in queries {
        let found = search(gateway, query).await;
        if !found.iter().take(5).any(|name| name == expected) {
            misses.push(format!(
                "{query:?} → {:?} (wanted {expected})",
                &found[..found.len().min(5)]
            ));
        }
    }
    let recall = 1.0 - misses.len() as f64 / queries.len() as f64;
    (recall, misses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_search_finds_tools_by_meaning_across_targets() {
    let (targets, queries) = labelled();
    let tools: usize = targets.iter().map(|(_, tools)| tools.len()).sum();
    assert!(tools >= 60 && targets.len() >= 5 && queries.len() >= 30);

    let model = BertEmbedder::load(&corral_test_support::embedding_model()).unwrap();
    let semantic = search_gateway(&targets, Some(Arc::new(model))).await;
    let lexical = search_gateway(&targets, None).await;

    let (semantic_recall, semantic_misses) = recall_at_5(&semantic, &queries).await;
    let (lexical_recall, lexical_misses) = recall_at_5(&lexical, &queries).await;
    println!(
        "recall@5 over {} queries, {tools} tools: hybrid {semantic_recall:.3}, BM25 alone {lexical_recall:.3}",
        queries.len()
    );
    println!("hybrid misses: {semantic_misses:#?}");
    println!("BM25 misses: {}", lexical_misses.len());
    assert!(semantic_recall >= 0.9, "{semantic_misses:#?}");

    // The example: no word of the query is in the tool.
    let found = search(&semantic, "buy five widgets").await;
    assert_eq!(found[0], "shop___createOrder", "{found:?}");
    assert!(
        !search(&lexical, "buy five widgets")
            .await
            .contains(&"shop___createOrder".to_string())
    );
    // Exact words still count: a tool named in the query comes first.
    assert_eq!(
        search(&semantic, "trackPackage").await[0],
        "shipping___trackPackage"
    );
    // An empty query finds nothing rather than everything.
    assert!(search(&semantic, "   ").await.is_empty());
}
