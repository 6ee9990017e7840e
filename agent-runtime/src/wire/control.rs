//! `sig`-link control messages (discriminator `t`, kibitz-wire.md §5.2) and the classifier that
//! tells control from content on a mesh link.
//!
//! Decoding is null-tolerant: missing numbers read as `0`, missing booleans as `false`; an `m-ice`
//! candidate's optional fields are `None` when nil.

use super::content::ContentMsg;
use super::fields::{
    bool_or_false, discriminator, entries, get, opt_f64, opt_string, req_str, wrong,
};
use super::presence::tag_only;
use super::{binarypack, MessageError, Value};

/// The `t` values handled inside the mesh.
pub const CONTROL_TYPES: &[&str] = &[
    "cap",
    "mh",
    "mh-dead",
    "m-dial",
    "m-sdp",
    "m-ice",
    "m-recreate",
    "bye",
];

/// One control message on a `sig` link.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ControlMsg {
    /// `{t:'cap', bulk:1}`: "I speak the bulk protocol".
    Cap {
        /// Bulk support (`bulk:1` on the wire).
        bulk: bool,
    },
    /// `{t:'mh', v, a, ov, oa}`: media-health heartbeat and keepalive (every 2 s).
    Mh {
        /// Inbound video kbps.
        v: f64,
        /// Inbound audio kbps.
        a: f64,
        /// Outbound video kbps.
        ov: f64,
        /// Outbound audio kbps.
        oa: f64,
    },
    /// `{t:'mh-dead'}`: "our media link is dead, please re-dial it".
    MhDead,
    /// `{t:'m-dial'}`: "please start media".
    MDial,
    /// `{t:'m-sdp', d:{type, sdp}, relay}`: media SDP.
    MSdp {
        /// The description.
        d: SdpDescription,
        /// Relay-only transport requested.
        relay: bool,
    },
    /// `{t:'m-ice', c:{candidate, sdpMid, sdpMLineIndex, usernameFragment}}`: a trickled candidate.
    MIce {
        /// The candidate (`RTCIceCandidate.toJSON()`).
        c: IceCandidate,
    },
    /// `{t:'m-recreate', relay}`: "close your media pc for me; a fresh offer follows".
    MRecreate {
        /// Build the next pc relay-only.
        relay: bool,
    },
    /// `{t:'bye'}`: graceful leave.
    Bye,
}

/// A plain `{type, sdp}` session description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdpDescription {
    /// `type`: `"offer"` or `"answer"` (other strings are kept verbatim).
    pub sdp_type: String,
    /// The SDP text.
    pub sdp: String,
}

/// `RTCIceCandidateInit` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceCandidate {
    /// `candidate:` line.
    pub candidate: String,
    /// `sdpMid` (nil when unknown).
    pub sdp_mid: Option<String>,
    /// `sdpMLineIndex` (nil when unknown).
    pub sdp_m_line_index: Option<u16>,
    /// `usernameFragment` (nil when unknown).
    pub username_fragment: Option<String>,
}

fn num0(m: &[(String, Value)], key: &'static str) -> Result<f64, MessageError> {
    Ok(opt_f64(m, key)?.unwrap_or(0.0))
}

impl ControlMsg {
    /// The wire object, keys in the browser's order.
    pub fn to_value(&self) -> Value {
        let t = |s: &str| ("t".to_owned(), Value::from(s));
        match self {
            ControlMsg::Cap { bulk } => Value::Map(vec![
                t("cap"),
                ("bulk".into(), Value::Int(i64::from(*bulk))),
            ]),
            ControlMsg::Mh { v, a, ov, oa } => Value::Map(vec![
                t("mh"),
                ("v".into(), Value::Float(*v)),
                ("a".into(), Value::Float(*a)),
                ("ov".into(), Value::Float(*ov)),
                ("oa".into(), Value::Float(*oa)),
            ]),
            ControlMsg::MhDead => tag_only("t", "mh-dead"),
            ControlMsg::MDial => tag_only("t", "m-dial"),
            ControlMsg::MSdp { d, relay } => Value::Map(vec![
                t("m-sdp"),
                (
                    "d".into(),
                    Value::Map(vec![
                        ("type".into(), Value::from(d.sdp_type.as_str())),
                        ("sdp".into(), Value::from(d.sdp.as_str())),
                    ]),
                ),
                ("relay".into(), Value::Bool(*relay)),
            ]),
            ControlMsg::MIce { c } => Value::Map(vec![
                t("m-ice"),
                (
                    "c".into(),
                    Value::Map(vec![
                        ("candidate".into(), Value::from(c.candidate.as_str())),
                        (
                            "sdpMid".into(),
                            c.sdp_mid.as_deref().map_or(Value::Nil, Value::from),
                        ),
                        (
                            "sdpMLineIndex".into(),
                            c.sdp_m_line_index
                                .map_or(Value::Nil, |i| Value::Int(i64::from(i))),
                        ),
                        (
                            "usernameFragment".into(),
                            c.username_fragment
                                .as_deref()
                                .map_or(Value::Nil, Value::from),
                        ),
                    ]),
                ),
            ]),
            ControlMsg::MRecreate { relay } => {
                Value::Map(vec![t("m-recreate"), ("relay".into(), Value::Bool(*relay))])
            }
            ControlMsg::Bye => tag_only("t", "bye"),
        }
    }

    /// Parses a control message; an unknown `t` is [`MessageError::UnknownType`].
    pub fn from_value(value: &Value) -> Result<Self, MessageError> {
        let m = entries(value)?;
        Ok(match discriminator(m, "t")? {
            "cap" => ControlMsg::Cap {
                bulk: get(m, "bulk").is_some_and(truthy),
            },
            "mh" => ControlMsg::Mh {
                v: num0(m, "v")?,
                a: num0(m, "a")?,
                ov: num0(m, "ov")?,
                oa: num0(m, "oa")?,
            },
            "mh-dead" => ControlMsg::MhDead,
            "m-dial" => ControlMsg::MDial,
            "m-sdp" => {
                let d = entries(get(m, "d").ok_or(MessageError::MissingField("d"))?)
                    .map_err(|_| wrong("d", "a map"))?;
                ControlMsg::MSdp {
                    d: SdpDescription {
                        sdp_type: req_str(d, "type")?.to_owned(),
                        sdp: req_str(d, "sdp")?.to_owned(),
                    },
                    relay: bool_or_false(m, "relay")?,
                }
            }
            "m-ice" => {
                let c = entries(get(m, "c").ok_or(MessageError::MissingField("c"))?)
                    .map_err(|_| wrong("c", "a map"))?;
                let index = match get(c, "sdpMLineIndex") {
                    None => None,
                    Some(v) => Some(
                        v.as_i64()
                            .and_then(|i| u16::try_from(i).ok())
                            .ok_or(wrong("sdpMLineIndex", "an m-line index"))?,
                    ),
                };
                ControlMsg::MIce {
                    c: IceCandidate {
                        candidate: req_str(c, "candidate")?.to_owned(),
                        sdp_mid: opt_string(c, "sdpMid")?,
                        sdp_m_line_index: index,
                        username_fragment: opt_string(c, "usernameFragment")?,
                    },
                }
            }
            "m-recreate" => ControlMsg::MRecreate {
                relay: bool_or_false(m, "relay")?,
            },
            "bye" => ControlMsg::Bye,
            other => {
                return Err(MessageError::UnknownType {
                    key: "t",
                    value: other.to_owned(),
                })
            }
        })
    }

    /// BinaryPack bytes of [`ControlMsg::to_value`].
    pub fn encode(&self) -> Vec<u8> {
        binarypack::encode(&self.to_value())
    }
}

/// JS truthiness of a value.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::UInt(_) => true,
        Value::Float(f) => *f != 0.0 && !f.is_nan(),
        Value::Str(s) => !s.is_empty(),
        Value::Bin(_) | Value::Array(_) | Value::Map(_) => true,
    }
}

/// What a decoded message on a mesh link is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinkMessage {
    /// A control message (`t` is one of [`CONTROL_TYPES`]), handled by the mesh.
    Control(ControlMsg),
    /// A content message (`k` is a string), for the content dispatcher (which may still find it
    /// [`ContentMsg::Unknown`]).
    Content(ContentMsg),
    /// A raw binary message (an xfer.v2 chunk frame candidate).
    Binary(Vec<u8>),
    /// Anything else, or a malformed control/content message.
    Garbage(MessageError),
}

/// The coarse class of a mesh-link message, without parsing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkKind {
    /// `t` is a control type.
    Control,
    /// `k` is a string.
    Content,
    /// Raw binary.
    Binary,
    /// Neither.
    Garbage,
}

impl LinkMessage {
    /// Classifies a message: a known control `t` wins (the mesh handles those first), then a
    /// string `k`, then raw binary; everything else (unknown `t` without `k`, scalars, arrays)
    /// is garbage.
    pub fn classify(value: &Value) -> LinkKind {
        let m = match value {
            Value::Bin(_) => return LinkKind::Binary,
            Value::Map(m) => m,
            _ => return LinkKind::Garbage,
        };
        if get(m, "t")
            .and_then(Value::as_str)
            .is_some_and(|t| CONTROL_TYPES.contains(&t))
        {
            LinkKind::Control
        } else if get(m, "k").and_then(Value::as_str).is_some() {
            LinkKind::Content
        } else {
            LinkKind::Garbage
        }
    }

    /// Classifies and parses a message.
    pub fn parse(value: &Value) -> LinkMessage {
        match Self::classify(value) {
            LinkKind::Control => match ControlMsg::from_value(value) {
                Ok(c) => LinkMessage::Control(c),
                Err(e) => LinkMessage::Garbage(e),
            },
            LinkKind::Content => match ContentMsg::from_value(value) {
                Ok(c) => LinkMessage::Content(c),
                Err(e) => LinkMessage::Garbage(e),
            },
            LinkKind::Binary => match value {
                Value::Bin(b) => LinkMessage::Binary(b.clone()),
                _ => LinkMessage::Garbage(MessageError::NotAMap),
            },
            LinkKind::Garbage => LinkMessage::Garbage(match value {
                Value::Map(m) => match discriminator(m, "t") {
                    Ok(t) => MessageError::UnknownType {
                        key: "t",
                        value: t.to_owned(),
                    },
                    Err(_) => MessageError::MissingDiscriminator("k"),
                },
                _ => MessageError::NotAMap,
            }),
        }
    }
}
