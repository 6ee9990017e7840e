//! [`AgentHost`]: runs one or many agents against one room connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capability_manifest::{verify_signed_manifest, Grant, VerifyManifestOptions};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::egress::{EgressClient, EgressOptions};
use crate::lane_gate::{system_clock, EpochClock, LaneGate, LaneMetrics};
use crate::session::SessionEvent;
use crate::wire::presence::{LobbyStatus, Roster};

use super::artifact::{ArtifactSink, NullSink};
use super::context::Context;
use super::event::AgentEvent;
use super::lanes::StartError;
use super::port::RoomPort;
use super::runner::{self, AgentExit, Inbox, Queued, RunParts};
use super::Agent;

/// Settings of an [`AgentHost`].
#[derive(Clone)]
pub struct HostOptions {
    /// Capacity of each agent's media queue (audio and video frames). When it is full the
    /// frame is shed and counted ([`LaneStats::shed`](crate::lane_gate::LaneStats)). Default
    /// 50: one second of 20 ms audio frames.
    pub media_queue: usize,
    /// How long each agent's `on_stop` may take at shutdown. Default 5 s.
    pub stop_deadline: Duration,
    /// Where agents' artifacts go. Default: discarded.
    pub sink: Arc<dyn ArtifactSink>,
    /// Epoch-seconds clock for grant expiry. Default: the system clock.
    pub clock: EpochClock,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            media_queue: 50,
            stop_deadline: Duration::from_secs(5),
            sink: Arc::new(NullSink),
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for HostOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostOptions")
            .field("media_queue", &self.media_queue)
            .field("stop_deadline", &self.stop_deadline)
            .finish_non_exhaustive()
    }
}

/// How to admit one agent: its signed manifest and how to verify it.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The JWS compact token of the agent's signed manifest.
    pub manifest_token: String,
    /// Verification options (time, key pin, validation). Default: now, no pin, strict.
    pub verify: VerifyManifestOptions,
    /// Egress client settings.
    pub egress: EgressOptions,
}

impl AgentSpec {
    /// A spec verifying `manifest_token` at the current system time, strictly.
    pub fn new(manifest_token: impl Into<String>) -> AgentSpec {
        AgentSpec {
            manifest_token: manifest_token.into(),
            verify: VerifyManifestOptions::at(system_clock()()),
            egress: EgressOptions::default(),
        }
    }
}

/// Identifies an agent within its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u32);

/// How one agent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReport {
    /// Which agent.
    pub id: AgentId,
    /// Its name.
    pub name: String,
    /// How it ended.
    pub exit: AgentExit,
}

struct Slot {
    id: AgentId,
    name: String,
    gate: Arc<LaneGate>,
    control: mpsc::UnboundedSender<Queued>,
    media: mpsc::Sender<AgentEvent>,
    roster: Arc<Mutex<Option<Roster>>>,
    last_effective: Mutex<Grant>,
    cancel: CancellationToken,
}

/// Runs agents against one room (one [`RoomPort`]); for several rooms, run one host per room.
///
/// Each agent lives in its own task with its own [`CancellationToken`] and a two-queue inbox:
/// - a **bounded media queue** (audio, video): when the agent falls behind, new frames are
///   shed (`try_send`) and counted, so a slow agent never delays the room or other agents;
/// - a **control queue** for chat, directed and app data, views, schemas, grant changes and
///   lobby status, which never drops (unbounded; these are small and rare). Rosters are
///   coalesced: a slow agent sees only the latest. The control queue is served first, so
///   ordering across the two queues is not preserved.
///
/// Every event passes the agent's [`LaneGate`] when dispatched and again right before
/// `on_event` (so a revoke also stops frames already queued). A panicking agent is caught and
/// reported ([`AgentExit::Panicked`]) while the others keep running.
pub struct AgentHost {
    port: Arc<dyn RoomPort>,
    opts: HostOptions,
    host_grant: Mutex<Option<Grant>>,
    slots: Vec<Slot>,
    tasks: JoinSet<AgentReport>,
    next_id: u32,
}

impl std::fmt::Debug for AgentHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHost")
            .field("agents", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl AgentHost {
    /// A host over `port`. The initial host grant is the port's
    /// ([`RoomPort::host_grant`]).
    pub fn new(port: Arc<dyn RoomPort>, opts: HostOptions) -> AgentHost {
        let host_grant = Some(port.host_grant());
        AgentHost {
            port,
            opts,
            host_grant: Mutex::new(host_grant),
            slots: Vec::new(),
            tasks: JoinSet::new(),
            next_id: 0,
        }
    }

    /// Verify the agent's signed manifest, check its lanes against the manifest and the
    /// effective grant, build its gate and egress client, and start it in its own task.
    /// Must be called inside a tokio runtime.
    pub fn spawn<A: Agent>(&mut self, agent: A, spec: AgentSpec) -> Result<AgentId, StartError> {
        let signed = verify_signed_manifest(&spec.manifest_token, &spec.verify)?;
        let manifest = signed.manifest;
        let name = manifest.agent.name.clone();
        let host = self
            .host_grant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let gate = Arc::new(LaneGate::with_clock(
            manifest.requested_grant(),
            host,
            Arc::clone(&self.opts.clock),
        ));
        let effective = gate.effective();
        agent.lanes().check(&name, &manifest, &effective)?;
        let http = EgressClient::from_manifest(&manifest, spec.egress)?;

        let id = AgentId(self.next_id);
        self.next_id += 1;
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (media_tx, media_rx) = mpsc::channel(self.opts.media_queue.max(1));
        let roster = Arc::new(Mutex::new(None));
        let cancel = CancellationToken::new();
        let mut cx = Context::new(
            name.clone(),
            Arc::clone(&self.port),
            Arc::clone(&gate),
            http,
            Arc::clone(&self.opts.sink),
        );
        cx.cancel = cancel.clone();
        let parts = RunParts {
            cx,
            inbox: Inbox {
                control: control_rx,
                media: media_rx,
                roster: Arc::clone(&roster),
            },
            gate: Arc::clone(&gate),
            stop_deadline: self.opts.stop_deadline,
        };
        let task_name = name.clone();
        let span = tracing::info_span!("agent", name = %name, id = id.0);
        self.tasks.spawn(tracing::Instrument::instrument(
            async move {
                let exit = runner::run(Box::new(agent), parts).await;
                match &exit {
                    AgentExit::Panicked(msg) => tracing::error!(panic = %msg, "agent panicked"),
                    other => tracing::info!(exit = ?other, "agent ended"),
                }
                AgentReport {
                    id,
                    name: task_name,
                    exit,
                }
            },
            span,
        ));
        tracing::info!(agent = %name, id = id.0, grant = ?effective, "agent started");
        self.slots.push(Slot {
            id,
            name,
            gate,
            control: control_tx,
            media: media_tx,
            roster,
            last_effective: Mutex::new(effective),
            cancel,
        });
        Ok(id)
    }

    /// Number of agents started and not yet reported as ended.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no agent runs.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// An agent's lane and act counters.
    pub fn metrics(&self, id: AgentId) -> Option<LaneMetrics> {
        self.slot(id).map(|s| s.gate.metrics())
    }

    /// An agent's gate (the media layer consults [`LaneGate::wants_subscription`]).
    pub fn gate(&self, id: AgentId) -> Option<Arc<LaneGate>> {
        self.slot(id).map(|s| Arc::clone(&s.gate))
    }

    /// Every running agent's id and name.
    pub fn agents(&self) -> Vec<(AgentId, String)> {
        self.slots.iter().map(|s| (s.id, s.name.clone())).collect()
    }

    fn slot(&self, id: AgentId) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// Offer one event to every agent. Never waits: each agent's gate decides, then the event
    /// is queued (media shed when the agent's queue is full; everything else kept).
    pub fn dispatch(&self, ev: &AgentEvent) {
        for slot in &self.slots {
            deliver(slot, ev.clone());
        }
    }

    /// Apply a new host grant (`None`: back to the agent default) to every agent's gate at
    /// once, and tell each agent whose effective grant changed.
    pub fn set_host_grant(&self, host: Option<Grant>) {
        *self.host_grant.lock().unwrap_or_else(|e| e.into_inner()) = host.clone();
        for slot in &self.slots {
            slot.gate.update_grant(host.clone());
            let effective = slot.gate.effective();
            let mut last = slot
                .last_effective
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *last != effective {
                *last = effective.clone();
                deliver(slot, AgentEvent::GrantChanged { effective });
            }
        }
    }

    /// Map one [`SessionEvent`] to agent events and dispatch them: rosters, chat, app data
    /// (`{"__kib_agent":"view"}` envelopes become [`AgentEvent::AppView`]), lobby status
    /// (admission reported once, as `Lobby(Admitted)`) and grant changes ([`set_host_grant`](Self::set_host_grant)). Other session events are not
    /// for agents.
    pub fn dispatch_session(&self, ev: &SessionEvent) {
        match ev {
            SessionEvent::Roster(r) => self.dispatch(&AgentEvent::Roster(r.clone())),
            SessionEvent::Chat {
                from,
                name,
                text,
                dm,
                ..
            } => self.dispatch(&AgentEvent::Chat {
                from: from.clone(),
                name: name.clone(),
                text: text.clone(),
                dm: *dm,
            }),
            SessionEvent::App { from, data } => {
                let is_view = data.get("__kib_agent").and_then(|k| k.as_str()) == Some("view");
                let ev = match data.get("view") {
                    Some(view) if is_view => AgentEvent::AppView {
                        from: from.clone(),
                        view: view.clone(),
                    },
                    _ => AgentEvent::App {
                        from: from.clone(),
                        data: data.clone(),
                    },
                };
                self.dispatch(&ev);
            }
            // `Admitted` (first roster with us in it) is the one admission signal: the lobby's
            // own `admitted` status only comes when the lobby was on, so it is not repeated.
            SessionEvent::Admitted => self.dispatch(&AgentEvent::Lobby(LobbyStatus::Admitted)),
            SessionEvent::Lobby(LobbyStatus::Admitted) => {}
            SessionEvent::Lobby(status) => self.dispatch(&AgentEvent::Lobby(*status)),
            SessionEvent::GrantChanged(g) => self.set_host_grant(Some(g.clone())),
            _ => {}
        }
    }

    /// Dispatch session events until a terminal one (returned) or the end of the stream
    /// (`None`), logging agents that end meanwhile.
    pub async fn run_session(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<SessionEvent>,
    ) -> Option<SessionEvent> {
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let ev = ev?;
                    self.dispatch_session(&ev);
                    if ev.is_terminal() {
                        return Some(ev);
                    }
                }
                Some(report) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.reap(report);
                }
            }
        }
    }

    /// Wait for the next agent to end (panic, start failure, …) and report it; `None` when no
    /// agent is running.
    pub async fn next_exit(&mut self) -> Option<AgentReport> {
        let joined = self.tasks.join_next().await?;
        self.reap(joined)
    }

    fn reap(&mut self, joined: Result<AgentReport, tokio::task::JoinError>) -> Option<AgentReport> {
        match joined {
            Ok(report) => {
                self.slots.retain(|s| s.id != report.id);
                Some(report)
            }
            Err(e) => {
                tracing::error!(error = %e, "agent task failed outside its runner");
                None
            }
        }
    }

    /// Stop every agent: cancel it, let `on_stop` run within the deadline, and collect the
    /// reports (agents that do not end in time are aborted and reported as
    /// [`AgentExit::Aborted`]).
    pub async fn shutdown(mut self) -> Vec<AgentReport> {
        for slot in &self.slots {
            slot.cancel.cancel();
        }
        let grace = self.opts.stop_deadline + Duration::from_secs(1);
        let mut reports = Vec::new();
        let deadline = tokio::time::Instant::now() + grace;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(joined)) => {
                    if let Some(r) = self.reap(joined) {
                        reports.push(r);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    self.tasks.abort_all();
                    for slot in self.slots.drain(..) {
                        reports.push(AgentReport {
                            id: slot.id,
                            name: slot.name,
                            exit: AgentExit::Aborted,
                        });
                    }
                    break;
                }
            }
        }
        reports.sort_by_key(|r| r.id);
        reports
    }
}

fn deliver(slot: &Slot, ev: AgentEvent) {
    if !slot.gate.admit(&ev).is_deliver() {
        return;
    }
    match ev {
        AgentEvent::Audio(_) | AgentEvent::Screen(_) => {
            if let Err(mpsc::error::TrySendError::Full(ev)) = slot.media.try_send(ev) {
                slot.gate.count_shed(&ev);
            }
        }
        AgentEvent::Roster(r) => {
            let was_empty = slot
                .roster
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .replace(r)
                .is_none();
            if was_empty {
                let _ = slot.control.send(Queued::Roster);
            }
        }
        other => {
            let _ = slot.control.send(Queued::Event(other));
        }
    }
}
