//! In-memory harness for the room state machines: one authority, several participants, zero
//! latency, a virtual clock that jumps from deadline to deadline.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use agent_runtime::room::{
    AuthorityEvent, AuthorityOutput, AuthorityState, JoinParams, ParticipantEvent,
    ParticipantOptions, ParticipantOutput, ParticipantState,
};
use agent_runtime::wire::presence::{AuthorityMsg, ClientMsg};
use agent_runtime::wire::Value;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn agent_meta() -> Value {
    Value::map([
        ("role", Value::from("agent")),
        ("backend", Value::from("local:whisper")),
        (
            "~kbz",
            Value::map([("v", Value::from("0.1.0")), ("p", Value::Int(1))]),
        ),
    ])
}

pub fn params(name: &str, voice_id: &str, token: &str) -> JoinParams {
    JoinParams {
        name: name.into(),
        avatar: String::new(),
        cam: false,
        voice_id: voice_id.into(),
        token: token.into(),
        meta: Some(agent_meta()),
    }
}

pub struct Peer {
    pub conn: String,
    pub state: ParticipantState,
    /// Link up: messages flow both ways.
    pub up: bool,
    /// Frozen/dead: its outputs are discarded (it stays "connected" to the authority).
    pub mute: bool,
    pub sent: Vec<(Instant, ClientMsg)>,
    pub received: Vec<(Instant, AuthorityMsg)>,
    pub events: Vec<(Instant, ParticipantEvent)>,
}

pub struct Net {
    pub t0: Instant,
    pub now: Instant,
    pub auth: AuthorityState,
    /// The authority is frozen/dead: its outputs are discarded.
    pub auth_mute: bool,
    pub auth_sent: Vec<(Instant, String, AuthorityMsg)>,
    pub auth_events: Vec<(Instant, AuthorityEvent)>,
    pub caps: Vec<(Instant, serde_json::Map<String, serde_json::Value>)>,
    pub peers: Vec<Peer>,
}

impl Net {
    pub fn new(t0: Instant, auth: AuthorityState) -> Self {
        Self {
            t0,
            now: t0,
            auth,
            auth_mute: false,
            auth_sent: Vec::new(),
            auth_events: Vec::new(),
            caps: Vec::new(),
            peers: Vec::new(),
        }
    }

    /// Adds a participant (link not yet open); returns its index.
    pub fn add_peer(&mut self, conn: &str) -> usize {
        self.peers.push(Peer {
            conn: conn.into(),
            state: ParticipantState::new(self.now, ParticipantOptions::default()),
            up: false,
            mute: false,
            sent: Vec::new(),
            received: Vec::new(),
            events: Vec::new(),
        });
        self.peers.len() - 1
    }

    /// Opens peer `i`'s presence link (authority `on_connect`, participant `link_opened`).
    pub fn open(&mut self, i: usize, fp: Option<&str>) {
        let now = self.now;
        let conn = self.peers[i].conn.clone();
        self.peers[i].up = true;
        self.auth.on_connect(now, &conn, fp.map(str::to_owned));
        self.peers[i].state.link_opened(now);
        self.pump();
    }

    /// Closes peer `i`'s presence link on both sides.
    pub fn close(&mut self, i: usize) {
        let now = self.now;
        let conn = self.peers[i].conn.clone();
        self.peers[i].up = false;
        self.peers[i].state.link_closed(now);
        self.auth.on_disconnect(now, &conn);
        self.pump();
    }

    /// Injects a raw client message from `conn` (a peer not driven by a ParticipantState).
    pub fn raw(&mut self, conn: &str, msg: ClientMsg) {
        let now = self.now;
        self.auth.on_message(now, conn, &msg);
        self.pump();
    }

    /// Delivers every queued output until the system is quiet.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.auth.poll_output() {
                moved = true;
                if self.auth_mute {
                    continue;
                }
                match o {
                    AuthorityOutput::Send { conn, msg } => {
                        self.auth_sent.push((self.now, conn.clone(), msg.clone()));
                        if let Some(p) = self.peers.iter_mut().find(|p| p.conn == conn && p.up) {
                            p.received.push((self.now, msg.clone()));
                            p.state.on_message(self.now, &msg);
                        }
                    }
                    AuthorityOutput::Event(e) => self.auth_events.push((self.now, e)),
                    AuthorityOutput::BroadcastCaps { grants } => self.caps.push((self.now, grants)),
                }
            }
            for i in 0..self.peers.len() {
                while let Some(o) = self.peers[i].state.poll_output() {
                    moved = true;
                    let p = &mut self.peers[i];
                    match o {
                        ParticipantOutput::Send(m) => {
                            if p.mute || !p.up {
                                continue;
                            }
                            p.sent.push((self.now, m.clone()));
                            let conn = p.conn.clone();
                            self.auth.on_message(self.now, &conn, &m);
                        }
                        ParticipantOutput::Event(e) => p.events.push((self.now, e)),
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut all: Vec<Instant> = self
            .peers
            .iter()
            .filter_map(|p| p.state.poll_timeout())
            .collect();
        all.extend(self.auth.poll_timeout());
        all.into_iter().min()
    }

    /// Runs the virtual clock to `t0 + at`, firing every deadline exactly when it is due.
    pub fn run_until(&mut self, at: Duration) {
        let target = self.t0 + at;
        while let Some(next) = self.next_deadline().filter(|n| *n <= target) {
            self.now = self.now.max(next);
            let now = self.now;
            if self.auth.poll_timeout().is_some_and(|t| t <= now) {
                self.auth.handle_timeout(now);
            }
            for p in &mut self.peers {
                if p.state.poll_timeout().is_some_and(|t| t <= now) {
                    p.state.handle_timeout(now);
                }
            }
            self.pump();
        }
        self.now = self.now.max(target);
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let at = self.now - self.t0 + d;
        self.run_until(at);
    }

    pub fn roster_ids(&self) -> Vec<String> {
        self.auth
            .roster()
            .members
            .into_iter()
            .map(|m| m.id)
            .collect()
    }

    /// Offsets (from t0) at which peer `i` sent messages matching `f`.
    pub fn sent_at(&self, i: usize, f: impl Fn(&ClientMsg) -> bool) -> Vec<Duration> {
        self.peers[i]
            .sent
            .iter()
            .filter(|(_, m)| f(m))
            .map(|(t, _)| *t - self.t0)
            .collect()
    }

    /// Offsets at which the authority sent `conn` messages matching `f`.
    pub fn auth_sent_at(&self, conn: &str, f: impl Fn(&AuthorityMsg) -> bool) -> Vec<Duration> {
        self.auth_sent
            .iter()
            .filter(|(_, c, m)| c == conn && f(m))
            .map(|(t, _, _)| *t - self.t0)
            .collect()
    }

    pub fn peer_events(&self, i: usize) -> Vec<ParticipantEvent> {
        self.peers[i]
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn auth_event_list(&self) -> Vec<AuthorityEvent> {
        self.auth_events.iter().map(|(_, e)| e.clone()).collect()
    }
}

pub fn is_voice_on(m: &ClientMsg) -> bool {
    matches!(m, ClientMsg::Voice(v) if v.on)
}

pub fn is_ping(m: &ClientMsg) -> bool {
    matches!(m, ClientMsg::Ping)
}
