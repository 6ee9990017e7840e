//! PeerJS broker client (owned by the signaling helper).
