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
//! Restoring trusts nothing in the file: every member is checked against
//! the manifest's hashes, every chunk against its name, the log against its
//! signed checkpoint, every chain and signature by the auditor, the
//! registry and submitter keys against what the log says, and every object
//! against its id.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::custody::audit::{AuditSummary, LogAuditor};
use crate::custody::checkpoint::LogVerifier;
use crate::custody::merkle::Hash;
use crate::store::{self, ObjectManifest, Store, StoreError, T};
use crate::vault::{Description, Vault, VaultError};

mod derived;

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

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
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

/// Copy tree `t`'s records that `keep` accepts into an unnamed file beside
/// the store, hashing and counting them.
fn spool_tree(
    store: &Store,
    t: T,
    dir: &Path,
    keep: impl Fn(&[u8], &[u8]) -> bool,
) -> Result<(u64, u64, String, std::fs::File)> {
    let mut file = tempfile::tempfile_in(dir)?;
    let mut w = Hashing {
        inner: std::io::BufWriter::new(file.try_clone()?),
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut records = 0;
    for kv in store.tree(t).iter() {
        let (k, v) = kv?;
        if keep(&k, &v) {
            write_record(&mut w, &k, &v)?;
            records += 1;
        }
    }
    w.flush()?;
    let sha = hex::encode(w.hash.finalize());
    let bytes = w.bytes;
    file.rewind()?;
    Ok((records, bytes, sha, file))
}

/// A big-endian u64 at the start of `bytes`.
fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Trees whose records never change once written and that only grow with
/// the log: entries, tree nodes, chain indices. Most of a large vault's
/// metadata. Their part below the cut is copied after the writer lock is
/// let go, so writes wait only for the trees that change in place.
const APPEND_ONLY: [T; 3] = [T::Log, T::Nodes, T::Chains];

/// Spooled trees, by [`T`] index: records, bytes, SHA-256, the file.
type Spooled = BTreeMap<usize, (u64, u64, String, std::fs::File)>;

/// What is taken under the writer lock: the trees that change in place,
/// the log's size and checkpoint, and the chunks the objects use.
struct Cut {
    spooled: Spooled,
    referenced: BTreeSet<Hash>,
    log_size: u64,
    checkpoint: String,
    /// How long writes waited.
    held: std::time::Duration,
}

/// Cut a consistent snapshot of `vault` (see the module's documentation).
/// Writes wait while the trees that change in place (cases, envelopes,
/// registry, chain heads, objects) are copied; the log's own trees and the
/// chunks, which never change once written, are copied afterwards up to
/// the cut. Reads go on throughout.
pub async fn snapshot(vault: &Vault) -> Result<Snapshot> {
    let cut = cut_under_lock(vault).await?;
    finish(vault, cut)
}

async fn cut_under_lock(vault: &Vault) -> Result<Cut> {
    let store = &vault.store;
    let spool = crate::vault::db_path(&vault.dir);
    let mut spooled = Spooled::new();
    let guard = store.writer().await;
    let locked = std::time::Instant::now();
    // Everything so far durable, and nothing changes until the guard goes:
    // the snapshot is one instant of acknowledged state.
    store.flush_blocking()?;
    let checkpoint = store
        .checkpoint()?
        .ok_or_else(|| BackupError::Invalid("the vault has no checkpoint yet".into()))?;
    let log_size = store.log_size()?;
    for (t, _) in store::TREES.iter() {
        if !LEFT_OUT.contains(t) && !APPEND_ONLY.contains(t) && *t != T::Chunks {
            spooled.insert(*t as usize, spool_tree(store, *t, &spool, |_, _| true)?);
        }
    }
    let mut referenced = BTreeSet::new();
    for v in store.tree(T::ObjectChunks).iter().values() {
        let v = v?;
        referenced.insert(
            Hash::try_from(v.as_ref()).map_err(|_| StoreError::Integrity("chunk reference is damaged".into()))?,
        );
    }
    drop(guard);
    let held = locked.elapsed();
    tracing::info!(
        log_size,
        writes_held_ms = held.as_millis() as u64,
        "backup snapshot cut"
    );
    Ok(Cut {
        spooled,
        referenced,
        log_size,
        checkpoint,
        held,
    })
}

/// Copy what never changes once written, up to the cut, and list the chunk
/// files; writes may go on meanwhile.
fn finish(vault: &Vault, cut: Cut) -> Result<Snapshot> {
    let store = &vault.store;
    let spool = crate::vault::db_path(&vault.dir);
    let Cut {
        mut spooled,
        referenced,
        log_size,
        checkpoint,
        held,
    } = cut;
    // Below the cut these are as they were under the lock: entries and
    // chain indices of the first `log_size` entries, and the tree nodes
    // that cover only those.
    let below = |index: Option<u64>| index.is_some_and(|i| i < log_size);
    spooled.insert(
        T::Log as usize,
        spool_tree(store, T::Log, &spool, |k, _| below(be_u64(k)))?,
    );
    spooled.insert(
        T::Chains as usize,
        spool_tree(store, T::Chains, &spool, |_, v| below(be_u64(v)))?,
    );
    spooled.insert(
        T::Nodes as usize,
        spool_tree(store, T::Nodes, &spool, |k, _| {
            let level = k
                .get(..4)
                .and_then(|l| <[u8; 4]>::try_from(l).ok())
                .map(u32::from_be_bytes);
            match (level, k.get(4..).and_then(be_u64)) {
                (Some(level), Some(index)) if level < 64 => (u128::from(index) + 1) << level <= u128::from(log_size),
                _ => false,
            }
        })?,
    );
    // Small chunks live in the chunks tree: those the snapshot's objects
    // use, and no other (an upload's, say).
    spooled.insert(
        T::Chunks as usize,
        spool_tree(store, T::Chunks, &spool, |k, _| {
            Hash::try_from(k).is_ok_and(|h| referenced.contains(&h))
        })?,
    );
    let mut trees = Vec::new();
    let mut files = Vec::new();
    for (t, name) in store::TREES.iter().filter(|(t, _)| !LEFT_OUT.contains(t)) {
        let (records, bytes, sha256, file) = spooled.remove(&(*t as usize)).expect("every tree spooled");
        trees.push(TreeFile {
            name: (*name).to_owned(),
            records,
            bytes,
            sha256,
        });
        files.push(file);
    }
    // Chunks up to the small size live in the chunks tree, already copied;
    // the others are files.
    let mut chunks = Vec::new();
    for hash in referenced {
        if store.tree(T::Chunks).contains_key(hash)? {
            continue;
        }
        let len = std::fs::metadata(store.chunk_file(&hash))
            .map_err(|e| StoreError::Integrity(format!("chunk {} is unreadable: {e}", hex::encode(hash))))?
            .len();
        chunks.push((hash, len));
    }
    let config_path = vault.dir.join(crate::config::CONFIG_FILE);
    let config = match std::fs::read(&config_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        created: crate::custody::now_rfc3339(),
        origin: vault.description.origin.clone(),
        vkey: vault.description.vkey.clone(),
        checkpoint,
        log_size,
        trees,
        chunk_files: chunks.len() as u64,
        config: config.is_some(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialisable");
    Ok(Snapshot {
        vault_json: serde_json::to_vec_pretty(&vault.description).expect("serialisable"),
        manifest_signature: vault.signer.sign_manifest(&manifest_bytes),
        manifest_bytes,
        manifest,
        config,
        trees: files,
        chunks,
        writes_held: held,
    })
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

impl Snapshot {
    /// What the snapshot holds.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// How long the vault's writes waited while the snapshot was cut.
    pub fn writes_held(&self) -> std::time::Duration {
        self.writes_held
    }

    /// The exact size of the tar file [`Snapshot::write`] produces.
    pub fn tar_len(&self) -> u64 {
        let mut len = member_len(self.manifest_bytes.len() as u64)
            + member_len(self.manifest_signature.len() as u64)
            + member_len(self.vault_json.len() as u64);
        if let Some(c) = &self.config {
            len += member_len(c.len() as u64);
        }
        len += self.manifest.trees.iter().map(|t| member_len(t.bytes)).sum::<u64>();
        len += self.chunks.iter().map(|(_, l)| member_len(*l)).sum::<u64>();
        len + 1024
    }

    /// Write the backup as a tar file to `out`: the manifest, vault.json,
    /// custos.toml, the trees, then every chunk file, each re-checked
    /// against its hash as it is read, so a backup never carries a damaged
    /// chunk in silence.
    pub fn write(self, store: &Store, out: impl Write) -> Result<Manifest> {
        let mut b = tar::Builder::new(out);
        let manifest = &self.manifest_bytes;
        b.append_data(&mut header(manifest.len() as u64), MANIFEST, manifest.as_slice())?;
        let signature = self.manifest_signature.as_bytes();
        b.append_data(&mut header(signature.len() as u64), MANIFEST_SIG, signature)?;
        b.append_data(
            &mut header(self.vault_json.len() as u64),
            VAULT_JSON,
            self.vault_json.as_slice(),
        )?;
        if let Some(c) = &self.config {
            b.append_data(&mut header(c.len() as u64), CONFIG, c.as_slice())?;
        }
        for (tree, file) in self.manifest.trees.iter().zip(self.trees) {
            let path = format!("{TREES}{}", tree.name);
            b.append_data(
                &mut header(tree.bytes),
                path,
                std::io::BufReader::new(file).take(tree.bytes),
            )?;
        }
        for (hash, len) in &self.chunks {
            let bytes = store.get_chunk(hash)?;
            if bytes.len() as u64 != *len {
                return Err(StoreError::Integrity(format!("chunk {} changed size", hex::encode(hash))).into());
            }
            b.append_data(
                &mut header(*len),
                format!("{CHUNKS}{}", hex::encode(hash)),
                bytes.as_slice(),
            )?;
        }
        b.into_inner()?.flush()?;
        Ok(self.manifest)
    }
}

/// One member of a backup, as [`read`] hands it over, already checked.
pub enum Member<'a> {
    /// The vault's description.
    VaultJson(&'a [u8]),
    /// The vault's custos.toml.
    Config(&'a [u8]),
    /// The log key, encrypted with a passphrase (age, scrypt).
    LogKey(&'a [u8]),
    /// One tree's records: the callback reads them with
    /// [`TreeRecords::next_record`]; whatever it leaves is read and hashed.
    Tree(&'a str, TreeRecords<'a>),
    /// A chunk whose bytes match its hash.
    Chunk(Hash, &'a [u8]),
}

/// Where the records of a tree member come from.
type NextRecord<'a> = &'a mut dyn FnMut() -> Result<Option<(Vec<u8>, Vec<u8>)>>;

/// The records of a tree member.
pub struct TreeRecords<'a>(NextRecord<'a>);

impl TreeRecords<'_> {
    /// The next record, or `None` after the last.
    pub fn next_record(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        (self.0)()
    }
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn read_small(entry: &mut impl Read, size: u64, what: &str) -> Result<Vec<u8>> {
    if size > MAX_SMALL_MEMBER {
        return Err(damaged(format!("{what} is {size} bytes, far more than it can be")));
    }
    let mut out = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut out).map_err(cut)?;
    if out.len() as u64 != size {
        return Err(damaged("the file is cut short"));
    }
    Ok(out)
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

/// Read a backup from `r`, checking every member as it comes (the manifest
/// first, each tree against its hash and record count, each chunk against
/// its name), and hand each to `visit`. Returns the manifest once the whole
/// file has been read and found complete.
pub fn read(r: impl Read, mut visit: impl FnMut(Member<'_>) -> Result<()>) -> Result<Manifest> {
    let mut archive = tar::Archive::new(r);
    let mut entries = archive.entries().map_err(cut)?;
    let mut manifest: Option<Manifest> = None;
    let mut manifest_bytes = Vec::new();
    let mut signature_seen = false;
    let mut trees_seen = BTreeSet::new();
    let (mut chunks_seen, mut vault_seen, mut config_seen, mut key_seen) = (0u64, false, false, false);
    for entry in &mut entries {
        let mut entry = entry.map_err(cut)?;
        if !matches!(entry.header().entry_type(), tar::EntryType::Regular) {
            return Err(damaged("it holds something other than plain files"));
        }
        let path = entry
            .path()
            .map_err(|_| damaged("a member's name is not text"))?
            .to_string_lossy()
            .into_owned();
        let size = entry.size();
        let Some(m) = &manifest else {
            if path != MANIFEST {
                return Err(damaged(format!(
                    "it does not start with {MANIFEST}: not a custos backup"
                )));
            }
            let bytes = read_small(&mut entry, size, "the manifest")?;
            let parsed: Manifest = serde_json::from_slice(&bytes).map_err(|e| damaged(format!("manifest: {e}")))?;
            if parsed.format == "custos-backup-v1" {
                return Err(damaged(
                    "it was made by an older custos (custos-backup-v1), whose manifests are unsigned; \
                     restore it with that version and take a new backup",
                ));
            }
            if parsed.format != FORMAT {
                return Err(damaged(format!(
                    "its format is {:?}; this custos reads {FORMAT}",
                    parsed.format
                )));
            }
            manifest_bytes = bytes;
            manifest = Some(parsed);
            continue;
        };
        if !signature_seen {
            // The manifest is signed by the log key it names; the caller
            // then holds that key to the one it trusts (check_manifest).
            if path != MANIFEST_SIG {
                return Err(damaged(format!("{MANIFEST_SIG} does not follow the manifest")));
            }
            let signature = read_small(&mut entry, size, "the manifest's signature")?;
            let verifier = LogVerifier::parse(&m.vkey).map_err(|e| damaged(format!("vkey: {e}")))?;
            verifier
                .verify_manifest(&manifest_bytes, &String::from_utf8_lossy(&signature))
                .map_err(|_| damaged("its manifest is not signed by the log key it names"))?;
            signature_seen = true;
            continue;
        }
        if path == VAULT_JSON && !vault_seen {
            vault_seen = true;
            visit(Member::VaultJson(&read_small(&mut entry, size, "vault.json")?))?;
        } else if path == CONFIG && m.config && !config_seen {
            config_seen = true;
            visit(Member::Config(&read_small(&mut entry, size, "custos.toml")?))?;
        } else if path == LOG_KEY && !key_seen {
            key_seen = true;
            visit(Member::LogKey(&read_small(&mut entry, size, "the log key")?))?;
        } else if let Some(name) = path.strip_prefix(TREES) {
            let listed = m
                .trees
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| damaged(format!("it holds a tree {name:?} its manifest does not list")))?;
            if !trees_seen.insert(name.to_owned()) {
                return Err(damaged(format!("tree {name} appears twice")));
            }
            if size != listed.bytes {
                return Err(damaged(format!("tree {name} is {size} bytes, not {}", listed.bytes)));
            }
            let mut body = HashingReader {
                inner: &mut entry,
                hash: Sha256::new(),
                bytes: 0,
            };
            let mut count = 0u64;
            let mut next = || {
                let record = read_record(&mut body)?;
                count += u64::from(record.is_some());
                Ok(record)
            };
            visit(Member::Tree(name, TreeRecords(&mut next)))?;
            // Whatever the visitor left is read too, so that the hash and
            // the count cover the whole file.
            while next()?.is_some() {}
            if count != listed.records {
                return Err(damaged(format!(
                    "tree {name} holds {count} records, not {}",
                    listed.records
                )));
            }
            if body.bytes != size {
                return Err(damaged("the file is cut short"));
            }
            if hex::encode(body.hash.finalize()) != listed.sha256 {
                return Err(damaged(format!("tree {name} does not match its hash in the manifest")));
            }
        } else if let Some(name) = path.strip_prefix(CHUNKS) {
            let hash: Hash = hex::decode(name)
                .ok()
                .and_then(|b| Hash::try_from(b.as_slice()).ok())
                .ok_or_else(|| damaged(format!("chunk name {name:?} is not a SHA-256")))?;
            if size > store::CHUNK_SIZE as u64 {
                return Err(damaged(format!("chunk {name} is larger than any chunk")));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes).map_err(cut)?;
            if bytes.len() as u64 != size {
                return Err(damaged("the file is cut short"));
            }
            if <[u8; 32]>::from(Sha256::digest(&bytes)) != hash {
                return Err(damaged(format!("chunk {name} does not match its hash")));
            }
            chunks_seen += 1;
            visit(Member::Chunk(hash, &bytes))?;
        } else {
            return Err(damaged(format!("unexpected member {path:?}")));
        }
    }
    let m = manifest.ok_or_else(|| damaged("it is empty"))?;
    if !vault_seen {
        return Err(damaged("vault.json is missing"));
    }
    if m.config && !config_seen {
        return Err(damaged("custos.toml is missing"));
    }
    for t in &m.trees {
        if !trees_seen.contains(&t.name) {
            return Err(damaged(format!("tree {} is missing", t.name)));
        }
    }
    if chunks_seen != m.chunk_files {
        return Err(damaged(format!(
            "it holds {chunks_seen} chunk files where its manifest lists {}",
            m.chunk_files
        )));
    }
    Ok(m)
}

/// What a restore rebuilt and checked.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The restored data directory.
    pub data: PathBuf,
    /// Entries in the restored log.
    pub log_size: u64,
    /// Its signed checkpoint, as in the backup.
    pub checkpoint: String,
    /// When the snapshot was cut.
    pub snapshot_created: String,
    /// What the full audit checked.
    pub audit: LocalAudit,
    /// Whether the log key came out of the backup (else from a file).
    pub log_key_from_backup: bool,
}

/// What [`audit_vault`] checked.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LocalAudit {
    /// Entries replayed.
    pub entries: u64,
    /// Chains (cases and the vault's own).
    pub chains: usize,
    /// Actor signatures verified.
    pub signatures: u64,
    /// Objects re-hashed against their ids.
    pub objects: u64,
    /// Their ciphertext bytes.
    pub object_bytes: u64,
    /// Registered principals.
    pub principals: usize,
}

impl From<sled::Error> for BackupError {
    fn from(e: sled::Error) -> Self {
        BackupError::Store(StoreError::from(e))
    }
}

impl From<&AuditSummary> for LocalAudit {
    fn from(s: &AuditSummary) -> Self {
        LocalAudit {
            entries: s.entries,
            chains: s.chains,
            signatures: s.signatures,
            ..Default::default()
        }
    }
}

fn audit_failed(message: impl Into<String>) -> BackupError {
    BackupError::Audit(message.into())
}

/// The full audit of a vault's own store, as an auditor would make it and
/// more: every entry replayed (chains, actors' signatures, registry), the
/// root against the signed checkpoint, the derived trees (registry,
/// submitter keys, chain heads and indices) against what the log says, every
/// stored object re-hashed against its id, and every object the log says
/// was stored present.
pub fn audit_vault(vault: &Vault) -> Result<LocalAudit> {
    let store = &vault.store;
    let size = store.log_size()?;
    let note = store
        .checkpoint()?
        .ok_or_else(|| audit_failed("the log has no checkpoint"))?;
    let cp = vault
        .signer
        .verifier()
        .verify(&note)
        .map_err(|e| audit_failed(format!("the checkpoint does not verify: {e}")))?;
    let mut auditor = LogAuditor::new();
    let mut derived = derived::Derived::default();
    let mut stored_objects = BTreeSet::new();
    for i in 0..size {
        let bytes = store
            .entry(i)?
            .ok_or_else(|| audit_failed(format!("log entry {i} is missing")))?;
        auditor.push(&bytes).map_err(|e| audit_failed(e.to_string()))?;
        let event: crate::custody::Event = serde_json::from_slice(&bytes).expect("the auditor parsed it");
        derived
            .apply(i, &event)
            .map_err(|e| audit_failed(format!("entry {i}: {e}")))?;
        let chained = store
            .tree(T::Chains)
            .get(store::indexed_key(format!("{}/", event.case).as_bytes(), event.seq))?;
        if chained.as_deref() != Some(&i.to_be_bytes()[..]) {
            return Err(audit_failed(format!("the chain index of entry {i} is wrong")));
        }
        if event.action == crate::custody::Action::ObjectStored {
            stored_objects.extend(event.objects);
        }
    }
    auditor
        .check_checkpoint(&cp)
        .map_err(|e| audit_failed(format!("the log does not match its checkpoint: {e}")))?;
    if store.tree(T::Chains).len() as u64 != size {
        return Err(audit_failed("the chain index holds entries the log does not"));
    }
    // Derived state must be what the log says, or a doctored backup could
    // slip in an admin, a submitter key, an envelope or a case's note that
    // no signed event made.
    derived.check(store).map_err(audit_failed)?;
    let registry = store.tree(T::Registry).len();
    let mut submitters = BTreeMap::new();
    for kv in store.tree(T::Submitters).iter() {
        let (k, v) = kv?;
        let key: crate::identity::KeyId = String::from_utf8_lossy(&k)
            .parse()
            .map_err(|_| audit_failed("a submitter key id is malformed"))?;
        submitters.insert(key, String::from_utf8_lossy(&v).into_owned());
    }
    if submitters != auditor.submitters() {
        return Err(audit_failed("the submitter keys differ from those the log registered"));
    }
    let mut retired = BTreeSet::new();
    for key in store.tree(T::Retired).iter().keys() {
        let key = key?;
        retired.insert(
            String::from_utf8_lossy(&key)
                .parse::<crate::identity::KeyId>()
                .map_err(|_| audit_failed("a retired key id is malformed"))?,
        );
    }
    if retired != auditor.retired() {
        return Err(audit_failed("the retired keys differ from those the log removed"));
    }
    let mut heads = BTreeMap::new();
    for kv in store.tree(T::Heads).iter() {
        let (k, v) = kv?;
        let head: store::ChainHead =
            serde_json::from_slice(&v).map_err(|_| audit_failed("a chain head is unreadable"))?;
        heads.insert(String::from_utf8_lossy(&k).into_owned(), (head.seq, head.hash));
    }
    if heads != auditor.heads() {
        return Err(audit_failed("the chain heads differ from the log's"));
    }
    let mut audit = LocalAudit::from(&auditor.summary());
    audit.principals = registry;
    for kv in store.tree(T::Objects).iter() {
        let (k, v) = kv?;
        let m: ObjectManifest =
            serde_json::from_slice(&v).map_err(|_| audit_failed("an object record is unreadable"))?;
        let id = hex::encode(&k);
        let (hash, len) = store.hash_sequence(T::ObjectChunks, &k, m.chunks)?;
        if hash != id || len != m.size {
            return Err(audit_failed(format!("object {id} does not match its id")));
        }
        stored_objects.remove(&id);
        audit.objects += 1;
        audit.object_bytes += len;
    }
    if let Some(missing) = stored_objects.first() {
        return Err(audit_failed(format!(
            "object {missing} was acknowledged in the log but is not in the store"
        )));
    }
    Ok(audit)
}

/// Decrypt a log key that [`encrypt_log_key`] wrapped.
fn decrypt_log_key(
    bytes: &[u8],
    passphrase: impl FnOnce() -> Result<age::secrecy::SecretString, crate::identity::IdentityError>,
) -> Result<ed25519_dalek::SigningKey> {
    let wrong = || BackupError::Invalid("cannot decrypt the backup's log key (wrong passphrase?)".into());
    let pass =
        passphrase().map_err(|e| BackupError::Invalid(format!("the backup's log key needs its passphrase: {e}")))?;
    let dec = age::Decryptor::new(bytes).map_err(|_| wrong())?;
    if !dec.is_scrypt() {
        return Err(damaged("the log key is not passphrase-encrypted"));
    }
    let id = age::scrypt::Identity::new(pass);
    let mut r = dec
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|_| wrong())?;
    let mut seed = zeroize::Zeroizing::new(Vec::new());
    r.read_to_end(&mut seed).map_err(|_| wrong())?;
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| damaged("the log key is not 32 bytes"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

/// The log key's seed encrypted with a passphrase (age, scrypt).
pub fn encrypt_log_key(key: &ed25519_dalek::SigningKey, passphrase: age::secrecy::SecretString) -> Result<Vec<u8>> {
    let seed = zeroize::Zeroizing::new(key.to_bytes());
    let mut out = Vec::new();
    let mut w = age::Encryptor::with_user_passphrase(passphrase)
        .wrap_output(&mut out)
        .map_err(std::io::Error::other)?;
    w.write_all(seed.as_slice())?;
    w.finish()?;
    Ok(out)
}

/// Add the encrypted log key to the end of a backup file written by
/// [`Snapshot::write`] (before its closing blocks).
pub fn append_log_key(file: &Path, encrypted: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(file)?;
    let len = f.metadata()?.len();
    if len < 1024 {
        return Err(damaged("the file is too short to be a backup"));
    }
    f.seek(std::io::SeekFrom::Start(len - 1024))?;
    let mut tail = [0u8; 1024];
    f.read_exact(&mut tail)?;
    if tail.iter().any(|b| *b != 0) {
        return Err(damaged("the file does not end as a tar file"));
    }
    f.seek(std::io::SeekFrom::Start(len - 1024))?;
    let mut b = tar::Builder::new(&mut f);
    b.append_data(&mut header(encrypted.len() as u64), LOG_KEY, encrypted)?;
    b.finish()?;
    drop(b);
    f.sync_all()?;
    Ok(())
}

/// Check a backup file from end to end without restoring it: its members
/// against the manifest, and the manifest's checkpoint against its vkey
/// (and against `expected_vkey`, when the caller knows which vault it
/// should be). Returns the manifest and whether it holds a log key.
pub fn verify_file(file: &Path, expected_vkey: Option<&str>) -> Result<(Manifest, bool)> {
    let mut key = false;
    let mut description = None;
    let m = read(std::io::BufReader::new(std::fs::File::open(file)?), |member| {
        match member {
            Member::LogKey(_) => key = true,
            Member::VaultJson(bytes) => {
                description = Some(
                    serde_json::from_slice::<Description>(bytes).map_err(|e| damaged(format!("vault.json: {e}")))?,
                )
            }
            _ => {}
        }
        Ok(())
    })?;
    check_manifest(&m, description.as_ref())?;
    if let Some(v) = expected_vkey {
        if v != m.vkey {
            return Err(BackupError::Invalid(format!(
                "the backup is of the log {}, not of {v}",
                m.vkey
            )));
        }
    }
    Ok((m, key))
}

/// The manifest must describe the vault in vault.json, and its checkpoint
/// must be signed by that vault's log key, for the size it claims.
fn check_manifest(m: &Manifest, description: Option<&Description>) -> Result<()> {
    let d = description.ok_or_else(|| damaged("vault.json is missing"))?;
    if d.vkey != m.vkey || d.origin != m.origin {
        return Err(damaged("the manifest and vault.json name different logs"));
    }
    let verifier = LogVerifier::parse(&m.vkey).map_err(|e| damaged(format!("vkey: {e}")))?;
    let cp = verifier
        .verify(&m.checkpoint)
        .map_err(|e| damaged(format!("the checkpoint does not verify: {e}")))?;
    if cp.size != m.log_size {
        return Err(damaged("the checkpoint's size differs from the manifest's"));
    }
    Ok(())
}

/// Where a restored vault's log key comes from.
pub enum LogKeySource<'a> {
    /// A key file kept apart (a copy of the vault's `log.key`).
    File(&'a Path),
    /// The backup's own encrypted copy, opened with this passphrase.
    Backup(Box<dyn FnOnce() -> Result<age::secrecy::SecretString, crate::identity::IdentityError> + 'a>),
}

/// Rebuild a vault in `dir` (new or empty) from the backup `file`, then
/// run the full audit on it. On any failure nothing is left in `dir`.
pub async fn restore(file: &Path, dir: &Path, key: LogKeySource<'_>) -> Result<Restored> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(BackupError::Invalid(format!(
            "{} is not empty: a backup is restored only into a new or empty folder, never over a vault",
            dir.display()
        )));
    }
    crate::vault::create_private_dir(dir)?;
    let result = restore_into(file, dir, key).await;
    if result.is_err() {
        // Leave nothing half-restored behind that could be served.
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
    result
}

async fn restore_into(file: &Path, dir: &Path, key: LogKeySource<'_>) -> Result<Restored> {
    let store = Store::open(&crate::vault::db_path(dir))?;
    let mut description_bytes = None;
    let mut config = None;
    let mut encrypted_key = None;
    let manifest = read(std::io::BufReader::new(std::fs::File::open(file)?), |member| {
        match member {
            Member::VaultJson(b) => description_bytes = Some(b.to_vec()),
            Member::Config(b) => config = Some(b.to_vec()),
            Member::LogKey(b) => encrypted_key = Some(b.to_vec()),
            Member::Chunk(hash, bytes) => {
                store.put_chunk_prehashed(hash, bytes)?;
            }
            Member::Tree(name, mut records) => {
                let t = store::TREES
                    .iter()
                    .find(|(t, n)| *n == name && !LEFT_OUT.contains(t))
                    .map(|(t, _)| *t)
                    .ok_or_else(|| damaged(format!("it holds an unknown tree {name:?}")))?;
                let tree = store.tree(t);
                let mut batch = sled::Batch::default();
                let mut pending = 0;
                while let Some((k, v)) = records.next_record()? {
                    batch.insert(k, v);
                    pending += 1;
                    if pending == 1000 {
                        tree.apply_batch(std::mem::take(&mut batch))?;
                        pending = 0;
                    }
                }
                tree.apply_batch(batch)?;
            }
        }
        Ok(())
    })?;
    let description: Description = serde_json::from_slice(
        description_bytes
            .as_deref()
            .ok_or_else(|| damaged("vault.json is missing"))?,
    )
    .map_err(|e| damaged(format!("vault.json: {e}")))?;
    check_manifest(&manifest, Some(&description))?;
    if store.checkpoint()?.as_deref() != Some(manifest.checkpoint.as_str()) || store.log_size()? != manifest.log_size {
        return Err(audit_failed("the log's stored checkpoint differs from the manifest's"));
    }
    let from_backup = matches!(key, LogKeySource::Backup(_));
    let signing = match key {
        LogKeySource::File(path) => crate::vault::read_key_file(path)?,
        LogKeySource::Backup(passphrase) => {
            let bytes = encrypted_key.ok_or_else(|| {
                BackupError::Invalid(
                    "this backup holds no log key: give the vault's log.key, kept apart, with \
                     --log-key FILE (or restore a backup made with --with-log-key)"
                        .into(),
                )
            })?;
            decrypt_log_key(&bytes, passphrase)?
        }
    };
    let signer = crate::custody::checkpoint::LogSigner::new(&description.origin, signing.clone())
        .map_err(|e| BackupError::Invalid(e.to_string()))?;
    if signer.verifier().vkey() != description.vkey {
        return Err(BackupError::Invalid(
            "that log key does not belong to this vault: its vkey differs from the backup's".into(),
        ));
    }
    store.flush_blocking()?;
    drop(store);
    crate::vault::write_key_file(&dir.join("log.key"), &signing)?;
    std::fs::write(dir.join("vault.json"), description_bytes.expect("checked above"))?;
    if let Some(c) = config {
        std::fs::write(dir.join(crate::config::CONFIG_FILE), c)?;
    }
    // Opening checks the tree against the checkpoint and starts the
    // high-water mark at the backup's checkpoint; then the full audit.
    let vault = crate::vault::open(dir).map_err(|e| audit_failed(e.to_string()))?;
    let audit = audit_vault(&vault)?;
    vault.store.flush().await?;
    Ok(Restored {
        data: dir.to_owned(),
        log_size: manifest.log_size,
        checkpoint: manifest.checkpoint,
        snapshot_created: manifest.created,
        audit,
        log_key_from_backup: from_backup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custody::{Action, EventDraft, VAULT_ACTOR, VAULT_CASE};

    /// What is appended between the cut and the copy of the log's trees
    /// must not be in the snapshot: entries, chain indices, tree nodes.
    #[tokio::test]
    async fn writes_after_the_cut_stay_out_of_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let admin = crate::identity::Identity::generate("Admin").unwrap();
        crate::vault::init(&data, "cut.example/log", &[admin.card()])
            .await
            .unwrap();
        let vault = crate::vault::open(&data).unwrap();
        let at_cut = vault.store.log_size().unwrap();
        let cut = cut_under_lock(&vault).await.unwrap();
        // Seven more entries (past a power of two, so new tree nodes
        // cover old leaves) land before the log's trees are copied.
        {
            let guard = vault.store.writer().await;
            let drafts = (0..7)
                .map(|_| EventDraft {
                    case: VAULT_CASE.into(),
                    actor: VAULT_ACTOR.into(),
                    action: Action::CheckpointAnchored,
                    objects: vec![],
                    details: serde_json::Value::Null,
                    request: None,
                })
                .collect();
            vault
                .store
                .append(&guard, crate::store::Batch::default(), drafts, &vault.signer)
                .unwrap();
        }
        vault.store.flush().await.unwrap();
        let snapshot = finish(&vault, cut).unwrap();
        assert_eq!(snapshot.manifest().log_size, at_cut);
        let file = dir.path().join("cut.backup");
        snapshot
            .write(&vault.store, std::fs::File::create(&file).unwrap())
            .unwrap();
        drop(vault);
        let restored = restore(
            &file,
            &dir.path().join("restored"),
            LogKeySource::File(&data.join("log.key")),
        )
        .await
        .unwrap();
        assert_eq!(restored.log_size, at_cut);
        assert_eq!(restored.audit.entries, at_cut);
        let vault = crate::vault::open(&dir.path().join("restored")).unwrap();
        assert_eq!(vault.store.tree(T::Log).len() as u64, at_cut);
        assert_eq!(vault.store.tree(T::Chains).len() as u64, at_cut);
        // A tree of n leaves has n >> level complete nodes at each level.
        let nodes: u64 = (0..64).map(|level| at_cut >> level).sum();
        assert_eq!(vault.store.tree(T::Nodes).len() as u64, nodes);
    }

    #[test]
    fn tree_files_round_trip_and_end_only_between_records() {
        let mut file = Vec::new();
        write_record(&mut file, b"key", b"value").unwrap();
        write_record(&mut file, b"", &[7; 300]).unwrap();
        let mut r = file.as_slice();
        assert_eq!(read_record(&mut r).unwrap(), Some((b"key".to_vec(), b"value".to_vec())));
        assert_eq!(read_record(&mut r).unwrap(), Some((vec![], vec![7; 300])));
        assert_eq!(read_record(&mut r).unwrap(), None);
        // Cut anywhere inside a record, or a stray byte or three at the end.
        for cut in 1..file.len() {
            let mut r = &file[..cut];
            let all: Result<Vec<_>> = std::iter::from_fn(|| read_record(&mut r).transpose()).collect();
            assert!(
                matches!(all, Err(BackupError::Damaged(_))) || cut == 16,
                "cut at {cut}: {all:?}"
            );
        }
        for junk in 1..4 {
            let mut longer = file.clone();
            longer.extend(std::iter::repeat_n(0u8, junk));
            let mut r = longer.as_slice();
            let all: Result<Vec<_>> = std::iter::from_fn(|| read_record(&mut r).transpose()).collect();
            assert!(matches!(all, Err(BackupError::Damaged(_))), "{junk} stray bytes");
        }
        // A length made to exhaust memory is refused before it is believed.
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_record(&mut huge.as_slice()),
            Err(BackupError::Damaged(_))
        ));
    }
}
