//! `PUT /v1/principals/{key}/contact`: an admin sets, or clears, the mail
//! address a lawyer's digest goes to (see `digest`). Like every registry
//! change it is a signed request the log keeps, so auditors read the
//! address; the vault keeps it with the lawyer's registry record.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use super::auth::SignedBody;
use super::error::ApiError;
use super::logged::{draft, log_and_flush, one, parse_canonical, with_body};
use super::wire::{ContactBody, ReceiptBody};
use super::AppState;
use crate::policy;
use crate::store::Batch;
use custos_core::custody::{Action, VAULT_CASE};
use custos_core::identity::contact::EmailAddress;
use custos_core::identity::{KeyId, Role};

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(super) async fn set_contact(
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
    SignedBody {
        actor,
        request: signed,
        body,
        ..
    }: SignedBody,
) -> Result<Json<ReceiptBody>> {
    if !policy::may_set_contact(&actor) {
        return Err(ApiError::Forbidden(
            "only an admin may set a principal's contact address",
        ));
    }
    let key_id: KeyId = key_id.parse().map_err(|_| ApiError::NotFound("principal"))?;
    let req: ContactBody = parse_canonical(&body)?;
    let contact = req
        .email
        .as_deref()
        .map(EmailAddress::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("email: an address that {e}")))?;
    let store = &state.vault.store;
    let guard = store.writer().await;
    let record = store
        .registry_record(key_id.as_str())?
        .ok_or(ApiError::NotFound("principal"))?;
    if record.principal.role != Role::Lawyer {
        return Err(ApiError::BadRequest(format!(
            "{key_id} is {}: only lawyers hold cases and get a digest",
            record.principal.role
        )));
    }
    let mut batch = Batch::default();
    store.set_contact(&mut batch, record, contact)?;
    let d = draft(
        VAULT_CASE,
        &actor,
        Action::PrincipalContactSet,
        vec![],
        serde_json::json!({ "key_id": key_id }),
        with_body(signed, &body),
    );
    let receipt = one(log_and_flush(&state, guard, batch, vec![d]).await?);
    Ok(Json(ReceiptBody { receipt }))
}
