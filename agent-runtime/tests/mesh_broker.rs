//! Two mesh peers open a PeerJS DataConnection through the embedded broker, each with its own
//! `SignalingClient`, exactly as an agent would: OFFER/ANSWER/CANDIDATE relayed as broker JSON.

#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::broker::{Broker, BrokerOptions};
use agent_runtime::mesh::{
    ConnectOptions, DataConnection, DataConnectionEvent, DtlsIdentity, MeshOptions, MeshPeer,
    OutboundSignal, PeerConnectionFactory,
};
use agent_runtime::signaling::{
    BrokerConfig, ConnectOptions as SignalingOptions, SignalingClient, SignalingEvent,
    SignalingHandle,
};
use bytes::Bytes;
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(15);

/// One agent identity: broker session + mesh peer + the pumps between them.
struct Agent {
    id: String,
    mesh: MeshPeer,
    incoming: mpsc::UnboundedReceiver<DataConnection>,
    handle: SignalingHandle,
}

async fn agent(cfg: BrokerConfig, identity: Arc<DtlsIdentity>) -> Agent {
    let (handle, mut events) = SignalingClient::connect(cfg, SignalingOptions::default())
        .await
        .expect("broker accepts the client");
    let (sink_tx, mut sink_rx) = mpsc::unbounded_channel::<(String, OutboundSignal)>();
    let mesh = MeshPeer::new(
        PeerConnectionFactory::new(identity, MeshOptions::loopback()),
        Arc::new(sink_tx),
    );
    // Mesh → broker.
    let out = handle.clone();
    tokio::spawn(async move {
        while let Some((dst, signal)) = sink_rx.recv().await {
            let sent = match signal {
                OutboundSignal::Offer(p) => out.send_offer(&dst, &p).await,
                OutboundSignal::Answer(p) => out.send_answer(&dst, &p).await,
                OutboundSignal::Candidate(p) => out.send_candidate(&dst, &p).await,
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
    });
    // Broker → mesh.
    let (in_tx, incoming) = mpsc::unbounded_channel();
    let inbound = mesh.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                SignalingEvent::Offer { src, payload } => {
                    if let Ok(conn) = inbound.handle_offer(&src, payload).await {
                        let _ = in_tx.send(conn);
                    }
                }
                SignalingEvent::Answer { src, payload } => {
                    let _ = inbound.handle_answer(&src, payload);
                }
                SignalingEvent::Candidate { src, payload } => {
                    inbound.handle_candidate(&src, payload)
                }
                SignalingEvent::Leave { src } => inbound.handle_leave(&src),
                SignalingEvent::Expire { src } => inbound.handle_expire(&src),
                _ => {}
            }
        }
    });
    Agent {
        id: handle.id().to_owned(),
        mesh,
        incoming,
        handle,
    }
}

async fn next_event(conn: &mut DataConnection) -> DataConnectionEvent {
    tokio::time::timeout(STEP, conn.recv())
        .await
        .expect("event in time")
        .expect("stream open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_connection_through_the_embedded_broker() {
    let (broker, _task) = Broker::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        BrokerOptions::default(),
    )
    .await
    .expect("broker binds");
    let ida = Arc::new(DtlsIdentity::generate().unwrap());
    let idb = Arc::new(DtlsIdentity::generate().unwrap());
    let a = agent(broker.client_config(), Arc::clone(&ida)).await;
    let mut b = agent(broker.client_config(), Arc::clone(&idb)).await;
    assert_ne!(a.id, b.id);

    let mut out = a
        .mesh
        .connect(&b.id, ConnectOptions::default())
        .await
        .unwrap();
    let mut inc = tokio::time::timeout(STEP, b.incoming.recv())
        .await
        .expect("offer relayed in time")
        .expect("pump alive");
    assert_eq!(inc.peer(), a.id);
    assert_eq!(inc.connection_id(), out.connection_id());
    assert_eq!(inc.label(), out.connection_id());
    assert!(matches!(
        next_event(&mut out).await,
        DataConnectionEvent::Open
    ));
    assert!(matches!(
        next_event(&mut inc).await,
        DataConnectionEvent::Open
    ));
    assert_eq!(out.remote_fingerprint(), Some(idb.fingerprint()));
    assert_eq!(inc.remote_fingerprint(), Some(ida.fingerprint()));

    // BinaryPack {t:'ping'} one way, 64 KiB the other.
    let ping = Bytes::from_static(&[0x81, 0xb1, 0x74, 0xb4, 0x70, 0x69, 0x6e, 0x67]);
    out.send(ping.clone()).await.unwrap();
    match next_event(&mut inc).await {
        DataConnectionEvent::Message(m) => assert_eq!(m, ping),
        other => panic!("expected a message, got {other:?}"),
    }
    let big = Bytes::from(vec![0x5a; 64 * 1024]);
    inc.send(big.clone()).await.unwrap();
    match next_event(&mut out).await {
        DataConnectionEvent::Message(m) => assert_eq!(m, big),
        other => panic!("expected a message, got {other:?}"),
    }

    // A second link (Kibitz's bulk) presents the same certificate over the broker too.
    let mut bulk = a.mesh.connect(&b.id, ConnectOptions::bulk()).await.unwrap();
    let mut bulk_in = tokio::time::timeout(STEP, b.incoming.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bulk_in.label(), "bulk");
    assert!(matches!(
        next_event(&mut bulk).await,
        DataConnectionEvent::Open
    ));
    assert!(matches!(
        next_event(&mut bulk_in).await,
        DataConnectionEvent::Open
    ));
    assert_eq!(bulk_in.remote_fingerprint(), Some(ida.fingerprint()));

    a.handle.close().await;
    b.handle.close().await;
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_an_absent_peer_expires() {
    let opts = BrokerOptions {
        expire_timeout: Duration::from_millis(300),
        cleanup_interval: Duration::from_millis(100),
        ..BrokerOptions::default()
    };
    let (broker, _task) = Broker::bind(SocketAddr::from(([127, 0, 0, 1], 0)), opts)
        .await
        .expect("broker binds");
    let a = agent(
        broker.client_config(),
        Arc::new(DtlsIdentity::generate().unwrap()),
    )
    .await;
    let mut conn = a
        .mesh
        .connect("nobody-here", ConnectOptions::default())
        .await
        .unwrap();
    let mut saw_unavailable = false;
    loop {
        match next_event(&mut conn).await {
            DataConnectionEvent::Error(agent_runtime::mesh::MeshError::PeerUnavailable(p)) => {
                assert_eq!(p, "nobody-here");
                saw_unavailable = true;
            }
            DataConnectionEvent::Closed => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_unavailable, "EXPIRE surfaces as peer-unavailable");
    a.handle.close().await;
    broker.shutdown();
}
