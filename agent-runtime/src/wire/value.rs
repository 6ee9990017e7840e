//! The dynamic value model of a BinaryPack message (what a JS object looks like on the wire).

/// One decoded BinaryPack value.
///
/// Maps keep JS insertion order, which BinaryPack preserves on the wire and which the byte-exact
/// test vectors depend on. JS `undefined` and `null` both encode as nil; the decoder maps the
/// rare `0xc1`/`0xd4..0xd7` tags to [`Value::Nil`] as well, since nil means "absent" everywhere in
/// Kibitz.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` / `undefined`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An integral number (JS numbers that are integers are always packed as integers).
    Int(i64),
    /// An unsigned integer above `i64::MAX` (only from `0xcf`).
    UInt(u64),
    /// A non-integral number (always packed as a float64).
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes (an ArrayBuffer / Uint8Array).
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in insertion order.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// Looks a key up in a map; `None` for a missing key, a nil value, or a non-map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, Value::Nil)),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean inside, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as f64, for any numeric variant.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The number as i64 when it is integral and in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::UInt(u) => i64::try_from(*u).ok(),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            _ => None,
        }
    }

    /// True for nil.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Builds a map from `(key, value)` pairs, keeping their order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Nil, Into::into)
    }
}
