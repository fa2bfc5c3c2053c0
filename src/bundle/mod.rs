//! Export bundles: the self-contained folder (or .tar) that carries one
//! case's chain of custody to a court, and its offline verification. Owns
//! the layout, the derived files (manifest, README.txt, report.html) and the
//! checks; fetching from a vault is `client::export`'s job, and nothing here
//! touches the network.
//!
//! ```text
//! checkpoint.txt           the log's signed checkpoint (+ witness cosignatures)
//! log.vkey                 the log's public key
//! events/INDEX.json        each event exactly as stored (the bytes hashed)
//! proofs/INDEX.tlog-proof  C2SP tlog-proof: inclusion of that event
//! objects/SHA256           ciphertext, named by its SHA-256
//! manifest.json            index of the above, derived from verified data
//! README.txt               how to check it all by hand
//! report.html              optional timeline picture
//! ```
//!
//! Every file is checked: the derived ones must be exactly what the verified
//! data implies, so no byte anywhere can change without `verify` failing.

pub mod decrypt;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::LogAuditor;
use crate::custody::checkpoint::{Checkpoint, LogVerifier};
use crate::custody::cosignature::{cosigners, unix_now, WitnessVerifier};
use crate::custody::merkle;
use crate::custody::tlog_proof::{parse_decimal, TlogProof};
use crate::custody::{Action, Event, VAULT_CASE};

/// Format name written in every manifest.
pub const FORMAT: &str = "custos-bundle-v1";

/// Largest event file read: case creation bodies are at most 256 KiB of JSON,
/// stored base64 inside the event.
const MAX_EVENT_BYTES: u64 = 1024 * 1024;
/// Largest proof or checkpoint file: a few dozen lines.
const MAX_NOTE_BYTES: u64 = 64 * 1024;
/// Largest manifest, README or report: a case with tens of thousands of events.
const MAX_DERIVED_BYTES: u64 = 64 * 1024 * 1024;

/// File names at the top of a bundle.
pub const CHECKPOINT_FILE: &str = "checkpoint.txt";
/// The log key file.
pub const VKEY_FILE: &str = "log.vkey";
/// The manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The README for people.
pub const README_FILE: &str = "README.txt";
/// The timeline report.
pub const REPORT_FILE: &str = "report.html";
/// Event folder.
pub const EVENTS_DIR: &str = "events";
/// Proof folder.
pub const PROOFS_DIR: &str = "proofs";
/// Object folder.
pub const OBJECTS_DIR: &str = "objects";

/// The manifest: an index of the bundle, every field of which `verify`
/// recomputes from the verified contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The case.
    pub case: String,
    /// The log's origin.
    pub origin: String,
    /// Checkpoint size.
    pub checkpoint_size: u64,
    /// Checkpoint root, base64.
    pub checkpoint_root: String,
    /// When the export was logged (the export event's time).
    pub exported_at: String,
    /// Who exported (key id).
    pub exported_by: String,
    /// Events, in log order.
    pub events: Vec<ManifestEvent>,
    /// Ciphertext objects.
    pub objects: Vec<ManifestObject>,
    /// Whether the bundle has a report.html (so removing it is noticed).
    pub report: bool,
}

/// One event in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestEvent {
    /// Log index.
    pub index: u64,
    /// Case id or `vault`.
    pub case: String,
    /// Position in its chain.
    pub seq: u64,
    /// What happened.
    pub action: Action,
    /// The event file.
    pub file: String,
    /// The proof file.
    pub proof: String,
    /// Hex SHA-256 of the event file (the next event's `prev`).
    pub sha256: String,
}

/// One object in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestObject {
    /// Hex SHA-256 of the ciphertext, which is also its file name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The object file.
    pub file: String,
}

/// A verified event.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    /// Log index.
    pub index: u64,
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// Parsed.
    pub event: Event,
}

/// Everything a bundle proves, after the checks passed.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The case.
    pub case_id: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Events in log order: the vault's chain and the case's.
    pub events: Vec<VerifiedEvent>,
    /// Objects: hex SHA-256 -> size.
    pub objects: BTreeMap<String, u64>,
}

impl Verified {
    /// The export event (the last event).
    pub fn export_event(&self) -> &Event {
        &self
            .events
            .last()
            .expect("a verified bundle has its export event")
            .event
    }
}

/// One line of a verification report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckLine {
    /// Short name of the check.
    pub check: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// What was checked, or what is wrong.
    pub detail: String,
}

/// The result of `custos verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The case, when the bundle got far enough to tell.
    pub case_id: Option<String>,
    /// Checks in the order they ran; verification stops at the first failure.
    pub checks: Vec<CheckLine>,
    /// Whether every check passed.
    pub passed: bool,
}

impl VerifyReport {
    /// The failing check, if any.
    pub fn failure(&self) -> Option<&CheckLine> {
        self.checks.iter().find(|c| !c.passed)
    }
}

/// What to require beyond the log's own signature.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Witnesses whose cosignatures count.
    pub witnesses: Vec<WitnessVerifier>,
    /// How many of them must have cosigned.
    pub quorum: usize,
}

/// A failed check.
#[derive(Debug)]
pub struct Failure {
    check: &'static str,
    problem: String,
}

fn fail<T>(check: &'static str, problem: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        check,
        problem: problem.into(),
    })
}

struct Checks {
    lines: Vec<CheckLine>,
}

impl Checks {
    fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.lines.push(CheckLine {
            check,
            passed: true,
            detail: detail.into(),
        });
    }
}

/// Read a file of at most `max` bytes, refusing links and special files.
fn read_limited(path: &Path, max: u64, check: &'static str) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::symlink_metadata(path).or_else(|_| fail(check, format!("{} is missing", path.display())))?;
    if !meta.is_file() {
        return fail(check, format!("{} is not a regular file", path.display()));
    }
    if meta.len() > max {
        return fail(check, format!("{} is larger than {max} bytes", path.display()));
    }
    std::fs::read(path).or_else(|e| fail(check, format!("{}: {e}", path.display())))
}

fn read_text(path: &Path, max: u64, check: &'static str) -> Result<String, Failure> {
    String::from_utf8(read_limited(path, max, check)?)
        .or_else(|_| fail(check, format!("{} is not UTF-8", path.display())))
}

/// Entries of `dir` as (name, is a directory); anything that is neither a
/// regular file nor a directory (a link, a device) fails.
fn entries(dir: &Path) -> Result<Vec<(String, bool)>, Failure> {
    let mut out = Vec::new();
    let read = std::fs::read_dir(dir).or_else(|e| fail("files", format!("{}: {e}", dir.display())))?;
    for e in read {
        let e = e.or_else(|e| fail("files", e.to_string()))?;
        let name = e
            .file_name()
            .into_string()
            .or_else(|_| fail("files", "a file name is not UTF-8"))?;
        let ty = e.file_type().or_else(|e| fail("files", e.to_string()))?;
        if !ty.is_file() && !ty.is_dir() {
            return fail("files", format!("{}/{name} is a link or special file", dir.display()));
        }
        out.push((name, ty.is_dir()));
    }
    Ok(out)
}

/// Indices of the files `N<suffix>` in `sub`, which must hold nothing else.
fn indexed_files(dir: &Path, sub: &str, suffix: &str) -> Result<BTreeSet<u64>, Failure> {
    let mut out = BTreeSet::new();
    for (name, is_dir) in entries(&dir.join(sub))? {
        match name.strip_suffix(suffix).and_then(parse_decimal) {
            Some(index) if !is_dir => out.insert(index),
            _ => return fail("files", format!("unexpected entry {sub}/{name}")),
        };
    }
    Ok(out)
}

/// The bundle's layout: which events and objects it holds. Unknown files
/// fail, so nothing can be slipped in beside the evidence.
struct Layout {
    events: BTreeSet<u64>,
    objects: BTreeSet<String>,
}

fn layout(dir: &Path, complete: bool) -> Result<Layout, Failure> {
    let derived = [MANIFEST_FILE, README_FILE];
    let required: &[&str] = if complete {
        &[CHECKPOINT_FILE, VKEY_FILE, MANIFEST_FILE, README_FILE]
    } else {
        &[CHECKPOINT_FILE, VKEY_FILE]
    };
    let mut seen = BTreeSet::new();
    for (name, is_dir) in entries(dir)? {
        let ty_file = !is_dir;
        match name.as_str() {
            EVENTS_DIR | PROOFS_DIR | OBJECTS_DIR if is_dir => {}
            n if (required.contains(&n) || derived.contains(&n)) && ty_file => {}
            REPORT_FILE if ty_file => {}
            _ => return fail("files", format!("unexpected entry {name:?} in the bundle")),
        }
        seen.insert(name);
    }
    for name in required.iter().chain(&[EVENTS_DIR, PROOFS_DIR, OBJECTS_DIR]) {
        if !seen.contains(*name) {
            return fail("files", format!("{name} is missing"));
        }
    }
    let events = indexed_files(dir, EVENTS_DIR, ".json")?;
    let proofs = indexed_files(dir, PROOFS_DIR, ".tlog-proof")?;
    if let Some(i) = events.symmetric_difference(&proofs).next() {
        return fail("files", format!("event {i} has no proof, or proof {i} no event"));
    }
    let mut objects = BTreeSet::new();
    for (name, is_dir) in entries(&dir.join(OBJECTS_DIR))? {
        if is_dir || name.len() != 64 || !name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return fail("files", format!("unexpected file objects/{name}"));
        }
        objects.insert(name);
    }
    Ok(Layout { events, objects })
}

/// File name of event `index`.
pub fn event_file(index: u64) -> String {
    format!("{EVENTS_DIR}/{index}.json")
}

/// File name of the proof of event `index`.
pub fn proof_file(index: u64) -> String {
    format!("{PROOFS_DIR}/{index}.tlog-proof")
}

/// File name of an object.
pub fn object_file(sha256: &str) -> String {
    format!("{OBJECTS_DIR}/{sha256}")
}

fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
        n += got as u64;
    }
    Ok((hex::encode(h.finalize()), n))
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
    let vkey = read_text(&dir.join(VKEY_FILE), MAX_NOTE_BYTES, "vkey")?;
    if vkey != format!("{}\n", log.vkey()) {
        return fail("vkey", "log.vkey is not the log key you pinned with --vkey");
    }
    checks.pass("vkey", format!("log.vkey is the pinned key {}", log.vkey()));

    let note = read_text(&dir.join(CHECKPOINT_FILE), MAX_NOTE_BYTES, "checkpoint")?;
    let checkpoint = log.verify(&note).or_else(|e| fail("checkpoint", e.to_string()))?;
    checks.pass(
        "checkpoint",
        format!(
            "signed by the log: size {} root {}",
            checkpoint.size,
            b64(&checkpoint.root)
        ),
    );

    let names: Vec<String> = cosigners(&note, &policy.witnesses, unix_now())
        .into_iter()
        .map(str::to_owned)
        .collect();
    if !policy.witnesses.is_empty() || policy.quorum > 0 {
        if names.len() < policy.quorum {
            return fail(
                "witnesses",
                format!(
                    "{} of the {} given witnesses cosigned the checkpoint; {} required",
                    names.len(),
                    policy.witnesses.len(),
                    policy.quorum
                ),
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

    let mut events = Vec::with_capacity(layout.events.len());
    for &index in &layout.events {
        let bytes = read_limited(&dir.join(event_file(index)), MAX_EVENT_BYTES, "inclusion")?;
        let text = read_text(&dir.join(proof_file(index)), MAX_NOTE_BYTES, "inclusion")?;
        let proof = TlogProof::parse(&text).or_else(|e| fail("inclusion", format!("{}: {e}", proof_file(index))))?;
        if proof.index != index {
            return fail(
                "inclusion",
                format!("{} is for index {}", proof_file(index), proof.index),
            );
        }
        if proof.checkpoint != note {
            return fail(
                "inclusion",
                format!(
                    "{} is against another checkpoint than checkpoint.txt",
                    proof_file(index)
                ),
            );
        }
        merkle::verify_inclusion(
            index,
            checkpoint.size,
            &merkle::leaf_hash(&bytes),
            &proof.hashes,
            &checkpoint.root,
        )
        .or_else(|e| {
            fail(
                "inclusion",
                format!("event {index} is not in the checkpointed log: {e}"),
            )
        })?;
        events.push((index, bytes));
    }
    checks.pass(
        "inclusion",
        format!("all {} events are in the checkpointed log", events.len()),
    );

    let mut auditor = LogAuditor::new();
    let mut verified = Vec::with_capacity(events.len());
    let mut case_id: Option<String> = None;
    for (index, bytes) in events {
        let event = auditor
            .check_event(&bytes)
            .or_else(|problem| fail("chain", format!("event {index}: {problem}")))?;
        if event.case != VAULT_CASE {
            match &case_id {
                None => case_id = Some(event.case.clone()),
                Some(c) if *c != event.case => {
                    return fail(
                        "chain",
                        format!("event {index} belongs to a second case {}", event.case),
                    );
                }
                Some(_) => {}
            }
        }
        verified.push(VerifiedEvent { index, bytes, event });
    }
    let case_id = case_id.map_or_else(|| fail("chain", "the bundle holds no case events"), Ok)?;
    let summary = auditor.summary();
    // Completeness: the export event is the last entry of the proven tree,
    // so every earlier event of the case had to be included; and it records
    // how long the vault chain was.
    let last = verified.last().expect("a case event exists");
    if last.event.action != Action::CaseExported || last.index + 1 != checkpoint.size {
        return fail(
            "chain",
            "the bundle does not end with its export event at the checkpoint's last entry",
        );
    }
    let vault_events = verified.iter().filter(|e| e.event.case == VAULT_CASE).count() as u64;
    if last.event.details["vault_events"].as_u64() != Some(vault_events) {
        return fail(
            "chain",
            format!("the vault chain has {vault_events} events here but the export event records another number"),
        );
    }
    let case_events = verified.len() as u64 - vault_events;
    checks.pass(
        "chain",
        format!(
            "case chain of {case_events} events and vault chain of {vault_events} events complete and linked; {} actor signatures verified",
            summary.signatures
        ),
    );

    let stored: BTreeSet<String> = verified
        .iter()
        .filter(|e| e.event.action == Action::ObjectStored)
        .flat_map(|e| e.event.objects.iter().cloned())
        .collect();
    let exported: BTreeSet<String> = last.event.objects.iter().cloned().collect();
    if exported != stored {
        return fail("objects", "the export event names other objects than the case stored");
    }
    if layout.objects != stored {
        let missing = stored.difference(&layout.objects).next();
        let extra = layout.objects.difference(&stored).next();
        return fail(
            "objects",
            match (missing, extra) {
                (Some(m), _) => format!("object {m} is missing"),
                (_, Some(x)) => format!("object {x} was never stored in the case"),
                _ => unreachable!("sets differ"),
            },
        );
    }
    let mut objects = BTreeMap::new();
    for sha in &stored {
        let (got, size) =
            sha256_file(&dir.join(object_file(sha))).or_else(|e| fail("objects", format!("object {sha}: {e}")))?;
        if got != *sha {
            return fail("objects", format!("object {sha} has SHA-256 {got}"));
        }
        objects.insert(sha.clone(), size);
    }
    checks.pass(
        "objects",
        format!("{} ciphertext objects match their SHA-256", objects.len()),
    );

    Ok(Verified {
        case_id,
        checkpoint,
        events: verified,
        objects,
    })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The manifest a verified bundle must carry.
pub fn manifest(v: &Verified, report: bool) -> Manifest {
    let export = v.export_event();
    Manifest {
        format: FORMAT.into(),
        case: v.case_id.clone(),
        origin: v.checkpoint.origin.clone(),
        checkpoint_size: v.checkpoint.size,
        checkpoint_root: b64(&v.checkpoint.root),
        exported_at: export.time.clone(),
        exported_by: export.actor.clone(),
        events: v
            .events
            .iter()
            .map(|e| ManifestEvent {
                index: e.index,
                case: e.event.case.clone(),
                seq: e.event.seq,
                action: e.event.action,
                file: event_file(e.index),
                proof: proof_file(e.index),
                sha256: crate::custody::event_hash(&e.bytes),
            })
            .collect(),
        objects: v
            .objects
            .iter()
            .map(|(sha, size)| ManifestObject {
                sha256: sha.clone(),
                size: *size,
                file: object_file(sha),
            })
            .collect(),
        report,
    }
}

/// Manifest bytes, as written.
pub fn manifest_bytes(v: &Verified, report: bool) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(&manifest(v, report)).expect("manifests serialise");
    out.push(b'\n');
    out
}

/// The README a verified bundle must carry.
pub fn readme(v: &Verified) -> String {
    let m = manifest(v, false);
    let first_case_event = m
        .events
        .iter()
        .find(|e| e.case == v.case_id)
        .expect("case events exist");
    let first_object = m.objects.first().map_or("SHA256".to_owned(), |o| o.sha256.clone());
    format!(
        include_str!("README.txt.in"),
        case = m.case,
        origin = m.origin,
        size = m.checkpoint_size,
        root = m.checkpoint_root,
        exported_at = m.exported_at,
        exported_by = m.exported_by,
        events = m.events.len(),
        objects = m.objects.len(),
        index = first_case_event.index,
        object = first_object,
    )
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
                return fail(check, format!("{file} is not what the verified contents say"));
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
        Err(Failure { check, problem }) => {
            checks.lines.push(CheckLine {
                check,
                passed: false,
                detail: problem,
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
pub fn finish_dir(dir: &Path, log: &LogVerifier, with_report: bool) -> Result<(), String> {
    let mut checks = Checks { lines: Vec::new() };
    let v = verify_contents(dir, log, &Policy::default(), false, &mut checks)
        .map_err(|f| format!("{}: {}", f.check, f.problem))?;
    let write =
        |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).map_err(|e| format!("writing {name}: {e}"));
    write(MANIFEST_FILE, &manifest_bytes(&v, with_report))?;
    write(README_FILE, readme(&v).as_bytes())?;
    if with_report {
        write(REPORT_FILE, report::render(&v).as_bytes())?;
    }
    Ok(())
}

/// Pack a bundle folder into a .tar whose entries sit under `root/`, with
/// fixed owners, modes and times so the archive depends only on the content.
pub fn write_archive(dir: &Path, root: &str, out: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(out)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel))? {
            let e = e?;
            let path = rel.join(e.file_name());
            if e.file_type()?.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for dir_name in [EVENTS_DIR, PROOFS_DIR, OBJECTS_DIR] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o700);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, format!("{root}/{dir_name}/"), std::io::empty())?;
    }
    for rel in files {
        let f = std::fs::File::open(dir.join(&rel))?;
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(f.metadata()?.len());
        h.set_mtime(0);
        tar.append_data(&mut h, Path::new(root).join(&rel), f)?;
    }
    let mut w = tar.into_inner()?;
    std::io::Write::flush(&mut w)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Unpack a bundle archive into `into` and return the bundle folder inside
/// it. Entries must all sit under one top folder; links and absolute or
/// `..` paths are refused.
pub fn unpack_archive(archive: &Path, into: &Path) -> Result<PathBuf, String> {
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(file);
    let mut root: Option<String> = None;
    for entry in tar.entries().map_err(|e| format!("not a tar archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("damaged archive: {e}"))?;
        let ty = entry.header().entry_type();
        if !(ty.is_file() || ty.is_dir()) {
            return Err("the archive holds a link or special file".into());
        }
        let path = entry.path().map_err(|e| format!("damaged archive: {e}"))?.into_owned();
        let mut parts = path.components();
        let top = match parts.next() {
            Some(std::path::Component::Normal(t)) => t.to_string_lossy().into_owned(),
            _ => return Err(format!("unsafe path {} in the archive", path.display())),
        };
        if parts.any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(format!("unsafe path {} in the archive", path.display()));
        }
        match &root {
            None => root = Some(top),
            Some(r) if *r != top => return Err("the archive holds more than one folder".into()),
            Some(_) => {}
        }
        if !entry
            .unpack_in(into)
            .map_err(|e| format!("unpacking {}: {e}", path.display()))?
        {
            return Err(format!("unsafe path {} in the archive", path.display()));
        }
    }
    let root = root.ok_or("the archive is empty")?;
    Ok(into.join(root))
}
