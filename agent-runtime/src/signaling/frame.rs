//! JSON text frames of the PeerJS broker socket (`kibitz-wire.md` §2.2).
//!
//! Encoding reproduces what PeerJS 1.5.5 and peerjs-server put on the wire, key order included:
//! client frames are `{"type","payload","dst"}`, server frames `{"type","src","dst","payload"}`,
//! absent fields are omitted. Decoding is tolerant: extra fields are ignored, `null` counts as
//! absent, an unknown `type` is a typed error, and nothing panics on arbitrary input.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest frame (in bytes) the decoders accept.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// The `type` of a broker frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FrameType {
    /// Client keepalive, `{"type":"HEARTBEAT"}`.
    #[serde(rename = "HEARTBEAT")]
    Heartbeat,
    /// An SDP offer, relayed.
    #[serde(rename = "OFFER")]
    Offer,
    /// An SDP answer, relayed.
    #[serde(rename = "ANSWER")]
    Answer,
    /// A trickled ICE candidate, relayed.
    #[serde(rename = "CANDIDATE")]
    Candidate,
    /// The peer named in `src` is gone.
    #[serde(rename = "LEAVE")]
    Leave,
    /// A message to the peer named in `src` could not be delivered in time.
    #[serde(rename = "EXPIRE")]
    Expire,
    /// The id is registered on the broker.
    #[serde(rename = "OPEN")]
    Open,
    /// The id is held by another socket with a different token.
    #[serde(rename = "ID-TAKEN")]
    IdTaken,
    /// A broker error; `payload.msg` says why.
    #[serde(rename = "ERROR")]
    Error,
    /// The API key is not accepted.
    #[serde(rename = "INVALID-KEY")]
    InvalidKey,
}

impl FrameType {
    /// The wire spelling, e.g. `"ID-TAKEN"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameType::Heartbeat => "HEARTBEAT",
            FrameType::Offer => "OFFER",
            FrameType::Answer => "ANSWER",
            FrameType::Candidate => "CANDIDATE",
            FrameType::Leave => "LEAVE",
            FrameType::Expire => "EXPIRE",
            FrameType::Open => "OPEN",
            FrameType::IdTaken => "ID-TAKEN",
            FrameType::Error => "ERROR",
            FrameType::InvalidKey => "INVALID-KEY",
        }
    }

    /// Parses the wire spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "HEARTBEAT" => FrameType::Heartbeat,
            "OFFER" => FrameType::Offer,
            "ANSWER" => FrameType::Answer,
            "CANDIDATE" => FrameType::Candidate,
            "LEAVE" => FrameType::Leave,
            "EXPIRE" => FrameType::Expire,
            "OPEN" => FrameType::Open,
            "ID-TAKEN" => FrameType::IdTaken,
            "ERROR" => FrameType::Error,
            "INVALID-KEY" => FrameType::InvalidKey,
            _ => return None,
        })
    }
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame or payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN} byte limit")]
    TooLarge(usize),
    /// The frame is not valid JSON (or not UTF-8).
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    /// The frame is JSON but not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// The frame has no string `type`.
    #[error("frame has no type")]
    MissingType,
    /// The frame's `type` is not one PeerJS knows.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// A field has the wrong JSON type.
    #[error("field {0} has the wrong type")]
    BadField(&'static str),
    /// The frame carries no payload where one is required.
    #[error("{0} frame has no payload")]
    MissingPayload(FrameType),
    /// The payload does not have the expected shape.
    #[error("bad {kind} payload: {reason}")]
    BadPayload {
        /// The frame type whose payload was being decoded.
        kind: FrameType,
        /// What was wrong.
        reason: String,
    },
}

/// A frame sent by a client to the broker: `{"type":T,"payload":P,"dst":D}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientFrame {
    /// The frame type.
    #[serde(rename = "type")]
    pub kind: FrameType,
    /// Opaque payload (relayed verbatim by the broker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Destination peer id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
}

/// A frame sent by the broker to a client: `{"type":T,"src":S,"dst":D,"payload":P}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerFrame {
    /// The frame type.
    #[serde(rename = "type")]
    pub kind: FrameType,
    /// The peer id the frame comes from (added by the broker when relaying).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// The peer id the frame is addressed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    /// Opaque payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// Parses bytes into a JSON object, with the size cap applied.
fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, FrameError> {
    if bytes.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(FrameError::NotAnObject),
        Err(e) => Err(FrameError::Json(e.to_string())),
    }
}

fn take_type(map: &mut Map<String, Value>) -> Result<FrameType, FrameError> {
    match map.remove("type") {
        Some(Value::String(s)) => FrameType::parse(&s).ok_or(FrameError::UnknownType(s)),
        Some(Value::Null) | None => Err(FrameError::MissingType),
        Some(_) => Err(FrameError::BadField("type")),
    }
}

fn take_str(map: &mut Map<String, Value>, key: &'static str) -> Result<Option<String>, FrameError> {
    match map.remove(key) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(FrameError::BadField(key)),
    }
}

fn take_payload(map: &mut Map<String, Value>) -> Option<Value> {
    match map.remove("payload") {
        Some(Value::Null) | None => None,
        Some(v) => Some(v),
    }
}

fn decode_payload<T: DeserializeOwned>(
    kind: FrameType,
    payload: Option<&Value>,
) -> Result<T, FrameError> {
    let payload = payload.ok_or(FrameError::MissingPayload(kind))?;
    T::deserialize(payload).map_err(|e| FrameError::BadPayload {
        kind,
        reason: e.to_string(),
    })
}

fn to_value<T: Serialize>(payload: &T) -> Value {
    // Serialising these plain structs (strings, numbers, bools, JSON values) cannot fail.
    serde_json::to_value(payload).unwrap_or(Value::Null)
}

fn to_text<T: Serialize>(frame: &T) -> String {
    // Plain structs of strings and JSON values always serialise.
    serde_json::to_string(frame).unwrap_or_default()
}

impl ClientFrame {
    /// `{"type":"HEARTBEAT"}`.
    pub fn heartbeat() -> Self {
        ClientFrame {
            kind: FrameType::Heartbeat,
            payload: None,
            dst: None,
        }
    }

    /// An `OFFER` to `dst`.
    pub fn offer(dst: impl Into<String>, payload: &OfferPayload) -> Self {
        Self::relay(FrameType::Offer, dst, to_value(payload))
    }

    /// An `ANSWER` to `dst`.
    pub fn answer(dst: impl Into<String>, payload: &AnswerPayload) -> Self {
        Self::relay(FrameType::Answer, dst, to_value(payload))
    }

    /// A `CANDIDATE` to `dst`.
    pub fn candidate(dst: impl Into<String>, payload: &CandidatePayload) -> Self {
        Self::relay(FrameType::Candidate, dst, to_value(payload))
    }

    /// A frame of any type with a payload, addressed to `dst`.
    pub fn relay(kind: FrameType, dst: impl Into<String>, payload: Value) -> Self {
        ClientFrame {
            kind,
            payload: Some(payload),
            dst: Some(dst.into()),
        }
    }

    /// Decodes a client frame (tolerant; see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let mut map = parse_object(bytes)?;
        let kind = take_type(&mut map)?;
        let dst = take_str(&mut map, "dst")?;
        let payload = take_payload(&mut map);
        Ok(ClientFrame { kind, payload, dst })
    }

    /// The JSON text of this frame, in PeerJS key order.
    pub fn to_json(&self) -> String {
        to_text(self)
    }

    /// Decodes the payload as `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        decode_payload(self.kind, self.payload.as_ref())
    }
}

impl ServerFrame {
    /// A frame of `kind` with no fields.
    pub fn bare(kind: FrameType) -> Self {
        ServerFrame {
            kind,
            src: None,
            dst: None,
            payload: None,
        }
    }

    /// `{"type":"OPEN"}`.
    pub fn open() -> Self {
        Self::bare(FrameType::Open)
    }

    /// `{"type":"ERROR","payload":{"msg":…}}`.
    pub fn error(msg: impl Into<String>) -> Self {
        ServerFrame {
            payload: Some(to_value(&ErrorPayload { msg: msg.into() })),
            ..Self::bare(FrameType::Error)
        }
    }

    /// `{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}`, as peerjs-server sends it.
    pub fn id_taken() -> Self {
        ServerFrame {
            payload: Some(to_value(&ErrorPayload {
                msg: "ID is taken".to_owned(),
            })),
            ..Self::bare(FrameType::IdTaken)
        }
    }

    /// A payload-less frame from `src` to `dst` (used for `EXPIRE` and `LEAVE`).
    pub fn notice(kind: FrameType, src: impl Into<String>, dst: impl Into<String>) -> Self {
        ServerFrame {
            src: Some(src.into()),
            dst: Some(dst.into()),
            ..Self::bare(kind)
        }
    }

    /// Decodes a server frame (tolerant; see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let mut map = parse_object(bytes)?;
        let kind = take_type(&mut map)?;
        let src = take_str(&mut map, "src")?;
        let dst = take_str(&mut map, "dst")?;
        let payload = take_payload(&mut map);
        Ok(ServerFrame {
            kind,
            src,
            dst,
            payload,
        })
    }

    /// The JSON text of this frame, in peerjs-server key order.
    pub fn to_json(&self) -> String {
        to_text(self)
    }

    /// Decodes the payload as `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        decode_payload(self.kind, self.payload.as_ref())
    }

    /// The `payload.msg` of an `ERROR`/`ID-TAKEN` frame, if there is one.
    pub fn error_msg(&self) -> Option<String> {
        self.payload_as::<ErrorPayload>().ok().map(|p| p.msg)
    }
}

/// The kind of PeerJS connection an offer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    /// A `DataConnection`.
    Data,
    /// A `MediaConnection` (legacy Kibitz media).
    Media,
}

/// The `type` of an SDP session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
    /// A provisional answer.
    Pranswer,
    /// A rollback.
    Rollback,
}

/// `RTCSessionDescriptionInit` JSON: `{"type":…,"sdp":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// Offer or answer.
    #[serde(rename = "type")]
    pub kind: SdpType,
    /// The SDP text.
    #[serde(default)]
    pub sdp: String,
}

/// Payload of an `OFFER`.
///
/// Serialises in PeerJS order: `sdp, type, connectionId, metadata?, label, reliable,
/// serialization` (`metadata` only when set; the data-only fields only when set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferPayload {
    /// The offer.
    pub sdp: SessionDescription,
    /// Data or media.
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// Connection id (`dc_…` / `mc_…`), repeated in the answer and candidates.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
    /// Application metadata; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Data channel label (data offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Whether the channel is reliable (data offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reliable: Option<bool>,
    /// Serialization name, `"binary"` for Kibitz (data offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialization: Option<String>,
}

impl OfferPayload {
    /// A Kibitz-style data offer: `label` (the connection id unless given), `reliable:true`,
    /// `serialization:"binary"`, no metadata.
    pub fn data(
        sdp: impl Into<String>,
        connection_id: impl Into<String>,
        label: Option<String>,
    ) -> Self {
        let connection_id = connection_id.into();
        OfferPayload {
            sdp: SessionDescription {
                kind: SdpType::Offer,
                sdp: sdp.into(),
            },
            kind: ConnectionType::Data,
            label: Some(label.unwrap_or_else(|| connection_id.clone())),
            connection_id,
            metadata: None,
            reliable: Some(true),
            serialization: Some("binary".to_owned()),
        }
    }
}

/// Payload of an `ANSWER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerPayload {
    /// The answer.
    pub sdp: SessionDescription,
    /// Data or media.
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// The connection id from the offer.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
}

/// `RTCIceCandidateInit` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidateInit {
    /// The `candidate:…` line.
    #[serde(default)]
    pub candidate: String,
    /// Media stream id tag.
    #[serde(rename = "sdpMid", default)]
    pub sdp_mid: Option<String>,
    /// Index of the m-line.
    #[serde(rename = "sdpMLineIndex", default)]
    pub sdp_m_line_index: Option<u16>,
    /// ICE username fragment.
    #[serde(rename = "usernameFragment", default)]
    pub username_fragment: Option<String>,
}

/// Payload of a `CANDIDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidatePayload {
    /// The candidate.
    pub candidate: IceCandidateInit,
    /// Data or media.
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// The connection id from the offer.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
}

/// Payload of `ERROR` and `ID-TAKEN`: `{"msg":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// Human-readable reason.
    #[serde(default)]
    pub msg: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offer() -> OfferPayload {
        OfferPayload::data("v=0\r\n", "dc_abc", None)
    }

    #[test]
    fn heartbeat_is_exact() {
        assert_eq!(
            ClientFrame::heartbeat().to_json(),
            r#"{"type":"HEARTBEAT"}"#
        );
    }

    #[test]
    fn data_offer_key_order_matches_peerjs() {
        let f = ClientFrame::offer("kbz-v1-room", &offer());
        assert_eq!(
            f.to_json(),
            r#"{"type":"OFFER","payload":{"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"data","connectionId":"dc_abc","label":"dc_abc","reliable":true,"serialization":"binary"},"dst":"kbz-v1-room"}"#
        );
    }

    #[test]
    fn metadata_sits_after_connection_id_when_set() {
        let mut p = offer();
        p.label = Some("bulk".into());
        p.metadata = Some(serde_json::json!({"a":1}));
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(
            s,
            r#"{"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"data","connectionId":"dc_abc","metadata":{"a":1},"label":"bulk","reliable":true,"serialization":"binary"}"#
        );
    }

    #[test]
    fn media_offer_has_no_data_fields() {
        let p = OfferPayload {
            kind: ConnectionType::Media,
            connection_id: "mc_1".into(),
            label: None,
            reliable: None,
            serialization: None,
            ..offer()
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"media","connectionId":"mc_1"}"#
        );
    }

    #[test]
    fn answer_and_candidate_shapes() {
        let a = AnswerPayload {
            sdp: SessionDescription {
                kind: SdpType::Answer,
                sdp: "x".into(),
            },
            kind: ConnectionType::Data,
            connection_id: "dc_1".into(),
        };
        assert_eq!(
            ClientFrame::answer("p", &a).to_json(),
            r#"{"type":"ANSWER","payload":{"sdp":{"type":"answer","sdp":"x"},"type":"data","connectionId":"dc_1"},"dst":"p"}"#
        );
        let c = CandidatePayload {
            candidate: IceCandidateInit {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: Some("uf".into()),
            },
            kind: ConnectionType::Data,
            connection_id: "dc_1".into(),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"uf"},"type":"data","connectionId":"dc_1"}"#
        );
    }

    #[test]
    fn server_frames_encode_like_peerjs_server() {
        assert_eq!(ServerFrame::open().to_json(), r#"{"type":"OPEN"}"#);
        assert_eq!(
            ServerFrame::id_taken().to_json(),
            r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#
        );
        assert_eq!(
            ServerFrame::error("Invalid key provided").to_json(),
            r#"{"type":"ERROR","payload":{"msg":"Invalid key provided"}}"#
        );
        assert_eq!(
            ServerFrame::notice(FrameType::Expire, "b", "a").to_json(),
            r#"{"type":"EXPIRE","src":"b","dst":"a"}"#
        );
        let relayed = ServerFrame {
            kind: FrameType::Offer,
            src: Some("a".into()),
            dst: Some("b".into()),
            payload: Some(serde_json::json!({"x":1})),
        };
        assert_eq!(
            relayed.to_json(),
            r#"{"type":"OFFER","src":"a","dst":"b","payload":{"x":1}}"#
        );
    }

    #[test]
    fn decode_is_tolerant() {
        let f = ServerFrame::decode(
            br#"{"extra":[1],"type":"OFFER","src":"a","dst":null,"payload":{"sdp":{"type":"offer","sdp":"s"},"type":"data","connectionId":"dc_1","label":null,"reliable":true,"serialization":"binary","browser":"chrome"}}"#,
        )
        .unwrap();
        assert_eq!(f.kind, FrameType::Offer);
        assert_eq!(f.src.as_deref(), Some("a"));
        assert_eq!(f.dst, None);
        let p: OfferPayload = f.payload_as().unwrap();
        assert_eq!(p.connection_id, "dc_1");
        assert_eq!(p.label, None);
        assert_eq!(p.reliable, Some(true));

        let c = ServerFrame::decode(
            br#"{"type":"CANDIDATE","src":"a","payload":{"candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null},"type":"data","connectionId":"dc_1"}}"#,
        )
        .unwrap();
        let cp: CandidatePayload = c.payload_as().unwrap();
        assert_eq!(cp.candidate.sdp_mid, None);
        assert_eq!(cp.candidate.username_fragment, None);

        let e = ServerFrame::decode(br#"{"type":"ERROR","payload":null}"#).unwrap();
        assert_eq!(e.payload, None);
        assert_eq!(e.error_msg(), None);
    }

    #[test]
    fn decode_errors_are_typed() {
        assert_eq!(
            ServerFrame::decode(br#"{"type":"NOPE"}"#),
            Err(FrameError::UnknownType("NOPE".into()))
        );
        assert_eq!(ServerFrame::decode(br#"{}"#), Err(FrameError::MissingType));
        assert_eq!(
            ServerFrame::decode(br#"{"type":null}"#),
            Err(FrameError::MissingType)
        );
        assert_eq!(
            ServerFrame::decode(br#"{"type":3}"#),
            Err(FrameError::BadField("type"))
        );
        assert_eq!(
            ServerFrame::decode(br#"{"type":"OPEN","src":5}"#),
            Err(FrameError::BadField("src"))
        );
        assert_eq!(ServerFrame::decode(b"[1]"), Err(FrameError::NotAnObject));
        assert!(matches!(
            ServerFrame::decode(b"{"),
            Err(FrameError::Json(_))
        ));
        assert!(matches!(
            ClientFrame::decode(&[0xff, 0xfe]),
            Err(FrameError::Json(_))
        ));
        let big = vec![b' '; MAX_FRAME_LEN + 1];
        assert_eq!(
            ClientFrame::decode(&big),
            Err(FrameError::TooLarge(MAX_FRAME_LEN + 1))
        );
        let f = ServerFrame::decode(br#"{"type":"OFFER","src":"a"}"#).unwrap();
        assert_eq!(
            f.payload_as::<OfferPayload>(),
            Err(FrameError::MissingPayload(FrameType::Offer))
        );
        let f = ServerFrame::decode(br#"{"type":"OFFER","payload":{"sdp":1}}"#).unwrap();
        assert!(matches!(
            f.payload_as::<OfferPayload>(),
            Err(FrameError::BadPayload {
                kind: FrameType::Offer,
                ..
            })
        ));
    }

    #[test]
    fn client_frames_round_trip() {
        let f = ClientFrame::offer("b", &offer());
        let back = ClientFrame::decode(f.to_json().as_bytes()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.payload_as::<OfferPayload>().unwrap(), offer());
    }

    #[test]
    fn frame_type_spellings_round_trip() {
        for t in [
            FrameType::Heartbeat,
            FrameType::Offer,
            FrameType::Answer,
            FrameType::Candidate,
            FrameType::Leave,
            FrameType::Expire,
            FrameType::Open,
            FrameType::IdTaken,
            FrameType::Error,
            FrameType::InvalidKey,
        ] {
            assert_eq!(FrameType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ServerFrame::decode(&bytes);
            let _ = ClientFrame::decode(&bytes);
        }

        #[test]
        fn payload_decoders_never_panic(s in "\\PC{0,200}") {
            let wrapped = format!(r#"{{"type":"OFFER","payload":{s}}}"#);
            if let Ok(f) = ServerFrame::decode(wrapped.as_bytes()) {
                let _ = f.payload_as::<OfferPayload>();
                let _ = f.payload_as::<AnswerPayload>();
                let _ = f.payload_as::<CandidatePayload>();
                let _ = f.payload_as::<ErrorPayload>();
            }
        }
    }
}
