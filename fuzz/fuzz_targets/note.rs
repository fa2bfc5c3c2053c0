//! Signed notes, checkpoints, vkeys, witness cosignatures and the witness's
//! add-checkpoint request: everything a vault, a witness or an auditor reads
//! as note text from someone else.
#![no_main]
#![forbid(unsafe_code)]

use custos::custody::checkpoint::{LogSigner, LogVerifier};
use custos::custody::cosignature::{WitnessSigner, WitnessVerifier};
use custos::witness::AddCheckpoint;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let log = LogSigner::new("fuzz.example/log", SigningKey::from_bytes(&[7; 32]))
        .unwrap()
        .verifier();
    let witness = WitnessSigner::new("fuzz.example/w1", SigningKey::from_bytes(&[9; 32]))
        .unwrap()
        .verifier();

    // As a note: a checkpoint must verify only if the log signed it.
    if let Ok(cp) = log.verify(text) {
        assert!(cp.size > 0 || cp.root.len() == 32);
    }
    let _ = witness.cosigned_at(text, i64::MAX / 2);
    // As a vkey, of the log or of a witness; a parsed vkey prints back.
    if let Ok(v) = LogVerifier::parse(text) {
        assert_eq!(LogVerifier::parse(&v.vkey()).unwrap().vkey(), v.vkey());
        let _ = v.verify(text);
    }
    if let Ok(w) = WitnessVerifier::parse(text) {
        assert_eq!(WitnessVerifier::parse(&w.vkey()).unwrap().vkey(), w.vkey());
    }
    // As the body of a witness's add-checkpoint request: text round trips.
    if let Ok(req) = AddCheckpoint::parse(text) {
        let again = AddCheckpoint::parse(&req.to_text()).unwrap();
        assert_eq!(again.to_text(), req.to_text());
    }
});
