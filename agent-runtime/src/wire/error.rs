//! The typed error shared by the message codecs (presence, content, control).

/// Why a decoded [`Value`](super::Value) is not a valid message of the expected family.
///
/// Callers count and drop such messages; none of them is fatal to a link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The message is not a map (object).
    #[error("message is not a map")]
    NotAMap,
    /// The discriminator (`t` or `k`) is missing, nil or not a string.
    #[error("missing or non-string discriminator `{0}`")]
    MissingDiscriminator(&'static str),
    /// The discriminator names a message this codec does not know.
    #[error("unknown `{key}` value {value:?}")]
    UnknownType {
        /// `t` or `k`.
        key: &'static str,
        /// The unknown value.
        value: String,
    },
    /// A required field is missing or nil.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field holds the wrong type.
    #[error("field `{field}` is not {expected}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
    /// A field exceeds its size cap.
    #[error("field `{field}` is too long ({len} > {max})")]
    TooLong {
        /// The field name.
        field: &'static str,
        /// Its length (characters or JSON length, as the cap defines).
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A field holds a value outside its allowed set.
    #[error("field `{field}` has an invalid value")]
    InvalidValue {
        /// The field name.
        field: &'static str,
    },
}
