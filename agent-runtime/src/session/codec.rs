//! Per-link framing: BinaryPack + PeerJS chunking out, deframing in (kibitz-wire.md §3).

use bytes::Bytes;

use crate::wire::chunker::{DeframeError, Deframer, DeframerOptions, Frame, Framer};
use crate::wire::Value;

/// One DataConnection's codec state (the chunk counter out, partial chunks in).
#[derive(Debug, Default)]
pub(crate) struct LinkCodec {
    framer: Framer,
    deframer: Deframer,
}

/// What one received payload turned into.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A whole message.
    Message(Value),
    /// PeerJS's `{__peerData:{type:'close'}}`: the remote closes the connection.
    Close,
    /// A slice of a chunked message; nothing to do yet.
    Partial,
    /// Undecodable bytes or a bad chunk (count and drop).
    Garbage(DeframeError),
}

impl LinkCodec {
    pub(crate) fn new() -> Self {
        Self {
            framer: Framer::new(),
            deframer: Deframer::new(DeframerOptions::default()),
        }
    }

    /// The SCTP payloads for one message, in send order.
    pub(crate) fn encode(&mut self, value: &Value) -> Vec<Bytes> {
        self.framer
            .encode_message(value)
            .into_iter()
            .map(Bytes::from)
            .collect()
    }

    /// Feeds one received payload.
    pub(crate) fn decode(&mut self, payload: &[u8]) -> Decoded {
        match self.deframer.push(payload) {
            Ok(Some(Frame::Message(v))) => Decoded::Message(v),
            Ok(Some(Frame::Close)) => Decoded::Close,
            Ok(None) => Decoded::Partial,
            Err(e) => Decoded::Garbage(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::presence::ClientMsg;

    #[test]
    fn roundtrip_small_and_chunked() {
        let mut a = LinkCodec::new();
        let mut b = LinkCodec::new();
        let ping = a.encode(&ClientMsg::Ping.to_value());
        assert_eq!(ping.len(), 1);
        assert_eq!(
            &ping[0][..],
            &[0x81, 0xb1, 0x74, 0xb4, 0x70, 0x69, 0x6e, 0x67]
        );
        assert!(matches!(b.decode(&ping[0]), Decoded::Message(_)));
        let big = Value::Map(vec![("k".into(), Value::from("x".repeat(40_000)))]);
        let parts = a.encode(&big);
        assert_eq!(parts.len(), 3);
        let mut got = None;
        for p in &parts {
            if let Decoded::Message(v) = b.decode(p) {
                got = Some(v);
            }
        }
        assert_eq!(got, Some(big));
        assert!(matches!(b.decode(&[0xb5, b'a']), Decoded::Garbage(_)));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(payloads in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..64), 1..8)) {
            let mut c = LinkCodec::new();
            for p in &payloads {
                let _ = c.decode(p);
            }
        }
    }
}
