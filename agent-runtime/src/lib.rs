//! The kibitz-agent engine.
//!
//! Layers, bottom up:
//! - [`wire`]: byte-exact codecs for what travels on Kibitz DataConnections (PeerJS BinaryPack,
//!   PeerJS chunking, presence and content messages) and on the PeerJS broker socket.
//! - [`signaling`]: the PeerJS broker client (id allocation, WebSocket, heartbeat, reconnect).
//! - [`broker`]: an embedded PeerJS-compatible broker for local and offline rooms.
//! - [`room`]: sans-I/O presence state machines (participant and authority) driven by `now`.

pub mod agent;
pub mod broker;
pub mod egress;
pub mod lane_gate;
pub mod mesh;
pub mod room;
pub mod session;
pub mod signaling;
pub mod wire;
