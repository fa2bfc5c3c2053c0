//! Persistence on sled 0.34.7: content-addressed ciphertext chunks (behind the
//! narrow [`ChunkStore`] trait), object manifests, cases, envelopes, the
//! registry, uploads, replay nonces, and the custody log's entries, tree nodes
//! and checkpoint. Multi-tree changes are one sled transaction (a long
//! object's chunk list is written ahead of it, in steps); callers
//! acknowledge only after [`Store::flush`]. Decides nothing about policy.
//!
//! This file applies batches; `resize` opens sled (and rewrites, once, a
//! store of the old segment size), `records` holds what is stored and
//! under which keys, `chunks` the ciphertext, `chunk_lists` which
//! chunks make an upload or an object, `flush` group commit, `log`
//! the custody log, `high_water` the durable checkpoint mark.

mod chunk_lists;
mod chunks;
mod flush;
mod high_water;
mod log;
mod migrate;
mod records;
mod resize;
mod s3;
mod upload_hashes;

pub use chunk_lists::LIST_STEP;
use chunks::FileChunks;
pub use chunks::{ChunkLayout, ChunkStore, SMALL_CHUNK};
use flush::GroupFlush;
pub use migrate::Migrated;
pub use records::*;
pub use s3::S3Location;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos_core::custody::checkpoint::LogSigner;
use custos_core::custody::merkle::{self, Hash, ProofError};
use custos_core::custody::{event_hash, now_rfc3339, EventDraft, Receipt};
use custos_core::identity::KeyId;

/// Size of the stored ciphertext chunks: the protocol's, see
/// [`custos_core::protocol::CHUNK_SIZE`].
pub use custos_core::protocol::CHUNK_SIZE;

/// sled page cache. sled's resident memory runs several times this figure,
/// so it is kept small; chunks are read once per download anyway.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// sled's segment (and I/O buffer) size. sled writes any page larger than
/// a quarter of a segment to a blob file of its own, which it never
/// fsyncs, and removes such files on its own schedule: a power cut can
/// then leave a log naming a blob that is gone or torn (`resize` says
/// why no fsync of custos's mends that). A leaf holds at most 17 entries,
/// the largest of them a 64 KiB chunk ([`SMALL_CHUNK`]), about 1.1 MiB:
/// with 8 MiB segments (2 MiB pages) no page ever becomes a blob. sled
/// allocates each I/O buffer at this size: about 10 MiB more resident
/// memory (bench/README.md).
const SEGMENT_SIZE: usize = 8 << 20;
/// sled's default, which every store made before [`SEGMENT_SIZE`] has:
/// sled cannot change it, so `resize` rewrites such a store once.
const OLD_SEGMENT_SIZE: usize = 512 << 10;

/// The named trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum T {
    /// chunk sha256 -> ciphertext bytes.
    Chunks,
    /// upload id + index -> chunk sha256.
    UploadChunks,
    /// object id + index -> chunk sha256.
    ObjectChunks,
    /// object id -> [`ObjectManifest`].
    Objects,
    /// case id / object id -> [`CaseObject`].
    CaseObjects,
    /// upload id -> [`UploadRecord`].
    Uploads,
    /// case id / upload id -> nothing: a case's open uploads, for its quota.
    CaseUploads,
    /// case id -> [`CaseRecord`].
    Cases,
    /// case id / key id -> envelope bytes.
    Envelopes,
    /// case id / key id -> envelope of the duress note's key (lawyers only).
    NoteEnvelopes,
    /// key id -> [`custos_core::identity::Principal`].
    Registry,
    /// submitter key id -> case id.
    Submitters,
    /// key id -> log index of its `principal_removed` event: every key that
    /// was ever a principal and was removed, so that it can never come back
    /// as a submitter key.
    Retired,
    /// log index (u64 BE) -> event bytes.
    Log,
    /// level (u32 BE) + index (u64 BE) -> perfect subtree hash.
    Nodes,
    /// case id -> [`ChainHead`].
    Heads,
    /// case id + seq (u64 BE) -> log index (u64 BE): finds a case's events
    /// without scanning the log.
    Chains,
    /// "size", "checkpoint".
    Meta,
    /// key id / nonce -> expiry (i64 BE).
    Nonces,
    /// lawyer's key id -> [`DigestState`]: how far that lawyer's digests
    /// have counted. Not made by the log: the digest task's own record.
    Digests,
}

/// Every tree and its name in sled.
pub const TREES: [(T, &str); 20] = [
    (T::Chunks, "chunks"),
    (T::UploadChunks, "upload_chunks"),
    (T::ObjectChunks, "object_chunks"),
    (T::Objects, "objects"),
    (T::CaseObjects, "case_objects"),
    (T::Uploads, "uploads"),
    (T::CaseUploads, "case_uploads"),
    (T::Cases, "cases"),
    (T::Envelopes, "envelopes"),
    (T::NoteEnvelopes, "note_envelopes"),
    (T::Registry, "registry"),
    (T::Submitters, "submitters"),
    (T::Retired, "retired_principals"),
    (T::Log, "log"),
    (T::Nodes, "log_nodes"),
    (T::Heads, "log_heads"),
    (T::Chains, "log_chains"),
    (T::Meta, "meta"),
    (T::Nonces, "nonces"),
    (T::Digests, "digests"),
];

/// Key of the latest signed checkpoint note in the meta tree.
const CHECKPOINT_KEY: &str = "checkpoint";

/// How long `open` waits for sled's file lock. sled lets go of it only once
/// its background threads have finished with a dropped database, a moment
/// after a vault is closed and reopened in one process (init, then serve);
/// a second server on the same folder still fails, after this long.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (I/O, or its own corruption checks).
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// Stored data does not match its hash or the log does not match its
    /// checkpoint: the store was altered or damaged.
    #[error("integrity failure: {0}")]
    Integrity(String),
    /// A stored record could not be decoded.
    #[error("stored record is unreadable: {0}")]
    Decode(String),
    /// The chunk files could not be read or written.
    #[error("chunk storage error: {0}")]
    Io(#[from] std::io::Error),
    /// The chunk store (an S3 bucket) could not be reached, or would not
    /// answer (a Garage cluster without quorum, say). Nothing was stored.
    #[error("the chunk store is unavailable: {0}")]
    Unavailable(String),
    /// The data directory's chunks are kept elsewhere than the settings
    /// say: serving would answer every download with a missing chunk.
    #[error("{0}")]
    Misplaced(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether this is sled finding its own files damaged (a checksum
    /// failed), which only a restore from a backup mends.
    pub fn is_damage(&self) -> bool {
        matches!(self, StoreError::Sled(sled::Error::Corruption { .. }))
    }

    /// The kind of the I/O error under this failure, if it is one (a full
    /// or read-only disk, say).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            StoreError::Io(e) | StoreError::Sled(sled::Error::Io(e)) => Some(e.kind()),
            _ => None,
        }
    }
}

/// A set of writes applied atomically.
#[derive(Default, Debug)]
pub struct Batch {
    ops: Vec<(T, Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// Put raw bytes.
    pub fn put(&mut self, t: T, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((t, key.into(), Some(value.into())));
    }
    /// Put a JSON record.
    pub fn put_json(&mut self, t: T, key: impl Into<Vec<u8>>, value: &impl Serialize) {
        self.put(t, key, serde_json::to_vec(value).expect("records always serialise"));
    }
    /// Remove a key.
    pub fn remove(&mut self, t: T, key: impl Into<Vec<u8>>) {
        self.ops.push((t, key.into(), None));
    }
}

/// Where a store keeps its chunks larger than [`SMALL_CHUNK`].
#[derive(Debug, Default, Clone)]
pub enum ChunkBackend {
    /// Files under the store's own folder (`chunks/`).
    #[default]
    Local,
    /// Objects in an S3 bucket.
    S3(S3Location),
}

/// The file in the store's folder that says where its large chunks are,
/// once they are not on this disk: `{"storage":"s3","bucket":"..."}`.
/// Opening the store with other settings is refused, so that a vault whose
/// chunks are in a bucket is never served from an empty folder, nor one
/// whose chunks are on disk from an empty bucket.
const CHUNK_STORAGE_FILE: &str = "chunk-storage.json";

/// What [`CHUNK_STORAGE_FILE`] holds.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct ChunkStorageRecord {
    storage: String,
    bucket: String,
}

/// Where the check that the chunk store is this vault's stands.
#[derive(Debug)]
struct Claim {
    /// The backend is known to hold this vault's chunks and no other's.
    checked: bool,
    /// A bucket this store is taking for the first time: the record to
    /// write once the bucket is marked as this vault's.
    adopting: Option<ChunkStorageRecord>,
}

/// Proof that the caller holds the log writer lock.
pub type WriterGuard<'a> = tokio::sync::MutexGuard<'a, ()>;

/// The vault's store.
pub struct Store {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Chunks larger than [`SMALL_CHUNK`].
    chunks: Arc<dyn ChunkStore>,
    /// The S3 bucket `chunks` is, if it is one.
    bucket: Option<String>,
    /// Whether `chunks` answered the last request made of it.
    chunks_up: std::sync::atomic::AtomicBool,
    /// Whether `chunks` was checked to be this vault's
    /// ([`Store::claim_chunk_store`]); the collector waits until it is.
    claim: std::sync::Mutex<Claim>,
    /// When the chunk store was last probed (`probe_chunk_storage`).
    last_probe: std::sync::Mutex<Option<std::time::Instant>>,
    chunk_dir: PathBuf,
    writer: Arc<tokio::sync::Mutex<()>>,
    group: Arc<GroupFlush>,
    /// Held shared by whoever writes chunks that nothing refers to yet (a
    /// PATCH, until its chunk list is applied), and exclusively by the
    /// chunk collector, so it never takes a chunk about to be referenced.
    chunk_gate: Arc<tokio::sync::RwLock<()>>,
    /// Set when something may have left chunks without a reference.
    garbage: std::sync::atomic::AtomicBool,
    /// Each open upload's running SHA-256 (`upload_hashes`).
    upload_hashes: upload_hashes::UploadHashes,
}

impl Store {
    /// Open (or create) the store in `dir`, its chunks on this disk.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_on(dir, ChunkBackend::Local)
    }

    /// Open (or create) the store in `dir`, its large chunks in `backend`.
    /// A store whose chunks are elsewhere is refused (`Misplaced`); a
    /// store with no large chunk yet takes the S3 backend it is given.
    pub fn open_on(dir: &Path, backend: ChunkBackend) -> Result<Self> {
        let db = resize::open(dir)?;
        let trees = TREES
            .iter()
            .enumerate()
            .map(|(i, (t, name))| {
                debug_assert_eq!(*t as usize, i);
                db.open_tree(name)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let chunk_dir = dir.join("chunks");
        std::fs::create_dir_all(&chunk_dir)?;
        // sled 0.34.7 writes its `conf` once, in place and without an
        // fsync, and never syncs the names in its folder: a power cut
        // could leave a torn `conf` (which sled refuses) or no store at
        // all. Both are made durable here, before anything is acknowledged
        // (found by the power-cut harness, tests/it/powercut.rs).
        std::fs::File::open(dir.join("conf"))?.sync_all()?;
        custos_durable::sync_dir(&chunk_dir)?;
        custos_durable::sync_dir(dir)?;
        let local = FileChunks::new(chunk_dir.clone());
        let mut adopting = None;
        // Files on this disk are this vault's by where they are; a bucket
        // is checked by `claim_chunk_store`.
        let mut claimed = true;
        let bucket = match &backend {
            ChunkBackend::Local => None,
            ChunkBackend::S3(location) => Some(location.bucket.clone()),
        };
        let chunks: Arc<dyn ChunkStore> = match backend {
            ChunkBackend::Local => {
                if let Some(record) = read_chunk_storage(dir)? {
                    return Err(StoreError::Misplaced(format!(
                        "this vault's chunks are in the S3 bucket {:?}: serve it with storage = \"s3\" and \
                         the s3_* settings",
                        record.bucket
                    )));
                }
                Arc::new(local)
            }
            ChunkBackend::S3(location) => {
                let wanted = ChunkStorageRecord {
                    storage: "s3".into(),
                    bucket: location.bucket.clone(),
                };
                match read_chunk_storage(dir)? {
                    Some(record) if record == wanted => {}
                    Some(record) => {
                        return Err(StoreError::Misplaced(format!(
                            "this vault's chunks are in the S3 bucket {:?}, not {:?}",
                            record.bucket, wanted.bucket
                        )))
                    }
                    None if !local.list()?.is_empty() || names_large_chunks(&trees)? => {
                        return Err(StoreError::Misplaced(
                            "this vault's chunks are on this disk (or its records name chunks that are \
                             not): copy them to the bucket first with custos storage migrate --to s3"
                                .into(),
                        ))
                    }
                    // Recorded once the bucket is claimed for this vault.
                    None => adopting = Some(wanted),
                }
                claimed = false;
                Arc::new(s3::S3Chunks::new(&location)?)
            }
        };
        Ok(Store {
            db,
            trees,
            chunks,
            bucket,
            chunks_up: std::sync::atomic::AtomicBool::new(true),
            last_probe: std::sync::Mutex::new(None),
            claim: std::sync::Mutex::new(Claim {
                checked: claimed,
                adopting,
            }),
            chunk_dir,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            group: Arc::new(GroupFlush {
                started: Default::default(),
                done: Default::default(),
                log_file: std::fs::File::open(dir.join("db"))?,
                high_water: std::sync::Mutex::new(high_water::HighWater::open(dir)?),
                latency: Default::default(),
            }),
            chunk_gate: Arc::new(tokio::sync::RwLock::new(())),
            // A crash may have left chunks of a PATCH that never counted.
            garbage: std::sync::atomic::AtomicBool::new(true),
            upload_hashes: Default::default(),
        })
    }

    /// The S3 bucket the store keeps its large chunks in; `None`: this
    /// disk.
    pub fn chunk_bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }

    /// Check, before the store is served, that its chunk store holds the
    /// chunks of the vault whose log key is `vault` and of no other: a
    /// bucket marked for another vault, or an unmarked one that this store
    /// has used before (another cluster or endpoint), is refused. A bucket
    /// taken for the first time is marked, then recorded in the data
    /// directory. Blocking (a request or two to the bucket).
    pub fn claim_chunk_store(&self, vault: &str) -> Result<()> {
        let mut claim = self.claim.lock().expect("the claim lock is never poisoned");
        if claim.checked {
            return Ok(());
        }
        self.chunks.claim_for(vault, claim.adopting.is_some())?;
        if let Some(record) = claim.adopting.take() {
            write_chunk_storage(self.db_dir(), &record)?;
        }
        claim.checked = true;
        Ok(())
    }

    /// Whether [`Store::claim_chunk_store`] has passed.
    fn chunk_store_claimed(&self) -> bool {
        self.claim.lock().expect("the claim lock is never poisoned").checked
    }

    /// The store's folder (`DATA/db`).
    fn db_dir(&self) -> &Path {
        self.chunk_dir.parent().expect("the chunk folder is inside the store's")
    }

    /// A tree: the store's own business; callers use the domain methods.
    fn tree(&self, t: T) -> &sled::Tree {
        &self.trees[t as usize]
    }

    /// The raw sled tree, for what no domain method may do: tests and
    /// tools that damage a store on purpose to show the damage is caught.
    /// Anything written here bypasses the log, its chains and its flush.
    #[doc(hidden)]
    pub fn danger_raw_tree(&self, t: T) -> &sled::Tree {
        self.tree(t)
    }

    /// Read and decode a JSON record.
    pub fn get_json<V: DeserializeOwned>(&self, t: T, key: impl AsRef<[u8]>) -> Result<Option<V>> {
        match self.tree(t).get(key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Decode(e.to_string())),
        }
    }

    /// All JSON records under a key prefix.
    pub fn scan_json<V: DeserializeOwned>(&self, t: T, prefix: impl AsRef<[u8]>) -> Result<Vec<V>> {
        self.tree(t)
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Decode(e.to_string()))
            })
            .collect()
    }

    /// The second halves `b` of the [`pair_key`]s `a/b` in `t` whose first
    /// half is `a`: a case's holders, or its open uploads.
    pub fn paired_with(&self, t: T, a: &str) -> Result<Vec<String>> {
        let prefix = pair_key(a, "");
        self.tree(t)
            .scan_prefix(&prefix)
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[prefix.len()..]).into_owned()))
            .collect()
    }

    /// SHA-256 over every record of every tree but the replay nonces, and
    /// the name and size of every chunk file: two equal digests mean
    /// nothing was written in between. Tests use it to show that refused
    /// requests leave the store as it was. Nonces are left out because an
    /// authenticated request spends its nonce even when it is then refused,
    /// so that it cannot be replayed once it would pass.
    pub fn digest(&self) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        for (t, name) in TREES.into_iter().filter(|(t, _)| *t != T::Nonces) {
            h.update((name.len() as u64).to_be_bytes());
            h.update(name);
            for kv in self.tree(t).iter() {
                let (k, v) = kv?;
                for part in [&k, &v] {
                    h.update((part.len() as u64).to_be_bytes());
                    h.update(part);
                }
            }
        }
        let mut files = self.large_chunks()?;
        files.sort();
        for (name, len) in files {
            h.update((name.len() as u64).to_be_bytes());
            h.update(name.as_bytes());
            h.update(len.to_be_bytes());
        }
        Ok(h.finalize().into())
    }

    // ---- whole trees, for backups and the checks of a restore ----

    /// Every record of `t`, key and value, in key order.
    pub fn records(&self, t: T) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.tree(t)
            .iter()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(StoreError::from))
    }

    /// Every key of `t`, in order.
    pub fn keys(&self, t: T) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.tree(t)
            .iter()
            .keys()
            .map(|k| k.map(|k| k.to_vec()).map_err(StoreError::from))
    }

    /// How many records `t` holds.
    pub fn record_count(&self, t: T) -> usize {
        self.tree(t).len()
    }

    /// The record of `t` at `key`.
    pub fn record(&self, t: T, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(t).get(key)?.map(|v| v.to_vec()))
    }

    /// Whether `t` holds `key`.
    pub fn has_record(&self, t: T, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.tree(t).contains_key(key)?)
    }

    /// Write the records `next` yields into `t`, a thousand at a time,
    /// outside the log's writer and its transactions: for a restore, into
    /// a store nothing serves yet.
    pub fn import<E: From<StoreError>>(
        &self,
        t: T,
        mut next: impl FnMut() -> std::result::Result<Option<(Vec<u8>, Vec<u8>)>, E>,
    ) -> std::result::Result<(), E> {
        let tree = self.tree(t);
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        while let Some((k, v)) = next()? {
            batch.insert(k, v);
            pending += 1;
            if pending == 1000 {
                tree.apply_batch(std::mem::take(&mut batch)).map_err(StoreError::from)?;
                pending = 0;
            }
        }
        tree.apply_batch(batch).map_err(StoreError::from)?;
        Ok(())
    }

    /// Apply a batch atomically.
    pub fn apply(&self, _guard: &WriterGuard<'_>, batch: Batch) -> Result<()> {
        self.apply_unlocked(batch)
    }

    fn apply_unlocked(&self, batch: Batch) -> Result<()> {
        let trees: &[sled::Tree] = &self.trees;
        trees
            .transaction(|views| {
                for (t, k, v) in &batch.ops {
                    match v {
                        Some(v) => views[*t as usize].insert(k.as_slice(), v.as_slice())?,
                        None => views[*t as usize].remove(k.as_slice())?,
                    };
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StoreError::Sled(e),
                TransactionError::Abort(()) => unreachable!("the closure never aborts"),
            })
    }

    // ---- replay protection ----

    /// Record a nonce until `expires`; false if it was seen before.
    pub fn remember_nonce(&self, key_id: &str, nonce: &str, expires: i64) -> Result<bool> {
        let key = pair_key(key_id, nonce);
        let fresh = self
            .tree(T::Nonces)
            .compare_and_swap(key, None as Option<&[u8]>, Some(&expires.to_be_bytes()[..]))?
            .is_ok();
        Ok(fresh)
    }

    /// Forget nonces whose signatures have expired.
    pub fn prune_nonces(&self, now: i64) -> Result<usize> {
        let mut removed = 0;
        for kv in self.tree(T::Nonces).iter() {
            let (k, v) = kv?;
            let exp = <[u8; 8]>::try_from(v.as_ref()).map(i64::from_be_bytes).unwrap_or(0);
            if exp < now {
                self.tree(T::Nonces).remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Whether any object or upload refers to a chunk that is not in sled
/// (a large one).
fn names_large_chunks(trees: &[sled::Tree]) -> Result<bool> {
    let small = &trees[T::Chunks as usize];
    for t in [T::ObjectChunks, T::UploadChunks] {
        for v in trees[t as usize].iter().values() {
            if !small.contains_key(v?)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Where the store in `dir` says its large chunks are; `None`: on this
/// disk.
fn read_chunk_storage(dir: &Path) -> Result<Option<ChunkStorageRecord>> {
    match std::fs::read(dir.join(CHUNK_STORAGE_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Decode(format!("{CHUNK_STORAGE_FILE}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Record, durably, that the store in `dir` keeps its large chunks in
/// `record`'s bucket from now on.
fn write_chunk_storage(dir: &Path, record: &ChunkStorageRecord) -> Result<()> {
    let bytes = serde_json::to_vec(record).expect("serialisable");
    custos_durable::write_atomically(&dir.join(CHUNK_STORAGE_FILE), &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests;
