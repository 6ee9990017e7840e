//! Conversions from PeerJS payloads (untrusted peer input) to webrtc-rs types, with size caps.
//! Every function returns a typed error and never panics (see the proptests).

use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

use super::sdp::MAX_SDP_LEN;
use super::signal::{IceCandidateInit, SdpType};
use super::MeshError;

/// Longest accepted `candidate:` line (browsers produce ~100–200 bytes).
pub(crate) const MAX_CANDIDATE_LEN: usize = 1024;

/// Parses a remote offer or answer.
pub(crate) fn remote_description(
    kind: SdpType,
    sdp: String,
) -> Result<RTCSessionDescription, MeshError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(MeshError::InvalidSdp(format!(
            "{} bytes exceed the {MAX_SDP_LEN} byte limit",
            sdp.len()
        )));
    }
    let parsed = match kind {
        SdpType::Offer => RTCSessionDescription::offer(sdp),
        SdpType::Answer => RTCSessionDescription::answer(sdp),
        other => {
            return Err(MeshError::InvalidSdp(format!(
                "unexpected description type {other:?}"
            )))
        }
    };
    parsed.map_err(|e| MeshError::InvalidSdp(e.to_string()))
}

/// Converts a remote candidate, or `None` if it is empty, oversize or does not parse (PeerJS
/// logs and drops such candidates too).
pub(crate) fn remote_candidate(c: IceCandidateInit) -> Option<RTCIceCandidateInit> {
    if c.candidate.len() > MAX_CANDIDATE_LEN {
        return None;
    }
    let line = c.candidate.trim();
    let body = line.strip_prefix("candidate:").unwrap_or(line);
    if body.is_empty() || rtc::ice::candidate::unmarshal_candidate(body).is_err() {
        return None;
    }
    Some(RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
        url: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(s: &str) -> IceCandidateInit {
        IceCandidateInit {
            candidate: s.to_owned(),
            sdp_mid: Some("0".to_owned()),
            sdp_m_line_index: Some(0),
            username_fragment: Some("uf".to_owned()),
        }
    }

    #[test]
    fn browser_candidates_parse() {
        let host = "candidate:842163049 1 udp 1677729535 127.0.0.1 51234 typ host generation 0 ufrag uf network-cost 999";
        let c = remote_candidate(cand(host)).unwrap();
        assert_eq!(c.candidate, host);
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        let mdns = "candidate:1 1 udp 2113937151 3f1a2b3c-0000-4000-8000-000000000000.local 50000 typ host generation 0";
        assert!(remote_candidate(cand(mdns)).is_some());
        let relay = "candidate:3 1 udp 41885439 203.0.113.5 3478 typ relay raddr 198.51.100.7 rport 61000 generation 0";
        assert!(remote_candidate(cand(relay)).is_some());
    }

    #[test]
    fn garbage_candidates_are_dropped() {
        assert!(remote_candidate(cand("")).is_none());
        assert!(remote_candidate(cand("candidate:")).is_none());
        assert!(remote_candidate(cand("candidate:garbage")).is_none());
        assert!(remote_candidate(cand(&"x ".repeat(MAX_CANDIDATE_LEN))).is_none());
    }

    #[test]
    fn descriptions_are_typed() {
        assert!(matches!(
            remote_description(SdpType::Offer, "not sdp".to_owned()),
            Err(MeshError::InvalidSdp(_))
        ));
        assert!(matches!(
            remote_description(SdpType::Rollback, "v=0\r\n".to_owned()),
            Err(MeshError::InvalidSdp(_))
        ));
        assert!(matches!(
            remote_description(SdpType::Answer, "v".repeat(MAX_SDP_LEN + 1)),
            Err(MeshError::InvalidSdp(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_sdp_never_panics(s in "\\PC{0,600}") {
            let _ = remote_description(SdpType::Offer, s.clone());
            let _ = remote_description(SdpType::Answer, format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{s}"));
        }

        #[test]
        fn arbitrary_sdp_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let s = String::from_utf8_lossy(&b).into_owned();
            let _ = remote_description(SdpType::Offer, format!("v=0\r\n{s}"));
        }

        #[test]
        fn sdp_like_lines_never_panic(lines in proptest::collection::vec(
            ("[vostcmab]", "[ -~]{0,40}").prop_map(|(k, v)| format!("{k}={v}")), 0..20)) {
            let _ = remote_description(SdpType::Offer, lines.join("\r\n"));
        }

        #[test]
        fn arbitrary_candidates_never_panic(s in "\\PC{0,300}") {
            let _ = remote_candidate(cand(&s));
            let _ = remote_candidate(cand(&format!("candidate:{s}")));
        }

        #[test]
        fn candidate_like_lines_never_panic(fields in proptest::collection::vec("[a-z0-9.:-]{0,12}", 0..14)) {
            let _ = remote_candidate(cand(&format!("candidate:{}", fields.join(" "))));
        }
    }
}
