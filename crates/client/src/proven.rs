//! What a case's holder knows about the case from the signed log alone,
//! never from the host's word: the submitter's keys and recipients, the
//! duress note and who may open it, the envelopes, who holds the case, the
//! withdrawal, and who stored each object. Each fact comes from an event
//! whose inclusion in a checkpoint signed by the pinned log key is proven,
//! and whose signature and request the client checks itself; the
//! checkpoint must be consistent with the last one this client saw. The
//! host's own record of the case is then held to these facts, and any
//! difference is refused, named.

use std::collections::{BTreeMap, BTreeSet};

use super::{Client, ClientError};
use custos_core::audit::{included, LogAuditor};
use custos_core::custody::checkpoint::{Checkpoint, LogVerifier};
use custos_core::custody::{Action, Event, VAULT_ACTOR, VAULT_CASE};
use custos_core::identity::{Card, KeyId, Role};
use custos_core::wire::{
    CaseDetail, CaseLog, CommitUpload, CreateCase, GrantBody, PrincipalBody, WithdrawBody, WorkflowBody,
};

type Result<T, E = ClientError> = std::result::Result<T, E>;

fn verify(msg: impl Into<String>) -> ClientError {
    ClientError::Verify(msg.into())
}

/// Who reads the case's log: a principal holding it (the whole vault chain
/// and case chain) or one of its submitters (a selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A lawyer or an auditor.
    Principal,
    /// A codename key of the case.
    Submitter,
}

/// Who stored an object, as the log proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBy {
    /// The key that signed the commit.
    pub key_id: KeyId,
    /// The registered name of the principal, when a principal stored it.
    pub principal: Option<String>,
    /// Whether that principal held the case then (it was an intake lawyer
    /// when the case was opened, or was granted it since and not revoked).
    pub held_the_case: bool,
    /// Log index of the `object_stored` event.
    pub index: u64,
    /// The object's sealed label (name and kind), base64, as the signed
    /// commit gave it.
    pub label: String,
}

/// A case as its signed log proves it.
#[derive(Debug, Clone)]
pub struct ProvenCase {
    /// The case id.
    pub case_id: String,
    /// The checkpoint the facts are proven against.
    pub checkpoint: Checkpoint,
    /// The signed creation request's body: submitter keys and recipients,
    /// the case's recipient, its envelopes, the duress note and its keys.
    pub creation: CreateCase,
    /// The submitter keys, by key id.
    pub submitter_keys: BTreeSet<KeyId>,
    /// Each key's envelope of the case key, as granted and not revoked.
    pub envelopes: BTreeMap<KeyId, String>,
    /// Each key's envelope of the duress note's key.
    pub note_envelopes: BTreeMap<KeyId, String>,
    /// For each key holding the case, the log index of the event that
    /// gave it its envelope: the creation, or its latest grant.
    pub held_since: BTreeMap<KeyId, u64>,
    /// The withdrawal: which submitter key signed it, when, and the
    /// encrypted reason (a principal's reading only; a submitter is not
    /// shown withdrawals).
    pub withdrawal: Option<(KeyId, String, Option<String>)>,
    /// Who stored each object the reader was shown the storing of.
    pub stored: BTreeMap<String, StoredBy>,
    /// The workflow entries (the case's lawyers' chain), in log order. A
    /// submitter is never shown any.
    pub workflow: Vec<WorkflowEntry>,
    /// Each revocation of the case: its log index and the key revoked.
    pub revocations: Vec<(u64, KeyId)>,
    /// Every event of the case the reader was shown (both its chains):
    /// log index and actor.
    pub activity: Vec<(u64, String)>,
    /// The case's newest event the reader was shown: its log index and
    /// time.
    pub last_event: (u64, String),
    /// The principals registered at the checkpoint, with their cards and
    /// roles, as the admins' signed requests in the log made them: all of
    /// them for a principal's reading, those the selection names for a
    /// submitter's. What a client wraps a case key to comes from here,
    /// never from the host's registry listing.
    pub registry: BTreeMap<KeyId, (Card, Role)>,
}

/// One workflow entry as the signed log shows it.
#[derive(Debug, Clone)]
pub struct WorkflowEntry {
    /// Its signer.
    pub by: KeyId,
    /// When the vault logged it.
    pub time: String,
    /// Its log index.
    pub index: u64,
    /// The sealed change, base64.
    pub entry: String,
    /// Whether the signer was a lawyer holding the case when it was
    /// logged (the auditor refuses a log where it was not).
    pub by_holder: bool,
    /// The lawyers holding the case when it was logged: whom it could
    /// assign the case to.
    pub holders: BTreeSet<KeyId>,
}

impl ProvenCase {
    /// The submitters' age recipients, in key id order (an unordered set).
    pub fn submitter_recipients(&self) -> Vec<String> {
        let mut keys: Vec<_> = self.creation.submitter_keys.iter().collect();
        let id = |k: &custos_core::wire::NewSubmitterKey| {
            custos_core::identity::parse_verifying_key(&k.verifying_key)
                .map(|vk| KeyId::of(&vk))
                .ok()
        };
        keys.sort_by_key(|k| id(k));
        keys.into_iter().map(|k| k.recipient.clone()).collect()
    }

    /// Hold the host's record of the case to what the log proves, for a
    /// reader signing with `me`: the case's recipient, the submitters'
    /// recipients, the duress note, the reader's envelopes, the holders,
    /// the withdrawal and who stored each object. The first difference is
    /// refused, named.
    pub fn check_record(&self, detail: &CaseDetail, me: &KeyId, reader: Reader) -> Result<()> {
        let differs = |what: &str| {
            verify(format!(
                "the vault's record of case {} differs from its signed log: {what}; refusing to go on",
                self.case_id
            ))
        };
        if detail.case_id != self.case_id || detail.case_recipient != self.creation.case_recipient {
            return Err(differs("the case's recipient"));
        }
        if detail.envelope.as_ref() != self.envelopes.get(me) {
            return Err(differs("your envelope"));
        }
        for o in &detail.objects {
            if let Some(by) = self.stored.get(&o.object_id) {
                // A label swapped between objects would show one file
                // under another's name and kind.
                if o.label != by.label || o.index != by.index {
                    return Err(differs(&format!("the label or place of object {}", o.object_id)));
                }
                if reader == Reader::Principal && o.added_by.as_ref() != Some(&by.key_id) {
                    return Err(differs("who stored an object"));
                }
            } else if reader == Reader::Principal {
                return Err(differs("an object the log does not show stored"));
            }
        }
        if reader == Reader::Submitter {
            return Ok(());
        }
        if let Some(missing) = self
            .stored
            .keys()
            .find(|id| !detail.objects.iter().any(|o| &o.object_id == *id))
        {
            return Err(differs(&format!(
                "object {missing}, which the log shows stored, is missing"
            )));
        }
        if detail.submitter_recipients != self.submitter_recipients() {
            return Err(differs("the submitter's recipients"));
        }
        if detail.note != self.creation.note {
            return Err(differs("the duress note"));
        }
        if detail.note_envelope.as_ref() != self.note_envelopes.get(me) {
            return Err(differs("your envelope of the duress note"));
        }
        let withdrawn_by = detail.withdrawal.as_ref().and_then(|w| w.key_id.clone());
        if withdrawn_by != self.withdrawal.as_ref().map(|(k, _, _)| k.clone()) {
            return Err(differs("the withdrawal"));
        }
        let mut holders: Vec<&KeyId> = detail.holders.iter().collect();
        let mut proven: Vec<&KeyId> = self.envelopes.keys().collect();
        holders.sort();
        proven.sort();
        if holders != proven {
            return Err(differs("who holds the case"));
        }
        Ok(())
    }
}

/// Fetch the case's log as `key` may read it, check it against the pinned
/// log key (and, for a submitter's selection, the pinned `anchors`), and
/// return what it proves. The checkpoint must be consistent with the last
/// one the client pinned for this vault (when it keeps pins), which it then
/// replaces.
pub async fn prove_case(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    log: &LogVerifier,
    anchors: &[Card],
    case_id: &str,
    reader: Reader,
) -> Result<ProvenCase> {
    Ok(prove_case_log(client, key, log, anchors, case_id, reader).await?.1)
}

/// [`prove_case`], keeping the case's log as the vault returned it (each
/// entry with its inclusion proof against the log's checkpoint), for a
/// workflow that hands some of those entries on with their proofs.
pub async fn prove_case_log(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    log: &LogVerifier,
    anchors: &[Card],
    case_id: &str,
    reader: Reader,
) -> Result<(CaseLog, ProvenCase)> {
    let asked = match client.pins() {
        Some(pins) => Some(pins.pinned_when_asked(client.base()).await?),
        None => None,
    };
    let case_log: CaseLog = client.case_log(key, case_id).await?;
    let proven = prove_log(&case_log, log, anchors, case_id, reader)?;
    if let (Some(pins), Some(asked)) = (client.pins(), asked) {
        pins.advance_checkpoint(client, log, &case_log.checkpoint, &proven.checkpoint, asked)
            .await?;
    }
    Ok((case_log, proven))
}

/// What a case's log, as the vault returned it, proves (see
/// [`prove_case`], which fetches it and holds its checkpoint to the pinned
/// one). Pure: the same answer the page's script gives for the same log.
pub fn prove_log(
    case_log: &CaseLog,
    log: &LogVerifier,
    anchors: &[Card],
    case_id: &str,
    reader: Reader,
) -> Result<ProvenCase> {
    let checkpoint = log
        .verify(&case_log.checkpoint)
        .map_err(|e| verify(format!("the case's checkpoint: {e}")))?;
    let mut auditor = match reader {
        Reader::Principal => LogAuditor::new(),
        Reader::Submitter => LogAuditor::selection(anchors),
    };
    let mut facts = Facts::default();
    for entry in &case_log.entries {
        let bytes = included(entry.index, &entry.event, &entry.proof, &checkpoint)
            .map_err(|e| verify(format!("event {} is not in the signed log: {e}", entry.index)))?;
        let event = auditor
            .check_event(&bytes)
            .map_err(|e| verify(format!("event {} of the case's log: {e}", entry.index)))?;
        facts.apply(entry.index, &event, case_id)?;
    }
    facts.finish(case_id, checkpoint)
}

/// The facts as the events come, in log order.
#[derive(Default)]
struct Facts {
    creation: Option<CreateCase>,
    submitter_keys: BTreeSet<KeyId>,
    registry: BTreeMap<KeyId, (Card, Role)>,
    envelopes: BTreeMap<KeyId, String>,
    note_envelopes: BTreeMap<KeyId, String>,
    held_since: BTreeMap<KeyId, u64>,
    withdrawal: Option<(KeyId, String, Option<String>)>,
    stored: BTreeMap<String, StoredBy>,
    workflow: Vec<WorkflowEntry>,
    revocations: Vec<(u64, KeyId)>,
    activity: Vec<(u64, String)>,
    last_event: (u64, String),
}

fn body<T: serde::de::DeserializeOwned>(e: &Event) -> Result<T> {
    e.signed_body()
        .ok_or_else(|| verify(format!("a {:?} event without its signed body", e.action)))
}

impl Facts {
    fn apply(&mut self, index: u64, e: &Event, case_id: &str) -> Result<()> {
        if e.case == VAULT_CASE {
            // The auditor checked each change is an admin's signed request
            // (or, at the log's start, an anchor).
            match e.action {
                Action::PrincipalAdded if e.actor == VAULT_ACTOR => {
                    let card: Card = serde_json::from_value(e.details["card"].clone())
                        .map_err(|_| verify("an anchor without a card"))?;
                    self.registry.insert(card.key_id(), (card, Role::Admin));
                }
                Action::PrincipalAdded => {
                    let b: PrincipalBody = body(e)?;
                    self.registry.insert(b.card.key_id(), (b.card, b.role));
                }
                Action::PrincipalRemoved => {
                    let key: KeyId = serde_json::from_value(e.details["key_id"].clone())
                        .map_err(|_| verify("a removal that names no key"))?;
                    self.registry.remove(&key);
                }
                _ => {}
            }
            return Ok(());
        }
        let lawyers = e.case == custos_core::custody::lawyers_chain(case_id);
        if e.case != case_id && !lawyers {
            return Err(verify(format!(
                "the case's log holds an event of another case ({})",
                e.case
            )));
        }
        self.last_event = (index, e.time.clone());
        self.activity.push((index, e.actor.clone()));
        if lawyers {
            if e.action != Action::WorkflowChanged {
                return Err(verify(format!(
                    "the case's lawyers' chain holds a {:?} event",
                    e.action
                )));
            }
            let w: WorkflowBody = body(e)?;
            let by: KeyId = e.actor.parse().map_err(|_| verify("a workflow change by no key"))?;
            let holders: BTreeSet<KeyId> = self
                .envelopes
                .keys()
                .filter(|k| self.registry.get(*k).is_some_and(|(_, role)| *role == Role::Lawyer))
                .cloned()
                .collect();
            self.workflow.push(WorkflowEntry {
                by_holder: holders.contains(&by),
                by,
                time: e.time.clone(),
                index,
                entry: w.entry,
                holders,
            });
            return Ok(());
        }
        match e.action {
            Action::CaseCreated => {
                let creation: CreateCase = body(e)?;
                for k in &creation.submitter_keys {
                    let vk = custos_core::identity::parse_verifying_key(&k.verifying_key)
                        .map_err(|err| verify(format!("a submitter key: {err}")))?;
                    self.submitter_keys.insert(KeyId::of(&vk));
                }
                for env in &creation.envelopes {
                    self.envelopes.insert(env.key_id.clone(), env.envelope.clone());
                    self.held_since.insert(env.key_id.clone(), index);
                }
                for env in &creation.note_envelopes {
                    self.note_envelopes.insert(env.key_id.clone(), env.envelope.clone());
                }
                self.creation = Some(creation);
            }
            Action::EnvelopeGranted => {
                let grant: GrantBody = body(e)?;
                if let Some(note) = grant.note_envelope {
                    self.note_envelopes.insert(grant.key_id.clone(), note);
                }
                self.held_since.insert(grant.key_id.clone(), index);
                self.envelopes.insert(grant.key_id, grant.envelope);
            }
            Action::EnvelopeRevoked => {
                let key: KeyId = serde_json::from_value(e.details["key_id"].clone())
                    .map_err(|_| verify("a revocation that names no key"))?;
                self.envelopes.remove(&key);
                self.note_envelopes.remove(&key);
                self.held_since.remove(&key);
                self.revocations.push((index, key));
            }
            Action::ObjectStored => {
                let commit: CommitUpload = body(e)?;
                // A host holding the log key can log a commit of its own
                // making; workflows make file names of the object ids.
                crate::ids::host_object_id(&commit.sha256)?;
                let key_id: KeyId = e.actor.parse().map_err(|_| verify("an object stored by no key"))?;
                let registered = self
                    .registry
                    .get(&key_id)
                    .filter(|_| !self.submitter_keys.contains(&key_id));
                let principal = registered.map(|(card, _)| card.name.clone());
                let held_the_case =
                    registered.is_some_and(|(_, role)| *role == Role::Lawyer) && self.envelopes.contains_key(&key_id);
                self.stored.insert(
                    commit.sha256,
                    StoredBy {
                        key_id,
                        principal,
                        held_the_case,
                        index,
                        label: commit.label,
                    },
                );
            }
            Action::Withdrawn => {
                let w: WithdrawBody = body(e)?;
                let key: KeyId = e.actor.parse().map_err(|_| verify("a withdrawal by no key"))?;
                self.withdrawal = Some((key, e.time.clone(), w.reason));
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self, case_id: &str, checkpoint: Checkpoint) -> Result<ProvenCase> {
        let creation = self
            .creation
            .ok_or_else(|| verify(format!("the vault's log shows no creation of case {case_id}")))?;
        Ok(ProvenCase {
            case_id: case_id.to_owned(),
            checkpoint,
            creation,
            submitter_keys: self.submitter_keys,
            envelopes: self.envelopes,
            note_envelopes: self.note_envelopes,
            held_since: self.held_since,
            withdrawal: self.withdrawal,
            stored: self.stored,
            workflow: self.workflow,
            revocations: self.revocations,
            activity: self.activity,
            last_event: self.last_event,
            registry: self.registry,
        })
    }
}
