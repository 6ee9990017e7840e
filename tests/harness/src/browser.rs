//! Headless Chromium Kibitz participants, driven through `tests/js/harness.mjs`.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};

use crate::{paths, Event, PeerJsServer};

const STDERR_TAIL: usize = 200;
const DIAG_EVENTS: usize = 40;

/// How to launch the browser harness.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// WAV file for Chromium's fake microphone (`--use-file-for-fake-audio-capture`).
    pub fake_audio: Option<PathBuf>,
    /// Chromium binary; default `$CHROMIUM` or `/usr/bin/chromium`.
    pub chromium: Option<PathBuf>,
    /// Bound on one command round trip (opening a peer included).
    pub command_timeout: Duration,
    /// Bound on starting node + Chromium.
    pub launch_timeout: Duration,
    /// Echo the harness's stderr (page console errors) to the test's stderr.
    pub echo_stderr: bool,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            fake_audio: None,
            chromium: None,
            command_timeout: Duration::from_secs(40),
            launch_timeout: Duration::from_secs(60),
            echo_stderr: true,
        }
    }
}

/// Which side of the room a browser peer starts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Must claim `kbz-v1-<room>` and become the authority.
    Host,
    /// Claim-or-join like any Kibitz tab (joins when the room exists).
    Participant,
}

/// Options for one browser peer (`open`).
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Host or participant.
    pub role: Role,
    /// Room name (normalised by the page).
    pub room: String,
    /// Display name.
    pub name: String,
    /// PeerJS broker options (`PeerJsServer::broker_json`).
    pub broker: Value,
    /// Lobby on when this peer becomes the first authority.
    pub lobby: bool,
    /// The room commits a host key: caps are trusted from `roster.host`, and a host-role
    /// authority is that verified host.
    pub crypto_host: bool,
    /// Extra roster meta (e.g. `{"role":"agent"}`); `~kbz` is added by the page.
    pub meta: Option<Value>,
    /// Per-peer fake microphone WAV (runs in its own Chromium process).
    pub audio: Option<PathBuf>,
    /// Send `cap` and accept/dial the `bulk` link (default true, like Kibitz).
    pub bulk: bool,
    /// Re-broadcast held public chat lines on membership changes (default true, like Kibitz).
    pub replay_chat: bool,
    /// Signal only 127.0.0.1 ICE candidates (default true); false = every candidate, like a
    /// real browser.
    pub loopback_only: bool,
    /// Load the media mesh (`page/media.js`): owned media pcs over `sig`, the fake mic and
    /// the per-peer `hear-audio` / `see-screen` gate (default false: data mesh only).
    pub media: bool,
}

impl PeerOptions {
    /// Options for `name` in `room` on `broker`.
    pub fn new(role: Role, room: &str, name: &str, broker: &PeerJsServer) -> Self {
        Self {
            role,
            room: room.to_owned(),
            name: name.to_owned(),
            broker: broker.broker_json(),
            lobby: false,
            crypto_host: false,
            meta: None,
            audio: None,
            bulk: true,
            replay_chat: true,
            loopback_only: true,
            media: false,
        }
    }

    /// Load the media mesh (`page/media.js`) in this peer.
    pub fn media(mut self, on: bool) -> Self {
        self.media = on;
        self
    }

    /// Run this peer in its own Chromium whose fake microphone plays `wav`.
    pub fn audio(mut self, wav: impl Into<PathBuf>) -> Self {
        self.audio = Some(wav.into());
        self
    }

    /// Lobby on at start.
    pub fn lobby(mut self, on: bool) -> Self {
        self.lobby = on;
        self
    }

    /// Cryptographic host tier (caps-accepting room).
    pub fn crypto_host(mut self, on: bool) -> Self {
        self.crypto_host = on;
        self
    }

    /// Roster meta.
    pub fn meta(mut self, meta: Value) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Announce `meta.role = "agent"`.
    pub fn agent(self) -> Self {
        self.meta(json!({ "role": "agent" }))
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        let role = match self.role {
            Role::Host => "host",
            Role::Participant => "participant",
        };
        o.insert("role".into(), role.into());
        o.insert("room".into(), self.room.clone().into());
        o.insert("name".into(), self.name.clone().into());
        o.insert("broker".into(), self.broker.clone());
        o.insert("lobby".into(), self.lobby.into());
        o.insert("cryptoHost".into(), self.crypto_host.into());
        o.insert("bulk".into(), self.bulk.into());
        o.insert("replayChat".into(), self.replay_chat.into());
        o.insert("loopbackOnly".into(), self.loopback_only.into());
        if let Some(meta) = &self.meta {
            o.insert("meta".into(), meta.clone());
        }
        if self.media {
            o.insert("media".into(), "media.js".into());
        }
        if let Some(audio) = &self.audio {
            o.insert("audio".into(), audio.display().to_string().into());
        }
        Value::Object(o)
    }
}

/// What `open` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The media peer id (roster id, dial target).
    pub voice_id: String,
    /// The presence peer id (`kbz-v1-<room>` for the authority).
    pub presence_id: String,
    /// Whether this peer is the room authority.
    pub authority: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    events: Mutex<Vec<Event>>,
    stderr_tail: Mutex<VecDeque<String>>,
}

/// The browser harness: node + Chromium, one page per browser peer. Killed on drop.
#[derive(Debug)]
pub struct Browser {
    shared: Arc<Shared>,
    seen: watch::Receiver<usize>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    child: Option<Child>,
    next_id: AtomicU64,
    opts: BrowserOptions,
    /// Chromium profiles live here; removed after the harness is gone (field order).
    _profiles: tempfile::TempDir,
}

impl Browser {
    /// Start `node tests/js/harness.mjs` and wait until Chromium is up.
    pub async fn launch(opts: BrowserOptions) -> Result<Self> {
        let (node, chromium) = paths::check_browser_prereqs(opts.chromium.as_deref())?;
        let profiles = tempfile::Builder::new()
            .prefix("kbz-browser-")
            .tempdir()
            .context("creating a temp dir for Chromium profiles")?;
        let mut cmd = Command::new(node);
        cmd.arg("harness.mjs")
            .arg("--chromium")
            .arg(&chromium)
            .arg("--profile-root")
            .arg(profiles.path())
            .current_dir(paths::js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(audio) = &opts.fake_audio {
            cmd.arg("--audio").arg(audio);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning the browser harness; {}", paths::INSTALL_HINT))?;
        let shared = Arc::new(Shared::default());
        let (seen_tx, seen) = watch::channel(0usize);
        let stdout = child.stdout.take().context("harness stdout")?;
        let stderr = child.stderr.take().context("harness stderr")?;
        spawn_stdout_reader(stdout, shared.clone(), seen_tx);
        spawn_stderr_reader(stderr, shared.clone(), opts.echo_stderr);
        let stdin = child.stdin.take();
        let browser = Self {
            shared,
            seen,
            stdin: tokio::sync::Mutex::new(stdin),
            child: Some(child),
            next_id: AtomicU64::new(1),
            opts,
            _profiles: profiles,
        };
        let ready = browser
            .wait_event(
                |e| e.ev == "ready" || e.ev == "fatal",
                browser.opts.launch_timeout,
            )
            .await
            .map_err(|e| anyhow!("{e:#}\n{}", paths::INSTALL_HINT))?;
        if ready.ev == "fatal" {
            bail!(
                "browser harness failed to start: {}\nstderr:\n{}\n{}",
                ready.str("error").unwrap_or("?"),
                browser.stderr_tail().join("\n"),
                paths::INSTALL_HINT
            );
        }
        Ok(browser)
    }

    /// Send one command (`{"cmd": cmd, ...args}`) and wait for its answer, bounded by
    /// `command_timeout`. An `ok:false` answer is an error carrying the page's message.
    pub async fn command(&self, cmd: &str, args: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = match args {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => bail!("command args must be an object, got {other}"),
        };
        msg.insert("id".into(), id.into());
        msg.insert("cmd".into(), cmd.into());
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(id, tx);
        let mut line = Value::Object(msg).to_string();
        line.push('\n');
        {
            let mut stdin = self.stdin.lock().await;
            let pipe = stdin
                .as_mut()
                .context("browser harness already shut down")?;
            if let Err(e) = pipe.write_all(line.as_bytes()).await {
                self.lock_pending().remove(&id);
                return Err(anyhow!(e).context(self.diagnostics("writing to the browser harness")));
            }
            pipe.flush().await?;
        }
        let reply = match tokio::time::timeout(self.opts.command_timeout, rx).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => {
                bail!(self.diagnostics(&format!("browser harness exited during `{cmd}`")))
            }
            Err(_) => {
                self.lock_pending().remove(&id);
                bail!(self.diagnostics(&format!(
                    "`{cmd}` got no answer within {:?}",
                    self.opts.command_timeout
                )))
            }
        };
        if reply.get("ok").and_then(Value::as_bool) == Some(true) {
            Ok(reply)
        } else {
            let err = reply.get("error").and_then(Value::as_str).unwrap_or("?");
            bail!("`{cmd}` failed: {err}")
        }
    }

    /// Open browser peer `peer` (a fresh page) and join the room.
    pub async fn open_peer(&self, peer: &str, opts: &PeerOptions) -> Result<Opened> {
        let mut args = opts.to_json();
        if let Value::Object(m) = &mut args {
            m.insert("peer".into(), peer.into());
        }
        let v = self
            .command("open", args)
            .await
            .with_context(|| format!("opening browser peer {peer}"))?;
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Opened {
            voice_id: s("voiceId"),
            presence_id: s("presenceId"),
            authority: v.get("authority").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// Authority `peer` admits a knock, by knock name or connection id.
    pub async fn admit(&self, peer: &str, who: &str) -> Result<Value> {
        self.command("admit", json!({ "peer": peer, "who": who }))
            .await
    }

    /// Authority `peer` denies a knock, by knock name or connection id.
    pub async fn deny(&self, peer: &str, who: &str) -> Result<Value> {
        self.command("deny", json!({ "peer": peer, "who": who }))
            .await
    }

    /// `peer` broadcasts a chat line (to the members it lets `read-chat`). The answer
    /// carries `mid`, `sent` and `withheld` voiceIds.
    pub async fn chat(&self, peer: &str, text: &str) -> Result<Value> {
        self.command("chat", json!({ "peer": peer, "text": text }))
            .await
    }

    /// `peer` sends a direct chat line to `to` (voiceId or name).
    pub async fn chat_to(&self, peer: &str, to: &str, text: &str) -> Result<Value> {
        self.command("chat", json!({ "peer": peer, "text": text, "to": to }))
            .await
    }

    /// `peer` sets its grant override for `target` (voiceId or name); `Value::Null`
    /// clears it. An authority then broadcasts `caps`.
    pub async fn grant(&self, peer: &str, target: &str, grant: Value) -> Result<Value> {
        self.command(
            "grant",
            json!({ "peer": peer, "target": target, "grant": grant }),
        )
        .await
    }

    /// Authority `peer` turns the lobby on or off.
    pub async fn set_lobby(&self, peer: &str, on: bool) -> Result<Value> {
        self.command("lobby", json!({ "peer": peer, "on": on }))
            .await
    }

    /// Authority `peer` locks or unlocks the room.
    pub async fn lock(&self, peer: &str, on: bool) -> Result<Value> {
        self.command("lock", json!({ "peer": peer, "on": on }))
            .await
    }

    /// Authority `peer` removes a member (voiceId or name).
    pub async fn kick(&self, peer: &str, target: &str) -> Result<Value> {
        self.command("kick", json!({ "peer": peer, "target": target }))
            .await
    }

    /// Fault injection: `peer`'s presence links stay open but carry nothing while `on`
    /// (a frozen authority or participant).
    pub async fn silence(&self, peer: &str, on: bool) -> Result<Value> {
        self.command("silence", json!({ "peer": peer, "on": on }))
            .await
    }

    /// Wait until `peer`'s roster has a member named `name`; returns that member object.
    pub async fn wait_member(&self, peer: &str, name: &str, timeout: Duration) -> Result<Value> {
        let ev = self
            .wait_for(
                peer,
                "roster",
                |e| {
                    e.members()
                        .iter()
                        .any(|m| m.get("name").and_then(Value::as_str) == Some(name))
                },
                timeout,
            )
            .await?;
        ev.members()
            .iter()
            .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
            .cloned()
            .context("member vanished")
    }

    /// `peer` leaves gracefully (`bye`, `voice on:false`, `leave`); the page stays.
    pub async fn leave(&self, peer: &str) -> Result<Value> {
        self.command("leave", json!({ "peer": peer })).await
    }

    /// Close `peer`'s tab abruptly, like a crashed browser.
    pub async fn close_peer(&self, peer: &str) -> Result<Value> {
        self.command("close", json!({ "peer": peer })).await
    }

    /// `peer`'s full state: roster, grants, overrides, audit, links, knocks.
    pub async fn state(&self, peer: &str) -> Result<Value> {
        self.command("state", json!({ "peer": peer })).await
    }

    /// Media stats of a peer opened with [`PeerOptions::media`]: `{voiceId, mic, peers:
    /// [{peer, state, initiator, relay, lanes, mh, bytes, audioIn, audioOut, audioSources}]}`,
    /// where `audioIn` holds the inbound `bytesReceived`, `audioLevel`, `totalAudioEnergy`
    /// and `totalSamplesDuration` from `getStats`.
    pub async fn media_stats(&self, peer: &str) -> Result<Value> {
        self.command("stats", json!({ "peer": peer })).await
    }

    /// Escape hatch: run `body` (a function body with `kbz` and `arg` in scope) in the page.
    pub async fn eval(&self, peer: &str, body: &str, arg: Value) -> Result<Value> {
        self.command("eval", json!({ "peer": peer, "expr": body, "arg": arg }))
            .await
    }

    /// Index of the next event; pass to [`Browser::wait_event_since`].
    pub fn cursor(&self) -> usize {
        self.lock_events().len()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock_events().clone()
    }

    /// The first event (from the start of the run) matching `pred`, waiting up to `timeout`.
    pub async fn wait_event(
        &self,
        pred: impl Fn(&Event) -> bool,
        timeout: Duration,
    ) -> Result<Event> {
        self.wait_event_since(0, pred, timeout).await
    }

    /// The first event at index `since` or later matching `pred`, waiting up to `timeout`.
    /// The error lists the recent events and harness stderr.
    pub async fn wait_event_since(
        &self,
        since: usize,
        pred: impl Fn(&Event) -> bool,
        timeout: Duration,
    ) -> Result<Event> {
        let mut seen = self.seen.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut from = since;
        loop {
            {
                let events = self.lock_events();
                if let Some(e) = events.iter().skip(from).find(|e| pred(e)) {
                    return Ok(e.clone());
                }
                from = from.max(events.len());
            }
            match tokio::time::timeout_at(deadline, seen.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    // The harness is gone: one last look, then fail.
                    if let Some(e) = self.lock_events().iter().skip(from).find(|e| pred(e)) {
                        return Ok(e.clone());
                    }
                    bail!(self.diagnostics("browser harness exited while waiting for an event"));
                }
                Err(_) => bail!(self.diagnostics(&format!("no matching event within {timeout:?}"))),
            }
        }
    }

    /// Wait for event `ev` seen by `peer` that also satisfies `pred`.
    pub async fn wait_for(
        &self,
        peer: &str,
        ev: &str,
        pred: impl Fn(&Event) -> bool,
        timeout: Duration,
    ) -> Result<Event> {
        self.wait_event(|e| e.is(peer, ev) && pred(e), timeout)
            .await
            .with_context(|| format!("waiting for `{ev}` at {peer}"))
    }

    /// Fail if an event at index `since` or later matches `pred` within `window`.
    pub async fn expect_no_event(
        &self,
        since: usize,
        pred: impl Fn(&Event) -> bool,
        window: Duration,
    ) -> Result<()> {
        match self.wait_event_since(since, &pred, window).await {
            Ok(e) => bail!("unexpected event: {e}"),
            Err(_) if self.child_alive() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The harness's recent stderr (page console errors, diagnostics).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.shared
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Close stdin (the harness closes Chromium and exits) and wait, bounded.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stdin.lock().await.take();
        if let Some(mut child) = self.child.take() {
            match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
                Ok(status) => {
                    let status = status?;
                    if !status.success() {
                        bail!("browser harness exited with {status}");
                    }
                }
                Err(_) => {
                    child.start_kill()?;
                    bail!("browser harness did not exit within 15 s of stdin closing; killed");
                }
            }
        }
        Ok(())
    }

    fn child_alive(&self) -> bool {
        self.seen.has_changed().is_ok()
    }

    fn diagnostics(&self, what: &str) -> String {
        let events = self.lock_events();
        let recent: Vec<String> = events
            .iter()
            .rev()
            .take(DIAG_EVENTS)
            .rev()
            .map(|e| format!("  [{}] {} {e}", e.peer, e.ev))
            .collect();
        drop(events);
        let stderr = self.stderr_tail();
        let stderr: Vec<&String> = stderr.iter().rev().take(30).rev().collect();
        format!(
            "{what}\nlast {} events:\n{}\nharness stderr (tail):\n{}",
            recent.len(),
            recent.join("\n"),
            stderr
                .iter()
                .map(|s| format!("  {s}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    fn lock_events(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Value>>> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing stdin lets the harness close Chromium cleanly; kill it if it lingers.
        if let Ok(mut stdin) = self.stdin.try_lock() {
            stdin.take();
        }
        if let Some(mut child) = self.child.take() {
            for _ in 0..60 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.start_kill();
        }
    }
}

fn spawn_stdout_reader(
    out: tokio::process::ChildStdout,
    shared: Arc<Shared>,
    seen: watch::Sender<usize>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                push_tail(&shared, format!("(stdout, not JSON) {line}"));
                continue;
            };
            if let Some(id) = v.get("id").and_then(Value::as_u64) {
                let tx = shared
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&id);
                if let Some(tx) = tx {
                    let _ = tx.send(v);
                }
                continue;
            }
            if let Some(ev) = Event::from_json(v) {
                tracing::trace!(peer = %ev.peer, ev = %ev.ev, "browser event");
                let n = {
                    let mut events = shared
                        .events
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    events.push(ev);
                    events.len()
                };
                let _ = seen.send(n);
            }
        }
        // Dropping `seen` tells waiters the harness is gone; pending commands fail.
        shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    });
}

fn spawn_stderr_reader(err: tokio::process::ChildStderr, shared: Arc<Shared>, echo: bool) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(err).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("[browser-harness] {line}");
            }
            push_tail(&shared, line);
        }
    });
}

fn push_tail(shared: &Shared, line: String) {
    let mut tail = shared
        .stderr_tail
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if tail.len() >= STDERR_TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}
