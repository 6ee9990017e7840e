//! The npm `peer` PeerJS broker, on `127.0.0.1` and a free port.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::paths;

const START_TIMEOUT: Duration = Duration::from_secs(15);
const ATTEMPTS: usize = 3;
const HOST: &str = "127.0.0.1";

/// A running npm `peer` broker (`peerjs --port <free> --host 127.0.0.1 --path /`).
/// Killed when dropped.
#[derive(Debug)]
pub struct PeerJsServer {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl PeerJsServer {
    /// Start the broker and wait until it accepts connections.
    pub async fn start() -> Result<Self> {
        Self::start_with_args(&[]).await
    }

    /// Start the broker with extra CLI flags (e.g. `["--expire_timeout", "2000"]`).
    pub async fn start_with_args(extra: &[&str]) -> Result<Self> {
        let node = paths::node()?;
        let bin = paths::npm_file("peer/dist/bin/peerjs.js")?;
        let mut last_err = None;
        for _ in 0..ATTEMPTS {
            let port = free_port()?;
            let mut cmd = Command::new(&node);
            cmd.arg(&bin)
                .args(["--port", &port.to_string(), "--host", HOST, "--path", "/"])
                .args(extra)
                .current_dir(paths::js_dir())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = cmd.spawn().context("spawning the npm peer broker")?;
            let log = Arc::new(Mutex::new(Vec::new()));
            if let Some(out) = child.stdout.take() {
                collect(out, log.clone());
            }
            if let Some(err) = child.stderr.take() {
                collect(err, log.clone());
            }
            let mut server = Self { child, port, log };
            match server.wait_ready().await {
                Ok(()) => {
                    tracing::debug!(port, "npm peer broker up");
                    return Ok(server);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("peer broker did not start")))
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "npm peer broker exited ({status}) before accepting connections:\n{}",
                    self.log().join("\n")
                );
            }
            if tokio::net::TcpStream::connect((HOST, self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "npm peer broker did not accept connections on {HOST}:{} within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Host the broker listens on (`127.0.0.1`).
    pub fn host(&self) -> &str {
        HOST
    }

    /// Port the broker listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base URL, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{HOST}:{}/", self.port)
    }

    /// PeerJS client options for the test page: `{host, port, path, key, secure}`.
    pub fn broker_json(&self) -> Value {
        json!({ "host": HOST, "port": self.port, "path": "/", "key": "peerjs", "secure": false })
    }

    /// The broker's output so far (one entry per line).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for PeerJsServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((HOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn collect<R>(reader: R, log: Arc<Mutex<Vec<String>>>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut log) = log.lock() {
                if log.len() < 2000 {
                    log.push(line);
                }
            }
        }
    });
}
