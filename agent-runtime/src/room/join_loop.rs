//! Claim-or-join policy (kibitz-wire.md §2.4, §11 steps 7–8), as pure decisions for the shell.
//!
//! The shell owns the PeerJS peers; this machine tells it what to try next and when.
//!
//! # How an "empty room" is detected
//!
//! Nobody can ask the broker "is this room held?". The browser finds out by *claiming*: a claim
//! that opens means nobody held `kbz-v1-<room>` (and the claimer is now the authority). An agent
//! with [`ClaimPolicy::Never`] (the default, kibitz-agents.md §11.1) must not claim, so it dials
//! `kbz-v1-<room>` from its presence peer instead: with no authority the broker answers the
//! OFFER with `EXPIRE` (PeerJS error `peer-unavailable`), which the shell reports as
//! [`ConnectFailure::NoAuthority`]. This machine then reports [`JoinEvent::WaitingForHost`] and
//! keeps retrying with the participant backoff (2 s, 3.5 s, 5 s, 6.5 s), then pauses 1.5 s and
//! starts over, until a host claims the room (or [`JoinLoopOptions::wait_for_host`] runs out).
//! With [`ClaimPolicy::Allowed`] (`--claim`) the loop claims first, exactly like a browser.

use std::time::{Duration, Instant};

use super::timers::{
    CLAIM_ERROR_RETRY, CLAIM_TIMEOUT, MAX_ATTEMPTS, OPEN_TIMEOUT, RECLAIM_DELAY, RETRY_BASE,
    RETRY_STEP,
};

/// Whether this peer may claim the room id and become the authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClaimPolicy {
    /// Never claim (agents by default): wait for a host.
    #[default]
    Never,
    /// Claim like a browser (`--claim`): the agent must then run [`super::AuthorityState`].
    Allowed,
}

/// Join-loop settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JoinLoopOptions {
    /// Claim policy.
    pub claim: ClaimPolicy,
    /// With [`ClaimPolicy::Never`]: give up after waiting this long for a host (`None`: forever).
    pub wait_for_host: Option<Duration>,
}

/// Result of a claim attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The broker opened the peer with the room id: we are the authority.
    Open,
    /// `unavailable-id`: someone holds the room.
    Taken,
    /// Any other error.
    Error,
}

/// Why a participant connect attempt (or an open link) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// `EXPIRE` / `peer-unavailable`: nobody holds `kbz-v1-<room>`.
    NoAuthority,
    /// The DataConnection closed or errored, or the broker errored.
    Closed,
}

/// Inputs from the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinInput {
    /// Begin.
    Start,
    /// A claim attempt finished.
    Claim(ClaimOutcome),
    /// The presence DataConnection opened.
    ConnectOpened,
    /// The presence attempt or link failed.
    ConnectFailed(ConnectFailure),
    /// The current attempt's ICE is still `checking` (earns one open-timeout extension).
    IceChecking,
    /// Participant: the authority went silent ([`super::ParticipantEvent::AuthorityLost`]).
    AuthorityLost,
    /// Authority: our room id was re-claimed by another peer (`unavailable-id` after winning).
    AuthorityGone,
    /// Stop everything.
    Close,
}

/// What the shell should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAction {
    /// Create a peer with id `kbz-v1-<room>` and report [`JoinInput::Claim`].
    Claim,
    /// The claim timed out: destroy that peer.
    AbandonClaim,
    /// Run the authority role on the claimed peer.
    BecomeAuthority,
    /// Dial `kbz-v1-<room>` from the presence peer (closing any previous attempt).
    Connect {
        /// 0 for the first attempt of a run.
        attempt: u32,
    },
    /// The attempt did not open in time: close it.
    AbandonConnect,
    /// The link is open: run the participant role.
    BecomeParticipant,
    /// Tear the current role and its peers down.
    TearDown,
    /// An event.
    Event(JoinEvent),
}

/// Join-loop events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinEvent {
    /// No authority holds the room and we may not claim it: waiting for a host.
    WaitingForHost,
    /// Gave up for good.
    GaveUp(GiveUpReason),
}

/// Why the loop gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// No host appeared within [`JoinLoopOptions::wait_for_host`].
    NoHost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Claiming {
        deadline: Instant,
    },
    Connecting {
        deadline: Instant,
        extended: bool,
        ice_checking: bool,
    },
    RetryWait {
        at: Instant,
    },
    Restart {
        at: Instant,
    },
    Authority,
    Participant,
    Done,
}

/// The claim-or-join loop. See the module docs.
#[derive(Debug, Clone)]
pub struct JoinLoop {
    opts: JoinLoopOptions,
    phase: Phase,
    attempts: u32,
    waiting_since: Option<Instant>,
    out: Vec<JoinAction>,
}

impl JoinLoop {
    /// A loop that has not started.
    pub fn new(opts: JoinLoopOptions) -> Self {
        Self {
            opts,
            phase: Phase::Idle,
            attempts: 0,
            waiting_since: None,
            out: Vec::new(),
        }
    }

    /// True while running the authority role.
    pub fn is_authority(&self) -> bool {
        self.phase == Phase::Authority
    }

    /// True while running the participant role.
    pub fn is_participant(&self) -> bool {
        self.phase == Phase::Participant
    }

    /// True once closed or given up.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<JoinAction> {
        (!self.out.is_empty()).then(|| self.out.remove(0))
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Claiming { deadline } | Phase::Connecting { deadline, .. } => Some(deadline),
            Phase::RetryWait { at } | Phase::Restart { at } => Some(at),
            _ => None,
        }
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Instant, input: JoinInput) {
        match (input, self.phase) {
            (JoinInput::Close, _) => {
                if matches!(
                    self.phase,
                    Phase::Authority | Phase::Participant | Phase::Connecting { .. }
                ) {
                    self.out.push(JoinAction::TearDown);
                }
                self.phase = Phase::Done;
            }
            (_, Phase::Done) => {}
            (JoinInput::Start, Phase::Idle) => self.run(now),
            (JoinInput::Claim(outcome), Phase::Claiming { .. }) => match outcome {
                ClaimOutcome::Open => {
                    self.phase = Phase::Authority;
                    self.out.push(JoinAction::BecomeAuthority);
                }
                ClaimOutcome::Taken => self.connect(now, 0),
                ClaimOutcome::Error => {
                    self.phase = Phase::Restart {
                        at: now + CLAIM_ERROR_RETRY,
                    }
                }
            },
            (JoinInput::ConnectOpened, Phase::Connecting { .. } | Phase::RetryWait { .. }) => {
                self.attempts = 0;
                self.waiting_since = None;
                self.phase = Phase::Participant;
                self.out.push(JoinAction::BecomeParticipant);
            }
            (
                JoinInput::IceChecking,
                Phase::Connecting {
                    deadline, extended, ..
                },
            ) => {
                self.phase = Phase::Connecting {
                    deadline,
                    extended,
                    ice_checking: true,
                };
            }
            (JoinInput::ConnectFailed(why), Phase::Connecting { .. } | Phase::Participant) => {
                self.failed(now, why);
            }
            (JoinInput::AuthorityLost, Phase::Participant)
            | (JoinInput::AuthorityGone, Phase::Authority) => {
                self.out.push(JoinAction::TearDown);
                self.phase = Phase::Restart {
                    at: now + RECLAIM_DELAY,
                };
            }
            _ => {}
        }
    }

    /// Timers: claim timeout, open timeout, retry and restart delays.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Claiming { deadline } if deadline <= now => {
                self.out.push(JoinAction::AbandonClaim);
                self.phase = Phase::Restart {
                    at: now + CLAIM_ERROR_RETRY,
                };
            }
            Phase::Connecting {
                deadline,
                extended,
                ice_checking,
            } if deadline <= now => {
                if ice_checking && !extended {
                    self.phase = Phase::Connecting {
                        deadline: now + OPEN_TIMEOUT,
                        extended: true,
                        ice_checking,
                    };
                } else {
                    self.out.push(JoinAction::AbandonConnect);
                    self.schedule_reconnect(now);
                }
            }
            Phase::RetryWait { at } if at <= now => {
                self.attempts += 1;
                let attempt = self.attempts;
                self.connect(now, attempt);
            }
            Phase::Restart { at } if at <= now => self.run(now),
            _ => {}
        }
    }

    /// One run of the browser's `loop()`.
    fn run(&mut self, now: Instant) {
        if self.host_wait_over(now) {
            return;
        }
        self.attempts = 0;
        match self.opts.claim {
            ClaimPolicy::Allowed => {
                self.phase = Phase::Claiming {
                    deadline: now + CLAIM_TIMEOUT,
                };
                self.out.push(JoinAction::Claim);
            }
            ClaimPolicy::Never => self.connect(now, 0),
        }
    }

    fn connect(&mut self, now: Instant, attempt: u32) {
        self.phase = Phase::Connecting {
            deadline: now + OPEN_TIMEOUT,
            extended: false,
            ice_checking: false,
        };
        self.out.push(JoinAction::Connect { attempt });
    }

    fn failed(&mut self, now: Instant, why: ConnectFailure) {
        match (why, self.opts.claim) {
            (ConnectFailure::NoAuthority, ClaimPolicy::Allowed) => {
                // `peer-unavailable` gives up at once; the rerun races to claim.
                self.out.push(JoinAction::TearDown);
                self.phase = Phase::Restart {
                    at: now + RECLAIM_DELAY,
                };
            }
            (ConnectFailure::NoAuthority, ClaimPolicy::Never) => {
                if self.waiting_since.is_none() {
                    self.waiting_since = Some(now);
                    self.out.push(JoinAction::Event(JoinEvent::WaitingForHost));
                }
                if !self.host_wait_over(now) {
                    self.schedule_reconnect(now);
                }
            }
            (ConnectFailure::Closed, _) => self.schedule_reconnect(now),
        }
    }

    /// `scheduleReconnect`: `2000 + attempts*1500` ms, then give up to a rerun after `MAX_ATTEMPTS`.
    fn schedule_reconnect(&mut self, now: Instant) {
        if self.attempts >= MAX_ATTEMPTS {
            self.out.push(JoinAction::TearDown);
            self.phase = Phase::Restart {
                at: now + RECLAIM_DELAY,
            };
            return;
        }
        self.phase = Phase::RetryWait {
            at: now + RETRY_BASE + RETRY_STEP * self.attempts,
        };
    }

    fn host_wait_over(&mut self, now: Instant) -> bool {
        let over = matches!((self.waiting_since, self.opts.wait_for_host), (Some(since), Some(max)) if now.saturating_duration_since(since) >= max);
        if over {
            self.out
                .push(JoinAction::Event(JoinEvent::GaveUp(GiveUpReason::NoHost)));
            self.phase = Phase::Done;
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(l: &mut JoinLoop) -> Vec<JoinAction> {
        std::iter::from_fn(|| l.poll_action()).collect()
    }

    #[test]
    fn allowed_claims_then_joins_when_taken() {
        let t0 = Instant::now();
        let mut l = JoinLoop::new(JoinLoopOptions {
            claim: ClaimPolicy::Allowed,
            ..Default::default()
        });
        l.handle_input(t0, JoinInput::Start);
        assert_eq!(drain(&mut l), [JoinAction::Claim]);
        assert_eq!(l.poll_timeout(), Some(t0 + CLAIM_TIMEOUT));
        l.handle_input(t0, JoinInput::Claim(ClaimOutcome::Taken));
        assert_eq!(drain(&mut l), [JoinAction::Connect { attempt: 0 }]);
        l.handle_input(t0, JoinInput::ConnectOpened);
        assert_eq!(drain(&mut l), [JoinAction::BecomeParticipant]);
        assert!(l.is_participant());
    }

    #[test]
    fn claim_open_makes_authority_and_error_retries_after_3s() {
        let t0 = Instant::now();
        let mut l = JoinLoop::new(JoinLoopOptions {
            claim: ClaimPolicy::Allowed,
            ..Default::default()
        });
        l.handle_input(t0, JoinInput::Start);
        l.handle_input(t0, JoinInput::Claim(ClaimOutcome::Error));
        drain(&mut l);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_millis(3000)));
        l.handle_timeout(t0 + Duration::from_millis(3000));
        assert_eq!(drain(&mut l), [JoinAction::Claim]);
        l.handle_input(t0, JoinInput::Claim(ClaimOutcome::Open));
        assert_eq!(drain(&mut l), [JoinAction::BecomeAuthority]);
        assert!(l.is_authority());
    }

    #[test]
    fn claim_timeout_abandons_after_8s() {
        let t0 = Instant::now();
        let mut l = JoinLoop::new(JoinLoopOptions {
            claim: ClaimPolicy::Allowed,
            ..Default::default()
        });
        l.handle_input(t0, JoinInput::Start);
        drain(&mut l);
        l.handle_timeout(t0 + Duration::from_millis(7999));
        assert!(drain(&mut l).is_empty());
        l.handle_timeout(t0 + CLAIM_TIMEOUT);
        assert_eq!(drain(&mut l), [JoinAction::AbandonClaim]);
    }

    #[test]
    fn never_policy_waits_for_host_with_backoff_and_never_claims() {
        let t0 = Instant::now();
        let mut l = JoinLoop::new(JoinLoopOptions::default());
        l.handle_input(t0, JoinInput::Start);
        assert_eq!(drain(&mut l), [JoinAction::Connect { attempt: 0 }]);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..4 {
            l.handle_input(now, JoinInput::ConnectFailed(ConnectFailure::NoAuthority));
            let at = l.poll_timeout().expect("retry scheduled");
            delays.push((at - now).as_millis());
            now = at;
            l.handle_timeout(now);
        }
        assert_eq!(delays, [2000, 3500, 5000, 6500]);
        let actions = drain(&mut l);
        assert_eq!(actions[0], JoinAction::Event(JoinEvent::WaitingForHost));
        assert!(!actions.contains(&JoinAction::Claim));
        // Fifth failure: pause 1.5 s, then start over (still no claim).
        l.handle_input(now, JoinInput::ConnectFailed(ConnectFailure::NoAuthority));
        assert_eq!(l.poll_timeout(), Some(now + RECLAIM_DELAY));
        l.handle_timeout(now + RECLAIM_DELAY);
        assert_eq!(
            drain(&mut l),
            [JoinAction::TearDown, JoinAction::Connect { attempt: 0 }]
        );
    }

    #[test]
    fn never_policy_gives_up_after_wait_for_host() {
        let t0 = Instant::now();
        let opts = JoinLoopOptions {
            wait_for_host: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let mut l = JoinLoop::new(opts);
        l.handle_input(t0, JoinInput::Start);
        l.handle_input(t0, JoinInput::ConnectFailed(ConnectFailure::NoAuthority));
        l.handle_timeout(t0 + Duration::from_secs(2));
        l.handle_input(
            t0 + Duration::from_secs(6),
            JoinInput::ConnectFailed(ConnectFailure::NoAuthority),
        );
        assert!(drain(&mut l).contains(&JoinAction::Event(JoinEvent::GaveUp(GiveUpReason::NoHost))));
        assert!(l.is_done());
    }

    #[test]
    fn open_timeout_is_15s_with_one_ice_extension() {
        let t0 = Instant::now();
        let mut l = JoinLoop::new(JoinLoopOptions::default());
        l.handle_input(t0, JoinInput::Start);
        l.handle_input(t0, JoinInput::IceChecking);
        drain(&mut l);
        l.handle_timeout(t0 + OPEN_TIMEOUT);
        assert!(drain(&mut l).is_empty());
        assert_eq!(l.poll_timeout(), Some(t0 + OPEN_TIMEOUT * 2));
        l.handle_timeout(t0 + OPEN_TIMEOUT * 2);
        assert_eq!(drain(&mut l), [JoinAction::AbandonConnect]);
    }

    #[test]
    fn authority_lost_reruns_after_reclaim_delay() {
        let t0 = Instant::now();
        let mut l = JoinLoop::new(JoinLoopOptions {
            claim: ClaimPolicy::Allowed,
            ..Default::default()
        });
        l.handle_input(t0, JoinInput::Start);
        l.handle_input(t0, JoinInput::Claim(ClaimOutcome::Taken));
        l.handle_input(t0, JoinInput::ConnectOpened);
        drain(&mut l);
        l.handle_input(t0, JoinInput::AuthorityLost);
        assert_eq!(drain(&mut l), [JoinAction::TearDown]);
        l.handle_timeout(t0 + Duration::from_millis(1499));
        assert!(drain(&mut l).is_empty());
        l.handle_timeout(t0 + RECLAIM_DELAY);
        assert_eq!(drain(&mut l), [JoinAction::Claim]);
    }
}
