//! A custom read-only agent embedded end to end: it verifies its own signed manifest, joins a
//! Kibitz room with a [`RoomSession`], runs in an [`AgentHost`] and prints every chat line it
//! is allowed to read as a JSON line on stdout. At shutdown it prints a summary artifact.
//!
//! ```sh
//! kibitz-agent keygen --out agent.jwk
//! kibitz-agent manifest sign --key agent.jwk --in examples/manifests/chat-logger.json \
//!     --out chat-logger.jws --expires-in 30d
//! cargo run -p kibitz-agent-examples --bin chat_logger -- \
//!     --room standup --manifest chat-logger.jws --key agent.jwk
//! ```
//!
//! Exit status: 0 after Ctrl-C, 1 when it could not start, 2 when the room ended the session
//! (denied, locked, kicked, broker lost).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agent_runtime::agent::{
    Agent, AgentError, AgentEvent, AgentHost, AgentSpec, Artifact, ArtifactRecord, Context,
    HostOptions, Lanes,
};
use agent_runtime::mesh::MeshOptions;
use agent_runtime::session::{agent_meta, RoomSession, SessionOptions};
use agent_runtime::signaling::BrokerConfig;
use async_trait::async_trait;
use capability_manifest::{
    verify_signed_manifest, AgentKey, Capability, Disclosure, VerifyManifestOptions,
};
use clap::Parser;
use serde_json::json;
use tokio::sync::mpsc;

/// The agent: counts chat lines and hands each one to the host as an artifact.
struct ChatLog {
    lines: u64,
}

#[async_trait]
impl Agent for ChatLog {
    fn lanes(&self) -> Lanes {
        // Must be covered by the manifest; read-roster is used only when granted.
        Lanes::new()
            .require(Capability::ReadChat)
            .optional(Capability::ReadRoster)
    }

    async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError> {
        if let AgentEvent::Chat {
            from,
            name,
            text,
            dm,
        } = ev
        {
            self.lines += 1;
            cx.emit(Artifact::Custom {
                kind: "chat".into(),
                data: json!({"n": self.lines, "from": from, "name": name, "text": text, "dm": dm}),
            });
        }
        Ok(())
    }

    async fn on_stop(&mut self, cx: &mut Context) -> Result<(), AgentError> {
        cx.emit(Artifact::Summary {
            text: format!("{} chat line(s) logged", self.lines),
        });
        Ok(())
    }
}

/// Command line of the example.
#[derive(Debug, Parser)]
struct Args {
    /// Room name.
    #[arg(long)]
    room: String,
    /// PeerJS broker URL.
    #[arg(long, default_value = "ws://127.0.0.1:9000/")]
    broker: String,
    /// Display name.
    #[arg(long, default_value = "Chat logger")]
    name: String,
    /// Signed manifest (JWS compact).
    #[arg(long)]
    manifest: PathBuf,
    /// The agent's private JWK (the manifest's signer).
    #[arg(long)]
    key: PathBuf,
    /// Bind WebRTC to 127.0.0.1 only.
    #[arg(long)]
    loopback: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    // 1. Our key and our manifest, which must be signed by that key.
    let key = AgentKey::from_jwk_str(&std::fs::read_to_string(&args.key)?)?;
    let token = std::fs::read_to_string(&args.manifest)?.trim().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut verify = VerifyManifestOptions::at(now);
    verify.expected_key = Some(key.thumbprint());
    let signed = verify_signed_manifest(&token, &verify)?;

    // 2. Join, disclosing the manifest in the roster meta and serving it on request.
    let disclosure = Disclosure::from_signed(&signed);
    let opts = SessionOptions {
        broker: BrokerConfig::from_url(&args.broker)?,
        room: args.room.clone(),
        name: args.name.clone(),
        meta: Some(agent_meta(Some(&disclosure.to_meta()))),
        assertion_key: Some(Arc::new(key.clone())),
        manifest_token: Some(token.clone()),
        mesh: if args.loopback {
            MeshOptions::loopback()
        } else {
            MeshOptions::default()
        },
        ..SessionOptions::default()
    };
    let (session, mut events) = RoomSession::start(opts).await?;
    eprintln!("joined {} as {}", args.room, session.voice_id());

    // 3. Host the agent; its artifacts come back on a channel and go to stdout.
    let (tx, mut artifacts) = mpsc::unbounded_channel::<ArtifactRecord>();
    let printer = tokio::spawn(async move {
        while let Some(rec) = artifacts.recv().await {
            println!("{}", json!({"agent": rec.agent, "artifact": rec.artifact}));
        }
    });
    let mut host = AgentHost::new(
        Arc::new(session.clone()),
        HostOptions {
            sink: Arc::new(tx),
            ..HostOptions::default()
        },
    );
    let mut spec = AgentSpec::new(token);
    spec.verify.expected_key = Some(key.thumbprint());
    if let Err(e) = host.spawn(ChatLog { lines: 0 }, spec) {
        session.leave().await;
        return Err(e.into());
    }

    // 4. Run until the room ends the session or Ctrl-C; then stop the agent and leave.
    let code = tokio::select! {
        terminal = host.run_session(&mut events) => {
            eprintln!("session ended: {terminal:?}");
            ExitCode::from(2)
        }
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    };
    host.shutdown().await;
    session.leave().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), printer).await;
    Ok(code)
}
