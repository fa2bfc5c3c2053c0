//! Verification of the custody log from its entries alone: the per-case hash
//! chains, the actors' request signatures (against the registry replayed from
//! the log itself), the Merkle root against a signed checkpoint, and receipts.
//! Needs only public keys and never sees content.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use super::checkpoint::{Checkpoint, LogVerifier};
use super::merkle::{self, Hash, MemoryTree};
use super::{event_hash, Action, Event, Receipt, EVENT_VERSION, VAULT_ACTOR, VAULT_CASE};
use crate::identity::{Card, KeyId, Role};

/// The first failure an audit found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("entry {index}: {problem}")]
pub struct AuditError {
    /// Log index of the failing entry (or the log size for root checks).
    pub index: u64,
    /// What is wrong.
    pub problem: String,
}

/// What an audit checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    /// Entries verified.
    pub entries: u64,
    /// Distinct chains (cases plus the vault chain).
    pub chains: usize,
    /// Actor signatures verified.
    pub signatures: u64,
}

/// Request bodies the verifier reads to learn keys; the server parses the
/// same structures (`api`), so both sides agree on what was signed.
#[derive(Deserialize)]
struct CaseCreation {
    submitter_keys: Vec<SubmitterKeyBody>,
}

#[derive(Deserialize)]
struct SubmitterKeyBody {
    verifying_key: String,
}

#[derive(Deserialize)]
struct PrincipalBody {
    card: Card,
    role: Role,
}

#[derive(Deserialize)]
struct CommitBody {
    sha256: String,
}

#[derive(Deserialize)]
struct GrantBody {
    key_id: KeyId,
}

/// Replays log entries in order and checks each as it comes.
#[derive(Default)]
pub struct LogAuditor {
    tree: MemoryTree,
    heads: HashMap<String, (u64, String)>,
    principals: HashMap<KeyId, (VerifyingKey, Role)>,
    submitters: HashMap<KeyId, (String, VerifyingKey)>,
    signed_seen: bool,
    summary: AuditSummary,
}

impl LogAuditor {
    /// A verifier for a log starting at index 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries checked so far.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Root of the entries checked so far.
    pub fn root(&self) -> Hash {
        self.tree.root_at(self.tree.size())
    }

    /// Summary so far.
    pub fn summary(&self) -> AuditSummary {
        AuditSummary {
            chains: self.heads.len(),
            ..self.summary.clone()
        }
    }

    /// The principals and roles the entries so far leave registered.
    pub fn principals(&self) -> BTreeMap<KeyId, Role> {
        self.principals
            .iter()
            .map(|(k, (_, role))| (k.clone(), *role))
            .collect()
    }

    /// The submitter keys the entries so far registered, with their case.
    pub fn submitters(&self) -> BTreeMap<KeyId, String> {
        self.submitters
            .iter()
            .map(|(k, (case, _))| (k.clone(), case.clone()))
            .collect()
    }

    /// Each chain's last sequence number and event hash (hex).
    pub fn heads(&self) -> BTreeMap<String, (u64, String)> {
        self.heads.iter().map(|(c, h)| (c.clone(), h.clone())).collect()
    }

    /// Check and absorb the next entry's stored bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let index = self.tree.size();
        self.check_event(bytes)
            .map_err(|problem| AuditError { index, problem })?;
        self.tree.push(merkle::leaf_hash(bytes));
        Ok(())
    }

    /// Check the next event's chain link, actor and signature without
    /// placing it in the tree. For a selection of whole chains (a bundle
    /// holds the vault's chain and one case's), fed in log order, whose
    /// inclusion the caller proves separately.
    pub fn check_event(&mut self, bytes: &[u8]) -> Result<Event, String> {
        let event: Event = serde_json::from_slice(bytes).map_err(|e| format!("not a valid event: {e}"))?;
        if event.v != EVENT_VERSION {
            return Err(format!("unknown event version {}", event.v));
        }
        let (want_seq, want_prev) = match self.heads.get(&event.case) {
            None => (0, None),
            Some((seq, hash)) => (seq + 1, Some(hash.clone())),
        };
        if event.seq != want_seq {
            return Err(format!(
                "case {} sequence is {} where {} was expected",
                event.case, event.seq, want_seq
            ));
        }
        if event.prev != want_prev {
            return Err(format!(
                "case {} chain link does not match the previous event",
                event.case
            ));
        }
        self.check_actor(&event)?;
        self.heads.insert(event.case.clone(), (event.seq, event_hash(bytes)));
        self.summary.entries += 1;
        Ok(event)
    }

    /// Check the actor's authority and signature, and learn keys from the event.
    fn check_actor(&mut self, e: &Event) -> Result<(), String> {
        if e.actor == VAULT_ACTOR {
            // Only the trust anchors written by `custos init` carry no
            // signature, and only before the first signed event.
            if self.signed_seen || e.action != Action::PrincipalAdded || e.case != VAULT_CASE {
                return Err("unsigned event outside the initial trust anchors".into());
            }
            let card: Card = serde_json::from_value(e.details["card"].clone()).map_err(|_| "anchor without a card")?;
            self.principals.insert(card.key_id(), (card.verifying_key, Role::Admin));
            return Ok(());
        }
        self.signed_seen = true;
        let req = e.request.as_ref().ok_or("event has no signed request")?;
        let actor: KeyId = e.actor.parse().map_err(|_| "actor is not a key id")?;
        let body = req.body_bytes();
        let key = if e.action == Action::CaseCreated {
            let body: CaseCreation = parse_body(&body)?;
            let keys: Vec<VerifyingKey> = body
                .submitter_keys
                .iter()
                .map(|k| crate::identity::parse_verifying_key(&k.verifying_key))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let key = *keys
                .iter()
                .find(|k| KeyId::of(k) == actor)
                .ok_or("case creator is not one of the submitter keys")?;
            for k in keys {
                self.submitters.insert(KeyId::of(&k), (e.case.clone(), k));
            }
            key
        } else if let Some((key, role)) = self.principals.get(&actor) {
            let admin_only = matches!(
                e.action,
                Action::PrincipalAdded | Action::PrincipalRemoved | Action::VaultBackedUp
            );
            if admin_only && *role != Role::Admin {
                return Err(format!("{actor} did what only an admin may do ({:?})", e.action));
            }
            *key
        } else if let Some((case, key)) = self.submitters.get(&actor) {
            if *case != e.case {
                return Err(format!("submitter key {actor} acted on another case"));
            }
            *key
        } else {
            return Err(format!("actor {actor} is not a registered principal or submitter"));
        };
        let params = req.verify(&key).map_err(|err| format!("actor signature: {err}"))?;
        if params.keyid != e.actor {
            return Err("signature key id differs from the actor".into());
        }
        self.summary.signatures += 1;
        self.check_action(e, &body)
    }

    /// Check that the signed request says what the event records.
    fn check_action(&mut self, e: &Event, body: &Option<Vec<u8>>) -> Result<(), String> {
        let req = e.request.as_ref().expect("checked by the caller");
        let target = req.value("@target-uri").unwrap_or_default();
        match e.action {
            Action::PrincipalAdded => {
                let b: PrincipalBody = parse_body(body)?;
                if e.details["key_id"] != b.card.key_id().as_str() {
                    return Err("registered key differs from the signed card".into());
                }
                self.principals.insert(b.card.key_id(), (b.card.verifying_key, b.role));
            }
            Action::PrincipalRemoved => {
                let id: KeyId = serde_json::from_value(e.details["key_id"].clone()).map_err(|_| "no key id")?;
                if !target.ends_with(&format!("/v1/principals/{id}")) {
                    return Err("removed key differs from the signed request".into());
                }
                self.principals.remove(&id);
            }
            Action::ObjectStored => {
                let b: CommitBody = parse_body(body)?;
                if e.objects != [b.sha256] {
                    return Err("stored object differs from the signed commit".into());
                }
            }
            Action::ObjectAccessed => {
                let [object] = e.objects.as_slice() else {
                    return Err("access event must name one object".into());
                };
                let direct = format!("/v1/cases/{}/objects/{object}", e.case);
                let exported = format!("/v1/cases/{}/export/objects/{object}", e.case);
                if !target.ends_with(&direct) && !target.ends_with(&exported) {
                    return Err("accessed object differs from the signed request".into());
                }
            }
            Action::VaultBackedUp if e.case != VAULT_CASE || !target.ends_with("/v1/vault/backup") => {
                return Err("a backup event that is not the signed backup request".into());
            }
            Action::CaseExported if !target.ends_with(&format!("/v1/cases/{}/export", e.case)) => {
                return Err("exported case differs from the signed request".into());
            }
            Action::Withdrawn => {
                if !target.ends_with(&format!("/v1/cases/{}/withdraw", e.case)) {
                    return Err("withdrawn case differs from the signed request".into());
                }
                let by_submitter = e
                    .actor
                    .parse::<KeyId>()
                    .is_ok_and(|k| self.submitters.get(&k).is_some_and(|(case, _)| *case == e.case));
                if !by_submitter {
                    return Err("a withdrawal not signed by one of the case's submitter keys".into());
                }
            }
            Action::EnvelopeGranted => {
                let b: GrantBody = parse_body(body)?;
                if e.details["key_id"] != b.key_id.as_str() {
                    return Err("grantee differs from the signed grant".into());
                }
            }
            Action::EnvelopeRevoked => {
                let id = e.details["key_id"].as_str().unwrap_or_default();
                if !target.ends_with(&format!("/v1/cases/{}/grants/{id}", e.case)) {
                    return Err("revoked key differs from the signed request".into());
                }
            }
            _ => {}
        }
        if e.action != Action::CaseCreated
            && e.case != VAULT_CASE
            && !target.contains(&format!("/v1/cases/{}/", e.case))
        {
            return Err("signed request was for another case".into());
        }
        Ok(())
    }

    /// Check that everything pushed so far is exactly the tree of `checkpoint`.
    pub fn check_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), AuditError> {
        let index = self.tree.size();
        if checkpoint.size != index {
            return Err(AuditError {
                index,
                problem: format!("checkpoint covers {} entries but the log has {index}", checkpoint.size),
            });
        }
        if self.root() != checkpoint.root {
            return Err(AuditError {
                index,
                problem: "Merkle root of the entries does not match the signed checkpoint".into(),
            });
        }
        Ok(())
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Option<Vec<u8>>) -> Result<T, String> {
    let body = body.as_ref().ok_or("signed request body is missing")?;
    serde_json::from_slice(body).map_err(|e| format!("signed request body: {e}"))
}

/// Why a receipt was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt is not well formed.
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    /// The checkpoint is not signed by the pinned log key.
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    /// The event is not in the checkpointed tree.
    #[error("inclusion proof: {0}")]
    Proof(#[from] merkle::ProofError),
}

/// Check a receipt against the pinned log key: the checkpoint signature and
/// the event's inclusion. Returns the event and the checkpoint.
pub fn verify_receipt(receipt: &Receipt, log: &LogVerifier) -> Result<(Event, Checkpoint), ReceiptError> {
    let checkpoint = log.verify(&receipt.checkpoint)?;
    let bytes = B64
        .decode(&receipt.event)
        .map_err(|_| ReceiptError::Malformed("event is not base64"))?;
    let proof = decode_hashes(&receipt.proof).ok_or(ReceiptError::Malformed("proof hashes"))?;
    merkle::verify_inclusion(
        receipt.index,
        checkpoint.size,
        &merkle::leaf_hash(&bytes),
        &proof,
        &checkpoint.root,
    )?;
    let event = serde_json::from_slice(&bytes).map_err(|_| ReceiptError::Malformed("event is not valid JSON"))?;
    Ok((event, checkpoint))
}

/// Decode base64 hashes; `None` if any is not 32 bytes of base64.
pub fn decode_hashes(items: &[String]) -> Option<Vec<Hash>> {
    items
        .iter()
        .map(|h| B64.decode(h).ok().and_then(|b| Hash::try_from(b.as_slice()).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custody::EventDraft;
    use crate::httpsig::SignedRequest;
    use crate::identity::Identity;

    /// A request signed by `who` for `method url` (and `body`), as stored.
    fn signed(who: &Identity, method: &str, url: &str, body: Option<&[u8]>) -> SignedRequest {
        SignedRequest::sign(who.signing_key(), method, url, body, 1_790_000_000)
    }

    /// The stored bytes of `draft` as the `seq`th event of the vault chain.
    fn place(draft: EventDraft, seq: u64, prev: Option<String>) -> Vec<u8> {
        serde_json::to_vec(&draft.place(seq, prev, "2026-11-23T00:00:00Z".into())).unwrap()
    }

    /// A backup event is an admin's, for the backup endpoint, in the vault
    /// chain; the auditor refuses any other.
    #[test]
    fn only_an_admins_signed_backup_request_is_a_backup_event() {
        let admin = Identity::generate("Admin").unwrap();
        let lawyer = Identity::generate("Lawyer").unwrap();
        let base = "https://vault.example.org";
        let registration = serde_json::json!({ "card": lawyer.card(), "role": "lawyer", "intake": true });
        let registration = serde_json::to_vec(&registration).unwrap();
        let mut log = vec![place(
            EventDraft {
                case: VAULT_CASE.into(),
                actor: VAULT_ACTOR.into(),
                action: Action::PrincipalAdded,
                objects: vec![],
                details: serde_json::json!({ "card": admin.card() }),
                request: None,
            },
            0,
            None,
        )];
        log.push(place(
            EventDraft {
                case: VAULT_CASE.into(),
                actor: admin.key_id().to_string(),
                action: Action::PrincipalAdded,
                objects: vec![],
                details: serde_json::json!({ "key_id": lawyer.key_id() }),
                request: Some(signed(
                    &admin,
                    "POST",
                    &format!("{base}/v1/principals"),
                    Some(&registration),
                )),
            },
            1,
            Some(event_hash(&log[0])),
        ));
        let backup = |who: &Identity, url: &str| {
            place(
                EventDraft {
                    case: VAULT_CASE.into(),
                    actor: who.key_id().to_string(),
                    action: Action::VaultBackedUp,
                    objects: vec![],
                    details: serde_json::json!({}),
                    request: Some(signed(who, "GET", url, None)),
                },
                2,
                Some(event_hash(&log[1])),
            )
        };
        let audit = |last: Vec<u8>| {
            let mut a = LogAuditor::new();
            for e in &log {
                a.push(e).unwrap();
            }
            a.push(&last)
        };
        let url = format!("{base}/v1/vault/backup");
        assert!(audit(backup(&admin, &url)).is_ok());
        let e = audit(backup(&lawyer, &url)).unwrap_err();
        assert!(e.problem.contains("only an admin"), "{e}");
        let e = audit(backup(&admin, &format!("{base}/v1/principals"))).unwrap_err();
        assert!(e.problem.contains("not the signed backup request"), "{e}");
    }
}
