//! A replay guard for authorities that verify agent assertions.
//!
//! The assertion is already bound to the connection's DTLS fingerprint, so a copy captured in
//! transit fails verification on any other certificate. This guard adds a second, stateful layer:
//! within the token's freshness window a given assertion may be held by **one live connection** at
//! a time, and always with the same fingerprint. Re-presenting it on the same connection (Kibitz
//! re-sends it with every `voice` announce) and re-using it after that connection closed (a
//! reconnect with the same pinned certificate) are both allowed.
//!
//! Sans-I/O: the caller passes the connection id and `now`, and calls
//! [`AssertionReplayGuard::release`] when a connection closes. Call
//! [`AssertionReplayGuard::check`] only after [`verify_assertion`](crate::verify_assertion)
//! succeeded, so forged tokens never occupy the table.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

use crate::assertion::AssertionOptions;
use crate::error::ReplayError;
use crate::normalize::canonical_fingerprint;

/// Default bound on remembered assertions; the oldest is forgotten first.
pub const DEFAULT_MAX_REMEMBERED: usize = 4096;

#[derive(Debug, Clone)]
struct Seen {
    fp: String,
    conn: String,
    first_seen: u64,
    live: bool,
}

/// Remembers recently accepted assertions and refuses replays (see the module docs).
#[derive(Debug, Clone)]
pub struct AssertionReplayGuard {
    window_sec: u64,
    max_entries: usize,
    seen: HashMap<[u8; 32], Seen>,
    order: VecDeque<[u8; 32]>,
}

impl Default for AssertionReplayGuard {
    fn default() -> Self {
        AssertionReplayGuard::new(AssertionOptions::default())
    }
}

impl AssertionReplayGuard {
    /// A guard whose window is the assertion's whole validity span (`max_age + leeway`).
    pub fn new(opts: AssertionOptions) -> Self {
        AssertionReplayGuard {
            window_sec: opts.max_age_sec.saturating_add(opts.leeway_sec),
            max_entries: DEFAULT_MAX_REMEMBERED,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Change the bound on remembered assertions (at least 1).
    pub fn with_capacity_limit(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// Record `token` as presented on connection `conn_id` with `remote_fp` at `now`, or refuse
    /// it as a replay.
    pub fn check(
        &mut self,
        token: &str,
        conn_id: &str,
        remote_fp: &str,
        now: u64,
    ) -> Result<(), ReplayError> {
        self.prune(now);
        let id: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let fp = canonical_fingerprint(remote_fp);
        if let Some(seen) = self.seen.get_mut(&id) {
            if seen.fp != fp {
                return Err(ReplayError::DifferentConnection);
            }
            if seen.conn != conn_id {
                if seen.live {
                    return Err(ReplayError::AlreadyInUse);
                }
                seen.conn = conn_id.to_owned();
            }
            seen.live = true;
            return Ok(());
        }
        while self.seen.len() >= self.max_entries {
            match self.order.pop_front() {
                Some(old) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(
            id,
            Seen {
                fp,
                conn: conn_id.to_owned(),
                first_seen: now,
                live: true,
            },
        );
        self.order.push_back(id);
        Ok(())
    }

    /// Connection `conn_id` closed: its assertions may be presented again by a new connection
    /// with the same fingerprint.
    pub fn release(&mut self, conn_id: &str) {
        for seen in self.seen.values_mut() {
            if seen.conn == conn_id {
                seen.live = false;
            }
        }
    }

    /// Forget assertions whose window has passed.
    pub fn prune(&mut self, now: u64) {
        let window = self.window_sec;
        while let Some(front) = self.order.front() {
            let expired = self
                .seen
                .get(front)
                .is_none_or(|s| s.first_seen.saturating_add(window) < now);
            if !expired {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// How many assertions are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "ab:cd";

    #[test]
    fn same_connection_may_re_present() {
        let mut g = AssertionReplayGuard::default();
        assert_eq!(g.check("t1", "c1", FP, 100), Ok(()));
        assert_eq!(g.check("t1", "c1", "AB:CD ", 103), Ok(()));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn replay_on_other_fingerprint_or_live_connection_is_refused() {
        let mut g = AssertionReplayGuard::default();
        g.check("t1", "c1", FP, 100).unwrap();
        assert_eq!(
            g.check("t1", "c2", "ff:ff", 101),
            Err(ReplayError::DifferentConnection)
        );
        assert_eq!(g.check("t1", "c2", FP, 101), Err(ReplayError::AlreadyInUse));
        // After c1 closes, a reconnect with the same certificate may reuse it.
        g.release("c1");
        assert_eq!(g.check("t1", "c2", FP, 102), Ok(()));
        assert_eq!(g.check("t1", "c3", FP, 102), Err(ReplayError::AlreadyInUse));
    }

    #[test]
    fn window_expiry_and_capacity() {
        let mut g = AssertionReplayGuard::default();
        g.check("t1", "c1", FP, 100).unwrap();
        g.prune(100 + 360);
        assert_eq!(g.len(), 1);
        g.prune(100 + 361);
        assert!(g.is_empty());
        let mut g = AssertionReplayGuard::default().with_capacity_limit(2);
        g.check("a", "c1", FP, 1).unwrap();
        g.check("b", "c2", FP, 1).unwrap();
        g.check("c", "c3", FP, 1).unwrap();
        assert_eq!(g.len(), 2);
        // "a" was evicted, so it is accepted as new.
        assert_eq!(g.check("a", "c9", FP, 2), Ok(()));
    }
}
