//! Signed agent manifests (JWS) and manifest JSON from arbitrary bytes: must never panic.

#![no_main]

use capability_manifest::{
    verify_signed_manifest, AgentManifest, ValidateOptions, VerifyManifestOptions,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = verify_signed_manifest(&text, &VerifyManifestOptions::at(1_700_000_000));
    if let Ok(m) = AgentManifest::from_json(&text) {
        let _ = m.validate(ValidateOptions::default());
        let _ = m.backend_summary();
        let _ = m.allowed_origins();
    }
});
