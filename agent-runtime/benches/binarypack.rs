//! Micro-benchmark of the BinaryPack codec (plain `harness = false`, std::time only): prints MB/s
//! of encode and decode for a chat line and for a roster of 20 members.
//!
//! Run with `cargo bench -p agent-runtime --bench binarypack`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use agent_runtime::wire::binarypack::{decode, encode};
use agent_runtime::wire::content::{Chat, ContentMsg};
use agent_runtime::wire::presence::{AuthorityMsg, CallMember, EngineInfo, Roster};
use agent_runtime::wire::Value;

fn roster(n: usize) -> Value {
    let members = (0..n)
        .map(|i| CallMember {
            id: format!("{i:08x}-7c1e-4d7e-9a55-0123456789ab"),
            name: format!("Member {i}"),
            cam: i % 2 == 0,
            avatar: String::new(),
            meta: Some(Value::map([
                (
                    "role",
                    Value::from(if i % 5 == 0 { "agent" } else { "human" }),
                ),
                (
                    "~kbz",
                    EngineInfo {
                        version: Some("0.1.0".into()),
                        build: Some("dev".into()),
                        protocol: Some(1.0),
                        features: vec!["chat.v1".into(), "app.v1".into(), "caps.v1".into()],
                    }
                    .to_value(),
                ),
            ])),
        })
        .collect();
    AuthorityMsg::Roster(Roster {
        members,
        lobby: false,
        host: String::new(),
        locked: false,
    })
    .to_value()
}

/// Runs `f` repeatedly for about `budget`, returning iterations per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            f();
        }
        iters += 64;
    }
    iters as f64 / start.elapsed().as_secs_f64()
}

fn bench(name: &str, value: &Value) {
    let bytes = encode(value);
    let budget = Duration::from_millis(500);
    let enc = rate(budget, || {
        black_box(encode(black_box(value)));
    });
    let dec = rate(budget, || {
        let _ = black_box(decode(black_box(&bytes)));
    });
    let mb = |per_sec: f64| per_sec * bytes.len() as f64 / 1e6;
    println!(
        "{name:<12} {:>6} B  encode {:>9.1} MB/s ({:>10.0} msg/s)  decode {:>9.1} MB/s ({:>10.0} msg/s)",
        bytes.len(),
        mb(enc),
        enc,
        mb(dec),
        dec
    );
}

fn main() {
    let chat = ContentMsg::Chat(Chat::outgoing(
        "Could someone summarise the last five minutes?",
        "0a1b2c3d-7c1e-4d7e-9a55-0123456789ab",
        42,
        1_700_000_000_000,
        false,
    ))
    .to_value();
    bench("chat", &chat);
    bench("roster(20)", &roster(20));
}
