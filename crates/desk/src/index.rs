//! The lawyer's inbox index, as data: every case's row, proven from the
//! log, and the progress of the refresh that fills it. What fills it
//! (the vault requests, the proofs) is `lawyer`'s; this module does no
//! I/O, so the desk's state can hold it without knowing the lawyer's pages.

use std::collections::HashMap;

use custos_client::flows::CaseRow;

/// How old the index may be when the inbox is visited before it looks
/// for new and changed cases (one listing request, then only those).
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The inbox's index.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    inner: std::sync::Mutex<Index>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) rows: HashMap<String, CaseRow>,
    /// While a refresh runs: cases proven so far, and of how many.
    pub(crate) filling: Option<(usize, usize)>,
    /// What stopped the last refresh, if it failed.
    pub(crate) failed: Option<String>,
    /// Whether the index has been filled once.
    pub(crate) filled: bool,
    /// When the last refresh started.
    started: Option<std::time::Instant>,
    /// When each row was proven.
    proven_at: HashMap<String, std::time::Instant>,
    /// A refresh asked for while one ran: whether it is of every case.
    again: Option<bool>,
}

impl Index {
    /// Take a case's row out, under the lock already held.
    pub(crate) fn drop_row(&mut self, case: &str) {
        self.rows.remove(case);
        self.proven_at.remove(case);
    }

    /// Whether `case` was proven longer than `after` ago (or never).
    pub(crate) fn stale(&self, case: &str, after: std::time::Duration) -> bool {
        self.proven_at.get(case).is_none_or(|t| t.elapsed() > after)
    }
}

/// What the inbox page reads.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) rows: Vec<CaseRow>,
    pub(crate) filling: Option<(usize, usize)>,
    pub(crate) failed: Option<String>,
    pub(crate) filled: bool,
}

impl Inbox {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let index = self.lock();
        Snapshot {
            rows: index.rows.values().cloned().collect(),
            filling: index.filling,
            failed: index.failed.clone(),
            filled: index.filled,
        }
    }

    /// Start a refresh (of every case: `all`), unless one runs (then it
    /// is asked for again when that one ends, unless `only_if_stale`) or
    /// `only_if_stale` and one started less than [`REFRESH_EVERY`] ago.
    pub(crate) fn begin(&self, only_if_stale: bool, all: bool) -> bool {
        let mut index = self.lock();
        let fresh = index.started.is_some_and(|t| t.elapsed() < REFRESH_EVERY);
        if only_if_stale && (fresh || index.filling.is_some()) {
            return false;
        }
        if index.filling.is_some() {
            index.again = Some(index.again.unwrap_or(false) || all);
            return false;
        }
        index.filling = Some((0, 0));
        index.started = Some(std::time::Instant::now());
        true
    }

    /// The refresh ended, with `failed` if it failed (the listing, or
    /// some cases: their count and the first error). Returns the refresh
    /// asked for meanwhile, if any (then the index stays filling).
    pub(crate) fn end(&self, failed: Option<String>) -> Option<bool> {
        let mut index = self.lock();
        index.failed = failed;
        // A failed listing does not make an empty inbox look complete.
        index.filled = index.filled || index.failed.is_none() || !index.rows.is_empty();
        match index.again.take() {
            Some(all) => {
                index.filling = Some((0, 0));
                index.started = Some(std::time::Instant::now());
                Some(all)
            }
            None => {
                index.filling = None;
                None
            }
        }
    }

    /// Put one case's row in.
    pub(crate) fn put(&self, row: CaseRow) {
        let mut index = self.lock();
        index
            .proven_at
            .insert(row.summary.case_id.clone(), std::time::Instant::now());
        index.rows.insert(row.summary.case_id.clone(), row);
        if let Some((n, _)) = index.filling.as_mut() {
            *n += 1;
        }
    }

    /// Take a case's row out (no longer held).
    pub(crate) fn remove(&self, case_id: &str) {
        self.lock().drop_row(case_id);
    }
}
