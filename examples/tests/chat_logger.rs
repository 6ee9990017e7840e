//! The `chat_logger` example in a real room: the embedded broker (in-process) and a headless
//! Chromium Kibitz host with the lobby on. Admitted, it prints browser chat as JSON lines; a
//! tampered manifest stops it before it joins.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use agent_runtime::broker::{Broker, BrokerOptions};
use capability_manifest::{sign_manifest, AgentKey, AgentManifest, ValidateOptions};
use kibitz_test_harness::{Browser, BrowserOptions, PeerJsServer, PeerOptions, Role};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_chat_logger");
const WAIT: Duration = Duration::from_secs(30);

/// Writes `agent.jwk` and `chat-logger.jws` (the shipped manifest, signed now) into `dir`.
fn sign_into(dir: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/chat-logger.json");
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    value["issued_at"] = json!(now);
    let manifest = AgentManifest::from_value(&value).unwrap();
    let key = AgentKey::generate();
    let signed = sign_manifest(&manifest, &key, ValidateOptions::default()).unwrap();
    std::fs::write(dir.join("agent.jwk"), key.to_jwk_string()).unwrap();
    std::fs::write(dir.join("chat-logger.jws"), &signed.token).unwrap();
    signed.token
}

#[tokio::test]
async fn tampered_manifest_stops_it_before_joining() {
    let dir = tempfile::tempdir().unwrap();
    let token = sign_into(dir.path());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    // Flip the signature's first character: still base64url, no longer valid.
    let first = if parts[2].starts_with('A') { "B" } else { "A" };
    parts[2].replace_range(0..1, first);
    std::fs::write(dir.path().join("bad.jws"), parts.join(".")).unwrap();
    let run = Command::new(BIN)
        .args([
            "--room",
            "r",
            "--broker",
            "ws://127.0.0.1:9/",
            "--manifest",
            "bad.jws",
        ])
        .args(["--key", "agent.jwk"])
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature"), "{err}");
    assert!(!err.contains("joined"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_browser_chat_in_a_real_room() {
    let dir = tempfile::tempdir().unwrap();
    sign_into(dir.path());
    let (broker, _task) = Broker::bind("127.0.0.1:0".parse().unwrap(), BrokerOptions::default())
        .await
        .unwrap();
    let port = broker.local_addr().port();

    let browser = Browser::launch(BrowserOptions::default())
        .await
        .expect("headless Chromium harness");
    let room = "Example Logger";
    // PeerOptions::new wants an npm broker for its defaults; point it at ours instead.
    let placeholder = PeerJsServer::start().await.expect("npm peer broker");
    let mut opts = PeerOptions::new(Role::Host, room, "Alice", &placeholder).lobby(true);
    opts.broker =
        json!({"host": "127.0.0.1", "port": port, "path": "/", "key": "peerjs", "secure": false});
    drop(placeholder);
    let host = browser.open_peer("host", &opts).await.unwrap();
    assert!(host.authority);

    let mut child = Command::new(BIN)
        .args([
            "--room",
            room,
            "--broker",
            &broker.ws_url(),
            "--name",
            "Example logger",
        ])
        .args([
            "--manifest",
            "chat-logger.jws",
            "--key",
            "agent.jwk",
            "--loopback",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();

    browser
        .wait_for(
            "host",
            "knock",
            |e| e.str("name") == Some("Example logger"),
            WAIT,
        )
        .await
        .unwrap();
    browser.admit("host", "Example logger").await.unwrap();
    let me = browser
        .wait_member("host", "Example logger", WAIT)
        .await
        .unwrap();
    assert_eq!(me.pointer("/meta/readOnly"), Some(&json!(true)), "{me}");
    let agent_id = me["id"].as_str().unwrap().to_owned();

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let sent = browser.chat("host", "hello logger").await.unwrap();
        if sent["sent"] == json!([agent_id.clone()]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chat never sent: {sent}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let line = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .expect("a line within the wait")
        .unwrap()
        .expect("stdout open");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["agent"], "Chat logger", "{v}");
    assert_eq!(v["artifact"]["kind"], "chat", "{v}");
    assert_eq!(v["artifact"]["data"]["text"], "hello logger", "{v}");
    assert_eq!(v["artifact"]["data"]["n"], 1, "{v}");
    assert_eq!(v["artifact"]["data"]["from"], json!(host.voice_id), "{v}");

    // Kicked: the session ends (exit 2) after the summary artifact.
    browser.kick("host", &agent_id).await.unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let summary = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(&summary.unwrap()).unwrap();
    assert_eq!(v["artifact"]["type"], "summary", "{v}");
    assert_eq!(v["artifact"]["text"], "1 chat line(s) logged", "{v}");
    browser.shutdown().await.unwrap();
    broker.shutdown();
}
