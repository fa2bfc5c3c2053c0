//! Encrypting files to a case and sending them: one file at once (a reply),
//! or a resumable series journalled after every step (`submit`, `submitter
//! add`). The ciphertext is made as it is sent and never written to disk;
//! encryption and hashing run off the async threads. Opens no case.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::{verify, Result, SubmitFile};
use crate::resume::{FilesDone, PendingUpload};
use crate::{Client, ClientError};
use custos_core::envelope::{CaseKey, Label, ReplayableEncryption};
use custos_core::wire::{CommitUpload, ObjectCommitted};
use zeroize::Zeroizing;

/// The sealed label of a file: its base name, kind and whether it is a
/// cleaned copy (`None`: nobody was asked), encrypted to the case.
fn seal_label(f: &SubmitFile, case_key: &CaseKey, cleaned: Option<bool>) -> Result<Vec<u8>> {
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
        cleaned,
    }
    .seal(&case_key.recipient())?)
}

/// The case key's recipient and `also_to`'s.
fn recipients_of(case_key: &CaseKey, also_to: &[age::x25519::Recipient]) -> Vec<age::x25519::Recipient> {
    let mut recipients = vec![case_key.recipient()];
    recipients.extend(also_to.iter().cloned());
    recipients
}

/// A new encryption to `recipients`.
fn new_encryption(recipients: &[age::x25519::Recipient]) -> Result<ReplayableEncryption> {
    Ok(ReplayableEncryption::new(&recipients.iter().collect::<Vec<_>>())?)
}

/// Open the file to send and take its length.
fn open_plaintext(path: &Path) -> Result<(std::fs::File, u64)> {
    let file = std::fs::File::open(path).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// What is sent of one file: the file itself, read as it is sent, or a
/// cleaned copy held in memory (made once per run: cleaning is
/// deterministic, so a resumed run makes the same bytes again).
#[derive(Clone)]
enum Source<'a> {
    File(&'a Path),
    Cleaned(Arc<Zeroizing<Vec<u8>>>),
    /// A video: the file with byte ranges overwritten as it streams.
    Overlaid(&'a Path, Arc<Vec<(u64, Vec<u8>)>>),
}

/// A cleaned copy's bytes as a reader's buffer.
struct Shared(Arc<Zeroizing<Vec<u8>>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Source<'_> {
    /// The plaintext to encrypt, and its length.
    fn open(&self) -> Result<(Box<dyn Read + Send>, u64)> {
        Ok(match self {
            Source::File(path) => {
                let (file, len) = open_plaintext(path)?;
                (Box::new(file), len)
            }
            Source::Overlaid(path, patches) => {
                let (file, len) = open_plaintext(path)?;
                (Box::new(crate::metadata::Overlaid::new(file, patches.clone())), len)
            }
            Source::Cleaned(bytes) => (
                Box::new(std::io::Cursor::new(Shared(bytes.clone()))),
                bytes.len() as u64,
            ),
        })
    }
}

/// Encrypt `plaintext` (`len` bytes) while it is sent to a new upload,
/// commit it with `label`, and check the receipt names exactly that
/// ciphertext. Nothing is written to disk.
#[allow(clippy::too_many_arguments)]
async fn send_once(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    recipients: &[age::x25519::Recipient],
    plaintext: impl Read + Send + 'static,
    len: u64,
    label: &[u8],
) -> Result<ObjectCommitted> {
    let encryption = new_encryption(recipients)?;
    let length = encryption.ciphertext_len(len);
    let upload = client.create_upload(key, case_id, length).await?;
    let sha256 = client
        .upload_from(key, &upload, encryption.reader(plaintext, len), length, 0)
        .await?;
    let committed = client
        .commit(
            key,
            &upload,
            &CommitUpload {
                sha256: sha256.clone(),
                label: B64.encode(label),
            },
        )
        .await?;
    names_the_ciphertext(&committed, &sha256)?;
    Ok(committed)
}

/// Encrypt one file to the case (and `also_to`) as it is uploaded, commit
/// it, and check the receipt names exactly that ciphertext.
pub async fn upload_encrypted(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    case_key: &CaseKey,
    also_to: &[age::x25519::Recipient],
    f: &SubmitFile,
) -> Result<ObjectCommitted> {
    let label = seal_label(f, case_key, None)?;
    let (file, len) = open_plaintext(&f.path)?;
    let recipients = recipients_of(case_key, also_to);
    send_once(client, key, case_id, &recipients, file, len, &label).await
}

/// The same for text held in memory (a reply typed in the desk): it is
/// encrypted as it is sent, so it reaches no disk at all.
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
    let len = plaintext.len() as u64;
    let recipients = recipients_of(case_key, also_to);
    send_once(
        client,
        key,
        case_id,
        &recipients,
        std::io::Cursor::new(plaintext),
        len,
        &sealed,
    )
    .await
}

/// The files of a resumable command (`submit`, `submitter add`): each is
/// encrypted as it is uploaded, from wherever the vault says its upload
/// stands, committed, and its receipt recorded, saving progress after
/// every step with `save`. Files already committed are skipped.
///
/// No ciphertext is kept: see [`upload_files_cleaned`], which this is
/// with no file cleaned and none asked about.
#[allow(clippy::too_many_arguments)]
pub async fn upload_files_resumably(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    case_key: &CaseKey,
    files: &[SubmitFile],
    done: &mut FilesDone,
    save: &mut (dyn FnMut(&FilesDone) -> Result<()> + Send),
) -> Result<()> {
    upload_files_cleaned(client, key, case_id, case_key, files, &[], done, save).await
}

/// [`upload_files_resumably`], with the submitter's cleaning choices.
///
/// `cleaned` (one per file, or empty) says which to send as a cleaned copy
/// (`Some(true)`), as is after being examined (`Some(false)`) or as is
/// without being asked (`None`); the label carries it.
///
/// No ciphertext is kept: the journal holds what makes the same
/// ciphertext again from the file (its encryption's header, nonce and
/// file key), so a resumed upload makes and hashes the part the vault
/// already holds and sends the rest; the vault's check of the SHA-256 at
/// commit proves the two runs made the same bytes.
#[allow(clippy::too_many_arguments)]
pub async fn upload_files_cleaned(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    case_key: &CaseKey,
    files: &[SubmitFile],
    cleaned: &[Option<bool>],
    done: &mut FilesDone,
    save: &mut (dyn FnMut(&FilesDone) -> Result<()> + Send),
) -> Result<()> {
    let recipients = recipients_of(case_key, &[]);
    for (index, f) in files.iter().enumerate().skip(done.receipts.len()) {
        let choice = cleaned.get(index).copied().flatten();
        let source = if choice == Some(true) {
            let path = f.path.clone();
            let copy = tokio::task::spawn_blocking(move || crate::metadata::cleaned(&path))
                .await
                .map_err(|e| verify(format!("cleaning failed: {e}")))??;
            match copy {
                crate::metadata::Cleaned::Bytes(bytes) => Source::Cleaned(Arc::new(bytes)),
                crate::metadata::Cleaned::Overlay(patches) => Source::Overlaid(&f.path, Arc::new(patches)),
            }
        } else {
            Source::File(&f.path)
        };
        let f = &Labelled {
            file: f,
            cleaned: choice,
        };
        let (_, len) = source.open()?;
        let resumed = done
            .pending
            .as_ref()
            .is_some_and(|p| p.index == index && p.plaintext_len == len && p.encryption.is_some());
        if !resumed {
            start_upload(client, key, case_id, case_key, &recipients, f, index, len, done, save).await?;
        }
        let committed = match send_pending(client, key, case_id, &recipients, &source, len, done, save).await {
            // The part the vault holds is not what this file makes now: it
            // changed in a way its size and time did not show. Send it
            // afresh, once.
            Err(e) if resumed && e.code() == Some("hash_mismatch") => {
                start_upload(client, key, case_id, case_key, &recipients, f, index, len, done, save).await?;
                send_pending(client, key, case_id, &recipients, &source, len, done, save).await?
            }
            other => other?,
        };
        done.receipts.push(committed.receipt);
        done.pending = None;
        save(done)?;
    }
    Ok(())
}

/// A file with what its label says of cleaning.
struct Labelled<'a> {
    file: &'a SubmitFile,
    cleaned: Option<bool>,
}

/// Begin file `index`: a new encryption and a new upload of its length,
/// journalled before a byte is sent.
#[allow(clippy::too_many_arguments)]
async fn start_upload(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    case_key: &CaseKey,
    recipients: &[age::x25519::Recipient],
    f: &Labelled<'_>,
    index: usize,
    len: u64,
    done: &mut FilesDone,
    save: &mut (dyn FnMut(&FilesDone) -> Result<()> + Send),
) -> Result<()> {
    let encryption = new_encryption(recipients)?;
    let upload = client
        .create_upload(key, case_id, encryption.ciphertext_len(len))
        .await?;
    done.pending = Some(PendingUpload {
        index,
        upload,
        plaintext_len: len,
        encryption: Some(encryption),
        label: B64.encode(seal_label(f.file, case_key, f.cleaned)?),
    });
    save(done)
}

/// Send the journal's pending upload from where the vault says it stands
/// (to a new upload of the same ciphertext if the old one expired) and
/// commit it.
#[allow(clippy::too_many_arguments)]
async fn send_pending(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    case_id: &str,
    recipients: &[age::x25519::Recipient],
    source: &Source<'_>,
    len: u64,
    done: &mut FilesDone,
    save: &mut (dyn FnMut(&FilesDone) -> Result<()> + Send),
) -> Result<ObjectCommitted> {
    // A break (a Tor circuit that closed) is taken up again from where the
    // vault says the upload stands, a few times before the run gives up.
    let mut breaks = 0;
    let sha256 = loop {
        // One try: from the vault's offset, or from 0 under a fresh
        // encryption to a new upload if the old one expired.
        let sent = async {
            let pending = done.pending.as_mut().expect("an upload was started");
            let offset = match client.upload_offset(key, &pending.upload).await {
                Ok(offset) => offset,
                // Expired or gone: nothing sent is kept, so nothing needs making
                // again, and a fresh encryption goes to a new upload. The old key
                // and nonces are never used over the file a second time: had it
                // changed in a way its size and time did not show, the vault
                // would see two plaintexts under one keystream.
                Err(e) if e.code() == Some("not_found") => {
                    let encryption = new_encryption(recipients)?;
                    pending.upload = client
                        .create_upload(key, case_id, encryption.ciphertext_len(len))
                        .await?;
                    pending.encryption = Some(encryption);
                    save(done)?;
                    0
                }
                Err(e) => return Err(e),
            };
            let pending = done.pending.as_ref().expect("still pending");
            let encryption = pending.encryption.as_ref().expect("an encryption was started");
            let length = encryption.ciphertext_len(len);
            let (plaintext, _) = source.open()?;
            client
                .upload_from(key, &pending.upload, encryption.reader(plaintext, len), length, offset)
                .await
        }
        .await;
        match sent {
            Ok(sha256) => break sha256,
            Err(e) if e.is_broken_exchange() && breaks < crate::TRANSFER_RETRIES => {
                breaks += 1;
                crate::wait_before_retry(breaks).await;
            }
            Err(e) => return Err(e),
        }
    };
    let pending = done.pending.as_ref().expect("still pending");
    let committed = client
        .commit(
            key,
            &pending.upload,
            &CommitUpload {
                sha256: sha256.clone(),
                label: pending.label.clone(),
            },
        )
        .await?;
    names_the_ciphertext(&committed, &sha256)?;
    Ok(committed)
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
