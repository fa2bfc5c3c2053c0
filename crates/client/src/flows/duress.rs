//! The duress note: which of a case's two submitter keys, if either, marks
//! a withdrawal as coerced, and the status a holder reads from it. Written
//! once by `submit`; never sent in the clear, never read by the server.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::{verify, Result};
use crate::proven::ProvenCase;
use custos_core::envelope::CaseKey;
use custos_core::identity::{Identity, KeyId};

/// The duress note's plaintext: which submitter key, if any, is the duress
/// key. Always the same length, so its ciphertext says nothing either way.
pub(super) fn duress_note(duress: Option<&KeyId>) -> String {
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
    let text =
        custos_core::envelope::decrypt_bytes(&note, note_key.identity()).map_err(|_| unreadable("does not open"))?;
    let duress = read_duress_note(&text).map_err(|()| unreadable("is not a duress note"))?;
    Ok(if duress.as_ref() == Some(withdrawn_by) {
        "withdrawn_under_duress".into()
    } else {
        "withdrawn".into()
    })
}
