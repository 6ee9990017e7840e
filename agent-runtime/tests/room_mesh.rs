//! Data-mesh planner: glare rule, drop grace, self-heal, `mh` cadence, watchdogs, `bye`.

use std::time::{Duration, Instant};

use agent_runtime::room::{MediaHealth, MeshAction, MeshEvent, MeshOptions, MeshPlanner};
use agent_runtime::wire::control::ControlMsg;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Sim {
    t0: Instant,
    now: Instant,
    p: MeshPlanner,
    log: Vec<(Duration, MeshAction)>,
}

impl Sim {
    fn new(self_id: &str, opts: MeshOptions) -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            p: MeshPlanner::new(t0, self_id, opts),
            log: Vec::new(),
        }
    }
    fn drain(&mut self) {
        while let Some(a) = self.p.poll_action() {
            self.log.push((self.now - self.t0, a));
        }
    }
    fn run_until(&mut self, at: Duration) {
        let target = self.t0 + at;
        while let Some(next) = self.p.poll_timeout().filter(|t| *t <= target) {
            self.now = self.now.max(next);
            self.p.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }
    fn roster(&mut self, ids: &[&str]) {
        self.p.on_roster(self.now, ids.iter().copied());
        self.drain();
    }
    /// Runs to `at` in 1 s steps, with `peers` sending traffic every step.
    fn run_alive(&mut self, at: Duration, peers: &[&str]) {
        while self.now - self.t0 < at {
            let step = (self.now - self.t0 + ms(1000)).min(at);
            self.run_until(step);
            for p in peers {
                self.p.on_received(self.now, p, None);
            }
        }
    }
    fn at(&self, f: impl Fn(&MeshAction) -> bool) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|(_, a)| f(a))
            .map(|(t, _)| *t)
            .collect()
    }
}

fn dial(peer: &str) -> impl Fn(&MeshAction) -> bool + '_ {
    move |a| matches!(a, MeshAction::Dial { peer: p } if p == peer)
}

fn close(peer: &str) -> impl Fn(&MeshAction) -> bool + '_ {
    move |a| matches!(a, MeshAction::Close { peer: p } if p == peer)
}

fn mh(peer: &str) -> impl Fn(&MeshAction) -> bool + '_ {
    move |a| matches!(a, MeshAction::SendControl { peer: p, msg: ControlMsg::Mh { .. } } if p == peer)
}

#[test]
fn smaller_id_dials_once_larger_only_answers() {
    let mut s = Sim::new("m", MeshOptions::default());
    s.roster(&["a", "m", "z", "zz"]);
    let dials: Vec<_> = s.log.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        dials,
        [
            MeshAction::Dial { peer: "z".into() },
            MeshAction::Dial { peer: "zz".into() }
        ]
    );
    s.roster(&["a", "m", "z", "zz"]);
    assert_eq!(s.log.len(), 2, "dial once");
}

#[test]
fn absent_member_dropped_after_7s_grace_unless_back() {
    let mut s = Sim::new("a", MeshOptions::default());
    s.roster(&["a", "b", "c"]);
    s.p.on_link_open(s.now, "b");
    s.p.on_link_open(s.now, "c");
    s.run_until(ms(1000));
    s.roster(&["a", "c"]);
    s.run_alive(ms(7999), &["b", "c"]);
    assert!(s.at(close("b")).is_empty());
    s.run_alive(ms(8000), &["b", "c"]);
    assert_eq!(s.at(close("b")), [ms(8000)]);
    // c leaves and comes back within the grace: kept, not re-dialled.
    s.roster(&["a"]);
    s.run_alive(ms(12_000), &["c"]);
    s.roster(&["a", "c"]);
    s.run_alive(ms(20_000), &["c"]);
    assert!(s.at(close("c")).is_empty());
    assert_eq!(s.at(dial("c")).len(), 1);
    // b is wanted again later: dialled afresh.
    s.roster(&["a", "b", "c"]);
    assert_eq!(s.at(dial("b")).len(), 2);
}

#[test]
fn our_dropped_link_is_redialled_after_800ms_answerer_never_redials() {
    let mut s = Sim::new("a", MeshOptions::default());
    s.roster(&["a", "b"]);
    s.p.on_link_open(s.now, "b");
    s.run_until(ms(1000));
    s.p.on_link_closed(s.now, "b");
    s.run_until(ms(1799));
    assert_eq!(s.at(dial("b")), [ms(0)]);
    s.run_until(ms(1800));
    assert_eq!(s.at(dial("b")), [ms(0), ms(1800)]);

    let mut s = Sim::new("z", MeshOptions::default());
    s.roster(&["a", "z"]);
    s.p.on_incoming(s.now, "a");
    s.p.on_link_open(s.now, "a");
    s.p.on_link_closed(s.now, "a");
    s.run_until(ms(5000));
    assert!(s.at(dial("a")).is_empty());
}

#[test]
fn mh_every_2s_on_open_links_and_cap_only_when_bulk_enabled() {
    let mut s = Sim::new("a", MeshOptions::default());
    s.roster(&["a", "b"]);
    s.p.on_link_open(s.now, "b");
    s.drain();
    assert!(s.log.iter().all(|(_, a)| !matches!(
        a,
        MeshAction::SendControl {
            msg: ControlMsg::Cap { .. },
            ..
        }
    )));
    s.p.set_media_health(
        "b",
        MediaHealth {
            v: 0.0,
            a: 32.0,
            ov: 0.0,
            oa: 40.0,
        },
    );
    // Keep receiving so the watchdog stays quiet.
    for t in (1000..=6000).step_by(1000) {
        s.run_until(ms(t));
        s.p.on_received(s.now, "b", Some(&MediaHealth::default().to_msg()));
    }
    assert_eq!(s.at(mh("b")), [ms(2000), ms(4000), ms(6000)]);
    let last = s
        .log
        .iter()
        .rev()
        .find(|(_, a)| mh("b")(a))
        .map(|(_, a)| a.clone());
    assert_eq!(
        last,
        Some(MeshAction::SendControl {
            peer: "b".into(),
            msg: ControlMsg::Mh {
                v: 0.0,
                a: 32.0,
                ov: 0.0,
                oa: 40.0
            }
        })
    );
    assert_eq!(s.p.peer_health("b"), Some(MediaHealth::default()));

    let mut s = Sim::new(
        "a",
        MeshOptions {
            advertise_bulk: true,
        },
    );
    s.roster(&["a", "b"]);
    s.p.on_link_open(s.now, "b");
    s.drain();
    assert!(s.log.contains(&(
        ms(0),
        MeshAction::SendControl {
            peer: "b".into(),
            msg: ControlMsg::Cap { bulk: true }
        }
    )));
}

#[test]
fn dead_open_sig_is_redialled_by_the_dialler_at_most_3_times() {
    let mut s = Sim::new("a", MeshOptions::default());
    s.roster(&["a", "b"]);
    s.p.on_link_open(s.now, "b");
    // Nothing received since 0 s: dead once silence exceeds 8 s, checked on the 2 s heartbeat.
    s.run_until(ms(9999));
    assert_eq!(s.at(dial("b")), [ms(0)]);
    s.run_until(ms(10_000));
    assert_eq!(s.at(dial("b")), [ms(0), ms(10_000)]);
    assert_eq!(
        s.at(close("b")),
        [ms(10_000)],
        "closes the old link before re-dialling"
    );
    assert!(s.log.iter().any(|(_, a)| *a
        == MeshAction::Event(MeshEvent::Recovering {
            peer: "b".into(),
            attempt: 1
        })));
    // The new link never opens: stuck → re-dial again, up to the budget of 3.
    s.run_until(ms(60_000));
    assert_eq!(s.at(dial("b")).len(), 4);
    // Media flow resets the budget.
    s.p.on_media_flow("b");
    s.run_until(ms(80_000));
    assert!(s.at(dial("b")).len() > 4);
}

#[test]
fn answerer_counts_but_never_redials_a_dead_link() {
    let mut s = Sim::new("z", MeshOptions::default());
    s.roster(&["a", "z"]);
    s.p.on_incoming(s.now, "a");
    s.p.on_link_open(s.now, "a");
    s.run_until(ms(30_000));
    assert!(s.at(dial("a")).is_empty());
    assert!(!s.at(mh("a")).is_empty(), "answerer sends mh too");
}

#[test]
fn bye_drops_the_peer_at_once_and_leave_sends_bye_then_closes_250ms_later() {
    let mut s = Sim::new("a", MeshOptions::default());
    s.roster(&["a", "b", "c"]);
    s.p.on_link_open(s.now, "b");
    s.p.on_link_open(s.now, "c");
    s.run_until(ms(500));
    s.p.on_received(s.now, "b", Some(&ControlMsg::Bye));
    s.drain();
    assert_eq!(s.at(close("b")), [ms(500)]);
    assert!(s
        .log
        .iter()
        .any(|(_, a)| *a == MeshAction::Event(MeshEvent::PeerLeft { peer: "b".into() })));
    s.p.on_link_closed(s.now, "b");
    s.run_until(ms(3000));
    assert_eq!(s.at(dial("b")).len(), 1, "no re-dial after bye");

    s.p.leave(s.now);
    s.drain();
    assert!(s.log.contains(&(
        ms(3000),
        MeshAction::SendControl {
            peer: "c".into(),
            msg: ControlMsg::Bye
        }
    )));
    s.run_until(ms(3249));
    assert!(s.at(close("c")).is_empty());
    s.run_until(ms(3250));
    assert_eq!(s.at(close("c")), [ms(3250)]);
    assert_eq!(s.p.poll_timeout(), None);
}
