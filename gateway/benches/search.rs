//! The search tool (`x_amz_bedrock_agentcore_search`) over the committed
//! labelled set, alone (67 tools) and among 933 generated distractor tools
//! (1,000): recall@5 of the 42 labelled queries and the latency of one
//! search call in process, for BM25 alone and for the hybrid with the local
//! all-MiniLM-L6-v2 model (`.ci/fetch-embedding-model` fetches it). Prints a
//! table.
//!
//! `cargo bench -p corral-gateway --bench search`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::search_set::{Targets, labelled, search, search_gateway};
use corral_gateway::Gateway;
use corral_memory::embed::{BertEmbedder, Embedder};
use hdrhistogram::Histogram;

const ROUNDS: usize = 5;

const VERBS: [(&str, &str); 20] = [
    ("get", "Gets"),
    ("list", "Lists"),
    ("create", "Creates"),
    ("update", "Updates"),
    ("delete", "Deletes"),
    ("archive", "Archives"),
    ("restore", "Restores"),
    ("export", "Exports"),
    ("import", "Imports"),
    ("validate", "Validates"),
    ("approve", "Approves"),
    ("reject", "Rejects"),
    ("sync", "Synchronises"),
    ("audit", "Audits"),
    ("tag", "Tags"),
    ("count", "Counts"),
    ("merge", "Merges"),
    ("lock", "Locks"),
    ("publish", "Publishes"),
    ("assign", "Assigns"),
];

const NOUNS: [(&str, &str, &str); 47] = [
    ("VendorContract", "a vendor contract", "procurement"),
    (
        "PurchaseRequisition",
        "a purchase requisition",
        "procurement",
    ),
    ("Supplier", "a supplier record", "procurement"),
    ("CostCenter", "a cost center", "finance"),
    ("LedgerEntry", "a general ledger entry", "finance"),
    ("BudgetLine", "a budget line", "finance"),
    ("TaxCode", "a tax code", "finance"),
    ("Asset", "a fixed asset", "finance"),
    ("Employee", "an employee record", "HR"),
    ("Position", "an open position", "HR"),
    ("Candidate", "a job candidate", "recruiting"),
    ("Interview", "an interview slot", "recruiting"),
    ("TrainingCourse", "a training course", "learning"),
    ("Certification", "a staff certification", "learning"),
    ("Lead", "a sales lead", "CRM"),
    ("Opportunity", "a sales opportunity", "CRM"),
    ("Account", "a customer account", "CRM"),
    ("Contact", "a contact person", "CRM"),
    ("Campaign", "a marketing campaign", "marketing"),
    ("Segment", "an audience segment", "marketing"),
    ("LandingPage", "a landing page", "marketing"),
    ("Warehouse", "a warehouse location", "logistics"),
    ("Route", "a delivery route", "logistics"),
    ("Vehicle", "a fleet vehicle", "logistics"),
    ("Driver", "a delivery driver", "logistics"),
    ("Incident", "an operations incident", "ITSM"),
    ("ChangeRequest", "a change request", "ITSM"),
    ("ConfigItem", "a configuration item", "ITSM"),
    ("License", "a software license", "IT asset"),
    ("Laptop", "a company laptop", "IT asset"),
    ("Dataset", "an analytics dataset", "data"),
    ("Dashboard", "a metrics dashboard", "data"),
    ("Pipeline", "an ETL pipeline", "data"),
    ("Schema", "a table schema", "data"),
    ("Secret", "a stored secret", "security"),
    ("AccessKey", "an access key", "security"),
    ("Firewall", "a firewall rule", "network"),
    ("DnsRecord", "a DNS record", "network"),
    ("Certificate", "a TLS certificate", "network"),
    ("Contract", "a legal contract", "legal"),
    ("Policy", "a compliance policy", "legal"),
    ("Patent", "a patent filing", "legal"),
    ("Room", "a meeting room", "facilities"),
    ("Desk", "a hot desk", "facilities"),
    ("Badge", "an access badge", "facilities"),
    ("Survey", "an employee survey", "HR"),
    ("Benefit", "a benefits enrolment", "HR"),
];

/// The labelled targets plus generated CRUD tools up to `total` tools.
fn with_distractors(labelled: &Targets, total: usize) -> Targets {
    let mut targets = labelled.clone();
    let have: usize = labelled.iter().map(|(_, t)| t.len()).sum();
    let generated: Vec<(String, String)> = NOUNS
        .iter()
        .flat_map(|(noun, phrase, system)| {
            VERBS.iter().map(move |(verb, does)| {
                (
                    format!("{verb}{noun}"),
                    format!("{does} {phrase} in the {system} system"),
                )
            })
        })
        .take(total.saturating_sub(have))
        .collect();
    for (index, chunk) in generated.chunks(100).enumerate() {
        targets.push((format!("erp{index}"), chunk.to_vec()));
    }
    targets
}

struct Row {
    ranker: &'static str,
    tools: usize,
    recall: f64,
    histogram: Histogram<u64>,
    warm_ms: Option<f64>,
}

async fn measure(
    ranker: &'static str,
    targets: &Targets,
    queries: &[(String, String)],
    embedder: Option<Arc<dyn Embedder>>,
) -> Row {
    let tools = targets.iter().map(|(_, t)| t.len()).sum();
    let semantic = embedder.is_some();
    let started = Instant::now();
    let gateway: Arc<Gateway> = search_gateway(targets, embedder).await;
    let warm_ms = semantic.then(|| started.elapsed().as_secs_f64() * 1e3);
    let mut hits = 0;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for round in 0..ROUNDS {
        for (query, expected) in queries {
            let started = Instant::now();
            let found = search(&gateway, query).await;
            histogram
                .record(started.elapsed().as_nanos().max(1) as u64)
                .unwrap();
            if round == 0 && found.iter().take(5).any(|name| name == expected) {
                hits += 1;
            }
        }
    }
    Row {
        ranker,
        tools,
        recall: hits as f64 / queries.len() as f64,
        histogram,
        warm_ms,
    }
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1e6
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (targets, queries) = labelled();
        let model: Arc<dyn Embedder> =
            Arc::new(BertEmbedder::load(&corral_test_support::embedding_model()).unwrap());
        let large = with_distractors(&targets, 1_000);
        let mut rows = Vec::new();
        for set in [&targets, &large] {
            rows.push(measure("BM25 alone", set, &queries, None).await);
            rows.push(
                measure(
                    "hybrid: all-MiniLM-L6-v2 + BM25",
                    set,
                    &queries,
                    Some(model.clone()),
                )
                .await,
            );
        }
        println!(
            "\n| ranker | tools | recall@5 ({} queries) | search p50 | p99 | embed the catalogue |",
            queries.len()
        );
        println!("|---|---|---|---|---|---|");
        for row in &rows {
            println!(
                "| {} | {} | {:.3} | {:.2} ms | {:.2} ms | {} |",
                row.ranker,
                row.tools,
                row.recall,
                ms(&row.histogram, 0.5),
                ms(&row.histogram, 0.99),
                row.warm_ms
                    .map(|ms| format!("{:.1} s", ms / 1e3))
                    .unwrap_or_else(|| "—".into())
            );
        }
    });
}
