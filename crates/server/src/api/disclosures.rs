//! `POST /v1/cases/{case}/disclosures`: a lawyer holding the case records
//! that they gave some of its objects to an outside body (a court, an
//! oversight body), named by its age key. The vault checks who may and
//! that each object is the case's, and logs it; the files themselves go
//! from the lawyer's machine to the recipient, never through the vault.
//! Codename holders never see these events (`case_log` leaves them out of
//! a submitter's selection).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::SignedBody;
use super::cases::visible_case;
use super::error::ApiError;
use super::logged::{draft, log_and_flush, one, parse_canonical, with_body};
use super::wire::{DiscloseBody, ReceiptBody};
use super::AppState;
use crate::policy;
use crate::store::Batch;
use custos_core::custody::Action;

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(super) async fn disclose(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    SignedBody {
        actor,
        request: signed,
        body,
        ..
    }: SignedBody,
) -> Result<Response> {
    let req: DiscloseBody = parse_canonical(&body)?;
    let (_, acc) = visible_case(&state, &case_id, &actor)?;
    if !policy::may_disclose(&actor, acc) {
        return Err(ApiError::Forbidden("only a lawyer holding the case may disclose it"));
    }
    if let Some(why) = req.malformed() {
        return Err(ApiError::BadRequest(why.to_owned()));
    }
    // Objects are never taken out of a case, so what holds now holds when
    // the event is logged.
    for object in &req.objects {
        if !state.vault.store.case_has_object(&case_id, object)? {
            return Err(ApiError::NotFound("object"));
        }
    }
    let guard = state.vault.store.writer().await;
    let d = draft(
        &case_id,
        &actor,
        Action::CaseDisclosed,
        req.objects,
        serde_json::json!({}),
        with_body(signed, &body),
    );
    let receipt = one(log_and_flush(&state, guard, Batch::default(), vec![d]).await?);
    Ok((StatusCode::CREATED, Json(ReceiptBody { receipt })).into_response())
}
