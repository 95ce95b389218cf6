//! `corral demo`: the README demo, offline and self-contained.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use clap::Args;
use corral_gateway::{GatewayConfig, GatewayOptions};
use corral_host::{EngineConfig, InvocationRequest};
use corral_model::ScriptedModel;
use corral_runtime::RuntimeBuilder;
use serde_json::{Value, json};

use crate::print;

/// Arguments of `corral demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print only the answers.
    #[arg(long, short)]
    quiet: bool,
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let say = |line: String| {
        if !args.quiet {
            eprintln!("{line}");
        }
    };
    say(print::bold(
        "Corral demo: an assistant agent in a WASM sandbox, a scripted model, gateway tools",
    ));
    say(print::dim(
        "(offline: the model is Corral's deterministic scripted model, examples/scripts/assistant.toml)",
    ));

    let started = Instant::now();
    let model = ScriptedModel::from_toml(corral_examples::ASSISTANT_SCRIPT)
        .context("loading the demo script")?;
    let runtime = RuntimeBuilder::new()
        .engine(EngineConfig {
            max_instances: 8,
            ..EngineConfig::default()
        })
        .model(Arc::new(model))
        .gateway(
            GatewayConfig::builtin_tools(&["calculator", "json"])?,
            GatewayOptions::default(),
        )
        .build()
        .await
        .context("starting the runtime")?;
    let agent = Arc::new(
        runtime
            .host()
            .compile("assistant", corral_examples::ASSISTANT_AGENT)?,
    );
    say(format!(
        "\n{} examples/agents/assistant ({} KiB component) compiled in {} ms",
        print::bold("▸ loaded"),
        corral_examples::ASSISTANT_AGENT.len() / 1024,
        started.elapsed().as_millis()
    ));

    let gateway = runtime.gateway().context("the built-in tools gateway")?;
    say(format!(
        "{} an in-process MCP gateway with {} built-in WASM tools ({})",
        print::bold("▸ tools"),
        gateway.catalog().len(),
        gateway
            .catalog()
            .entries()
            .iter()
            .map(|e| e.exposed_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let manager = runtime.sessions();

    let alice = format!("demo-alice-{}", uuid::Uuid::new_v4());
    let bob = format!("demo-bob-{}", uuid::Uuid::new_v4());
    let steps = [
        (
            &alice,
            "What is (17 * 23) + 4?",
            "a new session: the agent asks the calculator, then answers",
        ),
        (
            &alice,
            "Now divide that by 5",
            "the same session: its sandbox kept the conversation in memory",
        ),
        (
            &bob,
            "Now divide that by 5",
            "another session: a separate sandbox with no shared state",
        ),
    ];
    let mut answers = Vec::new();
    for (session, prompt, note) in steps {
        say(format!(
            "\n{} {}",
            print::bold(&format!("▸ {prompt:?}")),
            print::dim(&format!("— {note}"))
        ));
        let request =
            InvocationRequest::new(session.as_str(), json!({ "prompt": prompt }).to_string())
                .actor("demo-user");
        let response = manager
            .invoke(&agent, request)
            .await
            .with_context(|| format!("asking {prompt:?}"))?;
        if !args.quiet {
            for entry in &response.log {
                print::log_entry(entry);
            }
        }
        let answer: Value =
            serde_json::from_slice(&response.payload).context("the assistant answers JSON")?;
        let text = answer["response"].as_str().unwrap_or_default().to_string();
        say(format!(
            "  {} {text}  {}",
            print::bold("←"),
            print::dim(&format!(
                "({} model calls, {} tool calls, {} ms, session {})",
                response.stats.model_calls,
                response.stats.tool_calls,
                response.duration.as_millis(),
                short(session)
            ))
        ));
        if args.quiet {
            println!("{text}");
        }
        answers.push(text);
    }

    say(format!("\n{}", print::bold("▸ live sessions")));
    for info in manager.list() {
        say(format!(
            "    {}  {} invocations, {} KiB guest memory, {:?}",
            short(&info.session_id),
            info.invocations,
            info.memory_bytes / 1024,
            info.status
        ));
    }
    let stopped = manager.stop_all();
    say(print::dim(&format!(
        "    stopped {stopped} sessions; their sandboxes are freed"
    )));

    ensure!(
        answers[0] == "(17 * 23) + 4 = 395.",
        "unexpected first answer: {}",
        answers[0]
    );
    ensure!(
        answers[1] == "395 / 5 = 79.",
        "session state was not kept: {}",
        answers[1]
    );
    ensure!(
        answers[2] != answers[1],
        "sessions leaked state into each other"
    );
    memory_demo(&say).await?;
    say(format!("\n{}", print::bold("demo complete")));
    Ok(())
}

fn short(session: &str) -> &str {
    session.get(..session.len().min(17)).unwrap_or(session)
}

/// Long-term memory, offline: events in, extraction by the offline model,
/// consolidation of a contradiction, retrieval by similarity.
async fn memory_demo(say: &impl Fn(String)) -> anyhow::Result<()> {
    use corral_memory::control::{CreateMemoryInput, StrategyInput, StrategyInputFields};
    use corral_memory::embed::LocalEmbedder;
    use corral_memory::types::{
        Content, Conversational, CreateEventInput, PayloadItem, RetrieveMemoryRecordsInput, Role,
        SearchCriteria,
    };
    use corral_memory::{MemoryConfig, MemoryService, SledStorage, Timestamp};

    say(format!(
        "\n{} {}",
        print::bold("▸ memory"),
        print::dim("— AgentCore-shaped memory on an embedded sled store, offline extraction")
    ));
    let service = MemoryService::open(
        Arc::new(SledStorage::temporary()?),
        Arc::new(LocalEmbedder::default()),
        MemoryConfig::default(),
    )
    .await?;
    let memory = service
        .create_memory(CreateMemoryInput {
            client_token: None,
            name: "demo_memory".into(),
            description: None,
            event_expiry_duration: 30,
            memory_strategies: vec![StrategyInput::SemanticMemoryStrategy(StrategyInputFields {
                name: "facts".into(),
                ..Default::default()
            })],
            encryption_key_arn: None,
            memory_execution_role_arn: None,
            tags: None,
        })
        .await?;
    let model = corral_memory::offline_extraction_model()?;
    for (session, text) in [
        ("monday", "Hi, my name is Ada."),
        ("monday", "I live in Paris."),
        ("friday", "Big news: I moved to Berlin."),
    ] {
        let event = service
            .create_event(
                &memory.id,
                CreateEventInput {
                    actor_id: "ada".into(),
                    session_id: Some(session.into()),
                    event_timestamp: Timestamp::now(),
                    payload: vec![PayloadItem::Conversational(Conversational {
                        content: Content::Text(text.into()),
                        role: Role::User,
                    })],
                    branch: None,
                    client_token: None,
                    metadata: Default::default(),
                },
            )
            .await?;
        let report = service.run_extraction(&model).await?;
        say(format!(
            "    event {} {text:?} → {} record(s) created, {} updated",
            print::dim(&event.event_id),
            report.records_created,
            report.records_updated
        ));
    }
    let namespace = format!(
        "/strategies/{}/actors/ada",
        memory.strategies[0].strategy_id
    );
    let hits = service
        .retrieve_memory_records(
            &memory.id,
            RetrieveMemoryRecordsInput {
                namespace: Some(namespace.clone()),
                namespace_path: None,
                search_criteria: SearchCriteria {
                    search_query: "where does the user live?".into(),
                    memory_strategy_id: None,
                    top_k: Some(2),
                    metadata_filters: None,
                },
                next_token: None,
                max_results: None,
            },
        )
        .await?
        .memory_record_summaries;
    say(format!(
        "    retrieve \"where does the user live?\" in {namespace}:"
    ));
    for hit in &hits {
        say(format!(
            "      {:.2}  {}",
            hit.score.unwrap_or_default(),
            hit.content.text()
        ));
    }
    ensure!(
        hits.first().map(|h| h.content.text()) == Some("The user lives in Berlin."),
        "memory did not consolidate the move: {hits:?}"
    );
    ensure!(
        hits.len() == 2,
        "expected exactly the name and the city: {hits:?}"
    );
    Ok(())
}
