//! Opening sled, and rewriting a store made before custos chose
//! [`SEGMENT_SIZE`]. sled never changes a store's segment size once it has
//! one, and at the old default (512 KiB) it writes large pages to blob
//! files it never syncs and unlinks them when it thinks, from a
//! `sync_file_range`, that their replacement is on disk. No order of
//! fsyncs custos could add makes that safe across a power cut: one folder
//! sync makes a new blob's name durable, which the log needs, and an old
//! blob's removal durable, which the log may not yet justify (found by
//! the power-cut harness, tests/it/powercut.rs). So such a store is copied,
//! once, into a new one beside it with the new size, which then takes its
//! place. A cut at any point leaves the old store or the new one whole,
//! and the next open finishes the swap or starts over.
//!
//! The folders beside the store `DIR`: `DIR.resizing` while the copy is
//! made, `DIR.resized` once it is durable and checked, `DIR.retired` the
//! old store after the swap, and `DIR.rewrite-lock`, the file whose lock
//! one process holds while it decides about them. The files that are
//! custos's own (chunk files, the high-water mark, the chunk storage
//! record) move into the new store by rename, so chunk files are never
//! copied.

use super::{Result, StoreError, CACHE_CAPACITY, LOCK_WAIT, OLD_SEGMENT_SIZE, SEGMENT_SIZE};

use std::path::{Path, PathBuf};

/// How many bytes of keys and values one batch of the copy holds: large
/// enough that the copy is a few thousand batches for a store of
/// gigabytes, small enough to stay a small part of the vault's memory.
const COPY_BATCH_BYTES: usize = if cfg!(test) { 256 << 10 } else { 8 << 20 };

/// Open sled in `dir`, first rewriting a store with the old segment size
/// (or taking up a rewrite a cut cut short).
pub(super) fn open(dir: &Path) -> Result<sled::Db> {
    let beside = Beside::of(dir);
    // A store of the new size never moves, and a new store is made at
    // once. Anything else (an old store, or folders beside it) is decided
    // by one process at a time, until it holds sled's own lock. The order
    // of the looks matters: no store under the name, then no folder
    // beside it, means no rewrite was between its renames when the name
    // was looked up (the copy stays beside the store until it has the
    // name), so sled cannot make an empty store where a copy is due.
    let store_there = dir.join("db").exists();
    let settled = !beside.any_exists() && (!store_there || segment_size(dir)? == SEGMENT_SIZE);
    let _lock = if settled { None } else { Some(beside.lock()?) };
    beside.finish(dir)?;
    let size = segment_size(dir)?;
    if size != SEGMENT_SIZE {
        tracing::info!(
            from = size,
            to = SEGMENT_SIZE,
            "rewriting the store with sled's new segment size (once; its old size lets a power cut lose data)"
        );
        beside.check_movable(dir)?;
        let old = open_sled(dir, size)?;
        beside.rewrite(dir, old)?;
        tracing::info!("the store is rewritten");
    }
    open_sled(dir, segment_size(dir)?)
}

/// The segment size to open the store in `dir` with: the one its `conf`
/// records, the old default for a store whose `conf` does not say, and
/// [`SEGMENT_SIZE`] for a new one.
fn segment_size(dir: &Path) -> Result<usize> {
    let log_written = std::fs::metadata(dir.join("db")).is_ok_and(|m| m.len() > 0);
    let recorded = match std::fs::read(dir.join("conf")) {
        Ok(conf) => String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    Ok(match recorded {
        Some(size) => size,
        None if log_written => OLD_SEGMENT_SIZE,
        None => SEGMENT_SIZE,
    })
}

/// sled's database in `dir`, waiting up to [`LOCK_WAIT`] for its lock.
fn open_sled(dir: &Path, segment_size: usize) -> Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY)
            .segment_size(segment_size)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// Whether `name`, in a store's folder, is one of sled's own files (the
/// rest are custos's, and move with the store).
fn is_sleds(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    matches!(&*name, "db" | "conf" | "blobs") || name.starts_with("snap.")
}

/// The folders beside a store during a rewrite.
struct Beside {
    parent: PathBuf,
    /// The file whose lock a process holds while it decides about the
    /// folders beside the store (a file, not the folder: an exclusive
    /// lock needs a file open for writing on NFS). Made only for an old
    /// store or one a rewrite left folders beside, and left in place.
    lock: PathBuf,
    /// The new store while it is copied: thrown away if a cut stops it.
    building: PathBuf,
    /// The new store, durable and checked against the old one.
    built: PathBuf,
    /// The old store once the new one has its name.
    retired: PathBuf,
}

impl Beside {
    fn of(dir: &Path) -> Beside {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Beside {
            lock: parent.join(format!("{name}.rewrite-lock")),
            building: parent.join(format!("{name}.resizing")),
            built: parent.join(format!("{name}.resized")),
            retired: parent.join(format!("{name}.retired")),
            parent,
        }
    }

    fn any_exists(&self) -> bool {
        [&self.building, &self.built, &self.retired].iter().any(|p| p.exists())
    }

    fn lock(&self) -> Result<std::fs::File> {
        std::fs::create_dir_all(&self.parent)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)?;
        file.lock()?;
        Ok(file)
    }

    /// Refuse, before copying, a store whose files cannot move by rename:
    /// the store's folder, or a folder in it, is a file system of its own
    /// (the chunks on another disk, say).
    fn check_movable(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let device = std::fs::metadata(dir)?.dev();
        let mut mounted = Vec::new();
        if std::fs::metadata(&self.parent)?.dev() != device {
            mounted.push(dir.to_path_buf());
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if std::fs::symlink_metadata(entry.path())?.dev() != device {
                mounted.push(entry.path());
            }
        }
        if mounted.is_empty() {
            return Ok(());
        }
        Err(StoreError::Misplaced(format!(
            "this store has sled's old segment size and is rewritten once, by rename, but {} is a file \
             system of its own; stop, mount it one level up (or copy the data directory onto one file \
             system) and start again (SECURITY.md, \"If the vault will not start\")",
            mounted
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Take up a rewrite a cut stopped (holding the parent's lock). With
    /// the old store still under its name, the copy may be older than the
    /// store (an older custos may have served it since), so custos's
    /// files go back into the old store and the copy goes: it is made
    /// again. With no store under the name, the cut fell between the
    /// swap's renames, and the copy takes it.
    fn finish(&self, dir: &Path) -> Result<()> {
        if self.built.exists() {
            if self.retired.exists() && dir.exists() {
                // The swap had renamed the old store aside: whatever is
                // under its name now did not come from this rewrite.
                return Err(self.left_alone(dir));
            }
            if dir.exists() {
                self.put_back(dir)?;
                self.remove(&self.built);
            } else {
                std::fs::rename(&self.built, dir)?;
                custos_durable::sync_dir(&self.parent)?;
            }
        }
        if self.retired.exists() {
            if segment_size(dir)? != SEGMENT_SIZE || !dir.join("db").exists() {
                return Err(self.left_alone(dir));
            }
            self.remove(&self.retired);
        }
        if self.building.exists() {
            self.remove(&self.building);
        }
        if self.building.exists() {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "{} is left from a rewrite and cannot be removed",
                self.building.display()
            ))));
        }
        Ok(())
    }

    /// The refusal for folders beside the store that no rewrite of this
    /// custos leaves.
    fn left_alone(&self, dir: &Path) -> StoreError {
        StoreError::Integrity(format!(
            "the store's folders do not match any step of its rewrite ({}, {}, {}): left as they are \
             (SECURITY.md, \"If the vault will not start\")",
            dir.display(),
            self.built.display(),
            self.retired.display()
        ))
    }

    /// Remove a folder the rewrite no longer needs; one that will not go
    /// is told in the log and tried again at the next start, rather than
    /// keeping the vault from starting.
    fn remove(&self, folder: &Path) {
        let gone = std::fs::remove_dir_all(folder).and_then(|()| custos_durable::sync_dir(&self.parent));
        if let Err(e) = gone {
            tracing::warn!(folder = %folder.display(), error = %e, "a folder left by the store's rewrite does not go");
        }
    }

    /// Move custos's files that a cut swap had moved into the copy back
    /// into the old store `dir`. A cut between the syncs of the two
    /// folders may leave a file under both names (one file, twice
    /// linked): the copy's name goes.
    fn put_back(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        for entry in std::fs::read_dir(&self.built)? {
            let name = entry?.file_name();
            if is_sleds(&name) {
                continue;
            }
            let (moved, home) = (self.built.join(&name), dir.join(&name));
            match std::fs::symlink_metadata(&home) {
                Ok(there) if there.ino() == std::fs::symlink_metadata(&moved)?.ino() && there.is_file() => {
                    std::fs::remove_file(&moved)?
                }
                Ok(_) => {
                    return Err(StoreError::Integrity(format!(
                        "{} and {} both hold {:?}: left as they are",
                        dir.display(),
                        self.built.display(),
                        name
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::rename(&moved, &home)?,
                Err(e) => return Err(e.into()),
            }
        }
        custos_durable::sync_dir(dir)?;
        custos_durable::sync_dir(&self.built)?;
        Ok(())
    }

    /// Copy the store `old` (open, in `dir`) into a new one, make that
    /// durable, then give it `dir`'s place.
    fn rewrite(&self, dir: &Path, old: sled::Db) -> Result<()> {
        self.build(&old)?;
        drop(old);
        // A closing sled flushes, and may still write or remove its blob
        // files by path: in the old folder, never in the new one about to
        // take its name.
        let _old_lock = wait_for_sled(dir)?;
        self.step("closed the old store")?;
        self.swap(dir)?;
        self.remove(&self.retired);
        Ok(())
    }

    /// Copy `old` into a new store at `building`, check it, make it
    /// durable and name it `built`.
    fn build(&self, old: &sled::Db) -> Result<()> {
        {
            let new = open_sled(&self.building, SEGMENT_SIZE)?;
            copy(old, &new)?;
            self.step("copied")?;
            new.flush()?;
        }
        // A closing sled flushes: wait for it to let go of its files,
        // check the copy once more as sled reads it back from them, then
        // sync every one.
        wait_for_sled(&self.building)?;
        same(old, &open_sled(&self.building, SEGMENT_SIZE)?)?;
        wait_for_sled(&self.building)?;
        sync_tree(&self.building)?;
        self.step("synced")?;
        std::fs::rename(&self.building, &self.built)?;
        custos_durable::sync_dir(&self.parent)?;
        self.step("built")?;
        Ok(())
    }

    /// Move custos's own files from the old store `dir` into the built
    /// one (the copy's folder synced first: a cut between the two syncs
    /// leaves a file under both names, never under none), then rename the
    /// old store aside and the new one into place.
    fn swap(&self, dir: &Path) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            if !is_sleds(&name) {
                std::fs::rename(dir.join(&name), self.built.join(&name))?;
                self.step("moved a file")?;
            }
        }
        custos_durable::sync_dir(&self.built)?;
        self.step("synced the copy's names")?;
        custos_durable::sync_dir(dir)?;
        std::fs::rename(dir, &self.retired)?;
        self.step("retired the old store")?;
        std::fs::rename(&self.built, dir)?;
        custos_durable::sync_dir(&self.parent)?;
        self.step("renamed the copy")?;
        Ok(())
    }
}

impl Beside {
    /// A point where a crash may stop the rewrite. The unit tests stop it
    /// at each in turn (`STOP_AFTER`); elsewhere this does nothing.
    #[cfg(not(test))]
    fn step(&self, _done: &str) -> Result<()> {
        Ok(())
    }

    #[cfg(test)]
    fn step(&self, done: &str) -> Result<()> {
        STOP_AFTER.with(|left| match left.get() {
            Some(0) => Err(StoreError::Io(std::io::Error::other(format!("stopped after: {done}")))),
            Some(n) => {
                left.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}

#[cfg(test)]
thread_local! {
    /// How many more steps the rewrite in this thread may take before it
    /// stops as if the process had died (`None`: all of them).
    static STOP_AFTER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// Every tree of `old`, pair by pair, into `new`, in batches.
fn copy(old: &sled::Db, new: &sled::Db) -> Result<()> {
    for name in old.tree_names() {
        let (from, to) = (old.open_tree(&name)?, new.open_tree(&name)?);
        let (mut batch, mut bytes) = (sled::Batch::default(), 0);
        for pair in from.iter() {
            let (key, value) = pair?;
            bytes += key.len() + value.len();
            batch.insert(key, value);
            if bytes >= COPY_BATCH_BYTES {
                to.apply_batch(std::mem::take(&mut batch))?;
                bytes = 0;
            }
        }
        to.apply_batch(batch)?;
    }
    Ok(())
}

/// Check that `new` holds exactly what `old` does, before `new` may
/// replace it.
fn same(old: &sled::Db, new: &sled::Db) -> Result<()> {
    let mismatch = |name: &[u8]| {
        StoreError::Integrity(format!(
            "the rewritten store differs from the old one in tree {:?}; the old one is kept",
            String::from_utf8_lossy(name)
        ))
    };
    let (mut names, mut new_names) = (old.tree_names(), new.tree_names());
    names.sort();
    new_names.sort();
    if names != new_names {
        return Err(mismatch(b"(the list of trees)"));
    }
    for name in names {
        let (a, b) = (old.open_tree(&name)?, new.open_tree(&name)?);
        let (mut a, mut b) = (a.iter(), b.iter());
        loop {
            match (a.next().transpose()?, b.next().transpose()?) {
                (None, None) => break,
                (Some(x), Some(y)) if x == y => {}
                _ => return Err(mismatch(&name)),
            }
        }
    }
    Ok(())
}

/// Wait until no sled has the store in `dir` open (sled lets go of its
/// lock on `db` once its background threads are done), and hold its lock.
fn wait_for_sled(dir: &Path) -> Result<std::fs::File> {
    let file = std::fs::File::open(dir.join("db"))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Io(std::io::Error::other(
                    "sled did not let go of the store it was rewriting",
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}

/// fsync every file under `dir`, then every folder's names.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    custos_durable::sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests;
