//! The Kibitz signed-token container shared by the agent assertion, the room manifest, invites and
//! host commands (agents spec §3.3).
//!
//! ```text
//! token     = b64url(utf8(JSON(payload))) "." b64url(signature)
//! signature = ECDSA-P256-SHA256(key, ASCII bytes of the first segment), raw 64-byte r||s
//! ```
//!
//! It is **not** JWS: there is no header and the signing input is the body segment alone. The
//! verifier checks the exact bytes received, so no JSON canonicalisation is involved.

use serde_json::Value;

use crate::b64;
use crate::error::TokenError;
use crate::keys::{AgentKey, AgentPublicKey};

/// A token split into its parts, not yet verified.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedToken<'a> {
    /// The first segment exactly as received (the signing input).
    pub body: &'a str,
    /// The parsed JSON payload.
    pub payload: Value,
    /// The decoded signature bytes (64 for a well-formed token).
    pub signature: Vec<u8>,
}

/// Sign a JSON payload: `b64url(JSON) . b64url(raw r||s over the body segment)`.
///
/// The payload is serialised compactly in its own key order (`serde_json` with `preserve_order`),
/// like `JSON.stringify`.
pub fn sign_token(key: &AgentKey, payload: &Value) -> String {
    sign_token_json(key, payload.to_string().as_bytes())
}

/// Sign already-serialised JSON bytes (kept byte for byte).
pub fn sign_token_json(key: &AgentKey, json: &[u8]) -> String {
    let body = b64::encode(json);
    let sig = key.sign_raw(body.as_bytes());
    format!("{body}.{}", b64::encode(sig))
}

/// Split and decode a token without checking its signature.
///
/// Splits at the first `.`; a `.` at position 0 or as the last character is refused, like
/// Kibitz's `verifyPayload`. The body is decoded as UTF-8 with replacement (like `TextDecoder`,
/// which also drops a leading BOM) and parsed as any JSON value.
pub fn decode_token(token: &str) -> Result<DecodedToken<'_>, TokenError> {
    let dot = token.find('.').ok_or(TokenError::Malformed)?;
    if dot == 0 || dot == token.len() - 1 {
        return Err(TokenError::Malformed);
    }
    let body = &token[..dot];
    let signature = b64::decode(&token[dot + 1..]).ok_or(TokenError::BadBase64)?;
    let body_bytes = b64::decode(body).ok_or(TokenError::BadBase64)?;
    let text = String::from_utf8_lossy(&body_bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let payload: Value = serde_json::from_str(text).map_err(|_| TokenError::BadJson)?;
    Ok(DecodedToken {
        body,
        payload,
        signature,
    })
}

/// Verify a token under `key` and return its payload.
pub fn verify_token(token: &str, key: &AgentPublicKey) -> Result<Value, TokenError> {
    let decoded = decode_token(token)?;
    key.verify_raw(decoded.body.as_bytes(), &decoded.signature)?;
    Ok(decoded.payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_verify_round_trip() {
        let key = AgentKey::generate();
        let payload = json!({"b": 1, "a": "x"});
        let token = sign_token(&key, &payload);
        let (body, _) = token.split_once('.').unwrap();
        assert_eq!(b64::decode(body).unwrap(), br#"{"b":1,"a":"x"}"#);
        assert_eq!(verify_token(&token, key.public()).unwrap(), payload);
        let other = AgentKey::generate();
        assert_eq!(
            verify_token(&token, other.public()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens() {
        let key = AgentKey::generate();
        for bad in ["", "abc", ".abc", "abc.", "."] {
            assert_eq!(
                verify_token(bad, key.public()),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify_token("e30.*", key.public()),
            Err(TokenError::BadBase64)
        );
        assert_eq!(
            verify_token("bm90IGpzb24.AAAA", key.public()),
            Err(TokenError::BadJson)
        );
        assert_eq!(
            verify_token("e30.AAAA", key.public()),
            Err(TokenError::BadSignatureLength(3))
        );
    }

    #[test]
    fn signature_over_raw_json_is_rejected() {
        let key = AgentKey::generate();
        let json = br#"{"a":1}"#;
        let token = format!("{}.{}", b64::encode(json), b64::encode(key.sign_raw(json)));
        assert_eq!(
            verify_token(&token, key.public()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn padded_segments_are_tolerated() {
        let key = AgentKey::generate();
        let token = sign_token(&key, &json!({"k": 1}));
        let (body, sig) = token.split_once('.').unwrap();
        // Signature segment with pad: still verifies (decoder tolerates padding).
        let padded = format!("{body}.{sig}==");
        assert!(verify_token(&padded, key.public()).is_ok());
    }
}
