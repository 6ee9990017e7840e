//! A PeerJS DataConnection on webrtc-rs (`kibitz-wire.md` §2.2, §3; PeerJS
//! `DataConnection.ts`, `negotiator.ts`).
//!
//! One peer connection carries one reliable, ordered data channel. Each [`send`] is one
//! binary SCTP message (PPID 53); framing (BinaryPack, PeerJS chunking) is the caller's.
//! Events arrive in order: [`Open`](DataConnectionEvent::Open), then messages, then exactly
//! one [`Closed`](DataConnectionEvent::Closed) (preceded by an
//! [`Error`](DataConnectionEvent::Error) when the connection failed).
//!
//! [`send`]: DataConnection::send

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{PeerConnection, RTCIceConnectionState, RTCPeerConnectionState};

use super::cert::fingerprint_of_der;
use super::glue;
use super::negotiator::Negotiator;
use super::peer_connection::PcEvent;
use super::signal::{
    CandidatePayload, IceCandidateInit, OutboundSignal, SdpType, SessionDescription, SignalSink,
};
use super::MeshError;

/// Events delivered to the owner of a [`DataConnection`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DataConnectionEvent {
    /// The data channel is open; sending is possible and the remote fingerprint is known.
    Open,
    /// One binary message (one SCTP message) from the remote peer.
    Message(Bytes),
    /// One text message. PeerJS's binary serialization never sends these; tolerated.
    Text(String),
    /// The connection failed; a [`Closed`](DataConnectionEvent::Closed) follows.
    Error(MeshError),
    /// The connection is closed. Always the last event.
    Closed,
}

/// Which side created the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We dialled (sent the OFFER and created the data channel).
    Outgoing,
    /// The remote peer dialled; we answered.
    Incoming,
}

/// Properties of the negotiated data channel, read from webrtc-rs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel label (`dc_…` or `bulk` for Kibitz).
    pub label: String,
    /// Ordered delivery.
    pub ordered: bool,
    /// Partial reliability by retransmit count (`None` = fully reliable).
    pub max_retransmits: Option<u16>,
    /// Partial reliability by lifetime (`None` = fully reliable).
    pub max_packet_life_time: Option<u16>,
    /// Pre-negotiated out of band (PeerJS: never).
    pub negotiated: bool,
}

/// Requests from handles and the mesh to a connection's task.
pub(crate) enum Command {
    RemoteAnswer(SessionDescription),
    RemoteCandidate(IceCandidateInit),
    Fail(MeshError),
    Close,
    ChannelClosed,
}

/// State shared by a connection's handles, its task and the mesh registry.
pub(crate) struct ConnShared {
    pub(crate) peer: String,
    pub(crate) connection_id: String,
    pub(crate) label: String,
    pub(crate) direction: Direction,
    pub(crate) cmd_tx: mpsc::UnboundedSender<Command>,
    channel: OnceLock<Arc<dyn DataChannel>>,
    remote_fingerprint: OnceLock<String>,
    closed: AtomicBool,
}

impl ConnShared {
    pub(crate) fn new(
        peer: String,
        connection_id: String,
        label: String,
        direction: Direction,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Command>) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(ConnShared {
            peer,
            connection_id,
            label,
            direction,
            cmd_tx,
            channel: OnceLock::new(),
            remote_fingerprint: OnceLock::new(),
            closed: AtomicBool::new(false),
        });
        (shared, cmd_rx)
    }

    pub(crate) fn command(&self, cmd: Command) {
        let _ = self.cmd_tx.send(cmd);
    }

    fn open_channel(&self) -> Result<&Arc<dyn DataChannel>, MeshError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(MeshError::Closed);
        }
        self.channel.get().ok_or(MeshError::NotOpen)
    }

    async fn send(&self, data: Bytes) -> Result<(), MeshError> {
        let dc = self.open_channel()?;
        let len = data.len();
        dc.send(BytesMut::from(data.as_ref()))
            .await
            .map_err(|e| send_error(e, len))
    }

    async fn try_send(&self, data: Bytes) -> Result<(), MeshError> {
        let dc = self.open_channel()?;
        let len = data.len();
        dc.try_send(BytesMut::from(data.as_ref()))
            .await
            .map_err(|e| send_error(e, len))
    }
}

fn send_error(e: webrtc::error::Error, len: usize) -> MeshError {
    match e {
        webrtc::error::Error::ErrSendBufferFull => MeshError::SendBufferFull,
        webrtc::error::Error::ErrOutboundPacketTooLarge => MeshError::MessageTooLarge(len),
        webrtc::error::Error::ErrDataChannelClosed | webrtc::error::Error::ErrConnectionClosed => {
            MeshError::Closed
        }
        e => MeshError::WebRtc(e),
    }
}

/// A PeerJS DataConnection to one remote peer, keyed by (peer id, connection id).
///
/// Dropping it closes the connection.
pub struct DataConnection {
    shared: Arc<ConnShared>,
    events: mpsc::Receiver<DataConnectionEvent>,
    reliable: bool,
    serialization: String,
}

impl std::fmt::Debug for DataConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataConnection")
            .field("peer", &self.shared.peer)
            .field("connection_id", &self.shared.connection_id)
            .field("label", &self.shared.label)
            .field("direction", &self.shared.direction)
            .finish_non_exhaustive()
    }
}

impl DataConnection {
    pub(crate) fn new(
        shared: Arc<ConnShared>,
        events: mpsc::Receiver<DataConnectionEvent>,
        reliable: bool,
        serialization: String,
    ) -> Self {
        DataConnection {
            shared,
            events,
            reliable,
            serialization,
        }
    }

    /// The remote peer's broker id.
    pub fn peer(&self) -> &str {
        &self.shared.peer
    }

    /// The PeerJS connection id (`dc_…`).
    pub fn connection_id(&self) -> &str {
        &self.shared.connection_id
    }

    /// The label from the OFFER (`bulk`, or the connection id).
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// `reliable` from the OFFER.
    pub fn reliable(&self) -> bool {
        self.reliable
    }

    /// `serialization` from the OFFER (`binary` for Kibitz).
    pub fn serialization(&self) -> &str {
        &self.serialization
    }

    /// Who dialled.
    pub fn direction(&self) -> Direction {
        self.shared.direction
    }

    /// Whether the channel is open and not yet closed.
    pub fn is_open(&self) -> bool {
        self.shared.channel.get().is_some() && !self.shared.closed.load(Ordering::Acquire)
    }

    /// The remote certificate's fingerprint (SHA-256 of its DER, lowercase colon-hex), known
    /// once the connection is open.
    pub fn remote_fingerprint(&self) -> Option<&str> {
        self.shared.remote_fingerprint.get().map(String::as_str)
    }

    /// The next event; `None` after [`DataConnectionEvent::Closed`] has been taken.
    pub async fn recv(&mut self) -> Option<DataConnectionEvent> {
        self.events.recv().await
    }

    /// Sends one binary message, waiting while the channel's buffer is above the high-water
    /// mark. Fails with [`MeshError::NotOpen`] before `Open` and [`MeshError::Closed`] after.
    pub async fn send(&self, data: Bytes) -> Result<(), MeshError> {
        self.shared.send(data).await
    }

    /// Sends one binary message, failing with [`MeshError::SendBufferFull`] instead of
    /// waiting when the buffer is above the high-water mark.
    pub async fn try_send(&self, data: Bytes) -> Result<(), MeshError> {
        self.shared.try_send(data).await
    }

    /// A cloneable sending handle for other tasks.
    pub fn sender(&self) -> DataSender {
        DataSender {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Bytes handed to `send` and not yet acknowledged by the remote SCTP stack.
    pub async fn buffered_amount(&self) -> usize {
        match self.shared.channel.get() {
            Some(dc) => dc.outstanding_bytes().await.unwrap_or(0),
            None => 0,
        }
    }

    /// The negotiated channel's properties, once open.
    pub async fn channel_info(&self) -> Option<ChannelInfo> {
        let dc = self.shared.channel.get()?;
        Some(ChannelInfo {
            label: dc.label().await.ok()?,
            ordered: dc.ordered().await.ok()?,
            max_retransmits: dc.max_retransmits().await.ok()?,
            max_packet_life_time: dc.max_packet_life_time().await.ok()?,
            negotiated: dc.negotiated().await.ok()?,
        })
    }

    /// Closes the channel and the peer connection. `Closed` follows as the last event.
    pub fn close(&self) {
        self.shared.command(Command::Close);
    }
}

impl Drop for DataConnection {
    fn drop(&mut self) {
        self.shared.command(Command::Close);
    }
}

/// A cloneable handle that can send on (and close) a [`DataConnection`].
#[derive(Clone)]
pub struct DataSender {
    shared: Arc<ConnShared>,
}

impl std::fmt::Debug for DataSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSender")
            .field("peer", &self.shared.peer)
            .field("connection_id", &self.shared.connection_id)
            .finish()
    }
}

impl DataSender {
    /// See [`DataConnection::send`].
    pub async fn send(&self, data: Bytes) -> Result<(), MeshError> {
        self.shared.send(data).await
    }

    /// See [`DataConnection::try_send`].
    pub async fn try_send(&self, data: Bytes) -> Result<(), MeshError> {
        self.shared.try_send(data).await
    }

    /// See [`DataConnection::close`].
    pub fn close(&self) {
        self.shared.command(Command::Close);
    }
}

/// Capacity of a connection's event queue; a slow consumer back-pressures the channel.
pub(crate) const EVENT_QUEUE: usize = 256;
/// How long shutdown waits for the channel reader to drain.
const READER_DRAIN: Duration = Duration::from_secs(1);

/// The task that owns one connection's peer connection.
pub(crate) struct ConnectionTask {
    pub(crate) pc: Arc<dyn PeerConnection>,
    pub(crate) pc_events: mpsc::UnboundedReceiver<PcEvent>,
    pub(crate) cmds: mpsc::UnboundedReceiver<Command>,
    pub(crate) shared: Arc<ConnShared>,
    pub(crate) events_tx: mpsc::Sender<DataConnectionEvent>,
    pub(crate) sink: Arc<dyn SignalSink>,
    pub(crate) negotiator: Negotiator,
    pub(crate) on_exit: Box<dyn FnOnce() + Send + Sync>,
}

impl ConnectionTask {
    /// Runs until the connection closes. `channel` is the offerer's own data channel.
    pub(crate) async fn run(mut self, channel: Option<Arc<dyn DataChannel>>) {
        let started = tokio::time::Instant::now();
        let mut reader = channel.map(|dc| self.start_reader(dc, started));
        let mut next_nudge = started + NUDGE_FAST;
        let failure = loop {
            let opening = self.shared.channel.get().is_none() && next_nudge - started < NUDGE_UNTIL;
            tokio::select! {
                _ = tokio::time::sleep_until(next_nudge), if opening => {
                    nudge_driver(self.pc.as_ref()).await;
                    let step = if next_nudge - started < NUDGE_FAST_FOR { NUDGE_FAST } else { NUDGE_SLOW };
                    next_nudge = tokio::time::Instant::now() + step;
                }
                ev = self.pc_events.recv() => match ev {
                    None => break None,
                    Some(PcEvent::Candidate(c)) => {
                        self.phase(started, "local candidate", &c.candidate);
                        let payload: CandidatePayload = self.negotiator.local_candidate(c);
                        self.sink.send_signal(&self.shared.peer, OutboundSignal::Candidate(payload));
                    }
                    Some(PcEvent::DataChannel(dc)) => {
                        if reader.is_none() {
                            self.phase(started, "remote data channel", "");
                            reader = Some(self.start_reader(dc, started));
                        } else {
                            tracing::debug!(peer = %self.shared.peer, "ignoring extra data channel");
                        }
                    }
                    Some(PcEvent::Ice(RTCIceConnectionState::Failed))
                    | Some(PcEvent::Connection(RTCPeerConnectionState::Failed)) => {
                        break Some(MeshError::IceFailed);
                    }
                    Some(PcEvent::Ice(RTCIceConnectionState::Closed))
                    | Some(PcEvent::Connection(RTCPeerConnectionState::Closed)) => break None,
                    Some(PcEvent::Ice(state)) => self.phase(started, "ice", &state.to_string()),
                    Some(PcEvent::Connection(state)) => {
                        self.phase(started, "connection", &state.to_string());
                    }
                },
                cmd = self.cmds.recv() => match cmd {
                    None | Some(Command::Close) | Some(Command::ChannelClosed) => break None,
                    Some(Command::Fail(e)) => break Some(e),
                    Some(Command::RemoteAnswer(desc)) => {
                        self.phase(started, "answer received", "");
                        if let Err(e) = self.apply_answer(desc).await {
                            break Some(e);
                        }
                    }
                    Some(Command::RemoteCandidate(c)) => {
                        self.phase(started, "remote candidate", &c.candidate);
                        let dropped = self.negotiator.dropped();
                        if let Some(c) = self.negotiator.remote_candidate(c) {
                            self.add_candidate(c).await;
                        } else if self.negotiator.dropped() > dropped {
                            tracing::debug!(peer = %self.shared.peer, "early candidate queue full; dropped one");
                        }
                    }
                },
            }
        };
        self.shutdown(reader, failure).await;
    }

    async fn shutdown(self, reader: Option<JoinHandle<()>>, failure: Option<MeshError>) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(dc) = self.shared.channel.get() {
            let _ = dc.close().await;
        }
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing peer connection");
        }
        if let Some(mut reader) = reader {
            if tokio::time::timeout(READER_DRAIN, &mut reader)
                .await
                .is_err()
            {
                tracing::debug!(peer = %self.shared.peer, "channel reader did not finish");
                reader.abort();
            }
        }
        (self.on_exit)();
        if let Some(e) = failure {
            tracing::debug!(peer = %self.shared.peer, connection_id = %self.shared.connection_id, error = %e, "data connection failed");
            let _ = self.events_tx.send(DataConnectionEvent::Error(e)).await;
        }
        let _ = self.events_tx.send(DataConnectionEvent::Closed).await;
    }

    async fn apply_answer(&mut self, desc: SessionDescription) -> Result<(), MeshError> {
        let answer = glue::remote_description(SdpType::Answer, desc.sdp)?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(MeshError::WebRtc)?;
        for c in self.negotiator.remote_description_applied() {
            self.add_candidate(c).await;
        }
        Ok(())
    }

    /// Adds a remote candidate; a bad one is logged and dropped, like PeerJS does.
    pub(crate) async fn add_candidate(&self, c: IceCandidateInit) {
        let Some(init) = glue::remote_candidate(c) else {
            tracing::debug!(peer = %self.shared.peer, "dropping unparseable remote candidate");
            return;
        };
        if let Err(e) = self.pc.add_ice_candidate(init).await {
            tracing::debug!(peer = %self.shared.peer, error = %e, "remote candidate rejected");
        }
    }

    /// Logs one step of connection setup with the time since the task started (offer sent
    /// when dialling, answer sent when answering), for open-latency diagnosis.
    fn phase(&self, started: tokio::time::Instant, phase: &str, detail: &str) {
        tracing::debug!(
            peer = %self.shared.peer,
            connection_id = %self.shared.connection_id,
            ms = started.elapsed().as_secs_f64() * 1e3,
            detail,
            "setup: {phase}"
        );
    }

    fn start_reader(
        &self,
        dc: Arc<dyn DataChannel>,
        started: tokio::time::Instant,
    ) -> JoinHandle<()> {
        let reader = ChannelReader {
            started,
            dc,
            pc: Arc::clone(&self.pc),
            shared: Arc::clone(&self.shared),
            events_tx: self.events_tx.clone(),
        };
        tokio::spawn(reader.run())
    }
}

/// Nudge period while a connection is opening, for the first [`NUDGE_FAST_FOR`].
const NUDGE_FAST: Duration = Duration::from_millis(5);
/// How long to nudge at [`NUDGE_FAST`] before slowing to [`NUDGE_SLOW`].
const NUDGE_FAST_FOR: Duration = Duration::from_secs(2);
/// Nudge period after that, until the channel opens or the connection ends.
const NUDGE_SLOW: Duration = Duration::from_millis(50);
/// Nudging stops after this long even if the channel never opened (the owner's open timeout,
/// 15 s in Kibitz, decides what to do with such a connection).
const NUDGE_UNTIL: Duration = Duration::from_secs(30);

/// Wakes the webrtc-rs driver so it re-polls its sans-I/O core.
///
/// webrtc 0.21.1's driver flushes the core's writes before it processes the core's events and
/// then sleeps until the next ICE tick (200 ms), and `add_ice_candidate` does not wake it. So
/// the ICE check after a remote candidate, the SCTP INIT after the DTLS handshake and the DCEP
/// OPEN after the SCTP handshake each wait up to 200 ms. Re-applying the unchanged
/// configuration is a no-op for the core that enqueues a driver event, i.e. one extra loop
/// pass; doing it every few milliseconds while opening removes those waits.
async fn nudge_driver(pc: &dyn PeerConnection) {
    let config = pc.get_configuration().await;
    if let Err(e) = pc.set_configuration(config).await {
        tracing::trace!(error = %e, "driver nudge refused");
    }
}

/// Forwards one data channel's events to the connection's owner.
struct ChannelReader {
    started: tokio::time::Instant,
    dc: Arc<dyn DataChannel>,
    pc: Arc<dyn PeerConnection>,
    shared: Arc<ConnShared>,
    events_tx: mpsc::Sender<DataConnectionEvent>,
}

impl ChannelReader {
    async fn run(self) {
        while let Some(ev) = self.dc.poll().await {
            let out = match ev {
                DataChannelEvent::OnOpen => {
                    tracing::debug!(
                        peer = %self.shared.peer,
                        connection_id = %self.shared.connection_id,
                        ms = self.started.elapsed().as_secs_f64() * 1e3,
                        "setup: data channel open"
                    );
                    if let Some(fp) = remote_fingerprint(self.pc.as_ref()).await {
                        let _ = self.shared.remote_fingerprint.set(fp);
                    }
                    let _ = self.shared.channel.set(Arc::clone(&self.dc));
                    DataConnectionEvent::Open
                }
                DataChannelEvent::OnMessage(m) if m.is_string => {
                    DataConnectionEvent::Text(String::from_utf8_lossy(&m.data).into_owned())
                }
                DataChannelEvent::OnMessage(m) => DataConnectionEvent::Message(m.data.freeze()),
                DataChannelEvent::OnClose => break,
                DataChannelEvent::OnError => {
                    tracing::debug!(peer = %self.shared.peer, "data channel error");
                    continue;
                }
                _ => continue,
            };
            if self.events_tx.send(out).await.is_err() {
                break;
            }
        }
        self.shared.command(Command::ChannelClosed);
    }
}

/// SHA-256 of the remote DTLS certificate DER, as a browser's `getRemoteCertificates()[0]`.
async fn remote_fingerprint(pc: &dyn PeerConnection) -> Option<String> {
    let sctp = pc.sctp().await?;
    let certs = sctp.transport().get_remote_certificates().await.ok()?;
    certs.first().map(|der| fingerprint_of_der(der))
}
