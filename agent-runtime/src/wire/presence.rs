//! Presence-star messages (participant ⇄ authority), discriminated by `t`.
//!
//! Spec: kibitz-wire.md §4. Encoding follows the browser exactly: `knock`/`voice` carry every
//! optional key in the browser's order, nil when unset; decoding treats nil as absent.

use super::Value;

/// Participant → authority (`ClientWire`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientMsg {
    /// `{t:'knock', name, avatar, token, voiceId, jwt, agentAssertion, agentCredit}`.
    Knock(Knock),
    /// `{t:'voice', on, cam, name, avatar, voiceId, token, meta, jwt, agentAssertion, agentCredit}`.
    Voice(Voice),
    /// `{t:'ping'}`.
    Ping,
    /// `{t:'leave'}`.
    Leave,
    /// `{t:'mod', token}`: a signed host command.
    Mod {
        /// The signed command token.
        token: String,
    },
}

/// A knock: asks the authority for entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Knock {
    /// Display name (`'Guest'` when empty on the authority side).
    pub name: String,
    /// Avatar (usually `''`).
    pub avatar: Option<String>,
    /// Stable per-session token.
    pub token: Option<String>,
    /// Our media id once known.
    pub voice_id: Option<String>,
    /// Identity token.
    pub jwt: Option<String>,
    /// `kbz-agent-key.v1` assertion.
    pub agent_assertion: Option<String>,
    /// Agent credit credential.
    pub agent_credit: Option<String>,
}

/// A voice announce: joins (`on:true`) or leaves (`on:false`) the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Voice {
    /// Joining (`true`) or leaving.
    pub on: bool,
    /// Camera flag.
    pub cam: bool,
    /// Display name.
    pub name: String,
    /// Avatar.
    pub avatar: Option<String>,
    /// Media id (required when `on`).
    pub voice_id: Option<String>,
    /// Stable per-session token.
    pub token: Option<String>,
    /// Roster meta object (`role`, `backend`, `egress`, `~kbz`, …), passed through verbatim.
    pub meta: Option<Value>,
    /// Identity token.
    pub jwt: Option<String>,
    /// `kbz-agent-key.v1` assertion.
    pub agent_assertion: Option<String>,
    /// Agent credit credential.
    pub agent_credit: Option<String>,
}

/// Authority → participant (`AuthorityWire`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthorityMsg {
    /// `{t:'roster', members, lobby, host, locked}`.
    Roster(Roster),
    /// `{t:'ping'}`.
    Ping,
    /// `{t:'lobby', status}`.
    Lobby(LobbyStatus),
    /// `{t:'kick'}`.
    Kick,
    /// `{t:'reset'}`.
    Reset,
}

/// The roster broadcast.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Roster {
    /// Members in the call.
    pub members: Vec<CallMember>,
    /// Whether the lobby is on.
    pub lobby: bool,
    /// Verified host's voiceId, or `''`.
    pub host: String,
    /// Whether the room is locked.
    pub locked: bool,
}

/// One roster member (`CallMember`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallMember {
    /// The member's voiceId.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Camera flag.
    pub cam: bool,
    /// Avatar (`''` = initials).
    pub avatar: String,
    /// Meta object or nil.
    pub meta: Option<Value>,
}

/// Lobby statuses sent by the authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LobbyStatus {
    /// Held in the lobby.
    Waiting,
    /// Let in.
    Admitted,
    /// Refused by the host.
    Denied,
    /// The room is locked.
    Locked,
    /// Credential verification failed.
    Unverified,
}

impl LobbyStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            LobbyStatus::Waiting => "waiting",
            LobbyStatus::Admitted => "admitted",
            LobbyStatus::Denied => "denied",
            LobbyStatus::Locked => "locked",
            LobbyStatus::Unverified => "unverified",
        }
    }

    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "waiting" => LobbyStatus::Waiting,
            "admitted" => LobbyStatus::Admitted,
            "denied" => LobbyStatus::Denied,
            "locked" => LobbyStatus::Locked,
            "unverified" => LobbyStatus::Unverified,
            _ => return None,
        })
    }
}
