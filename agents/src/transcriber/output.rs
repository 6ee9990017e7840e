//! Transcript writers: JSON lines, WebVTT and SRT.
//!
//! The writers write what they are given; the transcriber passes every segment to the JSON
//! lines writer and only final segments to the WebVTT and SRT writers.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use super::{SegmentKind, TranscriptSegment};

/// `HH:MM:SS.mmm` (WebVTT; hours always present, may exceed 99).
pub fn format_vtt_time(d: Duration) -> String {
    format_time(d, '.')
}

/// `HH:MM:SS,mmm` (SRT).
pub fn format_srt_time(d: Duration) -> String {
    format_time(d, ',')
}

fn format_time(d: Duration, sep: char) -> String {
    let ms = d.as_millis();
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

/// Seconds with millisecond precision, for JSON.
fn secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// One JSON line.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSegment<'a> {
    #[serde(rename = "type")]
    kind: SegmentKind,
    speaker_id: &'a str,
    speaker_name: &'a str,
    utterance: u64,
    revision: u64,
    start: f64,
    end: f64,
    text: &'a str,
}

/// Writes one JSON object per line:
/// `{"type":"final","speakerId":…,"speakerName":…,"utterance":1,"revision":3,"start":1.25,"end":3.5,"text":…}`
/// (times in seconds).
#[derive(Debug)]
pub struct JsonLinesWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonLinesWriter<W> {
    /// Write to `out`.
    pub fn new(out: W) -> Self {
        JsonLinesWriter { out }
    }

    /// Write a segment as one line and flush.
    pub fn write(&mut self, seg: &TranscriptSegment) -> io::Result<()> {
        let line = JsonSegment {
            kind: seg.kind,
            speaker_id: &seg.speaker_id,
            speaker_name: &seg.speaker_name,
            utterance: seg.utterance,
            revision: seg.revision,
            start: secs(seg.start),
            end: secs(seg.end),
            text: &seg.text,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Escape text for a WebVTT cue (`&`, `<`, `>`); newlines would end the cue, so they become
/// spaces.
fn vtt_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Cue text on one line (a blank line would end an SRT cue).
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes a WebVTT file; each cue carries the speaker as a voice span (`<v Name>text`).
#[derive(Debug)]
pub struct VttWriter<W: Write> {
    out: W,
}

impl<W: Write> VttWriter<W> {
    /// Write the `WEBVTT` header to `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"WEBVTT\n\n")?;
        out.flush()?;
        Ok(VttWriter { out })
    }

    /// Write one cue and flush.
    pub fn write(&mut self, seg: &TranscriptSegment) -> io::Result<()> {
        write!(
            self.out,
            "{} --> {}\n<v {}>{}\n\n",
            format_vtt_time(seg.start),
            format_vtt_time(seg.end.max(seg.start)),
            vtt_escape(&seg.speaker_name),
            vtt_escape(seg.text.trim())
        )?;
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes an SRT file; cues are numbered from 1 and prefixed with `Name: `.
#[derive(Debug)]
pub struct SrtWriter<W: Write> {
    out: W,
    next: u64,
}

impl<W: Write> SrtWriter<W> {
    /// Write to `out`.
    pub fn new(out: W) -> Self {
        SrtWriter { out, next: 1 }
    }

    /// Write one cue and flush.
    pub fn write(&mut self, seg: &TranscriptSegment) -> io::Result<()> {
        write!(
            self.out,
            "{}\n{} --> {}\n{}: {}\n\n",
            self.next,
            format_srt_time(seg.start),
            format_srt_time(seg.end.max(seg.start)),
            one_line(&seg.speaker_name),
            one_line(seg.text.trim())
        )?;
        self.next += 1;
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}
