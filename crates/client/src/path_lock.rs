//! One lock per file that this process reads, changes and writes back
//! (the pinned checkpoint, the record of cases seen), so that two tasks
//! doing so at once cannot lose one's change or undo it: the desk proves
//! 8 cases at a time while it serves pages. Owns the locks only, no file.
//!
//! Files are keyed by their path as the caller spells it (one
//! `TrustStore` spells each the same way every time). Another process
//! using the same files is not held by these locks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// A lock of type `L` (a std or a tokio mutex) for each path asked for,
/// made on first use and kept while the process runs: one per vault and
/// identity this process talks to, so a handful.
pub(crate) struct PathLocks<L> {
    locks: Mutex<BTreeMap<PathBuf, Arc<L>>>,
}

impl<L: Default> PathLocks<L> {
    /// No lock yet.
    pub(crate) const fn new() -> Self {
        PathLocks {
            locks: Mutex::new(BTreeMap::new()),
        }
    }

    /// The lock of `path`: the same one for every caller naming it.
    pub(crate) fn of(&self, path: &Path) -> Arc<L> {
        // The map is only looked up and added to while locked, so a
        // panic elsewhere cannot leave it half changed.
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(path.to_path_buf()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_path_one_lock() {
        static LOCKS: PathLocks<Mutex<()>> = PathLocks::new();
        let a = LOCKS.of(Path::new("/x/a.json"));
        assert!(Arc::ptr_eq(&a, &LOCKS.of(Path::new("/x/a.json"))));
        assert!(!Arc::ptr_eq(&a, &LOCKS.of(Path::new("/x/b.json"))));
    }
}
