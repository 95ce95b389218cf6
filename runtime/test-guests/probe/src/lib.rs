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
                log::write(
                    log::Level::Warn,
                    field(&request, "message"),
                    &[log::Field {
                        key: "k".into(),
                        value: "v".into(),
                    }],
                );
                json!({"ok": true})
            }
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
                        return Err(AgentError::Internal(e));
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
