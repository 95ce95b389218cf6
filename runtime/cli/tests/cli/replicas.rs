//! Several `corral serve` replicas on one PostgreSQL behind HAProxy, driven
//! by the AWS SDK's bedrock-agentcore client: deploys, memory and sessions
//! are shared, a session survives its replica's kill -9, two replicas
//! receiving one session never both run it, and a replica rides out the
//! database going away.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::{
    ChildServer, TcpProxy, ci_python, deploy, free_port, fresh_database, session_id, spawn_server,
    workspace,
};
use serde_json::{Value, json};

const FIRST: &str = "What is (17 * 23) + 4?";
const SECOND: &str = "Now divide that by 5";

/// `corral serve` on `database` with the assistant script and the built-in
/// tools, its own data directory under `dir`.
fn replica(dir: &Path, name: &str, database: &str) -> ChildServer {
    let port = free_port();
    spawn_server(
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["serve", "--builtin-tools", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--script")
            .arg(workspace().join("examples/scripts/assistant.toml"))
            .arg("--data-dir")
            .arg(dir.join(name))
            .arg("--database-url")
            .arg(database)
            .env("NO_COLOR", "1")
            .env("CORRAL_TRACE_DIR", super::trace_dir())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("CORRAL_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap()),
        port,
    )
}

/// The end of replica `name`'s log (for failure messages).
fn log_of(dir: &Path, name: &str) -> String {
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Three replicas, started side by side.
fn three_replicas(dir: &Path, database: &str) -> Vec<ChildServer> {
    std::thread::scope(|scope| {
        let started: Vec<_> = ["r1", "r2", "r3"]
            .map(|name| (name, scope.spawn(move || replica(dir, name, database))))
            .into_iter()
            .collect();
        started
            .into_iter()
            .map(|(name, s)| {
                s.join().unwrap_or_else(|_| {
                    panic!("replica {name} did not start:\n{}", log_of(dir, name))
                })
            })
            .collect()
    })
}

/// HAProxy with the shipped `examples/haproxy/haproxy.cfg` in front of
/// `replicas`, once it sees all of them healthy.
async fn haproxy(replicas: &[ChildServer]) -> ChildServer {
    let port = free_port();
    // Debian installs it in /usr/sbin, which a non-root PATH may lack.
    let installed = Path::new("/usr/sbin/haproxy");
    let mut command = Command::new(if installed.exists() {
        installed
    } else {
        Path::new("haproxy")
    });
    command
        .arg("-db")
        .arg("-f")
        .arg(workspace().join("examples/haproxy/haproxy.cfg"))
        .env("CORRAL_LB_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (i, replica) in replicas.iter().enumerate() {
        command.env(
            format!("CORRAL_REPLICA_{}", i + 1),
            replica.url.trim_start_matches("http://"),
        );
    }
    let lb = spawn_server(&mut command, port);
    // Every replica answers /ping through it (health checks every 500 ms).
    for _ in 0..100 {
        if reqwest::get(format!("{}/ping", lb.url))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            return lb;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("HAProxy never found a healthy replica");
}

/// Runs the boto3 driver (`tests/python/replicas_client.py`).
async fn boto3(args: &[&str]) -> Value {
    let script = workspace().join("runtime/cli/tests/python/replicas_client.py");
    let output = tokio::process::Command::new(ci_python("boto3"))
        .arg(script)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "boto3 driver {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn ask(url: &str, arn: &str, session: &str, prompt: &str) -> Value {
    boto3(&["ask", url, arn, session, prompt]).await
}

/// The sessions `url` lists (its own and, in a cluster, others').
async fn sessions(url: &str) -> Vec<Value> {
    // A replica whose directory query fails answers 503 "retry shortly"
    // (PostgreSQL busy under the suite's load): retry, as a client should.
    let started = Instant::now();
    loop {
        let response = reqwest::get(format!("{url}/corral/sessions"))
            .await
            .unwrap();
        let status = response.status();
        let listed: Value = response.json().await.unwrap();
        if status.is_success() {
            return listed["sessions"].as_array().cloned().unwrap_or_default();
        }
        assert!(
            status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                && started.elapsed() < Duration::from_secs(10),
            "{url} could not list its sessions: {status} {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Indexes of the replicas running `session` themselves (not listing it
/// as another's, or as resumable after its holder's lease lapsed).
async fn holders(replicas: &[&ChildServer], session: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        if sessions(&replica.url).await.iter().any(|s| {
            s["runtimeSessionId"] == session && s["state"] != "Remote" && s["state"] != "Resumable"
        }) {
            out.push(i);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_haproxy_share_deploys_memory_and_sessions_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database("replicas");
    let mut replicas = three_replicas(dir.path(), &database);
    let lb = haproxy(&replicas).await;

    // Deployed through one replica, invoked through another.
    let arn = deploy(
        &replicas[0].url,
        "assistant",
        corral_examples::ASSISTANT_AGENT.to_vec(),
    )
    .await;
    let direct = ask(&replicas[1].url, &arn, &session_id("direct"), FIRST).await;
    assert_eq!(direct["response"], "(17 * 23) + 4 = 395.", "{direct}");
    // A new version deployed through one replica reaches the others'
    // caches (LISTEN/NOTIFY) without a request missing first.
    deploy(
        &replicas[0].url,
        "assistant",
        corral_examples::ASSISTANT_AGENT.to_vec(),
    )
    .await;
    let started = Instant::now();
    loop {
        let runtime: Value = reqwest::get(format!("{}/runtimes/assistant/", replicas[2].url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if runtime["agentRuntimeVersion"] == "2" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "version 2 never reached replica 3: {runtime}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "a deploy reached another replica in {:?}",
        started.elapsed()
    );

    // One agent memory resource for all three (created at once), whose
    // events written through one replica are listed through another.
    let ids = boto3(&["memory-ids", &replicas[2].url, "agents"]).await;
    let ids = ids["ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1, "replicas starting together made {ids:?}");
    let memory = ids[0].as_str().unwrap().to_string();
    let notes = session_id("notes");
    for text in ["first note", "second note"] {
        let put = boto3(&["put-event", &replicas[0].url, &memory, &notes, text]).await;
        assert!(put["eventId"].is_string(), "{put}");
    }
    let listed = boto3(&["list-events", &replicas[2].url, &memory, &notes]).await;
    assert_eq!(listed["texts"], json!(["first note", "second note"]));

    // A conversation through HAProxy.
    let chat = session_id("chat");
    let first = ask(&lb.url, &arn, &chat, FIRST).await;
    assert_eq!(first["response"], "(17 * 23) + 4 = 395.", "{first}");
    assert_eq!(first["session"], chat.as_str());
    let all: Vec<&ChildServer> = replicas.iter().collect();
    let owner = holders(&all, &chat).await;
    assert_eq!(owner.len(), 1, "one replica runs the session: {owner:?}");
    let owner = owner[0];
    // Every replica names the same holder.
    for replica in &replicas {
        let listed = sessions(&replica.url).await;
        let entry = listed
            .iter()
            .find(|s| s["runtimeSessionId"] == chat.as_str())
            .unwrap_or_else(|| panic!("{} does not list {chat}: {listed:?}", replica.url));
        assert!(entry["replica"].is_string(), "{entry}");
    }
    // An event acknowledged by the replica about to die.
    let put = boto3(&[
        "put-event",
        &replicas[owner].url,
        &memory,
        &notes,
        "last words",
    ])
    .await;
    assert!(put["eventId"].is_string(), "{put}");

    // kill -9 the session's replica mid-conversation: the next turn,
    // through HAProxy, continues from the conversation's state.
    let mut killed = replicas.remove(owner);
    let killed_id = sessions(&killed.url)
        .await
        .iter()
        .find(|s| s["runtimeSessionId"] == chat.as_str())
        .and_then(|s| s["replica"].as_str().map(str::to_string))
        .unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let killed_at = Instant::now();
    // Once the dead holder's lease lapses, the survivors list the session
    // as resumable, naming its last holder, instead of dropping it.
    let resumable = loop {
        let listed = sessions(&replicas[0].url).await;
        let entry = listed
            .iter()
            .find(|s| s["runtimeSessionId"] == chat.as_str())
            .cloned();
        if let Some(entry) = entry.filter(|e| e["state"] == "Resumable") {
            break entry;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "{chat} is not listed as resumable: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(resumable["replica"], killed_id.as_str(), "{resumable}");
    let started = Instant::now();
    let second = ask(&lb.url, &arn, &chat, SECOND).await;
    let takeover = started.elapsed();
    assert_eq!(second["response"], "395 / 5 = 79.", "{second}");
    assert_eq!(second["turns"], 2, "{second}");
    eprintln!("takeover after kill -9: next turn answered in {takeover:?}");
    assert!(
        takeover < Duration::from_secs(30),
        "the takeover took {takeover:?}"
    );
    let listed = boto3(&["list-events", &replicas[0].url, &memory, &notes]).await;
    assert_eq!(
        listed["texts"],
        json!(["first note", "last words", "second note"]),
        "no acknowledged event is lost"
    );

    // Two replicas receiving one new session at once (bypassing HAProxy)
    // run it in one sandbox: its turns are serialised there.
    let shared = session_id("shared");
    let body = json!({"prompt": FIRST});
    let (a, b) = tokio::join!(
        corral_test_support::invoke(&replicas[0].url, "assistant", &shared, &body),
        corral_test_support::invoke(&replicas[1].url, "assistant", &shared, &body),
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    let mut turns = [a.1["turns"].as_u64(), b.1["turns"].as_u64()];
    turns.sort_unstable();
    assert_eq!(
        turns,
        [Some(1), Some(2)],
        "one sandbox served both: {a:?} {b:?}"
    );
    let survivors: Vec<&ChildServer> = replicas.iter().collect();
    let running = holders(&survivors, &shared).await;
    assert_eq!(running.len(), 1, "{running:?}");

    // Stop works from the replica that does not hold it.
    let other = 1 - running[0];
    let stopped = reqwest::Client::new()
        .delete(format!("{}/corral/sessions/{shared}", replicas[other].url))
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200, "{:?}", stopped.text().await);
    assert!(holders(&survivors, &shared).await.is_empty());

    // A rolling restart: SIGTERM hands the replica's sessions off, so the
    // next turn is resumed elsewhere at once, without waiting for a lease.
    let rolling = session_id("rolling");
    let first = ask(&lb.url, &arn, &rolling, FIRST).await;
    assert_eq!(first["response"], "(17 * 23) + 4 = 395.", "{first}");
    let holder = holders(&survivors, &rolling).await;
    assert_eq!(holder.len(), 1, "{holder:?}");
    let mut stopping = replicas.remove(holder[0]);
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(stopping.child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let exited = stopping.child.wait().unwrap();
    assert!(exited.success(), "a graceful stop exits cleanly: {exited}");
    let started = Instant::now();
    let second = ask(&lb.url, &arn, &rolling, SECOND).await;
    let handed_over = started.elapsed();
    assert_eq!(second["response"], "395 / 5 = 79.", "{second}");
    eprintln!("after SIGTERM: next turn answered in {handed_over:?}");
    assert!(
        handed_over < Duration::from_secs(3),
        "a handed-off session waits for no lease: {handed_over:?}"
    );
    drop(lb);
}

/// Whether `url`'s `/ping` answers `status` within `tries` × 100 ms.
async fn ping_becomes(url: &str, status: u16, tries: usize) -> bool {
    for _ in 0..tries {
        if reqwest::get(format!("{url}/ping")).await.unwrap().status() == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The port of the database `url` names.
fn database_port(url: &str) -> u16 {
    reqwest::Url::parse(url).unwrap().port().unwrap_or(5432)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_rides_out_the_database_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database("outage");
    let port = database_port(&database);
    let target = format!("127.0.0.1:{port}").parse().unwrap();
    let mut proxy = TcpProxy::start("127.0.0.1:0".parse().unwrap(), target);
    let through_proxy = database.replacen(&format!("127.0.0.1:{port}"), &proxy.addr.to_string(), 1);
    assert_ne!(through_proxy, database, "{database} names 127.0.0.1:<port>");
    let served = replica(dir.path(), "r1", &through_proxy);
    let arn = deploy(
        &served.url,
        "assistant",
        corral_examples::ASSISTANT_AGENT.to_vec(),
    )
    .await;
    let chat = session_id("outage");
    let first = ask(&served.url, &arn, &chat, FIRST).await;
    assert_eq!(first["response"], "(17 * 23) + 4 = 395.", "{first}");
    let ids = boto3(&["memory-ids", &served.url, "agents"]).await;
    let memory = ids["ids"][0].as_str().unwrap().to_string();
    let put = boto3(&["put-event", &served.url, &memory, &chat, "before"]).await;
    assert!(put["eventId"].is_string(), "{put}");

    // The database goes away: every connection cut, none accepted.
    proxy.stop();
    assert!(
        ping_becomes(&served.url, 503, 100).await,
        "/ping stayed healthy without the database"
    );
    let refused = ask(&served.url, &arn, &chat, SECOND).await;
    assert_eq!(
        (refused["error"].as_str(), refused["status"].as_u64()),
        (Some("ServiceUnavailableException"), Some(503)),
        "{refused}"
    );
    let put = boto3(&["put-event", &served.url, &memory, &chat, "while away"]).await;
    assert_eq!(put["error"], "ServiceException", "{put}");

    // It comes back: the replica recovers without a restart, and the
    // conversation and acknowledged events are intact.
    let _proxy = TcpProxy::start(proxy.addr, target);
    assert!(
        ping_becomes(&served.url, 200, 200).await,
        "/ping did not recover"
    );
    let second = ask(&served.url, &arn, &chat, SECOND).await;
    assert_eq!(
        second["response"],
        "395 / 5 = 79.",
        "{second}\n{}",
        log_of(dir.path(), "r1")
    );
    let listed = boto3(&["list-events", &served.url, &memory, &chat]).await;
    assert_eq!(listed["texts"], json!(["before"]), "{listed}");
}
