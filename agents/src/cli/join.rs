//! `kibitz-agent join`: join a Kibitz room as a read-only agent and stream what happens.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use agent_runtime::mesh::MeshOptions;
use agent_runtime::room::ClaimPolicy;
use agent_runtime::session::{
    agent_meta, RoomSession, SessionError, SessionEvent, SessionHandle, SessionOptions,
};
use agent_runtime::signaling::{BackoffPolicy, BrokerConfig, ConnectOptions};
use agent_runtime::wire::presence::LobbyStatus;
use clap::Args;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::mpsc::UnboundedReceiver;

mod agent;

use super::exit::{self, CliError};
use super::{files, parse_duration, Ctx, RunCommand};

/// The host denied entry.
pub(crate) const DENIED: u8 = 30;
/// The room is locked.
pub(crate) const LOCKED: u8 = 31;
/// The identity gate refused us.
pub(crate) const UNVERIFIED: u8 = 32;
/// We were kicked.
pub(crate) const KICKED: u8 = 33;
/// The broker could not be reached (or dropped us for good).
pub(crate) const BROKER_UNREACHABLE: u8 = 34;
/// No host appeared within `--wait-for-host`.
pub(crate) const NO_HOST: u8 = 35;
/// The agent cannot run under its manifest (its lanes exceed the manifest, or a required lane
/// is not granted).
pub(crate) const AGENT_REFUSED: u8 = 36;

const EXAMPLES: &str = "\
Examples:
  kibitz-agent broker &
  kibitz-agent join --room standup --broker ws://127.0.0.1:9000/ --name Notetaker
  kibitz-agent join --room standup --claim --lobby          # hold the room if nobody does
  kibitz-agent join --room standup --key agent.jwk --wait-for-host 5m
  kibitz-agent join --room standup --manifest chat-logger.jws --key agent.jwk \\
      --agent chat-logger --out logs/ --json      # run a built-in agent under its manifest

Status lines (one per phase) go to stderr, JSON with --json. Chat and app messages arrive on
stdout as JSON lines: {\"type\":\"chat\",\"from\":…,\"name\":…,\"text\":…,\"dm\":…,\"mid\":…}.
Lines typed on stdin are sent as chat (browsers drop them until the host grants send-chat).
Ctrl-C (or SIGTERM) leaves gracefully.

With --manifest, the key must be the manifest's signer; the agent's artifacts are printed on
stdout ({\"type\":\"artifact\",\"agent\":…,\"artifact\":…}) instead of chat, and stdin is
not read. Built-in agents: chat-logger.

Exit codes: 0 left, 30 denied, 31 room locked, 32 unverified, 33 kicked,
34 broker unreachable, 35 no host appeared, 36 agent refused by its manifest or grant;
manifest refused: 10 bad signature, 11 not signed by --key, 12 expired, 13 invalid,
15 malformed token.";

/// Arguments of `join`.
#[derive(Debug, Clone, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct JoinArgs {
    /// Room name (normalised like Kibitz: `My Room` is `kbz-v1-my-room`).
    #[arg(long)]
    pub(crate) room: String,
    /// PeerJS broker URL.
    #[arg(long, default_value = "ws://127.0.0.1:9000/")]
    pub(crate) broker: String,
    /// Display name in the roster.
    #[arg(long, default_value = "Agent")]
    pub(crate) name: String,
    /// Claim the room and run its authority when nobody holds it (default: wait for a host).
    #[arg(long)]
    pub(crate) claim: bool,
    /// With --claim: start the lobby on when this agent becomes the first authority.
    #[arg(long, requires = "claim")]
    pub(crate) lobby: bool,
    /// Give up when no host appears within this long (e.g. 90s, 5m).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) wait_for_host: Option<u64>,
    /// Agent private key (JWK): sign a `kbz-agent-key.v1` assertion for rooms that gate agents.
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// The room has a cryptographic host (committed key or host email): accept its `caps`.
    #[arg(long)]
    pub(crate) crypto_host: bool,
    /// Bind WebRTC to 127.0.0.1 only (peers on this machine).
    #[arg(long)]
    pub(crate) loopback: bool,
    /// Broker connection attempts before giving up.
    #[arg(long, default_value_t = 5)]
    pub(crate) connect_attempts: u32,
    /// Signed agent manifest (JWS compact, from `manifest sign`): run `--agent` under it.
    #[arg(long, requires_all = ["key", "agent"])]
    pub(crate) manifest: Option<PathBuf>,
    /// The built-in agent to run (with --manifest): chat-logger.
    #[arg(long, requires = "manifest")]
    pub(crate) agent: Option<String>,
    /// Directory for the agent's output files (with --manifest).
    #[arg(long, requires = "manifest")]
    pub(crate) out: Option<PathBuf>,
}

impl JoinArgs {
    fn options(&self) -> Result<SessionOptions, CliError> {
        let broker = BrokerConfig::from_url(&self.broker)
            .map_err(|e| CliError::new(exit::USAGE, e.to_string()))?;
        let assertion_key = match &self.key {
            Some(path) => Some(Arc::new(files::load_private_key(path)?)),
            None => None,
        };
        Ok(SessionOptions {
            broker,
            room: self.room.clone(),
            name: self.name.clone(),
            meta: Some(agent_meta(None)),
            claim: if self.claim {
                ClaimPolicy::Allowed
            } else {
                ClaimPolicy::Never
            },
            wait_for_host: self.wait_for_host.map(std::time::Duration::from_secs),
            lobby_on_start: self.lobby,
            crypto_host: self.crypto_host,
            assertion_key,
            mesh: if self.loopback {
                MeshOptions::loopback()
            } else {
                MeshOptions::default()
            },
            signaling: ConnectOptions {
                backoff: BackoffPolicy {
                    max_attempts: self.connect_attempts.max(1),
                    ..BackoffPolicy::default()
                },
                ..ConnectOptions::default()
            },
            ..SessionOptions::default()
        })
    }
}

impl RunCommand for JoinArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(exit::INTERNAL, format!("cannot start runtime: {e}")))?;
        let result = rt.block_on(async move {
            // An agent acts only through its gate: stdin is read in the bare mode only.
            let lines = if self.manifest.is_none() {
                async_stream_lines(tokio::io::BufReader::new(tokio::io::stdin()).lines())
            } else {
                tokio::sync::mpsc::unbounded_channel().1
            };
            join_until(self, ctx, lines, interrupted()).await
        });
        // Do not wait for a blocked stdin read (an idle terminal) after the session ended.
        rt.shutdown_timeout(std::time::Duration::from_millis(500));
        result
    }
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Turns stdin into a channel of lines (the reader task ends at EOF).
fn async_stream_lines(
    mut lines: tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>,
) -> UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Joins, prints, and returns when the session ends or `stop` completes (then it leaves).
pub(crate) async fn join_until(
    args: JoinArgs,
    ctx: Ctx,
    mut say: UnboundedReceiver<String>,
    stop: impl Future<Output = ()>,
) -> Result<(), CliError> {
    if args.manifest.is_some() {
        return agent::run(args, ctx, stop).await;
    }
    let opts = args.options()?;
    status(
        ctx,
        "connecting",
        &format!("room {} via {}", args.room, args.broker),
    );
    let (session, mut events) = RoomSession::start(opts).await.map_err(start_error)?;
    status(
        ctx,
        "registered",
        &format!(
            "voiceId {} fingerprint {}",
            session.voice_id(),
            session.fingerprint()
        ),
    );
    tokio::pin!(stop);
    let mut say_open = true;
    loop {
        tokio::select! {
            _ = &mut stop => {
                status(ctx, "leaving", "interrupted");
                session.leave().await;
                return Ok(());
            }
            line = say.recv(), if say_open => match line {
                Some(text) if !text.trim().is_empty() => say_line(ctx, &session, &text).await,
                Some(_) => {}
                None => say_open = false,
            },
            ev = events.recv() => {
                let Some(ev) = ev else {
                    return Err(CliError::new(BROKER_UNREACHABLE, "session ended unexpectedly"));
                };
                if let Some(done) = on_event(ctx, &ev) {
                    // Drain what is left (the session leaves by itself after a terminal event).
                    while let Some(ev) = events.recv().await {
                        if matches!(ev, SessionEvent::Left) {
                            break;
                        }
                    }
                    return done;
                }
            }
        }
    }
}

fn start_error(e: SessionError) -> CliError {
    match e {
        SessionError::Signaling(s) => {
            CliError::new(BROKER_UNREACHABLE, format!("broker unreachable: {s}"))
        }
        other => CliError::new(exit::INTERNAL, other.to_string()),
    }
}

async fn say_line(ctx: Ctx, session: &SessionHandle, text: &str) {
    match session.send_chat(text).await {
        Ok(r) => status(ctx, "said", &format!("{} to {} peer(s)", r.mid, r.sent_to)),
        Err(e) => status(ctx, "say-failed", &e.to_string()),
    }
}

/// The exit error a terminal event means, if it is one.
fn terminal_error(ev: &SessionEvent) -> Option<CliError> {
    let (code, msg) = match ev {
        SessionEvent::Kicked => (KICKED, "kicked from the room"),
        SessionEvent::Denied => (DENIED, "the host denied entry"),
        SessionEvent::Locked => (LOCKED, "the room is locked"),
        SessionEvent::Unverified => (UNVERIFIED, "the room refused our agent assertion"),
        SessionEvent::GaveUp => (NO_HOST, "no host appeared"),
        SessionEvent::Left => (BROKER_UNREACHABLE, "the session stopped (broker lost)"),
        _ => return None,
    };
    Some(CliError::new(code, msg))
}

/// Prints one event; `Some(result)` when the session is over.
fn on_event(ctx: Ctx, ev: &SessionEvent) -> Option<Result<(), CliError>> {
    if let Some(err) = terminal_error(ev) {
        status(ctx, "stopped", &err.message);
        return Some(Err(err));
    }
    match ev {
        SessionEvent::Chat {
            from,
            name,
            text,
            dm,
            mid,
        } => outln!(
            "{}",
            json!({"type": "chat", "from": from, "name": name, "text": text, "dm": dm, "mid": mid})
        ),
        SessionEvent::App { from, data } => {
            outln!("{}", json!({"type": "app", "from": from, "data": data}))
        }
        SessionEvent::Connecting => status(ctx, "connecting", "dialling the room authority"),
        SessionEvent::WaitingForHost => {
            status(ctx, "waiting-for-host", "nobody holds the room yet")
        }
        SessionEvent::Knocking => status(ctx, "knocking", "presence link open"),
        SessionEvent::Lobby(LobbyStatus::Waiting) => {
            status(ctx, "lobby", "waiting for the host to admit us")
        }
        SessionEvent::Lobby(s) => status(ctx, "lobby", s.as_str()),
        SessionEvent::Admitted => status(ctx, "admitted", "in the call"),
        SessionEvent::Roster(r) => status(ctx, "roster", &format!("{} member(s)", r.members.len())),
        SessionEvent::GrantChanged(g) => {
            status(ctx, "grant", &serde_json::to_string(g).unwrap_or_default())
        }
        SessionEvent::BecameAuthority => status(ctx, "authority", "holding the room"),
        SessionEvent::Knock { conn, name } => status(ctx, "knock", &format!("{name} ({conn})")),
        SessionEvent::AuthorityLost => status(ctx, "authority-lost", "rejoining"),
        SessionEvent::Reset => status(ctx, "reset", "the host reset the room"),
        SessionEvent::LinkOpened { peer } => status(ctx, "link-open", peer),
        SessionEvent::LinkClosed { peer } => status(ctx, "link-closed", peer),
        other => status(ctx, "event", &format!("{other:?}")),
    }
    None
}

/// One status line on stderr.
fn status(ctx: Ctx, phase: &str, detail: &str) {
    if ctx.json {
        errln!("{}", json!({"status": phase, "detail": detail}));
    } else {
        errln!("[{phase}] {detail}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_runtime::broker::{Broker, BrokerOptions};
    use clap::Parser;
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: JoinArgs,
    }

    fn args(extra: &[&str]) -> JoinArgs {
        let mut v = vec!["x"];
        v.extend_from_slice(extra);
        Wrap::try_parse_from(v).unwrap().args
    }

    #[test]
    fn defaults_never_claim() {
        let a = args(&["--room", "Stand Up"]);
        let o = a.options().unwrap();
        assert_eq!(o.claim, ClaimPolicy::Never);
        assert_eq!(o.broker.port, 9000);
        assert_eq!(o.meta.as_ref().unwrap()["role"], "agent");
        assert!(Wrap::try_parse_from(["x", "--room", "r", "--lobby"]).is_err());
        let bad = args(&["--room", "r", "--broker", "not a url"]);
        assert_eq!(bad.options().unwrap_err().code, exit::USAGE);
    }

    #[tokio::test]
    async fn unreachable_broker_exits_34() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}/");
        let a = args(&["--room", "r", "--broker", &url, "--connect-attempts", "1"]);
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let err = join_until(a, Ctx { json: true }, rx, std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(err.code, BROKER_UNREACHABLE, "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn denied_exits_30_and_interrupt_exits_0() {
        let (broker, _task) =
            Broker::bind("127.0.0.1:0".parse().unwrap(), BrokerOptions::default())
                .await
                .unwrap();
        let url = broker.ws_url();
        let host_opts = SessionOptions {
            broker: broker.client_config(),
            room: "cli-room".into(),
            name: "Host".into(),
            meta: Some(json!({})),
            claim: ClaimPolicy::Allowed,
            lobby_on_start: true,
            mesh: MeshOptions::loopback(),
            ..SessionOptions::default()
        };
        let (host, mut host_ev) = RoomSession::start(host_opts).await.unwrap();
        let join = |name: &str| {
            args(&[
                "--room",
                "cli-room",
                "--broker",
                &url,
                "--name",
                name,
                "--loopback",
            ])
        };

        // Denied → 30.
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let agent = tokio::spawn(join_until(
            join("Denied"),
            Ctx { json: false },
            rx,
            std::future::pending(),
        ));
        let conn = loop {
            match tokio::time::timeout(Duration::from_secs(20), host_ev.recv()).await {
                Ok(Some(SessionEvent::Knock { conn, name })) if name == "Denied" => break conn,
                Ok(Some(_)) => {}
                other => panic!("no knock: {other:?}"),
            }
        };
        host.deny(&conn).await.unwrap();
        let res = tokio::time::timeout(Duration::from_secs(20), agent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(res.unwrap_err().code, DENIED);

        // Admitted, then interrupted → 0.
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(join_until(join("Stays"), Ctx { json: true }, rx, async {
            let _ = stop_rx.await;
        }));
        let conn = loop {
            match tokio::time::timeout(Duration::from_secs(20), host_ev.recv()).await {
                Ok(Some(SessionEvent::Knock { conn, name })) if name == "Stays" => break conn,
                Ok(Some(_)) => {}
                other => panic!("no knock: {other:?}"),
            }
        };
        host.admit(&conn).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !host
            .roster()
            .is_some_and(|r| r.members.iter().any(|m| m.name == "Stays"))
        {
            assert!(tokio::time::Instant::now() < deadline, "never admitted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_tx.send(()).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(20), agent)
            .await
            .unwrap()
            .unwrap();
        assert!(res.is_ok(), "{res:?}");
        host.leave().await;
        broker.shutdown();
    }
}
