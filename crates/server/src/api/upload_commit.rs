//! Committing a complete upload as an object of its case: the checks
//! (the SHA-256 the client signed, the upload complete and durable), then
//! the record, written under the writer lock on a task of its own. The
//! PATCHes that fill an upload are `uploads`' and `upload_writes`'.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::auth::SignedBody;
use super::error::{conflict, mismatch, ApiError};
use super::logged::{draft, log_and_flush, parse_canonical, with_body};
use super::uploads::{load_upload, remove_upload};
use super::wire::{CommitUpload, ObjectCommitted};
use super::AppState;
use crate::policy::Actor;
use crate::store::{self, pair_key, Batch, CaseObject, UploadRecord, T};
use custos_core::custody::{Action, Receipt};
use custos_core::envelope::MAX_LABEL_BYTES;
use custos_core::httpsig::SignedRequest;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Commit a complete upload as an object of the case: the server finishes
/// the SHA-256 it kept while the PATCHes arrived (or, with none kept,
/// re-reads and hashes every stored chunk) and refuses unless the hash is
/// exactly the one the client signed.
pub(super) async fn commit(
    State(state): State<Arc<AppState>>,
    Path((case_id, upload_id)): Path<(String, String)>,
    SignedBody {
        actor,
        request: signed,
        body,
        budget,
    }: SignedBody,
) -> Result<Response> {
    let req: CommitUpload = parse_canonical(&body)?;
    let object = store::object_hash(&req.sha256)
        .ok_or_else(|| ApiError::BadRequest("sha256 must be 64 lower-case hex digits".into()))?;
    let object_id = req.sha256.clone();
    let label = B64
        .decode(&req.label)
        .map_err(|_| ApiError::BadRequest("label is not base64".into()))?;
    if label.is_empty() || label.len() > MAX_LABEL_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the encrypted label must be 1 to {MAX_LABEL_BYTES} bytes"
        )));
    }
    load_upload(&state, &case_id, &upload_id, &actor)?;
    // No object before every chunk's PUT is acknowledged: a write that
    // failed fails the commit with its own error.
    state.upload_writes.settle(&upload_id).await?;
    let u = load_upload(&state, &case_id, &upload_id, &actor)?;
    if u.offset != u.length {
        return Err(conflict(
            "upload_incomplete",
            format!("the upload has {} of {} bytes", u.offset, u.length),
        ));
    }
    let actual = match state.vault.store.take_upload_hash(&upload_id, u.length) {
        // Every byte was hashed as its PATCH arrived: finish that hash.
        Some(running) if u.length > 0 => hex::encode(running.finalize()),
        // No running hash (the vault restarted since the upload began, or
        // a PATCH failed partway): read what is stored, once.
        _ => {
            let hashing_state = state.clone();
            let prefix = upload_id.clone().into_bytes();
            let (actual, len) = tokio::task::spawn_blocking(move || {
                hashing_state
                    .vault
                    .store
                    .hash_sequence(T::UploadChunks, &prefix, u.chunks)
            })
            .await
            .map_err(|e| store::StoreError::Integrity(format!("hashing task failed: {e}")))??;
            if len != u.length {
                return Err(store::StoreError::Integrity("stored upload length differs from its record".into()).into());
            }
            actual
        }
    };
    if actual != object_id {
        // Damage on disk is the vault's fault, not the client's: say so.
        let checking = state.clone();
        let prefix = upload_id.clone().into_bytes();
        tokio::task::spawn_blocking(move || checking.vault.store.check_sequence(T::UploadChunks, &prefix, u.chunks))
            .await
            .map_err(|e| store::StoreError::Integrity(format!("checking task failed: {e}")))??;
        return Err(mismatch(
            "hash_mismatch",
            "the uploaded data does not have the SHA-256 named in the commit",
        ));
    }

    // The object's record, from its chunks' addresses and lengths: asking
    // the chunk store for lengths is blocking work (a request per chunk
    // when chunks are in a bucket), done before the writer lock is taken.
    // The upload is re-checked under the lock, so these are its chunks.
    let manifest = {
        let (reading, prefix) = (state.clone(), upload_id.clone());
        tokio::task::spawn_blocking(move || reading.vault.store.manifest_of_upload(&prefix, u.length, u.chunks))
            .await
            .map_err(|e| store::StoreError::Integrity(format!("manifest task failed: {e}")))??
    };

    // From here the commit runs to its end on a task of its own. Dropped
    // with a client that went away, it could stop while it waits for the
    // flush of the rows written ahead, and that flush would go on without
    // the writer lock, beside other writers' transactions (`Store::flush`
    // says why it must not).
    let recording = tokio::spawn(async move {
        // The body's share of the budget goes back when the task ends,
        // not when a cancelled request does.
        let _budget = budget;
        let committed = Committed {
            case_id,
            upload_id,
            upload: u,
            object,
            manifest,
            label,
        };
        record(&state, committed, actor, req, signed, body).await
    });
    recording
        .await
        .map_err(|e| store::StoreError::Integrity(format!("commit task failed: {e}")))?
}

/// A checked upload, ready to be recorded as an object of its case.
struct Committed {
    case_id: String,
    upload_id: String,
    /// The upload's record as it was checked.
    upload: UploadRecord,
    object: custos_core::custody::merkle::Hash,
    manifest: store::ObjectManifest,
    /// The sealed label's bytes.
    label: Vec<u8>,
}

/// Record `c` under the writer lock: the object (its list, written ahead
/// in steps if long), its place in the case, the event; then drop the
/// upload's own list. Rows written ahead by a commit that then fails have
/// no owner: the collector is told, and drops them.
async fn record(
    state: &Arc<AppState>,
    c: Committed,
    actor: Actor,
    req: CommitUpload,
    signed: SignedRequest,
    body: bytes::Bytes,
) -> Result<Response> {
    let store = &state.vault.store;
    let recorded = record_locked(state, &c, &actor, &req, signed, &body).await;
    // A long list may have had steps written before the failure (all, some,
    // or, if the object was already stored, none: the collector finds out).
    if recorded.is_err() && c.upload.chunks > store::LIST_STEP {
        store.mark_garbage();
    }
    let receipt = recorded?;
    // The upload's own list has no owner now; the collector drops what a
    // failure here leaves.
    if let Err(e) = store.drop_upload_list(&c.upload_id) {
        tracing::warn!(error = %e, "could not drop a committed upload's chunk list");
        store.mark_garbage();
    }
    let object_id = req.sha256;
    Ok((StatusCode::CREATED, Json(ObjectCommitted { object_id, receipt })).into_response())
}

/// The part of [`record`] under the writer lock.
async fn record_locked(
    state: &Arc<AppState>,
    c: &Committed,
    actor: &Actor,
    req: &CommitUpload,
    signed: SignedRequest,
    body: &bytes::Bytes,
) -> Result<Receipt> {
    let (store, u, object_id) = (&state.vault.store, &c.upload, &req.sha256);
    let guard = store.writer().await;
    // Re-check under the lock: a concurrent commit or termination may have
    // taken the upload meanwhile.
    let u2 = load_upload(state, &c.case_id, &c.upload_id, actor)?;
    if u2.chunks != u.chunks || u2.offset != u.offset {
        return Err(conflict(
            "upload_changed",
            "the upload changed while it was being committed",
        ));
    }
    if store.case_has_object(&c.case_id, object_id)? {
        return Err(conflict("object_exists", "this object is already part of the case"));
    }
    let mut batch = Batch::default();
    if !store.has_object(&c.object)? {
        // A long list is written ahead, in steps (memory stays flat), and
        // is durable before the record that makes the object visible.
        if store.give_object_upload_list(&guard, &c.upload_id, &c.object, u.chunks, &mut batch)? {
            let syncing = state.clone();
            tokio::task::spawn_blocking(move || syncing.vault.store.flush_blocking())
                .await
                .map_err(|e| store::StoreError::Io(std::io::Error::other(format!("flush task failed: {e}"))))??;
        }
        batch.put_json(T::Objects, c.object, &c.manifest);
    }
    remove_upload(&mut batch, &c.upload_id, u);
    let index = store.log_size()?;
    let entry = CaseObject {
        object_id: object_id.clone(),
        size: u.length,
        label: req.label.clone(),
        index,
        added_by: Some(actor.key_id().clone()),
    };
    batch.put_json(T::CaseObjects, pair_key(&c.case_id, object_id), &entry);
    let details = serde_json::json!({ "size": u.length, "label_sha256": hex::encode(Sha256::digest(&c.label)) });
    let d = draft(
        &c.case_id,
        actor,
        Action::ObjectStored,
        vec![object_id.clone()],
        details,
        with_body(signed, body),
    );
    let mut receipts = log_and_flush(state, guard, batch, vec![d]).await?;
    Ok(receipts.pop().expect("one event"))
}
