//! Encrypting files to a case and sending them: one file at once (a reply),
//! or a resumable series journalled after every step (`submit`, `submitter
//! add`). Encryption and hashing run off the async threads. Opens no case.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::{verify, Result, SubmitFile};
use crate::resume::{FilesDone, Journal, PendingUpload};
use crate::{Client, ClientError};
use custos_core::envelope::{encrypt_stream, CaseKey, HashingWriter, Label};
use custos_core::wire::{CommitUpload, ObjectCommitted};

/// The sealed label of a file: its base name and kind, encrypted to the case.
fn seal_label(f: &SubmitFile, case_key: &CaseKey) -> Result<Vec<u8>> {
    let name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    Ok(Label {
        name,
        media_type: None,
        kind: f.kind,
        description: None,
    }
    .seal(&case_key.recipient())?)
}

/// Encrypt the file at `src` to the case (and `also_to`) into `dst`, off the
/// async threads; returns the ciphertext's hex SHA-256.
async fn encrypt_file(
    src: &Path,
    dst: std::fs::File,
    case_key: &CaseKey,
    also_to: &[age::x25519::Recipient],
) -> Result<String> {
    let mut recipients = vec![case_key.recipient()];
    recipients.extend(also_to.iter().cloned());
    let src = src.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<String> {
        let input = std::fs::File::open(&src).map_err(|e| ClientError::Usage(format!("{}: {e}", src.display())))?;
        let mut hw = HashingWriter::new(std::io::BufWriter::new(dst));
        let recipients: Vec<&age::x25519::Recipient> = recipients.iter().collect();
        encrypt_stream(std::io::BufReader::new(input), &mut hw, &recipients)?;
        let (sha, _, w) = hw.finish();
        // Not fsynced: after a crash, a resumed upload re-hashes the file
        // against the journal's record and encrypts again if they differ.
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(sha)
    })
    .await
    .map_err(|e| verify(format!("encryption task failed: {e}")))?
}

/// Encrypt one file to the case into a temporary file, upload it, commit
/// it, and check the receipt names exactly that ciphertext.
pub async fn upload_encrypted(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    case_key: &CaseKey,
    also_to: &[age::x25519::Recipient],
    f: &SubmitFile,
) -> Result<ObjectCommitted> {
    let label = seal_label(f, case_key)?;
    let tmp = tempfile::NamedTempFile::new()?;
    let sha = encrypt_file(&f.path, tmp.reopen()?, case_key, also_to).await?;
    let committed = client.upload_file(key, case_id, tmp.path(), &sha, &label).await?;
    names_the_ciphertext(&committed, &sha)?;
    Ok(committed)
}

/// The same for text held in memory (a reply typed in the desk): the
/// plaintext is encrypted straight into the temporary file, so only
/// ciphertext ever reaches the disk.
#[allow(clippy::too_many_arguments)]
pub async fn upload_encrypted_bytes(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    case_key: &CaseKey,
    also_to: &[age::x25519::Recipient],
    label: &Label,
    plaintext: zeroize::Zeroizing<Vec<u8>>,
) -> Result<ObjectCommitted> {
    let sealed = label.seal(&case_key.recipient())?;
    let tmp = tempfile::NamedTempFile::new()?;
    let mut recipients = vec![case_key.recipient()];
    recipients.extend(also_to.iter().cloned());
    let dst = tmp.reopen()?;
    let sha = tokio::task::spawn_blocking(move || -> Result<String> {
        let mut hw = HashingWriter::new(std::io::BufWriter::new(dst));
        let recipients: Vec<&age::x25519::Recipient> = recipients.iter().collect();
        encrypt_stream(&plaintext[..], &mut hw, &recipients)?;
        let (sha, _, w) = hw.finish();
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(sha)
    })
    .await
    .map_err(|e| verify(format!("encryption task failed: {e}")))??;
    let committed = client.upload_file(key, case_id, tmp.path(), &sha, &sealed).await?;
    names_the_ciphertext(&committed, &sha)?;
    Ok(committed)
}

/// SHA-256 of a file, in hex, off the async threads.
async fn hash_file(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<String> {
        let mut hw = HashingWriter::new(std::io::sink());
        std::io::copy(&mut std::fs::File::open(&path)?, &mut hw)?;
        Ok(hw.finish().0)
    })
    .await
    .map_err(|e| verify(format!("hashing task failed: {e}")))?
}

/// The files of a resumable command (`submit`, `submitter add`): each is
/// encrypted into the journal, uploaded from wherever the vault says its
/// upload stands, committed, and its receipt recorded, saving progress
/// after every step with `save`. Files already committed are skipped.
#[allow(clippy::too_many_arguments)]
pub async fn upload_files_resumably(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    case_key: &CaseKey,
    files: &[SubmitFile],
    journal: &Journal,
    done: &mut FilesDone,
    save: &mut (dyn FnMut(&FilesDone) -> Result<()> + Send),
) -> Result<()> {
    for (index, f) in files.iter().enumerate().skip(done.receipts.len()) {
        let cipher = journal.ciphertext(index);
        let mut pending = match resumable(done, index, &cipher).await? {
            Some(p) => p,
            None => {
                let sha = encrypt_file(&f.path, std::fs::File::create(&cipher)?, case_key, &[]).await?;
                let length = std::fs::metadata(&cipher)?.len();
                let p = PendingUpload {
                    index,
                    upload: client.create_upload(key, case_id, length).await?,
                    sha256: sha,
                    label: B64.encode(seal_label(f, case_key)?),
                };
                done.pending = Some(p.clone());
                save(done)?;
                p
            }
        };
        let offset = match client.upload_offset(key, &pending.upload).await {
            Ok(offset) => offset,
            // Expired or gone: send the same ciphertext to a new upload.
            Err(e) if e.code() == Some("not_found") => {
                let length = std::fs::metadata(&cipher)?.len();
                pending.upload = client.create_upload(key, case_id, length).await?;
                done.pending = Some(pending.clone());
                save(done)?;
                0
            }
            Err(e) => return Err(e),
        };
        client.upload_from(key, &pending.upload, &cipher, offset).await?;
        let committed = client
            .commit(
                key,
                &pending.upload,
                &CommitUpload {
                    sha256: pending.sha256.clone(),
                    label: pending.label.clone(),
                },
            )
            .await?;
        names_the_ciphertext(&committed, &pending.sha256)?;
        done.receipts.push(committed.receipt);
        done.pending = None;
        save(done)?;
        std::fs::remove_file(&cipher)?;
    }
    Ok(())
}

/// The journal's upload of file `index`, if there is one and the
/// ciphertext it was made from is still there, unchanged.
async fn resumable(done: &FilesDone, index: usize, cipher: &Path) -> Result<Option<PendingUpload>> {
    match done.pending.clone().filter(|p| p.index == index) {
        Some(p) if cipher.exists() && hash_file(cipher).await? == p.sha256 => Ok(Some(p)),
        _ => Ok(None),
    }
}

/// The vault stored exactly the ciphertext that was sent.
fn names_the_ciphertext(committed: &ObjectCommitted, sha256: &str) -> Result<()> {
    if committed.object_id != sha256 {
        return Err(verify(
            "the vault stored a different object id than the ciphertext's hash",
        ));
    }
    Ok(())
}
