//! The authority half: while we hold `kbz-v1-<room>`, run
//! [`AuthorityState`](crate::room::AuthorityState) over incoming presence connections, and be a
//! member of our own roster (kibitz-wire.md §2.4 steps 1, 5–6, §4.2–4.4).

use std::collections::HashMap;
use std::time::Instant;

use capability_manifest::Grant;

use crate::room::{
    AllowListVerifier, AuthorityEvent, AuthorityOptions, AuthorityOutput, AuthorityState,
    GateOptions, JoinInput,
};
use crate::wire::content::ContentMsg;
use crate::wire::json::from_json;
use crate::wire::presence::{CallMember, ClientMsg};

use super::driver::{unix_secs, Authority, Driver};
use super::event::{Counters, SessionEvent};
use super::handle::{HostOp, SessionError};
use super::input::LinkId;
use super::links::LinkRole;

impl Driver {
    /// The claim opened: run the authority (inheriting the last roster after a migration).
    pub(crate) fn become_authority(&mut self, now: Instant) {
        let Some((epoch, peer)) = self.claimed.take() else {
            self.join.handle_input(now, JoinInput::AuthorityGone);
            return;
        };
        let gate = if self.facts.agent_keys.is_some() {
            // An agent-gated room (kibitz-agents.md §3.10 (b), §4.6): only assertions are
            // checked (we have no human verifier), and credential-less joiners enter as humans.
            GateOptions {
                require: false,
                require_agent_credits: false,
                binds_fingerprint: false,
                open_humans: true,
            }
        } else {
            GateOptions::default()
        };
        let opts = AuthorityOptions {
            lobby_on_start: self.facts.lobby_on_start,
            gate,
        };
        let mut state = match &self.roster {
            Some(last) => AuthorityState::inherit(now, opts, last),
            None => AuthorityState::new(now, opts),
        };
        if let Some(entries) = &self.facts.agent_keys {
            let verifier = AllowListVerifier::new(self.facts.room.clone(), entries.clone());
            state = state.with_verifier(Box::new(verifier));
        }
        state.set_unix_time(now, unix_secs());
        state.set_self(
            now,
            Some(CallMember {
                id: self.facts.voice_id.clone(),
                name: self.facts.name.clone(),
                cam: false,
                avatar: self.facts.avatar.clone(),
                meta: self.facts.meta.clone(),
            }),
        );
        if self.facts.crypto_host {
            state.set_verified_host(now, Some(&self.facts.voice_id));
        }
        tracing::info!(room = %self.facts.room_id, "holding the room: authority role");
        self.admitted = false;
        self.authority = Some(Authority {
            state,
            peer,
            epoch,
            conns: HashMap::new(),
        });
        self.emit(SessionEvent::BecameAuthority);
    }

    /// Drops the authority role: closes its presence connections and releases the room id.
    pub(crate) fn teardown_authority(&mut self) {
        if let Some(a) = self.authority.take() {
            self.roster = Some(a.state.roster());
            for id in a.conns.into_values() {
                self.close_link(id);
            }
            a.peer.shutdown(&mut self.tasks);
        }
        if let Some((_, p)) = self.claimed.take() {
            p.shutdown(&mut self.tasks);
        }
    }

    /// A participant's presence connection arrived on our room id.
    pub(crate) fn on_authority_incoming(&mut self, epoch: u64, conn: crate::mesh::DataConnection) {
        let current = self.authority.as_ref().is_some_and(|a| a.epoch == epoch);
        if !current || self.is_leaving() {
            return;
        }
        let key = conn.peer().to_owned();
        let id = self.add_link(conn, LinkRole::AuthorityConn(epoch));
        let old = self
            .authority
            .as_mut()
            .and_then(|a| a.conns.insert(key, id));
        if let Some(old) = old {
            self.close_link(old);
        }
    }

    fn authority_conn(&self, id: LinkId) -> Option<String> {
        let link = self.links.get(&id)?;
        let a = self.authority.as_ref()?;
        match link.role {
            LinkRole::AuthorityConn(e) if e == a.epoch && a.conns.get(&link.peer) == Some(&id) => {
                Some(link.peer.clone())
            }
            _ => None,
        }
    }

    pub(crate) fn on_authority_open(&mut self, now: Instant, id: LinkId, fp: Option<String>) {
        if let Some(conn) = self.authority_conn(id) {
            if let Some(a) = self.authority.as_mut() {
                a.state.on_connect(now, &conn, fp);
            }
        }
    }

    pub(crate) fn on_authority_message(
        &mut self,
        now: Instant,
        id: LinkId,
        v: &crate::wire::Value,
    ) {
        let Some(conn) = self.authority_conn(id) else {
            return;
        };
        match ClientMsg::from_value(v) {
            Ok(msg) => {
                if let Some(a) = self.authority.as_mut() {
                    a.state.on_message(now, &conn, &msg);
                }
            }
            Err(e) => {
                Counters::bump(&self.counters.garbage);
                tracing::debug!(%conn, error = %e, "garbage on a presence connection");
            }
        }
    }

    pub(crate) fn on_authority_closed(&mut self, now: Instant, id: LinkId) {
        let Some(conn) = self.authority_conn(id) else {
            return;
        };
        if let Some(a) = self.authority.as_mut() {
            a.conns.remove(&conn);
            a.state.on_disconnect(now, &conn);
        }
    }

    pub(crate) fn on_authority_output(&mut self, now: Instant, out: AuthorityOutput) {
        match out {
            AuthorityOutput::Send { conn, msg } => {
                let id = self
                    .authority
                    .as_ref()
                    .and_then(|a| a.conns.get(&conn))
                    .copied();
                if !id.is_some_and(|id| self.write(id, &msg.to_value())) {
                    tracing::debug!(%conn, "presence reply dropped: connection not open");
                }
            }
            AuthorityOutput::BroadcastCaps { grants } => {
                let sanitized = grants
                    .iter()
                    .map(|(id, g)| (id.clone(), Grant::sanitize(g)))
                    .collect::<Vec<_>>();
                self.grants.replace(sanitized);
                self.refresh_grant();
                let wire = grants
                    .iter()
                    .map(|(id, g)| (id.clone(), from_json(g)))
                    .collect();
                let msg = ContentMsg::Caps { grants: wire }.to_value();
                let peers: Vec<String> = self.sig.keys().cloned().collect();
                for peer in peers {
                    self.write_content(&peer, &msg);
                }
            }
            AuthorityOutput::Event(ev) => self.on_authority_event(now, ev),
        }
    }

    fn on_authority_event(&mut self, now: Instant, ev: AuthorityEvent) {
        match ev {
            AuthorityEvent::Knocked { conn, name, .. } => {
                self.emit(SessionEvent::Knock { conn, name })
            }
            AuthorityEvent::RosterChanged(r) => self.on_roster(now, r),
            AuthorityEvent::Unverified { conn, reason } => {
                tracing::info!(%conn, %reason, "identity gate refused a joiner");
                self.emit(SessionEvent::GateRefused { conn, reason });
            }
            AuthorityEvent::Reaped { conn } => {
                let id = self.authority.as_mut().and_then(|a| a.conns.remove(&conn));
                if let Some(id) = id {
                    self.close_link(id);
                }
            }
            other => tracing::debug!(event = ?other, "authority event"),
        }
    }

    /// Host operations (authority only).
    pub(crate) fn host_op(&mut self, now: Instant, op: HostOp) -> Result<(), SessionError> {
        let a = self.authority.as_mut().ok_or(SessionError::NotAuthority)?;
        match op {
            HostOp::Admit(conn) => a.state.admit(now, &conn),
            HostOp::Deny(conn) => a.state.deny(now, &conn),
            HostOp::Kick(voice_id) => a.state.kick(now, &voice_id),
            HostOp::Lobby(on) => a.state.set_lobby(now, on),
            HostOp::Grant(voice_id, grant) => {
                a.state
                    .set_grant(now, &voice_id, grant.map(|g| g.to_value()));
            }
        }
        Ok(())
    }

    /// As authority, a mesh link to `peer` opened: manifest caps recorded at the gate apply
    /// once its mesh fingerprint matches (kibitz-agents.md §6.5).
    pub(crate) fn authority_mesh_fingerprint(&mut self, now: Instant, peer: &str, fp: &str) {
        if let Some(a) = self.authority.as_mut() {
            a.state.on_mesh_fingerprint(now, peer, fp);
        }
    }

    /// As authority, after a roster change: re-run the manifest-caps match for every open `sig`
    /// link (a member may declare `meta.role:'agent'` after its link opened).
    pub(crate) fn reconcile_agent_caps(&mut self, now: Instant) {
        if self.authority.is_none() {
            return;
        }
        let links: Vec<(String, String)> = self
            .sig
            .iter()
            .filter_map(|(peer, id)| {
                let fp = self.links.get(id)?.remote_fp.clone()?;
                Some((peer.clone(), fp))
            })
            .collect();
        for (peer, fp) in links {
            self.authority_mesh_fingerprint(now, &peer, &fp);
        }
    }
}
