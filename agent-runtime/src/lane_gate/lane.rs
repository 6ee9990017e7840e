//! Perception lanes and which capabilities each event needs (kibitz-agents.md §1.2, §1.6).

use std::fmt;

use capability_manifest::Capability;

use crate::agent::AgentEvent;

/// A perception lane: a class of events bound for an agent, counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LaneKind {
    /// Roster snapshots (`read-roster`).
    Roster,
    /// Built-in chat, broadcast (`read-chat`) or direct (`read-chat` + `receive-directed`).
    Chat,
    /// App data sent to us only (`receive-directed`).
    Directed,
    /// Broadcast app data and app views (`read-chat`: Kibitz gates `app` broadcasts like chat;
    /// UNCONFIRMED in the spec).
    App,
    /// Schema publications (`read-chat`, like other broadcasts; UNCONFIRMED in the spec).
    Schema,
    /// Per-speaker microphone audio (`hear-audio`).
    Audio,
    /// Screen-share video and its audio (`see-screen`).
    Screen,
    /// Grant changes and lobby status: about the agent itself, never gated.
    Control,
}

/// Every lane, in the order metrics list them.
pub const ALL_LANES: [LaneKind; 8] = [
    LaneKind::Roster,
    LaneKind::Chat,
    LaneKind::Directed,
    LaneKind::App,
    LaneKind::Schema,
    LaneKind::Audio,
    LaneKind::Screen,
    LaneKind::Control,
];

impl LaneKind {
    pub(crate) fn index(self) -> usize {
        match self {
            LaneKind::Roster => 0,
            LaneKind::Chat => 1,
            LaneKind::Directed => 2,
            LaneKind::App => 3,
            LaneKind::Schema => 4,
            LaneKind::Audio => 5,
            LaneKind::Screen => 6,
            LaneKind::Control => 7,
        }
    }

    /// A short name for logs (`"audio"`, `"chat"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            LaneKind::Roster => "roster",
            LaneKind::Chat => "chat",
            LaneKind::Directed => "directed",
            LaneKind::App => "app",
            LaneKind::Schema => "schema",
            LaneKind::Audio => "audio",
            LaneKind::Screen => "screen",
            LaneKind::Control => "control",
        }
    }

    /// The capabilities a subscription to this lane needs (empty for [`LaneKind::Control`]).
    pub const fn capabilities(self) -> &'static [Capability] {
        match self {
            LaneKind::Roster => &[Capability::ReadRoster],
            LaneKind::Chat | LaneKind::App | LaneKind::Schema => &[Capability::ReadChat],
            LaneKind::Directed => &[Capability::ReceiveDirected],
            LaneKind::Audio => &[Capability::HearAudio],
            LaneKind::Screen => &[Capability::SeeScreen],
            LaneKind::Control => &[],
        }
    }

    /// Whether the host sheds frames of this lane when the agent falls behind (media only).
    pub const fn is_sheddable(self) -> bool {
        matches!(self, LaneKind::Audio | LaneKind::Screen)
    }
}

impl fmt::Display for LaneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the gate sees one event: its lane, every capability it needs, and its payload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class {
    pub(crate) lane: LaneKind,
    pub(crate) needs: &'static [Capability],
    pub(crate) bytes: u64,
}

/// Classify an event for the gate.
///
/// Mapping (the receiving side of kibitz-agents.md §1.6, enforced locally as well):
/// - roster → `read-roster`;
/// - broadcast chat → `read-chat`; a DM (`dm: true`) → `read-chat` **and** `receive-directed`
///   (Kibitz requires the kind's capability and `receive-directed` for any directed send);
/// - directed app data → `receive-directed`;
/// - broadcast app data, app views and schemas → `read-chat` (the spec leaves the `app` and
///   `schema` broadcast gate UNCONFIRMED; `read-chat` is what `broadcastContent` applies);
/// - audio → `hear-audio`; screen video → `see-screen`;
/// - grant changes and lobby status → nothing (they are about the agent itself).
pub(crate) fn classify(ev: &AgentEvent) -> Class {
    const DM: &[Capability] = &[Capability::ReadChat, Capability::ReceiveDirected];
    let class = |lane: LaneKind, bytes: usize| Class {
        lane,
        needs: lane.capabilities(),
        bytes: bytes as u64,
    };
    match ev {
        AgentEvent::Roster(_) => class(LaneKind::Roster, 0),
        AgentEvent::Chat { text, dm, .. } => Class {
            lane: LaneKind::Chat,
            needs: if *dm {
                DM
            } else {
                LaneKind::Chat.capabilities()
            },
            bytes: text.len() as u64,
        },
        AgentEvent::Directed { data, .. } => class(LaneKind::Directed, json_len(data)),
        AgentEvent::App { data, .. } => class(LaneKind::App, json_len(data)),
        AgentEvent::AppView { view, .. } => class(LaneKind::App, json_len(view)),
        AgentEvent::Schema { schema, .. } => class(LaneKind::Schema, json_len(schema)),
        AgentEvent::Audio(frame) => class(LaneKind::Audio, frame.pcm.len() * 2),
        AgentEvent::Screen(frame) => class(LaneKind::Screen, frame.data.len()),
        AgentEvent::GrantChanged { .. } | AgentEvent::Lobby(_) => class(LaneKind::Control, 0),
    }
}

fn json_len(v: &serde_json::Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0)
}
