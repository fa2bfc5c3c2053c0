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
//!
//! One run at a time: a run holds an OS lock on its journal (`flock` on
//! the folder's `lock` file) until it ends, so a second run of the same
//! command, while the first is alive, stops at once and names the first's
//! process, instead of both taking the journal for theirs (two runs raced
//! on one journal's files and on opening one case). The kernel drops the
//! lock when a process dies however it dies, so a journal left by a dead
//! run is resumed as before.

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

/// One command's journal folder, held by this run (see the module's
/// docs) for as long as the value lives.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    /// The open `lock` file: its `flock` is this run's hold on the journal,
    /// released when it is closed.
    _lock: std::fs::File,
    /// A journal of a `--new` run, which nothing resumes: removed when the
    /// value is dropped (see [`Journal::open_new`] for a killed run's).
    throwaway: bool,
}

/// Journals made by [`Journal::open_new`] are named by their command's
/// fingerprint and this many random bytes, in hex.
const NEW_RUN_TAG_BYTES: usize = 8;

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
    /// only its owner can enter), held by this run. If another live
    /// process holds it, stops at once with a [`ClientError::Busy`] that
    /// names `command` and the other's process id.
    pub fn open(root: &Path, fingerprint: &str, command: &str) -> Result<Self, ClientError> {
        Self::hold(root.join("resume").join(fingerprint), command, false)
    }

    /// A journal of its own for a run that files the same files as a
    /// separate submission (`custos submit --new`): it never meets the
    /// journal of an interrupted or running plain run of the same command,
    /// and nothing resumes it. It is removed when the run ends with an
    /// error or a success; a run killed (a signal, Ctrl-C) leaves it, and
    /// the next `--new` run of the same files removes such leftovers.
    pub fn open_new(root: &Path, fingerprint: &str, command: &str) -> Result<Self, ClientError> {
        let resume = root.join("resume");
        remove_dead_new_runs(&resume, fingerprint);
        let tag = hex::encode(rand::random::<[u8; NEW_RUN_TAG_BYTES]>());
        Self::hold(resume.join(format!("{fingerprint}-{tag}")), command, true)
    }

    fn hold(dir: PathBuf, command: &str, throwaway: bool) -> Result<Self, ClientError> {
        loop {
            match try_hold(&dir, command)? {
                Some(lock) => {
                    return Ok(Journal {
                        dir,
                        _lock: lock,
                        throwaway,
                    })
                }
                // The folder or its lock file changed under us (a run
                // finished and removed it): look again.
                None => continue,
            }
        }
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

    /// The command finished: forget everything. While this run still holds
    /// the lock, the folder is first moved aside under a name no run looks
    /// for, then removed: a run that opened the old lock file meanwhile
    /// finds it is no longer the journal's and starts again, and none can
    /// make a new lock file in the folder being removed.
    pub fn finish(self) -> Result<(), ClientError> {
        let aside = self.dir.with_file_name(format!(
            ".done-{}",
            hex::encode(rand::random::<[u8; NEW_RUN_TAG_BYTES]>())
        ));
        std::fs::rename(&self.dir, &aside)?;
        Ok(std::fs::remove_dir_all(&aside)?)
    }
}

/// The file in a journal folder whose OS lock is a run's hold on it.
const LOCK_FILE: &str = "lock";
/// The file that names the holding run's process, for the message a
/// refused run prints; the lock, not this file, is what holds.
const HOLDER_FILE: &str = "holder";
/// How often, 20 ms apart, a refused run looks for the holder's name
/// before saying it is unknown: the holder writes it just after locking.
const HOLDER_LOOKS: usize = 10;

/// Take the journal folder `dir` (made if missing): its lock file, locked,
/// or `None` if the folder changed meanwhile and the caller should try
/// again. A live holder is a [`ClientError::Busy`] naming `command`.
fn try_hold(dir: &Path, command: &str) -> Result<Option<std::fs::File>, ClientError> {
    use std::io::ErrorKind::{AlreadyExists, NotFound};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    match custos_durable::create_private_dir(dir) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), NotFound | AlreadyExists) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let path = dir.join(LOCK_FILE);
    let lock = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
    {
        Ok(lock) => lock,
        Err(e) if e.kind() == NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(ClientError::Busy(format!(
                "another `custos {command}` of these files is running ({})",
                holder(dir)
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
    }
    // The lock is on the file we opened; if a finishing run moved it away
    // meanwhile (and perhaps another made a new one), holding it holds
    // nothing.
    let same = std::fs::metadata(&path).is_ok_and(|now| {
        lock.metadata()
            .is_ok_and(|held| held.ino() == now.ino() && held.dev() == now.dev())
    });
    if !same {
        return Ok(None);
    }
    // Replaced whole (a reader sees the old name or the new, never half);
    // not synced: it only names the process while it runs.
    let named = dir.join(format!("{HOLDER_FILE}.new"));
    std::fs::write(&named, std::process::id().to_string())?;
    std::fs::rename(&named, dir.join(HOLDER_FILE))?;
    Ok(Some(lock))
}

/// "pid N" of the run holding the journal in `dir`, or "pid unknown".
fn holder(dir: &Path) -> String {
    for _ in 0..HOLDER_LOOKS {
        if let Ok(pid) = std::fs::read_to_string(dir.join(HOLDER_FILE)) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                return format!("pid {pid}");
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    "pid unknown".into()
}

/// Remove the journals of `--new` runs of `fingerprint` that were killed:
/// their lock can be taken, so no live run holds them, and nothing would
/// ever resume them (they hold codenames and a case key).
fn remove_dead_new_runs(resume: &Path, fingerprint: &str) {
    let prefix = format!("{fingerprint}-");
    let Ok(entries) = std::fs::read_dir(resume) else { return };
    for dir in entries.filter_map(|e| Some(e.ok()?.path())) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !name.starts_with(&prefix) {
            continue;
        }
        if let Ok(lock) = std::fs::File::open(dir.join(LOCK_FILE)) {
            if lock.try_lock().is_ok() {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.throwaway {
            // Best effort: it holds the case key and codenames of a run
            // nothing will resume.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
