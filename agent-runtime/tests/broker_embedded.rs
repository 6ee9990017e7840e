//! The embedded broker's HTTP surface and limits: info, id endpoint, CORS, custom path and key,
//! discovery, the concurrency limit, the message size limit, shutdown.

#![allow(clippy::unwrap_used)]

mod signaling_support;

use std::net::SocketAddr;
use std::time::Duration;

use agent_runtime::broker::{Broker, BrokerOptions};
use agent_runtime::signaling::{
    validate_id, BrokerConfig, ConnectOptions, SignalingClient, SignalingError, SignalingEvent,
};
use signaling_support::*;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test]
async fn info_id_and_cors() {
    let (h, task) = Broker::bind(loopback(), BrokerOptions::default())
        .await
        .unwrap();
    let base = format!("http://{}", h.local_addr());
    assert_eq!(h.ws_url(), format!("ws://{}/", h.local_addr()));

    let info = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(info.status(), 200);
    assert!(info.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let json: serde_json::Value = info.json().await.unwrap();
    assert!(json["name"].is_string());
    assert!(json["description"].is_string());

    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{base}/peerjs/id?ts=1&version=1.5.5"))
        .header("Origin", "http://127.0.0.1:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let id = resp.text().await.unwrap();
    assert!(validate_id(&id) && id.len() == 36, "{id}");

    let pre = http
        .request(reqwest::Method::OPTIONS, format!("{base}/peerjs/id"))
        .header("Origin", "http://127.0.0.1:5173")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );

    // Discovery is off by default, as in peerjs-server.
    let peers = reqwest::get(format!("{base}/peerjs/peers")).await.unwrap();
    assert_eq!(peers.status(), 401);

    h.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn custom_path_key_and_discovery() {
    let opts = BrokerOptions {
        path: "/kbz".into(),
        key: "sekrit".into(),
        allow_discovery: true,
        ..BrokerOptions::default()
    };
    let (h, task) = Broker::bind(loopback(), opts).await.unwrap();
    let url = format!("ws://{}/kbz?key=sekrit", h.local_addr());
    let cfg = BrokerConfig::from_url(&url).unwrap();
    assert_eq!(cfg, h.client_config());
    let (c, _ev) = SignalingClient::connect(cfg.clone(), quick_opts())
        .await
        .unwrap();
    let list: Vec<String> = reqwest::get(format!("http://{}/kbz/sekrit/peers", h.local_addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, vec![c.id().to_owned()]);

    // Wrong key on the right path.
    let wrong = BrokerConfig {
        key: "peerjs".into(),
        ..cfg.clone()
    };
    let opts = ConnectOptions {
        id: Some("abc".into()),
        ..quick_opts()
    };
    assert_eq!(
        SignalingClient::connect(wrong, opts.clone())
            .await
            .unwrap_err(),
        SignalingError::Server {
            msg: "Invalid key provided".into()
        }
    );
    // The WebSocket is not served outside the mount path.
    let mut root = cfg.clone();
    root.path = "/".into();
    let mut one_try = opts;
    one_try.backoff.max_attempts = 0;
    assert!(matches!(
        SignalingClient::connect(root, one_try).await.unwrap_err(),
        SignalingError::ReconnectExhausted { .. }
    ));
    c.close().await;
    h.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn concurrent_limit_is_enforced() {
    let opts = BrokerOptions {
        concurrent_limit: 2,
        ..BrokerOptions::default()
    };
    let (h, task) = Broker::bind(loopback(), opts).await.unwrap();
    let (a, _ea) = SignalingClient::connect(h.client_config(), quick_opts())
        .await
        .unwrap();
    let (b, _eb) = SignalingClient::connect(h.client_config(), quick_opts())
        .await
        .unwrap();
    let err = SignalingClient::connect(h.client_config(), quick_opts())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SignalingError::Server {
            msg: "Server has reached its concurrent user limit".into()
        }
    );
    b.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (c, _ec) = SignalingClient::connect(h.client_config(), quick_opts())
        .await
        .unwrap();
    a.close().await;
    c.close().await;
    h.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn oversize_message_closes_only_that_socket() {
    let opts = BrokerOptions {
        max_message_size: 64 * 1024,
        ..BrokerOptions::default()
    };
    let (h, task) = Broker::bind(loopback(), opts).await.unwrap();
    let port = h.local_addr().port();
    let (b, mut eb) = SignalingClient::connect(h.client_config(), quick_opts())
        .await
        .unwrap();
    let mut raw = raw_ws(port, "key=peerjs&id=big&token=t").await;
    assert_eq!(
        raw_next_text(&mut raw, 5).await.as_deref(),
        Some(r#"{"type":"OPEN"}"#)
    );
    let huge = format!(
        r#"{{"type":"OFFER","payload":{{"pad":"{}"}},"dst":"{}"}}"#,
        "x".repeat(100 * 1024),
        b.id()
    );
    let _ = futures_util::SinkExt::send(
        &mut raw,
        tokio_tungstenite::tungstenite::Message::Text(huge),
    )
    .await;
    assert_eq!(
        raw_next_text(&mut raw, 5).await,
        None,
        "oversize sender is cut off"
    );
    // The id is released and nothing reached the destination.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = ConnectOptions {
        id: Some("big".into()),
        token: Some("other".into()),
        ..quick_opts()
    };
    let (c, _ec) = SignalingClient::connect(h.client_config(), again)
        .await
        .unwrap();
    let evs = events_for(&mut eb, Duration::from_millis(300)).await;
    assert!(evs.is_empty(), "{evs:?}");
    c.close().await;
    b.close().await;
    h.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_drops_clients_and_finishes() {
    let (h, task) = Broker::bind(loopback(), BrokerOptions::default())
        .await
        .unwrap();
    let mut opts = quick_opts();
    opts.backoff.max_attempts = 1;
    let (_a, mut ea) = SignalingClient::connect(h.client_config(), opts)
        .await
        .unwrap();
    h.shutdown();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("broker task finishes")
        .unwrap()
        .unwrap();
    assert_eq!(next_event(&mut ea, 5).await, SignalingEvent::Disconnected);
    assert!(matches!(
        next_event(&mut ea, 5).await,
        SignalingEvent::Failed(SignalingError::ReconnectExhausted { .. })
    ));
}
