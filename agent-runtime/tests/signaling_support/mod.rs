//! Fixtures shared by the signaling and broker integration tests: starting the embedded broker
//! or the real npm `peer` server on 127.0.0.1, event helpers, raw WebSocket clients.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use agent_runtime::broker::{Broker, BrokerHandle, BrokerOptions};
use agent_runtime::signaling::{
    BackoffPolicy, BrokerConfig, ConnectOptions, OfferPayload, SignalingEvent,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Which broker implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `agent_runtime::broker`.
    Embedded,
    /// The npm `peer` package (peerjs-server), run with node.
    Npm,
}

/// Broker timings used by tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timings {
    pub(crate) expire: Duration,
    pub(crate) alive: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            expire: Duration::from_millis(1000),
            alive: Duration::from_secs(60),
        }
    }
}

enum Running {
    Embedded {
        handle: BrokerHandle,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    },
    Npm {
        child: tokio::process::Child,
    },
    Stopped,
}

/// A broker running on 127.0.0.1 for one test.
pub(crate) struct TestBroker {
    pub(crate) backend: Backend,
    pub(crate) port: u16,
    pub(crate) timings: Timings,
    running: Running,
}

/// The workspace root, from this crate's manifest directory.
pub(crate) fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The npm `peer` server entry point; panics with a setup hint if it is not installed.
pub(crate) fn peer_server_script() -> PathBuf {
    let script = repo_root().join("tests/js/node_modules/peer/dist/bin/peerjs.js");
    assert!(
        script.is_file(),
        "the npm `peer` server is not installed at {}: run the test setup script \
         (scripts/install-test-deps.sh, or `npm ci` in tests/js) before running these tests",
        script.display()
    );
    script
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl TestBroker {
    /// Starts `backend` on a free port.
    pub(crate) async fn start(backend: Backend, timings: Timings) -> Self {
        Self::start_on(backend, timings, free_port()).await
    }

    /// Starts `backend` on `port`.
    pub(crate) async fn start_on(backend: Backend, timings: Timings, port: u16) -> Self {
        let running = match backend {
            Backend::Embedded => {
                let opts = BrokerOptions {
                    expire_timeout: timings.expire,
                    alive_timeout: timings.alive,
                    ..BrokerOptions::default()
                };
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                let (handle, task) = Broker::bind(addr, opts)
                    .await
                    .expect("bind embedded broker");
                Running::Embedded { handle, task }
            }
            Backend::Npm => {
                let script = peer_server_script();
                let mut child = tokio::process::Command::new("node")
                    .arg(&script)
                    .args([
                        "--host",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                        "--path",
                        "/",
                    ])
                    .args(["--expire_timeout", &timings.expire.as_millis().to_string()])
                    .args(["--alive_timeout", &timings.alive.as_millis().to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("spawn node (is node installed?)");
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                loop {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("npm peer server exited early with {status}");
                    }
                    if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                        break;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "npm peer server did not listen on port {port} within 20 s"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Running::Npm { child }
            }
        };
        TestBroker {
            backend,
            port,
            timings,
            running,
        }
    }

    /// Client configuration for this broker.
    pub(crate) fn cfg(&self) -> BrokerConfig {
        BrokerConfig::new("127.0.0.1", self.port, false)
    }

    /// Stops the broker (dropping every socket) and waits until it is gone.
    pub(crate) async fn stop(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Embedded { handle, task } => {
                handle.shutdown();
                let _ = task.await;
            }
            Running::Npm { mut child } => {
                let _ = child.kill().await;
            }
            Running::Stopped => {}
        }
    }

    /// Starts the same backend again on the same port.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let again = Self::start_on(self.backend, self.timings, self.port).await;
        *self = again;
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Running::Embedded { handle, .. } = &self.running {
            handle.shutdown();
        }
        // npm: `kill_on_drop` kills the child.
    }
}

/// Connect options for tests: quick, seeded backoff.
pub(crate) fn quick_opts() -> ConnectOptions {
    ConnectOptions {
        open_timeout: Duration::from_secs(5),
        http_timeout: Duration::from_secs(5),
        backoff: BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            floor: Duration::from_millis(20),
            max_attempts: 40,
        },
        backoff_seed: Some(7),
        ..ConnectOptions::default()
    }
}

/// The next event, or a panic after `secs` seconds.
pub(crate) async fn next_event(
    rx: &mut mpsc::Receiver<SignalingEvent>,
    secs: u64,
) -> SignalingEvent {
    match tokio::time::timeout(Duration::from_secs(secs), rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("event stream ended"),
        Err(_) => panic!("no event within {secs} s"),
    }
}

/// Every event that arrives within `dur`.
pub(crate) async fn events_for(
    rx: &mut mpsc::Receiver<SignalingEvent>,
    dur: Duration,
) -> Vec<SignalingEvent> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + dur;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(ev);
    }
    out
}

/// A Kibitz-style data offer.
pub(crate) fn offer(connection_id: &str) -> OfferPayload {
    OfferPayload::data("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", connection_id, None)
}

/// A raw WebSocket to the broker.
pub(crate) type RawWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a raw WebSocket with the given query values (no OPEN handling).
pub(crate) async fn raw_ws(port: u16, query: &str) -> RawWs {
    let url = format!("ws://127.0.0.1:{port}/peerjs?{query}");
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("raw websocket connect");
    ws
}

/// The next text frame on a raw socket; `None` if it closed first. Panics after `secs`.
pub(crate) async fn raw_next_text(ws: &mut RawWs, secs: u64) -> Option<String> {
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Some(t),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("no frame within {secs} s"))
}

/// Sends a text frame on a raw socket.
pub(crate) async fn raw_send(ws: &mut RawWs, text: &str) {
    ws.send(Message::Text(text.to_owned()))
        .await
        .expect("raw send");
}

/// Runs a test body against both brokers: `both_brokers!(name, …)` expects
/// `async fn name(backend: Backend)` and generates `name::embedded` and `name::npm_peer`.
#[allow(unused_macros)]
macro_rules! both_brokers {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    super::$name(crate::signaling_support::Backend::Embedded).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn npm_peer() {
                    super::$name(crate::signaling_support::Backend::Npm).await
                }
            }
        )*
    };
}
