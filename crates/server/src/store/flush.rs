//! Group commit: the single writer lock, and the one flush that makes
//! everything written so far durable (sled's log fdatasync'd, then the
//! checkpoint's high-water mark recorded) for every request waiting on it.

use super::*;

/// The state of group commit (see [`Store::flush`]): how many flushes have
/// started, and the number of the last one that finished.
pub(super) struct GroupFlush {
    pub(super) started: std::sync::atomic::AtomicU64,
    pub(super) done: tokio::sync::Mutex<u64>,
    /// sled's log file (`db` in the store's folder), to fdatasync.
    pub(super) log_file: std::fs::File,
    /// Where each flush records the checkpoint it made durable.
    pub(super) high_water: std::sync::Mutex<high_water::HighWater>,
    /// How long each flush took, from taking the writer lock to the mark.
    pub(super) latency: crate::metrics::Histogram,
}

impl Store {
    /// Take the single-writer lock of the log and of all multi-tree changes.
    pub async fn writer(&self) -> WriterGuard<'_> {
        self.writer.lock().await
    }

    /// The writer lock, from a blocking thread (never from async code: it
    /// would stall the runtime's thread while it waits).
    pub fn writer_blocking(&self) -> WriterGuard<'_> {
        self.writer.blocking_lock()
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

    /// The last checkpoint a flush made durable (the high-water mark's):
    /// the one to hand out. The store's latest checkpoint may be newer than
    /// any flush, since writers go on as soon as a flush has taken its
    /// copy; a power cut would take that one back, and a client or witness
    /// that kept it would see a fork (found by the power-cut harness's long
    /// form, tests/it/powercut.rs).
    pub fn durable_checkpoint(&self) -> Option<String> {
        self.group
            .high_water
            .lock()
            .expect("flushes do not panic")
            .note()
            .map(str::to_owned)
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
}
