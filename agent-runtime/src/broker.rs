//! Embedded PeerJS-compatible broker (owned by the signaling helper).
