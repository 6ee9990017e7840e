//! The room session: the thin tokio shell that joins a real Kibitz room end to end.
//!
//! One [`RoomSession`] is two PeerJS peers on one broker and one DTLS certificate
//! (kibitz-wire.md §1, §11):
//!
//! - the **media peer** (server-assigned id = our `voiceId`) answers every data OFFER and dials
//!   the `sig` links the [`MeshPlanner`] asks for; it carries chat,
//!   app data, `caps` and the `mh` keepalive;
//! - the **presence peer** dials `kbz-v1-<room>` and runs the
//!   [`ParticipantState`] over that link, with the
//!   [`JoinLoop`] deciding retries, waiting for a host, and (with
//!   [`ClaimPolicy::Allowed`](crate::room::ClaimPolicy)) claiming the room and running the
//!   [`AuthorityState`](crate::room::AuthorityState) ourselves.
//!
//! Everything protocol-shaped is decided by those sans-I/O machines; a single event-loop task
//! per session owns them and feeds them `Instant::now()`, selecting over broker and link
//! events, handle commands and the earliest machine deadline. Every other task (broker pumps,
//! link readers and writers, dials, claims) lives in the loop's `JoinSet` under one
//! `CancellationToken`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agent_runtime::session::SessionError> {
//! use agent_runtime::session::{RoomSession, SessionEvent, SessionOptions};
//! use agent_runtime::signaling::BrokerConfig;
//! let opts = SessionOptions {
//!     broker: BrokerConfig::from_url("ws://127.0.0.1:9000/").expect("url"),
//!     room: "standup".into(),
//!     name: "Notetaker".into(),
//!     ..SessionOptions::default()
//! };
//! let (session, mut events) = RoomSession::start(opts).await?;
//! while let Some(ev) = events.recv().await {
//!     if let SessionEvent::Chat { name, text, .. } = &ev {
//!         println!("{name}: {text}");
//!     }
//!     if ev.is_terminal() {
//!         break;
//!     }
//! }
//! session.leave().await;
//! # Ok(()) }
//! ```

mod app_data;
mod authority_host;
mod broker_peer;
mod codec;
mod driver;
mod event;
mod grant_view;
mod handle;
mod input;
mod leave;
mod links;
mod mesh_links;
mod options;
mod presence_link;

use std::sync::Arc;
use std::time::Instant;

use capability_manifest::{authority_peer_id, normalize_room};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::mesh::DtlsIdentity;
use crate::room::{
    JoinLoop, JoinLoopOptions, MeshOptions as PlannerOptions, MeshPlanner, ParticipantOptions,
    ParticipantState,
};
use crate::signaling::random_token;
use crate::wire::json::from_json;

pub use event::{SessionEvent, SessionMetrics};
pub use handle::{ChatReceipt, SessionError, SessionHandle};
pub use options::{agent_meta, SessionOptions, SESSION_FEATURES};

use broker_peer::BrokerPeer;
use driver::{Driver, DriverParts, Facts};
use event::Counters;
use grant_view::default_grant;
use input::PeerKind;

/// Entry point: starts room sessions.
#[derive(Debug)]
pub struct RoomSession;

impl RoomSession {
    /// Registers the media peer (our voiceId) and the presence peer with the broker, then
    /// spawns the session's event loop, which joins the room. Fails when the broker cannot be
    /// reached or the certificate cannot be made; everything after that is reported as
    /// [`SessionEvent`]s.
    pub async fn start(
        opts: SessionOptions,
    ) -> Result<(SessionHandle, mpsc::UnboundedReceiver<SessionEvent>), SessionError> {
        let identity = match opts.identity.clone() {
            Some(i) => i,
            None => Arc::new(
                DtlsIdentity::generate().map_err(|e| SessionError::Certificate(e.to_string()))?,
            ),
        };
        let cancel = CancellationToken::new();
        let mut sig = opts.signaling.clone();
        sig.id = None;
        sig.token = None;
        let (media, media_pumps) = BrokerPeer::connect(
            opts.broker.clone(),
            sig.clone(),
            Arc::clone(&identity),
            opts.mesh.clone(),
            cancel.child_token(),
        )
        .await?;
        let presence = BrokerPeer::connect(
            opts.broker.clone(),
            sig.clone(),
            Arc::clone(&identity),
            opts.mesh.clone(),
            cancel.child_token(),
        )
        .await;
        let (presence, presence_pumps) = match presence {
            Ok(p) => p,
            Err(e) => {
                media.cancel.cancel();
                media.handle.close().await;
                return Err(e.into());
            }
        };

        let voice_id = media.id().to_owned();
        let room = normalize_room(&opts.room);
        let meta_json = opts.meta.clone().unwrap_or_else(|| agent_meta(None));
        let meta = Some(from_json(&meta_json));
        let span = tracing::info_span!("room", room = %room, voice = %voice_id);
        span.in_scope(|| {
            tracing::info!(presence = %presence.id(), fingerprint = %identity.fingerprint(), "registered with the broker")
        });

        let (tx, rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (roster_tx, roster_rx) = watch::channel(None);
        let (grant_tx, grant_rx) = watch::channel(default_grant(meta.as_ref()));
        let counters = Arc::new(Counters::default());
        let mut tasks = JoinSet::new();
        media.start_pumps(media_pumps, PeerKind::Media, 0, &mut tasks, tx.clone());
        presence.start_pumps(
            presence_pumps,
            PeerKind::Presence,
            0,
            &mut tasks,
            tx.clone(),
        );

        let now = Instant::now();
        let facts = Facts {
            broker: opts.broker.clone(),
            signaling: sig,
            mesh: opts.mesh.clone(),
            identity: Arc::clone(&identity),
            room_id: authority_peer_id(&opts.room),
            room,
            voice_id: voice_id.clone(),
            name: opts.name.clone(),
            avatar: opts.avatar.clone(),
            token: opts.token.clone().unwrap_or_else(random_token),
            meta,
            lobby_on_start: opts.lobby_on_start,
            crypto_host: opts.crypto_host,
            assertion_key: opts.assertion_key.clone(),
            fixed_assertion: opts.fixed_assertion.clone(),
            agent_keys: opts.agent_keys.clone(),
            manifest_token: opts.manifest_token.clone(),
        };
        let driver = Driver::new(DriverParts {
            facts,
            tasks,
            tx,
            rx,
            cmd_rx,
            events: ev_tx,
            cancel,
            media,
            presence,
            join: JoinLoop::new(JoinLoopOptions {
                claim: opts.claim,
                wait_for_host: opts.wait_for_host,
            }),
            participant: ParticipantState::new(now, ParticipantOptions::default()),
            planner: MeshPlanner::new(now, voice_id.clone(), PlannerOptions::default()),
            roster_tx,
            grant_tx,
            counters: Arc::clone(&counters),
        });
        tokio::spawn(driver.run().instrument(span));
        let handle = SessionHandle {
            voice_id: voice_id.into(),
            fingerprint: identity.fingerprint().into(),
            cmd: cmd_tx,
            roster: roster_rx,
            grant: grant_rx,
            counters,
        };
        Ok((handle, ev_rx))
    }
}
