//! Verifying a disclosure bundle offline against a pinned log key, each
//! check in turn and a report line for every one, stopping at the first
//! failure; and finishing one (its derived files) for the lawyer who made
//! it. The checkpoint and inclusion checks are the export bundle's.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use super::contents::{account, check_cleaned, compare_file, object_keys, open_label, plain_name, KeySource};
use super::derived::{manifest_bytes, readme, summary_file};
use super::summary::{render, Account, Language};
use super::{
    disclosed_file, keys_file, DisclosureManifest, DisclosureReport, DisclosureStatus, HeldObject, ObjectKeys,
    VerifiedDisclosure, VerifiedObject, AGE_SUFFIX, FILES_DIR, FORMAT, KEYS_DIR, SUMMARY_FILE, SUMMARY_SEALED_FILE,
};
use crate::audit::{check_signature, signed_commit, signed_disclosure, signed_registration, AuditError, AuditProblem};
use crate::bundle::error::{fail, BundleError, BundleProblem, Failure};
use crate::bundle::files::{entries, indexed_files, read_limited};
use crate::bundle::verify::{check_signed_checkpoint, check_witnesses, included_event, Checks, MAX_DERIVED_BYTES};
use crate::bundle::{
    CheckLine, Policy, VerifiedEvent, CHECKPOINT_FILE, EVENTS_DIR, MANIFEST_FILE, OBJECTS_DIR, PROOFS_DIR, README_FILE,
    VKEY_FILE,
};
use crate::custody::checkpoint::LogVerifier;
use crate::custody::{Action, Event, VAULT_CASE};
use crate::envelope::{encrypt_bytes, open_with, unique_name};
use crate::identity::Role;

/// What the bundle says of itself and the checks hold it to: whether the
/// files are in the clear, the summary's language, and (from a finished
/// bundle's manifest) each object's file name.
struct Claims {
    plaintext: bool,
    language: Language,
    names: Option<BTreeMap<String, String>>,
}

/// A finished bundle's claims, from its manifest.
fn read_claims(dir: &Path) -> Result<Claims, Failure> {
    let bytes = read_limited(&dir.join(MANIFEST_FILE), MAX_DERIVED_BYTES, "files")?;
    let malformed = |why: String| Failure::new("files", BundleProblem::ManifestMalformed(why));
    let m: DisclosureManifest = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    if m.format != FORMAT {
        return Err(malformed(format!("its format is {:?}", m.format)));
    }
    let language = m.language.parse().map_err(malformed)?;
    let mut names = BTreeMap::new();
    for o in &m.objects {
        let name = o
            .disclosed
            .strip_prefix(&format!("{FILES_DIR}/"))
            .and_then(|n| {
                if m.plaintext {
                    Some(n)
                } else {
                    n.strip_suffix(AGE_SUFFIX)
                }
            })
            .ok_or_else(|| malformed(format!("{:?} is not a disclosed file's name", o.disclosed)))?;
        plain_name(name)?;
        if names.insert(o.sha256.clone(), name.to_owned()).is_some() {
            return Err(malformed(format!("object {} is listed twice", o.sha256)));
        }
    }
    Ok(Claims {
        plaintext: m.plaintext,
        language,
        names: Some(names),
    })
}

/// Which events, objects, key files and disclosed files a bundle holds.
/// Unknown entries fail, so nothing can be slipped in beside the evidence.
struct Layout {
    events: BTreeSet<u64>,
    objects: BTreeSet<String>,
    keys: BTreeSet<String>,
    files: BTreeSet<String>,
}

fn layout(dir: &Path, plaintext: bool, complete: bool) -> Result<Layout, Failure> {
    let summary = summary_file(plaintext);
    let mut files = vec![CHECKPOINT_FILE, VKEY_FILE];
    if complete {
        files.extend([MANIFEST_FILE, README_FILE, summary]);
    }
    let dirs = [EVENTS_DIR, PROOFS_DIR, OBJECTS_DIR, KEYS_DIR, FILES_DIR];
    let mut seen = BTreeSet::new();
    for (name, is_dir) in entries(dir)? {
        let known = if is_dir {
            dirs.contains(&name.as_str())
        } else {
            files.contains(&name.as_str())
        };
        if !known {
            return fail("files", BundleProblem::UnexpectedEntry(name));
        }
        seen.insert(name);
    }
    if let Some(missing) = files.iter().chain(&dirs).find(|n| !seen.contains(**n)) {
        return fail("files", BundleProblem::Missing(missing.into()));
    }
    let events = indexed_files(dir, EVENTS_DIR, ".json")?;
    let proofs = indexed_files(dir, PROOFS_DIR, ".tlog-proof")?;
    if let Some(i) = events.symmetric_difference(&proofs).next() {
        return fail("files", BundleProblem::Unpaired(*i));
    }
    let hex_names = |sub: &str, suffix: &str| -> Result<BTreeSet<String>, Failure> {
        let mut out = BTreeSet::new();
        for (name, is_dir) in entries(&dir.join(sub))? {
            match name.strip_suffix(suffix) {
                Some(sha) if !is_dir && crate::protocol::is_lower_hex(sha, 64) => out.insert(sha.to_owned()),
                _ => return fail("files", BundleProblem::UnexpectedEntry(format!("{sub}/{name}"))),
            };
        }
        Ok(out)
    };
    let objects = hex_names(OBJECTS_DIR, "")?;
    let keys = hex_names(KEYS_DIR, if plaintext { ".json" } else { AGE_SUFFIX })?;
    let mut disclosed = BTreeSet::new();
    for (name, is_dir) in entries(&dir.join(FILES_DIR))? {
        let plain = if plaintext {
            Some(name.as_str())
        } else {
            name.strip_suffix(AGE_SUFFIX)
        };
        match plain {
            Some(n) if !is_dir => {
                plain_name(n)?;
                disclosed.insert(n.to_owned());
            }
            _ => return fail("files", BundleProblem::UnexpectedEntry(format!("{FILES_DIR}/{name}"))),
        }
    }
    Ok(Layout {
        events,
        objects,
        keys,
        files: disclosed,
    })
}

/// `Err` of an audit problem of entry `index`, under `check`.
fn audit_fail(check: &'static str, index: u64, problem: AuditProblem) -> Failure {
    Failure::new(check, BundleProblem::Audit(AuditError { index, problem }))
}

/// The events: one disclosure, last, signed by a key the one registration
/// here makes a lawyer's, and one object_stored entry of the same case for
/// each object it names; nothing else.
struct Events {
    all: Vec<VerifiedEvent>,
    disclosed: VerifiedEvent,
    disclosure: crate::wire::DiscloseBody,
    lawyer: crate::identity::Card,
    /// Each disclosed object's storing and logged label, in log order.
    stored: Vec<(VerifiedEvent, String)>,
}

fn check_events(included: Vec<(u64, Vec<u8>)>, checks: &mut Checks) -> Result<Events, Failure> {
    let mut all = Vec::with_capacity(included.len());
    for (index, bytes) in included {
        let event: Event = serde_json::from_slice(&bytes)
            .map_err(|e| audit_fail("disclosure", index, AuditProblem::MalformedEvent(e)))?;
        all.push(VerifiedEvent { index, bytes, event });
    }
    let disclosed = match all.last() {
        Some(last) if last.event.action == Action::CaseDisclosed => last.clone(),
        _ => return fail("disclosure", BundleProblem::NoDisclosureEvent),
    };
    let disclosure = signed_disclosure(&disclosed.event).map_err(|p| audit_fail("disclosure", disclosed.index, p))?;
    let case = disclosed.event.case.clone();
    let mut lawyer = None;
    let mut stored: Vec<(VerifiedEvent, String)> = Vec::new();
    for e in &all[..all.len() - 1] {
        let unexpected = || {
            Failure::new(
                "disclosure",
                BundleProblem::UnexpectedEvent {
                    index: e.index,
                    action: e.event.action,
                },
            )
        };
        match e.event.action {
            Action::PrincipalAdded if e.event.case == VAULT_CASE && lawyer.is_none() => {
                let b = signed_registration(&e.event).map_err(|p| audit_fail("disclosure", e.index, p))?;
                if b.role != Role::Lawyer || b.card.key_id().as_str() != disclosed.event.actor {
                    return Err(unexpected());
                }
                lawyer = Some(b.card);
            }
            Action::ObjectStored if e.event.case == case => {
                let commit = signed_commit(&e.event).map_err(|p| audit_fail("disclosure", e.index, p))?;
                if stored.iter().any(|(s, _)| s.event.objects == e.event.objects) {
                    return Err(unexpected());
                }
                stored.push((e.clone(), commit.label));
            }
            _ => return Err(unexpected()),
        }
    }
    let lawyer = lawyer.map_or_else(|| fail("disclosure", BundleProblem::NoLawyerRegistration), Ok)?;
    check_signature(&disclosed.event, &lawyer.verifying_key)
        .map_err(|p| audit_fail("disclosure", disclosed.index, p))?;
    let named: BTreeSet<&String> = disclosure.objects.iter().collect();
    let logged: BTreeSet<&String> = stored.iter().flat_map(|(s, _)| &s.event.objects).collect();
    if let Some(o) = named.difference(&logged).next() {
        return fail("disclosure", BundleProblem::DisclosedObjectNotStored((*o).clone()));
    }
    if let Some(o) = logged.difference(&named).next() {
        return fail("disclosure", BundleProblem::StoredObjectNotDisclosed((*o).clone()));
    }
    checks.pass(
        "disclosure",
        format!(
            "case_disclosed at {} by {} (key {}, registered as a lawyer) names {} objects of case {case} for {}, each stored in the case before it",
            disclosed.event.time,
            lawyer.name,
            disclosed.event.actor,
            disclosure.objects.len(),
            disclosure.recipient
        ),
    );
    Ok(Events {
        all,
        disclosed,
        disclosure,
        lawyer,
        stored,
    })
}

/// The objects in the bundle are exactly those disclosed, each with its
/// key file and matching its SHA-256; returns their sizes.
fn check_objects(
    dir: &Path,
    layout: &Layout,
    events: &Events,
    plaintext: bool,
    checks: &mut Checks,
) -> Result<BTreeMap<String, u64>, Failure> {
    let named: BTreeSet<String> = events.disclosure.objects.iter().cloned().collect();
    if let Some(m) = named.difference(&layout.objects).next() {
        return fail("objects", BundleProblem::ObjectMissing(m.clone()));
    }
    if let Some(x) = layout.objects.difference(&named).next() {
        return fail("objects", BundleProblem::ObjectNotStored(x.clone()));
    }
    if let Some(m) = named.difference(&layout.keys).next() {
        return fail("objects", BundleProblem::Missing(keys_file(m, plaintext).into()));
    }
    if let Some(x) = layout.keys.difference(&named).next() {
        return fail("objects", BundleProblem::UnexpectedEntry(keys_file(x, plaintext)));
    }
    let sizes = crate::bundle::files::hash_objects(dir, &named)?;
    checks.pass(
        "objects",
        format!(
            "{} logged ciphertexts match their SHA-256, each with its keys",
            sizes.len()
        ),
    );
    Ok(sizes)
}

/// Everything but the derived files, with the keys from `source` (which
/// may depend on the bundle's claims, read once the log key is known).
fn verify_contents<'k>(
    dir: &Path,
    log: &LogVerifier,
    policy: &Policy,
    claims: impl FnOnce() -> Result<(Claims, KeySource<'k>), Failure>,
    complete: bool,
    checks: &mut Checks,
) -> Result<(VerifiedDisclosure, Option<Account>), Failure> {
    let (note, checkpoint) = check_signed_checkpoint(dir, log, checks)?;
    check_witnesses(&note, policy, checks)?;
    let (claims, source) = claims()?;
    let plaintext = claims.plaintext;
    let layout = layout(dir, plaintext, complete)?;
    checks.pass(
        "files",
        format!(
            "{} events, {} proofs, {} objects, {} keys, {} files, nothing else",
            layout.events.len(),
            layout.events.len(),
            layout.objects.len(),
            layout.keys.len(),
            layout.files.len()
        ),
    );
    let mut included = Vec::with_capacity(layout.events.len());
    let mut proofs = BTreeMap::new();
    for &index in &layout.events {
        let (bytes, proof) = included_event(dir, index, &note, &checkpoint)?;
        included.push((index, bytes));
        proofs.insert(index, proof);
    }
    checks.pass(
        "inclusion",
        format!("all {} events are in the checkpointed log", included.len()),
    );
    let events = check_events(included, checks)?;
    if events.disclosure.plaintext != plaintext {
        return fail("disclosure", BundleProblem::ModeDiffers);
    }
    let recipient = match source {
        KeySource::Recipient(identity) => Some(identity),
        _ => None,
    };
    if let Some(identity) = recipient {
        if identity.to_public().to_string() != events.disclosure.recipient {
            return fail(
                "labels",
                BundleProblem::OtherRecipient(events.disclosure.recipient.clone()),
            );
        }
    }
    let sizes = check_objects(dir, &layout, &events, plaintext, checks)?;

    // Labels: each file is named as its logged label names it, when the
    // keys are at hand; otherwise as the manifest says.
    let mut keys: BTreeMap<String, ObjectKeys> = BTreeMap::new();
    let mut used = HashSet::new();
    let mut objects = Vec::new();
    // The copies the signed disclosure names as cleaned: malformed() has
    // held them to one each, of disclosed objects only.
    let cleaned: BTreeMap<&str, &str> = events
        .disclosure
        .cleaned
        .iter()
        .map(|c| (c.object.as_str(), c.sha256.as_str()))
        .collect();
    for (stored, logged_label) in &events.stored {
        let sha = stored.event.objects[0].clone();
        let claimed = claims.names.as_ref().and_then(|n| n.get(&sha));
        let cleaned_sha256 = cleaned.get(sha.as_str()).map(|c| (*c).to_owned());
        let (name, label) = match object_keys(dir, &sha, plaintext, source)? {
            Some(k) => {
                // A cleaned copy's bundle must not open the original (its
                // metadata is what the lawyer meant to withhold); any
                // other file's must, to be compared with it.
                match (&cleaned_sha256, &k.object) {
                    (Some(_), Some(_)) => return fail("labels", BundleProblem::CleanedOriginalKey(sha)),
                    (None, None) => return fail("labels", BundleProblem::ObjectKeyMissing(sha)),
                    _ => {}
                }
                let label = open_label(&sha, logged_label, &k)?;
                let name = unique_name(&mut used, &label.safe_file_name());
                if let Some(file) = claimed.filter(|c| **c != name) {
                    return fail(
                        "labels",
                        BundleProblem::NameDiffers {
                            sha256: sha,
                            label: name,
                            file: file.clone(),
                        },
                    );
                }
                keys.insert(sha.clone(), k);
                (name, Some(label))
            }
            None => {
                let name = claimed.cloned().map_or_else(
                    || {
                        fail(
                            "labels",
                            BundleProblem::ManifestMalformed(format!("object {sha} has no file")),
                        )
                    },
                    Ok,
                )?;
                (name, None)
            }
        };
        objects.push(VerifiedObject {
            size: sizes[&sha],
            sha256: sha,
            stored: stored.clone(),
            name,
            label,
            cleaned_sha256,
        });
    }
    let names: BTreeSet<String> = objects.iter().map(|o| o.name.clone()).collect();
    if let Some(m) = names.difference(&layout.files).next() {
        return fail("labels", BundleProblem::Missing(disclosed_file(m, plaintext).into()));
    }
    if let Some(x) = layout.files.difference(&names).next() {
        return fail("labels", BundleProblem::UnexpectedEntry(disclosed_file(x, plaintext)));
    }
    let labelled = objects.iter().all(|o| o.label.is_some());
    checks.pass(
        "labels",
        if labelled {
            format!(
                "each of the {} files is named by its object's logged label",
                objects.len()
            )
        } else {
            "not checked: the keys are sealed to the recipient; give the recipient's key with --identity".to_owned()
        },
    );

    // Contents: each file is the plaintext of its logged ciphertext, or
    // the cleaned copy the signed disclosure names by its hash.
    let mut compared = 0;
    for o in &objects {
        let Some(k) = keys.get(&o.sha256) else { continue };
        let checked = match &o.cleaned_sha256 {
            Some(copy) => check_cleaned(dir, &o.sha256, &o.name, copy, plaintext, recipient)?,
            None => compare_file(dir, &o.sha256, &o.name, k, plaintext, recipient)?,
        };
        if checked {
            compared += 1;
        }
    }
    let contents_checked = compared == objects.len();
    let copies: Vec<String> = objects
        .iter()
        .filter(|o| o.cleaned_sha256.is_some())
        .map(|o| disclosed_file(&o.name, plaintext))
        .collect();
    let detail = match (contents_checked, copies.is_empty()) {
        (true, true) => format!(
            "each of the {} files is byte for byte the plaintext of its logged ciphertext, opened with its file key",
            objects.len()
        ),
        (true, false) => {
            format!(
            "{} of the {} files are byte for byte the plaintext of their logged ciphertexts, opened with their file \
             keys; {} cleaned of identifying metadata by the lawyer ({}): not byte-comparable with the logged \
             objects, by design, and without their file keys here; each has the SHA-256 the signed disclosure \
             names for it",
            objects.len() - copies.len(),
            objects.len(),
            if copies.len() == 1 { "1 is a copy" } else { "these are copies" },
            copies.join(", ")
        )
        }
        (false, true) => {
            "not checked: the files are sealed to the recipient; give the recipient's key with --identity".to_owned()
        }
        (false, false) => format!(
            "not checked: the files are sealed to the recipient; give the recipient's key with --identity \
             ({} cleaned of identifying metadata by the lawyer, not byte-comparable with the logged objects by \
             design: checked against the SHA-256 the signed disclosure names)",
            copies.join(", ")
        ),
    };
    checks.pass("contents", detail);
    let account = account(
        dir,
        objects
            .iter()
            .filter_map(|o| Some((o.sha256.as_str(), o.kind()?, keys.get(&o.sha256)?))),
    );
    let disclosed_proof = proofs
        .remove(&events.disclosed.index)
        .expect("every event has its proof");
    Ok((
        VerifiedDisclosure {
            case_id: events.disclosed.event.case.clone(),
            checkpoint,
            events: events.all,
            disclosed: events.disclosed,
            disclosed_proof,
            disclosure: events.disclosure,
            lawyer: events.lawyer,
            objects,
            contents_checked,
            language: claims.language,
        },
        account,
    ))
}

/// The summary's bytes, when the keys that render it were at hand.
fn summary_bytes(v: &VerifiedDisclosure, account: Option<&Account>) -> Option<Vec<u8>> {
    v.objects
        .iter()
        .all(|o| o.label.is_some())
        .then(|| render(v, account).into_bytes())
}

/// Verify a disclosure bundle folder offline against the pinned log key:
/// every check, stopping at the first failure. With the recipient's key
/// (or for a bundle in the clear), the files themselves are compared with
/// the logged objects. Never returns an error: problems are failed checks.
pub fn verify_dir(
    dir: &Path,
    log: &LogVerifier,
    policy: &Policy,
    recipient: Option<&age::x25519::Identity>,
) -> (DisclosureReport, Option<VerifiedDisclosure>) {
    let mut checks = Checks { lines: Vec::new() };
    let result = (|| {
        let claims = || {
            let claims = read_claims(dir)?;
            let source = match (claims.plaintext, recipient) {
                (true, _) => KeySource::Clear,
                (false, Some(identity)) => KeySource::Recipient(identity),
                (false, None) => KeySource::None,
            };
            Ok((claims, source))
        };
        let (v, account) = verify_contents(dir, log, policy, claims, true, &mut checks)?;
        let derived: [(&str, &'static str, Vec<u8>); 2] = [
            (MANIFEST_FILE, "manifest", manifest_bytes(&v)),
            (README_FILE, "readme", readme(&v).into_bytes()),
        ];
        for (file, check, expected) in derived {
            if read_limited(&dir.join(file), MAX_DERIVED_BYTES, check)? != expected {
                return fail(check, BundleProblem::DerivedDiffers(file));
            }
            checks.pass(check, format!("{file} matches the verified contents"));
        }
        let file = summary_file(v.disclosure.plaintext);
        let found = read_limited(&dir.join(file), MAX_DERIVED_BYTES, "summary")?;
        let found = match (v.disclosure.plaintext, recipient) {
            (true, _) => Some(found),
            (false, Some(identity)) => {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut open_with(&found[..], identity)
                        .map_err(|e| Failure::new("summary", BundleProblem::SummarySealed(e)))?,
                    &mut plain,
                )
                .map_err(|_| {
                    Failure::new(
                        "summary",
                        BundleProblem::SummarySealed(crate::envelope::EnvelopeError::Decrypt),
                    )
                })?;
                Some(plain)
            }
            (false, None) => None,
        };
        let mut unchecked = Vec::new();
        if v.objects.iter().any(|o| o.label.is_none()) {
            unchecked.push("labels");
        }
        if !v.contents_checked {
            unchecked.push("contents");
        }
        match (found, summary_bytes(&v, account.as_ref())) {
            (Some(found), Some(expected)) => {
                if found != expected {
                    return fail("summary", BundleProblem::DerivedDiffers(file));
                }
                checks.pass("summary", format!("{file} matches the verified contents"));
            }
            _ => {
                unchecked.push("summary");
                checks.pass(
                    "summary",
                    format!("not checked: {file} is sealed to the recipient; give the recipient's key with --identity"),
                )
            }
        }
        Ok((v, unchecked))
    })();
    let held = |v: &VerifiedDisclosure| {
        v.objects
            .iter()
            .map(|o| HeldObject {
                object_id: o.sha256.clone(),
                file: o
                    .label
                    .as_ref()
                    .map(|_| disclosed_file(&o.name, v.disclosure.plaintext)),
                kind: o.kind(),
                size: o.size,
                received: o.stored.event.time.clone(),
                stored_index: o.stored.index,
                cleaned: o.cleaned_sha256.is_some(),
            })
            .collect()
    };
    match result {
        Ok((v, unchecked)) => (
            DisclosureReport {
                format: FORMAT,
                case_id: Some(v.case_id.clone()),
                checks: checks.lines,
                status: if unchecked.is_empty() {
                    DisclosureStatus::Verified
                } else {
                    DisclosureStatus::FilesNotChecked
                },
                passed: unchecked.is_empty(),
                disclosed_by: Some(v.disclosed.event.actor.clone()),
                contents_checked: v.contents_checked,
                unchecked,
                recipient: Some(v.disclosure.recipient.clone()),
                objects: held(&v),
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
                DisclosureReport {
                    format: FORMAT,
                    case_id: None,
                    checks: checks.lines,
                    status: DisclosureStatus::Failed,
                    passed: false,
                    disclosed_by: None,
                    contents_checked: false,
                    unchecked: Vec::new(),
                    recipient: None,
                    objects: Vec::new(),
                },
                None,
            )
        }
    }
}

/// Write the derived files (manifest, README, and the summary, sealed to
/// the recipient unless the files are in the clear) into a folder holding
/// a disclosure's evidence files, after checking those with the keys the
/// lawyer captured.
pub fn finish_dir(
    dir: &Path,
    log: &LogVerifier,
    keys: &BTreeMap<String, ObjectKeys>,
    plaintext: bool,
    language: Language,
) -> Result<(), BundleError> {
    let mut checks = Checks { lines: Vec::new() };
    let claims = || {
        let claims = Claims {
            plaintext,
            language,
            names: None,
        };
        Ok((claims, KeySource::Given(keys)))
    };
    let (v, account) = verify_contents(dir, log, &Policy::default(), claims, false, &mut checks)?;
    let write = |file: &'static str, bytes: &[u8]| {
        std::fs::write(dir.join(file), bytes).map_err(|source| BundleError::Write { file, source })
    };
    write(MANIFEST_FILE, &manifest_bytes(&v))?;
    write(README_FILE, readme(&v).as_bytes())?;
    let summary = render(&v, account.as_ref());
    if plaintext {
        write(SUMMARY_FILE, summary.as_bytes())?;
    } else {
        let recipient = crate::identity::parse_recipient(&v.disclosure.recipient)
            .expect("a verified disclosure's recipient parses");
        let sealed = encrypt_bytes(summary.as_bytes(), &[&recipient]).map_err(|e| BundleError::Write {
            file: SUMMARY_SEALED_FILE,
            source: std::io::Error::other(e.to_string()),
        })?;
        write(SUMMARY_SEALED_FILE, &sealed)?;
    }
    Ok(())
}
