//! Origins (`scheme://host:port`) and the allow-list check.

use std::collections::BTreeSet;
use std::fmt;

use url::Url;

/// Why a destination was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// The origin is not among the manifest's declared origins.
    Undeclared,
    /// The URL carries a user name or password (`https://user:pw@host/`).
    UserInfo,
    /// The scheme is neither `http` nor `https`.
    Scheme,
    /// A redirect pointed to an undeclared origin.
    Redirect,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DenyReason::Undeclared => "origin not declared in the signed manifest",
            DenyReason::UserInfo => "credentials in the URL are not allowed",
            DenyReason::Scheme => "only http and https are allowed",
            DenyReason::Redirect => "redirect to an origin not declared in the signed manifest",
        })
    }
}

/// A normalised origin: lowercase scheme and host (as the URL standard parses them, so IPv4
/// spellings like `0x7f.1` become `127.0.0.1`), and an explicit port (default ports filled in).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl Origin {
    /// The origin of `url`, refusing other schemes and user info.
    pub(crate) fn of(url: &Url) -> Result<Origin, (String, DenyReason)> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        let origin = Origin {
            scheme: url.scheme().to_owned(),
            host,
            port,
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err((origin.to_string(), DenyReason::Scheme));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err((origin.to_string(), DenyReason::UserInfo));
        }
        if origin.host.is_empty() {
            return Err((origin.to_string(), DenyReason::Undeclared));
        }
        Ok(origin)
    }

    /// Parse a declared origin (`scheme://host[:port]`, nothing after the host but `/`).
    pub(crate) fn declared(s: &str) -> Option<Origin> {
        let url = Url::parse(s).ok()?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return None;
        }
        Origin::of(&url).ok()
    }
}

/// The set of allowed origins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    allowed: BTreeSet<Origin>,
}

impl Policy {
    pub(crate) fn new(allowed: BTreeSet<Origin>) -> Policy {
        Policy { allowed }
    }

    /// `Ok` when `url`'s origin is declared; else the origin (as text) and why not.
    pub(crate) fn check(&self, url: &Url) -> Result<(), (String, DenyReason)> {
        let origin = Origin::of(url)?;
        if self.allowed.contains(&origin) {
            Ok(())
        } else {
            Err((origin.to_string(), DenyReason::Undeclared))
        }
    }

    pub(crate) fn origins(&self) -> Vec<String> {
        self.allowed.iter().map(Origin::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(list: &[&str]) -> Policy {
        Policy::new(list.iter().map(|s| Origin::declared(s).unwrap()).collect())
    }

    fn check(p: &Policy, url: &str) -> Result<(), (String, DenyReason)> {
        p.check(&Url::parse(url).unwrap())
    }

    #[test]
    fn default_ports_and_case_normalise() {
        let p = policy(&["https://api.example.com:443", "http://127.0.0.1:8080"]);
        assert!(check(&p, "https://api.example.com/v1/chat").is_ok());
        assert!(check(&p, "https://API.Example.COM:443/v1").is_ok());
        assert!(check(&p, "HTTPS://api.example.com/").is_ok());
        assert!(check(&p, "http://127.0.0.1:8080/x?y=1").is_ok());
        // IPv4 spellings normalise to the dotted form.
        assert!(check(&p, "http://0x7f.0.0.1:8080/").is_ok());
        assert!(check(&p, "http://2130706433:8080/").is_ok());
    }

    #[test]
    fn refusals() {
        let p = policy(&["https://api.example.com:443", "http://127.0.0.1:8080"]);
        let denied = |url: &str, origin: &str, reason: DenyReason| {
            assert_eq!(check(&p, url), Err((origin.to_owned(), reason)), "{url}");
        };
        denied(
            "https://api.example.com:8443/",
            "https://api.example.com:8443",
            DenyReason::Undeclared,
        );
        denied(
            "http://api.example.com/",
            "http://api.example.com:80",
            DenyReason::Undeclared,
        );
        denied(
            "https://api.example.com.evil.test/",
            "https://api.example.com.evil.test:443",
            DenyReason::Undeclared,
        );
        denied(
            "https://api.example.com@evil.test/",
            "https://evil.test:443",
            DenyReason::UserInfo,
        );
        denied(
            "https://user:pw@api.example.com/",
            "https://api.example.com:443",
            DenyReason::UserInfo,
        );
        denied(
            "http://localhost:8080/",
            "http://localhost:8080",
            DenyReason::Undeclared,
        );
        denied(
            "https://api.example.com./",
            "https://api.example.com.:443",
            DenyReason::Undeclared,
        );
        denied(
            "ftp://api.example.com/",
            "ftp://api.example.com:21",
            DenyReason::Scheme,
        );
        assert!(check(&p, "file:///etc/passwd").is_err());
        assert!(check(&p, "data:text/plain,hi").is_err());
    }

    #[test]
    fn declared_origins_must_be_bare() {
        assert!(Origin::declared("https://a.example:443").is_some());
        assert!(Origin::declared("https://a.example/path").is_none());
        assert!(Origin::declared("https://u@a.example").is_none());
        assert!(Origin::declared("not a url").is_none());
        assert_eq!(
            Origin::declared("HTTPS://A.Example").unwrap().to_string(),
            "https://a.example:443"
        );
    }
}
