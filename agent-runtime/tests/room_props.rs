//! Property tests: arbitrary input sequences never panic and keep the room's invariants.

use std::time::{Duration, Instant};

use agent_runtime::room::{
    AllowAll, AuthorityOptions, AuthorityOutput, AuthorityState, GateOptions, JoinParams,
    MeshAction, MeshOptions, MeshPlanner, ParticipantOutput, ParticipantState,
};
use agent_runtime::wire::presence::{
    AuthorityMsg, CallMember, ClientMsg, Knock, LobbyStatus, Roster, Voice,
};
use proptest::prelude::*;

const CONNS: [&str; 4] = ["c0", "c1", "c2", "c3"];
const TOKENS: [&str; 3] = ["t0", "t1", "t2"];
const VOICES: [&str; 3] = ["v0", "v1", "v2"];

#[derive(Debug, Clone)]
enum Op {
    Connect(usize),
    Disconnect(usize),
    Knock(usize, Option<usize>, Option<usize>, bool),
    Voice(usize, bool, Option<usize>, Option<usize>, bool),
    Leave(usize),
    Ping(usize),
    Mod(usize),
    Admit(usize),
    Deny(usize),
    Lobby(bool),
    Lock(bool),
    Kick(usize),
    Host(Option<usize>),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CONNS.len();
    let t = proptest::option::of(0..TOKENS.len());
    let v = proptest::option::of(0..VOICES.len());
    prop_oneof![
        c.clone().prop_map(Op::Connect),
        c.clone().prop_map(Op::Disconnect),
        (c.clone(), t.clone(), v.clone(), any::<bool>())
            .prop_map(|(c, t, v, a)| Op::Knock(c, t, v, a)),
        (c.clone(), any::<bool>(), t, v, any::<bool>())
            .prop_map(|(c, on, t, v, a)| Op::Voice(c, on, t, v, a)),
        c.clone().prop_map(Op::Leave),
        c.clone().prop_map(Op::Ping),
        c.clone().prop_map(Op::Mod),
        c.clone().prop_map(Op::Admit),
        c.prop_map(Op::Deny),
        any::<bool>().prop_map(Op::Lobby),
        any::<bool>().prop_map(Op::Lock),
        (0..VOICES.len()).prop_map(Op::Kick),
        proptest::option::of(0..VOICES.len()).prop_map(Op::Host),
        (0u64..15_000).prop_map(Op::Advance),
    ]
}

fn assertion(big: bool) -> Option<String> {
    Some(if big { "a".repeat(3000) } else { "asn".into() })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn authority_survives_anything_and_kicked_identities_never_return(
        ops in proptest::collection::vec(op(), 0..80),
        gated in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut auth = AuthorityState::new(t0, AuthorityOptions { lobby_on_start: false, gate: GateOptions::default() });
        if gated {
            auth = auth.with_verifier(Box::new(AllowAll));
        }
        let mut kicked_voices: Vec<String> = Vec::new();
        let mut kicked_tokens: Vec<String> = Vec::new();
        let mut disconnected: Vec<String> = Vec::new();
        for op in ops {
            // A message implicitly (re)registers its connection, like a fresh transport conn.
            if let Op::Knock(c, ..) | Op::Voice(c, ..) | Op::Leave(c) | Op::Ping(c) | Op::Mod(c) = op {
                disconnected.retain(|x| x != CONNS[c]);
            }
            match op {
                Op::Connect(c) => { auth.on_connect(now, CONNS[c], Some("ab:cd".into())); disconnected.retain(|x| x != CONNS[c]); }
                Op::Disconnect(c) => { auth.on_disconnect(now, CONNS[c]); disconnected.push(CONNS[c].into()); }
                Op::Knock(c, t, v, big) => auth.on_message(now, CONNS[c], &ClientMsg::Knock(Knock {
                    name: String::new(),
                    token: t.map(|i| TOKENS[i].into()),
                    voice_id: v.map(|i| VOICES[i].into()),
                    agent_assertion: assertion(big),
                    ..Default::default()
                })),
                Op::Voice(c, on, t, v, big) => auth.on_message(now, CONNS[c], &ClientMsg::Voice(Voice {
                    on,
                    token: t.map(|i| TOKENS[i].into()),
                    voice_id: v.map(|i| VOICES[i].into()),
                    agent_assertion: if big { assertion(true) } else { None },
                    ..Default::default()
                })),
                Op::Leave(c) => auth.on_message(now, CONNS[c], &ClientMsg::Leave),
                Op::Ping(c) => auth.on_message(now, CONNS[c], &ClientMsg::Ping),
                Op::Mod(c) => auth.on_message(now, CONNS[c], &ClientMsg::Mod { token: "x.y".into() }),
                Op::Admit(c) => auth.admit(now, CONNS[c]),
                Op::Deny(c) => auth.deny(now, CONNS[c]),
                Op::Lobby(on) => auth.set_lobby(now, on),
                Op::Lock(on) => auth.set_locked(now, on),
                Op::Kick(v) => {
                    // Remember the token the kicked member held, if it is in the roster.
                    kicked_tokens.extend(auth.member_token(VOICES[v]).map(str::to_owned));
                    kicked_voices.push(VOICES[v].into());
                    auth.kick(now, VOICES[v]);
                }
                Op::Host(v) => { let _ = auth.set_verified_host(now, v.map(|i| VOICES[i])); }
                Op::Advance(ms) => {
                    let target = now + Duration::from_millis(ms);
                    while let Some(t) = auth.poll_timeout().filter(|t| *t <= target) {
                        now = now.max(t);
                        auth.handle_timeout(now);
                        while auth.poll_output().is_some() {}
                    }
                    now = target;
                }
            }
            while let Some(o) = auth.poll_output() {
                if let AuthorityOutput::Send { conn, msg: AuthorityMsg::Kick } = &o {
                    prop_assert!(!conn.is_empty());
                }
                if let AuthorityOutput::Send { msg: AuthorityMsg::Roster(r), .. } = &o {
                    for m in &r.members {
                        prop_assert!(!kicked_voices.contains(&m.id), "kicked voiceId {} in a roster", m.id);
                    }
                }
            }
            let roster = auth.roster();
            for m in &roster.members {
                prop_assert!(!kicked_voices.contains(&m.id));
                prop_assert!(m.name == "Guest" || !m.name.is_empty());
            }
            for m in &roster.members {
                let token = auth.member_token(&m.id).map(str::to_owned);
                prop_assert!(token.is_none_or(|t| !kicked_tokens.contains(&t)), "kicked token back in the roster");
            }
            // With the lobby off nobody waits, and a disconnected connection never waits.
            if !auth.is_lobby() {
                prop_assert!(auth.knocks().is_empty());
            }
            for (conn, _) in auth.knocks() {
                prop_assert!(!disconnected.contains(conn), "{conn} waits after disconnecting");
            }
        }
    }

    #[test]
    fn participant_survives_any_authority_input(
        msgs in proptest::collection::vec((0u8..7, 0u64..14_000), 0..60),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut p = ParticipantState::new(t0, Default::default());
        p.join(t0, JoinParams { voice_id: "me".into(), token: "tok".into(), ..Default::default() }, None);
        p.link_opened(t0);
        while p.poll_output().is_some() {}
        let mut kicked = false;
        for (kind, dt) in msgs {
            let msg = match kind {
                0 => AuthorityMsg::Ping,
                1 => AuthorityMsg::Kick,
                2 => AuthorityMsg::Reset,
                3 => AuthorityMsg::Lobby(LobbyStatus::Waiting),
                4 => AuthorityMsg::Lobby(LobbyStatus::Admitted),
                5 => AuthorityMsg::Lobby(LobbyStatus::Unverified),
                _ => AuthorityMsg::Roster(Roster { members: vec![CallMember { id: "x".into(), ..Default::default() }], ..Default::default() }),
            };
            p.on_message(now, &msg);
            kicked |= msg == AuthorityMsg::Kick;
            let target = now + Duration::from_millis(dt);
            while let Some(t) = p.poll_timeout().filter(|t| *t <= target) {
                prop_assert!(t >= now, "deadline in the past");
                now = t;
                p.handle_timeout(now);
            }
            now = target;
            while let Some(o) = p.poll_output() {
                if kicked {
                    prop_assert!(!matches!(o, ParticipantOutput::Send(_)), "sent after kick: {:?}", o);
                }
            }
        }
    }

    #[test]
    fn mesh_planner_respects_the_glare_rule(
        ops in proptest::collection::vec((0u8..7, 0usize..4, 0u64..9_000), 0..80),
    ) {
        let ids = ["a", "m", "z", "\u{FF61}"];
        let t0 = Instant::now();
        let mut now = t0;
        let mut p = MeshPlanner::new(t0, "m", MeshOptions::default());
        for (kind, i, dt) in ops {
            let peer = ids[i];
            match kind {
                0 => p.on_roster(now, ids.iter().copied().filter(|x| *x != peer)),
                1 => p.on_roster(now, ids.iter().copied()),
                2 => p.on_link_open(now, peer),
                3 => p.on_link_closed(now, peer),
                4 => p.on_received(now, peer, Some(&agent_runtime::wire::control::ControlMsg::Bye)),
                5 => p.on_incoming(now, peer),
                _ => p.on_received(now, peer, None),
            }
            let target = now + Duration::from_millis(dt);
            while let Some(t) = p.poll_timeout().filter(|t| *t <= target) {
                now = now.max(t);
                p.handle_timeout(now);
            }
            now = target;
            while let Some(a) = p.poll_action() {
                if let MeshAction::Dial { peer } = &a {
                    prop_assert!(peer == "z" || peer == "\u{FF61}", "dialled {peer} against the glare rule");
                }
            }
        }
    }
}
