//! The session's event loop: one task that owns every sans-I/O machine, feeds them
//! `Instant::now()`, and executes their outputs (str0m style). I/O tasks only forward inputs.
//!
//! The role-specific halves live next door: [`super::presence_link`] (claim-or-join and the
//! participant), [`super::authority_host`] (the authority role) and [`super::mesh_links`]
//! (the data mesh and content).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use capability_manifest::Grant;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::mesh::{DtlsIdentity, MeshOptions};
use crate::room::{
    AuthorityState, CapsPolicy, ChatDedupe, JoinLoop, MeshPlanner, ParticipantState,
};
use crate::signaling::{BrokerConfig, ConnectOptions as SignalingOptions};
use crate::wire::presence::Roster;
use crate::wire::Value;

use super::app_data::ManifestReply;
use super::broker_peer::BrokerPeer;
use super::event::{Counters, SessionEvent};
use super::grant_view::GrantView;
use super::handle::{Command, SessionError};
use super::input::{Input, LinkId};
use super::leave::Leaving;
use super::links::Link;

/// A floor on how soon the loop wakes up again, guarding against a busy loop.
const MIN_SLEEP: Duration = Duration::from_millis(2);

/// The authority role while we hold `kbz-v1-<room>`.
pub(crate) struct Authority {
    pub(crate) state: AuthorityState,
    pub(crate) peer: BrokerPeer,
    pub(crate) epoch: u64,
    /// Presence connection id (the participant's presence peer id) → link.
    pub(crate) conns: HashMap<String, LinkId>,
}

/// Static facts of the session.
pub(crate) struct Facts {
    pub(crate) broker: BrokerConfig,
    pub(crate) signaling: SignalingOptions,
    pub(crate) mesh: MeshOptions,
    pub(crate) identity: Arc<DtlsIdentity>,
    /// Normalised room (the assertion salt).
    pub(crate) room: String,
    /// `kbz-v1-<room>`.
    pub(crate) room_id: String,
    pub(crate) voice_id: String,
    pub(crate) name: String,
    pub(crate) avatar: String,
    pub(crate) token: String,
    pub(crate) meta: Option<Value>,
    pub(crate) lobby_on_start: bool,
    pub(crate) crypto_host: bool,
    pub(crate) assertion_key: Option<Arc<capability_manifest::AgentKey>>,
    pub(crate) fixed_assertion: Option<String>,
    pub(crate) agent_keys: Option<Vec<capability_manifest::AgentEntry>>,
    pub(crate) manifest_token: Option<String>,
}

/// The event loop's state.
pub(crate) struct Driver {
    pub(crate) facts: Facts,
    pub(crate) tasks: JoinSet<()>,
    pub(crate) tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
    cmd_rx: mpsc::Receiver<Command>,
    cmd_open: bool,
    events: mpsc::UnboundedSender<SessionEvent>,
    pub(crate) cancel: CancellationToken,
    pub(crate) media: BrokerPeer,
    pub(crate) presence: BrokerPeer,

    pub(crate) links: HashMap<LinkId, Link>,
    pub(crate) next_link: LinkId,
    pub(crate) presence_link: Option<LinkId>,
    pub(crate) presence_attempt: u64,
    pub(crate) sig: HashMap<String, LinkId>,
    pub(crate) bulk: HashMap<String, LinkId>,

    pub(crate) join: JoinLoop,
    pub(crate) participant: ParticipantState,
    pub(crate) authority: Option<Authority>,
    pub(crate) claimed: Option<(u64, BrokerPeer)>,
    pub(crate) claim_task: Option<(u64, AbortHandle)>,
    pub(crate) epoch: u64,
    pub(crate) planner: MeshPlanner,
    pub(crate) caps: CapsPolicy,
    pub(crate) dedupe: ChatDedupe,
    pub(crate) grants: GrantView,
    own_grant: Grant,
    pub(crate) roster: Option<Roster>,
    pub(crate) admitted: bool,
    pub(crate) chat_seq: u64,
    /// Our recent public chat lines, replayed to each peer whose `sig` link opens.
    pub(crate) own_lines: std::collections::VecDeque<Value>,
    /// Pending `fetch_manifest` calls, by the peer asked.
    pub(crate) manifest_waiters: HashMap<String, Vec<ManifestReply>>,

    roster_tx: watch::Sender<Option<Roster>>,
    grant_tx: watch::Sender<Grant>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) leaving: Option<Leaving>,
    pub(crate) stopped: bool,
}

/// The channels and machines a driver is built from.
pub(crate) struct DriverParts {
    pub(crate) facts: Facts,
    pub(crate) tasks: JoinSet<()>,
    pub(crate) tx: mpsc::UnboundedSender<Input>,
    pub(crate) rx: mpsc::UnboundedReceiver<Input>,
    pub(crate) cmd_rx: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::UnboundedSender<SessionEvent>,
    pub(crate) cancel: CancellationToken,
    pub(crate) media: BrokerPeer,
    pub(crate) presence: BrokerPeer,
    pub(crate) join: JoinLoop,
    pub(crate) participant: ParticipantState,
    pub(crate) planner: MeshPlanner,
    pub(crate) roster_tx: watch::Sender<Option<Roster>>,
    pub(crate) grant_tx: watch::Sender<Grant>,
    pub(crate) counters: Arc<Counters>,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Driver {
    pub(crate) fn new(p: DriverParts) -> Self {
        let own_grant = p.grant_tx.borrow().clone();
        Self {
            facts: p.facts,
            tasks: p.tasks,
            tx: p.tx,
            rx: p.rx,
            cmd_rx: p.cmd_rx,
            cmd_open: true,
            events: p.events,
            cancel: p.cancel,
            media: p.media,
            presence: p.presence,
            links: HashMap::new(),
            next_link: 1,
            presence_link: None,
            presence_attempt: 0,
            sig: HashMap::new(),
            bulk: HashMap::new(),
            join: p.join,
            participant: p.participant,
            authority: None,
            claimed: None,
            claim_task: None,
            epoch: 0,
            planner: p.planner,
            caps: CapsPolicy::new(),
            dedupe: ChatDedupe::default(),
            grants: GrantView::default(),
            own_grant,
            roster: None,
            admitted: false,
            chat_seq: 0,
            own_lines: std::collections::VecDeque::new(),
            manifest_waiters: HashMap::new(),
            roster_tx: p.roster_tx,
            grant_tx: p.grant_tx,
            counters: p.counters,
            leaving: None,
            stopped: false,
        }
    }

    /// Runs until the session stops.
    pub(crate) async fn run(mut self) {
        self.start(Instant::now());
        loop {
            self.drain(Instant::now());
            if self.stopped {
                break;
            }
            while self.tasks.try_join_next().is_some() {}
            let now = Instant::now();
            let wake = self
                .poll_timeout()
                .map(|t| t.max(now + MIN_SLEEP))
                .unwrap_or(now + Duration::from_secs(3600));
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                input = self.rx.recv() => {
                    if let Some(input) = input {
                        self.on_input(Instant::now(), input);
                    }
                }
                cmd = self.cmd_rx.recv(), if self.cmd_open => match cmd {
                    Some(cmd) => self.on_command(Instant::now(), cmd),
                    None => {
                        // Every handle is gone: nobody can steer or leave; leave now.
                        self.cmd_open = false;
                        self.begin_leave(Instant::now(), false, None);
                    }
                },
                _ = sleep => self.handle_timeout(Instant::now()),
            }
        }
        self.finish().await;
    }

    async fn finish(&mut self) {
        if !self.stopped {
            self.shutdown_all();
            self.emit(SessionEvent::Left);
        }
        self.cancel.cancel();
        for l in self.leaving.take().map(|l| l.done).unwrap_or_default() {
            let _ = l.send(());
        }
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(2), drain)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
    }

    pub(crate) fn emit(&self, ev: SessionEvent) {
        tracing::debug!(event = ?ev, "session event");
        let _ = self.events.send(ev);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.join.poll_timeout(),
            self.participant.poll_timeout(),
            self.authority.as_ref().and_then(|a| a.state.poll_timeout()),
            self.planner.poll_timeout(),
            self.leaving.as_ref().map(|l| l.at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.join.handle_timeout(now);
        self.participant.handle_timeout(now);
        if let Some(a) = self.authority.as_mut() {
            a.state.handle_timeout(now);
        }
        self.planner.handle_timeout(now);
        self.leave_timeout(now);
    }

    /// Executes every queued output until all machines are quiet.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(a) = self.join.poll_action() {
                busy = true;
                self.on_join_action(now, a);
            }
            while let Some(o) = self.participant.poll_output() {
                busy = true;
                self.on_participant_output(now, o);
            }
            while let Some(o) = self.authority.as_mut().and_then(|a| a.state.poll_output()) {
                busy = true;
                self.on_authority_output(now, o);
            }
            while let Some(a) = self.planner.poll_action() {
                busy = true;
                self.on_mesh_action(now, a);
            }
            if !busy {
                break;
            }
        }
    }

    fn on_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Incoming { kind, epoch, conn } => self.on_incoming(now, kind, epoch, conn),
            Input::Dialed {
                kind,
                peer,
                result,
                attempt,
            } => self.on_dialed(now, kind, &peer, result, attempt),
            Input::Link { id, event } => self.on_link_event(now, id, event),
            Input::Claim { epoch, result } => self.on_claim(now, epoch, result),
            Input::Signal { kind, epoch, event } => self.on_signal(now, kind, epoch, event),
        }
    }

    fn on_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Chat { text, to, reply } => {
                let r = if self.leaving.is_some() {
                    Err(SessionError::Closed)
                } else {
                    self.send_chat(&text, to.as_deref())
                };
                let _ = reply.send(r);
            }
            Command::App { data, to, reply } => {
                let r = if self.leaving.is_some() {
                    Err(SessionError::Closed)
                } else {
                    self.send_app(&data, to.as_deref())
                };
                let _ = reply.send(r);
            }
            Command::FetchManifest { from, reply } => {
                if self.leaving.is_some() {
                    let _ = reply.send(Err(SessionError::Closed));
                } else {
                    self.fetch_manifest(&from, reply);
                }
            }
            Command::Host { op, reply } => {
                let r = if self.leaving.is_some() {
                    Err(SessionError::Closed)
                } else {
                    self.host_op(now, op)
                };
                let _ = reply.send(r);
            }
            Command::Leave { done } => self.begin_leave(now, false, Some(done)),
        }
    }

    /// A roster arrived (participant) or changed (authority).
    pub(crate) fn on_roster(&mut self, now: Instant, roster: Roster) {
        if self.leaving.is_none() {
            self.planner
                .on_roster(now, roster.members.iter().map(|m| m.id.as_str()));
        }
        // The authority re-sends an unchanged roster every 2.5 s: report changes only.
        let changed = self.roster.as_ref() != Some(&roster);
        if changed {
            // Publish first: a handle reading `roster()` after any event below sees this one.
            self.roster = Some(roster.clone());
            self.roster_tx.send_replace(Some(roster.clone()));
        }
        let me = &self.facts.voice_id;
        if !self.admitted && roster.members.iter().any(|m| &m.id == me) {
            self.admitted = true;
            self.emit(SessionEvent::Admitted);
        }
        if changed {
            self.emit(SessionEvent::Roster(roster));
            self.refresh_grant();
            self.reconcile_agent_caps(now);
        }
    }

    /// Recomputes our own grant; emits `GrantChanged` when it changed.
    pub(crate) fn refresh_grant(&mut self) {
        let g = self
            .grants
            .own(&self.facts.voice_id, self.facts.meta.as_ref(), unix_secs());
        if g != self.own_grant {
            self.own_grant = g.clone();
            self.grant_tx.send_replace(g.clone());
            self.emit(SessionEvent::GrantChanged(g));
        }
    }
}
