//! Disclosing part of a case to an outside body (a court, an oversight
//! body): the chosen objects are downloaded (each a logged access),
//! decrypted with the case key while their age file keys are kept, and
//! written for the recipient, re-encrypted to their age key or in the
//! clear; the vault logs the lawyer's signed disclosure; the bundle gets
//! the entries that prove it with their inclusion proofs, and is verified
//! before it is given its name. What a bundle holds and how it is checked
//! is the core's (`custos_core::bundle::disclosure`); nothing of the case
//! but the chosen objects, their labels' keys and those entries goes in.
//!
//! With `--clean`, each decrypted file is examined with `custos_meta`: one
//! that reveals where, on what device or by whom it was made goes out as
//! a cleaned copy, and its object's file key stays out of the bundle (it
//! would open the original, metadata and all); the signed disclosure names
//! the copy's SHA-256, which is what the bundle's check holds the copy to.
//! A file with findings that cannot be cleaned stops the disclosure before
//! it is logged. The logged originals are never changed.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use super::{case_key_of, check_receipt, held_proven, verify, Result};
use crate::bundle::disclosure::{self, DisclosureReport, Language, ObjectKeys};
use crate::bundle::{self, Policy};
use crate::proven::{prove_case_log, Reader};
use crate::{Client, ClientError};
use custos_core::audit::decode_hashes;
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::tlog_proof::TlogProof;
use custos_core::custody::{Action, Event, Receipt, VAULT_CASE};
use custos_core::envelope::{
    decrypt_capturing, encrypt_bytes, open_with_file_key, unique_name, CaseKey, EnvelopeError, HashingWriter, Label,
    ObjectKind,
};
use custos_core::identity::{private_file, Identity, KeyId};
use custos_core::wire::{CleanedCopy, DiscloseBody, ExportEntry};
use custos_meta::Kind;
use zeroize::Zeroizing;

/// Who a disclosure goes to: an age recipient, and the card's key id and
/// name when they were named by a custos card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// The age X25519 recipient (`age1...`).
    pub recipient: String,
    /// The card's key id.
    pub key_id: Option<KeyId>,
    /// The card's name.
    pub name: Option<String>,
}

impl Recipient {
    /// What `--to` names: an age recipient (`age1...`) or a custos card
    /// file.
    pub fn from_arg(arg: &str) -> Result<Recipient> {
        if arg.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("age1")) {
            let parsed = custos_core::identity::parse_recipient(arg)
                .map_err(|e| ClientError::Usage(format!("--to {arg}: {e}")))?;
            // Logged in the one spelling the vault accepts.
            return Ok(Recipient {
                recipient: parsed.to_string(),
                key_id: None,
                name: None,
            });
        }
        let card = custos_core::identity::read_card(Path::new(arg)).map_err(|e| {
            ClientError::Usage(format!(
                "--to takes an age recipient (age1...) or a custos card file; {arg}: {e}"
            ))
        })?;
        // The key id is the card's, computed from the card just read;
        // what the log then holds is this lawyer's claim that the
        // recipient is that card's holder, which nothing else checks.
        let recipient = custos_core::identity::parse_recipient(&card.recipient)
            .map_err(|e| ClientError::Usage(format!("--to {arg}: {e}")))?
            .to_string();
        Ok(Recipient {
            recipient,
            key_id: Some(card.key_id()),
            name: Some(card.name),
        })
    }
}

/// What to disclose, to whom, and how.
#[derive(Debug, Clone)]
pub struct DiscloseOptions {
    /// The recipient.
    pub to: Recipient,
    /// Object ids to disclose.
    pub files: Vec<String>,
    /// Also the submitter's account: every object of kind `statement` or
    /// `form`. Kinds are the labels', written by the submitter (or anyone
    /// holding a codename), so this may pick more than the lawyer expects.
    pub statement: bool,
    /// The lawyer confirmed what `statement` picks (`--yes`): required
    /// when it picks more than one statement or more than one form.
    pub confirmed: bool,
    /// Shown the chosen objects before anything is downloaded or logged
    /// (the CLI prints them).
    pub announce: Option<fn(&[DisclosedFile])>,
    /// The files in the clear (for a court filing) rather than encrypted
    /// to the recipient.
    pub plaintext: bool,
    /// Hand over copies cleaned of identifying metadata of the files that
    /// carry any (the logged originals stay as they are); refuse the
    /// disclosure if one such file cannot be cleaned.
    pub clean: bool,
    /// The summary's language.
    pub language: Language,
}

/// One disclosed file.
#[derive(Debug, Clone, Serialize)]
pub struct DisclosedFile {
    /// The object.
    pub object_id: String,
    /// What it is.
    pub kind: ObjectKind,
    /// Its file in the bundle.
    pub file: String,
    /// Whether the file is a copy cleaned of identifying metadata.
    pub cleaned: bool,
    /// What the cleaning removed (the kinds `custos_meta` found), when it
    /// is a cleaned copy.
    pub removed: Vec<Kind>,
}

/// What a disclosure wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Disclosed {
    /// The case.
    pub case_id: String,
    /// The bundle folder.
    pub path: PathBuf,
    /// Who it is for.
    pub recipient: Recipient,
    /// Whether the files are in the clear.
    pub plaintext: bool,
    /// The files, in the order the case stored them.
    pub files: Vec<DisclosedFile>,
    /// The case_disclosed event's log index.
    pub receipt_index: u64,
    /// Size of the checkpoint the bundle's entries are proven against.
    pub checkpoint_size: u64,
    /// The verification the bundle passed before it was given its name.
    pub verification: DisclosureReport,
}

/// One chosen object: its id, label and the label's file key.
struct Chosen {
    object_id: String,
    label: Label,
    label_key: custos_core::envelope::AgeFileKey,
    name: String,
}

/// Disclose objects of `case_id` to `options.to`, writing the bundle to
/// `out` (which must not exist yet).
pub async fn disclose(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    out: &Path,
    options: DiscloseOptions,
) -> Result<Disclosed> {
    if options.files.is_empty() && !options.statement {
        return Err(ClientError::Usage(
            "say what to disclose: --files ID... and/or --statement (a case is never disclosed whole by default)"
                .into(),
        ));
    }
    if let Some(bad) = options
        .files
        .iter()
        .find(|f| !custos_core::protocol::is_lower_hex(f, 64))
    {
        return Err(ClientError::Usage(format!(
            "{bad} is not an object id (64 lower-case hex digits, as `custos get --json` lists them)"
        )));
    }
    if out.exists() {
        return Err(ClientError::Usage(format!(
            "{} exists already; choose a new path for the bundle",
            out.display()
        )));
    }
    let (_, proven) = held_proven(client, identity, log, case_id).await?;
    let case_key = case_key_of(identity, &proven)?;
    let chosen = choose(&proven, &case_key, &options)?;
    if let Some(announce) = options.announce {
        announce(&disclosed_files(&chosen, options.plaintext, &BTreeMap::new()));
    }

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".custos-disclose-")
        .tempdir_in(&parent)?;
    // Only the bundle is staged: a sealed disclosure's plaintext is never
    // written (see `Rewrite`).
    let dir = staging.path().join("bundle");
    custos_durable::create_private_dir(&dir)?;
    for sub in [
        bundle::EVENTS_DIR,
        bundle::PROOFS_DIR,
        bundle::OBJECTS_DIR,
        disclosure::KEYS_DIR,
        disclosure::FILES_DIR,
    ] {
        std::fs::create_dir(dir.join(sub))?;
    }
    let recipient = custos_core::identity::parse_recipient(&options.to.recipient)
        .map_err(|e| ClientError::Usage(format!("--to: {e}")))?;

    // The objects first: each download is a logged access, and a failure
    // here logs no disclosure.
    let mut keys = BTreeMap::new();
    let mut cleaned = BTreeMap::new();
    for c in &chosen {
        // `prove_log` checked the ids; file names are made of this one.
        crate::ids::host_object_id(&c.object_id)?;
        let ciphertext = dir.join(bundle::object_file(&c.object_id));
        let download = client
            .open_download(identity.signing_key(), case_id, &c.object_id, 0)
            .await?;
        let (receipt, sha) = crate::pipe::save(download, std::fs::File::create(&ciphertext)?).await?;
        if sha != c.object_id {
            return Err(verify(format!(
                "object {} does not match its hash (got {sha})",
                c.object_id
            )));
        }
        let event = check_receipt(&receipt, log, Action::ObjectAccessed)?;
        if event.objects != [c.object_id.clone()] || event.actor != identity.key_id().as_str() {
            return Err(verify("the access receipt is for another object or actor"));
        }
        // Decrypting, re-encrypting and writing are file work: off the
        // async threads.
        let job = Rewrite {
            ciphertext,
            disclosed: dir.join(disclosure::disclosed_file(&c.name, options.plaintext)),
            keys_file: dir.join(disclosure::keys_file(&c.object_id, options.plaintext)),
            case_key: case_key.identity().clone(),
            recipient: recipient.clone(),
            plaintext: options.plaintext,
            label_key: c.label_key.clone(),
            clean: options.clean.then(|| c.name.clone()),
        };
        let (object_keys, copy) = tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(|e| verify(format!("disclosure task failed: {e}")))??;
        keys.insert(c.object_id.clone(), object_keys);
        if let Some(copy) = copy {
            cleaned.insert(c.object_id.clone(), copy);
        }
    }

    let mut objects: Vec<String> = chosen.iter().map(|c| c.object_id.clone()).collect();
    objects.sort();
    let body = DiscloseBody {
        recipient: options.to.recipient.clone(),
        recipient_key_id: options.to.key_id.clone(),
        objects,
        plaintext: options.plaintext,
        // A BTreeMap's order: ascending object ids, as the body requires.
        cleaned: cleaned
            .iter()
            .map(|(object, copy)| CleanedCopy {
                object: object.clone(),
                sha256: copy.sha256.clone(),
            })
            .collect(),
    };
    let receipt = client.disclose(identity.signing_key(), case_id, &body).await?;
    let event = check_receipt(&receipt, log, Action::CaseDisclosed)?;
    if event.case != case_id || event.objects != body.objects || event.actor != identity.key_id().as_str() {
        return Err(verify("the disclosure receipt is for another case, objects or actor"));
    }

    // The entries that prove it, each with its proof against one
    // checkpoint: the log as this lawyer reads it now, which holds the
    // disclosure.
    let (case_log, _) = prove_case_log(client, identity.signing_key(), log, &[], case_id, Reader::Principal).await?;
    let checkpoint = log
        .verify(&case_log.checkpoint)
        .map_err(|e| verify(format!("the case's checkpoint: {e}")))?;
    for entry in proving_entries(&case_log.entries, &receipt, &identity.key_id(), &proven, &chosen)? {
        let bytes = B64
            .decode(&entry.event)
            .map_err(|_| verify("a log entry is not base64"))?;
        let hashes = decode_hashes(&entry.proof).ok_or_else(|| verify("a log entry's proof is malformed"))?;
        let proof = TlogProof {
            index: entry.index,
            hashes,
            checkpoint: case_log.checkpoint.clone(),
        };
        std::fs::write(dir.join(bundle::event_file(entry.index)), &bytes)?;
        std::fs::write(dir.join(bundle::proof_file(entry.index)), proof.to_text())?;
    }
    std::fs::write(dir.join(bundle::CHECKPOINT_FILE), &case_log.checkpoint)?;
    std::fs::write(dir.join(bundle::VKEY_FILE), format!("{}\n", log.vkey()))?;

    let (out_path, log_key) = (out.to_path_buf(), log.clone());
    let (plaintext, language) = (options.plaintext, options.language);
    let verification = tokio::task::spawn_blocking(move || {
        let finished = finish(&dir, &out_path, &log_key, &keys, plaintext, language);
        drop(staging);
        finished
    })
    .await
    .map_err(|e| verify(format!("bundle task failed: {e}")))??;
    Ok(Disclosed {
        case_id: case_id.to_owned(),
        path: out.to_path_buf(),
        recipient: options.to,
        plaintext: options.plaintext,
        files: disclosed_files(&chosen, options.plaintext, &cleaned),
        receipt_index: receipt.index,
        checkpoint_size: checkpoint.size,
        verification,
    })
}

/// The objects to disclose, in the order the case stored them, each with
/// its label opened (and the label's key kept) and its file name: those
/// named, and with `statement` every statement and form. Only the chosen
/// objects' label keys are kept.
fn choose(proven: &crate::proven::ProvenCase, case_key: &CaseKey, options: &DiscloseOptions) -> Result<Vec<Chosen>> {
    if let Some(missing) = options.files.iter().find(|f| !proven.stored.contains_key(*f)) {
        return Err(ClientError::Usage(format!(
            "object {missing} is not in case {}",
            proven.case_id
        )));
    }
    let mut stored: Vec<(&String, &crate::proven::StoredBy)> = proven.stored.iter().collect();
    stored.sort_by_key(|(_, by)| by.index);
    let mut names = HashSet::new();
    let mut chosen = Vec::new();
    for (object_id, by) in stored {
        let named = options.files.contains(object_id);
        if !named && !options.statement {
            continue;
        }
        let sealed = B64.decode(&by.label).map_err(|_| verify("a label is not base64"))?;
        let (label, label_key) = Label::open_capturing(&sealed, case_key)?;
        let account = matches!(label.kind, ObjectKind::Statement | ObjectKind::Form);
        if named || (options.statement && account) {
            // Every name is made and checked here, before anything is
            // downloaded or logged: a name the bundle's check would refuse
            // must not fail after the disclosure is in the log.
            let name = unique_name(&mut names, &label.safe_file_name());
            if !custos_core::envelope::is_safe_file_name(&name) {
                return Err(verify(format!(
                    "object {object_id}'s label gives no safe file name ({name:?})"
                )));
            }
            chosen.push(Chosen {
                object_id: object_id.clone(),
                label,
                label_key,
                name,
            });
        }
    }
    if options.statement
        && !chosen
            .iter()
            .any(|c| matches!(c.label.kind, ObjectKind::Statement | ObjectKind::Form))
    {
        return Err(ClientError::Usage(format!(
            "case {} holds no statement or form to disclose",
            proven.case_id
        )));
    }
    // What --statement alone picked: the labels' word, so more than one
    // statement or form needs the lawyer's explicit yes.
    let picked: Vec<&Chosen> = chosen
        .iter()
        .filter(|c| !options.files.contains(&c.object_id))
        .collect();
    let count = |kind| picked.iter().filter(|c| c.label.kind == kind).count();
    if options.statement && !options.confirmed && (count(ObjectKind::Statement) > 1 || count(ObjectKind::Form) > 1) {
        let list: Vec<String> = picked
            .iter()
            .map(|c| format!("  {:<9} {}  {}", c.label.kind.as_str(), c.name, c.object_id))
            .collect();
        return Err(ClientError::Usage(format!(
            "--statement picks {} objects labelled statement or form (labels are the submitter's, or a \
             codename holder's):\n{}\nname the ones to disclose with --files, or confirm these with --yes",
            picked.len(),
            list.join("\n")
        )));
    }
    Ok(chosen)
}

/// The chosen objects as the bundle names them, with the cleaned copies
/// made of them.
fn disclosed_files(chosen: &[Chosen], plaintext: bool, cleaned: &BTreeMap<String, Copy>) -> Vec<DisclosedFile> {
    chosen
        .iter()
        .map(|c| DisclosedFile {
            object_id: c.object_id.clone(),
            kind: c.label.kind,
            file: disclosure::disclosed_file(&c.name, plaintext),
            cleaned: cleaned.contains_key(&c.object_id),
            removed: cleaned
                .get(&c.object_id)
                .map(|copy| copy.removed.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// From the case's log: the disclosing lawyer's registration, each chosen
/// object's object_stored entry and the disclosure, in log order.
fn proving_entries<'a>(
    entries: &'a [ExportEntry],
    receipt: &Receipt,
    me: &KeyId,
    proven: &crate::proven::ProvenCase,
    chosen: &[Chosen],
) -> Result<Vec<&'a ExportEntry>> {
    let event_of = |e: &ExportEntry| -> Option<Event> { serde_json::from_slice(&B64.decode(&e.event).ok()?).ok() };
    let registration = entries
        .iter()
        .filter(|e| e.index < receipt.index)
        .filter(|e| {
            event_of(e).is_some_and(|ev| {
                ev.case == VAULT_CASE && ev.action == Action::PrincipalAdded && ev.details["key_id"] == me.as_str()
            })
        })
        .max_by_key(|e| e.index)
        .ok_or_else(|| verify("the vault's log shows no registration of this identity"))?;
    let mut wanted: Vec<u64> = chosen.iter().map(|c| proven.stored[&c.object_id].index).collect();
    wanted.push(registration.index);
    wanted.push(receipt.index);
    wanted.sort_unstable();
    wanted
        .into_iter()
        .map(|i| {
            entries
                .iter()
                .find(|e| e.index == i)
                .ok_or_else(|| verify(format!("the case's log lacks entry {i}")))
        })
        .collect()
}

/// A cleaned copy that went into the bundle.
#[derive(Debug, Clone)]
struct Copy {
    /// Hex SHA-256 of the copy's plaintext.
    sha256: String,
    /// The kinds of metadata it no longer carries.
    removed: Vec<Kind>,
}

/// One object's file work: decrypt the logged ciphertext with the case
/// key, keeping its file key, straight into the file for the recipient
/// (in the clear, or through age encryption to them, so that a sealed
/// disclosure never writes its plaintext anywhere: the bundle may be
/// staged on a stick handed to a court); then its keys. With `clean`, the
/// plaintext is held in memory instead, examined, and a cleaned copy
/// written when it reveals anything.
struct Rewrite {
    ciphertext: PathBuf,
    disclosed: PathBuf,
    keys_file: PathBuf,
    case_key: age::x25519::Identity,
    recipient: age::x25519::Recipient,
    plaintext: bool,
    label_key: custos_core::envelope::AgeFileKey,
    /// `--clean`: the file's name in the bundle, for the refusal.
    clean: Option<String>,
}

impl Rewrite {
    fn run(self) -> Result<(ObjectKeys, Option<Copy>)> {
        let private = |p: &Path| private_file(p).map_err(|e| ClientError::Usage(e.to_string()));
        let logged = || std::fs::File::open(&self.ciphertext);
        let (object, original, copy) = match &self.clean {
            None => {
                // Created before anything is decrypted, and never over a
                // file already there (two names equal up to case, on a
                // file system that does not tell them apart).
                let out = std::io::BufWriter::new(private(&self.disclosed)?);
                let (object, written) =
                    self.write_out(out, |w| Ok(decrypt_capturing(logged()?, w, &self.case_key)?))?;
                (object, written, None)
            }
            Some(name) => {
                let (object, plain) = self.decrypt_whole(name)?;
                let mut hashing = HashingWriter::new(std::io::sink());
                hashing.write_all(&plain)?;
                let original = hashing.finish().0;
                let out = std::io::BufWriter::new(private(&self.disclosed)?);
                let report = custos_meta::detect(&plain);
                // A file whose metadata could not be read whole (a damaged
                // EXIF block, a box the walker refused) is not known to be
                // clean: it goes only as a copy custos-meta vouches for.
                if report.findings.is_empty() && report.note.is_none() {
                    self.write_out(out, |w| Ok(w.write_all(&plain)?))?;
                    (object, original, None)
                } else {
                    let what = match report.findings.first() {
                        Some(f) => format!("reveals {}", f.kind.plain()),
                        None => "has metadata custos cannot read whole".to_owned(),
                    };
                    let copy = Zeroizing::new(custos_meta::clean(&plain).map_err(|e| {
                        ClientError::Usage(format!(
                            "{name} {what} and custos cannot clean it ({e}): leave it out of --files, or \
                             disclose without --clean"
                        ))
                    })?);
                    let ((), sha256) = self.write_out(out, |w| Ok(w.write_all(&copy)?))?;
                    let mut removed: Vec<Kind> = report.findings.iter().map(|f| f.kind).collect();
                    removed.dedup();
                    (object, original, Some(Copy { sha256, removed }))
                }
            }
        };
        // The lawyer cannot open a file sealed to the recipient; what they
        // can check is that the captured file key (which the recipient
        // will use, unless the file is a cleaned copy) opens the logged
        // ciphertext to exactly the plaintext that was disclosed or
        // cleaned.
        let mut opened = HashingWriter::new(std::io::sink());
        std::io::copy(&mut open_with_file_key(logged()?, &object)?, &mut opened)
            .map_err(|_| verify("the captured file key does not open the logged object"))?;
        if opened.finish().0 != original {
            return Err(verify(
                "the captured file key opens the logged object to other bytes than were disclosed",
            ));
        }
        // A cleaned copy's bundle never holds the key that opens its
        // original: only its label's, for the file's name.
        let keys = ObjectKeys {
            object: copy.is_none().then_some(object),
            label: self.label_key,
        };
        let bytes = if self.plaintext {
            keys.to_bytes().to_vec()
        } else {
            encrypt_bytes(&keys.to_bytes(), &[&self.recipient])?
        };
        private(&self.keys_file)?.write_all(&bytes)?;
        Ok((keys, copy))
    }

    /// Write what `fill` writes into `out`, in the clear or through age
    /// encryption to the recipient; returns `fill`'s result and the hex
    /// SHA-256 of what it wrote.
    fn write_out<T>(
        &self,
        out: std::io::BufWriter<std::fs::File>,
        fill: impl FnOnce(&mut dyn Write) -> Result<T>,
    ) -> Result<(T, String)> {
        if self.plaintext {
            let mut clear = HashingWriter::new(out);
            let made = fill(&mut clear)?;
            let (sha, _, mut out) = clear.finish();
            out.flush()?;
            Ok((made, sha))
        } else {
            let encryptor = age::Encryptor::with_recipients(std::iter::once(&self.recipient as &dyn age::Recipient))
                .map_err(|_| EnvelopeError::Encrypt)?;
            let mut sealing = HashingWriter::new(encryptor.wrap_output(out)?);
            let made = fill(&mut sealing)?;
            let (sha, _, sealing) = sealing.finish();
            sealing.finish()?.flush()?;
            Ok((made, sha))
        }
    }

    /// The logged object's plaintext, whole in memory (zeroized when
    /// dropped), to examine and clean it; refused when larger than
    /// `custos_meta` reads (the ciphertext is a little larger than its
    /// plaintext, so its size bounds the plaintext's).
    fn decrypt_whole(&self, name: &str) -> Result<(custos_core::envelope::AgeFileKey, Zeroizing<Vec<u8>>)> {
        let size = std::fs::metadata(&self.ciphertext)?.len();
        if size > custos_meta::MAX_PARSE_BYTES {
            return Err(ClientError::Usage(format!(
                "{name} is too large to examine for --clean (more than {} MiB): leave it out of --files, or \
                 disclose without --clean",
                custos_meta::MAX_PARSE_BYTES / (1024 * 1024)
            )));
        }
        let mut plain = Zeroizing::new(Vec::with_capacity(size as usize));
        let object = decrypt_capturing(std::fs::File::open(&self.ciphertext)?, &mut *plain, &self.case_key)?;
        Ok((object, plain))
    }
}

/// Finish the bundle staged in `dir` (its derived files), verify it, and
/// move it to `out`. Blocking.
fn finish(
    dir: &Path,
    out: &Path,
    log: &LogVerifier,
    keys: &BTreeMap<String, ObjectKeys>,
    plaintext: bool,
    language: Language,
) -> Result<DisclosureReport> {
    disclosure::finish_dir(dir, log, keys, plaintext, language).map_err(|e| match e {
        bundle::BundleError::Write { file, source } => ClientError::Io(std::io::Error::new(
            source.kind(),
            format!("writing the bundle's {file}: {source}"),
        )),
        e => verify(format!("the disclosure bundle: {e}")),
    })?;
    let (report, verified) = disclosure::verify_dir(dir, log, &Policy::default(), None);
    if verified.is_none() {
        return Err(verify(format!(
            "the disclosure bundle does not verify: {}",
            report
                .failure()
                .map_or("unknown".into(), |f| format!("{}: {}", f.check, f.detail))
        )));
    }
    std::fs::rename(dir, out)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `dir` holding `needle`.
    fn holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(holding(&path, needle));
            } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
        found
    }

    #[test]
    fn a_recipient_given_in_upper_case_is_logged_as_age_spells_it() {
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let given = Recipient::from_arg(&recipient.to_uppercase()).unwrap();
        assert_eq!(given.recipient, recipient);
    }

    /// A sealed rewrite that fails (here: its output cannot be created)
    /// leaves no plaintext on disk, nor does one that succeeds.
    #[test]
    fn sealing_never_writes_the_plaintext_to_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let case = CaseKey::generate();
        let court = age::x25519::Identity::generate();
        let plain = b"PLAINTEXT-MARKER the exhibit".repeat(5000);
        let ciphertext = tmp.path().join("object");
        std::fs::write(&ciphertext, encrypt_bytes(&plain, &[&case.recipient()]).unwrap()).unwrap();
        let (_, label_key) = Label {
            name: "x".into(),
            media_type: None,
            kind: ObjectKind::Evidence,
            description: None,
            cleaned: None,
        }
        .seal(&case.recipient())
        .map(|sealed| Label::open_capturing(&sealed, &case).unwrap())
        .unwrap();
        let rewrite = |disclosed: PathBuf| Rewrite {
            ciphertext: ciphertext.clone(),
            disclosed,
            keys_file: tmp.path().join("keys"),
            case_key: case.identity().clone(),
            recipient: court.to_public(),
            plaintext: false,
            label_key: label_key.clone(),
            clean: None,
        };
        let failed = rewrite(tmp.path().join("no-such-folder/x.age")).run();
        assert!(failed.is_err());
        assert_eq!(holding(tmp.path(), b"PLAINTEXT-MARKER"), Vec::<PathBuf>::new());
        rewrite(tmp.path().join("x.age")).run().unwrap();
        assert_eq!(holding(tmp.path(), b"PLAINTEXT-MARKER"), Vec::<PathBuf>::new());
        let opened = custos_core::envelope::decrypt_bytes(&std::fs::read(tmp.path().join("x.age")).unwrap(), &court);
        assert_eq!(opened.unwrap(), plain);
    }
}
