//! PeerJS broker client: frames, broker configuration, id allocation, the WebSocket session
//! with heartbeat and reconnect (`kibitz-wire.md` §2).
//!
//! ```no_run
//! # async fn demo() -> Result<(), agent_runtime::signaling::SignalingError> {
//! use agent_runtime::signaling::{BrokerConfig, ConnectOptions, SignalingClient, SignalingEvent};
//! let cfg = BrokerConfig::from_url("ws://127.0.0.1:9000/").expect("valid url");
//! let (handle, mut events) = SignalingClient::connect(cfg, ConnectOptions::default()).await?;
//! println!("registered as {}", handle.id());
//! while let Some(ev) = events.recv().await {
//!     if let SignalingEvent::Offer { src, payload } = ev {
//!         println!("offer from {src} for {}", payload.connection_id);
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod choice;
pub mod client;
pub mod config;
pub mod error;
pub mod event;
pub mod frame;
pub mod id_api;
mod session;

pub use backoff::{Backoff, BackoffPolicy};
pub use choice::{choose_broker, BrokerChoice, SignalFallback};
pub use client::{ConnectOptions, SignalingClient, SignalingHandle, DEFAULT_HEARTBEAT};
pub use config::{
    normalize_path, random_token, validate_id, BrokerConfig, BrokerUrlError, DEFAULT_KEY,
    KIBITZ_SIGNAL_HOST, PEERJS_VERSION,
};
pub use error::SignalingError;
pub use event::SignalingEvent;
pub use frame::{
    AnswerPayload, CandidatePayload, ClientFrame, ConnectionType, ErrorPayload, FrameError,
    FrameType, IceCandidateInit, OfferPayload, SdpType, ServerFrame, SessionDescription,
    MAX_FRAME_LEN,
};
