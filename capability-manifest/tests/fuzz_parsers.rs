//! Every parser of peer or user input, fed arbitrary strings and bytes: none may panic.

#![allow(clippy::unwrap_used)]

use capability_manifest::*;
use proptest::prelude::*;
use serde_json::Value;

const AGENT_PUB: &str = r#"{"key_ops":["verify"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256"}"#;

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_\\-.=+/]{0,200}",
        (any::<Vec<u8>>(), any::<Vec<u8>>()).prop_map(|(a, b)| format!(
            "{}.{}",
            b64url(&a),
            b64url(&b)
        )),
        (any::<Vec<u8>>(), any::<Vec<u8>>(), any::<Vec<u8>>()).prop_map(|(a, b, c)| format!(
            "{}.{}.{}",
            b64url(&a),
            b64url(&b),
            b64url(&c)
        )),
        any::<String>().prop_map(|s| format!("{}.{}", b64url(s.as_bytes()), b64url(&[7u8; 64]))),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        prop_oneof![
            any::<String>(),
            "(read-chat|send-chat|hear-audio|__kib_agent|manifest\\?|key|caps)"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                ("(perceive|act|backend|egress|expiresAt|key|caps|label|__kib_agent|token|v|kid|sha256|members|agentKeys|[a-z]{1,6})", inner),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn json_shaped_parsers_never_panic(v in json_value()) {
        let g = Grant::sanitize(&v);
        prop_assert!(g.perceive.iter().all(|c| c.is_perceive()));
        prop_assert!(g.act.iter().all(|c| c.is_act()));
        prop_assert!(g.backend.as_ref().is_none_or(|b| b.encode_utf16().count() <= 80));
        let _ = ManifestEnvelope::from_value(&v);
        let _ = ManifestRef::from_value(&v);
        let _ = AgentEntry::from_value(&v);
        let _ = RoomManifest::from_value(&v);
        let _ = AgentPublicKey::from_jwk(&v);
        let _ = AgentManifest::from_value(&v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn kibitz_token_never_panics(t in token_like()) {
        let key = AgentPublicKey::from_jwk_str(AGENT_PUB).unwrap();
        let _ = decode_token(&t);
        let _ = verify_token(&t, &key);
    }

    #[test]
    fn assertion_never_panics(t in token_like(), fp in any::<String>(), room in any::<String>(), now in any::<u64>()) {
        let keys: Vec<Value> = vec![serde_json::from_str(AGENT_PUB).unwrap(), Value::Null];
        let _ = verify_assertion(&t, &keys, &room, &fp, now, AssertionOptions::default());
    }

    #[test]
    fn room_manifest_never_panics(t in token_like(), now in any::<u64>()) {
        let key = AgentPublicKey::from_jwk_str(AGENT_PUB).unwrap();
        let _ = verify_room_manifest(&t, &key, "standup", now, Some("google"));
    }

    #[test]
    fn jws_never_panics(t in token_like(), now in any::<u64>()) {
        let _ = verify_signed_manifest(&t, &VerifyManifestOptions::at(now));
    }

    #[test]
    fn jwk_never_panics(s in any::<String>(), bytes in any::<Vec<u8>>()) {
        let _ = AgentPublicKey::from_jwk_str(&s);
        let _ = AgentKey::from_jwk_str(&s);
        let text = String::from_utf8_lossy(&bytes);
        let _ = AgentPublicKey::from_jwk_str(&text);
        let member = b64url(&bytes);
        let jwk = serde_json::json!({"kty":"EC","crv":"P-256","x":member,"y":member,"d":member});
        let _ = AgentKey::from_jwk(&jwk);
    }

    #[test]
    fn manifest_json_never_panics(s in any::<String>(), bytes in any::<Vec<u8>>()) {
        let _ = AgentManifest::parse_and_validate(&s, ValidateOptions::default());
        let _ = AgentManifest::parse_and_validate(&String::from_utf8_lossy(&bytes), ValidateOptions { allow_insecure_local: true });
    }

    #[test]
    fn manifest_structured_never_panics(endpoint in any::<String>(), egress in any::<String>(), cap in "[a-z\\-]{0,20}") {
        let v = serde_json::json!({
            "kind": MANIFEST_KIND,
            "agent": {"name":"a","version":"1","publisher":"p"},
            "lanes": [{"capability": cap, "purpose":"x", "processor":"y",
                       "destination": {"type":"remote","provider":"p","endpoint":endpoint,"model":"m","retention":"r"}}],
            "egress": [egress],
        });
        if let Ok(m) = AgentManifest::from_value(&v) {
            let _ = m.validate(ValidateOptions::default());
            let _ = m.allowed_origins();
            let _ = m.backend_summary();
        }
    }

    #[test]
    fn room_link_never_panics(s in any::<String>(), gk in any::<Vec<u8>>()) {
        let _ = RoomLink::parse(&s);
        let _ = RoomLink::parse(&format!("https://kibitz.chat/#{s}"));
        let _ = RoomLink::parse(&format!("#room?g=google&gk={}&gm={s}", b64url(&gk)));
    }

    #[test]
    fn grant_and_normalize_never_panic(s in any::<String>()) {
        let _ = Grant::from_json_str(&s);
        let n = normalize_room(&s);
        prop_assert!(n.len() <= 40);
        prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        let _ = canonical_fingerprint(&s);
    }

    #[test]
    fn sign_verify_round_trip(room in any::<String>(), fp in "[0-9A-F:]{1,95}", iat in 0u64..4_000_000_000) {
        let key = AgentKey::generate();
        let t = sign_assertion(&key, &room, &fp, iat);
        let keys = vec![key.public().to_jwk()];
        let ok = verify_assertion(&t, &keys, &normalize_room(&room), &fp.to_lowercase(), iat, AssertionOptions::default());
        prop_assert!(ok.is_ok());
    }
}
