//! A lawyer's work on cases: show a case's workflow (status, tags,
//! assignee, notes), change it, add a note, and list the cases with theirs.
//! Every entry is read from the signed log and opened with the lawyers'
//! key of the case; every change is sealed to that key before it leaves.
//! What this lawyer last saw of each case stays on this machine
//! ([`Seen`]), for `cases --new`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{held_proven, holder_status, lawyers_key_of, Result};
use crate::path_lock::PathLocks;
use crate::proven::ProvenCase;
use crate::workflow::{normalize_tag, Assignment, Change, Entry, Note, Seen, Status, Workflow};
use crate::{Client, ClientError};
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::Receipt;
use custos_core::identity::{Identity, KeyId, Role};
use custos_core::wire::{CaseSummary, WorkflowBody};

/// A case as its lawyers work it: what `custos case show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CaseWork {
    /// The case id.
    pub case_id: String,
    /// `open`, `withdrawn` or `withdrawn_under_duress`, from the log.
    pub status: String,
    /// The lawyers' status.
    pub workflow_status: Status,
    /// The tags, sorted.
    pub tags: Vec<String>,
    /// The lawyer the case is assigned to, if any.
    pub assignee: Option<KeyId>,
    /// The time of the case's newest event.
    pub last_activity: String,
    /// The notes, oldest first.
    pub notes: Vec<Note>,
    /// Every workflow change, oldest first.
    pub history: Vec<crate::workflow::Logged>,
    /// Names of the principals the case's history names, from the log.
    pub names: BTreeMap<KeyId, String>,
    /// Entries that did not open with the lawyers' key, or broke the
    /// rules once opened: counted, never guessed at, never applied.
    pub unreadable: usize,
    /// Entries signed by a key that did not hold the case then (the
    /// auditor refuses such a log): shown, never applied.
    pub refused: usize,
}

/// Which cases `custos cases` lists.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only those with this workflow status.
    pub status: Option<Status>,
    /// Only those with this tag.
    pub tag: Option<String>,
    /// Only those assigned to this identity.
    pub mine: bool,
    /// Only those with activity since this identity last looked.
    pub new: bool,
}

/// One row of `custos cases`: the vault's summary, and the workflow as the
/// log proves it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRow {
    /// What the vault lists; its `status` is the holder's, from the log.
    #[serde(flatten)]
    pub summary: CaseSummary,
    /// The lawyers' status.
    pub workflow_status: Status,
    /// The tags, sorted.
    pub tags: Vec<String>,
    /// The assignee, if any.
    pub assignee: Option<KeyId>,
    /// The assignee's name, as the signed registry gives it.
    pub assignee_name: Option<String>,
    /// The time of the case's newest event.
    pub last_activity: String,
    /// Whether someone else acted on the case since this identity last
    /// looked.
    pub new: bool,
    /// Workflow entries that could not be read: while there are any, the
    /// workflow shown may be incomplete.
    pub unreadable: usize,
}

/// Open every workflow entry of a proven case and replay them. Without
/// the lawyers' key (granted by a lawyer who lacked it), every entry
/// counts as unreadable: one such case must not stop a listing.
fn replay(identity: &Identity, proven: &ProvenCase) -> Workflow {
    let lawyers = if proven.workflow.is_empty() {
        None
    } else {
        lawyers_key_of(identity, proven).ok()
    };
    let entries = proven.workflow.iter().map(|e| Entry {
        by: e.by.clone(),
        time: e.time.clone(),
        index: e.index,
        change: lawyers.as_ref().and_then(|key| {
            let sealed = B64.decode(&e.entry).ok()?;
            Change::open(&sealed, key).ok()
        }),
        by_holder: e.by_holder,
        holders: e.holders.clone(),
    });
    Workflow::replay(entries, &proven.revocations, |k| is_lawyer_holder(proven, k))
}

fn is_lawyer_holder(proven: &ProvenCase, key: &KeyId) -> bool {
    proven.envelopes.contains_key(key) && proven.registry.get(key).is_some_and(|(_, role)| *role == Role::Lawyer)
}

/// The workflow of a proven case as this identity may read it.
pub fn case_work(identity: &Identity, proven: &ProvenCase) -> Result<CaseWork> {
    let w = replay(identity, proven);
    let (unreadable, refused) = (w.unreadable(), w.refused());
    let names = proven
        .registry
        .iter()
        .map(|(k, (card, _))| (k.clone(), card.name.clone()))
        .collect();
    Ok(CaseWork {
        case_id: proven.case_id.clone(),
        status: holder_status(identity, proven)?,
        workflow_status: w.status,
        tags: w.tags.into_iter().collect(),
        assignee: w.assignee,
        last_activity: proven.last_event.1.clone(),
        notes: w.notes,
        history: w.history,
        names,
        unreadable,
        refused,
    })
}

/// The case's workflow as this lawyer may read it, proven from the log;
/// the case then counts as seen.
pub async fn case_show(client: &Client, identity: &Identity, log: &LogVerifier, case_id: &str) -> Result<CaseWork> {
    let (_, proven) = held_proven(client, identity, log, case_id).await?;
    let work = case_work(identity, &proven)?;
    mark_seen_async(client, identity, case_id, proven.last_event.0).await;
    Ok(work)
}

/// Record one change of the case's workflow (or a note): checked, sealed
/// to the lawyers' key of the case and sent as a signed request. An
/// assignee must be a lawyer holding the case, as the log shows it.
pub async fn case_change(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    change: Change,
) -> Result<Receipt> {
    let change = change.validated().map_err(|e| ClientError::Usage(e.to_string()))?;
    let (_, proven) = held_proven(client, identity, log, case_id).await?;
    if let Some(Assignment::To(k)) = &change.assign {
        if !is_lawyer_holder(&proven, k) {
            return Err(ClientError::Usage(format!(
                "{k} is not a lawyer holding case {case_id}: grant it to them first"
            )));
        }
    }
    let lawyers = lawyers_key_of(identity, &proven)?;
    let sealed = change.seal(&lawyers).map_err(|e| ClientError::Usage(e.to_string()))?;
    let body = WorkflowBody {
        entry: B64.encode(sealed),
    };
    let receipt = client.change_workflow(identity.signing_key(), case_id, &body).await?;
    // Your own change is not news to you.
    mark_seen_async(client, identity, case_id, receipt.index).await;
    Ok(receipt)
}

/// The cases this identity holds, each with its workflow proven from the
/// log, that pass `filter`. Each withdrawn case's status is the holder's
/// (see [`holder_status`]).
pub async fn cases(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    filter: &CaseFilter,
) -> Result<Vec<CaseRow>> {
    let seen = seen_cases_async(client, identity).await;
    let me = identity.key_id();
    let tag = filter
        .tag
        .as_deref()
        .map(normalize_tag)
        .transpose()
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    let mut rows = Vec::new();
    for summary in client.cases(identity.signing_key()).await? {
        let row = case_row(client, identity, log, &seen, summary).await?;
        let keep = filter.status.is_none_or(|s| s == row.workflow_status)
            && tag.as_ref().is_none_or(|t| row.tags.contains(t))
            && (!filter.mine || row.assignee.as_ref() == Some(&me))
            && (!filter.new || row.new);
        if keep {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// One case's row, its workflow proven from the log, "new" as against
/// `seen` (from [`seen_cases_async`]).
pub async fn case_row(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    seen: &Seen,
    mut summary: CaseSummary,
) -> Result<CaseRow> {
    let me = identity.key_id();
    let (_, proven) = held_proven(client, identity, log, &summary.case_id).await?;
    let w = replay(identity, &proven);
    summary.status = holder_status(identity, &proven)?;
    let since = seen.cases.get(&summary.case_id).copied();
    let new = proven
        .activity
        .iter()
        .any(|(index, actor)| since.is_none_or(|s| *index > s) && *actor != me.as_str());
    let unreadable = w.unreadable();
    let assignee_name = w
        .assignee
        .as_ref()
        .and_then(|k| proven.registry.get(k))
        .map(|(card, _)| card.name.clone());
    Ok(CaseRow {
        summary,
        workflow_status: w.status,
        tags: w.tags.into_iter().collect(),
        assignee: w.assignee,
        assignee_name,
        last_activity: proven.last_event.1.clone(),
        new,
        unreadable,
    })
}

/// Where this identity's [`Seen`] for this vault is kept: beside the trust
/// pins, named by a hash of the vault's address and the key id. `None`
/// for a client that keeps no pins (nothing is remembered then).
fn seen_path(client: &Client, identity: &Identity) -> Option<PathBuf> {
    let pins = client.pins()?;
    let h = hex::encode(&Sha256::digest(client.base().as_bytes())[..8]);
    Some(pins.dir().join("seen").join(format!("{h}-{}.json", identity.key_id())))
}

/// One lock per record of cases seen in this process: marking one is a
/// read, a change and a write, and two at once (the desk's pages and its
/// proofs) would keep only the last writer's view. A std mutex: it is held
/// around file work only, never across an `.await`.
static SEEN_LOCKS: PathLocks<std::sync::Mutex<()>> = PathLocks::new();

/// What this identity last saw, best effort: a damaged file is set aside
/// (renamed `.damaged`) and counts as nothing seen, so that it can never
/// stop a listing or a retrieval.
///
/// Blocking (it reads a file): async code awaits [`seen_cases_async`].
pub fn seen_cases(client: &Client, identity: &Identity) -> Seen {
    match seen_path(client, identity) {
        Some(path) => read_seen_locked(&path),
        None => Seen::default(),
    }
}

/// [`seen_cases`], read on a blocking thread.
pub async fn seen_cases_async(client: &Client, identity: &Identity) -> Seen {
    let Some(path) = seen_path(client, identity) else {
        return Seen::default();
    };
    tokio::task::spawn_blocking(move || read_seen_locked(&path))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the cases seen");
            Seen::default()
        })
}

/// Remember that this identity has seen the case up to log index `index`
/// (never lowering what it saw before). Best effort: a record that cannot
/// be written is said in the log and otherwise ignored, since it only
/// decides what `cases --new` marks.
///
/// Blocking (it reads and fsyncs a file): async code awaits
/// [`mark_seen_async`].
pub fn mark_seen(client: &Client, identity: &Identity, case_id: &str, index: u64) {
    if let Some(path) = seen_path(client, identity) {
        mark_seen_locked(&path, case_id, index);
    }
}

/// [`mark_seen`], on a blocking thread; done when this returns.
pub async fn mark_seen_async(client: &Client, identity: &Identity, case_id: &str, index: u64) {
    let Some(path) = seen_path(client, identity) else {
        return;
    };
    let case_id = case_id.to_owned();
    if let Err(e) = tokio::task::spawn_blocking(move || mark_seen_locked(&path, &case_id, index)).await {
        tracing::warn!(error = %e, "could not record the cases seen");
    }
}

fn read_seen_locked(path: &Path) -> Seen {
    let lock = SEEN_LOCKS.of(path);
    let _reading = lock.lock().unwrap_or_else(PoisonError::into_inner);
    read_seen(path)
}

fn mark_seen_locked(path: &Path, case_id: &str, index: u64) {
    let lock = SEEN_LOCKS.of(path);
    let _changing = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let mut seen = read_seen(path);
    let at = seen.cases.entry(case_id.to_owned()).or_insert(index);
    *at = (*at).max(index);
    let written = custos_durable::create_private_dir(path.parent().expect("the path has a folder"))
        .and_then(|()| custos_durable::write_atomically(path, &serde_json::to_vec(&seen).expect("serialisable")));
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not record the cases seen");
    }
}

/// The record at `path`, the caller holding its lock (a damaged one is set
/// aside, which must not happen to a record another thread just wrote).
fn read_seen(path: &Path) -> Seen {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the record of cases seen is damaged; setting it aside");
            let _ = std::fs::rename(path, path.with_extension("json.damaged"));
            Seen::default()
        }),
        Err(_) => Seen::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::TrustStore;

    /// Eight threads each mark 25 cases seen, at once: every one of the
    /// 200 is remembered (a read-modify-write without a lock keeps only
    /// the last writer's view of the record, and a case comes back "new").
    /// A client keeping its records in a folder of its own, and an identity.
    fn a_lawyer_s_client() -> (tempfile::TempDir, Client, Identity) {
        let tmp = tempfile::tempdir().unwrap();
        let client = Client::new("http://127.0.0.1:9")
            .unwrap()
            .with_pins(TrustStore::new(tmp.path().to_path_buf()));
        (tmp, client, Identity::generate("Lawyer").unwrap())
    }

    fn case(task: usize, i: usize) -> String {
        format!("{:024x}", task * 1000 + i)
    }

    fn lost(seen: &Seen) -> usize {
        (0..8)
            .flat_map(|t| (0..25).map(move |i| case(t, i)))
            .filter(|c| !seen.cases.contains_key(c))
            .count()
    }

    #[test]
    fn cases_marked_seen_at_once_are_all_remembered() {
        let (_tmp, client, identity) = a_lawyer_s_client();
        std::thread::scope(|s| {
            for t in 0..8 {
                let (client, identity) = (&client, &identity);
                s.spawn(move || {
                    for i in 0..25 {
                        mark_seen(client, identity, &case(t, i), 7);
                    }
                });
            }
        });
        let lost = lost(&seen_cases(&client, &identity));
        assert_eq!(lost, 0, "{lost} of 200 marks lost");
    }

    /// The same from async tasks, as the desk's proofs and pages mark and
    /// read: nothing lost, and a mark never lowers what was seen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cases_marked_seen_at_once_from_tasks_are_all_remembered() {
        let (_tmp, client, identity) = a_lawyer_s_client();
        let (client, identity) = (std::sync::Arc::new(client), std::sync::Arc::new(identity));
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8 {
            let (client, identity) = (client.clone(), identity.clone());
            tasks.spawn(async move {
                for i in 0..25 {
                    mark_seen_async(&client, &identity, &case(t, i), 7).await;
                    let _ = seen_cases_async(&client, &identity).await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        mark_seen_async(&client, &identity, &case(0, 0), 3).await;
        let seen = seen_cases_async(&client, &identity).await;
        let lost = lost(&seen);
        assert_eq!(lost, 0, "{lost} of 200 marks lost");
        assert_eq!(seen.cases[&case(0, 0)], 7, "what was seen is never lowered");
    }
}
