//! Room sessions end to end over real brokers on 127.0.0.1: a Rust authority session (lobby on)
//! and a Rust agent session, against the embedded broker and the npm `peer` server.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod signaling_support;
mod session_support;

use std::time::Duration;

use agent_runtime::session::{RoomSession, SessionEvent};
use agent_runtime::wire::presence::LobbyStatus;
use capability_manifest::{Capability, Grant};
use session_support::*;
use signaling_support::{Backend, TestBroker, Timings};

both_brokers!(host_admits_agent_then_chat_grant_and_kick);

async fn host_admits_agent_then_chat_grant_and_kick(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let room = "Session Room 1";

    let mut host_opts = host_opts(broker.cfg(), room, "Host");
    host_opts.lobby_on_start = true;
    host_opts.crypto_host = true;
    let (host, mut host_ev) = RoomSession::start(host_opts).await.unwrap();
    wait_for(&mut host_ev, "host becomes authority", 20, |e| {
        matches!(e, SessionEvent::BecameAuthority)
    })
    .await;

    let mut agent_opts = agent_opts(broker.cfg(), room, "Scribe");
    agent_opts.crypto_host = true;
    let (agent, mut agent_ev) = RoomSession::start(agent_opts).await.unwrap();
    assert_ne!(agent.voice_id(), host.voice_id());
    assert!(
        !agent.grant().can_act(Capability::SendChat),
        "read-only by default"
    );

    // Knock → waiting → admitted.
    let knock = wait_for(
        &mut host_ev,
        "knock",
        20,
        |e| matches!(e, SessionEvent::Knock { name, .. } if name == "Scribe"),
    )
    .await;
    let SessionEvent::Knock { conn, .. } = knock else {
        unreachable!()
    };
    wait_for(&mut agent_ev, "lobby waiting", 10, |e| {
        matches!(e, SessionEvent::Lobby(LobbyStatus::Waiting))
    })
    .await;
    assert!(
        agent.roster().is_none(),
        "no roster reaches a joiner waiting in the lobby"
    );
    host.admit(&conn).await.unwrap();
    wait_for(&mut agent_ev, "admitted", 10, |e| {
        matches!(e, SessionEvent::Admitted)
    })
    .await;

    // Both rosters show the agent as an agent.
    let agent_id = agent.voice_id().to_owned();
    let host_id = host.voice_id().to_owned();
    let roster = agent.roster().expect("a roster after admission");
    let me = roster
        .members
        .iter()
        .find(|m| m.id == agent_id)
        .expect("agent in its roster");
    assert_eq!(
        me.meta
            .as_ref()
            .and_then(|m| m.get("role"))
            .and_then(|r| r.as_str()),
        Some("agent")
    );
    assert_eq!(me.name, "Scribe");
    assert!(roster.members.iter().any(|m| m.id == host_id));
    assert_eq!(roster.host, host_id, "the crypto host is the verified host");
    eventually("host roster lists the agent", 10, || {
        host.roster()
            .is_some_and(|r| r.members.iter().any(|m| m.id == agent_id))
    })
    .await;

    // The mesh link opens on both sides.
    wait_for(
        &mut agent_ev,
        "agent link open",
        20,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == host_id),
    )
    .await;
    wait_for(
        &mut host_ev,
        "host link open",
        20,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == agent_id),
    )
    .await;

    // Host → agent chat.
    let receipt = host.send_chat("hello agent").await.unwrap();
    assert_eq!(receipt.sent_to, 1);
    assert_eq!(receipt.mid, format!("{host_id}#1"));
    let chat = wait_for(&mut agent_ev, "host chat", 10, |e| {
        matches!(e, SessionEvent::Chat { .. })
    })
    .await;
    assert_eq!(
        chat,
        SessionEvent::Chat {
            from: host_id.clone(),
            name: "Host".into(),
            text: "hello agent".into(),
            dm: false,
            mid: Some(format!("{host_id}#1")),
        }
    );

    // Agent → host is dropped by the host until it grants send-chat.
    let before = host.metrics().act_blocked;
    assert_eq!(agent.send_chat("hi host").await.unwrap().sent_to, 1);
    eventually("host blocks the ungranted agent chat", 10, || {
        host.metrics().act_blocked > before
    })
    .await;
    let mut granted = Grant::agent_default();
    granted.act.push(Capability::SendChat);
    host.set_grant(&agent_id, Some(granted.clone()))
        .await
        .unwrap();
    let ev = wait_for(&mut agent_ev, "grant change", 10, |e| {
        matches!(e, SessionEvent::GrantChanged(_))
    })
    .await;
    assert_eq!(ev, SessionEvent::GrantChanged(granted.clone()));
    assert_eq!(agent.grant(), granted);
    agent.send_chat("hi host again").await.unwrap();
    let chat = wait_for(&mut host_ev, "agent chat", 10, |e| {
        matches!(e, SessionEvent::Chat { .. })
    })
    .await;
    let SessionEvent::Chat {
        from, name, text, ..
    } = chat
    else {
        unreachable!()
    };
    assert_eq!(
        (from.as_str(), name.as_str(), text.as_str()),
        (agent_id.as_str(), "Scribe", "hi host again")
    );
    // A direct message arrives flagged.
    agent.send_chat_to(&host_id, "psst").await.unwrap();
    let dm = wait_for(&mut host_ev, "agent dm", 10, |e| {
        matches!(e, SessionEvent::Chat { .. })
    })
    .await;
    assert!(matches!(dm, SessionEvent::Chat { dm: true, ref text, .. } if text == "psst"));

    // Kick: the agent is told and stops; the host's roster loses it.
    host.kick(&agent_id).await.unwrap();
    wait_for(&mut agent_ev, "kicked", 10, |e| {
        matches!(e, SessionEvent::Kicked)
    })
    .await;
    wait_for(&mut agent_ev, "left", 10, |e| {
        matches!(e, SessionEvent::Left)
    })
    .await;
    eventually("host roster drops the agent", 10, || {
        host.roster()
            .is_some_and(|r| !r.members.iter().any(|m| m.id == agent_id))
    })
    .await;
    assert!(agent.send_chat("after kick").await.is_err());
    assert_eq!(host.metrics().garbage, 0);
    assert_eq!(agent.metrics().garbage, 0);

    host.leave().await;
    let tail = events_for(&mut host_ev, Duration::from_millis(200)).await;
    assert!(tail.contains(&SessionEvent::Left), "host left: {tail:?}");
}
