//! Graceful leave (kibitz-wire.md §11 step 17): `bye` on every `sig` link, 250 ms later the
//! links close and presence gets `voice on:false` + `leave`, then the broker sockets close.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::driver::Driver;
use super::event::SessionEvent;
use super::input::LinkId;

/// Time given to queued presence messages and close signals before the sockets go.
const FLUSH_DELAY: Duration = Duration::from_millis(200);
/// `bye` → close on the mesh.
const BYE_DELAY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// Where a graceful leave is.
pub(crate) enum LeaveStage {
    /// `bye` sent on the mesh; links close at `at`.
    Bye,
    /// Presence `voice off`/`leave` queued, links closing; sockets go at `at`.
    Flush,
}

/// A leave in progress.
pub(crate) struct Leaving {
    pub(crate) stage: LeaveStage,
    pub(crate) at: Instant,
    /// Skip the presence goodbye (we were kicked or refused).
    pub(crate) quiet: bool,
    pub(crate) done: Vec<oneshot::Sender<()>>,
}

impl Driver {
    /// Starts the graceful leave (`quiet`: skip the presence goodbye).
    pub(crate) fn begin_leave(
        &mut self,
        now: Instant,
        quiet: bool,
        done: Option<oneshot::Sender<()>>,
    ) {
        if let Some(l) = self.leaving.as_mut() {
            l.quiet |= quiet;
            l.done.extend(done);
            return;
        }
        tracing::debug!(quiet, "leaving");
        self.planner.leave(now);
        self.leaving = Some(Leaving {
            stage: LeaveStage::Bye,
            at: now + BYE_DELAY,
            quiet,
            done: done.into_iter().collect(),
        });
    }

    /// Whether a leave is in progress.
    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.is_some()
    }

    /// Advances the leave when its deadline passed.
    pub(crate) fn leave_timeout(&mut self, now: Instant) {
        let Some(l) = self.leaving.as_ref().filter(|l| l.at <= now) else {
            return;
        };
        match l.stage {
            LeaveStage::Bye => {
                if !l.quiet {
                    self.participant.leave(now);
                    while let Some(o) = self.participant.poll_output() {
                        self.on_participant_output(now, o);
                    }
                }
                let ids: Vec<LinkId> = self.links.keys().copied().collect();
                for id in ids {
                    self.close_link(id);
                }
                self.join.handle_input(now, crate::room::JoinInput::Close);
                if let Some(l) = self.leaving.as_mut() {
                    l.stage = LeaveStage::Flush;
                    l.at = now + FLUSH_DELAY;
                }
            }
            LeaveStage::Flush => {
                self.shutdown_all();
                self.stopped = true;
                self.emit(SessionEvent::Left);
                for d in self.leaving.take().map(|l| l.done).unwrap_or_default() {
                    let _ = d.send(());
                }
            }
        }
    }

    /// Closes every link and both broker identities (and a held room id).
    pub(crate) fn shutdown_all(&mut self) {
        let ids: Vec<LinkId> = self.links.keys().copied().collect();
        for id in ids {
            self.close_link(id);
        }
        if let Some((_, h)) = self.claim_task.take() {
            h.abort();
        }
        if let Some((_, p)) = self.claimed.take() {
            p.shutdown(&mut self.tasks);
        }
        if let Some(a) = self.authority.take() {
            a.peer.shutdown(&mut self.tasks);
        }
        self.media.shutdown(&mut self.tasks);
        self.presence.shutdown(&mut self.tasks);
    }
}
