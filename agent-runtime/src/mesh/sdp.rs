//! Read-only scanning of SDP text for the few facts the mesh needs: m-line kinds and mids, and
//! the ICE username fragment. Works on untrusted input; never panics.

/// SDP larger than this is not scanned (browsers produce a few KiB).
pub const MAX_SDP_LEN: usize = 256 * 1024;

/// One `m=` section of an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// The media kind from the `m=` line: `audio`, `video`, `application`, …
    pub kind: String,
    /// The section's `a=mid:` value, if any.
    pub mid: Option<String>,
}

fn lines(sdp: &str) -> impl Iterator<Item = &str> {
    let sdp = if sdp.len() > MAX_SDP_LEN { "" } else { sdp };
    sdp.lines().map(|l| l.trim_end_matches('\r'))
}

/// The `m=` sections of `sdp`, in order.
pub fn media_sections(sdp: &str) -> Vec<MediaSection> {
    let mut out: Vec<MediaSection> = Vec::new();
    for line in lines(sdp) {
        if let Some(rest) = line.strip_prefix("m=") {
            let kind = rest.split(' ').next().unwrap_or_default().to_owned();
            out.push(MediaSection { kind, mid: None });
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            if let Some(last) = out.last_mut() {
                if last.mid.is_none() {
                    last.mid = Some(mid.trim().to_owned());
                }
            }
        }
    }
    out
}

/// The ICE username fragment: the session-level `a=ice-ufrag:` if present, else the first
/// media-level one.
pub fn ice_ufrag(sdp: &str) -> Option<String> {
    lines(sdp)
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1 2\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=mid:0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n";

    #[test]
    fn sections_in_order_with_mids() {
        let s = media_sections(SDP);
        let kinds: Vec<_> = s.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["audio", "video", "video"]);
        let mids: Vec<_> = s.iter().map(|m| m.mid.as_deref()).collect();
        assert_eq!(mids, [Some("0"), Some("1"), Some("2")]);
        assert_eq!(ice_ufrag(SDP).as_deref(), Some("abcd"));
    }

    #[test]
    fn data_only_sdp() {
        let sdp = "v=0\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:0\n";
        let s = media_sections(sdp);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, "application");
        assert_eq!(s[0].mid.as_deref(), Some("0"));
        assert_eq!(ice_ufrag(sdp), None);
    }

    #[test]
    fn oversize_sdp_is_not_scanned() {
        let big = format!("m=audio 9\n{}", "a=x\n".repeat(MAX_SDP_LEN / 4 + 1));
        assert!(media_sections(&big).is_empty());
    }

    proptest! {
        #[test]
        fn scanning_never_panics(s in "\\PC{0,400}") {
            let _ = media_sections(&s);
            let _ = ice_ufrag(&s);
        }

        #[test]
        fn scanning_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let s = String::from_utf8_lossy(&b);
            let _ = media_sections(&s);
            let _ = ice_ufrag(&s);
        }
    }
}
