//! Backups: a consistent snapshot of a vault as one tar file, and its
//! restore into a new data directory that ends with a full audit.
//!
//! A snapshot is cut with the log's writer lock held, after a flush, so it
//! holds exactly what was durable at one instant: every acknowledged
//! request before it and nothing after. Only the trees that change in place
//! are copied under the lock. The log's entries, tree nodes and chain
//! indices never change once written, and chunks are content-addressed and
//! never rewritten or removed while an object refers to them: those are
//! copied after the lock is let go, up to the cut. A backup holds ciphertext, the log,
//! the registry and the public settings; never a private key, except the
//! log key when the operator asks for it, and then only encrypted with a
//! passphrase (added by the CLI, which reads the key file itself: the API
//! never hands the log key out). Uploads in progress are left out: they
//! were never acknowledged, and their senders start them again.
//!
//! A vault whose chunks are in an S3 bucket may leave them there
//! ([`BackupChunks::HashesOnly`]): the signed manifest then names the
//! bucket and each large chunk's hash and length, and a restore goes on
//! only on a bucket that holds every one.
//!
//! Restoring trusts nothing in the file: every member is checked against
//! the manifest's hashes, every chunk against its name, the log against its
//! signed checkpoint, every chain and signature by the auditor, the
//! registry and submitter keys against what the log says, and every object
//! against its id.
//!
//! This file holds the format (members, manifest, records); `snapshot`
//! cuts and writes one, `read` reads one back member by member, `restore`
//! rebuilds and audits, `derived` checks the trees the log implies.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{self, ObjectManifest, Store, StoreError, T};
use crate::vault::{Description, Vault, VaultError};
use custos_core::audit::{AuditSummary, LogAuditor};
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::merkle::Hash;

mod derived;
mod read;
mod restore;
mod snapshot;

pub use read::{read, Member, TreeRecords};
pub use restore::restore_on;
pub use restore::{
    append_log_key, audit_vault, encrypt_log_key, restore, verify_file, LocalAudit, LogKeySource, Restored,
};
pub use snapshot::{refuse_hashes_only_on_disk, snapshot, snapshot_with};

/// The format written in every manifest.
pub const FORMAT: &str = "custos-backup-v2";

const MANIFEST: &str = "custos-backup/manifest.json";
/// The log key's signature over the manifest (base64), right after it.
const MANIFEST_SIG: &str = "custos-backup/manifest.sig";
const VAULT_JSON: &str = "custos-backup/vault.json";
const CONFIG: &str = "custos-backup/custos.toml";
const LOG_KEY: &str = "custos-backup/log.key.age";
const TREES: &str = "custos-backup/trees/";
const CHUNKS: &str = "custos-backup/chunks/";

/// Trees a backup leaves out: uploads in progress, never acknowledged.
const LEFT_OUT: [T; 3] = [T::Uploads, T::UploadChunks, T::CaseUploads];

/// Largest small member (manifest, vault.json, custos.toml, the log key):
/// all are a few KiB; a bigger one is not a custos backup.
const MAX_SMALL_MEMBER: u64 = 1024 * 1024;

/// Largest manifest. A backup that leaves its chunks in the bucket lists
/// each large chunk in it, about 110 bytes for a chunk of up to 4 MiB:
/// 64 MiB lists some 600,000 chunks, over 2 TiB of evidence, and is
/// still a bound on what a doctored file can make a restore read.
const MAX_MANIFEST: u64 = 64 * 1024 * 1024;

/// Largest key or value of a tree record. Values are at most a small chunk
/// or an event (a request body of at most 256 KiB and its signature);
/// 16 MiB refuses a length field made to exhaust memory.
const MAX_RECORD_PART: u32 = 16 * 1024 * 1024;

/// Errors taking, reading or restoring a backup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The backup file is damaged, cut short, or not a custos backup.
    #[error("the backup is damaged or incomplete: {0}")]
    Damaged(String),
    /// The restored vault failed its audit.
    #[error("the backup fails its audit: {0}")]
    Audit(String),
    /// The request cannot be done as asked.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault could not be opened.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Reading or writing files failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

type Result<T, E = BackupError> = std::result::Result<T, E>;

fn damaged(message: impl Into<String>) -> BackupError {
    BackupError::Damaged(message.into())
}

/// The first member of every backup: what it holds and the hash of each
/// tree file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the snapshot was cut (RFC 3339, UTC).
    pub created: String,
    /// The log's origin.
    pub origin: String,
    /// The log's verifier key.
    pub vkey: String,
    /// The signed checkpoint of the snapshot's log.
    pub checkpoint: String,
    /// Entries in the snapshot's log.
    pub log_size: u64,
    /// The tree files, in the order they follow.
    pub trees: Vec<TreeFile>,
    /// How many chunk files follow the trees.
    pub chunk_files: u64,
    /// Whether the vault's custos.toml is included.
    pub config: bool,
    /// Set when the large chunks were left in the vault's S3 bucket
    /// (`--chunk-hashes-only`): which bucket, and every chunk the restore
    /// must find there. Absent from full backups, so older ones still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<BucketChunks>,
}

/// The large chunks a backup names but does not hold: they stay in the
/// bucket, and a restore checks that it holds every one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BucketChunks {
    /// The S3 bucket the vault kept its chunks in.
    pub bucket: String,
    /// Every large chunk the snapshot's objects use.
    pub chunks: Vec<BucketChunk>,
}

/// One large chunk left in the bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BucketChunk {
    /// Its SHA-256 in hex: its name in the bucket.
    pub sha256: String,
    /// Its length.
    pub bytes: u64,
}

/// What a backup does with the chunks larger than the small ones kept in
/// sled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackupChunks {
    /// Copies them into the backup.
    #[default]
    Included,
    /// Lists their hashes and lengths only, for a vault whose chunks are
    /// in an S3 bucket whose own copies across sites are trusted to keep
    /// them; the restore checks the bucket holds every one.
    HashesOnly,
}

/// One sled tree's records, as a file of the backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TreeFile {
    /// The tree's name.
    pub name: String,
    /// Records in it.
    pub records: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// A snapshot cut from a vault, ready to be written out.
pub struct Snapshot {
    manifest: Manifest,
    /// The manifest as written, and the log key's signature over it.
    manifest_bytes: Vec<u8>,
    manifest_signature: String,
    vault_json: Vec<u8>,
    config: Option<Vec<u8>>,
    /// Each tree's records, spooled to an unnamed file beside the store.
    trees: Vec<std::fs::File>,
    /// Chunk files to copy, with their sizes.
    chunks: Vec<(Hash, u64)>,
    /// How long writes waited while it was cut.
    writes_held: std::time::Duration,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot(log_size {})", self.manifest.log_size)
    }
}

fn write_record(w: &mut impl Write, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    for part in [key, value] {
        w.write_all(&(part.len() as u32).to_be_bytes())?;
        w.write_all(part)?;
    }
    Ok(())
}

/// The next record of a tree file, or `None` at its end. The file may end
/// only between two records.
fn read_record(r: &mut impl Read) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let short = || damaged("a tree file ends inside a record");
    let mut first = [0u8; 1];
    loop {
        match r.read(&mut first) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cut(e)),
        }
    }
    let mut parts = Vec::with_capacity(2);
    for i in 0..2 {
        let mut len = [0u8; 4];
        let rest = if i == 0 {
            len[0] = first[0];
            &mut len[1..]
        } else {
            &mut len[..]
        };
        r.read_exact(rest).map_err(|_| short())?;
        let len = u32::from_be_bytes(len);
        if len > MAX_RECORD_PART {
            return Err(damaged("a tree record is impossibly large"));
        }
        let mut part = vec![0u8; len as usize];
        r.read_exact(&mut part).map_err(|_| short())?;
        parts.push(part);
    }
    let value = parts.pop().expect("two parts");
    let key = parts.pop().expect("two parts");
    Ok(Some((key, value)))
}

/// Bytes a tar member of `len` bytes takes: its header and its data
/// padded to 512-byte blocks.
fn member_len(len: u64) -> u64 {
    512 + len.div_ceil(512) * 512
}

/// A tar header for a regular file of `len` bytes, readable by its owner
/// only, with no time or owner that would tell anything about the server.
fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// A failure reading the tar stream: the file ends early or its framing is
/// broken (the tar reader reports both as I/O errors).
fn cut(e: std::io::Error) -> BackupError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        damaged("the file is cut short")
    } else {
        damaged(format!("the file is cut short or its framing is broken ({e})"))
    }
}

#[cfg(test)]
mod tests;
