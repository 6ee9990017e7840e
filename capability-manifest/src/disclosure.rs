//! What an agent tells the room about itself: the roster `meta` disclosure built from its signed
//! manifest (agents spec §2), and the envelopes peers use to fetch the full manifest.
//!
//! The meta is `{"role":"agent","readOnly":…,"backend":"…","egress"?:true,"manifest":{"v":1,
//! "kid":…,"sha256":…}}`. `backend` is at most 80 characters. Note that a Kibitz browser treats
//! any `backend` as implying egress in its consent panel (`grantOf`), so even a local-only agent is
//! shown as "what it sees leaves the room"; our `egress` key itself is written only when a lane
//! really leaves the machine, and the manifest says precisely where each lane goes.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::b64;
use crate::jws::SignedManifest;
use crate::manifest::AgentManifest;

/// The reserved key of Kibitz agent envelopes inside `k:'app'` data.
pub const ENVELOPE_KEY: &str = "__kib_agent";
/// Envelope kind of a manifest request.
pub const MANIFEST_REQUEST_KIND: &str = "manifest?";
/// Envelope kind of a manifest response.
pub const MANIFEST_RESPONSE_KIND: &str = "manifest";

/// The compact manifest reference carried in roster meta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    /// Format version, 1.
    pub v: u32,
    /// Thumbprint of the signing key.
    pub kid: String,
    /// base64url SHA-256 of the JWS token's ASCII bytes.
    pub sha256: String,
}

impl ManifestRef {
    /// The reference for a signed manifest token.
    pub fn new(kid: &str, token: &str) -> Self {
        ManifestRef {
            v: 1,
            kid: kid.to_owned(),
            sha256: manifest_digest(token),
        }
    }

    /// True when `token` hashes to this reference.
    pub fn matches(&self, token: &str) -> bool {
        manifest_digest(token) == self.sha256
    }

    /// `{"v":1,"kid":…,"sha256":…}`.
    pub fn to_value(&self) -> Value {
        json!({ "v": self.v, "kid": self.kid, "sha256": self.sha256 })
    }

    /// Read a reference from meta JSON.
    pub fn from_value(v: &Value) -> Option<ManifestRef> {
        Some(ManifestRef {
            v: u32::try_from(v.get("v")?.as_u64()?).ok()?,
            kid: v.get("kid")?.as_str()?.to_owned(),
            sha256: v.get("sha256")?.as_str()?.to_owned(),
        })
    }
}

/// base64url (no padding) SHA-256 of a token's bytes.
pub fn manifest_digest(token: &str) -> String {
    b64::encode(Sha256::digest(token.as_bytes()))
}

/// An agent's roster disclosure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    /// True when the manifest declares no act lane.
    pub read_only: bool,
    /// At most 80 characters saying where data goes.
    pub backend: String,
    /// True when some lane's data leaves the machine.
    pub egress: bool,
    /// The manifest reference.
    pub manifest: ManifestRef,
}

impl Disclosure {
    /// The disclosure of a signed manifest.
    pub fn from_signed(signed: &SignedManifest) -> Disclosure {
        Disclosure::new(&signed.manifest, &signed.token, &signed.key_thumbprint)
    }

    /// The disclosure of `manifest`, signed as `token` by key `kid`.
    pub fn new(manifest: &AgentManifest, token: &str, kid: &str) -> Disclosure {
        Disclosure {
            read_only: manifest.is_read_only(),
            backend: manifest.backend_summary(),
            egress: manifest.leaves_machine(),
            manifest: ManifestRef::new(kid, token),
        }
    }

    /// The roster meta, keys in order `role, readOnly, backend, egress?, manifest`.
    pub fn to_meta(&self) -> Value {
        let mut m = Map::new();
        m.insert("role".into(), json!("agent"));
        m.insert("readOnly".into(), json!(self.read_only));
        if !self.backend.is_empty() {
            m.insert("backend".into(), json!(self.backend));
        }
        if self.egress {
            m.insert("egress".into(), json!(true));
        }
        m.insert("manifest".into(), self.manifest.to_value());
        Value::Object(m)
    }
}

/// A manifest retrieval envelope (the `data` of a directed `k:'app'` message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestEnvelope {
    /// `{"__kib_agent":"manifest?"}`: send me your manifest.
    Request,
    /// `{"__kib_agent":"manifest","token":"<jws>"}`.
    Response(String),
}

impl ManifestEnvelope {
    /// The envelope as app data.
    pub fn to_value(&self) -> Value {
        match self {
            ManifestEnvelope::Request => json!({ "__kib_agent": MANIFEST_REQUEST_KIND }),
            ManifestEnvelope::Response(token) => {
                json!({ "__kib_agent": MANIFEST_RESPONSE_KIND, "token": token })
            }
        }
    }

    /// Recognise a manifest envelope in app data; `None` for anything else.
    pub fn from_value(data: &Value) -> Option<ManifestEnvelope> {
        match data.get(ENVELOPE_KEY)?.as_str()? {
            MANIFEST_REQUEST_KIND => Some(ManifestEnvelope::Request),
            MANIFEST_RESPONSE_KIND => data
                .get("token")?
                .as_str()
                .map(|t| ManifestEnvelope::Response(t.to_owned())),
            _ => None,
        }
    }
}
