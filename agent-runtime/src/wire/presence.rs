//! Presence-star messages (participant ⇄ authority), discriminated by `t`.
//!
//! Spec: kibitz-wire.md §4. Encoding follows the browser exactly: `knock`/`voice` carry every
//! optional key in the browser's order, nil when unset; decoding treats nil as absent.
//!
//! Decoding rules (null-tolerant, typed errors, never panics):
//! - nil and a missing key are the same thing; a present key of the wrong type is
//!   [`MessageError::WrongType`]; an unknown `t` is [`MessageError::UnknownType`] (count, drop).
//! - `name` falls back to `'Guest'` when absent or empty, as the browser authority does
//!   (`msg.name || 'Guest'`); encoding writes `'Guest'` for an empty name too, as the browser's
//!   `sendSelf`/`sendKnock` do. Roster members get the same fallback.
//! - A roster member's `avatar` falls back to `''`; a non-map `meta` is treated as absent; an
//!   entry that is not a map or lacks a string `id` is skipped (logged at debug), so one bad
//!   member never hides the rest of the roster. A missing `members` list decodes as empty;
//!   `lobby`/`locked` default to `false` and `host` to `''`.
//! - Credentials are *not* refused by the decoder: the authority must still see an oversize
//!   credential to answer `lobby:'unverified'`. Check them with [`Knock::oversize_credential`] /
//!   [`Voice::oversize_credential`] against [`MAX_TOKEN_CHARS`] / [`MAX_ASSERTION_CHARS`].

use super::fields::{
    bool_or_false, discriminator, entries, get, js_len, opt_f64, opt_str, opt_string, req_str,
    str_or_nil, wrong,
};
use super::{binarypack, MessageError, Value};

/// `MAX_TOKEN_CHARS`: cap on `jwt`, `agentCredit` and `mod` tokens, in JS characters.
pub const MAX_TOKEN_CHARS: usize = 8192;
/// `MAX_ASSERTION_CHARS`: cap on `agentAssertion`, in JS characters.
pub const MAX_ASSERTION_CHARS: usize = 2048;
/// The display-name fallback browsers use for an empty name.
pub const GUEST_NAME: &str = "Guest";

/// Participant → authority (`ClientWire`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientMsg {
    /// `{t:'knock', name, avatar, token, voiceId, jwt, agentAssertion, agentCredit}`.
    Knock(Knock),
    /// `{t:'voice', on, cam, name, avatar, voiceId, token, meta, jwt, agentAssertion, agentCredit}`.
    Voice(Voice),
    /// `{t:'ping'}`.
    Ping,
    /// `{t:'leave'}`.
    Leave,
    /// `{t:'mod', token}`: a signed host command.
    Mod {
        /// The signed command token.
        token: String,
    },
}

/// A knock: asks the authority for entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Knock {
    /// Display name (`'Guest'` when empty on the authority side).
    pub name: String,
    /// Avatar (usually `''`).
    pub avatar: Option<String>,
    /// Stable per-session token.
    pub token: Option<String>,
    /// Our media id once known.
    pub voice_id: Option<String>,
    /// Identity token.
    pub jwt: Option<String>,
    /// `kbz-agent-key.v1` assertion.
    pub agent_assertion: Option<String>,
    /// Agent credit credential.
    pub agent_credit: Option<String>,
}

/// A voice announce: joins (`on:true`) or leaves (`on:false`) the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Voice {
    /// Joining (`true`) or leaving.
    pub on: bool,
    /// Camera flag.
    pub cam: bool,
    /// Display name.
    pub name: String,
    /// Avatar.
    pub avatar: Option<String>,
    /// Media id (required when `on`).
    pub voice_id: Option<String>,
    /// Stable per-session token.
    pub token: Option<String>,
    /// Roster meta object (`role`, `backend`, `egress`, `~kbz`, …), passed through verbatim.
    pub meta: Option<Value>,
    /// Identity token.
    pub jwt: Option<String>,
    /// `kbz-agent-key.v1` assertion.
    pub agent_assertion: Option<String>,
    /// Agent credit credential.
    pub agent_credit: Option<String>,
}

/// Authority → participant (`AuthorityWire`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthorityMsg {
    /// `{t:'roster', members, lobby, host, locked}`.
    Roster(Roster),
    /// `{t:'ping'}`.
    Ping,
    /// `{t:'lobby', status}`.
    Lobby(LobbyStatus),
    /// `{t:'kick'}`.
    Kick,
    /// `{t:'reset'}`.
    Reset,
}

/// The roster broadcast.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Roster {
    /// Members in the call.
    pub members: Vec<CallMember>,
    /// Whether the lobby is on.
    pub lobby: bool,
    /// Verified host's voiceId, or `''`.
    pub host: String,
    /// Whether the room is locked.
    pub locked: bool,
}

/// One roster member (`CallMember`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallMember {
    /// The member's voiceId.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Camera flag.
    pub cam: bool,
    /// Avatar (`''` = initials).
    pub avatar: String,
    /// Meta object or nil.
    pub meta: Option<Value>,
}

/// Lobby statuses sent by the authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LobbyStatus {
    /// Held in the lobby.
    Waiting,
    /// Let in.
    Admitted,
    /// Refused by the host.
    Denied,
    /// The room is locked.
    Locked,
    /// Credential verification failed.
    Unverified,
}

impl LobbyStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            LobbyStatus::Waiting => "waiting",
            LobbyStatus::Admitted => "admitted",
            LobbyStatus::Denied => "denied",
            LobbyStatus::Locked => "locked",
            LobbyStatus::Unverified => "unverified",
        }
    }

    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "waiting" => LobbyStatus::Waiting,
            "admitted" => LobbyStatus::Admitted,
            "denied" => LobbyStatus::Denied,
            "locked" => LobbyStatus::Locked,
            "unverified" => LobbyStatus::Unverified,
            _ => return None,
        })
    }
}

/// Whether any credential exceeds the browser authority's caps (JS character counts).
fn oversize(jwt: &Option<String>, assertion: &Option<String>, credit: &Option<String>) -> bool {
    let over = |s: &Option<String>, max: usize| s.as_deref().is_some_and(|s| js_len(s) > max);
    over(jwt, MAX_TOKEN_CHARS)
        || over(assertion, MAX_ASSERTION_CHARS)
        || over(credit, MAX_TOKEN_CHARS)
}

/// `name || 'Guest'`.
fn name_or_guest(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => GUEST_NAME.to_owned(),
    }
}

/// A message with only a discriminator, e.g. `{t:'ping'}`.
pub(crate) fn tag_only(key: &str, value: &str) -> Value {
    Value::Map(vec![(key.to_owned(), Value::from(value))])
}

impl Knock {
    /// True when `jwt`/`agentCredit` exceed [`MAX_TOKEN_CHARS`] or `agentAssertion` exceeds
    /// [`MAX_ASSERTION_CHARS`]; the authority answers such a knock with `lobby:'unverified'`.
    pub fn oversize_credential(&self) -> bool {
        oversize(&self.jwt, &self.agent_assertion, &self.agent_credit)
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![
            ("t".into(), Value::from("knock")),
            ("name".into(), Value::from(name_or_guest(Some(&self.name)))),
            ("avatar".into(), str_or_nil(&self.avatar)),
            ("token".into(), str_or_nil(&self.token)),
            ("voiceId".into(), str_or_nil(&self.voice_id)),
            ("jwt".into(), str_or_nil(&self.jwt)),
            ("agentAssertion".into(), str_or_nil(&self.agent_assertion)),
            ("agentCredit".into(), str_or_nil(&self.agent_credit)),
        ])
    }

    fn from_entries(m: &[(String, Value)]) -> Result<Self, MessageError> {
        Ok(Knock {
            name: name_or_guest(opt_str(m, "name")?),
            avatar: opt_string(m, "avatar")?,
            token: opt_string(m, "token")?,
            voice_id: opt_string(m, "voiceId")?,
            jwt: opt_string(m, "jwt")?,
            agent_assertion: opt_string(m, "agentAssertion")?,
            agent_credit: opt_string(m, "agentCredit")?,
        })
    }
}

impl Voice {
    /// True when a credential exceeds the authority's caps (see [`Knock::oversize_credential`]).
    pub fn oversize_credential(&self) -> bool {
        oversize(&self.jwt, &self.agent_assertion, &self.agent_credit)
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![
            ("t".into(), Value::from("voice")),
            ("on".into(), Value::Bool(self.on)),
            ("cam".into(), Value::Bool(self.cam)),
            ("name".into(), Value::from(name_or_guest(Some(&self.name)))),
            ("avatar".into(), str_or_nil(&self.avatar)),
            ("voiceId".into(), str_or_nil(&self.voice_id)),
            ("token".into(), str_or_nil(&self.token)),
            ("meta".into(), self.meta.clone().unwrap_or(Value::Nil)),
            ("jwt".into(), str_or_nil(&self.jwt)),
            ("agentAssertion".into(), str_or_nil(&self.agent_assertion)),
            ("agentCredit".into(), str_or_nil(&self.agent_credit)),
        ])
    }

    fn from_entries(m: &[(String, Value)]) -> Result<Self, MessageError> {
        let meta = match get(m, "meta") {
            None => None,
            Some(v @ Value::Map(_)) => Some(v.clone()),
            Some(_) => return Err(wrong("meta", "a map")),
        };
        Ok(Voice {
            on: bool_or_false(m, "on")?,
            cam: bool_or_false(m, "cam")?,
            name: name_or_guest(opt_str(m, "name")?),
            avatar: opt_string(m, "avatar")?,
            voice_id: opt_string(m, "voiceId")?,
            token: opt_string(m, "token")?,
            meta,
            jwt: opt_string(m, "jwt")?,
            agent_assertion: opt_string(m, "agentAssertion")?,
            agent_credit: opt_string(m, "agentCredit")?,
        })
    }
}

impl ClientMsg {
    /// The browser-shaped wire object.
    pub fn to_value(&self) -> Value {
        match self {
            ClientMsg::Knock(k) => k.to_value(),
            ClientMsg::Voice(v) => v.to_value(),
            ClientMsg::Ping => tag_only("t", "ping"),
            ClientMsg::Leave => tag_only("t", "leave"),
            ClientMsg::Mod { token } => Value::Map(vec![
                ("t".into(), Value::from("mod")),
                ("token".into(), Value::from(token.as_str())),
            ]),
        }
    }

    /// Parses a participant message (module docs list the tolerance rules).
    pub fn from_value(value: &Value) -> Result<Self, MessageError> {
        let m = entries(value)?;
        match discriminator(m, "t")? {
            "knock" => Knock::from_entries(m).map(ClientMsg::Knock),
            "voice" => Voice::from_entries(m).map(ClientMsg::Voice),
            "ping" => Ok(ClientMsg::Ping),
            "leave" => Ok(ClientMsg::Leave),
            "mod" => Ok(ClientMsg::Mod {
                token: req_str(m, "token")?.to_owned(),
            }),
            other => Err(MessageError::UnknownType {
                key: "t",
                value: other.to_owned(),
            }),
        }
    }

    /// BinaryPack bytes of [`ClientMsg::to_value`].
    pub fn encode(&self) -> Vec<u8> {
        binarypack::encode(&self.to_value())
    }
}

impl CallMember {
    /// The wire object `{id, name, cam, avatar, meta}` (meta nil when unset).
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            ("id".into(), Value::from(self.id.as_str())),
            ("name".into(), Value::from(self.name.as_str())),
            ("cam".into(), Value::Bool(self.cam)),
            ("avatar".into(), Value::from(self.avatar.as_str())),
            ("meta".into(), self.meta.clone().unwrap_or(Value::Nil)),
        ])
    }

    /// Parses one member: `id` must be a string; `name` falls back to `'Guest'`, `avatar` to
    /// `''`, a non-map `meta` to `None`.
    pub fn from_value(value: &Value) -> Result<Self, MessageError> {
        let m = entries(value)?;
        Ok(CallMember {
            id: req_str(m, "id")?.to_owned(),
            name: name_or_guest(opt_str(m, "name")?),
            cam: bool_or_false(m, "cam")?,
            avatar: opt_string(m, "avatar")?.unwrap_or_default(),
            meta: get(m, "meta")
                .filter(|v| matches!(v, Value::Map(_)))
                .cloned(),
        })
    }
}

impl Roster {
    fn to_value(&self) -> Value {
        Value::Map(vec![
            ("t".into(), Value::from("roster")),
            (
                "members".into(),
                Value::Array(self.members.iter().map(CallMember::to_value).collect()),
            ),
            ("lobby".into(), Value::Bool(self.lobby)),
            ("host".into(), Value::from(self.host.as_str())),
            ("locked".into(), Value::Bool(self.locked)),
        ])
    }

    fn from_entries(m: &[(String, Value)]) -> Result<Self, MessageError> {
        let members = match get(m, "members") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| match CallMember::from_value(item) {
                    Ok(member) => Some(member),
                    Err(e) => {
                        tracing::debug!(error = %e, "skipping malformed roster member");
                        None
                    }
                })
                .collect(),
            Some(_) => return Err(wrong("members", "an array")),
        };
        Ok(Roster {
            members,
            lobby: bool_or_false(m, "lobby")?,
            host: opt_string(m, "host")?.unwrap_or_default(),
            locked: bool_or_false(m, "locked")?,
        })
    }
}

impl AuthorityMsg {
    /// The wire object, keys in the browser authority's order.
    pub fn to_value(&self) -> Value {
        match self {
            AuthorityMsg::Roster(r) => r.to_value(),
            AuthorityMsg::Ping => tag_only("t", "ping"),
            AuthorityMsg::Lobby(status) => Value::Map(vec![
                ("t".into(), Value::from("lobby")),
                ("status".into(), Value::from(status.as_str())),
            ]),
            AuthorityMsg::Kick => tag_only("t", "kick"),
            AuthorityMsg::Reset => tag_only("t", "reset"),
        }
    }

    /// Parses an authority message (module docs list the tolerance rules).
    pub fn from_value(value: &Value) -> Result<Self, MessageError> {
        let m = entries(value)?;
        match discriminator(m, "t")? {
            "roster" => Roster::from_entries(m).map(AuthorityMsg::Roster),
            "ping" => Ok(AuthorityMsg::Ping),
            "lobby" => LobbyStatus::parse(req_str(m, "status")?)
                .map(AuthorityMsg::Lobby)
                .ok_or(MessageError::InvalidValue { field: "status" }),
            "kick" => Ok(AuthorityMsg::Kick),
            "reset" => Ok(AuthorityMsg::Reset),
            other => Err(MessageError::UnknownType {
                key: "t",
                value: other.to_owned(),
            }),
        }
    }

    /// BinaryPack bytes of [`AuthorityMsg::to_value`].
    pub fn encode(&self) -> Vec<u8> {
        binarypack::encode(&self.to_value())
    }
}

/// The reserved roster-meta key of the engine block.
pub const META_ENGINE_KEY: &str = "~kbz";
/// The protocol version to advertise in `~kbz.p` (never higher; kibitz-wire.md §10).
pub const PROTOCOL_VERSION: i64 = 1;
/// Receivers keep at most this many feature tags.
pub const FEATURES_MAX: usize = 64;
/// Receivers keep at most this many characters of the build id.
pub const ENGINE_BUILD_MAX: usize = 64;

/// The engine block `meta['~kbz'] = {v, b, p, f}` (kibitz-wire.md §10, kibitz-agents.md §0.5).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineInfo {
    /// `v`: engine semver, e.g. `"0.1.0"`.
    pub version: Option<String>,
    /// `b`: build id (`"<sha> · <UTC>"` or `"dev"`); truncated to [`ENGINE_BUILD_MAX`] on read.
    pub build: Option<String>,
    /// `p`: protocol version (finite numbers only).
    pub protocol: Option<f64>,
    /// `f`: feature tags (strings only, first [`FEATURES_MAX`] kept on read).
    pub features: Vec<String>,
}

impl EngineInfo {
    /// The block as a value, keys `v, b, p, f` (absent fields omitted; `f` always present).
    pub fn to_value(&self) -> Value {
        let mut e = Vec::with_capacity(4);
        if let Some(v) = &self.version {
            e.push(("v".to_owned(), Value::from(v.as_str())));
        }
        if let Some(b) = &self.build {
            e.push(("b".to_owned(), Value::from(b.as_str())));
        }
        if let Some(p) = self.protocol {
            e.push(("p".to_owned(), Value::Float(p)));
        }
        e.push((
            "f".to_owned(),
            Value::Array(
                self.features
                    .iter()
                    .map(|f| Value::from(f.as_str()))
                    .collect(),
            ),
        ));
        Value::Map(e)
    }

    /// Reads the block out of a roster `meta` map; `None` when absent or not a map. Wrong-typed
    /// fields are ignored, as receivers do.
    pub fn from_meta(meta: &Value) -> Option<EngineInfo> {
        let block = entries(meta).ok().and_then(|m| get(m, META_ENGINE_KEY))?;
        let m = entries(block).ok()?;
        let text = |k: &'static str| opt_str(m, k).ok().flatten().map(str::to_owned);
        let features = match get(m, "f") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .take(FEATURES_MAX)
                .collect(),
            _ => Vec::new(),
        };
        Some(EngineInfo {
            version: text("v"),
            build: text("b").map(|b| b.chars().take(ENGINE_BUILD_MAX).collect()),
            protocol: opt_f64(m, "p").ok().flatten().filter(|p| p.is_finite()),
            features,
        })
    }

    /// Whether the block advertises a feature tag (e.g. `"xfer.v1"`).
    pub fn has_feature(&self, tag: &str) -> bool {
        self.features.iter().any(|f| f == tag)
    }
}

/// The app-facing meta: `meta` without its `'~kbz'` key (non-maps are returned unchanged).
pub fn strip_engine(meta: &Value) -> Value {
    match meta {
        Value::Map(e) => Value::Map(
            e.iter()
                .filter(|(k, _)| k != META_ENGINE_KEY)
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}
