//! `kibitz-agent join --manifest … --key … --agent chat-logger` as a process: refused before
//! joining when the manifest does not verify or does not cover the agent's lanes; otherwise
//! admitted by a headless Chromium Kibitz host (npm PeerJS broker), logging browser chat as
//! JSON artifacts, and exiting 33 when kicked.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kibitz_test_harness::{Browser, BrowserOptions, PeerJsServer, PeerOptions, Role};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_kibitz-agent");
const WAIT: Duration = Duration::from_secs(30);

fn chat_logger_manifest() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests/chat-logger.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

async fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    let run = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap()
}

/// A fresh key `agent.jwk` and `manifest` signed with it as `name`.
async fn sign(dir: &Path, manifest: &Value, name: &str) -> PathBuf {
    if !dir.join("agent.jwk").exists() {
        let out = cli(dir, &["keygen", "--out", "agent.jwk"]).await;
        assert!(out.status.success(), "{out:?}");
    }
    let json_name = format!("{name}.json");
    std::fs::write(dir.join(&json_name), manifest.to_string()).unwrap();
    let jws = format!("{name}.jws");
    let out = cli(
        dir,
        &[
            "manifest",
            "sign",
            "--key",
            "agent.jwk",
            "--in",
            &json_name,
            "--out",
            &jws,
            "--expires-in",
            "1d",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    dir.join(jws)
}

/// A loopback URL nothing listens on: joining it would fail with 34, not the code asserted.
fn dead_broker() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("ws://127.0.0.1:{port}/")
}

async fn join_refused(dir: &Path, manifest: &str, key: &str) -> (i32, String) {
    let broker = dead_broker();
    let out = cli(
        dir,
        &[
            "join",
            "--room",
            "refused",
            "--broker",
            &broker,
            "--manifest",
            manifest,
            "--key",
            key,
            "--agent",
            "chat-logger",
            "--connect-attempts",
            "1",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        !stderr.contains("[connecting]"),
        "must refuse before joining: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[tokio::test]
async fn bad_manifests_are_refused_before_joining() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let jws = sign(d, &chat_logger_manifest(), "chat-logger").await;
    let token = std::fs::read_to_string(&jws).unwrap();

    // Tampered payload: the signature no longer covers it → 10.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.trim().split('.').collect();
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["agent"]["name"] = json!("Totally harmless");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    );
    std::fs::write(d.join("tampered.jws"), tampered).unwrap();
    let (code, err) = join_refused(d, "tampered.jws", "agent.jwk").await;
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("manifest refused"), "{err}");

    // Signed by another key than --key → 11.
    let other = cli(d, &["keygen", "--out", "other.jwk"]).await;
    assert!(other.status.success());
    let (code, err) = join_refused(d, "chat-logger.jws", "other.jwk").await;
    assert_eq!(code, 11, "{err}");

    // A manifest that does not declare read-chat, which chat-logger requires → 36.
    let mut narrow = chat_logger_manifest();
    let lanes = narrow["lanes"].as_array_mut().unwrap();
    lanes.retain(|l| l["capability"] != "read-chat");
    sign(d, &narrow, "roster-only").await;
    let (code, err) = join_refused(d, "roster-only.jws", "agent.jwk").await;
    assert_eq!(code, 36, "{err}");
    assert!(
        err.contains("does not declare: read-chat"),
        "clear message: {err}"
    );

    // Unknown agent name → usage (2), listing the built-in agents.
    let out = cli(
        d,
        &[
            "join",
            "--room",
            "r",
            "--broker",
            &dead_broker(),
            "--manifest",
            "chat-logger.jws",
            "--key",
            "agent.jwk",
            "--agent",
            "nope",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("chat-logger"));
}

/// Lines of a child's pipe, as they arrive.
fn lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first JSON line matching `pred` within `WAIT`.
async fn wait_line(
    rx: &mut mpsc::UnboundedReceiver<String>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) => {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if pred(&v) {
                        return v;
                    }
                }
            }
            other => panic!("{what}: not seen ({other:?})"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_logger_joins_a_chromium_room_logs_chat_and_exits_33_on_kick() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sign(d, &chat_logger_manifest(), "chat-logger").await;

    let broker = PeerJsServer::start().await.expect("npm peer broker");
    let browser = Browser::launch(BrowserOptions::default())
        .await
        .expect("headless Chromium harness");
    let room = "Logger Room";
    let host = browser
        .open_peer(
            "host",
            &PeerOptions::new(Role::Host, room, "Alice", &broker).lobby(true),
        )
        .await
        .unwrap();
    assert!(host.authority);

    let url = format!("ws://127.0.0.1:{}/", broker.port());
    let out_dir = d.join("logs");
    let mut child = Command::new(BIN)
        .args([
            "join",
            "--room",
            room,
            "--broker",
            &url,
            "--name",
            "Logger",
            "--manifest",
            "chat-logger.jws",
            "--key",
            "agent.jwk",
            "--agent",
            "chat-logger",
            "--out",
            out_dir.to_str().unwrap(),
            "--loopback",
            "--json",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = lines(child.stdout.take().unwrap());
    let mut stderr = lines(child.stderr.take().unwrap());

    let registered = wait_line(&mut stderr, "registered", |v| v["status"] == "registered").await;
    let agent_id = registered["detail"]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_owned();

    browser
        .wait_for("host", "knock", |e| e.str("name") == Some("Logger"), WAIT)
        .await
        .unwrap();
    wait_line(&mut stderr, "lobby", |v| v["status"] == "lobby").await;
    browser.admit("host", "Logger").await.unwrap();
    let admitted = wait_line(&mut stderr, "admitted", |v| v["status"] == "admitted").await;
    let detail = admitted["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("admitted with grant perceive read-chat"),
        "{detail}"
    );
    let open = wait_line(&mut stderr, "lanes", |v| v["status"] == "lanes").await;
    assert_eq!(open["detail"], "lanes open: read-chat, read-roster");

    // The browser sees the disclosure: an agent, read-only, with a manifest reference.
    let me = browser.wait_member("host", "Logger", WAIT).await.unwrap();
    assert_eq!(me.pointer("/meta/role"), Some(&json!("agent")), "{me}");
    assert_eq!(me.pointer("/meta/readOnly"), Some(&json!(true)), "{me}");
    assert!(me.pointer("/meta/manifest/sha256").is_some(), "{me}");
    assert!(me.pointer("/meta/~kbz/p").is_some(), "{me}");

    // Browser chat becomes a JSON artifact on stdout (retry until the mesh link is up).
    let deadline = tokio::time::Instant::now() + WAIT;
    let artifact = loop {
        let sent = browser.chat("host", "minutes please").await.unwrap();
        if sent["sent"] == json!([agent_id.clone()]) {
            break wait_line(&mut stdout, "chat artifact", |v| {
                v["type"] == "artifact" && v["artifact"]["data"]["text"] == "minutes please"
            })
            .await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chat never sent: {sent}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(artifact["agent"], "Chat logger", "{artifact}");
    assert_eq!(artifact["artifact"]["type"], "custom", "{artifact}");
    assert_eq!(artifact["artifact"]["kind"], "chat", "{artifact}");
    assert_eq!(artifact["artifact"]["data"]["name"], "Alice", "{artifact}");
    assert_eq!(
        artifact["artifact"]["data"]["from"],
        json!(host.voice_id),
        "{artifact}"
    );
    let logged = std::fs::read_to_string(out_dir.join("chat.jsonl")).unwrap();
    assert!(logged.contains("\"text\":\"minutes please\""), "{logged}");

    // Kicked → exit 33.
    browser.kick("host", &agent_id).await.unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits after the kick")
        .unwrap();
    assert_eq!(status.code(), Some(33));
    browser.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_agent_and_leaves_with_exit_0() {
    use agent_runtime::broker::{Broker, BrokerOptions};
    use agent_runtime::mesh::MeshOptions;
    use agent_runtime::room::ClaimPolicy;
    use agent_runtime::session::{RoomSession, SessionOptions};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sign(d, &chat_logger_manifest(), "chat-logger").await;
    let (broker, _task) = Broker::bind("127.0.0.1:0".parse().unwrap(), BrokerOptions::default())
        .await
        .unwrap();
    let (host, _host_ev) = RoomSession::start(SessionOptions {
        broker: broker.client_config(),
        room: "term-room".into(),
        name: "Host".into(),
        meta: Some(json!({})),
        claim: ClaimPolicy::Allowed,
        mesh: MeshOptions::loopback(),
        ..SessionOptions::default()
    })
    .await
    .unwrap();

    let mut child = Command::new(BIN)
        .args(["join", "--room", "term-room", "--broker", &broker.ws_url()])
        .args([
            "--name",
            "Logger",
            "--manifest",
            "chat-logger.jws",
            "--key",
            "agent.jwk",
        ])
        .args(["--agent", "chat-logger", "--loopback", "--json"])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = lines(child.stderr.take().unwrap());
    wait_line(&mut stderr, "admitted", |v| v["status"] == "admitted").await;

    // The Rust host's roster carries the manifest disclosure merged with the engine block.
    let deadline = tokio::time::Instant::now() + WAIT;
    let meta = loop {
        let found = host
            .roster()
            .and_then(|r| r.members.into_iter().find(|m| m.name == "Logger"));
        if let Some(m) = found {
            break m
                .meta
                .as_ref()
                .map(agent_runtime::wire::json::to_json)
                .unwrap_or_default();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent never in roster"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(meta["role"], "agent", "{meta}");
    assert_eq!(meta["readOnly"], true, "{meta}");
    assert!(meta.pointer("/manifest/kid").is_some(), "{meta}");
    assert!(meta.pointer("/~kbz/f").is_some(), "{meta}");

    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    wait_line(&mut stderr, "leaving", |v| v["status"] == "leaving").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while host
        .roster()
        .is_some_and(|r| r.members.iter().any(|m| m.name == "Logger"))
    {
        assert!(tokio::time::Instant::now() < deadline, "agent never left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.leave().await;
    broker.shutdown();
}
