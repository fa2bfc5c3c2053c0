//! The workflows each role runs, built on [`Client`]: submit a case, fetch
//! and decrypt a case, grant it, and audit the whole log. Each verifies what
//! the server returns (receipts, hashes, signatures) and never takes the
//! server's word. The CLI is a thin shell around these functions.
//!
//! This module owns what the workflows share (trusting a vault, checking a
//! receipt, the case as a holder sees it); each workflow has its own file:
//! `submit` (and `upload`, `witnessed`), `retrieve`, `lawyer`
//! (and `duress`), `open` (a case read in memory, for the desk),
//! `workflow`, `disclose`, `watch`, `audit`. The HTTP requests themselves
//! are `client`'s.

mod audit;
mod disclose;
mod duress;
mod lawyer;
mod open;
mod retrieve;
mod submit;
mod upload;
mod watch;
mod witnessed;
mod workflow;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

pub use self::audit::{audit, audit_with, AuditOptions, AuditProgress, AuditReport, AuditState};
pub use self::disclose::{disclose, DiscloseOptions, Disclosed, DisclosedFile, Recipient};
pub use self::duress::holder_status;
pub use self::lawyer::{grant, reply, reply_text};
pub use self::open::{fetch_ciphertext, open_case, OpenedCase};
pub use self::retrieve::{get_case, Retrieved, RetrievedFile};
pub(crate) use self::submit::cleaning_note;
pub use self::submit::{submit, submit_as, submit_cleaned, Run, Submitted};
pub use self::upload::{upload_encrypted, upload_files_cleaned, upload_files_resumably};
pub use self::watch::{Watch, WatchItem, WatchKind, WatchRound};
pub use self::witnessed::{witness_receipts, ReceiptFile, Witnessed};
pub use self::workflow::{
    case_change, case_row, case_show, case_work, cases, mark_seen, mark_seen_async, seen_cases, seen_cases_async,
    CaseFilter, CaseRow, CaseWork,
};
use super::proven::{prove_case, ProvenCase, Reader};
pub use super::resume::SubmitFile;
use super::trust::{TrustStore, Trusted};
use super::{Client, ClientError};
use custos_core::audit::verify_receipt;
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::{Action, Receipt};
use custos_core::envelope::CaseKey;
use custos_core::identity::{Card, Identity};
use custos_core::wire::{CaseDetail, IntakeParams};

type Result<T, E = ClientError> = std::result::Result<T, E>;

pub(super) fn verify(msg: impl Into<String>) -> ClientError {
    ClientError::Verify(msg.into())
}

/// Fetch the intake parameters and check them against what this client
/// trusts.
pub async fn trusted_vault(client: &Client, store: &TrustStore, explicit: &[Card]) -> Result<(IntakeParams, Trusted)> {
    let asked = match client.pins() {
        Some(pins) => Some(pins.pinned_when_asked(client.base()).await?),
        None => None,
    };
    let params = client.intake().await?;
    // The pin's files are read, and written on first contact, off the
    // async threads.
    let trusted = {
        let (store, server, params, explicit) = (
            store.clone(),
            client.base().to_owned(),
            params.clone(),
            explicit.to_vec(),
        );
        tokio::task::spawn_blocking(move || store.check(&server, &params, &explicit))
            .await
            .map_err(|e| ClientError::Trust(format!("checking the pin failed: {e}")))??
    };
    // The parameters' checkpoint must extend the last one this client
    // accepted from the vault: a host that shows it an older registry, or a
    // fork, is refused.
    if let (Some(pins), Some(asked), Ok(cp)) = (client.pins(), asked, trusted.log.verify(&params.checkpoint)) {
        pins.advance_checkpoint(client, &trusted.log, &params.checkpoint, &cp, asked)
            .await?;
    }
    Ok((params, trusted))
}

/// Check a receipt and that its event is the expected action.
pub fn check_receipt(receipt: &Receipt, log: &LogVerifier, action: Action) -> Result<custos_core::custody::Event> {
    let (event, _) = verify_receipt(receipt, log).map_err(|e| verify(format!("receipt: {e}")))?;
    if event.action != action {
        return Err(verify(format!(
            "receipt is for {:?}, expected {action:?}",
            event.action
        )));
    }
    Ok(event)
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

/// The lawyers' key of the case (the duress note's key), from this
/// identity's envelope of it in the signed log: what seals the workflow
/// and what a grant passes on. Codename holders never get it. It must open
/// the case's own duress note, from the submitter's signed creation: a key
/// a granting lawyer's client slipped in instead would split the workflow
/// in two and let whoever chose it read this lawyer's entries.
fn lawyers_key_of(identity: &Identity, proven: &ProvenCase) -> Result<CaseKey> {
    let envelope = proven.note_envelopes.get(&identity.key_id()).ok_or_else(|| {
        ClientError::Usage(format!(
            "identity {} holds no lawyers' key for case {}, so it can neither read nor write the case's workflow",
            identity.key_id(),
            proven.case_id
        ))
    })?;
    let key = CaseKey::open(
        &B64.decode(envelope)
            .map_err(|_| verify("the lawyers' key envelope is not base64"))?,
        identity.age_identity(),
    )?;
    let note = proven
        .creation
        .note
        .as_deref()
        .ok_or_else(|| verify("the case's signed creation holds no duress note, so it has no lawyers' key"))?;
    let opens = B64
        .decode(note)
        .ok()
        .is_some_and(|n| custos_core::envelope::decrypt_bytes(&n, key.identity()).is_ok());
    if !opens {
        return Err(verify(format!(
            "the lawyers' key granted to you for case {} is not the case's: it does not open the case's duress note",
            proven.case_id
        )));
    }
    Ok(key)
}
