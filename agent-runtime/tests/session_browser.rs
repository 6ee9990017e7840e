//! A Rust agent session in rooms hosted by real headless Chromium Kibitz peers (PeerJS 1.5.5,
//! BinaryPack) through the npm `peer` broker, all on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod session_support;

use std::time::Duration;

use agent_runtime::session::{RoomSession, SessionEvent, SessionHandle};
use agent_runtime::signaling::BrokerConfig;
use agent_runtime::wire::presence::LobbyStatus;
use capability_manifest::Capability;
use kibitz_test_harness::{Browser, BrowserOptions, Event, PeerJsServer, PeerOptions, Role};
use serde_json::{json, Value};
use session_support::*;
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(30);

async fn setup() -> (PeerJsServer, Browser) {
    let broker = PeerJsServer::start().await.expect("npm peer broker");
    let browser = Browser::launch(BrowserOptions::default())
        .await
        .expect("headless Chromium harness");
    (broker, browser)
}

async fn start_agent(
    broker: &PeerJsServer,
    room: &str,
    crypto_host: bool,
) -> (SessionHandle, UnboundedReceiver<SessionEvent>) {
    let cfg = BrokerConfig::new("127.0.0.1", broker.port(), false);
    let mut opts = agent_opts(cfg, room, "Scribe");
    opts.crypto_host = crypto_host;
    RoomSession::start(opts)
        .await
        .expect("agent session starts")
}

fn member<'a>(roster: &'a Event, id: &str) -> Option<&'a Value> {
    roster
        .members()
        .iter()
        .find(|m| m.get("id").and_then(Value::as_str) == Some(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_host_admits_agent_and_gates_its_chat() {
    let (broker, browser) = setup().await;
    let room = "Agent Standup";
    let host = browser
        .open_peer(
            "host",
            &PeerOptions::new(Role::Host, room, "Alice", &broker)
                .lobby(true)
                .crypto_host(true),
        )
        .await
        .unwrap();
    assert!(host.authority, "the browser host must hold the room");

    let (agent, mut ev) = start_agent(&broker, room, true).await;
    let agent_id = agent.voice_id().to_owned();

    // Knock → waiting → admitted by the browser host.
    browser
        .wait_for("host", "knock", |e| e.str("name") == Some("Scribe"), WAIT)
        .await
        .unwrap();
    wait_for(&mut ev, "lobby waiting", 30, |e| {
        matches!(e, SessionEvent::Lobby(LobbyStatus::Waiting))
    })
    .await;
    browser.admit("host", "Scribe").await.unwrap();
    wait_for(&mut ev, "admitted", 30, |e| {
        matches!(e, SessionEvent::Admitted)
    })
    .await;

    // The browser's roster shows the agent, marked as an agent, with our engine block.
    let roster = browser
        .wait_for("host", "roster", |e| member(e, &agent_id).is_some(), WAIT)
        .await
        .unwrap();
    let me = member(&roster, &agent_id).expect("agent in the browser roster");
    assert!(me.pointer("/meta/role") == Some(&json!("agent")), "{me}");
    assert!(me.get("name") == Some(&json!("Scribe")), "{me}");
    assert!(
        me.pointer("/meta/~kbz/f") == Some(&json!(["chat.v1", "caps.v1"])),
        "no xfer tags: {me}"
    );
    assert!(me.pointer("/meta/~kbz/p") == Some(&json!(1)), "{me}");
    let grants = browser.state("host").await.unwrap();
    assert!(
        grants.pointer(&format!("/grants/{agent_id}/act")) == Some(&json!([])),
        "read-only by default in the browser's view: {grants}"
    );

    // The mesh opens and browser chat reaches the agent.
    wait_for(
        &mut ev,
        "link to the host",
        30,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == host.voice_id),
    )
    .await;
    let sent = browser.chat("host", "hello scribe").await.unwrap();
    assert!(
        sent["sent"] == json!([agent_id]),
        "agents read chat: {sent}"
    );
    let chat = wait_for(&mut ev, "browser chat", 30, |e| {
        matches!(e, SessionEvent::Chat { .. })
    })
    .await;
    assert!(
        chat == SessionEvent::Chat {
            from: host.voice_id.clone(),
            name: "Alice".into(),
            text: "hello scribe".into(),
            dm: false,
            mid: Some(format!("{}#1", host.voice_id)),
        },
        "{chat:?}"
    );

    // Until granted, the browser drops the agent's chat (and audits it as blocked).
    let before = browser.cursor();
    let receipt = agent.send_chat("notes are ready").await.unwrap();
    assert!(receipt.sent_to == 1, "{receipt:?}");
    let blocked = browser
        .wait_event_since(
            before,
            |e| e.is("host", "blocked") && e.str("from") == Some(agent_id.as_str()),
            WAIT,
        )
        .await
        .unwrap();
    assert!(blocked.str("kind") == Some("chat"), "{blocked}");
    assert!(blocked.get("agent") == Some(&json!(true)), "{blocked}");
    browser
        .expect_no_event(
            before,
            |e| e.is("host", "chat") && e.str("text") == Some("notes are ready"),
            Duration::from_millis(500),
        )
        .await
        .unwrap();

    // The host grants send-chat; its caps reach the agent (crypto host), and chat flows.
    browser
        .grant(
            "host",
            &agent_id,
            json!({"perceive": ["read-chat", "read-roster", "receive-directed"], "act": ["send-chat"]}),
        )
        .await.unwrap();
    let granted = wait_for(&mut ev, "grant change", 30, |e| {
        matches!(e, SessionEvent::GrantChanged(_))
    })
    .await;
    let SessionEvent::GrantChanged(g) = granted else {
        unreachable!()
    };
    assert!(g.can_act(Capability::SendChat), "{g:?}");
    let before = browser.cursor();
    agent.send_chat("notes are ready now").await.unwrap();
    let got = browser
        .wait_event_since(
            before,
            |e| e.is("host", "chat") && e.str("text") == Some("notes are ready now"),
            WAIT,
        )
        .await
        .unwrap();
    assert!(got.str("from") == Some(agent_id.as_str()), "{got}");
    assert!(got.str("name") == Some("Scribe"), "{got}");
    assert!(
        got.str("mid") == Some(format!("{agent_id}#2").as_str()),
        "{got}"
    );
    assert!(agent.metrics().garbage == 0, "{:?}", agent.metrics());

    agent.leave().await;
    browser
        .wait_for(
            "host",
            "roster",
            |e| !e.member_ids().contains(&agent_id.as_str()),
            WAIT,
        )
        .await
        .unwrap();
    browser.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_host_denies_agent() {
    let (broker, browser) = setup().await;
    let room = "No Bots";
    browser
        .open_peer(
            "host",
            &PeerOptions::new(Role::Host, room, "Alice", &broker).lobby(true),
        )
        .await
        .unwrap();
    let (agent, mut ev) = start_agent(&broker, room, false).await;
    browser
        .wait_for("host", "knock", |e| e.str("name") == Some("Scribe"), WAIT)
        .await
        .unwrap();
    browser.deny("host", "Scribe").await.unwrap();
    wait_for(&mut ev, "denied", 30, |e| matches!(e, SessionEvent::Denied)).await;
    wait_for(&mut ev, "left", 10, |e| matches!(e, SessionEvent::Left)).await;
    assert!(
        agent.roster().is_none(),
        "a denied agent never saw a roster"
    );
    assert!(
        agent.send_chat("hello?").await.is_err(),
        "the session stopped"
    );
    browser.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_survives_the_host_leaving() {
    let (broker, browser) = setup().await;
    let room = "Migrating Room";
    let host = browser
        .open_peer(
            "host",
            &PeerOptions::new(Role::Host, room, "Alice", &broker),
        )
        .await
        .unwrap();
    let bob = browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, room, "Bob", &broker),
        )
        .await
        .unwrap();
    let (agent, mut ev) = start_agent(&broker, room, false).await;
    let agent_id = agent.voice_id().to_owned();
    wait_for(&mut ev, "admitted", 30, |e| {
        matches!(e, SessionEvent::Admitted)
    })
    .await;
    wait_for(
        &mut ev,
        "link to bob",
        30,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == bob.voice_id),
    )
    .await;

    // The authority leaves; Bob takes the room over and the agent rejoins it.
    browser.leave("host").await.unwrap();
    browser
        .wait_for(
            "bob",
            "roster",
            |e| {
                let ids = e.member_ids();
                ids.contains(&agent_id.as_str()) && !ids.contains(&host.voice_id.as_str())
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = agent.roster();
        let ok = r.as_ref().is_some_and(|r| {
            r.members.iter().any(|m| m.id == bob.voice_id)
                && r.members.iter().any(|m| m.id == agent_id)
                && !r.members.iter().any(|m| m.id == host.voice_id)
        });
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent never saw Bob's roster: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = events_for(&mut ev, Duration::from_millis(200)).await;
    assert!(
        !seen.iter().any(SessionEvent::is_terminal),
        "no terminal event: {seen:?}"
    );

    // The mesh kept running: Bob's chat still reaches the agent.
    let before_chat = browser.chat("bob", "still here?").await.unwrap();
    assert!(before_chat["sent"] == json!([agent_id]), "{before_chat}");
    wait_for(
        &mut ev,
        "bob's chat",
        30,
        |e| matches!(e, SessionEvent::Chat { text, .. } if text == "still here?"),
    )
    .await;

    agent.leave().await;
    browser.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_authority_hosts_a_chromium_participant() {
    let (broker, browser) = setup().await;
    let room = "Rust Hosted";
    let cfg = BrokerConfig::new("127.0.0.1", broker.port(), false);
    let mut opts = host_opts(cfg, room, "RustHost");
    opts.lobby_on_start = true;
    let (host, mut ev) = RoomSession::start(opts).await.unwrap();
    wait_for(&mut ev, "authority", 30, |e| {
        matches!(e, SessionEvent::BecameAuthority)
    })
    .await;

    let bob = browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, room, "Bob", &broker),
        )
        .await
        .unwrap();
    assert!(!bob.authority, "the Rust session holds the room");
    let knock = wait_for(
        &mut ev,
        "bob's knock",
        30,
        |e| matches!(e, SessionEvent::Knock { name, .. } if name == "Bob"),
    )
    .await;
    let SessionEvent::Knock { conn, .. } = knock else {
        unreachable!()
    };
    assert_eq!(conn, bob.presence_id, "knocks are keyed by presence id");
    browser
        .wait_for("bob", "lobby", |e| e.str("status") == Some("waiting"), WAIT)
        .await
        .unwrap();
    host.admit(&conn).await.unwrap();
    browser
        .wait_for(
            "bob",
            "lobby",
            |e| e.str("status") == Some("admitted"),
            WAIT,
        )
        .await
        .unwrap();
    let roster = browser
        .wait_for(
            "bob",
            "roster",
            |e| member(e, host.voice_id()).is_some() && member(e, &bob.voice_id).is_some(),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(roster.get("lobby"), Some(&json!(true)), "{roster}");
    let h = member(&roster, host.voice_id()).unwrap();
    assert_eq!(h.get("name"), Some(&json!("RustHost")), "{h}");

    // Chat both ways over the mesh.
    wait_for(
        &mut ev,
        "link to bob",
        30,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == bob.voice_id),
    )
    .await;
    browser.chat("bob", "hi rust").await.unwrap();
    let got = wait_for(&mut ev, "bob's chat", 30, |e| {
        matches!(e, SessionEvent::Chat { .. })
    })
    .await;
    assert!(
        matches!(&got, SessionEvent::Chat { from, name, text, .. }
            if *from == bob.voice_id && name == "Bob" && text == "hi rust"),
        "{got:?}"
    );
    let before = browser.cursor();
    assert_eq!(host.send_chat("hi bob").await.unwrap().sent_to, 1);
    browser
        .wait_event_since(
            before,
            |e| e.is("bob", "chat") && e.str("text") == Some("hi bob"),
            WAIT,
        )
        .await
        .unwrap();

    // Kick: the browser is told and leaves the roster.
    host.kick(&bob.voice_id).await.unwrap();
    browser
        .wait_for("bob", "kicked", |_| true, WAIT)
        .await
        .unwrap();
    let agent_gone = host.voice_id().to_owned();
    eventually("bob leaves the Rust roster", 10, || {
        host.roster()
            .is_some_and(|r| r.members.len() == 1 && r.members.iter().all(|m| m.id == agent_gone))
    })
    .await;
    host.leave().await;
    browser.shutdown().await.unwrap();
}
