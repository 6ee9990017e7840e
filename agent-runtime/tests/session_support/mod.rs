//! Fixtures for the room-session tests: session options on loopback, event waiting.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use agent_runtime::mesh::MeshOptions;
use agent_runtime::room::ClaimPolicy;
use agent_runtime::session::{SessionEvent, SessionOptions};
use agent_runtime::signaling::{BackoffPolicy, BrokerConfig, ConnectOptions};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

/// Broker client options for tests: quick timeouts and backoff.
pub(crate) fn quick_signaling() -> ConnectOptions {
    ConnectOptions {
        open_timeout: Duration::from_secs(5),
        http_timeout: Duration::from_secs(5),
        backoff: BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            floor: Duration::from_millis(20),
            max_attempts: 40,
        },
        ..ConnectOptions::default()
    }
}

/// An agent session (default agent meta, never claims) on loopback.
pub(crate) fn agent_opts(broker: BrokerConfig, room: &str, name: &str) -> SessionOptions {
    SessionOptions {
        broker,
        room: room.into(),
        name: name.into(),
        mesh: MeshOptions::loopback(),
        signaling: quick_signaling(),
        ..SessionOptions::default()
    }
}

/// A human-like host session that claims the room (current-generation engine block).
pub(crate) fn host_opts(broker: BrokerConfig, room: &str, name: &str) -> SessionOptions {
    SessionOptions {
        claim: ClaimPolicy::Allowed,
        meta: Some(json!({"~kbz": {"v": "0.1.0", "p": 1, "f": ["chat.v1", "caps.v1"]}})),
        ..agent_opts(broker, room, name)
    }
}

/// Waits for the first event matching `f`, panicking on timeout, on the end of the stream,
/// or on an unexpected terminal event.
pub(crate) async fn wait_for(
    rx: &mut UnboundedReceiver<SessionEvent>,
    what: &str,
    secs: u64,
    mut f: impl FnMut(&SessionEvent) -> bool,
) -> SessionEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if f(&ev) => return ev,
            Ok(Some(ev)) if ev.is_terminal() => {
                panic!("terminal event {ev:?} while waiting for {what}")
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("event stream ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {secs} s"),
        }
    }
}

/// Every event that arrives within `dur`.
pub(crate) async fn events_for(
    rx: &mut UnboundedReceiver<SessionEvent>,
    dur: Duration,
) -> Vec<SessionEvent> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + dur;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(ev);
    }
    out
}

/// Polls `f` every 50 ms until it holds, panicking after `secs`.
pub(crate) async fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
