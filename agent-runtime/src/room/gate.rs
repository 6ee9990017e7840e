//! The authority's identity gate (kibitz-agents.md §3.8): the injected verifier and its options.
//!
//! The gate *flow* (when it applies, hold vs unverified vs re-process, size guards, caps by
//! fingerprint) lives in [`super::authority`]; the cryptography lives behind [`IdentityVerifier`]
//! (the real one checks `kbz-agent-key.v1` assertions against the room's allow-list).

/// The credentials a `knock` or `voice` carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// Cert-bound identity token (OIDC / invite / names).
    pub jwt: Option<String>,
    /// `kbz-agent-key.v1` assertion.
    pub agent_assertion: Option<String>,
    /// Agent credit credential.
    pub agent_credit: Option<String>,
}

impl Credentials {
    /// True when no credential of any kind is present (empty strings count as absent, like JS).
    pub fn is_empty(&self) -> bool {
        [&self.jwt, &self.agent_assertion, &self.agent_credit]
            .iter()
            .all(|c| c.as_deref().is_none_or(str::is_empty))
    }

    /// The assertion, if present and non-empty.
    pub fn assertion(&self) -> Option<&str> {
        self.agent_assertion.as_deref().filter(|s| !s.is_empty())
    }

    /// The credit credential, if present and non-empty.
    pub fn credit(&self) -> Option<&str> {
        self.agent_credit.as_deref().filter(|s| !s.is_empty())
    }
}

/// What a verifier decides for one presented credential.
#[derive(Debug, Clone, PartialEq)]
pub enum GateDecision {
    /// Admit through the gate; `caps` is the allow-list entry's grant, recorded under the
    /// joiner's canonical presence fingerprint when present.
    Ok {
        /// The matched allow-list entry's `caps` (already sanitized by the verifier), if any.
        caps: Option<serde_json::Value>,
    },
    /// Refuse: the joiner gets `{t:'lobby',status:'unverified'}` (the reason never goes on the wire).
    Refused {
        /// Why (logged and surfaced as an event only).
        reason: String,
    },
    /// Transient failure: neither admit nor deny; the joiner's next announce retries.
    Hold,
}

/// Verifies a joiner's credentials against its presence connection's remote DTLS fingerprint.
pub trait IdentityVerifier: Send {
    /// Decides for one `knock` / `voice on:true`. `remote_fp` is the canonical-or-raw fingerprint
    /// of the joiner's presence connection (`None` when not readable); `now_secs` is Unix time.
    fn verify(
        &mut self,
        cred: &Credentials,
        remote_fp: Option<&str>,
        now_secs: u64,
    ) -> GateDecision;

    /// [`Self::verify`], told which presence connection presents the credentials (for stateful
    /// checks such as an assertion replay guard). Default: [`Self::verify`].
    fn verify_on(
        &mut self,
        _conn: &str,
        cred: &Credentials,
        remote_fp: Option<&str>,
        now_secs: u64,
    ) -> GateDecision {
        self.verify(cred, remote_fp, now_secs)
    }

    /// Presence connection `conn` closed (release per-connection state). Default: nothing.
    fn on_disconnect(&mut self, _conn: &str) {}
}

/// A verifier that admits everyone (tests, and rooms that gate only by lobby).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl IdentityVerifier for AllowAll {
    fn verify(&mut self, _cred: &Credentials, _fp: Option<&str>, _now: u64) -> GateDecision {
        GateDecision::Ok { caps: None }
    }
}

/// Gate settings (the browser's `IdentityGate` minus `verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOptions {
    /// Every joiner must verify (`require`); otherwise only joiners presenting an assertion (or a
    /// credit, with `require_agent_credits`) are gated.
    pub require: bool,
    /// Declared agents must present a valid credit credential, re-verified on every announce.
    pub require_agent_credits: bool,
    /// The human credential is cert-bound: an unreadable fingerprint holds the joiner. An agent
    /// assertion always forces this.
    pub binds_fingerprint: bool,
    /// Agent-only room: a joiner with no credential at all is admitted directly as a human.
    pub open_humans: bool,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            require: false,
            require_agent_credits: false,
            binds_fingerprint: true,
            open_humans: false,
        }
    }
}

/// Canonical fingerprint form: `trim()` then lowercase (kibitz-agents.md §3.5).
pub fn canonical_fingerprint(fp: &str) -> String {
    fp.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_are_absent_credentials() {
        let c = Credentials {
            jwt: Some(String::new()),
            ..Default::default()
        };
        assert!(c.is_empty());
        let c = Credentials {
            agent_assertion: Some("a".into()),
            ..Default::default()
        };
        assert!(!c.is_empty());
        assert_eq!(c.assertion(), Some("a"));
    }

    #[test]
    fn canonical_fingerprint_trims_and_lowercases() {
        assert_eq!(canonical_fingerprint("  AB:CD  "), "ab:cd");
    }
}
