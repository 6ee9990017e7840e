//! The Kibitz agent assertion `kbz-agent-key.v1` (agents spec §3.4–3.8).
//!
//! An agent proves it holds an allow-listed key by signing
//! `{"k":"kbz-agent-key.v1","room":<normalised room>,"fp":<own DTLS fp>,"iat":<epoch s>}` in the
//! [token container](crate::token). The authority checks it against the fingerprint of the live
//! presence connection, so a captured assertion is useless on another connection.

use serde_json::{json, Value};

use crate::error::AssertionError;
use crate::keys::{AgentKey, AgentPublicKey};
use crate::normalize::{canonical_fingerprint, normalize_room};
use crate::token::{decode_token, sign_token};

/// The assertion's `k` value.
pub const ASSERTION_KIND: &str = "kbz-agent-key.v1";
/// Authorities answer `unverified` to an `agentAssertion` longer than this (in characters).
pub const MAX_ASSERTION_CHARS: usize = 2048;
/// Default freshness window: an assertion older than this is stale.
pub const DEFAULT_MAX_AGE_SEC: u64 = 300;
/// Default clock-skew allowance for an `iat` in the future.
pub const DEFAULT_LEEWAY_SEC: u64 = 60;
/// How often browsers re-sign; agents should re-sign at least this often and after reconnects.
pub const RESIGN_INTERVAL_SEC: u64 = 240;

/// Freshness settings for [`verify_assertion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssertionOptions {
    /// Reject when `now - iat > max_age_sec` (default 300).
    pub max_age_sec: u64,
    /// Reject when `iat - now > leeway_sec` (default 60).
    pub leeway_sec: u64,
}

impl Default for AssertionOptions {
    fn default() -> Self {
        AssertionOptions {
            max_age_sec: DEFAULT_MAX_AGE_SEC,
            leeway_sec: DEFAULT_LEEWAY_SEC,
        }
    }
}

/// A successfully verified assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAssertion {
    /// RFC 7638 thumbprint of the matching key (Kibitz's `keyId`).
    pub key_id: String,
    /// Index of the matching key in the allow-list passed in.
    pub key_index: usize,
    /// The verified payload.
    pub payload: Value,
}

/// Sign an assertion for `room_name` (normalised here with [`normalize_room`]) and the agent's own
/// DTLS fingerprint `fp` (canonicalised: trimmed and lowercased), issued at `iat` epoch seconds.
/// The body's key order is `k, room, fp, iat`, as a browser writes it.
pub fn sign_assertion(key: &AgentKey, room_name: &str, fp: &str, iat: u64) -> String {
    let payload = json!({
        "k": ASSERTION_KIND,
        "room": normalize_room(room_name),
        "fp": canonical_fingerprint(fp),
        "iat": iat,
    });
    sign_token(key, &payload)
}

/// `verifyAgentAssertion`: check `token` against the allow-listed public JWKs, the expected
/// **room key** (already normalised: `room` is compared byte for byte, as Kibitz does with
/// `normalizeRoom(roomName)`), the connection's remote fingerprint and `now` (epoch seconds).
///
/// Order, exactly as Kibitz: an empty token or fingerprint → "missing assertion or fingerprint";
/// an empty list → "no allowed keys"; then each key in order — keys that fail WebCrypto import are
/// skipped, a key whose signature does not verify passes to the next; the first key that verifies
/// makes every claim check a hard failure: kind, room, fingerprint, `iat` is a number, future,
/// stale. No key verifies → "no matching allowed key". A malformed token therefore also ends in
/// "no matching allowed key". A non-string `fp` (on which the browser would throw) fails as "not
/// cert-bound to this connection". Integer or fractional `iat` both work.
pub fn verify_assertion(
    token: &str,
    allowed_keys: &[Value],
    room: &str,
    remote_fp: &str,
    now: u64,
    opts: AssertionOptions,
) -> Result<VerifiedAssertion, AssertionError> {
    if token.is_empty() || remote_fp.is_empty() {
        return Err(AssertionError::Missing);
    }
    if allowed_keys.is_empty() {
        return Err(AssertionError::NoAllowedKeys);
    }
    // Parse once: a token that does not decode can match no key.
    let decoded = decode_token(token).ok();
    for (index, jwk) in allowed_keys.iter().enumerate() {
        let Ok(key) = AgentPublicKey::from_jwk(jwk) else {
            continue;
        };
        let Some(decoded) = decoded.as_ref() else {
            continue;
        };
        if key
            .verify_raw(decoded.body.as_bytes(), &decoded.signature)
            .is_err()
        {
            continue;
        }
        let payload = &decoded.payload;
        if js_falsy(payload) {
            // `if (!payload) continue` in the browser.
            continue;
        }
        check_claims(payload, room, remote_fp, now, opts)?;
        return Ok(VerifiedAssertion {
            key_id: key.thumbprint(),
            key_index: index,
            payload: payload.clone(),
        });
    }
    Err(AssertionError::NoMatchingKey)
}

fn check_claims(
    payload: &Value,
    room: &str,
    remote_fp: &str,
    now: u64,
    opts: AssertionOptions,
) -> Result<(), AssertionError> {
    if payload.get("k").and_then(Value::as_str) != Some(ASSERTION_KIND) {
        return Err(AssertionError::WrongKind);
    }
    if payload.get("room").and_then(Value::as_str) != Some(room) {
        return Err(AssertionError::WrongRoom);
    }
    let fp = payload
        .get("fp")
        .and_then(Value::as_str)
        .ok_or(AssertionError::NotCertBound)?;
    if canonical_fingerprint(fp) != canonical_fingerprint(remote_fp) {
        return Err(AssertionError::NotCertBound);
    }
    let iat = payload
        .get("iat")
        .and_then(Value::as_f64)
        .ok_or(AssertionError::NoIat)?;
    let now = now as f64;
    if iat - now > opts.leeway_sec as f64 {
        return Err(AssertionError::FromTheFuture);
    }
    if now - iat > opts.max_age_sec as f64 {
        return Err(AssertionError::Stale);
    }
    Ok(())
}

fn js_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::sign_token;

    const ROOM: &str = "kbz-v1-standup";
    const FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    const NOW: u64 = 1_700_000_000;

    fn verify(
        token: &str,
        keys: &[&AgentKey],
        room: &str,
        fp: &str,
        now: u64,
    ) -> Result<VerifiedAssertion, AssertionError> {
        let jwks: Vec<Value> = keys.iter().map(|k| k.public().to_jwk()).collect();
        verify_assertion(token, &jwks, room, fp, now, AssertionOptions::default())
    }

    #[test]
    fn repo_scenarios() {
        let key = AgentKey::generate();
        let token = sign_assertion(&key, ROOM, FP, NOW);
        let ok = verify(&token, &[&key], ROOM, FP, NOW).unwrap();
        assert_eq!(ok.key_id, key.thumbprint());
        assert_eq!(ok.key_index, 0);
        assert_eq!(
            verify(
                &token,
                &[&key],
                ROOM,
                "99:99:99:99:99:99:99:99:99:99:99:99:99:99:99:99",
                NOW
            ),
            Err(AssertionError::NotCertBound)
        );
        let padded = sign_assertion(&key, ROOM, "  ab:cd:ef  ", NOW);
        assert!(verify(&padded, &[&key], ROOM, "AB:CD:EF", NOW).is_ok());
        assert_eq!(
            verify(&token, &[&key], "kbz-v1-other", FP, NOW),
            Err(AssertionError::WrongRoom)
        );
        let stranger = AgentKey::generate();
        assert_eq!(
            verify(&token, &[&stranger], ROOM, FP, NOW),
            Err(AssertionError::NoMatchingKey)
        );
        let third = AgentKey::generate();
        let second = verify(&token, &[&stranger, &key, &third], ROOM, FP, NOW).unwrap();
        assert_eq!(second.key_index, 1);
        let old = sign_assertion(&key, ROOM, FP, NOW - 10_000);
        assert_eq!(
            verify(&old, &[&key], ROOM, FP, NOW),
            Err(AssertionError::Stale)
        );
        let future = sign_assertion(&key, ROOM, FP, NOW + 10_000);
        assert_eq!(
            verify(&future, &[&key], ROOM, FP, NOW),
            Err(AssertionError::FromTheFuture)
        );
        let mut tampered = token.clone();
        tampered.truncate(token.len() - 2);
        tampered.push_str(if token.ends_with("AA") { "BB" } else { "AA" });
        assert_eq!(
            verify(&tampered, &[&key], ROOM, FP, NOW),
            Err(AssertionError::NoMatchingKey)
        );
        assert_eq!(
            verify(&token, &[], ROOM, FP, NOW),
            Err(AssertionError::NoAllowedKeys)
        );
        assert_eq!(
            verify("", &[&key], ROOM, FP, NOW),
            Err(AssertionError::Missing)
        );
        assert_eq!(
            verify(&token, &[&key], ROOM, "", NOW),
            Err(AssertionError::Missing)
        );
    }

    #[test]
    fn claim_failures_are_hard_and_ordered() {
        let key = AgentKey::generate();
        let other = AgentKey::generate();
        let kinds = [
            (
                json!({"k":"other","room":ROOM,"fp":FP,"iat":NOW}),
                AssertionError::WrongKind,
            ),
            (
                json!({"room":ROOM,"fp":FP,"iat":NOW}),
                AssertionError::WrongKind,
            ),
            (
                json!({"k":ASSERTION_KIND,"room":"x","fp":"zz","iat":"n"}),
                AssertionError::WrongRoom,
            ),
            (
                json!({"k":ASSERTION_KIND,"room":ROOM,"fp":5,"iat":NOW}),
                AssertionError::NotCertBound,
            ),
            (
                json!({"k":ASSERTION_KIND,"room":ROOM,"fp":FP,"iat":"1700000000"}),
                AssertionError::NoIat,
            ),
            (
                json!({"k":ASSERTION_KIND,"room":ROOM,"fp":FP}),
                AssertionError::NoIat,
            ),
            (json!([1, 2]), AssertionError::WrongKind),
        ];
        for (payload, want) in kinds {
            let token = sign_token(&key, &payload);
            // The matching key is second; the claim failure must not fall through to "no matching".
            assert_eq!(
                verify(&token, &[&other, &key, &other], ROOM, FP, NOW),
                Err(want),
                "{payload}"
            );
        }
        // A falsy payload is treated like a signature mismatch.
        let token = sign_token(&key, &Value::Null);
        assert_eq!(
            verify(&token, &[&key], ROOM, FP, NOW),
            Err(AssertionError::NoMatchingKey)
        );
        // Fractional iat is a number.
        let token = sign_token(
            &key,
            &json!({"k":ASSERTION_KIND,"room":ROOM,"fp":FP,"iat":1_700_000_000.5}),
        );
        assert!(verify(&token, &[&key], ROOM, FP, NOW).is_ok());
    }

    #[test]
    fn boundaries_are_inclusive() {
        let key = AgentKey::generate();
        let token = sign_assertion(&key, ROOM, FP, NOW);
        assert!(verify(&token, &[&key], ROOM, FP, NOW + 300).is_ok());
        assert_eq!(
            verify(&token, &[&key], ROOM, FP, NOW + 301),
            Err(AssertionError::Stale)
        );
        assert!(verify(&token, &[&key], ROOM, FP, NOW - 60).is_ok());
        assert_eq!(
            verify(&token, &[&key], ROOM, FP, NOW - 61),
            Err(AssertionError::FromTheFuture)
        );
    }

    #[test]
    fn unimportable_keys_are_skipped() {
        let key = AgentKey::generate();
        let token = sign_assertion(&key, ROOM, FP, NOW);
        let mut ext_false = key.public().to_jwk();
        ext_false["ext"] = Value::Bool(false);
        let keys = vec![json!("junk"), ext_false.clone(), key.public().to_jwk()];
        let ok =
            verify_assertion(&token, &keys, ROOM, FP, NOW, AssertionOptions::default()).unwrap();
        assert_eq!(ok.key_index, 2);
        assert_eq!(
            verify_assertion(
                &token,
                &[ext_false],
                ROOM,
                FP,
                NOW,
                AssertionOptions::default()
            ),
            Err(AssertionError::NoMatchingKey)
        );
    }

    #[test]
    fn reason_strings() {
        let all = [
            (AssertionError::Stale, "stale assertion"),
            (AssertionError::FromTheFuture, "assertion from the future"),
            (
                AssertionError::NotCertBound,
                "not cert-bound to this connection",
            ),
            (AssertionError::WrongRoom, "wrong room"),
            (AssertionError::NoMatchingKey, "no matching allowed key"),
            (AssertionError::NoAllowedKeys, "no allowed keys"),
            (AssertionError::Missing, "missing assertion or fingerprint"),
            (AssertionError::WrongKind, "wrong assertion kind"),
            (AssertionError::NoIat, "no iat"),
        ];
        for (e, s) in all {
            assert_eq!(e.to_string(), s);
        }
    }
}
