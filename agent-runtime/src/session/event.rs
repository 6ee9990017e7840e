//! What a session reports: [`SessionEvent`]s and [`SessionMetrics`].

use std::sync::atomic::{AtomicU64, Ordering};

use capability_manifest::Grant;

use crate::wire::presence::{LobbyStatus, Roster};

/// An event of a room session, in the order things happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Dialling the room authority (a new claim-or-join run started).
    Connecting,
    /// Nobody holds the room and we may not claim it: waiting for a host.
    WaitingForHost,
    /// The presence link opened; `knock` (and our `voice`) were sent.
    Knocking,
    /// A `lobby` status arrived.
    Lobby(LobbyStatus),
    /// We are in the roster (first roster containing our voiceId on this presence link).
    Admitted,
    /// The roster changed (unchanged re-broadcasts are not reported).
    Roster(Roster),
    /// A chat line from a mesh peer (deduplicated by `mid`).
    Chat {
        /// Sender voiceId (the link's remote peer id).
        from: String,
        /// Sender's roster name (`'Guest'` when unknown).
        name: String,
        /// The text (trimmed, at most 500 characters).
        text: String,
        /// Sent to us only.
        dm: bool,
        /// Sender-scoped message id, when the sender gave one.
        mid: Option<String>,
    },
    /// An `app` message from a mesh peer.
    App {
        /// Sender voiceId.
        from: String,
        /// The payload as JSON.
        data: serde_json::Value,
    },
    /// Our effective grant changed (accepted `caps`, or the default).
    GrantChanged(Grant),
    /// The authority removed us. Terminal.
    Kicked,
    /// The host denied entry. Terminal.
    Denied,
    /// The room is locked to us. Terminal.
    Locked,
    /// The identity gate refused us (after the configured retries). Terminal.
    Unverified,
    /// The authority went silent; claim-or-join runs again in 1.5 s.
    AuthorityLost,
    /// The host reset the room (clear ephemeral chat).
    Reset,
    /// We claimed the room id and now run the authority.
    BecameAuthority,
    /// As authority: a joiner knocked (admit or deny it by `conn`).
    Knock {
        /// The joiner's presence connection id.
        conn: String,
        /// Its name.
        name: String,
    },
    /// As authority: the identity gate refused a joiner (it was sent `lobby:'unverified'`).
    GateRefused {
        /// The joiner's presence connection id.
        conn: String,
        /// Why (Kibitz's reason string, e.g. "stale assertion"; never sent on the wire).
        reason: String,
    },
    /// A mesh link to a peer opened.
    LinkOpened {
        /// The peer's voiceId.
        peer: String,
    },
    /// A mesh link to a peer closed.
    LinkClosed {
        /// The peer's voiceId.
        peer: String,
    },
    /// No host appeared within [`SessionOptions::wait_for_host`](super::SessionOptions). Terminal.
    GaveUp,
    /// The session stopped; nothing follows.
    Left,
}

impl SessionEvent {
    /// Whether the session stops after this event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SessionEvent::Kicked
                | SessionEvent::Denied
                | SessionEvent::Locked
                | SessionEvent::Unverified
                | SessionEvent::GaveUp
                | SessionEvent::Left
        )
    }
}

/// A snapshot of a session's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionMetrics {
    /// DataConnection messages received (presence and mesh).
    pub frames_in: u64,
    /// DataConnection messages sent.
    pub frames_out: u64,
    /// Received messages that failed to decode or parse, dropped.
    pub garbage: u64,
    /// `caps` messages ignored by the acceptance rule.
    pub caps_rejected: u64,
    /// Chat lines dropped as duplicates.
    pub duplicates: u64,
    /// Content dropped because the sender lacks `send-chat` in our view.
    pub act_blocked: u64,
    /// Well-formed content we do not handle (other or unknown kinds, binary), dropped.
    pub ignored: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) garbage: AtomicU64,
    pub(crate) caps_rejected: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) act_blocked: AtomicU64,
    pub(crate) ignored: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SessionMetrics {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SessionMetrics {
            frames_in: g(&self.frames_in),
            frames_out: g(&self.frames_out),
            garbage: g(&self.garbage),
            caps_rejected: g(&self.caps_rejected),
            duplicates: g(&self.duplicates),
            act_blocked: g(&self.act_blocked),
            ignored: g(&self.ignored),
        }
    }
}
