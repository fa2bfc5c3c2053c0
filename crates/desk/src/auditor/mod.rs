//! The auditor's desk: the whole log's audit (`audit`, and what its
//! report says of each check, `checks`), each case's custody timeline
//! without its content (`cases`), the offline check of an export or
//! disclosure bundle (`verify`), and the witnesses' cosignatures on a
//! checkpoint as this desk can check them (`witnesses`, which the admin's
//! page shows too). An auditor holds no case key: nothing here decrypts,
//! and the pages show actions, times, actors and hashes only.
//!
//! This file owns the routes and the background work: an audit reads the
//! whole log and a bundle may hold gigabytes to re-hash, so both run in a
//! task of their own while their page refreshes itself (the desk's pages
//! run no script).

mod audit;
mod cases;
mod checks;
mod verify;
pub(crate) mod witnesses;

pub(crate) use self::audit::pinned_witnesses;

use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::state::Desk;

pub(crate) fn routes() -> Router<Arc<Desk>> {
    // One desk, one router, one set of runs: the runs live beside the
    // routes that use them rather than in `Desk`, which the other roles
    // share.
    let runs = Arc::new(Runs::default());
    Router::new()
        .route("/audit", get(audit::page))
        .route("/audit/run", post(audit::run))
        .route("/audit/cases", get(cases::list))
        .route("/audit/cases/{case}", get(cases::page))
        .route("/verify", get(verify::page).post(verify::run))
        .layer(Extension(runs))
}

/// The auditor, or the page saying this part of the desk is not theirs.
macro_rules! auditor {
    ($cx:expr) => {
        match $cx.as_role(custos_core::identity::Role::Auditor).await {
            Ok(i) => i,
            Err(r) => return r,
        }
    };
}
pub(crate) use auditor;

/// The auditor's background work: the last audit and the last bundle
/// check, each with whether one is running.
#[derive(Default)]
pub(crate) struct Runs {
    pub(crate) audit: Arc<Job<audit::AuditRun>>,
    pub(crate) verify: Arc<Job<verify::VerifyRun>>,
    /// The running audit's entries checked so far, and of how many.
    pub(crate) audit_progress: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

/// One kind of background work: at most one runs at a time; its last
/// result stays until the next one ends.
pub(crate) struct Job<T> {
    inner: Mutex<JobState<T>>,
}

struct JobState<T> {
    /// When the running one started (RFC 3339), if one runs.
    running: Option<String>,
    last: Option<Arc<T>>,
}

impl<T> Default for Job<T> {
    fn default() -> Self {
        Job {
            inner: Mutex::new(JobState {
                running: None,
                last: None,
            }),
        }
    }
}

/// What a page reads of a job.
pub(crate) struct JobView<T> {
    /// When the running one started, if one runs.
    pub(crate) running: Option<String>,
    /// The last one that ended.
    pub(crate) last: Option<Arc<T>>,
}

impl<T: Send + Sync + 'static> Job<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, JobState<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn view(&self) -> JobView<T> {
        let state = self.lock();
        JobView {
            running: state.running.clone(),
            last: state.last.clone(),
        }
    }

    /// Run `work` in the background, unless one runs already (then
    /// `false`). A task that panics still ends the run, with `broken`'s
    /// result, so the page never waits for ever.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        work: impl std::future::Future<Output = T> + Send + 'static,
        broken: impl FnOnce(String) -> T + Send + 'static,
    ) -> bool {
        {
            let mut state = self.lock();
            if state.running.is_some() {
                return false;
            }
            state.running = Some(now());
        }
        let job = self.clone();
        tokio::spawn(async move {
            let result = match tokio::spawn(work).await {
                Ok(t) => t,
                Err(e) => broken(e.to_string()),
            };
            let mut state = job.lock();
            state.running = None;
            state.last = Some(Arc::new(result));
        });
        true
    }
}

/// Now, as RFC 3339.
pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// How often a page reloads itself while its work runs, in seconds.
pub(crate) const REFRESH_SECONDS: u32 = 2;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    /// The auditor's and the admin's pages, whose words must all be in
    /// every language's tables.
    const SOURCES: [&str; 9] = [
        include_str!("mod.rs"),
        include_str!("audit.rs"),
        include_str!("checks.rs"),
        include_str!("cases.rs"),
        include_str!("verify.rs"),
        include_str!("witnesses.rs"),
        include_str!("../admin/mod.rs"),
        include_str!("../admin/principals.rs"),
        include_str!("../admin/vault.rs"),
    ];

    fn table(json: &str) -> HashMap<String, String> {
        serde_json::from_str(json).unwrap()
    }

    /// Every `"au_..."` and `"ad_..."` the pages name is in every
    /// language (a missing one would show its key, or stop a debug build);
    /// and the two tables use only their own prefix, so that no key of
    /// theirs can shadow a lawyer's or a common one in the merged tables.
    #[test]
    fn every_word_the_pages_name_is_in_every_language_and_no_key_is_shared() {
        // Each string literal that is a whole key: a quote, the prefix,
        // lower-case words, a quote.
        let mut named = std::collections::BTreeSet::new();
        for src in SOURCES {
            for prefix in ["\"au_", "\"ad_"] {
                for (at, _) in src.match_indices(prefix) {
                    let rest = &src[at + 1..];
                    let len = rest
                        .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                        .unwrap_or(rest.len());
                    if len > 3 && rest[len..].starts_with('"') {
                        named.insert(rest[..len].to_owned());
                    }
                }
            }
        }
        assert!(named.len() > 100, "the scan found the pages' keys: {}", named.len());
        let languages = [
            (
                "en",
                include_str!("../strings/en/auditor.json"),
                include_str!("../strings/en/admin.json"),
                include_str!("../strings/en/common.json"),
                include_str!("../strings/en/lawyer.json"),
            ),
            (
                "ru",
                include_str!("../strings/ru/auditor.json"),
                include_str!("../strings/ru/admin.json"),
                include_str!("../strings/ru/common.json"),
                include_str!("../strings/ru/lawyer.json"),
            ),
            (
                "kk",
                include_str!("../strings/kk/auditor.json"),
                include_str!("../strings/kk/admin.json"),
                include_str!("../strings/kk/common.json"),
                include_str!("../strings/kk/lawyer.json"),
            ),
        ];
        for (code, auditor, admin, common, lawyer) in languages {
            let (auditor, admin) = (table(auditor), table(admin));
            assert!(
                auditor.keys().all(|k| k.starts_with("au_")),
                "{code}: auditor.json keys start au_"
            );
            assert!(
                admin.keys().all(|k| k.starts_with("ad_")),
                "{code}: admin.json keys start ad_"
            );
            for other in [table(common), table(lawyer)] {
                assert!(
                    other.keys().all(|k| !k.starts_with("au_") && !k.starts_with("ad_")),
                    "{code}: a shared table uses the auditor's or admin's prefix"
                );
            }
            let missing: Vec<&String> = named
                .iter()
                .filter(|k| !auditor.contains_key(*k) && !admin.contains_key(*k))
                .collect();
            assert!(missing.is_empty(), "{code}: no string for {missing:?}");
        }
    }
}
