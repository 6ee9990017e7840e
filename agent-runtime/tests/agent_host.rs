//! The agent runtime host against a fake room: manifest and lane checks before start,
//! isolation of slow and panicking agents, shedding, revoke, act gate, shutdown.
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::agent::{
    Agent, AgentError, AgentEvent, AgentExit, AgentHost, AgentSpec, Artifact, ArtifactRecord,
    AudioFrame, Context, HostOptions, Lanes, StartError,
};
use agent_runtime::lane_gate::{ActError, LaneKind};
use agent_runtime::session::SessionEvent;
use agent_runtime::wire::presence::{CallMember, LobbyStatus, Roster};
use async_trait::async_trait;
use capability_manifest::{Capability::*, Grant, SignedManifestError};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use agent_support::{grant, manifest_json, sign, spec, verify_opts, FakeRoom, Sent};

/// Records every event with the (virtual) time it reached `on_event`.
struct Probe {
    lanes: Lanes,
    delay: Duration,
    stop_delay: Duration,
    tx: mpsc::UnboundedSender<(Instant, AgentEvent)>,
    started: Arc<AtomicBool>,
    bomb: bool,
}

impl Probe {
    fn new(lanes: Lanes) -> (Probe, mpsc::UnboundedReceiver<(Instant, AgentEvent)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let probe = Probe {
            lanes,
            delay: Duration::ZERO,
            stop_delay: Duration::ZERO,
            tx,
            started: Arc::new(AtomicBool::new(false)),
            bomb: false,
        };
        (probe, rx)
    }

    fn slow(mut self, delay: Duration) -> Probe {
        self.delay = delay;
        self
    }
}

#[async_trait]
impl Agent for Probe {
    fn lanes(&self) -> Lanes {
        self.lanes.clone()
    }

    async fn on_start(&mut self, _cx: &mut Context) -> Result<(), AgentError> {
        self.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError> {
        if let AgentEvent::Chat { text, .. } = &ev {
            if self.bomb && text == "boom" {
                panic!("probe exploded");
            }
        }
        let _ = self.tx.send((Instant::now(), ev));
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let _ = cx;
        Ok(())
    }

    async fn on_stop(&mut self, cx: &mut Context) -> Result<(), AgentError> {
        tokio::time::sleep(self.stop_delay).await;
        cx.emit(Artifact::Summary { text: "bye".into() });
        Ok(())
    }
}

fn chat(text: &str) -> AgentEvent {
    AgentEvent::Chat {
        from: "p1".into(),
        name: "Ann".into(),
        text: text.into(),
        dm: false,
    }
}

fn audio(i: u64) -> AgentEvent {
    AgentEvent::Audio(AudioFrame {
        speaker_id: "p1".into(),
        speaker_name: "Ann".into(),
        pcm: vec![1i16; 320].into(),
        start: Duration::from_millis(20 * i),
    })
}

fn chat_lanes() -> Lanes {
    Lanes::new().require(ReadChat)
}

fn host(room: Arc<FakeRoom>) -> AgentHost {
    AgentHost::new(room, HostOptions::default())
}

#[tokio::test]
async fn lanes_beyond_the_manifest_are_refused_before_start() {
    let mut host = host(Arc::new(FakeRoom::default()));
    let (probe, _rx) = Probe::new(Lanes::new().require(ReadChat).optional(HearAudio));
    let started = Arc::clone(&probe.started);
    let err = host
        .spawn(probe, spec(&[ReadChat, ReadRoster]))
        .unwrap_err();
    match &err {
        StartError::LanesExceedManifest {
            undeclared,
            declared,
            ..
        } => {
            assert_eq!(undeclared, "hear-audio");
            assert_eq!(declared, "read-chat, read-roster");
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("does not declare: hear-audio"), "{msg}");
    assert!(host.is_empty());
    tokio::task::yield_now().await;
    assert!(!started.load(Ordering::SeqCst));
}

#[tokio::test]
async fn unverifiable_manifests_are_refused() {
    let mut host = host(Arc::new(FakeRoom::default()));
    let token = sign(&manifest_json(&[ReadChat], &[]));
    // Flip one character of the signature.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (probe, _rx) = Probe::new(chat_lanes());
    let started = Arc::clone(&probe.started);
    let err = host
        .spawn(
            probe,
            AgentSpec {
                verify: verify_opts(),
                ..AgentSpec::new(tampered)
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StartError::Unverified(SignedManifestError::BadSignature)
        ),
        "{err:?}"
    );
    // Pinned to another key.
    let (probe2, _rx2) = Probe::new(chat_lanes());
    let mut verify = verify_opts();
    verify.expected_key = Some("someone-else".into());
    let err = host
        .spawn(
            probe2,
            AgentSpec {
                verify,
                ..AgentSpec::new(token)
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StartError::Unverified(SignedManifestError::WrongKey { .. })
        ),
        "{err:?}"
    );
    assert!(host.is_empty());
    assert!(!started.load(Ordering::SeqCst));
}

#[tokio::test]
async fn required_lanes_must_be_granted_unless_optional() {
    let mut host = host(Arc::new(FakeRoom::default()));
    let lanes = Lanes::new().require(HearAudio).require(ReadChat);
    let (probe, _rx) = Probe::new(lanes.clone());
    let err = host.spawn(probe, spec(&[HearAudio, ReadChat])).unwrap_err();
    assert!(
        matches!(err, StartError::RequiredLaneDenied { cap: HearAudio, .. }),
        "{err:?}"
    );
    // The manifest marks the lane optional: the agent starts and waits for the grant.
    let mut m = manifest_json(&[HearAudio, ReadChat], &[]);
    m["lanes"][0]["optional"] = json!(true);
    let (probe, _rx) = Probe::new(lanes);
    let spec = AgentSpec {
        verify: verify_opts(),
        ..AgentSpec::new(sign(&m))
    };
    host.spawn(probe, spec).unwrap();
    assert_eq!(host.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_agent_does_not_delay_another() {
    let mut host = host(Arc::new(FakeRoom::default()));
    let (slow, mut slow_rx) = Probe::new(chat_lanes());
    host.spawn(slow.slow(Duration::from_secs(2)), spec(&[ReadChat]))
        .unwrap();
    let (fast, mut fast_rx) = Probe::new(chat_lanes());
    host.spawn(fast, spec(&[ReadChat])).unwrap();

    let t0 = Instant::now();
    for i in 0..3 {
        host.dispatch(&chat(&format!("line {i}")));
    }
    for i in 0..3 {
        let (at, ev) = fast_rx.recv().await.unwrap();
        assert_eq!(ev, chat(&format!("line {i}")));
        // On the paused clock: the fast agent got every line before any of the slow agent's
        // 2 s sleeps elapsed.
        assert!(
            at - t0 < Duration::from_secs(2),
            "line {i} at {:?}",
            at - t0
        );
    }
    // Meanwhile the slow agent has seen at most its first line.
    let mut slow_times = Vec::new();
    while let Ok((at, _)) = slow_rx.try_recv() {
        slow_times.push(at);
    }
    assert!(slow_times.len() <= 1, "{}", slow_times.len());
    // It still gets all three, one per 2 s of its own sleeping.
    while slow_times.len() < 3 {
        slow_times.push(slow_rx.recv().await.unwrap().0);
    }
    assert_eq!(slow_times[2] - t0, Duration::from_secs(4));
    let _ = host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn audio_is_shed_when_an_agent_falls_behind_but_chat_is_not() {
    let room = FakeRoom::with_grant(grant(&[HearAudio, ReadChat], &[]));
    let mut host = AgentHost::new(
        room,
        HostOptions {
            media_queue: 4,
            ..HostOptions::default()
        },
    );
    let (probe, mut rx) = Probe::new(Lanes::new().require(HearAudio).require(ReadChat));
    let id = host
        .spawn(
            probe.slow(Duration::from_millis(500)),
            spec(&[HearAudio, ReadChat]),
        )
        .unwrap();
    for i in 0..40 {
        host.dispatch(&audio(i));
        if i % 8 == 0 {
            host.dispatch(&chat(&format!("chat {i}")));
        }
    }
    tokio::time::sleep(Duration::from_secs(120)).await;
    let mut audio_seen = 0u64;
    let mut chats = Vec::new();
    while let Ok((_, ev)) = rx.try_recv() {
        match ev {
            AgentEvent::Audio(_) => audio_seen += 1,
            AgentEvent::Chat { text, .. } => chats.push(text),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(chats, ["chat 0", "chat 8", "chat 16", "chat 24", "chat 32"]);
    assert!(audio_seen <= 5, "{audio_seen}");
    let s = host.metrics(id).unwrap().lane(LaneKind::Audio);
    assert_eq!(s.received, 40);
    assert_eq!(s.delivered, audio_seen);
    assert_eq!(s.shed, 40 - audio_seen);
    assert_eq!(s.dropped, 0);
    let c = host.metrics(id).unwrap().lane(LaneKind::Chat);
    assert_eq!((c.delivered, c.shed), (5, 0));
    let _ = host.shutdown().await;
}

#[tokio::test]
async fn a_panicking_agent_is_reported_and_the_others_keep_running() {
    let mut host = host(Arc::new(FakeRoom::default()));
    let (mut bomb, _bomb_rx) = Probe::new(chat_lanes());
    bomb.bomb = true;
    let bomb_id = host.spawn(bomb, spec(&[ReadChat])).unwrap();
    let (calm, mut calm_rx) = Probe::new(chat_lanes());
    let calm_id = host.spawn(calm, spec(&[ReadChat])).unwrap();

    host.dispatch(&chat("boom"));
    let report = host.next_exit().await.unwrap();
    assert_eq!(report.id, bomb_id);
    assert_eq!(report.exit, AgentExit::Panicked("probe exploded".into()));
    assert_eq!(host.agents().len(), 1);

    host.dispatch(&chat("after"));
    assert_eq!(calm_rx.recv().await.unwrap().1, chat("boom"));
    assert_eq!(calm_rx.recv().await.unwrap().1, chat("after"));
    let reports = host.shutdown().await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].id, calm_id);
    assert_eq!(reports[0].exit, AgentExit::Stopped);
}

#[tokio::test(start_paused = true)]
async fn revoke_stops_frames_already_queued() {
    let room = FakeRoom::with_grant(grant(&[HearAudio, ReadChat], &[]));
    let mut host = AgentHost::new(room, HostOptions::default());
    let (probe, mut rx) = Probe::new(Lanes::new().optional(HearAudio).require(ReadChat));
    let id = host
        .spawn(
            probe.slow(Duration::from_secs(1)),
            spec(&[HearAudio, ReadChat]),
        )
        .unwrap();
    for i in 0..10 {
        host.dispatch(&audio(i));
    }
    // The agent is busy with the first frame; nine wait in its queue.
    let (_, first) = rx.recv().await.unwrap();
    assert!(matches!(first, AgentEvent::Audio(_)));
    host.set_host_grant(Some(Grant::empty()));
    // Frames arriving after the revoke are refused at the gate.
    host.dispatch(&audio(10));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut later = Vec::new();
    while let Ok((_, ev)) = rx.try_recv() {
        later.push(ev);
    }
    match later.as_slice() {
        [AgentEvent::GrantChanged { effective }] => {
            assert!(effective.perceive.is_empty() && effective.act.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    let s = host.metrics(id).unwrap().lane(LaneKind::Audio);
    assert_eq!((s.received, s.delivered, s.dropped), (11, 1, 10));
    let _ = host.shutdown().await;
}

/// Tries every act on the chat line "go" and reports the results.
struct Actor {
    tx: mpsc::UnboundedSender<Vec<Result<(), String>>>,
}

#[async_trait]
impl Agent for Actor {
    fn lanes(&self) -> Lanes {
        Lanes::new()
            .require(ReadChat)
            .optional(SendChat)
            .optional(Act)
    }

    async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError> {
        let flat = |r: Result<(), ActError>| {
            r.map_err(|e| match e {
                ActError::NotGranted { cap, .. } => format!("not granted: {cap}"),
                other => other.to_string(),
            })
        };
        if matches!(&ev, AgentEvent::Chat { text, .. } if text == "go") {
            let results = vec![
                flat(cx.say("hello").await),
                flat(cx.say_to("p1", "psst").await),
                flat(cx.send_to("p1", json!({"n": 1})).await),
                flat(cx.act(json!({"play": "7S"})).await),
            ];
            let _ = self.tx.send(results);
        }
        Ok(())
    }
}

#[tokio::test]
async fn acts_without_the_capability_fail_and_send_nothing() {
    let room = Arc::new(FakeRoom::default());
    let mut host = AgentHost::new(Arc::clone(&room) as _, HostOptions::default());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = host
        .spawn(Actor { tx }, spec(&[ReadChat, SendChat, Act]))
        .unwrap();
    host.dispatch(&chat("go"));
    let results = rx.recv().await.unwrap();
    let refused = Err("not granted: send-chat".to_owned());
    assert_eq!(
        results,
        vec![
            refused.clone(),
            refused.clone(),
            refused,
            Err("not granted: act".into())
        ]
    );
    assert!(room.sent().is_empty());

    // The host grants send-chat and act: the same calls reach the room.
    host.set_host_grant(Some(grant(&[ReadChat], &[SendChat, Act])));
    host.dispatch(&chat("go"));
    let results = rx.recv().await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        room.sent(),
        vec![
            Sent::Chat("hello".into()),
            Sent::ChatTo("p1".into(), "psst".into()),
            Sent::AppTo("p1".into(), json!({"n": 1})),
            Sent::App(json!({"__kib_agent": "act", "action": {"play": "7S"}})),
        ]
    );
    let m = host.metrics(id).unwrap();
    assert_eq!(m.act(agent_runtime::lane_gate::ActKind::Say).refused, 1);
    assert_eq!(m.act(agent_runtime::lane_gate::ActKind::Say).allowed, 1);
    let _ = host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_runs_on_stop_within_the_deadline() {
    let (sink_tx, mut sink_rx) = mpsc::unbounded_channel::<ArtifactRecord>();
    let mut host = AgentHost::new(
        Arc::new(FakeRoom::default()),
        HostOptions {
            stop_deadline: Duration::from_secs(1),
            sink: Arc::new(sink_tx),
            ..HostOptions::default()
        },
    );
    let (quick, _q) = Probe::new(chat_lanes());
    host.spawn(quick, spec(&[ReadChat])).unwrap();
    let (mut stuck, _s) = Probe::new(chat_lanes());
    stuck.stop_delay = Duration::from_secs(30);
    host.spawn(stuck, spec(&[ReadChat])).unwrap();
    tokio::task::yield_now().await;

    let reports = host.shutdown().await;
    let exits: Vec<AgentExit> = reports.into_iter().map(|r| r.exit).collect();
    assert_eq!(exits, vec![AgentExit::Stopped, AgentExit::StopTimedOut]);
    let record = sink_rx.recv().await.unwrap();
    assert_eq!(record.agent, "Test agent");
    assert_eq!(
        serde_json::to_value(&record.artifact).unwrap(),
        json!({"type": "summary", "text": "bye"})
    );
}

fn roster(n: usize) -> Roster {
    Roster {
        members: (0..n)
            .map(|i| CallMember {
                id: format!("p{i}"),
                name: format!("P{i}"),
                ..CallMember::default()
            })
            .collect(),
        ..Roster::default()
    }
}

#[tokio::test(start_paused = true)]
async fn rosters_are_coalesced_for_a_busy_agent() {
    let mut host = host(Arc::new(FakeRoom::default()));
    let (probe, mut rx) = Probe::new(Lanes::new().require(ReadRoster).require(ReadChat));
    host.spawn(
        probe.slow(Duration::from_secs(1)),
        spec(&[ReadRoster, ReadChat]),
    )
    .unwrap();
    host.dispatch(&chat("first"));
    assert_eq!(rx.recv().await.unwrap().1, chat("first"));
    for n in 1..=5 {
        host.dispatch(&AgentEvent::Roster(roster(n)));
    }
    host.dispatch(&chat("last"));
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut seen = Vec::new();
    while let Ok((_, ev)) = rx.try_recv() {
        seen.push(ev);
    }
    assert_eq!(seen, vec![AgentEvent::Roster(roster(5)), chat("last")]);
    let _ = host.shutdown().await;
}

#[tokio::test]
async fn session_events_map_to_agent_events_through_the_gate() {
    let mut host = host(Arc::new(FakeRoom::default()));
    let lanes = Lanes::new()
        .require(ReadChat)
        .optional(HearAudio)
        .optional(ReceiveDirected);
    let (probe, mut rx) = Probe::new(lanes);
    host.spawn(probe, spec(&[ReadChat, HearAudio, ReceiveDirected]))
        .unwrap();
    host.dispatch_session(&SessionEvent::App {
        from: "p1".into(),
        data: json!({"__kib_agent": "view", "view": {"turn": 3}}),
    });
    host.dispatch_session(&SessionEvent::App {
        from: "p1".into(),
        data: json!({"score": 1}),
    });
    host.dispatch_session(&SessionEvent::Chat {
        from: "p1".into(),
        name: "Ann".into(),
        text: "psst".into(),
        dm: true,
        mid: Some("p1#1".into()),
    });
    // The host widens the grant beyond the manifest: only hear-audio is new for this agent.
    host.dispatch_session(&SessionEvent::GrantChanged(Grant::full()));
    // Not for agents.
    host.dispatch_session(&SessionEvent::Knocking);
    // Admission is reported once even when the lobby also said so.
    host.dispatch_session(&SessionEvent::Lobby(LobbyStatus::Waiting));
    host.dispatch_session(&SessionEvent::Lobby(LobbyStatus::Admitted));
    host.dispatch_session(&SessionEvent::Admitted);
    let want = vec![
        AgentEvent::AppView {
            from: "p1".into(),
            view: json!({"turn": 3}),
        },
        AgentEvent::App {
            from: "p1".into(),
            data: json!({"score": 1}),
        },
        AgentEvent::Chat {
            from: "p1".into(),
            name: "Ann".into(),
            text: "psst".into(),
            dm: true,
        },
    ];
    for w in want {
        assert_eq!(rx.recv().await.unwrap().1, w);
    }
    match rx.recv().await.unwrap().1 {
        AgentEvent::GrantChanged { effective } => {
            assert_eq!(effective.perceive, [HearAudio, ReadChat, ReceiveDirected]);
            assert!(effective.act.is_empty());
            // Disclosure comes from the manifest's request.
            assert_eq!(effective.backend.as_deref(), Some("local none"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        rx.recv().await.unwrap().1,
        AgentEvent::Lobby(LobbyStatus::Waiting)
    );
    assert_eq!(
        rx.recv().await.unwrap().1,
        AgentEvent::Lobby(LobbyStatus::Admitted)
    );
    let reports = host.shutdown().await;
    assert_eq!(reports.len(), 1);
    assert!(rx.try_recv().is_err(), "nothing else was delivered");
}

#[tokio::test]
async fn context_roster_needs_read_roster() {
    struct RosterPeek {
        tx: mpsc::UnboundedSender<Option<Roster>>,
    }
    #[async_trait]
    impl Agent for RosterPeek {
        fn lanes(&self) -> Lanes {
            Lanes::new().require(ReadChat)
        }
        async fn on_event(&mut self, cx: &mut Context, _ev: AgentEvent) -> Result<(), AgentError> {
            let _ = self.tx.send(cx.roster());
            Ok(())
        }
    }
    let room = Arc::new(FakeRoom::default());
    *room.roster.lock().unwrap() = Some(roster(2));
    let mut host = host(Arc::clone(&room));
    let (tx, mut rx) = mpsc::unbounded_channel();
    host.spawn(RosterPeek { tx: tx.clone() }, spec(&[ReadChat]))
        .unwrap();
    let (tx2, mut rx2) = mpsc::unbounded_channel();
    host.spawn(RosterPeek { tx: tx2 }, spec(&[ReadChat, ReadRoster]))
        .unwrap();
    host.dispatch(&chat("hi"));
    assert_eq!(rx.recv().await.unwrap(), None);
    assert_eq!(rx2.recv().await.unwrap(), Some(roster(2)));
    let _ = host.shutdown().await;
}
