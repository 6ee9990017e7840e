//! File helpers for the CLI: reading inputs, writing outputs (private keys with mode 0600) and
//! loading JWK key files.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use capability_manifest::{AgentKey, AgentPublicKey};

use super::exit::{self, CliError};

/// Read a UTF-8 text file.
pub(crate) fn read_text(path: &Path) -> Result<String, CliError> {
    fs::read_to_string(path).map_err(|e| CliError::io(path, &e))
}

/// Write `contents` to `path`, refusing to replace an existing file unless `force`. With
/// `private`, the file is created with mode 0600 (and reset to 0600 when replaced).
pub(crate) fn write_file(
    path: &Path,
    contents: &str,
    force: bool,
    private: bool,
) -> Result<(), CliError> {
    if !force && path.exists() {
        return Err(CliError::new(
            exit::EXISTS,
            format!(
                "{} already exists (pass --force to replace it)",
                path.display()
            ),
        ));
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| CliError::io(path, &e))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| CliError::io(path, &e))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    file.write_all(contents.as_bytes())
        .map_err(|e| CliError::io(path, &e))
}

/// Load a private JWK file.
pub(crate) fn load_private_key(path: &Path) -> Result<AgentKey, CliError> {
    let text = read_text(path)?;
    AgentKey::from_jwk_str(&text).map_err(|e| {
        if AgentPublicKey::from_jwk_str(&text).is_ok() {
            CliError::new(
                exit::MALFORMED_KEY,
                format!(
                    "{}: this is a public key; signing needs the private key file",
                    path.display()
                ),
            )
        } else {
            CliError::key(path, &e)
        }
    })
}

/// Load a public key from a JWK file holding either a public or a private JWK.
pub(crate) fn load_public_key(path: &Path) -> Result<AgentPublicKey, CliError> {
    let text = read_text(path)?;
    match AgentPublicKey::from_jwk_str(&text) {
        Ok(k) => Ok(k),
        Err(capability_manifest::KeyError::UnexpectedPrivate) => AgentKey::from_jwk_str(&text)
            .map(|k| k.public().clone())
            .map_err(|e| CliError::key(path, &e)),
        Err(e) => Err(CliError::key(path, &e)),
    }
}

/// The public-key file written next to a private key: `agent.jwk` → `agent.pub.jwk`.
pub(crate) fn public_path_for(private: &Path) -> PathBuf {
    let name = private
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let public = match name.strip_suffix(".jwk") {
        Some(stem) => format!("{stem}.pub.jwk"),
        None => format!("{name}.pub"),
    };
    private.with_file_name(public)
}

/// Print a JSON value on stdout, pretty.
pub(crate) fn print_json(v: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
