//! The transcript: transcribed segments keyed by speaker and utterance, revision-ordered.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{SegmentKind, SegmentWindow};

/// A transcribed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptSegment {
    /// The speaker's participant id.
    pub speaker_id: String,
    /// The speaker's display name.
    pub speaker_name: String,
    /// The utterance (per speaker).
    pub utterance: u64,
    /// Revision id (strictly increasing per speaker).
    pub revision: u64,
    /// Partial or final.
    pub kind: SegmentKind,
    /// Media time of the start.
    pub start: Duration,
    /// Media time of the end.
    pub end: Duration,
    /// The recognised text.
    pub text: String,
}

impl TranscriptSegment {
    /// The segment for `window` with its recognised `text`.
    pub fn from_window(window: &SegmentWindow, text: impl Into<String>) -> Self {
        TranscriptSegment {
            speaker_id: window.speaker_id.clone(),
            speaker_name: window.speaker_name.clone(),
            utterance: window.utterance,
            revision: window.revision,
            kind: window.kind,
            start: window.start,
            end: window.end,
            text: text.into(),
        }
    }
}

/// What [`Transcript::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// A new utterance.
    Inserted,
    /// Replaced an older revision of the same utterance.
    Replaced,
    /// Ignored: the stored revision is newer, or the stored one is final and this is partial.
    Stale,
}

/// Segments by `(speaker id, utterance)`; a partial never overwrites a final or a newer
/// revision, however late it arrives.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    entries: BTreeMap<(String, u64), TranscriptSegment>,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply a segment, keeping only the newest revision of each utterance.
    pub fn apply(&mut self, seg: TranscriptSegment) -> Applied {
        let key = (seg.speaker_id.clone(), seg.utterance);
        match self.entries.get(&key) {
            None => {
                self.entries.insert(key, seg);
                Applied::Inserted
            }
            Some(old)
                if seg.revision <= old.revision
                    || (old.kind == SegmentKind::Final && seg.kind == SegmentKind::Partial) =>
            {
                Applied::Stale
            }
            Some(_) => {
                self.entries.insert(key, seg);
                Applied::Replaced
            }
        }
    }

    /// The current segment of an utterance.
    pub fn get(&self, speaker_id: &str, utterance: u64) -> Option<&TranscriptSegment> {
        self.entries.get(&(speaker_id.to_string(), utterance))
    }

    /// All segments, ordered by start time (then speaker id).
    pub fn segments(&self) -> Vec<&TranscriptSegment> {
        let mut v: Vec<&TranscriptSegment> = self.entries.values().collect();
        v.sort_by(|a, b| (a.start, &a.speaker_id).cmp(&(b.start, &b.speaker_id)));
        v
    }

    /// Final segments only, ordered by start time.
    pub fn finals(&self) -> Vec<&TranscriptSegment> {
        let mut v = self.segments();
        v.retain(|s| s.kind == SegmentKind::Final);
        v
    }

    /// Number of utterances.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
