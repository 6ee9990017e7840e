//! Real-time factor of whisper tiny.en on 2 threads and end-of-utterance → final latency,
//! over espeak-ng test sentences.
//!
//! `cargo bench -p kibitz-agents --bench transcribe` (release), or quicker to build:
//! `cargo test -p kibitz-agents --bench transcribe` (whisper.cpp is optimised either way).

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

use kibitz_agents::models::{self, FetchOptions, ModelId};
use kibitz_agents::transcriber::{
    AudioFrame, EngineOptions, Pcm, SegmentKind, Segmenter, SegmenterOptions, WhisperEngine,
    SAMPLE_RATE,
};

const SENTENCES: [&str; 5] = [
    "The quick brown fox jumps over the lazy dog.",
    "Please send the report to the finance team before Friday.",
    "We should schedule the design review for next week.",
    "Thank you everyone for joining the meeting today.",
    "Let us move on to the next item on the agenda.",
];

fn speak(text: &str, dir: &std::path::Path) -> Vec<i16> {
    let wav = dir.join("s.wav");
    let raw = dir.join("s.raw");
    let st = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng missing: run scripts/install-test-deps.sh");
    assert!(st.success());
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
        .expect("sox missing: run scripts/install-test-deps.sh");
    assert!(st.success());
    std::fs::read(&raw)
        .unwrap()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut quiet = |_| {};
    let model = rt
        .block_on(models::fetch(
            ModelId::TinyEn,
            &FetchOptions {
                try_download: false,
                ..FetchOptions::default()
            },
            &mut quiet,
        ))
        .unwrap();
    // KIBITZ_BENCH_THREADS overrides the thread count (default 2).
    let threads = std::env::var("KIBITZ_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let opts = EngineOptions {
        threads,
        ..EngineOptions::default()
    };
    let engine = WhisperEngine::load(&model.path, opts).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let seg_opts = SegmenterOptions::default();
    let hangover = seg_opts.silence_to_final;

    let (mut audio_total, mut compute_total) = (0.0f64, 0.0f64);
    let mut latencies = Vec::new();
    for text in SENTENCES {
        let speech = speak(text, tmp.path());
        let mut seg = Segmenter::new(seg_opts.clone());
        let t0 = Instant::now();
        let mut media = Duration::ZERO;
        let mut audio = speech.clone();
        audio.extend(std::iter::repeat_n(0i16, SAMPLE_RATE as usize));
        let mut finals = Vec::new();
        for chunk in audio.chunks(320) {
            finals.extend(
                seg.push(
                    AudioFrame {
                        speaker_id: "s".into(),
                        speaker_name: "S".into(),
                        pcm: Pcm::I16(chunk.to_vec()),
                        timestamp: media,
                    },
                    t0 + media,
                )
                .into_iter()
                .filter(|w| w.kind == SegmentKind::Final),
            );
            media += Duration::from_millis(20);
        }
        for w in finals {
            let start = Instant::now();
            let text_out = engine.transcribe_blocking(&w.audio).unwrap();
            let took = start.elapsed();
            let secs = w.audio.len() as f64 / f64::from(SAMPLE_RATE);
            audio_total += secs;
            compute_total += took.as_secs_f64();
            // In real time the final is cut `hangover` after the last voiced audio, then
            // transcribed: that sum is the end-of-utterance → final latency.
            latencies.push(hangover + took);
            println!(
                "{secs:5.2} s audio  {:6.3} s compute  {text_out}",
                took.as_secs_f64()
            );
        }
    }
    latencies.sort();
    println!(
        "tiny.en, {threads} threads: real-time factor {:.3} ({compute_total:.2} s compute / {audio_total:.2} s audio)",
        compute_total / audio_total
    );
    println!(
        "end of utterance -> final: p50 {:.3} s, p95 {:.3} s (hangover {:.3} s + transcription)",
        percentile(&latencies, 0.5).as_secs_f64(),
        percentile(&latencies, 0.95).as_secs_f64(),
        hangover.as_secs_f64()
    );
}
