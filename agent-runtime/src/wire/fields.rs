//! Null-tolerant field access for the message codecs: nil and a missing key both mean "absent";
//! any other wrong type is a [`MessageError::WrongType`].

use super::{MessageError, Value};

/// The entries of a map, or [`MessageError::NotAMap`].
pub(crate) fn entries(v: &Value) -> Result<&[(String, Value)], MessageError> {
    match v {
        Value::Map(e) => Ok(e),
        _ => Err(MessageError::NotAMap),
    }
}

/// A key's value; `None` when missing or nil.
pub(crate) fn get<'a>(m: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| !v.is_nil())
}

/// The string discriminator `key` (`t` or `k`).
pub(crate) fn discriminator<'a>(
    m: &'a [(String, Value)],
    key: &'static str,
) -> Result<&'a str, MessageError> {
    get(m, key)
        .and_then(Value::as_str)
        .ok_or(MessageError::MissingDiscriminator(key))
}

pub(crate) fn opt_str<'a>(
    m: &'a [(String, Value)],
    key: &'static str,
) -> Result<Option<&'a str>, MessageError> {
    match get(m, key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(wrong(key, "a string")),
    }
}

pub(crate) fn opt_string(
    m: &[(String, Value)],
    key: &'static str,
) -> Result<Option<String>, MessageError> {
    opt_str(m, key).map(|s| s.map(str::to_owned))
}

pub(crate) fn req_str<'a>(
    m: &'a [(String, Value)],
    key: &'static str,
) -> Result<&'a str, MessageError> {
    opt_str(m, key)?.ok_or(MessageError::MissingField(key))
}

/// A boolean; absent → `false`.
pub(crate) fn bool_or_false(
    m: &[(String, Value)],
    key: &'static str,
) -> Result<bool, MessageError> {
    match get(m, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong(key, "a boolean")),
    }
}

/// A number; absent → `None`.
pub(crate) fn opt_f64(
    m: &[(String, Value)],
    key: &'static str,
) -> Result<Option<f64>, MessageError> {
    match get(m, key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(wrong(key, "a number")),
    }
}

pub(crate) fn wrong(field: &'static str, expected: &'static str) -> MessageError {
    MessageError::WrongType { field, expected }
}

/// JS `string.length`: UTF-16 code units.
pub(crate) fn js_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `Value::Str` or nil for an optional string.
pub(crate) fn str_or_nil(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Nil, Value::from)
}
