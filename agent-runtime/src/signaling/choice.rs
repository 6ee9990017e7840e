//! Choosing the broker the way Kibitz clients do (`kibitz-wire.md` §2.1, `signalConfig.ts`).
//!
//! Every client asks `GET {origin}/api/signal` (credentials omitted, 4 s timeout) and gets
//! `{"host":"<worker host>"}` or `{"host":null}`. The answer is cached for 30 s so the presence
//! and media peers agree. When no host comes back, the current build [N] stays self-hosted (the
//! last host that worked, else `signal.kibitz.chat`); the legacy build [O] fell back to the
//! public PeerJS cloud. A forced host (the widget's `signalHost`) skips the probe.

use std::time::Duration;

use tokio::time::Instant;

use super::config::{BrokerConfig, DEFAULT_KEY, KIBITZ_SIGNAL_HOST};

/// How long a choice is reused (`CHOICE_TTL_MS`).
pub const CHOICE_TTL: Duration = Duration::from_millis(30_000);

/// Timeout of the `/api/signal` fetch (`fetchWithTimeout` default).
pub const SIGNAL_FETCH_TIMEOUT: Duration = Duration::from_millis(4000);

/// The public PeerJS cloud broker host.
pub const PEERJS_CLOUD_HOST: &str = "0.peerjs.com";

/// What to use when `/api/signal` yields no host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignalFallback {
    /// Current Kibitz [N]: the last host seen, else `signal.kibitz.chat`.
    #[default]
    SelfHosted,
    /// Legacy Kibitz [O]: the public PeerJS cloud (`0.peerjs.com`).
    PublicCloud,
}

/// Kibitz's `buildSignalConfig`: trims, strips a leading `http(s)://` and trailing slashes;
/// `None` when nothing is left. Port 443, path `/`, key `peerjs`, TLS.
pub fn build_signal_config(host: Option<&str>) -> Option<BrokerConfig> {
    let h = host.unwrap_or("").trim();
    let h = h
        .strip_prefix("https://")
        .or_else(|| h.strip_prefix("http://"))
        .unwrap_or(h);
    let h = h.trim_end_matches('/');
    (!h.is_empty()).then(|| BrokerConfig {
        host: h.to_owned(),
        port: 443,
        path: "/".to_owned(),
        key: DEFAULT_KEY.to_owned(),
        secure: true,
    })
}

/// The PeerJS defaults a Peer gets without options: the public cloud broker.
pub fn peerjs_cloud() -> BrokerConfig {
    BrokerConfig::new(PEERJS_CLOUD_HOST, 443, true)
}

/// Reads `host` from an `/api/signal` body; `None` for null, a non-string, or bad JSON.
pub fn parse_signal_response(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("host")?.as_str().map(str::to_owned)
}

/// The broker choice state (sans I/O): forced host, remembered host, cached answer.
#[derive(Debug, Clone, Default)]
pub struct BrokerChoice {
    fallback: SignalFallback,
    forced: Option<String>,
    remembered: Option<String>,
    cached: Option<(Instant, BrokerConfig)>,
}

impl BrokerChoice {
    /// A fresh state with the given fallback.
    pub fn new(fallback: SignalFallback) -> Self {
        BrokerChoice {
            fallback,
            ..BrokerChoice::default()
        }
    }

    /// Forces a host (skips the probe); blank clears it. Drops the cache.
    pub fn force_host(&mut self, host: Option<&str>) {
        self.forced = host
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned);
        self.cached = None;
    }

    /// The answer without probing, if one applies now (forced host or a fresh cache).
    pub fn without_probe(&self, now: Instant) -> Option<BrokerConfig> {
        if let Some(f) = &self.forced {
            if let Some(cfg) = build_signal_config(Some(f)) {
                return Some(cfg);
            }
        }
        match &self.cached {
            Some((at, cfg)) if now.saturating_duration_since(*at) < CHOICE_TTL => Some(cfg.clone()),
            _ => None,
        }
    }

    /// Records a probe outcome (`Some(host)` from a 200 answer, else `None`) and returns the
    /// broker to use.
    pub fn on_probe(&mut self, now: Instant, host: Option<&str>) -> BrokerConfig {
        let cfg = match host.filter(|h| !h.is_empty()) {
            Some(h) => {
                if self.fallback == SignalFallback::SelfHosted {
                    self.remembered = Some(h.to_owned());
                }
                build_signal_config(Some(h))
            }
            None => None,
        };
        let cfg = cfg.unwrap_or_else(|| match self.fallback {
            SignalFallback::SelfHosted => {
                build_signal_config(self.remembered.as_deref().or(Some(KIBITZ_SIGNAL_HOST)))
                    .unwrap_or_default()
            }
            SignalFallback::PublicCloud => peerjs_cloud(),
        });
        self.cached = Some((now, cfg.clone()));
        cfg
    }
}

/// Asks `{origin}/api/signal` (unless the state already answers) and returns the broker.
pub async fn choose_broker(
    http: &reqwest::Client,
    origin: &str,
    state: &mut BrokerChoice,
) -> BrokerConfig {
    if let Some(cfg) = state.without_probe(Instant::now()) {
        return cfg;
    }
    let url = format!("{}/api/signal", origin.trim_end_matches('/'));
    let host = async {
        let resp = http
            .get(&url)
            .timeout(SIGNAL_FETCH_TIMEOUT)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        parse_signal_response(&resp.bytes().await.ok()?)
    }
    .await;
    tracing::debug!(%url, ?host, "broker choice probed");
    state.on_probe(Instant::now(), host.as_deref())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn build_signal_config_like_kibitz() {
        let c = build_signal_config(Some(" https://signal.example.test/// ")).unwrap();
        assert_eq!(c, BrokerConfig::new("signal.example.test", 443, true));
        assert_eq!(build_signal_config(Some("http://h")).unwrap().host, "h");
        assert_eq!(build_signal_config(Some("  ")), None);
        assert_eq!(build_signal_config(Some("https:///")), None);
        assert_eq!(build_signal_config(None), None);
    }

    #[test]
    fn parse_signal_bodies() {
        assert_eq!(
            parse_signal_response(br#"{"host":"signal.kibitz.chat"}"#).as_deref(),
            Some("signal.kibitz.chat")
        );
        assert_eq!(parse_signal_response(br#"{"host":null}"#), None);
        assert_eq!(parse_signal_response(br#"{"host":3}"#), None);
        assert_eq!(parse_signal_response(b"<html>"), None);
    }

    #[test]
    fn self_hosted_fallback_remembers_last_host() {
        let t0 = Instant::now();
        let mut s = BrokerChoice::new(SignalFallback::SelfHosted);
        assert_eq!(s.on_probe(t0, None).host, KIBITZ_SIGNAL_HOST);
        assert_eq!(
            s.on_probe(t0, Some("w.example.test")).host,
            "w.example.test"
        );
        assert_eq!(s.on_probe(t0, None).host, "w.example.test");
        assert_eq!(s.on_probe(t0, Some("")).host, "w.example.test");
    }

    #[test]
    fn legacy_fallback_is_public_cloud() {
        let t0 = Instant::now();
        let mut s = BrokerChoice::new(SignalFallback::PublicCloud);
        assert_eq!(s.on_probe(t0, Some("w")).host, "w");
        assert_eq!(s.on_probe(t0, None), peerjs_cloud());
        assert_eq!(
            peerjs_cloud().socket_url("i", "t"),
            "wss://0.peerjs.com:443/peerjs?key=peerjs&id=i&token=t&version=1.5.5"
        );
    }

    #[test]
    fn cache_lasts_thirty_seconds_and_force_wins() {
        let t0 = Instant::now();
        let mut s = BrokerChoice::default();
        assert_eq!(s.without_probe(t0), None);
        s.on_probe(t0, Some("a"));
        assert_eq!(
            s.without_probe(t0 + Duration::from_millis(29_999))
                .unwrap()
                .host,
            "a"
        );
        assert_eq!(s.without_probe(t0 + CHOICE_TTL), None);
        s.force_host(Some(" https://forced.test/ "));
        assert_eq!(
            s.without_probe(t0 + CHOICE_TTL).unwrap().host,
            "forced.test"
        );
        s.force_host(Some(" "));
        assert_eq!(s.without_probe(t0), None);
    }
}
