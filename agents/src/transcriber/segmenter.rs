//! Per-speaker voice-activity segmentation (sans-I/O).
//!
//! Audio is analysed in fixed windows (20 ms by default). A window whose RMS level reaches
//! [`SegmenterOptions::energy_threshold`] is voiced. The first voiced window opens an
//! utterance (with a little pre-roll); while it lasts, a [`SegmentKind::Partial`] window is
//! emitted every [`SegmenterOptions::partial_interval`] of new audio; after
//! [`SegmenterOptions::silence_to_final`] of continuous silence (the hangover), at
//! [`SegmenterOptions::max_utterance`], or when a speaker's frames stop arriving for
//! [`SegmenterOptions::stall_timeout`] of wall time, a [`SegmentKind::Final`] is emitted.
//! Utterances with less than [`SegmenterOptions::min_speech`] of voiced audio are dropped.
//!
//! Every emitted window carries a revision id that strictly increases per speaker, so a
//! transcript can always tell which text is newer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{samples_to_duration, AudioFrame, SegmentKind, SAMPLE_RATE};

/// Tuning of the [`Segmenter`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmenterOptions {
    /// Length of one VAD analysis window.
    pub analysis_window: Duration,
    /// RMS level (full scale = 1.0) at or above which a window is voiced.
    pub energy_threshold: f32,
    /// Audio kept from before the first voiced window.
    pub pre_roll: Duration,
    /// Silence that ends an utterance (hangover).
    pub silence_to_final: Duration,
    /// Silence kept at the end of a final window.
    pub trailing_pad: Duration,
    /// Least voiced audio for an utterance to be transcribed at all.
    pub min_speech: Duration,
    /// Longest utterance; a final is forced at this length.
    pub max_utterance: Duration,
    /// New audio between two partial windows.
    pub partial_interval: Duration,
    /// Wall time without frames from a speaking speaker after which the utterance is final.
    pub stall_timeout: Duration,
}

impl Default for SegmenterOptions {
    fn default() -> Self {
        SegmenterOptions {
            analysis_window: Duration::from_millis(20),
            energy_threshold: 0.01,
            pre_roll: Duration::from_millis(200),
            silence_to_final: Duration::from_millis(500),
            trailing_pad: Duration::from_millis(150),
            min_speech: Duration::from_millis(250),
            max_utterance: Duration::from_secs(20),
            partial_interval: Duration::from_secs(1),
            stall_timeout: Duration::from_millis(500),
        }
    }
}

/// A stretch of one speaker's audio to transcribe.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentWindow {
    /// The speaker's participant id.
    pub speaker_id: String,
    /// The speaker's display name.
    pub speaker_name: String,
    /// The utterance this belongs to (per speaker, from 1).
    pub utterance: u64,
    /// Revision id: strictly increasing over all windows of this speaker.
    pub revision: u64,
    /// Partial (more to come) or final.
    pub kind: SegmentKind,
    /// Media time of the first sample.
    pub start: Duration,
    /// Media time just after the last sample.
    pub end: Duration,
    /// 16 kHz mono samples, `start..end`.
    pub audio: Arc<[f32]>,
}

/// An utterance in progress.
#[derive(Debug)]
struct Utterance {
    id: u64,
    start: Duration,
    audio: Vec<f32>,
    voiced: usize,
    silence_run: usize,
    since_partial: usize,
    partials: u32,
}

/// One speaker's state.
#[derive(Debug)]
struct Speaker {
    name: String,
    /// Samples not yet analysed (shorter than one window).
    carry: Vec<f32>,
    /// Media time of `carry[0]`.
    carry_start: Duration,
    /// Recent unvoiced audio, for pre-roll.
    pre_roll: VecDeque<f32>,
    utterances: u64,
    revision: u64,
    active: Option<Utterance>,
    last_frame_at: Instant,
}

/// Segments the audio of every speaker; pure, time is passed in.
#[derive(Debug)]
pub struct Segmenter {
    opts: SegmenterOptions,
    window: usize,
    speakers: HashMap<String, Speaker>,
}

fn samples(d: Duration) -> usize {
    (d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000) as usize
}

fn rms(w: &[f32]) -> f32 {
    if w.is_empty() {
        return 0.0;
    }
    (w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt()
}

impl Segmenter {
    /// A segmenter with `opts`.
    pub fn new(opts: SegmenterOptions) -> Self {
        let window = samples(opts.analysis_window).max(1);
        Segmenter {
            opts,
            window,
            speakers: HashMap::new(),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &SegmenterOptions {
        &self.opts
    }

    /// Feed one frame received at wall time `now`; returns the windows it completed.
    pub fn push(&mut self, frame: AudioFrame, now: Instant) -> Vec<SegmentWindow> {
        let mut out = Vec::new();
        let window = self.window;
        let speaker = self
            .speakers
            .entry(frame.speaker_id.clone())
            .or_insert_with(|| Speaker {
                name: frame.speaker_name.clone(),
                carry: Vec::new(),
                carry_start: frame.timestamp,
                pre_roll: VecDeque::new(),
                utterances: 0,
                revision: 0,
                active: None,
                last_frame_at: now,
            });
        speaker.name.clone_from(&frame.speaker_name);
        speaker.last_frame_at = now;
        // A frame that does not continue the carried samples (a gap, or time went back)
        // starts a new run: the carried fraction of a window is dropped.
        let expected = speaker.carry_start + samples_to_duration(speaker.carry.len());
        let drift = frame.timestamp.abs_diff(expected);
        if speaker.carry.is_empty() || drift > self.opts.analysis_window {
            speaker.carry.clear();
            speaker.carry_start = frame.timestamp;
        }
        speaker.carry.extend(frame.pcm.to_f32());
        let mut offset = 0;
        while speaker.carry.len() - offset >= window {
            let start = speaker.carry_start + samples_to_duration(offset);
            let w: Vec<f32> = speaker.carry[offset..offset + window].to_vec();
            offset += window;
            if let Some(seg) = analyse(&self.opts, &frame.speaker_id, speaker, &w, start) {
                out.push(seg);
            }
        }
        speaker.carry.drain(..offset);
        speaker.carry_start += samples_to_duration(offset);
        out
    }

    /// Finalise utterances of speakers whose frames stopped arriving (wall time `now`).
    pub fn poll(&mut self, now: Instant) -> Vec<SegmentWindow> {
        let stall = self.opts.stall_timeout;
        let mut out = Vec::new();
        for (id, speaker) in &mut self.speakers {
            if speaker.active.is_some()
                && now.saturating_duration_since(speaker.last_frame_at) >= stall
            {
                speaker.carry.clear();
                out.extend(finish(&self.opts, id, speaker, 0));
            }
        }
        out.sort_by_key(|w| w.start);
        out
    }

    /// When [`Segmenter::poll`] should next be called, if any utterance is open.
    pub fn poll_at(&self) -> Option<Instant> {
        self.speakers
            .values()
            .filter(|s| s.active.is_some())
            .map(|s| s.last_frame_at + self.opts.stall_timeout)
            .min()
    }

    /// Finalise one speaker (e.g. they left) and forget them.
    pub fn remove_speaker(&mut self, speaker_id: &str) -> Option<SegmentWindow> {
        let mut speaker = self.speakers.remove(speaker_id)?;
        finish(&self.opts, speaker_id, &mut speaker, 0)
    }

    /// Finalise every open utterance (end of session).
    pub fn flush(&mut self) -> Vec<SegmentWindow> {
        let mut out: Vec<SegmentWindow> = self
            .speakers
            .iter_mut()
            .filter_map(|(id, s)| finish(&self.opts, id, s, 0))
            .collect();
        out.sort_by_key(|w| w.start);
        out
    }
}

/// Run the VAD on one analysis window of `speaker` starting at media time `start`.
fn analyse(
    opts: &SegmenterOptions,
    id: &str,
    speaker: &mut Speaker,
    w: &[f32],
    start: Duration,
) -> Option<SegmentWindow> {
    let voiced = rms(w) >= opts.energy_threshold;
    let Some(utt) = speaker.active.as_mut() else {
        if voiced {
            let mut audio: Vec<f32> = speaker.pre_roll.drain(..).collect();
            let utt_start = start.saturating_sub(samples_to_duration(audio.len()));
            audio.extend_from_slice(w);
            speaker.utterances += 1;
            speaker.active = Some(Utterance {
                id: speaker.utterances,
                start: utt_start,
                since_partial: audio.len(),
                audio,
                voiced: w.len(),
                silence_run: 0,
                partials: 0,
            });
        } else {
            speaker.pre_roll.extend(w.iter().copied());
            let keep = samples(opts.pre_roll);
            while speaker.pre_roll.len() > keep {
                speaker.pre_roll.pop_front();
            }
        }
        return None;
    };
    utt.audio.extend_from_slice(w);
    utt.since_partial += w.len();
    if voiced {
        utt.voiced += w.len();
        utt.silence_run = 0;
    } else {
        utt.silence_run += w.len();
    }
    if utt.silence_run >= samples(opts.silence_to_final) {
        let trim = utt.silence_run.saturating_sub(samples(opts.trailing_pad));
        return finish(opts, id, speaker, trim);
    }
    if utt.audio.len() >= samples(opts.max_utterance) {
        return finish(opts, id, speaker, 0);
    }
    if voiced
        && utt.since_partial >= samples(opts.partial_interval)
        && utt.voiced >= samples(opts.min_speech)
    {
        utt.since_partial = 0;
        utt.partials += 1;
        speaker.revision += 1;
        return Some(SegmentWindow {
            speaker_id: id.to_string(),
            speaker_name: speaker.name.clone(),
            utterance: utt.id,
            revision: speaker.revision,
            kind: SegmentKind::Partial,
            start: utt.start,
            end: utt.start + samples_to_duration(utt.audio.len()),
            audio: Arc::from(utt.audio.as_slice()),
        });
    }
    None
}

/// Close the open utterance of `speaker`, dropping `trim` trailing samples; `None` if there was
/// none or it was too short to transcribe (and no partial of it was emitted).
fn finish(
    opts: &SegmenterOptions,
    id: &str,
    speaker: &mut Speaker,
    trim: usize,
) -> Option<SegmentWindow> {
    let mut utt = speaker.active.take()?;
    speaker.pre_roll.clear();
    if utt.voiced < samples(opts.min_speech) && utt.partials == 0 {
        return None;
    }
    let keep = utt.audio.len().saturating_sub(trim);
    utt.audio.truncate(keep);
    speaker.revision += 1;
    Some(SegmentWindow {
        speaker_id: id.to_string(),
        speaker_name: speaker.name.clone(),
        utterance: utt.id,
        revision: speaker.revision,
        kind: SegmentKind::Final,
        start: utt.start,
        end: utt.start + samples_to_duration(utt.audio.len()),
        audio: Arc::from(utt.audio),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcriber::Pcm;

    const MS: usize = 16; // samples per millisecond

    fn tone(ms: usize) -> Vec<f32> {
        (0..ms * MS).map(|i| 0.3 * (i as f32 * 0.1).sin()).collect()
    }

    fn silence(ms: usize) -> Vec<f32> {
        vec![0.0; ms * MS]
    }

    /// Feed `audio` for `id` in 20 ms frames from media time `at`, wall time advancing with it.
    fn feed(
        seg: &mut Segmenter,
        id: &str,
        audio: &[f32],
        at: Duration,
        t0: Instant,
    ) -> Vec<SegmentWindow> {
        let mut out = Vec::new();
        for (i, chunk) in audio.chunks(20 * MS).enumerate() {
            let ts = at + Duration::from_millis(20 * i as u64);
            let frame = AudioFrame {
                speaker_id: id.into(),
                speaker_name: format!("name-{id}"),
                pcm: Pcm::F32(chunk.to_vec()),
                timestamp: ts,
            };
            out.extend(seg.push(frame, t0 + ts));
        }
        out
    }

    #[test]
    fn speech_then_silence_gives_partials_then_final() {
        let mut seg = Segmenter::new(SegmenterOptions::default());
        let t0 = Instant::now();
        let mut audio = silence(300);
        audio.extend(tone(2500));
        audio.extend(silence(800));
        let out = feed(&mut seg, "a", &audio, Duration::ZERO, t0);
        let kinds: Vec<SegmentKind> = out.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [
                SegmentKind::Partial,
                SegmentKind::Partial,
                SegmentKind::Final
            ]
        );
        let revs: Vec<u64> = out.iter().map(|w| w.revision).collect();
        assert_eq!(revs, [1, 2, 3]);
        assert!(out
            .iter()
            .all(|w| w.utterance == 1 && w.speaker_name == "name-a"));
        let fin = &out[2];
        // Starts at the pre-roll before the tone, ends at tone end plus trailing pad.
        assert_eq!(fin.start, Duration::from_millis(100));
        assert_eq!(fin.end, Duration::from_millis(2800 + 150));
        assert_eq!(fin.audio.len(), (2800 + 150 - 100) * MS);
        assert_eq!(seg.poll_at(), None);
    }

    #[test]
    fn i16_frames_are_scaled() {
        let mut seg = Segmenter::new(SegmenterOptions::default());
        let t0 = Instant::now();
        let loud: Vec<i16> = (0..16_000)
            .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
            .collect();
        let mut out = seg.push(
            AudioFrame {
                speaker_id: "a".into(),
                speaker_name: "A".into(),
                pcm: Pcm::I16(loud),
                timestamp: Duration::ZERO,
            },
            t0,
        );
        out.extend(seg.push(
            AudioFrame {
                speaker_id: "a".into(),
                speaker_name: "A".into(),
                pcm: Pcm::I16(vec![0; 16_000]),
                timestamp: Duration::from_secs(1),
            },
            t0 + Duration::from_secs(1),
        ));
        assert_eq!(out.last().map(|w| w.kind), Some(SegmentKind::Final));
    }

    #[test]
    fn timestamps_follow_frames_across_gaps() {
        let mut seg = Segmenter::new(SegmenterOptions::default());
        let t0 = Instant::now();
        // 1010 ms of tone: the last 10 ms stay carried, then the speaker is silent for a while.
        let mut audio = tone(1010);
        audio.extend(silence(600));
        let first = feed(&mut seg, "a", &audio, Duration::ZERO, t0);
        assert_eq!(first.last().map(|w| w.kind), Some(SegmentKind::Final));
        let mut audio = silence(300);
        audio.extend(tone(600));
        audio.extend(silence(600));
        let second = feed(&mut seg, "a", &audio, Duration::from_secs(10), t0);
        assert_eq!(second.len(), 1, "{second:?}");
        assert_eq!(second[0].start, Duration::from_millis(10_100));
        assert_eq!(second[0].utterance, 2);
    }

    #[test]
    fn short_blips_are_dropped() {
        let mut seg = Segmenter::new(SegmenterOptions::default());
        let t0 = Instant::now();
        let mut audio = tone(100);
        audio.extend(silence(1000));
        assert!(feed(&mut seg, "a", &audio, Duration::ZERO, t0).is_empty());
    }

    #[test]
    fn max_length_forces_a_final_and_revisions_keep_rising() {
        let opts = SegmenterOptions {
            max_utterance: Duration::from_secs(3),
            ..SegmenterOptions::default()
        };
        let mut seg = Segmenter::new(opts);
        let t0 = Instant::now();
        let mut audio = tone(5000);
        audio.extend(silence(700));
        let out = feed(&mut seg, "a", &audio, Duration::ZERO, t0);
        let finals: Vec<&SegmentWindow> = out
            .iter()
            .filter(|w| w.kind == SegmentKind::Final)
            .collect();
        assert_eq!(finals.len(), 2);
        assert_eq!(finals[0].end - finals[0].start, Duration::from_secs(3));
        assert_eq!(finals[1].utterance, 2);
        assert!(out.windows(2).all(|p| p[0].revision < p[1].revision));
    }

    #[test]
    fn speakers_are_independent_and_stalls_finalise() {
        let mut seg = Segmenter::new(SegmenterOptions::default());
        let t0 = Instant::now();
        let a = feed(&mut seg, "a", &tone(1200), Duration::ZERO, t0);
        let b = feed(&mut seg, "b", &tone(600), Duration::ZERO, t0);
        assert_eq!(a.len(), 1);
        assert!(b.is_empty());
        let due = seg.poll_at().unwrap();
        // Speaker b's last frame was at 580 ms: its stall deadline comes first.
        assert_eq!(due, t0 + Duration::from_millis(580 + 500));
        // Nothing before the deadline of the first speaker to stall.
        assert!(seg.poll(t0 + Duration::from_millis(1000)).is_empty());
        let done = seg.poll(t0 + Duration::from_secs(2));
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|w| w.kind == SegmentKind::Final));
        let a_final = done.iter().find(|w| w.speaker_id == "a").unwrap();
        assert_eq!(a_final.revision, 2);
        assert_eq!(a_final.speaker_name, "name-a");
        let b_final = done.iter().find(|w| w.speaker_id == "b").unwrap();
        assert_eq!(b_final.revision, 1);
        assert_eq!(seg.poll_at(), None);
    }

    #[test]
    fn flush_and_remove_close_open_utterances() {
        let mut seg = Segmenter::new(SegmenterOptions::default());
        let t0 = Instant::now();
        feed(&mut seg, "a", &tone(600), Duration::ZERO, t0);
        feed(&mut seg, "b", &tone(600), Duration::from_secs(5), t0);
        let gone = seg.remove_speaker("b").unwrap();
        assert_eq!(gone.start, Duration::from_secs(5));
        let rest = seg.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].speaker_id, "a");
        assert!(seg.flush().is_empty());
    }
}
