//! Wire codecs. Every decoder here returns typed errors and never panics on peer input.
//!
//! - [`binarypack`]: PeerJS BinaryPack 2.1 bytes ⇄ [`Value`].
//! - [`chunker`]: PeerJS chunking, reassembly and the close signal ([`chunker::Framer`],
//!   [`chunker::Deframer`]).
//! - [`presence`]: the presence star (`t`: knock, voice, roster, lobby, …).
//! - [`control`]: `sig`-link control (`t`: cap, mh, m-sdp, …) and the link classifier.
//! - [`content`]: mesh content (`k`: chat, app, caps, schema, idtoken, …).
//! - [`json`]: [`Value`] ⇄ `serde_json::Value` and JS JSON measurements.

pub mod binarypack;
pub mod chunker;
pub mod content;
pub mod control;
mod error;
mod fields;
pub mod json;
pub mod presence;
pub mod value;

pub use error::MessageError;
pub use value::Value;
