//! PeerJS BinaryPack 2.1 (`peerjs-js-binarypack`), byte for byte.
//!
//! This is **not** MessagePack: strings use `0xb0..0xbf` / `0xd8` / `0xd9`, binary uses
//! `0xa0..0xaf` / `0xda` / `0xdb`, and JS `undefined` packs as nil (kibitz-wire.md §3).
//!
//! # Encoding
//!
//! [`encode`] follows the JS packer: an integral number always packs as the smallest integer form
//! of the table (checked in the JS order, so `i64` is tried before `u64`), any other number packs
//! as a big-endian float64 (`0xcb`). [`Value::Float`] holding an integral value therefore packs
//! as an integer, exactly as the same JS number would.
//!
//! Non-integral finite numbers are packed with the JS packer's own arithmetic (`pack_double`:
//! exponent from `floor(log(x) / LN2)`, mantissa by division), not with `f64::to_bits`. The two
//! agree for almost every number; they differ for some values at or just below a power of two
//! and for subnormals, where the JS packer writes a slightly different (wrong) number. We write
//! the same bytes a browser would for the same number, so a peer sees the same value either way.
//!
//! Deliberate deviations, all for inputs where the JS packer throws or emits garbage:
//! - NaN and ±infinity pack as their IEEE-754 float64 bits (JS throws on infinity and writes
//!   zero bits for NaN);
//! - integral floats at or beyond ±2^63 pack as `0xcf` (when they fit a `u64`) or as float64,
//!   never as the JS packer's wrapped `0xd3`;
//! - a string, binary, array or map longer than `u32::MAX` (JS throws) packs as nil.
//!
//! # Decoding
//!
//! [`decode`] mirrors the JS unpacker, hardened:
//! - **Trailing bytes** after the first value are ignored, as the JS `unpack` does (it never
//!   checks the final index). [`DecodeOptions::reject_trailing`] makes them an error instead.
//! - **Truncated input** is an error ([`DecodeError::Truncated`]). The JS unpacker reads a missing
//!   type byte as `0`; a browser never produces such input, so we refuse it.
//! - **Declared lengths** are checked against the remaining input *before* anything is
//!   allocated; nesting depth, total value count and message size are capped by
//!   [`DecodeOptions`].
//! - **Tags** `0xc1`, `0xc4..0xc9` and `0xd4..0xd7` decode to [`Value::Nil`] and consume only the
//!   tag byte, as in JS (where they yield `undefined`).
//! - **Floats**: `0xca` (float32) and `0xcb` (float64) decode with IEEE-754 semantics. This equals
//!   the JS arithmetic for every normal number; for zero, subnormal, infinite and NaN bit patterns
//!   (never produced by a JS packer for a finite non-integer) the JS decoder returns slightly
//!   different finite numbers.
//! - **Integers** decode exactly (`0xcf` above `i64::MAX` becomes [`Value::UInt`]); JS rounds
//!   64-bit values beyond 2^53 to the nearest double.
//! - **Strings**: valid UTF-8 decodes as UTF-8 (identical to the JS decoder). Invalid UTF-8 is
//!   decoded with the JS decoder's own lenient algorithm (bytes `0x80..0x9f` become U+0080..U+009F,
//!   missing continuation bytes read as zero, overlong forms accepted, CESU-8 surrogate pairs
//!   combine); lone surrogates, which a Rust `String` cannot hold, become U+FFFD. A sequence
//!   decoding above U+10FFFF is an error ([`DecodeError::InvalidCodePoint`]), where JS throws.
//! - **Map keys** become JS property keys: strings stay as they are; integers, booleans and nil
//!   become their JS string forms (`"1"`, `"true"`, `"null"` / `"undefined"`); floats their JS
//!   number string. Binary, array and map keys are refused ([`DecodeError::NonStringKey`]).
//! - **Duplicate keys** behave like JS assignment: the value of the last occurrence is kept at the
//!   position of the first. (JS would also enumerate integer-like keys first, and would turn a
//!   `__proto__` key into a prototype; neither is reproduced — maps keep wire order and
//!   `__proto__` is an ordinary key.)

use std::collections::HashMap;

use super::json::js_number_string;
use super::Value;

/// Default cap on one packed message, in bytes (8 MiB, the browser's send high-water mark).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Default cap on container nesting.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default cap on the number of values (scalars and containers) in one message.
pub const DEFAULT_MAX_VALUES: usize = 1 << 20;

/// Limits and policies for [`decode_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Deepest allowed nesting of arrays and maps (the top-level container is depth 1).
    pub max_depth: usize,
    /// Largest accepted input, in bytes.
    pub max_message_bytes: usize,
    /// Most values (every scalar, string, array and map counts one) in one message.
    pub max_values: usize,
    /// Refuse bytes after the first value instead of ignoring them like the JS unpacker.
    pub reject_trailing: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_depth: DEFAULT_MAX_DEPTH,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_values: DEFAULT_MAX_VALUES,
            reject_trailing: false,
        }
    }
}

/// Why bytes are not a BinaryPack value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than [`DecodeOptions::max_message_bytes`].
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends inside a value.
    #[error("input ends early at byte {offset}")]
    Truncated {
        /// Where more bytes were needed.
        offset: usize,
    },
    /// A length prefix promises more than the input holds.
    #[error("length {declared} declared at byte {offset} exceeds the {remaining} bytes left")]
    LengthExceedsInput {
        /// Offset of the tag.
        offset: usize,
        /// Declared element or byte count.
        declared: u64,
        /// Bytes left after the prefix.
        remaining: usize,
    },
    /// Arrays and maps nest deeper than [`DecodeOptions::max_depth`].
    #[error("nesting deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More values than [`DecodeOptions::max_values`].
    #[error("more than {max} values")]
    TooManyValues {
        /// The limit.
        max: usize,
    },
    /// A string decodes to a code point above U+10FFFF (the JS decoder throws).
    #[error("string at byte {offset} holds a code point above U+10FFFF")]
    InvalidCodePoint {
        /// Offset of the string's first byte.
        offset: usize,
    },
    /// A map key is binary, an array or a map.
    #[error("map key at byte {offset} is {kind}, not a string")]
    NonStringKey {
        /// Offset of the key's tag.
        offset: usize,
        /// What the key was.
        kind: &'static str,
    },
    /// Bytes follow the value and [`DecodeOptions::reject_trailing`] is set.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// Packs a value into a fresh buffer.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Packs a value, appending to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(true) => out.push(0xc3),
        Value::Bool(false) => out.push(0xc2),
        Value::Int(i) => encode_int(*i, out),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => encode_int(i, out),
            Err(_) => {
                out.push(0xcf);
                out.extend_from_slice(&u.to_be_bytes());
            }
        },
        Value::Float(f) => encode_float(*f, out),
        Value::Str(s) => encode_sized(out, s.as_bytes(), 0xb0, 0xd8, 0xd9),
        Value::Bin(b) => encode_sized(out, b, 0xa0, 0xda, 0xdb),
        Value::Array(items) => {
            if !encode_header(out, items.len(), 0x90, 0xdc, 0xdd) {
                return;
            }
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(entries) => {
            if !encode_header(out, entries.len(), 0x80, 0xde, 0xdf) {
                return;
            }
            for (k, v) in entries {
                encode_sized(out, k.as_bytes(), 0xb0, 0xd8, 0xd9);
                encode_into(v, out);
            }
        }
    }
}

/// The JS `pack_integer` ladder.
fn encode_int(i: i64, out: &mut Vec<u8>) {
    if (-0x20..=0x7f).contains(&i) {
        out.push(i as u8);
    } else if (0..=0xff).contains(&i) {
        out.push(0xcc);
        out.push(i as u8);
    } else if (-0x80..=0x7f).contains(&i) {
        out.push(0xd0);
        out.push(i as u8);
    } else if (0..=0xffff).contains(&i) {
        out.push(0xcd);
        out.extend_from_slice(&(i as u16).to_be_bytes());
    } else if (-0x8000..=0x7fff).contains(&i) {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if (0..=0xffff_ffff).contains(&i) {
        out.push(0xce);
        out.extend_from_slice(&(i as u32).to_be_bytes());
    } else if (-0x8000_0000..=0x7fff_ffff).contains(&i) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// 2^63 as an f64 (exact).
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
/// 2^64 as an f64 (exact).
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn encode_float(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() && f.fract() == 0.0 {
        // JS: Math.floor(v) === v → pack_integer. -0 packs as 0.
        if (-TWO_POW_63..TWO_POW_63).contains(&f) {
            return encode_int(f as i64, out);
        }
        if (TWO_POW_63..TWO_POW_64).contains(&f) {
            out.push(0xcf);
            out.extend_from_slice(&(f as u64).to_be_bytes());
            return;
        }
    }
    out.push(0xcb);
    if f.is_finite() {
        let (h32, l32) = js_pack_double(f);
        out.extend_from_slice(&h32.to_be_bytes());
        out.extend_from_slice(&l32.to_be_bytes());
    } else {
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    }
}

/// The two 32-bit words the JS `pack_double` writes for a finite non-integral number.
fn js_pack_double(num: f64) -> (u32, u32) {
    let (sign, num) = if num < 0.0 { (1i32, -num) } else { (0, num) };
    let exp = (num.ln() / std::f64::consts::LN_2).floor();
    let frac0 = num / pow2(exp) - 1.0;
    let frac1 = (frac0 * pow2(52.0)).floor();
    let b32 = pow2(32.0);
    let h32 = (sign << 31) | (to_int32(exp + 1023.0) << 20) | (to_int32(frac1 / b32) & 0x0f_ffff);
    let l32 = frac1 % b32;
    (h32 as u32, to_int32(l32) as u32)
}

/// JS `2 ** e` for an integral `e` (exact).
fn pow2(e: f64) -> f64 {
    if e > 1023.0 {
        f64::INFINITY
    } else if e >= -1022.0 {
        f64::from_bits(((e as i64 + 1023) as u64) << 52)
    } else if e >= -1074.0 {
        f64::from_bits(1u64 << (e as i64 + 1074))
    } else {
        0.0
    }
}

/// JS `ToInt32`.
fn to_int32(x: f64) -> i32 {
    if !x.is_finite() {
        return 0;
    }
    let m = x.trunc().rem_euclid(4_294_967_296.0);
    (m as u64 as u32) as i32
}

fn encode_sized(out: &mut Vec<u8>, bytes: &[u8], fix: u8, tag16: u8, tag32: u8) {
    if encode_header(out, bytes.len(), fix, tag16, tag32) {
        out.extend_from_slice(bytes);
    }
}

/// Writes a container header; `false` (after writing nil) when the length cannot be encoded.
fn encode_header(out: &mut Vec<u8>, len: usize, fix: u8, tag16: u8, tag32: u8) -> bool {
    if len <= 0x0f {
        out.push(fix + len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(tag16);
        out.extend_from_slice(&l.to_be_bytes());
    } else if let Ok(l) = u32::try_from(len) {
        out.push(tag32);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0xc0);
        return false;
    }
    true
}

/// Unpacks one value with [`DecodeOptions::default`].
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    decode_with(bytes, &DecodeOptions::default())
}

/// Unpacks one value with explicit limits.
pub fn decode_with(bytes: &[u8], opts: &DecodeOptions) -> Result<Value, DecodeError> {
    if bytes.len() > opts.max_message_bytes {
        return Err(DecodeError::MessageTooLarge {
            len: bytes.len(),
            max: opts.max_message_bytes,
        });
    }
    let mut d = Decoder {
        buf: bytes,
        pos: 0,
        depth: 0,
        values: 0,
        opts,
    };
    let v = d.value()?;
    if opts.reject_trailing && d.pos < bytes.len() {
        return Err(DecodeError::TrailingBytes {
            count: bytes.len() - d.pos,
        });
    }
    Ok(v)
}

struct Decoder<'a, 'o> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    values: usize,
    opts: &'o DecodeOptions,
}

/// A decoded item as it stands in key position, before conversion to a JS property key.
enum Nil {
    Null,
    Undefined,
}

impl<'a> Decoder<'a, '_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError::Truncated { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or(DecodeError::Truncated {
                offset: self.buf.len(),
            })?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos += N;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array::<2>().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array::<4>().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array::<8>().map(u64::from_be_bytes)
    }

    /// Takes `len` raw bytes declared by the tag at `tag_at`.
    fn take(&mut self, tag_at: usize, len: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        let n = usize::try_from(len)
            .ok()
            .filter(|n| *n <= remaining)
            .ok_or(DecodeError::LengthExceedsInput {
                offset: tag_at,
                declared: len,
                remaining,
            })?;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn count_value(&mut self, n: usize) -> Result<(), DecodeError> {
        self.values = self.values.saturating_add(n);
        if self.values > self.opts.max_values {
            return Err(DecodeError::TooManyValues {
                max: self.opts.max_values,
            });
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        self.item().map(|(v, _)| v)
    }

    /// Decodes one item; the second field tells `null` from `undefined` for nil.
    fn item(&mut self) -> Result<(Value, Nil), DecodeError> {
        self.count_value(1)?;
        let at = self.pos;
        let tag = self.u8()?;
        let v = match tag {
            0x00..=0x7f => Value::Int(i64::from(tag)),
            0xe0..=0xff => Value::Int(i64::from(tag as i8)),
            0xa0..=0xaf => Value::Bin(self.take(at, u64::from(tag & 0x0f))?.to_vec()),
            0xb0..=0xbf => self.string(at, u64::from(tag & 0x0f))?,
            0x90..=0x9f => self.seq(at, u64::from(tag & 0x0f))?,
            0x80..=0x8f => self.map(at, u64::from(tag & 0x0f))?,
            0xc0 => return Ok((Value::Nil, Nil::Null)),
            0xc1 | 0xc4..=0xc9 | 0xd4..=0xd7 => return Ok((Value::Nil, Nil::Undefined)),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xca => Value::Float(f64::from(f32::from_bits(self.u32()?))),
            0xcb => Value::Float(f64::from_bits(self.u64()?)),
            0xcc => Value::Int(i64::from(self.u8()?)),
            0xcd => Value::Int(i64::from(self.u16()?)),
            0xce => Value::Int(i64::from(self.u32()?)),
            0xcf => {
                let u = self.u64()?;
                i64::try_from(u).map_or(Value::UInt(u), Value::Int)
            }
            0xd0 => Value::Int(i64::from(self.u8()? as i8)),
            0xd1 => Value::Int(i64::from(self.u16()? as i16)),
            0xd2 => Value::Int(i64::from(self.u32()? as i32)),
            0xd3 => Value::Int(self.u64()? as i64),
            0xd8 => {
                let n = self.u16()?;
                self.string(at, u64::from(n))?
            }
            0xd9 => {
                let n = self.u32()?;
                self.string(at, u64::from(n))?
            }
            0xda => {
                let n = self.u16()?;
                Value::Bin(self.take(at, u64::from(n))?.to_vec())
            }
            0xdb => {
                let n = self.u32()?;
                Value::Bin(self.take(at, u64::from(n))?.to_vec())
            }
            0xdc => {
                let n = self.u16()?;
                self.seq(at, u64::from(n))?
            }
            0xdd => {
                let n = self.u32()?;
                self.seq(at, u64::from(n))?
            }
            0xde => {
                let n = self.u16()?;
                self.map(at, u64::from(n))?
            }
            0xdf => {
                let n = self.u32()?;
                self.map(at, u64::from(n))?
            }
        };
        Ok((v, Nil::Null))
    }

    fn string(&mut self, tag_at: usize, len: u64) -> Result<Value, DecodeError> {
        let start = self.pos;
        let bytes = self.take(tag_at, len)?;
        js_utf8(bytes)
            .map(Value::Str)
            .ok_or(DecodeError::InvalidCodePoint { offset: start })
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.opts.max_depth {
            return Err(DecodeError::TooDeep {
                max: self.opts.max_depth,
            });
        }
        Ok(())
    }

    /// Checks a declared element count: every element needs at least `min_bytes` bytes.
    fn check_count(&self, tag_at: usize, n: u64, min_bytes: u64) -> Result<usize, DecodeError> {
        let remaining = self.remaining();
        n.checked_mul(min_bytes)
            .filter(|need| *need <= remaining as u64)
            .and_then(|_| usize::try_from(n).ok())
            .ok_or(DecodeError::LengthExceedsInput {
                offset: tag_at,
                declared: n,
                remaining,
            })
    }

    fn seq(&mut self, tag_at: usize, n: u64) -> Result<Value, DecodeError> {
        let n = self.check_count(tag_at, n, 1)?;
        self.enter()?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value()?);
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn map(&mut self, tag_at: usize, n: u64) -> Result<Value, DecodeError> {
        let n = self.check_count(tag_at, n, 2)?;
        self.enter()?;
        let mut entries: Vec<(String, Value)> = Vec::with_capacity(n);
        // Index only for larger maps: duplicate detection stays linear for the common small case.
        let mut index: Option<HashMap<String, usize>> = (n > 16).then(HashMap::new);
        for _ in 0..n {
            let key_at = self.pos;
            let key = match self.item()? {
                (Value::Str(s), _) => s,
                (Value::Int(i), _) => i.to_string(),
                (Value::UInt(u), _) => u.to_string(),
                (Value::Bool(b), _) => b.to_string(),
                (Value::Float(f), _) => js_number_string(f),
                (Value::Nil, Nil::Null) => "null".to_owned(),
                (Value::Nil, Nil::Undefined) => "undefined".to_owned(),
                (Value::Bin(_), _) => return Err(non_string_key(key_at, "binary")),
                (Value::Array(_), _) => return Err(non_string_key(key_at, "an array")),
                (Value::Map(_), _) => return Err(non_string_key(key_at, "a map")),
            };
            let value = self.value()?;
            let existing = match &index {
                Some(ix) => ix.get(&key).copied(),
                None => entries.iter().position(|(k, _)| *k == key),
            };
            match existing {
                Some(i) => entries[i].1 = value,
                None => {
                    if let Some(ix) = index.as_mut() {
                        ix.insert(key.clone(), entries.len());
                    }
                    entries.push((key, value));
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Map(entries))
    }
}

fn non_string_key(offset: usize, kind: &'static str) -> DecodeError {
    DecodeError::NonStringKey { offset, kind }
}

/// Decodes string bytes the way the JS unpacker does; `None` where JS would throw.
fn js_utf8(bytes: &[u8]) -> Option<String> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some(s.to_owned());
    }
    let at = |i: usize| u32::from(bytes.get(i).copied().unwrap_or(0));
    let mut units: Vec<u16> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = u32::from(bytes[i]);
        let (code, width) = if c < 0xa0 {
            (c, 1)
        } else if (c ^ 0xc0) < 0x20 {
            (((c & 0x1f) << 6) | (at(i + 1) & 0x3f), 2)
        } else if (c ^ 0xe0) < 0x10 {
            (
                ((c & 0x0f) << 12) | ((at(i + 1) & 0x3f) << 6) | (at(i + 2) & 0x3f),
                3,
            )
        } else {
            (
                ((c & 0x07) << 18)
                    | ((at(i + 1) & 0x3f) << 12)
                    | ((at(i + 2) & 0x3f) << 6)
                    | (at(i + 3) & 0x3f),
                4,
            )
        };
        if code > 0x10_ffff {
            return None;
        }
        if code >= 0x1_0000 {
            let c = code - 0x1_0000;
            units.push(0xd800 | (c >> 10) as u16);
            units.push(0xdc00 | (c & 0x3ff) as u16);
        } else {
            units.push(code as u16);
        }
        i += width;
    }
    Some(String::from_utf16_lossy(&units))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(v: &Value) -> String {
        hex::encode(encode(v))
    }

    #[test]
    fn integer_ladder_matches_js() {
        let cases: &[(i64, &str)] = &[
            (0, "00"),
            (127, "7f"),
            (-1, "ff"),
            (-32, "e0"),
            (-33, "d0df"),
            (128, "cc80"),
            (255, "ccff"),
            (-128, "d080"),
            (256, "cd0100"),
            (65535, "cdffff"),
            (-129, "d1ff7f"),
            (-32768, "d18000"),
            (65536, "ce00010000"),
            (4_294_967_295, "ceffffffff"),
            (-32769, "d2ffff7fff"),
            (-2_147_483_648, "d280000000"),
            (4_294_967_296, "d30000000100000000"),
            (-2_147_483_649, "d3ffffffff7fffffff"),
            (i64::MAX, "d37fffffffffffffff"),
        ];
        for (i, want) in cases {
            assert_eq!(hex(&Value::Int(*i)), *want, "{i}");
            assert_eq!(decode(&encode(&Value::Int(*i))), Ok(Value::Int(*i)));
        }
        assert_eq!(hex(&Value::UInt(u64::MAX)), "cfffffffffffffffff");
        assert_eq!(
            decode(&hex::decode("cfffffffffffffffff").unwrap_or_default()),
            Ok(Value::UInt(u64::MAX))
        );
        assert_eq!(decode(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 5]), Ok(Value::Int(5)));
    }

    #[test]
    fn integral_floats_pack_as_integers() {
        assert_eq!(hex(&Value::Float(12.0)), "0c");
        assert_eq!(hex(&Value::Float(-0.0)), "00");
        assert_eq!(
            hex(&Value::Float(1_700_000_000_000.0)),
            "d30000018bcfe56800"
        );
        assert_eq!(hex(&Value::Float(0.5)), "cb3fe0000000000000");
        assert_eq!(hex(&Value::Float(TWO_POW_63)), "cf8000000000000000");
        assert_eq!(hex(&Value::Float(f64::INFINITY)), "cb7ff0000000000000");
    }

    #[test]
    fn float32_decodes() {
        assert_eq!(decode(&[0xca, 0x3f, 0xc0, 0, 0]), Ok(Value::Float(1.5)));
    }

    #[test]
    fn odd_tags_decode_to_nil_and_consume_one_byte() {
        for tag in [0xc1u8, 0xc4, 0xc9, 0xd4, 0xd7] {
            assert_eq!(
                decode(&[0x92, tag, 0x01]),
                Ok(Value::Array(vec![Value::Nil, Value::Int(1)]))
            );
        }
    }

    #[test]
    fn truncation_and_lengths_are_typed_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::Truncated { offset: 0 }));
        assert_eq!(
            decode(&[0x92, 0x01]),
            Err(DecodeError::LengthExceedsInput {
                offset: 0,
                declared: 2,
                remaining: 1
            })
        );
        assert_eq!(
            decode(&[0xd9, 0xff, 0xff, 0xff, 0xff, 0x41]),
            Err(DecodeError::LengthExceedsInput {
                offset: 0,
                declared: 0xffff_ffff,
                remaining: 1
            })
        );
        assert_eq!(
            decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::LengthExceedsInput {
                offset: 0,
                declared: 0xffff_ffff,
                remaining: 0
            })
        );
        assert_eq!(
            decode(&[0xcd, 0x01]),
            Err(DecodeError::Truncated { offset: 2 })
        );
        assert_eq!(
            decode(&[0x81, 0xb1, 0x74]),
            Err(DecodeError::Truncated { offset: 3 })
        );
    }

    #[test]
    fn depth_and_size_caps() {
        let deep = vec![0x91u8; 65];
        let mut deep_ok = vec![0x91u8; 63];
        deep_ok.push(0xc0);
        assert!(decode(&deep_ok).is_ok());
        let mut deep_bad = deep.clone();
        deep_bad.push(0xc0);
        assert_eq!(decode(&deep_bad), Err(DecodeError::TooDeep { max: 64 }));
        let opts = DecodeOptions {
            max_message_bytes: 4,
            ..DecodeOptions::default()
        };
        assert_eq!(
            decode_with(&[0xb4, 1, 2, 3, 4], &opts),
            Err(DecodeError::MessageTooLarge { len: 5, max: 4 })
        );
        let opts = DecodeOptions {
            max_values: 3,
            ..DecodeOptions::default()
        };
        assert_eq!(
            decode_with(&[0x93, 1, 2, 3], &opts),
            Err(DecodeError::TooManyValues { max: 3 })
        );
    }

    #[test]
    fn trailing_bytes_policy() {
        assert_eq!(decode(&[0x01, 0x02]), Ok(Value::Int(1)));
        let strict = DecodeOptions {
            reject_trailing: true,
            ..DecodeOptions::default()
        };
        assert_eq!(
            decode_with(&[0x01, 0x02], &strict),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn keys_follow_js_property_keys() {
        // {1: 'a', true: 'b', nil: 'c', 0.5: 'd', undefined(0xc1): 'e'}
        let bytes = [
            0x85, 0x01, 0xb1, b'a', 0xc3, 0xb1, b'b', 0xc0, 0xb1, b'c', 0xcb, 0x3f, 0xe0, 0, 0, 0,
            0, 0, 0, 0xb1, b'd', 0xc1, 0xb1, b'e',
        ];
        let v = decode(&bytes);
        assert_eq!(
            v,
            Ok(Value::map([
                ("1", Value::from("a")),
                ("true", Value::from("b")),
                ("null", Value::from("c")),
                ("0.5", Value::from("d")),
                ("undefined", Value::from("e")),
            ]))
        );
        assert_eq!(
            decode(&[0x81, 0x90, 0x01]),
            Err(DecodeError::NonStringKey {
                offset: 1,
                kind: "an array"
            })
        );
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        let bytes = [0x83, 0xb1, b'a', 0x01, 0xb1, b'b', 0x02, 0xb1, b'a', 0x03];
        assert_eq!(
            decode(&bytes),
            Ok(Value::map([("a", Value::Int(3)), ("b", Value::Int(2))]))
        );
        // Same through the hashed path (> 16 entries).
        let mut big = vec![0xde, 0x00, 0x12];
        for i in 0..17u8 {
            big.extend_from_slice(&[0xb1, b'a' + i, i]);
        }
        big.extend_from_slice(&[0xb1, b'a', 0x7f]);
        let Ok(Value::Map(m)) = decode(&big) else {
            panic!("not a map")
        };
        assert_eq!(m.len(), 17);
        assert_eq!(m[0], ("a".to_owned(), Value::Int(127)));
    }

    #[test]
    fn invalid_utf8_follows_the_js_decoder() {
        // 0x80..0x9f are single code units.
        assert_eq!(decode(&[0xb1, 0x85]), Ok(Value::from("\u{85}")));
        // CESU-8 surrogate pair for U+1F600 combines.
        assert_eq!(
            decode(&[0xb6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]),
            Ok(Value::from("😀"))
        );
        // A lone surrogate becomes U+FFFD.
        assert_eq!(
            decode(&[0xb3, 0xed, 0xa0, 0xbd]),
            Ok(Value::from("\u{fffd}"))
        );
        // Truncated 2-byte sequence: the missing byte reads as 0 → U+00C0... 0xc3 → (3<<6)=0xc0.
        assert_eq!(decode(&[0xb1, 0xc3]), Ok(Value::from("\u{c0}")));
        // A 4-byte form above U+10FFFF throws in JS.
        assert_eq!(
            decode(&[0xb4, 0xf7, 0xbf, 0xbf, 0xbf]),
            Err(DecodeError::InvalidCodePoint { offset: 1 })
        );
    }

    #[test]
    fn long_forms_use_binarypack_tags() {
        let s = "x".repeat(70_000);
        let e = encode(&Value::Str(s.clone()));
        assert_eq!(&e[..5], &[0xd9, 0x00, 0x01, 0x11, 0x70]);
        assert_eq!(decode(&e), Ok(Value::Str(s)));
        let b = vec![7u8; 300];
        let e = encode(&Value::Bin(b.clone()));
        assert_eq!(&e[..3], &[0xda, 0x01, 0x2c]);
        assert_eq!(decode(&e), Ok(Value::Bin(b)));
        let arr = Value::Array(vec![Value::Nil; 20]);
        assert_eq!(&encode(&arr)[..3], &[0xdc, 0x00, 0x14]);
        let map = Value::Map((0..20).map(|i| (format!("k{i}"), Value::Int(i))).collect());
        let e = encode(&map);
        assert_eq!(&e[..3], &[0xde, 0x00, 0x14]);
        assert_eq!(decode(&e), Ok(map));
    }
}
