//! ICE server configuration (`kibitz-wire.md` §2.2 "PeerJS's default ICE config", §9).
//!
//! Kibitz browsers put their media peer (the `sig`/`bulk` DataConnections) and their media
//! pcs on **relay-only** ICE by default, with TURN credentials from `/api/turn`. An agent that
//! wants to reach them should use the same TURN servers; [`IceConfig::relay_only`] mirrors
//! `iceTransportPolicy:'relay'`. Loopback tests use no servers at all ([`IceConfig::default`]).

use webrtc::peer_connection::{RTCIceServer, RTCIceTransportPolicy};

/// One STUN or TURN server, as in `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:`/`turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    pub username: Option<String>,
    /// TURN credential.
    pub credential: Option<String>,
}

/// The ICE part of a peer connection configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceConfig {
    /// STUN/TURN servers; empty means host candidates only.
    pub servers: Vec<IceServer>,
    /// Gather and use relay candidates only (`iceTransportPolicy:'relay'`). Fails closed:
    /// without a TURN server nothing connects.
    pub relay_only: bool,
}

/// Kibitz's fallback when `/api/turn` yields nothing (`kibitz-wire.md` §9).
pub const KIBITZ_FALLBACK_STUN: &str = "stun:stun.l.google.com:19302";

impl IceConfig {
    /// PeerJS 1.5.5's default `config` (`lib/util.ts`): Google STUN plus the PeerJS TURN
    /// servers with user `peerjs` / credential `peerjsp`, not relay-only. What a Kibitz presence
    /// peer uses when `/api/turn` offers no `turn:` URL.
    pub fn peerjs_default() -> Self {
        IceConfig {
            servers: vec![
                IceServer {
                    urls: vec![KIBITZ_FALLBACK_STUN.to_owned()],
                    ..IceServer::default()
                },
                IceServer {
                    urls: vec![
                        "turn:eu-0.turn.peerjs.com:3478".to_owned(),
                        "turn:us-0.turn.peerjs.com:3478".to_owned(),
                    ],
                    username: Some("peerjs".to_owned()),
                    credential: Some("peerjsp".to_owned()),
                },
            ],
            relay_only: false,
        }
    }

    /// The same servers with relay-only policy switched on or off.
    pub fn with_relay_only(mut self, relay_only: bool) -> Self {
        self.relay_only = relay_only;
        self
    }

    pub(crate) fn rtc_servers(&self) -> Vec<RTCIceServer> {
        self.servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect()
    }

    pub(crate) fn rtc_policy(&self) -> RTCIceTransportPolicy {
        if self.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn peerjs_default_matches_spec() {
        let c = IceConfig::peerjs_default();
        assert!(!c.relay_only);
        let servers = c.rtc_servers();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, vec!["stun:stun.l.google.com:19302"]);
        assert_eq!(servers[0].username, "");
        assert_eq!(servers[1].urls.len(), 2);
        assert_eq!(servers[1].username, "peerjs");
        assert_eq!(servers[1].credential, "peerjsp");
        assert_eq!(c.rtc_policy(), RTCIceTransportPolicy::All);
    }

    #[test]
    fn relay_only_maps_to_relay_policy() {
        let c = IceConfig::default().with_relay_only(true);
        assert_eq!(c.rtc_policy(), RTCIceTransportPolicy::Relay);
        assert!(c.rtc_servers().is_empty());
    }
}
