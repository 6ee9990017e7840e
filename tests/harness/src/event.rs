//! Events streamed by the browser harness.

use std::fmt;

use serde_json::Value;

/// One page event: `{"ev":"<kind>","peer":"<browser peer>",...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event kind: `opened`, `authority`, `participant`, `knock`, `lobby`, `roster`,
    /// `chat`, `blocked`, `caps`, `link`, `granted`, `kicked`, `left`, `error`, ...
    pub ev: String,
    /// The browser peer that saw it (the name given to `open`).
    pub peer: String,
    /// The whole event object.
    pub body: Value,
}

impl Event {
    /// Build from a harness line; `None` unless it has `ev`.
    pub(crate) fn from_json(body: Value) -> Option<Self> {
        let ev = body.get("ev")?.as_str()?.to_owned();
        let peer = body
            .get("peer")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some(Self { ev, peer, body })
    }

    /// A field of the event.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.body.get(key)
    }

    /// A string field of the event.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// True if this is event `ev` seen by `peer`.
    pub fn is(&self, peer: &str, ev: &str) -> bool {
        self.peer == peer && self.ev == ev
    }

    /// Roster member ids of a `roster` event (empty for other events).
    pub fn member_ids(&self) -> Vec<&str> {
        self.members()
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .collect()
    }

    /// Roster members of a `roster` event (empty for other events).
    pub fn members(&self) -> &[Value] {
        self.body
            .get("members")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.body.to_string();
        if text.len() > 400 {
            let mut cut = 400;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        write!(f, "{text}")
    }
}
