//! The analyst vectors of kibitz-agents.md §3.12 and §4.9, verified byte for byte.

#![allow(clippy::unwrap_used)]

use capability_manifest::*;
use serde_json::{json, Value};

const AGENT_PRIV: &str = r#"{"key_ops":["sign"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256","d":"WpM0EUgpZUEUz1riUaH5SwSIM2CzaxG2v5dG6gWjhCI"}"#;
const AGENT_PUB: &str = r#"{"key_ops":["verify"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256"}"#;
const FP: &str = "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89";
const TOKEN: &str = "eyJrIjoia2J6LWFnZW50LWtleS52MSIsInJvb20iOiJzdGFuZHVwIiwiZnAiOiJhYjpjZDplZjowMToyMzo0NTo2Nzo4OTphYjpjZDplZjowMToyMzo0NTo2Nzo4OTphYjpjZDplZjowMToyMzo0NTo2Nzo4OTphYjpjZDplZjowMToyMzo0NTo2Nzo4OSIsImlhdCI6MTcwMDAwMDAwMH0.Kiu87NRxd5xcJgcNWso3kDDSH70zedGE62mZLtI0RcdK7_fwWo6GlXLoOMb6LW15d1Xq3x2taPuZU_kcFEXVdg";
const BODY: &str = r#"{"k":"kbz-agent-key.v1","room":"standup","fp":"ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89","iat":1700000000}"#;

const CREATOR_PRIV: &str = r#"{"key_ops":["sign"],"ext":true,"kty":"EC","x":"PXrixU5hK7vxGqRDXDDTOwrIq3K7wktUPS8HagTNYnM","y":"j01R2JJ_789dJ5o5erg5VbaSyWVMOOzkU0PdJ5thP3M","crv":"P-256","d":"iGmRKBoNaHPC1HuQYm29hjnHkce8q-NWo52SAE6U1I0"}"#;
const GK: &str = "eyJrZXlfb3BzIjpbInZlcmlmeSJdLCJleHQiOnRydWUsImt0eSI6IkVDIiwieCI6IlBYcml4VTVoSzd2eEdxUkRYRERUT3dySXEzSzd3a3RVUFM4SGFnVE5Zbk0iLCJ5IjoiajAxUjJKSl83ODlkSjVvNWVyZzVWYmFTeVdWTU9PemtVMFBkSjV0aFAzTSIsImNydiI6IlAtMjU2In0";
const GM: &str = "eyJtZW1iZXJzIjpbXSwibW9kZSI6Imdvb2dsZSIsInJvb20iOiJzdGFuZHVwIiwiZXhwIjoxNzAwMDAzNjAwLCJpbnZpdGVlcyI6W10sImFnZW50S2V5cyI6W3sia2V5Ijp7ImtleV9vcHMiOlsidmVyaWZ5Il0sImV4dCI6dHJ1ZSwia3R5IjoiRUMiLCJ4IjoiaFBsZHYtUUs3UHZXdHRyVVFIRlpnU3RyV2VyNmUtcnNqV0JXTjN0Wjd0TSIsInkiOiJCTUNzQmpmR2ozakl0ODRkdEVNODQ4N25MQVRybXVkdWxCVVBFUHBycHdFIiwiY3J2IjoiUC0yNTYifSwiY2FwcyI6eyJwZXJjZWl2ZSI6WyJyZWFkLWNoYXQiLCJyZWFkLXJvc3RlciJdLCJhY3QiOlsic2VuZC1jaGF0Il19LCJsYWJlbCI6Im5vdGVzLWJvdCJ9XX0.mVqaQnWbiMXHi1Mni45odpfsHHK0zFJdjx_hFenf3XCYWoHyN2XHCycgBRiQmWF76CRukPCK7JGdUQXz3KcfJQ";
const GM_BODY: &str = r#"{"members":[],"mode":"google","room":"standup","exp":1700003600,"invitees":[],"agentKeys":[{"key":{"key_ops":["verify"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256"},"caps":{"perceive":["read-chat","read-roster"],"act":["send-chat"]},"label":"notes-bot"}]}"#;

fn allowed() -> Vec<Value> {
    vec![serde_json::from_str(AGENT_PUB).unwrap()]
}

fn verify_at(token: &str, fp: &str, now: u64) -> Result<VerifiedAssertion, AssertionError> {
    verify_assertion(
        token,
        &allowed(),
        "standup",
        fp,
        now,
        AssertionOptions::default(),
    )
}

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

#[test]
fn thumbprint_of_the_agent_key() {
    let key = AgentKey::from_jwk_str(AGENT_PRIV).unwrap();
    assert_eq!(
        key.thumbprint(),
        "lEJNqsIcuJs3bYSSq2kNrVLMp_dg5ntohiqtMri3iRU"
    );
    assert_eq!(key.public().to_jwk_string(), AGENT_PUB);
    assert_eq!(
        AgentPublicKey::from_jwk_str(AGENT_PUB)
            .unwrap()
            .thumbprint(),
        key.thumbprint()
    );
}

#[test]
fn assertion_body_decodes_exactly() {
    let decoded = decode_token(TOKEN).unwrap();
    assert_eq!(b64url_decode(decoded.body), BODY.as_bytes());
    assert_eq!(decoded.signature.len(), 64);
}

#[test]
fn assertion_vector_verifies_inside_the_window() {
    for now in [
        1_699_999_940,
        1_699_999_999,
        1_700_000_000,
        1_700_000_150,
        1_700_000_300,
    ] {
        let ok = verify_at(TOKEN, FP, now).unwrap_or_else(|e| panic!("now {now}: {e}"));
        assert_eq!(ok.key_id, "lEJNqsIcuJs3bYSSq2kNrVLMp_dg5ntohiqtMri3iRU");
        assert_eq!(ok.key_index, 0);
    }
    // remoteFp in any case.
    assert!(verify_at(TOKEN, &FP.to_uppercase(), 1_700_000_000).is_ok());
    assert!(verify_at(TOKEN, &format!("  {}  ", FP.to_uppercase()), 1_700_000_000).is_ok());
}

#[test]
fn assertion_vector_boundaries() {
    assert_eq!(
        verify_at(TOKEN, FP, 1_700_000_301).unwrap_err().to_string(),
        "stale assertion"
    );
    assert_eq!(
        verify_at(TOKEN, FP, 1_699_999_939).unwrap_err().to_string(),
        "assertion from the future"
    );
    assert_eq!(
        verify_assertion(
            TOKEN,
            &allowed(),
            "Standup",
            FP,
            1_700_000_000,
            AssertionOptions::default()
        ),
        Err(AssertionError::WrongRoom),
        "room is compared as the normalised key, byte for byte"
    );
}

/// Re-encode a raw r||s signature as DER.
fn der_from_raw(raw: &[u8]) -> Vec<u8> {
    fn int(bytes: &[u8]) -> Vec<u8> {
        let mut b: Vec<u8> = bytes.iter().copied().skip_while(|x| *x == 0).collect();
        if b.first().is_some_and(|x| x & 0x80 != 0) {
            b.insert(0, 0);
        }
        let mut out = vec![0x02, b.len() as u8];
        out.extend(b);
        out
    }
    let mut body = int(&raw[..32]);
    body.extend(int(&raw[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn negative_controls() {
    let decoded = decode_token(TOKEN).unwrap();
    let der = der_from_raw(&decoded.signature);
    assert!(
        der.len() >= 70 && der.len() <= 72,
        "DER length {}",
        der.len()
    );
    let der_token = format!("{}.{}", decoded.body, b64url(&der));
    assert_eq!(
        verify_at(&der_token, FP, 1_700_000_000),
        Err(AssertionError::NoMatchingKey)
    );
    let pubkey = AgentPublicKey::from_jwk_str(AGENT_PUB).unwrap();
    assert_eq!(
        verify_token(&der_token, &pubkey),
        Err(TokenError::BadSignatureLength(der.len()))
    );

    // A signature over the JSON text instead of the body string.
    let key = AgentKey::from_jwk_str(AGENT_PRIV).unwrap();
    let over_json = format!(
        "{}.{}",
        decoded.body,
        b64url(&key.sign_raw(BODY.as_bytes()))
    );
    assert_eq!(
        verify_at(&over_json, FP, 1_700_000_000),
        Err(AssertionError::NoMatchingKey)
    );

    // Truncated token.
    assert_eq!(
        verify_at(&TOKEN[..TOKEN.len() - 10], FP, 1_700_000_000),
        Err(AssertionError::NoMatchingKey)
    );
}

#[test]
fn our_signature_has_the_browser_body() {
    let key = AgentKey::from_jwk_str(AGENT_PRIV).unwrap();
    let ours = sign_assertion(&key, "Standup", &FP.to_uppercase(), 1_700_000_000);
    let decoded = decode_token(&ours).unwrap();
    assert_eq!(b64url_decode(decoded.body), BODY.as_bytes());
    // The body segment is identical to the browser's (ECDSA signatures differ, both verify).
    assert_eq!(decoded.body, TOKEN.split('.').next().unwrap());
    assert!(verify_at(&ours, FP, 1_700_000_000).is_ok());
}

#[test]
fn room_manifest_vector() {
    let creator = AgentKey::from_jwk_str(CREATOR_PRIV).unwrap();
    let link = RoomLink::parse(&format!(
        "https://kibitz.chat/#standup?g=google&gk={GK}&gm={GM}&gc=client-1"
    ))
    .unwrap();
    assert_eq!(link.room_key(), "standup");
    assert_eq!(link.gate_mode(), GateMode::Google);
    assert_eq!(link.client_id.as_deref(), Some("client-1"));
    let gk = link.creator_public_key().unwrap();
    assert_eq!(&gk, creator.public());
    assert_eq!(link.manifest.as_deref(), Some(GM));
    assert_eq!(
        b64url_decode(GM.split('.').next().unwrap()),
        GM_BODY.as_bytes()
    );

    let m = verify_room_manifest(GM, &gk, "standup", 1_700_000_000, Some("google")).unwrap();
    assert_eq!(m.agent_entries().len(), 1);
    assert_eq!(m.agent_entries()[0].label.as_deref(), Some("notes-bot"));
    assert!(verify_room_manifest(GM, &gk, "standup", 1_700_000_000, None).is_ok());
    assert_eq!(
        verify_room_manifest(GM, &gk, "standup", 1_700_003_600, Some("google")),
        Err(RoomManifestError::Expired)
    );
    assert!(verify_room_manifest(GM, &gk, "standup", 1_700_003_599, Some("google")).is_ok());
    assert_eq!(
        verify_room_manifest(GM, &gk, "lunch", 1_700_000_000, None),
        Err(RoomManifestError::WrongRoom)
    );
    assert_eq!(
        verify_room_manifest(GM, &gk, "standup", 1_700_000_000, Some("invite")),
        Err(RoomManifestError::WrongMode)
    );
    let agent = AgentPublicKey::from_jwk_str(AGENT_PUB).unwrap();
    assert_eq!(
        verify_room_manifest(GM, &agent, "standup", 1_700_000_000, None),
        Err(RoomManifestError::BadSignature)
    );

    // The §3.12 assertion is admitted by agentKeys[0] with its caps.
    let admitted = admit_agent(
        &m,
        TOKEN,
        "standup",
        FP,
        1_700_000_000,
        AssertionOptions::default(),
    )
    .unwrap();
    assert_eq!(admitted.index, 0);
    assert_eq!(
        admitted.key_id,
        "lEJNqsIcuJs3bYSSq2kNrVLMp_dg5ntohiqtMri3iRU"
    );
    let caps = admitted.caps.unwrap();
    assert_eq!(
        caps.perceive,
        vec![Capability::ReadChat, Capability::ReadRoster]
    );
    assert_eq!(caps.act, vec![Capability::SendChat]);
    assert_eq!(m.find_agent(&agent).map(|(i, _)| i), Some(0));
}

#[test]
fn room_manifest_repo_scenarios() {
    const NOW: u64 = 3_000_000;
    let creator = AgentKey::generate();
    let base = || RoomManifest {
        members: vec!["Alice".into(), "bob@acme.com".into(), "Carol".into()],
        mh: None,
        domains: None,
        mode: "invite".into(),
        room: "standup".into(),
        exp: 3_003_600,
        invitees: None,
        agent_keys: None,
    };
    let sign = |m: &RoomManifest| sign_room_manifest(&creator, m);
    let pubk = creator.public();
    assert!(verify_room_manifest(&sign(&base()), pubk, "standup", NOW, None).is_ok());
    let stranger = AgentKey::generate();
    assert_eq!(
        verify_room_manifest(&sign(&base()), stranger.public(), "standup", NOW, None),
        Err(RoomManifestError::BadSignature)
    );
    assert_eq!(
        verify_room_manifest(&sign(&base()), pubk, "lunch", NOW, None),
        Err(RoomManifestError::WrongRoom)
    );
    let expired = RoomManifest {
        exp: NOW - 1,
        ..base()
    };
    assert_eq!(
        verify_room_manifest(&sign(&expired), pubk, "standup", NOW, None),
        Err(RoomManifestError::Expired)
    );
    let empty = RoomManifest {
        members: vec![],
        ..base()
    };
    assert_eq!(
        verify_room_manifest(&sign(&empty), pubk, "standup", NOW, None)
            .unwrap_err()
            .to_string(),
        "no members"
    );
    let domains_only = RoomManifest {
        members: vec![],
        domains: Some(vec!["acme.com".into()]),
        ..base()
    };
    assert_eq!(
        verify_room_manifest(&sign(&domains_only), pubk, "standup", NOW, None),
        Err(RoomManifestError::NoMembers)
    );
    assert_eq!(
        verify_room_manifest(&sign(&base()), pubk, "standup", NOW, Some("google"))
            .unwrap_err()
            .to_string(),
        "wrong mode"
    );
    let hashed = RoomManifest {
        members: vec![],
        mh: Some(vec!["h".into()]),
        ..base()
    };
    assert!(verify_room_manifest(&sign(&hashed), pubk, "standup", NOW, None).is_ok());

    // Tampering: an extra member in the body breaks the signature.
    let token = sign(&base());
    let (_, sig) = token.split_once('.').unwrap();
    let mut more = serde_json::to_value(base()).unwrap();
    more["members"]
        .as_array_mut()
        .unwrap()
        .push(json!("mallory@evil.com"));
    let forged = format!("{}.{sig}", b64url(more.to_string().as_bytes()));
    assert_eq!(
        verify_room_manifest(&forged, pubk, "standup", NOW, None),
        Err(RoomManifestError::BadSignature)
    );

    // Agents-only manifest with caps; splicing a key breaks the signature.
    let agent = AgentKey::generate();
    let caps =
        Grant::sanitize(&json!({"perceive":["read-chat","read-roster"],"act":["send-chat","act"]}));
    let entry: AgentEntry =
        serde_json::from_value(agent_entry_for(agent.public(), Some(&caps), Some("bot"))).unwrap();
    let agents_only = RoomManifest {
        members: vec![],
        mode: "google".into(),
        agent_keys: Some(vec![entry]),
        ..base()
    };
    let token = sign(&agents_only);
    let m = verify_room_manifest(&token, pubk, "standup", NOW, Some("google")).unwrap();
    let fp = "AB:CD";
    let assertion = sign_assertion(&agent, "standup", fp, NOW);
    let admitted = admit_agent(
        &m,
        &assertion,
        "standup",
        fp,
        NOW,
        AssertionOptions::default(),
    )
    .unwrap();
    assert_eq!(
        admitted.caps.unwrap().act,
        vec![Capability::SendChat, Capability::Act]
    );
    let mut spliced = serde_json::to_value(&agents_only).unwrap();
    spliced["agentKeys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": stranger.public().to_jwk()}));
    let forged = format!(
        "{}.{}",
        b64url(spliced.to_string().as_bytes()),
        token.split_once('.').unwrap().1
    );
    assert_eq!(
        verify_room_manifest(&forged, pubk, "standup", NOW, None),
        Err(RoomManifestError::BadSignature)
    );

    // An entry without caps records nothing; the documented default is perceive-only.
    let bare: AgentEntry =
        serde_json::from_value(agent_entry_for(agent.public(), None, None)).unwrap();
    let m2 = RoomManifest {
        members: vec![],
        agent_keys: Some(vec![bare]),
        ..base()
    };
    let admitted = admit_agent(
        &m2,
        &assertion,
        "standup",
        fp,
        NOW,
        AssertionOptions::default(),
    )
    .unwrap();
    assert_eq!(admitted.caps, None);
    assert_eq!(admitted.grant_or_default(), Grant::agent_default());
    assert_eq!(
        admit_agent(
            &base(),
            &assertion,
            "standup",
            fp,
            NOW,
            AssertionOptions::default()
        )
        .unwrap_err()
        .to_string(),
        "this room admits no agents"
    );
}

#[test]
fn agent_entry_json_shape() {
    let key = AgentKey::from_jwk_str(AGENT_PRIV).unwrap();
    let caps =
        Grant::sanitize(&json!({"perceive":["read-chat","read-roster"],"act":["send-chat"]}));
    let entry = agent_entry_for(key.public(), Some(&caps), Some("notes-bot"));
    let expected = &GM_BODY[GM_BODY.find("[{\"key\"").unwrap() + 1..GM_BODY.len() - 2];
    assert_eq!(entry.to_string(), expected);
    assert_eq!(
        agent_entry_for(key.public(), None, None).to_string(),
        format!("{{\"key\":{AGENT_PUB}}}")
    );
}

#[test]
fn link_parsing_rules() {
    let bare = RoomLink::parse("standup").unwrap();
    assert_eq!(bare.room, "standup");
    assert_eq!(bare.gate_mode(), GateMode::Open);
    // g absent: gk/gm are not decoded, gc and host fields are.
    let open = RoomLink::parse(&format!(
        "https://kibitz.chat/#standup?gk={GK}&gm={GM}&gc=c&ghn=Ann&gl=1"
    ))
    .unwrap();
    assert_eq!(open.creator_key, None);
    assert_eq!(open.manifest, None);
    assert_eq!(open.client_id.as_deref(), Some("c"));
    assert_eq!(open.host_name.as_deref(), Some("Ann"));
    assert!(open.lobby_on_start);
    assert_eq!(open.param("gm"), Some(GM));
    let explicit_open = RoomLink::parse(&format!("#standup?g=open&gk={GK}")).unwrap();
    assert_eq!(explicit_open.creator_key, None);
    // ge wins over gm.
    let sealed = RoomLink::parse(&format!(
        "x.chat/#standup?g=google&gk={GK}&gm={GM}&ge=SEALED"
    ))
    .unwrap();
    assert_eq!(sealed.enc_manifest.as_deref(), Some("SEALED"));
    assert_eq!(sealed.manifest, None);
    // Corrupt gk: left undecoded.
    let corrupt = RoomLink::parse("#standup?g=invite&gk=%%%&gn=a,%20b,,c").unwrap();
    assert_eq!(corrupt.creator_key, None);
    assert_eq!(
        corrupt.names,
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    // Unknown mode is open.
    assert_eq!(
        RoomLink::parse("#r?g=weird").unwrap().gate_mode(),
        GateMode::Open
    );
    // Legacy query form when the fragment carries no gate key.
    let legacy =
        RoomLink::parse(&format!("https://kibitz.chat/?g=google&gk={GK}#My Room")).unwrap();
    assert_eq!(legacy.room_key(), "my-room");
    assert!(legacy.creator_key.is_some());
    assert_eq!(
        RoomLink::parse("https://kibitz.chat/"),
        Err(LinkError::NoRoom)
    );
    assert_eq!(RoomLink::parse("#?g=google"), Err(LinkError::NoRoom));
    // Round trip through our builder.
    let creator = AgentKey::generate();
    let built = build_room_link(
        "https://kibitz.chat/",
        "standup",
        GateMode::Google,
        creator.public(),
        GM,
    );
    let parsed = RoomLink::parse(&built).unwrap();
    assert_eq!(parsed.creator_public_key().as_ref(), Some(creator.public()));
    assert_eq!(parsed.manifest.as_deref(), Some(GM));
}
