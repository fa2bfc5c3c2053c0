//! The state a vault's log determines, rebuilt from its events alone and
//! compared, record for record, with what a restored store holds: the
//! registry (with lawyers' contact addresses), cases, envelopes, note
//! envelopes and case objects, and the digests' counts held to the
//! addresses. A backup whose trees say anything the
//! signed events do not is refused, whatever its manifest claims. Pure:
//! the caller feeds events it has audited.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;

use crate::store::{pair_key, CaseObject, CaseRecord, DigestState, RegistryRecord, Store, SubmitterKey, Withdrawal, T};
use custos_core::custody::{Action, Event, VAULT_ACTOR};
use custos_core::identity::contact::EmailAddress;
use custos_core::identity::{Card, KeyId, Principal, Role};
use custos_core::wire::{CommitUpload, ContactBody, CreateCase, GrantBody, PrincipalBody, WithdrawBody};

/// How far a record's time may be from its event's: the server stamps a
/// case or a withdrawal just before the event that logs it, so they differ
/// by the second boundary that may fall in between, nothing more.
const TIME_SLACK_SECS: i64 = 2;

/// The records the log's events build, as the server writes them.
#[derive(Default)]
pub(super) struct Derived {
    registry: BTreeMap<Vec<u8>, RegistryRecord>,
    cases: BTreeMap<Vec<u8>, CaseRecord>,
    envelopes: BTreeMap<Vec<u8>, Vec<u8>>,
    note_envelopes: BTreeMap<Vec<u8>, Vec<u8>>,
    case_objects: BTreeMap<Vec<u8>, CaseObject>,
}

fn body<V: DeserializeOwned>(e: &Event) -> Result<V, String> {
    e.signed_body().ok_or_else(|| {
        format!(
            "the {:?} event at seq {} of {} has no readable body",
            e.action, e.seq, e.case
        )
    })
}

fn decoded(what: &str, b64: &str) -> Result<Vec<u8>, String> {
    B64.decode(b64).map_err(|_| format!("{what} is not base64"))
}

fn key_of(e: &Event) -> Result<KeyId, String> {
    serde_json::from_value(e.details["key_id"].clone()).map_err(|_| format!("the {:?} event names no key", e.action))
}

impl Derived {
    /// Apply the audited event at log `index`.
    pub(super) fn apply(&mut self, index: u64, e: &Event) -> Result<(), String> {
        match e.action {
            Action::PrincipalAdded => {
                let (card, role, intake) = if e.actor == VAULT_ACTOR {
                    let card: Card =
                        serde_json::from_value(e.details["card"].clone()).map_err(|_| "an anchor without a card")?;
                    (card, Role::Admin, false)
                } else {
                    let b: PrincipalBody = body(e)?;
                    (b.card, b.role, b.intake)
                };
                let principal = Principal {
                    key_id: card.key_id(),
                    name: card.name.clone(),
                    role,
                    intake,
                    card,
                };
                let key = principal.key_id.as_str().as_bytes().to_vec();
                self.registry.insert(
                    key,
                    RegistryRecord {
                        principal,
                        index,
                        contact: None,
                    },
                );
            }
            Action::PrincipalContactSet => {
                let b: ContactBody = body(e)?;
                let record = self
                    .registry
                    .get_mut(key_of(e)?.as_str().as_bytes())
                    .ok_or("a contact address for a principal the log never registered")?;
                record.contact = b
                    .email
                    .map(|a| EmailAddress::parse(&a))
                    .transpose()
                    .map_err(|e| format!("a contact address that {e}"))?;
            }
            Action::PrincipalRemoved => {
                self.registry.remove(key_of(e)?.as_str().as_bytes());
            }
            Action::CaseCreated => {
                let b: CreateCase = body(e)?;
                let mut submitter_keys = Vec::new();
                for k in &b.submitter_keys {
                    let vk = custos_core::identity::parse_verifying_key(&k.verifying_key).map_err(|e| e.to_string())?;
                    submitter_keys.push(SubmitterKey {
                        key_id: KeyId::of(&vk),
                        verifying_key: k.verifying_key.clone(),
                        recipient: k.recipient.clone(),
                    });
                }
                submitter_keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
                for env in &b.envelopes {
                    let key = pair_key(&e.case, env.key_id.as_str());
                    self.envelopes.insert(key, decoded("an envelope", &env.envelope)?);
                }
                for env in &b.note_envelopes {
                    let key = pair_key(&e.case, env.key_id.as_str());
                    self.note_envelopes
                        .insert(key, decoded("a note envelope", &env.envelope)?);
                }
                let record = CaseRecord {
                    case_id: e.case.clone(),
                    created: e.time.clone(),
                    status: "open".into(),
                    case_recipient: b.case_recipient,
                    submitter_keys,
                    note: b.note,
                    withdrawal: None,
                };
                self.cases.insert(e.case.as_bytes().to_vec(), record);
            }
            Action::EnvelopeGranted => {
                let b: GrantBody = body(e)?;
                let key = pair_key(&e.case, b.key_id.as_str());
                if let Some(note) = &b.note_envelope {
                    self.note_envelopes
                        .insert(key.clone(), decoded("a note envelope", note)?);
                }
                self.envelopes.insert(key, decoded("an envelope", &b.envelope)?);
            }
            Action::EnvelopeRevoked => {
                let key = pair_key(&e.case, key_of(e)?.as_str());
                self.envelopes.remove(&key);
                self.note_envelopes.remove(&key);
            }
            Action::ObjectStored => {
                let b: CommitUpload = body(e)?;
                let size = e.details["size"]
                    .as_u64()
                    .ok_or("an object_stored event without a size")?;
                let object = CaseObject {
                    object_id: b.sha256.clone(),
                    size,
                    label: b.label,
                    index,
                    added_by: Some(e.actor.parse().map_err(|_| "an object stored by no key")?),
                };
                self.case_objects.insert(pair_key(&e.case, &b.sha256), object);
            }
            Action::Withdrawn => {
                let b: WithdrawBody = body(e)?;
                let case = self
                    .cases
                    .get_mut(e.case.as_bytes())
                    .ok_or("a withdrawal of a case the log never opened")?;
                case.status = "withdrawn".into();
                case.withdrawal = Some(Withdrawal {
                    time: e.time.clone(),
                    key_id: e.actor.parse().map_err(|_| "a withdrawal by no key")?,
                    reason: b.reason,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Compare every record of the store's derived trees with what the log
    /// built; the first difference, named.
    pub(super) fn check(&self, store: &Store, size: u64) -> Result<(), String> {
        same("registry", &self.registry, &read_json(store, T::Registry)?, |a, b| {
            a == b
        })?;
        self.check_digests(store, size)?;
        same("cases", &self.cases, &read_json(store, T::Cases)?, same_case)?;
        same("envelopes", &self.envelopes, &read_raw(store, T::Envelopes)?, |a, b| {
            a == b
        })?;
        same(
            "note envelopes",
            &self.note_envelopes,
            &read_raw(store, T::NoteEnvelopes)?,
            |a, b| a == b,
        )?;
        same(
            "case objects",
            &self.case_objects,
            &read_json(store, T::CaseObjects)?,
            |a, b| a == b,
        )
    }
}

impl Derived {
    /// The digest task's own records, held to the registry the log built:
    /// a count exactly for each lawyer with an address, none counted past
    /// the log's end (a count ahead of the log would hide what comes).
    fn check_digests(&self, store: &Store, size: u64) -> Result<(), String> {
        let counts: BTreeMap<Vec<u8>, DigestState> = read_json(store, T::Digests)?;
        for (key, state) in &counts {
            let who = String::from_utf8_lossy(key);
            if self.registry.get(key).is_none_or(|r| r.contact.is_none()) {
                return Err(format!("the digests count for {who}, who has no address"));
            }
            if state.counted_to > size {
                return Err(format!("the digests of {who} count past the log's end"));
            }
        }
        if let Some((key, _)) = self
            .registry
            .iter()
            .find(|(k, r)| r.contact.is_some() && !counts.contains_key(*k))
        {
            return Err(format!(
                "the digests hold no count for {}, who has an address",
                String::from_utf8_lossy(key)
            ));
        }
        Ok(())
    }
}

/// A case record as the log builds it, but for the times, which may be
/// a moment apart (see [`TIME_SLACK_SECS`]).
fn same_case(log: &CaseRecord, stored: &CaseRecord) -> bool {
    let close = |a: &str, b: &str| {
        let t = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok();
        matches!((t(a), t(b)), (Some(a), Some(b)) if (a - b).whole_seconds().abs() <= TIME_SLACK_SECS)
    };
    let withdrawals = match (&log.withdrawal, &stored.withdrawal) {
        (None, None) => true,
        (Some(a), Some(b)) => a.key_id == b.key_id && a.reason == b.reason && close(&a.time, &b.time),
        _ => false,
    };
    withdrawals
        && close(&log.created, &stored.created)
        && log.case_id == stored.case_id
        && log.status == stored.status
        && log.case_recipient == stored.case_recipient
        && log.submitter_keys == stored.submitter_keys
        && log.note == stored.note
}

fn same<V>(
    what: &str,
    log: &BTreeMap<Vec<u8>, V>,
    stored: &BTreeMap<Vec<u8>, V>,
    eq: impl Fn(&V, &V) -> bool,
) -> Result<(), String> {
    for (key, value) in stored {
        match log.get(key) {
            None => {
                return Err(format!(
                    "the {what} hold a record the log never made ({})",
                    String::from_utf8_lossy(key)
                ))
            }
            Some(v) if !eq(v, value) => {
                return Err(format!(
                    "the {what} differ from the log at {}",
                    String::from_utf8_lossy(key)
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(key) = log.keys().find(|k| !stored.contains_key(*k)) {
        return Err(format!(
            "the {what} lack a record the log made ({})",
            String::from_utf8_lossy(key)
        ));
    }
    Ok(())
}

fn read_raw(store: &Store, t: T) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    store.records(t).map(|kv| kv.map_err(|e| e.to_string())).collect()
}

fn read_json<V: DeserializeOwned>(store: &Store, t: T) -> Result<BTreeMap<Vec<u8>, V>, String> {
    read_raw(store, t)?
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_slice(&v)
                .map_err(|e| format!("a record at {} is unreadable: {e}", String::from_utf8_lossy(&k)))?;
            Ok((k, value))
        })
        .collect()
}
