//! Retrieving a case: download each object (resuming a cut download),
//! check it against its hash and its access receipt, decrypt it while it
//! arrives, and move the files into place only once all of them verified.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{case_key_of, check_receipt, held_proven, holder_status, verify, Result};
use crate::pipe::{pipe, send_counted, Growing};
use crate::{Client, ClientError};
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::Action;
use custos_core::envelope::{CaseKey, Label, ObjectKind};
use custos_core::identity::Identity;
use custos_core::wire::CaseObject;

/// The decrypted files of a case.
#[derive(Debug, Clone, Serialize)]
pub struct Retrieved {
    /// Case id.
    pub case_id: String,
    /// Status as this holder sees it (see [`holder_status`]).
    pub status: String,
    /// One entry per object, by kind, then name.
    pub files: Vec<RetrievedFile>,
}

/// One decrypted file.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievedFile {
    /// Object id.
    pub object_id: String,
    /// What it is.
    pub kind: ObjectKind,
    /// Where it was written.
    pub path: PathBuf,
    /// What the decrypted file itself reveals (never the sender's word).
    pub findings: Vec<custos_meta::Finding>,
    /// Why the file could not be fully examined, when so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings_note: Option<String>,
    /// What its label says: a cleaned copy (`true`), sent as is after
    /// being shown its findings (`false`), or never asked (`None`). The
    /// sender's word.
    pub cleaned: Option<bool>,
}

/// Download, verify and decrypt every object of a case into `out`. Nothing
/// is written to `out` unless every object verifies and decrypts.
pub async fn get_case(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    out: &Path,
) -> Result<Retrieved> {
    // The staging folder is named after the case.
    crate::ids::case_id_arg(case_id)?;
    let (detail, proven) = held_proven(client, identity, log, case_id).await?;
    let case_key = case_key_of(identity, &proven)?;
    let status = holder_status(identity, &proven)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    // Ciphertext is staged in a folder named after the case, so that a cut
    // download resumes where it stopped when the same command runs again
    // (HTTP range requests). Plaintext is staged beside it only while this
    // run lasts; the folder goes once the files are in place.
    let staging = parent.join(format!(".custos-get-{case_id}"));
    custos_durable::create_private_dir(&staging)?;
    let plain = PlainStaging::new(staging.join("plain"))?;
    let fetch = Fetch {
        client,
        identity,
        log,
        case_id,
        case_key: &case_key,
        staging: &staging,
    };
    let mut names = HashSet::new();
    let mut staged = Vec::new();
    // In the order they arrived, so that two files of one name get the
    // same suffixes on every run.
    let mut objects: Vec<_> = detail.objects.iter().collect();
    objects.sort_by_key(|o| o.index);
    for obj in objects {
        let label = B64.decode(&obj.label).map_err(|_| verify("label is not base64"))?;
        let label = Label::open(&label, &case_key)?;
        let name = custos_core::envelope::unique_name(&mut names, &label.safe_file_name());
        let plain_path = plain.0.join(&name);
        std::fs::create_dir_all(plain_path.parent().expect("has parent"))?;
        fetch.object(obj, &plain_path).await?;
        staged.push((obj.object_id.clone(), label.kind, name, label.cleaned));
    }
    let mut files = move_into_place(out, &plain, staged)?;
    drop(plain);
    std::fs::remove_dir_all(&staging)?;
    files.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    // Read: the case no longer counts as new for `cases --new`.
    super::mark_seen_async(client, identity, case_id, proven.last_event.0).await;
    Ok(Retrieved {
        case_id: case_id.to_owned(),
        status,
        files,
    })
}

/// What fetching each object of one case needs.
struct Fetch<'a> {
    client: &'a Client,
    identity: &'a Identity,
    log: &'a LogVerifier,
    case_id: &'a str,
    case_key: &'a CaseKey,
    /// Where ciphertext is kept between runs.
    staging: &'a Path,
}

impl Fetch<'_> {
    /// Download one object, resuming from what an earlier run staged, and
    /// decrypt it into `plain_path` while it arrives.
    ///
    /// The async side only forwards the download's pieces, through a
    /// bounded pipe, to a blocking thread that stages and hashes them; a
    /// second blocking thread decrypts the staged file as it grows, so
    /// decryption overlaps the download without slowing the staging, and
    /// no file or hashing work runs on the async threads. The plaintext
    /// stays in the private staging folder until the hash of the whole
    /// ciphertext has been checked; any failure removes it.
    async fn object(&self, obj: &CaseObject, plain_path: &Path) -> Result<()> {
        // `Client::case` checked the ids; a file name is made of this one.
        crate::ids::host_object_id(&obj.object_id)?;
        let ct_path = self.staging.join(format!("{}.age", obj.object_id));
        let mut have = std::fs::metadata(&ct_path).map(|m| m.len()).unwrap_or(0);
        if have > obj.size {
            std::fs::remove_file(&ct_path)?;
            have = 0;
        }
        let mut appending = std::fs::OpenOptions::new().create(true).append(true).open(&ct_path)?;
        let reading = std::fs::File::open(&ct_path)?;
        let growing = Growing::new(have);
        let (pieces, mut feed) = pipe();
        let staging = {
            let (growing, ct_path) = (growing.clone(), ct_path.clone());
            tokio::task::spawn_blocking(move || -> Result<String> {
                let _end = growing.ending();
                // What an earlier run staged, then each new piece.
                let mut hasher = Sha256::new();
                std::io::copy(&mut std::fs::File::open(&ct_path)?.take(have), &mut hasher)?;
                growing.append(&mut appending, &mut feed, |piece| hasher.update(piece))?;
                Ok(hex::encode(hasher.finalize()))
            })
        };
        let (dst, key) = (plain_path.to_path_buf(), self.case_key.identity().clone());
        let decrypting = tokio::task::spawn_blocking(move || decrypt_into(growing.reader(reading), &dst, &key));
        let downloaded = self.download(obj, have, pieces).await;
        let staged = staging.await.map_err(|e| verify(format!("staging task failed: {e}")))?;
        let decrypted = decrypting
            .await
            .map_err(|e| verify(format!("decryption task failed: {e}")))?;
        // Staging stopped: the download's broken pipe says only that.
        let sha = staged?;
        if let Err(e) = downloaded {
            if matches!(e, ClientError::Verify(_)) {
                // Bytes whose access receipt failed are not kept for a
                // resume: a run that found them whole would fetch nothing,
                // and so check no receipt for them.
                std::fs::remove_file(&ct_path)?;
            }
            return Err(e);
        }
        if sha != obj.object_id {
            // Start this object afresh next time.
            std::fs::remove_file(&ct_path)?;
            return Err(verify(format!(
                "object {} does not match its hash (got {sha})",
                obj.object_id
            )));
        }
        decrypted
    }

    /// Download what is not staged yet of `obj` (from byte `have`) into
    /// `pieces`, and check its access receipt; nothing when all is staged.
    /// Dropping `pieces` at the end is the end of the ciphertext for the
    /// decryptor.
    async fn download(&self, obj: &CaseObject, have: u64, pieces: mpsc::Sender<crate::pipe::Piece>) -> Result<()> {
        if have >= obj.size {
            return Ok(());
        }
        // A break (a Tor circuit that closed) is taken up again from the
        // byte it stopped at, a few times, each a logged access of its own.
        // Each access's receipt is checked before a byte of it is kept, so
        // nothing staged came under a receipt nobody looked at.
        let mut from = have;
        let mut breaks = 0;
        loop {
            let sent = async {
                let download = self
                    .client
                    .open_download(self.identity.signing_key(), self.case_id, &obj.object_id, from)
                    .await?;
                self.check_access(download.receipt(), obj)?;
                send_counted(download, &pieces, &mut from).await
            }
            .await;
            match sent {
                Ok(_) => return Ok(()),
                Err(e) if e.is_broken_exchange() && breaks < crate::TRANSFER_RETRIES && from < obj.size => {
                    breaks += 1;
                    crate::wait_before_retry(breaks).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The access receipt is a signed, logged access to exactly this
    /// object by this identity.
    fn check_access(&self, receipt: &custos_core::custody::Receipt, obj: &CaseObject) -> Result<()> {
        let event = check_receipt(receipt, self.log, Action::ObjectAccessed)?;
        if event.objects != [obj.object_id.clone()] || event.actor != self.identity.key_id().as_str() {
            return Err(verify("the access receipt is for another object or actor"));
        }
        Ok(())
    }
}

/// Decrypt `ciphertext` into a new file at `dst`, readable by its owner
/// only, as decrypted evidence must be.
fn decrypt_into(ciphertext: impl Read, dst: &Path, key: &age::x25519::Identity) -> Result<()> {
    let file = custos_core::identity::private_file(dst).map_err(|e| ClientError::Usage(e.to_string()))?;
    let mut output = std::io::BufWriter::with_capacity(crate::pipe::WRITE_BUFFER, file);
    custos_core::envelope::decrypt_stream(ciphertext, &mut output, key)?;
    output.flush()?;
    Ok(())
}

/// Move the staged plaintext into `out`, refusing to overwrite anything.
fn move_into_place(
    out: &Path,
    plain: &PlainStaging,
    staged: Vec<(String, ObjectKind, String, Option<bool>)>,
) -> Result<Vec<RetrievedFile>> {
    if !out.exists() {
        custos_durable::create_private_dir(out)?;
    }
    for (_, _, name, _) in &staged {
        if out.join(name).exists() {
            return Err(ClientError::Usage(format!(
                "{} exists already; choose an empty --out folder",
                out.join(name).display()
            )));
        }
    }
    // Every file is in place before any is examined: the examination
    // parses what a sender uploaded, and whatever it meets, no plaintext
    // is left in the staging folder.
    let mut placed = Vec::new();
    for (object_id, kind, name, cleaned) in staged {
        let dest = out.join(&name);
        std::fs::rename(plain.0.join(&name), &dest)?;
        placed.push((object_id, kind, dest, cleaned));
    }
    let mut files = Vec::new();
    for (object_id, kind, dest, cleaned) in placed {
        // Examined once in place: what the lawyer sees is what the file
        // says, whatever its label claims.
        let report = crate::metadata::examine(&dest)?;
        files.push(RetrievedFile {
            object_id,
            kind,
            path: dest,
            findings: report.findings,
            findings_note: report.note,
            cleaned,
        });
    }
    Ok(files)
}

/// The folder decrypted files wait in before they are moved into place:
/// emptied of anything a killed run left, and removed when this run ends,
/// however it ends, so plaintext never outlives the command there.
struct PlainStaging(PathBuf);

impl PlainStaging {
    fn new(dir: PathBuf) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        custos_durable::create_private_dir(&dir)?;
        Ok(PlainStaging(dir))
    }
}

impl Drop for PlainStaging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
