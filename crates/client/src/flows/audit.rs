//! Auditing the whole log from a client: download every entry, replay every
//! chain and signature against a (witnessed) checkpoint, and hold it to the
//! last one this auditor verified. The replay itself is the core's `LogAuditor`.
//!
//! With a state file, the next audit replays only the entries after the
//! last one verified: the file keeps what the replay needs to carry on
//! (the tree's right edge, the chains' heads, the registry, the submitter
//! keys, the spent nonces), signed by the auditor's own key, and the log
//! must prove itself consistent with the checkpoint it keeps. A file that
//! does not verify under the auditor's key is refused, and the audit says
//! how to run a full one.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::witnessed::cosigned_checkpoint;

mod state_file;
use super::{verify, Result};
use crate::{Client, ClientError};
use custos_core::audit::{decode_hashes, AuditSummary, LogAuditor, ReplayState};
use custos_core::custody::checkpoint::{Checkpoint, LogVerifier};
use custos_core::custody::cosignature::WitnessVerifier;
use custos_core::custody::merkle;
use custos_core::identity::{Card, Identity};
use custos_durable::write_atomically;

/// What an auditor remembers between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditState {
    /// The last verified checkpoint note.
    pub checkpoint: String,
    /// Witnesses (vkeys) whose cosignatures every audited checkpoint must
    /// carry, kept from the first audit that named them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// How many of them.
    #[serde(default)]
    pub quorum: usize,
    /// The log's trust anchors as the first audit saw them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<Card>,
}

/// How long an audit waits for the witnesses to cosign the newest
/// checkpoint: the vault sends each new one as soon as it is signed, and a
/// witness answers in milliseconds, but a write may have just landed.
const COSIGN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Result of an audit: what was verified, and the first failure if any.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// Entries verified (chain, signature, and inclusion in the root).
    pub entries: u64,
    /// Chains checked.
    pub chains: usize,
    /// Actor signatures verified.
    pub signatures: u64,
    /// Entries verified, by action: who did what kind of thing is in the
    /// log; what it held is not.
    pub actions: std::collections::BTreeMap<String, u64>,
    /// Size of the signed checkpoint audited against.
    pub checkpoint_size: u64,
    /// Its root, base64.
    pub checkpoint_root: String,
    /// Size of the previous checkpoint proven consistent, if a state file
    /// was given and held one.
    pub consistent_with: Option<u64>,
    /// Where this audit's replay started: the size the state file had
    /// verified (only the entries after it were downloaded and checked),
    /// or 0 for a full audit.
    pub from_size: u64,
    /// The witnesses whose cosignatures on the checkpoint verified, when a
    /// quorum was asked for (given, or kept in the state file).
    pub cosigned_by: Vec<String>,
    /// The quorum asked for (0: none).
    pub quorum: usize,
    /// The log's trust anchors, as `key id name`.
    pub anchors: Vec<String>,
    /// The first check that failed; `None` when the audit passed.
    pub failure: Option<String>,
}

impl AuditReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Page size for downloading entries.
const AUDIT_PAGE: u64 = 1000;

/// Audit the whole log: checkpoint signature, every chain link, every actor
/// signature, the Merkle root, and (with a state file) consistency with the
/// last checkpoint this auditor verified; the state file is updated only
/// when everything passed. A failed check is reported in
/// [`AuditReport::failure`]; an error means the audit could not run.
pub async fn audit(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    state: Option<&Path>,
) -> Result<AuditReport> {
    audit_with(client, identity, log, state, AuditOptions::default()).await
}

/// Told, after each page of entries, how many of how many have been
/// checked (the desk shows it).
pub type AuditProgress = std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>;

/// What an audit asks beyond the log's own signature.
#[derive(Clone)]
pub struct AuditOptions {
    /// Witnesses whose cosignatures the checkpoint must carry, and how
    /// many. Given once, they are kept in the state file and required on
    /// every later audit with it.
    pub witnesses: Option<crate::bundle::Policy>,
    /// How long to wait for the newest checkpoint's cosignatures.
    pub cosign_wait: std::time::Duration,
    /// Told of the entries checked so far.
    pub progress: Option<AuditProgress>,
    /// Replay the whole log even if the state file could carry on: a
    /// state file the auditor's key does not verify is then set aside
    /// (its checkpoint, witnesses and anchors too) and written anew.
    pub full: bool,
}

impl std::fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOptions")
            .field("witnesses", &self.witnesses)
            .field("cosign_wait", &self.cosign_wait)
            .field("full", &self.full)
            .finish_non_exhaustive()
    }
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            witnesses: None,
            cosign_wait: COSIGN_WAIT,
            progress: None,
            full: false,
        }
    }
}

/// [`audit`], with [`AuditOptions`].
pub async fn audit_with(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    state: Option<&Path>,
    options: AuditOptions,
) -> Result<AuditReport> {
    let mut report = AuditReport::default();
    let mut auditor = LogAuditor::new();
    let outcome = match state_file::load(state, identity, options.full) {
        Ok(old) => run_audit(client, identity, log, state, old, options, &mut auditor, &mut report).await,
        Err(e) => Err(e),
    };
    let AuditSummary {
        entries,
        chains,
        signatures,
        actions,
    } = auditor.summary();
    (report.entries, report.chains, report.signatures) = (entries, chains, signatures);
    report.actions = actions.into_iter().map(|(a, n)| (a.to_owned(), n)).collect();
    match outcome {
        Ok(()) => Ok(report),
        Err(ClientError::Verify(problem)) => {
            report.failure = Some(problem);
            Ok(report)
        }
        Err(other) => Err(other),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_audit(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    state: Option<&Path>,
    old: Option<(AuditState, Option<ReplayState>)>,
    options: AuditOptions,
    auditor: &mut LogAuditor,
    report: &mut AuditReport,
) -> Result<()> {
    let (old, replay) = old.unzip();
    let policy = witness_policy(options.witnesses, old.as_ref())?;
    report.quorum = policy.quorum;
    let note = cosigned_checkpoint(client, log, &policy, options.cosign_wait, &mut report.cosigned_by).await?;
    let cp = log.verify(&note).map_err(|e| verify(format!("checkpoint: {e}")))?;
    (report.checkpoint_size, report.checkpoint_root) = (cp.size, B64.encode(cp.root));
    if let (Some(old), Some(replay)) = (&old, replay.flatten()) {
        // Carry on from the state: only once the log is proven to extend
        // the checkpoint it was verified at (which the state's tree is).
        report.consistent_with = Some(extends_last(client, log, old, &cp).await?);
        *auditor = LogAuditor::resume(&replay).map_err(|e| verify(format!("{e}: {FULL}")))?;
        if auditor.size() != report.consistent_with.unwrap_or_default() {
            return Err(verify(format!(
                "state file: its replay is not at its checkpoint: {FULL}"
            )));
        }
        report.from_size = auditor.size();
    }
    replay_entries(client, identity, &cp, auditor, options.progress.as_ref()).await?;
    auditor.check_checkpoint(&cp).map_err(|e| verify(e.to_string()))?;
    report.anchors = auditor
        .anchors()
        .iter()
        .map(|c| format!("{} {}", c.key_id(), c.name))
        .collect();

    if let Some(old) = &old {
        if !old.anchors.is_empty() && old.anchors != auditor.anchors() {
            return Err(verify(
                "the log's trust anchors are not the admin cards pinned by the first audit",
            ));
        }
        if report.consistent_with.is_none() {
            report.consistent_with = Some(extends_last(client, log, old, &cp).await?);
        }
    }
    if let Some(path) = state {
        let saved = AuditState {
            checkpoint: note,
            witnesses: policy.witnesses.iter().map(WitnessVerifier::vkey).collect(),
            quorum: policy.quorum,
            anchors: auditor.anchors().to_vec(),
        };
        write_atomically(path, &state_file::seal(saved, auditor.state(), identity))?;
    }
    Ok(())
}

/// What an auditor is told to do when the state file cannot be used.
const FULL: &str =
    "run a full audit with `custos audit --full --state FILE`, which checks the whole log again and rewrites the file";

/// The witnesses asked for now, or else those the state file keeps.
fn witness_policy(given: Option<crate::bundle::Policy>, old: Option<&AuditState>) -> Result<crate::bundle::Policy> {
    Ok(match (given, old) {
        (Some(p), _) => p,
        (None, Some(old)) => crate::bundle::Policy {
            witnesses: old
                .witnesses
                .iter()
                .map(|w| WitnessVerifier::parse(w).map_err(|e| verify(format!("state file witness: {e}"))))
                .collect::<Result<_>>()?,
            quorum: old.quorum,
        },
        (None, None) => crate::bundle::Policy::default(),
    })
}

/// Download the log's entries up to the checkpoint's size, a page at a
/// time, and replay each through `auditor`.
async fn replay_entries(
    client: &Client,
    identity: &Identity,
    cp: &Checkpoint,
    auditor: &mut LogAuditor,
    progress: Option<&AuditProgress>,
) -> Result<()> {
    while auditor.size() < cp.size {
        let page = client
            .entries(
                identity.signing_key(),
                auditor.size(),
                AUDIT_PAGE.min(cp.size - auditor.size()),
            )
            .await?;
        if page.entries.is_empty() {
            return Err(verify(format!(
                "the vault returned no entries at index {} of {}",
                auditor.size(),
                cp.size
            )));
        }
        let mut entries = page
            .entries
            .iter()
            .map(|e| B64.decode(e).map_err(|_| verify("an entry is not base64")))
            .collect::<Result<Vec<_>>>()?;
        entries.truncate((cp.size - auditor.size()) as usize);
        auditor.push_all(&entries).map_err(|e| verify(e.to_string()))?;
        if let Some(tell) = progress {
            tell(auditor.size(), cp.size);
        }
    }
    Ok(())
}

/// That `cp` extends the checkpoint of the last audit (never rolled back,
/// rewritten or forked); returns the last audit's size.
async fn extends_last(client: &Client, log: &LogVerifier, old: &AuditState, cp: &Checkpoint) -> Result<u64> {
    let old_cp = log
        .verify(&old.checkpoint)
        .map_err(|e| verify(format!("state file checkpoint: {e}")))?;
    let describe = |c: &Checkpoint| format!("size {} root {}", c.size, B64.encode(c.root));
    if old_cp.size > cp.size {
        return Err(verify(format!(
            "the log was rolled back: last verified {}, now {}",
            describe(&old_cp),
            describe(cp)
        )));
    }
    let proof = client.consistency(old_cp.size, cp.size).await?;
    let proof = decode_hashes(&proof.proof).ok_or_else(|| verify("consistency proof is malformed"))?;
    merkle::verify_consistency(old_cp.size, cp.size, &proof, &old_cp.root, &cp.root).map_err(|e| {
        verify(format!(
            "the log was rewritten or forked: last verified {}, now {}: {e}",
            describe(&old_cp),
            describe(cp)
        ))
    })?;
    Ok(old_cp.size)
}
