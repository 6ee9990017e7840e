//! One agent's task: its inbox (two queues), the gate re-check at its door, and the
//! start/event/stop life cycle under a cancellation token.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;

use crate::lane_gate::LaneGate;
use crate::wire::presence::Roster;

use super::context::Context;
use super::event::AgentEvent;
use super::Agent;

/// An item of the never-dropping control queue.
#[derive(Debug)]
pub(crate) enum Queued {
    /// Any non-media event.
    Event(AgentEvent),
    /// The latest roster waits in the shared slot (at most one marker is queued at a time).
    Roster,
}

/// The receiving side of an agent's inbox.
pub(crate) struct Inbox {
    pub(crate) control: mpsc::UnboundedReceiver<Queued>,
    pub(crate) media: mpsc::Receiver<AgentEvent>,
    pub(crate) roster: Arc<Mutex<Option<Roster>>>,
}

/// How an agent's task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentExit {
    /// Stopped cleanly (`on_stop` ran and returned `Ok`).
    Stopped,
    /// `on_start` returned an error; the agent never received events.
    StartFailed(String),
    /// `on_stop` returned an error.
    StopFailed(String),
    /// `on_stop` did not finish within the host's deadline.
    StopTimedOut,
    /// The agent panicked; the other agents kept running.
    Panicked(String),
    /// The task was aborted (did not end within the shutdown deadline).
    Aborted,
}

/// What the runner needs besides the agent.
pub(crate) struct RunParts {
    pub(crate) cx: Context,
    pub(crate) inbox: Inbox,
    pub(crate) gate: Arc<LaneGate>,
    pub(crate) stop_deadline: Duration,
}

/// Run one agent to the end, catching panics.
pub(crate) async fn run(agent: Box<dyn Agent>, parts: RunParts) -> AgentExit {
    match AssertUnwindSafe(life(agent, parts)).catch_unwind().await {
        Ok(exit) => exit,
        Err(payload) => AgentExit::Panicked(panic_message(payload.as_ref())),
    }
}

async fn life(mut agent: Box<dyn Agent>, parts: RunParts) -> AgentExit {
    let RunParts {
        mut cx,
        mut inbox,
        gate,
        stop_deadline,
    } = parts;
    let cancel = cx.cancel.clone();
    let started = tokio::select! {
        biased;
        _ = cancel.cancelled() => Ok(()),
        r = agent.on_start(&mut cx) => r,
    };
    if let Err(e) = started {
        tracing::warn!(agent = %cx.name, error = %e, "agent failed to start");
        return AgentExit::StartFailed(e.to_string());
    }
    loop {
        let ev = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            q = inbox.control.recv() => match q {
                Some(Queued::Event(ev)) => ev,
                Some(Queued::Roster) => {
                    let latest = inbox.roster.lock().unwrap_or_else(|e| e.into_inner()).take();
                    match latest {
                        Some(r) => AgentEvent::Roster(r),
                        None => continue,
                    }
                }
                None => break,
            },
            Some(ev) = inbox.media.recv() => ev,
        };
        // The grant may have changed while the event was queued: the door re-checks it.
        if !gate.recheck(&ev).is_deliver() {
            continue;
        }
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = agent.on_event(&mut cx, ev) => r,
        };
        if let Err(e) = result {
            tracing::warn!(agent = %cx.name, error = %e, "agent event handler failed");
        }
    }
    match tokio::time::timeout(stop_deadline, agent.on_stop(&mut cx)).await {
        Ok(Ok(())) => AgentExit::Stopped,
        Ok(Err(e)) => AgentExit::StopFailed(e.to_string()),
        Err(_) => AgentExit::StopTimedOut,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
