//! WebRTC mesh: PeerJS DataConnections and media on webrtc-rs (owned by the mesh helper).
