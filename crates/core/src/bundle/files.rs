//! Reading a bundle's files defensively: size limits, no links or special
//! files, and a layout with nothing in it but what the format names. Says
//! nothing about whether the contents verify; `verify` does.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{fail, BundleProblem, Failure};
use super::{CHECKPOINT_FILE, EVENTS_DIR, MANIFEST_FILE, OBJECTS_DIR, PROOFS_DIR, README_FILE, REPORT_FILE, VKEY_FILE};
use crate::custody::tlog_proof::parse_decimal;

/// Read a file of at most `max` bytes, refusing links and special files.
pub(super) fn read_limited(path: &Path, max: u64, check: &'static str) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::symlink_metadata(path).or_else(|_| fail(check, BundleProblem::Missing(path.into())))?;
    if !meta.is_file() {
        return fail(check, BundleProblem::NotRegularFile(path.into()));
    }
    if meta.len() > max {
        return fail(check, BundleProblem::TooLarge { path: path.into(), max });
    }
    std::fs::read(path).or_else(|source| {
        fail(
            check,
            BundleProblem::Read {
                path: path.into(),
                source,
            },
        )
    })
}

/// [`read_limited`], for a file that must be UTF-8.
pub(super) fn read_text(path: &Path, max: u64, check: &'static str) -> Result<String, Failure> {
    String::from_utf8(read_limited(path, max, check)?).or_else(|_| fail(check, BundleProblem::NotUtf8(path.into())))
}

/// Entries of `dir` as (name, is a directory); anything that is neither a
/// regular file nor a directory (a link, a device) fails.
pub(super) fn entries(dir: &Path) -> Result<Vec<(String, bool)>, Failure> {
    let unreadable = |source| {
        Failure::new(
            "files",
            BundleProblem::Read {
                path: dir.into(),
                source,
            },
        )
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(unreadable)? {
        let e = e.map_err(unreadable)?;
        let name = e
            .file_name()
            .into_string()
            .or_else(|_| fail("files", BundleProblem::NameNotUtf8(dir.into())))?;
        let ty = e.file_type().map_err(unreadable)?;
        if !ty.is_file() && !ty.is_dir() {
            return fail("files", BundleProblem::LinkOrSpecial(dir.join(&name)));
        }
        out.push((name, ty.is_dir()));
    }
    Ok(out)
}

/// Indices of the files `N<suffix>` in `sub`, which must hold nothing else.
pub(super) fn indexed_files(dir: &Path, sub: &str, suffix: &str) -> Result<BTreeSet<u64>, Failure> {
    let mut out = BTreeSet::new();
    for (name, is_dir) in entries(&dir.join(sub))? {
        match name.strip_suffix(suffix).and_then(parse_decimal) {
            Some(index) if !is_dir => out.insert(index),
            _ => return fail("files", BundleProblem::UnexpectedEntry(format!("{sub}/{name}"))),
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
            _ => return fail("files", BundleProblem::UnexpectedEntry(name)),
        }
        seen.insert(name);
    }
    for name in required.iter().chain(&[EVENTS_DIR, PROOFS_DIR, OBJECTS_DIR]) {
        if !seen.contains(*name) {
            return fail("files", BundleProblem::Missing(name.into()));
        }
    }
    let events = indexed_files(dir, EVENTS_DIR, ".json")?;
    let proofs = indexed_files(dir, PROOFS_DIR, ".tlog-proof")?;
    if let Some(i) = events.symmetric_difference(&proofs).next() {
        return fail("files", BundleProblem::Unpaired(*i));
    }
    let mut objects = BTreeSet::new();
    for (name, is_dir) in entries(&dir.join(OBJECTS_DIR))? {
        if is_dir || !crate::protocol::is_lower_hex(&name, 64) {
            return fail("files", BundleProblem::UnexpectedEntry(format!("{OBJECTS_DIR}/{name}")));
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

/// Hash every named ciphertext in `objects/`: each must be readable and
/// hash to its name. Their sizes, by name.
pub(super) fn hash_objects<'a>(
    dir: &Path,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<std::collections::BTreeMap<String, u64>, super::error::Failure> {
    use super::error::{fail, BundleProblem};
    let mut sizes = std::collections::BTreeMap::new();
    for sha in names {
        let (got, size) = sha256_file(&dir.join(super::object_file(sha))).or_else(|source| {
            fail(
                "objects",
                BundleProblem::ObjectRead {
                    sha256: sha.clone(),
                    source,
                },
            )
        })?;
        if got != *sha {
            return fail(
                "objects",
                BundleProblem::ObjectHash {
                    sha256: sha.clone(),
                    found: got,
                },
            );
        }
        sizes.insert(sha.clone(), size);
    }
    Ok(sizes)
}
