//! The harness proves itself with real components: the npm `peer` broker and two
//! headless Chromium Kibitz participants talking BinaryPack over PeerJS.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use kibitz_test_harness::{Browser, BrowserOptions, Event, PeerJsServer, PeerOptions, Role};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

async fn setup() -> Result<(PeerJsServer, Browser)> {
    let broker = PeerJsServer::start().await?;
    let browser = Browser::launch(BrowserOptions::default()).await?;
    Ok((broker, browser))
}

/// Wait until `peer` sees a roster whose member ids are exactly `ids` (any order).
async fn roster_of(browser: &Browser, peer: &str, ids: &[&str]) -> Result<Event> {
    let mut want: Vec<&str> = ids.to_vec();
    want.sort_unstable();
    browser
        .wait_for(
            peer,
            "roster",
            |e| {
                let mut got = e.member_ids();
                got.sort_unstable();
                got == want
            },
            WAIT,
        )
        .await
}

async fn link_open(browser: &Browser, peer: &str, to: &str) -> Result<Event> {
    browser
        .wait_for(
            peer,
            "link",
            |e| {
                e.str("remote") == Some(to)
                    && e.str("state") == Some("open")
                    && e.str("label") == Some("sig")
            },
            WAIT,
        )
        .await
}

fn member<'a>(roster: &'a Event, id: &str) -> Result<&'a Value> {
    roster
        .members()
        .iter()
        .find(|m| m.get("id").and_then(Value::as_str) == Some(id))
        .with_context(|| format!("{id} not in roster {roster}"))
}

#[tokio::test]
async fn lobby_knock_admit_roster_and_chat_both_ways() -> Result<()> {
    let (broker, browser) = setup().await?;
    let alice = browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "Stand Up!", "Alice", &broker).lobby(true),
        )
        .await?;
    ensure!(alice.authority, "host must own the room");
    ensure!(
        alice.presence_id == "kbz-v1-stand-up",
        "authority id {}",
        alice.presence_id
    );

    let bob = browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, "Stand Up!", "Bob", &broker),
        )
        .await?;
    ensure!(!bob.authority, "participant must join, not claim");

    // The knock reaches the host under Bob's presence (connection) id; Bob waits.
    let knock = browser
        .wait_for("alice", "knock", |e| e.str("name") == Some("Bob"), WAIT)
        .await?;
    ensure!(
        knock.str("id") == Some(bob.presence_id.as_str()),
        "knock id {knock}"
    );
    browser
        .wait_for("bob", "lobby", |e| e.str("status") == Some("waiting"), WAIT)
        .await?;
    // While waiting, Bob must not be in anyone's roster.
    let before = browser.cursor();
    browser
        .expect_no_event(
            before,
            |e| e.ev == "roster" && e.member_ids().contains(&bob.voice_id.as_str()),
            Duration::from_secs(2),
        )
        .await?;

    browser.admit("alice", "Bob").await?;
    browser
        .wait_for(
            "bob",
            "lobby",
            |e| e.str("status") == Some("admitted"),
            WAIT,
        )
        .await?;
    let ids = [alice.voice_id.as_str(), bob.voice_id.as_str()];
    let at_alice = roster_of(&browser, "alice", &ids).await?;
    let at_bob = roster_of(&browser, "bob", &ids).await?;
    for r in [&at_alice, &at_bob] {
        ensure!(r.get("lobby") == Some(&json!(true)), "lobby flag {r}");
        ensure!(
            r.get("host") == Some(&json!("")),
            "no verified host in an open room: {r}"
        );
        let b = member(r, &bob.voice_id)?;
        ensure!(b.get("name") == Some(&json!("Bob")), "{b}");
        ensure!(b.get("cam") == Some(&json!(false)), "{b}");
        ensure!(
            b.pointer("/meta/~kbz")
                == Some(&json!({"v":"0.1.0","b":"test","p":1,"f":["chat.v1","caps.v1"]})),
            "engine block {b}"
        );
        ensure!(
            b.pointer("/meta/role").is_none(),
            "a human has no role: {b}"
        );
    }

    // Data mesh: the smaller voiceId dials.
    link_open(&browser, "alice", &bob.voice_id).await?;
    link_open(&browser, "bob", &alice.voice_id).await?;
    let dialler = if alice.voice_id < bob.voice_id {
        "alice"
    } else {
        "bob"
    };
    let dialled = browser
        .wait_for(
            dialler,
            "link",
            |e| e.str("state") == Some("open") && e.str("label") == Some("sig"),
            WAIT,
        )
        .await?;
    ensure!(
        dialled.get("initiator") == Some(&json!(true)),
        "glare rule: {dialled}"
    );

    // Both sides heartbeat the sig link with `mh` (zeros without media).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let st = browser.state("alice").await?;
        let health = st["links"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["peer"] == json!(bob.voice_id)))
            .map(|x| x["health"].clone());
        if health == Some(json!({"v":0,"a":0,"ov":0,"oa":0})) {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no mh from bob: {st}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let sent = browser.chat("alice", "hello bob").await?;
    ensure!(
        sent["sent"] == json!([bob.voice_id]),
        "humans read chat: {sent}"
    );
    let got = browser
        .wait_for("bob", "chat", |e| e.str("text") == Some("hello bob"), WAIT)
        .await?;
    ensure!(got.str("from") == Some(alice.voice_id.as_str()), "{got}");
    ensure!(got.str("name") == Some("Alice"), "{got}");
    ensure!(
        got.str("mid") == Some(format!("{}#1", alice.voice_id).as_str()),
        "{got}"
    );

    browser.chat("bob", "hi alice").await?;
    let got = browser
        .wait_for("alice", "chat", |e| e.str("text") == Some("hi alice"), WAIT)
        .await?;
    ensure!(got.str("from") == Some(bob.voice_id.as_str()), "{got}");

    // A direct line is flagged dm and goes only to its target.
    browser.chat_to("bob", "Alice", "psst").await?;
    let got = browser
        .wait_for("alice", "chat", |e| e.str("text") == Some("psst"), WAIT)
        .await?;
    ensure!(got.get("dm") == Some(&json!(true)), "{got}");

    browser.shutdown().await
}

#[tokio::test]
async fn agent_chat_is_dropped_until_the_host_grants_send_chat() -> Result<()> {
    let (broker, browser) = setup().await?;
    let alice = browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "agents", "Alice", &broker).crypto_host(true),
        )
        .await?;
    let bot = browser
        .open_peer(
            "bot",
            &PeerOptions::new(Role::Participant, "agents", "Bot", &broker)
                .crypto_host(true)
                .agent(),
        )
        .await?;
    let ids = [alice.voice_id.as_str(), bot.voice_id.as_str()];
    let r = roster_of(&browser, "bot", &ids).await?;
    ensure!(
        r.str("host") == Some(alice.voice_id.as_str()),
        "crypto host is verified: {r}"
    );
    ensure!(
        member(&r, &bot.voice_id)?.pointer("/meta/role") == Some(&json!("agent")),
        "{r}"
    );
    roster_of(&browser, "alice", &ids).await?;
    link_open(&browser, "alice", &bot.voice_id).await?;
    link_open(&browser, "bot", &alice.voice_id).await?;

    // Read-only by default: the agent reads chat...
    browser.chat("alice", "welcome bot").await?;
    browser
        .wait_for(
            "bot",
            "chat",
            |e| e.str("text") == Some("welcome bot"),
            WAIT,
        )
        .await?;
    // ...but what it says is dropped by the ACT gate and audited.
    let mark = browser.cursor();
    browser.chat("bot", "can you hear me").await?;
    let blocked = browser
        .wait_for(
            "alice",
            "blocked",
            |e| e.str("from") == Some(bot.voice_id.as_str()),
            WAIT,
        )
        .await?;
    ensure!(blocked.str("kind") == Some("chat"), "{blocked}");
    ensure!(blocked.get("agent") == Some(&json!(true)), "{blocked}");
    browser
        .expect_no_event(
            mark,
            |e| e.is("alice", "chat") && e.str("text") == Some("can you hear me"),
            Duration::from_secs(1),
        )
        .await?;
    let st = browser.state("alice").await?;
    ensure!(
        st["audit"].as_array().is_some_and(|a| a
            .iter()
            .any(|x| x["kind"] == "blocked" && x["detail"] == "chat")),
        "audit {st}"
    );

    // The host grants send-chat; caps reach the agent and it accepts them (crypto host).
    let grant =
        json!({"perceive":["read-chat","read-roster","receive-directed"],"act":["send-chat"]});
    let res = browser.grant("alice", &bot.voice_id, grant.clone()).await?;
    ensure!(res["distributed"] == json!(true), "{res}");
    let caps = browser
        .wait_for(
            "bot",
            "caps",
            |e| e.get("accepted") == Some(&json!(true)),
            WAIT,
        )
        .await?;
    ensure!(caps.str("from") == Some(alice.voice_id.as_str()), "{caps}");
    ensure!(
        caps.get("grants").and_then(|g| g.get(&bot.voice_id)) == Some(&grant),
        "{caps}"
    );

    browser.chat("bot", "thanks, host").await?;
    let got = browser
        .wait_for(
            "alice",
            "chat",
            |e| e.str("text") == Some("thanks, host"),
            WAIT,
        )
        .await?;
    ensure!(got.str("from") == Some(bot.voice_id.as_str()), "{got}");

    browser.shutdown().await
}

#[tokio::test]
async fn caps_are_ignored_without_a_cryptographic_host() -> Result<()> {
    let (broker, browser) = setup().await?;
    let alice = browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "open-room", "Alice", &broker),
        )
        .await?;
    let bot = browser
        .open_peer(
            "bot",
            &PeerOptions::new(Role::Participant, "open-room", "Bot", &broker).agent(),
        )
        .await?;
    let r = roster_of(&browser, "bot", &[&alice.voice_id, &bot.voice_id]).await?;
    ensure!(
        r.str("host") == Some(""),
        "open room has no verified host: {r}"
    );
    link_open(&browser, "bot", &alice.voice_id).await?;
    link_open(&browser, "alice", &bot.voice_id).await?;

    browser
        .grant(
            "alice",
            "Bot",
            json!({"perceive":["read-chat","hear-audio"],"act":["send-chat"]}),
        )
        .await?;
    let caps = browser.wait_for("bot", "caps", |_| true, WAIT).await?;
    ensure!(caps.get("accepted") == Some(&json!(false)), "{caps}");
    // The host's own local grant still lets the agent's chat through at the host.
    browser.chat("bot", "local grant works").await?;
    browser
        .wait_for(
            "alice",
            "chat",
            |e| e.str("text") == Some("local grant works"),
            WAIT,
        )
        .await?;
    let st = browser.state("bot").await?;
    ensure!(st["overrides"] == json!({}), "nothing accepted: {st}");

    browser.shutdown().await
}

#[tokio::test]
async fn participant_reclaims_the_room_when_the_host_leaves() -> Result<()> {
    let (broker, browser) = setup().await?;
    let alice = browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "migrate", "Alice", &broker),
        )
        .await?;
    let bob = browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, "migrate", "Bob", &broker),
        )
        .await?;
    roster_of(
        &browser,
        "bob",
        &[alice.voice_id.as_str(), bob.voice_id.as_str()],
    )
    .await?;

    let mark = browser.cursor();
    browser.leave("alice").await?;
    let took = browser
        .wait_event_since(mark, |e| e.is("bob", "authority"), Duration::from_secs(30))
        .await?;
    ensure!(took.str("presenceId") == Some("kbz-v1-migrate"), "{took}");
    // The new authority starts fresh and rebuilds the roster from its own announce.
    let r = browser
        .wait_event_since(
            mark,
            |e| e.is("bob", "roster") && e.member_ids() == [bob.voice_id.as_str()],
            WAIT,
        )
        .await?;
    ensure!(
        r.str("host") == Some(""),
        "host slot resets on migration: {r}"
    );
    let st = browser.state("bob").await?;
    ensure!(st["authority"] == json!(true), "{st}");

    browser.shutdown().await
}

#[tokio::test]
async fn deny_requeue_lock_and_kick() -> Result<()> {
    let (broker, browser) = setup().await?;
    let alice = browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "gate", "Alice", &broker).lobby(true),
        )
        .await?;
    let bob = browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, "gate", "Bob", &broker),
        )
        .await?;
    browser
        .wait_for("alice", "knock", |e| e.str("name") == Some("Bob"), WAIT)
        .await?;
    let mark = browser.cursor();
    browser.deny("alice", "Bob").await?;
    browser
        .wait_for("bob", "lobby", |e| e.str("status") == Some("denied"), WAIT)
        .await?;
    // A denied joiner that keeps re-announcing is queued again as a knock.
    browser
        .wait_event_since(
            mark,
            |e| e.is("alice", "knock") && e.str("name") == Some("Bob"),
            WAIT,
        )
        .await?;
    browser.admit("alice", "Bob").await?;
    roster_of(
        &browser,
        "alice",
        &[alice.voice_id.as_str(), bob.voice_id.as_str()],
    )
    .await?;

    // Locked: a newcomer is turned away; the roster says so.
    browser.lock("alice", true).await?;
    browser
        .wait_for(
            "bob",
            "roster",
            |e| e.get("locked") == Some(&json!(true)),
            WAIT,
        )
        .await?;
    browser
        .open_peer(
            "carol",
            &PeerOptions::new(Role::Participant, "gate", "Carol", &broker),
        )
        .await?;
    browser
        .wait_for(
            "carol",
            "lobby",
            |e| e.str("status") == Some("locked"),
            WAIT,
        )
        .await?;

    // Kick: Bob is told to leave and disappears from the roster.
    let mark = browser.cursor();
    browser.kick("alice", "Bob").await?;
    browser.wait_for("bob", "kicked", |_| true, WAIT).await?;
    browser
        .wait_event_since(
            mark,
            |e| e.is("alice", "roster") && e.member_ids() == [alice.voice_id.as_str()],
            WAIT,
        )
        .await?;
    browser.shutdown().await
}

#[tokio::test]
async fn late_joiner_gets_chat_history_once() -> Result<()> {
    let (broker, browser) = setup().await?;
    let alice = browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "history", "Alice", &broker),
        )
        .await?;
    let bob = browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, "history", "Bob", &broker),
        )
        .await?;
    link_open(&browser, "alice", &bob.voice_id).await?;
    browser.chat("bob", "said before carol came").await?;
    browser
        .wait_for(
            "alice",
            "chat",
            |e| e.str("text") == Some("said before carol came"),
            WAIT,
        )
        .await?;

    let carol = browser
        .open_peer(
            "carol",
            &PeerOptions::new(Role::Participant, "history", "Carol", &broker),
        )
        .await?;
    // Bob re-sends his own line and Alice replays it for him: Carol shows it once,
    // attributed to Bob, and counts the duplicate.
    let got = browser
        .wait_for(
            "carol",
            "chat",
            |e| e.str("text") == Some("said before carol came"),
            WAIT,
        )
        .await?;
    ensure!(got.str("from") == Some(bob.voice_id.as_str()), "{got}");
    ensure!(got.str("name") == Some("Bob"), "{got}");
    ensure!(
        got.str("mid") == Some(format!("{}#1", bob.voice_id).as_str()),
        "{got}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let st = browser.state("carol").await?;
        if st["chatDupes"].as_u64().unwrap_or(0) >= 1 {
            ensure!(st["chatSeen"] == json!(1), "one line, seen once: {st}");
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no replay reached carol: {st}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let dupes = browser
        .events()
        .into_iter()
        .filter(|e| e.is("carol", "chat") && e.str("text") == Some("said before carol came"))
        .count();
    ensure!(dupes == 1, "carol emitted the line {dupes} times");
    let _ = (alice, carol);
    browser.shutdown().await
}

#[tokio::test]
async fn participant_reclaims_the_room_when_the_host_tab_dies() -> Result<()> {
    let (broker, browser) = setup().await?;
    let alice = browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "crash", "Alice", &broker),
        )
        .await?;
    let bob = browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, "crash", "Bob", &broker),
        )
        .await?;
    roster_of(
        &browser,
        "bob",
        &[alice.voice_id.as_str(), bob.voice_id.as_str()],
    )
    .await?;
    let engine = browser
        .eval("bob", "return kbz.ENGINE.p", Value::Null)
        .await?;
    ensure!(engine["value"] == json!(1), "eval escape hatch: {engine}");

    let mark = browser.cursor();
    browser.close_peer("alice").await?;
    let took = browser
        .wait_event_since(mark, |e| e.is("bob", "authority"), Duration::from_secs(30))
        .await?;
    ensure!(took.str("presenceId") == Some("kbz-v1-crash"), "{took}");
    let lost = browser
        .wait_event_since(mark, |e| e.is("bob", "authority-lost"), WAIT)
        .await?;
    ensure!(lost.str("reason").is_some(), "{lost}");
    let st = browser.state("bob").await?;
    ensure!(st["authority"] == json!(true), "{st}");
    browser.shutdown().await
}

#[tokio::test]
async fn a_silent_authority_is_given_up_after_twelve_seconds() -> Result<()> {
    let (broker, browser) = setup().await?;
    browser
        .open_peer(
            "alice",
            &PeerOptions::new(Role::Host, "frozen", "Alice", &broker),
        )
        .await?;
    browser
        .open_peer(
            "bob",
            &PeerOptions::new(Role::Participant, "frozen", "Bob", &broker),
        )
        .await?;
    let alice_at_bob = browser.wait_member("bob", "Alice", WAIT).await?;
    ensure!(alice_at_bob["cam"] == json!(false), "{alice_at_bob}");

    let mark = browser.cursor();
    let t0 = tokio::time::Instant::now();
    browser.silence("alice", true).await?;
    let lost = browser
        .wait_event_since(
            mark,
            |e| e.is("bob", "authority-lost"),
            Duration::from_secs(25),
        )
        .await?;
    let waited = t0.elapsed();
    ensure!(lost.str("reason") == Some("authority silent"), "{lost}");
    ensure!(
        waited >= Duration::from_secs(11),
        "gave up after {waited:?}, before 12 s of silence"
    );
    browser.shutdown().await
}
