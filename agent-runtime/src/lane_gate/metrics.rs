//! Per-lane and per-act counters: atomics written on the hot path, read as a [`LaneMetrics`]
//! snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use super::act::{ActKind, ALL_ACT_KINDS};
use super::lane::{LaneKind, ALL_LANES};

/// Counters of one perception lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaneStats {
    /// Frames (events) that reached the gate.
    pub received: u64,
    /// Bytes of those frames (payload size; 0 for roster and control events).
    pub received_bytes: u64,
    /// Frames the gate let through to the agent.
    pub delivered: u64,
    /// Bytes of the delivered frames.
    pub delivered_bytes: u64,
    /// Frames the gate refused (capability not in the effective grant).
    pub dropped: u64,
    /// Bytes of the refused frames.
    pub dropped_bytes: u64,
    /// Frames admitted by the gate but shed because the agent fell behind (audio and video
    /// only; never chat, roster or control).
    pub shed: u64,
}

/// Counters of one kind of act.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActStats {
    /// Calls that reached the act gate.
    pub attempted: u64,
    /// Calls the gate let through to the wire.
    pub allowed: u64,
    /// Calls refused with [`ActError::NotGranted`](super::ActError::NotGranted).
    pub refused: u64,
}

/// A snapshot of a gate's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaneMetrics {
    /// One entry per lane, in [`ALL_LANES`] order.
    pub lanes: Vec<(LaneKind, LaneStats)>,
    /// One entry per act kind, in [`ALL_ACT_KINDS`] order.
    pub acts: Vec<(ActKind, ActStats)>,
}

impl LaneMetrics {
    /// The counters of `lane`.
    pub fn lane(&self, lane: LaneKind) -> LaneStats {
        self.lanes
            .iter()
            .find(|(l, _)| *l == lane)
            .map(|(_, s)| *s)
            .unwrap_or_default()
    }

    /// The counters of `act`.
    pub fn act(&self, act: ActKind) -> ActStats {
        self.acts
            .iter()
            .find(|(a, _)| *a == act)
            .map(|(_, s)| *s)
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct LaneCell {
    received: AtomicU64,
    received_bytes: AtomicU64,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    dropped: AtomicU64,
    dropped_bytes: AtomicU64,
    shed: AtomicU64,
}

#[derive(Debug, Default)]
struct ActCell {
    attempted: AtomicU64,
    allowed: AtomicU64,
    refused: AtomicU64,
}

/// The live counters of one gate.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    lanes: [LaneCell; ALL_LANES.len()],
    acts: [ActCell; ALL_ACT_KINDS.len()],
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn sub(c: &AtomicU64, n: u64) {
    // Saturating: never wrap below zero even if callers misuse `revoke_delivery`.
    let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

impl Counters {
    pub(crate) fn received(&self, lane: LaneKind, bytes: u64) {
        let c = &self.lanes[lane.index()];
        add(&c.received, 1);
        add(&c.received_bytes, bytes);
    }

    pub(crate) fn delivered(&self, lane: LaneKind, bytes: u64) {
        let c = &self.lanes[lane.index()];
        add(&c.delivered, 1);
        add(&c.delivered_bytes, bytes);
    }

    pub(crate) fn dropped(&self, lane: LaneKind, bytes: u64) {
        let c = &self.lanes[lane.index()];
        add(&c.dropped, 1);
        add(&c.dropped_bytes, bytes);
    }

    /// A frame counted as delivered was refused later (re-check at the agent's door).
    pub(crate) fn undeliver(&self, lane: LaneKind, bytes: u64) {
        let c = &self.lanes[lane.index()];
        sub(&c.delivered, 1);
        sub(&c.delivered_bytes, bytes);
        add(&c.dropped, 1);
        add(&c.dropped_bytes, bytes);
    }

    /// A frame counted as delivered was shed because the agent's queue was full.
    pub(crate) fn shed(&self, lane: LaneKind, bytes: u64) {
        let c = &self.lanes[lane.index()];
        sub(&c.delivered, 1);
        sub(&c.delivered_bytes, bytes);
        add(&c.shed, 1);
    }

    pub(crate) fn act(&self, act: ActKind, allowed: bool) {
        let c = &self.acts[act.index()];
        add(&c.attempted, 1);
        add(if allowed { &c.allowed } else { &c.refused }, 1);
    }

    pub(crate) fn snapshot(&self) -> LaneMetrics {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LaneMetrics {
            lanes: ALL_LANES
                .iter()
                .map(|&l| {
                    let c = &self.lanes[l.index()];
                    let stats = LaneStats {
                        received: g(&c.received),
                        received_bytes: g(&c.received_bytes),
                        delivered: g(&c.delivered),
                        delivered_bytes: g(&c.delivered_bytes),
                        dropped: g(&c.dropped),
                        dropped_bytes: g(&c.dropped_bytes),
                        shed: g(&c.shed),
                    };
                    (l, stats)
                })
                .collect(),
            acts: ALL_ACT_KINDS
                .iter()
                .map(|&a| {
                    let c = &self.acts[a.index()];
                    let stats = ActStats {
                        attempted: g(&c.attempted),
                        allowed: g(&c.allowed),
                        refused: g(&c.refused),
                    };
                    (a, stats)
                })
                .collect(),
        }
    }
}
