//! Agents in Python and JavaScript, built from source with `corral build`'s
//! toolchains (componentize-py, ComponentizeJS), through `corral run` and a
//! real `corral serve` driven by boto3; `corral new` + `corral build` for
//! every language.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use corral_test_support::{
    ChildServer, built_agent, ci_js_toolchain, ci_python, deploy, free_port, invoke, session_id,
    spawn_server, workspace,
};
use serde_json::{Value, json};

/// The example assistants, by language.
const ASSISTANTS: [&str; 2] = [
    "examples/agents/assistant-py",
    "examples/agents/assistant-js",
];

/// Compiled components shared by every test run (compiling a Python or JS
/// component takes seconds; `corral run` caches it here).
fn cache_dir() -> PathBuf {
    workspace().join("target/test-cache")
}

fn corral(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env("CORRAL_CACHE_DIR", cache_dir())
        .env(
            "CORRAL_TRACE_DIR",
            std::env::temp_dir().join(format!("corral-languages-{}", std::process::id())),
        );
    command
}

fn succeed(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

/// The JSON responses `corral run -q` printed, one per invocation.
fn responses(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

fn script() -> PathBuf {
    workspace().join("examples/scripts/assistant.toml")
}

#[test]
fn python_and_js_assistants_run_a_multi_step_loop_with_session_state() {
    for example in ASSISTANTS {
        let agent = built_agent(example);
        let output = succeed(
            corral(&["run", "-q", "--builtin-tools", "--session", "state"])
                .arg(&agent)
                .arg("--script")
                .arg(script())
                .args(["-i", r#"{"prompt": "What is (17 * 23) + 4?"}"#])
                .args(["-i", r#"{"prompt": "divide that by 5"}"#]),
        );
        let answers = responses(&output);
        assert_eq!(answers[0]["response"], "(17 * 23) + 4 = 395.", "{example}");
        assert_eq!(answers[0]["steps"], 2, "{example}: model, tool, model");
        assert_eq!(
            answers[0]["toolCalls"],
            json!([{"name": "calculator___evaluate", "ok": true, "denied": false}])
        );
        // The second answer needs the first, kept in the sandbox's module state.
        assert_eq!(answers[1]["response"], "395 / 5 = 79.", "{example}");
        assert_eq!(answers[1]["turns"], 2, "{example}");
        assert_eq!(answers[1]["sessionId"], "state");
    }
}

#[test]
fn a_policy_denial_reaches_python_and_js_agents_as_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    // Default deny: the calculator is listed (one expression is permitted)
    // but the call the model makes is denied.
    std::fs::write(
        dir.path().join("policies/one_sum_only.cedar"),
        concat!(
            "permit(principal, action == AgentCore::Action::\"calculator___evaluate\", resource)\n",
            "  when { context.input.expression == \"1 + 1\" };\n",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gateway.json"),
        json!({"name": "denying", "policyEngineConfiguration": {"mode": "ENFORCE", "path": "policies"}, "targets": []})
            .to_string(),
    )
    .unwrap();
    for example in ASSISTANTS {
        let agent = built_agent(example);
        let output = succeed(
            corral(&["run", "-q", "--builtin-tools"])
                .arg(&agent)
                .arg("--gateway")
                .arg(dir.path().join("gateway.json"))
                .arg("--script")
                .arg(script())
                .args(["-i", r#"{"prompt": "What is 6 * 7?"}"#]),
        );
        let answer = &responses(&output)[0];
        assert_eq!(
            answer["toolCalls"],
            json!([{"name": "calculator___evaluate", "ok": false, "denied": true}]),
            "{example}: {answer}"
        );
        let reason = answer["denials"][0].as_str().unwrap();
        assert!(!reason.is_empty(), "{example}: {answer}");
        let text = answer["response"].as_str().unwrap();
        assert!(text.contains("denied by policy"), "{example}: {text}");
    }
}

/// `corral serve` with the assistant script and built-in tools, and `agents`
/// deployed (name, component); returns it and each agent's ARN.
async fn serve(
    dir: &Path,
    extra: &[&str],
    agents: &[(&str, PathBuf)],
) -> (ChildServer, Vec<String>) {
    let port = free_port();
    let served = spawn_server(
        corral(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--builtin-tools",
        ])
        .args(extra)
        .arg("--script")
        .arg(script())
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::null()),
        port,
    );
    let mut arns = Vec::new();
    for (name, component) in agents {
        arns.push(deploy(&served.url, name, std::fs::read(component).unwrap()).await);
    }
    (served, arns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_python_and_js_agents_answer_boto3_and_write_memory() {
    let dir = tempfile::tempdir().unwrap();
    let agents: Vec<(&str, PathBuf)> = vec![
        ("assistant_py", built_agent(ASSISTANTS[0])),
        ("assistant_js", built_agent(ASSISTANTS[1])),
    ];
    let (served, arns) = serve(dir.path(), &[], &agents).await;
    let client_script = workspace().join("runtime/server/tests/python/runtime_client.py");
    for ((name, _), arn) in agents.iter().zip(&arns) {
        let output = succeed(
            Command::new(ci_python("boto3"))
                .arg(&client_script)
                .arg(&served.url)
                .arg(arn),
        );
        let out: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(out["first"], "(17 * 23) + 4 = 395.", "{name}: {out}");
        assert_eq!(out["same_session"], "395 / 5 = 79.", "{name}: {out}");
        assert_ne!(out["other_session"], "395 / 5 = 79.", "{name}: {out}");
        assert_ne!(out["after_stop"], "395 / 5 = 79.", "{name}: {out}");

        // The turn was recorded in the server's agent memory.
        let (status, answer) = invoke(
            &served.url,
            name,
            &session_id(&format!("memory-{name}")),
            &json!({"prompt": "What is 2 + 2?"}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {answer}");
        let event = answer["memoryEventId"].as_str().unwrap_or_default();
        assert!(!event.is_empty(), "{name}: no memory event in {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corral_new_and_build_make_an_agent_that_deploys_and_answers_in_every_language() {
    let parent = tempfile::tempdir().unwrap();
    let (served, _) = serve(parent.path(), &[], &[]).await;
    let python = ci_python("componentize-py");
    for lang in ["python", "js", "rust"] {
        let name = format!("hello-{lang}");
        succeed(
            corral(&["new", &name, "--lang", lang])
                .arg("--dir")
                .arg(parent.path()),
        );
        let dir = parent.path().join(&name);
        if lang == "rust" {
            // The workspace's lock file pins what is already downloaded.
            std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        }
        let built = succeed(
            corral(&["build"])
                .arg(&dir)
                .env(
                    "CORRAL_COMPONENTIZE_PY",
                    python.with_file_name("componentize-py"),
                )
                .env("CORRAL_JS_TOOLCHAIN", ci_js_toolchain())
                .env("CARGO_TARGET_DIR", workspace().join("target/test-scaffold")),
        );
        let component = PathBuf::from(String::from_utf8_lossy(&built.stdout).trim());
        assert_eq!(component, dir.join("build").join(format!("{name}.wasm")));
        // Without a script the model echoes the prompt.
        let output = succeed(
            corral(&["run", "-q"])
                .arg(&component)
                .args(["-i", r#"{"prompt": "hello from a new agent"}"#]),
        );
        let answer = &responses(&output)[0];
        assert!(
            answer["response"]
                .as_str()
                .unwrap()
                .contains("hello from a new agent"),
            "{lang}: {answer}"
        );
        // Deployed to `corral serve` (assistant script, built-in tools), it
        // runs a tool step and answers there too.
        succeed(
            corral(&[
                "deploy",
                "--name",
                &name.replace('-', "_"),
                "--server",
                &served.url,
            ])
            .arg(&component),
        );
        let (status, answer) = invoke(
            &served.url,
            &name.replace('-', "_"),
            &session_id(&name),
            &json!({"prompt": "What is 6 * 7?"}),
        )
        .await;
        assert_eq!(status, 200, "{lang}: {answer}");
        assert_eq!(answer["response"], "6 * 7 = 42.", "{lang}: {answer}");
        assert_eq!(answer["steps"], 2, "{lang}: {answer}");
        // A second build of unchanged sources is skipped.
        if lang != "rust" {
            let again = succeed(
                corral(&["build"])
                    .arg(&dir)
                    .env(
                        "CORRAL_COMPONENTIZE_PY",
                        python.with_file_name("componentize-py"),
                    )
                    .env("CORRAL_JS_TOOLCHAIN", ci_js_toolchain()),
            );
            assert!(
                String::from_utf8_lossy(&again.stderr).contains("up to date"),
                "{lang}"
            );
        }
    }
}

#[test]
fn build_errors_name_the_missing_toolchain_and_the_file() {
    let parent = tempfile::tempdir().unwrap();
    succeed(
        corral(&["new", "lonely", "--lang", "python"])
            .arg("--dir")
            .arg(parent.path()),
    );
    let output = corral(&["build"])
        .arg(parent.path().join("lonely"))
        .env("CORRAL_COMPONENTIZE_PY", "/nonexistent/componentize-py")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pip install componentize-py"), "{stderr}");

    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = corral(&["build"]).arg(&empty).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot tell the language"), "{stderr}");

    let output = corral(&["new", "lonely", "--lang", "python"])
        .arg("--dir")
        .arg(parent.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

/// The no-code harness: `corral run --harness` and `corral deploy --harness`
/// into a real `corral serve` answer a multi-step calculator question (the
/// second turn needs the first, kept in the sandbox); a bad file names its
/// field before anything runs or deploys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_no_code_harness_answers_multi_step_questions() {
    let harness = workspace().join("examples/harness/calculator.toml");
    let output = succeed(
        corral(&["run", "-q", "--builtin-tools", "--harness"])
            .arg(&harness)
            .arg("--script")
            .arg(script())
            .args(["-i", r#"{"prompt": "What is (17 * 23) + 4?"}"#])
            .args(["-i", r#"{"prompt": "divide that by 5"}"#]),
    );
    let answers = responses(&output);
    assert_eq!(answers[0]["response"], "(17 * 23) + 4 = 395.");
    assert_eq!(answers[0]["steps"], 2);
    assert_eq!(answers[1]["response"], "395 / 5 = 79.");

    let dir = tempfile::tempdir().unwrap();
    let (served, _) = serve(dir.path(), &[], &[]).await;
    let deployed = succeed(
        corral(&[
            "deploy",
            "--name",
            "calculator",
            "--server",
            &served.url,
            "--harness",
        ])
        .arg(&harness),
    );
    assert!(String::from_utf8_lossy(&deployed.stdout).contains("deployed calculator version 1"));
    let id = session_id("harness");
    let (status, first) = invoke(
        &served.url,
        "calculator",
        &id,
        &json!({"prompt": "What is (17 * 23) + 4?"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["response"], "(17 * 23) + 4 = 395.");
    let event = first["memoryEventId"].as_str().unwrap_or_default();
    assert!(
        !event.is_empty(),
        "memory.enabled records the turn: {first}"
    );
    let (_, second) = invoke(
        &served.url,
        "calculator",
        &id,
        &json!({"prompt": "divide that by 5"}),
    )
    .await;
    assert_eq!(second["response"], "395 / 5 = 79.", "{second}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "system_prompt = \"hi\"\nmax_steps = 500\n").unwrap();
    let deploy = [
        "deploy",
        "--name",
        "bad",
        "--server",
        &served.url,
        "--harness",
    ];
    for command in [&["run", "--harness"][..], &deploy[..]] {
        let output = corral(command)
            .arg(&bad)
            .args(
                ["-i", "{}"]
                    .iter()
                    .take(if command[0] == "run" { 2 } else { 0 }),
            )
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("max_steps: must be between 1 and 100"),
            "{command:?}: {stderr}"
        );
    }
}
