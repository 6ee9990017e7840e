//! The test page's pure parts (room ids, grants, BinaryPack bytes of browser-shaped
//! messages) checked against the spec vectors with `node --test`.

use anyhow::{ensure, Context as _, Result};
use kibitz_test_harness::{js_dir, INSTALL_HINT};

#[test]
fn page_units_match_spec_vectors() -> Result<()> {
    let out = std::process::Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
        .args(["--test", "test/"])
        .current_dir(js_dir())
        .output()
        .with_context(|| format!("running node --test; {INSTALL_HINT}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "node --test failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "expected passing checks and no failures:\n{stdout}"
    );
    Ok(())
}
