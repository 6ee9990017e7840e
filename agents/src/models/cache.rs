//! The cache directory, checksums and the atomic commit of a verified file.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ModelError, ModelId};

/// The default model cache directory (see the [module docs](super)), or `None` without `HOME`.
pub fn cache_dir() -> Option<PathBuf> {
    dir_from(
        std::env::var_os("KIBITZ_AGENT_CACHE"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`cache_dir`] with the environment passed in (empty values count as unset).
fn dir_from(
    kibitz: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(k) = set(kibitz) {
        return Some(k.join("models"));
    }
    if let Some(x) = set(xdg) {
        return Some(x.join("kibitz-agent").join("models"));
    }
    set(home).map(|h| h.join(".cache").join("kibitz-agent").join("models"))
}

/// A model file found in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// Which model.
    pub model: ModelId,
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// The known models present in `dir` (not re-verified).
pub fn cached_models(dir: &Path) -> Vec<CachedModel> {
    ModelId::ALL
        .into_iter()
        .filter_map(|model| {
            let path = dir.join(model.file_name());
            let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
            Some(CachedModel {
                model,
                path,
                size: meta.len(),
            })
        })
        .collect()
}

/// Take the cache directory's exclusive lock (`<dir>/.lock`), waiting for other holders.
pub(crate) async fn lock_dir(dir: &Path) -> Result<std::fs::File, ModelError> {
    let path = dir.join(".lock");
    let owned = path.clone();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&owned)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|r| r);
    result.map_err(|source| ModelError::Io {
        what: "locking",
        path,
        source,
    })
}

/// SHA-256 of a file, lowercase hex, computed on a blocking thread.
pub(crate) async fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let owned = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = std::fs::File::open(&owned)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|r| r);
    result.map_err(|source| ModelError::Io {
        what: "hashing",
        path: path.to_path_buf(),
        source,
    })
}

/// Check `part` against the pinned checksums of `model` and rename it to `dest`; a
/// mismatching file is removed.
pub(crate) async fn verify_and_commit(
    part: &Path,
    dest: &Path,
    model: ModelId,
) -> Result<String, ModelError> {
    let sha = sha256_file(part).await?;
    if !model.accepts(&sha) {
        let _ = tokio::fs::remove_file(part).await;
        let mut expected = model.upstream_sha256().to_string();
        if let Some(built) = model.built_sha256() {
            expected = format!("{expected} or {built}");
        }
        return Err(ModelError::Checksum {
            path: part.to_path_buf(),
            actual: sha,
            expected,
        });
    }
    tokio::fs::rename(part, dest)
        .await
        .map_err(|source| ModelError::Io {
            what: "renaming to",
            path: dest.to_path_buf(),
            source,
        })?;
    Ok(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn cache_dir_precedence() {
        assert_eq!(
            dir_from(os("/k"), os("/x"), os("/h")),
            Some(PathBuf::from("/k/models"))
        );
        assert_eq!(
            dir_from(None, os("/x"), os("/h")),
            Some(PathBuf::from("/x/kibitz-agent/models"))
        );
        assert_eq!(
            dir_from(os(""), os(""), os("/h")),
            Some(PathBuf::from("/h/.cache/kibitz-agent/models"))
        );
        assert_eq!(dir_from(None, None, None), None);
    }

    #[tokio::test]
    async fn commit_only_matching_files() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("m.part");
        let dest = dir.path().join("m");
        std::fs::write(&part, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let err = verify_and_commit(&part, &dest, ModelId::TinyEn).await;
        assert!(matches!(err, Err(ModelError::Checksum { ref actual, .. }) if actual == abc));
        assert!(!part.exists() && !dest.exists());
        assert!(sha256_file(&dest).await.is_err());
        std::fs::write(&part, b"abc").unwrap();
        assert_eq!(sha256_file(&part).await.unwrap(), abc);
    }
}
