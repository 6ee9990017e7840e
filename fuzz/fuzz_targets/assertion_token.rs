//! Agent assertions, room manifests and room links from arbitrary bytes: must never panic.

#![no_main]

use capability_manifest::{
    verify_assertion, verify_room_manifest, AgentPublicKey, AssertionOptions, RoomLink,
};
use libfuzzer_sys::fuzz_target;

const AGENT_PUB: &str = r#"{"key_ops":["verify"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256"}"#;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(jwk) = serde_json::from_str::<serde_json::Value>(AGENT_PUB) else {
        return;
    };
    let _ = verify_assertion(
        &text,
        std::slice::from_ref(&jwk),
        "standup",
        "ab:cd",
        1_700_000_000,
        AssertionOptions::default(),
    );
    if let Ok(key) = AgentPublicKey::from_jwk(&jwk) {
        let _ = verify_room_manifest(&text, &key, "standup", 1_700_000_000, Some("google"));
    }
    let _ = AgentPublicKey::from_jwk_str(&text);
    let _ = RoomLink::parse(&text);
});
