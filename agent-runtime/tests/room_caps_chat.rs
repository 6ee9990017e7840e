//! `caps` acceptance against real rosters, and chat reconciliation of replayed lines.

use agent_runtime::room::{
    member_generation, CapsContext, CapsPolicy, CapsRejected, ChatDedupe, ChatVerdict, Generation,
    MidSequence,
};
use agent_runtime::wire::presence::{CallMember, Roster};
use agent_runtime::wire::Value;

fn member(id: &str, kbz: Option<Value>) -> CallMember {
    let meta = kbz.map(|k| Value::map([("~kbz", k)]));
    CallMember {
        id: id.into(),
        name: id.into(),
        meta,
        ..Default::default()
    }
}

fn current_kbz() -> Value {
    Value::map([
        ("v", Value::from("0.1.0")),
        ("p", Value::Int(1)),
        ("f", Value::Array(vec!["xfer.v1".into()])),
    ])
}

#[test]
fn caps_from_a_non_host_are_ignored_and_counted() {
    let roster = Roster {
        members: vec![
            member("host", Some(current_kbz())),
            member("mallory", Some(current_kbz())),
        ],
        host: "host".into(),
        ..Default::default()
    };
    let mut policy = CapsPolicy::new();
    let ctx = |from: &str| CapsContext {
        generation: member_generation(&roster, from),
        host_tier_cryptographic: true,
        roster_host: &roster.host,
        we_are_authority: false,
    };
    assert_eq!(
        policy.check(&ctx("mallory"), "mallory"),
        Err(CapsRejected::NotFromHost)
    );
    assert_eq!(
        policy.check(&ctx("mallory"), "mallory"),
        Err(CapsRejected::NotFromHost)
    );
    assert_eq!(policy.check(&ctx("host"), "host"), Ok(()));
    assert_eq!(policy.rejected(CapsRejected::NotFromHost), 2);

    // A soft-name (non-cryptographic) room never accepts, even from the host.
    let soft = CapsContext {
        host_tier_cryptographic: false,
        ..ctx("host")
    };
    assert_eq!(
        policy.check(&soft, "host"),
        Err(CapsRejected::HostTierNotCryptographic)
    );
    assert_eq!(policy.rejected_total(), 3);
}

#[test]
fn legacy_host_is_trusted_without_the_tier_check() {
    let roster = Roster {
        members: vec![member("old-host", None)],
        host: "old-host".into(),
        ..Default::default()
    };
    assert_eq!(member_generation(&roster, "old-host"), Generation::Legacy);
    let mut policy = CapsPolicy::new();
    let ctx = CapsContext {
        generation: Generation::Legacy,
        host_tier_cryptographic: false,
        roster_host: &roster.host,
        we_are_authority: false,
    };
    assert_eq!(policy.check(&ctx, "old-host"), Ok(()));
    assert_eq!(policy.check(&ctx, "other"), Err(CapsRejected::NotFromHost));
}

#[test]
fn replayed_chat_is_deduplicated() {
    let mut d = ChatDedupe::default();
    let mut seq = MidSequence::new("alice");
    let mid = seq.next_mid();
    assert_eq!(mid, "alice#1");
    // Live from alice, then re-broadcast by alice on a roster change, then replayed by bob.
    assert_eq!(
        d.observe("alice", None, Some(&mid), "hello", Some(1000.0)),
        ChatVerdict::New {
            mid: Some(mid.clone())
        }
    );
    assert_eq!(
        d.observe("alice", None, Some(&mid), "hello", Some(1000.0)),
        ChatVerdict::Duplicate
    );
    assert_eq!(
        d.observe("bob", Some("alice"), Some(&mid), "hello", Some(1000.0)),
        ChatVerdict::Duplicate
    );
    // Bob cannot inject a line under alice's id: his mid is re-scoped to him.
    assert_eq!(
        d.observe("bob", None, Some("alice#2"), "spoof", None),
        ChatVerdict::New {
            mid: Some("bob#~alice#2".into())
        }
    );
    assert_eq!(d.duplicates(), 2);
}
