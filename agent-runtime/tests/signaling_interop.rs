//! The signaling client against real brokers: every case runs against both the embedded broker
//! and the npm `peer` server (peerjs-server), on 127.0.0.1.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod signaling_support;

use std::time::Duration;

use agent_runtime::signaling::{
    validate_id, AnswerPayload, CandidatePayload, ConnectOptions, ConnectionType, IceCandidateInit,
    SdpType, SessionDescription, SignalingClient, SignalingError, SignalingEvent,
};
use signaling_support::*;

both_brokers!(
    allocates_ids,
    relays_offer_answer_candidate_with_src,
    relayed_frame_bytes_match_peerjs_server,
    id_taken_for_other_token,
    same_id_and_token_reattach_and_reregister,
    expire_for_offer_to_absent_peer,
    leave_is_relayed_but_not_generated_on_disconnect,
    heartbeat_keeps_client_alive_silence_drops_it,
    reconnects_after_broker_restart,
    gives_up_when_broker_stays_down,
    ws_parameter_errors_match,
    malformed_client_frames_do_not_kill_broker,
);

async fn allocates_ids(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let (a, _ea) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    let (b, _eb) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    for id in [a.id(), b.id()] {
        assert!(validate_id(id), "{id}");
        assert_eq!(id.len(), 36, "UUID v4 expected, got {id}");
        assert_eq!(&id[14..15], "4", "{id}");
    }
    assert_ne!(a.id(), b.id());
    assert_eq!(a.token().len(), 20);
    assert_ne!(a.token(), b.token());

    // The raw HTTP endpoint answers plain text.
    let body = reqwest::get(broker.cfg().id_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.len(), 36, "{body}");
    a.close().await;
    b.close().await;
}

async fn relays_offer_answer_candidate_with_src(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let (a, mut ea) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    let (b, mut eb) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();

    let offer = offer("dc_x1");
    a.send_offer(b.id(), &offer).await.unwrap();
    match next_event(&mut eb, 5).await {
        SignalingEvent::Offer { src, payload } => {
            assert_eq!(src, a.id());
            assert_eq!(payload, offer);
        }
        other => panic!("expected offer, got {other:?}"),
    }

    let answer = AnswerPayload {
        sdp: SessionDescription {
            kind: SdpType::Answer,
            sdp: "v=0\r\n".into(),
        },
        kind: ConnectionType::Data,
        connection_id: "dc_x1".into(),
    };
    b.send_answer(a.id(), &answer).await.unwrap();
    match next_event(&mut ea, 5).await {
        SignalingEvent::Answer { src, payload } => {
            assert_eq!(src, b.id());
            assert_eq!(payload, answer);
        }
        other => panic!("expected answer, got {other:?}"),
    }

    let cand = CandidatePayload {
        candidate: IceCandidateInit {
            candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some("abcd".into()),
        },
        kind: ConnectionType::Data,
        connection_id: "dc_x1".into(),
    };
    a.send_candidate(b.id(), &cand).await.unwrap();
    match next_event(&mut eb, 5).await {
        SignalingEvent::Candidate { src, payload } => {
            assert_eq!(src, a.id());
            assert_eq!(payload, cand);
        }
        other => panic!("expected candidate, got {other:?}"),
    }
    a.close().await;
    b.close().await;
}

async fn relayed_frame_bytes_match_peerjs_server(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let mut raw = raw_ws(broker.port, "key=peerjs&id=rawpeer&token=tok&version=1.5.5").await;
    assert_eq!(
        raw_next_text(&mut raw, 5).await.as_deref(),
        Some(r#"{"type":"OPEN"}"#)
    );
    let (a, _ea) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    a.send_offer("rawpeer", &offer("dc_q")).await.unwrap();
    let text = raw_next_text(&mut raw, 5).await.unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"type":"OFFER","src":"{}","dst":"rawpeer","payload":{{"sdp":{{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}},"type":"data","connectionId":"dc_q","label":"dc_q","reliable":true,"serialization":"binary"}}}}"#,
            a.id()
        )
    );
    a.close().await;
}

async fn id_taken_for_other_token(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let first = ConnectOptions {
        id: Some("kbz-v1-standup".into()),
        token: Some("tokenone".into()),
        ..quick_opts()
    };
    let (a, _ea) = SignalingClient::connect(broker.cfg(), first.clone())
        .await
        .unwrap();
    assert_eq!(a.id(), "kbz-v1-standup");
    let second = ConnectOptions {
        token: Some("tokentwo".into()),
        ..first
    };
    let err = SignalingClient::connect(broker.cfg(), second)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SignalingError::IdTaken {
            id: "kbz-v1-standup".into()
        }
    );

    // The raw frame is exactly peerjs-server's.
    let mut raw = raw_ws(broker.port, "key=peerjs&id=kbz-v1-standup&token=other").await;
    assert_eq!(
        raw_next_text(&mut raw, 5).await.as_deref(),
        Some(r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#)
    );
    assert_eq!(raw_next_text(&mut raw, 5).await, None, "socket must close");
    a.close().await;
}

async fn same_id_and_token_reattach_and_reregister(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let opts = ConnectOptions {
        id: Some("kbz-v1-room".into()),
        token: Some("sametoken".into()),
        ..quick_opts()
    };
    let (a, _ea) = SignalingClient::connect(broker.cfg(), opts.clone())
        .await
        .unwrap();
    // While the first socket is still up, the same id+token re-attaches (no OPEN is sent;
    // the client detects acceptance through its ping).
    let (a2, mut ea2) = SignalingClient::connect(broker.cfg(), opts.clone())
        .await
        .unwrap();
    let (p, _ep) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    p.send_offer("kbz-v1-room", &offer("dc_r")).await.unwrap();
    match next_event(&mut ea2, 5).await {
        SignalingEvent::Offer { src, .. } => assert_eq!(src, p.id()),
        other => panic!("re-attached socket should get the offer, got {other:?}"),
    }
    // Closing the replaced socket does not free the id.
    a.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = ConnectOptions {
        token: Some("thief".into()),
        ..opts.clone()
    };
    assert!(matches!(
        SignalingClient::connect(broker.cfg(), other).await,
        Err(SignalingError::IdTaken { .. })
    ));
    // After the holder closes, the same id+token registers afresh.
    a2.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a3, _ea3) = SignalingClient::connect(broker.cfg(), opts).await.unwrap();
    assert_eq!(a3.id(), "kbz-v1-room");
    a3.close().await;
    p.close().await;
}

async fn expire_for_offer_to_absent_peer(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let (a, mut ea) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    let sent = tokio::time::Instant::now();
    a.send_offer("kbz-v1-nobody", &offer("dc_e")).await.unwrap();
    a.send_candidate(
        "kbz-v1-nobody",
        &CandidatePayload {
            candidate: IceCandidateInit {
                candidate: "candidate:x".into(),
                sdp_mid: None,
                sdp_m_line_index: None,
                username_fragment: None,
            },
            kind: ConnectionType::Data,
            connection_id: "dc_e".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        next_event(&mut ea, 5).await,
        SignalingEvent::Expire {
            src: "kbz-v1-nobody".into()
        }
    );
    let waited = sent.elapsed();
    // expire_timeout 1000 ms, swept every 1000 ms.
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // One EXPIRE per sender/destination pair, not one per message.
    let rest = events_for(&mut ea, Duration::from_millis(2500)).await;
    assert!(rest.is_empty(), "{rest:?}");
    a.close().await;
}

async fn leave_is_relayed_but_not_generated_on_disconnect(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let (a, mut ea) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    let (b, mut eb) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    // An explicit LEAVE is relayed with src.
    a.send(agent_runtime::signaling::ClientFrame {
        kind: agent_runtime::signaling::FrameType::Leave,
        payload: None,
        dst: Some(b.id().to_owned()),
    })
    .await
    .unwrap();
    assert_eq!(
        next_event(&mut eb, 5).await,
        SignalingEvent::Leave { src: a.id().into() }
    );
    // peerjs-server sends no LEAVE when a socket closes.
    let b_id = b.id().to_owned();
    b.close().await;
    let evs = events_for(&mut ea, Duration::from_millis(1500)).await;
    assert!(evs.is_empty(), "{evs:?}");
    // An offer to the departed peer is queued and expires.
    a.send_offer(&b_id, &offer("dc_l")).await.unwrap();
    assert_eq!(
        next_event(&mut ea, 5).await,
        SignalingEvent::Expire { src: b_id }
    );
    a.close().await;
}

async fn heartbeat_keeps_client_alive_silence_drops_it(backend: Backend) {
    let timings = Timings {
        alive: Duration::from_millis(2500),
        ..Timings::default()
    };
    let broker = TestBroker::start(backend, timings).await;
    let chatty = ConnectOptions {
        heartbeat: Duration::from_millis(400),
        ..quick_opts()
    };
    let silent = ConnectOptions {
        heartbeat: Duration::from_secs(3600),
        ..quick_opts()
    };
    let (h, mut eh) = SignalingClient::connect(broker.cfg(), chatty)
        .await
        .unwrap();
    let (s, mut es) = SignalingClient::connect(broker.cfg(), silent)
        .await
        .unwrap();

    // The silent client is dropped by the broker's liveness sweep (and reconnects).
    assert_eq!(next_event(&mut es, 5).await, SignalingEvent::Disconnected);
    assert_eq!(next_event(&mut es, 5).await, SignalingEvent::Reconnected);

    // The heartbeating client outlives several alive timeouts without a drop ...
    let evs = events_for(&mut eh, Duration::from_millis(5500)).await;
    assert!(evs.is_empty(), "{evs:?}");
    // ... and is still reachable.
    let (p, _ep) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    p.send_offer(h.id(), &offer("dc_h")).await.unwrap();
    assert!(matches!(
        next_event(&mut eh, 5).await,
        SignalingEvent::Offer { .. }
    ));
    h.close().await;
    s.close().await;
    p.close().await;
}

async fn reconnects_after_broker_restart(backend: Backend) {
    let mut broker = TestBroker::start(backend, Timings::default()).await;
    let (a, mut ea) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    let id = a.id().to_owned();
    let token = a.token().to_owned();
    broker.stop().await;
    assert_eq!(next_event(&mut ea, 5).await, SignalingEvent::Disconnected);
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.restart().await;
    assert_eq!(next_event(&mut ea, 15).await, SignalingEvent::Reconnected);
    assert_eq!(a.id(), id);
    assert_eq!(a.token(), token);
    // The id is registered again under the same token: another token is refused ...
    let thief = ConnectOptions {
        id: Some(id.clone()),
        token: Some("thief".into()),
        ..quick_opts()
    };
    assert!(matches!(
        SignalingClient::connect(broker.cfg(), thief).await,
        Err(SignalingError::IdTaken { .. })
    ));
    // ... and relayed frames reach it.
    let (p, _ep) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    p.send_offer(&id, &offer("dc_re")).await.unwrap();
    assert!(matches!(
        next_event(&mut ea, 5).await,
        SignalingEvent::Offer { .. }
    ));
    a.close().await;
    assert_eq!(next_event(&mut ea, 5).await, SignalingEvent::Closed);
    p.close().await;
}

async fn gives_up_when_broker_stays_down(backend: Backend) {
    let mut broker = TestBroker::start(backend, Timings::default()).await;
    let mut opts = quick_opts();
    opts.backoff.max_attempts = 3;
    let (a, mut ea) = SignalingClient::connect(broker.cfg(), opts).await.unwrap();
    broker.stop().await;
    assert_eq!(next_event(&mut ea, 5).await, SignalingEvent::Disconnected);
    match next_event(&mut ea, 10).await {
        SignalingEvent::Failed(SignalingError::ReconnectExhausted { attempts, .. }) => {
            assert_eq!(attempts, 3)
        }
        other => panic!("expected ReconnectExhausted, got {other:?}"),
    }
    assert_eq!(next_event(&mut ea, 5).await, SignalingEvent::Closed);
    assert!(a.send_offer("x", &offer("dc_z")).await.is_err());
}

async fn ws_parameter_errors_match(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let mut ws = raw_ws(broker.port, "key=peerjs&id=abc").await;
    assert_eq!(
        raw_next_text(&mut ws, 5).await.as_deref(),
        Some(
            r#"{"type":"ERROR","payload":{"msg":"No id, token, or key supplied to websocket server"}}"#
        )
    );
    assert_eq!(raw_next_text(&mut ws, 5).await, None);
    let mut ws = raw_ws(broker.port, "key=wrong&id=abc&token=t").await;
    assert_eq!(
        raw_next_text(&mut ws, 5).await.as_deref(),
        Some(r#"{"type":"ERROR","payload":{"msg":"Invalid key provided"}}"#)
    );
    assert_eq!(raw_next_text(&mut ws, 5).await, None);

    // The client maps a rejected key to a typed error without retrying.
    let mut cfg = broker.cfg();
    cfg.key = "wrong".into();
    let opts = ConnectOptions {
        id: Some("abc".into()),
        ..quick_opts()
    };
    assert_eq!(
        SignalingClient::connect(cfg, opts).await.unwrap_err(),
        SignalingError::Server {
            msg: "Invalid key provided".into()
        }
    );
}

async fn malformed_client_frames_do_not_kill_broker(backend: Backend) {
    let broker = TestBroker::start(backend, Timings::default()).await;
    let (b, mut eb) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    let relay = |n: &str| {
        format!(
            r#"{{"type":"OFFER","payload":{},"dst":"{}"}}"#,
            serde_json::to_string(&offer(n)).unwrap(),
            b.id()
        )
    };

    // Well-formed JSON that means nothing is ignored; the socket keeps working.
    let mut raw = raw_ws(broker.port, "key=peerjs&id=junky&token=t").await;
    assert_eq!(
        raw_next_text(&mut raw, 5).await.as_deref(),
        Some(r#"{"type":"OPEN"}"#)
    );
    for junk in [
        "[]",
        "{}",
        r#"{"type":"WHAT"}"#,
        r#"{"type":"OFFER"}"#,
        r#"{"type":"OPEN","dst":"x"}"#,
        r#"{"type":"HEARTBEAT","payload":[1,2,3]}"#,
    ] {
        raw_send(&mut raw, junk).await;
    }
    raw_send(&mut raw, &relay("dc_j1")).await;
    match next_event(&mut eb, 5).await {
        SignalingEvent::Offer { src, payload } => {
            assert_eq!(src, "junky");
            assert_eq!(payload, offer("dc_j1"));
        }
        other => panic!("expected offer, got {other:?}"),
    }

    // Frames that are not JSON objects. peerjs-server survives them but stops processing that
    // one socket (the parse error escapes its message handler); the embedded broker drops the
    // frame and carries on.
    let mut raw2 = raw_ws(broker.port, "key=peerjs&id=junkier&token=t").await;
    assert_eq!(
        raw_next_text(&mut raw2, 5).await.as_deref(),
        Some(r#"{"type":"OPEN"}"#)
    );
    for junk in ["not json", "null", "3", "{\"type\":\"OFFER\",\"dst\":"] {
        raw_send(&mut raw2, junk).await;
    }
    raw_send(&mut raw2, &relay("dc_j2")).await;
    if backend == Backend::Embedded {
        match next_event(&mut eb, 5).await {
            SignalingEvent::Offer { src, payload } => {
                assert_eq!(src, "junkier");
                assert_eq!(payload, offer("dc_j2"));
            }
            other => panic!("expected offer, got {other:?}"),
        }
    }

    // Either way the broker still registers and relays for everyone else.
    let (c, _ec) = SignalingClient::connect(broker.cfg(), quick_opts())
        .await
        .unwrap();
    assert!(validate_id(c.id()));
    c.send_offer(b.id(), &offer("dc_j3")).await.unwrap();
    loop {
        match next_event(&mut eb, 5).await {
            SignalingEvent::Offer { src, payload } if src == c.id() => {
                assert_eq!(payload, offer("dc_j3"));
                break;
            }
            SignalingEvent::Offer { src, .. } if src == "junkier" => {}
            other => panic!("expected offer from the new client, got {other:?}"),
        }
    }
    b.close().await;
    c.close().await;
}
