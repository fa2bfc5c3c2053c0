//! `GET /v1/cases/{case}/log`: a case's events with their inclusion proofs
//! against one checkpoint, for the case's holders, so that their clients
//! learn what they act on (submitter keys, the duress note, envelopes, who
//! holds the case, who replied) from the signed log rather than from the
//! host's word. Reading it is not an action on the case and is not logged.
//!
//! Lawyers holding the case and auditors get the vault's chain, the
//! case's whole chain and its lawyers' chain (the workflow). A submitter
//! gets only what tells it who may write to it (the case's creation,
//! grants, revocations and what principals stored), with the
//! registrations of those principals and of the admins who registered
//! them: never an event of a submitter key but the creation, so a coercer
//! holding one codename learns nothing of the other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::auth::Signed;
use super::cases::visible_case;
use super::error::ApiError;
use super::wire::{CaseLog, CreateCase, ExportEntry, GrantBody};
use super::AppState;
use crate::policy::Actor;
use crate::store::{self, Store};
use custos_core::custody::{Action, Event, VAULT_CASE};
use custos_core::identity::KeyId;

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(super) async fn case_log(
    State(state): State<Arc<AppState>>,
    Signed { actor, .. }: Signed,
    Path(case_id): Path<String>,
) -> Result<Json<CaseLog>> {
    let (case, _) = visible_case(&state, &case_id, &actor)?;
    let store = &state.vault.store;
    let (note, size) = durable_checkpoint(store).await?;
    let case_events = events_of(store, &case_id, size)?;
    let indices: Vec<u64> = match actor {
        Actor::Submitter { .. } => {
            let submitters: BTreeSet<KeyId> = case.submitter_keys.iter().map(|k| k.key_id.clone()).collect();
            for_submitters(store, &case_events, &submitters, size)?
        }
        Actor::Principal(_) => {
            let mut all: Vec<u64> = store.chain_indices(VAULT_CASE, size)?;
            all.extend(case_events.iter().map(|(i, _, _)| *i));
            all.extend(store.chain_indices(&custos_core::custody::lawyers_chain(&case_id), size)?);
            all
        }
    };
    let mut indices = indices;
    indices.sort_unstable();
    indices.dedup();
    let entries = indices
        .into_iter()
        .map(|index| proven_entry(store, index, size))
        .collect::<Result<_>>()?;
    Ok(Json(CaseLog {
        case_id,
        checkpoint: state.witnesses.cosigned(&note),
        entries,
    }))
}

/// The newest checkpoint, made durable first, and its size: the log only
/// grows, so every entry below that size stays as it is while the caller
/// reads entries and proofs against it. A checkpoint handed out must be
/// durable, or a crash could roll the log back behind it.
pub(super) async fn durable_checkpoint(store: &Store) -> Result<(String, u64)> {
    store.flush().await?;
    // What the flush made durable, not the latest: another request's
    // append may have signed a newer one since.
    let note = store.durable_checkpoint().ok_or(ApiError::NotFound("checkpoint"))?;
    let integrity = |e: custos_core::custody::checkpoint::CheckpointError| store::StoreError::Integrity(e.to_string());
    let body = custos_core::custody::checkpoint::split_note(&note)
        .map_err(integrity)?
        .0;
    let size = custos_core::custody::checkpoint::Checkpoint::parse_body(body)
        .map_err(integrity)?
        .size;
    Ok((note, size))
}

/// Entry `index` with its inclusion proof in the tree of `size`.
pub(super) fn proven_entry(store: &Store, index: u64, size: u64) -> Result<ExportEntry> {
    let proof = store
        .inclusion_proof(index, size)?
        .map_err(|e| store::StoreError::Integrity(e.to_string()))?;
    Ok(ExportEntry {
        index,
        event: B64.encode(entry(store, index)?),
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    })
}

fn entry(store: &Store, index: u64) -> Result<Vec<u8>> {
    Ok(store
        .entry(index)?
        .ok_or_else(|| store::StoreError::Integrity(format!("log entry {index} is missing")))?)
}

/// A chain's events below `size`: index, parsed event, stored bytes.
pub(super) fn events_of(store: &Store, case: &str, size: u64) -> Result<Vec<(u64, Event, Vec<u8>)>> {
    let mut out = Vec::new();
    for index in store.chain_indices(case, size)? {
        let bytes = entry(store, index)?;
        let event: Event =
            serde_json::from_slice(&bytes).map_err(|e| store::StoreError::Integrity(format!("entry {index}: {e}")))?;
        out.push((index, event, bytes));
    }
    Ok(out)
}

/// What a submitter's client needs to tell who may write to the case: its
/// creation, grants, revocations and what principals stored, with the
/// registrations (and removals) of the principals they name and of the
/// admins who registered those, up to the anchors.
fn for_submitters(
    store: &Store,
    case_events: &[(u64, Event, Vec<u8>)],
    submitters: &BTreeSet<KeyId>,
    size: u64,
) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut named: BTreeSet<String> = BTreeSet::new();
    for (index, e, _) in case_events {
        let by_submitter = e.actor.parse::<KeyId>().is_ok_and(|k| submitters.contains(&k));
        let keep = match e.action {
            Action::CaseCreated => {
                for env in e.signed_body::<CreateCase>().map(|b| b.envelopes).unwrap_or_default() {
                    if !submitters.contains(&env.key_id) {
                        named.insert(env.key_id.to_string());
                    }
                }
                true
            }
            Action::EnvelopeGranted => {
                if let Some(b) = e.signed_body::<GrantBody>() {
                    named.insert(b.key_id.to_string());
                }
                true
            }
            Action::EnvelopeRevoked => true,
            Action::ObjectStored => !by_submitter,
            _ => false,
        };
        if keep {
            if !by_submitter {
                named.insert(e.actor.clone());
            }
            out.push(*index);
        }
    }
    // The registry's events, newest registration of each key first found.
    let vault = events_of(store, VAULT_CASE, size)?;
    let mut registered: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for (index, e, _) in &vault {
        let key = e.details["key_id"].as_str().map(str::to_owned).or_else(|| {
            serde_json::from_value::<custos_core::identity::Card>(e.details["card"].clone())
                .ok()
                .map(|c| c.key_id().to_string())
        });
        if let (Some(key), Action::PrincipalAdded | Action::PrincipalRemoved) = (key, e.action) {
            registered.entry(key).or_default().push((*index, e.actor.clone()));
        }
    }
    let mut queue: Vec<String> = named.into_iter().collect();
    let mut seen = BTreeSet::new();
    while let Some(key) = queue.pop() {
        if !seen.insert(key.clone()) {
            continue;
        }
        for (index, registrar) in registered.get(&key).into_iter().flatten() {
            out.push(*index);
            queue.push(registrar.clone());
        }
    }
    Ok(out)
}
