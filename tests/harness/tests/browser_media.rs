//! The media mesh of the test page (`page/media.js`) with real Chromium: owned media pcs
//! over `sig`, m-lines audio/video/video, real `mh` numbers, and the per-peer `hear-audio`
//! gate applied by the *sender* from its own grant view of the receiver (wire §6.4).
//!
//! The speaker's fake microphone plays a WAV made with `espeak-ng` at test time; the
//! listener's inbound `totalAudioEnergy` tells real speech from the flowing silent
//! placeholder (bytes keep arriving either way).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use kibitz_test_harness::{
    Browser, BrowserOptions, Event, Opened, PeerJsServer, PeerOptions, Role, INSTALL_HINT,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
/// One measurement window of inbound audio.
const WINDOW: Duration = Duration::from_millis(2500);
/// Bound on a gate change showing up in the listener's inbound audio.
const GATE_SETTLE: Duration = Duration::from_secs(20);
/// Mean power (Δenergy / Δduration) below this is digital silence (observed ~1e-9).
const SILENT: f64 = 1e-5;
/// Mean power above this is real speech (observed ~1e-2 for the espeak WAV).
const LOUD: f64 = 1e-3;

/// Media tests run one at a time: each launches Chromium processes with live audio.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A 48 kHz mono speech WAV in `dir` (espeak-ng, resampled with sox).
fn speech_wav(dir: &Path) -> Result<PathBuf> {
    let raw = dir.join("speech-raw.wav");
    let wav = dir.join("speech.wav");
    let text = "Good morning everyone. This is the speaker with the weekly status. \
                The build is green, the release is on track, and the demo is on Friday.";
    let ok = Command::new("espeak-ng")
        .arg("-w")
        .arg(&raw)
        .arg(text)
        .status()
        .with_context(|| format!("running espeak-ng; {INSTALL_HINT}"))?
        .success();
    ensure!(ok, "espeak-ng failed; {INSTALL_HINT}");
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", "48000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .status()
        .with_context(|| format!("running sox; {INSTALL_HINT}"))?
        .success();
    ensure!(ok, "sox failed; {INSTALL_HINT}");
    Ok(wav)
}

async fn setup() -> Result<(PeerJsServer, Browser)> {
    let broker = PeerJsServer::start().await?;
    let browser = Browser::launch(BrowserOptions::default()).await?;
    Ok((broker, browser))
}

/// `peer`'s media pc to `remote` reached `connected` (at or after event index `since`).
async fn media_connected(
    browser: &Browser,
    peer: &str,
    remote: &str,
    since: usize,
) -> Result<Event> {
    browser
        .wait_event_since(
            since,
            |e| {
                e.is(peer, "media")
                    && e.str("remote") == Some(remote)
                    && e.str("state") == Some("connected")
            },
            WAIT,
        )
        .await
        .with_context(|| format!("media pc {peer} → {remote} never connected"))
}

/// `peer`'s gate for `remote` puts `track` (`mic` / `placeholder`) on the audio lane.
async fn audio_gate(
    browser: &Browser,
    peer: &str,
    remote: &str,
    track: &str,
    since: usize,
) -> Result<Event> {
    browser
        .wait_event_since(
            since,
            |e| {
                e.is(peer, "media-gate")
                    && e.str("remote") == Some(remote)
                    && e.str("audio") == Some(track)
            },
            WAIT,
        )
        .await
        .with_context(|| format!("{peer} never gated audio to {remote} as {track}"))
}

/// `peer`'s stats entry for its pc to `remote`.
async fn pc_stats(browser: &Browser, peer: &str, remote: &str) -> Result<Value> {
    let all = browser.media_stats(peer).await?;
    all.get("peers")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("peer").and_then(Value::as_str) == Some(remote))
        })
        .cloned()
        .with_context(|| format!("{peer} has no media pc to {remote}: {all}"))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// What `listener` received from `speaker` over one window: audio bytes and mean power.
#[derive(Debug)]
struct Window {
    bytes: f64,
    power: f64,
    stats: Value,
}

async fn audio_window(browser: &Browser, listener: &str, speaker: &str) -> Result<Window> {
    let a = pc_stats(browser, listener, speaker).await?;
    tokio::time::sleep(WINDOW).await;
    let b = pc_stats(browser, listener, speaker).await?;
    let d = |k: &str| num(&b, &["audioIn", k]) - num(&a, &["audioIn", k]);
    let dur = d("totalSamplesDuration");
    Ok(Window {
        bytes: d("bytesReceived"),
        power: if dur > 0.0 {
            d("totalAudioEnergy") / dur
        } else {
            0.0
        },
        stats: b,
    })
}

/// Poll windows until one is loud (`loud`) or silent-but-flowing (`!loud`), bounded.
async fn wait_audio(
    browser: &Browser,
    listener: &str,
    speaker: &str,
    loud: bool,
) -> Result<Window> {
    let deadline = tokio::time::Instant::now() + GATE_SETTLE;
    let mut seen = Vec::new();
    loop {
        let w = audio_window(browser, listener, speaker).await?;
        let hit = if loud {
            w.power > LOUD
        } else {
            w.power < SILENT && w.bytes > 0.0
        };
        if hit {
            return Ok(w);
        }
        seen.push(format!("bytes {:.0} power {:.3e}", w.bytes, w.power));
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{listener} never heard {} from {speaker} within {GATE_SETTLE:?}; windows: {seen:?}\nlast stats: {}",
                if loud { "real audio" } else { "flowing silence" },
                w.stats
            );
        }
    }
}

/// Both sides negotiated exactly audio, video, video (sendrecv), in that m-line order.
fn check_lanes(stats: &Value, who: &str) -> Result<()> {
    let lanes = stats
        .get("lanes")
        .and_then(Value::as_array)
        .with_context(|| format!("{who}: no lanes in {stats}"))?;
    let kinds: Vec<&str> = lanes
        .iter()
        .map(|l| l.get("kind").and_then(Value::as_str).unwrap_or("?"))
        .collect();
    ensure!(
        kinds == ["audio", "video", "video"],
        "{who}: m-lines {kinds:?}"
    );
    for l in lanes {
        ensure!(
            l.get("direction").and_then(Value::as_str) == Some("sendrecv"),
            "{who}: lane not sendrecv: {l}"
        );
    }
    Ok(())
}

fn hear_audio_grant() -> Value {
    json!({
        "perceive": ["read-chat", "read-roster", "receive-directed", "hear-audio"],
        "act": []
    })
}

/// Speaker (host, fake mic = speech) and an agent listener, both with media.
async fn speaker_and_agent(
    broker: &PeerJsServer,
    browser: &Browser,
    room: &str,
    wav: &Path,
) -> Result<(Opened, Opened)> {
    let s = browser
        .open_peer(
            "speaker",
            &PeerOptions::new(Role::Host, room, "Speaker", broker)
                .media(true)
                .audio(wav),
        )
        .await?;
    let l = browser
        .open_peer(
            "listener",
            &PeerOptions::new(Role::Participant, room, "Listener", broker)
                .agent()
                .media(true),
        )
        .await?;
    media_connected(browser, "speaker", &l.voice_id, 0).await?;
    media_connected(browser, "listener", &s.voice_id, 0).await?;
    Ok((s, l))
}

#[tokio::test]
async fn the_speaker_gates_its_mic_per_listener_by_hear_audio() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir()?;
    let wav = speech_wav(dir.path())?;
    let (broker, browser) = setup().await?;
    let (s, l) = speaker_and_agent(&broker, &browser, "media-gate", &wav).await?;

    // Negotiation shape: one pc per pair, the smaller voiceId offered, m-lines a/v/v.
    let at_s = pc_stats(&browser, "speaker", &l.voice_id).await?;
    let at_l = pc_stats(&browser, "listener", &s.voice_id).await?;
    check_lanes(&at_s, "speaker")?;
    check_lanes(&at_l, "listener")?;
    let s_first = s.voice_id < l.voice_id;
    ensure!(
        at_s.get("initiator") == Some(&json!(s_first))
            && at_l.get("initiator") == Some(&json!(!s_first)),
        "initiator must be the smaller voiceId: {at_s} / {at_l}"
    );

    // The agent listener lacks hear-audio in the speaker's view: silence flows, no speech.
    audio_gate(&browser, "speaker", &l.voice_id, "placeholder", 0).await?;
    let w = wait_audio(&browser, "listener", &s.voice_id, false).await?;
    ensure!(w.bytes > 0.0, "the silent placeholder must flow: {w:?}");
    // The listener's view of the (human) speaker is full: the speaker hears it.
    wait_audio(&browser, "speaker", &l.voice_id, true)
        .await
        .context("the listener's own mic must reach the human speaker")?;

    // `mh` carries real numbers: the speaker reports its outbound audio kbps to the listener.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let st = browser.state("listener").await?;
        let health = st
            .get("links")
            .and_then(Value::as_array)
            .and_then(|ls| {
                ls.iter()
                    .find(|x| x.get("peer").and_then(Value::as_str) == Some(&s.voice_id))
            })
            .and_then(|x| x.get("health"))
            .cloned()
            .unwrap_or(Value::Null);
        if num(&health, &["oa"]) >= 1.0 && num(&health, &["a"]) >= 1.0 {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "speaker's mh never reported audio flow: {health}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Grant hear-audio: the real mic is swapped in on that peer's sender.
    let mark = browser.cursor();
    browser
        .grant("speaker", &l.voice_id, hear_audio_grant())
        .await?;
    audio_gate(&browser, "speaker", &l.voice_id, "mic", mark).await?;
    wait_audio(&browser, "listener", &s.voice_id, true).await?;

    // Revoke (back to the agent default): silence again, and it stays silent.
    let mark = browser.cursor();
    browser.grant("speaker", &l.voice_id, Value::Null).await?;
    audio_gate(&browser, "speaker", &l.voice_id, "placeholder", mark).await?;
    wait_audio(&browser, "listener", &s.voice_id, false).await?;
    let w = audio_window(&browser, "listener", &s.voice_id).await?;
    ensure!(
        w.power < SILENT && w.bytes > 0.0,
        "after revoke the listener must get flowing silence: {w:?}"
    );
    browser.shutdown().await
}

#[tokio::test]
async fn caps_from_the_verified_host_open_another_senders_gate() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir()?;
    let wav = speech_wav(dir.path())?;
    let (broker, browser) = setup().await?;
    let room = "media-caps";
    let h = browser
        .open_peer(
            "host",
            &PeerOptions::new(Role::Host, room, "Host", &broker)
                .crypto_host(true)
                .media(true),
        )
        .await?;
    let s = browser
        .open_peer(
            "speaker",
            &PeerOptions::new(Role::Participant, room, "Speaker", &broker)
                .crypto_host(true)
                .media(true)
                .audio(&wav),
        )
        .await?;
    let l = browser
        .open_peer(
            "listener",
            &PeerOptions::new(Role::Participant, room, "Listener", &broker)
                .crypto_host(true)
                .agent()
                .media(true),
        )
        .await?;
    media_connected(&browser, "listener", &s.voice_id, 0).await?;
    audio_gate(&browser, "speaker", &l.voice_id, "placeholder", 0).await?;
    wait_audio(&browser, "listener", &s.voice_id, false).await?;

    // The host grants hear-audio; the speaker accepts the caps and opens its own gate.
    let mark = browser.cursor();
    browser
        .grant("host", &l.voice_id, hear_audio_grant())
        .await?;
    browser
        .wait_event_since(
            mark,
            |e| {
                e.is("speaker", "caps")
                    && e.str("from") == Some(h.voice_id.as_str())
                    && e.get("accepted") == Some(&json!(true))
            },
            WAIT,
        )
        .await
        .context("the speaker must accept caps from the verified host")?;
    audio_gate(&browser, "speaker", &l.voice_id, "mic", mark).await?;
    wait_audio(&browser, "listener", &s.voice_id, true).await?;

    // The host clears its map: the speaker's view falls back to the agent default.
    let mark = browser.cursor();
    browser.grant("host", &l.voice_id, Value::Null).await?;
    audio_gate(&browser, "speaker", &l.voice_id, "placeholder", mark).await?;
    wait_audio(&browser, "listener", &s.voice_id, false).await?;
    browser.shutdown().await
}

#[tokio::test]
async fn a_recreated_pc_reconnects_and_keeps_the_gate() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir()?;
    let wav = speech_wav(dir.path())?;
    let (broker, browser) = setup().await?;
    let (s, l) = speaker_and_agent(&broker, &browser, "media-recreate", &wav).await?;
    let (init, init_id, ans, ans_id) = if s.voice_id < l.voice_id {
        ("speaker", &s.voice_id, "listener", &l.voice_id)
    } else {
        ("listener", &l.voice_id, "speaker", &s.voice_id)
    };
    let redial = "return kbz.session().hooks.redial(arg.id, arg.step)";

    // Rung 1: ICE restart on the live pc (no new pc).
    let mark = browser.cursor();
    browser
        .eval(init, redial, json!({ "id": ans_id, "step": "restart" }))
        .await?;
    browser
        .wait_event_since(
            mark,
            |e| e.is(init, "media-recover") && e.str("step") == Some("restart"),
            WAIT,
        )
        .await?;
    ensure!(
        browser.events()[mark..]
            .iter()
            .all(|e| !(e.ev == "media" && e.str("state") == Some("closed"))),
        "an ICE restart must keep the pc"
    );
    wait_audio(&browser, "listener", &s.voice_id, false).await?;

    // Rung 2: full re-create: `m-recreate`, the answerer drops its pc and answers a new one.
    let mark = browser.cursor();
    browser
        .eval(init, redial, json!({ "id": ans_id, "step": "recreate" }))
        .await?;
    browser
        .wait_event_since(
            mark,
            |e| {
                e.is(ans, "media")
                    && e.str("remote") == Some(init_id.as_str())
                    && e.str("state") == Some("closed")
            },
            WAIT,
        )
        .await
        .context("the answerer must close its pc on m-recreate")?;
    media_connected(&browser, ans, init_id, mark).await?;
    media_connected(&browser, init, ans_id, mark).await?;
    check_lanes(&pc_stats(&browser, ans, init_id).await?, ans)?;

    // The gate is re-applied on the new pc: still silence for the agent, then speech.
    let w = wait_audio(&browser, "listener", &s.voice_id, false).await?;
    ensure!(w.bytes > 0.0, "new pc must carry the placeholder: {w:?}");
    browser
        .grant("speaker", &l.voice_id, hear_audio_grant())
        .await?;
    wait_audio(&browser, "listener", &s.voice_id, true).await?;
    browser.shutdown().await
}

/// Mean colour `listener` sees on `sharer`'s screen-share lane.
async fn share_color(browser: &Browser, listener: &str, sharer: &str) -> Result<Value> {
    browser
        .eval(
            listener,
            "return await kbz.session().hooks.remoteShareColor(arg)",
            json!(sharer),
        )
        .await
}

/// Poll until the share lane looks green (`green`) or black (`!green`), bounded.
async fn wait_share(browser: &Browser, listener: &str, sharer: &str, green: bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + GATE_SETTLE;
    loop {
        let c = share_color(browser, listener, sharer).await?;
        let (r, g, b) = (num(&c, &["r"]), num(&c, &["g"]), num(&c, &["b"]));
        let frames = c.get("frames") == Some(&json!(true));
        let is_green = g > 150.0 && r < 100.0 && b < 100.0;
        let is_black = r < 40.0 && g < 40.0 && b < 40.0;
        if frames && (if green { is_green } else { is_black }) {
            return Ok(c);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{listener} never saw a {} share lane from {sharer}; last {c}",
            if green { "green" } else { "black" }
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

#[tokio::test]
async fn the_screen_share_lane_is_gated_by_see_screen() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let (broker, browser) = setup().await?;
    let room = "media-share";
    let s = browser
        .open_peer(
            "sharer",
            &PeerOptions::new(Role::Host, room, "Sharer", &broker).media(true),
        )
        .await?;
    let l = browser
        .open_peer(
            "viewer",
            &PeerOptions::new(Role::Participant, room, "Viewer", &broker)
                .agent()
                .media(true),
        )
        .await?;
    media_connected(&browser, "viewer", &s.voice_id, 0).await?;
    let sharing = browser
        .eval(
            "sharer",
            "return kbz.session().hooks.share(true)",
            Value::Null,
        )
        .await?;
    ensure!(
        sharing.get("sharing") == Some(&json!(true)),
        "share on: {sharing}"
    );
    // Withheld from the agent: it sees the black placeholder although the sharer shares
    // green; the placeholders keep flowing.
    wait_share(&browser, "viewer", &s.voice_id, false).await?;
    let at_v = pc_stats(&browser, "viewer", &s.voice_id).await?;
    ensure!(
        num(&at_v, &["bytes", "inV"]) > 0.0,
        "camera/share placeholders must flow: {at_v}"
    );

    let mark = browser.cursor();
    browser
        .grant(
            "sharer",
            &l.voice_id,
            json!({ "perceive": ["read-chat", "see-screen"], "act": [] }),
        )
        .await?;
    browser
        .wait_event_since(
            mark,
            |e| {
                e.is("sharer", "media-gate")
                    && e.str("remote") == Some(l.voice_id.as_str())
                    && e.str("share") == Some("share")
                    && e.str("audio") == Some("placeholder")
            },
            WAIT,
        )
        .await
        .context("see-screen alone must open the share lane, not the mic")?;
    wait_share(&browser, "viewer", &s.voice_id, true).await?;

    browser.grant("sharer", &l.voice_id, Value::Null).await?;
    wait_share(&browser, "viewer", &s.voice_id, false).await?;
    browser.shutdown().await
}
