//! The lane gate: effective grant, per-event decisions, expiry, counters, revoke, act gate.
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::agent::{AgentEvent, AudioFrame, VideoFrame};
use agent_runtime::lane_gate::{ActError, ActKind, GateVerdict, LaneGate, LaneKind};
use agent_runtime::wire::presence::{LobbyStatus, Roster};
use capability_manifest::{Capability::*, Grant};
use serde_json::json;

use agent_support::grant;

fn chat(dm: bool) -> AgentEvent {
    AgentEvent::Chat {
        from: "p1".into(),
        name: "Ann".into(),
        text: "hello".into(),
        dm,
    }
}

fn audio(n: usize) -> AgentEvent {
    AgentEvent::Audio(AudioFrame {
        speaker_id: "p1".into(),
        speaker_name: "Ann".into(),
        pcm: vec![0i16; n].into(),
        start: Duration::ZERO,
    })
}

fn everything() -> Grant {
    grant(
        &[SeeScreen, HearAudio, ReadChat, ReadRoster, ReceiveDirected],
        &[SendChat, Speak, Act],
    )
}

#[test]
fn effective_is_request_intersect_host_with_agent_default() {
    let gate = LaneGate::new(everything(), None);
    // No caps known: Kibitz's agent default.
    assert_eq!(
        gate.effective().perceive,
        vec![ReadChat, ReadRoster, ReceiveDirected]
    );
    assert!(gate.effective().act.is_empty());
    // The host grants more than the manifest asks: only the request survives.
    let gate = LaneGate::new(grant(&[ReadChat], &[]), Some(Grant::full()));
    assert_eq!(gate.effective().perceive, vec![ReadChat]);
    assert!(gate.effective().act.is_empty());
}

#[test]
fn each_event_needs_its_capability() {
    let gate = LaneGate::new(everything(), Some(grant(&[ReadChat], &[])));
    assert_eq!(gate.admit(&chat(false)), GateVerdict::Deliver);
    // A DM also needs receive-directed.
    assert_eq!(
        gate.admit(&chat(true)),
        GateVerdict::Drop {
            missing: ReceiveDirected
        }
    );
    assert_eq!(
        gate.admit(&AgentEvent::Directed {
            from: "p1".into(),
            data: json!({"x": 1})
        }),
        GateVerdict::Drop {
            missing: ReceiveDirected
        }
    );
    assert_eq!(
        gate.admit(&AgentEvent::Roster(Roster::default())),
        GateVerdict::Drop {
            missing: ReadRoster
        }
    );
    assert_eq!(
        gate.admit(&audio(320)),
        GateVerdict::Drop { missing: HearAudio }
    );
    assert_eq!(
        gate.admit(&AgentEvent::Screen(VideoFrame {
            sharer_id: "p1".into(),
            data: bytes::Bytes::from_static(b"frame"),
            start: Duration::ZERO,
        })),
        GateVerdict::Drop { missing: SeeScreen }
    );
    assert_eq!(
        gate.admit(&AgentEvent::AppView {
            from: "p1".into(),
            view: json!({})
        }),
        GateVerdict::Deliver
    );
    // Control events are about the agent itself and always pass.
    assert!(gate
        .admit(&AgentEvent::Lobby(LobbyStatus::Waiting))
        .is_deliver());
    assert!(gate
        .admit(&AgentEvent::GrantChanged {
            effective: Grant::empty()
        })
        .is_deliver());

    let m = gate.metrics();
    assert_eq!(m.lane(LaneKind::Chat).received, 2);
    assert_eq!(m.lane(LaneKind::Chat).delivered, 1);
    assert_eq!(m.lane(LaneKind::Chat).dropped, 1);
    assert_eq!(m.lane(LaneKind::Chat).delivered_bytes, 5);
    assert_eq!(m.lane(LaneKind::Audio).dropped, 1);
    assert_eq!(m.lane(LaneKind::Audio).dropped_bytes, 640);
    assert_eq!(m.lane(LaneKind::Audio).delivered, 0);
    assert_eq!(m.lane(LaneKind::Screen).dropped_bytes, 5);
    assert_eq!(m.lane(LaneKind::Control).delivered, 2);
}

#[test]
fn subscription_follows_grant_and_manifest() {
    // The host grants hear-audio but the manifest does not ask for it: audio stays off.
    let gate = LaneGate::new(grant(&[ReadChat], &[]), Some(Grant::full()));
    assert!(!gate.wants_subscription(LaneKind::Audio));
    assert!(!gate.wants_subscription(LaneKind::Screen));
    assert!(gate.wants_subscription(LaneKind::Chat));
    assert!(gate.wants_subscription(LaneKind::Control));

    let gate = LaneGate::new(everything(), None);
    assert!(!gate.wants_subscription(LaneKind::Audio));
    gate.update_grant(Some(grant(&[HearAudio, ReadChat], &[])));
    assert!(gate.wants_subscription(LaneKind::Audio));
    gate.update_grant(None);
    assert!(!gate.wants_subscription(LaneKind::Audio));
}

#[test]
fn media_before_decode_is_counted_and_dropped_without_grant() {
    let gate = LaneGate::new(everything(), None);
    for _ in 0..3 {
        assert_eq!(
            gate.admit_media(LaneKind::Audio, 100),
            GateVerdict::Drop { missing: HearAudio }
        );
    }
    let s = gate.metrics().lane(LaneKind::Audio);
    assert_eq!((s.received, s.received_bytes), (3, 300));
    assert_eq!((s.dropped, s.dropped_bytes, s.delivered), (3, 300, 0));
}

#[test]
fn expiry_uses_the_injected_clock() {
    let now = Arc::new(AtomicU64::new(999));
    let clock = {
        let now = Arc::clone(&now);
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let host = Grant {
        expires_at: Some(1000),
        ..grant(&[HearAudio, ReadChat], &[SendChat])
    };
    let gate = LaneGate::with_clock(everything(), Some(host), clock);
    assert!(gate.admit(&audio(10)).is_deliver());
    assert!(gate.check_act(ActKind::Say).is_ok());
    now.store(1000, Ordering::SeqCst);
    assert_eq!(gate.effective(), Grant::empty());
    assert_eq!(
        gate.admit(&audio(10)),
        GateVerdict::Drop { missing: HearAudio }
    );
    assert!(!gate.wants_subscription(LaneKind::Chat));
    assert!(matches!(
        gate.check_act(ActKind::Say),
        Err(ActError::NotGranted { cap: SendChat, .. })
    ));
    // Explicit-time variants agree.
    assert!(gate.admit_at(&audio(10), 999).is_deliver());
}

#[test]
fn revoke_interleaved_with_frames_in_one_thread() {
    let gate = LaneGate::new(everything(), Some(grant(&[HearAudio], &[])));
    let mut delivered_after_revoke = 0;
    let mut delivered_before = 0;
    for i in 0..1000 {
        if i == 500 {
            gate.update_grant(Some(Grant::empty()));
        }
        if gate.admit(&audio(320)).is_deliver() {
            if i >= 500 {
                delivered_after_revoke += 1;
            } else {
                delivered_before += 1;
            }
        }
    }
    assert_eq!(delivered_before, 500);
    assert_eq!(delivered_after_revoke, 0);
    let s = gate.metrics().lane(LaneKind::Audio);
    assert_eq!((s.delivered, s.dropped), (500, 500));
}

#[test]
fn revoke_from_another_thread_is_linearizable() {
    // A frame whose admit starts after update_grant returned must never pass.
    let gate = Arc::new(LaneGate::new(everything(), Some(grant(&[HearAudio], &[]))));
    let revoked = Arc::new(AtomicBool::new(false));
    let producer = {
        let gate = Arc::clone(&gate);
        let revoked = Arc::clone(&revoked);
        std::thread::spawn(move || {
            let mut violations = 0u32;
            let mut passed = 0u32;
            let mut after_revoke = 0u32;
            let frame = audio(320);
            // Run until the revoke has been observed, then 10 000 frames more.
            while after_revoke < 10_000 {
                let was_revoked = revoked.load(Ordering::SeqCst);
                if gate.admit(&frame).is_deliver() {
                    passed += 1;
                    if was_revoked {
                        violations += 1;
                    }
                }
                if was_revoked {
                    after_revoke += 1;
                }
            }
            (violations, passed)
        })
    };
    // Let some frames through, then revoke.
    while gate.metrics().lane(LaneKind::Audio).delivered < 1000 {
        std::thread::yield_now();
    }
    gate.update_grant(Some(Grant::empty()));
    revoked.store(true, Ordering::SeqCst);
    let (violations, passed) = producer.join().unwrap();
    assert!(passed >= 1000);
    assert_eq!(violations, 0);
    let s = gate.metrics().lane(LaneKind::Audio);
    assert_eq!(s.delivered + s.dropped, s.received);
    assert!(s.dropped >= 10_000);
    assert_eq!(u64::from(passed), s.delivered);
}

#[test]
fn act_gate_maps_acts_to_capabilities() {
    let gate = LaneGate::new(everything(), None);
    for act in [ActKind::Say, ActKind::SayTo, ActKind::SendTo] {
        assert!(matches!(
            gate.check_act(act),
            Err(ActError::NotGranted { cap: SendChat, .. })
        ));
    }
    assert!(matches!(
        gate.check_act(ActKind::Speak),
        Err(ActError::NotGranted { cap: Speak, .. })
    ));
    // `act` needs `act` and, since receivers drop content from senders without it, `send-chat`.
    gate.update_grant(Some(grant(&[], &[Act])));
    assert!(matches!(
        gate.check_act(ActKind::Act),
        Err(ActError::NotGranted { cap: SendChat, .. })
    ));
    gate.update_grant(Some(grant(&[], &[Act, SendChat])));
    assert!(gate.check_act(ActKind::Act).is_ok());
    assert!(gate.check_act(ActKind::Say).is_ok());

    let m = gate.metrics();
    assert_eq!(m.act(ActKind::Act).attempted, 2);
    assert_eq!(m.act(ActKind::Act).refused, 1);
    assert_eq!(m.act(ActKind::Act).allowed, 1);
    assert_eq!(m.act(ActKind::Say).refused, 1);
    assert_eq!(m.act(ActKind::Say).allowed, 1);
    let msg = ActError::NotGranted {
        act: ActKind::Say,
        cap: SendChat,
    }
    .to_string();
    assert!(msg.contains("send-chat"), "{msg}");
}

#[test]
fn recheck_moves_queued_frames_to_dropped() {
    let gate = LaneGate::new(everything(), Some(grant(&[HearAudio], &[])));
    let frame = audio(160);
    assert!(gate.admit(&frame).is_deliver());
    gate.update_grant(Some(Grant::empty()));
    assert_eq!(
        gate.recheck(&frame),
        GateVerdict::Drop { missing: HearAudio }
    );
    let s = gate.metrics().lane(LaneKind::Audio);
    assert_eq!((s.received, s.delivered, s.dropped), (1, 0, 1));
}
