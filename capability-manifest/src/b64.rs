//! base64url helpers shared by every token format (internal).
//!
//! Encoding is RFC 4648 §5 without padding. Decoding is as lenient as the browser's `atob`-based
//! decoder Kibitz uses: a missing pad is tolerated, existing padding is accepted, the standard
//! alphabet's `+`/`/` are read as `-`/`_`, ASCII whitespace is ignored and non-zero trailing bits
//! are accepted.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Encode bytes as unpadded base64url.
pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url leniently (see the module docs). `None` on any malformed input.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c'))
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    LENIENT.decode(cleaned.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_leniency() {
        assert_eq!(encode(b"\xfb\xff"), "-_8");
        assert_eq!(decode("-_8").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(decode("-_8=").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(decode("+/8").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(decode("YW Jj\n").as_deref(), Some(&b"abc"[..]));
        assert!(decode("Y").is_none());
        assert!(decode("YW*j").is_none());
    }
}
