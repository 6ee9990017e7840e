//! The lane gate: the single choke point for perception **and** action.
//!
//! A [`LaneGate`] holds the agent's manifest request and the host grant (accepted `caps`, else
//! Kibitz's agent default) and answers from their intersection,
//! `effective = Grant::intersect(request, host)` (kibitz-agents.md §1.4), expired at `now`.
//!
//! - [`LaneGate::admit`] decides every event bound for an agent ([`GateVerdict`]).
//! - [`LaneGate::admit_media`] decides raw media before decoding, and
//!   [`LaneGate::wants_subscription`] tells the media layer whether to receive a lane at all.
//! - [`LaneGate::check_act`] decides every act (`say`, `send_to`, `act`, `speak`).
//! - [`LaneGate::update_grant`] applies a new host grant at once: the next call already
//!   answers from it, so no frame passes after a revoke returns.
//!
//! Every decision is counted per lane / per act; [`LaneGate::metrics`] takes a snapshot.

mod act;
mod lane;
mod metrics;

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use capability_manifest::{Capability, Grant};

use crate::agent::AgentEvent;

pub use act::{ActError, ActKind, ALL_ACT_KINDS};
pub use lane::{LaneKind, ALL_LANES};
pub use metrics::{ActStats, LaneMetrics, LaneStats};

use lane::classify;
use metrics::Counters;

/// A clock returning epoch seconds, injected so expiry is testable.
pub type EpochClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock as an [`EpochClock`].
pub fn system_clock() -> EpochClock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// The gate's answer for one event or frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum GateVerdict {
    /// Pass it to the agent.
    Deliver,
    /// Drop it: the effective grant lacks `missing`.
    Drop {
        /// The first capability the event needs that is not granted.
        missing: Capability,
    },
}

impl GateVerdict {
    /// True for [`GateVerdict::Deliver`].
    pub fn is_deliver(self) -> bool {
        matches!(self, GateVerdict::Deliver)
    }
}

#[derive(Debug)]
struct State {
    request: Grant,
    host: Grant,
    /// `intersect(request, host)`, before expiry.
    effective: Grant,
}

/// The perception and action gate of one agent (see the module docs). Cheap to share
/// (`Arc<LaneGate>`); all methods take `&self`.
pub struct LaneGate {
    state: RwLock<State>,
    counters: Counters,
    clock: EpochClock,
}

impl std::fmt::Debug for LaneGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneGate")
            .field("effective", &self.effective())
            .finish_non_exhaustive()
    }
}

impl LaneGate {
    /// A gate for a manifest `request` (usually
    /// [`AgentManifest::requested_grant`](capability_manifest::AgentManifest::requested_grant))
    /// and the host grant; `None` means no `caps` override is known, i.e. Kibitz's agent
    /// default. Uses the system clock.
    pub fn new(request: Grant, host: Option<Grant>) -> LaneGate {
        LaneGate::with_clock(request, host, system_clock())
    }

    /// Like [`new`](Self::new) with an injected clock (epoch seconds) for grant expiry.
    pub fn with_clock(request: Grant, host: Option<Grant>, clock: EpochClock) -> LaneGate {
        let host = host.unwrap_or_else(Grant::agent_default);
        let effective = Grant::intersect(&request, &host);
        LaneGate {
            state: RwLock::new(State {
                request,
                host,
                effective,
            }),
            counters: Counters::default(),
            clock,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replace the host grant (`None`: back to the agent default). Takes effect for every call
    /// that starts after this one returns.
    pub fn update_grant(&self, host: Option<Grant>) {
        let host = host.unwrap_or_else(Grant::agent_default);
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        st.effective = Grant::intersect(&st.request, &host);
        st.host = host;
    }

    /// The manifest's request.
    pub fn request(&self) -> Grant {
        self.read().request.clone()
    }

    /// The host grant currently applied.
    pub fn host_grant(&self) -> Grant {
        self.read().host.clone()
    }

    /// The effective grant now: `host ∩ request`, or the empty grant once expired.
    pub fn effective(&self) -> Grant {
        self.effective_at((self.clock)())
    }

    /// The effective grant at `now_sec` (epoch seconds).
    pub fn effective_at(&self, now_sec: u64) -> Grant {
        self.read().effective.effective(now_sec)
    }

    /// The first of `needs` that the effective grant at `now_sec` lacks.
    fn missing_at(&self, needs: &[Capability], now_sec: u64) -> Option<Capability> {
        let st = self.read();
        if needs.is_empty() {
            return None;
        }
        if st.effective.is_expired(now_sec) {
            return needs.first().copied();
        }
        needs.iter().copied().find(|c| !st.effective.allows(*c))
    }

    /// Decide one event bound for the agent, and count it.
    pub fn admit(&self, ev: &AgentEvent) -> GateVerdict {
        self.admit_at(ev, (self.clock)())
    }

    /// [`admit`](Self::admit) at an explicit `now_sec`.
    pub fn admit_at(&self, ev: &AgentEvent, now_sec: u64) -> GateVerdict {
        let class = classify(ev);
        self.counters.received(class.lane, class.bytes);
        match self.missing_at(class.needs, now_sec) {
            None => {
                self.counters.delivered(class.lane, class.bytes);
                GateVerdict::Deliver
            }
            Some(missing) => {
                self.counters.dropped(class.lane, class.bytes);
                tracing::trace!(lane = %class.lane, %missing, "lane gate dropped an event");
                GateVerdict::Drop { missing }
            }
        }
    }

    /// Re-check an event that [`admit`](Self::admit) already delivered, right before the
    /// agent sees it (the grant may have changed while it was queued). A refusal moves it from
    /// the delivered to the dropped counters.
    pub fn recheck(&self, ev: &AgentEvent) -> GateVerdict {
        let class = classify(ev);
        match self.missing_at(class.needs, (self.clock)()) {
            None => GateVerdict::Deliver,
            Some(missing) => {
                self.counters.undeliver(class.lane, class.bytes);
                GateVerdict::Drop { missing }
            }
        }
    }

    /// Count a delivered frame that the host shed because the agent fell behind.
    pub fn count_shed(&self, ev: &AgentEvent) {
        let class = classify(ev);
        self.counters.shed(class.lane, class.bytes);
    }

    /// Decide raw media (RTP payload, encoded frame) of `lane` **before** decoding it, and
    /// count it. The media layer drops the bytes undecoded on [`GateVerdict::Drop`].
    pub fn admit_media(&self, lane: LaneKind, bytes: usize) -> GateVerdict {
        let bytes = bytes as u64;
        self.counters.received(lane, bytes);
        match self.missing_at(lane.capabilities(), (self.clock)()) {
            None => {
                self.counters.delivered(lane, bytes);
                GateVerdict::Deliver
            }
            Some(missing) => {
                self.counters.dropped(lane, bytes);
                GateVerdict::Drop { missing }
            }
        }
    }

    /// Whether the media layer should receive (and decode) `lane` at all: true only when the
    /// effective grant holds every capability of the lane.
    pub fn wants_subscription(&self, lane: LaneKind) -> bool {
        self.missing_at(lane.capabilities(), (self.clock)())
            .is_none()
    }

    /// The act gate: `Ok` when the effective grant holds every capability `act` needs (see
    /// [`ActKind::capabilities`]), else [`ActError::NotGranted`]. Counted either way.
    pub fn check_act(&self, act: ActKind) -> Result<(), ActError> {
        self.check_act_at(act, (self.clock)())
    }

    /// [`check_act`](Self::check_act) at an explicit `now_sec`.
    pub fn check_act_at(&self, act: ActKind, now_sec: u64) -> Result<(), ActError> {
        match self.missing_at(act.capabilities(), now_sec) {
            None => {
                self.counters.act(act, true);
                Ok(())
            }
            Some(cap) => {
                self.counters.act(act, false);
                tracing::debug!(%act, %cap, "act gate refused");
                Err(ActError::NotGranted { act, cap })
            }
        }
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> LaneMetrics {
        self.counters.snapshot()
    }
}
