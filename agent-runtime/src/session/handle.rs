//! [`SessionHandle`]: the cheap, cloneable control surface of a running session.

use std::sync::Arc;

use capability_manifest::Grant;
use tokio::sync::{mpsc, oneshot, watch};

use crate::signaling::SignalingError;
use crate::wire::presence::Roster;

use super::event::{Counters, SessionMetrics};

/// Errors of session commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The broker could not be reached or refused us.
    #[error("broker: {0}")]
    Signaling(#[from] SignalingError),
    /// The DTLS certificate could not be generated.
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// The session has stopped.
    #[error("the session has stopped")]
    Closed,
    /// A host command while this session is not the room authority.
    #[error("this session is not the room authority")]
    NotAuthority,
    /// No open mesh link to that peer.
    #[error("no open link to peer {0}")]
    NoLink(String),
    /// App data over the 256 KiB receivers accept (its JSON length in UTF-16 units).
    #[error("app data is {0} characters of JSON, over the 262144 receivers accept")]
    AppTooLarge(usize),
    /// A directed send was withheld: the peer lacks `receive-directed` in our view.
    #[error("peer {0} may not receive directed data (no receive-directed)")]
    Withheld(String),
    /// The peer did not answer in time.
    #[error("no answer within the timeout")]
    Timeout,
}

/// Where a chat line went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReceipt {
    /// Its `mid` (`"<voiceId>#<n>"`).
    pub mid: String,
    /// How many peers it was sent to.
    pub sent_to: usize,
}

/// Commands from handles to the event loop.
pub(crate) enum Command {
    Chat {
        text: String,
        to: Option<String>,
        reply: oneshot::Sender<Result<ChatReceipt, SessionError>>,
    },
    App {
        data: serde_json::Value,
        to: Option<String>,
        reply: oneshot::Sender<Result<ChatReceipt, SessionError>>,
    },
    FetchManifest {
        from: String,
        reply: super::app_data::ManifestReply,
    },
    Host {
        op: HostOp,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
    Leave {
        done: oneshot::Sender<()>,
    },
}

/// Authority-only operations.
#[derive(Debug, Clone)]
pub(crate) enum HostOp {
    Admit(String),
    Deny(String),
    Kick(String),
    Lobby(bool),
    Grant(String, Option<Grant>),
}

/// Controls one running [`RoomSession`](super::RoomSession). Cloneable; when every clone is
/// dropped the session leaves gracefully on its own.
#[derive(Clone)]
pub struct SessionHandle {
    pub(crate) voice_id: Arc<str>,
    pub(crate) fingerprint: Arc<str>,
    pub(crate) cmd: mpsc::Sender<Command>,
    pub(crate) roster: watch::Receiver<Option<Roster>>,
    pub(crate) grant: watch::Receiver<Grant>,
    pub(crate) counters: Arc<Counters>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("voice_id", &self.voice_id)
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// Our media peer id (the roster id every peer knows us by).
    pub fn voice_id(&self) -> &str {
        &self.voice_id
    }

    /// Our DTLS certificate fingerprint (lowercase colon-hex), the same on every connection.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The last roster seen, if any.
    pub fn roster(&self) -> Option<Roster> {
        self.roster.borrow().clone()
    }

    /// Our effective grant as far as we can tell (accepted `caps`, else the kind default).
    pub fn grant(&self) -> Grant {
        self.grant.borrow().clone()
    }

    /// Counters of frames, drops and rejections.
    pub fn metrics(&self) -> SessionMetrics {
        self.counters.snapshot()
    }

    /// Broadcasts a chat line on every open mesh link whose peer may read chat (receivers
    /// drop it unless they grant us `send-chat`).
    pub async fn send_chat(&self, text: &str) -> Result<ChatReceipt, SessionError> {
        self.chat(text, None).await
    }

    /// Sends a direct message (`dm:true`) to one peer's link.
    pub async fn send_chat_to(
        &self,
        voice_id: &str,
        text: &str,
    ) -> Result<ChatReceipt, SessionError> {
        self.chat(text, Some(voice_id.to_owned())).await
    }

    async fn chat(&self, text: &str, to: Option<String>) -> Result<ChatReceipt, SessionError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Chat {
            text: text.to_owned(),
            to,
            reply,
        };
        self.cmd.send(cmd).await.map_err(|_| SessionError::Closed)?;
        rx.await.map_err(|_| SessionError::Closed)?
    }

    /// Broadcasts `{k:'app', data}` on every open mesh link whose peer may read chat (receivers
    /// drop it unless they grant us `send-chat`). The receipt's `mid` is empty (app data has
    /// none).
    pub async fn send_app(&self, data: serde_json::Value) -> Result<ChatReceipt, SessionError> {
        self.app(data, None).await
    }

    /// Sends `{k:'app', data}` on one peer's link only (directed; the peer must hold
    /// `receive-directed` in our view, else `sent_to` is 0).
    pub async fn send_app_to(
        &self,
        voice_id: &str,
        data: serde_json::Value,
    ) -> Result<ChatReceipt, SessionError> {
        self.app(data, Some(voice_id.to_owned())).await
    }

    async fn app(
        &self,
        data: serde_json::Value,
        to: Option<String>,
    ) -> Result<ChatReceipt, SessionError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::App { data, to, reply };
        self.cmd.send(cmd).await.map_err(|_| SessionError::Closed)?;
        rx.await.map_err(|_| SessionError::Closed)?
    }

    /// Asks peer `voice_id` for its signed agent manifest (a directed
    /// `{__kib_agent:'manifest?'}`) and returns the token it answers with. Verify it before use
    /// ([`ManifestRef::matches`](capability_manifest::ManifestRef::matches) against its roster
    /// meta, then [`verify_signed_manifest`](capability_manifest::verify_signed_manifest)).
    ///
    /// Only `kibitz-agent` peers answer usefully: a browser drops a read-only agent's answer
    /// (it lacks `send-chat`), and browsers do not serve manifests.
    pub async fn fetch_manifest(
        &self,
        voice_id: &str,
        timeout: std::time::Duration,
    ) -> Result<String, SessionError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::FetchManifest {
            from: voice_id.to_owned(),
            reply,
        };
        self.cmd.send(cmd).await.map_err(|_| SessionError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(r) => r.map_err(|_| SessionError::Closed)?,
            Err(_) => Err(SessionError::Timeout),
        }
    }

    /// Authority: admits a waiting joiner by presence connection id.
    pub async fn admit(&self, conn: &str) -> Result<(), SessionError> {
        self.host(HostOp::Admit(conn.to_owned())).await
    }

    /// Authority: denies a waiting joiner.
    pub async fn deny(&self, conn: &str) -> Result<(), SessionError> {
        self.host(HostOp::Deny(conn.to_owned())).await
    }

    /// Authority: kicks a member by voiceId.
    pub async fn kick(&self, voice_id: &str) -> Result<(), SessionError> {
        self.host(HostOp::Kick(voice_id.to_owned())).await
    }

    /// Authority: turns the lobby on or off.
    pub async fn set_lobby(&self, on: bool) -> Result<(), SessionError> {
        self.host(HostOp::Lobby(on)).await
    }

    /// Authority: sets (or clears) a member's grant and broadcasts `caps`.
    pub async fn set_grant(
        &self,
        voice_id: &str,
        grant: Option<Grant>,
    ) -> Result<(), SessionError> {
        self.host(HostOp::Grant(voice_id.to_owned(), grant)).await
    }

    async fn host(&self, op: HostOp) -> Result<(), SessionError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Host { op, reply })
            .await
            .map_err(|_| SessionError::Closed)?;
        rx.await.map_err(|_| SessionError::Closed)?
    }

    /// Leaves gracefully: `bye` on every mesh link, 250 ms later the links close, then
    /// `voice on:false` and `leave` on presence, then both broker sockets close. Returns once
    /// the session has stopped (at once if it already had).
    pub async fn leave(&self) {
        let (done, rx) = oneshot::channel();
        if self.cmd.send(Command::Leave { done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}
