//! `GET {path}{key}/id`: asking the broker for a fresh peer id (PeerJS `API.retrieveId`).

use std::time::Duration;

use super::config::{validate_id, BrokerConfig};
use super::error::SignalingError;

/// Allocates an id from the broker. Surrounding whitespace in the body is ignored; the result
/// must be a valid PeerJS id.
pub async fn retrieve_id(
    http: &reqwest::Client,
    cfg: &BrokerConfig,
    timeout: Duration,
) -> Result<String, SignalingError> {
    let url = cfg.id_url();
    tracing::debug!(%url, "requesting peer id");
    let resp = http
        .get(&url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| SignalingError::IdRequest(e.to_string()))?;
    let status = resp.status();
    if status.as_u16() != 200 {
        return Err(SignalingError::IdStatus(status.as_u16()));
    }
    let body = resp
        .text()
        .await
        .map_err(|e| SignalingError::IdRequest(e.to_string()))?;
    let id = body.trim();
    if !validate_id(id) {
        let shown: String = id.chars().take(64).collect();
        return Err(SignalingError::InvalidId(shown));
    }
    Ok(id.to_owned())
}
