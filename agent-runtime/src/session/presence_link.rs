//! The participant half: claim-or-join actions, the presence link to `kbz-v1-<room>`, and
//! [`ParticipantState`](crate::room::ParticipantState) outputs (kibitz-wire.md §2.4, §4, §11
//! steps 7–13).

use std::sync::Arc;
use std::time::Instant;

use capability_manifest::{sign_assertion, AgentKey};

use crate::mesh::{ConnectOptions, MeshError};
use crate::room::{
    AssertionProvider, ClaimOutcome, ConnectFailure, JoinAction, JoinEvent, JoinInput, JoinParams,
    ParticipantEvent, ParticipantOutput,
};
use crate::signaling::{random_token, SignalingError, SignalingEvent};
use crate::wire::presence::{AuthorityMsg, LobbyStatus};

use super::broker_peer::{BrokerPeer, PendingPumps};
use super::driver::{unix_secs, Driver};
use super::event::{Counters, SessionEvent};
use super::input::{Input, LinkId, PeerKind};
use super::links::LinkRole;

/// Signs `kbz-agent-key.v1` over our fingerprint and the room, `iat` = now.
pub(crate) struct KeySigner {
    pub(crate) key: Arc<AgentKey>,
    pub(crate) room: String,
    pub(crate) fingerprint: String,
}

impl AssertionProvider for KeySigner {
    fn fresh_assertion(&mut self) -> Option<String> {
        Some(sign_assertion(
            &self.key,
            &self.room,
            &self.fingerprint,
            unix_secs(),
        ))
    }
}

/// Presents one given assertion every time (the `fixed_assertion` test hook).
pub(crate) struct FixedAssertion(pub(crate) String);

impl AssertionProvider for FixedAssertion {
    fn fresh_assertion(&mut self) -> Option<String> {
        Some(self.0.clone())
    }
}

impl Driver {
    /// Joins the call (announces are held until a presence link opens) and starts the loop.
    pub(crate) fn start(&mut self, now: Instant) {
        let params = self.join_params();
        let provider = self.take_signer();
        self.participant.join(now, params, provider);
        self.join.handle_input(now, JoinInput::Start);
    }

    fn join_params(&self) -> JoinParams {
        JoinParams {
            name: self.facts.name.clone(),
            avatar: self.facts.avatar.clone(),
            cam: false,
            voice_id: self.facts.voice_id.clone(),
            token: self.facts.token.clone(),
            meta: self.facts.meta.clone(),
        }
    }

    pub(crate) fn on_join_action(&mut self, now: Instant, action: JoinAction) {
        match action {
            JoinAction::Claim => self.spawn_claim(),
            JoinAction::AbandonClaim => {
                if let Some((_, h)) = self.claim_task.take() {
                    h.abort();
                }
                if let Some((_, p)) = self.claimed.take() {
                    p.shutdown(&mut self.tasks);
                }
            }
            JoinAction::BecomeAuthority => self.become_authority(now),
            JoinAction::Connect { attempt } => {
                if attempt == 0 {
                    self.emit(SessionEvent::Connecting);
                }
                self.drop_presence_link(now);
                self.spawn_presence_dial();
            }
            JoinAction::AbandonConnect => self.drop_presence_link(now),
            JoinAction::BecomeParticipant => {
                self.admitted = false;
                // Like the browser: the link's open replays knock + voice, then the call join
                // announces again now, at +600 ms, +1800 ms and every 3 s.
                self.participant.link_opened(now);
                let params = self.join_params();
                self.participant.join(now, params, None);
                self.emit(SessionEvent::Knocking);
            }
            JoinAction::TearDown => {
                self.drop_presence_link(now);
                self.teardown_authority();
            }
            JoinAction::Event(JoinEvent::WaitingForHost) => self.emit(SessionEvent::WaitingForHost),
            JoinAction::Event(JoinEvent::GaveUp(_)) => {
                self.emit(SessionEvent::GaveUp);
                self.begin_leave(now, false, None);
            }
        }
    }

    fn spawn_claim(&mut self) {
        self.epoch += 1;
        let epoch = self.epoch;
        let mut opts = self.facts.signaling.clone();
        opts.id = Some(self.facts.room_id.clone());
        opts.token = Some(random_token());
        let cfg = self.facts.broker.clone();
        let identity = Arc::clone(&self.facts.identity);
        let mesh = self.facts.mesh.clone();
        let cancel = self.cancel.child_token();
        let tx = self.tx.clone();
        let abort = self.tasks.spawn(async move {
            let result = BrokerPeer::connect(cfg, opts, identity, mesh, cancel).await;
            let _ = tx.send(Input::Claim { epoch, result });
        });
        self.claim_task = Some((epoch, abort));
    }

    pub(crate) fn on_claim(
        &mut self,
        now: Instant,
        epoch: u64,
        result: Result<(BrokerPeer, PendingPumps), SignalingError>,
    ) {
        let current = self.claim_task.as_ref().is_some_and(|(e, _)| *e == epoch);
        if !current || self.is_leaving() {
            if let Ok((peer, _)) = result {
                peer.shutdown(&mut self.tasks);
            }
            return;
        }
        self.claim_task = None;
        let outcome = match result {
            Ok((peer, pending)) => {
                peer.start_pumps(
                    pending,
                    PeerKind::Authority,
                    epoch,
                    &mut self.tasks,
                    self.tx.clone(),
                );
                self.claimed = Some((epoch, peer));
                ClaimOutcome::Open
            }
            Err(SignalingError::IdTaken { .. }) => ClaimOutcome::Taken,
            Err(e) => {
                tracing::debug!(error = %e, "claim failed");
                ClaimOutcome::Error
            }
        };
        self.join.handle_input(now, JoinInput::Claim(outcome));
    }

    fn spawn_presence_dial(&mut self) {
        self.presence_attempt += 1;
        let attempt = self.presence_attempt;
        let mesh = self.presence.mesh.clone();
        let room_id = self.facts.room_id.clone();
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let result = mesh.connect(&room_id, ConnectOptions::default()).await;
            let _ = tx.send(Input::Dialed {
                kind: PeerKind::Presence,
                peer: room_id,
                result,
                attempt,
            });
        });
    }

    /// Closes the presence link (if any) and invalidates in-flight dials.
    fn drop_presence_link(&mut self, now: Instant) {
        self.presence_attempt += 1;
        if let Some(id) = self.presence_link.take() {
            self.close_link(id);
            self.participant.link_closed(now);
        }
    }

    pub(crate) fn on_presence_dialed(
        &mut self,
        now: Instant,
        result: Result<crate::mesh::DataConnection, MeshError>,
        attempt: u64,
    ) {
        if attempt != self.presence_attempt || self.is_leaving() {
            return;
        }
        match result {
            Ok(conn) => {
                let id = self.add_link(conn, LinkRole::Presence);
                self.presence_link = Some(id);
            }
            Err(e) => {
                tracing::debug!(error = %e, "presence dial failed");
                self.join
                    .handle_input(now, JoinInput::ConnectFailed(ConnectFailure::Closed));
            }
        }
    }

    pub(crate) fn on_presence_open(&mut self, now: Instant, id: LinkId) {
        if self.presence_link == Some(id) {
            self.join.handle_input(now, JoinInput::ConnectOpened);
        }
    }

    pub(crate) fn on_presence_message(&mut self, now: Instant, id: LinkId, v: &crate::wire::Value) {
        if self.presence_link != Some(id) {
            return;
        }
        match AuthorityMsg::from_value(v) {
            Ok(msg) => self.participant.on_message(now, &msg),
            Err(e) => {
                Counters::bump(&self.counters.garbage);
                tracing::debug!(error = %e, "garbage on the presence link");
            }
        }
    }

    /// The presence link failed or closed.
    pub(crate) fn on_presence_down(&mut self, now: Instant, id: LinkId, err: Option<&MeshError>) {
        if self.presence_link != Some(id) {
            return;
        }
        self.presence_link = None;
        self.close_link(id);
        self.participant.link_closed(now);
        let why = match err {
            Some(MeshError::PeerUnavailable(_)) => ConnectFailure::NoAuthority,
            _ => ConnectFailure::Closed,
        };
        if !self.is_leaving() {
            self.join.handle_input(now, JoinInput::ConnectFailed(why));
        }
    }

    pub(crate) fn on_participant_output(&mut self, now: Instant, out: ParticipantOutput) {
        match out {
            ParticipantOutput::Send(msg) => {
                let sent = self
                    .presence_link
                    .is_some_and(|id| self.write(id, &msg.to_value()));
                if !sent {
                    tracing::debug!("presence message dropped: link not open");
                }
            }
            ParticipantOutput::Event(ev) => self.on_participant_event(now, ev),
        }
    }

    fn on_participant_event(&mut self, now: Instant, ev: ParticipantEvent) {
        match ev {
            ParticipantEvent::LobbyStatus(s) => self.emit(SessionEvent::Lobby(s)),
            ParticipantEvent::Refused {
                status,
                retry_in: None,
            } => {
                self.emit(match status {
                    LobbyStatus::Denied => SessionEvent::Denied,
                    LobbyStatus::Locked => SessionEvent::Locked,
                    _ => SessionEvent::Unverified,
                });
                self.begin_leave(now, true, None);
            }
            ParticipantEvent::Refused { status, retry_in } => {
                tracing::info!(
                    ?status,
                    ?retry_in,
                    "refused; retrying with a fresh assertion"
                );
            }
            ParticipantEvent::RosterUpdated(r) => self.on_roster(now, r),
            ParticipantEvent::Kicked => {
                self.emit(SessionEvent::Kicked);
                self.begin_leave(now, true, None);
            }
            ParticipantEvent::Reset => self.emit(SessionEvent::Reset),
            ParticipantEvent::AuthorityLost => {
                self.emit(SessionEvent::AuthorityLost);
                self.join.handle_input(now, JoinInput::AuthorityLost);
            }
            ParticipantEvent::AssertionRejected { len } => {
                tracing::warn!(len, "agent assertion over the size cap; not sent");
            }
        }
    }

    /// A broker-session event of one of our identities.
    pub(crate) fn on_signal(
        &mut self,
        now: Instant,
        kind: PeerKind,
        epoch: u64,
        ev: SignalingEvent,
    ) {
        match (kind, ev) {
            (_, SignalingEvent::Disconnected) => {
                tracing::info!(?kind, "broker connection dropped; reconnecting")
            }
            (_, SignalingEvent::Reconnected) => tracing::info!(?kind, "broker reconnected"),
            (PeerKind::Authority, SignalingEvent::Failed(_) | SignalingEvent::Closed) => {
                if self.authority.as_ref().is_some_and(|a| a.epoch == epoch) {
                    tracing::warn!("lost the room id; rejoining");
                    self.join.handle_input(now, JoinInput::AuthorityGone);
                }
            }
            (_, SignalingEvent::Failed(e)) => {
                tracing::warn!(?kind, error = %e, "broker session failed; leaving");
                self.begin_leave(now, false, None);
            }
            (kind, ev) => tracing::debug!(?kind, event = ?ev, "broker event"),
        }
    }

    fn take_signer(&self) -> Option<Box<dyn AssertionProvider>> {
        if let Some(fixed) = &self.facts.fixed_assertion {
            return Some(Box::new(FixedAssertion(fixed.clone())));
        }
        self.facts.assertion_key.as_ref().map(|key| {
            Box::new(KeySigner {
                key: Arc::clone(key),
                room: self.facts.room.clone(),
                fingerprint: self.facts.identity.fingerprint().to_owned(),
            }) as Box<dyn AssertionProvider>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capability_manifest::{verify_assertion, AssertionOptions};

    #[test]
    fn signer_binds_our_fingerprint_and_the_normalised_room() {
        let key = Arc::new(AgentKey::generate());
        let fp = "AB:CD:EF:01";
        let mut signer = KeySigner {
            key: Arc::clone(&key),
            room: "Stand Up!".into(),
            fingerprint: fp.into(),
        };
        let token = signer.fresh_assertion().expect("signed");
        let jwk = key.public().to_jwk();
        let ok = verify_assertion(
            &token,
            std::slice::from_ref(&jwk),
            "stand-up",
            "ab:cd:ef:01",
            unix_secs(),
            AssertionOptions::default(),
        );
        assert!(ok.is_ok(), "{ok:?}");
        let wrong_fp = verify_assertion(
            &token,
            &[jwk],
            "stand-up",
            "99:99",
            unix_secs(),
            AssertionOptions::default(),
        );
        assert!(wrong_fp.is_err());
    }
}
