//! What a [`RoomSession`](super::RoomSession) is started with.

use std::sync::Arc;
use std::time::Duration;

use capability_manifest::{AgentEntry, AgentKey};
use serde_json::{json, Value as Json};

use crate::mesh::{DtlsIdentity, MeshOptions};
use crate::room::ClaimPolicy;
use crate::signaling::{BrokerConfig, ConnectOptions as SignalingOptions};

/// Feature tags a session advertises in `meta['~kbz'].f`: plain chat and caps only. Never the
/// `xfer.*` tags, or browsers would send us chunked transfers (kibitz-wire.md §5.5).
pub const SESSION_FEATURES: [&str; 2] = ["chat.v1", "caps.v1"];

/// The roster meta of an agent: `{role:'agent', …extra, '~kbz':{v, p:1, f:['chat.v1','caps.v1']}}`.
///
/// `extra` (usually a manifest [`Disclosure`](capability_manifest::Disclosure)'s meta: `backend`,
/// `egress`, `readOnly`, `manifest`) is merged after `role`; its own `role` and `~kbz` keys are
/// ignored so the agent marking and the engine block cannot be overridden.
pub fn agent_meta(extra: Option<&Json>) -> Json {
    let mut meta = serde_json::Map::new();
    meta.insert("role".into(), json!("agent"));
    if let Some(Json::Object(extra)) = extra {
        for (k, v) in extra {
            if k != "role" && k != "~kbz" {
                meta.insert(k.clone(), v.clone());
            }
        }
    }
    meta.insert("~kbz".into(), engine_block());
    Json::Object(meta)
}

/// `{v:<crate version>, p:1, f:['chat.v1','caps.v1']}`.
pub(crate) fn engine_block() -> Json {
    json!({
        "v": env!("CARGO_PKG_VERSION"),
        "p": 1,
        "f": SESSION_FEATURES,
    })
}

/// Settings of one room session.
#[derive(Clone)]
pub struct SessionOptions {
    /// The PeerJS broker (both broker peers use it).
    pub broker: BrokerConfig,
    /// The room name as a user types it (normalised for the authority id and assertions).
    pub room: String,
    /// Display name (`'Guest'` when empty).
    pub name: String,
    /// Avatar (`''` = initials).
    pub avatar: String,
    /// Stable per-session token; `None` draws a random 20-character base36 one.
    pub token: Option<String>,
    /// Roster meta sent verbatim; `None` means [`agent_meta`]`(None)`.
    pub meta: Option<Json>,
    /// Whether this session may claim the room and become its authority.
    pub claim: ClaimPolicy,
    /// With [`ClaimPolicy::Never`]: give up after waiting this long for a host (`None`: forever).
    pub wait_for_host: Option<Duration>,
    /// As a *first* authority: start with the lobby on.
    pub lobby_on_start: bool,
    /// The room has a cryptographic host tier (committed host key or OIDC host email). Caps
    /// from current-generation peers are only accepted then; as authority this session also
    /// declares itself the verified host.
    pub crypto_host: bool,
    /// The one DTLS certificate used on every connection; `None` generates one.
    pub identity: Option<Arc<DtlsIdentity>>,
    /// The agent's P-256 key: when set, every knock/voice carries a `kbz-agent-key.v1`
    /// assertion over our fingerprint and the normalised room, re-signed every 240 s and on
    /// every new presence connection.
    pub assertion_key: Option<Arc<AgentKey>>,
    /// Test hook: present exactly this `agentAssertion` on every knock/voice instead of signing
    /// one (takes precedence over `assertion_key`). Used to prove that stale, foreign and
    /// replayed assertions are refused; never set it in production.
    pub fixed_assertion: Option<String>,
    /// As authority: the room's allow-list (`agentKeys`, kibitz-agents.md §4.2). When set, the
    /// authority installs an [`AllowListVerifier`](crate::room::AllowListVerifier): a joiner
    /// presenting an `agentAssertion` must match a listed key, be bound to its presence
    /// connection's certificate and be fresh, or it gets `lobby:'unverified'`; a matched entry's
    /// `caps` are granted once its mesh link shows the same certificate (§6.5). Joiners without
    /// any credential are admitted as humans (`openHumans`). An empty list refuses every agent.
    /// `None`: no gate, assertions are ignored (an open room).
    pub agent_keys: Option<Vec<AgentEntry>>,
    /// Our signed agent manifest (JWS compact). When set, a directed
    /// `{k:'app', data:{__kib_agent:'manifest?'}}` from any peer is answered with a directed
    /// `{k:'app', data:{__kib_agent:'manifest', token}}` (see
    /// [`ManifestEnvelope`](capability_manifest::ManifestEnvelope)).
    pub manifest_token: Option<String>,
    /// How the WebRTC connections are built (ICE servers, relay-only, UDP bind address).
    pub mesh: MeshOptions,
    /// Broker client settings (heartbeat 5 s, timeouts, backoff); `id` and `token` are ignored.
    pub signaling: SignalingOptions,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            broker: BrokerConfig::default(),
            room: String::new(),
            name: String::new(),
            avatar: String::new(),
            token: None,
            meta: None,
            claim: ClaimPolicy::Never,
            wait_for_host: None,
            lobby_on_start: false,
            crypto_host: false,
            identity: None,
            assertion_key: None,
            fixed_assertion: None,
            agent_keys: None,
            manifest_token: None,
            mesh: MeshOptions::default(),
            signaling: SignalingOptions::default(),
        }
    }
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("broker", &self.broker)
            .field("room", &self.room)
            .field("name", &self.name)
            .field("claim", &self.claim)
            .field("crypto_host", &self.crypto_host)
            .field("signs_assertions", &self.assertion_key.is_some())
            .field("agent_keys", &self.agent_keys.as_ref().map(Vec::len))
            .field("serves_manifest", &self.manifest_token.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_meta_marks_role_and_engine_last() {
        let m = agent_meta(Some(
            &json!({"backend": "local", "role": "human", "~kbz": 1}),
        ));
        let keys: Vec<&str> = m
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["role", "backend", "~kbz"]);
        assert_eq!(m["role"], "agent");
        assert_eq!(m["~kbz"]["p"], 1);
        assert_eq!(m["~kbz"]["f"], json!(["chat.v1", "caps.v1"]));
        assert_eq!(m["~kbz"]["v"], env!("CARGO_PKG_VERSION"));
    }
}
