//! Kibitz capabilities and grants, signed agent manifests, P-256 agent keys, the Kibitz agent
//! assertion and room manifests. Pure data and crypto: no I/O.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`capability`] | the ten Kibitz capability names, canonical orders |
//! | [`grant`] | Kibitz `Grant` JSON, `sanitizeGrant`, expiry, `intersectGrant`, summary |
//! | [`normalize`] | `normalizeRoom`, the authority peer id, fingerprint canonicalisation |
//! | [`keys`] | P-256 keys as WebCrypto JWKs, RFC 7638 thumbprints |
//! | [`token`] | Kibitz's `b64url(body).b64url(r‖s)` token container |
//! | [`assertion`] | the `kbz-agent-key.v1` assertion: sign and verify |
//! | [`replay`] | an authority-side replay guard for assertions |
//! | [`room_manifest`] | the creator-signed room manifest, `agentKeys`, admission, room links |
//! | [`manifest`] | our agent manifest: lanes, destinations, egress (serde + JSON Schema) |
//! | [`jws`] | the agent manifest signed as JWS compact ES256 |
//! | [`disclosure`] | roster `meta` built from a signed manifest; manifest retrieval envelopes |
//! | [`error`] | every typed error |
//!
//! # Fetching an agent's full manifest
//!
//! An agent's roster meta carries only a reference,
//! `"manifest":{"v":1,"kid":"<thumbprint>","sha256":"<b64url SHA-256 of the JWS token>"}`. A peer
//! that wants the full document sends the agent a **directed** data message (`sendTo`, so it
//! needs nothing but the agent's `receive-directed`):
//!
//! ```json
//! {"k":"app","data":{"__kib_agent":"manifest?"}}
//! ```
//!
//! and the agent answers the requester, directed as well:
//!
//! ```json
//! {"k":"app","data":{"__kib_agent":"manifest","token":"<jws>"}}
//! ```
//!
//! The requester checks `sha256` against the token ([`ManifestRef::matches`]), then verifies it
//! with [`verify_signed_manifest`] pinning `kid`. The answer is an act on the wire: a Kibitz peer
//! drops it unless it grants the agent `send-chat`, so a read-only agent's manifest is only
//! retrievable by peers (such as other `kibitz-agent` runtimes) that honour the envelope before
//! the act gate. [`ManifestEnvelope`] builds and recognises both envelopes; the runtime sends them.
//!
//! # Time
//!
//! Every check that involves time takes `now` as epoch seconds from the caller.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod assertion;
mod b64;
pub mod capability;
pub mod disclosure;
pub mod error;
pub mod grant;
pub mod jws;
pub mod keys;
pub mod manifest;
pub mod normalize;
pub mod replay;
pub mod room_manifest;
pub mod token;

pub use assertion::{
    sign_assertion, verify_assertion, AssertionOptions, VerifiedAssertion, ASSERTION_KIND,
    DEFAULT_LEEWAY_SEC, DEFAULT_MAX_AGE_SEC, MAX_ASSERTION_CHARS, RESIGN_INTERVAL_SEC,
};
pub use capability::{Capability, CapabilityKind, ALL_ACT, ALL_CAPABILITIES, ALL_PERCEIVE};
pub use disclosure::{manifest_digest, Disclosure, ManifestEnvelope, ManifestRef};
pub use error::{
    AssertionError, KeyError, LinkError, ManifestError, ReplayError, RoomManifestError,
    SignedManifestError, TokenError,
};
pub use grant::{Grant, GrantSummary};
pub use jws::{
    sign_manifest, verify_signed_manifest, SignedManifest, VerifyManifestOptions, MANIFEST_JWS_TYP,
};
pub use keys::{jwk_thumbprint, AgentKey, AgentPublicKey};
pub use manifest::{AgentInfo, AgentManifest, Destination, Lane, ValidateOptions, MANIFEST_KIND};
pub use normalize::{authority_peer_id, canonical_fingerprint, fingerprint_of_der, normalize_room};
pub use replay::AssertionReplayGuard;
pub use room_manifest::{
    admit_agent, agent_entry_for, build_room_link, sign_room_manifest, verify_room_manifest,
    AgentAdmission, AgentEntry, GateMode, RoomLink, RoomManifest,
};
pub use token::{decode_token, sign_token, verify_token};
