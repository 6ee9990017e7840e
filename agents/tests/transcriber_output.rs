//! Transcript writers: timestamp formatting and exact JSON-lines / WebVTT / SRT output.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kibitz_agents::transcriber::{
    format_srt_time, format_vtt_time, JsonLinesWriter, SegmentKind, SrtWriter, TranscriptSegment,
    VttWriter,
};

fn seg(name: &str, start_ms: u64, end_ms: u64, text: &str, kind: SegmentKind) -> TranscriptSegment {
    TranscriptSegment {
        speaker_id: format!("id-{name}"),
        speaker_name: name.to_string(),
        utterance: 1,
        revision: 2,
        kind,
        start: Duration::from_millis(start_ms),
        end: Duration::from_millis(end_ms),
        text: text.to_string(),
    }
}

#[test]
fn timestamps() {
    assert_eq!(format_vtt_time(Duration::ZERO), "00:00:00.000");
    assert_eq!(format_srt_time(Duration::ZERO), "00:00:00,000");
    assert_eq!(format_vtt_time(Duration::from_millis(1500)), "00:00:01.500");
    assert_eq!(
        format_srt_time(Duration::from_millis(3_661_001)),
        "01:01:01,001"
    );
    // Sub-millisecond parts are truncated, never rounded up into the next second.
    assert_eq!(
        format_vtt_time(Duration::from_micros(59_999_999)),
        "00:00:59.999"
    );
    assert_eq!(
        format_vtt_time(Duration::from_secs(100 * 3600 + 59 * 60 + 59)),
        "100:59:59.000"
    );
}

#[test]
fn webvtt_document() {
    let mut w = VttWriter::new(Vec::new()).unwrap();
    w.write(&seg(
        "Ann",
        1250,
        3500,
        " Hello <world> & you ",
        SegmentKind::Final,
    ))
    .unwrap();
    w.write(&seg(
        "B<o>b",
        61_000,
        62_005,
        "line\nbreak",
        SegmentKind::Final,
    ))
    .unwrap();
    let out = String::from_utf8(w.into_inner()).unwrap();
    assert_eq!(
        out,
        "WEBVTT\n\n\
         00:00:01.250 --> 00:00:03.500\n<v Ann>Hello &lt;world&gt; &amp; you\n\n\
         00:01:01.000 --> 00:01:02.005\n<v B&lt;o&gt;b>line break\n\n"
    );
}

#[test]
fn srt_document() {
    let mut w = SrtWriter::new(Vec::new());
    w.write(&seg("Ann", 0, 999, "First.", SegmentKind::Final))
        .unwrap();
    w.write(&seg(
        "Bob",
        3_600_000,
        3_602_500,
        "Second\n\nline.",
        SegmentKind::Final,
    ))
    .unwrap();
    let out = String::from_utf8(w.into_inner()).unwrap();
    assert_eq!(
        out,
        "1\n00:00:00,000 --> 00:00:00,999\nAnn: First.\n\n\
         2\n01:00:00,000 --> 01:00:02,500\nBob: Second line.\n\n"
    );
}

#[test]
fn json_lines() {
    let mut w = JsonLinesWriter::new(Vec::new());
    w.write(&seg(
        "Ann",
        1250,
        3500,
        "Hi \"there\"",
        SegmentKind::Partial,
    ))
    .unwrap();
    w.write(&seg("Ann", 1250, 4000, "Hi there.", SegmentKind::Final))
        .unwrap();
    let out = String::from_utf8(w.into_inner()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        r#"{"type":"partial","speakerId":"id-Ann","speakerName":"Ann","utterance":1,"revision":2,"start":1.25,"end":3.5,"text":"Hi \"there\""}"#
    );
    let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["type"], "final");
    assert_eq!(v["end"], 4.0);
    assert!(out.ends_with('\n'));
}
