//! Decoding rules of the message codecs: null tolerance, fallbacks, typed errors, caps; and
//! typed errors for oversize and malformed frames.
#![allow(clippy::unwrap_used, missing_docs)]

use agent_runtime::wire::binarypack::{encode, DecodeError, DecodeOptions};
use agent_runtime::wire::chunker::{
    ChunkError, DeframeError, Deframer, DeframerOptions, Frame, Framer, ReassemblerOptions,
};
use agent_runtime::wire::content::ContentMsg;
use agent_runtime::wire::control::{ControlMsg, LinkKind, LinkMessage};
use agent_runtime::wire::presence::{
    strip_engine, AuthorityMsg, ClientMsg, Knock, Voice, MAX_ASSERTION_CHARS, MAX_TOKEN_CHARS,
};
use agent_runtime::wire::{MessageError, Value};

fn s(x: &str) -> Value {
    Value::from(x)
}

#[test]
fn knock_is_null_tolerant_with_guest_fallback() {
    let v = Value::map([("t", s("knock")), ("name", s("")), ("jwt", Value::Nil)]);
    let Ok(ClientMsg::Knock(k)) = ClientMsg::from_value(&v) else {
        panic!("not a knock")
    };
    assert_eq!(k.name, "Guest");
    assert_eq!(k.jwt, None);
    assert_eq!(k.avatar, None);
    // Encoding an empty name writes 'Guest' like the browser.
    let enc = ClientMsg::Knock(Knock::default()).to_value();
    assert_eq!(enc.get("name"), Some(&s("Guest")));
    assert_eq!(
        ClientMsg::from_value(&Value::map([("t", s("knock")), ("name", Value::Int(5))])),
        Err(MessageError::WrongType {
            field: "name",
            expected: "a string"
        })
    );
}

#[test]
fn voice_fields_and_types() {
    let v = Value::map([
        ("t", s("voice")),
        ("on", Value::Bool(true)),
        ("voiceId", s("v9")),
        ("meta", Value::Nil),
    ]);
    let Ok(ClientMsg::Voice(voice)) = ClientMsg::from_value(&v) else {
        panic!("not a voice")
    };
    assert!(voice.on && !voice.cam);
    assert_eq!(voice.voice_id.as_deref(), Some("v9"));
    assert_eq!(voice.meta, None);
    let bad_meta = Value::map([("t", s("voice")), ("meta", s("x"))]);
    assert_eq!(
        ClientMsg::from_value(&bad_meta),
        Err(MessageError::WrongType {
            field: "meta",
            expected: "a map"
        })
    );
    let bad_on = Value::map([("t", s("voice")), ("on", Value::Int(1))]);
    assert!(matches!(
        ClientMsg::from_value(&bad_on),
        Err(MessageError::WrongType { field: "on", .. })
    ));
}

#[test]
fn unknown_and_missing_discriminators() {
    assert_eq!(
        ClientMsg::from_value(&Value::map([("t", s("dance"))])),
        Err(MessageError::UnknownType {
            key: "t",
            value: "dance".into()
        })
    );
    assert_eq!(
        AuthorityMsg::from_value(&Value::map([("t", s("knock"))])),
        Err(MessageError::UnknownType {
            key: "t",
            value: "knock".into()
        })
    );
    assert_eq!(
        ClientMsg::from_value(&Value::map([("t", Value::Nil)])),
        Err(MessageError::MissingDiscriminator("t"))
    );
    assert_eq!(
        ClientMsg::from_value(&Value::Int(1)),
        Err(MessageError::NotAMap)
    );
    assert_eq!(
        ClientMsg::from_value(&Value::map([("t", s("mod"))])),
        Err(MessageError::MissingField("token"))
    );
    assert_eq!(
        AuthorityMsg::from_value(&Value::map([("t", s("lobby")), ("status", s("maybe"))])),
        Err(MessageError::InvalidValue { field: "status" })
    );
}

#[test]
fn credential_caps_are_reported_not_refused() {
    let at = |n: usize| Some("x".repeat(n));
    let ok = Knock {
        jwt: at(MAX_TOKEN_CHARS),
        agent_assertion: at(MAX_ASSERTION_CHARS),
        agent_credit: at(MAX_TOKEN_CHARS),
        ..Knock::default()
    };
    assert!(!ok.oversize_credential());
    let big = Knock {
        agent_assertion: at(MAX_ASSERTION_CHARS + 1),
        ..Knock::default()
    };
    assert!(big.oversize_credential());
    // JS length counts UTF-16 units: 1025 emoji are 2050 units.
    let wide = Voice {
        agent_assertion: Some("😀".repeat(1025)),
        ..Voice::default()
    };
    assert!(wide.oversize_credential());
    let decoded = ClientMsg::from_value(&ClientMsg::Knock(big.clone()).to_value());
    assert_eq!(
        decoded,
        Ok(ClientMsg::Knock(Knock {
            name: "Guest".into(),
            ..big
        }))
    );
}

#[test]
fn roster_tolerates_missing_fields_and_skips_bad_members() {
    let v = Value::map([
        ("t", s("roster")),
        (
            "members",
            Value::Array(vec![
                Value::map([("id", s("v1")), ("name", Value::Nil), ("meta", s("junk"))]),
                Value::Int(3),
                Value::map([("name", s("no id"))]),
                Value::map([
                    ("id", s("v2")),
                    ("name", s("Ann")),
                    ("cam", Value::Bool(true)),
                ]),
            ]),
        ),
    ]);
    let Ok(AuthorityMsg::Roster(r)) = AuthorityMsg::from_value(&v) else {
        panic!("not a roster")
    };
    assert_eq!(r.members.len(), 2);
    assert_eq!(r.members[0].name, "Guest");
    assert_eq!(r.members[0].avatar, "");
    assert_eq!(r.members[0].meta, None);
    assert!(r.members[1].cam);
    assert_eq!((r.lobby, r.host.as_str(), r.locked), (false, "", false));
    let empty = AuthorityMsg::from_value(&Value::map([("t", s("roster"))]));
    assert!(matches!(empty, Ok(AuthorityMsg::Roster(r)) if r.members.is_empty()));
    assert!(matches!(
        AuthorityMsg::from_value(&Value::map([("t", s("roster")), ("members", s("x"))])),
        Err(MessageError::WrongType {
            field: "members",
            ..
        })
    ));
}

#[test]
fn engine_block_is_stripped() {
    let meta = Value::map([("role", s("agent")), ("~kbz", Value::map([("v", s("1"))]))]);
    assert_eq!(strip_engine(&meta), Value::map([("role", s("agent"))]));
}

#[test]
fn link_classifier() {
    let v = |pairs: Vec<(&str, Value)>| Value::map(pairs);
    assert_eq!(
        LinkMessage::classify(&v(vec![("t", s("mh"))])),
        LinkKind::Control
    );
    assert_eq!(
        LinkMessage::classify(&v(vec![("k", s("chat"))])),
        LinkKind::Content
    );
    assert_eq!(
        LinkMessage::classify(&v(vec![("k", s("nope"))])),
        LinkKind::Content
    );
    assert_eq!(
        LinkMessage::classify(&v(vec![("t", s("other")), ("k", s("chat"))])),
        LinkKind::Content
    );
    assert_eq!(
        LinkMessage::classify(&v(vec![("t", s("other"))])),
        LinkKind::Garbage
    );
    assert_eq!(
        LinkMessage::classify(&Value::Bin(vec![1])),
        LinkKind::Binary
    );
    assert_eq!(LinkMessage::classify(&Value::Int(1)), LinkKind::Garbage);
    assert_eq!(
        LinkMessage::parse(&v(vec![("t", s("other"))])),
        LinkMessage::Garbage(MessageError::UnknownType {
            key: "t",
            value: "other".into()
        })
    );
    assert!(matches!(
        LinkMessage::parse(&v(vec![("t", s("m-sdp"))])),
        LinkMessage::Garbage(MessageError::MissingField("d"))
    ));
    assert_eq!(
        LinkMessage::parse(&v(vec![("k", s("zzz"))])),
        LinkMessage::Content(ContentMsg::Unknown { k: "zzz".into() })
    );
    // Missing numbers read as 0; bulk is truthy.
    assert_eq!(
        ControlMsg::from_value(&v(vec![("t", s("mh")), ("a", Value::Float(3.5))])),
        Ok(ControlMsg::Mh {
            v: 0.0,
            a: 3.5,
            ov: 0.0,
            oa: 0.0
        })
    );
    assert_eq!(
        ControlMsg::from_value(&v(vec![("t", s("cap")), ("bulk", Value::Bool(true))])),
        Ok(ControlMsg::Cap { bulk: true })
    );
}

#[test]
fn oversize_and_malformed_frames_are_typed_errors() {
    let opts = DeframerOptions {
        decode: DecodeOptions {
            max_message_bytes: 64,
            ..DecodeOptions::default()
        },
        reassembly: ReassemblerOptions {
            max_message_bytes: 100,
            ..ReassemblerOptions::default()
        },
    };
    let mut d = Deframer::new(opts);
    assert_eq!(
        d.push(&[0u8; 65]),
        Err(DeframeError::Decode(DecodeError::MessageTooLarge {
            len: 65,
            max: 64
        }))
    );
    assert_eq!(
        d.push(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
        Err(DeframeError::Decode(DecodeError::LengthExceedsInput {
            offset: 0,
            declared: 0xffff_ffff,
            remaining: 0
        }))
    );
    // A chunked message larger than the reassembly cap is dropped with a typed error.
    let mut f = Framer::with_mtu(30);
    let big = Value::Str("y".repeat(200));
    let mut result = Ok(None);
    for frame in f.encode_message(&big) {
        result = d.push(&frame);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(
        result,
        Err(DeframeError::Chunk(ChunkError::TooLarge { max: 100, .. }))
    ));
    // A reassembled message that fits is delivered.
    let small = Value::Str("z".repeat(40));
    let frames = f.encode_message(&small);
    assert!(frames.len() > 1);
    let mut last = None;
    for frame in frames {
        last = d.push(&frame).unwrap();
    }
    assert_eq!(last, Some(Frame::Message(small)));
    // A top-level nil is an ordinary (if useless) message, as in PeerJS.
    assert_eq!(
        d.push(&encode(&Value::Nil)),
        Ok(Some(Frame::Message(Value::Nil)))
    );
}
