//! Reading a bundle's files defensively: size limits, no links or special
//! files, and a layout with nothing in it but what the format names. Says
//! nothing about whether the contents verify; `verify` does.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{
    fail, Failure, CHECKPOINT_FILE, EVENTS_DIR, MANIFEST_FILE, OBJECTS_DIR, PROOFS_DIR, README_FILE, REPORT_FILE,
    VKEY_FILE,
};
use crate::custody::tlog_proof::parse_decimal;

/// Read a file of at most `max` bytes, refusing links and special files.
pub(super) fn read_limited(path: &Path, max: u64, check: &'static str) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::symlink_metadata(path).or_else(|_| fail(check, format!("{} is missing", path.display())))?;
    if !meta.is_file() {
        return fail(check, format!("{} is not a regular file", path.display()));
    }
    if meta.len() > max {
        return fail(check, format!("{} is larger than {max} bytes", path.display()));
    }
    std::fs::read(path).or_else(|e| fail(check, format!("{}: {e}", path.display())))
}

pub(super) fn read_text(path: &Path, max: u64, check: &'static str) -> Result<String, Failure> {
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
pub(super) struct Layout {
    pub(super) events: BTreeSet<u64>,
    pub(super) objects: BTreeSet<String>,
}

pub(super) fn layout(dir: &Path, complete: bool) -> Result<Layout, Failure> {
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
        if is_dir || !crate::protocol::is_lower_hex(&name, 64) {
            return fail("files", format!("unexpected file objects/{name}"));
        }
        objects.insert(name);
    }
    Ok(Layout { events, objects })
}

/// Hex SHA-256 and length of a file, read a MiB at a time.
pub(super) fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
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
