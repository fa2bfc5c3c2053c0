//! The auditor's state file: what the last audit verified, and what the
//! next needs to carry on from it, signed with the auditor's own key so
//! that an edited, truncated or foreign file is refused rather than
//! trusted.
//!
//! Form: JSON, the kept checkpoint, witnesses, quorum and anchors as the
//! first form had them (which readers of that form still read), then
//! `replay` (the core's [`ReplayState`]) and `seal`: the auditor's key id
//! and its Ed25519 signature over `"custos audit state v1\n"` followed by
//! the SHA-256 of the JSON of all the rest, as written. The message cannot
//! be an RFC 9421 signature base, the only other thing that key signs:
//! every line of a base starts with a quote.
//!
//! A file of the first form (unsigned, no replay) is refused unless the
//! auditor asks for `--full`: a sealed file stripped of its seal and replay
//! is indistinguishable from one. With `--full` it is read as before (its
//! checkpoint and witnesses kept), and the file is then written in this
//! form.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, Verifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{verify, AuditState, Result, FULL};
use custos_core::audit::ReplayState;
use custos_core::identity::{Identity, KeyId};

/// What the seal signs.
const DOMAIN: &[u8] = b"custos audit state v1\n";

/// The state as written: what the seal covers, and the seal.
#[derive(Serialize, Deserialize)]
struct StateFile {
    #[serde(flatten)]
    kept: AuditState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replay: Option<ReplayState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seal: Option<Seal>,
}

/// The auditor's signature over a state file.
#[derive(Serialize, Deserialize)]
struct Seal {
    signer: KeyId,
    signature: String,
}

/// The message the seal signs: the domain, then the hash of the state's
/// JSON without its seal.
fn message(file: &StateFile) -> Vec<u8> {
    let unsealed = StateFile {
        kept: file.kept.clone(),
        replay: file.replay.clone(),
        seal: None,
    };
    let json = serde_json::to_vec(&unsealed).expect("serialisable");
    [DOMAIN, Sha256::digest(json).as_slice()].concat()
}

/// The state file's bytes: `kept` and `replay`, sealed by `identity`.
pub(super) fn seal(kept: AuditState, replay: ReplayState, identity: &Identity) -> Vec<u8> {
    let mut file = StateFile {
        kept,
        replay: Some(replay),
        seal: None,
    };
    let signature = identity.signing_key().sign(&message(&file));
    file.seal = Some(Seal {
        signer: identity.key_id(),
        signature: B64.encode(signature.to_bytes()),
    });
    serde_json::to_vec(&file).expect("serialisable")
}

/// The state file's last audit, and the replay to carry on from (none for
/// a file of the first form, or with `full`), if there is a file. A file
/// `identity` did not seal is refused; with `full`, set aside.
pub(super) fn load(
    state: Option<&Path>,
    identity: &Identity,
    full: bool,
) -> Result<Option<(AuditState, Option<ReplayState>)>> {
    let Some(path) = state.filter(|p| p.exists()) else {
        return Ok(None);
    };
    let refuse = |why: String| verify(format!("state file {}: {why}: {FULL}", path.display()));
    let read = serde_json::from_slice::<StateFile>(&std::fs::read(path)?)
        .map_err(|e| refuse(format!("not a state file ({e})")))
        .and_then(|file| {
            if file.seal.is_none() && file.replay.is_none() {
                // The first form carries no seal, so a file stripped of
                // its seal and replay looks just like one: taken only
                // when the auditor asks for the full audit.
                return if full {
                    Ok(file)
                } else {
                    Err(refuse(
                        "it is of the first, unsigned form, which anyone who could write it may have edited".into(),
                    ))
                };
            }
            let seal = file.seal.as_ref().ok_or_else(|| refuse("it is not signed".into()))?;
            if seal.signer != identity.key_id() {
                return Err(refuse(format!(
                    "it was signed by another auditor's key {}, not yours {}",
                    seal.signer,
                    identity.key_id()
                )));
            }
            let signature = B64
                .decode(&seal.signature)
                .ok()
                .and_then(|s| Signature::from_slice(&s).ok())
                .ok_or_else(|| refuse("its signature is malformed".into()))?;
            identity
                .card()
                .verifying_key
                .verify(&message(&file), &signature)
                .map_err(|_| refuse("it was changed since your last audit signed it".into()))?;
            Ok(file)
        });
    match read {
        Ok(file) => Ok(Some((file.kept, file.replay.filter(|_| !full)))),
        Err(_) if full => Ok(None),
        Err(e) => Err(e),
    }
}
