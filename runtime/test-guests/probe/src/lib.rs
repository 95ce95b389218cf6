//! A hostile guest for sandbox tests. The JSON payload picks what it tries:
//! spin forever, allocate past its cap, read host files, read the environment,
//! open sockets, trap, flood stdout, keep and read session state, and exercise
//! every host interface.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use corral_agent::memory::{self, Conversational, PayloadItem};
use corral_agent::model::{self, ConverseRequest, InferenceConfig, Message};
use corral_agent::{
    Agent, AgentError, Invocation, Response, export_agent, log, response_stream, tools,
};
use serde_json::{Value, json};

static STATE: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
static HOARD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

struct Probe;

fn field<'a>(request: &'a Value, name: &str) -> &'a str {
    request
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn number(request: &Value, name: &str) -> u64 {
    request
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

impl Agent for Probe {
    fn invoke(invocation: Invocation) -> Result<Response, AgentError> {
        let request: Value = invocation.json()?;
        let action = field(&request, "action");
        let result = match action {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mib = number(&request, "mib") as usize;
                let mut hoard = HOARD.lock().unwrap_or_else(|p| p.into_inner());
                for _ in 0..mib {
                    hoard.push(vec![7u8; 1 << 20]);
                }
                json!({"held_mib": hoard.len()})
            }
            "read_file" => match std::fs::read_to_string(field(&request, "path")) {
                Ok(text) => json!({"ok": text.len()}),
                Err(e) => json!({"error": e.to_string()}),
            },
            "list_dir" => match std::fs::read_dir(field(&request, "path")) {
                Ok(entries) => json!({"ok": entries.count()}),
                Err(e) => json!({"error": e.to_string()}),
            },
            "write_file" => match std::fs::write(field(&request, "path"), b"pwned") {
                Ok(()) => json!({"ok": true}),
                Err(e) => json!({"error": e.to_string()}),
            },
            "env" => {
                let vars: BTreeMap<String, String> = std::env::vars().collect();
                json!({"vars": vars, "args": std::env::args().collect::<Vec<_>>()})
            }
            "connect" => match std::net::TcpStream::connect(field(&request, "addr")) {
                Ok(_) => json!({"ok": true}),
                Err(e) => json!({"error": e.to_string()}),
            },
            "resolve" => {
                use std::net::ToSocketAddrs;
                match (field(&request, "host"), 80).to_socket_addrs() {
                    Ok(addrs) => json!({"ok": addrs.count()}),
                    Err(e) => json!({"error": e.to_string()}),
                }
            }
            "stdin" => {
                let mut buf = String::new();
                match std::io::stdin().read_line(&mut buf) {
                    Ok(n) => json!({"read": n}),
                    Err(e) => json!({"error": e.to_string()}),
                }
            }
            "trap" => panic!("probe asked to trap"),
            "set" => {
                let mut state = STATE.lock().unwrap_or_else(|p| p.into_inner());
                state.insert(
                    field(&request, "key").into(),
                    field(&request, "value").into(),
                );
                json!({"ok": true, "session": invocation.session_id})
            }
            "entropy" => {
                // Wall clock, monotonic clock and randomness (std seeds its
                // hash keys from WASI random): what a replay must pin.
                use std::hash::{BuildHasher, Hasher};
                let started = std::time::Instant::now();
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u64(wall);
                json!({
                    "wallNanos": wall,
                    "monotonicNanos": started.elapsed().as_nanos() as u64,
                    "hash": hasher.finish(),
                })
            }
            "get" => {
                let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
                json!({"value": state.get(field(&request, "key"))})
            }
            "print" => {
                let lines = number(&request, "lines");
                let mut stdout = std::io::stdout();
                for i in 0..lines {
                    let _ = writeln!(stdout, "line {i} {}", field(&request, "text"));
                }
                eprintln!("to stderr");
                json!({"printed": lines})
            }
            "log" => {
                let written = log::write(
                    log::Level::Warn,
                    field(&request, "message"),
                    &[log::Field {
                        key: "k".into(),
                        value: "v".into(),
                    }],
                );
                json!({"ok": written.is_ok()})
            }
            // Hostile: `lines` log lines of `bytes` bytes with `fields` fields
            // of `field_bytes` each; ignores refusals unless `stop` is set,
            // then fails with the host's limit error.
            "log_flood" => {
                let line = "x".repeat(number(&request, "bytes") as usize);
                let value = "v".repeat(number(&request, "field_bytes") as usize);
                let fields: Vec<log::Field> = (0..number(&request, "fields"))
                    .map(|i| log::Field {
                        key: format!("k{i}"),
                        value: value.clone(),
                    })
                    .collect();
                let mut refused = 0u64;
                for _ in 0..number(&request, "lines") {
                    if let Err(log::LogError::LimitExceeded(limit)) =
                        log::write(log::Level::Info, &line, &fields)
                    {
                        refused += 1;
                        if request.get("stop").and_then(Value::as_bool) == Some(true) {
                            return Err(AgentError::LimitExceeded(limit));
                        }
                    }
                }
                json!({"refused": refused})
            }
            // Hostile: stream `chunks` chunks of `bytes`, then a final payload of
            // `final_bytes`; a refused chunk fails with the host's limit error.
            "stream_flood" => {
                let chunk = vec![b'c'; number(&request, "bytes") as usize];
                for _ in 0..number(&request, "chunks") {
                    match response_stream::send(&chunk) {
                        Ok(()) => {}
                        Err(response_stream::StreamError::LimitExceeded(limit)) => {
                            return Err(AgentError::LimitExceeded(limit));
                        }
                        Err(response_stream::StreamError::Closed) => {
                            return Err(AgentError::Internal("caller went away".into()));
                        }
                    }
                }
                return Ok(Response {
                    payload: vec![b'f'; number(&request, "final_bytes") as usize],
                    content_type: "application/octet-stream".into(),
                });
            }
            // Hostile: append `events` events of `bytes` bytes as fast as possible.
            "memory_flood" => {
                let text = "m".repeat(number(&request, "bytes") as usize);
                let mut appended = 0u64;
                for _ in 0..number(&request, "events") {
                    let item = PayloadItem::Conversational(Conversational {
                        role: memory::Role::User,
                        text: text.clone(),
                    });
                    match memory::append_event(&[item]) {
                        Ok(_) => appended += 1,
                        Err(memory::MemoryError::LimitExceeded(limit)) => {
                            return Err(AgentError::LimitExceeded(format!(
                                "{limit} (after {appended} events)"
                            )));
                        }
                        Err(e) => return Err(AgentError::Internal(format!("{e:?}"))),
                    }
                }
                json!({"appended": appended})
            }
            // Memory reads with a namespace of the caller's choosing.
            "retrieve" => match memory::retrieve_records(
                field(&request, "namespace"),
                field(&request, "query"),
                number(&request, "top_k").max(1) as u32,
            ) {
                Ok(records) => json!({"records": records
                    .iter()
                    .map(|r| json!({"content": r.content, "namespaces": r.namespaces}))
                    .collect::<Vec<_>>()}),
                Err(e) => json!({"error": format!("{e:?}")}),
            },
            "list_events" => match memory::list_events(number(&request, "max").max(1) as u32) {
                Ok(events) => json!({"events": events
                    .iter()
                    .map(|e| json!({"actor": e.actor_id, "session": e.session_id, "payload": format!("{:?}", e.payload)}))
                    .collect::<Vec<_>>()}),
                Err(e) => json!({"error": format!("{e:?}")}),
            },
            "stream" => {
                let chunks = request
                    .get("chunks")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for chunk in chunks {
                    if let Err(e) =
                        response_stream::send(chunk.as_str().unwrap_or_default().as_bytes())
                    {
                        return Err(AgentError::Internal(format!("{e:?}")));
                    }
                }
                return Ok(Response::text("end"));
            }
            "tool" => {
                let args = request.get("args").cloned().unwrap_or(json!({}));
                match tools::call_tool(field(&request, "name"), &args.to_string()) {
                    Ok(out) => {
                        json!({"ok": serde_json::from_str::<Value>(&out).unwrap_or(Value::String(out))})
                    }
                    Err(e) => json!({"error": e.explain(), "kind": format!("{e:?}")}),
                }
            }
            "list_tools" => match tools::list_tools() {
                Ok(list) => {
                    json!({"tools": list.iter().map(|t| t.name.clone()).collect::<Vec<_>>()})
                }
                Err(e) => json!({"error": e.explain()}),
            },
            "model" => {
                let request = ConverseRequest {
                    model_id: None,
                    system: vec![],
                    messages: vec![Message::user(field(&request, "prompt"))],
                    tools: vec![],
                    inference: InferenceConfig {
                        max_tokens: None,
                        temperature: None,
                        top_p: None,
                        stop_sequences: vec![],
                    },
                };
                match model::converse(&request) {
                    Ok(reply) => {
                        json!({"text": reply.output.text(), "tokens": reply.usage.total_tokens})
                    }
                    Err(e) => json!({"error": e.explain()}),
                }
            }
            "memory" => {
                let item = PayloadItem::Conversational(Conversational {
                    role: memory::Role::User,
                    text: field(&request, "text").into(),
                });
                let appended = memory::append_event(&[item]);
                let listed = memory::list_events(10);
                json!({
                    "append": format!("{appended:?}"),
                    "events": listed.map(|e| e.len()).map_err(|e| format!("{e:?}")),
                })
            }
            "noop" => json!({"ok": true}),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_millis(number(&request, "ms")));
                json!({"slept": number(&request, "ms")})
            }
            other => {
                return Err(AgentError::InvalidInput(format!(
                    "unknown action {other:?}"
                )));
            }
        };
        Ok(Response::json(&result))
    }
}

export_agent!(Probe);
