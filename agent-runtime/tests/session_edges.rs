//! Room-session edge cases on the embedded broker: an agent that may not claim waits for a
//! host (and joins once one appears), and garbage on a mesh link is counted and dropped.

#![allow(clippy::unwrap_used)]

mod session_support;
#[allow(unused_macros)]
mod signaling_support;

use std::sync::Arc;
use std::time::Duration;

use agent_runtime::mesh::{
    ConnectOptions, DataConnectionEvent, DtlsIdentity, MeshOptions, MeshPeer, OutboundSignal,
    PeerConnectionFactory,
};
use agent_runtime::session::{RoomSession, SessionEvent};
use agent_runtime::signaling::{
    ConnectOptions as SignalingOptions, SignalingClient, SignalingEvent,
};
use agent_runtime::wire::binarypack::encode;
use agent_runtime::wire::Value;
use bytes::Bytes;
use capability_manifest::authority_peer_id;
use session_support::*;
use signaling_support::{Backend, TestBroker, Timings};
use tokio::sync::mpsc;

fn quick_expiry() -> Timings {
    Timings {
        expire: Duration::from_millis(300),
        ..Timings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_claim_waits_for_host_then_joins() {
    let broker = TestBroker::start(Backend::Embedded, quick_expiry()).await;
    let room = "empty-room";
    let (agent, mut agent_ev) = RoomSession::start(agent_opts(broker.cfg(), room, "Waiter"))
        .await
        .unwrap();
    wait_for(&mut agent_ev, "waiting for host", 15, |e| {
        matches!(e, SessionEvent::WaitingForHost)
    })
    .await;

    // The agent did not claim: the room id is still free (we can claim it ourselves).
    let claim = SignalingClient::connect(
        broker.cfg(),
        SignalingOptions {
            id: Some(authority_peer_id(room)),
            ..quick_signaling()
        },
    )
    .await;
    let (probe, _probe_events) = claim.expect("the room id is free: the agent never claimed it");
    probe.close().await;
    let early = events_for(&mut agent_ev, Duration::from_millis(500)).await;
    assert!(
        !early.iter().any(|e| matches!(
            e,
            SessionEvent::BecameAuthority | SessionEvent::Admitted | SessionEvent::Knocking
        )),
        "nothing to join yet: {early:?}"
    );

    // A host appears (lobby off): the agent's retries find it and it is admitted.
    let (host, mut host_ev) = RoomSession::start(host_opts(broker.cfg(), room, "Host"))
        .await
        .unwrap();
    wait_for(&mut host_ev, "host becomes authority", 20, |e| {
        matches!(e, SessionEvent::BecameAuthority)
    })
    .await;
    wait_for(&mut agent_ev, "knocking", 30, |e| {
        matches!(e, SessionEvent::Knocking)
    })
    .await;
    wait_for(&mut agent_ev, "admitted", 10, |e| {
        matches!(e, SessionEvent::Admitted)
    })
    .await;
    let roster = agent.roster().unwrap();
    assert!(roster.members.iter().any(|m| m.id == host.voice_id()));

    // Leaving: the host's roster loses the agent at once (voice off + leave).
    agent.leave().await;
    let agent_id = agent.voice_id().to_owned();
    eventually("host roster drops the leaving agent", 5, || {
        host.roster()
            .is_some_and(|r| !r.members.iter().any(|m| m.id == agent_id))
    })
    .await;
    host.leave().await;
}

/// A bare mesh peer of our own, to put arbitrary bytes on a link to the agent.
async fn raw_peer(
    broker: &TestBroker,
) -> (String, MeshPeer, agent_runtime::signaling::SignalingHandle) {
    let (handle, mut events) = SignalingClient::connect(broker.cfg(), quick_signaling())
        .await
        .unwrap();
    let (sink_tx, mut sink_rx) = mpsc::unbounded_channel::<(String, OutboundSignal)>();
    let mesh = MeshPeer::new(
        PeerConnectionFactory::new(
            Arc::new(DtlsIdentity::generate().unwrap()),
            MeshOptions::loopback(),
        ),
        Arc::new(sink_tx),
    );
    let out = handle.clone();
    tokio::spawn(async move {
        while let Some((dst, signal)) = sink_rx.recv().await {
            let _ = match signal {
                OutboundSignal::Offer(p) => out.send_offer(&dst, &p).await,
                OutboundSignal::Answer(p) => out.send_answer(&dst, &p).await,
                OutboundSignal::Candidate(p) => out.send_candidate(&dst, &p).await,
                _ => Ok(()),
            };
        }
    });
    let inbound = mesh.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                SignalingEvent::Answer { src, payload } => {
                    let _ = inbound.handle_answer(&src, payload);
                }
                SignalingEvent::Candidate { src, payload } => {
                    inbound.handle_candidate(&src, payload)
                }
                _ => {}
            }
        }
    });
    (handle.id().to_owned(), mesh, handle)
}

fn chat(text: &str, mid: &str) -> Bytes {
    Bytes::from(encode(&Value::map([
        ("k", Value::from("chat")),
        ("text", Value::from(text)),
        ("mid", Value::from(mid)),
    ])))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_link_is_counted_and_dropped() {
    let broker = TestBroker::start(Backend::Embedded, quick_expiry()).await;
    let (agent, mut agent_ev) = RoomSession::start(agent_opts(broker.cfg(), "garbage", "Sturdy"))
        .await
        .unwrap();
    // A line said before anyone is linked is replayed when a link opens (late-joiner sync).
    let early = agent.send_chat("earlier line").await.unwrap();
    assert_eq!(early.sent_to, 0);
    let (raw_id, mesh, signaling) = raw_peer(&broker).await;
    let mut link = mesh
        .connect(agent.voice_id(), ConnectOptions::default())
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(15), link.recv())
            .await
            .expect("link opens in time")
            .expect("link alive")
        {
            DataConnectionEvent::Open => break,
            DataConnectionEvent::Closed => panic!("link closed before opening"),
            _ => {}
        }
    }

    let replayed = loop {
        match tokio::time::timeout(Duration::from_secs(10), link.recv())
            .await
            .expect("replayed line in time")
            .expect("link alive")
        {
            DataConnectionEvent::Message(m) => break m,
            DataConnectionEvent::Closed => panic!("link closed"),
            _ => {}
        }
    };
    let line = agent_runtime::wire::binarypack::decode(&replayed).unwrap();
    assert_eq!(line.get("k").and_then(Value::as_str), Some("chat"));
    assert_eq!(
        line.get("text").and_then(Value::as_str),
        Some("earlier line")
    );
    assert_eq!(
        line.get("mid").and_then(Value::as_str),
        Some(early.mid.as_str())
    );
    assert_eq!(early.mid, format!("{}#1", agent.voice_id()));

    let garbage: Vec<Bytes> = vec![
        // `undefined` (decodes, but is not a message).
        Bytes::from_static(&[0xc1, 0xc1, 0xff]),
        // Truncated string.
        Bytes::from_static(&[0xb5, b'a']),
        // A map with neither a control `t` nor a content `k`.
        Bytes::from(encode(&Value::map([("t", Value::from("weird"))]))),
        // Content with a wrong-typed field.
        Bytes::from(encode(&Value::map([
            ("k", Value::from("chat")),
            ("text", Value::Int(5)),
        ]))),
        // A PeerJS chunk whose index is outside its total.
        Bytes::from(encode(&Value::map([
            ("__peerData", Value::Int(1)),
            ("n", Value::Int(5)),
            ("data", Value::Bin(vec![1, 2])),
            ("total", Value::Int(2)),
        ]))),
        // A bare scalar.
        Bytes::from(encode(&Value::Int(42))),
    ];
    for g in &garbage {
        link.send(g.clone()).await.unwrap();
    }
    // Unknown content kinds are ignored (forward compatibility), not garbage.
    link.send(Bytes::from(encode(&Value::map([(
        "k",
        Value::from("hologram"),
    )]))))
    .await
    .unwrap();
    // The session survives and still reads a well-formed line; a replay is deduplicated.
    let mid = format!("{raw_id}#1");
    link.send(chat("  still alive  ", &mid)).await.unwrap();
    link.send(chat("  still alive  ", &mid)).await.unwrap();
    link.send(chat("second", &format!("{raw_id}#2")))
        .await
        .unwrap();
    let ev = wait_for(&mut agent_ev, "chat after garbage", 10, |e| {
        matches!(e, SessionEvent::Chat { .. })
    })
    .await;
    assert_eq!(
        ev,
        SessionEvent::Chat {
            from: raw_id.clone(),
            name: "Guest".into(),
            text: "still alive".into(),
            dm: false,
            mid: Some(mid),
        }
    );
    let ev = wait_for(&mut agent_ev, "second chat", 10, |e| {
        matches!(e, SessionEvent::Chat { .. })
    })
    .await;
    assert!(matches!(ev, SessionEvent::Chat { ref text, .. } if text == "second"));
    let m = agent.metrics();
    assert_eq!(m.garbage, garbage.len() as u64, "{m:?}");
    assert_eq!(m.duplicates, 1, "{m:?}");
    assert!(m.ignored >= 1, "{m:?}");
    assert!(m.frames_in >= garbage.len() as u64 + 4, "{m:?}");

    // The link is still up: the agent answers nothing, but it keeps the link open and its
    // mesh heartbeat machinery does not close it.
    assert!(link.is_open());
    agent.leave().await;
    signaling.close().await;
}
