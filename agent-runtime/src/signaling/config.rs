//! Which broker to talk to, and the URLs PeerJS 1.5.5 derives from it (`kibitz-wire.md` §2.1–2.2).

use rand::Rng;

/// The PeerJS client version sent as `version=` on every broker URL.
pub const PEERJS_VERSION: &str = "1.5.5";

/// The Kibitz production broker host.
pub const KIBITZ_SIGNAL_HOST: &str = "signal.kibitz.chat";

/// The PeerJS API key; Kibitz never sets another.
pub const DEFAULT_KEY: &str = "peerjs";

/// Where a PeerJS-protocol broker lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Host name or IP literal (IPv6 in brackets), without scheme.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Mount path; normalised to start and end with `/` like PeerJS does.
    pub path: String,
    /// API key.
    pub key: String,
    /// Use TLS (`https`/`wss`).
    pub secure: bool,
}

impl Default for BrokerConfig {
    /// Kibitz production: `signal.kibitz.chat`, port 443, path `/`, key `peerjs`, TLS.
    fn default() -> Self {
        BrokerConfig {
            host: KIBITZ_SIGNAL_HOST.to_owned(),
            port: 443,
            path: "/".to_owned(),
            key: DEFAULT_KEY.to_owned(),
            secure: true,
        }
    }
}

/// A broker URL that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker URL {url:?}: {reason}")]
pub struct BrokerUrlError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Makes `path` start and end with `/`, as PeerJS's `Peer` constructor does.
pub fn normalize_path(path: &str) -> String {
    let mut p = String::with_capacity(path.len() + 2);
    if !path.starts_with('/') {
        p.push('/');
    }
    p.push_str(path);
    if !p.ends_with('/') {
        p.push('/');
    }
    p
}

impl BrokerConfig {
    /// A broker at `host:port` with path `/`, key `peerjs`.
    pub fn new(host: impl Into<String>, port: u16, secure: bool) -> Self {
        BrokerConfig {
            host: host.into(),
            port,
            secure,
            ..BrokerConfig::default()
        }
    }

    /// Parses `ws://`, `wss://`, `http://` or `https://` URLs such as `ws://127.0.0.1:9000/`.
    ///
    /// The URL path becomes the mount path; a `key` query parameter, if present, the key
    /// (default `peerjs`). The port defaults to 80/443 by scheme.
    pub fn from_url(url: &str) -> Result<Self, BrokerUrlError> {
        let err = |reason: &str| BrokerUrlError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url).map_err(|e| err(&e.to_string()))?;
        let secure = match parsed.scheme() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            _ => return Err(err("scheme must be ws, wss, http or https")),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| err("missing host"))?
            .to_owned();
        let port = parsed.port().unwrap_or(if secure { 443 } else { 80 });
        let key = parsed
            .query_pairs()
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| DEFAULT_KEY.to_owned());
        Ok(BrokerConfig {
            host,
            port,
            path: normalize_path(parsed.path()),
            key,
            secure,
        })
    }

    /// Returns a copy with the path normalised (leading and trailing `/`).
    pub fn normalized(&self) -> Self {
        BrokerConfig {
            path: normalize_path(&self.path),
            ..self.clone()
        }
    }

    /// `{http|https}://host:port{path}{key}/id?ts=…&version=1.5.5`, with a fresh `ts`.
    pub fn id_url(&self) -> String {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let r: f64 = rand::thread_rng().gen();
        self.id_url_with_ts(&format!("{ms}{r}"))
    }

    /// [`id_url`](Self::id_url) with a given `ts` value (for reproducible output).
    pub fn id_url_with_ts(&self, ts: &str) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!(
            "{scheme}://{}:{}{}{}/id?ts={ts}&version={PEERJS_VERSION}",
            self.host,
            self.port,
            normalize_path(&self.path),
            self.key
        )
    }

    /// `{ws|wss}://host:port{path}peerjs?key=…&id=…&token=…&version=1.5.5`.
    ///
    /// Like PeerJS, the values are not percent-encoded; ids passing [`validate_id`] and tokens
    /// from [`random_token`] never need it.
    pub fn socket_url(&self, id: &str, token: &str) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!(
            "{scheme}://{}:{}{}peerjs?key={}&id={id}&token={token}&version={PEERJS_VERSION}",
            self.host,
            self.port,
            normalize_path(&self.path),
            self.key
        )
    }

    /// The `ws://`/`wss://` base URL, e.g. `ws://127.0.0.1:9000/` (for display).
    pub fn base_ws_url(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!(
            "{scheme}://{}:{}{}",
            self.host,
            self.port,
            normalize_path(&self.path)
        )
    }
}

/// Whether PeerJS accepts `id`: `^[A-Za-z0-9]+(?:[ _-][A-Za-z0-9]+)*$`.
///
/// Unlike PeerJS, the empty id is rejected here; "ask the server" is `None` in
/// [`ConnectOptions`](super::ConnectOptions).
pub fn validate_id(id: &str) -> bool {
    let mut prev_sep = true; // start behaves like "after a separator": must see alnum next
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            prev_sep = false;
        } else if matches!(c, ' ' | '_' | '-') && !prev_sep {
            prev_sep = true;
        } else {
            return false;
        }
    }
    !id.is_empty() && !prev_sep
}

/// A fresh random connection token: 20 base36 characters.
pub fn random_token() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_is_kibitz_production() {
        let c = BrokerConfig::default();
        assert_eq!(
            c.id_url_with_ts("17"),
            "https://signal.kibitz.chat:443/peerjs/id?ts=17&version=1.5.5"
        );
        assert_eq!(
            c.socket_url("abc", "tok"),
            "wss://signal.kibitz.chat:443/peerjs?key=peerjs&id=abc&token=tok&version=1.5.5"
        );
    }

    #[test]
    fn from_url_variants() {
        let c = BrokerConfig::from_url("ws://127.0.0.1:9000/").unwrap();
        assert_eq!(c, BrokerConfig::new("127.0.0.1", 9000, false));
        assert_eq!(
            c.socket_url("x", "t"),
            "ws://127.0.0.1:9000/peerjs?key=peerjs&id=x&token=t&version=1.5.5"
        );
        assert_eq!(
            c.id_url_with_ts("1"),
            "http://127.0.0.1:9000/peerjs/id?ts=1&version=1.5.5"
        );

        let c = BrokerConfig::from_url("https://example.test/myapp?key=k2").unwrap();
        assert_eq!(c.port, 443);
        assert!(c.secure);
        assert_eq!(c.path, "/myapp/");
        assert_eq!(c.key, "k2");
        assert_eq!(
            c.socket_url("x", "t"),
            "wss://example.test:443/myapp/peerjs?key=k2&id=x&token=t&version=1.5.5"
        );
        assert_eq!(
            c.id_url_with_ts("1"),
            "https://example.test:443/myapp/k2/id?ts=1&version=1.5.5"
        );

        let c = BrokerConfig::from_url("http://[::1]:8080").unwrap();
        assert_eq!(c.host, "[::1]");
        assert_eq!(c.path, "/");
        assert_eq!(c.base_ws_url(), "ws://[::1]:8080/");

        assert!(BrokerConfig::from_url("ftp://x/").is_err());
        assert!(BrokerConfig::from_url("not a url").is_err());
    }

    #[test]
    fn path_is_normalized_like_peerjs() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("app"), "/app/");
        assert_eq!(normalize_path("/app"), "/app/");
        let c = BrokerConfig {
            path: "app".into(),
            ..BrokerConfig::new("h", 1, false)
        };
        assert_eq!(
            c.socket_url("i", "t"),
            "ws://h:1/app/peerjs?key=peerjs&id=i&token=t&version=1.5.5"
        );
        assert_eq!(c.normalized().path, "/app/");
    }

    #[test]
    fn id_url_has_fresh_ts() {
        let u = BrokerConfig::default().id_url();
        let ts = u
            .split("ts=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap();
        assert!(ts.len() > 13, "{ts}");
        assert!(u.ends_with("&version=1.5.5"));
    }

    #[test]
    fn validate_id_matches_peerjs_regex() {
        for ok in [
            "a",
            "kbz-v1-room",
            "A_b c-9",
            "0e3f",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert!(validate_id(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a b_", "kbz-v1-", "é", "a.b", " a"] {
            assert!(!validate_id(bad), "{bad}");
        }
    }

    #[test]
    fn token_is_base36() {
        let t = random_token();
        assert_eq!(t.len(), 20);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(t, random_token());
    }
}
