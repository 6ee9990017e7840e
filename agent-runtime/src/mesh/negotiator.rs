//! Sans-I/O PeerJS negotiation bookkeeping (`kibitz-wire.md` §2.2; PeerJS `negotiator.ts`,
//! `peer.ts` "lost messages").
//!
//! [`Negotiator`] is the per-connection part: it builds the OFFER/ANSWER/CANDIDATE payloads
//! tagged with the connection id and holds remote candidates until the remote description is
//! applied. [`PendingCandidates`] is the per-peer part: candidates for a connection id we have
//! not seen an OFFER for yet, kept (bounded, with expiry against an explicit `now`) until the
//! OFFER arrives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::sdp;
use super::signal::{
    AnswerPayload, CandidatePayload, ConnectionType, IceCandidateInit, OfferPayload, SdpType,
    SessionDescription,
};

/// Remote candidates held per connection before its remote description is set.
pub(crate) const MAX_QUEUED_CANDIDATES: usize = 64;
/// Connection ids with early candidates held at once.
pub(crate) const MAX_PENDING_CONNECTIONS: usize = 256;
/// How long early candidates wait for their OFFER.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(30);

/// Signaling state of one PeerJS connection.
#[derive(Debug)]
pub(crate) struct Negotiator {
    connection_id: String,
    kind: ConnectionType,
    remote_description_set: bool,
    queued: Vec<IceCandidateInit>,
    dropped: usize,
    local_mid: Option<String>,
    local_ufrag: Option<String>,
}

impl Negotiator {
    pub(crate) fn new(connection_id: impl Into<String>, kind: ConnectionType) -> Self {
        Negotiator {
            connection_id: connection_id.into(),
            kind,
            remote_description_set: false,
            queued: Vec::new(),
            dropped: 0,
            local_mid: None,
            local_ufrag: None,
        }
    }

    /// Learns the first m-line's mid and the ICE ufrag from our applied local description, so
    /// outgoing candidates carry them like a browser's `RTCIceCandidate.toJSON()`.
    pub(crate) fn local_description_applied(&mut self, local_sdp: &str) {
        self.local_mid = sdp::media_sections(local_sdp)
            .into_iter()
            .next()
            .and_then(|m| m.mid);
        self.local_ufrag = sdp::ice_ufrag(local_sdp);
    }

    /// Marks the remote description applied; returns the candidates held until now, in
    /// arrival order, to be added next.
    pub(crate) fn remote_description_applied(&mut self) -> Vec<IceCandidateInit> {
        self.remote_description_set = true;
        std::mem::take(&mut self.queued)
    }

    /// A remote candidate arrived: `Some` means add it now, `None` that it was queued (or was
    /// an empty end-of-candidates marker, or the queue is full and it was dropped).
    pub(crate) fn remote_candidate(&mut self, c: IceCandidateInit) -> Option<IceCandidateInit> {
        if c.candidate.trim().is_empty() {
            return None;
        }
        if self.remote_description_set {
            return Some(c);
        }
        if self.queued.len() < MAX_QUEUED_CANDIDATES {
            self.queued.push(c);
        } else {
            self.dropped += 1;
        }
        None
    }

    /// Remote candidates dropped because the queue was full.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }

    /// Wraps a locally gathered candidate as a `CANDIDATE` payload. An empty `sdpMid` (what
    /// webrtc-rs reports) is replaced by our first m-line's mid, and a missing ufrag by ours.
    pub(crate) fn local_candidate(&self, mut c: IceCandidateInit) -> CandidatePayload {
        if c.sdp_mid.as_deref().is_none_or(str::is_empty) {
            c.sdp_mid.clone_from(&self.local_mid);
        }
        if c.sdp_m_line_index.is_none() {
            c.sdp_m_line_index = Some(0);
        }
        if c.username_fragment.is_none() {
            c.username_fragment.clone_from(&self.local_ufrag);
        }
        CandidatePayload {
            candidate: c,
            kind: self.kind,
            connection_id: self.connection_id.clone(),
        }
    }

    /// The `OFFER` payload for a PeerJS data connection.
    pub(crate) fn data_offer(&self, sdp: String, label: &str) -> OfferPayload {
        OfferPayload::data(sdp, self.connection_id.clone(), Some(label.to_owned()))
    }

    /// The `ANSWER` payload.
    pub(crate) fn answer(&self, sdp: String) -> AnswerPayload {
        AnswerPayload {
            sdp: SessionDescription {
                kind: SdpType::Answer,
                sdp,
            },
            kind: self.kind,
            connection_id: self.connection_id.clone(),
        }
    }
}

/// Candidates that arrived before the OFFER of their connection, keyed by (peer, connection).
#[derive(Debug, Default)]
pub(crate) struct PendingCandidates {
    map: HashMap<(String, String), Pending>,
}

#[derive(Debug)]
struct Pending {
    first_seen: Instant,
    candidates: Vec<IceCandidateInit>,
}

impl PendingCandidates {
    /// Holds `c` for (`peer`, `connection_id`). Returns `false` if it was dropped because a
    /// bound was reached.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        peer: &str,
        connection_id: &str,
        c: IceCandidateInit,
    ) -> bool {
        self.expire(now);
        let key = (peer.to_owned(), connection_id.to_owned());
        if !self.map.contains_key(&key) && self.map.len() >= MAX_PENDING_CONNECTIONS {
            return false;
        }
        let entry = self.map.entry(key).or_insert_with(|| Pending {
            first_seen: now,
            candidates: Vec::new(),
        });
        if entry.candidates.len() >= MAX_QUEUED_CANDIDATES {
            return false;
        }
        entry.candidates.push(c);
        true
    }

    /// Takes everything held for (`peer`, `connection_id`), in arrival order.
    pub(crate) fn take(&mut self, peer: &str, connection_id: &str) -> Vec<IceCandidateInit> {
        self.map
            .remove(&(peer.to_owned(), connection_id.to_owned()))
            .map(|p| p.candidates)
            .unwrap_or_default()
    }

    /// Drops everything held for `peer` (it left).
    pub(crate) fn forget_peer(&mut self, peer: &str) {
        self.map.retain(|(p, _), _| p != peer);
    }

    /// Drops entries older than [`PENDING_TTL`].
    pub(crate) fn expire(&mut self, now: Instant) {
        self.map
            .retain(|_, p| now.saturating_duration_since(p.first_seen) < PENDING_TTL);
    }

    /// Number of connection ids with held candidates.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cand(s: &str) -> IceCandidateInit {
        IceCandidateInit {
            candidate: s.to_owned(),
            sdp_mid: Some("0".to_owned()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn candidates_wait_for_remote_description() {
        let mut n = Negotiator::new("dc_x", ConnectionType::Data);
        assert_eq!(n.remote_candidate(cand("candidate:1")), None);
        assert_eq!(n.remote_candidate(cand("candidate:2")), None);
        assert_eq!(
            n.remote_candidate(cand("")),
            None,
            "empty is end-of-candidates"
        );
        let drained = n.remote_description_applied();
        assert_eq!(
            drained
                .iter()
                .map(|c| c.candidate.as_str())
                .collect::<Vec<_>>(),
            ["candidate:1", "candidate:2"]
        );
        assert_eq!(
            n.remote_candidate(cand("candidate:3")).map(|c| c.candidate),
            Some("candidate:3".to_owned())
        );
        assert!(n.remote_description_applied().is_empty());
    }

    #[test]
    fn queue_is_bounded() {
        let mut n = Negotiator::new("dc_x", ConnectionType::Data);
        for i in 0..MAX_QUEUED_CANDIDATES + 5 {
            assert_eq!(n.remote_candidate(cand(&format!("candidate:{i}"))), None);
        }
        assert_eq!(n.dropped(), 5);
        assert_eq!(n.remote_description_applied().len(), MAX_QUEUED_CANDIDATES);
    }

    #[test]
    fn local_candidates_are_tagged_like_peerjs() {
        let mut n = Negotiator::new("dc_abc", ConnectionType::Data);
        n.local_description_applied(
            "v=0\r\na=ice-ufrag:UF\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n",
        );
        let p = n.local_candidate(IceCandidateInit {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".to_owned(),
            sdp_mid: Some(String::new()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        });
        assert_eq!(p.connection_id, "dc_abc");
        assert_eq!(p.kind, ConnectionType::Data);
        assert_eq!(p.candidate.sdp_mid.as_deref(), Some("0"));
        assert_eq!(p.candidate.sdp_m_line_index, Some(0));
        assert_eq!(p.candidate.username_fragment.as_deref(), Some("UF"));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"UF"},"type":"data","connectionId":"dc_abc"}"#
        );
    }

    #[test]
    fn offer_and_answer_payloads() {
        let n = Negotiator::new("dc_abc", ConnectionType::Data);
        assert_eq!(
            serde_json::to_string(&n.data_offer("S".to_owned(), "dc_abc")).unwrap(),
            r#"{"sdp":{"type":"offer","sdp":"S"},"type":"data","connectionId":"dc_abc","label":"dc_abc","reliable":true,"serialization":"binary"}"#
        );
        assert_eq!(
            n.data_offer("S".to_owned(), "bulk").label.as_deref(),
            Some("bulk")
        );
        assert_eq!(
            serde_json::to_string(&n.answer("A".to_owned())).unwrap(),
            r#"{"sdp":{"type":"answer","sdp":"A"},"type":"data","connectionId":"dc_abc"}"#
        );
    }

    #[test]
    fn pending_candidates_are_keyed_bounded_and_expire() {
        let t0 = Instant::now();
        let mut p = PendingCandidates::default();
        assert!(p.push(t0, "a", "dc_1", cand("candidate:1")));
        assert!(p.push(t0, "a", "dc_1", cand("candidate:2")));
        assert!(p.push(t0, "b", "dc_1", cand("candidate:3")));
        assert_eq!(p.take("a", "dc_2"), vec![]);
        let got = p.take("a", "dc_1");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].candidate, "candidate:1");
        assert_eq!(p.take("a", "dc_1"), vec![]);

        p.forget_peer("b");
        assert_eq!(p.len(), 0);

        assert!(p.push(t0, "a", "dc_3", cand("candidate:4")));
        p.expire(t0 + PENDING_TTL);
        assert_eq!(p.len(), 0, "expired after the TTL");

        for i in 0..MAX_PENDING_CONNECTIONS {
            assert!(p.push(t0, "a", &format!("dc_{i}"), cand("candidate:x")));
        }
        assert!(!p.push(t0, "a", "dc_new", cand("candidate:x")));
        for _ in 1..MAX_QUEUED_CANDIDATES {
            assert!(p.push(t0, "a", "dc_0", cand("candidate:y")));
        }
        assert!(!p.push(t0, "a", "dc_0", cand("candidate:z")));
    }
}
