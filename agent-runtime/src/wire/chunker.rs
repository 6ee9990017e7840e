//! PeerJS BinaryPack framing of a DataConnection: chunking on send, reassembly on receive, and
//! the `{__peerData:{type:'close'}}` close signal (kibitz-wire.md §3; PeerJS 1.5.5
//! `BinaryPack.ts`, `binaryPackChunker.ts`). Sans-I/O: bytes in, frames out.
//!
//! Sending: a packed message longer than [`CHUNK_MTU`] bytes is split into 16300-byte slices,
//! each sent as `{__peerData:<counter>, n:<index>, data:<bin>, total:<count>}` (that key order);
//! the per-connection counter starts at 1 and is never 0 (a 0 would read as "not a chunk").
//!
//! Receiving follows PeerJS: a message whose `__peerData` is falsy is an ordinary message; a map
//! `__peerData` with `type:'close'` is a close; any other truthy `__peerData` is a chunk. Where
//! PeerJS is fragile, the [`Reassembler`] is strict and bounded:
//! - a duplicate slice is ignored (PeerJS would count it twice and assemble garbage);
//! - slices may arrive in any order; a `total` that disagrees with the first slice's, an index
//!   outside `0..total`, an empty or non-binary slice, or a non-integer counter is a typed
//!   [`ChunkError`] and drops that partial message;
//! - at most [`ReassemblerOptions::max_partials`] partial messages are kept: starting another
//!   evicts the oldest; buffered bytes are capped by [`ReassemblerOptions::max_buffered_bytes`]
//!   (older partials are evicted first; a partial that alone exceeds the budget or
//!   [`ReassemblerOptions::max_message_bytes`] is dropped with an error). Evictions are counted
//!   in [`ReassemblerStats`] and logged at debug; late slices of a dropped or evicted message
//!   (the last 16 counters) are ignored rather than buffered again;
//! - a reassembled message that is itself a chunk is refused ([`ChunkError::NestedChunk`]).

use std::collections::{BTreeMap, VecDeque};

/// How many dropped or evicted message counters are remembered to ignore their late slices.
const DEAD_IDS: usize = 16;

use super::binarypack::{self, DecodeError, DecodeOptions};
use super::control::truthy;
use super::fields::get;
use super::Value;

/// PeerJS `chunkedMTU`: packed messages longer than this are chunked.
pub const CHUNK_MTU: usize = 16300;

/// The counter key of a PeerJS chunk and of the close signal.
pub const PEER_DATA_KEY: &str = "__peerData";

/// One complete thing received on a DataConnection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Frame {
    /// A complete message.
    Message(Value),
    /// The peer asked to close the connection (`{__peerData:{type:'close'}}`).
    Close,
}

/// Why a chunk was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The chunk object is malformed.
    #[error("malformed chunk: {0}")]
    Malformed(&'static str),
    /// A slice's `total` disagrees with the first slice of the same message.
    #[error("chunk {id}: total {got} disagrees with {expected}")]
    InconsistentTotal {
        /// Message counter.
        id: u64,
        /// The first slice's total.
        expected: u64,
        /// This slice's total.
        got: u64,
    },
    /// `n` is not below `total`.
    #[error("chunk {id}: index {n} out of range 0..{total}")]
    IndexOutOfRange {
        /// Message counter.
        id: u64,
        /// Slice index.
        n: u64,
        /// Slice count.
        total: u64,
    },
    /// The partial message exceeds a size cap and was dropped.
    #[error("chunked message {id} exceeds {max} bytes")]
    TooLarge {
        /// Message counter.
        id: u64,
        /// The cap that was hit.
        max: usize,
    },
    /// A reassembled message is itself a chunk.
    #[error("reassembled message is itself a chunk")]
    NestedChunk,
}

/// Why a received payload produced no frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeframeError {
    /// The payload (or a reassembled message) is not valid BinaryPack.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A chunk was refused.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

/// One PeerJS chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// `__peerData`: the per-connection message counter (≥ 1).
    pub id: u64,
    /// `n`: slice index.
    pub n: u64,
    /// `total`: slice count.
    pub total: u64,
    /// `data`: the slice.
    pub data: Vec<u8>,
}

impl Chunk {
    /// The chunk object, keys `__peerData, n, data, total`.
    pub fn to_value(&self) -> Value {
        let int = |x: u64| i64::try_from(x).map_or(Value::UInt(x), Value::Int);
        Value::Map(vec![
            (PEER_DATA_KEY.to_owned(), int(self.id)),
            ("n".to_owned(), int(self.n)),
            ("data".to_owned(), Value::Bin(self.data.clone())),
            ("total".to_owned(), int(self.total)),
        ])
    }

    /// Reads a chunk object (its `__peerData` already known to be truthy and not a close).
    pub fn from_value(value: &Value) -> Result<Chunk, ChunkError> {
        let Value::Map(m) = value else {
            return Err(ChunkError::Malformed("not a map"));
        };
        let count = |key: &str| {
            get(m, key)
                .and_then(Value::as_i64)
                .and_then(|i| u64::try_from(i).ok())
        };
        let id = count(PEER_DATA_KEY)
            .filter(|id| *id > 0)
            .ok_or(ChunkError::Malformed("counter is not a positive integer"))?;
        let n = count("n").ok_or(ChunkError::Malformed("`n` is not a non-negative integer"))?;
        let total = count("total")
            .filter(|t| *t > 0)
            .ok_or(ChunkError::Malformed("`total` is not a positive integer"))?;
        let data = match get(m, "data") {
            Some(Value::Bin(b)) if !b.is_empty() => b.clone(),
            _ => return Err(ChunkError::Malformed("`data` is not non-empty binary")),
        };
        if n >= total {
            return Err(ChunkError::IndexOutOfRange { id, n, total });
        }
        Ok(Chunk { id, n, total, data })
    }
}

/// The close signal `{__peerData:{type:'close'}}`.
pub fn close_value() -> Value {
    Value::Map(vec![(
        PEER_DATA_KEY.to_owned(),
        Value::Map(vec![("type".to_owned(), Value::from("close"))]),
    )])
}

/// The sending half: packs messages and chunks the large ones. Keep one per DataConnection:
/// the chunk counter is per connection, like PeerJS's.
#[derive(Debug, Clone)]
pub struct Framer {
    next_id: u64,
    mtu: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    /// A framer with the PeerJS MTU and the counter at 1.
    pub fn new() -> Self {
        Framer::with_mtu(CHUNK_MTU)
    }

    /// A framer with a custom slice size (at least 1).
    pub fn with_mtu(mtu: usize) -> Self {
        Framer {
            next_id: 1,
            mtu: mtu.max(1),
        }
    }

    /// One or more SCTP payloads for `value`, in send order.
    pub fn encode_message(&mut self, value: &Value) -> Vec<Vec<u8>> {
        self.frame_packed(binarypack::encode(value))
    }

    /// Chunks already packed bytes when they exceed the MTU.
    pub fn frame_packed(&mut self, packed: Vec<u8>) -> Vec<Vec<u8>> {
        if packed.len() <= self.mtu {
            return vec![packed];
        }
        let id = self.next_id;
        self.next_id = if id >= i64::MAX as u64 { 1 } else { id + 1 };
        let total = packed.len().div_ceil(self.mtu) as u64;
        packed
            .chunks(self.mtu)
            .enumerate()
            .map(|(n, slice)| {
                binarypack::encode(
                    &Chunk {
                        id,
                        n: n as u64,
                        total,
                        data: slice.to_vec(),
                    }
                    .to_value(),
                )
            })
            .collect()
    }

    /// The packed close signal.
    pub fn encode_close(&self) -> Vec<u8> {
        binarypack::encode(&close_value())
    }
}

/// Limits of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblerOptions {
    /// Most partial messages kept at once (oldest evicted first).
    pub max_partials: usize,
    /// Most bytes buffered across all partial messages.
    pub max_buffered_bytes: usize,
    /// Largest reassembled message.
    pub max_message_bytes: usize,
}

impl Default for ReassemblerOptions {
    fn default() -> Self {
        ReassemblerOptions {
            max_partials: 8,
            max_buffered_bytes: binarypack::DEFAULT_MAX_MESSAGE_BYTES,
            max_message_bytes: binarypack::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Counters of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReassemblerStats {
    /// Messages completed.
    pub completed: u64,
    /// Duplicate slices ignored.
    pub duplicates: u64,
    /// Partial messages evicted to make room.
    pub evicted: u64,
    /// Partial messages dropped because of an error.
    pub dropped: u64,
    /// Late slices of an already dropped or evicted message, ignored.
    pub ignored: u64,
}

#[derive(Debug)]
struct Partial {
    total: u64,
    parts: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
    seq: u64,
}

/// Sans-I/O, bounded reassembly of PeerJS chunks.
#[derive(Debug, Default)]
pub struct Reassembler {
    opts: ReassemblerOptions,
    partials: BTreeMap<u64, Partial>,
    buffered: usize,
    seq: u64,
    stats: ReassemblerStats,
    dead: VecDeque<u64>,
}

impl Reassembler {
    /// A reassembler with the given limits.
    pub fn new(opts: ReassemblerOptions) -> Self {
        Reassembler {
            opts,
            ..Reassembler::default()
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReassemblerStats {
        self.stats
    }

    /// Partial messages currently held.
    pub fn pending(&self) -> usize {
        self.partials.len()
    }

    /// Bytes currently buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Forgets every partial message (e.g. when the connection closes).
    pub fn clear(&mut self) {
        self.partials.clear();
        self.buffered = 0;
        self.dead.clear();
    }

    /// Adds a slice; returns the packed message once all its slices are in.
    pub fn push(&mut self, chunk: Chunk) -> Result<Option<Vec<u8>>, ChunkError> {
        let Chunk { id, n, total, data } = chunk;
        if self.dead.contains(&id) {
            self.stats.ignored += 1;
            return Ok(None);
        }
        if n >= total {
            self.drop_partial(id);
            return Err(ChunkError::IndexOutOfRange { id, n, total });
        }
        if let Some(p) = self.partials.get(&id) {
            if p.total != total {
                let expected = p.total;
                self.drop_partial(id);
                return Err(ChunkError::InconsistentTotal {
                    id,
                    expected,
                    got: total,
                });
            }
            if p.parts.contains_key(&n) {
                self.stats.duplicates += 1;
                return Ok(None);
            }
        } else {
            while self.partials.len() >= self.opts.max_partials.max(1) {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            self.seq += 1;
            self.partials.insert(
                id,
                Partial {
                    total,
                    parts: BTreeMap::new(),
                    bytes: 0,
                    seq: self.seq,
                },
            );
        }
        let own = self.partials.get(&id).map_or(0, |p| p.bytes);
        if own.saturating_add(data.len()) > self.opts.max_message_bytes {
            self.drop_partial(id);
            return Err(ChunkError::TooLarge {
                id,
                max: self.opts.max_message_bytes,
            });
        }
        while self.buffered.saturating_add(data.len()) > self.opts.max_buffered_bytes {
            if !self.evict_oldest(Some(id)) {
                self.drop_partial(id);
                return Err(ChunkError::TooLarge {
                    id,
                    max: self.opts.max_buffered_bytes,
                });
            }
        }
        self.buffered += data.len();
        let Some(p) = self.partials.get_mut(&id) else {
            return Ok(None);
        };
        p.bytes += data.len();
        p.parts.insert(n, data);
        if p.parts.len() as u64 != p.total {
            return Ok(None);
        }
        let Some(p) = self.partials.remove(&id) else {
            return Ok(None);
        };
        self.buffered -= p.bytes;
        self.stats.completed += 1;
        let mut out = Vec::with_capacity(p.bytes);
        for part in p.parts.into_values() {
            out.extend_from_slice(&part);
        }
        Ok(Some(out))
    }

    fn drop_partial(&mut self, id: u64) {
        if let Some(p) = self.partials.remove(&id) {
            self.buffered -= p.bytes;
            self.stats.dropped += 1;
        }
        self.bury(id);
    }

    /// Remembers a dropped or evicted counter so its late slices are ignored.
    fn bury(&mut self, id: u64) {
        if self.dead.len() >= DEAD_IDS {
            self.dead.pop_front();
        }
        self.dead.push_back(id);
    }

    /// Evicts the oldest partial other than `keep`; false when there is none.
    fn evict_oldest(&mut self, keep: Option<u64>) -> bool {
        let oldest = self
            .partials
            .iter()
            .filter(|(id, _)| Some(**id) != keep)
            .min_by_key(|(_, p)| p.seq)
            .map(|(id, _)| *id);
        let Some(id) = oldest else { return false };
        if let Some(p) = self.partials.remove(&id) {
            self.buffered -= p.bytes;
            self.stats.evicted += 1;
            tracing::debug!(
                id,
                parts = p.parts.len(),
                total = p.total,
                "evicted partial chunked message"
            );
        }
        self.bury(id);
        true
    }
}

/// Options of a [`Deframer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeframerOptions {
    /// Limits for every BinaryPack decode (payloads and reassembled messages).
    pub decode: DecodeOptions,
    /// Limits for chunk reassembly.
    pub reassembly: ReassemblerOptions,
}

/// The receiving half: SCTP payloads in, [`Frame`]s out. Keep one per DataConnection.
#[derive(Debug, Default)]
pub struct Deframer {
    opts: DecodeOptions,
    reassembler: Reassembler,
}

enum Kind {
    Plain,
    Close,
    Chunk,
}

fn kind_of(value: &Value) -> Kind {
    let Value::Map(m) = value else {
        return Kind::Plain;
    };
    match get(m, PEER_DATA_KEY) {
        Some(pd) if truthy(pd) => match pd {
            Value::Map(inner) if get(inner, "type").and_then(Value::as_str) == Some("close") => {
                Kind::Close
            }
            _ => Kind::Chunk,
        },
        _ => Kind::Plain,
    }
}

impl Deframer {
    /// A deframer with explicit limits.
    pub fn new(opts: DeframerOptions) -> Self {
        Deframer {
            opts: opts.decode,
            reassembler: Reassembler::new(opts.reassembly),
        }
    }

    /// Reassembly counters.
    pub fn stats(&self) -> ReassemblerStats {
        self.reassembler.stats()
    }

    /// Forgets partial messages (call when the connection closes).
    pub fn clear(&mut self) {
        self.reassembler.clear();
    }

    /// Feeds one received SCTP payload; `Ok(None)` while a chunked message is incomplete.
    pub fn push(&mut self, payload: &[u8]) -> Result<Option<Frame>, DeframeError> {
        let value = binarypack::decode_with(payload, &self.opts)?;
        match kind_of(&value) {
            Kind::Plain => Ok(Some(Frame::Message(value))),
            Kind::Close => Ok(Some(Frame::Close)),
            Kind::Chunk => {
                let chunk = Chunk::from_value(&value)?;
                let Some(packed) = self.reassembler.push(chunk)? else {
                    return Ok(None);
                };
                let whole = binarypack::decode_with(&packed, &self.opts)?;
                match kind_of(&whole) {
                    Kind::Plain => Ok(Some(Frame::Message(whole))),
                    Kind::Close => Ok(Some(Frame::Close)),
                    Kind::Chunk => Err(ChunkError::NestedChunk.into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_message(len: usize) -> Value {
        Value::map([
            ("k", Value::from("app")),
            ("data", Value::Str("z".repeat(len))),
        ])
    }

    #[test]
    fn small_messages_are_not_chunked() {
        let mut f = Framer::new();
        let v = Value::map([("t", Value::from("ping"))]);
        assert_eq!(f.encode_message(&v), vec![binarypack::encode(&v)]);
    }

    #[test]
    fn exact_mtu_is_not_chunked_one_more_is() {
        let mut f = Framer::new();
        // 0xd9-less: `{k:'app',data:'z'*n}` packs to 1+2+4+5+1+2+n = 15+n bytes (n ≥ 16).
        let at = big_message(CHUNK_MTU - 15);
        assert_eq!(binarypack::encode(&at).len(), CHUNK_MTU);
        assert_eq!(f.encode_message(&at).len(), 1);
        let over = big_message(CHUNK_MTU - 14);
        let frames = f.encode_message(&over);
        assert_eq!(frames.len(), 2);
        let Ok(Value::Map(first)) = binarypack::decode(&frames[0]) else {
            panic!("chunk")
        };
        let keys: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["__peerData", "n", "data", "total"]);
        assert_eq!(first[0].1, Value::Int(1));
        assert!(matches!(&first[2].1, Value::Bin(b) if b.len() == CHUNK_MTU));
        // The counter advances per chunked message only.
        let again = f.encode_message(&over);
        let Ok(Value::Map(m)) = binarypack::decode(&again[1]) else {
            panic!("chunk")
        };
        assert_eq!(m[0].1, Value::Int(2));
        assert_eq!(m[1].1, Value::Int(1));
    }

    #[test]
    fn round_trip_out_of_order_with_duplicates() {
        let mut f = Framer::new();
        let v = big_message(50_000);
        let mut frames = f.encode_message(&v);
        assert_eq!(frames.len(), 4);
        frames.reverse();
        let dup = frames[1].clone();
        frames.insert(2, dup);
        let mut d = Deframer::default();
        let mut out = Vec::new();
        for fr in &frames {
            if let Some(frame) = d.push(fr).ok().flatten() {
                out.push(frame);
            }
        }
        assert_eq!(out, vec![Frame::Message(v)]);
        assert_eq!(d.stats().duplicates, 1);
        assert_eq!(d.stats().completed, 1);
    }

    #[test]
    fn close_and_falsy_counters() {
        let mut d = Deframer::default();
        assert_eq!(
            d.push(&Framer::new().encode_close()),
            Ok(Some(Frame::Close))
        );
        let zero = Value::map([(PEER_DATA_KEY, Value::Int(0)), ("n", Value::Int(0))]);
        assert_eq!(
            d.push(&binarypack::encode(&zero)),
            Ok(Some(Frame::Message(zero)))
        );
    }

    #[test]
    fn inconsistent_and_malformed_chunks() {
        let mut r = Reassembler::default();
        let c = |n, total| Chunk {
            id: 5,
            n,
            total,
            data: vec![1],
        };
        assert_eq!(r.push(c(0, 3)), Ok(None));
        assert_eq!(
            r.push(c(1, 4)),
            Err(ChunkError::InconsistentTotal {
                id: 5,
                expected: 3,
                got: 4
            })
        );
        assert_eq!(r.pending(), 0);
        // Late slices of the dropped message are ignored.
        assert_eq!(r.push(c(2, 3)), Ok(None));
        assert_eq!((r.pending(), r.stats().ignored), (0, 1));
        let late = Chunk {
            id: 6,
            n: 3,
            total: 3,
            data: vec![1],
        };
        assert_eq!(
            r.push(late),
            Err(ChunkError::IndexOutOfRange {
                id: 6,
                n: 3,
                total: 3
            })
        );
        let bad = Value::map([
            (PEER_DATA_KEY, Value::from("x")),
            ("n", Value::Int(0)),
            ("data", Value::Bin(vec![1])),
            ("total", Value::Int(1)),
        ]);
        let mut d = Deframer::default();
        assert!(matches!(
            d.push(&binarypack::encode(&bad)),
            Err(DeframeError::Chunk(ChunkError::Malformed(_)))
        ));
    }

    #[test]
    fn bounded_partials_and_bytes() {
        let opts = ReassemblerOptions {
            max_partials: 2,
            max_buffered_bytes: 10,
            max_message_bytes: 8,
        };
        let mut r = Reassembler::new(opts);
        let c = |id, n, len| Chunk {
            id,
            n,
            total: 3,
            data: vec![0; len],
        };
        assert_eq!(r.push(c(1, 0, 2)), Ok(None));
        assert_eq!(r.push(c(2, 0, 2)), Ok(None));
        assert_eq!(r.push(c(3, 0, 2)), Ok(None));
        assert_eq!(r.stats().evicted, 1);
        assert_eq!(r.pending(), 2);
        // Message cap: partial 3 would reach 9 > 8 bytes.
        assert_eq!(
            r.push(c(3, 1, 7)),
            Err(ChunkError::TooLarge { id: 3, max: 8 })
        );
        assert_eq!(r.stats().dropped, 1);
        assert_eq!(r.push(c(4, 0, 6)), Ok(None));
        assert_eq!(r.push(c(4, 1, 2)), Ok(None));
        assert_eq!(r.buffered_bytes(), 10);
        // A new partial evicts the oldest (2) for the count cap, then 4 for the byte cap.
        assert_eq!(r.push(c(5, 0, 3)), Ok(None));
        assert_eq!(r.stats().evicted, 3);
        assert_eq!((r.pending(), r.buffered_bytes()), (1, 3));
        assert_eq!(r.push(c(5, 1, 3)), Ok(None));
        assert_eq!(r.push(c(5, 2, 2)), Ok(Some(vec![0; 8])));
        assert_eq!((r.pending(), r.buffered_bytes()), (0, 0));
    }

    #[test]
    fn nested_chunks_are_refused() {
        let inner = Chunk {
            id: 9,
            n: 0,
            total: 1,
            data: vec![1, 2],
        }
        .to_value();
        let packed = binarypack::encode(&inner);
        let outer = Chunk {
            id: 1,
            n: 0,
            total: 1,
            data: packed,
        };
        let mut d = Deframer::default();
        assert_eq!(
            d.push(&binarypack::encode(&outer.to_value())),
            Err(ChunkError::NestedChunk.into())
        );
    }
}
