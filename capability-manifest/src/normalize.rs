//! `normalizeRoom`, the authority peer id and DTLS fingerprint canonicalisation
//! (wire spec §2.3, agents spec §0.2 and §3.5).

use sha2::{Digest, Sha256};

/// Kibitz's broker-id prefix for a room's authority.
pub const AUTHORITY_PREFIX: &str = "kbz-v1-";

/// Maximum length of a normalised room id.
pub const MAX_ROOM_CHARS: usize = 40;

/// `normalizeRoom`: lowercase (Unicode, like JS `toLowerCase`), replace every run of characters
/// outside `[a-z0-9]` with one `-`, strip leading and trailing `-`, then truncate to 40 characters.
///
/// Truncation happens after stripping, so a cut can leave a trailing `-`
/// (`"a"×39 + "-b"` → `"a"×39 + "-"`). That quirk is Kibitz's and is kept on purpose. The result
/// is pure ASCII, so characters, bytes and UTF-16 units agree.
pub fn normalize_room(room: &str) -> String {
    let lower = room.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut in_run = false;
    for c in lower.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let stripped = out.trim_matches('-');
    stripped.chars().take(MAX_ROOM_CHARS).collect()
}

/// The PeerJS id of a room's authority: `"kbz-v1-" + normalize_room(room)`.
pub fn authority_peer_id(room: &str) -> String {
    format!("{AUTHORITY_PREFIX}{}", normalize_room(room))
}

/// `canonicalFingerprint`: JS `trim()` then `toLowerCase()`.
///
/// Kibitz compares fingerprints as plain strings after this, so the colons must stay and no
/// `sha-256 ` prefix may be added.
pub fn canonical_fingerprint(fp: &str) -> String {
    js_trim(fp).to_lowercase()
}

/// The fingerprint Kibitz compares: SHA-256 of a certificate's DER as lowercase colon-separated
/// hex (95 characters).
pub fn fingerprint_of_der(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// JS `String.prototype.trim`: strips ECMAScript WhiteSpace and LineTerminator characters, which
/// is Unicode `White_Space` minus U+0085 plus U+FEFF.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(|c: char| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spec_vectors() {
        assert_eq!(authority_peer_id("standup"), "kbz-v1-standup");
        assert_eq!(authority_peer_id("My Room"), "kbz-v1-my-room");
        assert_eq!(authority_peer_id("  Hello, World!  "), "kbz-v1-hello-world");
        assert_eq!(
            authority_peer_id("room-3f9k2mq7p1"),
            "kbz-v1-room-3f9k2mq7p1"
        );
        assert_eq!(normalize_room("A-B-C"), "a-b-c");
        assert_eq!(normalize_room("café ☕ chat"), "caf-chat");
        assert_eq!(normalize_room(&"x".repeat(50)), "x".repeat(40));
        assert_eq!(normalize_room(""), "");
        assert_eq!(authority_peer_id(""), "kbz-v1-");
    }

    #[test]
    fn agents_spec_vectors() {
        assert_eq!(normalize_room("Standup"), "standup");
        assert_eq!(normalize_room("My Room!!"), "my-room");
        assert_eq!(normalize_room("  --Team__Sync 2026-- "), "team-sync-2026");
        assert_eq!(normalize_room("kbz-v1-standup"), "kbz-v1-standup");
    }

    #[test]
    fn truncate_after_strip_quirk() {
        let input = format!("{}-b", "a".repeat(39));
        assert_eq!(normalize_room(&input), format!("{}-", "a".repeat(39)));
        // Leading junk is stripped before the cut, so it does not eat into the 40.
        let input = format!("!!!{}", "b".repeat(45));
        assert_eq!(normalize_room(&input), "b".repeat(40));
    }

    #[test]
    fn non_ascii() {
        assert_eq!(normalize_room("ÜBER Straße"), "ber-stra-e");
        assert_eq!(normalize_room("日本語"), "");
        // U+212A KELVIN SIGN lowercases to ASCII 'k' in both JS and Rust.
        assert_eq!(normalize_room("\u{212A}ey"), "key");
        assert_eq!(normalize_room("Ωmega 9"), "mega-9");
    }

    #[test]
    fn fingerprints() {
        assert_eq!(canonical_fingerprint("  AB:CD:EF \n"), "ab:cd:ef");
        assert_eq!(canonical_fingerprint("\u{feff}AB"), "ab");
        assert_eq!(canonical_fingerprint("\u{85}AB"), "\u{85}ab");
        assert_eq!(
            fingerprint_of_der(b"abc"),
            "ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:00:15:ad"
        );
    }
}
