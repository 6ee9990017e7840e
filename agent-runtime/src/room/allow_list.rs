//! [`AllowListVerifier`]: the authority's agent-assertion gate against a room's `agentKeys`
//! (kibitz-agents.md §3.8 steps 6–7, §4.2, §6.5).
//!
//! The gate *flow* (when the verifier is consulted, holds for an unreadable fingerprint, size
//! guards, re-processing) lives in [`super::authority`]. This verifier decides one presented
//! credential:
//!
//! 1. no `agentAssertion` → [`GateDecision::Hold`]: it has no human verifier to fall through to
//!    (OIDC / invite / names are not implemented), and a thrown human verifier holds in Kibitz;
//! 2. an empty allow-list → refused, "this room admits no agents";
//! 3. `verify_assertion` against the entries' keys, the normalised room, the presence
//!    connection's canonical fingerprint and `now` → refused with Kibitz's reason on failure;
//! 4. the [`AssertionReplayGuard`]: the same token held by another live connection or bound to
//!    another fingerprint → refused, "replayed assertion";
//! 5. success → [`GateDecision::Ok`] with the matched entry's sanitised `caps` (`None` when the
//!    entry has none: nothing is recorded, peers fall back to the `meta.role` default).

use capability_manifest::{
    canonical_fingerprint, verify_assertion, AgentEntry, AssertionError, AssertionOptions,
    AssertionReplayGuard, RoomManifest,
};
use serde_json::Value;

use super::gate::{Credentials, GateDecision, IdentityVerifier};

/// The reason given when the replay guard refuses an otherwise valid assertion.
pub const REPLAYED_ASSERTION: &str = "replayed assertion";

/// Verifies `kbz-agent-key.v1` assertions against a room's allow-list, with a replay guard.
#[derive(Debug, Clone)]
pub struct AllowListVerifier {
    entries: Vec<AgentEntry>,
    keys: Vec<Value>,
    room_key: String,
    opts: AssertionOptions,
    guard: AssertionReplayGuard,
}

impl AllowListVerifier {
    /// A verifier for `room_key` (already normalised, e.g. `standup`) admitting the agents whose
    /// public keys `entries` list, with the default freshness windows (300 s, 60 s leeway).
    pub fn new(room_key: impl Into<String>, entries: Vec<AgentEntry>) -> Self {
        let keys = entries.iter().map(|e| e.key.clone()).collect();
        let opts = AssertionOptions::default();
        Self {
            entries,
            keys,
            room_key: room_key.into(),
            opts,
            guard: AssertionReplayGuard::new(opts),
        }
    }

    /// A verifier for a verified room manifest: its `room` and its `agentKeys` (none: every
    /// assertion is refused).
    pub fn from_room_manifest(manifest: &RoomManifest) -> Self {
        Self::new(manifest.room.clone(), manifest.agent_entries().to_vec())
    }

    /// Overrides the freshness windows (the replay guard's memory follows them).
    pub fn with_assertion_options(mut self, opts: AssertionOptions) -> Self {
        self.opts = opts;
        self.guard = AssertionReplayGuard::new(opts);
        self
    }

    /// The normalised room assertions must name.
    pub fn room_key(&self) -> &str {
        &self.room_key
    }

    /// The allow-list.
    pub fn entries(&self) -> &[AgentEntry] {
        &self.entries
    }

    /// Decides one credential presented on presence connection `conn` whose remote DTLS
    /// fingerprint is `remote_fp`, at `now_secs` (Unix seconds).
    pub fn decide(
        &mut self,
        conn: &str,
        cred: &Credentials,
        remote_fp: Option<&str>,
        now_secs: u64,
    ) -> GateDecision {
        let Some(token) = cred.assertion() else {
            return GateDecision::Hold;
        };
        if self.entries.is_empty() {
            return refused(AssertionError::RoomAdmitsNoAgents.to_string());
        }
        let fp = canonical_fingerprint(remote_fp.unwrap_or_default());
        let ok = match verify_assertion(token, &self.keys, &self.room_key, &fp, now_secs, self.opts)
        {
            Ok(ok) => ok,
            Err(e) => return refused(e.to_string()),
        };
        if let Err(e) = self.guard.check(token, conn, &fp, now_secs) {
            tracing::debug!(conn, error = %e, "agent assertion replay refused");
            return refused(REPLAYED_ASSERTION.to_owned());
        }
        let caps = self
            .entries
            .get(ok.key_index)
            .and_then(|e| e.caps.as_ref())
            .map(|g| g.to_value());
        tracing::debug!(conn, key_id = %ok.key_id, has_caps = caps.is_some(), "agent assertion verified");
        GateDecision::Ok { caps }
    }
}

fn refused(reason: String) -> GateDecision {
    GateDecision::Refused { reason }
}

impl IdentityVerifier for AllowListVerifier {
    fn verify(
        &mut self,
        cred: &Credentials,
        remote_fp: Option<&str>,
        now_secs: u64,
    ) -> GateDecision {
        // Without a connection id every call shares one slot: a token is still bound to its
        // fingerprint, and a second live holder cannot be told apart.
        self.decide("", cred, remote_fp, now_secs)
    }

    fn verify_on(
        &mut self,
        conn: &str,
        cred: &Credentials,
        remote_fp: Option<&str>,
        now_secs: u64,
    ) -> GateDecision {
        self.decide(conn, cred, remote_fp, now_secs)
    }

    fn on_disconnect(&mut self, conn: &str) {
        self.guard.release(conn);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use capability_manifest::{sign_assertion, AgentKey, Capability, Grant};

    const FP_A: &str = "AA:BB:CC:DD";
    const FP_B: &str = "11:22:33:44";
    const NOW: u64 = 1_700_000_000;

    fn entry(key: &AgentKey, caps: Option<Grant>) -> AgentEntry {
        AgentEntry {
            key: key.public().to_jwk(),
            caps,
            label: Some("bot".into()),
        }
    }

    fn cred(token: &str) -> Credentials {
        Credentials {
            agent_assertion: Some(token.to_owned()),
            ..Credentials::default()
        }
    }

    fn granted() -> Grant {
        let mut g = Grant::agent_default();
        g.act.push(Capability::SendChat);
        g
    }

    #[test]
    fn listed_key_is_admitted_with_its_caps() {
        let key = AgentKey::generate();
        let mut v = AllowListVerifier::new("standup", vec![entry(&key, Some(granted()))]);
        let token = sign_assertion(&key, "Standup", FP_A, NOW);
        let d = v.verify_on("c1", &cred(&token), Some(" aa:bb:cc:dd "), NOW + 5);
        assert_eq!(
            d,
            GateDecision::Ok {
                caps: Some(granted().to_value())
            }
        );
    }

    #[test]
    fn entry_without_caps_records_nothing() {
        let key = AgentKey::generate();
        let mut v = AllowListVerifier::new("standup", vec![entry(&key, None)]);
        let token = sign_assertion(&key, "standup", FP_A, NOW);
        assert_eq!(
            v.verify_on("c1", &cred(&token), Some(FP_A), NOW),
            GateDecision::Ok { caps: None }
        );
    }

    #[test]
    fn no_assertion_holds() {
        let key = AgentKey::generate();
        let mut v = AllowListVerifier::new("standup", vec![entry(&key, None)]);
        let c = Credentials {
            jwt: Some("x.y".into()),
            ..Credentials::default()
        };
        assert_eq!(v.verify_on("c1", &c, Some(FP_A), NOW), GateDecision::Hold);
    }

    #[test]
    fn empty_allow_list_admits_no_agents() {
        let key = AgentKey::generate();
        let mut v = AllowListVerifier::new("standup", Vec::new());
        let token = sign_assertion(&key, "standup", FP_A, NOW);
        assert_eq!(
            v.verify_on("c1", &cred(&token), Some(FP_A), NOW),
            refused("this room admits no agents".into())
        );
    }

    #[test]
    fn failures_carry_kibitz_reasons() {
        let key = AgentKey::generate();
        let stranger = AgentKey::generate();
        let mut v = AllowListVerifier::new("standup", vec![entry(&key, None)]);
        let reason = |d: GateDecision| match d {
            GateDecision::Refused { reason } => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let t = sign_assertion(&stranger, "standup", FP_A, NOW);
        assert!(reason(v.verify_on("c1", &cred(&t), Some(FP_A), NOW)).contains("no matching"));
        let t = sign_assertion(&key, "other", FP_A, NOW);
        assert!(reason(v.verify_on("c1", &cred(&t), Some(FP_A), NOW)).contains("room"));
        let t = sign_assertion(&key, "standup", FP_A, NOW);
        assert!(reason(v.verify_on("c1", &cred(&t), Some(FP_B), NOW)).contains("cert-bound"));
        assert!(reason(v.verify_on("c1", &cred(&t), None, NOW)).contains("missing"));
        assert!(reason(v.verify_on("c1", &cred(&t), Some(FP_A), NOW + 301)).contains("stale"));
        assert!(reason(v.verify_on("c1", &cred(&t), Some(FP_A), NOW - 61)).contains("future"));
    }

    #[test]
    fn replay_on_another_live_connection_is_refused_until_release() {
        let key = AgentKey::generate();
        let mut v = AllowListVerifier::new("standup", vec![entry(&key, None)]);
        let t = sign_assertion(&key, "standup", FP_A, NOW);
        let ok = GateDecision::Ok { caps: None };
        assert_eq!(v.verify_on("c1", &cred(&t), Some(FP_A), NOW), ok);
        // Re-presented on the same connection (every announce): fine.
        assert_eq!(v.verify_on("c1", &cred(&t), Some(FP_A), NOW + 3), ok);
        // Same certificate, another live connection: a replay.
        assert_eq!(
            v.verify_on("c2", &cred(&t), Some(FP_A), NOW + 4),
            refused(REPLAYED_ASSERTION.into())
        );
        // The first connection closed: a reconnect may reuse it.
        v.on_disconnect("c1");
        assert_eq!(v.verify_on("c2", &cred(&t), Some(FP_A), NOW + 5), ok);
    }

    #[test]
    fn from_room_manifest_uses_its_room_and_keys() {
        let key = AgentKey::generate();
        let m = RoomManifest::from_value(&serde_json::json!({
            "members": [], "mode": "google", "room": "standup", "exp": NOW + 3600,
            "agentKeys": [{"key": key.public().to_jwk(), "caps": granted().to_value()}],
        }));
        let mut v = AllowListVerifier::from_room_manifest(&m);
        assert_eq!(v.room_key(), "standup");
        assert_eq!(v.entries().len(), 1);
        let t = sign_assertion(&key, "standup", FP_A, NOW);
        assert!(matches!(
            v.verify_on("c1", &cred(&t), Some(FP_A), NOW),
            GateDecision::Ok { caps: Some(_) }
        ));
    }

    #[test]
    fn authority_releases_the_guard_when_the_holder_disconnects() {
        use crate::room::{AuthorityEvent, AuthorityOptions, AuthorityOutput, AuthorityState};
        use crate::wire::presence::{AuthorityMsg, ClientMsg, Knock, LobbyStatus};
        use std::time::Instant;

        let key = AgentKey::generate();
        let t0 = Instant::now();
        let mut a = AuthorityState::new(t0, AuthorityOptions::default()).with_verifier(Box::new(
            AllowListVerifier::new("standup", vec![entry(&key, Some(granted()))]),
        ));
        a.set_unix_time(t0, NOW);
        let token = sign_assertion(&key, "standup", FP_A, NOW);
        let knock = ClientMsg::Knock(Knock {
            name: "bot".into(),
            agent_assertion: Some(token),
            ..Default::default()
        });
        let refused_on = |a: &mut AuthorityState, conn: &str| {
            a.on_connect(t0, conn, Some(FP_A.to_lowercase()));
            a.on_message(t0, conn, &knock);
            let mut refused = false;
            while let Some(o) = a.poll_output() {
                match o {
                    AuthorityOutput::Send { conn: c, msg } if c == conn => {
                        refused |= msg == AuthorityMsg::Lobby(LobbyStatus::Unverified);
                    }
                    AuthorityOutput::Event(AuthorityEvent::Unverified { reason, .. }) => {
                        assert_eq!(reason, REPLAYED_ASSERTION);
                    }
                    _ => {}
                }
            }
            refused
        };
        assert!(!refused_on(&mut a, "c1"));
        assert!(refused_on(&mut a, "c2"), "a second live holder is a replay");
        a.on_disconnect(t0, "c1");
        assert!(!refused_on(&mut a, "c3"), "released once the holder left");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_assertions_are_refused_without_panicking(
            token in proptest::string::string_regex("[ -~]{0,300}").unwrap(),
            fp in proptest::option::of("[0-9a-fA-F: ]{0,40}"),
        ) {
            let key = AgentKey::generate();
            let mut v = AllowListVerifier::new("standup", vec![entry(&key, None)]);
            let d = v.verify_on("c1", &cred(&token), fp.as_deref(), NOW);
            let admitted = matches!(d, GateDecision::Ok { .. });
            proptest::prop_assert!(!admitted);
        }
    }
}
