//! One broker identity (a PeerJS peer): its signaling client, its [`MeshPeer`], the pumps
//! between them, and the reader/writer tasks of each DataConnection.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::mesh::{
    DataConnection, DataConnectionEvent, DtlsIdentity, MeshOptions, MeshPeer, OutboundSignal,
    PeerConnectionFactory,
};
use crate::signaling::{
    BrokerConfig, ConnectOptions, SignalingClient, SignalingError, SignalingEvent, SignalingHandle,
};

use super::input::{Input, LinkEvent, LinkId, PeerKind};

/// A registered broker identity with its mesh.
pub(crate) struct BrokerPeer {
    pub(crate) handle: SignalingHandle,
    pub(crate) mesh: MeshPeer,
    pub(crate) cancel: CancellationToken,
}

/// The receiving ends whose pumps [`BrokerPeer::start_pumps`] spawns.
pub(crate) struct PendingPumps {
    events: mpsc::Receiver<SignalingEvent>,
    sink_rx: mpsc::UnboundedReceiver<(String, OutboundSignal)>,
}

impl BrokerPeer {
    /// Registers with the broker (with `opts.id`, or a server-assigned id) and builds the mesh
    /// peer on the shared certificate.
    pub(crate) async fn connect(
        cfg: BrokerConfig,
        opts: ConnectOptions,
        identity: Arc<DtlsIdentity>,
        mesh_opts: MeshOptions,
        cancel: CancellationToken,
    ) -> Result<(BrokerPeer, PendingPumps), SignalingError> {
        let (handle, events) = SignalingClient::connect(cfg, opts).await?;
        let (sink_tx, sink_rx) = mpsc::unbounded_channel();
        let mesh = MeshPeer::new(
            PeerConnectionFactory::new(identity, mesh_opts),
            Arc::new(sink_tx),
        );
        let peer = BrokerPeer {
            handle,
            mesh,
            cancel,
        };
        Ok((peer, PendingPumps { events, sink_rx }))
    }

    /// The registered id.
    pub(crate) fn id(&self) -> &str {
        self.handle.id()
    }

    /// Spawns the broker → mesh and mesh → broker pumps. Answered OFFERs become
    /// [`Input::Incoming`]; session-level broker events become [`Input::Signal`].
    pub(crate) fn start_pumps(
        &self,
        pending: PendingPumps,
        kind: PeerKind,
        epoch: u64,
        tasks: &mut JoinSet<()>,
        tx: mpsc::UnboundedSender<Input>,
    ) {
        let PendingPumps {
            mut events,
            mut sink_rx,
        } = pending;
        let out = self.handle.clone();
        let cancel = self.cancel.clone();
        tasks.spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => break,
                    n = sink_rx.recv() => n,
                };
                let Some((dst, signal)) = next else { break };
                let sent = match signal {
                    OutboundSignal::Offer(p) => out.send_offer(&dst, &p).await,
                    OutboundSignal::Answer(p) => out.send_answer(&dst, &p).await,
                    OutboundSignal::Candidate(p) => out.send_candidate(&dst, &p).await,
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        let mesh = self.mesh.clone();
        let cancel = self.cancel.clone();
        tasks.spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => break,
                    n = events.recv() => n,
                };
                let Some(ev) = next else { break };
                match ev {
                    SignalingEvent::Offer { src, payload } => {
                        match mesh.handle_offer(&src, payload).await {
                            Ok(conn) => {
                                let _ = tx.send(Input::Incoming { kind, epoch, conn });
                            }
                            Err(e) => tracing::debug!(%src, error = %e, "offer not answered"),
                        }
                    }
                    SignalingEvent::Answer { src, payload } => {
                        if let Err(e) = mesh.handle_answer(&src, payload) {
                            tracing::debug!(%src, error = %e, "answer ignored");
                        }
                    }
                    SignalingEvent::Candidate { src, payload } => {
                        mesh.handle_candidate(&src, payload)
                    }
                    SignalingEvent::Leave { src } => mesh.handle_leave(&src),
                    SignalingEvent::Expire { src } => mesh.handle_expire(&src),
                    event => {
                        let closed = matches!(event, SignalingEvent::Closed);
                        let _ = tx.send(Input::Signal { kind, epoch, event });
                        if closed {
                            break;
                        }
                    }
                }
            }
        });
    }

    /// Stops the pumps, closes every connection and the broker socket (in the background).
    pub(crate) fn shutdown(&self, tasks: &mut JoinSet<()>) {
        self.cancel.cancel();
        self.mesh.close_all();
        let handle = self.handle.clone();
        tasks.spawn(async move { handle.close().await });
    }
}

/// What the loop writes on a link.
#[derive(Debug)]
pub(crate) enum Write {
    /// One SCTP message.
    Data(Bytes),
    /// Close once everything before it was handed to the channel.
    Close,
}

/// Spawns the reader and writer tasks of `conn` and returns the writer's queue.
pub(crate) fn spawn_link(
    mut conn: DataConnection,
    id: LinkId,
    tasks: &mut JoinSet<()>,
    tx: mpsc::UnboundedSender<Input>,
    cancel: CancellationToken,
) -> mpsc::UnboundedSender<Write> {
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Write>();
    let sender = conn.sender();
    let wcancel = cancel.clone();
    tasks.spawn(async move {
        loop {
            let next = tokio::select! {
                _ = wcancel.cancelled() => break,
                n = wrx.recv() => n,
            };
            match next {
                Some(Write::Data(b)) => {
                    if let Err(e) = sender.send(b).await {
                        tracing::debug!(error = %e, "link send failed");
                    }
                }
                Some(Write::Close) | None => {
                    sender.close();
                    break;
                }
            }
        }
    });
    tasks.spawn(async move {
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => None,
                n = conn.recv() => n,
            };
            let event = match next {
                Some(DataConnectionEvent::Open) => LinkEvent::Open {
                    remote_fp: conn.remote_fingerprint().map(str::to_owned),
                },
                Some(DataConnectionEvent::Message(m)) => LinkEvent::Message(m),
                Some(DataConnectionEvent::Text(t)) => LinkEvent::Message(Bytes::from(t)),
                Some(DataConnectionEvent::Error(e)) => LinkEvent::Error(e),
                Some(DataConnectionEvent::Closed) | None => {
                    let _ = tx.send(Input::Link {
                        id,
                        event: LinkEvent::Closed,
                    });
                    break;
                }
            };
            if tx.send(Input::Link { id, event }).is_err() {
                break;
            }
        }
    });
    wtx
}
