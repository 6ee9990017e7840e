//! Everything the session's I/O tasks report to its event loop.

use crate::mesh::{DataConnection, MeshError};
use crate::signaling::{SignalingError, SignalingEvent};

use super::broker_peer::{BrokerPeer, PendingPumps};

/// Which of the session's broker identities something happened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerKind {
    /// The media peer (our voiceId): the data mesh.
    Media,
    /// The presence peer: our link to the authority.
    Presence,
    /// The claimed `kbz-v1-<room>` peer while we are the authority.
    Authority,
}

/// Identifies one DataConnection in the loop's link table.
pub(crate) type LinkId = u64;

/// A DataConnection event, as forwarded by its reader task.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The channel opened; the remote certificate's fingerprint, if readable.
    Open { remote_fp: Option<String> },
    /// One binary message.
    Message(bytes::Bytes),
    /// A failure (for a dial: `PeerUnavailable` means the broker answered `EXPIRE`).
    Error(MeshError),
    /// The connection is gone; nothing follows.
    Closed,
}

/// One input of the event loop.
pub(crate) enum Input {
    /// A remote peer dialled one of our broker identities.
    Incoming {
        /// Which identity.
        kind: PeerKind,
        /// Authority epoch (stale authorities are ignored); 0 otherwise.
        epoch: u64,
        /// The answered connection (not open yet).
        conn: DataConnection,
    },
    /// A dial we started returned.
    Dialed {
        /// The identity that dialled.
        kind: PeerKind,
        /// The remote peer id.
        peer: String,
        /// The connection, or why it could not even be offered.
        result: Result<DataConnection, MeshError>,
        /// Presence attempt number (stale attempts are ignored); 0 for the mesh.
        attempt: u64,
    },
    /// A link event.
    Link {
        /// The link.
        id: LinkId,
        /// What happened.
        event: LinkEvent,
    },
    /// A claim of `kbz-v1-<room>` finished.
    Claim {
        /// The claim's epoch.
        epoch: u64,
        /// The claimed peer (its pumps not started yet), or the broker's refusal.
        result: Result<(BrokerPeer, PendingPumps), SignalingError>,
    },
    /// A broker-session event the mesh does not consume (drop, reconnect, failure).
    Signal {
        /// Which identity.
        kind: PeerKind,
        /// Authority epoch; 0 otherwise.
        epoch: u64,
        /// The event.
        event: SignalingEvent,
    },
}
