//! Persistence on sled 0.34.7: content-addressed ciphertext chunks (behind the
//! narrow [`ChunkStore`] trait), object manifests, cases, envelopes, the
//! registry, uploads, replay nonces, and the custody log's entries, tree nodes
//! and checkpoint. Multi-tree changes are one sled transaction; callers
//! acknowledge only after [`Store::flush`]. Decides nothing about policy.

mod high_water;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::custody::checkpoint::LogSigner;
use crate::custody::merkle::{self, Hash, ProofError};
use crate::custody::{event_hash, now_rfc3339, EventDraft, Receipt};
use crate::identity::KeyId;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Size of the stored ciphertext chunks. Uploads are cut at this size, so
/// memory per request stays bounded whatever the object size. 1 MiB keeps
/// per-chunk overhead in sled below 0.1% and one chunk well inside sled's
/// comfortable value size.
pub const CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// sled page cache. sled's resident memory runs several times this figure,
/// so it is kept small; chunks are read once per download anyway.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

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
    /// key id -> [`crate::identity::Principal`].
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
}

/// Every tree and its name in sled.
pub const TREES: [(T, &str); 19] = [
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
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
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

/// Where a case's chain ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainHead {
    /// Sequence number of the last event.
    pub seq: u64,
    /// Hex SHA-256 of its bytes.
    pub hash: String,
}

/// A stored object: its size and number of chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectManifest {
    /// Ciphertext size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
}

/// An object's membership of a case, as stored and as clients see it.
pub use custos_core::wire::CaseObject;

/// A submitter's public keys as registered at intake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmitterKey {
    /// Key id of the signing key.
    pub key_id: KeyId,
    /// Ed25519 key, base64.
    pub verifying_key: String,
    /// age recipient.
    pub recipient: String,
}

/// A case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseRecord {
    /// Case id.
    pub case_id: String,
    /// Creation time.
    pub created: String,
    /// `open` (or `withdrawn` once that exists).
    pub status: String,
    /// age recipient all content is encrypted to.
    pub case_recipient: String,
    /// The submitter's keys (an unordered set).
    pub submitter_keys: Vec<SubmitterKey>,
    /// Encrypted note about the keys, base64, opaque to the server.
    #[serde(default)]
    pub note: Option<String>,
    /// Set when a submitter key withdrew the complaint.
    #[serde(default)]
    pub withdrawal: Option<Withdrawal>,
}

/// A withdrawal: when, by which of the case's submitter keys, and the
/// encrypted reason. The server cannot tell a duress key from the real one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Withdrawal {
    /// Time, RFC 3339.
    pub time: String,
    /// The submitter key that signed it.
    pub key_id: KeyId,
    /// Reason encrypted to the case key, base64.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A registry entry: the principal and the log index of the event that
/// registered it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistryRecord {
    /// The principal.
    pub principal: crate::identity::Principal,
    /// Index of its `principal_added` event.
    pub index: u64,
}

/// An upload in progress (tus).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Case the object will join.
    pub case_id: String,
    /// Declared total length.
    pub length: u64,
    /// Bytes received so far.
    pub offset: u64,
    /// Chunks stored so far.
    pub chunks: u64,
    /// Who created the upload; only they may continue it.
    pub owner: KeyId,
    /// Unix time of creation.
    pub created: i64,
    /// Unix time of the last accepted PATCH (0 before the first).
    #[serde(default)]
    pub touched: i64,
}

/// How long an upload may sit without progress before it is dropped: a
/// week, so that someone cut off can come back days later, while abandoned
/// partial ciphertext does not pile up for ever.
pub const UPLOAD_TTL_SECS: i64 = 7 * 24 * 3600;

impl UploadRecord {
    /// When this upload expires unless it moves on (Unix time).
    pub fn expires(&self) -> i64 {
        self.created.max(self.touched) + UPLOAD_TTL_SECS
    }
}

/// The narrow interface of the ciphertext chunk store, so that a filesystem
/// or S3 backend can replace sled for chunks in large deployments.
pub trait ChunkStore: Send + Sync {
    /// Store a chunk under its SHA-256; storing the same chunk twice is a no-op.
    fn put(&self, hash: &Hash, bytes: &[u8]) -> Result<()>;
    /// Fetch a chunk; the caller re-hashes it.
    fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>>;
}

/// Chunks up to this size stay in sled's `chunks` tree: a statement, a
/// form or a label is written with the request's other records and made
/// durable by the same shared flush (group commit), instead of costing a
/// file, two fsyncs and a folder entry of its own.
pub const SMALL_CHUNK: usize = 64 * 1024;

/// Ciphertext chunks larger than [`SMALL_CHUNK`] as files, one per chunk,
/// named by its SHA-256 under a two-hex-digit fan-out in `chunks/` of the
/// store's folder. Measured: with every chunk inside sled, the server's
/// resident memory grew with everything it stored (peak 4.2 GiB during a
/// 4 GiB upload, `bench/run.sh`); as files they live in the kernel's page
/// cache instead. Reads look in both places, so a store written by an
/// earlier version, which kept all chunks in sled, still reads.
struct FileChunks {
    dir: PathBuf,
    small: sled::Tree,
}

/// Where chunk `hash` lives under the chunk folder `dir`.
fn chunk_path(dir: &Path, hash: &Hash) -> PathBuf {
    let name = hex::encode(hash);
    dir.join(&name[..2]).join(name)
}

impl FileChunks {
    fn path(&self, hash: &Hash) -> PathBuf {
        chunk_path(&self.dir, hash)
    }
}

/// Make a folder's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl ChunkStore for FileChunks {
    fn put(&self, hash: &Hash, bytes: &[u8]) -> Result<()> {
        if bytes.len() <= SMALL_CHUNK {
            // Durable with the caller's next flush, which precedes any reply.
            self.small.insert(hash, bytes)?;
            return Ok(());
        }
        let path = self.path(hash);
        if path.exists() {
            return Ok(());
        }
        let fan = path.parent().expect("chunk paths have a folder");
        if !fan.exists() {
            std::fs::create_dir_all(fan)?;
            sync_dir(&self.dir)?;
        }
        // Written under a temporary name, flushed, then renamed: a crash
        // leaves the whole chunk or none, never a torn one under its name.
        let tmp = fan.join(format!(
            ".{}.{}",
            hex::encode(&hash[..8]),
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_data()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        sync_dir(fan)?;
        Ok(())
    }
    fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.small.get(hash)? {
            return Ok(Some(v.to_vec()));
        }
        match std::fs::read(self.path(hash)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Proof that the caller holds the log writer lock.
pub type WriterGuard<'a> = tokio::sync::MutexGuard<'a, ()>;

/// The vault's store.
pub struct Store {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    chunks: Box<dyn ChunkStore>,
    chunk_dir: PathBuf,
    writer: Arc<tokio::sync::Mutex<()>>,
    group: Arc<GroupFlush>,
    /// Held shared by whoever writes chunks that nothing refers to yet (a
    /// PATCH, until its chunk list is applied), and exclusively by the
    /// chunk collector, so it never takes a chunk about to be referenced.
    chunk_gate: tokio::sync::RwLock<()>,
    /// Set when something may have left chunks without a reference.
    garbage: std::sync::atomic::AtomicBool,
}

/// The state of group commit (see [`Store::flush`]): how many flushes have
/// started, and the number of the last one that finished.
struct GroupFlush {
    started: std::sync::atomic::AtomicU64,
    done: tokio::sync::Mutex<u64>,
    /// sled's log file (`db` in the store's folder), to fdatasync.
    log_file: std::fs::File,
    /// Where each flush records the checkpoint it made durable.
    high_water: std::sync::Mutex<high_water::HighWater>,
    /// How long each flush took, from taking the writer lock to the mark.
    latency: crate::metrics::Histogram,
}

fn node_key(level: u32, index: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&level.to_be_bytes());
    k[4..].copy_from_slice(&index.to_be_bytes());
    k
}

/// Key of item `index` under a 32-byte or textual prefix.
pub fn indexed_key(prefix: &[u8], index: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Key of a chain's event: `case/` then the sequence number, big-endian,
/// so a prefix scan returns the chain in order.
fn chain_key(case: &str, seq: u64) -> Vec<u8> {
    indexed_key(format!("{case}/").as_bytes(), seq)
}

/// Key `a/b` for two-part keys.
pub fn pair_key(a: &str, b: &str) -> Vec<u8> {
    format!("{a}/{b}").into_bytes()
}

/// Decode a hex object id into its hash bytes.
pub fn object_hash(object_id: &str) -> Option<Hash> {
    let raw = hex::decode(object_id).ok()?;
    Hash::try_from(raw.as_slice()).ok()
}

impl Store {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let started = std::time::Instant::now();
        let db = loop {
            match sled::Config::new().path(dir).cache_capacity(CACHE_CAPACITY).open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other?,
            }
        };
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
        let chunks = Box::new(FileChunks {
            dir: chunk_dir.clone(),
            small: trees[T::Chunks as usize].clone(),
        });
        Ok(Store {
            db,
            trees,
            chunks,
            chunk_dir,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            group: Arc::new(GroupFlush {
                started: Default::default(),
                done: Default::default(),
                log_file: std::fs::File::open(dir.join("db"))?,
                high_water: std::sync::Mutex::new(high_water::HighWater::open(dir)?),
                latency: Default::default(),
            }),
            chunk_gate: tokio::sync::RwLock::new(()),
            // A crash may have left chunks of a PATCH that never counted.
            garbage: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// A tree, for reads and for single-key writes outside the log.
    pub fn tree(&self, t: T) -> &sled::Tree {
        &self.trees[t as usize]
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

    /// Take the single-writer lock of the log and of all multi-tree changes.
    pub async fn writer(&self) -> WriterGuard<'_> {
        self.writer.lock().await
    }

    /// Make everything written so far durable (group commit). One flush
    /// runs at a time; callers that arrive while it runs wait for it to end
    /// and then share the next one, so a burst of requests costs one
    /// fsync per batch, not one per request.
    ///
    /// sled's part of the flush holds the writer lock, so no sled
    /// transaction runs beside it, and is its synchronous flush on a
    /// blocking thread: sled 0.34.7's `flush_async` deadlocks under
    /// concurrent callers (sled issue 1308), and a flush and a transaction
    /// waiting on each other hung 16 concurrent clients in
    /// `benches/small.rs`. The blocking task runs to the end even if the
    /// request that started it is dropped.
    pub async fn flush(&self) -> Result<()> {
        let mine = self.group.started.load(std::sync::atomic::Ordering::SeqCst);
        let (db, writer, group) = (self.db.clone(), self.writer.clone(), self.group.clone());
        let meta = self.tree(T::Meta).clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut done = group.done.blocking_lock();
            // A flush that started after this caller's writes has ended.
            if *done > mine {
                return Ok(());
            }
            let writer = writer.blocking_lock();
            let began = std::time::Instant::now();
            let this = group.started.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            db.flush()?;
            // The checkpoint this flush covers; a later one may be written
            // as soon as the lock is released.
            let note = meta.get(CHECKPOINT_KEY)?;
            drop(writer);
            // sled makes its log stable with sync_file_range on Linux, which
            // neither flushes the drive's write cache nor the file's
            // metadata; one fdatasync per group makes the flush a real one.
            // Writers may go on meanwhile: what they write waits for the
            // next flush.
            group.log_file.sync_data()?;
            // Only once sled's copy is stable may the mark move: a mark
            // ahead of the store would refuse a healthy vault.
            if let Some(note) = note {
                let note = std::str::from_utf8(&note)
                    .map_err(|_| StoreError::Integrity("stored checkpoint is not text".into()))?;
                group.high_water.lock().expect("flushes do not panic").record(note)?;
            }
            group.latency.observe(began.elapsed());
            *done = this;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("flush task failed: {e}"))))?
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
        let mut files = Vec::new();
        for entry in self.chunk_files()? {
            files.push((entry.path(), entry.metadata()?.len()));
        }
        files.sort();
        for (path, len) in files {
            let rel = path
                .strip_prefix(&self.chunk_dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            h.update((rel.len() as u64).to_be_bytes());
            h.update(rel.as_bytes());
            h.update(len.to_be_bytes());
        }
        Ok(h.finalize().into())
    }

    /// How many group flushes have started since the store was opened.
    pub fn flush_count(&self) -> u64 {
        self.group.started.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How long group flushes have taken (for `/metrics`).
    pub fn flush_latency(&self) -> &crate::metrics::Histogram {
        &self.group.latency
    }

    /// Make everything written so far durable, from synchronous code.
    pub fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        self.group.log_file.sync_data()?;
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

    // ---- chunks and objects ----

    /// Store one chunk, returning its hash.
    pub fn put_chunk(&self, bytes: &[u8]) -> Result<Hash> {
        let hash: Hash = Sha256::digest(bytes).into();
        self.chunks.put(&hash, bytes)?;
        Ok(hash)
    }

    /// Store a chunk whose SHA-256 the caller has already checked (a PATCH
    /// body that is exactly one chunk, verified against its signed
    /// `Content-Digest`), saving a pass over the bytes. A wrong `hash`
    /// would file the chunk under another address; reads re-hash, so it
    /// would surface as an integrity error, never as wrong content.
    pub fn put_chunk_prehashed(&self, hash: Hash, bytes: &[u8]) -> Result<Hash> {
        debug_assert_eq!(<[u8; 32]>::from(Sha256::digest(bytes)), hash);
        self.chunks.put(&hash, bytes)?;
        Ok(hash)
    }

    /// Permission to write chunks that nothing refers to yet; hold it until
    /// the references are applied.
    pub async fn chunk_writes(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.chunk_gate.read().await
    }

    /// Note that chunks may have lost their last reference (an upload was
    /// terminated or expired).
    pub fn mark_garbage(&self) {
        self.garbage.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether [`Store::collect_chunks`] has anything to do.
    pub fn has_garbage(&self) -> bool {
        self.garbage.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Delete every chunk that no object and no upload refers to, and any
    /// temporary file a crash left; returns how many went. Chunks are
    /// content-addressed and may be shared, so a chunk goes only when
    /// nothing at all refers to it. References are read under the writer
    /// lock (a commit moves an upload's references to its object in one
    /// transaction), and no chunk is written meanwhile (the chunk gate).
    pub async fn collect_chunks(&self) -> Result<usize> {
        let _gate = self.chunk_gate.write().await;
        self.garbage.store(false, std::sync::atomic::Ordering::SeqCst);
        let collected = match self.live_chunks().await {
            Ok(live) => self.remove_chunks_except(&live),
            Err(e) => Err(e),
        };
        if collected.is_err() {
            // Try again at the next tick.
            self.mark_garbage();
        }
        collected
    }

    /// Every chunk an object or an upload refers to, read under the writer
    /// lock.
    async fn live_chunks(&self) -> Result<std::collections::HashSet<Hash>> {
        let _writer = self.writer().await;
        let mut live = std::collections::HashSet::new();
        for t in [T::ObjectChunks, T::UploadChunks] {
            for v in self.tree(t).iter().values() {
                live.insert(
                    Hash::try_from(v?.as_ref())
                        .map_err(|_| StoreError::Integrity("chunk reference is damaged".into()))?,
                );
            }
        }
        Ok(live)
    }

    /// Delete every chunk and temporary file not in `live`.
    fn remove_chunks_except(&self, live: &std::collections::HashSet<Hash>) -> Result<usize> {
        let mut removed = 0;
        for key in self.tree(T::Chunks).iter().keys() {
            let key = key?;
            if !Hash::try_from(key.as_ref()).is_ok_and(|h| live.contains(&h)) {
                self.tree(T::Chunks).remove(key)?;
                removed += 1;
            }
        }
        for entry in self.chunk_files()? {
            let name = entry.file_name();
            let referenced = hex::decode(name.as_encoded_bytes())
                .ok()
                .and_then(|b| Hash::try_from(b.as_slice()).ok())
                .is_some_and(|h| live.contains(&h));
            if !referenced {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every file in the chunk folders (`chunks/XX/`): chunks, and the
    /// temporary files of writes a crash cut short.
    fn chunk_files(&self) -> Result<Vec<std::fs::DirEntry>> {
        let mut files = Vec::new();
        for fan in std::fs::read_dir(&self.chunk_dir)? {
            let fan = fan?;
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(fan.path())? {
                files.push(entry?);
            }
        }
        Ok(files)
    }

    /// The file a chunk is kept in (for operators' tools and the tests
    /// that damage a store on purpose).
    pub fn chunk_file(&self, hash: &Hash) -> PathBuf {
        chunk_path(&self.chunk_dir, hash)
    }

    /// Fetch a chunk and check it against its address.
    pub fn get_chunk(&self, hash: &Hash) -> Result<Vec<u8>> {
        let bytes = self
            .chunks
            .get(hash)?
            .ok_or_else(|| StoreError::Integrity(format!("chunk {} is missing", hex::encode(hash))))?;
        if Sha256::digest(&bytes).as_slice() != hash {
            return Err(StoreError::Integrity(format!(
                "chunk {} does not match its hash",
                hex::encode(hash)
            )));
        }
        Ok(bytes)
    }

    /// The chunk hashes of a sequence (an upload or an object), in order.
    pub fn chunk_at(&self, t: T, prefix: &[u8], index: u64) -> Result<Hash> {
        let v = self
            .tree(t)
            .get(indexed_key(prefix, index))?
            .ok_or_else(|| StoreError::Integrity("chunk list has a gap".into()))?;
        Hash::try_from(v.as_ref()).map_err(|_| StoreError::Integrity("chunk reference is damaged".into()))
    }

    /// Hash the whole of a chunk sequence, in one pass: chunks are not
    /// re-checked one by one, because a damaged chunk changes the result
    /// anyway. A caller whose expected hash differs runs
    /// [`Store::check_sequence`] to tell damage from a wrong claim.
    pub fn hash_sequence(&self, t: T, prefix: &[u8], chunks: u64) -> Result<(String, u64)> {
        let mut h = Sha256::new();
        let mut len = 0u64;
        for i in 0..chunks {
            let hash = self.chunk_at(t, prefix, i)?;
            let chunk = self
                .chunks
                .get(&hash)?
                .ok_or_else(|| StoreError::Integrity(format!("chunk {} is missing", hex::encode(hash))))?;
            h.update(&chunk);
            len += chunk.len() as u64;
        }
        Ok((hex::encode(h.finalize()), len))
    }

    /// Re-check every chunk of a sequence against its address.
    pub fn check_sequence(&self, t: T, prefix: &[u8], chunks: u64) -> Result<()> {
        for i in 0..chunks {
            self.get_chunk(&self.chunk_at(t, prefix, i)?)?;
        }
        Ok(())
    }

    /// Read chunk `index` of an object, re-hashed.
    pub fn object_chunk(&self, object: &Hash, index: u64) -> Result<Vec<u8>> {
        self.get_chunk(&self.chunk_at(T::ObjectChunks, object, index)?)
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

    // ---- custody log ----

    /// Number of entries in the log.
    pub fn log_size(&self) -> Result<u64> {
        Ok(match self.tree(T::Meta).get("size")? {
            None => 0,
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Integrity("log size record".into()))?,
            ),
        })
    }

    /// The latest signed checkpoint note.
    pub fn checkpoint(&self) -> Result<Option<String>> {
        Ok(self
            .tree(T::Meta)
            .get(CHECKPOINT_KEY)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stored bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(T::Log).get(index.to_be_bytes())?.map(|v| v.to_vec()))
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let v = self
            .tree(T::Nodes)
            .get(node_key(level, index))?
            .ok_or_else(|| StoreError::Integrity(format!("log tree node ({level}, {index}) is missing")))?;
        Hash::try_from(v.as_ref()).map_err(|_| StoreError::Integrity("log tree node is damaged".into()))
    }

    /// Root of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash> {
        merkle::root(size, &mut |l, i| self.node(l, i))
    }

    /// The log indices of a case's events (or the vault's), in chain order,
    /// up to but not including log index `size`.
    pub fn chain_indices(&self, case: &str, size: u64) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for kv in self.tree(T::Chains).scan_prefix(format!("{case}/")) {
            let (_, v) = kv?;
            let index = u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Integrity("chain index is not 8 bytes".into()))?,
            );
            if index >= size {
                break;
            }
            out.push(index);
        }
        Ok(out)
    }

    /// Inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Result<Vec<Hash>, ProofError>> {
        merkle::inclusion_proof(index, size, &mut |l, i| self.node(l, i))
    }

    /// Consistency proof between two sizes.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Result<Vec<Hash>, ProofError>> {
        merkle::consistency_proof(size1, size2, &mut |l, i| self.node(l, i))
    }

    /// Append events (and apply `batch` with them, atomically), sign the new
    /// checkpoint, and return one receipt per event. The caller flushes
    /// before acknowledging.
    pub fn append(
        &self,
        guard: &WriterGuard<'_>,
        mut batch: Batch,
        drafts: Vec<EventDraft>,
        signer: &LogSigner,
    ) -> Result<Vec<Receipt>> {
        let start = self.log_size()?;
        let mut size = start;
        let mut new_nodes: HashMap<(u32, u64), Hash> = HashMap::new();
        let mut heads: HashMap<String, ChainHead> = HashMap::new();
        let mut events = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let head = match heads.get(&draft.case) {
                Some(h) => Some(h.clone()),
                None => self.get_json::<ChainHead>(T::Heads, &draft.case)?,
            };
            let (seq, prev) = match head {
                None => (0, None),
                Some(h) => (h.seq + 1, Some(h.hash)),
            };
            let case = draft.case.clone();
            let bytes = serde_json::to_vec(&draft.place(seq, prev, now_rfc3339())).expect("events always serialise");
            let nodes = merkle::nodes_completed_by(size, merkle::leaf_hash(&bytes), &mut |l, i| match new_nodes
                .get(&(l, i))
            {
                Some(h) => Ok(*h),
                None => self.node(l, i),
            })?;
            for (l, i, h) in nodes {
                new_nodes.insert((l, i), h);
                batch.put(T::Nodes, node_key(l, i), h);
            }
            let head = ChainHead {
                seq,
                hash: event_hash(&bytes),
            };
            batch.put_json(T::Heads, case.as_bytes(), &head);
            batch.put(T::Chains, chain_key(&case, seq), size.to_be_bytes());
            heads.insert(case, head);
            batch.put(T::Log, size.to_be_bytes(), bytes.clone());
            events.push((size, bytes));
            size += 1;
        }
        let root = merkle::root(size, &mut |l, i| match new_nodes.get(&(l, i)) {
            Some(h) => Ok(*h),
            None => self.node(l, i),
        })?;
        let note = signer.sign(size, root);
        batch.put(T::Meta, "size", size.to_be_bytes());
        batch.put(T::Meta, CHECKPOINT_KEY, note.as_bytes());
        self.apply(guard, batch)?;
        events
            .into_iter()
            .map(|(index, bytes)| {
                let proof = self
                    .inclusion_proof(index, size)?
                    .map_err(|e| StoreError::Integrity(e.to_string()))?;
                Ok(Receipt {
                    index,
                    event: B64.encode(bytes),
                    proof: proof.iter().map(|h| B64.encode(h)).collect(),
                    checkpoint: note.clone(),
                })
            })
            .collect()
    }

    /// Compare the store with the high-water mark (see [`high_water`]):
    /// holding fewer entries than the last checkpoint made durable, or other
    /// entries at that size, means sled lost acknowledged data.
    fn check_high_water(&self, signer: &LogSigner, size: u64) -> Result<()> {
        let mut mark = self.group.high_water.lock().expect("flushes do not panic");
        let Some(note) = mark.note().map(str::to_owned) else {
            // A store made before the mark existed: start it now.
            if let Some(note) = self.checkpoint()? {
                mark.record(&note)?;
            }
            return Ok(());
        };
        let durable = signer
            .verifier()
            .verify(&note)
            .map_err(|e| StoreError::Integrity(format!("the high-water checkpoint does not verify: {e}")))?;
        let lost = || {
            StoreError::Integrity(format!(
                "the store holds {size} log entries, but a checkpoint of {} entries was made durable \
                 and may have been handed out: sled's files are damaged and it dropped acknowledged \
                 data when it recovered. Do not serve or change this store; keep a copy of it and \
                 restore the vault from a backup (see SECURITY.md, \"If the vault will not start\")",
                durable.size
            ))
        };
        if size < durable.size {
            return Err(lost());
        }
        if self.root(durable.size)? != durable.root {
            return Err(StoreError::Integrity(format!(
                "the log's first {} entries no longer match the checkpoint made durable for them: \
                 the store was altered or damaged. Do not serve it; restore from a backup \
                 (see SECURITY.md, \"If the vault will not start\")",
                durable.size
            )));
        }
        Ok(())
    }

    /// Build, once, the indexes a store made before they existed lacks:
    /// the retired principals (from the log's `principal_removed` events,
    /// so building it changes nothing the log says) and each case's open
    /// uploads (from the upload records).
    pub fn build_missing_indexes(&self) -> Result<()> {
        self.index_retired_principals()?;
        const UPLOADS_DONE: &str = "case_uploads_indexed";
        if !self.tree(T::Meta).contains_key(UPLOADS_DONE)? {
            for kv in self.tree(T::Uploads).iter() {
                let (id, record) = kv?;
                let u: UploadRecord = serde_json::from_slice(&record).map_err(|e| StoreError::Decode(e.to_string()))?;
                self.tree(T::CaseUploads)
                    .insert(pair_key(&u.case_id, &String::from_utf8_lossy(&id)), &[])?;
            }
            self.tree(T::Meta).insert(UPLOADS_DONE, &[])?;
        }
        Ok(())
    }

    /// See [`Store::build_missing_indexes`].
    fn index_retired_principals(&self) -> Result<()> {
        const DONE: &str = "retired_indexed";
        if self.tree(T::Meta).contains_key(DONE)? {
            return Ok(());
        }
        let size = self.log_size()?;
        for index in self.chain_indices(crate::custody::VAULT_CASE, size)? {
            let bytes = self
                .entry(index)?
                .ok_or_else(|| StoreError::Integrity(format!("log entry {index} is missing")))?;
            let event: crate::custody::Event =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Decode(e.to_string()))?;
            if event.action == crate::custody::Action::PrincipalRemoved {
                if let Some(key) = event.details["key_id"].as_str() {
                    self.tree(T::Retired).insert(key, &index.to_be_bytes())?;
                }
            }
        }
        self.tree(T::Meta).insert(DONE, &[])?;
        Ok(())
    }

    /// Startup check: the stored tree must match the stored checkpoint and
    /// every entry must be present, or the server refuses to serve.
    pub fn check_log(&self, signer: &LogSigner) -> Result<()> {
        let size = self.log_size()?;
        self.check_high_water(signer, size)?;
        if size == 0 {
            return Ok(());
        }
        let note = self
            .checkpoint()?
            .ok_or_else(|| StoreError::Integrity("the log has entries but no checkpoint".into()))?;
        let cp = signer
            .verifier()
            .verify(&note)
            .map_err(|e| StoreError::Integrity(format!("stored checkpoint: {e}")))?;
        if cp.size != size || cp.root != self.root(size)? {
            return Err(StoreError::Integrity(
                "stored log tree does not match the signed checkpoint".into(),
            ));
        }
        if self.tree(T::Log).len() as u64 != size {
            return Err(StoreError::Integrity(
                "log entry count does not match the checkpoint".into(),
            ));
        }
        // Every interior node must be the hash of its children, so no proof
        // the server hands out is built on a damaged node. Whether each leaf
        // matches its entry's bytes is what auditors and receipts check, in
        // the open, rather than the server deciding it alone.
        for i in 0..size {
            let leaf = self.node(0, i)?;
            for (level, index, hash) in merkle::nodes_completed_by(i, leaf, &mut |l, j| self.node(l, j))? {
                if self.node(level, index)? != hash {
                    return Err(StoreError::Integrity(format!(
                        "log tree node ({level}, {index}) does not match its children"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custody::audit::{verify_receipt, LogAuditor};
    use crate::custody::{Action, VAULT_ACTOR, VAULT_CASE};
    use ed25519_dalek::SigningKey;

    fn draft(case: &str) -> EventDraft {
        EventDraft {
            case: case.into(),
            actor: VAULT_ACTOR.into(),
            action: Action::CheckpointAnchored,
            objects: vec![],
            details: serde_json::Value::Null,
            request: None,
        }
    }

    /// A store from before the high-water mark gets one from its own
    /// checkpoint when it is first checked (the crash tests hold stores to
    /// their mark).
    #[tokio::test]
    async fn a_store_without_a_mark_gets_one_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LogSigner::new("test.example", SigningKey::from_bytes(&[1; 32])).unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let g = store.writer().await;
            store.append(&g, Batch::default(), vec![draft("c1")], &signer).unwrap();
            drop(g);
            store.flush().await.unwrap();
        }
        std::fs::remove_file(dir.path().join("high-water")).unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.check_log(&signer).unwrap();
        let note = store.checkpoint().unwrap().unwrap();
        assert_eq!(
            high_water::HighWater::open(dir.path()).unwrap().note(),
            Some(note.as_str())
        );
    }

    /// A store from before the retired principals' and open uploads'
    /// indexes gets them when first opened as a vault, once.
    #[tokio::test]
    async fn a_store_without_the_new_indexes_builds_them_once() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LogSigner::new("test.example", SigningKey::from_bytes(&[1; 32])).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let removal = EventDraft {
            action: Action::PrincipalRemoved,
            details: serde_json::json!({ "key_id": "0123456789abcdef" }),
            ..draft(VAULT_CASE)
        };
        let g = store.writer().await;
        store
            .append(
                &g,
                Batch::default(),
                vec![draft(VAULT_CASE), draft("c1"), removal],
                &signer,
            )
            .unwrap();
        drop(g);
        let upload = UploadRecord {
            case_id: "c1".into(),
            length: 10,
            offset: 0,
            chunks: 0,
            owner: "0123456789abcdef".parse().unwrap(),
            created: 0,
            touched: 0,
        };
        store
            .tree(T::Uploads)
            .insert("u1", serde_json::to_vec(&upload).unwrap())
            .unwrap();
        assert!(store.tree(T::Retired).is_empty());
        store.build_missing_indexes().unwrap();
        let retired: Vec<_> = store.tree(T::Retired).iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(retired.len(), 1);
        assert_eq!(&retired[0].0[..], b"0123456789abcdef");
        assert_eq!(&retired[0].1[..], &2u64.to_be_bytes());
        assert!(store.tree(T::CaseUploads).contains_key("c1/u1").unwrap());
        // Once built, it is not rebuilt: later removals are written with
        // their events.
        store.tree(T::Retired).clear().unwrap();
        store.build_missing_indexes().unwrap();
        assert!(store.tree(T::Retired).is_empty());
    }

    #[tokio::test]
    async fn appends_chain_per_case_and_receipts_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let signer = LogSigner::new("test.example", SigningKey::from_bytes(&[1; 32])).unwrap();
        for round in 0..5 {
            let g = store.writer().await;
            let receipts = store
                .append(
                    &g,
                    Batch::default(),
                    vec![draft(VAULT_CASE), draft("c1"), draft(VAULT_CASE)],
                    &signer,
                )
                .unwrap();
            for r in &receipts {
                verify_receipt(r, &signer.verifier()).unwrap();
            }
            assert_eq!(receipts[2].index, round * 3 + 2);
        }
        store.check_log(&signer).unwrap();
        let size = store.log_size().unwrap();
        let mut tree = crate::custody::merkle::MemoryTree::default();
        let mut heads: HashMap<String, String> = HashMap::new();
        for i in 0..size {
            let bytes = store.entry(i).unwrap().unwrap();
            let e: crate::custody::Event = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(e.prev, heads.get(&e.case).cloned());
            heads.insert(e.case.clone(), event_hash(&bytes));
            tree.push(merkle::leaf_hash(&bytes));
        }
        assert_eq!(tree.root_at(size), store.root(size).unwrap());
        // The vault-only unsigned events are not valid custody once signed
        // events exist, but an all-anchor log is: the auditor accepts none
        // of these (they are not principal_added), which shows it checks.
        let mut auditor = LogAuditor::new();
        assert!(auditor.push(&store.entry(0).unwrap().unwrap()).is_err());
    }

    #[test]
    fn open_waits_for_a_closing_store_but_not_for_a_running_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(first);
        });
        let second = Store::open(dir.path()).expect("opens once the first has closed");
        closer.join().unwrap();
        let started = std::time::Instant::now();
        let err = Store::open(dir.path()).err().expect("the folder is in use");
        assert!(err.to_string().contains("lock"), "{err}");
        assert!(started.elapsed() >= LOCK_WAIT);
        drop(second);
    }

    #[test]
    fn corrupted_chunks_are_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let big = vec![7u8; SMALL_CHUNK + 1];
        for bytes in [&b"ciphertext"[..], &big[..]] {
            let hash = store.put_chunk(bytes).unwrap();
            assert_eq!(store.get_chunk(&hash).unwrap(), bytes);
            assert_eq!(store.put_chunk(bytes).unwrap(), hash, "a second put is a no-op");
        }
        // A small chunk lives in sled, a large one in a file.
        let small: Hash = Sha256::digest(b"ciphertext").into();
        assert!(store.tree(T::Chunks).contains_key(small).unwrap());
        assert!(!store.chunk_file(&small).exists());
        store.tree(T::Chunks).insert(small, &b"Ciphertext"[..]).unwrap();
        assert!(matches!(store.get_chunk(&small), Err(StoreError::Integrity(_))));

        let hash: Hash = Sha256::digest(&big).into();
        assert!(!store.tree(T::Chunks).contains_key(hash).unwrap());
        let mut damaged = big.clone();
        damaged[SMALL_CHUNK] ^= 1;
        std::fs::write(store.chunk_file(&hash), &damaged).unwrap();
        assert!(matches!(store.get_chunk(&hash), Err(StoreError::Integrity(_))));
        std::fs::remove_file(store.chunk_file(&hash)).unwrap();
        assert!(
            matches!(store.get_chunk(&hash), Err(StoreError::Integrity(_))),
            "a missing chunk"
        );
        // A store from an earlier version kept large chunks in sled too.
        let old_big = vec![9u8; SMALL_CHUNK * 2];
        let old: Hash = Sha256::digest(&old_big).into();
        store.tree(T::Chunks).insert(old, old_big.clone()).unwrap();
        assert_eq!(store.get_chunk(&old).unwrap(), old_big);
        // No temporary file is left beside the chunks.
        let leftovers = walk(&dir.path().join("chunks"))
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn a_sequence_hash_reads_every_chunk_and_check_finds_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let pieces = [vec![1u8; 10], vec![2u8; SMALL_CHUNK + 5]];
        let mut batch = Batch::default();
        for (i, p) in pieces.iter().enumerate() {
            let h = store.put_chunk(p).unwrap();
            batch.put(T::UploadChunks, indexed_key(b"u", i as u64), h);
        }
        let guard = store.writer.try_lock().unwrap();
        store.apply(&guard, batch).unwrap();
        drop(guard);
        let whole: Vec<u8> = pieces.concat();
        let (hash, len) = store.hash_sequence(T::UploadChunks, b"u", 2).unwrap();
        assert_eq!((hash, len), (hex::encode(Sha256::digest(&whole)), whole.len() as u64));
        store.check_sequence(T::UploadChunks, b"u", 2).unwrap();
        let second: Hash = Sha256::digest(&pieces[1]).into();
        std::fs::write(store.chunk_file(&second), vec![0u8; SMALL_CHUNK + 5]).unwrap();
        let (changed, _) = store.hash_sequence(T::UploadChunks, b"u", 2).unwrap();
        assert_ne!(changed, hex::encode(Sha256::digest(&whole)));
        assert!(matches!(
            store.check_sequence(T::UploadChunks, b"u", 2),
            Err(StoreError::Integrity(_))
        ));
    }

    /// Regression: with sled's `flush_async`, 16 clients each writing a
    /// transaction and flushing hung the server for good within a few
    /// dozen requests (`benches/small.rs`).
    #[test]
    fn concurrent_transactions_and_flushes_all_finish() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let (done, finished) = std::sync::mpsc::channel();
        let writing = store.clone();
        // On a thread of its own, so that a hang (sled's threads stuck,
        // and the runtime's with them) fails the test instead of hanging it.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for t in 0..16u64 {
                    let store = writing.clone();
                    tasks.push(tokio::spawn(async move {
                        for i in 0..40u64 {
                            store.put_chunk(&[t as u8, i as u8]).unwrap();
                            {
                                let guard = store.writer().await;
                                let mut batch = Batch::default();
                                batch.put(T::Meta, format!("{t}-{i}"), vec![1u8; 100]);
                                batch.put(T::Uploads, format!("{t}-{i}"), vec![2u8; 100]);
                                store.apply(&guard, batch).unwrap();
                            }
                            store.flush().await.unwrap();
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("every write and flush finished: no deadlock");
        assert_eq!(store.tree(T::Uploads).len(), 640);
    }

    /// Callers that wait while a flush is held up share one flush.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_flushes_are_grouped_into_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let held = store.writer().await;
        let mut tasks = Vec::new();
        for i in 0..20u8 {
            store.tree(T::Meta).insert([i], &[i][..]).unwrap();
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.flush().await.unwrap() }));
        }
        // Every caller has asked for its flush before the first can run.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(store.flush_count(), 0);
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.flush_count(), 1, "twenty callers, one flush");
        // And a caller that writes after it gets a flush of its own.
        store.tree(T::Meta).insert(b"later", &b"x"[..]).unwrap();
        store.flush().await.unwrap();
        assert_eq!(store.flush_count(), 2);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn nonces_are_single_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.remember_nonce("k", "n1", 100).unwrap());
        assert!(!store.remember_nonce("k", "n1", 100).unwrap());
        assert!(store.remember_nonce("k2", "n1", 100).unwrap());
        assert_eq!(store.prune_nonces(200).unwrap(), 2);
        assert!(store.remember_nonce("k", "n1", 300).unwrap());
    }
}
