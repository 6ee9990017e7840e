//! What an agent receives: [`AgentEvent`] and its media frames.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use capability_manifest::Grant;
use serde_json::Value;

use crate::wire::presence::{LobbyStatus, Roster};

/// Sample rate of [`AudioFrame::pcm`].
pub const AUDIO_SAMPLE_RATE: u32 = 16_000;

/// A slice of one speaker's decoded microphone audio.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    /// The speaker's voiceId (from the connection the audio arrived on).
    pub speaker_id: String,
    /// The speaker's roster name at the time (`''` when unknown).
    pub speaker_name: String,
    /// 16 kHz mono signed 16-bit samples.
    pub pcm: Arc<[i16]>,
    /// Position of the first sample on this speaker's timeline (since its lane opened).
    pub start: Duration,
}

impl AudioFrame {
    /// Length of the frame in time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.pcm.len() as u64 * 1_000_000 / u64::from(AUDIO_SAMPLE_RATE))
    }
}

/// One encoded frame of a participant's screen share.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrame {
    /// The sharer's voiceId.
    pub sharer_id: String,
    /// The encoded frame (codec as negotiated on the lane).
    pub data: Bytes,
    /// Position on the sharer's timeline.
    pub start: Duration,
}

/// An event delivered to [`Agent::on_event`](super::Agent::on_event). Every variant passed the
/// [`LaneGate`](crate::lane_gate::LaneGate) first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// The roster changed (`read-roster`). Rosters are coalesced: an agent that falls behind
    /// sees only the latest.
    Roster(Roster),
    /// Built-in Kibitz chat (`read-chat`; a DM also needs `receive-directed`).
    Chat {
        /// Sender voiceId.
        from: String,
        /// Sender's roster name.
        name: String,
        /// The text.
        text: String,
        /// Sent to us only.
        dm: bool,
    },
    /// App data sent to us only (`receive-directed`).
    Directed {
        /// Sender voiceId.
        from: String,
        /// The payload.
        data: Value,
    },
    /// Broadcast app data that is not an agent envelope (`read-chat`).
    App {
        /// Sender voiceId.
        from: String,
        /// The payload.
        data: Value,
    },
    /// An app-state snapshot (`{"__kib_agent":"view","view":…}`; `read-chat`).
    AppView {
        /// Sender voiceId.
        from: String,
        /// The view.
        view: Value,
    },
    /// A schema publication (`k:'schema'`; `read-chat`).
    Schema {
        /// Sender voiceId.
        from: String,
        /// Schema name.
        name: String,
        /// Schema version.
        version: String,
        /// The schema.
        schema: Value,
    },
    /// A frame of one speaker's audio (`hear-audio`).
    Audio(AudioFrame),
    /// A frame of a screen share (`see-screen`).
    Screen(VideoFrame),
    /// The effective grant (host grant ∩ manifest request) changed.
    GrantChanged {
        /// The new effective grant.
        effective: Grant,
    },
    /// Lobby status from the room authority.
    Lobby(LobbyStatus),
}
