//! Disclosure bundles: the folder a lawyer hands an outside body (a court,
//! an oversight body) with some files of a case, and everything that lets
//! anyone check offline that each file is exactly an object the vault
//! logged, without the case key and without learning anything of the
//! case's other files. Owns the layout, the derived files and the checks;
//! fetching, decrypting and re-encrypting is the client's
//! (`custos_client::flows::disclose`).
//!
//! ```text
//! checkpoint.txt           the log's signed checkpoint (+ witness cosignatures)
//! log.vkey                 the log's public key
//! events/INDEX.json        each event exactly as stored: the disclosing lawyer's
//!                          registration, each disclosed object's object_stored,
//!                          the case_disclosed event
//! proofs/INDEX.tlog-proof  C2SP tlog-proof: inclusion of that event
//! objects/SHA256           each disclosed object's logged ciphertext
//! keys/SHA256.age          that object's age file key and its label's, as JSON,
//!                          encrypted to the recipient (keys/SHA256.json, in the
//!                          clear, with --plaintext: the files are clear anyway);
//!                          for a cleaned copy, its label's key alone
//! files/NAME.age           the disclosed file, re-encrypted to the recipient as
//!                          a standard age file (files/NAME with --plaintext),
//!                          or a copy of it cleaned of identifying metadata
//! manifest.json            index of the above, derived from verified data
//! README.txt               how to check it all by hand
//! summary.html.age         a printable summary, encrypted to the recipient
//!                          (summary.html with --plaintext)
//! ```
//!
//! It never carries the case key, another object, another object's label
//! or key, or any event of the case but those above. An object's file key
//! opens that object's ciphertext and nothing else (age derives the
//! payload key from it and checks the header's MAC with it), so the
//! recipient can read the logged ciphertext as the vault holds it, and
//! compare it with the file they were given.
//!
//! Cleaned copies (`custos disclose --clean`): a file whose metadata
//! says where, on what device or by whom it was made (a family's home in
//! a photo's GPS) can go out as a copy without it. The copy is not the
//! logged object's plaintext, so it cannot be compared with it byte for
//! byte, by design; instead the signed disclosure names the copy's
//! SHA-256 ([`crate::wire::CleanedCopy`]) and the copy is checked against
//! that. The bundle then carries the logged ciphertext (so that the
//! original's existence, hash and time of receipt are still proven) but
//! not its file key, which would open the original, metadata and all;
//! only the label's key, which gives the file's name (as it does for any
//! disclosed file: the name, kind, media type and the submitter's
//! description, nothing of the file's contents), so that the name is still
//! checked against the log. A bundle that carries the file key of an
//! object disclosed as a cleaned copy fails verification.
//!
//! This file holds the layout's names and the types a verification
//! yields; the checks are `verify`, the key and file comparisons
//! `contents`, the derived files `derived` and `summary`.

mod contents;
mod derived;
pub mod summary;
mod verify;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use self::summary::Language;
pub use self::verify::{finish_dir, verify_dir};
use super::{CheckLine, ManifestEvent, VerifiedEvent};
use crate::custody::checkpoint::Checkpoint;
use crate::envelope::{AgeFileKey, EnvelopeError, Label, ObjectKind};
use crate::identity::Card;
use crate::wire::DiscloseBody;

/// Format name written in every disclosure's manifest; `custos verify`
/// tells the two kinds of bundle apart by it.
pub const FORMAT: &str = "custos-disclosure-v1";
/// Key folder.
pub const KEYS_DIR: &str = "keys";
/// Folder of the disclosed files.
pub const FILES_DIR: &str = "files";
/// The summary, in the clear.
pub const SUMMARY_FILE: &str = "summary.html";
/// The summary, encrypted to the recipient.
pub const SUMMARY_SEALED_FILE: &str = "summary.html.age";
/// The suffix of files encrypted to the recipient.
pub const AGE_SUFFIX: &str = ".age";

/// The manifest: an index of the bundle. `verify` derives every field
/// from the verified contents but the disclosed files' names (which it
/// checks against the sealed labels whenever it holds their keys) and the
/// summary's language.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DisclosureManifest {
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
    /// When the disclosure was logged (the case_disclosed event's time).
    pub disclosed_at: String,
    /// The lawyer who disclosed (key id).
    pub disclosed_by: String,
    /// That lawyer's name, as their registration gives it.
    pub disclosed_by_name: String,
    /// The recipient's age recipient.
    pub recipient: String,
    /// The recipient's card's key id, when they were named by a card: the
    /// lawyer's claim (see [`DiscloseBody::recipient_key_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_key_id: Option<String>,
    /// Whether the files are in the clear.
    pub plaintext: bool,
    /// The summary's language (`en`, `ru`, `kk`).
    pub language: String,
    /// Events, in log order.
    pub events: Vec<ManifestEvent>,
    /// The disclosed objects, in the order the case stored them.
    pub objects: Vec<DisclosedObject>,
    /// The summary's file.
    pub summary: String,
}

/// One disclosed object in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DisclosedObject {
    /// Hex SHA-256 of the logged ciphertext: the object id.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// The ciphertext's file.
    pub file: String,
    /// The file of its keys.
    pub keys: String,
    /// The disclosed file.
    pub disclosed: String,
    /// Log index of the object_stored event.
    pub stored_index: u64,
    /// When the vault received it (that event's time).
    pub received: String,
    /// When the disclosed file is a copy cleaned of identifying metadata
    /// rather than the object's plaintext: the copy's SHA-256, as the
    /// signed disclosure names it. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaned_sha256: Option<String>,
}

/// The file keys of one disclosed object: what opens its logged
/// ciphertext and its sealed label, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKeys {
    /// Opens the object; `None` when the disclosed file is a cleaned copy,
    /// for this key would open the original, metadata and all.
    pub object: Option<AgeFileKey>,
    /// Opens the object's label.
    pub label: AgeFileKey,
}

/// The key file's JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<String>,
    label: String,
}

impl ObjectKeys {
    /// The key file's bytes: compact JSON and a newline, the one form
    /// `verify` accepts. Zeroized when dropped.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let json = KeysJson {
            object: self.object.as_ref().map(|k| k.to_base64().to_string()),
            label: self.label.to_base64().to_string(),
        };
        let mut out = serde_json::to_vec(&json).expect("keys serialise");
        out.push(b'\n');
        zeroize::Zeroizing::new(out)
    }

    /// Keys from [`Self::to_bytes`]'s form, and no other.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let json: KeysJson = serde_json::from_slice(bytes).map_err(|_| EnvelopeError::Malformed("key file"))?;
        let keys = ObjectKeys {
            object: json.object.as_deref().map(AgeFileKey::from_base64).transpose()?,
            label: AgeFileKey::from_base64(&json.label)?,
        };
        if *keys.to_bytes() != bytes {
            return Err(EnvelopeError::Malformed("key file"));
        }
        Ok(keys)
    }
}

/// The key file of object `sha256`.
pub fn keys_file(sha256: &str, plaintext: bool) -> String {
    if plaintext {
        format!("{KEYS_DIR}/{sha256}.json")
    } else {
        format!("{KEYS_DIR}/{sha256}{AGE_SUFFIX}")
    }
}

/// The disclosed file of a file named `name`.
pub fn disclosed_file(name: &str, plaintext: bool) -> String {
    if plaintext {
        format!("{FILES_DIR}/{name}")
    } else {
        format!("{FILES_DIR}/{name}{AGE_SUFFIX}")
    }
}

/// Whether `dir` holds a disclosure bundle rather than an export bundle:
/// by its manifest's format, or, when the manifest does not read, by the
/// folders only a disclosure has (so that a damaged disclosure is named
/// as one by its own checks).
pub fn is_disclosure(dir: &Path) -> bool {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    match std::fs::read(dir.join(super::MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Format>(&b).ok())
    {
        Some(f) => f.format == FORMAT,
        None => dir.join(KEYS_DIR).is_dir() && dir.join(FILES_DIR).is_dir(),
    }
}

/// A disclosed object, verified.
#[derive(Debug, Clone)]
pub struct VerifiedObject {
    /// The object id.
    pub sha256: String,
    /// The ciphertext's size.
    pub size: u64,
    /// The object_stored event.
    pub stored: VerifiedEvent,
    /// The disclosed file's name (without `.age`).
    pub name: String,
    /// The sealed label, when its key was at hand (in the clear, or with
    /// the recipient's key): then `name` is the one it gives.
    pub label: Option<Label>,
    /// When the disclosed file is a cleaned copy: its SHA-256, as the
    /// signed disclosure names it.
    pub cleaned_sha256: Option<String>,
}

impl VerifiedObject {
    /// What the object is, when its label was read.
    pub fn kind(&self) -> Option<ObjectKind> {
        self.label.as_ref().map(|l| l.kind)
    }
}

/// Everything a disclosure bundle proves, after the checks passed.
#[derive(Debug, Clone)]
pub struct VerifiedDisclosure {
    /// The case.
    pub case_id: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The events, in log order.
    pub events: Vec<VerifiedEvent>,
    /// The case_disclosed event.
    pub disclosed: VerifiedEvent,
    /// Its inclusion proof (C2SP tlog-proof text): with the event and the
    /// checkpoint, the disclosure's receipt.
    pub disclosed_proof: String,
    /// What the lawyer signed.
    pub disclosure: DiscloseBody,
    /// The lawyer, as registered.
    pub lawyer: Card,
    /// The objects, in the order the case stored them.
    pub objects: Vec<VerifiedObject>,
    /// Whether each disclosed file was compared with the logged
    /// ciphertext's plaintext (in the clear, or with the recipient's key).
    pub contents_checked: bool,
    /// The summary's language.
    pub language: Language,
}

/// One logged object a bundle holds, as `custos verify` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldObject {
    /// The object id.
    pub object_id: String,
    /// The disclosed file, when its name was checked against the logged
    /// label (never a name the bundle merely claims for this object).
    pub file: Option<String>,
    /// What it is, when its label was read.
    pub kind: Option<ObjectKind>,
    /// The ciphertext's size.
    pub size: u64,
    /// When the vault received it.
    pub received: String,
    /// Log index of its object_stored event.
    pub stored_index: u64,
    /// Whether the disclosed file is a copy cleaned of identifying
    /// metadata: checked against the SHA-256 the signed disclosure names,
    /// not byte-comparable with the logged object, by design. Absent when
    /// not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cleaned: bool,
}

/// The verdict on a disclosure bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisclosureStatus {
    /// Every check ran and passed, the files' contents and names included.
    Verified,
    /// The checks that ran passed, but the files, their names and the
    /// summary are sealed to a recipient whose key was not given: only the
    /// log entries and the ciphertexts were checked. Not a pass.
    FilesNotChecked,
    /// A check failed.
    Failed,
}

/// The result of `custos verify` on a disclosure bundle.
#[derive(Debug, Clone, Serialize)]
pub struct DisclosureReport {
    /// Always [`FORMAT`].
    pub format: &'static str,
    /// The case, when the bundle got far enough to tell.
    pub case_id: Option<String>,
    /// Checks in the order they ran; verification stops at the first failure.
    pub checks: Vec<CheckLine>,
    /// The verdict.
    pub status: DisclosureStatus,
    /// Whether every check passed and none was skipped: `status` is
    /// [`DisclosureStatus::Verified`].
    pub passed: bool,
    /// The key id of the lawyer who signed the disclosure, as the log
    /// registered them: to compare with their card obtained another way.
    pub disclosed_by: Option<String>,
    /// Whether the disclosed files themselves were compared with the
    /// logged objects (not without the recipient's key, unless in the clear).
    pub contents_checked: bool,
    /// The checks that could not run without the recipient's key
    /// (`labels`, `contents`, `summary`); their lines say so.
    pub unchecked: Vec<&'static str>,
    /// The recipient the disclosure names.
    pub recipient: Option<String>,
    /// The logged objects the bundle holds.
    pub objects: Vec<HeldObject>,
}

impl DisclosureReport {
    /// The failing check, if any.
    pub fn failure(&self) -> Option<&CheckLine> {
        self.checks.iter().find(|c| !c.passed)
    }
}

#[cfg(test)]
mod tests;
