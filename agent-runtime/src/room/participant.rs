//! A participant's side of the presence star (kibitz-wire.md §4.1–4.2, §2.4 step 4, §11 steps 9–13).
//!
//! Sans-I/O: the shell reports the presence link opening/closing and decoded [`AuthorityMsg`]s,
//! issues commands ([`ParticipantState::join`], [`ParticipantState::leave`], …), calls
//! [`ParticipantState::handle_timeout`] when [`ParticipantState::poll_timeout`] expires, and
//! drains [`ParticipantState::poll_output`]. Every `knock`/`voice` carries the full key set in
//! the browser's order (the codec writes nil for `None`).
//!
//! # Refusal and retry policy (what the CLI does)
//!
//! - `lobby:waiting`: keep pinging and re-announcing (the browser does; the authority re-queues
//!   quietly) and surface [`ParticipantEvent::LobbyStatus`].
//! - `lobby:denied` / `lobby:locked`: a human said no, or the room is sealed. Stop announcing and
//!   emit [`ParticipantEvent::Refused`] with `retry_in: None`; the CLI leaves and exits non-zero.
//! - `lobby:unverified`: usually a stale assertion or clock skew. Up to
//!   [`ParticipantOptions::unverified_retries`] times, wait
//!   [`ParticipantOptions::unverified_retry_delay`], re-sign through the [`AssertionProvider`],
//!   then re-knock and re-announce. After that, `Refused { retry_in: None }` and the CLI exits.
//! - `kick`: [`ParticipantEvent::Kicked`]; the machine stops for good (no pings, no announces).
//! - Authority silent for 12 s (freeze-guarded): [`ParticipantEvent::AuthorityLost`]; the shell
//!   closes the link and reruns claim-or-join after 1.5 s ([`super::join_loop`]), then reports
//!   [`ParticipantState::link_opened`] again on the new link.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::roster::roster_contains;
use super::timers::{
    earliest, js_len, ASSERTION_RESIGN, AUTHORITY_SILENCE, FREEZE_GAP, MAX_ASSERTION_CHARS,
    MAX_TOKEN_CHARS, PING, REANNOUNCE, REANNOUNCE_EARLY,
};
use crate::wire::presence::{AuthorityMsg, ClientMsg, Knock, LobbyStatus, Roster, Voice};
use crate::wire::Value;

/// What we announce in the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinParams {
    /// Display name (`'Guest'` when empty).
    pub name: String,
    /// Avatar (`''` = initials).
    pub avatar: String,
    /// Camera flag.
    pub cam: bool,
    /// Our media peer id; must be live on the broker before we announce it.
    pub voice_id: String,
    /// Stable per-session token; keep it across reconnects.
    pub token: String,
    /// Roster meta (`role:'agent'`, `backend`, `egress`, `~kbz`, …), sent verbatim.
    pub meta: Option<Value>,
}

/// Supplies a fresh `kbz-agent-key.v1` assertion (bound to our presence fingerprint, `iat` now).
pub trait AssertionProvider: Send {
    /// A freshly signed assertion, or `None` when none can be made.
    fn fresh_assertion(&mut self) -> Option<String>;
}

/// Participant settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantOptions {
    /// Re-sign cadence of the assertion (browser: 240 s).
    pub assertion_resign: Duration,
    /// How many times `unverified` is retried after a re-sign.
    pub unverified_retries: u32,
    /// Delay before such a retry.
    pub unverified_retry_delay: Duration,
}

impl Default for ParticipantOptions {
    fn default() -> Self {
        Self {
            assertion_resign: ASSERTION_RESIGN,
            unverified_retries: 1,
            unverified_retry_delay: Duration::from_secs(5),
        }
    }
}

/// Command errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParticipantError {
    /// The assertion exceeds `MAX_ASSERTION_CHARS`; the authority would answer `unverified`.
    #[error("agent assertion is {len} UTF-16 units, over the {max} limit")]
    AssertionTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The credit credential exceeds `MAX_TOKEN_CHARS`.
    #[error("agent credit is {len} UTF-16 units, over the {max} limit")]
    CreditTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// We were kicked; nothing more is sent.
    #[error("kicked from the room")]
    Kicked,
}

/// Events for the shell and the agent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParticipantEvent {
    /// A `lobby` status arrived.
    LobbyStatus(LobbyStatus),
    /// Entry refused (`denied` / `locked` / `unverified`); announcing stopped.
    Refused {
        /// The status.
        status: LobbyStatus,
        /// When the machine retries by itself, if it does.
        retry_in: Option<Duration>,
    },
    /// A roster arrived.
    RosterUpdated(Roster),
    /// We were removed: leave and don't come back with this token/voiceId.
    Kicked,
    /// The host reset the room: clear ephemeral chat.
    Reset,
    /// The authority has been silent for 12 s; rerun claim-or-join after 1.5 s.
    AuthorityLost,
    /// The provider's assertion was over the size cap and was not sent.
    AssertionRejected {
        /// Its length.
        len: usize,
    },
}

/// An output: a message for the authority, or an event.
#[derive(Debug, Clone, PartialEq)]
pub enum ParticipantOutput {
    /// Send on the presence link.
    Send(ClientMsg),
    /// An event.
    Event(ParticipantEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Refused(LobbyStatus),
    Kicked,
    Left,
}

struct Joined {
    params: JoinParams,
    early: Vec<Instant>,
    next_periodic: Instant,
}

/// The participant state machine. See the module docs.
pub struct ParticipantState {
    opts: ParticipantOptions,
    token: Option<String>,
    joined: Option<Joined>,
    open: bool,
    last_seen: Instant,
    last_tick: Instant,
    next_ping: Option<Instant>,
    waiting: bool,
    stop: Option<Stop>,
    assertion: Option<String>,
    credit: Option<String>,
    provider: Option<Box<dyn AssertionProvider>>,
    next_resign: Option<Instant>,
    retries_left: u32,
    retry_at: Option<Instant>,
    last_roster: Option<Roster>,
    out: VecDeque<ParticipantOutput>,
}

impl std::fmt::Debug for ParticipantState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantState")
            .field("open", &self.open)
            .field("joined", &self.joined.as_ref().map(|j| &j.params.voice_id))
            .field("waiting", &self.waiting)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl ParticipantState {
    /// A participant with no link yet.
    pub fn new(now: Instant, opts: ParticipantOptions) -> Self {
        let retries_left = opts.unverified_retries;
        Self {
            opts,
            token: None,
            joined: None,
            open: false,
            last_seen: now,
            last_tick: now,
            next_ping: None,
            waiting: false,
            stop: None,
            assertion: None,
            credit: None,
            provider: None,
            next_resign: None,
            retries_left,
            retry_at: None,
            last_roster: None,
            out: VecDeque::new(),
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<ParticipantOutput> {
        self.out.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stop == Some(Stop::Kicked) || self.stop == Some(Stop::Left) {
            return None;
        }
        let live = self.open.then_some(());
        let announce = self
            .can_announce()
            .then(|| self.joined.as_ref().map(Joined::next_deadline))
            .flatten();
        earliest([
            live.and(self.next_ping),
            live.map(|()| self.last_seen + AUTHORITY_SILENCE),
            announce,
            self.next_resign,
            self.retry_at,
        ])
    }

    /// The last roster received.
    pub fn roster(&self) -> Option<&Roster> {
        self.last_roster.as_ref()
    }

    /// True once kicked.
    pub fn is_kicked(&self) -> bool {
        self.stop == Some(Stop::Kicked)
    }

    /// The presence DataConnection to the authority opened: `knock`, then the last `voice`.
    pub fn link_opened(&mut self, now: Instant) {
        if matches!(self.stop, Some(Stop::Kicked | Stop::Left)) {
            return;
        }
        self.open = true;
        self.last_seen = now;
        self.last_tick = now;
        self.next_ping = Some(now + PING);
        self.waiting = false;
        // A new connection may be a new certificate: re-sign (kibitz-agents.md §3.6).
        self.refresh_assertion(now);
        self.send_knock();
        if self.can_announce() {
            self.send_voice(true);
        }
    }

    /// The presence link closed (the join loop decides what happens next).
    pub fn link_closed(&mut self, _now: Instant) {
        self.open = false;
        self.next_ping = None;
    }

    /// Joins the call (or re-joins with new parameters); re-announces at +600 ms, +1800 ms and
    /// every 3 s. With a provider, the assertion is signed now and re-signed on its cadence.
    pub fn join(
        &mut self,
        now: Instant,
        params: JoinParams,
        provider: Option<Box<dyn AssertionProvider>>,
    ) {
        if matches!(self.stop, Some(Stop::Kicked)) {
            return;
        }
        if self.stop == Some(Stop::Left) {
            self.stop = None;
        }
        self.token = Some(params.token.clone()).filter(|t| !t.is_empty());
        self.joined = Some(Joined {
            params,
            early: REANNOUNCE_EARLY.iter().map(|d| now + *d).collect(),
            next_periodic: now + REANNOUNCE,
        });
        if provider.is_some() {
            self.provider = provider;
            self.refresh_assertion(now);
        }
        if self.can_announce() {
            self.send_voice(true);
        }
    }

    /// Leaves: `voice on:false`, then `leave`; the machine goes quiet.
    pub fn leave(&mut self, _now: Instant) {
        if self.open && self.joined.is_some() && self.stop != Some(Stop::Kicked) {
            self.send_voice(false);
            self.out
                .push_back(ParticipantOutput::Send(ClientMsg::Leave));
        }
        self.joined = None;
        self.stop = Some(Stop::Left);
        self.next_ping = None;
        self.next_resign = None;
        self.retry_at = None;
    }

    /// Replaces our roster meta and re-announces at once.
    pub fn set_meta(&mut self, _now: Instant, meta: Option<Value>) {
        if let Some(j) = self.joined.as_mut() {
            j.params.meta = meta;
        }
        if self.can_announce() {
            self.send_voice(true);
        }
    }

    /// Sets the assertion directly (`None` clears it), then re-knocks and re-announces so the
    /// authority verifies at once. A fresh assertion also lifts an `unverified` stop.
    pub fn set_assertion(
        &mut self,
        _now: Instant,
        assertion: Option<String>,
    ) -> Result<(), ParticipantError> {
        if self.is_kicked() {
            return Err(ParticipantError::Kicked);
        }
        if let Some(a) = &assertion {
            let len = js_len(a);
            if len > MAX_ASSERTION_CHARS {
                return Err(ParticipantError::AssertionTooLarge {
                    len,
                    max: MAX_ASSERTION_CHARS,
                });
            }
        }
        self.assertion = assertion;
        if self.stop == Some(Stop::Refused(LobbyStatus::Unverified)) {
            self.stop = None;
            self.retry_at = None;
        }
        self.resend_credentials();
        Ok(())
    }

    /// Sets the credit credential (`None` clears it), then re-knocks and re-announces.
    pub fn set_credit(
        &mut self,
        _now: Instant,
        credit: Option<String>,
    ) -> Result<(), ParticipantError> {
        if self.is_kicked() {
            return Err(ParticipantError::Kicked);
        }
        if let Some(c) = &credit {
            let len = js_len(c);
            if len > MAX_TOKEN_CHARS {
                return Err(ParticipantError::CreditTooLarge {
                    len,
                    max: MAX_TOKEN_CHARS,
                });
            }
        }
        self.credit = credit;
        self.resend_credentials();
        Ok(())
    }

    /// A decoded message from the authority.
    pub fn on_message(&mut self, now: Instant, msg: &AuthorityMsg) {
        if !self.open || self.is_kicked() {
            return;
        }
        self.last_seen = now;
        match msg {
            AuthorityMsg::Roster(r) => {
                self.last_roster = Some(r.clone());
                self.event(ParticipantEvent::RosterUpdated(r.clone()));
                // Self-heal: a roster without us means our announce was lost (or a new authority).
                let missing = self
                    .joined
                    .as_ref()
                    .is_some_and(|j| !roster_contains(r, &j.params.voice_id));
                if missing && self.can_announce() {
                    self.send_voice(true);
                }
            }
            AuthorityMsg::Lobby(status) => self.on_lobby(now, *status),
            AuthorityMsg::Kick => {
                self.stop = Some(Stop::Kicked);
                self.open = false;
                self.next_ping = None;
                self.next_resign = None;
                self.retry_at = None;
                self.event(ParticipantEvent::Kicked);
            }
            AuthorityMsg::Reset => self.event(ParticipantEvent::Reset),
            // Pings (and anything newer): liveness only.
            _ => {}
        }
    }

    fn on_lobby(&mut self, now: Instant, status: LobbyStatus) {
        self.event(ParticipantEvent::LobbyStatus(status));
        match status {
            LobbyStatus::Waiting => self.waiting = true,
            LobbyStatus::Admitted => {
                // Our open-time announce was held in the lobby: re-send it.
                if self.waiting && self.can_announce() {
                    self.send_voice(true);
                }
                self.waiting = false;
            }
            LobbyStatus::Denied | LobbyStatus::Locked | LobbyStatus::Unverified => {
                self.stop = Some(Stop::Refused(status));
                let retry_in = match self.retry_at {
                    // A second refusal of announces already in flight: the same retry stands.
                    Some(at) if status == LobbyStatus::Unverified => {
                        Some(at.saturating_duration_since(now))
                    }
                    _ if status == LobbyStatus::Unverified && self.retries_left > 0 => {
                        self.retries_left -= 1;
                        self.retry_at = Some(now + self.opts.unverified_retry_delay);
                        Some(self.opts.unverified_retry_delay)
                    }
                    _ => {
                        self.retry_at = None;
                        None
                    }
                };
                self.event(ParticipantEvent::Refused { status, retry_in });
            }
        }
    }

    /// Timers: ping, authority silence, re-announce, re-sign, retry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.stop, Some(Stop::Kicked | Stop::Left)) {
            return;
        }
        if self.open {
            let gap = now.saturating_duration_since(self.last_tick);
            self.last_tick = now;
            if gap > FREEZE_GAP {
                // Our own process was frozen: don't blame the authority.
                self.last_seen = now;
            } else if now.saturating_duration_since(self.last_seen) >= AUTHORITY_SILENCE {
                self.open = false;
                self.next_ping = None;
                self.event(ParticipantEvent::AuthorityLost);
                return;
            }
            if let Some(at) = self.next_ping.filter(|at| *at <= now) {
                let mut next = at;
                while next <= now {
                    next += PING;
                }
                self.next_ping = Some(next);
                self.out.push_back(ParticipantOutput::Send(ClientMsg::Ping));
            }
        }
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
            self.stop = None;
            self.refresh_assertion(now);
            if self.open {
                self.send_knock();
                if self.can_announce() {
                    self.send_voice(true);
                }
            }
        }
        if self.next_resign.is_some_and(|at| at <= now) {
            self.refresh_assertion(now);
            self.resend_credentials();
        }
        let can = self.can_announce();
        if let Some(j) = self.joined.as_mut() {
            let due = j.next_deadline() <= now;
            j.early.retain(|t| *t > now);
            while j.next_periodic <= now {
                j.next_periodic += REANNOUNCE;
            }
            if due && can {
                self.send_voice(true);
            }
        }
    }

    fn refresh_assertion(&mut self, now: Instant) {
        let Some(p) = self.provider.as_mut() else {
            return;
        };
        self.next_resign = Some(now + self.opts.assertion_resign);
        match p.fresh_assertion() {
            Some(a) if js_len(&a) > MAX_ASSERTION_CHARS => {
                let len = js_len(&a);
                tracing::warn!(len, "agent assertion over the size cap; not sent");
                self.assertion = None;
                self.event(ParticipantEvent::AssertionRejected { len });
            }
            a => self.assertion = a,
        }
    }

    fn resend_credentials(&mut self) {
        if !self.open || self.stop.is_some() {
            return;
        }
        self.send_knock();
        if self.can_announce() {
            self.send_voice(true);
        }
    }

    fn can_announce(&self) -> bool {
        self.open && self.joined.is_some() && self.stop.is_none()
    }

    fn send_knock(&mut self) {
        let p = self.joined.as_ref().map(|j| &j.params);
        let name = p
            .map(|p| p.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Guest".into());
        let knock = Knock {
            name,
            avatar: Some(p.map(|p| p.avatar.clone()).unwrap_or_default()),
            token: self.token.clone(),
            voice_id: p.map(|p| p.voice_id.clone()),
            jwt: None,
            agent_assertion: self.assertion.clone(),
            agent_credit: self.credit.clone(),
        };
        self.out
            .push_back(ParticipantOutput::Send(ClientMsg::Knock(knock)));
    }

    fn send_voice(&mut self, on: bool) {
        let Some(p) = self.joined.as_ref().map(|j| &j.params) else {
            return;
        };
        let voice = Voice {
            on,
            cam: p.cam,
            name: if p.name.is_empty() {
                "Guest".into()
            } else {
                p.name.clone()
            },
            avatar: Some(p.avatar.clone()),
            voice_id: Some(p.voice_id.clone()),
            token: self.token.clone(),
            meta: p.meta.clone(),
            jwt: None,
            agent_assertion: self.assertion.clone(),
            agent_credit: self.credit.clone(),
        };
        self.out
            .push_back(ParticipantOutput::Send(ClientMsg::Voice(voice)));
    }

    fn event(&mut self, e: ParticipantEvent) {
        self.out.push_back(ParticipantOutput::Event(e));
    }
}

impl Joined {
    fn next_deadline(&self) -> Instant {
        self.early
            .iter()
            .copied()
            .fold(self.next_periodic, Instant::min)
    }
}
