//! Our view of everyone's grant (kibitz-wire.md §7 `grantOf`): an override map (accepted `caps`,
//! or the authority's own map) over the per-kind defaults.

use std::collections::HashMap;

use capability_manifest::{Capability, Grant};

use crate::wire::presence::Roster;
use crate::wire::Value;

/// Override map plus defaults.
#[derive(Debug, Default)]
pub(crate) struct GrantView {
    overrides: HashMap<String, Grant>,
}

/// Whether a roster `meta` declares `role:'agent'`.
pub(crate) fn is_agent_meta(meta: Option<&Value>) -> bool {
    meta.and_then(|m| m.get("role")).and_then(Value::as_str) == Some("agent")
}

/// The per-kind default: agents get the read-only default plus their disclosure, humans all.
pub(crate) fn default_grant(meta: Option<&Value>) -> Grant {
    if !is_agent_meta(meta) {
        return Grant::full();
    }
    let mut g = Grant::agent_default();
    let backend = meta
        .and_then(|m| m.get("backend"))
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .map(|b| b.chars().take(80).collect::<String>());
    let egress = meta.and_then(|m| m.get("egress")).and_then(Value::as_bool) == Some(true);
    g.egress = egress || backend.is_some();
    g.backend = backend;
    g
}

impl GrantView {
    /// Replaces the whole override map with sanitized grants.
    pub(crate) fn replace(&mut self, grants: impl IntoIterator<Item = (String, Grant)>) {
        self.overrides = grants.into_iter().collect();
    }

    /// `grantOf(id)` at `now_sec`: the override (expiry applied) or the kind default.
    pub(crate) fn grant_of(&self, id: &str, roster: Option<&Roster>, now_sec: u64) -> Grant {
        if let Some(g) = self.overrides.get(id) {
            return g.effective(now_sec);
        }
        let meta = roster
            .and_then(|r| r.members.iter().find(|m| m.id == id))
            .and_then(|m| m.meta.as_ref());
        default_grant(meta)
    }

    /// Our own effective grant: the override for our voiceId, else our kind's default.
    pub(crate) fn own(&self, self_id: &str, own_meta: Option<&Value>, now_sec: u64) -> Grant {
        match self.overrides.get(self_id) {
            Some(g) => g.effective(now_sec),
            None => default_grant(own_meta),
        }
    }

    /// Whether content from `id` passes the receiver-side ACT gate (`send-chat`).
    pub(crate) fn may_send(&self, id: &str, roster: Option<&Roster>, now_sec: u64) -> bool {
        self.grant_of(id, roster, now_sec)
            .can_act(Capability::SendChat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::presence::CallMember;

    fn roster() -> Roster {
        Roster {
            members: vec![
                CallMember {
                    id: "a".into(),
                    meta: Some(Value::map([
                        ("role", Value::from("agent")),
                        ("backend", Value::from("m")),
                    ])),
                    ..CallMember::default()
                },
                CallMember {
                    id: "h".into(),
                    ..CallMember::default()
                },
            ],
            ..Roster::default()
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let mut v = GrantView::default();
        let r = roster();
        assert!(v.may_send("h", Some(&r), 0));
        assert!(!v.may_send("a", Some(&r), 0));
        let a = v.grant_of("a", Some(&r), 0);
        assert_eq!(a.backend.as_deref(), Some("m"));
        assert!(a.egress);
        let mut g = Grant::agent_default();
        g.act.push(Capability::SendChat);
        g.expires_at = Some(100);
        v.replace([("a".to_owned(), g)]);
        assert!(v.may_send("a", Some(&r), 99));
        assert!(!v.may_send("a", Some(&r), 100));
    }
}
