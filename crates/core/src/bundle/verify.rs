//! Verifying a bundle offline against a pinned log key: each check in turn,
//! stopping at the first failure, and a report line for every one. No
//! network; the derived files it compares with come from `derived`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::derived::{b64, manifest_bytes, readme};
use super::error::{fail, BundleError, BundleProblem, Failure};
use super::files::{hash_objects, layout, read_limited, read_text, Layout};
use super::{
    event_file, proof_file, report, CheckLine, Policy, Verified, VerifiedEvent, VerifyReport, CHECKPOINT_FILE,
    MANIFEST_FILE, README_FILE, REPORT_FILE, VKEY_FILE,
};
use crate::audit::{AuditError, LogAuditor};
use crate::custody::checkpoint::{Checkpoint, LogVerifier};
use crate::custody::cosignature::cosigners;
use crate::custody::merkle;
use crate::custody::tlog_proof::TlogProof;
use crate::custody::unix_now;
use crate::custody::{Action, VAULT_CASE};

/// Largest event file read: case creation bodies are at most 256 KiB of JSON,
/// stored base64 inside the event.
const MAX_EVENT_BYTES: u64 = 1024 * 1024;
/// Largest proof or checkpoint file: a few dozen lines.
pub(super) const MAX_NOTE_BYTES: u64 = 64 * 1024;
/// Largest manifest, README or report: a case with tens of thousands of events.
pub(super) const MAX_DERIVED_BYTES: u64 = 64 * 1024 * 1024;

pub(super) struct Checks {
    pub(super) lines: Vec<CheckLine>,
}

impl Checks {
    pub(super) fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.lines.push(CheckLine {
            check,
            passed: true,
            detail: detail.into(),
        });
    }
}

/// The checks on the evidence itself: key, checkpoint, witnesses, layout,
/// inclusion, chains and signatures, completeness, objects. The derived
/// files (manifest, README, report) are checked by [`verify_dir`].
fn verify_contents(
    dir: &Path,
    log: &LogVerifier,
    policy: &Policy,
    complete: bool,
    checks: &mut Checks,
) -> Result<Verified, Failure> {
    let (note, checkpoint) = check_signed_checkpoint(dir, log, checks)?;
    check_witnesses(&note, policy, checks)?;
    let layout = layout(dir, complete)?;
    checks.pass(
        "files",
        format!(
            "{} events, {} proofs, {} objects, nothing else",
            layout.events.len(),
            layout.events.len(),
            layout.objects.len()
        ),
    );
    let events = check_inclusion(dir, &layout, &note, &checkpoint, checks)?;
    let (case_id, verified) = check_chains(events, &checkpoint, checks)?;
    let objects = check_objects(dir, &layout, &verified, checks)?;
    Ok(Verified {
        case_id,
        checkpoint,
        events: verified,
        objects,
    })
}

/// `log.vkey` is the pinned key, and `checkpoint.txt` is signed with it;
/// returns the note and the checkpoint it holds.
pub(super) fn check_signed_checkpoint(
    dir: &Path,
    log: &LogVerifier,
    checks: &mut Checks,
) -> Result<(String, Checkpoint), Failure> {
    let vkey = read_text(&dir.join(VKEY_FILE), MAX_NOTE_BYTES, "vkey")?;
    if vkey != format!("{}\n", log.vkey()) {
        return fail("vkey", BundleProblem::WrongLogKey);
    }
    checks.pass("vkey", format!("log.vkey is the pinned key {}", log.vkey()));

    let note = read_text(&dir.join(CHECKPOINT_FILE), MAX_NOTE_BYTES, "checkpoint")?;
    let checkpoint = log
        .verify(&note)
        .or_else(|e| fail("checkpoint", BundleProblem::Checkpoint(e)))?;
    checks.pass(
        "checkpoint",
        format!(
            "signed by the log: size {} root {}",
            checkpoint.size,
            b64(&checkpoint.root)
        ),
    );
    Ok((note, checkpoint))
}

/// The checkpoint carries a quorum of the given witnesses' cosignatures
/// (checked, and reported, only when witnesses or a quorum were given).
pub(super) fn check_witnesses(note: &str, policy: &Policy, checks: &mut Checks) -> Result<(), Failure> {
    let names: Vec<String> = cosigners(note, &policy.witnesses, unix_now())
        .into_iter()
        .map(str::to_owned)
        .collect();
    if !policy.witnesses.is_empty() || policy.quorum > 0 {
        if names.len() < policy.quorum {
            return fail(
                "witnesses",
                BundleProblem::Quorum {
                    cosigned: names.len(),
                    given: policy.witnesses.len(),
                    quorum: policy.quorum,
                },
            );
        }
        checks.pass(
            "witnesses",
            format!(
                "cosigned by {} (quorum {}): {}",
                names.len(),
                policy.quorum,
                names.join(", ")
            ),
        );
    }
    Ok(())
}

/// Every event file is in the checkpointed log, by its proof against
/// exactly `checkpoint.txt`; returns the events' bytes by index.
fn check_inclusion(
    dir: &Path,
    layout: &Layout,
    note: &str,
    checkpoint: &Checkpoint,
    checks: &mut Checks,
) -> Result<Vec<(u64, Vec<u8>)>, Failure> {
    let mut events = Vec::with_capacity(layout.events.len());
    for &index in &layout.events {
        events.push((index, included_event(dir, index, note, checkpoint)?.0));
    }
    checks.pass(
        "inclusion",
        format!("all {} events are in the checkpointed log", events.len()),
    );
    Ok(events)
}

/// Event file `index` and its proof's text, once the proof shows the
/// event at that index in the tree of exactly `checkpoint.txt`.
pub(super) fn included_event(
    dir: &Path,
    index: u64,
    note: &str,
    checkpoint: &Checkpoint,
) -> Result<(Vec<u8>, String), Failure> {
    let bytes = read_limited(&dir.join(event_file(index)), MAX_EVENT_BYTES, "inclusion")?;
    let text = read_text(&dir.join(proof_file(index)), MAX_NOTE_BYTES, "inclusion")?;
    let proof = TlogProof::parse(&text).or_else(|source| {
        fail(
            "inclusion",
            BundleProblem::Proof {
                file: proof_file(index),
                source,
            },
        )
    })?;
    if proof.index != index {
        return fail(
            "inclusion",
            BundleProblem::ProofIndex {
                file: proof_file(index),
                index: proof.index,
            },
        );
    }
    if proof.checkpoint != note {
        return fail(
            "inclusion",
            BundleProblem::ProofCheckpoint {
                file: proof_file(index),
            },
        );
    }
    merkle::verify_inclusion(
        index,
        checkpoint.size,
        &merkle::leaf_hash(&bytes),
        &proof.hashes,
        &checkpoint.root,
    )
    .or_else(|source| fail("inclusion", BundleProblem::NotIncluded { index, source }))?;
    Ok((bytes, text))
}

/// The events form one case's chain and the vault's, linked and signed,
/// and complete: they end with the export event at the checkpoint's last
/// entry, which records how long the vault chain was. Returns the case id
/// and the parsed events.
fn check_chains(
    events: Vec<(u64, Vec<u8>)>,
    checkpoint: &Checkpoint,
    checks: &mut Checks,
) -> Result<(String, Vec<VerifiedEvent>), Failure> {
    let mut auditor = LogAuditor::new();
    let mut verified = Vec::with_capacity(events.len());
    let mut case_id: Option<String> = None;
    for (index, bytes) in events {
        let event = auditor
            .check_event(&bytes)
            .or_else(|problem| fail("chain", BundleProblem::Audit(AuditError { index, problem })))?;
        if event.case != VAULT_CASE {
            match &case_id {
                None => case_id = Some(event.case.clone()),
                Some(c) if *c != event.case => {
                    return fail(
                        "chain",
                        BundleProblem::SecondCase {
                            index,
                            case: event.case,
                        },
                    );
                }
                Some(_) => {}
            }
        }
        verified.push(VerifiedEvent { index, bytes, event });
    }
    let case_id = case_id.map_or_else(|| fail("chain", BundleProblem::NoCaseEvents), Ok)?;
    let summary = auditor.summary();
    // Completeness: the export event is the last entry of the proven tree,
    // so every earlier event of the case had to be included; and it records
    // how long the vault chain was.
    let last = verified.last().expect("a case event exists");
    if last.event.action != Action::CaseExported || last.index + 1 != checkpoint.size {
        return fail("chain", BundleProblem::NoExportAtEnd);
    }
    let vault_events = verified.iter().filter(|e| e.event.case == VAULT_CASE).count() as u64;
    if last.event.details["vault_events"].as_u64() != Some(vault_events) {
        return fail("chain", BundleProblem::VaultEventCount(vault_events));
    }
    let case_events = verified.len() as u64 - vault_events;
    checks.pass(
        "chain",
        format!(
            "case chain of {case_events} events and vault chain of {vault_events} events complete and linked; {} actor signatures verified",
            summary.signatures
        ),
    );
    Ok((case_id, verified))
}

/// The objects in the bundle are exactly those the case stored and the
/// export event names, each matching its SHA-256; returns their sizes.
fn check_objects(
    dir: &Path,
    layout: &Layout,
    verified: &[VerifiedEvent],
    checks: &mut Checks,
) -> Result<BTreeMap<String, u64>, Failure> {
    let last = verified.last().expect("a case event exists");
    let stored: BTreeSet<String> = verified
        .iter()
        .filter(|e| e.event.action == Action::ObjectStored)
        .flat_map(|e| e.event.objects.iter().cloned())
        .collect();
    let exported: BTreeSet<String> = last.event.objects.iter().cloned().collect();
    if exported != stored {
        return fail("objects", BundleProblem::ExportNamesOtherObjects);
    }
    if layout.objects != stored {
        let missing = stored.difference(&layout.objects).next();
        let extra = layout.objects.difference(&stored).next();
        return fail(
            "objects",
            match (missing, extra) {
                (Some(m), _) => BundleProblem::ObjectMissing(m.clone()),
                (_, Some(x)) => BundleProblem::ObjectNotStored(x.clone()),
                _ => unreachable!("sets differ"),
            },
        );
    }
    let objects = hash_objects(dir, &stored)?;
    checks.pass(
        "objects",
        format!("{} ciphertext objects match their SHA-256", objects.len()),
    );
    Ok(objects)
}

/// Verify a bundle folder offline against the pinned log key: every check,
/// stopping at the first failure. Never returns an error: problems are
/// failed checks.
pub fn verify_dir(dir: &Path, log: &LogVerifier, policy: &Policy) -> (VerifyReport, Option<Verified>) {
    let mut checks = Checks { lines: Vec::new() };
    let result = verify_contents(dir, log, policy, true, &mut checks).and_then(|v| {
        let has_report = dir.join(REPORT_FILE).exists();
        let derived: [(&str, &'static str, Option<Vec<u8>>); 3] = [
            (MANIFEST_FILE, "manifest", Some(manifest_bytes(&v, has_report))),
            (README_FILE, "readme", Some(readme(&v).into_bytes())),
            (
                REPORT_FILE,
                "report",
                has_report.then(|| report::render(&v).into_bytes()),
            ),
        ];
        for (file, check, expected) in derived {
            let Some(expected) = expected else { continue };
            let found = read_limited(&dir.join(file), MAX_DERIVED_BYTES, check)?;
            if found != expected {
                return fail(check, BundleProblem::DerivedDiffers(file));
            }
            checks.pass(check, format!("{file} matches the verified contents"));
        }
        Ok(v)
    });
    match result {
        Ok(v) => (
            VerifyReport {
                case_id: Some(v.case_id.clone()),
                checks: checks.lines,
                passed: true,
            },
            Some(v),
        ),
        Err(failure) => {
            let (check, problem) = failure.into_parts();
            checks.lines.push(CheckLine {
                check,
                passed: false,
                detail: problem.to_string(),
            });
            (
                VerifyReport {
                    case_id: None,
                    checks: checks.lines,
                    passed: false,
                },
                None,
            )
        }
    }
}

/// Write the derived files (manifest, README, and the report if asked) into
/// a folder holding the evidence files, after checking those.
pub fn finish_dir(dir: &Path, log: &LogVerifier, with_report: bool) -> Result<(), BundleError> {
    let mut checks = Checks { lines: Vec::new() };
    let v = verify_contents(dir, log, &Policy::default(), false, &mut checks)?;
    let write = |file: &'static str, bytes: &[u8]| {
        std::fs::write(dir.join(file), bytes).map_err(|source| BundleError::Write { file, source })
    };
    write(MANIFEST_FILE, &manifest_bytes(&v, with_report))?;
    write(README_FILE, readme(&v).as_bytes())?;
    if with_report {
        write(REPORT_FILE, report::render(&v).as_bytes())?;
    }
    Ok(())
}
