//! A bundle archive from anywhere: unpacked (no links, no escaping paths)
//! and verified offline, as `custos verify` does: as a disclosure when its
//! manifest says so, else as an export.
#![no_main]
#![forbid(unsafe_code)]

use custos::bundle::{disclosure, unpack_archive, verify_dir, Policy};
use custos::custody::checkpoint::LogSigner;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("bundle.tar");
    std::fs::write(&archive, data).unwrap();
    let into = dir.path().join("unpacked");
    std::fs::create_dir(&into).unwrap();
    let Ok(bundle) = unpack_archive(&archive, &into) else {
        return;
    };
    // Nothing may land outside the folder it was unpacked into.
    assert!(bundle.starts_with(&into));
    let log = LogSigner::new("fuzz.example/log", SigningKey::from_bytes(&[7; 32]))
        .unwrap()
        .verifier();
    let policy = Policy {
        witnesses: vec![],
        quorum: 0,
    };
    if disclosure::is_disclosure(&bundle) {
        let _ = disclosure::verify_dir(&bundle, &log, &policy, None);
    } else {
        let _ = verify_dir(&bundle, &log, &policy);
    }
});
