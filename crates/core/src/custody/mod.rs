//! The custody log: events, the per-case hash chains, the RFC 6962 Merkle
//! tree over all events, signed checkpoints, proofs, and the verifier that
//! auditors run. Pure logic with no I/O: `store` persists what this module
//! computes, `api` serves it, `cli` checks it.

pub mod checkpoint;
pub mod cosignature;
pub mod merkle;
pub mod tlog_proof;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::httpsig::SignedRequest;

/// Event format version.
pub const EVENT_VERSION: u32 = 1;

/// Case id used for events about the vault itself (registry, anchors).
pub const VAULT_CASE: &str = "vault";

/// Actor named on events the vault makes on its own authority: the trust
/// anchors written by `custos init`.
pub const VAULT_ACTOR: &str = "vault";

/// The chain a case's lawyers' workflow is logged in, apart from the
/// case's own: codename holders are shown events of the case's chain with
/// their sequence numbers, and a workflow change in that chain would leave
/// a gap they could count.
pub fn lawyers_chain(case: &str) -> String {
    format!("{case}{LAWYERS_CHAIN_SUFFIX}")
}

/// What names a case's lawyers' chain after its case id (a case id is hex,
/// so no case's chain ends so).
pub const LAWYERS_CHAIN_SUFFIX: &str = ".lawyers";

/// The case a chain belongs to: the case itself, or the case whose
/// lawyers' chain it is.
pub fn case_of_chain(chain: &str) -> &str {
    chain.strip_suffix(LAWYERS_CHAIN_SUFFIX).unwrap_or(chain)
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A submitter opened a case.
    CaseCreated,
    /// A ciphertext object was added to a case.
    ObjectStored,
    /// A holder wrapped the case key to another principal.
    EnvelopeGranted,
    /// A principal's envelope and permission were removed.
    EnvelopeRevoked,
    /// A principal downloaded a ciphertext object.
    ObjectAccessed,
    /// A message was posted to a case.
    MessagePosted,
    /// The submitter withdrew the complaint.
    Withdrawn,
    /// The case was sealed.
    CaseSealed,
    /// The case was exported as a bundle.
    CaseExported,
    /// A principal was registered.
    PrincipalAdded,
    /// A principal was removed.
    PrincipalRemoved,
    /// A checkpoint was anchored elsewhere.
    CheckpointAnchored,
    /// An admin took a backup of the whole vault (ciphertext, log and
    /// registry): a copy of every case left the vault.
    VaultBackedUp,
    /// A lawyer holding the case changed its workflow (status, tags,
    /// assignee) or added a note. What changed is sealed to the lawyers'
    /// key of the case: the log shows who and when, never what.
    WorkflowChanged,
    /// A lawyer holding the case disclosed some of its objects to an
    /// outside body (a court, an oversight body): the signed request names
    /// the recipient's age key and the objects, which the event lists.
    CaseDisclosed,
    /// An admin set (or cleared) the mail address a lawyer's digest goes
    /// to. The address is in the logged request: auditors read it.
    PrincipalContactSet,
}

impl Action {
    /// The action's name as events spell it (`case_created`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Action::CaseCreated => "case_created",
            Action::ObjectStored => "object_stored",
            Action::EnvelopeGranted => "envelope_granted",
            Action::EnvelopeRevoked => "envelope_revoked",
            Action::ObjectAccessed => "object_accessed",
            Action::MessagePosted => "message_posted",
            Action::Withdrawn => "withdrawn",
            Action::CaseSealed => "case_sealed",
            Action::CaseExported => "case_exported",
            Action::PrincipalAdded => "principal_added",
            Action::PrincipalRemoved => "principal_removed",
            Action::CheckpointAnchored => "checkpoint_anchored",
            Action::VaultBackedUp => "vault_backed_up",
            Action::WorkflowChanged => "workflow_changed",
            Action::CaseDisclosed => "case_disclosed",
            Action::PrincipalContactSet => "principal_contact_set",
        }
    }
}

/// One custody event. The stored JSON bytes are what is hashed and proven;
/// verifiers parse them but never re-serialise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Format version.
    pub v: u32,
    /// Case id, or `vault`.
    pub case: String,
    /// Position in the case's chain, from 0.
    pub seq: u64,
    /// Hex SHA-256 of the stored bytes of the case's previous event.
    pub prev: Option<String>,
    /// UTC time, RFC 3339.
    pub time: String,
    /// Key id of the actor, or `vault`.
    pub actor: String,
    /// What happened.
    pub action: Action,
    /// Object ids (hex SHA-256 of ciphertext) the action concerns.
    #[serde(default)]
    pub objects: Vec<String>,
    /// Action-specific details.
    #[serde(default)]
    pub details: serde_json::Value,
    /// The actor's signed request, where there is one.
    #[serde(default)]
    pub request: Option<SignedRequest>,
}

impl Event {
    /// The JSON body of the signed request this event records, read as a
    /// `T`: `None` when the event has no signed body or it is no `T`.
    pub fn signed_body<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.request.as_ref()?.body_bytes()?).ok()
    }
}

/// Hex SHA-256 of stored event bytes: the `prev` link of the next event.
pub fn event_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An event before the log places it: the log fills in sequence, link and time.
#[derive(Debug, Clone)]
pub struct EventDraft {
    /// Case id, or `vault`.
    pub case: String,
    /// Key id of the actor, or `vault`.
    pub actor: String,
    /// What happened.
    pub action: Action,
    /// Object ids concerned.
    pub objects: Vec<String>,
    /// Details.
    pub details: serde_json::Value,
    /// The actor's signed request.
    pub request: Option<SignedRequest>,
}

impl EventDraft {
    /// Place the draft in its case's chain.
    pub fn place(self, seq: u64, prev: Option<String>, time: String) -> Event {
        Event {
            v: EVENT_VERSION,
            case: self.case,
            seq,
            prev,
            time,
            actor: self.actor,
            action: self.action,
            objects: self.objects,
            details: self.details,
            request: self.request,
        }
    }
}

/// What every write returns: the event, its place in the log, the proof of
/// inclusion and the signed checkpoint the proof is against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Index of the event in the log.
    pub index: u64,
    /// The stored event bytes, base64.
    pub event: String,
    /// Inclusion proof hashes, base64, from the leaf up.
    pub proof: Vec<String>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// Now, as Unix time in seconds: the one clock every signature window,
/// stamp, upload expiry and cosignature check reads.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Now, as RFC 3339 UTC with second precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times always format")
}

#[cfg(test)]
mod action_names {
    use super::Action;

    #[test]
    fn each_name_is_the_one_events_carry() {
        for a in [
            Action::CaseCreated,
            Action::ObjectStored,
            Action::EnvelopeGranted,
            Action::EnvelopeRevoked,
            Action::ObjectAccessed,
            Action::MessagePosted,
            Action::Withdrawn,
            Action::CaseSealed,
            Action::CaseExported,
            Action::PrincipalAdded,
            Action::PrincipalRemoved,
            Action::CheckpointAnchored,
            Action::VaultBackedUp,
            Action::WorkflowChanged,
            Action::CaseDisclosed,
            Action::PrincipalContactSet,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
    }
}
