//! Property tests: BinaryPack round-trips arbitrary values; no decoder, deframer or message
//! parser panics on arbitrary or mutated input; typed messages round-trip.
#![allow(clippy::unwrap_used, missing_docs)]

use agent_runtime::wire::binarypack::{decode, decode_with, encode, DecodeOptions};
use agent_runtime::wire::chunker::{Deframer, Frame, Framer};
use agent_runtime::wire::content::{AgentEnvelope, Chat, ContentMsg};
use agent_runtime::wire::control::{ControlMsg, LinkMessage};
use agent_runtime::wire::json::{from_json, to_json};
use agent_runtime::wire::presence::{
    AuthorityMsg, CallMember, ClientMsg, EngineInfo, Knock, Roster, Voice,
};
use agent_runtime::wire::Value;
use proptest::prelude::*;

fn arb_float() -> impl Strategy<Value = f64> {
    prop_oneof![-1e15f64..1e15, -1.0f64..1.0, -1e-300f64..1e-300]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Value::UInt),
        arb_float().prop_map(Value::Float),
        ".{0,20}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bin),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(5, 96, 10, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..10).prop_map(Value::Array),
            prop::collection::vec(("[a-z~_]{0,4}", inner), 0..10).prop_map(Value::Map),
        ]
    })
}

/// What a JS peer would read back: integral floats are integers, duplicate keys collapse.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::Int(*f as i64),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Map(entries) => {
            let mut out: Vec<(String, Value)> = Vec::new();
            for (k, v) in entries {
                let v = normalize(v);
                match out.iter_mut().find(|(ok, _)| ok == k) {
                    Some(slot) => slot.1 = v,
                    None => out.push((k.clone(), v)),
                }
            }
            Value::Map(out)
        }
        other => other.clone(),
    }
}

/// Equality with floats compared to 1e-15 relative (the JS float packer is not always exact).
fn approx_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x == y || (x - y).abs() <= y.abs() * 1e-15 || (x.abs() < 1e-290 && y.abs() < 1e-290)
        }
        (Value::Int(0), Value::Float(y)) | (Value::Float(y), Value::Int(0)) => y.abs() < 1e-290,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| approx_eq(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && approx_eq(va, vb))
        }
        _ => a == b,
    }
}

/// Runs every message parser on a value; they may fail but never panic.
fn parse_everything(v: &Value) {
    let _ = ClientMsg::from_value(v);
    let _ = AuthorityMsg::from_value(v);
    let _ = ContentMsg::from_value(v);
    let _ = ControlMsg::from_value(v);
    let _ = LinkMessage::parse(v);
    let _ = CallMember::from_value(v);
    let _ = EngineInfo::from_meta(v);
    let _ = AgentEnvelope::from_data(v);
    let _ = from_json(&to_json(v));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decode_inverts_encode(v in arb_value()) {
        let bytes = encode(&v);
        let back = decode(&bytes).unwrap();
        let want = normalize(&v);
        prop_assert!(approx_eq(&back, &want), "{:?}\n!=\n{:?}", back, want);
        // Strict mode accepts exactly one value.
        let strict = DecodeOptions { reject_trailing: true, ..DecodeOptions::default() };
        prop_assert!(decode_with(&bytes, &strict).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(v) = decode(&bytes) {
            parse_everything(&v);
        }
        let strict = DecodeOptions { reject_trailing: true, max_depth: 4, max_values: 64, ..DecodeOptions::default() };
        let _ = decode_with(&bytes, &strict);
        let mut d = Deframer::default();
        let _ = d.push(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(v in arb_value(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let mut bytes = encode(&v);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = decode(&bytes);
        let truncated = &bytes[..cut.index(bytes.len() + 1)];
        if let Ok(v) = decode(truncated) {
            parse_everything(&v);
        }
        let mut d = Deframer::default();
        let _ = d.push(truncated);
    }

    #[test]
    fn parsers_never_panic_on_values(v in arb_value(), t in prop::sample::select(vec![
        "knock", "voice", "ping", "leave", "mod", "roster", "lobby", "kick", "reset",
        "cap", "mh", "mh-dead", "m-dial", "m-sdp", "m-ice", "m-recreate", "bye",
        "chat", "app", "caps", "schema", "idtoken", "ink", "zzz",
    ])) {
        parse_everything(&v);
        // Graft a real discriminator onto arbitrary fields so the per-kind paths run.
        if let Value::Map(mut m) = v {
            m.insert(0, ("t".into(), Value::from(t)));
            m.insert(0, ("k".into(), Value::from(t)));
            parse_everything(&Value::Map(m.clone()));
            let members: Vec<Value> = m.iter().map(|(_, v)| v.clone()).collect();
            m.push(("members".into(), Value::Array(members)));
            m.push(("__peerData".into(), Value::Int(1)));
            parse_everything(&Value::Map(m.clone()));
            let mut d = Deframer::default();
            let _ = d.push(&encode(&Value::Map(m)));
        }
    }

    #[test]
    fn chunked_round_trip_any_order(v in arb_value(), mtu in 1usize..64, seed in any::<u64>()) {
        let mut f = Framer::with_mtu(mtu);
        let mut frames = f.encode_message(&v);
        // Deterministic shuffle.
        let mut s = seed | 1;
        for i in (1..frames.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            frames.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut d = Deframer::default();
        let mut got = Vec::new();
        for fr in &frames {
            if let Some(frame) = d.push(fr).unwrap() {
                got.push(frame);
            }
        }
        prop_assert_eq!(got.len(), 1);
        let Frame::Message(back) = &got[0] else { return Err(TestCaseError::fail("close")) };
        // A top-level map with a truthy `__peerData` is not a plain message; the generator's
        // keys never spell it, so every message must come back.
        prop_assert!(approx_eq(back, &normalize(&v)));
    }

    #[test]
    fn knock_and_voice_round_trip(
        name in "[A-Za-z][A-Za-z ]{0,10}",
        avatar in proptest::option::of(".{0,4}"),
        token in proptest::option::of("[a-z0-9]{1,22}"),
        voice_id in proptest::option::of("[a-z0-9-]{1,36}"),
        jwt in proptest::option::of("[A-Za-z0-9._-]{1,40}"),
        on in any::<bool>(),
        cam in any::<bool>(),
        meta in proptest::option::of(prop::collection::btree_map("[a-z~]{1,4}", prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            ".{0,8}".prop_map(Value::Str),
        ], 0..4).prop_map(|m| Value::Map(m.into_iter().collect()))),
    ) {
        let knock = ClientMsg::Knock(Knock { name: name.clone(), avatar: avatar.clone(), token: token.clone(), voice_id: voice_id.clone(), jwt: jwt.clone(), ..Knock::default() });
        prop_assert_eq!(ClientMsg::from_value(&decode(&knock.encode()).unwrap()).unwrap(), knock);
        let voice = ClientMsg::Voice(Voice { on, cam, name, avatar, voice_id, token, meta, jwt, ..Voice::default() });
        prop_assert_eq!(ClientMsg::from_value(&decode(&voice.encode()).unwrap()).unwrap(), voice);
    }

    #[test]
    fn roster_and_chat_round_trip(
        ids in prop::collection::vec("[a-z0-9]{1,12}", 0..20),
        host in "[a-z0-9]{0,12}",
        lobby in any::<bool>(),
        locked in any::<bool>(),
        text in "[^\\s][^\\n]{0,40}[^\\s]",
        seq in any::<u32>(),
        ts in 0i64..4_000_000_000_000,
        dm in any::<bool>(),
    ) {
        let members = ids.iter().map(|id| CallMember { id: id.clone(), name: format!("n{id}"), cam: id.len() % 2 == 0, avatar: String::new(), meta: None }).collect();
        let roster = AuthorityMsg::Roster(Roster { members, lobby, host, locked });
        prop_assert_eq!(AuthorityMsg::from_value(&decode(&roster.encode()).unwrap()).unwrap(), roster);
        let chat = ContentMsg::Chat(Chat::outgoing(text, "v1", u64::from(seq), ts, dm));
        let back = ContentMsg::from_value(&decode(&chat.encode()).unwrap()).unwrap();
        if let (ContentMsg::Chat(a), ContentMsg::Chat(b)) = (&back, &chat) {
            // Received text is capped and trimmed; the generator's text is already trimmed.
            prop_assert!(b.text.contains(a.text.as_str()));
            prop_assert_eq!(&a.mid, &b.mid);
            prop_assert_eq!(a.ts, b.ts);
            prop_assert_eq!(a.dm, b.dm);
        } else {
            prop_assert!(false, "not a chat");
        }
    }
}
