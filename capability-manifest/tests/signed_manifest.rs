//! The signed agent manifest (JWS ES256) and its roster disclosure.

#![allow(clippy::unwrap_used)]

use capability_manifest::*;
use serde_json::{json, Value};

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn transcriber() -> AgentManifest {
    AgentManifest::from_value(&json!({
        "kind": "kibitz-agent-manifest.v1",
        "agent": {"name": "Transcriber", "version": "0.1.0", "publisher": "kibitz-agent"},
        "lanes": [
            {"capability": "hear-audio", "purpose": "transcribe speech", "processor": "whisper",
             "destination": {"type": "local", "model": "whisper tiny.en", "runs_on": "cpu"}},
            {"capability": "read-roster", "purpose": "speaker names", "processor": "roster",
             "destination": {"type": "local", "model": "whisper tiny.en", "runs_on": "cpu"}}
        ],
        "egress": [],
        "issued_at": 1_700_000_000u64,
        "expires_at": 1_700_086_400u64
    }))
    .unwrap()
}

fn summarizer() -> AgentManifest {
    AgentManifest::from_value(&json!({
        "kind": "kibitz-agent-manifest.v1",
        "agent": {"name": "Summarizer", "version": "0.1.0", "publisher": "kibitz-agent"},
        "lanes": [
            {"capability": "read-chat", "purpose": "summarise", "processor": "llm",
             "destination": {"type": "remote", "provider": "OpenAI-compatible",
                             "endpoint": "https://api.example.com/v1/chat/completions",
                             "model": "gpt-4o-mini", "retention": "none"}},
            {"capability": "send-chat", "purpose": "post the summary", "processor": "llm", "optional": true,
             "destination": {"type": "local", "model": "none", "runs_on": "cpu"}}
        ],
        "egress": ["https://api.example.com:443"],
        "issued_at": 1_700_000_000u64
    }))
    .unwrap()
}

const NOW: u64 = 1_700_000_100;

#[test]
fn sign_verify_round_trip_and_header() {
    let key = AgentKey::generate();
    let signed = sign_manifest(&transcriber(), &key, ValidateOptions::default()).unwrap();
    assert_eq!(signed.key_thumbprint, key.thumbprint());
    let parts: Vec<&str> = signed.token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
    assert_eq!(
        header.to_string(),
        format!(
            r#"{{"alg":"ES256","typ":"kibitz-agent-manifest+jws","kid":"{}","jwk":{}}}"#,
            key.thumbprint(),
            key.public().to_jwk_string()
        )
    );
    assert_eq!(b64url_decode(parts[1]), transcriber().to_json().as_bytes());
    assert_eq!(b64url_decode(parts[2]).len(), 64);

    let verified = verify_signed_manifest(&signed.token, &VerifyManifestOptions::at(NOW)).unwrap();
    assert_eq!(verified.manifest, transcriber());
    assert_eq!(verified.key_thumbprint, key.thumbprint());
    let pinned = VerifyManifestOptions {
        expected_key: Some(key.thumbprint()),
        ..VerifyManifestOptions::at(NOW)
    };
    assert!(verify_signed_manifest(&signed.token, &pinned).is_ok());
}

#[test]
fn bad_signed_manifests() {
    let key = AgentKey::generate();
    let signed = sign_manifest(&transcriber(), &key, ValidateOptions::default()).unwrap();
    let opts = VerifyManifestOptions::at(NOW);
    let parts: Vec<&str> = signed.token.split('.').collect();

    // Tampered payload: an extra lane.
    let mut v: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    v["lanes"][0]["destination"]["model"] = json!("whisper large");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(v.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        verify_signed_manifest(&tampered, &opts),
        Err(SignedManifestError::BadSignature)
    );

    // Re-signed by someone else, embedding their key: valid signature, wrong key when pinned.
    let mallory = AgentKey::generate();
    let resigned = sign_manifest(&transcriber(), &mallory, ValidateOptions::default()).unwrap();
    let pinned = VerifyManifestOptions {
        expected_key: Some(key.thumbprint()),
        ..VerifyManifestOptions::at(NOW)
    };
    assert!(matches!(
        verify_signed_manifest(&resigned.token, &pinned),
        Err(SignedManifestError::WrongKey { .. })
    ));

    // Swapping the header's key for another one: kid no longer matches.
    let mut h: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
    h["jwk"] = mallory.public().to_jwk();
    let swapped = format!(
        "{}.{}.{}",
        b64url(h.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    assert!(matches!(
        verify_signed_manifest(&swapped, &opts),
        Err(SignedManifestError::KidMismatch { .. })
    ));
    h["kid"] = json!(mallory.thumbprint());
    let swapped = format!(
        "{}.{}.{}",
        b64url(h.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        verify_signed_manifest(&swapped, &opts),
        Err(SignedManifestError::BadSignature)
    );

    // alg none / HS256.
    for alg in ["none", "HS256", "ES384"] {
        let mut h: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
        h["alg"] = json!(alg);
        let t = format!(
            "{}.{}.{}",
            b64url(h.to_string().as_bytes()),
            parts[1],
            parts[2]
        );
        assert_eq!(
            verify_signed_manifest(&t, &opts),
            Err(SignedManifestError::UnsupportedAlg(alg.into()))
        );
    }

    // Malformed key in the header.
    let mut h: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
    h["jwk"]["x"] = json!("AAAA");
    let t = format!(
        "{}.{}.{}",
        b64url(h.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        verify_signed_manifest(&t, &opts),
        Err(SignedManifestError::MalformedKey(KeyError::BadMember("x")))
    );

    // Expired and not yet valid.
    let late = VerifyManifestOptions::at(1_700_086_400);
    assert!(matches!(
        verify_signed_manifest(&signed.token, &late),
        Err(SignedManifestError::Expired { .. })
    ));
    let early = VerifyManifestOptions::at(1_700_000_000 - 61);
    assert!(matches!(
        verify_signed_manifest(&signed.token, &early),
        Err(SignedManifestError::NotYetValid { .. })
    ));
    assert!(verify_signed_manifest(
        &signed.token,
        &VerifyManifestOptions::at(1_700_000_000 - 60)
    )
    .is_ok());

    // Truncated / structurally broken tokens.
    for bad in [
        &signed.token[..signed.token.len() - 5],
        &signed.token[..signed.token.rfind('.').unwrap()],
        "a.b",
        "a.b.c.d",
        "..",
        "",
    ] {
        let err = verify_signed_manifest(bad, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                SignedManifestError::MalformedToken(_)
                    | SignedManifestError::BadHeader(_)
                    | SignedManifestError::BadSignature
            ),
            "{bad:?}: {err:?}"
        );
    }

    // A correctly signed but invalid payload (signed without validation) is refused as invalid.
    let mut bad = transcriber();
    bad.egress = vec!["https://evil.example:443".into()];
    let header = json!({"alg":"ES256","typ":MANIFEST_JWS_TYP,"kid":key.thumbprint(),"jwk":key.public().to_jwk()});
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(bad.to_json().as_bytes())
    );
    let t = format!("{input}.{}", b64url(&key.sign_raw(input.as_bytes())));
    assert_eq!(
        verify_signed_manifest(&t, &opts),
        Err(SignedManifestError::Invalid(
            ManifestError::UndeclaredEgress("https://evil.example:443".into())
        ))
    );
    // And sign_manifest refuses to sign it in the first place.
    assert!(sign_manifest(&bad, &key, ValidateOptions::default()).is_err());
}

#[test]
fn disclosure_meta() {
    let key = AgentKey::generate();
    let t = sign_manifest(&transcriber(), &key, ValidateOptions::default()).unwrap();
    let meta = Disclosure::from_signed(&t).to_meta();
    let keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["role", "readOnly", "backend", "manifest"]);
    assert_eq!(meta["role"], "agent");
    assert_eq!(meta["readOnly"], true);
    assert_eq!(meta["backend"], "local whisper tiny.en");
    assert_eq!(meta["manifest"]["v"], 1);
    assert_eq!(meta["manifest"]["kid"], key.thumbprint());
    assert_eq!(meta["manifest"]["sha256"], manifest_digest(&t.token));
    let r = ManifestRef::from_value(&meta["manifest"]).unwrap();
    assert!(r.matches(&t.token));
    assert!(!r.matches(&format!("{}x", t.token)));

    let s = sign_manifest(&summarizer(), &key, ValidateOptions::default()).unwrap();
    let meta = Disclosure::from_signed(&s).to_meta();
    let keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["role", "readOnly", "backend", "egress", "manifest"]);
    assert_eq!(meta["readOnly"], false);
    assert_eq!(meta["egress"], true);
    assert_eq!(
        meta["backend"],
        "OpenAI-compatible gpt-4o-mini @ api.example.com + local none"
    );
    assert!(meta["backend"].as_str().unwrap().chars().count() <= 80);

    let g = summarizer().requested_grant();
    assert_eq!(g.perceive, vec![Capability::ReadChat]);
    assert_eq!(g.act, vec![Capability::SendChat]);
    assert!(g.egress);
    // The effective grant is host grant ∩ manifest request.
    let effective = Grant::intersect(&g, &Grant::agent_default());
    assert_eq!(effective.perceive, vec![Capability::ReadChat]);
    assert!(effective.act.is_empty());
}

#[test]
fn retrieval_envelopes() {
    let req = ManifestEnvelope::Request.to_value();
    assert_eq!(req.to_string(), r#"{"__kib_agent":"manifest?"}"#);
    assert_eq!(
        ManifestEnvelope::from_value(&req),
        Some(ManifestEnvelope::Request)
    );
    let resp = ManifestEnvelope::Response("a.b.c".into()).to_value();
    assert_eq!(
        resp.to_string(),
        r#"{"__kib_agent":"manifest","token":"a.b.c"}"#
    );
    assert_eq!(
        ManifestEnvelope::from_value(&resp),
        Some(ManifestEnvelope::Response("a.b.c".into()))
    );
    assert_eq!(
        ManifestEnvelope::from_value(&json!({"__kib_agent":"chat","text":"x"})),
        None
    );
    assert_eq!(
        ManifestEnvelope::from_value(&json!({"__kib_agent":"manifest"})),
        None
    );
    assert_eq!(ManifestEnvelope::from_value(&json!(null)), None);
}
