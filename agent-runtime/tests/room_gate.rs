//! Identity gate, migration and caps distribution on the authority side.

mod room_support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use agent_runtime::room::{
    AssertionProvider, AuthorityEvent, AuthorityOptions, AuthorityState, Credentials, GateDecision,
    GateOptions, IdentityVerifier, ParticipantError, ParticipantEvent, ParticipantOutput,
    ParticipantState,
};
use agent_runtime::wire::presence::{AuthorityMsg, ClientMsg, Knock, LobbyStatus, Voice};
use room_support::*;

#[derive(Default)]
struct Script {
    decisions: Vec<GateDecision>,
    calls: Vec<(Credentials, Option<String>, u64)>,
}

/// Returns scripted decisions in order (then `Ok`), recording every call.
#[derive(Clone, Default)]
struct FakeVerifier(Arc<Mutex<Script>>);

impl FakeVerifier {
    fn with(decisions: Vec<GateDecision>) -> Self {
        Self(Arc::new(Mutex::new(Script {
            decisions,
            calls: Vec::new(),
        })))
    }
    fn calls(&self) -> usize {
        self.0.lock().expect("lock").calls.len()
    }
}

impl IdentityVerifier for FakeVerifier {
    fn verify(&mut self, cred: &Credentials, fp: Option<&str>, now_secs: u64) -> GateDecision {
        let mut s = self.0.lock().expect("lock");
        s.calls
            .push((cred.clone(), fp.map(str::to_owned), now_secs));
        if s.decisions.is_empty() {
            GateDecision::Ok { caps: None }
        } else {
            s.decisions.remove(0)
        }
    }
}

/// Hands out numbered assertions.
struct Signer(u32);

impl AssertionProvider for Signer {
    fn fresh_assertion(&mut self) -> Option<String> {
        self.0 += 1;
        Some(format!("asn-{}", self.0))
    }
}

fn gated(t0: Instant, v: &FakeVerifier, lobby: bool) -> AuthorityState {
    let mut a = AuthorityState::new(
        t0,
        AuthorityOptions {
            lobby_on_start: lobby,
            gate: GateOptions::default(),
        },
    )
    .with_verifier(Box::new(v.clone()));
    a.set_unix_time(t0, 1_700_000_000);
    a
}

#[test]
fn unreadable_fingerprint_holds_an_agent_silently() {
    let t0 = Instant::now();
    let v = FakeVerifier::default();
    let mut n = Net::new(t0, gated(t0, &v, false));
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(t0, params("A", "va", "tok-a"), Some(Box::new(Signer(0))));
    n.open(a, None);
    assert_eq!(v.calls(), 0, "verify is never called without a fingerprint");
    assert!(n.roster_ids().is_empty());
    assert!(
        n.auth_sent_at("conn-a", |m| matches!(m, AuthorityMsg::Lobby(_)))
            .is_empty(),
        "held silently"
    );
    assert!(n.auth.stats().held >= 2);
    // The fingerprint becomes readable: the next re-announce passes.
    n.auth
        .set_remote_fingerprint("conn-a", Some("AB:CD".into()));
    n.run_until(ms(600));
    assert_eq!(n.roster_ids(), ["va"]);
    let s = v.0.lock().expect("lock");
    // Signed at join, then re-signed when the presence link opened.
    assert_eq!(s.calls[0].0.agent_assertion.as_deref(), Some("asn-2"));
    assert_eq!(s.calls[0].1.as_deref(), Some("AB:CD"));
    assert_eq!(s.calls[0].2, 1_700_000_000);
}

#[test]
fn hold_then_unverified_then_retry_admits() {
    let t0 = Instant::now();
    // knock → Hold; voice → Refused; the self-heal voice (answering the open-time roster, already
    // in flight) → Refused again; the retry 5 s later → Ok.
    let v = FakeVerifier::with(vec![
        GateDecision::Hold,
        GateDecision::Refused {
            reason: "stale assertion".into(),
        },
        GateDecision::Refused {
            reason: "stale assertion".into(),
        },
    ]);
    let mut n = Net::new(t0, gated(t0, &v, false));
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(t0, params("A", "va", "tok-a"), Some(Box::new(Signer(0))));
    n.open(a, Some("ab:cd"));
    // knock → Hold, voice → Refused.
    assert!(n.auth.stats().held >= 1);
    assert_eq!(
        n.auth_sent_at("conn-a", |m| *m
            == AuthorityMsg::Lobby(LobbyStatus::Unverified))
            .len(),
        2
    );
    assert!(n.auth_event_list().iter().any(
        |e| matches!(e, AuthorityEvent::Unverified { conn, reason } if conn == "conn-a" && reason == "stale assertion")
    ));
    assert!(n.peer_events(a).contains(&ParticipantEvent::Refused {
        status: LobbyStatus::Unverified,
        retry_in: Some(ms(5000))
    }));
    assert!(n.roster_ids().is_empty());
    // The participant retries once after 5 s with a fresh signature; the verifier now says Ok.
    n.run_until(ms(4999));
    assert!(n.roster_ids().is_empty());
    n.run_until(ms(5000));
    assert_eq!(n.roster_ids(), ["va"]);
    let s = v.0.lock().expect("lock");
    assert!(
        s.calls
            .iter()
            .any(|c| c.0.agent_assertion.as_deref() == Some("asn-2")),
        "re-signed before retry"
    );
}

#[test]
fn verified_agent_still_waits_in_the_lobby() {
    let t0 = Instant::now();
    let v = FakeVerifier::default();
    let mut n = Net::new(t0, gated(t0, &v, true));
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(t0, params("A", "va", "tok-a"), Some(Box::new(Signer(0))));
    n.open(a, Some("ab:cd"));
    assert!(n
        .peer_events(a)
        .contains(&ParticipantEvent::LobbyStatus(LobbyStatus::Waiting)));
    assert!(n.roster_ids().is_empty());
    n.auth.admit(t0, "conn-a");
    n.pump();
    assert_eq!(n.roster_ids(), ["va"]);
    // Verified once per connection: later announces don't call the verifier again.
    let calls = v.calls();
    n.run_for(ms(6000));
    assert_eq!(v.calls(), calls);
}

#[test]
fn oversize_assertion_is_unverified_without_calling_the_verifier() {
    let t0 = Instant::now();
    let v = FakeVerifier::default();
    let mut n = Net::new(t0, gated(t0, &v, false));
    n.auth.on_connect(t0, "conn-x", Some("ab:cd".into()));
    n.raw(
        "conn-x",
        ClientMsg::Knock(Knock {
            name: "x".into(),
            agent_assertion: Some("a".repeat(2049)),
            ..Default::default()
        }),
    );
    assert_eq!(v.calls(), 0);
    assert_eq!(
        n.auth_sent_at("conn-x", |m| *m
            == AuthorityMsg::Lobby(LobbyStatus::Unverified))
            .len(),
        1
    );
    // 2048 is fine.
    n.raw(
        "conn-x",
        ClientMsg::Knock(Knock {
            name: "x".into(),
            agent_assertion: Some("a".repeat(2048)),
            ..Default::default()
        }),
    );
    assert_eq!(v.calls(), 1);
}

#[test]
fn participant_refuses_to_send_an_oversize_assertion() {
    let t0 = Instant::now();
    let mut p = ParticipantState::new(t0, Default::default());
    p.link_opened(t0);
    let err = p
        .set_assertion(t0, Some("x".repeat(2049)))
        .expect_err("too large");
    assert_eq!(
        err,
        ParticipantError::AssertionTooLarge {
            len: 2049,
            max: 2048
        }
    );
    assert!(p.set_assertion(t0, Some("x".repeat(2048))).is_ok());

    struct Huge;
    impl AssertionProvider for Huge {
        fn fresh_assertion(&mut self) -> Option<String> {
            Some("y".repeat(3000))
        }
    }
    let mut p = ParticipantState::new(t0, Default::default());
    p.join(t0, params("A", "va", "tok"), Some(Box::new(Huge)));
    p.link_opened(t0);
    let out: Vec<_> = std::iter::from_fn(|| p.poll_output()).collect();
    assert!(out.contains(&ParticipantOutput::Event(
        ParticipantEvent::AssertionRejected { len: 3000 }
    )));
    for o in &out {
        match o {
            ParticipantOutput::Send(ClientMsg::Knock(k)) => assert_eq!(k.agent_assertion, None),
            ParticipantOutput::Send(ClientMsg::Voice(v)) => assert_eq!(v.agent_assertion, None),
            _ => {}
        }
    }
}

#[test]
fn no_verifier_means_assertions_are_ignored() {
    let t0 = Instant::now();
    let mut n = Net::new(t0, AuthorityState::new(t0, AuthorityOptions::default()));
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(t0, params("A", "va", "tok-a"), Some(Box::new(Signer(0))));
    n.open(a, None);
    assert_eq!(n.roster_ids(), ["va"]);
    assert_eq!(n.auth.stats().held, 0);
}

#[test]
fn open_humans_admits_credential_less_joiners_under_require() {
    let t0 = Instant::now();
    let v = FakeVerifier::default();
    let opts = AuthorityOptions {
        lobby_on_start: false,
        gate: GateOptions {
            require: true,
            open_humans: true,
            ..Default::default()
        },
    };
    let mut n = Net::new(
        t0,
        AuthorityState::new(t0, opts).with_verifier(Box::new(v.clone())),
    );
    n.auth.on_connect(t0, "conn-h", None);
    n.raw(
        "conn-h",
        ClientMsg::Voice(Voice {
            on: true,
            name: "Hu".into(),
            voice_id: Some("vh".into()),
            ..Default::default()
        }),
    );
    assert_eq!(n.roster_ids(), ["vh"]);
    assert_eq!(v.calls(), 0);

    // Without open_humans the same joiner is held.
    let opts = AuthorityOptions {
        gate: GateOptions {
            require: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut n = Net::new(
        t0,
        AuthorityState::new(t0, opts).with_verifier(Box::new(v.clone())),
    );
    n.auth.on_connect(t0, "conn-h", None);
    n.raw(
        "conn-h",
        ClientMsg::Voice(Voice {
            on: true,
            name: "Hu".into(),
            voice_id: Some("vh".into()),
            ..Default::default()
        }),
    );
    assert!(n.roster_ids().is_empty());
    assert_eq!(n.auth.stats().held, 1);
}

#[test]
fn manifest_caps_are_recorded_by_fingerprint_and_granted_on_mesh_match() {
    let t0 = Instant::now();
    let grant = serde_json::json!({"perceive": ["read-chat", "hear-audio"], "act": []});
    let v = FakeVerifier::with(vec![GateDecision::Ok {
        caps: Some(grant.clone()),
    }]);
    let mut n = Net::new(t0, gated(t0, &v, false));
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(t0, params("A", "va", "tok-a"), Some(Box::new(Signer(0))));
    n.open(a, Some("  AB:CD:EF "));
    assert_eq!(n.roster_ids(), ["va"]);
    assert!(n.caps.is_empty(), "no grants yet, no caps broadcast");
    // The mesh connection presents the same certificate (canonicalised match).
    assert!(!n.auth.on_mesh_fingerprint(t0, "va", "11:22"));
    assert!(n.auth.on_mesh_fingerprint(t0, "va", "ab:cd:ef"));
    n.pump();
    let (_, grants) = n.caps.last().expect("caps broadcast");
    assert_eq!(grants.get("va"), Some(&grant));
    // Idempotent.
    assert!(!n.auth.on_mesh_fingerprint(t0, "va", "ab:cd:ef"));
    // Re-broadcast on every roster change while the map is non-empty.
    let before = n.caps.len();
    n.run_for(ms(3000));
    assert!(n.caps.len() > before);
}

#[test]
fn grants_broadcast_on_change_including_clear() {
    let t0 = Instant::now();
    let mut a = AuthorityState::new(t0, AuthorityOptions::default());
    a.set_grant(
        t0,
        "v1",
        Some(serde_json::json!({"perceive": [], "act": []})),
    );
    a.set_grant(t0, "v1", None);
    let caps: Vec<_> = std::iter::from_fn(|| a.poll_output())
        .filter_map(|o| match o {
            agent_runtime::room::AuthorityOutput::BroadcastCaps { grants } => Some(grants),
            _ => None,
        })
        .collect();
    assert_eq!(caps.len(), 2);
    assert!(caps[0].contains_key("v1"));
    assert!(caps[1].is_empty());
}

#[test]
fn migration_inherits_settings_grandfathers_members_and_resets_host() {
    let t0 = Instant::now();
    let mut n = Net::new(t0, AuthorityState::new(t0, AuthorityOptions::default()));
    let a = n.add_peer("conn-a");
    n.peers[a].state.join(t0, params("A", "va", "tok-a"), None);
    n.open(a, None);
    assert!(n.auth.set_verified_host(t0, Some("va")));
    n.auth.set_lobby(t0, true);
    n.auth.set_locked(t0, true);
    n.pump();
    let last = n.peers[a].state.roster().cloned().expect("roster");
    assert_eq!(
        (last.lobby, last.locked, last.host.as_str()),
        (true, true, "va")
    );

    // The authority dies; `a` notices after 12 s of silence.
    n.auth_mute = true;
    n.run_for(ms(12_000));
    assert!(n.peer_events(a).contains(&ParticipantEvent::AuthorityLost));

    // Another peer wins the re-claim and inherits the last roster it saw.
    n.auth_mute = false;
    n.auth = AuthorityState::inherit(n.now, AuthorityOptions::default(), &last);
    n.auth_events.clear();
    let r = n.auth.roster();
    assert_eq!((r.lobby, r.locked, r.host.as_str()), (true, true, ""));
    assert!(r.members.is_empty());
    // `a` reconnects on a new connection: grandfathered past lobby and lock, no `waiting`.
    n.peers[a].conn = "conn-a2".into();
    n.open(a, None);
    assert_eq!(n.roster_ids(), ["va"]);
    assert!(n
        .auth_sent_at("conn-a2", |m| *m
            == AuthorityMsg::Lobby(LobbyStatus::Waiting))
        .is_empty());
    assert_eq!(n.auth.roster().host, "");
    // A stranger is still locked out.
    n.raw(
        "conn-s",
        ClientMsg::Knock(Knock {
            name: "s".into(),
            token: Some("tok-s".into()),
            ..Default::default()
        }),
    );
    assert_eq!(
        n.auth_sent_at("conn-s", |m| *m == AuthorityMsg::Lobby(LobbyStatus::Locked))
            .len(),
        1
    );
}

#[test]
fn host_slot_clears_when_the_host_disconnects() {
    let t0 = Instant::now();
    let mut n = Net::new(t0, AuthorityState::new(t0, AuthorityOptions::default()));
    let a = n.add_peer("conn-a");
    n.peers[a].state.join(t0, params("A", "va", "tok-a"), None);
    n.open(a, None);
    assert!(!n.auth.set_verified_host(t0, Some("nobody")));
    assert!(n.auth.set_verified_host(t0, Some("va")));
    n.pump();
    assert_eq!(n.auth.roster().host, "va");
    n.close(a);
    assert_eq!(n.auth.roster().host, "");
}

#[test]
fn unverified_retry_budget_runs_out() {
    let t0 = Instant::now();
    let always_no = || GateDecision::Refused {
        reason: "no matching allowed key".into(),
    };
    let v = FakeVerifier::with((0..20).map(|_| always_no()).collect());
    let mut n = Net::new(t0, gated(t0, &v, false));
    let a = n.add_peer("conn-a");
    n.peers[a]
        .state
        .join(t0, params("A", "va", "tok-a"), Some(Box::new(Signer(0))));
    n.open(a, Some("ab:cd"));
    n.run_until(ms(5000));
    let refusals: Vec<_> = n
        .peer_events(a)
        .into_iter()
        .filter_map(|e| match e {
            ParticipantEvent::Refused { status, retry_in } => Some((status, retry_in)),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals.first(),
        Some(&(LobbyStatus::Unverified, Some(ms(5000))))
    );
    assert_eq!(refusals.last(), Some(&(LobbyStatus::Unverified, None)));
    // Given up: no more knocks or announces, ever.
    let sent = n.peers[a]
        .sent
        .iter()
        .filter(|(_, m)| !matches!(m, ClientMsg::Ping))
        .count();
    n.run_for(ms(30_000));
    let sent2 = n.peers[a]
        .sent
        .iter()
        .filter(|(_, m)| !matches!(m, ClientMsg::Ping))
        .count();
    assert_eq!(sent, sent2);
    assert!(n.roster_ids().is_empty());
}
