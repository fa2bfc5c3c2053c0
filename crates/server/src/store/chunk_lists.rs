//! Chunk lists: the rows that name, in order, the chunks of an upload
//! (`UploadChunks`) or of an object (`ObjectChunks`), keyed by their
//! owner's id then the index. This file writes and drops them in steps of
//! [`LIST_STEP`] rows, and drops the lists whose owner is gone; it does
//! not read chunks, nor decide when an upload ends.
//!
//! Why steps: sled 0.34.7 commits a transaction under one epoch guard, so
//! every tree page the transaction replaces stays allocated until the
//! whole transaction ends. A 4 GiB object's commit moved 1,024 rows in one
//! transaction and the vault's memory grew by 4.7 MiB with it
//! (bench/README.md); in steps, the growth is one step's, whatever the
//! object's size.

use super::*;

/// How many rows one step writes or removes: one step is all of a
/// 256 MiB object's list at the 4 MiB chunk size, so the objects most
/// submissions make are still committed in one transaction.
pub const LIST_STEP: u64 = 64;

impl Store {
    /// Give `object` the chunk list of upload `upload_id` (its first
    /// `chunks` rows), for a commit that holds the writer lock. Every step
    /// but the last is written now; the last is added to `batch`, which
    /// must also carry the object's record, so that the object is never
    /// seen without its whole list.
    ///
    /// Returns whether steps were written now: if so, the caller must make
    /// them durable ([`Store::flush_blocking`], still under the lock)
    /// before it applies `batch`, or a power cut could keep the record and
    /// lose rows. A list left by a commit that never applied its batch has
    /// no owner and is dropped before this one is written, or by
    /// [`Store::collect_chunks`].
    pub fn give_object_upload_list(
        &self,
        _guard: &WriterGuard<'_>,
        upload_id: &str,
        object: &Hash,
        chunks: u64,
        batch: &mut Batch,
    ) -> Result<bool> {
        if self.has_object(object)? {
            // Its list is evidence: never replaced.
            return Err(StoreError::Integrity("the object is already stored".into()));
        }
        self.give_in_steps(upload_id.as_bytes(), object, chunks, LIST_STEP, batch)
    }

    /// [`Store::give_object_upload_list`] with its step as a parameter, so
    /// that the unit tests can make many steps of a short list.
    pub(super) fn give_in_steps(
        &self,
        upload: &[u8],
        object: &Hash,
        chunks: u64,
        step: u64,
        batch: &mut Batch,
    ) -> Result<bool> {
        // Rows a cut commit of the same object left, perhaps longer than
        // this list: they would outlive it past its end.
        self.drop_list(T::ObjectChunks, object)?;
        let tree = self.tree(T::ObjectChunks);
        let last = chunks.saturating_sub(1) / step * step;
        for first in (0..last).step_by(step as usize) {
            let mut rows = sled::Batch::default();
            for i in first..first + step {
                rows.insert(indexed_key(object, i), &self.chunk_at(T::UploadChunks, upload, i)?[..]);
            }
            tree.apply_batch(rows)?;
        }
        for i in last..chunks {
            batch.put(
                T::ObjectChunks,
                indexed_key(object, i),
                self.chunk_at(T::UploadChunks, upload, i)?,
            );
        }
        Ok(last > 0)
    }

    /// Remove the chunk list of `upload_id` once its upload record is gone
    /// (the upload committed, ended or was cut short), a step at a time. A
    /// list whose upload still exists is refused: its rows are the only
    /// record of which chunks its PATCHes wrote.
    pub fn drop_upload_list(&self, upload_id: &str) -> Result<()> {
        if self.tree(T::Uploads).contains_key(upload_id)? {
            return Err(StoreError::Integrity("the upload is still open".into()));
        }
        self.drop_list(T::UploadChunks, upload_id.as_bytes())
    }

    /// Remove the list of `owner` in `t`, a step at a time: for a list
    /// whose owner is gone (an upload ended or committed, or a commit cut
    /// before its batch), which nothing reads. A cut leaves the rest for
    /// [`Store::collect_chunks`].
    pub(super) fn drop_list(&self, t: T, owner: &[u8]) -> Result<()> {
        let tree = self.tree(t);
        // Only `owner`'s own rows: another owner's id may begin with the
        // same bytes.
        let mut keys = tree
            .scan_prefix(owner)
            .keys()
            .filter(|k| k.as_ref().map_or(true, |k| k.len() == owner.len() + 8));
        loop {
            let step = keys
                .by_ref()
                .take(LIST_STEP as usize)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            if step.is_empty() {
                return Ok(());
            }
            let mut rows = sled::Batch::default();
            for key in step {
                rows.remove(key);
            }
            tree.apply_batch(rows)?;
        }
    }

    /// Drop every list in `t` whose owner has no record (an upload ended,
    /// or a commit cut before its batch), for the collector, which holds
    /// the writer lock: only a commit under that lock writes a list before
    /// its owner's record. Returns how many lists.
    pub(super) fn drop_ownerless_lists(&self, _guard: &WriterGuard<'_>, t: T) -> Result<usize> {
        let owners = match t {
            T::UploadChunks => T::Uploads,
            T::ObjectChunks => T::Objects,
            _ => return Err(StoreError::Integrity("not a chunk list tree".into())),
        };
        let mut ownerless = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        for key in self.tree(t).iter().keys() {
            let key = key?;
            let owner = key
                .get(..key.len().saturating_sub(8))
                .filter(|o| !o.is_empty())
                .ok_or_else(|| StoreError::Integrity("chunk list key is damaged".into()))?;
            if last.as_deref() == Some(owner) {
                continue;
            }
            if !self.tree(owners).contains_key(owner)? {
                ownerless.push(owner.to_vec());
            }
            last = Some(owner.to_vec());
        }
        for owner in &ownerless {
            self.drop_list(t, owner)?;
        }
        Ok(ownerless.len())
    }
}
