//! The [`Agent`] trait and the runtime that hosts agents.
//!
//! An agent declares its [`Lanes`], receives gated [`AgentEvent`]s and acts through a
//! [`Context`]. An [`AgentHost`] verifies each agent's signed manifest, checks its lanes, and
//! runs it in its own task against one room ([`RoomPort`], implemented for
//! [`SessionHandle`](crate::session::SessionHandle)).

mod artifact;
mod context;
mod event;
mod host;
mod lanes;
mod port;
mod runner;

use async_trait::async_trait;

pub use artifact::{Artifact, ArtifactRecord, ArtifactSink, NullSink, TranscriptSegment};
pub use context::Context;
pub use event::{AgentEvent, AudioFrame, VideoFrame, AUDIO_SAMPLE_RATE};
pub use host::{AgentHost, AgentId, AgentReport, AgentSpec, HostOptions};
pub use lanes::{Lanes, StartError};
pub use port::{PortError, RoomPort};
pub use runner::AgentExit;

/// The error type agent callbacks return: anything that converts with `?`.
pub type AgentError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An AI participant in a Kibitz room.
///
/// The host calls [`lanes`](Agent::lanes) once, before starting: every lane must be declared
/// by the agent's signed manifest, and required lanes must be in the effective grant (see
/// [`Lanes::check`]). Then [`on_start`](Agent::on_start), one [`on_event`](Agent::on_event) per
/// event (never concurrently: `&mut self`), and [`on_stop`](Agent::on_stop) at shutdown,
/// within the host's deadline. An error from `on_event` is logged and the agent keeps running;
/// an error from `on_start` ends it.
///
/// Events reach the agent only through its [`LaneGate`](crate::lane_gate::LaneGate), and acts
/// leave only through it: without `send-chat`, [`Context::say`] returns
/// [`ActError::NotGranted`](crate::lane_gate::ActError::NotGranted) and sends nothing.
///
/// # Example
///
/// A keyword alert: it reads chat and, when granted `send-chat`, answers in the room.
///
/// ```
/// use agent_runtime::agent::{Agent, AgentError, AgentEvent, Artifact, Context, Lanes};
/// use agent_runtime::lane_gate::ActError;
/// use async_trait::async_trait;
/// use capability_manifest::Capability;
///
/// struct KeywordAlert {
///     word: String,
///     hits: u32,
/// }
///
/// #[async_trait]
/// impl Agent for KeywordAlert {
///     fn lanes(&self) -> Lanes {
///         Lanes::new()
///             .require(Capability::ReadChat)
///             .optional(Capability::SendChat)
///     }
///
///     async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError> {
///         if let AgentEvent::Chat { name, text, .. } = ev {
///             if text.to_lowercase().contains(&self.word) {
///                 self.hits += 1;
///                 cx.emit(Artifact::Custom {
///                     kind: "keyword".into(),
///                     data: serde_json::json!({ "from": name, "text": text }),
///                 });
///                 match cx.say(&format!("{name} said {:?}", self.word)).await {
///                     // Read-only until the host grants `send-chat`: keep counting quietly.
///                     Err(ActError::NotGranted { .. }) => {}
///                     other => other?,
///                 }
///             }
///         }
///         Ok(())
///     }
///
///     async fn on_stop(&mut self, cx: &mut Context) -> Result<(), AgentError> {
///         cx.emit(Artifact::Summary {
///             text: format!("{} mentions of {:?}", self.hits, self.word),
///         });
///         Ok(())
///     }
/// }
///
/// # fn main() {
/// let agent = KeywordAlert { word: "deadline".into(), hits: 0 };
/// assert!(agent.lanes().is_required(Capability::ReadChat));
/// # }
/// ```
///
/// Run it with an [`AgentHost`]:
///
/// ```no_run
/// # use std::sync::Arc;
/// # use agent_runtime::agent::{Agent, AgentHost, AgentSpec, HostOptions};
/// # use agent_runtime::session::{RoomSession, SessionOptions};
/// # async fn demo(agent: impl Agent, token: String) -> Result<(), Box<dyn std::error::Error>> {
/// let (session, mut events) = RoomSession::start(SessionOptions::default()).await?;
/// let mut host = AgentHost::new(Arc::new(session.clone()), HostOptions::default());
/// host.spawn(agent, AgentSpec::new(token))?;
/// let _terminal = host.run_session(&mut events).await;
/// let _reports = host.shutdown().await;
/// session.leave().await;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Agent: Send + 'static {
    /// The capabilities the agent uses (must be a subset of its manifest's lanes).
    fn lanes(&self) -> Lanes;

    /// Called once before the first event. Default: nothing.
    async fn on_start(&mut self, cx: &mut Context) -> Result<(), AgentError> {
        let _ = cx;
        Ok(())
    }

    /// Called for each event that passed the lane gate.
    async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError>;

    /// Called once at shutdown, within the host's stop deadline. Default: nothing.
    async fn on_stop(&mut self, cx: &mut Context) -> Result<(), AgentError> {
        let _ = cx;
        Ok(())
    }
}
