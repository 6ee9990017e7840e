//! What agents produce: [`Artifact`]s, handed to an [`ArtifactSink`].

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

/// One final or partial piece of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptSegment {
    /// The speaker's voiceId.
    pub speaker_id: String,
    /// The speaker's name.
    pub speaker_name: String,
    /// Start on the speaker's timeline.
    #[serde(with = "millis")]
    pub start: Duration,
    /// End on the speaker's timeline.
    #[serde(with = "millis")]
    pub end: Duration,
    /// The recognised text.
    pub text: String,
    /// False for a partial hypothesis that a later segment replaces.
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// Something an agent produced, serialised as `{"type":"transcript"|"summary"|"custom",…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Artifact {
    /// A transcript segment.
    Transcript(TranscriptSegment),
    /// A summary of the conversation so far.
    Summary {
        /// The summary text.
        text: String,
    },
    /// Anything else, as JSON.
    Custom {
        /// A name for the kind of record.
        kind: String,
        /// The record.
        data: Value,
    },
}

/// An artifact with the name of the agent that emitted it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactRecord {
    /// The agent's name (its manifest's `agent.name`).
    pub agent: String,
    /// The artifact.
    pub artifact: Artifact,
}

/// Where artifacts go (a JSON-lines writer, a file per kind, a channel…). Must not block.
pub trait ArtifactSink: Send + Sync + 'static {
    /// Take one record.
    fn emit(&self, record: ArtifactRecord);
}

/// Discards every artifact.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl ArtifactSink for NullSink {
    fn emit(&self, _record: ArtifactRecord) {}
}

impl ArtifactSink for mpsc::UnboundedSender<ArtifactRecord> {
    fn emit(&self, record: ArtifactRecord) {
        if self.send(record).is_err() {
            tracing::debug!("artifact receiver gone; artifact discarded");
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }
}
