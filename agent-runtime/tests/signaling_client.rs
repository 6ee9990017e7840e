//! Signaling client failure handling: malformed broker frames, brokers that drop the socket
//! mid-join (a fault-injecting TCP front over the real embedded broker), exhausted budgets,
//! closing and dropping.

#![allow(clippy::unwrap_used)]

mod signaling_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::signaling::{
    BrokerConfig, ConnectOptions, SignalingClient, SignalingError, SignalingEvent,
};
use futures_util::{SinkExt, StreamExt};
use signaling_support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket server that sends `OPEN` and then the given frames.
async fn scripted_server(frames: Vec<Message>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        ws.send(Message::Text(r#"{"type":"OPEN"}"#.into()))
            .await
            .unwrap();
        for f in frames {
            ws.send(f).await.unwrap();
        }
        // Keep the socket open and answer pings until the client leaves.
        while let Some(Ok(_)) = ws.next().await {}
    });
    port
}

#[tokio::test]
async fn malformed_server_frames_are_dropped_without_panic() {
    let junk = vec![
        Message::Text("not json".into()),
        Message::Text("null".into()),
        Message::Text("[1,2]".into()),
        Message::Text(r#"{"type":"NOPE","src":"a"}"#.into()),
        Message::Text(r#"{"type":"OFFER","src":"a"}"#.into()),
        Message::Text(r#"{"type":"OFFER","src":"a","payload":{"sdp":5}}"#.into()),
        Message::Text(r#"{"type":"ANSWER","payload":{"sdp":{"type":"answer","sdp":""},"type":"data","connectionId":"c"}}"#.into()),
        Message::Text(r#"{"type":"CANDIDATE","src":7,"payload":{}}"#.into()),
        Message::Text(r#"{"type":"LEAVE"}"#.into()),
        Message::Text(r#"{"type":"OPEN"}"#.into()),
        Message::Text("\u{0}\u{1}\u{fffd}".into()),
        Message::Binary(vec![0xff, 0x00, 0x7b]),
        Message::Text(format!(r#"{{"type":"OFFER","src":"a","pad":"{}"}}"#, "x".repeat(2 << 20))),
        Message::Text(r#"{"type":"LEAVE","src":"zed"}"#.into()),
        Message::Text(r#"{"type":"EXPIRE","src":"gone","dst":"me"}"#.into()),
        Message::Text(r#"{"type":"ERROR","payload":{"msg":"careful"}}"#.into()),
    ];
    let port = scripted_server(junk).await;
    let opts = ConnectOptions {
        id: Some("me".into()),
        ..quick_opts()
    };
    let (h, mut ev) = SignalingClient::connect(BrokerConfig::new("127.0.0.1", port, false), opts)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut ev, 5).await,
        SignalingEvent::Leave { src: "zed".into() }
    );
    assert_eq!(
        next_event(&mut ev, 5).await,
        SignalingEvent::Expire { src: "gone".into() }
    );
    assert_eq!(
        next_event(&mut ev, 5).await,
        SignalingEvent::Error {
            msg: "careful".into()
        }
    );
    assert!(!h.is_closed());
    h.close().await;
    assert_eq!(next_event(&mut ev, 5).await, SignalingEvent::Closed);
}

/// A TCP front for `upstream`: the first `bad` connections complete the WebSocket handshake and
/// are then closed before the broker could answer; later ones are forwarded byte for byte.
async fn flaky_front(upstream: u16, bad: u32) -> (u16, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicU32::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if n < bad {
                    if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                        let _ = ws.close(None).await;
                    }
                } else if let Ok(mut up) =
                    tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_survives_broker_closing_mid_join() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let (front, seen) = flaky_front(broker.port, 3).await;
    let opts = ConnectOptions {
        id: Some("kbz-v1-flaky".into()),
        ..quick_opts()
    };
    let started = tokio::time::Instant::now();
    let (h, _ev) = SignalingClient::connect(BrokerConfig::new("127.0.0.1", front, false), opts)
        .await
        .unwrap();
    assert_eq!(h.id(), "kbz-v1-flaky");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        4,
        "three refused attempts, then success"
    );
    // Three backoff waits of at least the 20 ms floor each.
    assert!(started.elapsed() >= Duration::from_millis(60));
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_fails_typed_when_budget_is_spent() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let (front, seen) = flaky_front(broker.port, u32::MAX).await;
    let mut opts = ConnectOptions {
        id: Some("kbz-v1-flaky".into()),
        ..quick_opts()
    };
    opts.backoff.max_attempts = 4;
    let err = SignalingClient::connect(BrokerConfig::new("127.0.0.1", front, false), opts)
        .await
        .unwrap_err();
    match err {
        SignalingError::ReconnectExhausted { attempts, .. } => assert_eq!(attempts, 4),
        other => panic!("expected ReconnectExhausted, got {other:?}"),
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        5,
        "first try plus four retries"
    );
}

#[tokio::test]
async fn id_allocation_failure_is_typed() {
    // Nothing listens on this port.
    let port = free_port();
    let mut opts = quick_opts();
    opts.backoff.max_attempts = 2;
    let err = SignalingClient::connect(BrokerConfig::new("127.0.0.1", port, false), opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SignalingError::ReconnectExhausted { attempts: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_chosen_id_is_rejected_before_dialing() {
    let opts = ConnectOptions {
        id: Some("kbz-v1-".into()),
        ..quick_opts()
    };
    let err = SignalingClient::connect(BrokerConfig::new("127.0.0.1", 9, false), opts)
        .await
        .unwrap_err();
    assert_eq!(err, SignalingError::InvalidId("kbz-v1-".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_releases_the_id() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let opts = ConnectOptions {
        id: Some("kbz-v1-drop".into()),
        ..quick_opts()
    };
    let (h, mut ev) = SignalingClient::connect(broker.cfg(), opts.clone())
        .await
        .unwrap();
    let clone = h.clone();
    drop(h);
    assert!(!clone.is_closed(), "a clone keeps the client alive");
    drop(clone);
    assert_eq!(next_event(&mut ev, 5).await, SignalingEvent::Closed);
    // The broker saw the socket close: another token may now claim the id.
    let mut ok = false;
    for _ in 0..20 {
        let other = ConnectOptions {
            token: Some("another".into()),
            ..opts.clone()
        };
        if let Ok((h2, _)) = SignalingClient::connect(broker.cfg(), other).await {
            h2.close().await;
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "id was not released");
}

#[tokio::test]
async fn broker_choice_probes_api_signal() {
    use agent_runtime::signaling::{choose_broker, BrokerChoice, SignalFallback};
    use axum::routing::get;

    let app = axum::Router::new()
        .route(
            "/up/api/signal",
            get(|| async { axum::Json(serde_json::json!({"host": "https://w.example.test/"})) }),
        )
        .route(
            "/down/api/signal",
            get(|| async { axum::Json(serde_json::json!({"host": null})) }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    let mut state = BrokerChoice::new(SignalFallback::SelfHosted);
    let up = choose_broker(&http, &format!("http://{addr}/up"), &mut state).await;
    assert_eq!(up, BrokerConfig::new("w.example.test", 443, true));
    // Cached: even a down origin answers the same within 30 s.
    let again = choose_broker(&http, &format!("http://{addr}/down"), &mut state).await;
    assert_eq!(again, up);

    // [N]: no host → the last host seen, never the public cloud.
    let mut fresh = BrokerChoice::new(SignalFallback::SelfHosted);
    let down = choose_broker(&http, &format!("http://{addr}/down"), &mut fresh).await;
    assert_eq!(down.host, "signal.kibitz.chat");
    // [O]: no host (here: a 404) → the public PeerJS cloud.
    let mut legacy = BrokerChoice::new(SignalFallback::PublicCloud);
    let cloud = choose_broker(&http, &format!("http://{addr}/missing"), &mut legacy).await;
    assert_eq!(cloud.host, "0.peerjs.com");
    server.abort();
}

#[tokio::test]
async fn wss_is_compiled_in() {
    // A TCP server that answers the TLS hello with garbage: the client must attempt TLS (and
    // fail with a typed error), not report missing TLS support or panic for want of a provider.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = tcp.write_all(b"HTTP/1.1 400 nope\r\n\r\n").await;
        }
    });
    let mut opts = ConnectOptions {
        id: Some("kbz-v1-tls".into()),
        ..quick_opts()
    };
    opts.backoff.max_attempts = 0;
    let err = SignalingClient::connect(BrokerConfig::new("127.0.0.1", port, true), opts)
        .await
        .unwrap_err();
    match err {
        SignalingError::ReconnectExhausted { last, .. } => {
            // rustls rejects the plaintext answer: proof that a TLS handshake was attempted.
            assert!(last.contains("corrupt message"), "{last}");
        }
        other => panic!("expected a failed attempt, got {other:?}"),
    }
}
