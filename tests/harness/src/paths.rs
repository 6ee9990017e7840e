//! Where the repository, the JS harness and its prerequisites live.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// What to tell the user when a prerequisite is missing.
pub const INSTALL_HINT: &str =
    "run scripts/install-test-deps.sh (installs chromium, espeak-ng, sox and the npm test modules)";

/// The workspace root (`$KBZ_REPO_ROOT` if set, else two levels above this crate).
pub fn repo_root() -> PathBuf {
    if let Some(root) = std::env::var_os("KBZ_REPO_ROOT") {
        return PathBuf::from(root);
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate_dir.to_path_buf())
}

/// `tests/js` under the repository root.
pub fn js_dir() -> PathBuf {
    repo_root().join("tests").join("js")
}

/// The `node` executable (`$NODE` or `node` on `PATH`), checked to run.
pub(crate) fn node() -> Result<PathBuf> {
    let node = std::env::var_os("NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"));
    let ok = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        bail!("node ({}) is not runnable; {INSTALL_HINT}", node.display());
    }
    Ok(node)
}

/// A file inside `tests/js/node_modules`, which must exist.
pub(crate) fn npm_file(rel: &str) -> Result<PathBuf> {
    let path = js_dir().join("node_modules").join(rel);
    if !path.is_file() {
        bail!(
            "missing npm test module file {}; {INSTALL_HINT}",
            path.display()
        );
    }
    Ok(path)
}

/// The Chromium binary: `explicit`, else `$CHROMIUM`, else `/usr/bin/chromium`.
pub(crate) fn chromium(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CHROMIUM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !path.is_file() {
        bail!("chromium not found at {}; {INSTALL_HINT}", path.display());
    }
    Ok(path)
}

/// All prerequisites of the browser harness, checked up front.
pub(crate) fn check_browser_prereqs(chromium_path: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    let node = node()?;
    for rel in [
        "playwright-core/package.json",
        "peerjs/dist/peerjs.min.js",
        "peer/dist/bin/peerjs.js",
    ] {
        npm_file(rel)?;
    }
    let harness = js_dir().join("harness.mjs");
    if !harness.is_file() {
        bail!("missing {}", harness.display());
    }
    let chromium = chromium(chromium_path).context("the browser harness needs Chromium")?;
    Ok((node, chromium))
}
