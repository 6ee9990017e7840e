//! What the signaling client reports to its owner.

use super::error::SignalingError;
use super::frame::{AnswerPayload, CandidatePayload, OfferPayload};

/// An event from the broker session.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SignalingEvent {
    /// A relayed `OFFER` from `src`.
    Offer {
        /// The offering peer.
        src: String,
        /// The offer.
        payload: OfferPayload,
    },
    /// A relayed `ANSWER` from `src`.
    Answer {
        /// The answering peer.
        src: String,
        /// The answer.
        payload: AnswerPayload,
    },
    /// A relayed `CANDIDATE` from `src`.
    Candidate {
        /// The sending peer.
        src: String,
        /// The candidate.
        payload: CandidatePayload,
    },
    /// `LEAVE`: the peer `src` is gone; tear down connections to it.
    Leave {
        /// The departed peer.
        src: String,
    },
    /// `EXPIRE`: a message to `src` could not be delivered (PeerJS `peer-unavailable`).
    Expire {
        /// The unreachable peer.
        src: String,
    },
    /// An `ERROR` the broker sent while the session was open.
    Error {
        /// `payload.msg`.
        msg: String,
    },
    /// The WebSocket dropped; the client is reconnecting with the same id and token.
    Disconnected,
    /// The client is attached to its id again after a drop.
    Reconnected,
    /// The client stopped for good because of `0` (id taken, key rejected, budget spent).
    /// [`Closed`](SignalingEvent::Closed) follows.
    Failed(SignalingError),
    /// The client has stopped; no further events follow.
    Closed,
}
