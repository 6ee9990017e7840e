//! Exit codes and the error type every subcommand returns.
//!
//! Each failure prints one line `error: …` on stderr and exits with a code that says why:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | unexpected internal error |
//! | 2 | usage error (bad flags or arguments) |
//! | 3 | I/O error (file missing, unreadable, not writable) |
//! | 4 | refused to overwrite an existing file (pass `--force`) |
//! | 10 | bad signature: the manifest was altered, or its `kid` does not match its key |
//! | 11 | wrong key: signed by a different key than the one given, or the room does not list the key |
//! | 12 | expired (or issued in the future) |
//! | 13 | invalid manifest (schema, kind, empty field, duplicate lane, …) |
//! | 14 | malformed key file (not a usable P-256 JWK) |
//! | 15 | malformed token (truncated, not JWS compact, bad header, unsupported `alg`) |
//! | 16 | unknown capability |
//! | 17 | lane without destination |
//! | 18 | remote endpoint is not https |
//! | 19 | egress does not match the remote destinations |
//! | 20 | malformed room link |
//! | 21 | room manifest refused (bad signature, wrong room or mode, expired, no members) |

use std::fmt;
use std::process::ExitCode;

use capability_manifest::{KeyError, ManifestError, SignedManifestError};

/// Success.
pub(crate) const OK: u8 = 0;
/// Unexpected internal error.
pub(crate) const INTERNAL: u8 = 1;
/// Usage error.
pub(crate) const USAGE: u8 = 2;
/// I/O error.
pub(crate) const IO: u8 = 3;
/// Refused to overwrite.
pub(crate) const EXISTS: u8 = 4;
/// Bad signature.
pub(crate) const BAD_SIGNATURE: u8 = 10;
/// Wrong key.
pub(crate) const WRONG_KEY: u8 = 11;
/// Expired or not yet valid.
pub(crate) const EXPIRED: u8 = 12;
/// Invalid manifest.
pub(crate) const INVALID_MANIFEST: u8 = 13;
/// Malformed key.
pub(crate) const MALFORMED_KEY: u8 = 14;
/// Malformed token.
pub(crate) const MALFORMED_TOKEN: u8 = 15;
/// Unknown capability.
pub(crate) const UNKNOWN_CAPABILITY: u8 = 16;
/// Lane without destination.
pub(crate) const NO_DESTINATION: u8 = 17;
/// Insecure endpoint.
pub(crate) const INSECURE_ENDPOINT: u8 = 18;
/// Egress mismatch.
pub(crate) const EGRESS_MISMATCH: u8 = 19;
/// Malformed room link.
pub(crate) const BAD_LINK: u8 = 20;
/// Room manifest refused.
pub(crate) const ROOM_MANIFEST: u8 = 21;

/// A failed command: an exit code and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CliError {
    /// The process exit code.
    pub(crate) code: u8,
    /// The message, printed as `error: <message>`.
    pub(crate) message: String,
}

impl CliError {
    /// An error with `code`.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// An I/O error about `path`.
    pub(crate) fn io(path: &std::path::Path, err: &std::io::Error) -> Self {
        CliError::new(IO, format!("{}: {err}", path.display()))
    }

    /// A malformed key file.
    pub(crate) fn key(path: &std::path::Path, err: &KeyError) -> Self {
        CliError::new(
            MALFORMED_KEY,
            format!("{}: malformed key: {err}", path.display()),
        )
    }

    /// The exit code as a process status.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it on one line whatever the source said.
        let one_line = self.message.replace(['\n', '\r'], " ");
        write!(f, "error: {one_line}")
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::new(INTERNAL, format!("{e:#}"))
    }
}

/// The exit code for a manifest validation error.
pub(crate) fn manifest_code(e: &ManifestError) -> u8 {
    match e {
        ManifestError::UnknownCapability { .. } => UNKNOWN_CAPABILITY,
        ManifestError::LaneWithoutDestination { .. } => NO_DESTINATION,
        ManifestError::InsecureEndpoint { .. } => INSECURE_ENDPOINT,
        ManifestError::MissingEgress(_)
        | ManifestError::UndeclaredEgress(_)
        | ManifestError::BadEgress(_) => EGRESS_MISMATCH,
        _ => INVALID_MANIFEST,
    }
}

impl From<ManifestError> for CliError {
    fn from(e: ManifestError) -> Self {
        CliError::new(manifest_code(&e), format!("invalid manifest: {e}"))
    }
}

impl From<SignedManifestError> for CliError {
    fn from(e: SignedManifestError) -> Self {
        let code = match &e {
            SignedManifestError::BadSignature | SignedManifestError::KidMismatch { .. } => {
                BAD_SIGNATURE
            }
            SignedManifestError::WrongKey { .. } => WRONG_KEY,
            SignedManifestError::Expired { .. } | SignedManifestError::NotYetValid { .. } => {
                EXPIRED
            }
            SignedManifestError::Invalid(inner) => manifest_code(inner),
            _ => MALFORMED_TOKEN,
        };
        CliError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut all = vec![
            OK,
            INTERNAL,
            USAGE,
            IO,
            EXISTS,
            BAD_SIGNATURE,
            WRONG_KEY,
            EXPIRED,
            INVALID_MANIFEST,
            MALFORMED_KEY,
            MALFORMED_TOKEN,
            UNKNOWN_CAPABILITY,
            NO_DESTINATION,
            INSECURE_ENDPOINT,
            EGRESS_MISMATCH,
            BAD_LINK,
            ROOM_MANIFEST,
        ];
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn message_is_one_line() {
        let e = CliError::new(IO, "a\nb");
        assert_eq!(e.to_string(), "error: a b");
    }
}
