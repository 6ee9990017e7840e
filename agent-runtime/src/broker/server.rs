//! The axum shell around [`Realm`]: HTTP routes, WebSocket sockets, sweep timers, shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::realm::{Action, ConnId, Realm, RealmConfig, WsParams};
use super::BrokerOptions;
use crate::signaling::normalize_path;

/// What a socket task is told to do.
#[derive(Debug)]
enum Out {
    Text(String),
    Close,
}

struct Core {
    realm: Realm,
    sockets: HashMap<ConnId, mpsc::UnboundedSender<Out>>,
}

pub(crate) struct Shared {
    core: Mutex<Core>,
    next_conn: AtomicU64,
    opts: BrokerOptions,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Shared {
    pub(crate) fn new(opts: BrokerOptions, cancel: CancellationToken) -> Arc<Self> {
        let realm = Realm::new(RealmConfig {
            key: opts.key.clone(),
            expire_timeout: opts.expire_timeout,
            alive_timeout: opts.alive_timeout,
            concurrent_limit: opts.concurrent_limit,
        });
        Arc::new(Shared {
            core: Mutex::new(Core {
                realm,
                sockets: HashMap::new(),
            }),
            next_conn: AtomicU64::new(1),
            opts,
            cancel,
            tracker: TaskTracker::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave the realm half-updated in a way that
        // matters more than stopping the broker would; keep serving.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }
}

impl Core {
    fn dispatch(&mut self, actions: Vec<Action>) {
        for action in actions {
            let (conn, out) = match action {
                Action::Send { conn, frame } => (conn, Out::Text(frame.to_json())),
                Action::Close { conn } => (conn, Out::Close),
            };
            if let Some(tx) = self.sockets.get(&conn) {
                let _ = tx.send(out);
            }
        }
    }
}

/// Builds the router: `GET {path}`, `GET {path}{key}/id`, `GET {path}{key}/peers`,
/// WebSocket `{path}peerjs`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let path = normalize_path(&shared.opts.path);
    let mut app = Router::new()
        .route(&path, get(info))
        .route(&format!("{path}{{key}}/id"), get(new_id))
        .route(&format!("{path}{{key}}/peers"), get(peers))
        .route(&format!("{path}peerjs"), get(ws_upgrade));
    if path != "/" {
        app = app.route(path.trim_end_matches('/'), get(info));
    }
    app.layer(axum::middleware::from_fn(cors))
        .with_state(shared)
}

/// Reflects the request origin, like peerjs-server's `cors({origin: true})`, so browser pages
/// on another origin can fetch ids.
async fn cors(req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS;
    let req_headers = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut resp = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
        );
        if let Some(h) = req_headers {
            r.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h);
        }
        r
    } else {
        next.run(req).await
    };
    if let Some(o) = origin {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

async fn info() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "name": "kibitz-agent broker",
        "description": "A PeerJS-compatible broker embedded in kibitz-agent.",
        "website": "https://kibitz.chat/"
    }))
}

async fn new_id(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let id = shared.lock().realm.generate_id();
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], id)
}

async fn peers(State(shared): State<Arc<Shared>>) -> Response {
    if shared.opts.allow_discovery {
        axum::Json(shared.lock().realm.client_ids()).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn ws_upgrade(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let params = WsParams::from_query(query.as_deref().unwrap_or(""));
    let max = shared.opts.max_message_size;
    let tracker = shared.tracker.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| tracker.track_future(serve_socket(shared, socket, params)))
}

async fn serve_socket(shared: Arc<Shared>, mut socket: WebSocket, params: WsParams) {
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    {
        let mut core = shared.lock();
        core.sockets.insert(conn, tx);
        let actions = core
            .realm
            .connect(tokio::time::Instant::now(), conn, params);
        core.dispatch(actions);
    }
    // Write the registration answer (OPEN / ERROR / ID-TAKEN and queued frames) before reading
    // anything, so it precedes the pong to a client's first ping.
    let mut open = true;
    while let Ok(out) = rx.try_recv() {
        if !write(&mut socket, out).await {
            open = false;
            break;
        }
    }
    while open {
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            out = rx.recv() => match out {
                Some(out) => open = write(&mut socket, out).await,
                None => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let mut core = shared.lock();
                    let actions = core.realm.message(tokio::time::Instant::now(), conn, text.as_bytes());
                    core.dispatch(actions);
                }
                Some(Ok(Message::Binary(data))) => {
                    // `ws` hands binary frames to JSON.parse too.
                    let mut core = shared.lock();
                    let actions = core.realm.message(tokio::time::Instant::now(), conn, &data);
                    core.dispatch(actions);
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(conn, error = %e, "broker socket error");
                    break;
                }
            },
        }
    }
    let mut core = shared.lock();
    core.sockets.remove(&conn);
    core.realm.disconnect(conn);
}

/// Writes one instruction; `false` when the socket is done.
async fn write(socket: &mut WebSocket, out: Out) -> bool {
    match out {
        Out::Text(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Out::Close => {
            let _ = socket.send(Message::Close(None)).await;
            false
        }
    }
}

/// Runs the expiry and liveness sweeps until cancelled (tokio time: works on a paused clock).
pub(crate) async fn sweeps(shared: Arc<Shared>) {
    let mut expire = tokio::time::interval(shared.opts.cleanup_interval);
    let mut alive = tokio::time::interval(shared.opts.check_interval);
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            now = expire.tick() => {
                let mut core = shared.lock();
                let actions = core.realm.expire_messages(now);
                core.dispatch(actions);
            }
            now = alive.tick() => {
                let mut core = shared.lock();
                let actions = core.realm.check_alive(now);
                core.dispatch(actions);
            }
        }
    }
}

/// Serves `listener` until `cancel` fires, then waits for every socket task to finish.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let app = router(shared.clone());
    shared.tracker().spawn(sweeps(shared.clone()));
    let cancel = shared.cancel.clone();
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    shared.cancel.cancel();
    shared.tracker().close();
    shared.tracker().wait().await;
    res
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn params(id: &str) -> WsParams {
        WsParams {
            key: Some("peerjs".into()),
            id: Some(id.into()),
            token: Some("t".into()),
        }
    }

    fn texts(rx: &mut mpsc::UnboundedReceiver<Out>) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(o) = rx.try_recv() {
            v.push(match o {
                Out::Text(t) => t,
                Out::Close => "<close>".to_owned(),
            });
        }
        v
    }

    #[tokio::test(start_paused = true)]
    async fn sweeps_expire_and_drop_on_tokio_time() {
        let opts = BrokerOptions {
            expire_timeout: Duration::from_secs(5),
            alive_timeout: Duration::from_secs(20),
            ..BrokerOptions::default()
        };
        let shared = Shared::new(opts, CancellationToken::new());
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        {
            let mut core = shared.lock();
            core.sockets.insert(1, tx1);
            core.sockets.insert(2, tx2);
            let now = tokio::time::Instant::now();
            let a = core.realm.connect(now, 1, params("a"));
            core.dispatch(a);
            let a = core.realm.connect(now, 2, params("b"));
            core.dispatch(a);
            let a = core
                .realm
                .message(now, 1, br#"{"type":"OFFER","payload":{},"dst":"ghost"}"#);
            core.dispatch(a);
        }
        assert_eq!(texts(&mut rx1), [r#"{"type":"OPEN"}"#]);
        assert_eq!(texts(&mut rx2), [r#"{"type":"OPEN"}"#]);
        let task = tokio::spawn(sweeps(shared.clone()));

        tokio::time::sleep(Duration::from_millis(4900)).await;
        assert!(texts(&mut rx1).is_empty());
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            texts(&mut rx1),
            [r#"{"type":"EXPIRE","src":"ghost","dst":"a"}"#]
        );

        // "a" heartbeats every 5 s, "b" stays silent and is dropped after 20 s.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let mut core = shared.lock();
            let now = tokio::time::Instant::now();
            let a = core.realm.message(now, 1, br#"{"type":"HEARTBEAT"}"#);
            core.dispatch(a);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(texts(&mut rx2), ["<close>"]);
        assert!(texts(&mut rx1).is_empty());
        assert!(shared.lock().realm.has_client("a"));
        assert!(!shared.lock().realm.has_client("b"));

        shared.cancel.cancel();
        task.await.unwrap();
    }
}
