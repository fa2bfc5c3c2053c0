//! Cutting a snapshot: the trees that change in place copied under the
//! writer lock after a flush, the append-only log trees and the chunks
//! after it up to the cut, then the tar written with a signed manifest.

use super::*;

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
    for kv in store.records(t) {
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
pub(super) struct Cut {
    spooled: Spooled,
    referenced: BTreeSet<Hash>,
    log_size: u64,
    checkpoint: String,
    /// How long writes waited.
    held: std::time::Duration,
    /// Whether the large chunks are copied or listed.
    pub(super) chunks: BackupChunks,
}

/// Cut a consistent snapshot of `vault` (see the module's documentation).
/// Writes wait while the trees that change in place (cases, envelopes,
/// registry, chain heads, objects) are copied; the log's own trees and the
/// chunks, which never change once written, are copied afterwards up to
/// the cut. Reads go on throughout. The fsync and the copying run on a
/// blocking thread, never on the async runtime's; `vault` is anything that
/// holds the vault (the vault itself, the server's state).
pub async fn snapshot<V>(vault: std::sync::Arc<V>) -> Result<Snapshot>
where
    V: AsRef<Vault> + Send + Sync + 'static,
{
    snapshot_with(vault, BackupChunks::Included).await
}

/// [`snapshot`], its large chunks copied or only listed (`chunks`). Only
/// a vault whose chunks are in an S3 bucket may leave them out: on its
/// own disk they would share the fate of the vault the backup is for.
pub async fn snapshot_with<V>(vault: std::sync::Arc<V>, chunks: BackupChunks) -> Result<Snapshot>
where
    V: AsRef<Vault> + Send + Sync + 'static,
{
    refuse_hashes_only_on_disk(&(*vault).as_ref().store, chunks)?;
    tokio::task::spawn_blocking(move || {
        let vault = (*vault).as_ref();
        let mut cut = cut_under_lock(vault)?;
        cut.chunks = chunks;
        finish(vault, cut)
    })
    .await
    .map_err(|e| BackupError::Io(std::io::Error::other(format!("snapshot task failed: {e}"))))?
}

/// Refuse a backup of chunk hashes only when the chunks are on this disk.
pub fn refuse_hashes_only_on_disk(store: &Store, chunks: BackupChunks) -> Result<()> {
    if chunks == BackupChunks::HashesOnly && store.chunk_bucket().is_none() {
        return Err(BackupError::Invalid(
            "this vault keeps its chunks on its own disk: a backup of their hashes only is for a vault \
             whose chunks are in an S3 bucket; take a full backup"
                .into(),
        ));
    }
    Ok(())
}

/// Take the writer lock (from a blocking thread), flush, and copy the
/// trees that change in place.
pub(super) fn cut_under_lock(vault: &Vault) -> Result<Cut> {
    let store = &vault.store;
    let spool = crate::vault::db_path(&vault.dir);
    let mut spooled = Spooled::new();
    let guard = store.writer_blocking();
    let locked = std::time::Instant::now();
    // Everything so far durable, and nothing changes until the guard goes:
    // the snapshot is one instant of acknowledged state.
    store.flush_blocking()?;
    let checkpoint = store
        .checkpoint()?
        .ok_or_else(|| BackupError::Invalid("the vault has no checkpoint yet".into()))?;
    let log_size = store.log_size()?;
    // Only the chunk lists of stored objects. A commit cut after it wrote
    // a long list ahead (`store::chunk_lists`) leaves rows with no object,
    // which the collector drops with the chunks only they name: a backup
    // that kept them would name chunks the bucket may no longer hold, and
    // its restore would refuse.
    let objects = store
        .records(T::Objects)
        .map(|kv| kv.map(|(k, _)| k))
        .collect::<std::result::Result<BTreeSet<_>, _>>()?;
    let of_an_object = |k: &[u8]| k.len() > 8 && objects.contains(&k[..k.len() - 8]);
    for (t, _) in store::TREES.iter() {
        if !LEFT_OUT.contains(t) && !APPEND_ONLY.contains(t) && *t != T::Chunks {
            let keep = |k: &[u8], _: &[u8]| *t != T::ObjectChunks || of_an_object(k);
            spooled.insert(*t as usize, spool_tree(store, *t, &spool, keep)?);
        }
    }
    let mut referenced = BTreeSet::new();
    for kv in store.records(T::ObjectChunks) {
        let (k, v) = kv?;
        if of_an_object(&k) {
            referenced.insert(
                Hash::try_from(v.as_ref()).map_err(|_| StoreError::Integrity("chunk reference is damaged".into()))?,
            );
        }
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
        chunks: BackupChunks::Included,
    })
}

/// Copy what never changes once written, up to the cut, and list the chunk
/// files; writes may go on meanwhile.
pub(super) fn finish(vault: &Vault, cut: Cut) -> Result<Snapshot> {
    let store = &vault.store;
    let spool = crate::vault::db_path(&vault.dir);
    let Cut {
        mut spooled,
        referenced,
        log_size,
        checkpoint,
        held,
        chunks: mode,
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
        if store.has_record(T::Chunks, hash)? {
            continue;
        }
        let len = store.chunk_len(&hash)?;
        chunks.push((hash, len));
    }
    // Left in the bucket: the signed manifest names each, with its length.
    let bucket = match (mode, store.chunk_bucket()) {
        (BackupChunks::Included, _) => None,
        (BackupChunks::HashesOnly, None) => {
            refuse_hashes_only_on_disk(store, mode)?;
            None
        }
        (BackupChunks::HashesOnly, Some(bucket)) => Some(BucketChunks {
            bucket: bucket.to_owned(),
            chunks: std::mem::take(&mut chunks)
                .into_iter()
                .map(|(hash, bytes)| BucketChunk {
                    sha256: hex::encode(hash),
                    bytes,
                })
                .collect(),
        }),
    };
    let config_path = vault.dir.join(crate::config::CONFIG_FILE);
    let config = match std::fs::read(&config_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        created: custos_core::custody::now_rfc3339(),
        origin: vault.description.origin.clone(),
        vkey: vault.description.vkey.clone(),
        checkpoint,
        log_size,
        trees,
        chunk_files: chunks.len() as u64,
        config: config.is_some(),
        bucket,
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
