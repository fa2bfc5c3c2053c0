//! What a lawyer does with a case beyond reading it: reply to the
//! submitter, grant the case to a colleague. (Listing cases and their
//! workflow is `workflow`.)
//! Every fact acted on is proven from the signed log; retrieval is `retrieve`.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::upload::{upload_encrypted, upload_encrypted_bytes};
use super::{case_key_of, held_proven, lawyers_key_of, verify, Result, SubmitFile};
use crate::{Client, ClientError};
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::Receipt;
use custos_core::envelope::{Label, ObjectKind};
use custos_core::identity::{Identity, KeyId};
use custos_core::wire::GrantBody;

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
    let (case_key, submitters) = reply_keys(client, identity, log, case_id).await?;
    let file = SubmitFile {
        path: message.to_path_buf(),
        kind: ObjectKind::Reply,
    };
    let committed = upload_encrypted(client, identity.signing_key(), case_id, &case_key, &submitters, &file).await?;
    Ok(committed.receipt)
}

/// The same reply, from text held in memory (typed in the desk): it is
/// encrypted before anything reaches the disk.
pub async fn reply_text(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    text: zeroize::Zeroizing<String>,
) -> Result<Receipt> {
    let (case_key, submitters) = reply_keys(client, identity, log, case_id).await?;
    let label = Label {
        name: "reply.txt".into(),
        media_type: Some("text/plain; charset=utf-8".into()),
        kind: ObjectKind::Reply,
        description: None,
        cleaned: None,
    };
    let bytes = zeroize::Zeroizing::new(text.as_bytes().to_vec());
    let committed = upload_encrypted_bytes(
        client,
        identity.signing_key(),
        case_id,
        &case_key,
        &submitters,
        &label,
        bytes,
    )
    .await?;
    Ok(committed.receipt)
}

/// What a reply is encrypted to: the case key, and the submitter's keys
/// from the submitter's own signed request in the log.
async fn reply_keys(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
) -> Result<(custos_core::envelope::CaseKey, Vec<age::x25519::Recipient>)> {
    let (_, proven) = held_proven(client, identity, log, case_id).await?;
    let case_key = case_key_of(identity, &proven)?;
    let submitters = proven
        .submitter_recipients()
        .iter()
        .map(|r| custos_core::identity::parse_recipient(r).map_err(|e| verify(format!("submitter recipient: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok((case_key, submitters))
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
    let note_envelope = if proven.note_envelopes.contains_key(&identity.key_id()) {
        Some(B64.encode(lawyers_key_of(identity, &proven)?.wrap(&grantee.age_recipient())?))
    } else {
        None
    };
    let body = GrantBody {
        key_id: to.clone(),
        envelope: B64.encode(case_key.wrap(&grantee.age_recipient())?),
        note_envelope,
    };
    client.grant(identity.signing_key(), case_id, &body).await
}
