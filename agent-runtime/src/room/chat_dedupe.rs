//! Public chat reconciliation (kibitz-wire.md §5.3–5.4): sender-scoped `mid`s, a bounded
//! duplicate filter, and our outgoing `mid` sequence.

use std::collections::{HashSet, VecDeque};

/// Default number of remembered lines.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Forces a live line's `mid` to be scoped to its link peer `from`: a `mid` that doesn't start
/// with `"<from>#"` is replaced by `"<from>#~<mid>"` (deterministic, so replays of the same
/// forged id still dedupe, and it can never collide with a genuine `"<from>#<n>"`).
/// No `mid` stays `None`.
pub fn scope_mid(from: &str, mid: Option<&str>) -> Option<String> {
    let mid = mid.filter(|m| !m.is_empty())?;
    let prefix_ok = mid
        .strip_prefix(from)
        .is_some_and(|rest| rest.starts_with('#'));
    Some(if prefix_ok {
        mid.to_owned()
    } else {
        format!("{from}#~{mid}")
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Mid(String),
    Legacy {
        from: String,
        text: String,
        ts: Option<u64>,
    },
}

/// The verdict for one received chat line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatVerdict {
    /// First time seen; `mid` is the (scoped) id to store it under, if any.
    New {
        /// The sender-scoped `mid`.
        mid: Option<String>,
    },
    /// Already seen: drop it.
    Duplicate,
}

/// A bounded (LRU by insertion) set of seen chat lines.
#[derive(Debug, Clone)]
pub struct ChatDedupe {
    cap: usize,
    seen: HashSet<Key>,
    order: VecDeque<Key>,
    duplicates: u64,
}

impl Default for ChatDedupe {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl ChatDedupe {
    /// A filter remembering at most `capacity` lines (at least 1).
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(1);
        Self {
            cap,
            seen: HashSet::new(),
            order: VecDeque::new(),
            duplicates: 0,
        }
    }

    /// Checks one line received on link peer `link_peer`. `replay_from` is the payload's `from`
    /// (present only on replayed history, whose `mid` belongs to that original author); live
    /// lines get their `mid` sender-scoped. Lines without `mid` dedupe by `(from, text, ts)`.
    pub fn observe(
        &mut self,
        link_peer: &str,
        replay_from: Option<&str>,
        mid: Option<&str>,
        text: &str,
        ts: Option<f64>,
    ) -> ChatVerdict {
        let author = replay_from.filter(|f| !f.is_empty()).unwrap_or(link_peer);
        let mid = match replay_from {
            Some(_) => mid.filter(|m| !m.is_empty()).map(str::to_owned),
            None => scope_mid(link_peer, mid),
        };
        let key = match &mid {
            Some(m) => Key::Mid(m.clone()),
            None => Key::Legacy {
                from: author.to_owned(),
                text: text.to_owned(),
                ts: ts.filter(|t| t.is_finite() && *t >= 0.0).map(|t| t as u64),
            },
        };
        if self.seen.contains(&key) {
            self.duplicates += 1;
            return ChatVerdict::Duplicate;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        ChatVerdict::New { mid }
    }

    /// Duplicates dropped so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Lines remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Our outgoing `mid`s: `"<voiceId>#<n>"`, `n` counting from 1.
#[derive(Debug, Clone)]
pub struct MidSequence {
    voice_id: String,
    next: u64,
}

impl MidSequence {
    /// A sequence for our voiceId.
    pub fn new(voice_id: impl Into<String>) -> Self {
        Self {
            voice_id: voice_id.into(),
            next: 1,
        }
    }

    /// The next `mid`.
    pub fn next_mid(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        format!("{}#{n}", self.voice_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoping() {
        assert_eq!(scope_mid("v1", Some("v1#3")).as_deref(), Some("v1#3"));
        assert_eq!(scope_mid("v1", Some("v2#3")).as_deref(), Some("v1#~v2#3"));
        assert_eq!(scope_mid("v1", Some("v1x#3")).as_deref(), Some("v1#~v1x#3"));
        assert_eq!(scope_mid("v1", None), None);
    }

    #[test]
    fn replays_dedupe_and_capacity_evicts_oldest() {
        let mut d = ChatDedupe::new(2);
        assert!(matches!(
            d.observe("a", None, Some("a#1"), "hi", Some(1.0)),
            ChatVerdict::New { .. }
        ));
        assert_eq!(
            d.observe("a", None, Some("a#1"), "hi", Some(1.0)),
            ChatVerdict::Duplicate
        );
        // A holder replays a's line on behalf of a.
        assert_eq!(
            d.observe("b", Some("a"), Some("a#1"), "hi", Some(1.0)),
            ChatVerdict::Duplicate
        );
        // A forged live mid from b cannot shadow a's line.
        assert!(matches!(
            d.observe("b", None, Some("a#2"), "x", None),
            ChatVerdict::New { .. }
        ));
        assert!(matches!(
            d.observe("a", None, Some("a#2"), "y", None),
            ChatVerdict::New { .. }
        ));
        assert_eq!(d.len(), 2);
        // a#1 was evicted.
        assert!(matches!(
            d.observe("a", None, Some("a#1"), "hi", Some(1.0)),
            ChatVerdict::New { .. }
        ));
        // Old peers without mid: (from, text, ts).
        assert!(matches!(
            d.observe("c", None, None, "t", Some(5.0)),
            ChatVerdict::New { mid: None }
        ));
        assert_eq!(
            d.observe("c", None, None, "t", Some(5.0)),
            ChatVerdict::Duplicate
        );
        assert_eq!(d.duplicates(), 3);
    }

    #[test]
    fn mid_sequence() {
        let mut s = MidSequence::new("vx");
        assert_eq!(s.next_mid(), "vx#1");
        assert_eq!(s.next_mid(), "vx#2");
    }
}
