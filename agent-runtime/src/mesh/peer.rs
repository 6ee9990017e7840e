//! [`MeshPeer`]: the PeerJS connection table of one broker identity (a voiceId or a presence
//! peer), driven by signaling payloads and emitting them through a [`SignalSink`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use rand::Rng;
use tokio::sync::mpsc;
use webrtc::data_channel::RTCDataChannelInit;
use webrtc::peer_connection::RTCSessionDescription;

use super::data_connection::{
    Command, ConnShared, ConnectionTask, DataConnection, Direction, EVENT_QUEUE,
};
use super::glue;
use super::negotiator::{Negotiator, PendingCandidates};
use super::peer_connection::PeerConnectionFactory;
use super::signal::{
    AnswerPayload, CandidatePayload, ConnectionType, OfferPayload, OutboundSignal, SdpType,
    SignalSink,
};
use super::MeshError;

/// PeerJS's connection id prefix for data connections.
pub const DATA_CONNECTION_PREFIX: &str = "dc_";
/// The label of Kibitz's second (bulk) link.
pub const BULK_LABEL: &str = "bulk";

/// Options for [`MeshPeer::connect`]. Channels are always reliable and ordered, with
/// `serialization:"binary"`, as Kibitz dials them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Channel label; `None` uses the connection id (PeerJS default, Kibitz's `sig` link).
    pub label: Option<String>,
}

impl ConnectOptions {
    /// Kibitz's bulk link: `label:'bulk'`.
    pub fn bulk() -> Self {
        ConnectOptions {
            label: Some(BULK_LABEL.to_owned()),
        }
    }
}

/// A new PeerJS connection id: `dc_` plus 11 base-36 characters, like PeerJS's
/// `randomToken()`.
pub fn new_connection_id() -> String {
    let mut rng = rand::thread_rng();
    let token: String = (0..11)
        .map(|_| char::from_digit(rng.gen_range(0..36), 36).unwrap_or('0'))
        .collect();
    format!("{DATA_CONNECTION_PREFIX}{token}")
}

type ConnKey = (String, String);

#[derive(Default)]
struct Registry {
    conns: HashMap<ConnKey, Arc<ConnShared>>,
    pending: PendingCandidates,
}

struct Inner {
    factory: PeerConnectionFactory,
    sink: Arc<dyn SignalSink>,
    registry: Mutex<Registry>,
}

impl Inner {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A poisoned lock only means another task panicked mid-update; the map stays usable.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The PeerJS DataConnections of one local broker id.
///
/// Feed it the `OFFER`/`ANSWER`/`CANDIDATE`/`LEAVE`/`EXPIRE` frames addressed to that id; it
/// answers and trickles through the [`SignalSink`]. Cheap to clone.
#[derive(Clone)]
pub struct MeshPeer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MeshPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshPeer")
            .field("fingerprint", &self.fingerprint())
            .field("connections", &self.connection_count())
            .finish()
    }
}

impl MeshPeer {
    /// A mesh peer building its connections with `factory`, signaling through `sink`.
    pub fn new(factory: PeerConnectionFactory, sink: Arc<dyn SignalSink>) -> Self {
        MeshPeer {
            inner: Arc::new(Inner {
                factory,
                sink,
                registry: Mutex::new(Registry::default()),
            }),
        }
    }

    /// Our certificate fingerprint (the same on every connection).
    pub fn fingerprint(&self) -> &str {
        self.inner.factory.identity().fingerprint()
    }

    /// The factory connections are built with.
    pub fn factory(&self) -> &PeerConnectionFactory {
        &self.inner.factory
    }

    /// Number of live connections.
    pub fn connection_count(&self) -> usize {
        self.inner.registry().conns.len()
    }

    /// Dials `peer` like `peer.connect(peer, {reliable:true, label})`: creates the data
    /// channel, sends the OFFER, and returns at once; wait for
    /// [`Open`](super::DataConnectionEvent::Open).
    pub async fn connect(
        &self,
        peer: &str,
        options: ConnectOptions,
    ) -> Result<DataConnection, MeshError> {
        let connection_id = new_connection_id();
        let label = options.label.unwrap_or_else(|| connection_id.clone());
        let (pc, pc_events) = self.inner.factory.build_data().await?;
        let init = RTCDataChannelInit {
            ordered: true,
            ..RTCDataChannelInit::default()
        };
        let channel = match pc.create_data_channel(&label, Some(init)).await {
            Ok(dc) => dc,
            Err(e) => {
                let _ = pc.close().await;
                return Err(MeshError::WebRtc(e));
            }
        };
        let offer = match create_local_offer(pc.as_ref()).await {
            Ok(o) => o,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let mut negotiator = Negotiator::new(connection_id.clone(), ConnectionType::Data);
        negotiator.local_description_applied(&offer);
        let payload = negotiator.data_offer(offer, &label);

        let (shared, cmds) = ConnShared::new(
            peer.to_owned(),
            connection_id.clone(),
            label,
            Direction::Outgoing,
        );
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        self.register(&shared);
        let task = ConnectionTask {
            pc,
            pc_events,
            cmds,
            shared: Arc::clone(&shared),
            events_tx,
            sink: Arc::clone(&self.inner.sink),
            negotiator,
            on_exit: self.unregister_on_exit(&shared),
        };
        self.inner
            .sink
            .send_signal(peer, OutboundSignal::Offer(payload));
        tokio::spawn(task.run(Some(channel)));
        Ok(DataConnection::new(
            shared,
            events_rx,
            true,
            "binary".to_owned(),
        ))
    }

    /// Answers an incoming `OFFER` from `src`: builds a peer connection, sends the ANSWER
    /// with the same connection id, and returns the connection (the remote's in-band channel
    /// arrives later). Media offers (legacy Kibitz) are refused.
    pub async fn handle_offer(
        &self,
        src: &str,
        offer: OfferPayload,
    ) -> Result<DataConnection, MeshError> {
        if offer.kind != ConnectionType::Data {
            return Err(MeshError::UnsupportedConnectionType(offer.kind));
        }
        if offer.sdp.kind != SdpType::Offer {
            return Err(MeshError::WrongSdpType {
                expected: SdpType::Offer,
                got: offer.sdp.kind,
            });
        }
        let key = (src.to_owned(), offer.connection_id.clone());
        if self.inner.registry().conns.contains_key(&key) {
            return Err(MeshError::DuplicateConnection {
                peer: key.0,
                connection_id: key.1,
            });
        }
        let remote = glue::remote_description(SdpType::Offer, offer.sdp.sdp)?;
        let (pc, pc_events) = self.inner.factory.build_data().await?;
        let answer = match answer_offer(pc.as_ref(), remote).await {
            Ok(a) => a,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let mut negotiator = Negotiator::new(offer.connection_id.clone(), ConnectionType::Data);
        negotiator.local_description_applied(&answer);
        let mut early = negotiator.remote_description_applied();
        let payload = negotiator.answer(answer);

        let label = offer.label.unwrap_or_else(|| offer.connection_id.clone());
        let (shared, cmds) = ConnShared::new(
            src.to_owned(),
            offer.connection_id,
            label,
            Direction::Incoming,
        );
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let registered = {
            let mut reg = self.inner.registry();
            if reg.conns.contains_key(&key) {
                false
            } else {
                early.extend(reg.pending.take(&key.0, &key.1));
                reg.conns.insert(key.clone(), Arc::clone(&shared));
                true
            }
        };
        if !registered {
            let _ = pc.close().await;
            return Err(MeshError::DuplicateConnection {
                peer: key.0,
                connection_id: key.1,
            });
        }
        let task = ConnectionTask {
            pc,
            pc_events,
            cmds,
            shared: Arc::clone(&shared),
            events_tx,
            sink: Arc::clone(&self.inner.sink),
            negotiator,
            on_exit: self.unregister_on_exit(&shared),
        };
        self.inner
            .sink
            .send_signal(src, OutboundSignal::Answer(payload));
        for c in early {
            task.add_candidate(c).await;
        }
        tokio::spawn(task.run(None));
        Ok(DataConnection::new(
            shared,
            events_rx,
            offer.reliable.unwrap_or(false),
            offer.serialization.unwrap_or_default(),
        ))
    }

    /// Applies an `ANSWER` from `src` to the connection we dialled.
    pub fn handle_answer(&self, src: &str, answer: AnswerPayload) -> Result<(), MeshError> {
        if answer.sdp.kind != SdpType::Answer {
            return Err(MeshError::WrongSdpType {
                expected: SdpType::Answer,
                got: answer.sdp.kind,
            });
        }
        let shared = self.lookup(src, &answer.connection_id)?;
        shared.command(Command::RemoteAnswer(answer.sdp));
        Ok(())
    }

    /// Applies a trickled `CANDIDATE` from `src`; one for a connection not seen yet is held
    /// until its OFFER arrives (PeerJS "lost messages"). Media candidates are ignored.
    pub fn handle_candidate(&self, src: &str, candidate: CandidatePayload) {
        if candidate.kind != ConnectionType::Data {
            tracing::debug!(src, "ignoring media candidate");
            return;
        }
        let mut reg = self.inner.registry();
        let key = (src.to_owned(), candidate.connection_id.clone());
        if let Some(shared) = reg.conns.get(&key) {
            shared.command(Command::RemoteCandidate(candidate.candidate));
        } else if !reg
            .pending
            .push(Instant::now(), src, &key.1, candidate.candidate)
        {
            tracing::debug!(src, connection_id = %key.1, "dropping early candidate (bound reached)");
        }
    }

    /// `LEAVE` from the broker: closes every connection with `src`.
    pub fn handle_leave(&self, src: &str) {
        let mut reg = self.inner.registry();
        reg.pending.forget_peer(src);
        for (key, shared) in reg.conns.iter() {
            if key.0 == src {
                shared.command(Command::Close);
            }
        }
    }

    /// `EXPIRE` from the broker: our OFFER to `src` was not delivered. Fails every
    /// connection we dialled to `src` that is not open yet, with
    /// [`MeshError::PeerUnavailable`].
    pub fn handle_expire(&self, src: &str) {
        let reg = self.inner.registry();
        for (key, shared) in reg.conns.iter() {
            if key.0 == src && shared.direction == Direction::Outgoing {
                shared.command(Command::Fail(MeshError::PeerUnavailable(src.to_owned())));
            }
        }
    }

    /// Closes every connection.
    pub fn close_all(&self) {
        let reg = self.inner.registry();
        for shared in reg.conns.values() {
            shared.command(Command::Close);
        }
    }

    fn lookup(&self, peer: &str, connection_id: &str) -> Result<Arc<ConnShared>, MeshError> {
        self.inner
            .registry()
            .conns
            .get(&(peer.to_owned(), connection_id.to_owned()))
            .cloned()
            .ok_or_else(|| MeshError::UnknownConnection {
                peer: peer.to_owned(),
                connection_id: connection_id.to_owned(),
            })
    }

    fn register(&self, shared: &Arc<ConnShared>) {
        let key = (shared.peer.clone(), shared.connection_id.clone());
        self.inner.registry().conns.insert(key, Arc::clone(shared));
    }

    fn unregister_on_exit(&self, shared: &Arc<ConnShared>) -> Box<dyn FnOnce() + Send + Sync> {
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        let me = Arc::downgrade(shared);
        Box::new(move || {
            let (Some(inner), Some(me)) = (inner.upgrade(), me.upgrade()) else {
                return;
            };
            let key = (me.peer.clone(), me.connection_id.clone());
            let mut reg = inner.registry();
            if reg.conns.get(&key).is_some_and(|s| Arc::ptr_eq(s, &me)) {
                reg.conns.remove(&key);
            }
        })
    }
}

async fn create_local_offer(
    pc: &dyn webrtc::peer_connection::PeerConnection,
) -> Result<String, MeshError> {
    let offer = pc.create_offer(None).await.map_err(MeshError::WebRtc)?;
    let sdp = offer.sdp.clone();
    pc.set_local_description(offer)
        .await
        .map_err(MeshError::WebRtc)?;
    Ok(sdp)
}

async fn answer_offer(
    pc: &dyn webrtc::peer_connection::PeerConnection,
    remote: RTCSessionDescription,
) -> Result<String, MeshError> {
    pc.set_remote_description(remote)
        .await
        .map_err(MeshError::WebRtc)?;
    let answer = pc.create_answer(None).await.map_err(MeshError::WebRtc)?;
    let sdp = answer.sdp.clone();
    pc.set_local_description(answer)
        .await
        .map_err(MeshError::WebRtc)?;
    Ok(sdp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_look_like_peerjs() {
        let a = new_connection_id();
        let b = new_connection_id();
        assert!(a.starts_with("dc_"));
        assert_eq!(a.len(), 14);
        assert!(a[3..]
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn bulk_options() {
        assert_eq!(ConnectOptions::bulk().label.as_deref(), Some("bulk"));
        assert_eq!(ConnectOptions::default().label, None);
    }
}
