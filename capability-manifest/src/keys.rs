//! P-256 agent keys as WebCrypto-compatible JWKs (agents spec §3.1) and RFC 7638 thumbprints
//! (§3.2).
//!
//! Keys are emitted in exactly the member order a browser's `exportKey('jwk')` produces, so a
//! browser can import them:
//!
//! * public: `{"key_ops":["verify"],"ext":true,"kty":"EC","x":…,"y":…,"crv":"P-256"}`
//! * private: `{"key_ops":["sign"],"ext":true,"kty":"EC","x":…,"y":…,"crv":"P-256","d":…}`
//!
//! Import applies the WebCrypto rules that decide whether a browser could use the key: `ext:false`,
//! a `key_ops` list without the needed operation, `alg` other than `ES256` and `use` other than
//! `sig` are all refused, as is a `d` member on a key meant for verification. Bare
//! `{kty,crv,x,y}` is accepted.

use std::fmt;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::b64;
use crate::error::{KeyError, TokenError};

/// Size of a raw IEEE-P1363 P-256 signature (`r || s`).
pub const SIGNATURE_LEN: usize = 64;

/// An agent's private signing key.
#[derive(Clone)]
pub struct AgentKey {
    signing: SigningKey,
    public: AgentPublicKey,
}

/// A P-256 public key usable for ECDSA-SHA-256 verification.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentPublicKey {
    verifying: VerifyingKey,
    x: String,
    y: String,
}

/// The RFC 7638 thumbprint of a P-256 key: base64url (no padding) of SHA-256 over
/// `{"crv":"P-256","kty":"EC","x":…,"y":…}` (43 characters).
pub fn jwk_thumbprint(x: &str, y: &str) -> String {
    let canon = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    b64::encode(Sha256::digest(canon.as_bytes()))
}

impl AgentKey {
    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> AgentKey {
        let signing = SigningKey::random(&mut rand::rngs::OsRng);
        AgentKey::from_signing_key(signing)
    }

    /// Wrap an existing `p256` signing key.
    pub fn from_signing_key(signing: SigningKey) -> AgentKey {
        let public = AgentPublicKey::from_verifying_key(*signing.verifying_key());
        AgentKey { signing, public }
    }

    /// Import a private JWK from JSON text (WebCrypto `importKey(…, ['sign'])` rules).
    pub fn from_jwk_str(s: &str) -> Result<AgentKey, KeyError> {
        let value: Value = serde_json::from_str(s).map_err(|_| KeyError::NotJson)?;
        AgentKey::from_jwk(&value)
    }

    /// Import a private JWK object.
    pub fn from_jwk(value: &Value) -> Result<AgentKey, KeyError> {
        let obj = value.as_object().ok_or(KeyError::NotObject)?;
        check_common(obj, "sign")?;
        let d = match obj.get("d") {
            None => return Err(KeyError::NotPrivate),
            Some(d) => member_32(d, "d")?,
        };
        let public = public_from_members(obj)?;
        let signing = SigningKey::from_slice(&d).map_err(|_| KeyError::BadPrivateScalar)?;
        if signing.verifying_key() != &public.verifying {
            return Err(KeyError::BadPrivateScalar);
        }
        Ok(AgentKey { signing, public })
    }

    /// The private JWK in WebCrypto's export shape.
    pub fn to_jwk(&self) -> Value {
        let d = b64::encode(self.signing.to_bytes());
        json!({
            "key_ops": ["sign"],
            "ext": true,
            "kty": "EC",
            "x": self.public.x,
            "y": self.public.y,
            "crv": "P-256",
            "d": d,
        })
    }

    /// The private JWK as compact JSON text.
    pub fn to_jwk_string(&self) -> String {
        self.to_jwk().to_string()
    }

    /// The matching public key.
    pub fn public(&self) -> &AgentPublicKey {
        &self.public
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// ECDSA-P256-SHA256 over `msg`, as 64 raw bytes `r || s` (what WebCrypto produces).
    pub fn sign_raw(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let sig: Signature = self.signing.sign(msg);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(&sig.to_bytes());
        out
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey")
            .field("thumbprint", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl AgentPublicKey {
    /// Wrap an existing `p256` verifying key.
    pub fn from_verifying_key(verifying: VerifyingKey) -> AgentPublicKey {
        let point = verifying.to_encoded_point(false);
        let x = point.x().map(b64::encode).unwrap_or_default();
        let y = point.y().map(b64::encode).unwrap_or_default();
        AgentPublicKey { verifying, x, y }
    }

    /// Import a public JWK from JSON text (WebCrypto `importKey(…, true, ['verify'])` rules).
    pub fn from_jwk_str(s: &str) -> Result<AgentPublicKey, KeyError> {
        let value: Value = serde_json::from_str(s).map_err(|_| KeyError::NotJson)?;
        AgentPublicKey::from_jwk(&value)
    }

    /// Import a public JWK object, refusing what a browser would refuse for `verify`.
    pub fn from_jwk(value: &Value) -> Result<AgentPublicKey, KeyError> {
        let obj = value.as_object().ok_or(KeyError::NotObject)?;
        if obj.contains_key("d") {
            return Err(KeyError::UnexpectedPrivate);
        }
        check_common(obj, "verify")?;
        public_from_members(obj)
    }

    /// The public JWK in WebCrypto's export shape.
    pub fn to_jwk(&self) -> Value {
        json!({
            "key_ops": ["verify"],
            "ext": true,
            "kty": "EC",
            "x": self.x,
            "y": self.y,
            "crv": "P-256",
        })
    }

    /// The public JWK as compact JSON text.
    pub fn to_jwk_string(&self) -> String {
        self.to_jwk().to_string()
    }

    /// The RFC 7638 thumbprint (43 characters of base64url).
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(&self.x, &self.y)
    }

    /// The base64url `x` coordinate.
    pub fn x(&self) -> &str {
        &self.x
    }

    /// The base64url `y` coordinate.
    pub fn y(&self) -> &str {
        &self.y
    }

    /// The underlying `p256` key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// Verify a raw 64-byte `r || s` ECDSA-P256-SHA256 signature over `msg`. A DER signature or
    /// any other length is refused.
    pub fn verify_raw(&self, msg: &[u8], sig: &[u8]) -> Result<(), TokenError> {
        if sig.len() != SIGNATURE_LEN {
            return Err(TokenError::BadSignatureLength(sig.len()));
        }
        let sig = Signature::from_slice(sig).map_err(|_| TokenError::BadSignature)?;
        self.verifying
            .verify(msg, &sig)
            .map_err(|_| TokenError::BadSignature)
    }
}

impl fmt::Debug for AgentPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentPublicKey")
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

/// The checks shared by public and private import: `kty`, `crv`, `ext`, `key_ops`, `use`, `alg`.
fn check_common(obj: &Map<String, Value>, op: &'static str) -> Result<(), KeyError> {
    if obj.get("kty").and_then(Value::as_str) != Some("EC") {
        return Err(KeyError::WrongKeyType);
    }
    if obj.get("crv").and_then(Value::as_str) != Some("P-256") {
        return Err(KeyError::WrongCurve);
    }
    if let Some(ext) = obj.get("ext") {
        if matches!(ext, Value::Bool(false) | Value::Null)
            || ext.as_f64() == Some(0.0)
            || ext.as_str() == Some("")
        {
            return Err(KeyError::NotExtractable);
        }
    }
    if let Some(ops) = obj.get("key_ops") {
        let allowed = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some(op)));
        if !allowed {
            return Err(KeyError::KeyOpsForbid(op));
        }
    }
    if let Some(u) = obj.get("use") {
        if u.as_str() != Some("sig") {
            return Err(KeyError::WrongUse(value_text(u)));
        }
    }
    if let Some(alg) = obj.get("alg") {
        if alg.as_str() != Some("ES256") {
            return Err(KeyError::WrongAlg(value_text(alg)));
        }
    }
    Ok(())
}

fn value_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn member_32(v: &Value, name: &'static str) -> Result<[u8; 32], KeyError> {
    let bytes = v
        .as_str()
        .and_then(b64::decode)
        .ok_or(KeyError::BadMember(name))?;
    bytes.try_into().map_err(|_| KeyError::BadMember(name))
}

fn public_from_members(obj: &Map<String, Value>) -> Result<AgentPublicKey, KeyError> {
    let x = member_32(obj.get("x").unwrap_or(&Value::Null), "x")?;
    let y = member_32(obj.get("y").unwrap_or(&Value::Null), "y")?;
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..33].copy_from_slice(&x);
    sec1[33..].copy_from_slice(&y);
    let verifying = VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| KeyError::NotOnCurve)?;
    Ok(AgentPublicKey::from_verifying_key(verifying))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIV: &str = r#"{"key_ops":["sign"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256","d":"WpM0EUgpZUEUz1riUaH5SwSIM2CzaxG2v5dG6gWjhCI"}"#;
    const PUB: &str = r#"{"key_ops":["verify"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256"}"#;

    #[test]
    fn spec_key_round_trips_byte_for_byte() {
        let key = AgentKey::from_jwk_str(PRIV).unwrap();
        assert_eq!(key.to_jwk_string(), PRIV);
        assert_eq!(key.public().to_jwk_string(), PUB);
        assert_eq!(
            key.thumbprint(),
            "lEJNqsIcuJs3bYSSq2kNrVLMp_dg5ntohiqtMri3iRU"
        );
        let public = AgentPublicKey::from_jwk_str(PUB).unwrap();
        assert_eq!(&public, key.public());
    }

    #[test]
    fn generated_key_round_trips() {
        let key = AgentKey::generate();
        let again = AgentKey::from_jwk_str(&key.to_jwk_string()).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert_eq!(key.thumbprint().len(), 43);
        let sig = key.sign_raw(b"hello");
        assert!(again.public().verify_raw(b"hello", &sig).is_ok());
        assert_eq!(
            again.public().verify_raw(b"hellp", &sig),
            Err(TokenError::BadSignature)
        );
        assert!(!format!("{key:?}").contains(&key.to_jwk()["d"].as_str().unwrap().to_string()));
    }

    #[test]
    fn webcrypto_import_table() {
        let base: Value = serde_json::from_str(PUB).unwrap();
        let with = |k: &str, v: Value| {
            let mut j = base.clone();
            j[k] = v;
            AgentPublicKey::from_jwk(&j)
        };
        let bare = serde_json::json!({"kty":"EC","crv":"P-256","x":base["x"],"y":base["y"]});
        assert!(AgentPublicKey::from_jwk(&bare).is_ok());
        assert_eq!(
            with("ext", Value::Bool(false)),
            Err(KeyError::NotExtractable)
        );
        assert_eq!(
            with("key_ops", serde_json::json!(["sign"])),
            Err(KeyError::KeyOpsForbid("verify"))
        );
        assert!(with("alg", serde_json::json!("ES256")).is_ok());
        assert_eq!(
            with("alg", serde_json::json!("ES384")),
            Err(KeyError::WrongAlg("ES384".into()))
        );
        assert_eq!(
            with("use", serde_json::json!("enc")),
            Err(KeyError::WrongUse("enc".into()))
        );
        assert!(with("use", serde_json::json!("sig")).is_ok());
        assert_eq!(
            with("crv", serde_json::json!("P-384")),
            Err(KeyError::WrongCurve)
        );
        assert_eq!(
            with("kty", serde_json::json!("RSA")),
            Err(KeyError::WrongKeyType)
        );
        assert_eq!(
            with("x", serde_json::json!("AAAA")),
            Err(KeyError::BadMember("x"))
        );
        assert_eq!(
            with("y", serde_json::json!(7)),
            Err(KeyError::BadMember("y"))
        );
        let zero = b64::encode([0u8; 32]);
        assert_eq!(
            with("y", serde_json::json!(zero)),
            Err(KeyError::NotOnCurve)
        );
        assert_eq!(
            AgentPublicKey::from_jwk_str(PRIV),
            Err(KeyError::UnexpectedPrivate),
            "a private JWK cannot be imported for verify"
        );
        assert_eq!(AgentPublicKey::from_jwk_str("nope"), Err(KeyError::NotJson));
        assert_eq!(
            AgentPublicKey::from_jwk_str("[1]"),
            Err(KeyError::NotObject)
        );
    }

    #[test]
    fn private_import_rules() {
        assert_eq!(
            AgentKey::from_jwk_str(PUB).unwrap_err(),
            KeyError::KeyOpsForbid("sign")
        );
        let mut v: Value = serde_json::from_str(PRIV).unwrap();
        v["d"] = Value::String(b64::encode([7u8; 32]));
        assert_eq!(
            AgentKey::from_jwk(&v).unwrap_err(),
            KeyError::BadPrivateScalar
        );
        v.as_object_mut().unwrap().remove("d");
        v["key_ops"] = serde_json::json!(["sign"]);
        assert_eq!(AgentKey::from_jwk(&v).unwrap_err(), KeyError::NotPrivate);
    }

    #[test]
    fn thumbprint_input_is_rfc7638() {
        assert_eq!(
            jwk_thumbprint(
                "hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM",
                "BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE"
            ),
            "lEJNqsIcuJs3bYSSq2kNrVLMp_dg5ntohiqtMri3iRU"
        );
    }
}
