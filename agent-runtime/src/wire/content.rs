//! Mesh content messages (`ContentMsg`, discriminator `k`), kibitz-wire.md §5.3–5.5.
//!
//! Only the kinds an agent acts on are typed; the other known kinds decode to
//! [`ContentMsg::Other`] and unknown kinds to [`ContentMsg::Unknown`] (browsers drop those
//! silently; callers count them). Per-kind receive validation follows the browser:
//! - `chat`: `text` must be a string; it is cut to [`CHAT_MAX_LEN`] JS characters and trimmed; a
//!   line that is empty after trimming is refused ([`MessageError::InvalidValue`]). `ts` accepts
//!   any finite number (fractions are truncated). `dm` is true only for a literal `true`.
//! - `app`: refused when `JSON.stringify(data).length` exceeds [`APP_MAX_BYTES`]
//!   ([`MessageError::TooLong`]).
//! - `schema`: `name` ≤ [`SCHEMA_NAME_MAX`], `version` ≤ [`SCHEMA_VERSION_MAX`] characters.
//! - `idtoken`: `jwt` ≤ [`JWT_MAX`] characters.
//! - `caps`: `grants` must be a map; its values are kept raw (sanitising is the grant layer's job).
//!
//! The sender is never in the payload: it is the link's remote voiceId.

use super::fields::{
    discriminator, entries, get, js_len, opt_f64, opt_str, opt_string, req_str, wrong,
};
use super::json::js_json_len;
use super::presence::tag_only;
use super::{binarypack, MessageError, Value};

/// `CHAT_MAX_LEN`: received chat text is cut to this many JS characters.
pub const CHAT_MAX_LEN: usize = 500;
/// `APP_MAX_BYTES`: an `app` payload whose JSON is longer than this is dropped on receive.
pub const APP_MAX_BYTES: usize = 256 * 1024;
/// `JWT_MAX`: cap on an `idtoken` JWT, in JS characters.
pub const JWT_MAX: usize = 8192;
/// `SCHEMA_NAME_MAX`: cap on a schema name.
pub const SCHEMA_NAME_MAX: usize = 120;
/// Cap on a schema version string.
pub const SCHEMA_VERSION_MAX: usize = 64;
/// The reserved envelope key of the agent SDK inside `app` data.
pub const AGENT_ENVELOPE_KEY: &str = "__kib_agent";

/// Content kinds that are known to Kibitz but not typed here.
pub const OTHER_KINDS: &[&str] = &[
    "img",
    "xbegin",
    "xaccept",
    "xdecline",
    "xresume",
    "xack",
    "xchunk",
    "xend",
    "xcancel",
    "pay",
    "ink",
    "ledger",
    "chatledger",
    "ctl",
    "widget",
    "wevt",
];

/// One content message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ContentMsg {
    /// `{k:'chat', text, dm?, mid?, ts?, from?, name?}`.
    Chat(Chat),
    /// `{k:'app', data}`: opaque app data (may hold an [`AgentEnvelope`]).
    App {
        /// The payload.
        data: Value,
    },
    /// `{k:'caps', grants:{<voiceId>: Grant}}`: the authority's grant map, values raw.
    Caps {
        /// `(voiceId, grant)` in wire order.
        grants: Vec<(String, Value)>,
    },
    /// `{k:'schema', name, version, schema}`.
    Schema {
        /// Schema name (≤ 120 chars).
        name: String,
        /// Schema version (≤ 64 chars).
        version: String,
        /// The schema itself.
        schema: Value,
    },
    /// `{k:'idtoken', jwt}`.
    IdToken {
        /// The cert-bound OIDC token.
        jwt: String,
    },
    /// A known kind this codec does not type (`img`, `x*`, `pay`, `ink`, `ledger`, `widget`, …).
    Other {
        /// The kind.
        k: String,
    },
    /// A kind Kibitz does not define (browsers drop these silently).
    Unknown {
        /// The kind.
        k: String,
    },
}

/// A chat line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chat {
    /// The text (≤ 500 JS characters, trimmed, on receive).
    pub text: String,
    /// Sent only to this receiver (display flag).
    pub dm: bool,
    /// Stable id `"<senderVoiceId>#<seq>"`.
    pub mid: Option<String>,
    /// Sender wall clock, ms since the epoch.
    pub ts: Option<i64>,
    /// Original author on replayed history only (display-only, unverified).
    pub from: Option<String>,
    /// Original author's name on replayed history only (display-only, unverified).
    pub name: Option<String>,
}

impl Chat {
    /// The legacy send form `{k:'chat', text, mid:'<voiceId>#<seq>', ts}` (+ `dm:true`).
    pub fn outgoing(
        text: impl Into<String>,
        voice_id: &str,
        seq: u64,
        ts_ms: i64,
        dm: bool,
    ) -> Chat {
        Chat {
            text: text.into(),
            dm,
            mid: Some(format!("{voice_id}#{seq}")),
            ts: Some(ts_ms),
            from: None,
            name: None,
        }
    }

    /// Whether `mid` is scoped to the link's sender (`"<from>#…"`); browsers replace a live
    /// line's `mid` otherwise.
    pub fn mid_is_scoped_to(&self, sender: &str) -> bool {
        self.mid
            .as_deref()
            .and_then(|m| m.strip_prefix(sender))
            .is_some_and(|rest| rest.starts_with('#'))
    }

    fn to_value(&self) -> Value {
        let mut e = vec![
            ("k".to_owned(), Value::from("chat")),
            ("text".to_owned(), Value::from(self.text.as_str())),
        ];
        if let Some(mid) = &self.mid {
            e.push(("mid".to_owned(), Value::from(mid.as_str())));
        }
        if let Some(ts) = self.ts {
            e.push(("ts".to_owned(), Value::Int(ts)));
        }
        if self.dm {
            e.push(("dm".to_owned(), Value::Bool(true)));
        }
        if let Some(from) = &self.from {
            e.push(("from".to_owned(), Value::from(from.as_str())));
        }
        if let Some(name) = &self.name {
            e.push(("name".to_owned(), Value::from(name.as_str())));
        }
        Value::Map(e)
    }

    fn from_entries(m: &[(String, Value)]) -> Result<Self, MessageError> {
        let raw = match get(m, "text") {
            Some(Value::Str(s)) => s.as_str(),
            Some(_) => return Err(wrong("text", "a string")),
            None => return Err(MessageError::MissingField("text")),
        };
        let text = trim_js(cut_js(raw, CHAT_MAX_LEN)).to_owned();
        if text.is_empty() {
            return Err(MessageError::InvalidValue { field: "text" });
        }
        let ts = match opt_f64(m, "ts")? {
            Some(t) if t.is_finite() => Some(t as i64),
            Some(_) => return Err(wrong("ts", "a finite number")),
            None => None,
        };
        Ok(Chat {
            text,
            dm: matches!(get(m, "dm"), Some(Value::Bool(true))),
            mid: opt_string(m, "mid")?,
            ts,
            from: opt_string(m, "from")?,
            name: opt_string(m, "name")?,
        })
    }
}

/// The longest prefix of `s` within `max` UTF-16 units (never splitting a character).
fn cut_js(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// JS `String.prototype.trim` (Unicode white space, line terminators and U+FEFF).
fn trim_js(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// The agent SDK envelope carried in `app` data (kibitz-agents.md §7.1).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AgentEnvelope {
    /// `{__kib_agent:'chat', text}` (a non-string `text` reads as `''`).
    Chat {
        /// The text.
        text: String,
    },
    /// `{__kib_agent:'view', view}`: an app-state snapshot.
    View {
        /// The view.
        view: Value,
    },
    /// `{__kib_agent:'act', action}`: a request the app may ignore.
    Act {
        /// The action.
        action: Value,
    },
    /// An envelope of another kind.
    Other(String),
}

impl AgentEnvelope {
    /// Detects an envelope: `data` is a map whose `__kib_agent` is a string; `None` for raw data.
    pub fn from_data(data: &Value) -> Option<AgentEnvelope> {
        let m = entries(data).ok()?;
        let kind = get(m, AGENT_ENVELOPE_KEY)?.as_str()?;
        let field = |k: &str| get(m, k).cloned().unwrap_or(Value::Nil);
        Some(match kind {
            "chat" => AgentEnvelope::Chat {
                text: get(m, "text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            },
            "view" => AgentEnvelope::View {
                view: field("view"),
            },
            "act" => AgentEnvelope::Act {
                action: field("action"),
            },
            other => AgentEnvelope::Other(other.to_owned()),
        })
    }

    /// The envelope as `app` data: `{__kib_agent, text|view|action}`.
    pub fn to_data(&self) -> Value {
        let (kind, extra) = match self {
            AgentEnvelope::Chat { text } => ("chat", Some(("text", Value::from(text.as_str())))),
            AgentEnvelope::View { view } => ("view", Some(("view", view.clone()))),
            AgentEnvelope::Act { action } => ("act", Some(("action", action.clone()))),
            AgentEnvelope::Other(kind) => (kind.as_str(), None),
        };
        let mut e = vec![(AGENT_ENVELOPE_KEY.to_owned(), Value::from(kind))];
        if let Some((k, v)) = extra {
            e.push((k.to_owned(), v));
        }
        Value::Map(e)
    }
}

impl ContentMsg {
    /// The kind string `k`.
    pub fn kind(&self) -> &str {
        match self {
            ContentMsg::Chat(_) => "chat",
            ContentMsg::App { .. } => "app",
            ContentMsg::Caps { .. } => "caps",
            ContentMsg::Schema { .. } => "schema",
            ContentMsg::IdToken { .. } => "idtoken",
            ContentMsg::Other { k } | ContentMsg::Unknown { k } => k,
        }
    }

    /// The agent envelope inside an `app` message, if any.
    pub fn agent_envelope(&self) -> Option<AgentEnvelope> {
        match self {
            ContentMsg::App { data } => AgentEnvelope::from_data(data),
            _ => None,
        }
    }

    /// The wire object. `Other`/`Unknown` carry no payload and encode as `{k}` alone.
    pub fn to_value(&self) -> Value {
        match self {
            ContentMsg::Chat(chat) => chat.to_value(),
            ContentMsg::App { data } => Value::Map(vec![
                ("k".into(), Value::from("app")),
                ("data".into(), data.clone()),
            ]),
            ContentMsg::Caps { grants } => Value::Map(vec![
                ("k".into(), Value::from("caps")),
                ("grants".into(), Value::Map(grants.clone())),
            ]),
            ContentMsg::Schema {
                name,
                version,
                schema,
            } => Value::Map(vec![
                ("k".into(), Value::from("schema")),
                ("name".into(), Value::from(name.as_str())),
                ("version".into(), Value::from(version.as_str())),
                ("schema".into(), schema.clone()),
            ]),
            ContentMsg::IdToken { jwt } => Value::Map(vec![
                ("k".into(), Value::from("idtoken")),
                ("jwt".into(), Value::from(jwt.as_str())),
            ]),
            ContentMsg::Other { k } | ContentMsg::Unknown { k } => tag_only("k", k),
        }
    }

    /// Parses and validates a content message (module docs list the rules).
    pub fn from_value(value: &Value) -> Result<Self, MessageError> {
        let m = entries(value)?;
        let k = discriminator(m, "k")?;
        Ok(match k {
            "chat" => ContentMsg::Chat(Chat::from_entries(m)?),
            "app" => {
                let data = get(m, "data").cloned().unwrap_or(Value::Nil);
                let len = js_json_len(&data, APP_MAX_BYTES);
                if len > APP_MAX_BYTES {
                    return Err(MessageError::TooLong {
                        field: "data",
                        len,
                        max: APP_MAX_BYTES,
                    });
                }
                ContentMsg::App { data }
            }
            "caps" => match get(m, "grants") {
                Some(Value::Map(g)) => ContentMsg::Caps { grants: g.clone() },
                Some(_) => return Err(wrong("grants", "a map")),
                None => return Err(MessageError::MissingField("grants")),
            },
            "schema" => {
                let name = capped(req_str(m, "name")?, "name", SCHEMA_NAME_MAX)?;
                let version = capped(
                    opt_str(m, "version")?.unwrap_or_default(),
                    "version",
                    SCHEMA_VERSION_MAX,
                )?;
                ContentMsg::Schema {
                    name,
                    version,
                    schema: get(m, "schema").cloned().unwrap_or(Value::Nil),
                }
            }
            "idtoken" => ContentMsg::IdToken {
                jwt: capped(req_str(m, "jwt")?, "jwt", JWT_MAX)?,
            },
            k if OTHER_KINDS.contains(&k) => ContentMsg::Other { k: k.to_owned() },
            k => ContentMsg::Unknown { k: k.to_owned() },
        })
    }

    /// BinaryPack bytes of [`ContentMsg::to_value`].
    pub fn encode(&self) -> Vec<u8> {
        binarypack::encode(&self.to_value())
    }
}

fn capped(s: &str, field: &'static str, max: usize) -> Result<String, MessageError> {
    let len = js_len(s);
    if len > max {
        return Err(MessageError::TooLong { field, len, max });
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_value(text: Value) -> Value {
        Value::map([("k", Value::from("chat")), ("text", text)])
    }

    #[test]
    fn chat_is_cut_then_trimmed() {
        let long = format!("  {}", "a".repeat(600));
        let Ok(ContentMsg::Chat(c)) = ContentMsg::from_value(&chat_value(Value::from(long))) else {
            panic!("not chat")
        };
        assert_eq!(c.text.len(), 498);
        // A surrogate pair straddling the cut is dropped whole.
        let s = format!("{}😀", "b".repeat(499));
        let Ok(ContentMsg::Chat(c)) = ContentMsg::from_value(&chat_value(Value::Str(s))) else {
            panic!("not chat")
        };
        assert_eq!(c.text, "b".repeat(499));
        assert_eq!(
            ContentMsg::from_value(&chat_value(Value::from(" \u{feff}\n"))),
            Err(MessageError::InvalidValue { field: "text" })
        );
        assert_eq!(
            ContentMsg::from_value(&chat_value(Value::Int(3))),
            Err(MessageError::WrongType {
                field: "text",
                expected: "a string"
            })
        );
    }

    #[test]
    fn mid_scope() {
        let c = Chat::outgoing("hi", "v1", 7, 0, false);
        assert!(c.mid_is_scoped_to("v1"));
        assert!(!c.mid_is_scoped_to("v"));
        assert!(!c.mid_is_scoped_to("v2"));
    }

    #[test]
    fn app_cap_and_envelopes() {
        let big = Value::Str("x".repeat(APP_MAX_BYTES));
        let msg = Value::map([("k", Value::from("app")), ("data", big)]);
        assert!(matches!(
            ContentMsg::from_value(&msg),
            Err(MessageError::TooLong { field: "data", .. })
        ));
        let env = AgentEnvelope::Act {
            action: Value::map([("play", Value::from("7♠"))]),
        };
        let msg = ContentMsg::App {
            data: env.to_data(),
        };
        let back = ContentMsg::from_value(&msg.to_value());
        assert_eq!(
            back.as_ref().ok().and_then(ContentMsg::agent_envelope),
            Some(env)
        );
        let raw = ContentMsg::App {
            data: Value::map([("x", Value::Int(1))]),
        };
        assert_eq!(raw.agent_envelope(), None);
        let odd = Value::map([
            (AGENT_ENVELOPE_KEY, Value::from("chat")),
            ("text", Value::Int(1)),
        ]);
        assert_eq!(
            AgentEnvelope::from_data(&odd),
            Some(AgentEnvelope::Chat {
                text: String::new()
            })
        );
    }

    #[test]
    fn kinds() {
        let k = |s: &str| ContentMsg::from_value(&Value::map([("k", Value::from(s))]));
        assert_eq!(k("ink"), Ok(ContentMsg::Other { k: "ink".into() }));
        assert_eq!(k("zzz"), Ok(ContentMsg::Unknown { k: "zzz".into() }));
        assert_eq!(k("caps"), Err(MessageError::MissingField("grants")));
        assert_eq!(
            ContentMsg::from_value(&Value::map([("t", Value::from("x"))])),
            Err(MessageError::MissingDiscriminator("k"))
        );
        let long = Value::map([
            ("k", Value::from("idtoken")),
            ("jwt", Value::Str("j".repeat(JWT_MAX + 1))),
        ]);
        assert!(matches!(
            ContentMsg::from_value(&long),
            Err(MessageError::TooLong { field: "jwt", .. })
        ));
    }
}
