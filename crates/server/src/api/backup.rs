//! `GET /v1/vault/backup`: an admin's consistent snapshot of the whole
//! vault, streamed as the tar file [`crate::backup`] writes. The request is
//! logged and made durable first, so every copy that leaves the vault is on
//! the record, signed by the admin who took it, and the snapshot holds its
//! own event. The log key never travels this way. With the signed header
//! `Custos-Backup-Chunks: hashes`, a vault whose chunks are in an S3
//! bucket lists them in the manifest instead of sending them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::Signed;
use super::error::ApiError;
use super::logged::{draft, log_and_flush};
use super::AppState;
use crate::backup::{BackupChunks, BackupError};
use crate::policy;
use crate::store::{Batch, StoreError};
use custos_core::custody::{Action, VAULT_CASE};

/// Bytes handed to the response at a time.
const PIECE: usize = 256 * 1024;

/// A writer that hands what it is given to the response body; fails once
/// the client has gone, which stops the snapshot being written.
struct ToBody(tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>);

impl std::io::Write for ToBody {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(axum::body::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn api_error(e: BackupError) -> ApiError {
    match e {
        BackupError::Store(e) => ApiError::Store(e),
        BackupError::Io(e) => ApiError::Store(StoreError::Io(e)),
        other => ApiError::Store(StoreError::Integrity(other.to_string())),
    }
}

pub(super) async fn backup(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    Signed { actor, request }: Signed,
) -> Result<Response, ApiError> {
    if !policy::may_take_backup(&actor) {
        return Err(ApiError::Forbidden("only an admin may take a backup"));
    }
    // Signed whenever sent (auth's MEANINGFUL_HEADERS), so the logged
    // request says which kind of backup left the vault.
    let chunks = match headers.get(super::auth::BACKUP_CHUNKS_HEADER).map(|v| v.as_bytes()) {
        None => BackupChunks::Included,
        Some(b"hashes") => BackupChunks::HashesOnly,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "{} takes hashes",
                super::auth::BACKUP_CHUNKS_HEADER
            )))
        }
    };
    let store = &state.vault.store;
    // Refused before the request is logged: no backup leaves.
    crate::backup::refuse_hashes_only_on_disk(store, chunks).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let guard = store.writer().await;
    let d = draft(
        VAULT_CASE,
        &actor,
        Action::VaultBackedUp,
        vec![],
        serde_json::json!({}),
        request,
    );
    log_and_flush(&state, guard, Batch::default(), vec![d]).await?;
    let snapshot = crate::backup::snapshot_with(state.clone(), chunks)
        .await
        .map_err(api_error)?;
    let len = snapshot.tar_len();
    let log_size = snapshot.manifest().log_size;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let writer = state.clone();
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(PIECE, ToBody(tx.clone()));
        match snapshot.write(&writer.vault.store, out) {
            Ok(m) => tracing::info!(log_size = m.log_size, chunk_files = m.chunk_files, "backup sent"),
            Err(e) => {
                tracing::error!(error = %e, "backup cut short");
                // The client sees the body end early, short of its length.
                let _ = tx.blocking_send(Err(std::io::Error::other("backup cut short")));
            }
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    }));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert("custos-log-size", HeaderValue::from(log_size));
    Ok(resp)
}
