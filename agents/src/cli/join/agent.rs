//! `join --manifest M --key K --agent NAME`: run a built-in agent under its signed manifest.
//!
//! The manifest is verified (signature, signer = `--key`, expiry, schema) and the agent's lanes
//! are checked against it before anything touches the network. The roster meta discloses the
//! manifest (`role`, `readOnly`, `backend`, `egress`, `manifest`), the session serves the token
//! on request, and the agent runs in an [`AgentHost`] fed by the session's events.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::agent::{
    Agent as _, AgentExit, AgentHost, AgentSpec, ArtifactRecord, HostOptions, Lanes, StartError,
};
use agent_runtime::lane_gate::LaneGate;
use agent_runtime::session::{agent_meta, RoomSession, SessionEvent};
use capability_manifest::{
    verify_signed_manifest, Capability, Disclosure, Grant, VerifyManifestOptions,
};
use kibitz_agents::builtin::{self, BuiltinError, BuiltinOptions};
use serde_json::json;
use tokio::sync::mpsc;

use super::{on_event, start_error, status, terminal_error, JoinArgs, AGENT_REFUSED};
use crate::cli::exit::{self, CliError};
use crate::cli::{files, now_secs, Ctx};

/// How long the event forwarder and the artifact printer may take to drain after leaving.
const DRAIN: Duration = Duration::from_secs(5);

/// Verify, join, run the agent until a terminal event or `stop`, then stop it and leave.
pub(super) async fn run(
    args: JoinArgs,
    ctx: Ctx,
    stop: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let (Some(manifest_path), Some(agent_name)) = (args.manifest.clone(), args.agent.clone())
    else {
        return Err(CliError::new(
            exit::USAGE,
            "--manifest needs --agent and --key",
        ));
    };
    let mut opts = args.options()?;
    let Some(key) = opts.assertion_key.clone() else {
        return Err(CliError::new(exit::USAGE, "--manifest needs --key"));
    };

    // 1. The manifest: signed by --key, valid now.
    let token = files::read_text(&manifest_path)?.trim().to_owned();
    let mut verify = VerifyManifestOptions::at(now_secs());
    verify.expected_key = Some(key.thumbprint());
    let signed = verify_signed_manifest(&token, &verify).map_err(|e| {
        let e = CliError::from(e);
        CliError::new(
            e.code,
            format!(
                "{}: manifest refused: {}",
                manifest_path.display(),
                e.message
            ),
        )
    })?;
    let manifest = &signed.manifest;

    // 2. The agent, and its lanes against the manifest (and Kibitz's default agent grant).
    let agent = builtin::build(
        &agent_name,
        &BuiltinOptions {
            out: args.out.clone(),
        },
    )
    .map_err(|e| match &e {
        BuiltinError::Io { .. } => CliError::new(exit::IO, e.to_string()),
        _ => CliError::new(exit::USAGE, e.to_string()),
    })?;
    let lanes = agent.lanes();
    lanes
        .check(&manifest.agent.name, manifest, &Grant::agent_default())
        .map_err(|e| CliError::new(AGENT_REFUSED, format!("agent refused: {e}")))?;
    status(
        ctx,
        "manifest",
        &format!(
            "{} {} signed by {}; lanes {}",
            manifest.agent.name,
            manifest.agent.version,
            signed.key_thumbprint,
            caps_text(lanes.all())
        ),
    );

    // 3. Join with the disclosure in the roster meta and the token served on request.
    let disclosure = Disclosure::from_signed(&signed);
    opts.meta = Some(agent_meta(Some(&disclosure.to_meta())));
    opts.manifest_token = Some(token.clone());
    let requested = manifest.requested_grant();
    status(
        ctx,
        "connecting",
        &format!("room {} via {}", args.room, args.broker),
    );
    let (session, events) = RoomSession::start(opts).await.map_err(start_error)?;
    status(
        ctx,
        "registered",
        &format!(
            "voiceId {} fingerprint {}",
            session.voice_id(),
            session.fingerprint()
        ),
    );

    // 4. The host and the agent.
    let (art_tx, art_rx) = mpsc::unbounded_channel::<ArtifactRecord>();
    let mut printer = tokio::spawn(print_artifacts(ctx, art_rx));
    let mut host = AgentHost::new(
        Arc::new(session.clone()),
        HostOptions {
            sink: Arc::new(art_tx),
            ..HostOptions::default()
        },
    );
    let mut spec = AgentSpec::new(token);
    spec.verify.expected_key = Some(key.thumbprint());
    let id = match host.spawn(agent, spec) {
        Ok(id) => id,
        Err(e) => {
            session.leave().await;
            return Err(spawn_error(e));
        }
    };
    let gate = host.gate(id);
    status(
        ctx,
        "agent",
        &format!("{agent_name} started as {:?}", manifest.agent.name),
    );

    // 5. Run: a forwarder prints each phase and hands the events to the host.
    let (fwd_tx, mut fwd_rx) = mpsc::unbounded_channel();
    let mut forwarder = tokio::spawn(forward(ctx, events, fwd_tx, gate, lanes, requested));
    tokio::pin!(stop);
    let outcome = tokio::select! {
        terminal = host.run_session(&mut fwd_rx) => Some(terminal),
        _ = &mut stop => None,
    };
    let result = match outcome {
        None => {
            status(ctx, "leaving", "interrupted");
            Ok(())
        }
        Some(Some(ev)) => Err(terminal_error(&ev).unwrap_or_else(|| {
            CliError::new(exit::INTERNAL, format!("unexpected terminal event {ev:?}"))
        })),
        Some(None) => Err(CliError::new(
            super::BROKER_UNREACHABLE,
            "session ended unexpectedly",
        )),
    };

    // 6. Stop the agent (on_stop may still emit), then leave and drain.
    for report in host.shutdown().await {
        if report.exit != AgentExit::Stopped {
            status(
                ctx,
                "agent-exit",
                &format!("{}: {:?}", report.name, report.exit),
            );
        }
    }
    session.leave().await;
    drop(fwd_rx);
    if tokio::time::timeout(DRAIN, &mut forwarder).await.is_err() {
        forwarder.abort();
    }
    if tokio::time::timeout(DRAIN, &mut printer).await.is_err() {
        printer.abort();
    }
    result
}

fn spawn_error(e: StartError) -> CliError {
    match e {
        StartError::Unverified(inner) => {
            let e = CliError::from(inner);
            CliError::new(e.code, format!("manifest refused: {}", e.message))
        }
        other => CliError::new(AGENT_REFUSED, format!("agent refused: {other}")),
    }
}

/// Prints every session phase and passes the events on to the host.
async fn forward(
    ctx: Ctx,
    mut events: mpsc::UnboundedReceiver<SessionEvent>,
    to_host: mpsc::UnboundedSender<SessionEvent>,
    gate: Option<Arc<LaneGate>>,
    lanes: Lanes,
    requested: Grant,
) {
    while let Some(ev) = events.recv().await {
        match &ev {
            // Content goes to the agent; its artifacts are what we print.
            SessionEvent::Chat { .. } | SessionEvent::App { .. } => {}
            SessionEvent::Admitted => {
                let effective = match &gate {
                    Some(g) => g.effective(),
                    None => Grant::empty(),
                };
                grant_status(ctx, "admitted", "admitted with grant", &effective, &lanes);
            }
            SessionEvent::GrantChanged(host_grant) => {
                let effective = Grant::intersect(&requested, host_grant);
                grant_status(ctx, "grant", "grant changed to", &effective, &lanes);
            }
            other => {
                let _ = on_event(ctx, other);
            }
        }
        let end = matches!(ev, SessionEvent::Left);
        if to_host.send(ev).is_err() || end {
            break;
        }
    }
}

fn grant_status(ctx: Ctx, phase: &str, what: &str, effective: &Grant, lanes: &Lanes) {
    status(ctx, phase, &format!("{what} {}", grant_text(effective)));
    let open = lanes.all().filter(|c| effective.allows(*c));
    status(ctx, "lanes", &format!("lanes open: {}", caps_text(open)));
}

/// `perceive read-chat, read-roster; act none`.
fn grant_text(g: &Grant) -> String {
    format!(
        "perceive {}; act {}",
        caps_text(g.perceive.iter().copied()),
        caps_text(g.act.iter().copied())
    )
}

fn caps_text(caps: impl Iterator<Item = Capability>) -> String {
    let v: Vec<&str> = caps.map(|c| c.as_str()).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// One line per artifact on stdout: JSON with `--json`, else `[agent] {artifact}`.
async fn print_artifacts(ctx: Ctx, mut rx: mpsc::UnboundedReceiver<ArtifactRecord>) {
    while let Some(rec) = rx.recv().await {
        if ctx.json {
            outln!(
                "{}",
                json!({"type": "artifact", "agent": rec.agent, "artifact": rec.artifact})
            );
        } else {
            outln!(
                "[{}] {}",
                rec.agent,
                serde_json::to_string(&rec.artifact).unwrap_or_default()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_text_lists_caps_or_none() {
        let g = Grant::agent_default();
        let t = grant_text(&g);
        assert!(t.starts_with("perceive read-chat"), "{t}");
        assert!(t.ends_with("act none"), "{t}");
        assert_eq!(caps_text(std::iter::empty()), "none");
    }
}
