//! The signaling boundary of the mesh: PeerJS payload types in, "send this to peer X" out.
//!
//! The mesh does not own a broker socket. Incoming `OFFER`/`ANSWER`/`CANDIDATE` payloads are
//! handed to [`MeshPeer`](super::MeshPeer) by method calls; outgoing ones leave through a
//! [`SignalSink`]. The payload types are the signaling module's; this file is the only place
//! the mesh names them.

pub use crate::signaling::frame::{
    AnswerPayload, CandidatePayload, ConnectionType, IceCandidateInit, OfferPayload, SdpType,
    SessionDescription,
};

/// A signaling message the mesh wants relayed to a remote peer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OutboundSignal {
    /// Send as an `OFFER` frame.
    Offer(OfferPayload),
    /// Send as an `ANSWER` frame.
    Answer(AnswerPayload),
    /// Send as a `CANDIDATE` frame.
    Candidate(CandidatePayload),
}

/// Where the mesh puts signaling messages for the broker (or any other relay).
///
/// Called from the mesh's tasks; implementations must not block (push into a channel).
pub trait SignalSink: Send + Sync + 'static {
    /// Relays `signal` to the peer with broker id `dst`.
    fn send_signal(&self, dst: &str, signal: OutboundSignal);
}

impl SignalSink for tokio::sync::mpsc::UnboundedSender<(String, OutboundSignal)> {
    fn send_signal(&self, dst: &str, signal: OutboundSignal) {
        if self.send((dst.to_owned(), signal)).is_err() {
            tracing::debug!(dst, "signal sink closed; dropping outbound signal");
        }
    }
}
