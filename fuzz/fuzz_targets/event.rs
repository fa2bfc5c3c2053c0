//! Custody events as an auditor downloads them, one after another, and
//! receipts as a submitter or lawyer receives them.
#![no_main]
#![forbid(unsafe_code)]

use custos::audit::{verify_receipt, LogAuditor};
use custos::custody::checkpoint::LogSigner;
use custos::custody::Receipt;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Entries separated by newlines, fed in order as an audit does.
    let mut auditor = LogAuditor::new();
    for entry in data.split(|&b| b == b'\n') {
        if auditor.push(entry).is_err() {
            break;
        }
    }
    let _ = auditor.summary();
    let log = LogSigner::new("fuzz.example/log", SigningKey::from_bytes(&[7; 32]))
        .unwrap()
        .verifier();
    if let Ok(receipt) = serde_json::from_slice::<Receipt>(data) {
        let _ = verify_receipt(&receipt, &log);
    }
});
