//! The data mesh: [`MeshPlanner`](crate::room::MeshPlanner) actions on `sig`/`bulk` links of
//! the media peer, and content dispatch (kibitz-wire.md §5, §7, §11 steps 13–16).

use std::time::Instant;

use capability_manifest::Capability;

use crate::mesh::{ConnectOptions, DataConnection, MeshError, BULK_LABEL};
use crate::room::{member_generation, CapsContext, ChatVerdict, MeshAction, MeshEvent};
use crate::wire::content::{Chat, ContentMsg, APP_MAX_BYTES, CHAT_MAX_LEN};
use crate::wire::control::LinkMessage;
use crate::wire::json::{js_json_len, to_json};
use crate::wire::presence::GUEST_NAME;
use crate::wire::Value;

use super::codec::Decoded;
use super::driver::{unix_ms, unix_secs, Driver};
use super::event::{Counters, SessionEvent};
use super::handle::{ChatReceipt, SessionError};
use super::input::{LinkEvent, LinkId, PeerKind};
use super::links::LinkRole;

impl Driver {
    /// A remote peer dialled one of our identities.
    pub(crate) fn on_incoming(
        &mut self,
        now: Instant,
        kind: PeerKind,
        epoch: u64,
        conn: DataConnection,
    ) {
        match kind {
            PeerKind::Media if !self.is_leaving() => {
                let peer = conn.peer().to_owned();
                if conn.label() == BULK_LABEL {
                    let id = self.add_link(conn, LinkRole::Bulk);
                    if let Some(old) = self.bulk.insert(peer, id) {
                        self.close_link(old);
                    }
                } else {
                    let id = self.add_link(conn, LinkRole::Sig);
                    if let Some(old) = self.sig.insert(peer.clone(), id) {
                        self.close_link(old);
                    }
                    self.planner.on_incoming(now, &peer);
                }
            }
            PeerKind::Authority => self.on_authority_incoming(epoch, conn),
            // Nobody should dial our presence peer; dropping the connection closes it.
            _ => drop(conn),
        }
    }

    /// A dial returned.
    pub(crate) fn on_dialed(
        &mut self,
        now: Instant,
        kind: PeerKind,
        peer: &str,
        result: Result<DataConnection, MeshError>,
        attempt: u64,
    ) {
        match kind {
            PeerKind::Presence => self.on_presence_dialed(now, result, attempt),
            _ => match result {
                Ok(conn) if !self.is_leaving() => {
                    let id = self.add_link(conn, LinkRole::Sig);
                    if let Some(old) = self.sig.insert(peer.to_owned(), id) {
                        self.close_link(old);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "mesh dial failed");
                    self.planner.on_link_closed(now, peer);
                }
            },
        }
    }

    /// Routes one link event to its role.
    pub(crate) fn on_link_event(&mut self, now: Instant, id: LinkId, event: LinkEvent) {
        let Some((role, peer)) = self.links.get(&id).map(|l| (l.role, l.peer.clone())) else {
            return;
        };
        match event {
            LinkEvent::Open { remote_fp } => {
                if let Some(l) = self.links.get_mut(&id) {
                    l.open = true;
                    l.remote_fp.clone_from(&remote_fp);
                }
                match role {
                    LinkRole::Presence => self.on_presence_open(now, id),
                    LinkRole::AuthorityConn(_) => self.on_authority_open(now, id, remote_fp),
                    LinkRole::Sig if self.sig.get(&peer) == Some(&id) => {
                        self.planner.on_link_open(now, &peer);
                        if let Some(fp) = remote_fp {
                            self.authority_mesh_fingerprint(now, &peer, &fp);
                        }
                        self.replay_own_lines(&peer);
                        self.emit(SessionEvent::LinkOpened { peer });
                    }
                    _ => {}
                }
            }
            LinkEvent::Message(bytes) => {
                Counters::bump(&self.counters.frames_in);
                let decoded = match self.links.get_mut(&id) {
                    Some(l) => l.codec.decode(&bytes),
                    None => return,
                };
                match decoded {
                    Decoded::Message(v) => match role {
                        LinkRole::Presence => self.on_presence_message(now, id, &v),
                        LinkRole::AuthorityConn(_) => self.on_authority_message(now, id, &v),
                        LinkRole::Sig | LinkRole::Bulk => self.on_mesh_value(now, &peer, &v),
                    },
                    Decoded::Partial => {}
                    Decoded::Close => self.on_link_event(now, id, LinkEvent::Closed),
                    Decoded::Garbage(e) => {
                        Counters::bump(&self.counters.garbage);
                        tracing::debug!(%peer, error = %e, "undecodable frame dropped");
                        if matches!(role, LinkRole::Sig | LinkRole::Bulk) {
                            self.planner.on_received(now, &peer, None);
                        }
                    }
                }
            }
            LinkEvent::Error(e) => match role {
                LinkRole::Presence => self.on_presence_down(now, id, Some(&e)),
                _ => tracing::debug!(%peer, error = %e, "link error"),
            },
            LinkEvent::Closed => match role {
                LinkRole::Presence => {
                    self.on_presence_down(now, id, None);
                    self.links.remove(&id);
                }
                LinkRole::AuthorityConn(_) => {
                    self.on_authority_closed(now, id);
                    self.links.remove(&id);
                }
                LinkRole::Sig => {
                    self.links.remove(&id);
                    if self.sig.get(&peer) == Some(&id) {
                        self.sig.remove(&peer);
                        self.fail_manifest_waiters(&peer);
                        self.planner.on_link_closed(now, &peer);
                        self.emit(SessionEvent::LinkClosed { peer });
                    }
                }
                LinkRole::Bulk => {
                    self.links.remove(&id);
                    if self.bulk.get(&peer) == Some(&id) {
                        self.bulk.remove(&peer);
                    }
                }
            },
        }
    }

    pub(crate) fn on_mesh_action(&mut self, _now: Instant, action: MeshAction) {
        match action {
            MeshAction::Dial { peer } => {
                let mesh = self.media.mesh.clone();
                let tx = self.tx.clone();
                self.tasks.spawn(async move {
                    let result = mesh.connect(&peer, ConnectOptions::default()).await;
                    let _ = tx.send(super::input::Input::Dialed {
                        kind: PeerKind::Media,
                        peer,
                        result,
                        attempt: 0,
                    });
                });
            }
            MeshAction::Close { peer } => {
                if let Some(id) = self.sig.remove(&peer) {
                    self.close_link(id);
                    self.emit(SessionEvent::LinkClosed { peer: peer.clone() });
                }
                if let Some(id) = self.bulk.remove(&peer) {
                    self.close_link(id);
                }
            }
            MeshAction::SendControl { peer, msg } => {
                if let Some(id) = self.sig.get(&peer).copied() {
                    self.write(id, &msg.to_value());
                }
            }
            MeshAction::Event(MeshEvent::PeerLeft { peer }) => {
                tracing::debug!(%peer, "peer said bye")
            }
            MeshAction::Event(ev) => tracing::debug!(event = ?ev, "mesh event"),
        }
    }

    /// One decoded message on a mesh link from `peer`.
    fn on_mesh_value(&mut self, now: Instant, peer: &str, v: &Value) {
        match LinkMessage::parse(v) {
            LinkMessage::Control(c) => self.planner.on_received(now, peer, Some(&c)),
            LinkMessage::Content(c) => {
                self.planner.on_received(now, peer, None);
                self.dispatch_content(peer, c);
            }
            LinkMessage::Binary(_) => {
                self.planner.on_received(now, peer, None);
                Counters::bump(&self.counters.ignored);
            }
            LinkMessage::Garbage(e) => {
                self.planner.on_received(now, peer, None);
                Counters::bump(&self.counters.garbage);
                tracing::debug!(%peer, error = %e, "garbage on a mesh link");
            }
        }
    }

    /// `dispatchContent`: caps first, then the ACT gate, then per-kind handling.
    fn dispatch_content(&mut self, from: &str, msg: ContentMsg) {
        let now_sec = unix_secs();
        match msg {
            ContentMsg::Caps { grants } => self.on_caps(from, grants),
            ContentMsg::IdToken { .. } => Counters::bump(&self.counters.ignored),
            // Manifest retrieval envelopes are answered before the act gate (see app_data).
            ContentMsg::App { data } if self.on_manifest_envelope(from, &data) => {}
            msg if !self.grants.may_send(from, self.roster.as_ref(), now_sec) => {
                Counters::bump(&self.counters.act_blocked);
                tracing::debug!(%from, kind = msg.kind(), "content from a peer without send-chat dropped");
            }
            ContentMsg::Chat(chat) => self.on_chat(from, chat),
            ContentMsg::App { data } => {
                if js_json_len(&data, APP_MAX_BYTES + 1) > APP_MAX_BYTES {
                    Counters::bump(&self.counters.ignored);
                    return;
                }
                self.emit(SessionEvent::App {
                    from: from.to_owned(),
                    data: to_json(&data),
                });
            }
            _ => Counters::bump(&self.counters.ignored),
        }
    }

    fn on_chat(&mut self, from: &str, chat: Chat) {
        let text = chat.text.trim().to_owned();
        if text.is_empty() {
            Counters::bump(&self.counters.ignored);
            return;
        }
        let ts = chat.ts.map(|t| t as f64);
        let verdict =
            self.dedupe
                .observe(from, chat.from.as_deref(), chat.mid.as_deref(), &text, ts);
        let ChatVerdict::New { mid } = verdict else {
            Counters::bump(&self.counters.duplicates);
            return;
        };
        let name = self
            .roster
            .as_ref()
            .and_then(|r| r.members.iter().find(|m| m.id == from))
            .map(|m| m.name.clone())
            .unwrap_or_else(|| GUEST_NAME.to_owned());
        self.emit(SessionEvent::Chat {
            from: from.to_owned(),
            name,
            text,
            dm: chat.dm,
            mid,
        });
    }

    fn on_caps(&mut self, from: &str, grants: Vec<(String, Value)>) {
        let host = self
            .roster
            .as_ref()
            .map(|r| r.host.clone())
            .unwrap_or_default();
        let generation = self
            .roster
            .as_ref()
            .map(|r| member_generation(r, from))
            .unwrap_or(crate::room::Generation::Legacy);
        let ctx = CapsContext {
            generation,
            host_tier_cryptographic: self.facts.crypto_host,
            roster_host: &host,
            we_are_authority: self.authority.is_some(),
        };
        if self.caps.check(&ctx, from).is_err() {
            Counters::bump(&self.counters.caps_rejected);
            return;
        }
        let sanitized = grants.iter().map(|(id, g)| {
            (
                id.clone(),
                capability_manifest::Grant::sanitize(&to_json(g)),
            )
        });
        self.grants.replace(sanitized);
        self.refresh_grant();
    }

    /// Sends content to `peer` on its bulk link if open, else its sig link.
    pub(crate) fn write_content(&mut self, peer: &str, msg: &Value) -> bool {
        let bulk = self.bulk.get(peer).copied();
        if bulk.is_some_and(|id| self.write(id, msg)) {
            return true;
        }
        let sig = self.sig.get(peer).copied();
        sig.is_some_and(|id| self.write(id, msg))
    }

    /// `{k:'chat', text, mid:'<voiceId>#<n>', ts}` to every open link whose peer may read chat,
    /// or `dm:true` to one peer (which must hold `receive-directed` in our view).
    pub(crate) fn send_chat(
        &mut self,
        text: &str,
        to: Option<&str>,
    ) -> Result<ChatReceipt, SessionError> {
        let text = clamp_utf16(text.trim(), CHAT_MAX_LEN);
        self.chat_seq += 1;
        let chat = Chat::outgoing(
            text,
            &self.facts.voice_id,
            self.chat_seq,
            unix_ms(),
            to.is_some(),
        );
        let mid = chat.mid.clone().unwrap_or_default();
        let msg = ContentMsg::Chat(chat).to_value();
        if to.is_none() {
            if self.own_lines.len() >= OWN_LINES_MAX {
                self.own_lines.pop_front();
            }
            self.own_lines.push_back(msg.clone());
        }
        let sent_to = self.send_content(&msg, to)?;
        Ok(ChatReceipt { mid, sent_to })
    }
}

impl Driver {
    /// Late-joiner sync (kibitz-wire.md §5.4): our own public lines go to a peer whose link
    /// just opened, if it may read chat; receivers merge them by `mid`.
    fn replay_own_lines(&mut self, peer: &str) {
        let may_read = self
            .grants
            .grant_of(peer, self.roster.as_ref(), unix_secs())
            .can_perceive(Capability::ReadChat);
        if !may_read {
            return;
        }
        let lines: Vec<Value> = self.own_lines.iter().cloned().collect();
        for line in &lines {
            self.write_content(peer, line);
        }
    }
}

/// How many of our own public lines are kept for replay.
const OWN_LINES_MAX: usize = 100;

/// At most `max` UTF-16 code units of `s`, cut on a character boundary (JS `slice`).
fn clamp_utf16(s: &str, max: usize) -> String {
    let mut units = 0;
    s.chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= max
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::clamp_utf16;

    #[test]
    fn clamps_in_utf16_units() {
        assert_eq!(clamp_utf16("abc", 2), "ab");
        assert_eq!(clamp_utf16("a\u{1F600}b", 2), "a");
        assert_eq!(clamp_utf16("a\u{1F600}b", 3), "a\u{1F600}");
    }
}
