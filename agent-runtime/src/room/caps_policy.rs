//! Whether a received `{k:'caps'}` map is applied (kibitz-wire.md §7, kibitz-agents.md §6.4).

use std::collections::BTreeMap;

use crate::wire::presence::{CallMember, Roster};
use crate::wire::Value;

/// Protocol generation of a peer or room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// The frozen v0.1.0 build: caps accepted from `roster.host`, no tier check.
    Legacy,
    /// The current build: caps need a cryptographic host tier too.
    Current,
}

/// Heuristic generation of a peer from its roster meta's `~kbz` engine block: `f` containing
/// `xfer.v1`, or a numeric protocol `p`, means current; anything else (including no `~kbz` at
/// all) means legacy. Old engines sent only `{v, f}` without xfer tags; this is an inference
/// (kibitz-wire.md §6.6 calls it UNCONFIRMED), not a version field.
pub fn generation_of(meta: Option<&Value>) -> Generation {
    let Some(kbz) = meta.and_then(|m| m.get("~kbz")) else {
        return Generation::Legacy;
    };
    let has_p = kbz
        .get("p")
        .and_then(Value::as_f64)
        .is_some_and(f64::is_finite);
    let has_xfer = match kbz.get("f") {
        Some(Value::Array(tags)) => tags.iter().take(64).any(|t| t.as_str() == Some("xfer.v1")),
        _ => false,
    };
    if has_p || has_xfer {
        Generation::Current
    } else {
        Generation::Legacy
    }
}

/// The generation of the member with `voice_id` in `roster` (legacy when absent).
pub fn member_generation(roster: &Roster, voice_id: &str) -> Generation {
    let member: Option<&CallMember> = roster.members.iter().find(|m| m.id == voice_id);
    generation_of(member.and_then(|m| m.meta.as_ref()))
}

/// Why a `caps` message was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CapsRejected {
    /// The room has no committed host key or host email.
    HostTierNotCryptographic,
    /// `roster.host` is empty.
    NoHost,
    /// The sender is not `roster.host`.
    NotFromHost,
    /// We are the authority (we own the map).
    WeAreAuthority,
}

/// What the receiver knows when a `caps` arrives.
#[derive(Debug, Clone, Copy)]
pub struct CapsContext<'a> {
    /// The sender's generation (see [`generation_of`]).
    pub generation: Generation,
    /// The room's host tier is a committed key or email (`hostTierIsCryptographic`).
    pub host_tier_cryptographic: bool,
    /// `roster.host`.
    pub roster_host: &'a str,
    /// Whether we hold the authority role.
    pub we_are_authority: bool,
}

/// The acceptance rule, with counters of what it ignored.
#[derive(Debug, Clone, Default)]
pub struct CapsPolicy {
    rejected: BTreeMap<CapsRejected, u64>,
}

impl CapsPolicy {
    /// A policy with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides for a `caps` from link peer `from`. On `Ok` the receiver replaces its whole
    /// override map with the sanitized grants.
    pub fn check(&mut self, ctx: &CapsContext<'_>, from: &str) -> Result<(), CapsRejected> {
        let verdict = decide(ctx, from);
        if let Err(reason) = verdict {
            *self.rejected.entry(reason).or_default() += 1;
            tracing::debug!(from, ?reason, "caps ignored");
        }
        verdict
    }

    /// How many were ignored for `reason`.
    pub fn rejected(&self, reason: CapsRejected) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }

    /// How many were ignored in total.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

fn decide(ctx: &CapsContext<'_>, from: &str) -> Result<(), CapsRejected> {
    match ctx.generation {
        Generation::Legacy => {}
        Generation::Current => {
            if !ctx.host_tier_cryptographic {
                return Err(CapsRejected::HostTierNotCryptographic);
            }
        }
    }
    if ctx.roster_host.is_empty() {
        return Err(CapsRejected::NoHost);
    }
    if from != ctx.roster_host {
        return Err(CapsRejected::NotFromHost);
    }
    if ctx.generation == Generation::Current && ctx.we_are_authority {
        return Err(CapsRejected::WeAreAuthority);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kbz: Value) -> Value {
        Value::map([("role", Value::from("agent")), ("~kbz", kbz)])
    }

    #[test]
    fn generation_heuristic() {
        assert_eq!(generation_of(None), Generation::Legacy);
        let old = meta(Value::map([
            ("v", Value::from("0.1.0")),
            ("f", Value::Array(vec!["chat.v1".into()])),
        ]));
        assert_eq!(generation_of(Some(&old)), Generation::Legacy);
        let xfer = meta(Value::map([("f", Value::Array(vec!["xfer.v1".into()]))]));
        assert_eq!(generation_of(Some(&xfer)), Generation::Current);
        let p = meta(Value::map([("p", Value::Int(1))]));
        assert_eq!(generation_of(Some(&p)), Generation::Current);
    }

    #[test]
    fn current_needs_every_condition() {
        let mut pol = CapsPolicy::new();
        let ok = CapsContext {
            generation: Generation::Current,
            host_tier_cryptographic: true,
            roster_host: "h",
            we_are_authority: false,
        };
        assert_eq!(pol.check(&ok, "h"), Ok(()));
        assert_eq!(pol.check(&ok, "x"), Err(CapsRejected::NotFromHost));
        let soft = CapsContext {
            host_tier_cryptographic: false,
            ..ok
        };
        assert_eq!(
            pol.check(&soft, "h"),
            Err(CapsRejected::HostTierNotCryptographic)
        );
        let nohost = CapsContext {
            roster_host: "",
            ..ok
        };
        assert_eq!(pol.check(&nohost, "h"), Err(CapsRejected::NoHost));
        let auth = CapsContext {
            we_are_authority: true,
            ..ok
        };
        assert_eq!(pol.check(&auth, "h"), Err(CapsRejected::WeAreAuthority));
        assert_eq!(pol.rejected_total(), 4);
        assert_eq!(pol.rejected(CapsRejected::NotFromHost), 1);
    }

    #[test]
    fn legacy_skips_the_tier_check_but_not_the_host_check() {
        let mut pol = CapsPolicy::new();
        let ctx = CapsContext {
            generation: Generation::Legacy,
            host_tier_cryptographic: false,
            roster_host: "h",
            we_are_authority: false,
        };
        assert_eq!(pol.check(&ctx, "h"), Ok(()));
        assert_eq!(pol.check(&ctx, "z"), Err(CapsRejected::NotFromHost));
    }
}
