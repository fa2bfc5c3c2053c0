//! A case opened for reading in memory: proven from the log, its case key
//! unwrapped and every label opened; and one object's ciphertext fetched,
//! checked against its hash and its access receipt, into a file the caller
//! names. What the desk shows a lawyer is read through here; nothing here
//! writes plaintext anywhere.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{case_key_of, check_receipt, held_case, holder_status, verify, Result};
use crate::proven::{prove_case_log, ProvenCase, Reader};
use crate::{Client, ClientError};
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::{Action, Event};
use custos_core::envelope::{CaseKey, Label};
use custos_core::identity::Identity;
use custos_core::wire::{CaseDetail, CaseObject};

/// A case as one holder reads it: the host's record held to the signed
/// log, the case key, and each object with its opened label.
pub struct OpenedCase {
    /// The host's record, checked against the log.
    pub detail: CaseDetail,
    /// What the signed log proves of the case.
    pub proven: ProvenCase,
    /// The case key, from this holder's envelope in the log.
    pub case_key: CaseKey,
    /// `open`, `withdrawn` or `withdrawn_under_duress`, as this holder may
    /// know it.
    pub status: String,
    /// Each object, in the order the vault logged them, with its label.
    pub objects: Vec<(CaseObject, Label)>,
    /// Every event of the case this holder may read (both its chains),
    /// each with its log index, in log order: each proven included in
    /// the checkpoint [`ProvenCase::checkpoint`].
    pub timeline: Vec<(u64, Event)>,
}

impl std::fmt::Debug for OpenedCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedCase")
            .field("case_id", &self.detail.case_id)
            .finish_non_exhaustive()
    }
}

/// Open a case this identity holds: prove it, unwrap the case key and open
/// every label. Downloads no object, so logs no access.
pub async fn open_case(client: &Client, identity: &Identity, log: &LogVerifier, case_id: &str) -> Result<OpenedCase> {
    let detail = held_case(client, identity, case_id).await?;
    let (case_log, proven) =
        prove_case_log(client, identity.signing_key(), log, &[], case_id, Reader::Principal).await?;
    proven.check_record(&detail, &identity.key_id(), Reader::Principal)?;
    // `prove_case_log` checked each entry's inclusion and signatures;
    // these are the same bytes, read for showing.
    let timeline = case_log
        .entries
        .iter()
        .map(|e| {
            let bytes = B64.decode(&e.event).map_err(|_| verify("an event is not base64"))?;
            let event: Event = serde_json::from_slice(&bytes).map_err(|e| verify(format!("an event: {e}")))?;
            Ok((e.index, event))
        })
        .collect::<Result<Vec<_>>>()?;
    let case_key = case_key_of(identity, &proven)?;
    let status = holder_status(identity, &proven)?;
    let mut objects = Vec::with_capacity(detail.objects.len());
    for obj in &detail.objects {
        let sealed = B64.decode(&obj.label).map_err(|_| verify("label is not base64"))?;
        objects.push((obj.clone(), Label::open(&sealed, &case_key)?));
    }
    objects.sort_by_key(|(o, _)| o.index);
    Ok(OpenedCase {
        detail,
        proven,
        case_key,
        status,
        objects,
        timeline,
    })
}

/// Download one object's whole ciphertext into a new file `dst` (readable
/// by its owner only; it must not exist), and check it: its SHA-256 must be its id, and the access
/// receipt must be a logged access to exactly this object by this
/// identity. On any failure `dst` is removed.
pub async fn fetch_ciphertext(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    obj: &CaseObject,
    dst: &Path,
) -> Result<()> {
    let fetched = fetch_into(client, identity, log, case_id, obj, dst).await;
    if fetched.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    fetched
}

async fn fetch_into(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    obj: &CaseObject,
    dst: &Path,
) -> Result<()> {
    let mut download = client
        .open_download(identity.signing_key(), case_id, &obj.object_id, 0)
        .await?;
    let file = custos_core::identity::private_file(dst).map_err(|e| ClientError::Usage(e.to_string()))?;
    // tokio's file does its writes on blocking threads.
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    while let Some(piece) = download.next_piece().await? {
        hasher.update(&piece);
        file.write_all(&piece).await?;
    }
    file.flush().await?;
    if hex::encode(hasher.finalize()) != obj.object_id {
        return Err(verify(format!("object {} does not match its hash", obj.object_id)));
    }
    let event = check_receipt(&download.into_receipt(), log, Action::ObjectAccessed)?;
    if event.objects != [obj.object_id.clone()] || event.actor != identity.key_id().as_str() {
        return Err(verify("the access receipt is for another object or actor"));
    }
    Ok(())
}
