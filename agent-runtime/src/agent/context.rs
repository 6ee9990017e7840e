//! [`Context`]: how an agent perceives the room's state and acts, every act gated.

use std::sync::Arc;

use capability_manifest::{Capability, Grant};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::egress::EgressClient;
use crate::lane_gate::{ActError, ActKind, LaneGate, LaneMetrics};
use crate::wire::presence::Roster;

use super::artifact::{Artifact, ArtifactRecord, ArtifactSink};
use super::port::RoomPort;

/// An agent's handle on its room. Every act passes the act gate
/// ([`LaneGate::check_act`]) first and fails with [`ActError::NotGranted`] without touching the
/// wire when the effective grant lacks the capability.
pub struct Context {
    pub(crate) name: String,
    pub(crate) port: Arc<dyn RoomPort>,
    pub(crate) gate: Arc<LaneGate>,
    pub(crate) http: EgressClient,
    pub(crate) sink: Arc<dyn ArtifactSink>,
    pub(crate) cancel: CancellationToken,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over `port` for an agent called `name` (the host builds these; public for
    /// tests and custom hosts).
    pub fn new(
        name: impl Into<String>,
        port: Arc<dyn RoomPort>,
        gate: Arc<LaneGate>,
        http: EgressClient,
        sink: Arc<dyn ArtifactSink>,
    ) -> Context {
        Context {
            name: name.into(),
            port,
            gate,
            http,
            sink,
            cancel: CancellationToken::new(),
        }
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Our voiceId in the room.
    pub fn self_id(&self) -> String {
        self.port.self_id()
    }

    /// Broadcast a built-in chat line (needs `send-chat`).
    pub async fn say(&self, text: &str) -> Result<(), ActError> {
        self.gate.check_act(ActKind::Say)?;
        self.port.send_chat(text).await?;
        Ok(())
    }

    /// A direct chat message to one participant (needs `send-chat`).
    pub async fn say_to(&self, to: &str, text: &str) -> Result<(), ActError> {
        self.gate.check_act(ActKind::SayTo)?;
        self.port.send_chat_to(to, text).await?;
        Ok(())
    }

    /// Directed app data to one participant (needs `send-chat`: receivers drop all content from
    /// senders without it).
    pub async fn send_to(&self, to: &str, data: Value) -> Result<(), ActError> {
        self.gate.check_act(ActKind::SendTo)?;
        self.port.send_app_to(to, &data).await?;
        Ok(())
    }

    /// Broadcast an `act` envelope, `{"__kib_agent":"act","action":…}`, on the app channel
    /// (needs `act` and `send-chat`).
    pub async fn act(&self, action: Value) -> Result<(), ActError> {
        self.gate.check_act(ActKind::Act)?;
        let envelope = json!({ "__kib_agent": "act", "action": action });
        self.port.send_app(&envelope).await?;
        Ok(())
    }

    /// Publish 16 kHz mono PCM as our audio (needs `speak`).
    pub async fn speak(&self, pcm: &[i16]) -> Result<(), ActError> {
        self.gate.check_act(ActKind::Speak)?;
        self.port.send_audio(pcm).await?;
        Ok(())
    }

    /// The current roster, or `None` without `read-roster` (or before the first roster).
    pub fn roster(&self) -> Option<Roster> {
        if self.gate.effective().allows(Capability::ReadRoster) {
            self.port.roster()
        } else {
            None
        }
    }

    /// The effective grant: host grant ∩ manifest request, empty once expired.
    pub fn grant(&self) -> Grant {
        self.gate.effective()
    }

    /// The HTTP client limited to the manifest's declared origins.
    pub fn http(&self) -> &EgressClient {
        &self.http
    }

    /// Hand an artifact (transcript segment, summary, custom record) to the host's sink.
    pub fn emit(&self, artifact: Artifact) {
        self.sink.emit(ArtifactRecord {
            agent: self.name.clone(),
            artifact,
        });
    }

    /// This agent's lane and act counters.
    pub fn metrics(&self) -> LaneMetrics {
        self.gate.metrics()
    }

    /// Cancelled when the host stops this agent; long work in `on_event` may watch it.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
}
