//! Interop with a real PeerJS 1.5.5 client in headless Chromium, through the npm `peer`
//! broker: the browser dials the agent and the agent dials the browser. Checks the BinaryPack
//! bytes on the wire (one message per SCTP message), and that the fingerprint a browser computes
//! from `getRemoteCertificates()[0]` (what a Kibitz authority compares) is ours.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime::mesh::{
    ConnectOptions, DataConnection, DataConnectionEvent, DtlsIdentity, MeshOptions, MeshPeer,
    OutboundSignal, PeerConnectionFactory,
};
use agent_runtime::signaling::{
    BrokerConfig, ConnectOptions as SignalingOptions, SignalingClient, SignalingEvent,
    SignalingHandle,
};
use bytes::Bytes;
use kibitz_test_harness::{Browser, BrowserOptions, PeerJsServer, PeerOptions, Role};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(20);

/// BinaryPack of `{t:'ping'}` (kibitz-wire.md §3 vector).
const PING: [u8; 8] = [0x81, 0xb1, 0x74, 0xb4, 0x70, 0x69, 0x6e, 0x67];

struct Agent {
    id: String,
    mesh: MeshPeer,
    incoming: mpsc::UnboundedReceiver<DataConnection>,
    _handle: SignalingHandle,
}

async fn agent(port: u16, identity: Arc<DtlsIdentity>) -> Agent {
    let cfg = BrokerConfig::new("127.0.0.1", port, false);
    let (handle, mut events) = SignalingClient::connect(cfg, SignalingOptions::default())
        .await
        .expect("npm peer broker accepts the agent");
    let (sink_tx, mut sink_rx) = mpsc::unbounded_channel::<(String, OutboundSignal)>();
    let mesh = MeshPeer::new(
        PeerConnectionFactory::new(identity, MeshOptions::loopback()),
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
    let (in_tx, incoming) = mpsc::unbounded_channel();
    let inbound = mesh.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                SignalingEvent::Offer { src, payload } => {
                    match inbound.handle_offer(&src, payload).await {
                        Ok(conn) => {
                            let _ = in_tx.send(conn);
                        }
                        Err(e) => eprintln!("offer from {src} refused: {e}"),
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
        _handle: handle,
    }
}

async fn next_event(conn: &mut DataConnection) -> DataConnectionEvent {
    tokio::time::timeout(STEP, conn.recv())
        .await
        .expect("event in time")
        .expect("stream open")
}

async fn expect_message(conn: &mut DataConnection) -> Bytes {
    match next_event(conn).await {
        DataConnectionEvent::Message(b) => b,
        other => panic!("expected a binary message, got {other:?}"),
    }
}

/// JS helpers shared by the page snippets: a raw PeerJS peer (default serialization =
/// BinaryPack, as Kibitz), hex, and the browser's view of fingerprints.
const PRELUDE: &str = r#"
const Peer = window.peerjs.Peer
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('')
const colon = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join(':')
const within = (p, ms, what) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(what + ' timed out')), ms))])
async function remoteFp(pc) {
  const t = pc.sctp && pc.sctp.transport
  const certs = t ? t.getRemoteCertificates() : []
  return certs.length ? colon(await crypto.subtle.digest('SHA-256', certs[0])) : null
}
function localSdpFp(pc) {
  const m = /a=fingerprint:sha-256 ([0-9A-Fa-f:]+)/.exec(pc.localDescription.sdp)
  return m ? m[1].toLowerCase() : null
}
function newPeer(b) {
  return new Peer({ host: b.host, port: b.port, path: b.path, key: b.key, secure: false, config: { iceServers: [] }, debug: 1 })
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_peerjs_and_agent_interoperate_both_ways() {
    let broker = PeerJsServer::start().await.expect("npm peer broker");
    let browser = Browser::launch(BrowserOptions::default())
        .await
        .expect("chromium harness");
    // A page to run PeerJS in (its own Kibitz peers are not used here).
    browser
        .open_peer(
            "web",
            &PeerOptions::new(Role::Host, "mesh-interop", "Web", &broker),
        )
        .await
        .expect("page opens");

    let identity = Arc::new(DtlsIdentity::generate().unwrap());
    let mut agent = agent(broker.port(), Arc::clone(&identity)).await;

    // 1. The browser dials the agent like Kibitz's dialData: peer.connect(id, {reliable:true}).
    let started = Instant::now();
    let dial = format!(
        "{PRELUDE}
        const peer = newPeer(arg.broker)
        await within(new Promise((res, rej) => {{ peer.on('open', res); peer.on('error', rej) }}), 10000, 'broker open')
        const conn = peer.connect(arg.target, {{ reliable: true }})
        const got = []
        conn.on('data', (d) => got.push(d))
        await within(new Promise((res, rej) => {{ conn.on('open', res); conn.on('error', rej) }}), 15000, 'dc open')
        conn.send(new Uint8Array([1, 2, 3]))
        conn.send({{ t: 'ping' }})
        await within(new Promise((res) => {{ const t = setInterval(() => {{ if (got.length) {{ clearInterval(t); res() }} }}, 10) }}), 15000, 'reply')
        const pc = conn.peerConnection
        const dc = conn.dataChannel
        const result = {{
          peerId: peer.id, connectionId: conn.connectionId, label: dc.label, ordered: dc.ordered,
          serialization: conn.serialization, reply: got[0], remoteFp: await remoteFp(pc), localFp: localSdpFp(pc),
        }}
        window.__kbzMeshPeer = peer
        return result"
    );
    let page = {
        let browser = &browser;
        let arg = json!({ "broker": broker.broker_json(), "target": agent.id });
        async move { browser.eval("web", &dial, arg).await }
    };
    let rust_side = async {
        let mut conn = tokio::time::timeout(STEP, agent.incoming.recv())
            .await
            .expect("browser offer reaches the agent")
            .expect("pump alive");
        assert!(matches!(
            next_event(&mut conn).await,
            DataConnectionEvent::Open
        ));
        let opened = started.elapsed();
        // PeerJS BinaryPack on the wire: Uint8Array[1,2,3] → a3 01 02 03; {t:'ping'} → vector.
        assert_eq!(expect_message(&mut conn).await.as_ref(), [0xa3, 1, 2, 3]);
        assert_eq!(expect_message(&mut conn).await.as_ref(), PING);
        conn.send(Bytes::from_static(&PING)).await.unwrap();
        (conn, opened)
    };
    let (page_result, (conn, opened)) = tokio::join!(page, rust_side);
    let page_result: Value = page_result.expect("page script");
    println!("browser → agent: data channel open after {opened:?} (includes PeerJS broker open)");

    assert_eq!(conn.peer(), page_result["peerId"].as_str().unwrap());
    assert_eq!(
        conn.connection_id(),
        page_result["connectionId"].as_str().unwrap()
    );
    assert!(conn.connection_id().starts_with("dc_"));
    assert_eq!(conn.label(), page_result["label"].as_str().unwrap());
    assert_eq!(page_result["ordered"], json!(true));
    assert_eq!(page_result["serialization"], json!("binary"));
    assert!(conn.reliable());
    assert_eq!(conn.serialization(), "binary");
    // The browser decoded our bytes as BinaryPack {t:'ping'}.
    assert_eq!(page_result["reply"], json!({ "t": "ping" }));
    // What a Kibitz authority reads from getRemoteCertificates()[0] is our fingerprint…
    assert_eq!(
        page_result["remoteFp"].as_str(),
        Some(identity.fingerprint())
    );
    // …and we see the browser's certificate as its SDP announces it.
    assert_eq!(conn.remote_fingerprint(), page_result["localFp"].as_str());

    // 2. The agent dials the browser (Kibitz's dialData from the smaller voiceId).
    let listen = format!(
        "{PRELUDE}
        const peer = window.__kbzMeshPeer
        window.__kbzIncoming = []
        peer.on('connection', (c) => {{
          window.__kbzIncoming.push(c)
          c.on('data', (d) => {{
            if (d instanceof ArrayBuffer) c.send({{ len: d.byteLength, head: hex(d.slice(0, 4)) }})
            else c.send(d)
          }})
        }})
        return peer.id"
    );
    let browser_id = browser
        .eval("web", &listen, json!({}))
        .await
        .expect("listen");
    // Non-object results come back as `{value}` (the harness merges objects into its reply).
    let browser_id = browser_id["value"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let mut out = agent
        .mesh
        .connect(&browser_id, ConnectOptions::bulk())
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut out).await,
        DataConnectionEvent::Open
    ));
    println!(
        "agent → browser: data channel open after {:?}",
        started.elapsed()
    );
    out.send(Bytes::from_static(&PING)).await.unwrap();
    // PeerJS decodes {t:'ping'} and sends it back re-encoded: identical bytes.
    assert_eq!(expect_message(&mut out).await.as_ref(), PING);

    // A 64 KiB SCTP message (a BinaryPack bin32 of 65531 bytes) arrives whole; the page
    // reports its size. (Chromium's max-message-size is 64 KiB without the SDP attribute.)
    let mut big = vec![0xdb, 0, 0, 0xff, 0xfb];
    big.extend((0..65531u32).map(|i| (i % 251) as u8));
    assert_eq!(big.len(), 64 * 1024);
    out.send(Bytes::from(big)).await.unwrap();
    let too_big = Bytes::from(vec![0u8; 300 * 1024]);
    assert!(matches!(
        out.send(too_big).await,
        Err(agent_runtime::mesh::MeshError::MessageTooLarge(_))
    ));
    let reply = expect_message(&mut out).await;
    // {len: 65531, head: '00010203'} in BinaryPack.
    let mut expected = vec![0x82, 0xb3, b'l', b'e', b'n', 0xcd, 0xff, 0xfb, 0xb4];
    expected.extend(b"head");
    expected.push(0xb8);
    expected.extend(b"00010203");
    assert_eq!(reply.as_ref(), expected.as_slice());

    let seen = browser
        .eval(
            "web",
            &format!(
                "{PRELUDE}
                const c = window.__kbzIncoming[0]
                return {{ label: c.label, connectionId: c.connectionId, reliable: c.reliable, serialization: c.serialization,
                          ordered: c.dataChannel.ordered, remoteFp: await remoteFp(c.peerConnection), localFp: localSdpFp(c.peerConnection),
                          setup: /a=setup:(\\w+)/.exec(c.peerConnection.localDescription.sdp)[1],
                          maxMessageSize: (/a=max-message-size:(\\d+)/.exec(c.peerConnection.localDescription.sdp) || [])[1] || null }}"
            ),
            json!({}),
        )
        .await
        .expect("incoming state");
    assert_eq!(seen["label"], json!("bulk"));
    assert_eq!(seen["connectionId"].as_str(), Some(out.connection_id()));
    assert_eq!(seen["reliable"], json!(true));
    assert_eq!(seen["serialization"], json!("binary"));
    assert_eq!(seen["ordered"], json!(true));
    // The same certificate on the second connection.
    assert_eq!(seen["remoteFp"].as_str(), Some(identity.fingerprint()));
    assert_eq!(out.remote_fingerprint(), seen["localFp"].as_str());
    println!(
        "browser answered our offer with a=setup:{} max-message-size:{}",
        seen["setup"], seen["maxMessageSize"]
    );
}

/// Repeated agent-dialled DataConnections to a Chromium PeerJS answerer (the join path: the
/// agent dials the host) all open and carry data. Latency is measured by the join benchmark
/// (`cargo bench -p kibitz-test-harness --bench join`), not asserted here; this test prints the
/// open times. Run with `RUST_LOG=agent_runtime::mesh=debug --nocapture` to see each
/// connection's setup phases (answer, candidates, ICE, DTLS, channel open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_dials_chromium_repeatedly() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let broker = PeerJsServer::start().await.expect("npm peer broker");
    let browser = Browser::launch(BrowserOptions::default())
        .await
        .expect("chromium harness");
    browser
        .open_peer(
            "web",
            &PeerOptions::new(Role::Host, "mesh-latency", "Web", &broker),
        )
        .await
        .expect("page opens");
    let listen = format!(
        "{PRELUDE}
        const peer = newPeer(arg.broker)
        await within(new Promise((res, rej) => {{ peer.on('open', res); peer.on('error', rej) }}), 10000, 'broker open')
        peer.on('connection', (c) => c.on('data', (d) => c.send(d)))
        return peer.id"
    );
    let arg = json!({ "broker": broker.broker_json() });
    let browser_id = browser.eval("web", &listen, arg).await.expect("listen");
    let browser_id = browser_id["value"].as_str().unwrap().to_owned();

    let identity = Arc::new(DtlsIdentity::generate().unwrap());
    let agent = agent(broker.port(), identity).await;
    let mut opens = Vec::new();
    for _ in 0..8 {
        let started = Instant::now();
        let mut conn = agent
            .mesh
            .connect(&browser_id, ConnectOptions::default())
            .await
            .unwrap();
        assert!(matches!(
            next_event(&mut conn).await,
            DataConnectionEvent::Open
        ));
        opens.push(started.elapsed());
        // The channel carries data both ways (PeerJS echoes the decoded value).
        conn.send(Bytes::from_static(&PING)).await.unwrap();
        assert_eq!(expect_message(&mut conn).await.as_ref(), PING);
        conn.close();
    }
    assert_eq!(opens.len(), 8, "every dial opened");
    println!("agent → chromium open times: {opens:?}");
}
