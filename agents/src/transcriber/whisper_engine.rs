//! Speech recognition with whisper.cpp (whisper-rs 0.16) on the blocking thread pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::SAMPLE_RATE;

/// whisper.cpp rejects input shorter than one second; shorter windows are zero-padded to this.
const MIN_SAMPLES: usize = SAMPLE_RATE as usize * 11 / 10;

/// Options of the [`WhisperEngine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Threads per transcription.
    pub threads: usize,
    /// Spoken language (`"en"`), or `None` to detect it (multilingual models only).
    pub language: Option<String>,
    /// Encode only as much of whisper's 30 s context as the window needs (plus a margin)
    /// instead of all of it: several times faster on short utterances.
    pub fit_audio_ctx: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: 2,
            language: Some("en".to_string()),
            fit_audio_ctx: true,
        }
    }
}

/// Why loading or transcribing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The model file is missing.
    #[error("whisper model not found at {}: run `kibitz-agent models fetch tiny.en`", .0.display())]
    ModelMissing(PathBuf),
    /// whisper.cpp refused the model or the audio.
    #[error("whisper: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
    /// The language code is not usable.
    #[error("invalid language code {0:?}")]
    Language(String),
    /// The blocking task died.
    #[error("transcription task failed: {0}")]
    Task(String),
}

struct Inner {
    ctx: WhisperContext,
    opts: EngineOptions,
    /// Idle decoder states, reused between calls (one per concurrent transcription).
    states: Mutex<Vec<WhisperState>>,
}

/// A loaded whisper model; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct WhisperEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WhisperEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperEngine")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl WhisperEngine {
    /// Load a ggml model (blocking: call from a blocking context or use
    /// [`WhisperEngine::load_async`]).
    pub fn load(model: &Path, opts: EngineOptions) -> Result<Self, EngineError> {
        if !model.is_file() {
            return Err(EngineError::ModelMissing(model.to_path_buf()));
        }
        if let Some(lang) = &opts.language {
            if lang.is_empty() || !lang.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(EngineError::Language(lang.clone()));
            }
        }
        // Route whisper.cpp's logging into `tracing` instead of stderr.
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let ctx = WhisperContext::new_with_params(model, params)?;
        Ok(WhisperEngine {
            inner: Arc::new(Inner {
                ctx,
                opts,
                states: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Load a model on the blocking thread pool.
    pub async fn load_async(model: PathBuf, opts: EngineOptions) -> Result<Self, EngineError> {
        tokio::task::spawn_blocking(move || Self::load(&model, opts))
            .await
            .map_err(|e| EngineError::Task(e.to_string()))?
    }

    /// The options in use.
    pub fn options(&self) -> &EngineOptions {
        &self.inner.opts
    }

    /// Transcribe 16 kHz mono audio on the blocking thread pool (never blocks async tasks).
    pub async fn transcribe(&self, audio: Arc<[f32]>) -> Result<String, EngineError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.transcribe_blocking(&audio))
            .await
            .map_err(|e| EngineError::Task(e.to_string()))?
    }

    /// Transcribe 16 kHz mono audio on the current thread (CPU-heavy; blocks).
    pub fn transcribe_blocking(&self, audio: &[f32]) -> Result<String, EngineError> {
        let mut state = match self.take_state() {
            Some(s) => s,
            None => self.inner.ctx.create_state()?,
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(self.inner.opts.threads.max(1)).unwrap_or(1));
        params.set_language(self.inner.opts.language.as_deref());
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_suppress_blank(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);

        let padded;
        let input = if audio.len() < MIN_SAMPLES {
            let mut v = audio.to_vec();
            v.resize(MIN_SAMPLES, 0.0);
            padded = v;
            &padded[..]
        } else {
            audio
        };
        if self.inner.opts.fit_audio_ctx {
            params.set_audio_ctx(audio_ctx_for(input.len()));
        }
        // Bound decoding (and so the cost of a repetition loop) by the window length.
        params.set_max_tokens(max_tokens_for(input.len()));
        state.full(params, input)?;
        let mut text = String::new();
        for seg in state.as_iter() {
            let piece = seg.to_str_lossy()?;
            let piece = piece.trim();
            if piece.is_empty() || is_annotation(piece) {
                continue;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(piece);
        }
        self.put_state(state);
        Ok(collapse_repeats(&text))
    }

    fn take_state(&self) -> Option<WhisperState> {
        self.inner.states.lock().ok().and_then(|mut v| v.pop())
    }

    fn put_state(&self, state: WhisperState) {
        if let Ok(mut v) = self.inner.states.lock() {
            v.push(state);
        }
    }
}

/// Encoder positions for `samples` of audio: 50 per second, plus a one-second margin, capped at
/// whisper's full 1500.
fn audio_ctx_for(samples: usize) -> i32 {
    let needed = samples.div_ceil(SAMPLE_RATE as usize / 50) + 50;
    i32::try_from(needed.min(1500)).unwrap_or(1500)
}

/// Most tokens to decode for `samples` of audio: about three times a brisk speaking rate.
fn max_tokens_for(samples: usize) -> i32 {
    let secs = samples.div_ceil(SAMPLE_RATE as usize);
    i32::try_from(secs * 12 + 16).unwrap_or(i32::MAX)
}

/// Drop consecutive repeats of a sentence (`A. A. A.` → `A.`), a known failure mode of small
/// whisper models on short windows.
fn collapse_repeats(text: &str) -> String {
    let mut sentences: Vec<&str> = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .find(|&(_, c)| matches!(c, '.' | '!' | '?'))
            .map_or(rest.len(), |(i, c)| i + c.len_utf8());
        let (sentence, tail) = rest.split_at(cut);
        let sentence = sentence.trim();
        if sentences.last() != Some(&sentence) {
            sentences.push(sentence);
        }
        rest = tail.trim_start();
    }
    sentences.join(" ")
}

/// Non-speech markers whisper emits on silence or noise: `[BLANK_AUDIO]`, `(music)`, `*sigh*`.
fn is_annotation(s: &str) -> bool {
    let pairs = [('[', ']'), ('(', ')'), ('*', '*')];
    pairs
        .iter()
        .any(|&(a, b)| s.len() >= 2 && s.starts_with(a) && s.ends_with(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_fits_the_window() {
        assert_eq!(audio_ctx_for(16_000), 100);
        assert_eq!(audio_ctx_for(16_001), 101);
        assert_eq!(audio_ctx_for(16_000 * 60), 1500);
    }

    #[test]
    fn repeats_are_collapsed() {
        assert_eq!(
            collapse_repeats("The fox. The fox. The fox. The dog!"),
            "The fox. The dog!"
        );
        assert_eq!(collapse_repeats("Go. Stop. Go."), "Go. Stop. Go.");
        assert_eq!(collapse_repeats("no stop"), "no stop");
        assert_eq!(collapse_repeats(""), "");
        assert_eq!(max_tokens_for(16_000 * 3), 52);
    }

    #[test]
    fn annotations_are_recognised() {
        assert!(is_annotation("[BLANK_AUDIO]"));
        assert!(is_annotation("(wind blowing)"));
        assert!(!is_annotation("Hello (there)."));
        assert!(!is_annotation("["));
    }

    #[test]
    fn missing_model_and_bad_language_are_errors() {
        let err = WhisperEngine::load(Path::new("/nonexistent/ggml.bin"), EngineOptions::default());
        assert!(matches!(err, Err(EngineError::ModelMissing(_))));
        let file = tempfile::NamedTempFile::new().unwrap();
        let opts = EngineOptions {
            language: Some("e\0n".into()),
            ..EngineOptions::default()
        };
        assert!(matches!(
            WhisperEngine::load(file.path(), opts),
            Err(EngineError::Language(_))
        ));
    }
}
