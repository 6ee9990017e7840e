//! An embedded PeerJS-compatible broker for local and offline rooms.
//!
//! It speaks the peerjs-server protocol (`kibitz-wire.md` §2.2): `GET {path}` (JSON info),
//! `GET {path}{key}/id` (a UUID v4 as text), and the WebSocket `{path}peerjs?key&id&token`.
//! Behaviour follows peerjs-server 1.0: `OPEN` on registration; `ID-TAKEN` for a held id with a
//! different token; the same id and token silently re-attach to the new socket; relayed frames
//! get `src`; frames for an absent id are queued and answered with one `EXPIRE` per sender
//! after `expire_timeout`; a disconnect sends no `LEAVE`; clients that send no `HEARTBEAT` for
//! `alive_timeout` are dropped.
//!
//! The protocol logic lives in the sans-I/O [`realm::Realm`]; `server` is the axum shell.

pub mod realm;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::signaling::MAX_FRAME_LEN;

/// Broker settings. `Default` matches peerjs-server's defaults (path `/`, key `peerjs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerOptions {
    /// Mount path (normalised to leading and trailing `/`).
    pub path: String,
    /// Accepted API key.
    pub key: String,
    /// Queued messages older than this are answered with `EXPIRE` (5000 ms).
    pub expire_timeout: Duration,
    /// Clients without a `HEARTBEAT` for this long are dropped (60 000 ms, the `peerjs` CLI
    /// default; the library default is 90 000 ms).
    pub alive_timeout: Duration,
    /// Most ids registered at once (5000).
    pub concurrent_limit: usize,
    /// How often queues are checked for expiry (`cleanup_out_msgs`, 1000 ms).
    pub cleanup_interval: Duration,
    /// How often clients are checked for liveness (300 ms).
    pub check_interval: Duration,
    /// Largest accepted WebSocket message, in bytes (1 MiB).
    pub max_message_size: usize,
    /// Serve `GET {path}{key}/peers` (off).
    pub allow_discovery: bool,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            path: "/".to_owned(),
            key: crate::signaling::DEFAULT_KEY.to_owned(),
            expire_timeout: Duration::from_millis(5000),
            alive_timeout: Duration::from_millis(60_000),
            concurrent_limit: 5000,
            cleanup_interval: Duration::from_millis(1000),
            check_interval: Duration::from_millis(300),
            max_message_size: MAX_FRAME_LEN,
            allow_discovery: false,
        }
    }
}

/// The embedded broker.
#[derive(Debug)]
pub struct Broker;

/// Controls a running broker.
#[derive(Debug, Clone)]
pub struct BrokerHandle {
    local_addr: SocketAddr,
    path: String,
    key: String,
    cancel: CancellationToken,
}

impl BrokerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://addr{path}`, e.g. `ws://127.0.0.1:9000/`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.local_addr, self.path)
    }

    /// A client configuration pointing at this broker.
    pub fn client_config(&self) -> crate::signaling::BrokerConfig {
        let host = match self.local_addr.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        crate::signaling::BrokerConfig {
            host,
            port: self.local_addr.port(),
            path: self.path.clone(),
            key: self.key.clone(),
            secure: false,
        }
    }

    /// Stops accepting, closes every socket; the server task then finishes.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

impl Broker {
    /// Binds `addr` and starts serving. The returned task ends after
    /// [`BrokerHandle::shutdown`], once every socket is closed.
    pub async fn bind(
        addr: SocketAddr,
        opts: BrokerOptions,
    ) -> std::io::Result<(BrokerHandle, JoinHandle<std::io::Result<()>>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let path = crate::signaling::normalize_path(&opts.path);
        let key = opts.key.clone();
        let shared = server::Shared::new(opts, cancel.clone());
        let task = tokio::spawn(server::run(listener, shared));
        tracing::info!(%local_addr, %path, "broker listening");
        Ok((
            BrokerHandle {
                local_addr,
                path,
                key,
                cancel,
            },
            task,
        ))
    }
}
