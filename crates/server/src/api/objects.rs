//! Reading stored objects: a holder's download (with `Range`), an
//! auditor's export and its object reads, each a logged access; the bytes
//! are re-hashed as they are sent.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::auth::Signed;
use super::cases::visible_case;
use super::error::ApiError;
use super::logged::{draft, log_and_flush, one};
use super::wire::*;
use super::AppState;
use crate::policy::{self, Actor};
use crate::store::{self, pair_key, Batch, CaseObject, T};
use custos_core::custody::merkle::Hash;
use custos_core::custody::{Action, VAULT_CASE};
use custos_core::httpsig::SignedRequest;

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(super) async fn download(
    State(state): State<Arc<AppState>>,
    Path((case_id, object_id)): Path<(String, String)>,
    headers: HeaderMap,
    Signed { actor, request: signed }: Signed,
) -> Result<Response> {
    let (_, acc) = visible_case(&state, &case_id, &actor)?;
    if !policy::may_download(&actor, &case_id, acc) {
        return Err(ApiError::Forbidden(
            "only holders of the case key may download its objects",
        ));
    }
    send_object(state, case_id, object_id, actor, signed, range_start(&headers)).await
}

/// The start of a `Range: bytes=N-` request (the one form clients need to
/// resume a download); any other Range is ignored and the whole object is
/// sent, as RFC 9110 allows.
fn range_start(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let n = v.strip_prefix("bytes=")?.strip_suffix('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Ciphertext for an export bundle: auditors may take it too, since they
/// hold no envelope and cannot decrypt it. Logged like any download.
pub(super) async fn export_object(
    State(state): State<Arc<AppState>>,
    Path((case_id, object_id)): Path<(String, String)>,
    headers: HeaderMap,
    Signed { actor, request: signed }: Signed,
) -> Result<Response> {
    let (_, acc) = visible_case(&state, &case_id, &actor)?;
    if !policy::may_export(&actor, acc) {
        return Err(ApiError::Forbidden(
            "only auditors and holders of the case key may export it",
        ));
    }
    send_object(state, case_id, object_id, actor, signed, range_start(&headers)).await
}

/// Log the access, then stream the object (from byte `from`, for a resumed
/// download, which starts at the chunk holding it), checking every chunk
/// against its address and its length on the way and, for a whole object,
/// that the chunks are the object's (see [`Whole`]).
async fn send_object(
    state: Arc<AppState>,
    case_id: String,
    object_id: String,
    actor: Actor,
    signed: SignedRequest,
    from: Option<u64>,
) -> Result<Response> {
    let store = &state.vault.store;
    let object = store::object_hash(&object_id).ok_or(ApiError::NotFound("object"))?;
    let entry: CaseObject = store
        .get_json(T::CaseObjects, pair_key(&case_id, &object_id))?
        .ok_or(ApiError::NotFound("object"))?;
    let manifest: store::ObjectManifest = store
        .get_json(T::Objects, object)?
        .ok_or_else(|| store::StoreError::Integrity(format!("object {object_id} has no manifest")))?;
    let from = from.unwrap_or(0);
    if from > 0 && from >= manifest.size {
        return Err(ApiError::RangeNotSatisfiable(manifest.size));
    }
    // Find the chunk the range starts in from the manifest (no chunk before
    // it is read), and check that chunk before anything is logged or sent,
    // so a damaged object is a clean error, not a cut-off download.
    // Reading and re-hashing chunks is blocking work.
    let check = if from == 0 { Whole::of(&manifest) } else { Whole::Range };
    let (layout, start, first) = {
        let (state, manifest) = (state.clone(), manifest.clone());
        off_runtime(move || first_chunk_from(&state.vault.store, &object, &manifest, from, check)).await?
    };

    let guard = store.writer().await;
    let d = draft(
        &case_id,
        &actor,
        Action::ObjectAccessed,
        vec![object_id.clone()],
        if from > 0 {
            serde_json::json!({ "size": entry.size, "from": from })
        } else {
            serde_json::json!({ "size": entry.size })
        },
        signed,
    );
    let receipt = one(log_and_flush(&state, guard, Batch::default(), vec![d]).await?);

    let reading = Reading {
        state: state.clone(),
        object,
        layout: Arc::new(layout),
        chunks: manifest.chunks,
    };
    // One chunk ahead: the next is read and checked while this one is
    // sent. Each read is a short task of its own, so a slow client holds
    // no thread while it takes its time.
    let next = first.map_or(Next::Done, |first| Next::Ready(Ok(first)));
    let stream = futures_util::stream::unfold((start, next), move |(i, next)| {
        let reading = reading.clone();
        async move {
            let item = match next {
                Next::Done => return None,
                Next::Ready(item) => item,
                Next::Reading(task) => task.await.unwrap_or_else(|e| {
                    Err(store::StoreError::Io(std::io::Error::other(format!(
                        "read task failed: {e}"
                    ))))
                }),
            };
            match item {
                Ok((chunk, check)) => {
                    let next = if i + 1 < reading.chunks {
                        Next::Reading(reading.spawn(i + 1, check))
                    } else {
                        Next::Done
                    };
                    Some((Ok(chunk), (i + 1, next)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "aborting a download");
                    let e = std::io::Error::other("stored data failed its integrity check");
                    Some((Err(e), (i, Next::Done)))
                }
            }
        }
    });
    let receipt_header = B64.encode(serde_json::to_vec(&receipt).expect("serialisable"));
    let mut resp = Response::new(Body::from_stream(stream));
    if from > 0 {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(manifest.size - from));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if from > 0 {
        let range = format!("bytes {from}-{}/{}", manifest.size - 1, manifest.size);
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&range).expect("ascii"));
    }
    h.insert(
        "custos-receipt",
        HeaderValue::from_str(&receipt_header).expect("base64 is a valid header"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Where `object`'s chunks start, the chunk a download from byte `from`
/// starts in, and that chunk's part from `from` on with `check` taken over
/// it (none when the object has no bytes). Only that chunk is read.
fn first_chunk_from(
    store: &store::Store,
    object: &Hash,
    manifest: &store::ObjectManifest,
    from: u64,
    mut check: Whole,
) -> std::result::Result<(store::ChunkLayout, u64, Option<ChunkAndCheck>), store::StoreError> {
    let layout = store.object_layout(object, manifest)?;
    let Some((start, skip)) = layout.locate(from) else {
        return Ok((layout, manifest.chunks, None));
    };
    let (address, chunk) = layout_chunk(store, object, &layout, start)?;
    // Whole downloads start at byte 0: the check sees whole chunks.
    check.update(&address, &chunk);
    if start + 1 == manifest.chunks {
        check.finish(object)?;
    }
    // `skip` is below the chunk's length, which the layout checked.
    let part = Bytes::from(chunk).slice(usize::try_from(skip).expect("within a chunk in memory")..);
    Ok((layout, start, Some((part, check))))
}

/// Chunk `index` of `object` and its address, re-hashed, and of the
/// length `layout` gives it: a chunk of another length would shift every
/// byte after it. The layout adds up to the object's size, so chunks of
/// the right lengths are also the right number of bytes in all.
fn layout_chunk(
    store: &store::Store,
    object: &Hash,
    layout: &store::ChunkLayout,
    index: u64,
) -> std::result::Result<(Hash, Vec<u8>), store::StoreError> {
    let address = store.chunk_at(T::ObjectChunks, object, index)?;
    let chunk = store.get_chunk(&address)?;
    if chunk.len() as u64 != layout.chunk_len(index) {
        return Err(damaged(object, "has a chunk of another length than its record"));
    }
    Ok((address, chunk))
}

fn damaged(object: &Hash, what: &str) -> store::StoreError {
    store::StoreError::Integrity(format!("object {} {what}", hex::encode(object)))
}

/// What reads the chunks of one download after its first.
#[derive(Clone)]
struct Reading {
    state: Arc<AppState>,
    object: Hash,
    layout: Arc<store::ChunkLayout>,
    chunks: u64,
}

impl Reading {
    /// Read and check chunk `index` on a blocking thread, taking the
    /// whole-object check on to it; at the last chunk, finish that check.
    fn spawn(&self, index: u64, mut check: Whole) -> tokio::task::JoinHandle<ChunkRead> {
        let reading = self.clone();
        tokio::task::spawn_blocking(move || {
            let store = &reading.state.vault.store;
            let (address, chunk) = layout_chunk(store, &reading.object, &reading.layout, index)?;
            check.update(&address, &chunk);
            if index + 1 == reading.chunks {
                check.finish(&reading.object)?;
            }
            Ok((Bytes::from(chunk), check))
        })
    }
}

/// The next chunk of a download: read already, being read, or none.
enum Next {
    Ready(ChunkRead),
    Reading(tokio::task::JoinHandle<ChunkRead>),
    Done,
}

/// A chunk of a download, and the whole-object check so far.
type ChunkAndCheck = (Bytes, Whole);

/// A chunk read for a download.
type ChunkRead = std::result::Result<ChunkAndCheck, store::StoreError>;

/// How a download of the whole object checks, at its last chunk, that its
/// chunks are the object's (each was checked against its address already).
enum Whole {
    /// A range: its chunks are checked one by one only.
    Range,
    /// Their addresses, hashed, against the manifest's hash of that list.
    List(sha2::Sha256, String),
    /// Their bytes, hashed, against the object's id (manifests that do
    /// not record the list).
    Content(sha2::Sha256),
}

impl Whole {
    fn of(manifest: &store::ObjectManifest) -> Self {
        match &manifest.chunks_sha256 {
            Some(list) => Whole::List(sha2::Sha256::default(), list.clone()),
            None => Whole::Content(sha2::Sha256::default()),
        }
    }

    fn update(&mut self, address: &Hash, chunk: &[u8]) {
        use sha2::Digest;
        match self {
            Whole::Range => {}
            Whole::List(h, _) => h.update(address),
            Whole::Content(h) => h.update(chunk),
        }
    }

    fn finish(&self, object: &Hash) -> std::result::Result<(), store::StoreError> {
        use sha2::Digest;
        let whole = match self {
            Whole::Range => true,
            Whole::List(h, list) => hex::encode(h.clone().finalize()) == *list,
            Whole::Content(h) => h.clone().finalize().as_slice() == object,
        };
        if whole {
            Ok(())
        } else {
            Err(damaged(object, "does not match its hash"))
        }
    }
}

/// Run store reads (chunk files, re-hashing) on a blocking thread.
async fn off_runtime<V: Send + 'static>(
    read: impl FnOnce() -> std::result::Result<V, store::StoreError> + Send + 'static,
) -> std::result::Result<V, store::StoreError> {
    tokio::task::spawn_blocking(read).await.unwrap_or_else(|e| {
        Err(store::StoreError::Io(std::io::Error::other(format!(
            "read task failed: {e}"
        ))))
    })
}

/// Export a case: log the export, then return the vault's and the case's
/// chains with an inclusion proof for every event against one checkpoint,
/// cosigned by the witnesses that answer. The client fetches the ciphertext
/// first (through `export_object`), so those accesses are in the export.
pub(super) async fn export(
    State(state): State<Arc<AppState>>,
    Signed { actor, request: signed }: Signed,
    Path(case_id): Path<String>,
) -> Result<Json<ExportBody>> {
    let (_, acc) = visible_case(&state, &case_id, &actor)?;
    if !policy::may_export(&actor, acc) {
        return Err(ApiError::Forbidden(
            "only auditors and holders of the case key may export it",
        ));
    }
    let store = &state.vault.store;
    // Hold the witnesses until this export's checkpoint is cosigned, so a
    // newer checkpoint cannot be pushed first and leave it uncosigned.
    let mut witnessing = state.witnesses.round().await;
    // Read the objects under the writer lock, so none is committed between
    // the listing and the export event that names them.
    let guard = store.writer().await;
    let objects: Vec<String> = store
        .scan_json::<CaseObject>(T::CaseObjects, format!("{case_id}/"))?
        .into_iter()
        .map(|o| o.object_id)
        .collect();
    // The vault chain's length goes into the event, so a bundle that leaves
    // out registry events is caught.
    let vault_events = store
        .get_json::<store::ChainHead>(T::Heads, VAULT_CASE)?
        .map_or(0, |h| h.seq + 1);
    let d = draft(
        &case_id,
        &actor,
        Action::CaseExported,
        objects.clone(),
        serde_json::json!({ "objects": objects.len(), "vault_events": vault_events }),
        signed,
    );
    // Prove against the checkpoint signed right after this event, so the
    // export event is the last one in the proven tree and nothing of the
    // case before it can be left out unnoticed.
    let receipt = one(log_and_flush(&state, guard, Batch::default(), vec![d]).await?);
    let size = receipt.index + 1;
    let checkpoint = witnessing.cosign(store, &receipt.checkpoint).await;
    drop(witnessing);
    let mut indices = store.chain_indices(VAULT_CASE, size)?;
    indices.extend(store.chain_indices(&case_id, size)?);
    indices.sort_unstable();
    let entries = indices
        .into_iter()
        .map(|index| super::case_log::proven_entry(store, index, size))
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(ExportBody {
        case_id,
        checkpoint,
        entries,
    }))
}
