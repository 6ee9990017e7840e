//! Streaming download of an upstream model file into a `.part` file.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use super::{FetchEvent, FetchOptions, ModelId};

/// Upstream location of the whisper.cpp ggml models.
const UPSTREAM_BASE: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// Report progress at most every this many bytes.
const PROGRESS_STEP: u64 = 4 << 20;

/// The URL of `model` under `base`, else `$KIBITZ_AGENT_MODEL_URL`, else upstream.
pub(crate) fn model_url(model: ModelId, base: Option<&str>) -> String {
    let base = base
        .map(str::to_string)
        .or_else(|| std::env::var("KIBITZ_AGENT_MODEL_URL").ok())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| UPSTREAM_BASE.to_string());
    format!("{}/{}", base.trim_end_matches('/'), model.file_name())
}

/// Download `url` into `part` (truncated first). Errors are returned as one-line reasons.
pub(crate) async fn download(
    url: &str,
    part: &Path,
    opts: &FetchOptions,
    progress: &mut (dyn FnMut(FetchEvent) + Send),
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let send = client.get(url).send();
    let mut response = tokio::time::timeout(opts.read_timeout, send)
        .await
        .map_err(|_| "no response in time".to_string())?
        .map_err(|e| describe(&e))?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let total = response.content_length();
    let mut file = tokio::fs::File::create(part)
        .await
        .map_err(|e| format!("creating {}: {e}", part.display()))?;
    let mut bytes = 0u64;
    let mut reported = 0u64;
    progress(FetchEvent::DownloadProgress { bytes, total });
    loop {
        let chunk = tokio::time::timeout(opts.read_timeout, response.chunk())
            .await
            .map_err(|_| "download stalled".to_string())?
            .map_err(|e| describe(&e))?;
        let Some(chunk) = chunk else { break };
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", part.display()))?;
        bytes += chunk.len() as u64;
        if bytes - reported >= PROGRESS_STEP {
            reported = bytes;
            progress(FetchEvent::DownloadProgress { bytes, total });
        }
    }
    file.flush()
        .await
        .and(file.sync_all().await)
        .map_err(|e| format!("writing {}: {e}", part.display()))?;
    progress(FetchEvent::DownloadProgress { bytes, total });
    if let Some(t) = total {
        if t != bytes {
            return Err(format!("truncated: {bytes} of {t} bytes"));
        }
    }
    Ok(())
}

/// A one-line description of a reqwest error including its causes.
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
