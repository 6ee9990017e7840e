//! An agent hosted by `AgentHost` on a real `RoomSession` over the embedded broker: chat in,
//! acts refused until the host grants `send-chat`, then answered, and a kick ends the run.
#![allow(clippy::unwrap_used)]

mod agent_support;
mod session_support;
mod signaling_support;

use std::sync::Arc;

use agent_runtime::agent::{Agent, AgentError, AgentEvent, AgentHost, Context, HostOptions, Lanes};
use agent_runtime::lane_gate::{ActError, ActKind, LaneKind};
use agent_runtime::session::{RoomSession, SessionEvent};
use async_trait::async_trait;
use capability_manifest::{Capability, Capability::*, Grant};
use tokio::sync::mpsc;

use agent_support::spec;
use session_support::{agent_opts, host_opts, wait_for};
use signaling_support::{Backend, TestBroker, Timings};

/// Answers "ping" with "pong" and reports what it saw and how its acts went.
struct PingPong {
    tx: mpsc::UnboundedSender<String>,
}

#[async_trait]
impl Agent for PingPong {
    fn lanes(&self) -> Lanes {
        Lanes::new().require(ReadChat).optional(SendChat)
    }

    async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError> {
        match ev {
            AgentEvent::Chat { text, .. } if text == "ping" => {
                let outcome = match cx.say("pong").await {
                    Ok(()) => "said pong".to_owned(),
                    Err(ActError::NotGranted { cap, .. }) => format!("not granted: {cap}"),
                    Err(e) => format!("error: {e}"),
                };
                let _ = self.tx.send(outcome);
            }
            AgentEvent::GrantChanged { effective } => {
                let _ = self.tx.send(format!(
                    "grant: send-chat={}",
                    effective.can_act(Capability::SendChat)
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_agent_in_a_real_room() {
    let broker = TestBroker::start(Backend::Embedded, Timings::default()).await;
    let room = "Agent Host Room";
    let mut hopts = host_opts(broker.cfg(), room, "Host");
    hopts.crypto_host = true;
    let (host, mut host_ev) = RoomSession::start(hopts).await.unwrap();
    wait_for(&mut host_ev, "host becomes authority", 20, |e| {
        matches!(e, SessionEvent::BecameAuthority)
    })
    .await;

    let mut aopts = agent_opts(broker.cfg(), room, "PingPong");
    aopts.crypto_host = true;
    let (session, mut agent_ev) = RoomSession::start(aopts).await.unwrap();
    let agent_id = session.voice_id().to_owned();
    let host_id = host.voice_id().to_owned();

    let mut agents = AgentHost::new(Arc::new(session.clone()), HostOptions::default());
    let (tx, mut seen) = mpsc::unbounded_channel();
    let id = agents
        .spawn(PingPong { tx }, spec(&[ReadChat, SendChat]))
        .unwrap();

    // Wait for the mesh link before handing the event stream to the host.
    wait_for(
        &mut agent_ev,
        "agent link open",
        30,
        |e| matches!(e, SessionEvent::LinkOpened { peer } if *peer == host_id),
    )
    .await;
    let runner = tokio::spawn(async move {
        let terminal = agents.run_session(&mut agent_ev).await;
        (agents, terminal)
    });

    host.send_chat("ping").await.unwrap();
    assert_eq!(seen.recv().await.unwrap(), "not granted: send-chat");

    let mut granted = Grant::agent_default();
    granted.act.push(SendChat);
    host.set_grant(&agent_id, Some(granted)).await.unwrap();
    assert_eq!(seen.recv().await.unwrap(), "grant: send-chat=true");

    host.send_chat("ping").await.unwrap();
    assert_eq!(seen.recv().await.unwrap(), "said pong");
    let pong = wait_for(
        &mut host_ev,
        "pong",
        10,
        |e| matches!(e, SessionEvent::Chat { text, .. } if text == "pong"),
    )
    .await;
    assert!(matches!(pong, SessionEvent::Chat { from, .. } if from == agent_id));

    host.kick(&agent_id).await.unwrap();
    let (agents, terminal) = tokio::time::timeout(std::time::Duration::from_secs(20), runner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(terminal, Some(SessionEvent::Kicked));
    let m = agents.metrics(id).unwrap();
    assert_eq!(m.act(ActKind::Say).refused, 1);
    assert_eq!(m.act(ActKind::Say).allowed, 1);
    assert!(m.lane(LaneKind::Chat).delivered >= 2);
    let reports = agents.shutdown().await;
    assert_eq!(reports.len(), 1);
    session.leave().await;
    host.leave().await;
}
