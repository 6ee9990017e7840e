//! Typed errors of every parser and verifier in this crate.

use crate::capability::Capability;

/// A JWK that cannot be used (agents spec §3.1 import rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not JSON.
    #[error("key is not valid JSON")]
    NotJson,
    /// The JSON is not an object.
    #[error("key is not a JSON object")]
    NotObject,
    /// `kty` is missing or not `"EC"`.
    #[error("key type (kty) must be \"EC\"")]
    WrongKeyType,
    /// `crv` is missing or not `"P-256"`.
    #[error("curve (crv) must be \"P-256\"")]
    WrongCurve,
    /// A coordinate or the private scalar is missing, not base64url or not 32 bytes.
    #[error("key member {0:?} is missing or not 32 bytes of base64url")]
    BadMember(&'static str),
    /// `x`/`y` is not a point on P-256.
    #[error("key is not a valid P-256 point")]
    NotOnCurve,
    /// `d` is not a valid P-256 scalar or does not match `x`/`y`.
    #[error("private scalar (d) is invalid or does not match the public point")]
    BadPrivateScalar,
    /// A private key was expected but `d` is absent.
    #[error("not a private key (no \"d\")")]
    NotPrivate,
    /// A public key was expected but the JWK carries `d` (WebCrypto refuses `verify` on it).
    #[error("a public key was expected but the JWK carries a private scalar (\"d\")")]
    UnexpectedPrivate,
    /// `ext` is `false`; WebCrypto imports with extractable=true and then fails.
    #[error("\"ext\": false keys cannot be imported")]
    NotExtractable,
    /// `key_ops` does not allow the operation (`"verify"` or `"sign"`).
    #[error("key_ops does not allow {0:?}")]
    KeyOpsForbid(&'static str),
    /// `alg` is present and not `"ES256"`.
    #[error("alg {0:?} is not ES256")]
    WrongAlg(String),
    /// `use` is present and not `"sig"`.
    #[error("use {0:?} is not \"sig\"")]
    WrongUse(String),
}

/// The Kibitz token container `b64url(body).b64url(raw r||s)` could not be verified (§3.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No `.`, a `.` at position 0, or a `.` as the last character.
    #[error("malformed token (expected body.signature)")]
    Malformed,
    /// A segment is not base64url.
    #[error("token segment is not base64url")]
    BadBase64,
    /// The body does not decode to JSON.
    #[error("token body is not JSON")]
    BadJson,
    /// The signature is not 64 raw bytes (a DER signature is refused).
    #[error("signature must be 64 raw bytes (r||s), got {0}")]
    BadSignatureLength(usize),
    /// The signature does not verify under the key.
    #[error("bad signature")]
    BadSignature,
}

/// Why an agent assertion was refused; `Display` is exactly Kibitz's reason string (§3.8 step 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AssertionError {
    /// The assertion or the remote fingerprint is empty.
    #[error("missing assertion or fingerprint")]
    Missing,
    /// The allow-list is empty.
    #[error("no allowed keys")]
    NoAllowedKeys,
    /// `k` is not `kbz-agent-key.v1`.
    #[error("wrong assertion kind")]
    WrongKind,
    /// `room` differs from the expected room key.
    #[error("wrong room")]
    WrongRoom,
    /// The signed `fp` differs from the connection's remote fingerprint (or is not a string).
    #[error("not cert-bound to this connection")]
    NotCertBound,
    /// `iat` is not a number.
    #[error("no iat")]
    NoIat,
    /// `iat` is more than the leeway in the future.
    #[error("assertion from the future")]
    FromTheFuture,
    /// `iat` is older than the freshness window.
    #[error("stale assertion")]
    Stale,
    /// No allow-listed key verifies the signature.
    #[error("no matching allowed key")]
    NoMatchingKey,
    /// The room manifest lists no agent keys (`withAgentGate`'s first check).
    #[error("this room admits no agents")]
    RoomAdmitsNoAgents,
}

/// Why an assertion was refused by an [`AssertionReplayGuard`](crate::AssertionReplayGuard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ReplayError {
    /// The same token was seen bound to a different connection fingerprint.
    #[error("assertion replayed on a different connection")]
    DifferentConnection,
    /// The same token is in use by another live connection.
    #[error("assertion already in use by another connection")]
    AlreadyInUse,
}

/// Why a room manifest was refused; `Display` is exactly Kibitz's reason string (§4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RoomManifestError {
    /// The signature does not verify (or the token is malformed).
    #[error("bad signature")]
    BadSignature,
    /// `room` differs from the expected room.
    #[error("wrong room")]
    WrongRoom,
    /// `mode` differs from the pinned mode.
    #[error("wrong mode")]
    WrongMode,
    /// `exp` is not a number or `now >= exp`.
    #[error("expired")]
    Expired,
    /// None of `members`, `mh`, `agentKeys` is a non-empty list.
    #[error("no members")]
    NoMembers,
}

/// A room link that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The link names no room.
    #[error("the link names no room")]
    NoRoom,
    /// The link is longer than [`MAX_LINK_CHARS`](crate::room_manifest::MAX_LINK_CHARS).
    #[error("the link is too long")]
    TooLong,
}

/// An agent manifest that fails parsing or validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The document is larger than the size cap.
    #[error("manifest is larger than {0} bytes")]
    TooLarge(usize),
    /// The document is not valid JSON or does not match the schema.
    #[error("manifest does not match the schema: {0}")]
    Schema(String),
    /// `kind` is not `kibitz-agent-manifest.v1`.
    #[error("manifest kind must be \"kibitz-agent-manifest.v1\", got {0:?}")]
    WrongKind(String),
    /// A lane names a capability Kibitz does not know.
    #[error("lane {lane}: unknown capability {name:?}")]
    UnknownCapability {
        /// Index of the lane.
        lane: usize,
        /// The name found.
        name: String,
    },
    /// A lane has no `destination`.
    #[error(
        "lane {lane} ({capability}): no destination (every lane must say where its data goes)"
    )]
    LaneWithoutDestination {
        /// Index of the lane.
        lane: usize,
        /// The lane's capability name as written.
        capability: String,
    },
    /// The manifest declares no lane.
    #[error("manifest declares no lanes")]
    NoLanes,
    /// Two lanes declare the same capability.
    #[error("duplicate lane for capability {0}")]
    DuplicateLane(Capability),
    /// A required text field is empty.
    #[error("{0} must not be empty")]
    EmptyField(String),
    /// A remote endpoint is not `https://` (or an allowed local `http://` in test mode).
    #[error("lane {lane}: remote endpoint {endpoint:?} must use https")]
    InsecureEndpoint {
        /// Index of the lane.
        lane: usize,
        /// The endpoint as written.
        endpoint: String,
    },
    /// A remote endpoint is not a usable URL.
    #[error("lane {lane}: remote endpoint {endpoint:?} is invalid: {reason}")]
    BadEndpoint {
        /// Index of the lane.
        lane: usize,
        /// The endpoint as written.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `egress` entry is not an origin.
    #[error("egress entry {0:?} is not an origin (scheme://host[:port])")]
    BadEgress(String),
    /// An `egress` origin is declared that no remote lane uses.
    #[error("egress origin {0} is declared but no remote lane sends data there")]
    UndeclaredEgress(String),
    /// A remote lane sends data to an origin missing from `egress`.
    #[error("remote lane destination {0} is missing from egress")]
    MissingEgress(String),
    /// `expires_at` is not after `issued_at`.
    #[error("expires_at must be after issued_at")]
    ExpiryBeforeIssue,
}

/// A signed agent manifest (JWS) that fails verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedManifestError {
    /// The token is not a three-part JWS compact serialization or is oversized.
    #[error("malformed manifest token: {0}")]
    MalformedToken(String),
    /// The protected header is unusable.
    #[error("bad JWS header: {0}")]
    BadHeader(String),
    /// `alg` is not `ES256`.
    #[error("unsupported JWS alg {0:?} (only ES256)")]
    UnsupportedAlg(String),
    /// The embedded `jwk` is not a usable P-256 public key.
    #[error("malformed signing key in header: {0}")]
    MalformedKey(KeyError),
    /// `kid` is not the RFC 7638 thumbprint of the embedded `jwk`.
    #[error("kid {kid} is not the thumbprint of the embedded key ({thumbprint})")]
    KidMismatch {
        /// The header's kid.
        kid: String,
        /// The embedded key's thumbprint.
        thumbprint: String,
    },
    /// The signature does not verify: the manifest was tampered with.
    #[error("bad signature: the manifest was altered or signed by another key")]
    BadSignature,
    /// The manifest is signed by a different key than the one pinned.
    #[error("signed by key {found}, expected {expected}")]
    WrongKey {
        /// The pinned thumbprint.
        expected: String,
        /// The signer's thumbprint.
        found: String,
    },
    /// `now >= expires_at`.
    #[error("manifest expired at {expires_at} (now {now})")]
    Expired {
        /// The manifest's expiry.
        expires_at: u64,
        /// The time checked.
        now: u64,
    },
    /// `issued_at` is further in the future than the clock-skew leeway.
    #[error("manifest issued in the future ({issued_at}, now {now})")]
    NotYetValid {
        /// The manifest's issue time.
        issued_at: u64,
        /// The time checked.
        now: u64,
    },
    /// The signed payload is not a valid manifest.
    #[error("invalid manifest: {0}")]
    Invalid(ManifestError),
}
