//! `POST /v1/cases/{case}/workflow`: a lawyer holding the case records one
//! change of its workflow (status, tags, assignee) or a note. The entry is
//! sealed by the lawyer's client to the lawyers' key of the case; the
//! vault checks who may write it and logs it, and cannot read it. The
//! event goes in the case's lawyers' chain (`custody::lawyers_chain`),
//! which `case_log` shows to lawyers and auditors only: codename holders
//! see neither these events nor a gap in the case chain where they were.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::SignedBody;
use super::cases::visible_case;
use super::error::ApiError;
use super::logged::{decode_b64, draft, log_and_flush, one, parse_canonical, with_body};
use super::wire::{ReceiptBody, WorkflowBody};
use super::AppState;
use crate::policy;
use crate::store::Batch;
use custos_core::custody::Action;
use custos_core::protocol::MAX_WORKFLOW_ENTRY;

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(super) async fn change(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    SignedBody {
        actor,
        request: signed,
        body,
        ..
    }: SignedBody,
) -> Result<Response> {
    let req: WorkflowBody = parse_canonical(&body)?;
    let (_, acc) = visible_case(&state, &case_id, &actor)?;
    if !policy::may_change_workflow(&actor, acc) {
        return Err(ApiError::Forbidden(
            "only a lawyer holding the case may change its workflow or add a note",
        ));
    }
    decode_b64("entry", &req.entry, MAX_WORKFLOW_ENTRY)?;
    let guard = state.vault.store.writer().await;
    // Logged in the case's lawyers' chain, not its own: codename holders
    // see the case chain's sequence numbers, and must not count these.
    let d = draft(
        &custos_core::custody::lawyers_chain(&case_id),
        &actor,
        Action::WorkflowChanged,
        vec![],
        serde_json::json!({}),
        with_body(signed, &body),
    );
    let receipt = one(log_and_flush(&state, guard, Batch::default(), vec![d]).await?);
    Ok((StatusCode::CREATED, Json(ReceiptBody { receipt })).into_response())
}
