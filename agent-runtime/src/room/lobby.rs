//! Lobby, lock and kick memory of one authority (kibitz-wire.md §4.4), as pure decisions.

use std::collections::HashSet;

/// The stable identity a `knock`/`voice` presents.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ident<'a> {
    pub(crate) token: Option<&'a str>,
    pub(crate) voice_id: Option<&'a str>,
}

impl<'a> Ident<'a> {
    pub(crate) fn new(token: Option<&'a str>, voice_id: Option<&'a str>) -> Self {
        // JS truthiness: an empty string is no identity.
        Self {
            token: token.filter(|s| !s.is_empty()),
            voice_id: voice_id.filter(|s| !s.is_empty()),
        }
    }
}

/// How a newcomer enters while the lobby is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A previously admitted token, or a grandfathered voiceId: straight in.
    Silent,
    /// Hold for the host.
    Queue,
}

/// Identity memory that outlives connections, for one authority's lifetime.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdentityMemory {
    /// Tokens the host admitted (re-admitted silently on reconnect).
    pub(crate) admitted_tokens: HashSet<String>,
    /// voiceIds inherited at a migration: they skip the lobby and the gate.
    pub(crate) grandfathered: HashSet<String>,
    /// Tokens of everyone who ever joined (a locked room still lets them back).
    pub(crate) seen_tokens: HashSet<String>,
    /// voiceIds of everyone who ever joined.
    pub(crate) seen_voice_ids: HashSet<String>,
    /// Kicked tokens.
    pub(crate) kicked_tokens: HashSet<String>,
    /// Kicked voiceIds.
    pub(crate) kicked_voice_ids: HashSet<String>,
}

impl IdentityMemory {
    /// `admitDecision`.
    pub(crate) fn entry(&self, who: Ident<'_>) -> Entry {
        if who.token.is_some_and(|t| self.admitted_tokens.contains(t)) {
            return Entry::Silent;
        }
        if who.voice_id.is_some_and(|v| self.grandfathered.contains(v)) {
            return Entry::Silent;
        }
        Entry::Queue
    }

    /// `isKicked`.
    pub(crate) fn is_kicked(&self, who: Ident<'_>) -> bool {
        who.token.is_some_and(|t| self.kicked_tokens.contains(t))
            || who
                .voice_id
                .is_some_and(|v| self.kicked_voice_ids.contains(v))
    }

    /// `lockedOut`: a locked room turns away identities never seen in this call.
    pub(crate) fn locked_out(&self, who: Ident<'_>) -> bool {
        if who.token.is_some_and(|t| self.seen_tokens.contains(t)) {
            return false;
        }
        if who
            .voice_id
            .is_some_and(|v| self.seen_voice_ids.contains(v))
        {
            return false;
        }
        true
    }
}

/// Someone waiting in the lobby (`Knocker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knocker {
    /// Name shown to the host (`'Guest'` when empty).
    pub name: String,
    /// Avatar (`''` when absent).
    pub avatar: String,
    /// Their stable token.
    pub token: Option<String>,
    /// Their voiceId, once they joined a call.
    pub voice_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_browser() {
        let mut m = IdentityMemory::default();
        let who = Ident::new(Some("tok"), Some("v1"));
        assert_eq!(m.entry(who), Entry::Queue);
        m.grandfathered.insert("v1".into());
        assert_eq!(m.entry(who), Entry::Silent);
        assert!(m.locked_out(who));
        m.seen_tokens.insert("tok".into());
        assert!(!m.locked_out(who));
        assert!(!m.is_kicked(who));
        m.kicked_voice_ids.insert("v1".into());
        assert!(m.is_kicked(who));
        // Empty strings never match.
        m.kicked_tokens.insert(String::new());
        assert!(!m.is_kicked(Ident::new(Some(""), None)));
    }
}
