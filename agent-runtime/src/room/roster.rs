//! The authority's member table and small roster helpers.

use crate::wire::presence::{CallMember, Roster};

/// One roster slot, keyed by presence connection id (like the browser's `members` map).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slot {
    pub(crate) conn: String,
    pub(crate) member: CallMember,
    pub(crate) token: Option<String>,
}

/// Members in JS `Map` order: a re-`set` of an existing key keeps its position.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberTable {
    slots: Vec<Slot>,
}

impl MemberTable {
    pub(crate) fn upsert(&mut self, slot: Slot) {
        match self.slots.iter_mut().find(|s| s.conn == slot.conn) {
            Some(existing) => *existing = slot,
            None => self.slots.push(slot),
        }
    }

    /// Removes a connection's slot; true if there was one.
    pub(crate) fn remove(&mut self, conn: &str) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| s.conn != conn);
        self.slots.len() != before
    }

    /// Removes every other slot holding `token` (a reconnect under a new connection id).
    pub(crate) fn remove_token_except(&mut self, token: &str, keep_conn: &str) {
        self.slots
            .retain(|s| s.conn == keep_conn || s.token.as_deref() != Some(token));
    }

    pub(crate) fn get(&self, conn: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.conn == conn)
    }

    pub(crate) fn by_voice_id(&self, voice_id: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.member.id == voice_id)
    }

    pub(crate) fn contains_conn(&self, conn: &str) -> bool {
        self.get(conn).is_some()
    }

    pub(crate) fn conns(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.conn.as_str())
    }

    pub(crate) fn members(&self) -> Vec<CallMember> {
        self.slots.iter().map(|s| s.member.clone()).collect()
    }
}

/// True when `voice_id` is a member of `roster`.
pub fn roster_contains(roster: &Roster, voice_id: &str) -> bool {
    roster.members.iter().any(|m| m.id == voice_id)
}

/// Member ids that appear in `next` but not in `prev`, and those gone from `next`.
pub fn roster_diff<'a>(
    prev: &'a [CallMember],
    next: &'a [CallMember],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let joined = next
        .iter()
        .filter(|m| !prev.iter().any(|p| p.id == m.id))
        .map(|m| m.id.as_str())
        .collect();
    let left = prev
        .iter()
        .filter(|p| !next.iter().any(|m| m.id == p.id))
        .map(|p| p.id.as_str())
        .collect();
    (joined, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(conn: &str, id: &str, token: Option<&str>) -> Slot {
        Slot {
            conn: conn.into(),
            member: CallMember {
                id: id.into(),
                name: "n".into(),
                ..Default::default()
            },
            token: token.map(Into::into),
        }
    }

    #[test]
    fn upsert_keeps_insertion_position_and_token_dedupe_drops_stale() {
        let mut t = MemberTable::default();
        t.upsert(slot("a", "va", Some("ta")));
        t.upsert(slot("b", "vb", Some("tb")));
        t.upsert(slot("a", "va2", Some("ta")));
        let ids: Vec<_> = t.members().into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["va2", "vb"]);
        t.upsert(slot("c", "vb3", Some("tb")));
        t.remove_token_except("tb", "c");
        let ids: Vec<_> = t.members().into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["va2", "vb3"]);
        assert!(t.remove("a"));
        assert!(!t.remove("a"));
    }

    #[test]
    fn diff_reports_joined_and_left() {
        let a = CallMember {
            id: "a".into(),
            ..Default::default()
        };
        let b = CallMember {
            id: "b".into(),
            ..Default::default()
        };
        let c = CallMember {
            id: "c".into(),
            ..Default::default()
        };
        let (prev, next) = ([a.clone(), b], [a, c]);
        let (j, l) = roster_diff(&prev, &next);
        assert_eq!(j, ["c"]);
        assert_eq!(l, ["b"]);
    }
}
