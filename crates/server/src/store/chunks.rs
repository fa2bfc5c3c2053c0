//! Ciphertext chunks: the narrow [`ChunkStore`] interface, the file-backed
//! implementation, and the store's reads (always re-hashed), writes and
//! collection of unreferenced chunks. Knows nothing of cases or the log.

use super::*;

/// The narrow interface of the store of large ciphertext chunks: files
/// on this disk ([`FileChunks`]) or objects in an S3 bucket
/// (`s3::S3Chunks`). Chunks up to [`SMALL_CHUNK`] stay in sled whatever
/// the backend. Every method blocks; callers are on blocking threads.
pub trait ChunkStore: Send + Sync {
    /// Store a chunk under its SHA-256, durably before it returns; storing
    /// the same chunk twice leaves one good copy.
    fn put(&self, hash: &Hash, bytes: &[u8]) -> Result<()>;
    /// Store several chunks, each as [`ChunkStore::put`] does, all durable
    /// before it returns. A backend whose writes wait on the network sends
    /// them at once.
    fn put_many(&self, chunks: &[(Hash, bytes::Bytes)]) -> Result<()> {
        chunks.iter().try_for_each(|(hash, bytes)| self.put(hash, bytes))
    }
    /// How many chunks an upload request should carry: one where a write
    /// is cheap (then a PATCH's signed digest is its chunk's address, one
    /// hash pass saved), more where each write waits for the network, so
    /// that [`ChunkStore::put_many`] has writes to overlap.
    fn chunks_per_patch(&self) -> usize {
        1
    }
    /// Fetch a chunk; the caller re-hashes it.
    fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>>;
    /// A chunk's length, without reading it.
    fn len(&self, hash: &Hash) -> Result<Option<u64>>;
    /// Several chunks' lengths, in order, as [`ChunkStore::len`] gives
    /// them. A backend whose answers wait on the network asks at once.
    fn lens(&self, hashes: &[Hash]) -> Result<Vec<Option<u64>>> {
        hashes.iter().map(|hash| self.len(hash)).collect()
    }
    /// Every name the backend holds, with its size: chunks (named by their
    /// hash in hex, perhaps under a folder: `ab/ab12...`) and whatever an
    /// interrupted write left.
    fn list(&self) -> Result<Vec<(String, u64)>>;
    /// Delete a name [`ChunkStore::list`] gave.
    fn remove(&self, name: &str) -> Result<()>;
    /// Whether the backend answers at all (for `/readyz` and the metrics).
    fn probe(&self) -> Result<()>;
    /// Check that the backend keeps the chunks of the vault whose log key
    /// is `vault` and of no other; `adopt`: a backend no vault has marked
    /// may be marked as this one's. Files on the vault's own disk are its
    /// own by where they are.
    fn claim_for(&self, vault: &str, adopt: bool) -> Result<()> {
        let _ = (vault, adopt);
        Ok(())
    }
}

/// How long a probe of the chunk store stands for the next ones: health
/// checks come every few seconds, and anyone may send them.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

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
/// cache instead. Reads look in sled first, so a store written by an
/// earlier version, which kept all chunks in sled, still reads.
pub(super) struct FileChunks {
    dir: PathBuf,
    /// The fan-out folders whose names this process made durable (or
    /// found so: the store syncs `chunks/` when it opens). A chunk is
    /// acknowledged only once its folder's name is durable too, which
    /// another writer's `create_dir_all` does not promise.
    fans_durable: [std::sync::atomic::AtomicBool; 256],
}

/// Where chunk `hash` lives under the chunk folder `dir`.
fn chunk_path(dir: &Path, hash: &Hash) -> PathBuf {
    let name = hex::encode(hash);
    dir.join(&name[..2]).join(name)
}

impl FileChunks {
    /// The chunks in `dir`, whose own name (and the fan-out folders' in
    /// it) the caller has made durable.
    pub(super) fn new(dir: PathBuf) -> FileChunks {
        FileChunks {
            dir,
            fans_durable: std::array::from_fn(|_| false.into()),
        }
    }

    fn path(&self, hash: &Hash) -> PathBuf {
        chunk_path(&self.dir, hash)
    }
}

impl ChunkStore for FileChunks {
    fn put(&self, hash: &Hash, bytes: &[u8]) -> Result<()> {
        let path = self.path(hash);
        // Bytes stored before, by another object or an earlier try. A
        // commit finishes the hash of what was sent, not a re-read of what
        // is stored, so the copy under this name is checked: one damaged
        // since is replaced, never vouched for by a new receipt.
        let fan = path.parent().expect("chunk paths have a folder");
        let fan_durable = &self.fans_durable[usize::from(hash[0])];
        if !fan_durable.load(std::sync::atomic::Ordering::Acquire) {
            std::fs::create_dir_all(fan)?;
            custos_durable::sync_dir(&self.dir)?;
            fan_durable.store(true, std::sync::atomic::Ordering::Release);
        }
        if path.exists() && std::fs::read(&path).is_ok_and(|held| Sha256::digest(&held).as_slice() == hash.as_slice()) {
            // Its name may not be durable yet: another writer may be
            // between its rename and its folder sync, or a killed one left
            // it there. Acknowledged only once it is.
            custos_durable::sync_dir(fan)?;
            return Ok(());
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
        custos_durable::sync_dir(fan)?;
        Ok(())
    }
    fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(hash)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    fn len(&self, hash: &Hash) -> Result<Option<u64>> {
        match std::fs::metadata(self.path(hash)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    fn list(&self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for entry in chunk_files_in(&self.dir)? {
            let path = entry.path();
            let name = path
                .strip_prefix(&self.dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((name, entry.metadata()?.len()));
        }
        Ok(out)
    }
    fn remove(&self, name: &str) -> Result<()> {
        // Only names `list` gave: one fan-out folder and a file in it.
        let mut parts = name.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(fan), Some(file), None) if fan.len() == 2 && !file.contains("..") && !fan.contains("..") => {
                match std::fs::remove_file(self.dir.join(fan).join(file)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                    _ => Ok(()),
                }
            }
            _ => Err(StoreError::Integrity(format!("{name:?} is not a chunk file's name"))),
        }
    }
    fn probe(&self) -> Result<()> {
        std::fs::metadata(&self.dir)?;
        Ok(())
    }
}

/// Where the chunks of an object start: all a download from some byte
/// needs to know to find the chunk it starts in and to check, chunk by
/// chunk, that what it sends lies where the manifest says.
#[derive(Debug, Clone)]
pub enum ChunkLayout {
    /// Chunks of `chunk_size` bytes but the last, which holds the rest
    /// (from the manifest: nothing is read to know it).
    Even {
        /// Bytes in every chunk but the last (at least one).
        chunk_size: u64,
        /// The object's size.
        size: u64,
    },
    /// Each chunk's length, as the store holds it (objects whose manifest
    /// does not say, or whose chunks are uneven).
    Listed(Vec<u64>),
}

impl ChunkLayout {
    /// The length chunk `index` has in this layout.
    pub fn chunk_len(&self, index: u64) -> u64 {
        match self {
            ChunkLayout::Even { chunk_size, size } => {
                let start = index.saturating_mul(*chunk_size);
                (*chunk_size).min(size.saturating_sub(start))
            }
            ChunkLayout::Listed(lens) => usize::try_from(index)
                .ok()
                .and_then(|i| lens.get(i))
                .copied()
                .unwrap_or(0),
        }
    }

    /// The chunk holding byte `from` (below the object's size), and how
    /// far into that chunk `from` lies.
    pub fn locate(&self, from: u64) -> Option<(u64, u64)> {
        match self {
            ChunkLayout::Even { chunk_size, size } => (from < *size).then(|| (from / chunk_size, from % chunk_size)),
            ChunkLayout::Listed(lens) => {
                let mut start = 0u64;
                for (i, &len) in lens.iter().enumerate() {
                    if from < start + len {
                        return Some((i as u64, from - start));
                    }
                    start += len;
                }
                None
            }
        }
    }
}

impl Store {
    // ---- chunks and objects ----

    /// Store one chunk, returning its hash.
    pub fn put_chunk(&self, bytes: &[u8]) -> Result<Hash> {
        let hash: Hash = Sha256::digest(bytes).into();
        self.store_chunk(&hash, bytes)?;
        Ok(hash)
    }

    /// Store the chunks of one upload request (its body as read, in pieces
    /// of at most [`CHUNK_SIZE`]), returning their hashes in order. The
    /// large ones go to the backend together, so a bucket receives them at
    /// once.
    pub fn put_chunks(&self, body: &[bytes::Bytes]) -> Result<Vec<Hash>> {
        debug_assert!(body.iter().all(|piece| piece.len() <= CHUNK_SIZE));
        // The pieces themselves, not copies: a bucket's PUTs send them as
        // they are.
        let pieces: Vec<(Hash, bytes::Bytes)> = body
            .iter()
            .map(|piece| (Sha256::digest(piece).into(), piece.clone()))
            .collect();
        let mut large = Vec::with_capacity(pieces.len());
        for (hash, piece) in &pieces {
            if piece.len() <= SMALL_CHUNK {
                self.tree(T::Chunks).insert(hash, piece.as_ref())?;
            } else {
                large.push((*hash, piece.clone()));
            }
        }
        if !large.is_empty() {
            let stored = self.chunks.put_many(&large);
            self.note_backend(&stored);
            stored?;
        }
        Ok(pieces.into_iter().map(|(hash, _)| hash).collect())
    }

    /// How many bytes an upload request should carry to this store (the
    /// vault says so when an upload is created or asked about).
    pub fn patch_size(&self) -> usize {
        self.chunks.chunks_per_patch() * CHUNK_SIZE
    }

    /// Whether each chunk write waits for the network (the backend asks
    /// for PATCHes of several chunks to overlap them): then a PATCH is
    /// answered before its chunks are written (`api/upload_writes.rs`).
    pub fn chunk_writes_wait_on_network(&self) -> bool {
        self.chunks.chunks_per_patch() > 1
    }

    /// A small chunk into sled (durable with the caller's next flush,
    /// which precedes any reply), a large one to the backend.
    fn store_chunk(&self, hash: &Hash, bytes: &[u8]) -> Result<()> {
        if bytes.len() <= SMALL_CHUNK {
            self.tree(T::Chunks).insert(hash, bytes)?;
            return Ok(());
        }
        let stored = self.chunks.put(hash, bytes);
        self.note_backend(&stored);
        stored
    }

    /// A chunk's bytes, from sled or the backend, unchecked.
    fn fetch_chunk(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.tree(T::Chunks).get(hash)? {
            return Ok(Some(v.to_vec()));
        }
        let got = self.chunks.get(hash);
        self.note_backend(&got);
        got
    }

    /// Remember whether the chunk backend just answered, for `/readyz`
    /// and the metrics.
    fn note_backend<V>(&self, outcome: &Result<V>) {
        let up = !matches!(outcome, Err(StoreError::Unavailable(_)));
        self.chunks_up.store(up, std::sync::atomic::Ordering::Relaxed);
    }

    /// Ask the chunk backend whether it answers (a cheap request), and
    /// remember the answer.
    /// At most one probe per [`PROBE_EVERY`]: `/readyz` answers anyone,
    /// and each of its calls must not become a request to the bucket.
    pub fn probe_chunk_storage(&self) -> Result<()> {
        {
            let mut last = self.last_probe.lock().expect("the probe lock is never poisoned");
            if last.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
                return if self.chunk_storage_up() {
                    Ok(())
                } else {
                    Err(StoreError::Unavailable("it did not answer the last check".into()))
                };
            }
            *last = Some(std::time::Instant::now());
        }
        let outcome = self.chunks.probe();
        self.note_backend(&outcome);
        outcome
    }

    /// Whether the chunk backend answered the last request made of it.
    pub fn chunk_storage_up(&self) -> bool {
        self.chunks_up.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Store a chunk whose SHA-256 the caller has already checked (a PATCH
    /// body that is exactly one chunk, verified against its signed
    /// `Content-Digest`), saving a pass over the bytes. A wrong `hash`
    /// would file the chunk under another address; reads re-hash, so it
    /// would surface as an integrity error, never as wrong content.
    pub fn put_chunk_prehashed(&self, hash: Hash, bytes: &[u8]) -> Result<Hash> {
        debug_assert_eq!(<[u8; 32]>::from(Sha256::digest(bytes)), hash);
        self.store_chunk(&hash, bytes)?;
        Ok(hash)
    }

    /// Permission to write chunks that nothing refers to yet; hold it until
    /// the references are applied. Owned, so that a PATCH takes it before
    /// its write is queued behind the one before it: taken inside a write
    /// that waits for another, a collector queued between the two would
    /// wait for the later write while the earlier waited for the collector.
    pub async fn chunk_writes(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.chunk_gate.clone().read_owned().await
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
        // Owned, and moved into the blocking deletion below: if this task
        // is aborted (the server stopping), the gate stays shut until the
        // deletion has finished, so no chunk is written meanwhile.
        // Not before the chunk store is known to be this vault's alone:
        // what another vault's chunks look like from here is "unreferenced".
        if !self.chunk_store_claimed() {
            return Ok(0);
        }
        let gate = self.chunk_gate.clone().write_owned().await;
        self.garbage.store(false, std::sync::atomic::Ordering::SeqCst);
        let collected = match self.live_chunks().await {
            // Walking the chunk folders and deleting files is blocking work.
            Ok(live) => {
                let (small, large) = (self.tree(T::Chunks).clone(), self.chunks.clone());
                tokio::task::spawn_blocking(move || {
                    let _gate = gate;
                    remove_chunks_except(&small, large.as_ref(), &live)
                })
                .await
                .unwrap_or_else(|e| Err(StoreError::Io(std::io::Error::other(format!("collection failed: {e}")))))
            }
            Err(e) => Err(e),
        };
        if collected.is_err() {
            // Try again at the next tick.
            self.mark_garbage();
        }
        collected
    }

    /// Every chunk an object or an upload refers to, read under the writer
    /// lock, once the lists whose owner is gone are dropped.
    async fn live_chunks(&self) -> Result<std::collections::HashSet<Hash>> {
        let writer = self.writer().await;
        let mut live = std::collections::HashSet::new();
        for t in [T::ObjectChunks, T::UploadChunks] {
            let dropped = self.drop_ownerless_lists(&writer, t)?;
            if dropped > 0 {
                tracing::info!(lists = dropped, "dropped chunk lists whose upload or object is gone");
            }
            for v in self.tree(t).iter().values() {
                live.insert(
                    Hash::try_from(v?.as_ref())
                        .map_err(|_| StoreError::Integrity("chunk reference is damaged".into()))?,
                );
            }
        }
        Ok(live)
    }

    /// Every name the large-chunk backend holds, with its size: chunks,
    /// and what writes a crash cut short left.
    pub fn large_chunks(&self) -> Result<Vec<(String, u64)>> {
        let listed = self.chunks.list();
        self.note_backend(&listed);
        listed
    }

    /// Delete a name [`Store::large_chunks`] gave from the backend, whether
    /// anything refers to it or not: for the tests that lose a chunk on
    /// purpose (a bucket that lost an object) to show the loss is caught.
    #[doc(hidden)]
    pub fn danger_remove_large_chunk(&self, name: &str) -> Result<()> {
        self.chunks.remove(name)
    }

    /// The file a chunk is kept in when chunks are on this disk (for
    /// operators' tools and the tests that damage a store on purpose).
    pub fn chunk_file(&self, hash: &Hash) -> PathBuf {
        chunk_path(&self.chunk_dir, hash)
    }

    /// Fetch a chunk and check it against its address.
    pub fn get_chunk(&self, hash: &Hash) -> Result<Vec<u8>> {
        let bytes = self
            .fetch_chunk(hash)?
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
                .fetch_chunk(&hash)?
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

    /// A chunk's length, from the store, without reading it.
    pub fn chunk_len(&self, hash: &Hash) -> Result<u64> {
        let len = match self.tree(T::Chunks).get(hash)? {
            Some(v) => Some(v.len() as u64),
            None => {
                let len = self.chunks.len(hash);
                self.note_backend(&len);
                len?
            }
        };
        len.ok_or_else(|| StoreError::Integrity(format!("chunk {} is missing", hex::encode(hash))))
    }

    /// The lengths of the chunks `hashes`, in order, without reading
    /// them: the small ones from sled, the others asked of the backend
    /// together (a commit of 1 GiB into a bucket asked 256 times in a
    /// row before).
    pub fn chunk_lens(&self, hashes: &[Hash]) -> Result<Vec<u64>> {
        let mut lens = vec![None; hashes.len()];
        let mut large = Vec::new();
        for (len, hash) in lens.iter_mut().zip(hashes) {
            match self.tree(T::Chunks).get(hash)? {
                Some(v) => *len = Some(v.len() as u64),
                None => large.push(*hash),
            }
        }
        if !large.is_empty() {
            let asked = self.chunks.lens(&large);
            self.note_backend(&asked);
            let mut answers = asked?.into_iter();
            for len in lens.iter_mut().filter(|len| len.is_none()) {
                *len = answers.next().flatten();
            }
        }
        lens.into_iter()
            .zip(hashes)
            .map(|(len, hash)| {
                len.ok_or_else(|| StoreError::Integrity(format!("chunk {} is missing", hex::encode(hash))))
            })
            .collect()
    }

    /// Where the chunks of `object` start: from its manifest when it
    /// records even chunks (checked against its size and chunk count),
    /// else from the chunks' lengths in the store, which must add up to
    /// its size. No chunk is read either way.
    pub fn object_layout(&self, object: &Hash, manifest: &ObjectManifest) -> Result<ChunkLayout> {
        let damaged = || StoreError::Integrity(format!("object {} does not match its record", hex::encode(object)));
        if let Some(chunk_size) = manifest.chunk_size {
            // Chunks 0..n-1 full, the last holding 1 to chunk_size bytes.
            let full = manifest.chunks.checked_sub(1).and_then(|n| n.checked_mul(chunk_size));
            let fits = full.is_some_and(|full| full < manifest.size && manifest.size - full <= chunk_size);
            if chunk_size == 0 || !fits {
                return Err(damaged());
            }
            return Ok(ChunkLayout::Even {
                chunk_size,
                size: manifest.size,
            });
        }
        let hashes = (0..manifest.chunks)
            .map(|i| self.chunk_at(T::ObjectChunks, object, i))
            .collect::<Result<Vec<_>>>()?;
        let lens = self.chunk_lens(&hashes)?;
        if lens.iter().sum::<u64>() != manifest.size {
            return Err(damaged());
        }
        Ok(ChunkLayout::Listed(lens))
    }

    /// Read chunk `index` of an object, re-hashed.
    pub fn object_chunk(&self, object: &Hash, index: u64) -> Result<Vec<u8>> {
        self.get_chunk(&self.chunk_at(T::ObjectChunks, object, index)?)
    }
}

/// Delete every chunk (in sled's `small` tree and in the backend `large`)
/// and every leftover of an interrupted write whose hash is not in
/// `live`. Blocking.
fn remove_chunks_except(
    small: &sled::Tree,
    large: &dyn ChunkStore,
    live: &std::collections::HashSet<Hash>,
) -> Result<usize> {
    let mut removed = 0;
    for key in small.iter().keys() {
        let key = key?;
        if !Hash::try_from(key.as_ref()).is_ok_and(|h| live.contains(&h)) {
            small.remove(key)?;
            removed += 1;
        }
    }
    for (name, _) in large.list()? {
        let referenced = name
            .rsplit('/')
            .next()
            .and_then(custos_core::protocol::hash_from_hex)
            .is_some_and(|h| live.contains(&h));
        if !referenced {
            large.remove(&name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Every file in the chunk folders under `dir`. Blocking.
fn chunk_files_in(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let mut files = Vec::new();
    for fan in std::fs::read_dir(dir)? {
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
