//! The registry: the public intake parameters (who new cases are wrapped
//! to, proven from the log), and the admins' signed additions and removals
//! of principals.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::{Signed, SignedBody};
use super::error::{conflict, ApiError};
use super::logged::{draft, log_and_flush, one, parse_canonical, with_body};
use super::wire::*;
use super::AppState;
use crate::policy::{self};
use crate::store::{self, Batch, RegistryRecord, T};
use custos_core::custody::{Action, VAULT_CASE};
use custos_core::identity::{KeyId, Principal, Role};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The registered lawyers new cases are wrapped to, now.
fn intake_lawyers(store: &store::Store) -> Result<std::collections::BTreeSet<KeyId>> {
    Ok(store
        .scan_json::<RegistryRecord>(T::Registry, "")?
        .into_iter()
        .filter(|r| r.principal.intake)
        .map(|r| r.principal.key_id)
        .collect())
}

/// The intake parameters, all from the log at one checkpoint: the intake
/// lawyers, each with its admin-signed registration and that event's
/// inclusion proof, and the log's last registry change, whose details name
/// the intake lawyers after it (a registry state the log commits to, and
/// auditors check), with its proof. A client holds the list to that state,
/// so a host cannot list a lawyer it removed without saying so in its log.
/// With them, the vault's size limits, so that a client refuses a file the
/// vault would not take before it encrypts or sends anything.
pub(super) async fn intake(State(state): State<Arc<AppState>>) -> Result<Json<IntakeParams>> {
    let store = &state.vault.store;
    let (note, size) = super::case_log::durable_checkpoint(store).await?;
    let proven = |index: u64| super::case_log::proven_entry(store, index, size);
    // The registry as the log has it at this size.
    let mut registered: std::collections::BTreeMap<KeyId, (u64, Principal)> = Default::default();
    let mut last_change = None;
    for (index, e, _) in super::case_log::events_of(store, VAULT_CASE, size)? {
        match e.action {
            Action::PrincipalAdded => {
                if let Some(b) = e.signed_body::<PrincipalBody>() {
                    let principal = Principal {
                        key_id: b.card.key_id(),
                        name: b.card.name.clone(),
                        role: b.role,
                        intake: b.intake,
                        card: b.card,
                    };
                    registered.insert(principal.key_id.clone(), (index, principal));
                }
                last_change = Some(index);
            }
            Action::PrincipalRemoved => {
                if let Ok(key) = serde_json::from_value::<KeyId>(e.details["key_id"].clone()) {
                    registered.remove(&key);
                }
                last_change = Some(index);
            }
            _ => {}
        }
    }
    let mut intake = Vec::new();
    for (index, principal) in registered.into_values().filter(|(_, p)| p.intake) {
        let entry = proven(index)?;
        intake.push(IntakePrincipal {
            principal,
            index,
            event: entry.event,
            proof: entry.proof,
        });
    }
    let d = &state.vault.description;
    Ok(Json(IntakeParams {
        origin: d.origin.clone(),
        vkey: d.vkey.clone(),
        anchors: d.anchors.clone(),
        intake,
        stamp_bits: state.stamp_bits,
        checkpoint: state.witnesses.cosigned(&note),
        registry: last_change.map(proven).transpose()?,
        witnesses: state.witnesses.vkeys(),
        max_upload_bytes: Some(state.max_upload_bytes),
        max_case_bytes: Some(state.max_case_bytes),
    }))
}

pub(super) async fn list_principals(
    State(state): State<Arc<AppState>>,
    Signed { actor, .. }: Signed,
) -> Result<Json<Vec<Principal>>> {
    if !policy::may_read_registry(&actor) {
        return Err(ApiError::Forbidden("only registered principals may read the registry"));
    }
    let recs: Vec<RegistryRecord> = state.vault.store.scan_json(T::Registry, "")?;
    Ok(Json(recs.into_iter().map(|r| r.principal).collect()))
}

pub(super) async fn add_principal(
    State(state): State<Arc<AppState>>,
    SignedBody {
        actor,
        request: signed,
        body,
        ..
    }: SignedBody,
) -> Result<Response> {
    if !policy::may_manage_registry(&actor) {
        return Err(ApiError::Forbidden("only an admin may change the registry"));
    }
    let req: PrincipalBody = parse_canonical(&body)?;
    if req.intake && req.role != Role::Lawyer {
        return Err(ApiError::BadRequest("only lawyers can receive intake".into()));
    }
    let store = &state.vault.store;
    let key_id = req.card.key_id();
    let guard = store.writer().await;
    if store.is_principal(key_id.as_str())? {
        return Err(conflict("principal_exists", format!("{key_id} is already registered")));
    }
    // A removed key stays removed: whoever held it gets a new one.
    if store.is_retired(key_id.as_str())? {
        return Err(conflict(
            "key_retired",
            format!("{key_id} was removed from this vault and cannot come back; make a new key"),
        ));
    }
    // A key is a submitter's or a principal's for good, never both: a
    // principal could otherwise read a case as its submitter.
    if store.submitter_case(key_id.as_str())?.is_some() {
        return Err(conflict(
            "key_in_use",
            format!("{key_id} is a submitter's key; a principal needs a key of its own"),
        ));
    }
    let principal = Principal {
        key_id: key_id.clone(),
        name: req.card.name.clone(),
        role: req.role,
        intake: req.intake,
        card: req.card.clone(),
    };
    let mut batch = Batch::default();
    batch.put_json(
        T::Registry,
        key_id.as_str(),
        &RegistryRecord {
            principal,
            index: store.log_size()?,
            contact: None,
        },
    );
    let mut intake = intake_lawyers(store)?;
    if req.intake {
        intake.insert(key_id.clone());
    }
    let details = serde_json::json!({
        "key_id": key_id,
        "name": req.card.name,
        "role": req.role,
        "intake": req.intake,
        "registry_intake": intake,
    });
    let d = draft(
        VAULT_CASE,
        &actor,
        Action::PrincipalAdded,
        vec![],
        details,
        with_body(signed, &body),
    );
    let receipt = one(log_and_flush(&state, guard, batch, vec![d]).await?);
    Ok((StatusCode::CREATED, Json(ReceiptBody { receipt })).into_response())
}

/// Remove a principal: its registry record, and in the same batch every
/// envelope and note envelope it holds and every upload it has open, so
/// that nothing it could read or send outlives it. The log gets the
/// removal in the vault's chain and, in each case it held, a revocation
/// carrying the same signed request, so each case's chain shows when the
/// key lost it. Its key id is kept among the retired ones: it can never
/// come back as a submitter key.
pub(super) async fn remove_principal(
    State(state): State<Arc<AppState>>,
    Signed { actor, request: signed }: Signed,
    Path(key_id): Path<String>,
) -> Result<Json<ReceiptBody>> {
    if !policy::may_manage_registry(&actor) {
        return Err(ApiError::Forbidden("only an admin may change the registry"));
    }
    let key_id: KeyId = key_id.parse().map_err(|_| ApiError::NotFound("principal"))?;
    let store = &state.vault.store;
    let guard = store.writer().await;
    let target: RegistryRecord = store
        .get_json(T::Registry, key_id.as_str())?
        .ok_or(ApiError::NotFound("principal"))?;
    if target.principal.role == Role::Admin {
        let admins = store
            .scan_json::<RegistryRecord>(T::Registry, "")?
            .iter()
            .filter(|r| r.principal.role == Role::Admin)
            .count();
        if admins <= 1 {
            return Err(conflict("last_admin", "refusing to remove the last admin"));
        }
    }
    let mut batch = Batch::default();
    batch.remove(T::Registry, key_id.as_str());
    batch.put(T::Retired, key_id.as_str(), store.log_size()?.to_be_bytes().to_vec());
    store.forget_digest(&mut batch, &key_id);
    let mut intake = intake_lawyers(store)?;
    intake.remove(&key_id);
    let mut drafts = vec![draft(
        VAULT_CASE,
        &actor,
        Action::PrincipalRemoved,
        vec![],
        serde_json::json!({ "key_id": key_id, "registry_intake": intake }),
        signed.clone(),
    )];
    let suffix = format!("/{key_id}");
    for t in [T::Envelopes, T::NoteEnvelopes] {
        for k in store.keys(t) {
            let k = k?;
            let Some(case_id) = String::from_utf8_lossy(&k).strip_suffix(&suffix).map(str::to_owned) else {
                continue;
            };
            if t == T::Envelopes {
                drafts.push(draft(
                    &case_id,
                    &actor,
                    Action::EnvelopeRevoked,
                    vec![],
                    serde_json::json!({ "key_id": key_id }),
                    signed.clone(),
                ));
            }
            batch.remove(t, k.to_vec());
        }
    }
    let ended = super::uploads::terminate_uploads_of(store, &mut batch, &key_id, None)?;
    let receipts = log_and_flush(&state, guard, batch, drafts).await?;
    if ended > 0 {
        state.vault.store.mark_garbage();
    }
    let receipt = receipts.into_iter().next().expect("the removal was logged first");
    Ok(Json(ReceiptBody { receipt }))
}
