//! Data-mesh planning (kibitz-wire.md §5.1–5.2): who dials whom, drop grace, self-heal re-dials,
//! the `mh` keepalive, the `sig` stuck/dead-open watchdogs and graceful `bye`.
//!
//! Sans-I/O: the shell reports rosters and link lifecycle with `now`, and executes the returned
//! [`MeshAction`]s (dial/close a `sig` DataConnection, send a [`ControlMsg`] on it). Media
//! signalling (`m-sdp`, `m-ice`, …) is not planned here; it only counts as "received" traffic.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use crate::wire::control::ControlMsg;

use super::timers::{
    earliest, BYE_CLOSE_DELAY, DROP_GRACE, MAX_RECOVER, MESH_HEARTBEAT, REDIAL_DELAY, SIG_DEAD,
    SIG_STUCK,
};

/// JS `selfId < peerId`: UTF-16 code-unit order (byte order for ASCII ids).
pub fn should_initiate(self_id: &str, peer_id: &str) -> bool {
    self_id.encode_utf16().lt(peer_id.encode_utf16())
}

/// Media-health figures carried by `mh` (kbps).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MediaHealth {
    /// Inbound video kbps.
    pub v: f64,
    /// Inbound audio kbps.
    pub a: f64,
    /// Outbound video kbps.
    pub ov: f64,
    /// Outbound audio kbps.
    pub oa: f64,
}

impl MediaHealth {
    /// The `{t:'mh', v, a, ov, oa}` message.
    pub fn to_msg(self) -> ControlMsg {
        ControlMsg::Mh {
            v: self.v,
            a: self.a,
            ov: self.ov,
            oa: self.oa,
        }
    }
}

/// Mesh settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeshOptions {
    /// Send `{t:'cap',bulk:1}` on every `sig` open (default off: we don't speak bulk).
    pub advertise_bulk: bool,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum MeshAction {
    /// Open a reliable `sig` DataConnection to `peer` (its voiceId), closing any previous one.
    Dial {
        /// The peer's voiceId.
        peer: String,
    },
    /// Close every DataConnection to `peer`.
    Close {
        /// The peer's voiceId.
        peer: String,
    },
    /// Send a control message on `peer`'s `sig` link.
    SendControl {
        /// The peer's voiceId.
        peer: String,
        /// The message.
        msg: ControlMsg,
    },
    /// An event.
    Event(MeshEvent),
}

/// Mesh events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeshEvent {
    /// The peer said `bye`: drop its tile and media now.
    PeerLeft {
        /// The peer's voiceId.
        peer: String,
    },
    /// A stuck or dead-open `sig` link is being re-established (`attempt` of `MAX_RECOVER`).
    Recovering {
        /// The peer's voiceId.
        peer: String,
        /// 1-based attempt.
        attempt: u32,
    },
    /// The peer advertised `bulk`.
    BulkCapable {
        /// The peer's voiceId.
        peer: String,
    },
}

#[derive(Debug, Clone, Copy)]
struct SigLink {
    since: Instant,
    last_recv: Instant,
    open: bool,
}

impl SigLink {
    fn new(now: Instant) -> Self {
        Self {
            since: now,
            last_recv: now,
            open: false,
        }
    }
}

/// The data-mesh planner. See the module docs.
#[derive(Debug)]
pub struct MeshPlanner {
    self_id: String,
    opts: MeshOptions,
    present: Vec<String>,
    dialled: HashSet<String>,
    links: HashMap<String, SigLink>,
    redial_at: HashMap<String, Instant>,
    drop_at: HashMap<String, Instant>,
    stuck: HashMap<String, u32>,
    left: HashSet<String>,
    peer_health: HashMap<String, MediaHealth>,
    our_health: HashMap<String, MediaHealth>,
    next_heartbeat: Instant,
    closing_at: Option<Instant>,
    closed: bool,
    out: VecDeque<MeshAction>,
}

impl MeshPlanner {
    /// A planner for our voiceId.
    pub fn new(now: Instant, self_id: impl Into<String>, opts: MeshOptions) -> Self {
        Self {
            self_id: self_id.into(),
            opts,
            present: Vec::new(),
            dialled: HashSet::new(),
            links: HashMap::new(),
            redial_at: HashMap::new(),
            drop_at: HashMap::new(),
            stuck: HashMap::new(),
            left: HashSet::new(),
            peer_health: HashMap::new(),
            our_health: HashMap::new(),
            next_heartbeat: now + MESH_HEARTBEAT,
            closing_at: None,
            closed: false,
            out: VecDeque::new(),
        }
    }

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<MeshAction> {
        self.out.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hb = (!self.closed).then_some(self.next_heartbeat);
        earliest(
            [hb, self.closing_at]
                .into_iter()
                .chain(self.redial_at.values().map(|t| Some(*t)))
                .chain(self.drop_at.values().map(|t| Some(*t))),
        )
    }

    /// Peers whose `sig` link is open.
    pub fn open_peers(&self) -> Vec<&str> {
        self.links
            .iter()
            .filter(|(_, l)| l.open)
            .map(|(p, _)| p.as_str())
            .collect()
    }

    /// The last `mh` a peer reported.
    pub fn peer_health(&self, peer: &str) -> Option<MediaHealth> {
        self.peer_health.get(peer).copied()
    }

    /// A roster arrived (member voiceIds, ours included or not).
    pub fn on_roster<'a>(&mut self, now: Instant, members: impl IntoIterator<Item = &'a str>) {
        if self.closed {
            return;
        }
        let mut present: Vec<String> = Vec::new();
        for id in members {
            if id != self.self_id && !present.iter().any(|p| p == id) {
                present.push(id.to_owned());
            }
        }
        for id in &present {
            self.drop_at.remove(id);
        }
        let absent: Vec<String> = self
            .dialled
            .iter()
            .filter(|d| !present.contains(d) && !self.drop_at.contains_key(*d))
            .cloned()
            .collect();
        for id in absent {
            self.drop_at.insert(id, now + DROP_GRACE);
        }
        for id in &present {
            if should_initiate(&self.self_id, id) && !self.dialled.contains(id) {
                self.dialled.insert(id.clone());
                self.dial(now, id);
            }
        }
        self.present = present;
    }

    /// An incoming `sig` DataConnection from `peer` was accepted (we are its answerer).
    pub fn on_incoming(&mut self, now: Instant, peer: &str) {
        if !self.closed {
            self.links.insert(peer.to_owned(), SigLink::new(now));
        }
    }

    /// The `sig` link to `peer` opened.
    pub fn on_link_open(&mut self, _now: Instant, peer: &str) {
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        link.open = true;
        if self.opts.advertise_bulk {
            self.control(peer, ControlMsg::Cap { bulk: true });
        }
    }

    /// The `sig` link to `peer` closed or errored: a link *we* dialled is re-dialled after 800 ms
    /// while the peer is still wanted; answerers never re-dial.
    pub fn on_link_closed(&mut self, now: Instant, peer: &str) {
        if self.links.remove(peer).is_none() || self.closed {
            return;
        }
        if self.dialled.contains(peer)
            && !self.left.contains(peer)
            && !self.redial_at.contains_key(peer)
        {
            self.redial_at.insert(peer.to_owned(), now + REDIAL_DELAY);
        }
    }

    /// Anything arrived on `peer`'s link; `control` is set for a `sig` control message.
    pub fn on_received(&mut self, now: Instant, peer: &str, control: Option<&ControlMsg>) {
        if let Some(link) = self.links.get_mut(peer) {
            link.last_recv = now;
        }
        match control {
            Some(ControlMsg::Bye) => {
                self.left.insert(peer.to_owned());
                self.redial_at.remove(peer);
                if self.links.remove(peer).is_some() {
                    self.out.push_back(MeshAction::Close {
                        peer: peer.to_owned(),
                    });
                }
                self.out.push_back(MeshAction::Event(MeshEvent::PeerLeft {
                    peer: peer.to_owned(),
                }));
            }
            Some(ControlMsg::Mh { v, a, ov, oa }) => {
                let h = MediaHealth {
                    v: *v,
                    a: *a,
                    ov: *ov,
                    oa: *oa,
                };
                self.peer_health.insert(peer.to_owned(), h);
            }
            Some(ControlMsg::Cap { bulk: true }) => {
                self.out
                    .push_back(MeshAction::Event(MeshEvent::BulkCapable {
                        peer: peer.to_owned(),
                    }));
            }
            _ => {}
        }
    }

    /// Media flows with `peer`: the stuck/dead recovery budget resets.
    pub fn on_media_flow(&mut self, peer: &str) {
        self.stuck.remove(peer);
    }

    /// Our measured media rates towards `peer`, reported in the next `mh`.
    pub fn set_media_health(&mut self, peer: &str, health: MediaHealth) {
        self.our_health.insert(peer.to_owned(), health);
    }

    /// Graceful leave: `bye` on every open `sig` link now, close everything 250 ms later.
    pub fn leave(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.closed = true;
        let mut open: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| l.open)
            .map(|(p, _)| p.clone())
            .collect();
        open.sort();
        for peer in open {
            self.control(&peer, ControlMsg::Bye);
        }
        self.redial_at.clear();
        self.drop_at.clear();
        self.closing_at = Some(now + BYE_CLOSE_DELAY);
    }

    /// Timers: re-dials, drop grace, the 2 s heartbeat (`mh` + watchdogs), the post-`bye` close.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            if self.closing_at.is_some_and(|t| t <= now) {
                self.closing_at = None;
                let mut peers: Vec<String> = self.links.drain().map(|(p, _)| p).collect();
                peers.sort();
                for peer in peers {
                    self.out.push_back(MeshAction::Close { peer });
                }
            }
            return;
        }
        let due: Vec<String> = self
            .redial_at
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for peer in due {
            self.redial_at.remove(&peer);
            if self.dialled.contains(&peer)
                && !self.links.contains_key(&peer)
                && !self.left.contains(&peer)
            {
                self.dial(now, &peer);
            }
        }
        let due: Vec<String> = self
            .drop_at
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for peer in due {
            self.drop_at.remove(&peer);
            if self.present.contains(&peer) {
                continue;
            }
            if self.links.remove(&peer).is_some() {
                self.out.push_back(MeshAction::Close { peer: peer.clone() });
            }
            self.dialled.remove(&peer);
            self.redial_at.remove(&peer);
            self.stuck.remove(&peer);
            self.left.remove(&peer);
            self.peer_health.remove(&peer);
        }
        if now >= self.next_heartbeat {
            while self.next_heartbeat <= now {
                self.next_heartbeat += MESH_HEARTBEAT;
            }
            self.heartbeat(now);
        }
    }

    fn heartbeat(&mut self, now: Instant) {
        for peer in self.present.clone() {
            let Some(link) = self.links.get(&peer).copied() else {
                continue;
            };
            let stuck = !link.open && now.saturating_duration_since(link.since) > SIG_STUCK;
            let dead = link.open && now.saturating_duration_since(link.last_recv) > SIG_DEAD;
            if !stuck && !dead {
                continue;
            }
            let n = self.stuck.get(&peer).copied().unwrap_or(0);
            if n >= MAX_RECOVER {
                continue;
            }
            self.stuck.insert(peer.clone(), n + 1);
            if self.dialled.contains(&peer) {
                tracing::debug!(%peer, stuck, dead, attempt = n + 1, "re-establishing sig link");
                self.out.push_back(MeshAction::Event(MeshEvent::Recovering {
                    peer: peer.clone(),
                    attempt: n + 1,
                }));
                self.dial(now, &peer);
            }
        }
        let mut open: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| l.open)
            .map(|(p, _)| p.clone())
            .collect();
        open.sort();
        for peer in open {
            let h = self.our_health.get(&peer).copied().unwrap_or_default();
            self.control(&peer, h.to_msg());
        }
    }

    /// `dialData`: close any previous link, dial a fresh one.
    fn dial(&mut self, now: Instant, peer: &str) {
        if self.links.remove(peer).is_some() {
            self.out.push_back(MeshAction::Close {
                peer: peer.to_owned(),
            });
        }
        self.links.insert(peer.to_owned(), SigLink::new(now));
        self.out.push_back(MeshAction::Dial {
            peer: peer.to_owned(),
        });
    }

    fn control(&mut self, peer: &str, msg: ControlMsg) {
        self.out.push_back(MeshAction::SendControl {
            peer: peer.to_owned(),
            msg,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glare_rule_is_utf16_order() {
        assert!(should_initiate("a", "b"));
        assert!(!should_initiate("b", "a"));
        assert!(!should_initiate("a", "a"));
        assert!(should_initiate("a", "ab"));
        // U+FF61 (one unit 0xFF61) sorts AFTER U+1F600 (surrogates 0xD83D…) in UTF-16,
        // though its UTF-8 bytes / code point sort before.
        assert!(should_initiate("\u{1F600}", "\u{FF61}"));
        assert!("\u{FF61}" < "\u{1F600}");
    }
}
