//! What only a disclosure's keys can show: that each key opens its logged
//! ciphertext and label, that the label names the disclosed file, and
//! that the file is that ciphertext's plaintext byte for byte (or, for a
//! cleaned copy, which has no file key here, that it has the SHA-256 the
//! signed disclosure names). The keys
//! come in the clear, from the recipient's key, or (while the bundle is
//! made) from the lawyer; without any, none of this can be checked.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::summary::{Account, MAX_ACCOUNT_BYTES};
use super::{disclosed_file, keys_file, ObjectKeys};
use crate::bundle::error::{fail, BundleProblem, Failure};
use crate::bundle::files::read_limited;
use crate::bundle::object_file;
use crate::envelope::{
    is_safe_file_name, open_with, open_with_file_key, EnvelopeError, HashingWriter, Label, ObjectKind,
};

/// Largest key file: two base64 keys in JSON, or that in an age file.
const MAX_KEY_FILE: u64 = 4096;

/// Where an object's keys come from.
#[derive(Clone, Copy)]
pub(super) enum KeySource<'a> {
    /// `keys/SHA.json`, in the clear.
    Clear,
    /// `keys/SHA.age`, opened with the recipient's key.
    Recipient(&'a age::x25519::Identity),
    /// Given by the lawyer making the bundle, who captured them.
    Given(&'a BTreeMap<String, ObjectKeys>),
    /// None at hand: the bundle is sealed to a recipient not given.
    None,
}

/// Object `sha256`'s keys, if the source has them.
pub(super) fn object_keys(
    dir: &Path,
    sha256: &str,
    plaintext: bool,
    source: KeySource<'_>,
) -> Result<Option<ObjectKeys>, Failure> {
    let bad = |source| {
        Failure::new(
            "labels",
            BundleProblem::KeyFile {
                sha256: sha256.to_owned(),
                source,
            },
        )
    };
    let path = dir.join(keys_file(sha256, plaintext));
    match source {
        KeySource::None => Ok(None),
        KeySource::Given(keys) => keys
            .get(sha256)
            .cloned()
            .map(Some)
            .ok_or_else(|| bad(EnvelopeError::Malformed("key file"))),
        KeySource::Clear => {
            let bytes = read_limited(&path, MAX_KEY_FILE, "labels")?;
            ObjectKeys::from_bytes(&bytes).map(Some).map_err(bad)
        }
        KeySource::Recipient(identity) => {
            let sealed = read_limited(&path, MAX_KEY_FILE, "labels")?;
            let mut plain = zeroize::Zeroizing::new(Vec::new());
            open_with(&sealed[..], identity)
                .map_err(bad)?
                .read_to_end(&mut plain)
                .map_err(|_| bad(EnvelopeError::Decrypt))?;
            ObjectKeys::from_bytes(&plain).map(Some).map_err(bad)
        }
    }
}

/// The label logged for object `sha256` (base64 in its signed commit),
/// opened with its key.
pub(super) fn open_label(sha256: &str, logged: &str, keys: &ObjectKeys) -> Result<Label, Failure> {
    let bad = |source| {
        Failure::new(
            "labels",
            BundleProblem::Label {
                sha256: sha256.to_owned(),
                source,
            },
        )
    };
    let sealed = B64.decode(logged).map_err(|_| bad(EnvelopeError::Malformed("label")))?;
    Label::open_with_file_key(&sealed, &keys.label).map_err(bad)
}

/// Compare the disclosed file of object `sha256` (named `name`) with the
/// plaintext of its logged ciphertext. Returns whether it could: not for
/// a file sealed to a recipient whose key is not at hand.
pub(super) fn compare_file(
    dir: &Path,
    sha256: &str,
    name: &str,
    keys: &ObjectKeys,
    plaintext: bool,
    recipient: Option<&age::x25519::Identity>,
) -> Result<bool, Failure> {
    let file = disclosed_file(name, plaintext);
    let io = |path: &str, source| {
        Failure::new(
            "contents",
            BundleProblem::Read {
                path: path.into(),
                source,
            },
        )
    };
    let no_key = |source| {
        Failure::new(
            "contents",
            BundleProblem::FileKeyDoesNotOpen {
                sha256: sha256.to_owned(),
                source,
            },
        )
    };
    let logged_path = object_file(sha256);
    let logged = File::open(dir.join(&logged_path)).map_err(|e| io(&logged_path, e))?;
    let object_key = keys
        .object
        .as_ref()
        .ok_or_else(|| Failure::new("contents", BundleProblem::ObjectKeyMissing(sha256.to_owned())))?;
    let mut logged = open_with_file_key(logged, object_key).map_err(no_key)?;
    let disclosed = File::open(dir.join(&file)).map_err(|e| io(&file, e))?;
    let mut disclosed: Box<dyn Read> = match (plaintext, recipient) {
        (true, _) => Box::new(disclosed),
        (false, Some(identity)) => open_with(disclosed, identity).map_err(|source| {
            Failure::new(
                "contents",
                BundleProblem::DisclosedFileUnreadable {
                    file: file.clone(),
                    source,
                },
            )
        })?,
        (false, None) => return Ok(false),
    };
    let differs = || {
        Failure::new(
            "contents",
            BundleProblem::DisclosedFileDiffers {
                file: file.clone(),
                sha256: sha256.to_owned(),
            },
        )
    };
    let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fill(&mut logged, &mut a).map_err(|e| no_key(decrypt_error(e)))?;
        let m = fill(&mut disclosed, &mut b).map_err(|e| match (plaintext, e.kind()) {
            (false, std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) => Failure::new(
                "contents",
                BundleProblem::DisclosedFileUnreadable {
                    file: file.clone(),
                    source: EnvelopeError::Decrypt,
                },
            ),
            _ => io(&file, e),
        })?;
        if a[..n] != b[..m] {
            return Err(differs());
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Check the disclosed file of object `sha256` (named `name`), which the
/// signed disclosure names as a cleaned copy, against the SHA-256 it
/// names: read in the clear, or opened with the recipient's key. Returns
/// whether it could: not for a file sealed to a recipient whose key is not
/// at hand.
pub(super) fn check_cleaned(
    dir: &Path,
    sha256: &str,
    name: &str,
    cleaned: &str,
    plaintext: bool,
    recipient: Option<&age::x25519::Identity>,
) -> Result<bool, Failure> {
    let file = disclosed_file(name, plaintext);
    let unreadable = |source| {
        Failure::new(
            "contents",
            BundleProblem::DisclosedFileUnreadable {
                file: file.clone(),
                source,
            },
        )
    };
    let disclosed = File::open(dir.join(&file)).map_err(|source| {
        Failure::new(
            "contents",
            BundleProblem::Read {
                path: file.clone().into(),
                source,
            },
        )
    })?;
    let mut disclosed: Box<dyn Read> = match (plaintext, recipient) {
        (true, _) => Box::new(disclosed),
        (false, Some(identity)) => open_with(disclosed, identity).map_err(unreadable)?,
        (false, None) => return Ok(false),
    };
    let mut hashing = HashingWriter::new(std::io::sink());
    std::io::copy(&mut disclosed, &mut hashing).map_err(|e| match (plaintext, e.kind()) {
        (false, std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) => {
            unreadable(EnvelopeError::Decrypt)
        }
        _ => Failure::new(
            "contents",
            BundleProblem::Read {
                path: file.clone().into(),
                source: e,
            },
        ),
    })?;
    if hashing.finish().0 != cleaned {
        return Err(Failure::new(
            "contents",
            BundleProblem::CleanedFileDiffers {
                file: file.clone(),
                sha256: sha256.to_owned(),
                cleaned: cleaned.to_owned(),
            },
        ));
    }
    Ok(true)
}

fn decrypt_error(e: std::io::Error) -> EnvelopeError {
    match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => EnvelopeError::Decrypt,
        _ => EnvelopeError::Io(e),
    }
}

/// Read until `buf` is full or the stream ends; the count read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}

/// The submitter's account, from the first disclosed form (or, without
/// one, the first statement) that reads as one, decrypted from the logged
/// ciphertext with its key: what the summary quotes.
pub(super) fn account<'a>(
    dir: &Path,
    objects: impl Iterator<Item = (&'a str, ObjectKind, &'a ObjectKeys)> + Clone,
) -> Option<Account> {
    let read = |sha256: &str, keys: &ObjectKeys| -> Option<Vec<u8>> {
        let logged = File::open(dir.join(object_file(sha256))).ok()?;
        let mut out = Vec::new();
        // A cleaned copy's original is not opened: its key is not here.
        open_with_file_key(logged, keys.object.as_ref()?)
            .ok()?
            .take(MAX_ACCOUNT_BYTES + 1)
            .read_to_end(&mut out)
            .ok()?;
        (out.len() as u64 <= MAX_ACCOUNT_BYTES).then_some(out)
    };
    let first = |kind: ObjectKind, parse: fn(&[u8]) -> Option<Account>| {
        objects
            .clone()
            .filter(|(_, k, _)| *k == kind)
            .find_map(|(sha, _, keys)| parse(&read(sha, keys)?))
    };
    first(ObjectKind::Form, Account::from_form).or_else(|| first(ObjectKind::Statement, Account::from_statement))
}

/// Whether `name` is a plain file name: exactly what a label's safe name
/// (made unique) can be, and the only kind of name a bundle may use under
/// `files/`.
pub(super) fn plain_name(name: &str) -> Result<(), Failure> {
    if is_safe_file_name(name) {
        Ok(())
    } else {
        fail("files", BundleProblem::UnsafeName(name.to_owned()))
    }
}
