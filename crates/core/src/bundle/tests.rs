//! The bundle verifier's failures on folders built by hand: each is its
//! typed problem, under the check that found it.

use std::path::Path;

use ed25519_dalek::SigningKey;

use super::*;
use crate::custody::checkpoint::{CheckpointError, LogSigner};

const ORIGIN: &str = "vault.example.org/log";

fn log_signer(seed: u8) -> LogSigner {
    LogSigner::new(ORIGIN, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

/// The failure [`finish_dir`] reports for `dir`.
fn failure(dir: &Path, signer: &LogSigner) -> Failure {
    match finish_dir(dir, &signer.verifier(), false) {
        Err(BundleError::Check(failure)) => failure,
        other => panic!("not a failed check: {other:?}"),
    }
}

/// Walks a folder from empty towards a bundle: each step fixes one
/// failure and meets the next, with its variant and its message.
#[test]
fn each_failed_check_is_its_own_problem() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let signer = log_signer(7);

    let f = failure(dir, &signer);
    assert_eq!(f.check(), "vkey");
    assert!(
        matches!(f.problem(), BundleProblem::Missing(p) if p.ends_with(VKEY_FILE)),
        "{f}"
    );

    std::fs::write(dir.join(VKEY_FILE), format!("{}\n", log_signer(8).verifier().vkey())).unwrap();
    let f = failure(dir, &signer);
    assert!(matches!(f.problem(), BundleProblem::WrongLogKey), "{f}");
    assert_eq!(
        f.to_string(),
        "vkey: log.vkey is not the log key you pinned with --vkey"
    );

    // The pinned key, but a checkpoint signed by another of the same name:
    // the checkpoint's own error is the source.
    std::fs::write(dir.join(VKEY_FILE), format!("{}\n", signer.verifier().vkey())).unwrap();
    std::fs::write(dir.join(CHECKPOINT_FILE), log_signer(8).sign(0, [0; 32])).unwrap();
    let f = failure(dir, &signer);
    assert_eq!(f.check(), "checkpoint");
    assert!(
        matches!(f.problem(), BundleProblem::Checkpoint(CheckpointError::BadSignature)),
        "{f}"
    );
    let source = std::error::Error::source(f.problem()).expect("the checkpoint's error");
    assert_eq!(source.to_string(), CheckpointError::BadSignature.to_string());

    std::fs::write(dir.join(CHECKPOINT_FILE), signer.sign(0, [0; 32])).unwrap();
    let f = failure(dir, &signer);
    assert_eq!(f.check(), "files");
    assert!(
        matches!(f.problem(), BundleProblem::Missing(p) if p == Path::new(EVENTS_DIR)),
        "{f}"
    );

    for sub in [EVENTS_DIR, PROOFS_DIR, OBJECTS_DIR] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join(OBJECTS_DIR).join("notes.txt"), b"").unwrap();
    let f = failure(dir, &signer);
    assert!(
        matches!(f.problem(), BundleProblem::UnexpectedEntry(name) if name == "objects/notes.txt"),
        "{f}"
    );
    std::fs::remove_file(dir.join(OBJECTS_DIR).join("notes.txt")).unwrap();

    // Nothing wrong with the files, and no events at all.
    let f = failure(dir, &signer);
    assert_eq!(f.check(), "chain");
    assert!(matches!(f.problem(), BundleProblem::NoCaseEvents), "{f}");
}
