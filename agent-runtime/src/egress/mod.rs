//! Egress enforcement: an HTTP client that only reaches the origins an agent's signed
//! manifest declares.
//!
//! [`EgressClient`] wraps a `reqwest::Client`. Every request's URL is checked **before** any
//! connection is made: its origin (`scheme://host:port`, lowercase host, default ports filled
//! in) must equal one the manifest declares ([`AgentManifest::allowed_origins`]); URLs with user
//! info and schemes other than `http`/`https` are refused; no DNS lookup is involved in the
//! decision, so a hostname and its IP literal are different origins. Every redirect hop is
//! checked the same way by the client's redirect policy. A refusal is
//! [`EgressError::Denied`] plus a `tracing` warning on target `kibitz_agent::audit`.
//!
//! The client ignores proxy environment variables (a proxy would be an undeclared
//! destination). It constrains the runtime's client only; it is not an OS sandbox.

mod origin;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use capability_manifest::AgentManifest;
use url::Url;

pub use origin::DenyReason;

use origin::{Origin, Policy};

/// Settings of an [`EgressClient`].
#[derive(Debug, Clone)]
pub struct EgressOptions {
    /// Overall timeout of each request. Default 60 s.
    pub timeout: Option<Duration>,
    /// Connect timeout. Default 10 s.
    pub connect_timeout: Duration,
    /// Redirect hops followed (each checked). Default 5.
    pub max_redirects: usize,
    /// `User-Agent` header. Default `kibitz-agent/<version>`.
    pub user_agent: String,
}

impl Default for EgressOptions {
    fn default() -> Self {
        EgressOptions {
            timeout: Some(Duration::from_secs(60)),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            user_agent: concat!("kibitz-agent/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Errors of egress-checked requests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The destination is not allowed; nothing was sent to it.
    #[error("egress to {origin} denied: {reason}")]
    Denied {
        /// The refused origin (`scheme://host:port`).
        origin: String,
        /// Why.
        reason: DenyReason,
    },
    /// The URL did not parse.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A declared origin is not a bare `scheme://host[:port]`.
    #[error("bad declared origin {0:?}")]
    BadOrigin(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The request failed after passing the check (connection, TLS, timeout, body…).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// A redirect refused by the policy (found again in reqwest's error source chain).
#[derive(Debug, thiserror::Error)]
#[error("redirect to {origin} denied: {reason}")]
struct RedirectDenied {
    origin: String,
    reason: DenyReason,
}

/// The egress-enforcing HTTP client of one agent. Cheap to clone.
#[derive(Clone)]
pub struct EgressClient {
    inner: reqwest::Client,
    policy: Arc<Policy>,
    agent: Arc<str>,
}

impl std::fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressClient")
            .field("agent", &self.agent)
            .field("allowed", &self.policy.origins())
            .finish_non_exhaustive()
    }
}

fn audit(agent: &str, origin: &str, reason: DenyReason) {
    tracing::warn!(
        target: "kibitz_agent::audit",
        agent = %agent,
        origin = %origin,
        reason = %reason,
        "egress denied"
    );
}

impl EgressClient {
    /// A client allowed to reach exactly the manifest's declared origins. Pass a manifest that
    /// came out of signature verification.
    pub fn from_manifest(
        manifest: &AgentManifest,
        opts: EgressOptions,
    ) -> Result<EgressClient, EgressError> {
        EgressClient::new(&manifest.agent.name, manifest.allowed_origins(), opts)
    }

    /// A client for agent `agent` allowed to reach `origins` (`scheme://host[:port]`).
    pub fn new<I, S>(
        agent: &str,
        origins: I,
        opts: EgressOptions,
    ) -> Result<EgressClient, EgressError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = BTreeSet::new();
        for o in origins {
            let o = o.as_ref();
            allowed
                .insert(Origin::declared(o).ok_or_else(|| EgressError::BadOrigin(o.to_owned()))?);
        }
        let policy = Arc::new(Policy::new(allowed));
        let agent: Arc<str> = agent.into();
        let redirect = {
            let policy = Arc::clone(&policy);
            let agent = Arc::clone(&agent);
            let max = opts.max_redirects;
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max {
                    return attempt.error("too many redirects");
                }
                match policy.check(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err((origin, _)) => {
                        audit(&agent, &origin, DenyReason::Redirect);
                        attempt.error(RedirectDenied {
                            origin,
                            reason: DenyReason::Redirect,
                        })
                    }
                }
            })
        };
        let mut builder = reqwest::Client::builder()
            .redirect(redirect)
            .no_proxy()
            .connect_timeout(opts.connect_timeout)
            .user_agent(opts.user_agent);
        if let Some(t) = opts.timeout {
            builder = builder.timeout(t);
        }
        let inner = builder
            .build()
            .map_err(|e| EgressError::Client(e.to_string()))?;
        Ok(EgressClient {
            inner,
            policy,
            agent,
        })
    }

    /// The allowed origins, normalised and sorted.
    pub fn allowed_origins(&self) -> Vec<String> {
        self.policy.origins()
    }

    /// Check `url` against the allow-list without sending anything (audited when denied).
    pub fn check(&self, url: &str) -> Result<Url, EgressError> {
        let parsed = Url::parse(url).map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
        self.check_url(&parsed)?;
        Ok(parsed)
    }

    fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        self.policy.check(url).map_err(|(origin, reason)| {
            audit(&self.agent, &origin, reason);
            EgressError::Denied { origin, reason }
        })
    }

    /// Start a request; the URL is checked now and again when it is sent.
    pub fn request(&self, method: reqwest::Method, url: &str) -> EgressRequest {
        let builder = self.check(url).map(|u| self.inner.request(method, u));
        EgressRequest {
            client: self.clone(),
            builder,
        }
    }

    /// A `GET` request.
    pub fn get(&self, url: &str) -> EgressRequest {
        self.request(reqwest::Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(&self, url: &str) -> EgressRequest {
        self.request(reqwest::Method::POST, url)
    }
}

/// A request being built; the URL cannot be changed after the check.
pub struct EgressRequest {
    client: EgressClient,
    builder: Result<reqwest::RequestBuilder, EgressError>,
}

impl std::fmt::Debug for EgressRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressRequest")
            .field("allowed", &self.builder.is_ok())
            .finish_non_exhaustive()
    }
}

impl EgressRequest {
    fn map(self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        EgressRequest {
            client: self.client,
            builder: self.builder.map(f),
        }
    }

    /// Add a header.
    pub fn header(self, name: &str, value: &str) -> Self {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.map(|b| b.header(name, value))
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: &str) -> Self {
        let token = token.to_owned();
        self.map(|b| b.bearer_auth(token))
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        let value = serde_json::to_vec(body);
        match value {
            Ok(bytes) => self.map(|b| b.header("content-type", "application/json").body(bytes)),
            Err(e) => EgressRequest {
                client: self.client,
                builder: Err(EgressError::InvalidUrl(format!("JSON body: {e}"))),
            },
        }
    }

    /// A raw body.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        let body = body.into();
        self.map(|b| b.body(body))
    }

    /// Query parameters (they never change the origin).
    pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
        self.map(|b| b.query(query))
    }

    /// A timeout for this request.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.timeout(timeout))
    }

    /// Send it: the final URL is checked again, redirects are checked hop by hop.
    pub async fn send(self) -> Result<reqwest::Response, EgressError> {
        let request = self.builder?.build()?;
        self.client.check_url(request.url())?;
        self.client
            .inner
            .execute(request)
            .await
            .map_err(redirect_denied)
    }
}

/// Turn reqwest's error for a refused redirect back into [`EgressError::Denied`].
fn redirect_denied(e: reqwest::Error) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(d) = s.downcast_ref::<RedirectDenied>() {
            return EgressError::Denied {
                origin: d.origin.clone(),
                reason: d.reason,
            };
        }
        source = s.source();
    }
    EgressError::Http(e)
}
