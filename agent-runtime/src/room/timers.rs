//! Every timing constant of the presence star and the data mesh (kibitz-wire.md §13).
//!
//! The machines in this module never read a clock: the shell passes `now` in and asks
//! `poll_timeout()` when to call back. These are the browser's values, to the millisecond.

use std::time::Duration;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Presence ping cadence, both directions (`PING_MS`), and the authority's roster re-broadcast.
pub const PING: Duration = ms(2500);
/// The authority reaps a presence connection silent for this long (`REAP_MS`).
pub const REAP: Duration = ms(12_000);
/// A local gap between two ticks longer than this means *we* were frozen: refresh, don't blame.
pub const FREEZE_GAP: Duration = ms(6000);
/// A participant gives up on an authority silent for this long (`AUTHORITY_SILENCE_MS`).
pub const AUTHORITY_SILENCE: Duration = ms(12_000);
/// Delay before re-running claim-or-join after the authority was lost (`RECLAIM_DELAY_MS`).
pub const RECLAIM_DELAY: Duration = ms(1500);
/// `voice` re-announce cadence while in the call.
pub const REANNOUNCE: Duration = ms(3000);
/// The two quick re-announces after a join (600 ms and 1800 ms).
pub const REANNOUNCE_EARLY: [Duration; 2] = [ms(600), ms(1800)];
/// Claim attempt timeout (`CLAIM_TIMEOUT_MS`).
pub const CLAIM_TIMEOUT: Duration = ms(8000);
/// Re-run the loop this long after a claim `error`.
pub const CLAIM_ERROR_RETRY: Duration = ms(3000);
/// Per-attempt participant open timeout (`OPEN_TIMEOUT_MS`, [N]).
pub const OPEN_TIMEOUT: Duration = ms(15_000);
/// Base of the participant retry delay: `RETRY_BASE + attempts * RETRY_STEP`.
pub const RETRY_BASE: Duration = ms(2000);
/// Step of the participant retry delay.
pub const RETRY_STEP: Duration = ms(1500);
/// Participant connect attempts before giving up to the loop (`MAX_ATTEMPTS`, [N]).
pub const MAX_ATTEMPTS: u32 = 4;
/// Mesh: a member missing from the roster is dropped only after this grace (`DROP_GRACE_MS`).
pub const DROP_GRACE: Duration = ms(7000);
/// Mesh: re-dial delay after a link we dialled drops (`REDIAL_DELAY_MS`).
pub const REDIAL_DELAY: Duration = ms(800);
/// Mesh heartbeat: `mh` cadence and watchdog tick (`HEARTBEAT_MS`).
pub const MESH_HEARTBEAT: Duration = ms(2000);
/// Mesh: a `sig` link that never opened within this is stuck (`STUCK_MS`).
pub const SIG_STUCK: Duration = ms(8000);
/// Mesh: an open `sig` link that received nothing for this long is dead (`SIG_DEAD_MS`).
pub const SIG_DEAD: Duration = ms(8000);
/// Mesh: re-establish budget per peer (`MAX_RECOVER`).
pub const MAX_RECOVER: u32 = 3;
/// Mesh: close links this long after sending `bye`.
pub const BYE_CLOSE_DELAY: Duration = ms(250);
/// Browser re-sign interval of the agent assertion (4 min; valid 300 s).
pub const ASSERTION_RESIGN: Duration = ms(240_000);
/// `jwt` / `agentCredit` / `mod` token size cap, in UTF-16 code units (`MAX_TOKEN_CHARS`).
pub const MAX_TOKEN_CHARS: usize = 8192;
/// `agentAssertion` size cap, in UTF-16 code units (`MAX_ASSERTION_CHARS`).
pub const MAX_ASSERTION_CHARS: usize = 2048;

/// JS `string.length`: the length in UTF-16 code units (what the browser's size caps count).
pub(crate) fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The earliest of a set of optional deadlines.
pub(crate) fn earliest(
    deadlines: impl IntoIterator<Item = Option<std::time::Instant>>,
) -> Option<std::time::Instant> {
    deadlines.into_iter().flatten().min()
}
