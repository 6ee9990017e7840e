//! Byte-exact vectors: every hex vector of kibitz-wire.md §3 round-trips in both directions, and
//! the typed codecs reproduce the browser-shaped ones from their structs. Extra vectors were
//! produced with the real `peerjs-js-binarypack@2.1.0` packer.
#![allow(clippy::unwrap_used, missing_docs)]

use agent_runtime::wire::binarypack::{decode, encode};
use agent_runtime::wire::chunker::{Chunk, Deframer, Frame, Framer};
use agent_runtime::wire::content::{AgentEnvelope, Chat, ContentMsg};
use agent_runtime::wire::control::{
    ControlMsg, IceCandidate, LinkKind, LinkMessage, SdpDescription,
};
use agent_runtime::wire::presence::{
    AuthorityMsg, CallMember, ClientMsg, EngineInfo, Knock, LobbyStatus, Roster, Voice,
};
use agent_runtime::wire::Value;

fn s(x: &str) -> Value {
    Value::from(x)
}

fn unhex(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap()
}

/// Asserts `encode(v) == hex` and `decode(hex) == v`.
fn both_ways(name: &str, v: &Value, h: &str) {
    assert_eq!(hex::encode(encode(v)), h, "encode {name}");
    assert_eq!(decode(&unhex(h)).as_ref(), Ok(v), "decode {name}");
}

fn voice_meta() -> Value {
    Value::map([
        ("role", s("agent")),
        (
            "~kbz",
            Value::map([
                ("v", s("0.1.0")),
                ("b", s("dev")),
                ("p", Value::Int(1)),
                ("f", Value::Array(vec![s("chat.v1")])),
            ]),
        ),
    ])
}

fn spec_vectors() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("ping", Value::map([("t", s("ping"))]), "81b174b470696e67"),
        ("leave", Value::map([("t", s("leave"))]), "81b174b56c65617665"),
        (
            "lobby",
            Value::map([("t", s("lobby")), ("status", s("waiting"))]),
            "82b174b56c6f626279b6737461747573b777616974696e67",
        ),
        ("cap", Value::map([("t", s("cap")), ("bulk", Value::Int(1))]), "82b174b3636170b462756c6b01"),
        ("bye", Value::map([("t", s("bye"))]), "81b174b3627965"),
        ("m-dial", Value::map([("t", s("m-dial"))]), "81b174b66d2d6469616c"),
        ("mh-dead", Value::map([("t", s("mh-dead"))]), "81b174b76d682d64656164"),
        (
            "mh",
            Value::map([
                ("t", s("mh")),
                ("v", Value::Int(0)),
                ("a", Value::Int(12)),
                ("ov", Value::Int(0)),
                ("oa", Value::Int(0)),
            ]),
            "85b174b26d68b17600b1610cb26f7600b26f6100",
        ),
        (
            "chat",
            Value::map([
                ("k", s("chat")),
                ("text", s("hi")),
                ("mid", s("v1#1")),
                ("ts", Value::Int(1_700_000_000_000)),
            ]),
            "84b16bb463686174b474657874b26869b36d6964b476312331b27473d30000018bcfe56800",
        ),
        (
            "caps",
            Value::map([
                ("k", s("caps")),
                (
                    "grants",
                    Value::map([(
                        "v1",
                        Value::map([
                            ("perceive", Value::Array(vec![s("read-chat")])),
                            ("act", Value::Array(vec![])),
                        ]),
                    )]),
                ),
            ]),
            "82b16bb463617073b66772616e747381b2763182b8706572636569766591b9726561642d63686174b361637490",
        ),
        (
            "knock",
            Value::map([
                ("t", s("knock")),
                ("name", s("Bot")),
                ("avatar", s("")),
                ("token", s("tok1")),
                ("voiceId", Value::Nil),
                ("jwt", Value::Nil),
                ("agentAssertion", Value::Nil),
                ("agentCredit", Value::Nil),
            ]),
            "88b174b56b6e6f636bb46e616d65b3426f74b6617661746172b0b5746f6b656eb4746f6b31b7766f6963654964c0b36a7774c0be6167656e74417373657274696f6ec0bb6167656e74437265646974c0",
        ),
        (
            "voice",
            Value::map([
                ("t", s("voice")),
                ("on", Value::Bool(true)),
                ("cam", Value::Bool(false)),
                ("name", s("Bot")),
                ("avatar", s("")),
                ("voiceId", s("v1")),
                ("token", s("tok1")),
                ("meta", voice_meta()),
                ("jwt", Value::Nil),
                ("agentAssertion", Value::Nil),
                ("agentCredit", Value::Nil),
            ]),
            "8bb174b5766f696365b26f6ec3b363616dc2b46e616d65b3426f74b6617661746172b0b7766f6963654964b27631b5746f6b656eb4746f6b31b46d65746182b4726f6c65b56167656e74b47e6b627a84b176b5302e312e30b162b3646576b17001b16691b7636861742e7631b36a7774c0be6167656e74417373657274696f6ec0bb6167656e74437265646974c0",
        ),
        ("bin", Value::Bin(vec![1, 2, 3]), "a3010203"),
        ("float", Value::map([("x", Value::Float(0.5))]), "81b178cb3fe0000000000000"),
        (
            "ints",
            Value::map([
                ("n", Value::Int(-1)),
                ("m", Value::Int(-33)),
                ("big", Value::Int(300)),
                ("u16", Value::Int(65535)),
                ("u32", Value::Int(70000)),
            ]),
            "85b16effb16dd0dfb3626967cd012cb3753136cdffffb3753332ce00011170",
        ),
        ("str16", s("0123456789abcdef"), "d8001030313233343536373839616263646566"),
        (
            "chunk",
            Value::map([
                ("__peerData", Value::Int(1)),
                ("n", Value::Int(0)),
                ("data", Value::Bin(vec![0xde, 0xad])),
                ("total", Value::Int(2)),
            ]),
            "84ba5f5f706565724461746101b16e00b464617461a2deadb5746f74616c02",
        ),
    ]
}

#[test]
fn spec_section3_vectors_round_trip_byte_for_byte() {
    for (name, v, h) in spec_vectors() {
        both_ways(name, &v, h);
    }
}

/// Vectors computed with `peerjs-js-binarypack@2.1.0` `pack()`.
#[test]
#[allow(clippy::approx_constant)]
fn extra_js_vectors_round_trip() {
    let dm_chat = Value::map([
        ("k", s("chat")),
        ("text", s("hi")),
        ("mid", s("v1#1")),
        ("ts", Value::Int(1_700_000_000_000)),
        ("dm", Value::Bool(true)),
    ]);
    both_ways(
        "dm chat",
        &dm_chat,
        "85b16bb463686174b474657874b26869b36d6964b476312331b27473d30000018bcfe56800b2646dc3",
    );
    let floats = Value::Array(
        [0.1, -2.5, 1e-7, 123_456.789, -0.0001, 3.14159]
            .into_iter()
            .map(Value::Float)
            .collect(),
    );
    both_ways(
        "floats",
        &floats,
        "96cb3fb999999999999acbc004000000000000cb3e7ad7f29abcaf48cb40fe240c9fbe76c9cbbf1a36e2eb1c432dcb400921f9f01b866e",
    );
}

/// The JS `pack_double` arithmetic is reproduced, including the values where it does not write
/// the IEEE bits of the number (near powers of two, subnormals). Pairs are (IEEE bits, JS pack).
#[test]
fn float64_packing_matches_the_js_packer_bit_for_bit() {
    let cases = [
        ("3c40000000000000", "cb3c30000000000000"),
        ("3e00000000000000", "cb3df0000000000000"),
        ("3fdfffffffffffff", "cb3fdfffffffffffff"),
        ("3fefffffffffffff", "cb3fefffffffffffff"),
        ("3fe0000000000000", "cb3fe0000000000000"),
        ("3fb999999999999a", "cb3fb999999999999a"),
        ("0000000000000001", "cbfcd0000000000000"),
        ("8000000000000100", "cbfd40000000000000"),
        ("0001000000000000", "cbffd0000000000000"),
        ("80cfffffffffffff", "cb80d00000ffffffff"),
        ("0210000000000001", "cb0200000000000002"),
        ("04afffffffffffff", "cb04b00000ffffffff"),
        ("85f0000000000000", "cb85e0000000000000"),
        ("0740000000000002", "cb0730000000000004"),
        ("888ffffffffffffe", "cb88900000ffffffff"),
    ];
    for (bits, want) in cases {
        let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        assert_eq!(hex::encode(encode(&Value::Float(f))), want, "{f:e}");
    }
}

#[test]
fn typed_presence_reproduces_browser_vectors() {
    let vectors: std::collections::HashMap<_, _> = spec_vectors()
        .into_iter()
        .map(|(n, v, h)| (n, (v, h)))
        .collect();
    let knock = ClientMsg::Knock(Knock {
        name: "Bot".into(),
        avatar: Some(String::new()),
        token: Some("tok1".into()),
        ..Knock::default()
    });
    assert_eq!(hex::encode(knock.encode()), vectors["knock"].1);
    assert_eq!(ClientMsg::from_value(&vectors["knock"].0), Ok(knock));

    let voice = ClientMsg::Voice(Voice {
        on: true,
        cam: false,
        name: "Bot".into(),
        avatar: Some(String::new()),
        voice_id: Some("v1".into()),
        token: Some("tok1".into()),
        meta: Some(voice_meta()),
        ..Voice::default()
    });
    assert_eq!(hex::encode(voice.encode()), vectors["voice"].1);
    assert_eq!(ClientMsg::from_value(&vectors["voice"].0), Ok(voice));

    assert_eq!(hex::encode(ClientMsg::Ping.encode()), vectors["ping"].1);
    assert_eq!(hex::encode(ClientMsg::Leave.encode()), vectors["leave"].1);
    let lobby = AuthorityMsg::Lobby(LobbyStatus::Waiting);
    assert_eq!(hex::encode(lobby.encode()), vectors["lobby"].1);
    assert_eq!(AuthorityMsg::from_value(&vectors["lobby"].0), Ok(lobby));
    assert_eq!(
        AuthorityMsg::from_value(&vectors["ping"].0),
        Ok(AuthorityMsg::Ping)
    );

    let info = EngineInfo::from_meta(&voice_meta()).unwrap();
    assert_eq!(info.version.as_deref(), Some("0.1.0"));
    assert_eq!(info.protocol, Some(1.0));
    assert!(info.has_feature("chat.v1"));
    assert_eq!(
        encode(&info.to_value()),
        encode(voice_meta().get("~kbz").unwrap())
    );
}

#[test]
fn roster_matches_the_js_packer() {
    // pack({t:'roster',members:[{id:'v1',name:'Bot',cam:false,avatar:'',meta:undefined},
    //   {id:'v2',name:'Ann',cam:true,avatar:'🙂',meta:{role:'agent'}}],lobby:false,host:'',locked:false})
    let h = "85b174b6726f73746572b76d656d626572739285b26964b27631b46e616d65b3426f74b363616dc2b6617661746172b0b46d657461c085b26964b27632b46e616d65b3416e6eb363616dc3b6617661746172b4f09f9982b46d65746181b4726f6c65b56167656e74b56c6f626279c2b4686f7374b0b66c6f636b6564c2";
    let roster = AuthorityMsg::Roster(Roster {
        members: vec![
            CallMember {
                id: "v1".into(),
                name: "Bot".into(),
                cam: false,
                avatar: String::new(),
                meta: None,
            },
            CallMember {
                id: "v2".into(),
                name: "Ann".into(),
                cam: true,
                avatar: "🙂".into(),
                meta: Some(Value::map([("role", s("agent"))])),
            },
        ],
        lobby: false,
        host: String::new(),
        locked: false,
    });
    assert_eq!(hex::encode(roster.encode()), h);
    assert_eq!(
        AuthorityMsg::from_value(&decode(&unhex(h)).unwrap()),
        Ok(roster)
    );
}

#[test]
fn typed_control_reproduces_vectors() {
    let vectors: std::collections::HashMap<_, _> = spec_vectors()
        .into_iter()
        .map(|(n, v, h)| (n, (v, h)))
        .collect();
    let cases = [
        ("cap", ControlMsg::Cap { bulk: true }),
        ("bye", ControlMsg::Bye),
        ("m-dial", ControlMsg::MDial),
        ("mh-dead", ControlMsg::MhDead),
        (
            "mh",
            ControlMsg::Mh {
                v: 0.0,
                a: 12.0,
                ov: 0.0,
                oa: 0.0,
            },
        ),
    ];
    for (name, msg) in cases {
        assert_eq!(hex::encode(msg.encode()), vectors[name].1, "{name}");
        assert_eq!(
            ControlMsg::from_value(&vectors[name].0),
            Ok(msg.clone()),
            "{name}"
        );
        assert_eq!(LinkMessage::classify(&vectors[name].0), LinkKind::Control);
        assert_eq!(
            LinkMessage::parse(&vectors[name].0),
            LinkMessage::Control(msg)
        );
    }
    // JS packer output for m-ice / m-sdp / m-recreate.
    let ice = ControlMsg::MIce {
        c: IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some("abcd".into()),
        },
    };
    let h = "82b174b56d2d696365b16384b963616e646964617465d8002b63616e6469646174653a312031207564702031203132372e302e302e3120353030302074797020686f7374b67364704d6964b130bd7364704d4c696e65496e64657800d80010757365726e616d65467261676d656e74b461626364";
    assert_eq!(hex::encode(ice.encode()), h);
    assert_eq!(ControlMsg::from_value(&decode(&unhex(h)).unwrap()), Ok(ice));
    let sdp = ControlMsg::MSdp {
        d: SdpDescription {
            sdp_type: "offer".into(),
            sdp: "v=0\r\n".into(),
        },
        relay: false,
    };
    let h = "83b174b56d2d736470b16482b474797065b56f66666572b3736470b5763d300d0ab572656c6179c2";
    assert_eq!(hex::encode(sdp.encode()), h);
    assert_eq!(ControlMsg::from_value(&decode(&unhex(h)).unwrap()), Ok(sdp));
    let rec = ControlMsg::MRecreate { relay: true };
    assert_eq!(
        hex::encode(rec.encode()),
        "82b174ba6d2d7265637265617465b572656c6179c3"
    );
}

#[test]
fn typed_content_reproduces_vectors() {
    let vectors: std::collections::HashMap<_, _> = spec_vectors()
        .into_iter()
        .map(|(n, v, h)| (n, (v, h)))
        .collect();
    let chat = ContentMsg::Chat(Chat::outgoing("hi", "v1", 1, 1_700_000_000_000, false));
    assert_eq!(hex::encode(chat.encode()), vectors["chat"].1);
    assert_eq!(ContentMsg::from_value(&vectors["chat"].0), Ok(chat));
    let dm = ContentMsg::Chat(Chat::outgoing("hi", "v1", 1, 1_700_000_000_000, true));
    assert_eq!(
        hex::encode(dm.encode()),
        "85b16bb463686174b474657874b26869b36d6964b476312331b27473d30000018bcfe56800b2646dc3"
    );

    let caps = ContentMsg::Caps {
        grants: vec![(
            "v1".into(),
            Value::map([
                ("perceive", Value::Array(vec![s("read-chat")])),
                ("act", Value::Array(vec![])),
            ]),
        )],
    };
    assert_eq!(hex::encode(caps.encode()), vectors["caps"].1);
    assert_eq!(ContentMsg::from_value(&vectors["caps"].0), Ok(caps));
    assert_eq!(LinkMessage::classify(&vectors["caps"].0), LinkKind::Content);

    let app = ContentMsg::App {
        data: AgentEnvelope::Chat {
            text: "nice lead".into(),
        }
        .to_data(),
    };
    let h = "82b16bb3617070b46461746182bb5f5f6b69625f6167656e74b463686174b474657874b96e696365206c656164";
    assert_eq!(hex::encode(app.encode()), h);
    let back = ContentMsg::from_value(&decode(&unhex(h)).unwrap()).unwrap();
    assert_eq!(
        back.agent_envelope(),
        Some(AgentEnvelope::Chat {
            text: "nice lead".into()
        })
    );
    let schema = ContentMsg::Schema {
        name: "whist.view".into(),
        version: "1".into(),
        schema: Value::map([("type", s("object"))]),
    };
    let h = "84b16bb6736368656d61b46e616d65ba77686973742e76696577b776657273696f6eb131b6736368656d6181b474797065b66f626a656374";
    assert_eq!(hex::encode(schema.encode()), h);
    assert_eq!(
        ContentMsg::from_value(&decode(&unhex(h)).unwrap()),
        Ok(schema)
    );
    let idt = ContentMsg::IdToken {
        jwt: "a.b.c".into(),
    };
    assert_eq!(
        hex::encode(idt.encode()),
        "82b16bb76964746f6b656eb36a7774b5612e622e63"
    );
}

#[test]
fn chunk_vector_reassembles() {
    let mut d = Deframer::default();
    assert_eq!(
        d.push(&unhex(
            "84ba5f5f706565724461746101b16e00b464617461a2deadb5746f74616c02"
        )),
        Ok(None)
    );
    // Second slice completes `de ad be ef`, which is not valid BinaryPack on its own — so build a
    // valid message instead and check the vector's shape via the typed chunk.
    let chunk = Chunk {
        id: 1,
        n: 0,
        total: 2,
        data: vec![0xde, 0xad],
    };
    assert_eq!(
        hex::encode(encode(&chunk.to_value())),
        "84ba5f5f706565724461746101b16e00b464617461a2deadb5746f74616c02"
    );
    let mut f = Framer::with_mtu(4);
    let msg = Value::map([("t", s("ping"))]);
    let frames = f.encode_message(&msg);
    assert_eq!(frames.len(), 2);
    let mut d = Deframer::default();
    assert_eq!(d.push(&frames[0]), Ok(None));
    assert_eq!(d.push(&frames[1]), Ok(Some(Frame::Message(msg))));
}
