//! What can go wrong with a bundle: a check that fails ([`Failure`], with
//! its [`BundleProblem`]), or, when finishing one, a file that cannot be
//! written ([`BundleError`]). Holds no checks; `files` and `verify` do.

use std::path::PathBuf;

use crate::audit::AuditError;
use crate::custody::checkpoint::CheckpointError;
use crate::custody::merkle::ProofError;
use crate::custody::tlog_proof::TlogProofError;
use crate::custody::Action;
use crate::envelope::EnvelopeError;

/// Why [`finish_dir`](super::finish_dir) did not finish a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The evidence files do not verify.
    #[error("{0}")]
    Check(#[from] Failure),
    /// A derived file could not be written.
    #[error("writing {file}: {source}")]
    Write {
        /// The file's name in the bundle.
        file: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// A failed check: its line in the report, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{check}: {problem}")]
pub struct Failure {
    check: &'static str,
    #[source]
    problem: BundleProblem,
}

impl Failure {
    pub(super) fn new(check: &'static str, problem: BundleProblem) -> Failure {
        Failure { check, problem }
    }

    /// The short name of the check that failed, as the report names it
    /// (`vkey`, `checkpoint`, `witnesses`, `files`, `inclusion`, `chain`,
    /// `objects`, `manifest`, `readme`, `report`; for a disclosure also
    /// `disclosure`, `labels`, `contents` and `summary`).
    pub fn check(&self) -> &'static str {
        self.check
    }

    /// What is wrong.
    pub fn problem(&self) -> &BundleProblem {
        &self.problem
    }

    pub(super) fn into_parts(self) -> (&'static str, BundleProblem) {
        (self.check, self.problem)
    }
}

/// `Err` of a failure of `check`.
pub(super) fn fail<T>(check: &'static str, problem: BundleProblem) -> Result<T, Failure> {
    Err(Failure::new(check, problem))
}

/// What a failed check found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleProblem {
    // Reading the files.
    /// A file or folder the bundle must have is not there.
    #[error("{} is missing", .0.display())]
    Missing(PathBuf),
    /// A file is a folder, a link or a special file.
    #[error("{} is not a regular file", .0.display())]
    NotRegularFile(PathBuf),
    /// A file is larger than any honest bundle's.
    #[error("{} is larger than {max} bytes", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit for that file.
        max: u64,
    },
    /// A file or folder cannot be read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A text file is not UTF-8.
    #[error("{} is not UTF-8", .0.display())]
    NotUtf8(PathBuf),
    /// A name in a folder is not UTF-8.
    #[error("a file name in {} is not UTF-8", .0.display())]
    NameNotUtf8(PathBuf),
    /// A folder holds a link or special file.
    #[error("{} is a link or special file", .0.display())]
    LinkOrSpecial(PathBuf),
    /// The bundle holds something the format does not name.
    #[error("unexpected entry {0:?} in the bundle")]
    UnexpectedEntry(String),
    /// An event file without its proof, or a proof without its event.
    #[error("event {0} has no proof, or proof {0} no event")]
    Unpaired(u64),

    // The log's key and checkpoint.
    /// `log.vkey` is not the key the verifier pinned.
    #[error("log.vkey is not the log key you pinned with --vkey")]
    WrongLogKey,
    /// `checkpoint.txt` does not verify under the pinned key.
    #[error("{0}")]
    Checkpoint(#[source] CheckpointError),
    /// Fewer of the given witnesses cosigned than the quorum.
    #[error("{cosigned} of the {given} given witnesses cosigned the checkpoint; {quorum} required")]
    Quorum {
        /// Witnesses whose cosignature verified.
        cosigned: usize,
        /// Witnesses given.
        given: usize,
        /// Cosignatures required.
        quorum: usize,
    },

    // Inclusion.
    /// A proof file is not a C2SP tlog-proof.
    #[error("{file}: {source}")]
    Proof {
        /// The proof file.
        file: String,
        /// Why it does not parse.
        source: TlogProofError,
    },
    /// A proof file proves another index than its name says.
    #[error("{file} is for index {index}")]
    ProofIndex {
        /// The proof file.
        file: String,
        /// The index it proves.
        index: u64,
    },
    /// A proof file is against another checkpoint than the bundle's.
    #[error("{file} is against another checkpoint than checkpoint.txt")]
    ProofCheckpoint {
        /// The proof file.
        file: String,
    },
    /// An event's inclusion proof does not verify.
    #[error("event {index} is not in the checkpointed log: {source}")]
    NotIncluded {
        /// The event's log index.
        index: u64,
        /// Which rule of the proof failed.
        source: ProofError,
    },

    // The chains.
    /// An event fails the audit of its chain.
    #[error("{0}")]
    Audit(#[source] AuditError),
    /// The bundle holds events of two cases.
    #[error("event {index} belongs to a second case {case}")]
    SecondCase {
        /// The event's log index.
        index: u64,
        /// Its case.
        case: String,
    },
    /// The bundle holds only vault events.
    #[error("the bundle holds no case events")]
    NoCaseEvents,
    /// The last event is not the export at the checkpoint's last entry, so
    /// events of the case could have been left out.
    #[error("the bundle does not end with its export event at the checkpoint's last entry")]
    NoExportAtEnd,
    /// The vault chain is not as long as the export event records.
    #[error("the vault chain has {0} events here but the export event records another number")]
    VaultEventCount(u64),

    // The objects.
    /// The export event names other objects than the case stored.
    #[error("the export event names other objects than the case stored")]
    ExportNamesOtherObjects,
    /// An object the case stored is not in the bundle.
    #[error("object {0} is missing")]
    ObjectMissing(String),
    /// The bundle holds an object the case never stored.
    #[error("object {0} was never stored in the case")]
    ObjectNotStored(String),
    /// An object file cannot be read.
    #[error("object {sha256}: {source}")]
    ObjectRead {
        /// The object's name.
        sha256: String,
        /// Why.
        source: std::io::Error,
    },
    /// An object's contents do not hash to its name.
    #[error("object {sha256} has SHA-256 {found}")]
    ObjectHash {
        /// The object's name.
        sha256: String,
        /// What its contents hash to.
        found: String,
    },

    // The derived files.
    /// A derived file (manifest, README, report) is not what the verified
    /// contents imply.
    #[error("{0} is not what the verified contents say")]
    DerivedDiffers(&'static str),

    // Disclosures.
    /// A disclosure's manifest does not read as one.
    #[error("manifest.json is not a disclosure's manifest: {0}")]
    ManifestMalformed(String),
    /// A disclosed file's name is not a plain file name.
    #[error("{0:?} is not a plain file name")]
    UnsafeName(String),
    /// The bundle does not end with one case_disclosed entry.
    #[error("the bundle does not end with its one case_disclosed entry")]
    NoDisclosureEvent,
    /// An entry a disclosure does not carry.
    #[error("entry {index} ({action:?}) is not one a disclosure carries")]
    UnexpectedEvent {
        /// The entry's log index.
        index: u64,
        /// What it records.
        action: Action,
    },
    /// No registration of the disclosing key as a lawyer, before the
    /// disclosure.
    #[error("the bundle holds no registration of the disclosing key as a lawyer before the disclosure")]
    NoLawyerRegistration,
    /// A disclosed object that no object_stored entry of the case here
    /// names.
    #[error("object {0} is disclosed, but no object_stored entry of the case here names it")]
    DisclosedObjectNotStored(String),
    /// An object_stored entry of an object the disclosure does not name.
    #[error("object {0} is stored here, but the disclosure does not name it")]
    StoredObjectNotDisclosed(String),
    /// The manifest and the signed disclosure disagree on whether the
    /// files are in the clear.
    #[error("the manifest and the lawyer's signed disclosure differ on whether the files are in the clear")]
    ModeDiffers,
    /// The key given is not the disclosure's recipient's.
    #[error("the key given is not the recipient's: the disclosure is to {0}")]
    OtherRecipient(String),
    /// An object's key file does not read or open.
    #[error("the keys of object {sha256}: {source}")]
    KeyFile {
        /// The object.
        sha256: String,
        /// Why.
        source: EnvelopeError,
    },
    /// An object's logged label does not open with its key.
    #[error("the logged label of object {sha256}: {source}")]
    Label {
        /// The object.
        sha256: String,
        /// Why.
        source: EnvelopeError,
    },
    /// The logged label names another file than the bundle's.
    #[error("object {sha256} is logged as {label:?}, not as {file:?}")]
    NameDiffers {
        /// The object.
        sha256: String,
        /// The name its label gives.
        label: String,
        /// The name in the bundle.
        file: String,
    },
    /// An object's file key does not open the logged ciphertext.
    #[error("the file key of object {sha256} does not open its logged ciphertext: {source}")]
    FileKeyDoesNotOpen {
        /// The object.
        sha256: String,
        /// Why.
        source: EnvelopeError,
    },
    /// A disclosed age file does not open with the recipient's key.
    #[error("{file} does not open with the recipient's key: {source}")]
    DisclosedFileUnreadable {
        /// The file.
        file: String,
        /// Why.
        source: EnvelopeError,
    },
    /// A disclosed file is not the logged object's plaintext.
    #[error("{file} is not the plaintext of the logged object {sha256}")]
    DisclosedFileDiffers {
        /// The file.
        file: String,
        /// The object.
        sha256: String,
    },
    /// A disclosed file the signed disclosure names as a cleaned copy does
    /// not have the SHA-256 it names.
    #[error("{file} is not the cleaned copy of object {sha256} that the signed disclosure names (SHA-256 {cleaned})")]
    CleanedFileDiffers {
        /// The file.
        file: String,
        /// The object it was made from.
        sha256: String,
        /// The copy's SHA-256, as logged.
        cleaned: String,
    },
    /// The keys of an object disclosed as a cleaned copy include its file
    /// key, which opens the original, metadata and all.
    #[error("the keys of object {0} open the original, but the signed disclosure names its file as a cleaned copy")]
    CleanedOriginalKey(String),
    /// The keys of an object disclosed as is lack its file key.
    #[error(
        "the keys of object {0} lack its file key, but the signed disclosure does not name its file as a cleaned copy"
    )]
    ObjectKeyMissing(String),
    /// The sealed summary does not open with the recipient's key.
    #[error("summary.html.age does not open with the recipient's key: {0}")]
    SummarySealed(EnvelopeError),
}
