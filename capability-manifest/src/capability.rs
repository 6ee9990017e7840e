//! The closed set of Kibitz capability names (agents spec §1.2).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One Kibitz capability. The serialised names are exactly Kibitz's (`see-screen`, `send-chat`, …).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Capability {
    /// `see-screen`: receive the screen-share lane (video and its audio).
    #[serde(rename = "see-screen")]
    SeeScreen,
    /// `hear-audio`: receive the microphone audio lane.
    #[serde(rename = "hear-audio")]
    HearAudio,
    /// `read-chat`: receive broadcast text content.
    #[serde(rename = "read-chat")]
    ReadChat,
    /// `read-roster`: see the roster (not enforced by Kibitz).
    #[serde(rename = "read-roster")]
    ReadRoster,
    /// `receive-directed`: receive point-to-point data (`sendTo`, DMs).
    #[serde(rename = "receive-directed")]
    ReceiveDirected,
    /// `read-media`: receive images.
    #[serde(rename = "read-media")]
    ReadMedia,
    /// `read-files`: receive file transfers.
    #[serde(rename = "read-files")]
    ReadFiles,
    /// `send-chat`: emit any content kind except `idtoken` and `caps`.
    #[serde(rename = "send-chat")]
    SendChat,
    /// `speak`: publish audio (not enforced by Kibitz).
    #[serde(rename = "speak")]
    Speak,
    /// `act`: app actions (not enforced by Kibitz).
    #[serde(rename = "act")]
    Act,
}

/// Kibitz's canonical order of the perceive capabilities (`ALL_PERCEIVE`).
pub const ALL_PERCEIVE: [Capability; 7] = [
    Capability::SeeScreen,
    Capability::HearAudio,
    Capability::ReadChat,
    Capability::ReadRoster,
    Capability::ReceiveDirected,
    Capability::ReadMedia,
    Capability::ReadFiles,
];

/// Kibitz's canonical order of the act capabilities (`ALL_ACT`).
pub const ALL_ACT: [Capability; 3] = [Capability::SendChat, Capability::Speak, Capability::Act];

/// All ten capabilities: [`ALL_PERCEIVE`] then [`ALL_ACT`].
pub const ALL_CAPABILITIES: [Capability; 10] = [
    Capability::SeeScreen,
    Capability::HearAudio,
    Capability::ReadChat,
    Capability::ReadRoster,
    Capability::ReceiveDirected,
    Capability::ReadMedia,
    Capability::ReadFiles,
    Capability::SendChat,
    Capability::Speak,
    Capability::Act,
];

/// Which of a grant's two lists a capability belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapabilityKind {
    /// Content flowing to the participant (`perceive`).
    Perceive,
    /// What the participant may emit (`act`).
    Act,
}

impl Capability {
    /// The exact Kibitz name, e.g. `"hear-audio"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::SeeScreen => "see-screen",
            Capability::HearAudio => "hear-audio",
            Capability::ReadChat => "read-chat",
            Capability::ReadRoster => "read-roster",
            Capability::ReceiveDirected => "receive-directed",
            Capability::ReadMedia => "read-media",
            Capability::ReadFiles => "read-files",
            Capability::SendChat => "send-chat",
            Capability::Speak => "speak",
            Capability::Act => "act",
        }
    }

    /// Parse an exact Kibitz name; `None` for anything else (names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Capability> {
        ALL_CAPABILITIES.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether this is a perceive or an act capability.
    pub const fn kind(self) -> CapabilityKind {
        match self {
            Capability::SendChat | Capability::Speak | Capability::Act => CapabilityKind::Act,
            _ => CapabilityKind::Perceive,
        }
    }

    /// True for the seven perceive capabilities.
    pub const fn is_perceive(self) -> bool {
        matches!(self.kind(), CapabilityKind::Perceive)
    }

    /// True for the three act capabilities.
    pub const fn is_act(self) -> bool {
        matches!(self.kind(), CapabilityKind::Act)
    }

    /// The chip label the Kibitz consent panel shows (agents spec §2.3).
    pub const fn label(self) -> &'static str {
        match self {
            Capability::SeeScreen => "see screen",
            Capability::HearAudio => "hear audio",
            Capability::ReadChat => "read chat",
            Capability::ReadRoster => "see who\u{2019}s here",
            Capability::ReceiveDirected => "private data",
            Capability::ReadMedia => "see shared images",
            Capability::ReadFiles => "receive files",
            Capability::SendChat => "post chat",
            Capability::Speak => "speak",
            Capability::Act => "act / control",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown capability name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?}")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::from_name(s).ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_kinds() {
        for c in ALL_CAPABILITIES {
            assert_eq!(Capability::from_name(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert!(ALL_PERCEIVE.iter().all(|c| c.is_perceive()));
        assert!(ALL_ACT.iter().all(|c| c.is_act()));
        assert_eq!(Capability::from_name("Read-Chat"), None);
        assert!("talk".parse::<Capability>().is_err());
        let names: Vec<&str> = ALL_PERCEIVE.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "see-screen",
                "hear-audio",
                "read-chat",
                "read-roster",
                "receive-directed",
                "read-media",
                "read-files"
            ]
        );
    }
}
