//! Resuming an interrupted `custos submit` or `custos submitter add`: a
//! journal folder per command (named by a fingerprint of the vault, the
//! case and the files) holds the tus upload of the file being sent, what
//! makes its ciphertext again, and what is already committed. Running the
//! same command again picks up at the server's offset; success deletes the
//! folder.
//!
//! age encryption is randomised: the same file encrypted again is a
//! different object. So the journal keeps the encryption itself (its age
//! header, payload nonce and file key, `envelope::ReplayableEncryption`)
//! rather than a copy of the ciphertext. The file key opens only that
//! file, whose plaintext sits beside it on the same disk; a submission's
//! journal also holds its codenames and case key until it completes
//! (`submit` has nothing else to resume with). It is readable by its owner
//! only (a 0600 file in a 0700 folder, replaced atomically) and is deleted
//! as soon as the command ends.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ClientError;
use custos_core::custody::Receipt;
use custos_core::envelope::{ObjectKind, ReplayableEncryption};
use custos_durable::write_atomically;

/// A file to submit.
#[derive(Debug, Clone)]
pub struct SubmitFile {
    /// Path on this device.
    pub path: PathBuf,
    /// What it is.
    pub kind: ObjectKind,
}

/// A tus upload under way for one file of the command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingUpload {
    /// Which file of the command (its position).
    pub index: usize,
    /// The upload's path on the vault.
    pub upload: String,
    /// The file's length when its upload began.
    #[serde(default)]
    pub plaintext_len: u64,
    /// What makes the file's ciphertext again, byte for byte. A journal
    /// written before there was one has none: that file starts afresh.
    #[serde(default)]
    pub encryption: Option<ReplayableEncryption>,
    /// The sealed label, base64.
    pub label: String,
}

/// Progress of the files of one command.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FilesDone {
    /// Receipts of the files committed so far, in order.
    pub receipts: Vec<Receipt>,
    /// The upload in progress, if any.
    pub pending: Option<PendingUpload>,
}

/// One command's journal folder.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
}

/// A fingerprint of what a command does: what it is, the vault, and each
/// file's path, size and modification time, so that the same command finds
/// its journal and a changed file starts afresh.
pub fn fingerprint(what: &str, server: &str, files: &[SubmitFile]) -> Result<String, ClientError> {
    let mut h = Sha256::new();
    h.update(format!("custos resume v1\n{what}\n{server}\n"));
    for f in files {
        let path =
            std::fs::canonicalize(&f.path).map_err(|e| ClientError::Usage(format!("{}: {e}", f.path.display())))?;
        let meta = std::fs::metadata(&path)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.update(format!("{:?}\n{}\n{}\n{mtime}\n", f.kind, path.display(), meta.len()));
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

impl Journal {
    /// The journal for `fingerprint` under `root`, created if new (a folder
    /// only its owner can enter).
    pub fn open(root: &Path, fingerprint: &str) -> Result<Self, ClientError> {
        let dir = root.join("resume").join(fingerprint);
        if !dir.exists() {
            custos_durable::create_private_dir(&dir)?;
        }
        Ok(Journal { dir })
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved state, if this command ran before and did not finish.
    pub fn load<S: DeserializeOwned>(&self) -> Result<Option<S>, ClientError> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(None);
        }
        serde_json::from_slice(&std::fs::read(&path)?).map(Some).map_err(|e| {
            ClientError::Usage(format!(
                "{} is damaged ({e}); remove it to start afresh",
                path.display()
            ))
        })
    }

    /// Save the state durably (a crash leaves the old or the new, whole).
    pub fn save<S: Serialize>(&self, state: &S) -> Result<(), ClientError> {
        let bytes = zeroize::Zeroizing::new(serde_json::to_vec(state).expect("serialisable"));
        Ok(write_atomically(&self.state_path(), &bytes)?)
    }

    /// The command finished: forget everything.
    pub fn finish(self) -> Result<(), ClientError> {
        Ok(std::fs::remove_dir_all(&self.dir)?)
    }
}
