//! Decrypting a verified bundle with a holder's identity: the envelopes and
//! the sealed file labels travel inside the events (in the signed request
//! bodies), so a bundle alone is enough for someone who holds the case key.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::{object_file, Verified};
use custos_core::custody::Action;
use custos_core::envelope::{CaseKey, Label};
use custos_core::identity::Identity;
use custos_core::wire::{CommitUpload, CreateCase, GrantBody};

/// A decrypted file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecryptedFile {
    /// The object it came from.
    pub object_id: String,
    /// Where it was written.
    pub path: PathBuf,
}

/// Decrypt every object of a verified bundle in `dir` into `out` (which
/// must not exist yet), with files readable by their owner only.
pub fn decrypt(v: &Verified, dir: &Path, identity: &Identity, out: &Path) -> Result<Vec<DecryptedFile>, String> {
    let me = identity.key_id();
    let mut case_recipient = None;
    let mut envelope = None;
    for e in v.events.iter().filter(|e| e.event.case == v.case_id) {
        match e.event.action {
            Action::CaseCreated => {
                let b: CreateCase = e
                    .event
                    .signed_body()
                    .ok_or("the case_created request body is unreadable")?;
                case_recipient = Some(b.case_recipient);
                if let Some(env) = b.envelopes.into_iter().find(|env| env.key_id == me) {
                    envelope = Some(env.envelope);
                }
            }
            Action::EnvelopeGranted => {
                if let Some(b) = e.event.signed_body::<GrantBody>().filter(|b| b.key_id == me) {
                    envelope = Some(b.envelope);
                }
            }
            _ => {}
        }
    }
    let envelope = envelope.ok_or_else(|| format!("the bundle holds no envelope for identity {me}"))?;
    let envelope = B64.decode(envelope).map_err(|_| "the envelope is not base64")?;
    let key = CaseKey::open(&envelope, identity.age_identity()).map_err(|e| e.to_string())?;
    if Some(key.recipient().to_string()) != case_recipient {
        return Err("the envelope does not hold this case's key".into());
    }
    if out.exists() {
        return Err(format!("{} exists already; choose a new folder", out.display()));
    }
    custos_durable::create_private_dir(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut names = HashSet::new();
    let mut files = Vec::new();
    for e in v.events.iter().filter(|e| e.event.action == Action::ObjectStored) {
        let commit: CommitUpload = e
            .event
            .signed_body()
            .ok_or("an object_stored request body is unreadable")?;
        if !crate::ids::is_object_id(&commit.sha256) {
            return Err("an object_stored event names no object id".into());
        }
        let label = B64.decode(&commit.label).map_err(|_| "a label is not base64")?;
        let label = Label::open(&label, &key).map_err(|e| e.to_string())?;
        let name = custos_core::envelope::unique_name(&mut names, &label.safe_file_name());
        let dest = out.join(&name);
        let input = std::fs::File::open(dir.join(object_file(&commit.sha256))).map_err(|e| e.to_string())?;
        let file = custos_core::identity::private_file(&dest).map_err(|e| e.to_string())?;
        let mut output = std::io::BufWriter::with_capacity(crate::pipe::WRITE_BUFFER, file);
        custos_core::envelope::decrypt_stream(input, &mut output, key.identity()).map_err(|e| e.to_string())?;
        std::io::Write::flush(&mut output).map_err(|e| e.to_string())?;
        files.push(DecryptedFile {
            object_id: commit.sha256,
            path: dest,
        });
    }
    Ok(files)
}
