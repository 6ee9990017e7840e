//! The transcriber engine: per-speaker segmentation of 16 kHz audio, whisper transcription,
//! a revision-ordered transcript, and JSON-lines / WebVTT / SRT output.
//!
//! Data flow (the room integration drives it):
//!
//! ```text
//! AudioFrame ─▶ Segmenter::push ─▶ SegmentWindow (partial | final, audio)
//!                                    │  WhisperEngine::transcribe (blocking pool)
//!                                    ▼
//!                              TranscriptSegment ─▶ Transcript::apply ─▶ output writers
//! ```
//!
//! Speaker ids and names come from the connection that carried the audio; the engine never
//! guesses them.

mod output;
mod segmenter;
mod transcript;
pub mod wer;
mod whisper_engine;

use std::time::Duration;

pub use self::output::{format_srt_time, format_vtt_time, JsonLinesWriter, SrtWriter, VttWriter};
pub use self::segmenter::{SegmentWindow, Segmenter, SegmenterOptions};
pub use self::transcript::{Applied, Transcript, TranscriptSegment};
pub use self::whisper_engine::{EngineError, EngineOptions, WhisperEngine};

/// Sample rate of all audio the transcriber handles.
pub const SAMPLE_RATE: u32 = 16_000;

/// Mono PCM samples at [`SAMPLE_RATE`].
#[derive(Debug, Clone, PartialEq)]
pub enum Pcm {
    /// Signed 16-bit samples.
    I16(Vec<i16>),
    /// Float samples in `[-1, 1]`.
    F32(Vec<f32>),
}

impl Pcm {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Pcm::I16(v) => v.len(),
            Pcm::F32(v) => v.len(),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples as `f32` in `[-1, 1]`.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Pcm::I16(v) => v.iter().map(|&s| f32::from(s) / 32768.0).collect(),
            Pcm::F32(v) => v.clone(),
        }
    }
}

/// One chunk of a speaker's audio, as delivered by the media lane.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    /// The speaker's participant id (from the connection).
    pub speaker_id: String,
    /// The speaker's display name (from the connection).
    pub speaker_name: String,
    /// 16 kHz mono samples.
    pub pcm: Pcm,
    /// Media time of the first sample, since the start of the session.
    pub timestamp: Duration,
}

/// Whether a segment may still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SegmentKind {
    /// The speaker is still talking; a later revision will replace it.
    Partial,
    /// The utterance ended; this text is settled.
    Final,
}

/// Duration of `samples` samples at [`SAMPLE_RATE`].
pub fn samples_to_duration(samples: usize) -> Duration {
    Duration::from_nanos(samples as u64 * 1_000_000_000 / u64::from(SAMPLE_RATE))
}
