//! Egress enforcement on loopback: declared origins work, everything else is refused before a
//! connection is made (checked with listeners that must see no connection).
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::io::ErrorKind;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::egress::{DenyReason, EgressClient, EgressError, EgressOptions};
use axum::extract::State;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Json, Router};
use capability_manifest::{verify_signed_manifest, Capability::*};
use serde_json::{json, Value};

use agent_support::{manifest_json, sign, verify_opts};

/// A listener that never answers; `connections()` counts what reached it.
struct Trap {
    listener: StdListener,
}

impl Trap {
    fn new() -> Trap {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Trap { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Connections that completed the TCP handshake so far (the kernel queues them even though
    /// nobody accepts, so a request that connected is visible here once it returned).
    fn connections(&self) -> usize {
        let mut n = 0;
        loop {
            match self.listener.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

struct Fixture {
    client: EgressClient,
    ok: u16,
    hits: Arc<AtomicUsize>,
    /// Declared as `http://localhost:<port>` only.
    by_name: Trap,
    /// Declared as `https://127.0.0.1:<port>` only.
    tls_only: Trap,
    /// Not declared at all.
    undeclared: Trap,
}

async fn fixture() -> Fixture {
    let by_name = Trap::new();
    let tls_only = Trap::new();
    let undeclared = Trap::new();
    let hits = Arc::new(AtomicUsize::new(0));
    let away = format!("http://127.0.0.1:{}/", undeclared.port());
    let app = Router::new()
        .route(
            "/",
            get(|State(hits): State<Arc<AtomicUsize>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .route(
            "/hop",
            get(move || async move { Redirect::temporary(&away) }),
        )
        .route("/hop-ok", get(|| async { Redirect::temporary("/") }))
        .route("/v1", post(|Json(v): Json<Value>| async move { Json(v) }))
        .with_state(Arc::clone(&hits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ok = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A signed manifest whose remote lanes declare exactly three origins.
    let ok_endpoint = format!("http://127.0.0.1:{ok}/v1");
    let name_endpoint = format!("http://localhost:{}/x", by_name.port());
    let tls_endpoint = format!("https://127.0.0.1:{}/", tls_only.port());
    let token = sign(&manifest_json(
        &[],
        &[
            (ReadChat, &ok_endpoint),
            (ReadRoster, &name_endpoint),
            (ReceiveDirected, &tls_endpoint),
        ],
    ));
    let signed = verify_signed_manifest(&token, &verify_opts()).unwrap();
    let client = EgressClient::from_manifest(
        &signed.manifest,
        EgressOptions {
            timeout: Some(Duration::from_secs(20)),
            ..EgressOptions::default()
        },
    )
    .unwrap();
    Fixture {
        client,
        ok,
        hits,
        by_name,
        tls_only,
        undeclared,
    }
}

fn assert_denied(r: Result<reqwest::Response, EgressError>, origin: &str, reason: DenyReason) {
    match r {
        Err(EgressError::Denied {
            origin: o,
            reason: why,
        }) => {
            assert_eq!((o.as_str(), why), (origin, reason));
        }
        Err(other) => panic!("expected a denial for {origin}, got {other:?}"),
        Ok(resp) => panic!("expected a denial for {origin}, got HTTP {}", resp.status()),
    }
}

#[tokio::test]
async fn declared_origin_works_and_the_allow_list_is_the_manifests() {
    let f = fixture().await;
    assert_eq!(
        f.client.allowed_origins(),
        vec![
            format!("http://127.0.0.1:{}", f.ok),
            format!("http://localhost:{}", f.by_name.port()),
            format!("https://127.0.0.1:{}", f.tls_only.port()),
        ]
    );
    let resp = f
        .client
        .get(&format!("http://127.0.0.1:{}/", f.ok))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    let echoed: Value = f
        .client
        .post(&format!("http://127.0.0.1:{}/v1", f.ok))
        .bearer_auth("secret")
        .json(&json!({"prompt": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echoed, json!({"prompt": "hi"}));
    // An uppercase scheme normalises to the declared origin.
    let resp = f
        .client
        .get(&format!("HTTP://127.0.0.1:{}/", f.ok))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(f.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn same_host_other_port_is_refused_without_connecting() {
    let f = fixture().await;
    let port = f.undeclared.port();
    let r = f
        .client
        .get(&format!("http://127.0.0.1:{port}/"))
        .send()
        .await;
    assert_denied(
        r,
        &format!("http://127.0.0.1:{port}"),
        DenyReason::Undeclared,
    );
    assert_eq!(f.undeclared.connections(), 0);
}

#[tokio::test]
async fn undeclared_host_is_refused_without_resolving_or_connecting() {
    let f = fixture().await;
    let port = f.undeclared.port();
    let r = f
        .client
        .get(&format!("http://elsewhere.invalid:{port}/"))
        .send()
        .await;
    assert_denied(
        r,
        &format!("http://elsewhere.invalid:{port}"),
        DenyReason::Undeclared,
    );
    assert_eq!(f.undeclared.connections(), 0);
}

#[tokio::test]
async fn other_scheme_is_refused_without_connecting() {
    let f = fixture().await;
    let port = f.tls_only.port();
    let r = f
        .client
        .get(&format!("http://127.0.0.1:{port}/"))
        .send()
        .await;
    assert_denied(
        r,
        &format!("http://127.0.0.1:{port}"),
        DenyReason::Undeclared,
    );
    let r = f
        .client
        .get(&format!("ftp://127.0.0.1:{port}/"))
        .send()
        .await;
    assert_denied(r, &format!("ftp://127.0.0.1:{port}"), DenyReason::Scheme);
    assert_eq!(f.tls_only.connections(), 0);
}

#[tokio::test]
async fn ip_literal_and_hostname_are_different_origins() {
    let f = fixture().await;
    // Declared by name, requested by IP literal.
    let port = f.by_name.port();
    let r = f
        .client
        .get(&format!("http://127.0.0.1:{port}/"))
        .send()
        .await;
    assert_denied(
        r,
        &format!("http://127.0.0.1:{port}"),
        DenyReason::Undeclared,
    );
    assert_eq!(f.by_name.connections(), 0);
    // Declared by IP literal, requested by name.
    let r = f
        .client
        .get(&format!("http://localhost:{}/", f.ok))
        .send()
        .await;
    assert_denied(
        r,
        &format!("http://localhost:{}", f.ok),
        DenyReason::Undeclared,
    );
    assert_eq!(f.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn uppercase_host_matches_and_really_connects() {
    // Positive control for the traps: an allowed request does show up as a connection.
    let f = fixture().await;
    let port = f.by_name.port();
    let r = f
        .client
        .get(&format!("http://LocalHost:{port}/x"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    // The trap never answers, so the request itself times out; what matters is that it left.
    assert!(matches!(r, Err(EgressError::Http(_))), "{r:?}");
    assert_eq!(f.by_name.connections(), 1);
}

#[tokio::test]
async fn userinfo_is_refused() {
    let f = fixture().await;
    let port = f.undeclared.port();
    // The classic trick: the declared origin as user info in front of another host.
    let r = f
        .client
        .get(&format!("http://127.0.0.1:{}@127.0.0.1:{port}/", f.ok))
        .send()
        .await;
    assert_denied(r, &format!("http://127.0.0.1:{port}"), DenyReason::UserInfo);
    assert_eq!(f.undeclared.connections(), 0);
    // Credentials in front of the declared origin itself.
    let r = f
        .client
        .get(&format!("http://user:pw@127.0.0.1:{}/", f.ok))
        .send()
        .await;
    assert_denied(
        r,
        &format!("http://127.0.0.1:{}", f.ok),
        DenyReason::UserInfo,
    );
    assert_eq!(f.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_are_checked_on_every_hop() {
    let f = fixture().await;
    let port = f.undeclared.port();
    let r = f
        .client
        .get(&format!("http://127.0.0.1:{}/hop", f.ok))
        .send()
        .await;
    assert_denied(r, &format!("http://127.0.0.1:{port}"), DenyReason::Redirect);
    assert_eq!(f.undeclared.connections(), 0);
    // A redirect within the declared origin is followed.
    let resp = f
        .client
        .get(&format!("http://127.0.0.1:{}/hop-ok", f.ok))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
}

#[test]
fn bad_declared_origins_and_urls_are_typed_errors() {
    assert!(matches!(
        EgressClient::new("t", ["https://a.example/path"], EgressOptions::default()),
        Err(EgressError::BadOrigin(_))
    ));
    let c = EgressClient::new("t", ["https://a.example"], EgressOptions::default()).unwrap();
    assert!(matches!(
        c.check("not a url"),
        Err(EgressError::InvalidUrl(_))
    ));
    assert!(c.check("https://A.EXAMPLE:443/v1?q=1").is_ok());
}

/// Collects `kibitz_agent::audit` events as `field=value` strings.
#[derive(Default, Clone)]
struct AuditLog(Arc<std::sync::Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for AuditLog {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "kibitz_agent::audit" {
            let mut f = Fields(format!("{} ", event.metadata().level()));
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_denial_writes_an_audit_line() {
    let c = EgressClient::new("Auditor", ["https://a.example"], EgressOptions::default()).unwrap();
    let log = AuditLog::default();
    tracing::subscriber::with_default(log.clone(), || {
        assert!(c.check("https://a.example/ok").is_ok());
        assert!(c.check("https://b.example/secret?token=x").is_err());
    });
    let lines = log.0.lock().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.starts_with("WARN "), "{line}");
    assert!(line.contains("agent=Auditor"), "{line}");
    assert!(line.contains("origin=https://b.example:443"), "{line}");
    assert!(line.contains("egress denied"), "{line}");
    // The path and query (which may hold secrets) are not logged.
    assert!(!line.contains("token"), "{line}");
}

proptest::proptest! {
    /// Whatever URL an agent passes, the check never panics, and anything it lets through has
    /// exactly a declared origin.
    #[test]
    fn the_check_never_panics_and_only_passes_declared_origins(
        scheme in "(https?|HTTPS?|ftp|file|data)",
        user in "(|[a-z]{1,3}(:[a-z]{1,3})?@)",
        host in "(a\\.example|A\\.EXAMPLE|b\\.example|127\\.0\\.0\\.1|localhost|a\\.example\\.|\\[::1\\])",
        port in "(|:443|:80|:8443|:0|:99999)",
        rest in "[ -~]{0,20}",
        junk in proptest::collection::vec(proptest::prelude::any::<char>(), 0..40),
    ) {
        let c = EgressClient::new(
            "p",
            ["https://a.example", "http://127.0.0.1:80"],
            EgressOptions::default(),
        )
        .unwrap();
        let url = format!("{scheme}://{user}{host}{port}/{rest}");
        if let Ok(u) = c.check(&url) {
            let origin = format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap(),
                u.port_or_known_default().unwrap()
            );
            proptest::prop_assert!(
                origin == "https://a.example:443" || origin == "http://127.0.0.1:80",
                "{url} passed as {origin}"
            );
            proptest::prop_assert!(u.username().is_empty() && u.password().is_none());
        }
        let junk: String = junk.into_iter().collect();
        let _ = c.check(&junk);
    }
}
