//! App data on the mesh (`{k:'app', data}`, kibitz-wire.md §5) and manifest retrieval over it
//! (the `__kib_agent:'manifest?'` / `'manifest'` envelopes of
//! [`ManifestEnvelope`](capability_manifest::ManifestEnvelope)).
//!
//! Sending follows the browser's sender-side perceive rule: a broadcast goes only to peers
//! holding `read-chat` in our view, a directed send only to a peer holding `receive-directed`.
//!
//! Manifest envelopes are recognised **before** the receiver's act gate: we answer a request
//! from any peer (a host deciding about us usually has not granted us anything yet), and accept
//! the answer from the peer we asked. Honest Kibitz browsers apply their act gate first, so they
//! drop the answer of an agent lacking `send-chat`: only `kibitz-agent` peers (such as
//! `kibitz-agent host`) can fetch a read-only agent's manifest this way.

use capability_manifest::{Capability, ManifestEnvelope};
use serde_json::Value as Json;
use tokio::sync::oneshot;

use crate::wire::content::{ContentMsg, APP_MAX_BYTES};
use crate::wire::json::{from_json, js_json_len, to_json};
use crate::wire::Value;

use super::driver::{unix_secs, Driver};
use super::event::Counters;
use super::handle::{ChatReceipt, SessionError};

/// The reserved envelope key (kibitz-agents.md §7.1).
const ENVELOPE_KEY: &str = "__kib_agent";

/// A pending `fetch_manifest` reply.
pub(crate) type ManifestReply = oneshot::Sender<Result<String, SessionError>>;

impl Driver {
    /// `{k:'app', data}` to every open link whose peer may read chat, or to one peer (which must
    /// hold `receive-directed` in our view). App data carries no `mid`: the receipt's is empty.
    pub(crate) fn send_app(
        &mut self,
        data: &Json,
        to: Option<&str>,
    ) -> Result<ChatReceipt, SessionError> {
        let data = from_json(data);
        let len = js_json_len(&data, APP_MAX_BYTES + 1);
        if len > APP_MAX_BYTES {
            return Err(SessionError::AppTooLarge(len));
        }
        let msg = ContentMsg::App { data }.to_value();
        let sent_to = self.send_content(&msg, to)?;
        Ok(ChatReceipt {
            mid: String::new(),
            sent_to,
        })
    }

    /// Sends content with the sender-side perceive check; returns how many peers got it.
    pub(super) fn send_content(
        &mut self,
        msg: &Value,
        to: Option<&str>,
    ) -> Result<usize, SessionError> {
        let (targets, need) = match to {
            Some(p) => {
                if !self.sig.contains_key(p) && !self.bulk.contains_key(p) {
                    return Err(SessionError::NoLink(p.to_owned()));
                }
                (vec![p.to_owned()], Capability::ReceiveDirected)
            }
            None => {
                let mut peers: Vec<String> = self.sig.keys().cloned().collect();
                peers.sort();
                (peers, Capability::ReadChat)
            }
        };
        let now_sec = unix_secs();
        let mut sent_to = 0;
        for peer in targets {
            let allowed = self
                .grants
                .grant_of(&peer, self.roster.as_ref(), now_sec)
                .can_perceive(need);
            if allowed && self.write_content(&peer, msg) {
                sent_to += 1;
            }
        }
        Ok(sent_to)
    }

    /// Asks `peer` for its signed manifest; `reply` gets the token when it answers.
    pub(crate) fn fetch_manifest(&mut self, peer: &str, reply: ManifestReply) {
        let request = ManifestEnvelope::Request.to_value();
        match self.send_app(&request, Some(peer)) {
            Ok(r) if r.sent_to == 1 => {
                let waiters = self.manifest_waiters.entry(peer.to_owned()).or_default();
                waiters.retain(|w| !w.is_closed());
                waiters.push(reply);
            }
            Ok(_) => {
                let _ = reply.send(Err(SessionError::Withheld(peer.to_owned())));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// If `data` is a manifest envelope, handles it (before the act gate) and returns true.
    pub(crate) fn on_manifest_envelope(&mut self, from: &str, data: &Value) -> bool {
        // Cheap pre-check so ordinary app data is not converted.
        if data.get(ENVELOPE_KEY).and_then(Value::as_str).is_none() {
            return false;
        }
        if js_json_len(data, APP_MAX_BYTES + 1) > APP_MAX_BYTES {
            return false;
        }
        match ManifestEnvelope::from_value(&to_json(data)) {
            Some(ManifestEnvelope::Request) => {
                self.answer_manifest_request(from);
                true
            }
            Some(ManifestEnvelope::Response(token)) => {
                match self.manifest_waiters.remove(from) {
                    Some(waiters) => {
                        for w in waiters {
                            let _ = w.send(Ok(token.clone()));
                        }
                    }
                    None => {
                        Counters::bump(&self.counters.ignored);
                        tracing::debug!(%from, "unsolicited manifest dropped");
                    }
                }
                true
            }
            None => false,
        }
    }

    fn answer_manifest_request(&mut self, from: &str) {
        let Some(token) = self.facts.manifest_token.clone() else {
            Counters::bump(&self.counters.ignored);
            tracing::debug!(%from, "manifest request ignored: no signed manifest configured");
            return;
        };
        let answer = ManifestEnvelope::Response(token).to_value();
        match self.send_app(&answer, Some(from)) {
            Ok(r) if r.sent_to == 1 => tracing::debug!(%from, "manifest sent"),
            Ok(_) => tracing::debug!(%from, "manifest withheld: peer lacks receive-directed"),
            Err(e) => tracing::debug!(%from, error = %e, "manifest not sent"),
        }
    }

    /// A `sig` link to `peer` closed: pending manifest fetches from it fail.
    pub(crate) fn fail_manifest_waiters(&mut self, peer: &str) {
        for w in self.manifest_waiters.remove(peer).unwrap_or_default() {
            let _ = w.send(Err(SessionError::NoLink(peer.to_owned())));
        }
    }
}
