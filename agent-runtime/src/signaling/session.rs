//! Sans-I/O interpretation of broker frames: what a frame means while attaching and during an
//! open session. The tokio shell in `client` only moves bytes and keeps time.

use super::error::SignalingError;
use super::event::SignalingEvent;
use super::frame::{FrameError, FrameType, ServerFrame};

/// The outcome of one server frame while waiting for the broker to accept the id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttachStep {
    /// `OPEN`: the id is registered.
    Opened,
    /// A relayed frame arrived without `OPEN`: the id was re-attached (same id and token while
    /// the broker still held the old socket). The frame must still be delivered.
    Reattached,
    /// The broker refused the id or key.
    Refused(SignalingError),
    /// Nothing decided yet.
    Pending,
}

/// Interprets `frame` while attaching as `id`.
pub(crate) fn attach_step(frame: &ServerFrame, id: &str) -> AttachStep {
    match frame.kind {
        FrameType::Open => AttachStep::Opened,
        FrameType::IdTaken => AttachStep::Refused(SignalingError::IdTaken { id: id.to_owned() }),
        FrameType::InvalidKey => AttachStep::Refused(SignalingError::InvalidKey),
        FrameType::Error => AttachStep::Refused(SignalingError::Server {
            msg: frame.error_msg().unwrap_or_default(),
        }),
        FrameType::Offer
        | FrameType::Answer
        | FrameType::Candidate
        | FrameType::Leave
        | FrameType::Expire => AttachStep::Reattached,
        FrameType::Heartbeat => AttachStep::Pending,
    }
}

/// What one server frame means during an open session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound {
    /// Report this event.
    Event(SignalingEvent),
    /// Stop the session for good.
    Fatal(SignalingError),
    /// Drop the frame (malformed or meaningless); the reason is logged.
    Ignore(String),
}

fn need_src(frame: &ServerFrame) -> Result<String, String> {
    frame
        .src
        .clone()
        .ok_or_else(|| format!("{} without src", frame.kind))
}

fn bad(e: FrameError) -> String {
    e.to_string()
}

/// The event a relayed frame stands for, or why it is dropped.
fn relayed_event(frame: &ServerFrame) -> Result<SignalingEvent, String> {
    Ok(match frame.kind {
        FrameType::Offer => SignalingEvent::Offer {
            src: need_src(frame)?,
            payload: frame.payload_as().map_err(bad)?,
        },
        FrameType::Answer => SignalingEvent::Answer {
            src: need_src(frame)?,
            payload: frame.payload_as().map_err(bad)?,
        },
        FrameType::Candidate => SignalingEvent::Candidate {
            src: need_src(frame)?,
            payload: frame.payload_as().map_err(bad)?,
        },
        FrameType::Leave => SignalingEvent::Leave {
            src: need_src(frame)?,
        },
        FrameType::Expire => SignalingEvent::Expire {
            src: need_src(frame)?,
        },
        other => return Err(format!("{other} is not a relayed frame")),
    })
}

/// Interprets `frame` during an open session as `id`.
pub(crate) fn inbound(frame: &ServerFrame, id: &str) -> Inbound {
    match frame.kind {
        FrameType::Error => Inbound::Event(SignalingEvent::Error {
            msg: frame.error_msg().unwrap_or_default(),
        }),
        FrameType::IdTaken => Inbound::Fatal(SignalingError::IdTaken { id: id.to_owned() }),
        FrameType::InvalidKey => Inbound::Fatal(SignalingError::InvalidKey),
        FrameType::Open | FrameType::Heartbeat => {
            Inbound::Ignore(format!("{} while open", frame.kind))
        }
        _ => match relayed_event(frame) {
            Ok(ev) => Inbound::Event(ev),
            Err(why) => Inbound::Ignore(why),
        },
    }
}

/// Decodes and interprets raw text during an open session.
pub(crate) fn inbound_text(text: &[u8], id: &str) -> Inbound {
    match ServerFrame::decode(text) {
        Ok(f) => inbound(&f, id),
        Err(e) => Inbound::Ignore(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(s: &str) -> ServerFrame {
        ServerFrame::decode(s.as_bytes()).unwrap()
    }

    #[test]
    fn attach_outcomes() {
        assert_eq!(
            attach_step(&frame(r#"{"type":"OPEN"}"#), "me"),
            AttachStep::Opened
        );
        assert_eq!(
            attach_step(
                &frame(r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#),
                "me"
            ),
            AttachStep::Refused(SignalingError::IdTaken { id: "me".into() })
        );
        assert_eq!(
            attach_step(
                &frame(r#"{"type":"ERROR","payload":{"msg":"Invalid key provided"}}"#),
                "me"
            ),
            AttachStep::Refused(SignalingError::Server {
                msg: "Invalid key provided".into()
            })
        );
        assert_eq!(
            attach_step(&frame(r#"{"type":"INVALID-KEY"}"#), "me"),
            AttachStep::Refused(SignalingError::InvalidKey)
        );
        assert_eq!(
            attach_step(&frame(r#"{"type":"LEAVE","src":"x"}"#), "me"),
            AttachStep::Reattached
        );
        assert_eq!(
            attach_step(&frame(r#"{"type":"HEARTBEAT"}"#), "me"),
            AttachStep::Pending
        );
    }

    #[test]
    fn relayed_frames_become_events() {
        let ev = inbound_text(
            br#"{"type":"OFFER","src":"a","dst":"me","payload":{"sdp":{"type":"offer","sdp":"s"},"type":"data","connectionId":"dc_1","label":"dc_1","reliable":true,"serialization":"binary"}}"#,
            "me",
        );
        match ev {
            Inbound::Event(SignalingEvent::Offer { src, payload }) => {
                assert_eq!(src, "a");
                assert_eq!(payload.connection_id, "dc_1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            inbound_text(br#"{"type":"EXPIRE","src":"b","dst":"me"}"#, "me"),
            Inbound::Event(SignalingEvent::Expire { src: "b".into() })
        );
        assert_eq!(
            inbound_text(br#"{"type":"LEAVE","src":"b"}"#, "me"),
            Inbound::Event(SignalingEvent::Leave { src: "b".into() })
        );
        assert_eq!(
            inbound_text(br#"{"type":"ERROR","payload":{"msg":"x"}}"#, "me"),
            Inbound::Event(SignalingEvent::Error { msg: "x".into() })
        );
        assert_eq!(
            inbound_text(br#"{"type":"ID-TAKEN"}"#, "me"),
            Inbound::Fatal(SignalingError::IdTaken { id: "me".into() })
        );
    }

    #[test]
    fn malformed_frames_are_ignored() {
        for bad in [
            &br#"{"type":"OFFER","src":"a"}"#[..],
            br#"{"type":"OFFER","payload":{"sdp":{"type":"offer","sdp":""},"type":"data","connectionId":"c"}}"#,
            br#"{"type":"ANSWER","src":"a","payload":{"sdp":7}}"#,
            br#"{"type":"CANDIDATE","src":"a","payload":[]}"#,
            br#"{"type":"LEAVE"}"#,
            br#"{"type":"WAT","src":"a"}"#,
            br#"{"type":"OPEN"}"#,
            b"\x00\x01garbage",
            b"null",
        ] {
            assert!(
                matches!(inbound_text(bad, "me"), Inbound::Ignore(_)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn inbound_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = inbound_text(&bytes, "me");
        }
    }
}
