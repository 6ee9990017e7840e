//! Builds webrtc-rs peer connections that all present the agent's one certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::peer_connection::transport::RTCDtlsRole;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceConnectionState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, SettingEngineBuilder,
};

use super::cert::DtlsIdentity;
use super::ice::IceConfig;
use super::signal::IceCandidateInit;
use super::MeshError;

/// PeerJS pauses sending while a channel buffers more than this (`DataConnection.ts`).
pub const PEERJS_SEND_HIGH_WATER: usize = 8 * 1024 * 1024;

/// Interval between ICE connectivity checks while connecting (webrtc-rs default: 200 ms).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// Checks per candidate pair before it fails: 70 × 20 ms keeps webrtc-rs's 1.4 s budget.
const ICE_MAX_BINDING_REQUESTS: u16 = 70;

/// How the mesh builds its peer connections.
#[derive(Debug, Clone)]
pub struct MeshOptions {
    /// STUN/TURN servers and relay-only policy. Default: none (host candidates only).
    pub ice: IceConfig,
    /// Local UDP address to bind. Default `0.0.0.0:0`: one socket per non-loopback interface.
    /// Use `127.0.0.1:0` for in-process tests (a wildcard bind skips loopback).
    pub udp_bind: SocketAddr,
    /// Per-channel send high-water mark in bytes: `send` waits while this much is
    /// unacknowledged, `try_send` fails. Default [`PEERJS_SEND_HIGH_WATER`].
    pub send_high_water: usize,
}

impl Default for MeshOptions {
    fn default() -> Self {
        MeshOptions {
            ice: IceConfig::default(),
            udp_bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            send_high_water: PEERJS_SEND_HIGH_WATER,
        }
    }
}

impl MeshOptions {
    /// Options for loopback tests: bind `127.0.0.1:0`, no ICE servers.
    pub fn loopback() -> Self {
        MeshOptions {
            udp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..MeshOptions::default()
        }
    }
}

/// What a peer connection's handler reports to the task that owns the connection.
#[derive(Clone)]
pub(crate) enum PcEvent {
    /// A local candidate was gathered.
    Candidate(IceCandidateInit),
    /// The remote side opened a data channel in-band.
    DataChannel(Arc<dyn DataChannel>),
    /// ICE connection state changed.
    Ice(RTCIceConnectionState),
    /// Peer connection state changed.
    Connection(RTCPeerConnectionState),
}

/// Forwards webrtc-rs callbacks into an unbounded channel (callbacks must not block).
struct ForwardingHandler {
    tx: mpsc::UnboundedSender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ForwardingHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.tx.send(PcEvent::Candidate(IceCandidateInit {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_m_line_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                }));
            }
            Err(e) => tracing::debug!(error = %e, "local candidate not serialisable"),
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let _ = self.tx.send(PcEvent::Ice(state));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(PcEvent::Connection(state));
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let _ = self.tx.send(PcEvent::DataChannel(data_channel));
    }
}

/// Builds peer connections sharing one [`DtlsIdentity`] and one set of [`MeshOptions`].
#[derive(Debug, Clone)]
pub struct PeerConnectionFactory {
    identity: Arc<DtlsIdentity>,
    options: Arc<MeshOptions>,
}

impl PeerConnectionFactory {
    /// A factory whose connections all present `identity`'s certificate.
    pub fn new(identity: Arc<DtlsIdentity>, options: MeshOptions) -> Self {
        PeerConnectionFactory {
            identity,
            options: Arc::new(options),
        }
    }

    /// The certificate every connection presents.
    pub fn identity(&self) -> &Arc<DtlsIdentity> {
        &self.identity
    }

    /// The options connections are built with.
    pub fn options(&self) -> &MeshOptions {
        &self.options
    }

    /// Builds a peer connection reporting to `handler`. `media` registers the default
    /// audio/video codecs (needed for transceivers); data-only connections leave it off.
    /// `force_relay` makes this one connection relay-only regardless of the options (Kibitz's
    /// per-peer relay latch).
    pub async fn build_with_handler(
        &self,
        handler: Arc<dyn PeerConnectionEventHandler>,
        media: bool,
        force_relay: bool,
    ) -> Result<Arc<dyn PeerConnection>, MeshError> {
        let ice = if force_relay {
            self.options.ice.clone().with_relay_only(true)
        } else {
            self.options.ice.clone()
        };
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(ice.rtc_servers())
            .with_ice_transport_policy(ice.rtc_policy())
            .with_certificates(vec![self.identity.rtc_certificate()])
            .build();
        // Answer as DTLS server (`a=setup:passive`). webrtc 0.21.1 queues a DTLS client's
        // first flight until the next ICE tick (up to 200 ms); as server we reply from the
        // read path at once. Browsers answering our offers pick `active` themselves.
        //
        // ICE pacing: checks every ICE_CHECK_INTERVAL instead of 200 ms (the driver sleeps
        // until that tick, and a controlling agent nominates only on the tick after a check
        // succeeded), with the same 1.4 s per-pair budget. Peer-reflexive pairs are
        // nominatable at once: a browser's checks often arrive before its trickled host
        // candidate, so the pair is learnt as prflx and the default 1 s wait applied.
        // Relay-only connections have no better pair to wait for than a relay one, so the
        // default 2 s relay wait is dropped for them too.
        let relay_wait = ice.relay_only.then_some(Duration::ZERO);
        let settings = SettingEngineBuilder::new()
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            .with_relay_acceptance_min_wait(relay_wait)
            .build();
        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(settings)
            .with_handler(handler)
            .with_udp_addrs(vec![self.options.udp_bind])
            .with_data_channel_send_buffer_limit(self.options.send_high_water);
        if media {
            let mut engine = MediaEngine::default();
            engine
                .register_default_codecs()
                .map_err(MeshError::WebRtc)?;
            builder = builder.with_media_engine(engine);
        }
        let pc = builder.build().await.map_err(MeshError::WebRtc)?;
        Ok(Arc::new(pc))
    }

    /// Builds a data peer connection whose events arrive on the returned channel.
    pub(crate) async fn build_data(
        &self,
    ) -> Result<(Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<PcEvent>), MeshError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let pc = self
            .build_with_handler(Arc::new(ForwardingHandler { tx }), false, false)
            .await?;
        Ok((pc, rx))
    }
}
