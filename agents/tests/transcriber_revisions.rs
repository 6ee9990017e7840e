//! Revision ordering: a partial whose transcription finishes late never replaces the final.
//! Driven by the real segmenter on a paused tokio clock, with recognisers of varying speed.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kibitz_agents::transcriber::{
    Applied, AudioFrame, Pcm, SegmentKind, SegmentWindow, Segmenter, SegmenterOptions, Transcript,
    TranscriptSegment,
};
use proptest::prelude::*;
use tokio::sync::mpsc;

fn tone(ms: usize) -> Vec<i16> {
    (0..ms * 16)
        .map(|i| ((i as f32 * 0.07).sin() * 9000.0) as i16)
        .collect()
}

/// Windows for two utterances of speaker `a` (2.5 s and 1.5 s, 1 s of silence after each).
fn windows() -> Vec<SegmentWindow> {
    let mut seg = Segmenter::new(SegmenterOptions::default());
    let t0 = std::time::Instant::now();
    let mut audio = tone(2500);
    audio.extend(vec![0; 16_000]);
    audio.extend(tone(1500));
    audio.extend(vec![0; 16_000]);
    let mut out = Vec::new();
    for (i, chunk) in audio.chunks(320).enumerate() {
        let ts = Duration::from_millis(20 * i as u64);
        out.extend(seg.push(
            AudioFrame {
                speaker_id: "a".into(),
                speaker_name: "Ann".into(),
                pcm: Pcm::I16(chunk.to_vec()),
                timestamp: ts,
            },
            t0 + ts,
        ));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn late_partials_never_replace_finals() {
    let wins = windows();
    let kinds: Vec<(u64, SegmentKind)> = wins.iter().map(|w| (w.utterance, w.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, SegmentKind::Partial),
            (1, SegmentKind::Partial),
            (1, SegmentKind::Final),
            (2, SegmentKind::Partial),
            (2, SegmentKind::Final),
        ]
    );

    // Recognise each window concurrently; partials are slow (5 s), finals fast (100 ms), so
    // the results arrive out of order on the virtual clock.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    for w in wins {
        let tx = tx.clone();
        tokio::spawn(async move {
            let delay = match w.kind {
                SegmentKind::Partial => Duration::from_secs(5),
                _ => Duration::from_millis(100),
            };
            tokio::time::sleep(delay).await;
            let text = format!("{:?} r{}", w.kind, w.revision);
            tx.send(TranscriptSegment::from_window(&w, text)).unwrap();
        });
    }
    drop(tx);

    let mut transcript = Transcript::new();
    let mut log = Vec::new();
    while let Some(seg) = rx.recv().await {
        log.push((seg.kind, seg.revision, transcript.apply(seg)));
    }
    // The virtual clock really advanced by the slowest recogniser only.
    assert_eq!(start.elapsed(), Duration::from_secs(5));

    // Finals (revisions 3 and 5) arrived first and were inserted; every partial was stale.
    assert_eq!(log[0], (SegmentKind::Final, 3, Applied::Inserted));
    assert_eq!(log[1], (SegmentKind::Final, 5, Applied::Inserted));
    assert!(log[2..]
        .iter()
        .all(|&(k, _, a)| k == SegmentKind::Partial && a == Applied::Stale));
    let finals = transcript.finals();
    assert_eq!(finals.len(), 2);
    assert_eq!(finals[0].text, "Final r3");
    assert_eq!(finals[1].text, "Final r5");
    assert_eq!(finals[0].speaker_name, "Ann");
}

#[test]
fn in_order_partials_are_replaced_then_settled() {
    let mut t = Transcript::new();
    let wins = windows();
    assert_eq!(
        t.apply(TranscriptSegment::from_window(&wins[0], "he")),
        Applied::Inserted
    );
    assert_eq!(
        t.apply(TranscriptSegment::from_window(&wins[1], "hello")),
        Applied::Replaced
    );
    // An older partial arriving late is stale.
    assert_eq!(
        t.apply(TranscriptSegment::from_window(&wins[0], "he")),
        Applied::Stale
    );
    assert_eq!(t.get("a", 1).unwrap().text, "hello");
    assert_eq!(
        t.apply(TranscriptSegment::from_window(&wins[2], "hello there")),
        Applied::Replaced
    );
    // Even a partial claiming a higher revision cannot replace a final.
    let mut forged = TranscriptSegment::from_window(&wins[1], "nope");
    forged.revision = 99;
    assert_eq!(t.apply(forged), Applied::Stale);
    assert_eq!(t.get("a", 1).unwrap().text, "hello there");
    assert_eq!(t.get("a", 1).unwrap().kind, SegmentKind::Final);
}

proptest! {
    /// Whatever order the results arrive in, each utterance ends up with its final text.
    #[test]
    fn any_arrival_order_settles_on_finals(order in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle()) {
        let wins = windows();
        let mut t = Transcript::new();
        for i in order {
            let w = &wins[i];
            t.apply(TranscriptSegment::from_window(w, format!("r{}", w.revision)));
        }
        let finals = t.finals();
        prop_assert_eq!(finals.len(), 2);
        prop_assert_eq!(&finals[0].text, "r3");
        prop_assert_eq!(&finals[1].text, "r5");
        prop_assert_eq!(t.len(), 2);
    }
}
