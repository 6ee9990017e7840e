//! A missing prerequisite is a loud error naming the install script, never a skip.

use kibitz_test_harness::{Browser, BrowserOptions, PeerJsServer};

#[tokio::test]
async fn missing_chromium_is_an_error_naming_the_install_script() {
    let opts = BrowserOptions {
        chromium: Some("no/such/dir/chromium".into()),
        ..BrowserOptions::default()
    };
    let err = match Browser::launch(opts).await {
        Ok(_) => panic!("launch must fail without chromium"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("chromium not found"), "{err}");
    assert!(err.contains("scripts/install-test-deps.sh"), "{err}");
}

#[tokio::test]
async fn broker_starts_on_loopback_and_serves_ids() {
    let broker = PeerJsServer::start().await.expect("npm peer broker");
    assert_eq!(broker.host(), "127.0.0.1");
    assert_ne!(broker.port(), 0);
    // GET /peerjs/id answers a fresh id, like the PeerJS client's first request.
    let mut stream = tokio::net::TcpStream::connect((broker.host(), broker.port()))
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(b"GET /peerjs/id HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let id = body.rsplit("\r\n\r\n").next().unwrap_or_default();
    assert_eq!(id.len(), 36, "a v4 UUID: {body}");
}
