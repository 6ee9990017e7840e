//! The tokio shell: id allocation, the WebSocket, heartbeat, relaying and reconnect.
//!
//! One driver task per client owns the socket. It is cancelled by
//! [`SignalingHandle::close`] (which waits for it) or when the last handle is dropped (it then
//! closes the socket and emits `Closed` on its own).
//!
//! Attaching: after the WebSocket opens, the client sends a WebSocket ping. peerjs-server
//! answers a fresh registration with `OPEN` (and a refusal with `ID-TAKEN`/`ERROR`) before it
//! reads anything, so a pong that arrives first means the broker silently re-attached the id to
//! this socket (same id and token while it still held the old socket) — peerjs-server sends no
//! `OPEN` in that case.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::backoff::{Backoff, BackoffPolicy};
use super::config::{random_token, validate_id, BrokerConfig};
use super::error::SignalingError;
use super::event::SignalingEvent;
use super::frame::{AnswerPayload, CandidatePayload, ClientFrame, OfferPayload, ServerFrame};
use super::id_api::retrieve_id;
use super::session::{attach_step, inbound_text, AttachStep, Inbound};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Kibitz's broker keepalive (`BROKER_PING_MS` [N]).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(5000);

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Claim this id (e.g. `kbz-v1-room`); `None` asks the broker for one.
    pub id: Option<String>,
    /// Connection token; `None` draws a random 20-char base36 token. Kept for the client's life.
    pub token: Option<String>,
    /// Interval between `HEARTBEAT` frames (Kibitz: 5000 ms).
    pub heartbeat: Duration,
    /// How long the broker may take to accept the socket (WS handshake through `OPEN`).
    pub open_timeout: Duration,
    /// Timeout of the `GET …/id` request.
    pub http_timeout: Duration,
    /// Retry schedule for the first connection and for reconnects.
    pub backoff: BackoffPolicy,
    /// Seed for the backoff jitter (`None`: from entropy).
    pub backoff_seed: Option<u64>,
    /// Capacity of the event channel. The driver waits for room, so an owner that stops
    /// reading also stops the heartbeat.
    pub event_capacity: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            id: None,
            token: None,
            heartbeat: DEFAULT_HEARTBEAT,
            open_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
            backoff: BackoffPolicy::default(),
            backoff_seed: None,
            event_capacity: 256,
        }
    }
}

/// Entry point of the PeerJS broker client.
#[derive(Debug)]
pub struct SignalingClient;

impl SignalingClient {
    /// Allocates (or claims) an id, opens the broker socket and waits until the broker accepts
    /// it. Transient failures (refused connection, socket closed before `OPEN`, timeouts) are
    /// retried on the backoff schedule; a taken id, a rejected key or a broker `ERROR` fail at
    /// once.
    ///
    /// Returns the handle and the event stream. Frames sent while the socket is down are
    /// dropped, as PeerJS does.
    pub async fn connect(
        cfg: BrokerConfig,
        opts: ConnectOptions,
    ) -> Result<(SignalingHandle, mpsc::Receiver<SignalingEvent>), SignalingError> {
        let cfg = cfg.normalized();
        let mut backoff = match opts.backoff_seed {
            Some(seed) => Backoff::with_seed(opts.backoff, seed),
            None => Backoff::new(opts.backoff),
        };
        let token = opts.token.clone().unwrap_or_else(random_token);
        let id = match &opts.id {
            Some(id) if validate_id(id) => id.clone(),
            Some(id) => return Err(SignalingError::InvalidId(id.clone())),
            None => allocate_id(&cfg, &opts, &mut backoff).await?,
        };
        let attached = establish(&cfg, &id, &token, &opts, &mut backoff, None).await?;
        let Some((ws, first)) = attached else {
            return Err(SignalingError::Closed);
        };
        backoff.reset();

        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (ev_tx, ev_rx) = mpsc::channel(opts.event_capacity.max(1));
        let cancel = CancellationToken::new();
        let driver = Driver {
            cfg,
            id: id.clone(),
            token: token.clone(),
            opts,
            backoff,
            cmd_rx,
            ev_tx,
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(driver.run(ws, first));
        let handle = SignalingHandle {
            inner: Arc::new(Inner {
                id,
                token,
                cmd_tx,
                cancel: cancel.clone(),
                task: Mutex::new(Some(task)),
                _guard: cancel.drop_guard(),
            }),
        };
        Ok((handle, ev_rx))
    }
}

struct Inner {
    id: String,
    token: String,
    cmd_tx: mpsc::Sender<ClientFrame>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    _guard: DropGuard,
}

/// A cheap, cloneable handle to a running client. Dropping the last clone stops it.
#[derive(Clone)]
pub struct SignalingHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SignalingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingHandle")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl SignalingHandle {
    /// The registered peer id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The connection token (stable for the client's life).
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// Queues a raw frame for the broker.
    pub async fn send(&self, frame: ClientFrame) -> Result<(), SignalingError> {
        self.inner
            .cmd_tx
            .send(frame)
            .await
            .map_err(|_| SignalingError::Closed)
    }

    /// Sends an `OFFER` to `dst`.
    pub async fn send_offer(
        &self,
        dst: &str,
        payload: &OfferPayload,
    ) -> Result<(), SignalingError> {
        self.send(ClientFrame::offer(dst, payload)).await
    }

    /// Sends an `ANSWER` to `dst`.
    pub async fn send_answer(
        &self,
        dst: &str,
        payload: &AnswerPayload,
    ) -> Result<(), SignalingError> {
        self.send(ClientFrame::answer(dst, payload)).await
    }

    /// Sends a `CANDIDATE` to `dst`.
    pub async fn send_candidate(
        &self,
        dst: &str,
        payload: &CandidatePayload,
    ) -> Result<(), SignalingError> {
        self.send(ClientFrame::candidate(dst, payload)).await
    }

    /// Whether the client has stopped.
    pub fn is_closed(&self) -> bool {
        self.inner.cancel.is_cancelled() || self.inner.cmd_tx.is_closed()
    }

    /// Closes the socket, stops the driver and waits for it to finish.
    pub async fn close(&self) {
        self.inner.cancel.cancel();
        let task = self.inner.task.lock().await.take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// `GET …/id`, retrying transport failures on the backoff schedule.
async fn allocate_id(
    cfg: &BrokerConfig,
    opts: &ConnectOptions,
    backoff: &mut Backoff,
) -> Result<String, SignalingError> {
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| SignalingError::IdRequest(e.to_string()))?;
    loop {
        match retrieve_id(&http, cfg, opts.http_timeout).await {
            Ok(id) => return Ok(id),
            Err(e @ SignalingError::IdRequest(_)) => match backoff.next_delay() {
                Some(d) => {
                    tracing::debug!(error = %e, delay = ?d, "id request failed; retrying");
                    tokio::time::sleep(d).await;
                }
                None => {
                    return Err(SignalingError::ReconnectExhausted {
                        attempts: backoff.attempts(),
                        last: e.to_string(),
                    })
                }
            },
            Err(e) => return Err(e),
        }
    }
}

/// Attaches, retrying transient failures. `Ok(None)` means cancelled.
async fn establish(
    cfg: &BrokerConfig,
    id: &str,
    token: &str,
    opts: &ConnectOptions,
    backoff: &mut Backoff,
    cancel: Option<&CancellationToken>,
) -> Result<Option<(Ws, Option<String>)>, SignalingError> {
    loop {
        let attempt = attach(cfg, id, token, opts.open_timeout);
        let outcome = match cancel {
            Some(c) => tokio::select! {
                _ = c.cancelled() => return Ok(None),
                r = attempt => r,
            },
            None => attempt.await,
        };
        let err = match outcome {
            Ok(ok) => return Ok(Some(ok)),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        let Some(delay) = backoff.next_delay() else {
            return Err(SignalingError::ReconnectExhausted {
                attempts: backoff.attempts(),
                last: err.to_string(),
            });
        };
        tracing::debug!(error = %err, ?delay, attempt = backoff.attempts(), "broker attach failed; retrying");
        match cancel {
            Some(c) => {
                tokio::select! {
                    _ = c.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            None => tokio::time::sleep(delay).await,
        }
    }
}

/// One attach attempt. On success returns the socket and, for a silent re-attach, the first
/// relayed frame's text (still to be delivered).
async fn attach(
    cfg: &BrokerConfig,
    id: &str,
    token: &str,
    open_timeout: Duration,
) -> Result<(Ws, Option<String>), SignalingError> {
    let url = cfg.socket_url(id, token);
    let work = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| SignalingError::Connect(e.to_string()))?;
        ws.send(Message::Ping(b"kibitz-agent".to_vec()))
            .await
            .map_err(|e| SignalingError::Connect(e.to_string()))?;
        loop {
            let msg = match ws.next().await {
                None => return Err(SignalingError::Connect("socket closed before OPEN".into())),
                Some(Err(e)) => return Err(SignalingError::Connect(e.to_string())),
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(text) => match ServerFrame::decode(text.as_bytes()) {
                    Ok(frame) => match attach_step(&frame, id) {
                        AttachStep::Opened => return Ok((ws, None)),
                        AttachStep::Reattached => return Ok((ws, Some(text))),
                        AttachStep::Refused(e) => {
                            let _ = ws.close(None).await;
                            return Err(e);
                        }
                        AttachStep::Pending => {}
                    },
                    Err(e) => tracing::debug!(error = %e, "ignoring malformed broker frame"),
                },
                Message::Pong(_) => return Ok((ws, None)),
                Message::Close(_) => {
                    return Err(SignalingError::Connect("socket closed before OPEN".into()))
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(open_timeout, work)
        .await
        .map_err(|_| SignalingError::OpenTimeout(open_timeout))?
}

struct Driver {
    cfg: BrokerConfig,
    id: String,
    token: String,
    opts: ConnectOptions,
    backoff: Backoff,
    cmd_rx: mpsc::Receiver<ClientFrame>,
    ev_tx: mpsc::Sender<SignalingEvent>,
    cancel: CancellationToken,
}

enum SessionEnd {
    Cancelled,
    Dropped(String),
    Fatal(SignalingError),
}

impl Driver {
    async fn emit(&self, ev: SignalingEvent) {
        // The owner may have dropped the receiver; the client keeps serving sends.
        let _ = self.ev_tx.send(ev).await;
    }

    async fn run(mut self, mut ws: Ws, mut first: Option<String>) {
        loop {
            let end = self.session(&mut ws, first.take()).await;
            match end {
                SessionEnd::Cancelled => {
                    let _ = ws.close(None).await;
                    break;
                }
                SessionEnd::Fatal(e) => {
                    tracing::warn!(id = %self.id, error = %e, "signaling stopped");
                    let _ = ws.close(None).await;
                    self.emit(SignalingEvent::Failed(e)).await;
                    break;
                }
                SessionEnd::Dropped(why) => {
                    tracing::info!(id = %self.id, reason = %why, "broker connection dropped; reconnecting");
                    self.emit(SignalingEvent::Disconnected).await;
                    self.backoff.reset();
                    // First retry follows a backoff delay, like every later one.
                    let cancel = self.cancel.clone();
                    let res = match self.backoff.next_delay() {
                        Some(d) => {
                            let slept = tokio::select! {
                                _ = cancel.cancelled() => false,
                                _ = tokio::time::sleep(d) => true,
                            };
                            if slept {
                                establish(
                                    &self.cfg,
                                    &self.id,
                                    &self.token,
                                    &self.opts,
                                    &mut self.backoff,
                                    Some(&cancel),
                                )
                                .await
                            } else {
                                Ok(None)
                            }
                        }
                        None => Err(SignalingError::ReconnectExhausted {
                            attempts: 0,
                            last: why,
                        }),
                    };
                    match res {
                        Ok(Some((new_ws, f))) => {
                            ws = new_ws;
                            first = f;
                            self.backoff.reset();
                            // Frames queued while the socket was down are dropped, as PeerJS does.
                            while self.cmd_rx.try_recv().is_ok() {}
                            self.emit(SignalingEvent::Reconnected).await;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            self.emit(SignalingEvent::Failed(e)).await;
                            break;
                        }
                    }
                }
            }
        }
        // Refuse further sends before announcing the end.
        self.cmd_rx.close();
        self.emit(SignalingEvent::Closed).await;
    }

    /// Runs one socket until it drops, the client is cancelled or a fatal frame arrives.
    async fn session(&mut self, ws: &mut Ws, first: Option<String>) -> SessionEnd {
        if let Some(text) = first {
            if let Some(end) = self.handle_text(text.as_bytes()).await {
                return end;
            }
        }
        let period = self.opts.heartbeat.max(Duration::from_millis(1));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return SessionEnd::Cancelled,
                _ = heartbeat.tick() => {
                    if let Err(e) = ws.send(Message::Text(ClientFrame::heartbeat().to_json())).await {
                        return SessionEnd::Dropped(e.to_string());
                    }
                }
                cmd = self.cmd_rx.recv() => {
                    let Some(frame) = cmd else { return SessionEnd::Cancelled };
                    if let Err(e) = ws.send(Message::Text(frame.to_json())).await {
                        return SessionEnd::Dropped(e.to_string());
                    }
                }
                msg = ws.next() => {
                    let msg = match msg {
                        None => return SessionEnd::Dropped("socket closed".into()),
                        Some(Err(e)) => return SessionEnd::Dropped(e.to_string()),
                        Some(Ok(m)) => m,
                    };
                    match msg {
                        Message::Text(text) => {
                            if let Some(end) = self.handle_text(text.as_bytes()).await {
                                return end;
                            }
                        }
                        Message::Close(_) => return SessionEnd::Dropped("closed by broker".into()),
                        Message::Binary(b) => {
                            tracing::debug!(len = b.len(), "ignoring binary broker frame");
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    async fn handle_text(&mut self, text: &[u8]) -> Option<SessionEnd> {
        match inbound_text(text, &self.id) {
            Inbound::Event(ev) => {
                self.emit(ev).await;
                None
            }
            Inbound::Fatal(e) => Some(SessionEnd::Fatal(e)),
            Inbound::Ignore(why) => {
                tracing::debug!(id = %self.id, reason = %why, "ignoring broker frame");
                None
            }
        }
    }
}
