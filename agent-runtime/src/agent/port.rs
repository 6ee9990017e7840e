//! [`RoomPort`]: what the agent runtime needs from a room connection.

use async_trait::async_trait;
use capability_manifest::Grant;
use serde_json::Value;

use crate::session::{SessionError, SessionHandle};
use crate::wire::presence::Roster;

/// Why a room connection could not carry an act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The session failed the send.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// This room connection cannot do that yet.
    #[error("the room connection does not support {0}")]
    Unsupported(&'static str),
}

/// The room side of the agent runtime: sending and the room's state. Implemented for
/// [`SessionHandle`]; tests use fakes. Sends are **not** gated here: callers go through the
/// act gate first.
#[async_trait]
pub trait RoomPort: Send + Sync + 'static {
    /// Our voiceId.
    fn self_id(&self) -> String;
    /// The last roster, if any.
    fn roster(&self) -> Option<Roster>;
    /// The host grant as this connection knows it (accepted `caps`, else the default).
    fn host_grant(&self) -> Grant;
    /// Broadcast built-in chat.
    async fn send_chat(&self, text: &str) -> Result<(), PortError>;
    /// A direct chat message (`dm:true`) to one peer.
    async fn send_chat_to(&self, to: &str, text: &str) -> Result<(), PortError>;
    /// Broadcast `k:'app'` data.
    async fn send_app(&self, data: &Value) -> Result<(), PortError>;
    /// `k:'app'` data to one peer.
    async fn send_app_to(&self, to: &str, data: &Value) -> Result<(), PortError>;
    /// Publish 16 kHz mono PCM as our audio. Default: unsupported.
    async fn send_audio(&self, _pcm: &[i16]) -> Result<(), PortError> {
        Err(PortError::Unsupported("publishing audio"))
    }
}

#[async_trait]
impl RoomPort for SessionHandle {
    fn self_id(&self) -> String {
        self.voice_id().to_owned()
    }

    fn roster(&self) -> Option<Roster> {
        SessionHandle::roster(self)
    }

    fn host_grant(&self) -> Grant {
        self.grant()
    }

    async fn send_chat(&self, text: &str) -> Result<(), PortError> {
        SessionHandle::send_chat(self, text).await?;
        Ok(())
    }

    async fn send_chat_to(&self, to: &str, text: &str) -> Result<(), PortError> {
        SessionHandle::send_chat_to(self, to, text).await?;
        Ok(())
    }

    async fn send_app(&self, data: &Value) -> Result<(), PortError> {
        SessionHandle::send_app(self, data.clone()).await?;
        Ok(())
    }

    async fn send_app_to(&self, to: &str, data: &Value) -> Result<(), PortError> {
        SessionHandle::send_app_to(self, to, data.clone()).await?;
        Ok(())
    }
}
