//! The workflows each role runs, built on [`Client`]: submit a case, fetch
//! and decrypt a case, grant it, and audit the whole log. Each verifies what
//! the server returns (receipts, hashes, signatures) and never takes the
//! server's word. The CLI is a thin shell around these functions.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::proven::{prove_case, ProvenCase, Reader};
pub use super::resume::SubmitFile;
use super::resume::{FilesDone, Journal, PendingUpload};
use super::trust::{TrustStore, Trusted};
use super::{Client, ClientError};
use crate::audit::{decode_hashes, verify_receipt, AuditSummary, LogAuditor};
use crate::custody::checkpoint::LogVerifier;
use crate::custody::cosignature::WitnessVerifier;
use crate::custody::{merkle, Action, Receipt};
use crate::durable::write_atomically;
use crate::envelope::{encrypt_bytes, encrypt_stream, CaseKey, HashingWriter, Label, ObjectKind};
use crate::identity::codename::Codename;
use crate::identity::{Card, Identity, KeyId};
use crate::wire::*;

type Result<T, E = ClientError> = std::result::Result<T, E>;

pub(super) fn verify(msg: impl Into<String>) -> ClientError {
    ClientError::Verify(msg.into())
}

/// Fetch the intake parameters and check them against what this client
/// trusts.
pub async fn trusted_vault(client: &Client, store: &TrustStore, explicit: &[Card]) -> Result<(IntakeParams, Trusted)> {
    let params = client.intake().await?;
    let trusted = store.check(client.base(), &params, explicit)?;
    // The parameters' checkpoint must extend the last one this client
    // accepted from the vault: a host that shows it an older registry, or a
    // fork, is refused.
    if let (Some(pins), Ok(cp)) = (client.pins(), trusted.log.verify(&params.checkpoint)) {
        pins.advance_checkpoint(client, &trusted.log, &params.checkpoint, &cp)
            .await?;
    }
    Ok((params, trusted))
}

/// Check a receipt and that its event is the expected action.
pub fn check_receipt(receipt: &Receipt, log: &LogVerifier, action: Action) -> Result<crate::custody::Event> {
    let (event, _) = verify_receipt(receipt, log).map_err(|e| verify(format!("receipt: {e}")))?;
    if event.action != action {
        return Err(verify(format!(
            "receipt is for {:?}, expected {action:?}",
            event.action
        )));
    }
    Ok(event)
}

/// What a submitter takes away.
#[derive(Debug)]
pub struct Submitted {
    /// The case id.
    pub case_id: String,
    /// The codename, to be shown once.
    pub codename: Codename,
    /// The duress codename, when one was asked for.
    pub duress_codename: Option<Codename>,
    /// The receipt document.
    pub receipt: ReceiptFile,
}

/// The receipt a submitter keeps: every event of the submission with its
/// proof and checkpoint, and the log key that signed them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptFile {
    /// Case id.
    pub case_id: String,
    /// Vault origin.
    pub origin: String,
    /// Log verifier key.
    pub vkey: String,
    /// Receipts, case creation first.
    pub receipts: Vec<Receipt>,
    /// The vault's witnesses' word on the receipts, when it has witnesses
    /// and they cosigned in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
}

/// A checkpoint cosigned by every witness the client holds the vault to,
/// and the proof that it extends the receipts' last checkpoint: the
/// receipts' events are then in a history the witnesses saw, which no fork
/// shown to others can drop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Witnessed {
    /// The cosigned checkpoint note.
    pub checkpoint: String,
    /// Size of the receipts' last checkpoint, which it extends.
    pub from_size: u64,
    /// The RFC 9162 consistency proof between the two, base64 hashes.
    pub consistency: Vec<String>,
    /// The witnesses that cosigned it.
    pub cosigned_by: Vec<String>,
}

/// How long `submit` waits for the witnesses to cosign its receipts.
const RECEIPT_COSIGN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The witnesses' word on `receipts`: the vault's newest checkpoint, once
/// every one of `trusted.witnesses` cosigned it, and its consistency with
/// the receipts' last checkpoint. `None` when the vault has no witnesses;
/// an error when they do not cosign within `wait` or the proof fails (the
/// caller says the receipt is the vault's word alone).
pub async fn witness_receipts(
    client: &Client,
    trusted: &Trusted,
    receipts: &[Receipt],
    wait: std::time::Duration,
) -> Result<Option<Witnessed>> {
    if trusted.witnesses.is_empty() {
        return Ok(None);
    }
    let last = receipts.last().ok_or_else(|| verify("no receipt to witness"))?;
    let from = trusted
        .log
        .verify(&last.checkpoint)
        .map_err(|e| verify(format!("receipt checkpoint: {e}")))?;
    let every = crate::bundle::Policy {
        witnesses: trusted.witnesses.clone(),
        quorum: trusted.witnesses.len(),
    };
    let mut cosigned_by = Vec::new();
    let note = cosigned_checkpoint(client, &trusted.log, &every, wait, &mut cosigned_by).await?;
    let cp = trusted
        .log
        .verify(&note)
        .map_err(|e| verify(format!("checkpoint: {e}")))?;
    // The vault's newest checkpoint cannot be older than one it issued
    // before; the consistency check refuses one that is.
    let proof = if cp.size <= from.size {
        Vec::new()
    } else {
        client.consistency(from.size, cp.size).await?.proof
    };
    let hashes = decode_hashes(&proof).ok_or_else(|| verify("consistency proof is malformed"))?;
    merkle::verify_consistency(from.size, cp.size, &hashes, &from.root, &cp.root)
        .map_err(|e| verify(format!("the witnessed checkpoint does not extend the receipt's: {e}")))?;
    Ok(Some(Witnessed {
        checkpoint: note,
        from_size: from.size,
        consistency: proof,
        cosigned_by,
    }))
}

/// The duress note's plaintext: which submitter key, if any, is the duress
/// key. Always the same length, so its ciphertext says nothing either way.
fn duress_note(duress: Option<&KeyId>) -> String {
    match duress {
        Some(k) => format!("custos-note-v1 duress={k}"),
        None => format!("custos-note-v1 duress={}", "-".repeat(16)),
    }
}

/// Read a duress note: the duress key id, if any; an error if the text is
/// not a duress note at all.
fn read_duress_note(text: &[u8]) -> std::result::Result<Option<KeyId>, ()> {
    let key = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.strip_prefix("custos-note-v1 duress="))
        .ok_or(())?;
    if key == "-".repeat(16) {
        return Ok(None);
    }
    key.parse().map(Some).map_err(|_| ())
}

/// What an unfinished `submit` keeps in its journal: the secrets it cannot
/// make again (codenames, case key), the case once it exists, and the files'
/// progress. Zeroized when dropped.
#[derive(Serialize, Deserialize)]
struct SubmitState {
    codename: String,
    second: String,
    duress: bool,
    case_key: String,
    /// Whether the second codename's key opened the case.
    opened_by_second: bool,
    case_id: Option<String>,
    created: Option<crate::custody::Receipt>,
    files: FilesDone,
}

impl Drop for SubmitState {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.codename.zeroize();
        self.second.zeroize();
        self.case_key.zeroize();
    }
}

/// Submit a case: generate a codename (and, with `duress`, a second one
/// that works exactly like it but marks any withdrawal as coerced) and a
/// case key, wrap the case key to the verified intake principals and to both
/// submitter keys, write the duress note for lawyers, pay the proof-of-work
/// stamp, encrypt and upload each file, and check every receipt.
///
/// Every case registers two submitter keys and a note: without `duress` the
/// second key comes from a codename nobody is shown, so the server cannot
/// even tell which cases have a duress codename.
///
/// Interrupted (a cut connection, a killed process), the same call resumes
/// from its journal in the trust store's folder: the same case, each upload
/// from the vault's offset (see [`super::resume`]).
pub async fn submit(
    client: &Client,
    trust: &TrustStore,
    explicit: &[Card],
    files: &[SubmitFile],
    duress: bool,
) -> Result<Submitted> {
    if !files.iter().any(|f| f.kind == ObjectKind::Statement) {
        return Err(ClientError::Usage("a submission needs a statement".into()));
    }
    let (params, trusted) = trusted_vault(client, trust, explicit).await?;
    let what = if duress { "submit --duress" } else { "submit" };
    let journal = Journal::open(trust.dir(), &super::resume::fingerprint(what, client.base(), files)?)?;
    let mut state = match journal.load::<SubmitState>()? {
        Some(state) => state,
        None => {
            let state = SubmitState {
                codename: Codename::generate().expose().to_owned(),
                second: Codename::generate().expose().to_owned(),
                duress,
                case_key: CaseKey::generate().export_secret().to_string(),
                // Open the case with either key at random: if the real key
                // always opened it, anyone reading the log could tell a
                // later action by the other key (a duress withdrawal, say)
                // from the real submitter's.
                opened_by_second: rand::random::<bool>(),
                case_id: None,
                created: None,
                files: FilesDone::default(),
            };
            // Saved before the case exists, so that a crash from here on
            // comes back to the same codenames.
            journal.save(&state)?;
            state
        }
    };
    let codename = Codename::parse(&state.codename).map_err(|_| verify("the resume journal is damaged"))?;
    let second = Codename::parse(&state.second).map_err(|_| verify("the resume journal is damaged"))?;
    let origin = params.origin.clone();
    let (keys, second_keys) = tokio::task::spawn_blocking(move || {
        let keys = codename.derive(&origin);
        let second_keys = second.derive(&origin);
        ((codename, keys), (second, second_keys))
    })
    .await
    .map_err(|e| verify(format!("key derivation failed: {e}")))?;
    let ((codename, keys), (second, second_keys)) = (keys, second_keys);
    let case_key = CaseKey::import_secret(&state.case_key)?;
    let opener = if state.opened_by_second { &second_keys } else { &keys };

    let case_id = match &state.case_id {
        Some(id) => id.clone(),
        None => {
            let intake = trusted.verify_intake(&params)?;
            let note_key = CaseKey::generate();
            let mut envelopes = Vec::new();
            let mut note_envelopes = Vec::new();
            for p in &intake {
                envelopes.push(EnvelopeBody {
                    key_id: p.key_id.clone(),
                    envelope: B64.encode(case_key.wrap(&p.card.age_recipient())?),
                });
                note_envelopes.push(EnvelopeBody {
                    key_id: p.key_id.clone(),
                    envelope: B64.encode(note_key.wrap(&p.card.age_recipient())?),
                });
            }
            let mut submitter_keys = Vec::new();
            for k in [&keys, &second_keys] {
                let recipient = k.age_identity().to_public();
                envelopes.push(EnvelopeBody {
                    key_id: k.key_id(),
                    envelope: B64.encode(case_key.wrap(&recipient)?),
                });
                submitter_keys.push(NewSubmitterKey {
                    verifying_key: B64.encode(k.signing_key().verifying_key().as_bytes()),
                    recipient: recipient.to_string(),
                });
            }
            // An unordered set: do not let the real key always come first.
            if rand::random::<bool>() {
                submitter_keys.swap(0, 1);
            }
            let note = duress_note(state.duress.then(|| second_keys.key_id()).as_ref());
            let req = CreateCase {
                submitter_keys,
                case_recipient: case_key.recipient().to_string(),
                envelopes,
                note: Some(B64.encode(encrypt_bytes(note.as_bytes(), &[&note_key.recipient()])?)),
                note_envelopes,
            };
            let created = client
                .create_case(opener.signing_key(), &req, &params.origin, params.stamp_bits)
                .await?;
            check_receipt(&created.receipt, &trusted.log, Action::CaseCreated)?;
            state.case_id = Some(created.case_id.clone());
            state.created = Some(created.receipt);
            journal.save(&state)?;
            created.case_id
        }
    };

    let mut files_done = std::mem::take(&mut state.files);
    {
        let mut save = |f: &FilesDone| {
            state.files = f.clone();
            journal.save(&state)
        };
        upload_files_resumably(
            client,
            opener.signing_key(),
            &case_id,
            &case_key,
            files,
            &journal,
            &mut files_done,
            &mut save,
        )
        .await?;
    }
    for r in &files_done.receipts {
        check_receipt(r, &trusted.log, Action::ObjectStored)?;
    }
    let mut receipts: Vec<_> = state.created.iter().cloned().collect();
    receipts.extend(files_done.receipts);
    let duress = state.duress;
    drop(state);
    journal.finish()?;
    // With witnesses, the receipts are only as good as the history they
    // are in: have the witnesses see it. Failing that the submission still
    // stands, and the receipt says it is the vault's word alone.
    let witnessed = match witness_receipts(client, &trusted, &receipts, RECEIPT_COSIGN_WAIT).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("the receipt is signed by the vault alone: {e}");
            None
        }
    };
    let receipt = ReceiptFile {
        case_id: case_id.clone(),
        origin: params.origin,
        vkey: params.vkey,
        receipts,
        witnessed,
    };
    Ok(Submitted {
        case_id,
        codename,
        duress_codename: duress.then_some(second),
        receipt,
    })
}

/// What a holder of the case sees as its status, from the signed log:
/// `open`, `withdrawn`, or, when the withdrawal was signed with the key the
/// duress note names, `withdrawn_under_duress`. The note and the holder's
/// key to it come from the submitter's and the granting lawyers' signed
/// requests; a withdrawn case whose note this holder cannot read is an
/// error that names the case, never a plain "withdrawn".
pub fn holder_status(identity: &Identity, case: &ProvenCase) -> Result<String> {
    let Some((withdrawn_by, _, _)) = &case.withdrawal else {
        return Ok("open".into());
    };
    let unreadable = |why: &str| {
        verify(format!(
            "case {} was withdrawn, but its duress note {why}: whether the withdrawal was coerced cannot be told",
            case.case_id
        ))
    };
    let note = case
        .creation
        .note
        .as_ref()
        .ok_or_else(|| unreadable("is missing from the signed creation"))?;
    let envelope = case
        .note_envelopes
        .get(&identity.key_id())
        .ok_or_else(|| unreadable("was never wrapped to you"))?;
    let env = B64.decode(envelope).map_err(|_| unreadable("key is not base64"))?;
    let note_key = CaseKey::open(&env, identity.age_identity()).map_err(|_| unreadable("key does not open"))?;
    let note = B64.decode(note).map_err(|_| unreadable("is not base64"))?;
    let text = crate::envelope::decrypt_bytes(&note, note_key.identity()).map_err(|_| unreadable("does not open"))?;
    let duress = read_duress_note(&text).map_err(|()| unreadable("is not a duress note"))?;
    Ok(if duress.as_ref() == Some(withdrawn_by) {
        "withdrawn_under_duress".into()
    } else {
        "withdrawn".into()
    })
}

/// The cases an identity can open, with each withdrawn one's status as this
/// holder sees it, proven from the log (see [`holder_status`]).
pub async fn cases(client: &Client, identity: &Identity, log: &LogVerifier) -> Result<Vec<CaseSummary>> {
    let mut cases = client.cases(identity.signing_key()).await?;
    for c in cases.iter_mut().filter(|c| c.status != "open") {
        let (_, proven) = held_proven(client, identity, log, &c.case_id).await?;
        c.status = holder_status(identity, &proven)?;
    }
    Ok(cases)
}

/// A lawyer's reply to the submitter: encrypted to the case key and to the
/// submitter's keys, stored as an object of kind `reply`, and logged.
///
/// The submitter's recipients come from the submitter's own signed request
/// in the log, never from the host's record, so a host cannot add a
/// recipient of its own and read the reply.
pub async fn reply(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    message: &Path,
) -> Result<Receipt> {
    let (_, proven) = held_proven(client, identity, log, case_id).await?;
    let case_key = case_key_of(identity, &proven)?;
    let submitters = proven
        .submitter_recipients()
        .iter()
        .map(|r| crate::identity::parse_recipient(r).map_err(|e| verify(format!("submitter recipient: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let file = SubmitFile {
        path: message.to_path_buf(),
        kind: ObjectKind::Reply,
    };
    let committed = upload_encrypted(client, identity.signing_key(), case_id, &case_key, &submitters, &file).await?;
    Ok(committed.receipt)
}

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
    if committed.object_id != sha {
        return Err(verify(
            "the vault stored a different object id than the ciphertext's hash",
        ));
    }
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
        let mut resumable = None;
        if let Some(p) = done.pending.clone().filter(|p| p.index == index) {
            if cipher.exists() && hash_file(&cipher).await? == p.sha256 {
                resumable = Some(p);
            }
        }
        let mut pending = match resumable {
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
        if committed.object_id != pending.sha256 {
            return Err(verify(
                "the vault stored a different object id than the ciphertext's hash",
            ));
        }
        done.receipts.push(committed.receipt);
        done.pending = None;
        save(done)?;
        std::fs::remove_file(&cipher)?;
    }
    Ok(())
}

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
    crate::vault::create_private_dir(&staging)?;
    let plain = PlainStaging::new(staging.join("plain"))?;
    let mut names = HashSet::new();
    let mut staged = Vec::new();
    // In the order they arrived, so that two files of one name get the
    // same suffixes on every run.
    let mut objects: Vec<_> = detail.objects.iter().collect();
    objects.sort_by_key(|o| o.index);
    for obj in objects {
        let label = B64.decode(&obj.label).map_err(|_| verify("label is not base64"))?;
        let label = Label::open(&label, &case_key)?;
        let ct_path = staging.join(format!("{}.age", obj.object_id));
        let mut have = std::fs::metadata(&ct_path).map(|m| m.len()).unwrap_or(0);
        if have > obj.size {
            std::fs::remove_file(&ct_path)?;
            have = 0;
        }
        let name = crate::envelope::unique_name(&mut names, &label.safe_file_name());
        let plain_path = plain.0.join(&name);
        std::fs::create_dir_all(plain_path.parent().expect("has parent"))?;
        // Decrypted while it arrives, on a blocking thread fed through a
        // bounded pipe, so decryption overlaps the download. The plaintext
        // stays in the private staging folder until the hash of the whole
        // ciphertext has been checked; any failure removes it.
        let (pipe, feed) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPE_DEPTH);
        let (dst, key) = (plain_path.clone(), case_key.identity().clone());
        let decrypting = tokio::task::spawn_blocking(move || -> Result<()> {
            // Decrypted evidence is readable by its owner only.
            let file = crate::identity::private_file(&dst).map_err(|e| ClientError::Usage(e.to_string()))?;
            let mut output = std::io::BufWriter::new(file);
            crate::envelope::decrypt_stream(PipeReader::new(feed), &mut output, &key)?;
            std::io::Write::flush(&mut output)?;
            Ok(())
        });
        let mut hasher = Sha256::new();
        let mut pipe = PipeWriter(Some(pipe));
        let downloaded = async {
            if have > 0 {
                let mut tee = Tee(&mut hasher, &mut pipe);
                std::io::copy(&mut std::fs::File::open(&ct_path)?.take(have), &mut tee)?;
            }
            if have < obj.size {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(&ct_path)?;
                let mut ct = Tee(std::io::BufWriter::new(file), &mut pipe);
                let receipt = client
                    .download_from(
                        identity.signing_key(),
                        case_id,
                        &obj.object_id,
                        have,
                        &mut ct,
                        &mut hasher,
                    )
                    .await?;
                std::io::Write::flush(&mut ct.0)?;
                let event = check_receipt(&receipt, log, Action::ObjectAccessed)?;
                if event.objects != [obj.object_id.clone()] || event.actor != identity.key_id().as_str() {
                    return Err(verify("the access receipt is for another object or actor"));
                }
            }
            Ok(())
        }
        .await;
        pipe.0 = None; // the end of the ciphertext, for the decryptor
        let decrypted = decrypting
            .await
            .map_err(|e| verify(format!("decryption task failed: {e}")))?;
        match downloaded {
            // The decryptor stopped reading: its error is the cause.
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                decrypted?;
                return Err(ClientError::Io(e));
            }
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        let sha = hex::encode(hasher.finalize());
        if sha != obj.object_id {
            // Start this object afresh next time.
            std::fs::remove_file(&ct_path)?;
            return Err(verify(format!(
                "object {} does not match its hash (got {sha})",
                obj.object_id
            )));
        }
        decrypted?;
        staged.push((obj.object_id.clone(), label.kind, name));
    }
    if !out.exists() {
        crate::vault::create_private_dir(out)?;
    }
    for (_, _, name) in &staged {
        if out.join(name).exists() {
            return Err(ClientError::Usage(format!(
                "{} exists already; choose an empty --out folder",
                out.join(name).display()
            )));
        }
    }
    let mut files = Vec::new();
    for (object_id, kind, name) in staged {
        let dest = out.join(&name);
        std::fs::rename(plain.0.join(&name), &dest)?;
        files.push(RetrievedFile {
            object_id,
            kind,
            path: dest,
        });
    }
    drop(plain);
    std::fs::remove_dir_all(&staging)?;
    files.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Ok(Retrieved {
        case_id: case_id.to_owned(),
        status,
        files,
    })
}

/// Pieces of ciphertext in flight between a download and its decryptor:
/// 16 of up to 64 KiB bounds the memory at about 1 MiB.
const PIPE_DEPTH: usize = 16;

/// Writes to two writers (a file or hasher, and the decryptor's pipe).
struct Tee<A, B>(A, B);

impl<A: std::io::Write, B: std::io::Write> std::io::Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// The sending end of the pipe to a decryptor; `None` once closed.
struct PipeWriter(Option<std::sync::mpsc::SyncSender<Vec<u8>>>);

impl std::io::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let broken = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let tx = self.0.as_ref().ok_or_else(broken)?;
        tx.send(buf.to_vec()).map_err(|_| broken())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The receiving end: reads the pieces in order; end of file once the
/// sender is gone.
struct PipeReader {
    feed: std::sync::mpsc::Receiver<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
}

impl PipeReader {
    fn new(feed: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        PipeReader {
            feed,
            piece: Vec::new(),
            at: 0,
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.piece.len() {
            match self.feed.recv() {
                Ok(piece) => (self.piece, self.at) = (piece, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
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
        crate::vault::create_private_dir(&dir)?;
        Ok(PlainStaging(dir))
    }
}

impl Drop for PlainStaging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn no_envelope(identity: &Identity, case_id: &str) -> ClientError {
    ClientError::Usage(format!(
        "identity {} holds no envelope for case {case_id}",
        identity.key_id()
    ))
}

/// The case as this identity sees it. The vault answers "not found" both
/// for cases that do not exist and for cases the identity may not see, so
/// that case ids cannot be probed; the message says both.
async fn held_case(client: &Client, identity: &Identity, case_id: &str) -> Result<CaseDetail> {
    match client.case(identity.signing_key(), case_id).await {
        Err(e) if e.code() == Some("not_found") => Err(ClientError::Usage(format!(
            "case {case_id} does not exist, or identity {} holds no envelope for it",
            identity.key_id()
        ))),
        other => other,
    }
}

/// The case as this identity sees it, and as the signed log proves it; the
/// host's record is held to the log, and any difference refused.
async fn held_proven(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
) -> Result<(CaseDetail, ProvenCase)> {
    let detail = held_case(client, identity, case_id).await?;
    let proven = prove_case(client, identity.signing_key(), log, &[], case_id, Reader::Principal).await?;
    proven.check_record(&detail, &identity.key_id(), Reader::Principal)?;
    Ok((detail, proven))
}

/// This identity's case key, from its envelope in the signed log.
fn case_key_of(identity: &Identity, proven: &ProvenCase) -> Result<CaseKey> {
    let envelope = proven
        .envelopes
        .get(&identity.key_id())
        .ok_or_else(|| no_envelope(identity, &proven.case_id))?;
    let case_key = CaseKey::open(
        &B64.decode(envelope).map_err(|_| verify("envelope is not base64"))?,
        identity.age_identity(),
    )?;
    if case_key.recipient().to_string() != proven.creation.case_recipient {
        return Err(verify("the envelope does not hold this case's key"));
    }
    Ok(case_key)
}

/// Grant a case to another lawyer: open this identity's envelope, wrap the
/// case key to the grantee's card as the signed log registered it, and
/// send the signed grant.
pub async fn grant(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    to: &KeyId,
) -> Result<Receipt> {
    let (_, proven) = held_proven(client, identity, log, case_id).await?;
    let case_key = case_key_of(identity, &proven)?;
    // The grantee's card as the log registered it, never as the host
    // lists it: a host that swapped the recipient would get the case key.
    let (grantee, _) = proven
        .registry
        .get(to)
        .ok_or_else(|| ClientError::Usage(format!("{to} is not a registered principal")))?;
    // Pass on the duress note's key too, so the new lawyer can tell a
    // coerced withdrawal from a real one.
    let note_envelope = match proven.note_envelopes.get(&identity.key_id()) {
        Some(env) => {
            let note_key = CaseKey::open(
                &B64.decode(env).map_err(|_| verify("note envelope is not base64"))?,
                identity.age_identity(),
            )?;
            Some(B64.encode(note_key.wrap(&grantee.age_recipient())?))
        }
        None => None,
    };
    let body = GrantBody {
        key_id: to.clone(),
        envelope: B64.encode(case_key.wrap(&grantee.age_recipient())?),
        note_envelope,
    };
    client.grant(identity.signing_key(), case_id, &body).await
}

/// What an auditor remembers between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditState {
    /// The last verified checkpoint note.
    pub checkpoint: String,
    /// Witnesses (vkeys) whose cosignatures every audited checkpoint must
    /// carry, kept from the first audit that named them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// How many of them.
    #[serde(default)]
    pub quorum: usize,
    /// The log's trust anchors as the first audit saw them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<Card>,
}

/// How long an audit waits for the witnesses to cosign the newest
/// checkpoint: the vault sends each new one as soon as it is signed, and a
/// witness answers in milliseconds, but a write may have just landed.
const COSIGN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Result of an audit: what was verified, and the first failure if any.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// Entries verified (chain, signature, and inclusion in the root).
    pub entries: u64,
    /// Chains checked.
    pub chains: usize,
    /// Actor signatures verified.
    pub signatures: u64,
    /// Size of the signed checkpoint audited against.
    pub checkpoint_size: u64,
    /// Its root, base64.
    pub checkpoint_root: String,
    /// Size of the previous checkpoint proven consistent, if a state file
    /// was given and held one.
    pub consistent_with: Option<u64>,
    /// The witnesses whose cosignatures on the checkpoint verified, when a
    /// quorum was asked for (given, or kept in the state file).
    pub cosigned_by: Vec<String>,
    /// The quorum asked for (0: none).
    pub quorum: usize,
    /// The log's trust anchors, as `key id name`.
    pub anchors: Vec<String>,
    /// The first check that failed; `None` when the audit passed.
    pub failure: Option<String>,
}

impl AuditReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Page size for downloading entries.
const AUDIT_PAGE: u64 = 1000;

/// Audit the whole log: checkpoint signature, every chain link, every actor
/// signature, the Merkle root, and (with a state file) consistency with the
/// last checkpoint this auditor verified; the state file is updated only
/// when everything passed. A failed check is reported in
/// [`AuditReport::failure`]; an error means the audit could not run.
pub async fn audit(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    state: Option<&Path>,
) -> Result<AuditReport> {
    audit_with(client, identity, log, state, AuditOptions::default()).await
}

/// What an audit asks beyond the log's own signature.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Witnesses whose cosignatures the checkpoint must carry, and how
    /// many. Given once, they are kept in the state file and required on
    /// every later audit with it.
    pub witnesses: Option<crate::bundle::Policy>,
    /// How long to wait for the newest checkpoint's cosignatures.
    pub cosign_wait: std::time::Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            witnesses: None,
            cosign_wait: COSIGN_WAIT,
        }
    }
}

/// [`audit`], with [`AuditOptions`].
pub async fn audit_with(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    state: Option<&Path>,
    options: AuditOptions,
) -> Result<AuditReport> {
    let mut report = AuditReport::default();
    let mut auditor = LogAuditor::new();
    let outcome = run_audit(client, identity, log, state, options, &mut auditor, &mut report).await;
    let AuditSummary {
        entries,
        chains,
        signatures,
    } = auditor.summary();
    (report.entries, report.chains, report.signatures) = (entries, chains, signatures);
    match outcome {
        Ok(()) => Ok(report),
        Err(ClientError::Verify(problem)) => {
            report.failure = Some(problem);
            Ok(report)
        }
        Err(other) => Err(other),
    }
}

async fn run_audit(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    state: Option<&Path>,
    options: AuditOptions,
    auditor: &mut LogAuditor,
    report: &mut AuditReport,
) -> Result<()> {
    let old: Option<AuditState> = match state.filter(|p| p.exists()) {
        Some(path) => Some(
            serde_json::from_slice(&std::fs::read(path)?)
                .map_err(|e| verify(format!("state file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let policy = match (options.witnesses, &old) {
        (Some(p), _) => p,
        (None, Some(old)) => crate::bundle::Policy {
            witnesses: old
                .witnesses
                .iter()
                .map(|w| WitnessVerifier::parse(w).map_err(|e| verify(format!("state file witness: {e}"))))
                .collect::<Result<_>>()?,
            quorum: old.quorum,
        },
        (None, None) => crate::bundle::Policy::default(),
    };
    report.quorum = policy.quorum;
    let note = cosigned_checkpoint(client, log, &policy, options.cosign_wait, &mut report.cosigned_by).await?;
    let cp = log.verify(&note).map_err(|e| verify(format!("checkpoint: {e}")))?;
    (report.checkpoint_size, report.checkpoint_root) = (cp.size, B64.encode(cp.root));
    while auditor.size() < cp.size {
        let page = client
            .entries(
                identity.signing_key(),
                auditor.size(),
                AUDIT_PAGE.min(cp.size - auditor.size()),
            )
            .await?;
        if page.entries.is_empty() {
            return Err(verify(format!(
                "the vault returned no entries at index {} of {}",
                auditor.size(),
                cp.size
            )));
        }
        for e in page.entries {
            let bytes = B64.decode(e).map_err(|_| verify("an entry is not base64"))?;
            auditor.push(&bytes).map_err(|e| verify(e.to_string()))?;
            if auditor.size() == cp.size {
                break;
            }
        }
    }
    auditor.check_checkpoint(&cp).map_err(|e| verify(e.to_string()))?;
    report.anchors = auditor
        .anchors()
        .iter()
        .map(|c| format!("{} {}", c.key_id(), c.name))
        .collect();

    if let Some(old) = &old {
        if !old.anchors.is_empty() && old.anchors != auditor.anchors() {
            return Err(verify(
                "the log's trust anchors are not the admin cards pinned by the first audit",
            ));
        }
        let old_cp = log
            .verify(&old.checkpoint)
            .map_err(|e| verify(format!("state file checkpoint: {e}")))?;
        let describe =
            |c: &crate::custody::checkpoint::Checkpoint| format!("size {} root {}", c.size, B64.encode(c.root));
        if old_cp.size > cp.size {
            return Err(verify(format!(
                "the log was rolled back: last verified {}, now {}",
                describe(&old_cp),
                describe(&cp)
            )));
        }
        let proof = client.consistency(old_cp.size, cp.size).await?;
        let proof = decode_hashes(&proof.proof).ok_or_else(|| verify("consistency proof is malformed"))?;
        merkle::verify_consistency(old_cp.size, cp.size, &proof, &old_cp.root, &cp.root).map_err(|e| {
            verify(format!(
                "the log was rewritten or forked: last verified {}, now {}: {e}",
                describe(&old_cp),
                describe(&cp)
            ))
        })?;
        report.consistent_with = Some(old_cp.size);
    }
    if let Some(path) = state {
        let saved = AuditState {
            checkpoint: note,
            witnesses: policy.witnesses.iter().map(WitnessVerifier::vkey).collect(),
            quorum: policy.quorum,
            anchors: auditor.anchors().to_vec(),
        };
        write_atomically(path, &serde_json::to_vec_pretty(&saved).expect("serialisable"))?;
    }
    Ok(())
}

/// The vault's newest checkpoint, once a quorum of `policy`'s witnesses
/// cosigned it (waiting up to `wait` for them to catch up with a write
/// that has just landed); at once when no quorum is asked for.
/// `cosigned_by` is left naming the witnesses whose cosignatures verified
/// on the last checkpoint seen, whether or not they made the quorum.
async fn cosigned_checkpoint(
    client: &Client,
    log: &LogVerifier,
    policy: &crate::bundle::Policy,
    wait: std::time::Duration,
    cosigned_by: &mut Vec<String>,
) -> Result<String> {
    let started = std::time::Instant::now();
    loop {
        let note = client.checkpoint().await?;
        log.verify(&note).map_err(|e| verify(format!("checkpoint: {e}")))?;
        let now = crate::custody::cosignature::unix_now();
        let names = crate::custody::cosignature::cosigners(&note, &policy.witnesses, now);
        *cosigned_by = names.iter().map(|n| (*n).to_owned()).collect();
        if names.len() >= policy.quorum {
            return Ok(note);
        }
        if started.elapsed() >= wait {
            return Err(verify(format!(
                "the checkpoint is cosigned by {} of the {} witnesses within {} s; the quorum is {}",
                names.len(),
                policy.witnesses.len(),
                wait.as_secs(),
                policy.quorum
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
