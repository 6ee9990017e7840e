//! Two in-process webrtc-rs peers open PeerJS-style DataConnections on 127.0.0.1 through an
//! in-memory signal relay that round-trips every payload through its JSON form, as a broker
//! would.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime::mesh::media::{create_media_offer, media_kinds, MediaKind, KIBITZ_MEDIA_LAYOUT};
use agent_runtime::mesh::signal::{
    AnswerPayload, CandidatePayload, ConnectionType, OfferPayload, SdpType, SessionDescription,
};
use agent_runtime::mesh::{
    fingerprint_of_der, ConnectOptions, DataConnection, DataConnectionEvent, Direction,
    DtlsIdentity, MeshError, MeshOptions, MeshPeer, OutboundSignal, PeerConnectionFactory,
    SignalSink,
};
use bytes::Bytes;
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(15);

type Wire = mpsc::UnboundedSender<(String, String, OutboundSignal)>;

/// Tags each outbound signal with its sender.
struct TaggedSink {
    src: String,
    tx: Wire,
}

impl SignalSink for TaggedSink {
    fn send_signal(&self, dst: &str, signal: OutboundSignal) {
        let _ = self.tx.send((self.src.clone(), dst.to_owned(), signal));
    }
}

/// How the relay orders frames.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    /// In order, like a broker.
    Fifo,
    /// Holds each OFFER until the candidates sent after it have been delivered first.
    CandidatesBeforeOffer,
}

struct Net {
    peers: HashMap<String, MeshPeer>,
    incoming: HashMap<String, mpsc::UnboundedReceiver<DataConnection>>,
    /// Candidates delivered while their connection's OFFER was still held back.
    early_candidates: Arc<AtomicUsize>,
}

fn json<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    let text = serde_json::to_string(v).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Builds peers sharing one relay task.
fn net(ids: &[(&str, Arc<DtlsIdentity>)], order: Order) -> Net {
    net_with(ids, order, MeshOptions::loopback())
}

/// [`net`] with explicit mesh options.
fn net_with(ids: &[(&str, Arc<DtlsIdentity>)], order: Order, options: MeshOptions) -> Net {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String, OutboundSignal)>();
    let mut peers = HashMap::new();
    let mut incoming = HashMap::new();
    let mut inboxes = HashMap::new();
    for (id, identity) in ids {
        let factory = PeerConnectionFactory::new(Arc::clone(identity), options.clone());
        let sink = Arc::new(TaggedSink {
            src: (*id).to_owned(),
            tx: tx.clone(),
        });
        peers.insert((*id).to_owned(), MeshPeer::new(factory, sink));
        let (itx, irx) = mpsc::unbounded_channel();
        incoming.insert((*id).to_owned(), irx);
        inboxes.insert((*id).to_owned(), itx);
    }
    let relay_peers = peers.clone();
    let early_candidates = Arc::new(AtomicUsize::new(0));
    let early = Arc::clone(&early_candidates);
    tokio::spawn(async move {
        let mut held: Vec<(String, String, OfferPayload)> = Vec::new();
        loop {
            let next = if held.is_empty() {
                rx.recv().await
            } else {
                match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                    Ok(n) => n,
                    Err(_) => {
                        // Quiet: release the held offers now that candidates went first.
                        for (src, dst, offer) in held.drain(..) {
                            deliver_offer(&relay_peers, &inboxes, &src, &dst, offer).await;
                        }
                        continue;
                    }
                }
            };
            let Some((src, dst, signal)) = next else {
                break;
            };
            let Some(target) = relay_peers.get(&dst) else {
                continue;
            };
            match signal {
                OutboundSignal::Offer(offer) => {
                    let offer = json(&offer);
                    if order == Order::CandidatesBeforeOffer {
                        held.push((src, dst, offer));
                    } else {
                        deliver_offer(&relay_peers, &inboxes, &src, &dst, offer).await;
                    }
                }
                OutboundSignal::Answer(answer) => {
                    target.handle_answer(&src, json(&answer)).unwrap();
                }
                OutboundSignal::Candidate(c) => {
                    if held
                        .iter()
                        .any(|(_, _, o)| o.connection_id == c.connection_id)
                    {
                        early.fetch_add(1, Ordering::SeqCst);
                    }
                    target.handle_candidate(&src, json(&c));
                }
                _ => {}
            }
        }
    });
    Net {
        peers,
        incoming,
        early_candidates,
    }
}

async fn deliver_offer(
    peers: &HashMap<String, MeshPeer>,
    inboxes: &HashMap<String, mpsc::UnboundedSender<DataConnection>>,
    src: &str,
    dst: &str,
    offer: OfferPayload,
) {
    let conn = peers[dst].handle_offer(src, offer).await.unwrap();
    let _ = inboxes[dst].send(conn);
}

async fn next_event(conn: &mut DataConnection) -> DataConnectionEvent {
    tokio::time::timeout(STEP, conn.recv())
        .await
        .expect("event within the step timeout")
        .expect("event stream still open")
}

async fn expect_open(conn: &mut DataConnection) {
    match next_event(conn).await {
        DataConnectionEvent::Open => {}
        other => panic!("expected Open, got {other:?}"),
    }
}

async fn expect_message(conn: &mut DataConnection) -> Bytes {
    match next_event(conn).await {
        DataConnectionEvent::Message(b) => b,
        other => panic!("expected Message, got {other:?}"),
    }
}

async fn accept(net: &mut Net, id: &str) -> DataConnection {
    tokio::time::timeout(STEP, net.incoming.get_mut(id).unwrap().recv())
        .await
        .expect("incoming connection in time")
        .expect("relay alive")
}

fn identity() -> Arc<DtlsIdentity> {
    Arc::new(DtlsIdentity::generate().unwrap())
}

/// Dials a → b and waits until both sides are open.
async fn open_pair(
    net: &mut Net,
    a: &str,
    b: &str,
    options: ConnectOptions,
) -> (DataConnection, DataConnection) {
    let mut out = net.peers[a].connect(b, options).await.unwrap();
    let mut inc = accept(net, b).await;
    expect_open(&mut out).await;
    expect_open(&mut inc).await;
    (out, inc)
}

fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_connection_opens_and_carries_binary_both_ways() {
    let (ida, idb) = (identity(), identity());
    let mut net = net(
        &[("alice", Arc::clone(&ida)), ("bob", Arc::clone(&idb))],
        Order::Fifo,
    );
    let (mut out, mut inc) = open_pair(&mut net, "alice", "bob", ConnectOptions::default()).await;

    // PeerJS identity of the link: same connection id both ends, label = connection id.
    assert!(out.connection_id().starts_with("dc_"));
    assert_eq!(inc.connection_id(), out.connection_id());
    assert_eq!(out.label(), out.connection_id());
    assert_eq!(inc.label(), out.label());
    assert_eq!(out.peer(), "bob");
    assert_eq!(inc.peer(), "alice");
    assert_eq!(out.direction(), Direction::Outgoing);
    assert_eq!(inc.direction(), Direction::Incoming);
    assert!(inc.reliable());
    assert_eq!(inc.serialization(), "binary");

    // The negotiated channel: label as offered, ordered, fully reliable, in-band.
    for conn in [&out, &inc] {
        let info = conn.channel_info().await.expect("open channel");
        assert_eq!(info.label, out.connection_id());
        assert!(info.ordered);
        assert_eq!(info.max_retransmits, None);
        assert_eq!(info.max_packet_life_time, None);
        assert!(!info.negotiated);
    }

    // Each side sees the other's certificate: SHA-256 of the remote DER equals its fingerprint.
    assert_eq!(out.remote_fingerprint(), Some(idb.fingerprint()));
    assert_eq!(inc.remote_fingerprint(), Some(ida.fingerprint()));
    assert_eq!(ida.fingerprint(), fingerprint_of_der(ida.certificate_der()));
    assert_ne!(ida.fingerprint(), idb.fingerprint());

    // Binary messages both ways, one SCTP message each, order kept; 64 KiB included.
    let small = [
        Bytes::from_static(&[0x81, 0xb1, 0x74, 0xb4, 0x70, 0x69, 0x6e, 0x67]),
        pattern(1, 1),
        pattern(16300, 2),
    ];
    for m in &small {
        out.send(m.clone()).await.unwrap();
    }
    let big = pattern(64 * 1024, 9);
    out.send(big.clone()).await.unwrap();
    for m in &small {
        assert_eq!(&expect_message(&mut inc).await, m);
    }
    assert_eq!(expect_message(&mut inc).await, big);

    let back = pattern(64 * 1024, 77);
    inc.send(Bytes::from_static(b"\x01\x02\x03")).await.unwrap();
    inc.sender().send(back.clone()).await.unwrap();
    assert_eq!(
        expect_message(&mut out).await,
        Bytes::from_static(b"\x01\x02\x03")
    );
    assert_eq!(expect_message(&mut out).await, back);

    // Closing one side closes the other; Closed is the last event.
    out.close();
    loop {
        match next_event(&mut inc).await {
            DataConnectionEvent::Closed => break,
            DataConnectionEvent::Error(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(tokio::time::timeout(STEP, inc.recv())
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        inc.send(Bytes::from_static(b"x")).await,
        Err(MeshError::Closed)
    ));
    loop {
        if let DataConnectionEvent::Closed = next_event(&mut out).await {
            break;
        }
    }
    // Both tables are empty again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(net.peers["alice"].connection_count(), 0);
    assert_eq!(net.peers["bob"].connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_certificate_for_every_connection_and_bulk_label() {
    let (ida, idb) = (identity(), identity());
    let mut net = net(
        &[("a1", Arc::clone(&ida)), ("b1", Arc::clone(&idb))],
        Order::Fifo,
    );
    let (sig_out, sig_in) = open_pair(&mut net, "a1", "b1", ConnectOptions::default()).await;
    let (bulk_out, bulk_in) = open_pair(&mut net, "a1", "b1", ConnectOptions::bulk()).await;

    assert_eq!(bulk_out.label(), "bulk");
    assert_eq!(bulk_in.label(), "bulk");
    assert_eq!(bulk_in.channel_info().await.unwrap().label, "bulk");
    assert_ne!(bulk_out.connection_id(), sig_out.connection_id());
    assert_eq!(bulk_in.connection_id(), bulk_out.connection_id());

    // Two separate DTLS sessions from the same agent present the same certificate.
    assert_eq!(sig_in.remote_fingerprint(), Some(ida.fingerprint()));
    assert_eq!(bulk_in.remote_fingerprint(), Some(ida.fingerprint()));
    assert_eq!(sig_out.remote_fingerprint(), Some(idb.fingerprint()));
    assert_eq!(bulk_out.remote_fingerprint(), Some(idb.fingerprint()));
    assert_eq!(net.peers["a1"].fingerprint(), ida.fingerprint());
    assert_eq!(net.peers["a1"].connection_count(), 2);
    assert_eq!(net.peers["b1"].connection_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_that_arrive_before_the_offer_are_held() {
    let mut net = net(
        &[("x", identity()), ("y", identity())],
        Order::CandidatesBeforeOffer,
    );
    let (out, mut inc) = open_pair(&mut net, "x", "y", ConnectOptions::default()).await;
    assert!(
        net.early_candidates.load(Ordering::SeqCst) > 0,
        "the relay must have delivered candidates ahead of their OFFER"
    );
    out.send(Bytes::from_static(b"after-early-candidates"))
        .await
        .unwrap();
    assert_eq!(
        expect_message(&mut inc).await,
        Bytes::from_static(b"after-early-candidates")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_before_open_and_leave_and_expire() {
    let id = identity();
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, OutboundSignal)>();
    let mesh = MeshPeer::new(
        PeerConnectionFactory::new(Arc::clone(&id), MeshOptions::loopback()),
        Arc::new(tx),
    );
    let mut conn = mesh
        .connect("nobody", ConnectOptions::default())
        .await
        .unwrap();
    let (dst, first) = rx.recv().await.unwrap();
    assert_eq!(dst, "nobody");
    let OutboundSignal::Offer(offer) = first else {
        panic!("first signal must be the OFFER")
    };
    // The OFFER payload is PeerJS's, byte for byte in key order.
    let text = serde_json::to_string(&offer).unwrap();
    let prefix = r#"{"sdp":{"type":"offer","sdp":"v=0"#;
    assert!(text.starts_with(prefix), "{text}");
    assert!(text.ends_with(&format!(
        r#""type":"data","connectionId":"{id}","label":"{id}","reliable":true,"serialization":"binary"}}"#,
        id = conn.connection_id()
    )), "{text}");
    assert!(offer.sdp.sdp.contains("m=application"));
    assert!(offer.sdp.sdp.contains("webrtc-datachannel"));

    // Trickled candidates carry the connection id and a real mid.
    let (_, cand) = tokio::time::timeout(STEP, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let OutboundSignal::Candidate(cand) = cand else {
        panic!("expected a CANDIDATE")
    };
    assert_eq!(cand.connection_id, conn.connection_id());
    assert_eq!(cand.kind, ConnectionType::Data);
    assert!(cand.candidate.candidate.starts_with("candidate:"));
    assert!(cand.candidate.candidate.contains("127.0.0.1"));
    assert_eq!(cand.candidate.sdp_mid.as_deref(), Some("0"));
    assert!(cand.candidate.username_fragment.is_some());

    assert!(matches!(
        conn.send(Bytes::from_static(b"x")).await,
        Err(MeshError::NotOpen)
    ));
    assert!(!conn.is_open());

    // EXPIRE: the broker could not deliver the OFFER → peer-unavailable, then Closed.
    mesh.handle_expire("nobody");
    match next_event(&mut conn).await {
        DataConnectionEvent::Error(MeshError::PeerUnavailable(p)) => assert_eq!(p, "nobody"),
        other => panic!("expected PeerUnavailable, got {other:?}"),
    }
    assert!(matches!(
        next_event(&mut conn).await,
        DataConnectionEvent::Closed
    ));

    // LEAVE closes every connection with that peer.
    let mut c2 = mesh
        .connect("gone", ConnectOptions::default())
        .await
        .unwrap();
    mesh.handle_leave("gone");
    assert!(matches!(
        next_event(&mut c2).await,
        DataConnectionEvent::Closed
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signals_get_typed_errors() {
    let (tx, _rx) = mpsc::unbounded_channel::<(String, OutboundSignal)>();
    let mesh = MeshPeer::new(
        PeerConnectionFactory::new(identity(), MeshOptions::loopback()),
        Arc::new(tx),
    );
    let answer = AnswerPayload {
        sdp: SessionDescription {
            kind: SdpType::Answer,
            sdp: "v=0\r\n".into(),
        },
        kind: ConnectionType::Data,
        connection_id: "dc_unknown".into(),
    };
    assert!(matches!(
        mesh.handle_answer("p", answer.clone()),
        Err(MeshError::UnknownConnection { .. })
    ));
    let wrong = AnswerPayload {
        sdp: SessionDescription {
            kind: SdpType::Offer,
            sdp: "v=0\r\n".into(),
        },
        ..answer
    };
    assert!(matches!(
        mesh.handle_answer("p", wrong),
        Err(MeshError::WrongSdpType { .. })
    ));

    let mut media = OfferPayload::data("v=0\r\n", "mc_1", None);
    media.kind = ConnectionType::Media;
    assert!(matches!(
        mesh.handle_offer("p", media).await,
        Err(MeshError::UnsupportedConnectionType(ConnectionType::Media))
    ));
    let garbage = OfferPayload::data("this is not sdp", "dc_1", None);
    assert!(matches!(
        mesh.handle_offer("p", garbage).await,
        Err(MeshError::InvalidSdp(_))
    ));
    // A candidate for an unknown connection is held, not an error; a media one is ignored.
    mesh.handle_candidate(
        "p",
        CandidatePayload {
            candidate: agent_runtime::mesh::signal::IceCandidateInit {
                candidate: "candidate:garbage".into(),
                sdp_mid: None,
                sdp_m_line_index: None,
                username_fragment: None,
            },
            kind: ConnectionType::Data,
            connection_id: "dc_later".into(),
        },
    );
    assert_eq!(mesh.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_offer_has_audio_video_video() {
    struct NoopHandler;
    #[async_trait::async_trait]
    impl webrtc::peer_connection::PeerConnectionEventHandler for NoopHandler {}

    let factory = PeerConnectionFactory::new(identity(), MeshOptions::loopback());
    let offer = create_media_offer(&factory, Arc::new(NoopHandler), false)
        .await
        .unwrap();
    assert_eq!(media_kinds(&offer.sdp), KIBITZ_MEDIA_LAYOUT.to_vec());
    assert_eq!(
        media_kinds(&offer.sdp),
        vec![MediaKind::Audio, MediaKind::Video, MediaKind::Video]
    );
    let sections = agent_runtime::mesh::sdp::media_sections(&offer.sdp);
    assert_eq!(sections.len(), 3, "no data m-line on a media pc");
    for s in &sections {
        assert!(s.mid.is_some());
    }
    assert_eq!(offer.sdp.matches("a=sendrecv").count(), 3);
    assert!(offer.sdp.to_lowercase().contains("opus/48000/2"));
    assert!(offer.sdp.contains("VP8/90000"));
    // The media pc presents the same certificate: the SDP fingerprint is ours.
    let fp = factory.identity().fingerprint().to_uppercase();
    assert!(offer.sdp.to_uppercase().contains(&fp));
    offer.pc.close().await.unwrap();
}

/// Measures dial → both sides `Open` on loopback. Prints the median for the join-time
/// benchmark; asserts only that every run opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_latency_on_loopback() {
    let (ida, idb) = (identity(), identity());
    let mut net = net(&[("m", ida), ("n", idb)], Order::Fifo);
    let mut samples = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let (out, inc) = open_pair(&mut net, "m", "n", ConnectOptions::default()).await;
        samples.push(started.elapsed());
        out.close();
        drop(inc);
    }
    samples.sort();
    let median = (samples[4] + samples[5]) / 2;
    println!(
        "data channel open on loopback: median {:?}, min {:?}, max {:?} over {} runs",
        median,
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
    assert_eq!(samples.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_respects_the_high_water_mark() {
    let options = MeshOptions {
        send_high_water: 32 * 1024,
        ..MeshOptions::loopback()
    };
    let mut net = net_with(
        &[("hw1", identity()), ("hw2", identity())],
        Order::Fifo,
        options,
    );
    let (out, mut inc) = open_pair(&mut net, "hw1", "hw2", ConnectOptions::default()).await;

    // try_send refuses once more than the mark is in flight; nothing accepted is lost.
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..50u8 {
        let m = pattern(48 * 1024, i);
        match out.try_send(m.clone()).await {
            Ok(()) => accepted.push(m),
            Err(MeshError::SendBufferFull) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        refused > 0,
        "a 32 KiB mark must refuse back-to-back 48 KiB sends"
    );
    assert!(!accepted.is_empty());
    // send waits for room instead of failing.
    let tail = pattern(48 * 1024, 200);
    out.send(tail.clone()).await.unwrap();
    accepted.push(tail);
    for m in &accepted {
        assert_eq!(&expect_message(&mut inc).await, m);
    }
    // Everything is acknowledged soon after delivery.
    let deadline = Instant::now() + STEP;
    while out.buffered_amount().await > 0 {
        assert!(Instant::now() < deadline, "send buffer never drained");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
