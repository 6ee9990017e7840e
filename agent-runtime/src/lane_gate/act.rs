//! The act side of the gate: which capabilities each kind of act needs.

use std::fmt;

use capability_manifest::Capability;

/// A kind of act an agent can attempt through its [`Context`](crate::agent::Context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActKind {
    /// Broadcast built-in chat (`say`).
    Say,
    /// A direct chat message to one participant (`say_to`).
    SayTo,
    /// Directed app data to one participant (`send_to`).
    SendTo,
    /// An `act` envelope on the app channel (`act`).
    Act,
    /// Publishing audio (`speak`).
    Speak,
}

/// Every act kind, in the order metrics list them.
pub const ALL_ACT_KINDS: [ActKind; 5] = [
    ActKind::Say,
    ActKind::SayTo,
    ActKind::SendTo,
    ActKind::Act,
    ActKind::Speak,
];

impl ActKind {
    pub(crate) fn index(self) -> usize {
        match self {
            ActKind::Say => 0,
            ActKind::SayTo => 1,
            ActKind::SendTo => 2,
            ActKind::Act => 3,
            ActKind::Speak => 4,
        }
    }

    /// A short name for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActKind::Say => "say",
            ActKind::SayTo => "say_to",
            ActKind::SendTo => "send_to",
            ActKind::Act => "act",
            ActKind::Speak => "speak",
        }
    }

    /// Every capability the act needs, checked in this order.
    ///
    /// Kibitz receivers drop **all** content (chat, `app`, schemas, transfers) from a sender
    /// whose grant lacks `send-chat` (kibitz-agents.md §1.6, receiver side), so:
    /// - `say`, `say_to`, `send_to` need `send-chat`;
    /// - `act` needs `act` **and** `send-chat` (the envelope rides on `k:'app'`);
    /// - `speak` needs `speak` (Kibitz does not enforce it; we do).
    pub const fn capabilities(self) -> &'static [Capability] {
        match self {
            ActKind::Say | ActKind::SayTo | ActKind::SendTo => &[Capability::SendChat],
            ActKind::Act => &[Capability::Act, Capability::SendChat],
            ActKind::Speak => &[Capability::Speak],
        }
    }
}

impl fmt::Display for ActKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an act did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActError {
    /// The effective grant lacks `cap`; nothing was put on the wire.
    #[error("{act} needs the {cap} capability, which the effective grant does not include")]
    NotGranted {
        /// The act attempted.
        act: ActKind,
        /// The first missing capability.
        cap: Capability,
    },
    /// The room connection refused or failed the send.
    #[error("room: {0}")]
    Port(#[from] crate::agent::PortError),
}
