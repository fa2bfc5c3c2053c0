//! Export bundles: the self-contained folder (or .tar) that carries one
//! case's chain of custody to a court, and its offline verification.
//! (A disclosure, which carries chosen files of a case to an outside body,
//! is `disclosure`.) Owns
//! the layout, the derived files (manifest, README.txt, report.html) and the
//! checks, which read the bundle's files and nothing else; fetching from a
//! vault (`custos::client::export`), packing into a .tar and decrypting
//! (`custos::bundle`) are the root package's.
//!
//! ```text
//! checkpoint.txt           the log's signed checkpoint (+ witness cosignatures)
//! log.vkey                 the log's public key
//! events/INDEX.json        each event exactly as stored (the bytes hashed)
//! proofs/INDEX.tlog-proof  C2SP tlog-proof: inclusion of that event
//! objects/SHA256           ciphertext, named by its SHA-256
//! manifest.json            index of the above, derived from verified data
//! README.txt               how to check it all by hand
//! report.html              optional timeline picture
//! ```
//!
//! Every file is checked: the derived ones must be exactly what the verified
//! data implies, so no byte anywhere can change without `verify` failing.
//!
//! This file holds the layout's names and the types a verification yields;
//! reading the files is `files`, the checks `verify`, the derived files
//! `derived`, what can go wrong `error`.

mod derived;
pub mod disclosure;
mod error;
mod files;
pub mod report;
mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::derived::{manifest, manifest_bytes, readme};
pub use self::error::{BundleError, BundleProblem, Failure};
pub use self::verify::{finish_dir, verify_dir};
use crate::custody::checkpoint::Checkpoint;
use crate::custody::cosignature::WitnessVerifier;
use crate::custody::{Action, Event};

/// Format name written in every manifest.
pub const FORMAT: &str = "custos-bundle-v1";

/// File names at the top of a bundle.
pub const CHECKPOINT_FILE: &str = "checkpoint.txt";
/// The log key file.
pub const VKEY_FILE: &str = "log.vkey";
/// The manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The README for people.
pub const README_FILE: &str = "README.txt";
/// The timeline report.
pub const REPORT_FILE: &str = "report.html";
/// Event folder.
pub const EVENTS_DIR: &str = "events";
/// Proof folder.
pub const PROOFS_DIR: &str = "proofs";
/// Object folder.
pub const OBJECTS_DIR: &str = "objects";

/// The manifest: an index of the bundle, every field of which `verify`
/// recomputes from the verified contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The case.
    pub case: String,
    /// The log's origin.
    pub origin: String,
    /// Checkpoint size.
    pub checkpoint_size: u64,
    /// Checkpoint root, base64.
    pub checkpoint_root: String,
    /// When the export was logged (the export event's time).
    pub exported_at: String,
    /// Who exported (key id).
    pub exported_by: String,
    /// Events, in log order.
    pub events: Vec<ManifestEvent>,
    /// Ciphertext objects.
    pub objects: Vec<ManifestObject>,
    /// Whether the bundle has a report.html (so removing it is noticed).
    pub report: bool,
}

/// One event in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestEvent {
    /// Log index.
    pub index: u64,
    /// Case id or `vault`.
    pub case: String,
    /// Position in its chain.
    pub seq: u64,
    /// What happened.
    pub action: Action,
    /// The event file.
    pub file: String,
    /// The proof file.
    pub proof: String,
    /// Hex SHA-256 of the event file (the next event's `prev`).
    pub sha256: String,
}

/// One object in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestObject {
    /// Hex SHA-256 of the ciphertext, which is also its file name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The object file.
    pub file: String,
}

/// A verified event.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    /// Log index.
    pub index: u64,
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// Parsed.
    pub event: Event,
}

/// Everything a bundle proves, after the checks passed.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The case.
    pub case_id: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Events in log order: the vault's chain and the case's.
    pub events: Vec<VerifiedEvent>,
    /// Objects: hex SHA-256 -> size.
    pub objects: BTreeMap<String, u64>,
}

impl Verified {
    /// The export event (the last event).
    pub fn export_event(&self) -> &Event {
        &self
            .events
            .last()
            .expect("a verified bundle has its export event")
            .event
    }
}

/// One line of a verification report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckLine {
    /// Short name of the check.
    pub check: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// What was checked, or what is wrong.
    pub detail: String,
}

/// The result of `custos verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The case, when the bundle got far enough to tell.
    pub case_id: Option<String>,
    /// Checks in the order they ran; verification stops at the first failure.
    pub checks: Vec<CheckLine>,
    /// Whether every check passed.
    pub passed: bool,
}

impl VerifyReport {
    /// The failing check, if any.
    pub fn failure(&self) -> Option<&CheckLine> {
        self.checks.iter().find(|c| !c.passed)
    }
}

/// What to require beyond the log's own signature.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Witnesses whose cosignatures count.
    pub witnesses: Vec<WitnessVerifier>,
    /// How many of them must have cosigned.
    pub quorum: usize,
}

/// File name of event `index`.
pub fn event_file(index: u64) -> String {
    format!("{EVENTS_DIR}/{index}.json")
}

/// File name of the proof of event `index`.
pub fn proof_file(index: u64) -> String {
    format!("{PROOFS_DIR}/{index}.tlog-proof")
}

/// File name of an object.
pub fn object_file(sha256: &str) -> String {
    format!("{OBJECTS_DIR}/{sha256}")
}

#[cfg(test)]
mod tests;
