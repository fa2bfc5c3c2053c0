//! The log's routes: the latest checkpoint (public), and entries and
//! proofs for auditors.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use super::auth::Signed;
use super::error::ApiError;
use super::wire::*;
use super::{AppState, Q};
use crate::policy::{self};
use crate::store::{self};
use custos_core::protocol::MAX_ENTRIES_PER_PAGE;

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(super) async fn checkpoint(State(state): State<Arc<AppState>>) -> Result<Response> {
    let (note, _) = super::case_log::durable_checkpoint(&state.vault.store).await?;
    let note = state.witnesses.cosigned(&note);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

#[derive(Deserialize)]
pub(super) struct EntriesQuery {
    start: u64,
    #[serde(default)]
    limit: Option<u64>,
}

/// The log's entries by index: every case id, time and access in the
/// vault, so for auditors only. Lawyers learn their cases' events from
/// receipts and exports; admins must see no case at all.
pub(super) async fn entries(
    State(state): State<Arc<AppState>>,
    Signed { actor, .. }: Signed,
    Q(q): Q<EntriesQuery>,
) -> Result<Json<Entries>> {
    if !policy::may_read_log_entries(&actor) {
        return Err(ApiError::Forbidden("only auditors may read the log's entries"));
    }
    let store = &state.vault.store;
    let size = store.log_size()?;
    let end = size.min(
        q.start
            .saturating_add(q.limit.unwrap_or(MAX_ENTRIES_PER_PAGE).min(MAX_ENTRIES_PER_PAGE)),
    );
    let mut entries = Vec::new();
    for i in q.start..end {
        let bytes = store
            .entry(i)?
            .ok_or_else(|| store::StoreError::Integrity(format!("log entry {i} is missing")))?;
        entries.push(B64.encode(bytes));
    }
    Ok(Json(Entries {
        start: q.start,
        entries,
    }))
}

#[derive(Deserialize)]
pub(super) struct InclusionQuery {
    index: u64,
    size: u64,
}

fn proof_body(proof: Vec<custos_core::custody::merkle::Hash>) -> Json<ProofBody> {
    Json(ProofBody {
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    })
}

/// An inclusion proof by index. Proofs by index would let anyone walk the
/// log's shape entry by entry, so they are for auditors, like the entries;
/// receipts carry their own proofs, and consistency proofs stay public.
pub(super) async fn inclusion(
    State(state): State<Arc<AppState>>,
    Signed { actor, .. }: Signed,
    Q(q): Q<InclusionQuery>,
) -> Result<Json<ProofBody>> {
    if !policy::may_read_log_entries(&actor) {
        return Err(ApiError::Forbidden("only auditors may read proofs by index"));
    }
    let store = &state.vault.store;
    if q.size > store.log_size()? {
        return Err(ApiError::BadRequest("size is beyond the log".into()));
    }
    let proof = store
        .inclusion_proof(q.index, q.size)?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(proof_body(proof))
}

#[derive(Deserialize)]
pub(super) struct ConsistencyQuery {
    from: u64,
    to: u64,
}

pub(super) async fn consistency(
    State(state): State<Arc<AppState>>,
    Q(q): Q<ConsistencyQuery>,
) -> Result<Json<ProofBody>> {
    let store = &state.vault.store;
    if q.to > store.log_size()? {
        return Err(ApiError::BadRequest("size is beyond the log".into()));
    }
    let proof = store
        .consistency_proof(q.from, q.to)?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(proof_body(proof))
}
