//! Media groundwork (`kibitz-wire.md` §6.1–6.2): a peer connection laid out like a Kibitz
//! media pc, with transceivers **audio, video, video** (mic, camera, screen share), all
//! `sendrecv`. Nothing is decoded or sent yet.

use std::sync::Arc;

use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler};

use super::peer_connection::PeerConnectionFactory;
use super::sdp;
use super::MeshError;

/// A media kind of an m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
}

impl MediaKind {
    /// The SDP spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// Kibitz's fixed m-line order: mic, camera, screen share.
pub const KIBITZ_MEDIA_LAYOUT: [MediaKind; 3] =
    [MediaKind::Audio, MediaKind::Video, MediaKind::Video];

/// A freshly built media peer connection and the offer it made.
pub struct MediaOffer {
    /// The connection, with the offer applied as local description.
    pub pc: Arc<dyn PeerConnection>,
    /// The offer SDP, to be sent as `{t:'m-sdp', d:{type:'offer', sdp}}`.
    pub sdp: String,
}

impl std::fmt::Debug for MediaOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaOffer")
            .field("sdp", &self.sdp)
            .finish_non_exhaustive()
    }
}

fn send_encoding(kind: MediaKind) -> RTCRtpEncodingParameters {
    let codec = match kind {
        MediaKind::Audio => RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        MediaKind::Video => RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    };
    RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            ssrc: Some(rand::random::<u32>()),
            ..Default::default()
        },
        codec,
        ..Default::default()
    }
}

/// Builds a media peer connection (same certificate as every other connection) with
/// `sendrecv` transceivers in [`KIBITZ_MEDIA_LAYOUT`] order, creates an offer and applies it.
pub async fn create_media_offer(
    factory: &PeerConnectionFactory,
    handler: Arc<dyn PeerConnectionEventHandler>,
    force_relay: bool,
) -> Result<MediaOffer, MeshError> {
    let pc = factory
        .build_with_handler(handler, true, force_relay)
        .await?;
    match add_layout_and_offer(pc.as_ref()).await {
        Ok(sdp) => Ok(MediaOffer { pc, sdp }),
        Err(e) => {
            let _ = pc.close().await;
            Err(e)
        }
    }
}

async fn add_layout_and_offer(pc: &dyn PeerConnection) -> Result<String, MeshError> {
    for kind in KIBITZ_MEDIA_LAYOUT {
        let codec_kind = match kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        pc.add_transceiver_from_kind(
            codec_kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendrecv,
                streams: vec![],
                send_encodings: vec![send_encoding(kind)],
            }),
        )
        .await
        .map_err(MeshError::WebRtc)?;
    }
    let offer = pc.create_offer(None).await.map_err(MeshError::WebRtc)?;
    let sdp = offer.sdp.clone();
    pc.set_local_description(offer)
        .await
        .map_err(MeshError::WebRtc)?;
    Ok(sdp)
}

/// The audio/video m-line kinds of `sdp`, in order (other kinds, e.g. `application`, skipped).
pub fn media_kinds(sdp: &str) -> Vec<MediaKind> {
    sdp::media_sections(sdp)
        .into_iter()
        .filter_map(|m| match m.kind.as_str() {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_skip_application() {
        let sdp = "v=0\nm=audio 9 x\nm=application 9 y\nm=video 9 z\n";
        assert_eq!(media_kinds(sdp), vec![MediaKind::Audio, MediaKind::Video]);
        assert_eq!(MediaKind::Video.as_str(), "video");
    }
}
