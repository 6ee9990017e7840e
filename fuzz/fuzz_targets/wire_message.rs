//! Fuzzes everything that parses peer messages: the deframer (PeerJS chunks and close) and the
//! presence, content and control decoders, on arbitrary input.
#![no_main]

use agent_runtime::wire::binarypack::decode;
use agent_runtime::wire::chunker::{Deframer, Frame};
use agent_runtime::wire::content::{AgentEnvelope, ContentMsg};
use agent_runtime::wire::control::{ControlMsg, LinkMessage};
use agent_runtime::wire::presence::{AuthorityMsg, CallMember, ClientMsg, EngineInfo};
use agent_runtime::wire::{json, Value};
use libfuzzer_sys::fuzz_target;

fn parse_all(v: &Value) {
    let _ = ClientMsg::from_value(v);
    let _ = AuthorityMsg::from_value(v);
    let _ = ContentMsg::from_value(v);
    let _ = ControlMsg::from_value(v);
    let _ = LinkMessage::parse(v);
    let _ = CallMember::from_value(v);
    let _ = EngineInfo::from_meta(v);
    let _ = AgentEnvelope::from_data(v);
    let _ = json::from_json(&json::to_json(v));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data) {
        parse_all(&v);
    }
    // Treat the input as a stream of SCTP payloads, each prefixed by a one-byte length.
    let mut deframer = Deframer::default();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        if let Ok(Some(Frame::Message(v))) = deframer.push(payload) {
            parse_all(&v);
        }
        rest = next;
    }
});
