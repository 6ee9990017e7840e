//! Errors of the signaling client.

/// Why the signaling client could not connect or had to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalingError {
    /// `GET …/id` failed at the transport level.
    #[error("could not get an id from the broker: {0}")]
    IdRequest(String),
    /// `GET …/id` answered with a non-200 status.
    #[error("could not get an id from the broker: HTTP status {0}")]
    IdStatus(u16),
    /// The id (chosen or allocated) is not a valid PeerJS id.
    #[error("invalid peer id {0:?}")]
    InvalidId(String),
    /// The WebSocket could not be opened or dropped before the broker answered.
    #[error("broker connection failed: {0}")]
    Connect(String),
    /// The broker did not confirm the id in time.
    #[error("broker did not answer within {0:?}")]
    OpenTimeout(std::time::Duration),
    /// The id is held by another socket with a different token (PeerJS `unavailable-id`).
    #[error("id {id:?} is taken")]
    IdTaken {
        /// The id that was refused.
        id: String,
    },
    /// The broker rejected the API key (PeerJS `invalid-key`).
    #[error("the broker rejected the API key")]
    InvalidKey,
    /// The broker sent `ERROR` (PeerJS `server-error`).
    #[error("broker error: {msg}")]
    Server {
        /// `payload.msg`.
        msg: String,
    },
    /// Reconnecting failed for the whole backoff budget.
    #[error("gave up reconnecting after {attempts} attempts: {last}")]
    ReconnectExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The client is closed.
    #[error("signaling client is closed")]
    Closed,
}

impl SignalingError {
    /// Whether retrying the same id and token could succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SignalingError::Connect(_) | SignalingError::OpenTimeout(_)
        )
    }
}
