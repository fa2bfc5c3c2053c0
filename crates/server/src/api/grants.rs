//! Grants and revocations of a case's envelopes, by its lawyers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::{Signed, SignedBody};
use super::cases::{access, load_case, valid_case_id, visible_case};
use super::error::{conflict, ApiError};
use super::logged::{decode_b64, draft, log_and_flush, one, parse_canonical, with_body};
use super::wire::*;
use super::AppState;
use crate::policy::{self};
use crate::store::{pair_key, Batch, RegistryRecord, T};
use custos_core::custody::Action;
use custos_core::envelope::MAX_ENVELOPE_BYTES;
use custos_core::identity::{KeyId, Role};

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(super) async fn grant(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    SignedBody {
        actor,
        request: signed,
        body,
        ..
    }: SignedBody,
) -> Result<Response> {
    let req: GrantBody = parse_canonical(&body)?;
    let (_, acc) = visible_case(&state, &case_id, &actor)?;
    let store = &state.vault.store;
    let grantee: RegistryRecord = store
        .get_json(T::Registry, req.key_id.as_str())?
        .ok_or(ApiError::NotFound("principal"))?;
    if !policy::may_grant(&actor, acc, grantee.principal.role) {
        return Err(ApiError::Forbidden(
            "only a lawyer holding the case may grant it, and only to a lawyer",
        ));
    }
    let env = decode_b64("envelope", &req.envelope, MAX_ENVELOPE_BYTES)?;
    let guard = store.writer().await;
    // The grantee again, under the lock: a removal may have landed since,
    // and a removed key must get no envelope.
    if !store.is_principal(req.key_id.as_str())? {
        return Err(ApiError::NotFound("principal"));
    }
    let key = pair_key(&case_id, req.key_id.as_str());
    if store.holds_envelope(&case_id, req.key_id.as_str())? {
        return Err(conflict("already_granted", "this principal already holds the case"));
    }
    let mut batch = Batch::default();
    if let Some(note) = &req.note_envelope {
        batch.put(
            T::NoteEnvelopes,
            key.clone(),
            decode_b64("note envelope", note, MAX_ENVELOPE_BYTES)?,
        );
    }
    batch.put(T::Envelopes, key, env);
    let d = draft(
        &case_id,
        &actor,
        Action::EnvelopeGranted,
        vec![],
        serde_json::json!({ "key_id": req.key_id }),
        with_body(signed, &body),
    );
    let receipt = one(log_and_flush(&state, guard, batch, vec![d]).await?);
    Ok((StatusCode::CREATED, Json(ReceiptBody { receipt })).into_response())
}

pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    Signed { actor, request: signed }: Signed,
    Path((case_id, key_id)): Path<(String, String)>,
) -> Result<Json<ReceiptBody>> {
    // Admins may revoke without seeing the case. To them, a case that does
    // not exist and a grant that does not exist are one answer, so that no
    // refusal tells them a case id is real; anyone else who cannot see the
    // case is told it does not exist.
    let acc = access(&state, &case_id, &actor)?;
    if !policy::may_revoke(&actor, acc) {
        visible_case(&state, &case_id, &actor)?;
        return Err(ApiError::Forbidden("only a holder of the case or an admin may revoke"));
    }
    let no_grant = || ApiError::NotFound("grant");
    let key_id: KeyId = key_id.parse().map_err(|_| no_grant())?;
    let store = &state.vault.store;
    let guard = store.writer().await;
    let key = pair_key(&case_id, key_id.as_str());
    if !valid_case_id(&case_id) || !store.holds_envelope(&case_id, key_id.as_str())? {
        return Err(no_grant());
    }
    let case = load_case(&state, &case_id)?;
    if case.submitter_keys.iter().any(|k| k.key_id == key_id) {
        return Err(ApiError::Forbidden(
            "the submitter's own access to their case cannot be revoked",
        ));
    }
    // Only lawyers count as holders who keep the case readable.
    let is_lawyer = |id: &str| -> Result<bool> {
        Ok(matches!(store.get_json::<RegistryRecord>(T::Registry, id)?, Some(r) if r.principal.role == Role::Lawyer))
    };
    let mut lawyers = 0;
    for holder in store.holders(&case_id)? {
        if is_lawyer(holder.as_str())? {
            lawyers += 1;
        }
    }
    if is_lawyer(key_id.as_str())? && lawyers <= 1 {
        return Err(conflict(
            "last_holder",
            "refusing to revoke the last lawyer holding this case; grant it to another lawyer first",
        ));
    }
    let mut batch = Batch::default();
    batch.remove(T::NoteEnvelopes, key.clone());
    batch.remove(T::Envelopes, key);
    let ended = super::uploads::terminate_uploads_of(store, &mut batch, &key_id, Some(&case_id))?;
    let d = draft(
        &case_id,
        &actor,
        Action::EnvelopeRevoked,
        vec![],
        serde_json::json!({ "key_id": key_id }),
        signed,
    );
    let receipt = one(log_and_flush(&state, guard, batch, vec![d]).await?);
    if ended > 0 {
        state.vault.store.mark_garbage();
    }
    Ok(Json(ReceiptBody { receipt }))
}
