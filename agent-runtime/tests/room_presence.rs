//! Presence star: a Rust participant against a Rust authority, in memory, on a virtual clock.

mod room_support;

use agent_runtime::room::{AuthorityEvent, AuthorityOptions, AuthorityState, ParticipantEvent};
use agent_runtime::wire::presence::{AuthorityMsg, ClientMsg, Knock, LobbyStatus, Voice};
use room_support::*;
use std::time::Instant;

fn net(lobby: bool) -> Net {
    let t0 = Instant::now();
    Net::new(
        t0,
        AuthorityState::new(
            t0,
            AuthorityOptions {
                lobby_on_start: lobby,
                ..Default::default()
            },
        ),
    )
}

#[test]
fn lobby_waiting_then_admitted_roster_has_agent_with_meta() {
    let mut n = net(true);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("Scribe", "va", "tok-a"), None);
    n.open(a, None);
    // knock first, then the voice announce.
    assert!(matches!(n.peers[a].sent[0].1, ClientMsg::Knock(_)));
    assert!(matches!(n.peers[a].sent[1].1, ClientMsg::Voice(ref v) if v.on));
    assert_eq!(
        n.peer_events(a),
        [ParticipantEvent::LobbyStatus(LobbyStatus::Waiting)]
    );
    assert!(n.roster_ids().is_empty());
    assert!(n.auth_event_list().iter().any(|e| matches!(e, AuthorityEvent::Knocked { conn, name, .. } if conn == "conn-a" && name == "Scribe")));
    // While waiting: pings and re-announces continue, but no roster reaches us.
    n.run_for(ms(5000));
    assert!(n.peers[a]
        .received
        .iter()
        .all(|(_, m)| !matches!(m, AuthorityMsg::Roster(_))));
    assert_eq!(n.sent_at(a, is_ping).len(), 2);
    assert_eq!(n.auth.knocks().len(), 1);

    let before = n.peers[a].sent.len();
    let now = n.now;
    n.auth.admit(now, "conn-a");
    n.pump();
    // admitted strictly before the catch-up roster.
    let got: Vec<_> = n.peers[a].received.iter().map(|(_, m)| m.clone()).collect();
    let i = got
        .iter()
        .position(|m| *m == AuthorityMsg::Lobby(LobbyStatus::Admitted))
        .expect("admitted");
    assert!(matches!(got[i + 1], AuthorityMsg::Roster(_)));
    // The participant re-sent its voice on admission; the roster now carries it with its meta.
    assert!(n.peers[a].sent[before..]
        .iter()
        .any(|(_, m)| is_voice_on(m)));
    let roster = n.auth.roster();
    assert_eq!(roster.members.len(), 1);
    let m = &roster.members[0];
    assert_eq!(
        (m.id.as_str(), m.name.as_str(), m.avatar.as_str()),
        ("va", "Scribe", "")
    );
    assert_eq!(m.meta, Some(agent_meta()));
    assert!(roster.lobby);
    let last = n.peers[a].state.roster().expect("roster");
    assert!(last.members.iter().any(|m| m.id == "va"));
    assert!(n.auth.knocks().is_empty());
}

#[test]
fn denied_stops_announcing_and_a_stubborn_joiner_is_requeued() {
    let mut n = net(true);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("Scribe", "va", "tok-a"), None);
    n.open(a, None);
    let now = n.now;
    n.auth.deny(now, "conn-a");
    n.pump();
    assert!(n.peer_events(a).contains(&ParticipantEvent::Refused {
        status: LobbyStatus::Denied,
        retry_in: None
    }));
    let announced = n.sent_at(a, is_voice_on).len();
    n.run_for(ms(10_000));
    assert_eq!(
        n.sent_at(a, is_voice_on).len(),
        announced,
        "no announce after denied"
    );
    assert!(n.sent_at(a, is_ping).len() >= 4, "still pinging");
    assert!(n.roster_ids().is_empty());

    // A browser that keeps announcing after `denied` is re-queued (sees `waiting` again).
    let waits = n
        .auth_sent_at("conn-a", |m| {
            matches!(m, AuthorityMsg::Lobby(LobbyStatus::Waiting))
        })
        .len();
    n.raw(
        "conn-a",
        ClientMsg::Voice(Voice {
            on: true,
            name: "x".into(),
            voice_id: Some("va".into()),
            token: Some("tok-a".into()),
            ..Default::default()
        }),
    );
    let waits2 = n
        .auth_sent_at("conn-a", |m| {
            matches!(m, AuthorityMsg::Lobby(LobbyStatus::Waiting))
        })
        .len();
    assert_eq!(waits2, waits + 1);
    assert_eq!(n.auth.knocks().len(), 1);
}

#[test]
fn locked_room_turns_strangers_away_but_lets_members_back() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    assert_eq!(n.roster_ids(), ["va"]);
    let now = n.now;
    n.auth.set_locked(now, true);
    n.pump();
    assert!(n.auth.roster().locked);

    let b = n.add_peer("conn-b");
    n.peers[b]
        .state
        .join(n.now, params("B", "vb", "tok-b"), None);
    n.open(b, None);
    assert!(n.peer_events(b).contains(&ParticipantEvent::Refused {
        status: LobbyStatus::Locked,
        retry_in: None
    }));
    assert_eq!(n.roster_ids(), ["va"]);
    // Every knock/voice-on from the stranger was refused (the open-time roster also made it
    // self-heal once more before the refusal arrived).
    let joins = n.peers[b]
        .sent
        .iter()
        .filter(|(_, m)| matches!(m, ClientMsg::Knock(_)) || is_voice_on(m))
        .count();
    assert!(joins >= 2);
    assert_eq!(n.auth.stats().locked_out, joins as u64);

    // `a` reconnects under a new connection id with the same token: slides back in, no duplicate.
    n.close(a);
    assert!(n.roster_ids().is_empty());
    n.peers[a].conn = "conn-a2".into();
    n.open(a, None);
    assert_eq!(n.roster_ids(), ["va"]);
}

#[test]
fn kick_blocks_token_and_voice_id() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    let now = n.now;
    n.auth.kick(now, "va");
    n.pump();
    assert!(n.peer_events(a).contains(&ParticipantEvent::Kicked));
    assert!(n.peers[a].state.is_kicked());
    assert!(n.roster_ids().is_empty());
    let sent = n.peers[a].sent.len();
    n.run_for(ms(10_000));
    assert_eq!(
        n.peers[a].sent.len(),
        sent,
        "a kicked participant sends nothing more"
    );
    assert_eq!(n.peers[a].state.poll_timeout(), None);

    // Same token, fresh voiceId, new connection → kick.
    n.raw(
        "conn-x",
        ClientMsg::Voice(Voice {
            on: true,
            voice_id: Some("vnew".into()),
            token: Some("tok-a".into()),
            ..Default::default()
        }),
    );
    assert_eq!(
        n.auth_sent_at("conn-x", |m| matches!(m, AuthorityMsg::Kick))
            .len(),
        1
    );
    // Same voiceId, fresh token → kick; and every later message from that connection too.
    n.raw(
        "conn-y",
        ClientMsg::Knock(Knock {
            voice_id: Some("va".into()),
            token: Some("other".into()),
            ..Default::default()
        }),
    );
    n.raw("conn-y", ClientMsg::Ping);
    assert_eq!(
        n.auth_sent_at("conn-y", |m| matches!(m, AuthorityMsg::Kick))
            .len(),
        2
    );
    assert!(n.roster_ids().is_empty());
}

#[test]
fn reap_at_12s_and_ping_every_2_5s() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    let b = n.add_peer("conn-b");
    n.peers[b]
        .state
        .join(n.now, params("B", "vb", "tok-b"), None);
    n.open(b, None);
    assert_eq!(n.roster_ids(), ["va", "vb"]);
    // Authority pings everyone every 2.5 s.
    n.run_until(ms(10_000));
    assert_eq!(
        n.auth_sent_at("conn-a", |m| matches!(m, AuthorityMsg::Ping)),
        [ms(2500), ms(5000), ms(7500), ms(10_000)]
    );
    // Participant pings every 2.5 s from its open.
    assert_eq!(
        n.sent_at(a, is_ping),
        [ms(2500), ms(5000), ms(7500), ms(10_000)]
    );

    // `b` goes silent at 10 s (its last message was at exactly 10 s).
    n.peers[b].mute = true;
    n.run_until(ms(21_900));
    assert_eq!(
        n.roster_ids(),
        ["va", "vb"],
        "not reaped at 11.9 s of silence"
    );
    n.run_until(ms(22_000));
    assert_eq!(n.roster_ids(), ["va"], "reaped at 12 s of silence");
    assert!(n
        .auth_event_list()
        .iter()
        .any(|e| matches!(e, AuthorityEvent::Reaped { conn } if conn == "conn-b")));
    assert!(n
        .auth_event_list()
        .iter()
        .any(|e| matches!(e, AuthorityEvent::MemberLeft { voice_id } if voice_id == "vb")));
    assert_eq!(n.auth.stats().reaped, 1);
}

#[test]
fn reannounce_at_600ms_1800ms_then_every_3s() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.open(a, None);
    // Knock only: not joined yet.
    assert!(
        matches!(n.peers[a].sent[0].1, ClientMsg::Knock(ref k) if k.voice_id.is_none() && k.name == "Guest")
    );
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.pump();
    n.run_until(ms(9_500));
    assert_eq!(
        n.sent_at(a, is_voice_on),
        [ms(0), ms(600), ms(1800), ms(3000), ms(6000), ms(9000)]
    );
    // The announce carries every field.
    let Some((_, ClientMsg::Voice(v))) = n.peers[a].sent.iter().find(|(_, m)| is_voice_on(m))
    else {
        panic!("no voice")
    };
    assert_eq!(v.voice_id.as_deref(), Some("va"));
    assert_eq!(v.token.as_deref(), Some("tok-a"));
    assert_eq!(v.avatar.as_deref(), Some(""));
    assert_eq!(v.meta, Some(agent_meta()));
    assert_eq!(v.agent_assertion, None);
}

#[test]
fn roster_without_us_triggers_reannounce() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    let before = n.sent_at(a, is_voice_on).len();
    let now = n.now;
    let roster = agent_runtime::wire::presence::Roster::default();
    n.peers[a]
        .state
        .on_message(now, &AuthorityMsg::Roster(roster));
    n.pump();
    assert_eq!(n.sent_at(a, is_voice_on).len(), before + 1);
    assert!(matches!(
        n.peer_events(a).last(),
        Some(ParticipantEvent::RosterUpdated(_))
    ));
}

#[test]
fn authority_silence_is_lost_at_12s_with_freeze_guard() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    n.run_until(ms(5000));
    // Last authority message at 5 s (its ping + roster beacon); then it dies.
    n.auth_mute = true;
    n.run_until(ms(16_999));
    assert!(!n.peer_events(a).contains(&ParticipantEvent::AuthorityLost));
    n.run_until(ms(17_000));
    let lost: Vec<_> = n.peers[a]
        .events
        .iter()
        .filter(|(_, e)| *e == ParticipantEvent::AuthorityLost)
        .collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].0 - n.t0, ms(17_000));
    // The link is considered gone: no more pings.
    let pings = n.sent_at(a, is_ping).len();
    n.run_for(ms(5000));
    assert_eq!(n.sent_at(a, is_ping).len(), pings);

    // Freeze guard: a local gap > 6 s refreshes instead of blaming the authority.
    let t0 = Instant::now();
    let mut p = agent_runtime::room::ParticipantState::new(t0, Default::default());
    p.link_opened(t0);
    p.handle_timeout(t0 + ms(13_000));
    let events: Vec<_> = std::iter::from_fn(|| p.poll_output()).collect();
    assert!(!events.iter().any(|o| matches!(
        o,
        agent_runtime::room::ParticipantOutput::Event(ParticipantEvent::AuthorityLost)
    )));
}

#[test]
fn reset_reaches_participants() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.open(a, None);
    let now = n.now;
    n.auth.reset(now);
    n.pump();
    assert!(n.peer_events(a).contains(&ParticipantEvent::Reset));
}

#[test]
fn leave_sends_voice_off_then_leave_and_drops_member() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    assert_eq!(n.roster_ids(), ["va"]);
    let now = n.now;
    n.peers[a].state.leave(now);
    n.pump();
    let tail: Vec<_> = n.peers[a]
        .sent
        .iter()
        .rev()
        .take(2)
        .map(|(_, m)| m.clone())
        .collect();
    assert!(matches!(tail[1], ClientMsg::Voice(ref v) if !v.on));
    assert!(matches!(tail[0], ClientMsg::Leave));
    assert!(n.roster_ids().is_empty());
    assert_eq!(n.peers[a].state.poll_timeout(), None);
}

#[test]
fn mod_commands_are_dropped_and_counted() {
    let mut n = net(false);
    n.raw(
        "conn-m",
        ClientMsg::Mod {
            token: "payload.sig".into(),
        },
    );
    assert_eq!(n.auth.stats().mod_dropped, 1);
    assert!(n
        .auth_sent_at("conn-m", |m| !matches!(
            m,
            AuthorityMsg::Roster(_) | AuthorityMsg::Ping
        ))
        .is_empty());
}

#[test]
fn lobby_toggle_admits_pending_and_keeps_members() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    let now = n.now;
    n.auth.set_lobby(now, true);
    n.pump();
    let b = n.add_peer("conn-b");
    n.peers[b]
        .state
        .join(n.now, params("B", "vb", "tok-b"), None);
    n.open(b, None);
    assert_eq!(n.roster_ids(), ["va"]);
    // Lobby on: the roster beacon goes only to admitted connections.
    n.run_for(ms(2500));
    assert!(n.peers[b]
        .received
        .iter()
        .all(|(_, m)| !matches!(m, AuthorityMsg::Roster(_))));
    let now = n.now;
    n.auth.set_lobby(now, false);
    n.pump();
    assert_eq!(n.roster_ids(), ["va", "vb"]);
    assert!(n
        .peer_events(b)
        .contains(&ParticipantEvent::LobbyStatus(LobbyStatus::Admitted)));
}

#[test]
fn set_meta_reannounces_at_once() {
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(n.now, params("A", "va", "tok-a"), None);
    n.open(a, None);
    let meta =
        agent_runtime::wire::Value::map([("role", agent_runtime::wire::Value::from("agent"))]);
    let now = n.now;
    n.peers[a].state.set_meta(now, Some(meta.clone()));
    n.pump();
    assert_eq!(n.auth.roster().members[0].meta, Some(meta));
}

#[test]
fn two_participants_plan_exactly_one_dial_per_pair() {
    use agent_runtime::room::{MeshAction, MeshOptions, MeshPlanner};
    let mut n = net(false);
    let a = n.add_peer("conn-a");
    let b = n.add_peer("conn-b");
    n.peers[a]
        .state
        .join(n.now, params("A", "peer-b2", "tok-a"), None);
    n.peers[b]
        .state
        .join(n.now, params("B", "peer-a1", "tok-b"), None);
    n.open(a, None);
    n.open(b, None);
    let mut dials = Vec::new();
    for (i, me) in [(a, "peer-b2"), (b, "peer-a1")] {
        let roster = n.peers[i].state.roster().cloned().expect("roster");
        assert_eq!(roster.members.len(), 2);
        let mut plan = MeshPlanner::new(n.now, me, MeshOptions::default());
        plan.on_roster(n.now, roster.members.iter().map(|m| m.id.as_str()));
        while let Some(action) = plan.poll_action() {
            if let MeshAction::Dial { peer } = action {
                dials.push((me, peer));
            }
        }
    }
    assert_eq!(dials, [("peer-a1", "peer-b2".to_owned())]);
}
