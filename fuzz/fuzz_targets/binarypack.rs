//! Fuzzes the BinaryPack decoder: arbitrary bytes must decode or fail with a typed error, and
//! whatever decodes must re-encode into bytes that decode again.
#![no_main]

use agent_runtime::wire::binarypack::{decode, decode_with, encode, DecodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = decode(data) {
        let again = encode(&value);
        assert!(decode(&again).is_ok(), "re-encoded value must decode");
    }
    let strict = DecodeOptions {
        reject_trailing: true,
        max_depth: 8,
        max_values: 256,
        ..DecodeOptions::default()
    };
    let _ = decode_with(data, &strict);
});
