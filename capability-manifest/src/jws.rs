//! The signed agent manifest: JWS compact serialization, ES256 (RFC 7515 / RFC 7518 §3.4).
//!
//! Protected header: `{"alg":"ES256","typ":"kibitz-agent-manifest+jws","kid":<RFC 7638
//! thumbprint>,"jwk":<public JWK>}`. Embedding the public JWK lets any peer verify the manifest on
//! its own; `kid` must equal the JWK's thumbprint, and a verifier that knows which agent key to
//! expect pins it with [`VerifyManifestOptions::expected_key`]. The payload is the compact manifest
//! JSON; the signature is raw `r || s` (64 bytes) over `ASCII(b64(header) "." b64(payload))`.

use serde_json::{json, Value};

use crate::b64;
use crate::error::{ManifestError, SignedManifestError};
use crate::keys::{AgentKey, AgentPublicKey, SIGNATURE_LEN};
use crate::manifest::{AgentManifest, ValidateOptions, MAX_MANIFEST_BYTES};

/// The JWS `typ` of a signed agent manifest.
pub const MANIFEST_JWS_TYP: &str = "kibitz-agent-manifest+jws";
/// Signed manifests longer than this are refused (the JSON cap plus base64 and header overhead).
pub const MAX_MANIFEST_TOKEN_CHARS: usize = MAX_MANIFEST_BYTES * 4 / 3 + 4096;
/// Allowed clock skew for `issued_at` in the future.
pub const DEFAULT_MANIFEST_LEEWAY_SEC: u64 = 60;

/// A verified (or freshly signed) agent manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedManifest {
    /// The JWS compact token.
    pub token: String,
    /// The manifest it carries.
    pub manifest: AgentManifest,
    /// RFC 7638 thumbprint of the signing key (the header's `kid`).
    pub key_thumbprint: String,
    /// The signing key.
    pub key: AgentPublicKey,
}

/// Options for [`verify_signed_manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyManifestOptions {
    /// Now, epoch seconds.
    pub now: u64,
    /// Require this signer thumbprint.
    pub expected_key: Option<String>,
    /// Validation options for the payload.
    pub validate: ValidateOptions,
    /// Allowed skew for an `issued_at` in the future (default 60 s).
    pub leeway_sec: u64,
}

impl VerifyManifestOptions {
    /// Options for `now` with no pin, strict validation and the default leeway.
    pub fn at(now: u64) -> Self {
        VerifyManifestOptions {
            now,
            expected_key: None,
            validate: ValidateOptions::default(),
            leeway_sec: DEFAULT_MANIFEST_LEEWAY_SEC,
        }
    }
}

/// Validate `manifest` and sign it with `key`.
pub fn sign_manifest(
    manifest: &AgentManifest,
    key: &AgentKey,
    opts: ValidateOptions,
) -> Result<SignedManifest, ManifestError> {
    manifest.validate(opts)?;
    let kid = key.thumbprint();
    let header = json!({
        "alg": "ES256",
        "typ": MANIFEST_JWS_TYP,
        "kid": kid,
        "jwk": key.public().to_jwk(),
    });
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string()),
        b64::encode(manifest.to_json())
    );
    let sig = key.sign_raw(input.as_bytes());
    Ok(SignedManifest {
        token: format!("{input}.{}", b64::encode(sig)),
        manifest: manifest.clone(),
        key_thumbprint: kid,
        key: key.public().clone(),
    })
}

/// Verify a signed manifest: structure, `alg`, `kid`/`jwk` consistency, signature, the optional
/// key pin, the payload's schema and consistency, then `issued_at`/`expires_at` against `now`.
pub fn verify_signed_manifest(
    token: &str,
    opts: &VerifyManifestOptions,
) -> Result<SignedManifest, SignedManifestError> {
    let token = token.trim();
    let malformed = |s: &str| SignedManifestError::MalformedToken(s.to_owned());
    if token.len() > MAX_MANIFEST_TOKEN_CHARS {
        return Err(malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(malformed("empty part"));
    }
    let header_bytes = b64::decode(h).ok_or_else(|| malformed("header is not base64url"))?;
    let header: Value = serde_json::from_slice(&header_bytes)
        .map_err(|_| SignedManifestError::BadHeader("not JSON".into()))?;
    let header = header
        .as_object()
        .ok_or_else(|| SignedManifestError::BadHeader("not an object".into()))?;
    match header.get("alg").and_then(Value::as_str) {
        Some("ES256") => {}
        Some(other) => return Err(SignedManifestError::UnsupportedAlg(other.to_owned())),
        None => return Err(SignedManifestError::BadHeader("missing alg".into())),
    }
    if let Some(typ) = header.get("typ") {
        if typ.as_str() != Some(MANIFEST_JWS_TYP) {
            return Err(SignedManifestError::BadHeader(format!(
                "typ must be {MANIFEST_JWS_TYP}"
            )));
        }
    }
    if header.contains_key("crit") {
        return Err(SignedManifestError::BadHeader(
            "crit is not supported".into(),
        ));
    }
    let jwk = header
        .get("jwk")
        .ok_or_else(|| SignedManifestError::BadHeader("missing jwk".into()))?;
    let key = AgentPublicKey::from_jwk(jwk).map_err(SignedManifestError::MalformedKey)?;
    let thumbprint = key.thumbprint();
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| SignedManifestError::BadHeader("missing kid".into()))?;
    if kid != thumbprint {
        return Err(SignedManifestError::KidMismatch {
            kid: kid.to_owned(),
            thumbprint,
        });
    }
    let sig = b64::decode(s).ok_or_else(|| malformed("signature is not base64url"))?;
    if sig.len() != SIGNATURE_LEN {
        return Err(malformed(&format!(
            "signature must be 64 raw bytes (r||s), got {}",
            sig.len()
        )));
    }
    let input_len = h.len() + 1 + p.len();
    key.verify_raw(&token.as_bytes()[..input_len], &sig)
        .map_err(|_| SignedManifestError::BadSignature)?;
    if let Some(expected) = &opts.expected_key {
        if *expected != thumbprint {
            return Err(SignedManifestError::WrongKey {
                expected: expected.clone(),
                found: thumbprint,
            });
        }
    }
    let payload = b64::decode(p).ok_or_else(|| malformed("payload is not base64url"))?;
    let text = String::from_utf8(payload).map_err(|_| {
        SignedManifestError::Invalid(ManifestError::Schema("payload is not UTF-8".into()))
    })?;
    let manifest = AgentManifest::from_json(&text).map_err(SignedManifestError::Invalid)?;
    manifest
        .validate(opts.validate)
        .map_err(SignedManifestError::Invalid)?;
    if let Some(expires_at) = manifest.expires_at {
        if opts.now >= expires_at {
            return Err(SignedManifestError::Expired {
                expires_at,
                now: opts.now,
            });
        }
    }
    if manifest.issued_at > opts.now.saturating_add(opts.leeway_sec) {
        return Err(SignedManifestError::NotYetValid {
            issued_at: manifest.issued_at,
            now: opts.now,
        });
    }
    Ok(SignedManifest {
        token: token.to_owned(),
        manifest,
        key_thumbprint: thumbprint,
        key,
    })
}
