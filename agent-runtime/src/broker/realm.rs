//! Sans-I/O broker core: who holds which id, relaying, offline queues, expiry and the liveness
//! sweep — the behaviour of peerjs-server's realm, WebSocket server and message handlers,
//! driven by explicit `now` values and answered with [`Action`]s.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::RngCore;
use tokio::time::Instant;

use crate::signaling::{ClientFrame, FrameType, ServerFrame};

/// peerjs-server's `ERROR` messages.
pub mod errors {
    /// Wrong `key` query parameter.
    pub const INVALID_KEY: &str = "Invalid key provided";
    /// `id`, `token` or `key` missing from the WebSocket URL.
    pub const INVALID_WS_PARAMETERS: &str = "No id, token, or key supplied to websocket server";
    /// Too many registered clients.
    pub const CONNECTION_LIMIT_EXCEED: &str = "Server has reached its concurrent user limit";
}

/// Identifies one accepted WebSocket.
pub type ConnId = u64;

/// What the I/O shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `frame` as a text frame on `conn`.
    Send {
        /// The socket.
        conn: ConnId,
        /// The frame.
        frame: ServerFrame,
    },
    /// Close `conn` (after the frames queued before it).
    Close {
        /// The socket.
        conn: ConnId,
    },
}

/// Limits and timings of the realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmConfig {
    /// The accepted API key.
    pub key: String,
    /// How long a queued message waits for its destination before `EXPIRE` is sent back.
    pub expire_timeout: Duration,
    /// How long a client may stay silent (no `HEARTBEAT`) before it is dropped.
    pub alive_timeout: Duration,
    /// Most registered ids at once.
    pub concurrent_limit: usize,
}

/// The WebSocket query parameters (`key`, `id`, `token`); empty counts as missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsParams {
    /// `key=`.
    pub key: Option<String>,
    /// `id=`.
    pub id: Option<String>,
    /// `token=`.
    pub token: Option<String>,
}

impl WsParams {
    /// Parses a raw query string; a repeated name keeps its last value (like
    /// `Object.fromEntries(URLSearchParams)`).
    pub fn from_query(query: &str) -> Self {
        let mut p = WsParams::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "key" => p.key = v,
                "id" => p.id = v,
                "token" => p.token = v,
                _ => {}
            }
        }
        p
    }
}

#[derive(Debug)]
struct Client {
    token: String,
    socket: Option<ConnId>,
    last_ping: Instant,
}

#[derive(Debug)]
struct Queue {
    last_read_at: Instant,
    messages: Vec<ServerFrame>,
}

/// The broker's state.
#[derive(Debug)]
pub struct Realm {
    cfg: RealmConfig,
    clients: HashMap<String, Client>,
    /// Which id each live socket speaks for (a replaced socket keeps speaking for its id).
    conns: HashMap<ConnId, String>,
    queues: HashMap<String, Queue>,
}

/// A random UUID v4, lowercase and hyphenated.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Realm {
    /// An empty realm.
    pub fn new(cfg: RealmConfig) -> Self {
        Realm {
            cfg,
            clients: HashMap::new(),
            conns: HashMap::new(),
            queues: HashMap::new(),
        }
    }

    /// A fresh UUID v4 not currently registered (`GET …/id`).
    pub fn generate_id(&self) -> String {
        loop {
            let id = uuid_v4();
            if !self.clients.contains_key(&id) {
                return id;
            }
        }
    }

    /// Registered ids.
    pub fn client_ids(&self) -> Vec<String> {
        self.clients.keys().cloned().collect()
    }

    /// Whether `id` is registered.
    pub fn has_client(&self, id: &str) -> bool {
        self.clients.contains_key(id)
    }

    /// Number of frames queued for `id`.
    pub fn queued_for(&self, id: &str) -> usize {
        self.queues.get(id).map_or(0, |q| q.messages.len())
    }

    /// A socket `conn` opened with `params`.
    pub fn connect(&mut self, now: Instant, conn: ConnId, params: WsParams) -> Vec<Action> {
        let mut out = Vec::new();
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let (Some(id), Some(token), Some(key)) = (
            nonempty(params.id),
            nonempty(params.token),
            nonempty(params.key),
        ) else {
            error_and_close(&mut out, conn, errors::INVALID_WS_PARAMETERS);
            return out;
        };
        if key != self.cfg.key {
            error_and_close(&mut out, conn, errors::INVALID_KEY);
            return out;
        }
        if let Some(client) = self.clients.get(&id) {
            if client.token != token {
                out.push(Action::Send {
                    conn,
                    frame: ServerFrame::id_taken(),
                });
                out.push(Action::Close { conn });
                return out;
            }
            // Same id and token while the old socket is still known: re-attach, no OPEN.
            tracing::debug!(%id, conn, "re-attaching id to a new socket");
        } else {
            if self.clients.len() >= self.cfg.concurrent_limit {
                error_and_close(&mut out, conn, errors::CONNECTION_LIMIT_EXCEED);
                return out;
            }
            self.clients.insert(
                id.clone(),
                Client {
                    token,
                    socket: None,
                    last_ping: now,
                },
            );
            out.push(Action::Send {
                conn,
                frame: ServerFrame::open(),
            });
        }
        if let Some(client) = self.clients.get_mut(&id) {
            client.socket = Some(conn);
        }
        self.conns.insert(conn, id.clone());
        // Deliver what waited for this id.
        if let Some(queue) = self.queues.remove(&id) {
            for frame in queue.messages {
                self.transmit_at(now, &mut out, frame);
            }
        }
        out
    }

    /// A text (or binary) message arrived on `conn`. Malformed input is dropped.
    pub fn message(&mut self, now: Instant, conn: ConnId, data: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(src) = self.conns.get(&conn).cloned() else {
            return out;
        };
        let frame = match ClientFrame::decode(data) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(%src, error = %e, "dropping malformed client frame");
                return out;
            }
        };
        match frame.kind {
            FrameType::Heartbeat => {
                if let Some(c) = self.clients.get_mut(&src) {
                    c.last_ping = now;
                }
            }
            FrameType::Offer
            | FrameType::Answer
            | FrameType::Candidate
            | FrameType::Leave
            | FrameType::Expire => {
                let relayed = ServerFrame {
                    kind: frame.kind,
                    src: Some(src),
                    dst: frame.dst.filter(|d| !d.is_empty()),
                    payload: frame.payload,
                };
                self.transmit_at(now, &mut out, relayed);
            }
            FrameType::Open | FrameType::IdTaken | FrameType::Error | FrameType::InvalidKey => {
                tracing::debug!(%src, kind = %frame.kind, "ignoring server-only frame type from client");
            }
        }
        out
    }

    /// Socket `conn` closed.
    pub fn disconnect(&mut self, conn: ConnId) {
        let Some(id) = self.conns.remove(&conn) else {
            return;
        };
        if self.clients.get(&id).and_then(|c| c.socket) == Some(conn) {
            self.clients.remove(&id);
            tracing::debug!(%id, conn, "client left");
        }
    }

    fn transmit_at(&mut self, now: Instant, out: &mut Vec<Action>, frame: ServerFrame) {
        let dst = frame.dst.clone();
        if let Some(dst_id) = dst.as_deref() {
            if let Some(client) = self.clients.get(dst_id) {
                match client.socket {
                    Some(conn) => out.push(Action::Send { conn, frame }),
                    None => {
                        // Registered without a socket: the peer is dead; tell the sender.
                        self.clients.remove(dst_id);
                        if let Some(src) = frame.src {
                            let leave = ServerFrame::notice(FrameType::Leave, dst_id, src);
                            self.transmit_at(now, out, leave);
                        }
                    }
                }
                return;
            }
        }
        match (frame.kind, dst) {
            (FrameType::Leave | FrameType::Expire, Some(_)) => {}
            (FrameType::Leave, None) => {
                // LEAVE without a destination unregisters the sender (peerjs-server).
                if let Some(src) = frame.src.as_deref() {
                    self.clients.remove(src);
                }
            }
            (_, Some(dst_id)) => {
                self.queues
                    .entry(dst_id)
                    .or_insert_with(|| Queue {
                        last_read_at: now,
                        messages: Vec::new(),
                    })
                    .messages
                    .push(frame);
            }
            (_, None) => {}
        }
    }

    /// The periodic expiry sweep (peerjs-server runs it every `cleanup_out_msgs`, 1000 ms):
    /// queues older than `expire_timeout` are dropped and each distinct sender gets one `EXPIRE`
    /// per destination.
    pub fn expire_messages(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let due: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| {
                now.saturating_duration_since(q.last_read_at) >= self.cfg.expire_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut seen = HashSet::new();
        for id in due {
            let Some(queue) = self.queues.remove(&id) else {
                continue;
            };
            for msg in queue.messages {
                let (Some(src), Some(dst)) = (msg.src, msg.dst) else {
                    continue;
                };
                if seen.insert((src.clone(), dst.clone())) {
                    let expire = ServerFrame::notice(FrameType::Expire, dst, src);
                    self.transmit_at(now, &mut out, expire);
                }
            }
        }
        out
    }

    /// The periodic liveness sweep (peerjs-server: every 300 ms): clients silent for
    /// `alive_timeout` are unregistered and their sockets closed. No `LEAVE` is sent.
    pub fn check_alive(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let dead: Vec<String> = self
            .clients
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_ping) >= self.cfg.alive_timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            if let Some(client) = self.clients.remove(&id) {
                tracing::debug!(%id, "dropping silent client");
                if let Some(conn) = client.socket {
                    out.push(Action::Close { conn });
                }
            }
            self.queues.remove(&id);
        }
        out
    }
}

fn error_and_close(out: &mut Vec<Action>, conn: ConnId, msg: &str) {
    out.push(Action::Send {
        conn,
        frame: ServerFrame::error(msg),
    });
    out.push(Action::Close { conn });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> RealmConfig {
        RealmConfig {
            key: "peerjs".into(),
            expire_timeout: Duration::from_millis(5000),
            alive_timeout: Duration::from_millis(60_000),
            concurrent_limit: 3,
        }
    }

    fn params(id: &str, token: &str) -> WsParams {
        WsParams {
            key: Some("peerjs".into()),
            id: Some(id.into()),
            token: Some(token.into()),
        }
    }

    fn sends_to(actions: &[Action], conn: ConnId) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn: c, frame } if *c == conn => Some(frame.to_json()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn register_sends_open() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        let a = r.connect(t0, 1, params("a", "t"));
        assert_eq!(
            a,
            vec![Action::Send {
                conn: 1,
                frame: ServerFrame::open()
            }]
        );
        assert!(r.has_client("a"));
    }

    #[test]
    fn bad_params_and_key() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        let a = r.connect(
            t0,
            1,
            WsParams {
                token: None,
                ..params("a", "t")
            },
        );
        assert_eq!(
            sends_to(&a, 1),
            [
                r#"{"type":"ERROR","payload":{"msg":"No id, token, or key supplied to websocket server"}}"#
            ]
        );
        assert_eq!(a.last(), Some(&Action::Close { conn: 1 }));
        let a = r.connect(
            t0,
            2,
            WsParams {
                key: Some("nope".into()),
                ..params("a", "t")
            },
        );
        assert_eq!(
            sends_to(&a, 2),
            [r#"{"type":"ERROR","payload":{"msg":"Invalid key provided"}}"#]
        );
        let a = r.connect(
            t0,
            3,
            WsParams {
                id: Some(String::new()),
                ..params("a", "t")
            },
        );
        assert!(sends_to(&a, 3)[0].contains("No id, token, or key"));
        assert!(r.client_ids().is_empty());
    }

    #[test]
    fn id_taken_with_other_token_reattach_with_same() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t1"));
        let a = r.connect(t0, 2, params("a", "t2"));
        assert_eq!(
            sends_to(&a, 2),
            [r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#]
        );
        assert_eq!(a.last(), Some(&Action::Close { conn: 2 }));
        // Same token: silently re-attached to the new socket.
        let a = r.connect(t0, 3, params("a", "t1"));
        assert!(a.is_empty(), "{a:?}");
        r.connect(t0, 4, params("b", "tb"));
        let a = r.message(t0, 4, br#"{"type":"OFFER","payload":{"x":1},"dst":"a"}"#);
        assert_eq!(
            sends_to(&a, 3),
            [r#"{"type":"OFFER","src":"b","dst":"a","payload":{"x":1}}"#]
        );
        // The replaced socket closing does not unregister the id.
        r.disconnect(1);
        assert!(r.has_client("a"));
        r.disconnect(3);
        assert!(!r.has_client("a"));
    }

    #[test]
    fn relay_adds_src_and_keeps_payload() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t"));
        r.connect(t0, 2, params("b", "t"));
        let a = r.message(
            t0,
            1,
            br#"{"type":"CANDIDATE","payload":{"candidate":{"candidate":"c"},"type":"data","connectionId":"dc_1"},"dst":"b","src":"forged"}"#,
        );
        assert_eq!(
            sends_to(&a, 2),
            [
                r#"{"type":"CANDIDATE","src":"a","dst":"b","payload":{"candidate":{"candidate":"c"},"type":"data","connectionId":"dc_1"}}"#
            ]
        );
    }

    #[test]
    fn queued_until_destination_registers() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t"));
        assert!(r
            .message(t0, 1, br#"{"type":"OFFER","payload":{"n":1},"dst":"b"}"#)
            .is_empty());
        assert!(r
            .message(
                t0,
                1,
                br#"{"type":"CANDIDATE","payload":{"n":2},"dst":"b"}"#
            )
            .is_empty());
        assert_eq!(r.queued_for("b"), 2);
        let a = r.connect(t0 + Duration::from_millis(100), 2, params("b", "t"));
        assert_eq!(
            sends_to(&a, 2),
            [
                r#"{"type":"OPEN"}"#.to_owned(),
                r#"{"type":"OFFER","src":"a","dst":"b","payload":{"n":1}}"#.to_owned(),
                r#"{"type":"CANDIDATE","src":"a","dst":"b","payload":{"n":2}}"#.to_owned(),
            ]
        );
        assert_eq!(r.queued_for("b"), 0);
    }

    #[test]
    fn expire_once_per_pair_after_timeout() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t"));
        r.message(t0, 1, br#"{"type":"OFFER","payload":{},"dst":"ghost"}"#);
        r.message(t0, 1, br#"{"type":"CANDIDATE","payload":{},"dst":"ghost"}"#);
        assert!(r
            .expire_messages(t0 + Duration::from_millis(4999))
            .is_empty());
        assert_eq!(r.queued_for("ghost"), 2);
        let a = r.expire_messages(t0 + Duration::from_millis(5000));
        assert_eq!(
            sends_to(&a, 1),
            [r#"{"type":"EXPIRE","src":"ghost","dst":"a"}"#]
        );
        assert_eq!(r.queued_for("ghost"), 0);
        assert!(r.expire_messages(t0 + Duration::from_secs(20)).is_empty());
    }

    #[test]
    fn leave_and_expire_to_absent_peers_are_dropped_and_leave_without_dst_unregisters() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t"));
        assert!(r
            .message(t0, 1, br#"{"type":"LEAVE","dst":"ghost"}"#)
            .is_empty());
        assert!(r
            .message(t0, 1, br#"{"type":"EXPIRE","dst":"ghost"}"#)
            .is_empty());
        assert_eq!(r.queued_for("ghost"), 0);
        r.connect(t0, 2, params("b", "t"));
        let a = r.message(t0, 1, br#"{"type":"LEAVE","dst":"b"}"#);
        assert_eq!(sends_to(&a, 2), [r#"{"type":"LEAVE","src":"a","dst":"b"}"#]);
        assert!(r.message(t0, 1, br#"{"type":"LEAVE"}"#).is_empty());
        assert!(!r.has_client("a"));
    }

    #[test]
    fn disconnect_sends_no_leave() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t"));
        r.connect(t0, 2, params("b", "t"));
        r.disconnect(1);
        assert!(!r.has_client("a"));
        // Messages to the departed id now queue (and will expire).
        assert!(r
            .message(t0, 2, br#"{"type":"OFFER","payload":{},"dst":"a"}"#)
            .is_empty());
        assert_eq!(r.queued_for("a"), 1);
    }

    #[test]
    fn heartbeat_keeps_alive_silence_drops() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t"));
        r.connect(t0, 2, params("b", "t"));
        let t1 = t0 + Duration::from_secs(50);
        r.message(t1, 1, br#"{"type":"HEARTBEAT"}"#);
        let a = r.check_alive(t0 + Duration::from_secs(60));
        assert_eq!(a, vec![Action::Close { conn: 2 }]);
        assert!(r.has_client("a"));
        assert!(!r.has_client("b"));
        assert!(r.check_alive(t1 + Duration::from_millis(59_999)).is_empty());
        assert_eq!(
            r.check_alive(t1 + Duration::from_secs(60)),
            vec![Action::Close { conn: 1 }]
        );
    }

    #[test]
    fn concurrent_limit() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        for (conn, id) in [(1, "a"), (2, "b"), (3, "c")] {
            r.connect(t0, conn, params(id, "t"));
        }
        let a = r.connect(t0, 4, params("d", "t"));
        assert_eq!(
            sends_to(&a, 4),
            [
                r#"{"type":"ERROR","payload":{"msg":"Server has reached its concurrent user limit"}}"#
            ]
        );
        assert!(!r.has_client("d"));
    }

    #[test]
    fn malformed_client_frames_are_dropped() {
        let t0 = Instant::now();
        let mut r = Realm::new(cfg());
        r.connect(t0, 1, params("a", "t"));
        for bad in [
            &b"not json"[..],
            b"null",
            b"3",
            br#"{"type":"OPEN"}"#,
            br#"{"type":"BOGUS","dst":"a"}"#,
            br#"{"type":"OFFER","dst":5}"#,
            br#"{"type":"OFFER"}"#,
        ] {
            assert!(r.message(t0, 1, bad).is_empty());
        }
        assert!(r
            .message(t0, 99, br#"{"type":"OFFER","dst":"a"}"#)
            .is_empty());
        assert!(r.has_client("a"));
    }

    #[test]
    fn ws_params_parse_like_url_search_params() {
        let p = WsParams::from_query("key=peerjs&id=a%20b&token=t&id=c&version=1.5.5");
        assert_eq!(p.id.as_deref(), Some("c"));
        assert_eq!(p.key.as_deref(), Some("peerjs"));
        assert_eq!(p.token.as_deref(), Some("t"));
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert!(crate::signaling::validate_id(&u));
        assert_ne!(u, uuid_v4());
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20)) {
            let t0 = Instant::now();
            let mut r = Realm::new(cfg());
            r.connect(t0, 1, params("a", "t"));
            for m in &msgs {
                let _ = r.message(t0, 1, m);
            }
            let _ = r.expire_messages(t0 + Duration::from_secs(10));
            let _ = r.check_alive(t0 + Duration::from_secs(100));
        }
    }
}
