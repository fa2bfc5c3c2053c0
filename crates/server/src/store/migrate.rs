//! Moving a store's large chunks from this disk to an S3 bucket
//! (`custos storage migrate --to s3`): each chunk is checked against its
//! address, written to the bucket, read back and checked again; only when
//! every one is there does the store record that its chunks are in the
//! bucket, and only then are the files on disk removed. Stopped at any
//! point, the store is still whole on disk, and a second run finishes.

use super::chunks::ChunkStore;
use super::s3::S3Chunks;
use super::*;

/// What a migration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Migrated {
    /// Chunks copied to the bucket and checked there.
    pub chunks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Leftovers of interrupted writes (temporary files) removed.
    pub leftovers: u64,
}

impl Store {
    /// Copy every large chunk of this store (opened on its own disk, its
    /// server stopped) to the bucket at `location`, checked on both sides,
    /// then switch the store to the bucket and remove the local copies.
    /// `progress` is told each chunk's bytes as it is done. Blocking.
    pub fn migrate_chunks_to_s3(
        &self,
        location: &S3Location,
        vault: &str,
        mut progress: impl FnMut(u64),
    ) -> Result<Migrated> {
        let bucket = S3Chunks::new(location)?;
        // Never into another vault's bucket (see `s3::OWNER`); an unmarked
        // one becomes this vault's.
        bucket.claim_for(vault, true)?;
        let local = FileChunks::new(self.chunk_dir.clone());
        let mut done = Migrated::default();
        let mut leftovers = Vec::new();
        for (name, _) in local.list()? {
            let Some(hash) = name.rsplit('/').next().and_then(custos_core::protocol::hash_from_hex) else {
                leftovers.push(name);
                continue;
            };
            let bytes = local
                .get(&hash)?
                .ok_or_else(|| StoreError::Integrity(format!("chunk {} went missing", hex::encode(hash))))?;
            if Sha256::digest(&bytes).as_slice() != hash {
                return Err(StoreError::Integrity(format!(
                    "chunk {} on disk does not match its hash: restore it from a backup before migrating",
                    hex::encode(hash)
                )));
            }
            bucket.put(&hash, &bytes)?;
            let back = bucket.get(&hash)?;
            if back.is_none_or(|b| Sha256::digest(&b).as_slice() != hash) {
                return Err(StoreError::Unavailable(format!(
                    "chunk {} did not read back whole from the bucket",
                    hex::encode(hash)
                )));
            }
            done.chunks += 1;
            done.bytes += bytes.len() as u64;
            progress(bytes.len() as u64);
        }
        // Every chunk is in the bucket: from here the store reads it there.
        write_chunk_storage(
            self.db_dir(),
            &ChunkStorageRecord {
                storage: "s3".into(),
                bucket: location.bucket.clone(),
            },
        )?;
        for (name, _) in local.list()? {
            local.remove(&name)?;
        }
        done.leftovers = leftovers.len() as u64;
        Ok(done)
    }
}
