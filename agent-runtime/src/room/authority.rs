//! The room authority (coordinator): the presence-star hub that keeps the roster
//! (kibitz-wire.md §4.2–4.4, kibitz-agents.md §3.8, §6.1).
//!
//! Sans-I/O: the shell reports connections and decoded [`ClientMsg`]s with an explicit `now`,
//! calls [`AuthorityState::handle_timeout`] when [`AuthorityState::poll_timeout`] expires, and
//! drains [`AuthorityState::poll_output`] after every call. Outputs keep the browser's order
//! (for example `lobby:admitted` strictly before the catch-up `roster`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use serde_json::{Map as JsonMap, Value as Json};

use super::gate::{
    canonical_fingerprint, Credentials, GateDecision, GateOptions, IdentityVerifier,
};
use super::lobby::{Entry, Ident, IdentityMemory, Knocker};
use super::roster::{roster_diff, MemberTable, Slot};
use super::timers::{
    earliest, js_len, FREEZE_GAP, MAX_ASSERTION_CHARS, MAX_TOKEN_CHARS, PING, REAP,
};
use crate::wire::presence::{
    AuthorityMsg, CallMember, ClientMsg, Knock, LobbyStatus, Roster, Voice,
};
use crate::wire::Value;

/// The slot key of the authority's own membership (never a valid PeerJS id).
const SELF_KEY: &str = "__self__";

/// Authority settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorityOptions {
    /// Start with the lobby on (`gl`); only for a first authority (migration inherits).
    pub lobby_on_start: bool,
    /// Identity gate settings; only used when a verifier is installed.
    pub gate: GateOptions,
}

/// Something the shell must do or may observe.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorityOutput {
    /// Send one presence message on connection `conn`.
    Send {
        /// The participant's presence connection id.
        conn: String,
        /// The message.
        msg: AuthorityMsg,
    },
    /// Broadcast `{k:'caps', grants}` on every mesh link (bypassing content gates).
    BroadcastCaps {
        /// The whole override map, voiceId → grant.
        grants: JsonMap<String, Json>,
    },
    /// An event for the host UI / logs.
    Event(AuthorityEvent),
}

/// Observable authority events.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthorityEvent {
    /// A knock entered the lobby, or a waiting knocker changed name/avatar.
    Knocked {
        /// Connection id (the admit/deny target).
        conn: String,
        /// Name shown to the host.
        name: String,
        /// Avatar.
        avatar: String,
    },
    /// A knocker left the waiting list (admitted, denied, left or disconnected).
    KnockWithdrawn {
        /// Connection id.
        conn: String,
    },
    /// A connection was let in (`lobby:admitted` sent).
    Admitted {
        /// Connection id.
        conn: String,
    },
    /// A member entered the roster.
    MemberJoined {
        /// The new member.
        member: CallMember,
    },
    /// A member left the roster.
    MemberLeft {
        /// Their voiceId.
        voice_id: String,
    },
    /// The roster (members, lobby, host or locked) changed.
    RosterChanged(Roster),
    /// The identity gate refused a joiner (`lobby:unverified` sent).
    Unverified {
        /// Connection id.
        conn: String,
        /// Why (never sent on the wire).
        reason: String,
    },
    /// The identity gate held a joiner silently.
    Held {
        /// Connection id.
        conn: String,
    },
    /// A locked room turned a new identity away.
    LockedOut {
        /// Connection id.
        conn: String,
    },
    /// A member was kicked.
    Kicked {
        /// Their voiceId.
        voice_id: String,
    },
    /// A silent connection was reaped; the shell should close it.
    Reaped {
        /// Connection id.
        conn: String,
    },
    /// A `mod` command was dropped (no committed host key support).
    ModDropped {
        /// Connection id.
        conn: String,
    },
}

/// Counters of everything the authority refused or dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthorityStats {
    /// `mod` commands dropped.
    pub mod_dropped: u64,
    /// Joiners told `unverified`.
    pub unverified: u64,
    /// Gate holds.
    pub held: u64,
    /// Locked-room refusals.
    pub locked_out: u64,
    /// Messages answered with `kick`.
    pub kick_replies: u64,
    /// Connections reaped for silence.
    pub reaped: u64,
}

#[derive(Debug, Clone)]
struct Conn {
    /// `None` once reaped (the browser deletes `lastSeenAt`).
    last_seen: Option<Instant>,
    remote_fp: Option<String>,
    verified: bool,
}

/// The authority state machine. See the module docs.
pub struct AuthorityState {
    opts: AuthorityOptions,
    verifier: Option<Box<dyn IdentityVerifier>>,
    conns: HashMap<String, Conn>,
    /// Connection open order (broadcast order).
    conn_order: Vec<String>,
    members: MemberTable,
    lobby_on: bool,
    locked: bool,
    /// Admitted connection ids, in admission order (used only while the lobby is on).
    admitted: Vec<String>,
    pending: Vec<(String, Knocker)>,
    ids: IdentityMemory,
    kicked_conns: HashSet<String>,
    host_id: String,
    host_conn: String,
    grants: JsonMap<String, Json>,
    caps_by_fp: HashMap<String, Json>,
    last_tick: Instant,
    next_tick: Instant,
    unix_anchor: (Instant, u64),
    delivered: Option<Roster>,
    stats: AuthorityStats,
    out: VecDeque<AuthorityOutput>,
}

impl std::fmt::Debug for AuthorityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityState")
            .field("conns", &self.conn_order)
            .field("members", &self.members.members())
            .field("lobby_on", &self.lobby_on)
            .field("locked", &self.locked)
            .field("host", &self.host_id)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AuthorityState {
    /// A first authority (nobody held the room id before).
    pub fn new(now: Instant, opts: AuthorityOptions) -> Self {
        let lobby_on = opts.lobby_on_start;
        let mut s = Self {
            opts,
            verifier: None,
            conns: HashMap::new(),
            conn_order: Vec::new(),
            members: MemberTable::default(),
            lobby_on,
            locked: false,
            admitted: Vec::new(),
            pending: Vec::new(),
            ids: IdentityMemory::default(),
            kicked_conns: HashSet::new(),
            host_id: String::new(),
            host_conn: String::new(),
            grants: JsonMap::new(),
            caps_by_fp: HashMap::new(),
            last_tick: now,
            next_tick: now + PING,
            unix_anchor: (now, 0),
            delivered: None,
            stats: AuthorityStats::default(),
            out: VecDeque::new(),
        };
        s.broadcast();
        s
    }

    /// A migrated authority: keeps the last roster's lobby/locked settings, grandfathers its
    /// members (they skip lobby and gate and may re-enter a locked room), host reset to `''`.
    pub fn inherit(now: Instant, opts: AuthorityOptions, last_roster: &Roster) -> Self {
        let mut s = Self::new(now, opts);
        s.lobby_on = last_roster.lobby;
        s.locked = last_roster.locked;
        for m in &last_roster.members {
            s.ids.grandfathered.insert(m.id.clone());
            s.ids.seen_voice_ids.insert(m.id.clone());
        }
        s.broadcast();
        s
    }

    /// Installs the identity verifier (without one, the room has no gate and assertions are ignored).
    pub fn with_verifier(mut self, verifier: Box<dyn IdentityVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Anchors Unix time (seconds) at `now`, for the verifier's freshness checks.
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: u64) {
        self.unix_anchor = (now, unix_secs);
    }

    /// The next output to act on, in order.
    pub fn poll_output(&mut self) -> Option<AuthorityOutput> {
        self.out.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reaps = self.conns.values().map(|c| c.last_seen.map(|t| t + REAP));
        earliest(std::iter::once(Some(self.next_tick)).chain(reaps))
    }

    /// Counters.
    pub fn stats(&self) -> AuthorityStats {
        self.stats
    }

    /// The roster message as it would be sent now.
    pub fn roster(&self) -> Roster {
        Roster {
            members: self.members.members(),
            lobby: self.lobby_on,
            host: self.host_id.clone(),
            locked: self.locked,
        }
    }

    /// Whether the lobby is on.
    pub fn is_lobby(&self) -> bool {
        self.lobby_on
    }

    /// Whether the room is locked.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The current waiting list: `(connection id, knocker)`.
    pub fn knocks(&self) -> &[(String, Knocker)] {
        &self.pending
    }

    /// The stable token the member with `voice_id` announced, if any.
    pub fn member_token(&self, voice_id: &str) -> Option<&str> {
        self.members
            .by_voice_id(voice_id)
            .and_then(|s| s.token.as_deref())
    }

    /// The current capability override map (voiceId → grant).
    pub fn grants(&self) -> &JsonMap<String, Json> {
        &self.grants
    }

    /// A presence connection opened. `remote_fp` is its remote DTLS fingerprint, if readable.
    pub fn on_connect(&mut self, now: Instant, conn: &str, remote_fp: Option<String>) {
        if conn == SELF_KEY {
            return;
        }
        if !self.conns.contains_key(conn) {
            self.conn_order.push(conn.to_owned());
        }
        self.conns.insert(
            conn.to_owned(),
            Conn {
                last_seen: Some(now),
                remote_fp,
                verified: false,
            },
        );
        if !self.lobby_on {
            let msg = AuthorityMsg::Roster(self.roster());
            self.send(conn, msg);
        }
    }

    /// The connection's remote fingerprint became readable (a held joiner retries on its next announce).
    pub fn set_remote_fingerprint(&mut self, conn: &str, fp: Option<String>) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.remote_fp = fp;
        }
    }

    /// A presence connection closed or errored: its member is dropped at once.
    pub fn on_disconnect(&mut self, _now: Instant, conn: &str) {
        if let Some(v) = self.verifier.as_mut() {
            v.on_disconnect(conn);
        }
        if self.conns.remove(conn).is_none() && !self.members.contains_conn(conn) {
            return;
        }
        self.conn_order.retain(|c| c != conn);
        self.admitted.retain(|c| c != conn);
        self.kicked_conns.remove(conn);
        let was_host = !self.host_conn.is_empty() && self.host_conn == conn;
        if was_host {
            self.host_id.clear();
            self.host_conn.clear();
        }
        self.withdraw_knock(conn);
        if self.members.remove(conn) || was_host {
            self.broadcast();
        }
    }

    /// A decoded message from a participant.
    pub fn on_message(&mut self, now: Instant, conn: &str, msg: &ClientMsg) {
        if conn == SELF_KEY {
            return;
        }
        if !self.conns.contains_key(conn) {
            self.conn_order.push(conn.to_owned());
            self.conns.insert(
                conn.to_owned(),
                Conn {
                    last_seen: None,
                    remote_fp: None,
                    verified: false,
                },
            );
        }
        self.handle(now, conn, msg);
    }

    fn handle(&mut self, now: Instant, conn: &str, msg: &ClientMsg) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.last_seen = Some(now);
        }
        let (ident, joining) = match msg {
            ClientMsg::Knock(k) => (
                Some(Ident::new(k.token.as_deref(), k.voice_id.as_deref())),
                true,
            ),
            ClientMsg::Voice(v) => (
                Some(Ident::new(v.token.as_deref(), v.voice_id.as_deref())),
                v.on,
            ),
            _ => (None, false),
        };
        // 1. Kicked: by live connection or by the stable identity presented.
        if self.kicked_conns.contains(conn) || ident.is_some_and(|i| self.ids.is_kicked(i)) {
            self.kicked_conns.insert(conn.to_owned());
            self.stats.kick_replies += 1;
            self.send(conn, AuthorityMsg::Kick);
            return;
        }
        // 2. Signed host commands: no committed host key support, every `mod` is dropped.
        if matches!(msg, ClientMsg::Mod { .. }) {
            self.stats.mod_dropped += 1;
            tracing::debug!(conn, "mod command dropped (no committed host key)");
            self.event(AuthorityEvent::ModDropped {
                conn: conn.to_owned(),
            });
            return;
        }
        // 3. Locked room: a new identity trying to enter is turned away.
        if self.locked && joining && ident.is_some_and(|i| self.ids.locked_out(i)) {
            self.stats.locked_out += 1;
            self.send(conn, AuthorityMsg::Lobby(LobbyStatus::Locked));
            self.event(AuthorityEvent::LockedOut {
                conn: conn.to_owned(),
            });
            return;
        }
        // 4. Identity gate.
        if joining && self.gate_applies(conn, msg) {
            self.gate_identity(now, conn, msg);
            return;
        }
        match msg {
            // 5. Knock: only meaningful with the lobby on (ignored otherwise, below).
            ClientMsg::Knock(k) if self.lobby_on => {
                let info = knocker_of_knock(k);
                self.gate_entry(conn, info);
            }
            ClientMsg::Voice(v) => {
                // 6. Lobby on, not admitted: a join attempt is an implicit knock.
                if self.lobby_on && v.on && !self.admitted.iter().any(|c| c == conn) {
                    self.gate_entry(conn, knocker_of_voice(v));
                    if !self.admitted.iter().any(|c| c == conn) {
                        return;
                    }
                }
                // 7. Upsert or delete the member.
                match (v.on, v.voice_id.as_deref().filter(|s| !s.is_empty())) {
                    (true, Some(voice_id)) => {
                        let token = v.token.clone().filter(|t| !t.is_empty());
                        if let Some(t) = &token {
                            self.members.remove_token_except(t, conn);
                            self.ids.seen_tokens.insert(t.clone());
                        }
                        self.members.upsert(Slot {
                            conn: conn.to_owned(),
                            member: CallMember {
                                id: voice_id.to_owned(),
                                name: or_guest(&v.name),
                                cam: v.cam,
                                avatar: v.avatar.clone().unwrap_or_default(),
                                meta: v.meta.clone(),
                            },
                            token,
                        });
                        self.ids.seen_voice_ids.insert(voice_id.to_owned());
                    }
                    _ => {
                        self.members.remove(conn);
                    }
                }
                self.broadcast();
            }
            // 8. Leave.
            ClientMsg::Leave => {
                self.admitted.retain(|c| c != conn);
                self.withdraw_knock(conn);
                if self.members.remove(conn) {
                    self.broadcast();
                }
            }
            // Pings, knocks with the lobby off (and anything newer): liveness only.
            _ => {}
        }
    }

    fn gate_applies(&self, conn: &str, msg: &ClientMsg) -> bool {
        if self.verifier.is_none() || self.conns.get(conn).is_some_and(|c| c.verified) {
            return false;
        }
        let cred = credentials_of(msg);
        if let ClientMsg::Voice(v) = msg {
            if v.voice_id
                .as_deref()
                .is_some_and(|id| !id.is_empty() && self.ids.grandfathered.contains(id))
            {
                return false;
            }
        }
        let g = &self.opts.gate;
        g.require
            || cred.assertion().is_some()
            || (g.require_agent_credits && cred.credit().is_some())
    }

    fn gate_identity(&mut self, now: Instant, conn: &str, msg: &ClientMsg) {
        let cred = credentials_of(msg);
        if cred.is_empty() {
            let live = self.conns.get(conn).is_some_and(|c| c.last_seen.is_some());
            if self.opts.gate.open_humans && live {
                self.set_verified(conn, true);
                self.handle(now, conn, msg);
            } else {
                self.hold(conn);
            }
            return;
        }
        let oversize = cred
            .jwt
            .as_deref()
            .is_some_and(|t| js_len(t) > MAX_TOKEN_CHARS)
            || cred
                .agent_assertion
                .as_deref()
                .is_some_and(|t| js_len(t) > MAX_ASSERTION_CHARS)
            || cred
                .agent_credit
                .as_deref()
                .is_some_and(|t| js_len(t) > MAX_TOKEN_CHARS);
        if oversize {
            self.unverified(conn, "oversize credential".into());
            return;
        }
        let fp = self
            .conns
            .get(conn)
            .and_then(|c| c.remote_fp.clone())
            .filter(|f| !f.is_empty());
        if fp.is_none() && (self.opts.gate.binds_fingerprint || cred.assertion().is_some()) {
            self.hold(conn);
            return;
        }
        let now_secs = self.unix_secs(now);
        let Some(verifier) = self.verifier.as_mut() else {
            return;
        };
        match verifier.verify_on(conn, &cred, fp.as_deref(), now_secs) {
            GateDecision::Hold => self.hold(conn),
            GateDecision::Refused { reason } => self.unverified(conn, reason),
            GateDecision::Ok { caps } => {
                if let (Some(caps), Some(fp)) = (caps, fp.as_deref()) {
                    self.caps_by_fp.insert(canonical_fingerprint(fp), caps);
                }
                let credit_agent = self.opts.gate.require_agent_credits
                    && (cred.credit().is_some() || cred.assertion().is_some());
                self.set_verified(conn, true);
                self.handle(now, conn, msg);
                if credit_agent {
                    self.set_verified(conn, false);
                }
            }
        }
    }

    fn set_verified(&mut self, conn: &str, on: bool) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.verified = on;
        }
    }

    fn hold(&mut self, conn: &str) {
        self.stats.held += 1;
        self.event(AuthorityEvent::Held {
            conn: conn.to_owned(),
        });
    }

    fn unverified(&mut self, conn: &str, reason: String) {
        self.stats.unverified += 1;
        tracing::debug!(conn, %reason, "identity gate refused");
        self.send(conn, AuthorityMsg::Lobby(LobbyStatus::Unverified));
        self.event(AuthorityEvent::Unverified {
            conn: conn.to_owned(),
            reason,
        });
    }

    fn unix_secs(&self, now: Instant) -> u64 {
        let (at, secs) = self.unix_anchor;
        secs.saturating_add(now.saturating_duration_since(at).as_secs())
    }

    /// `gateEntry`: slide a known identity straight in, else hold it for the host.
    fn gate_entry(&mut self, conn: &str, info: Knocker) {
        let ident = Ident::new(info.token.as_deref(), info.voice_id.as_deref());
        if self.ids.entry(ident) == Entry::Silent {
            self.admit_now(conn, info);
            return;
        }
        let prev = self.pending.iter().position(|(c, _)| c == conn);
        let changed = match prev {
            Some(i) => {
                let old = &self.pending[i].1;
                let changed = old.name != info.name || old.avatar != info.avatar;
                self.pending[i].1 = info.clone();
                changed
            }
            None => {
                self.pending.push((conn.to_owned(), info.clone()));
                self.send(conn, AuthorityMsg::Lobby(LobbyStatus::Waiting));
                true
            }
        };
        if changed {
            self.event(AuthorityEvent::Knocked {
                conn: conn.to_owned(),
                name: info.name,
                avatar: info.avatar,
            });
        }
    }

    fn admit_now(&mut self, conn: &str, info: Knocker) {
        self.withdraw_knock(conn);
        if !self.admitted.iter().any(|c| c == conn) {
            self.admitted.push(conn.to_owned());
        }
        if let Some(t) = info.token.filter(|t| !t.is_empty()) {
            self.ids.admitted_tokens.insert(t);
        }
        self.send(conn, AuthorityMsg::Lobby(LobbyStatus::Admitted));
        let roster = AuthorityMsg::Roster(self.roster());
        self.send(conn, roster);
        self.event(AuthorityEvent::Admitted {
            conn: conn.to_owned(),
        });
    }

    fn withdraw_knock(&mut self, conn: &str) {
        let before = self.pending.len();
        self.pending.retain(|(c, _)| c != conn);
        if self.pending.len() != before {
            self.event(AuthorityEvent::KnockWithdrawn {
                conn: conn.to_owned(),
            });
        }
    }

    /// Host: admit a waiting connection (`lobby:admitted`, then the roster).
    pub fn admit(&mut self, _now: Instant, conn: &str) {
        if let Some((_, info)) = self.pending.iter().find(|(c, _)| c == conn).cloned() {
            self.admit_now(conn, info);
        }
    }

    /// Host: deny a waiting connection (`lobby:denied`). If it keeps announcing it is re-queued.
    pub fn deny(&mut self, _now: Instant, conn: &str) {
        self.withdraw_knock(conn);
        self.send(conn, AuthorityMsg::Lobby(LobbyStatus::Denied));
    }

    /// Host: lobby on (current members stay admitted) or off (every pending peer is admitted).
    pub fn set_lobby(&mut self, _now: Instant, on: bool) {
        self.lobby_on = on;
        if on {
            self.admitted = self
                .members
                .conns()
                .filter(|c| *c != SELF_KEY)
                .map(str::to_owned)
                .collect();
        } else {
            for (conn, info) in std::mem::take(&mut self.pending) {
                self.pending.push((conn.clone(), info.clone()));
                self.admit_now(&conn, info);
            }
        }
        self.broadcast();
    }

    /// Host: lock (seal to identities never seen) or unlock the room.
    pub fn set_locked(&mut self, _now: Instant, on: bool) {
        self.locked = on;
        self.broadcast();
    }

    /// Host: tell everyone admitted to clear ephemeral chat.
    pub fn reset(&mut self, _now: Instant) {
        self.fanout(&AuthorityMsg::Reset);
    }

    /// Host: remove a member by voiceId; its token and voiceId stay blocked for this authority's life.
    pub fn kick(&mut self, _now: Instant, voice_id: &str) {
        let own = self.members.get(SELF_KEY).map(|s| s.member.id.clone());
        if voice_id.is_empty() || own.as_deref() == Some(voice_id) {
            return;
        }
        self.ids.kicked_voice_ids.insert(voice_id.to_owned());
        // Every slot announcing that voiceId goes (the browser removes the first and catches any
        // duplicate on its next announce; removing all keeps the roster clean at once).
        while let Some(slot) = self
            .members
            .by_voice_id(voice_id)
            .filter(|s| s.conn != SELF_KEY)
            .cloned()
        {
            if let Some(t) = slot.token {
                self.ids.kicked_tokens.insert(t);
            }
            self.kicked_conns.insert(slot.conn.clone());
            self.send(&slot.conn, AuthorityMsg::Kick);
            self.members.remove(&slot.conn);
            self.admitted.retain(|c| *c != slot.conn);
            self.withdraw_knock(&slot.conn);
        }
        self.event(AuthorityEvent::Kicked {
            voice_id: voice_id.to_owned(),
        });
        self.broadcast();
    }

    /// Marks a current member the verified host (`None` clears it). Returns false when
    /// `voice_id` is not a member. The slot also clears when the host disconnects.
    pub fn set_verified_host(&mut self, _now: Instant, voice_id: Option<&str>) -> bool {
        match voice_id {
            None => {
                self.host_id.clear();
                self.host_conn.clear();
            }
            Some(id) => {
                let Some(conn) = self.members.by_voice_id(id).map(|s| s.conn.clone()) else {
                    return false;
                };
                self.host_id = id.to_owned();
                self.host_conn = conn;
            }
        }
        self.broadcast();
        true
    }

    /// Our own membership (the authority is also in the call), or `None` to leave it.
    pub fn set_self(&mut self, _now: Instant, member: Option<CallMember>) {
        match member.filter(|m| !m.id.is_empty()) {
            Some(mut m) => {
                m.name = or_guest(&m.name);
                self.members.upsert(Slot {
                    conn: SELF_KEY.to_owned(),
                    member: m,
                    token: None,
                });
            }
            None => {
                self.members.remove(SELF_KEY);
            }
        }
        self.broadcast();
    }

    /// Sets (or with `None` clears) a member's capability override and broadcasts the map.
    pub fn set_grant(&mut self, _now: Instant, voice_id: &str, grant: Option<Json>) {
        match grant {
            Some(g) => {
                self.grants.insert(voice_id.to_owned(), g);
            }
            None => {
                self.grants.remove(voice_id);
            }
        }
        self.out.push_back(AuthorityOutput::BroadcastCaps {
            grants: self.grants.clone(),
        });
    }

    /// The mesh fingerprint of `voice_id` became known: if the identity gate recorded manifest
    /// caps for that fingerprint and the member declares `meta.role:'agent'`, grant them
    /// (kibitz-agents.md §6.5). Returns true when the grant changed.
    pub fn on_mesh_fingerprint(&mut self, now: Instant, voice_id: &str, mesh_fp: &str) -> bool {
        let Some(caps) = self
            .caps_by_fp
            .get(&canonical_fingerprint(mesh_fp))
            .cloned()
        else {
            return false;
        };
        let is_agent = self
            .members
            .by_voice_id(voice_id)
            .and_then(|s| s.member.meta.as_ref())
            .and_then(|m| m.get("role"))
            .and_then(Value::as_str)
            == Some("agent");
        if !is_agent || self.grants.get(voice_id) == Some(&caps) {
            return false;
        }
        self.set_grant(now, voice_id, Some(caps));
        true
    }

    /// Timers: ping + roster beacon every 2.5 s, reaping after 12 s of silence (freeze-guarded).
    pub fn handle_timeout(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        let mut changed = false;
        if gap > FREEZE_GAP {
            // We were frozen: everyone is fresh, nobody is reaped.
            for c in self.conns.values_mut() {
                if c.last_seen.is_some() {
                    c.last_seen = Some(now);
                }
            }
        } else {
            changed = self.reap(now);
        }
        if now >= self.next_tick {
            while self.next_tick <= now {
                self.next_tick += PING;
            }
            for conn in self.conn_order.clone() {
                self.send(&conn, AuthorityMsg::Ping);
            }
            let msg = AuthorityMsg::Roster(self.roster());
            self.fanout(&msg);
            if changed {
                self.deliver(true);
            }
        } else if changed {
            self.broadcast();
        }
    }

    fn reap(&mut self, now: Instant) -> bool {
        let mut changed = false;
        let silent: Vec<String> = self
            .conn_order
            .iter()
            .filter(|c| {
                self.conns
                    .get(*c)
                    .and_then(|s| s.last_seen)
                    .is_some_and(|t| now.saturating_duration_since(t) >= REAP)
            })
            .cloned()
            .collect();
        for conn in silent {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.last_seen = None;
            }
            self.stats.reaped += 1;
            changed |= self.members.remove(&conn);
            self.event(AuthorityEvent::Reaped { conn });
        }
        changed
    }

    fn send(&mut self, conn: &str, msg: AuthorityMsg) {
        if self.conns.contains_key(conn) {
            self.out.push_back(AuthorityOutput::Send {
                conn: conn.to_owned(),
                msg,
            });
        }
    }

    /// Lobby off: every open connection. Lobby on: admitted connections only.
    fn fanout(&mut self, msg: &AuthorityMsg) {
        let targets = if self.lobby_on {
            self.admitted.clone()
        } else {
            self.conn_order.clone()
        };
        for conn in targets {
            self.send(&conn, msg.clone());
        }
    }

    fn broadcast(&mut self) {
        let msg = AuthorityMsg::Roster(self.roster());
        self.fanout(&msg);
        self.deliver(true);
    }

    /// The authority's own roster view: events on change, caps re-broadcast while non-empty.
    fn deliver(&mut self, caps: bool) {
        let roster = self.roster();
        if self.delivered.as_ref() != Some(&roster) {
            let prev = self.delivered.take().map(|r| r.members).unwrap_or_default();
            let (joined, left) = roster_diff(&prev, &roster.members);
            let joined: Vec<CallMember> = roster
                .members
                .iter()
                .filter(|m| joined.contains(&m.id.as_str()))
                .cloned()
                .collect();
            let left: Vec<String> = left.into_iter().map(str::to_owned).collect();
            for member in joined {
                self.event(AuthorityEvent::MemberJoined { member });
            }
            for voice_id in left {
                self.event(AuthorityEvent::MemberLeft { voice_id });
            }
            self.event(AuthorityEvent::RosterChanged(roster.clone()));
            self.delivered = Some(roster);
        }
        if caps && !self.grants.is_empty() {
            self.out.push_back(AuthorityOutput::BroadcastCaps {
                grants: self.grants.clone(),
            });
        }
    }

    fn event(&mut self, e: AuthorityEvent) {
        self.out.push_back(AuthorityOutput::Event(e));
    }
}

fn or_guest(name: &str) -> String {
    if name.is_empty() {
        "Guest".to_owned()
    } else {
        name.to_owned()
    }
}

fn knocker_of_knock(k: &Knock) -> Knocker {
    Knocker {
        name: or_guest(&k.name),
        avatar: k.avatar.clone().unwrap_or_default(),
        token: k.token.clone(),
        voice_id: k.voice_id.clone(),
    }
}

fn knocker_of_voice(v: &Voice) -> Knocker {
    Knocker {
        name: or_guest(&v.name),
        avatar: v.avatar.clone().unwrap_or_default(),
        token: v.token.clone(),
        voice_id: v.voice_id.clone(),
    }
}

fn credentials_of(msg: &ClientMsg) -> Credentials {
    match msg {
        ClientMsg::Knock(k) => Credentials {
            jwt: k.jwt.clone(),
            agent_assertion: k.agent_assertion.clone(),
            agent_credit: k.agent_credit.clone(),
        },
        ClientMsg::Voice(v) => Credentials {
            jwt: v.jwt.clone(),
            agent_assertion: v.agent_assertion.clone(),
            agent_credit: v.agent_credit.clone(),
        },
        _ => Credentials::default(),
    }
}
