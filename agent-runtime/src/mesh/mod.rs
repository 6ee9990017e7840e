//! WebRTC mesh on webrtc-rs: PeerJS DataConnections and media groundwork.
//!
//! - [`cert`]: the agent's one DTLS certificate and its fingerprint (`kibitz-agents.md` §0.6).
//! - [`ice`]: STUN/TURN configuration and relay-only policy (`kibitz-wire.md` §9).
//! - [`PeerConnectionFactory`]: webrtc-rs peer connections sharing that certificate.
//! - [`MeshPeer`] / [`DataConnection`]: PeerJS dial and answer semantics (`kibitz-wire.md`
//!   §2.2), one binary SCTP message per `send` (§3).
//! - [`signal`]: the boundary to the broker client (payload types in, [`SignalSink`] out).
//! - [`media`]: Kibitz's audio, video, video transceiver layout (§6.2), offer only.
//!
//! Sans-I/O parts (negotiation bookkeeping, SDP scanning) live in private modules and are
//! tested without a network; the rest is a thin tokio shell over webrtc-rs.

pub mod cert;
mod data_connection;
mod glue;
pub mod ice;
pub mod media;
mod negotiator;
mod peer;
mod peer_connection;
pub mod sdp;
pub mod signal;

pub use cert::{fingerprint_of_der, DtlsIdentity};
pub use data_connection::{
    ChannelInfo, DataConnection, DataConnectionEvent, DataSender, Direction,
};
pub use ice::{IceConfig, IceServer};
pub use peer::{new_connection_id, ConnectOptions, MeshPeer, BULK_LABEL, DATA_CONNECTION_PREFIX};
pub use peer_connection::{MeshOptions, PeerConnectionFactory, PEERJS_SEND_HIGH_WATER};
pub use signal::{OutboundSignal, SignalSink};

use signal::{ConnectionType, SdpType};

/// Errors of the mesh layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The DTLS certificate could not be generated, loaded or serialised.
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// webrtc-rs refused an operation.
    #[error("webrtc: {0}")]
    WebRtc(#[source] webrtc::error::Error),
    /// A remote SDP could not be parsed.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    /// An OFFER for a connection type the mesh does not answer (legacy media).
    #[error("unsupported PeerJS connection type {0:?}")]
    UnsupportedConnectionType(ConnectionType),
    /// A session description of the wrong type (e.g. an answer inside an OFFER).
    #[error("expected an SDP {expected:?}, got {got:?}")]
    WrongSdpType {
        /// The type the frame implies.
        expected: SdpType,
        /// The type it carried.
        got: SdpType,
    },
    /// An ANSWER for a connection we do not have.
    #[error("no connection {connection_id} with peer {peer}")]
    UnknownConnection {
        /// Remote peer id.
        peer: String,
        /// PeerJS connection id.
        connection_id: String,
    },
    /// A second OFFER for a connection we already have.
    #[error("connection {connection_id} with peer {peer} already exists")]
    DuplicateConnection {
        /// Remote peer id.
        peer: String,
        /// PeerJS connection id.
        connection_id: String,
    },
    /// `send` before the channel opened.
    #[error("data connection is not open yet")]
    NotOpen,
    /// `send` after the connection closed.
    #[error("data connection is closed")]
    Closed,
    /// A message larger than the remote's SCTP max-message-size (64 KiB for a browser that
    /// advertises none; PeerJS chunks at 16300 bytes, so framed traffic never gets here).
    #[error("message of {0} bytes exceeds the remote's max-message-size")]
    MessageTooLarge(usize),
    /// `try_send` while the channel buffers more than the high-water mark.
    #[error("send buffer is above the high-water mark")]
    SendBufferFull,
    /// ICE (or DTLS) failed; PeerJS closes the connection in this case.
    #[error("ICE negotiation failed")]
    IceFailed,
    /// The broker could not deliver our OFFER (`EXPIRE`): PeerJS `peer-unavailable`.
    #[error("peer {0} is unavailable")]
    PeerUnavailable(String),
}
