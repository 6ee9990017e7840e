//! The authority's agent-assertion gate, app data and manifest retrieval between two real room
//! sessions over the embedded broker on 127.0.0.1 (kibitz-agents.md §3.8, §4.2, §6.5, §7).

#![allow(clippy::unwrap_used)]

#[allow(unused_macros)]
#[macro_use]
mod signaling_support;
mod session_support;

use std::sync::Arc;
use std::time::Duration;

use agent_runtime::agent::{Context, NullSink};
use agent_runtime::egress::{EgressClient, EgressOptions};
use agent_runtime::lane_gate::{ActError, LaneGate};
use agent_runtime::mesh::DtlsIdentity;
use agent_runtime::session::{
    RoomSession, SessionError, SessionEvent, SessionHandle, SessionOptions,
};
use agent_runtime::signaling::BrokerConfig;
use capability_manifest::{
    sign_assertion, sign_manifest, AgentEntry, AgentKey, AgentManifest, Capability, Grant,
    ValidateOptions,
};
use serde_json::json;
use session_support::*;
use signaling_support::{Backend, TestBroker, Timings};
use tokio::sync::mpsc::UnboundedReceiver;

type Events = UnboundedReceiver<SessionEvent>;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn entry(key: &AgentKey, caps: Option<Grant>) -> AgentEntry {
    AgentEntry {
        key: key.public().to_jwk(),
        caps,
        label: Some("notes-bot".into()),
    }
}

fn chat_grant() -> Grant {
    let mut g = Grant::agent_default();
    g.act.push(Capability::SendChat);
    g
}

/// A gated authority (lobby off, crypto host so its `caps` are accepted).
async fn gated_host(
    cfg: BrokerConfig,
    room: &str,
    keys: Option<Vec<AgentEntry>>,
) -> (SessionHandle, Events) {
    let mut opts = host_opts(cfg, room, "Host");
    opts.crypto_host = true;
    opts.agent_keys = keys;
    let (host, mut ev) = RoomSession::start(opts).await.unwrap();
    wait_for(&mut ev, "host becomes authority", 20, |e| {
        matches!(e, SessionEvent::BecameAuthority)
    })
    .await;
    (host, ev)
}

fn agent(cfg: BrokerConfig, room: &str, name: &str) -> SessionOptions {
    let mut opts = agent_opts(cfg, room, name);
    opts.crypto_host = true;
    opts
}

/// Waits for the agent's terminal `Unverified`, asserting it was never admitted.
async fn expect_unverified(ev: &mut Events, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, ev.recv()).await {
            Ok(Some(SessionEvent::Unverified)) => return,
            Ok(Some(SessionEvent::Admitted)) => panic!("{what}: admitted instead of refused"),
            Ok(Some(e)) if e.is_terminal() => panic!("{what}: terminal {e:?}, not Unverified"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("{what}: event stream ended"),
            Err(_) => panic!("{what}: no Unverified within 30 s"),
        }
    }
}

/// The host's next gate refusal reason.
async fn refusal(host_ev: &mut Events) -> String {
    match wait_for(host_ev, "gate refusal", 30, |e| {
        matches!(e, SessionEvent::GateRefused { .. })
    })
    .await
    {
        SessionEvent::GateRefused { reason, .. } => reason,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_agent_is_admitted_and_gets_its_entry_caps() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let room = "Gate Room Listed";
    let key = AgentKey::generate();
    let (host, _host_ev) = gated_host(
        broker.cfg(),
        room,
        Some(vec![entry(&key, Some(chat_grant()))]),
    )
    .await;

    let mut opts = agent(broker.cfg(), room, "Notes");
    opts.assertion_key = Some(Arc::new(key));
    let (agent, mut agent_ev) = RoomSession::start(opts).await.unwrap();
    wait_for(&mut agent_ev, "admitted", 20, |e| {
        matches!(e, SessionEvent::Admitted)
    })
    .await;
    let agent_id = agent.voice_id().to_owned();
    eventually("host roster lists the agent", 10, || {
        host.roster()
            .is_some_and(|r| r.members.iter().any(|m| m.id == agent_id))
    })
    .await;
    // Once the mesh link shows the same certificate, the entry's caps are granted.
    let ev = wait_for(&mut agent_ev, "entry caps", 30, |e| {
        matches!(e, SessionEvent::GrantChanged(_))
    })
    .await;
    assert_eq!(ev, SessionEvent::GrantChanged(chat_grant()));
    assert!(agent.grant().can_act(Capability::SendChat));
    agent.leave().await;
    host.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_key_is_unverified() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let room = "Gate Room Unlisted";
    let listed = AgentKey::generate();
    let (host, mut host_ev) =
        gated_host(broker.cfg(), room, Some(vec![entry(&listed, None)])).await;

    let mut opts = agent(broker.cfg(), room, "Stranger");
    opts.assertion_key = Some(Arc::new(AgentKey::generate()));
    let (_agent, mut agent_ev) = RoomSession::start(opts).await.unwrap();
    assert_eq!(refusal(&mut host_ev).await, "no matching allowed key");
    expect_unverified(&mut agent_ev, "unlisted key").await;
    host.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_allow_list_admits_no_agents() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let room = "Gate Room Empty";
    let (host, mut host_ev) = gated_host(broker.cfg(), room, Some(Vec::new())).await;

    let mut opts = agent(broker.cfg(), room, "Notes");
    opts.assertion_key = Some(Arc::new(AgentKey::generate()));
    let (_agent, mut agent_ev) = RoomSession::start(opts).await.unwrap();
    assert_eq!(refusal(&mut host_ev).await, "this room admits no agents");
    expect_unverified(&mut agent_ev, "empty allow-list").await;
    host.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_assertion_is_unverified() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let room = "Gate Room Stale";
    let key = AgentKey::generate();
    let (host, mut host_ev) = gated_host(broker.cfg(), room, Some(vec![entry(&key, None)])).await;

    // Correct key, room and certificate, but signed 10 minutes ago.
    let identity = Arc::new(DtlsIdentity::generate().unwrap());
    let stale = sign_assertion(&key, room, identity.fingerprint(), now_secs() - 600);
    let mut opts = agent(broker.cfg(), room, "Late");
    opts.identity = Some(Arc::clone(&identity));
    opts.fixed_assertion = Some(stale);
    let (_agent, mut agent_ev) = RoomSession::start(opts).await.unwrap();
    assert_eq!(refusal(&mut host_ev).await, "stale assertion");
    expect_unverified(&mut agent_ev, "stale assertion").await;
    host.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_assertion_is_unverified() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let room = "Gate Room Replay";
    let key = AgentKey::generate();
    let (host, mut host_ev) = gated_host(broker.cfg(), room, Some(vec![entry(&key, None)])).await;

    // Agent A presents a valid assertion bound to its own certificate and is admitted.
    let id_a = Arc::new(DtlsIdentity::generate().unwrap());
    let token_a = sign_assertion(&key, room, id_a.fingerprint(), now_secs());
    let mut opts = agent(broker.cfg(), room, "A");
    opts.identity = Some(Arc::clone(&id_a));
    opts.fixed_assertion = Some(token_a.clone());
    let (a, mut a_ev) = RoomSession::start(opts).await.unwrap();
    wait_for(&mut a_ev, "A admitted", 20, |e| {
        matches!(e, SessionEvent::Admitted)
    })
    .await;

    // Agent B, with its own certificate, presents A's token: not bound to B's connection.
    let mut opts = agent(broker.cfg(), room, "B");
    opts.fixed_assertion = Some(token_a.clone());
    let (_b, mut b_ev) = RoomSession::start(opts).await.unwrap();
    assert_eq!(
        refusal(&mut host_ev).await,
        "not cert-bound to this connection"
    );
    expect_unverified(&mut b_ev, "foreign assertion").await;

    // Agent C even holds A's certificate, but A's connection is live: the replay guard refuses.
    let mut opts = agent(broker.cfg(), room, "C");
    opts.identity = Some(Arc::clone(&id_a));
    opts.fixed_assertion = Some(token_a);
    let (_c, mut c_ev) = RoomSession::start(opts).await.unwrap();
    // B's re-knocks may still be refused (as not cert-bound) before C's refusal shows up.
    loop {
        match refusal(&mut host_ev).await.as_str() {
            "replayed assertion" => break,
            "not cert-bound to this connection" => {}
            other => panic!("unexpected refusal {other:?}"),
        }
    }
    expect_unverified(&mut c_ev, "replayed assertion").await;

    // A is unaffected.
    let a_id = a.voice_id().to_owned();
    assert!(host
        .roster()
        .is_some_and(|r| r.members.iter().any(|m| m.id == a_id)));
    a.leave().await;
    host.leave().await;
}

/// Starts an open host and an agent, waits until both see the mesh link; returns them.
async fn linked_pair(
    broker: &TestBroker,
    room: &str,
    agent_opts_f: impl FnOnce(&mut SessionOptions),
) -> (SessionHandle, Events, SessionHandle, Events) {
    let (host, mut host_ev) = gated_host(broker.cfg(), room, None).await;
    let mut opts = agent(broker.cfg(), room, "Bot");
    agent_opts_f(&mut opts);
    let (agent, mut agent_ev) = RoomSession::start(opts).await.unwrap();
    let host_id = host.voice_id().to_owned();
    let agent_id = agent.voice_id().to_owned();
    wait_for(
        &mut agent_ev,
        "agent link open",
        30,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == host_id),
    )
    .await;
    wait_for(
        &mut host_ev,
        "host link open",
        30,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == agent_id),
    )
    .await;
    (host, host_ev, agent, agent_ev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_data_and_context_acts_reach_the_host_when_granted() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let (host, mut host_ev, agent, mut agent_ev) =
        linked_pair(&broker, "Gate Room App", |_| {}).await;
    let host_id = host.voice_id().to_owned();
    let agent_id = agent.voice_id().to_owned();

    // Host → agent, directed: the agent holds receive-directed by default.
    let r = host
        .send_app_to(&agent_id, json!({"kind": "agent-action@1", "id": "x"}))
        .await
        .unwrap();
    assert_eq!((r.sent_to, r.mid.as_str()), (1, ""));
    let ev = wait_for(&mut agent_ev, "directed app", 10, |e| {
        matches!(e, SessionEvent::App { .. })
    })
    .await;
    assert_eq!(
        ev,
        SessionEvent::App {
            from: host_id.clone(),
            data: json!({"kind": "agent-action@1", "id": "x"}),
        }
    );
    assert_eq!(
        host.send_app_to("nobody", json!(1)).await,
        Err(SessionError::NoLink("nobody".into()))
    );

    // A read-only agent's app data is dropped by the host.
    let before = host.metrics().act_blocked;
    assert_eq!(agent.send_app(json!({"n": 0})).await.unwrap().sent_to, 1);
    eventually("host blocks ungranted app data", 10, || {
        host.metrics().act_blocked > before
    })
    .await;

    // The agent's Context refuses acts its grant lacks, without touching the wire.
    let mut want = chat_grant();
    want.act.push(Capability::Act);
    let gate = Arc::new(LaneGate::new(want.clone(), Some(agent.grant())));
    let cx = Context::new(
        "bot",
        Arc::new(agent.clone()),
        Arc::clone(&gate),
        EgressClient::new("bot", Vec::<String>::new(), EgressOptions::default()).unwrap(),
        Arc::new(NullSink),
    );
    assert!(matches!(
        cx.send_to(&host_id, json!({"hello": 1})).await,
        Err(ActError::NotGranted { .. })
    ));

    // The host grants send-chat + act: both acts arrive.
    host.set_grant(&agent_id, Some(want.clone())).await.unwrap();
    wait_for(
        &mut agent_ev,
        "grant",
        10,
        |e| matches!(e, SessionEvent::GrantChanged(g) if g.can_act(Capability::Act)),
    )
    .await;
    gate.update_grant(Some(agent.grant()));
    cx.send_to(&host_id, json!({"hello": 1})).await.unwrap();
    let ev = wait_for(&mut host_ev, "send_to", 10, |e| {
        matches!(e, SessionEvent::App { .. })
    })
    .await;
    assert_eq!(
        ev,
        SessionEvent::App {
            from: agent_id.clone(),
            data: json!({"hello": 1}),
        }
    );
    cx.act(json!({"play": "7♠"})).await.unwrap();
    let ev = wait_for(&mut host_ev, "act", 10, |e| {
        matches!(e, SessionEvent::App { .. })
    })
    .await;
    assert_eq!(
        ev,
        SessionEvent::App {
            from: agent_id,
            data: json!({"__kib_agent": "act", "action": {"play": "7♠"}}),
        }
    );
    agent.leave().await;
    host.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_fetches_a_read_only_agents_manifest() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let key = AgentKey::generate();
    let manifest =
        AgentManifest::from_json(include_str!("../../examples/manifests/transcriber.json"))
            .unwrap();
    let signed = sign_manifest(&manifest, &key, ValidateOptions::default()).unwrap();
    let token = signed.token.clone();
    let (host, _host_ev, agent, _agent_ev) = linked_pair(&broker, "Gate Room Manifest", |o| {
        o.manifest_token = Some(token.clone());
    })
    .await;
    let agent_id = agent.voice_id().to_owned();

    // The agent is read-only, yet the host (a kibitz-agent peer) gets its manifest.
    assert!(!agent.grant().can_act(Capability::SendChat));
    let got = host
        .fetch_manifest(&agent_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(got, token);

    // A peer with no manifest configured does not answer.
    let host_id = host.voice_id().to_owned();
    assert_eq!(
        agent
            .fetch_manifest(&host_id, Duration::from_millis(800))
            .await,
        Err(SessionError::Timeout)
    );
    assert_eq!(
        host.fetch_manifest("nobody", Duration::from_secs(1)).await,
        Err(SessionError::NoLink("nobody".into()))
    );

    // Once the host revokes the agent's receive-directed, nothing directed is sent to it.
    host.set_grant(&agent_id, Some(Grant::empty()))
        .await
        .unwrap();
    assert_eq!(
        host.fetch_manifest(&agent_id, Duration::from_secs(1)).await,
        Err(SessionError::Withheld(agent_id.clone()))
    );
    assert_eq!(
        host.send_app_to(&agent_id, json!({"x": 1}))
            .await
            .unwrap()
            .sent_to,
        0
    );
    agent.leave().await;
    host.leave().await;
}
