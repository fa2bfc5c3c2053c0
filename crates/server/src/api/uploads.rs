//! tus 1.0 uploads (core, creation, checksum, termination, expiration), each request
//! signed, and the custos commit that turns a complete upload into a
//! content-addressed object once its SHA-256 matches what the client named.
//!
//! Hand-written, not a tus crate: every request must be authenticated by
//! its RFC 9421 signature before its body is read, each PATCH's digest is
//! the chunk's address, and the commit is a custody event; the Rust tus
//! servers we found own the storage and the request cycle, which is
//! exactly what custos must keep.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::Digest;

use super::auth::{check_body_hash, Signed, SignedBody};
use super::cases::visible_case;
use super::error::{conflict, ApiError};
use super::{upload_writes, AppState};
use crate::policy::{self, Actor};
use crate::store::{self, indexed_key, pair_key, Batch, CaseObject, UploadRecord, T};
use custos_core::custody::unix_now;
use custos_core::protocol::{MAX_PATCH_BODY, TUS_VERSION};

type Result<T, E = ApiError> = std::result::Result<T, E>;

fn tus_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// tus expiration: when the upload is dropped unless it moves on, as an
/// HTTP date (RFC 9110 IMF-fixdate).
fn expires_header(resp: &mut Response, u: &UploadRecord) {
    let Ok(secs) = u64::try_from(u.expires()) else {
        return;
    };
    let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    if let Ok(v) = HeaderValue::from_str(&date) {
        resp.headers_mut().insert("upload-expires", v);
    }
}

/// Drop every upload that has not moved for
/// [`UPLOAD_TTL_SECS`](crate::store::UPLOAD_TTL_SECS) by `now`,
/// as a termination would; returns how many. The server runs this every
/// minute. The uploads are found without the writer lock, so a vault with
/// many open uploads does not stall its writes for the scan; each is read
/// again under the lock, where one that moved meanwhile is kept. Their
/// chunks go at the next [`Store::collect_chunks`](store::Store::collect_chunks).
pub async fn expire_uploads(store: &store::Store, now: i64) -> std::result::Result<usize, store::StoreError> {
    // The running hashes of uploads gone since the last sweep (expired, or
    // ended by a revocation) go with them.
    store.forget_stale_upload_hashes()?;
    let mut candidates = Vec::new();
    for (id, upload) in store.uploads()? {
        if upload.expires() <= now {
            candidates.push(id);
        }
    }
    if candidates.is_empty() {
        return Ok(0);
    }
    let mut expired = 0;
    {
        let guard = store.writer().await;
        let mut batch = Batch::default();
        for id in candidates {
            if let Some(u) = store
                .get_json::<UploadRecord>(T::Uploads, &id)?
                .filter(|u| u.expires() <= now)
            {
                remove_upload(&mut batch, &id, &u);
                expired += 1;
            }
        }
        if expired == 0 {
            return Ok(0);
        }
        store.apply(&guard, batch)?;
    }
    store.flush().await?;
    store.mark_garbage();
    Ok(expired)
}

/// Remove, in `batch`, every open upload on `case` (every case when
/// `None`) that `owner` opened: when the owner loses the case or leaves
/// the vault, what it was sending goes too. Returns how many.
pub(super) fn terminate_uploads_of(
    store: &store::Store,
    batch: &mut Batch,
    owner: &custos_core::identity::KeyId,
    case: Option<&str>,
) -> std::result::Result<usize, store::StoreError> {
    let ids: Vec<String> = match case {
        Some(case) => store.paired_with(T::CaseUploads, case)?,
        None => store.upload_ids()?,
    };
    let mut n = 0;
    for id in ids {
        if let Some(u) = store.get_json::<UploadRecord>(T::Uploads, &id)? {
            if u.owner == *owner {
                remove_upload(batch, &id, &u);
                n += 1;
            }
        }
    }
    Ok(n)
}

fn check_tus(headers: &HeaderMap) -> Result<()> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(ApiError::TusVersion),
    }
}

/// `Custos-Patch-Size`: how many bytes a PATCH should carry to this vault
/// (one chunk where chunks are files; several where each chunk's write
/// waits on a bucket, so the vault can send them at once). Only a hint:
/// any size up to `MAX_PATCH_BODY` is taken.
fn patch_size_header(state: &AppState, resp: &mut Response) {
    resp.headers_mut()
        .insert("custos-patch-size", HeaderValue::from(state.vault.store.patch_size()));
}

fn header_u64(headers: &HeaderMap, name: &'static str) -> Result<u64> {
    let v = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{name} header is required")))?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!("{name} must be a non-negative integer")));
    }
    v.parse()
        .map_err(|_| ApiError::BadRequest(format!("{name} is out of range")))
}

fn valid_upload_id(id: &str) -> bool {
    custos_core::protocol::is_lower_hex(id, 32)
}

/// Load an upload that belongs to `case_id` and was created by `actor`,
/// who must still be allowed to add to the case: access is checked again
/// on every request of an upload, not only when it was opened, so a
/// revoked lawyer's upload goes no further. A case the actor cannot see is
/// "not found" as one that does not exist; any other upload is "not
/// found" too, so upload ids cannot be probed.
pub(super) fn load_upload(state: &AppState, case_id: &str, upload_id: &str, actor: &Actor) -> Result<UploadRecord> {
    let (_, acc) = visible_case(state, case_id, actor)?;
    if !policy::may_upload(actor, case_id, acc) || !valid_upload_id(upload_id) {
        return Err(ApiError::NotFound("upload"));
    }
    match state.vault.store.get_json::<UploadRecord>(T::Uploads, upload_id)? {
        Some(u) if u.case_id == case_id && &u.owner == actor.key_id() => Ok(u),
        _ => Err(ApiError::NotFound("upload")),
    }
}

/// tus discovery.
pub(super) async fn options(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut resp);
    let h = resp.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,checksum,termination,expiration"),
    );
    h.insert("tus-max-size", HeaderValue::from(state.max_upload_bytes));
    h.insert("tus-checksum-algorithm", HeaderValue::from_static("sha256"));
    resp
}

/// tus creation: `POST /v1/cases/{case}/uploads` with `Upload-Length`.
pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    SignedBody { actor, body, .. }: SignedBody,
) -> Result<Response> {
    check_tus(&headers)?;
    let (_, acc) = visible_case(&state, &case_id, &actor)?;
    if !policy::may_upload(&actor, &case_id, acc) {
        return Err(ApiError::Forbidden(
            "only the submitter or a lawyer holding the case may add to it",
        ));
    }
    if !body.is_empty() {
        return Err(ApiError::BadRequest(
            "creation-with-upload is not supported; send data with PATCH".into(),
        ));
    }
    let length = header_u64(&headers, "upload-length")?;
    if length == 0 || length > state.max_upload_bytes {
        return Err(ApiError::TooLarge(format!(
            "Upload-Length must be 1 to {} bytes",
            state.max_upload_bytes
        )));
    }
    let upload_id = hex::encode(rand::random::<[u8; 16]>());
    let record = UploadRecord {
        case_id: case_id.clone(),
        length,
        offset: 0,
        chunks: 0,
        owner: actor.key_id().clone(),
        created: unix_now(),
        touched: 0,
    };
    let store = &state.vault.store;
    {
        let guard = store.writer().await;
        // Access again, under the lock: a revocation that landed since has
        // already ended this key's uploads, and must not miss this one.
        let (_, acc) = visible_case(&state, &case_id, &actor)?;
        if !policy::may_upload(&actor, &case_id, acc) {
            return Err(ApiError::NotFound("case"));
        }
        check_case_quota(&state, &case_id, length)?;
        let mut batch = Batch::default();
        batch.put_json(T::Uploads, upload_id.as_bytes(), &record);
        batch.put(T::CaseUploads, pair_key(&case_id, &upload_id), Vec::new());
        store.apply(&guard, batch)?;
    }
    store.flush().await?;
    let mut resp = StatusCode::CREATED.into_response();
    tus_headers(&mut resp);
    patch_size_header(&state, &mut resp);
    let location = format!("/v1/cases/{case_id}/uploads/{upload_id}");
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&location).expect("ascii"));
    resp.headers_mut().insert("upload-offset", HeaderValue::from(0u64));
    expires_header(&mut resp, &record);
    Ok(resp)
}

/// Refuse a new upload of `length` bytes that would take the case past its
/// quotas: the bytes of its objects and open uploads, and the number of
/// open uploads. The caller holds the writer lock, so two uploads cannot
/// both squeeze under the limit.
fn check_case_quota(state: &AppState, case_id: &str, length: u64) -> Result<()> {
    let store = &state.vault.store;
    let mut open = 0;
    let mut bytes: u64 = store
        .scan_json::<CaseObject>(T::CaseObjects, format!("{case_id}/"))?
        .iter()
        .map(|o| o.size)
        .sum();
    for id in store.paired_with(T::CaseUploads, case_id)? {
        if let Some(u) = store.get_json::<UploadRecord>(T::Uploads, &id)? {
            open += 1;
            bytes = bytes.saturating_add(u.length);
        }
    }
    if open >= state.max_case_open_uploads {
        return Err(conflict(
            "case_uploads_exceeded",
            format!("this case has {open} uploads open, the most it may; finish or cancel one first"),
        ));
    }
    if bytes.saturating_add(length) > state.max_case_bytes {
        return Err(ApiError::CaseQuota(state.max_case_bytes));
    }
    Ok(())
}

/// tus core: `HEAD` reports the durable offset, once the upload's write
/// under way (if any) has ended, however it ended.
pub(super) async fn head(
    State(state): State<Arc<AppState>>,
    Path((case_id, upload_id)): Path<(String, String)>,
    headers: HeaderMap,
    Signed { actor, .. }: Signed,
) -> Result<Response> {
    check_tus(&headers)?;
    load_upload(&state, &case_id, &upload_id, &actor)?;
    // A write that failed is told by the offset below, which is where to
    // go on from.
    let _ = state.upload_writes.settle(&upload_id).await;
    let u = load_upload(&state, &case_id, &upload_id, &actor)?;
    // What was read is durable before it is told: a write applied but not
    // yet flushed would otherwise show an offset a crash could take back.
    state.vault.store.flush().await?;
    let mut resp = StatusCode::OK.into_response();
    tus_headers(&mut resp);
    patch_size_header(&state, &mut resp);
    resp.headers_mut().insert("upload-offset", HeaderValue::from(u.offset));
    resp.headers_mut().insert("upload-length", HeaderValue::from(u.length));
    expires_header(&mut resp, &u);
    Ok(resp)
}

/// tus core: `PATCH` appends at `Upload-Offset`. Everything its head says
/// is checked before a byte of its body is read (the upload is the
/// signer's, on a case it may still add to, at this offset, and the
/// declared length fits), so a body is never held for a PATCH that would
/// be refused anyway. The body is then checked against its signed
/// `Content-Digest` (and `Upload-Checksum` if sent) before any of it
/// counts. The new offset is durable before the reply, but where chunk
/// writes wait on the network: there the reply comes once the PATCH
/// before is durable, and this one's write goes on
/// ([`upload_writes`](super::upload_writes) says why and what waits for it).
pub(super) async fn patch(
    State(state): State<Arc<AppState>>,
    Path((case_id, upload_id)): Path<(String, String)>,
    Signed { actor, request }: Signed,
    req: axum::extract::Request,
) -> Result<Response> {
    let headers = req.headers().clone();
    check_tus(&headers)?;
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/offset+octet-stream") {
        return Err(ApiError::UnsupportedMedia(
            "PATCH bodies must be application/offset+octet-stream",
        ));
    }
    let offset = header_u64(&headers, "upload-offset")?;
    let declared = header_u64(&headers, "content-length")?;
    if declared > MAX_PATCH_BODY as u64 {
        return Err(ApiError::TooLarge(format!(
            "a PATCH may carry at most {MAX_PATCH_BODY} bytes"
        )));
    }
    let checksum = match headers.get("upload-checksum") {
        None => None,
        Some(sum) => {
            let bad = || ApiError::BadRequest("bad Upload-Checksum".into());
            let (alg, value) = sum.to_str().map_err(|_| bad())?.split_once(' ').ok_or_else(bad)?;
            if alg != "sha256" {
                return Err(ApiError::BadRequest("only sha256 checksums are supported".into()));
            }
            Some(value.to_owned())
        }
    };
    let u = load_upload(&state, &case_id, &upload_id, &actor)?;
    if let Some(failed) = state.upload_writes.take_failure(&upload_id) {
        return Err(failed);
    }
    let expected = state.upload_writes.next_offset(&upload_id, u.offset);
    if offset != expected {
        return Err(conflict(
            "upload_offset_mismatch",
            format!("the upload is at offset {expected}, not {offset}"),
        ));
    }
    if offset + declared > u.length {
        return Err(ApiError::TooLarge("the data goes past Upload-Length".into()));
    }
    let behind = state.vault.store.chunk_writes_wait_on_network();
    if behind && !state.vault.store.chunk_storage_up() {
        // The bucket failed the last request made of it: this PATCH would
        // be answered before its write fails, so it is refused now, before
        // its body is read, unless a probe (one every few seconds at most)
        // finds the bucket back.
        let probing = state.clone();
        tokio::task::spawn_blocking(move || probing.vault.store.probe_chunk_storage())
            .await
            .map_err(|e| store::StoreError::Integrity(format!("probe task failed: {e}")))??;
    }
    let (body, budget) = super::read_body(&state, req).await?;
    let sha256 = body.sha256();
    check_body_hash(&request, &sha256, body.is_empty())?;
    if let Some(value) = checksum {
        if B64.decode(&value).ok().as_deref() != Some(sha256.as_slice()) {
            return Err(ApiError::ChecksumMismatch);
        }
    }
    let end = offset + body.len() as u64;
    // Chunks are content-addressed, so storing them before the offset moves
    // is harmless if the write then fails (the collector takes them); the
    // collector waits while this is held.
    let chunk_writes = state.vault.store.chunk_writes().await;
    let (done, before) = state.upload_writes.start(
        &upload_id,
        (offset, end),
        || Ok(load_upload(&state, &case_id, &upload_id, &actor)?.offset),
        |before| {
            write_patch(
                state.clone(),
                PatchWrite {
                    case_id: case_id.clone(),
                    upload_id: upload_id.clone(),
                    actor: actor.clone(),
                    offset,
                    sha256,
                    body,
                    budget,
                    chunk_writes,
                },
                before,
            )
        },
    )?;
    // Chunks on this disk: answered once this PATCH is durable. In a
    // bucket: once the one before it is (upload_writes.rs says why).
    let waited = if behind { before } else { Some(done) };
    if let Some(write) = waited {
        if let Err(e) = write.await {
            // Told now; the writes behind it (this one's, in a bucket)
            // fail with it.
            state.upload_writes.forget(&upload_id);
            return Err(upload_writes::again(&e));
        }
    }
    let u = load_upload(&state, &case_id, &upload_id, &actor)?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut resp);
    resp.headers_mut().insert("upload-offset", HeaderValue::from(end));
    expires_header(&mut resp, &u);
    Ok(resp)
}

/// A PATCH whose bytes are received and checked, to be written.
struct PatchWrite {
    case_id: String,
    upload_id: String,
    /// Who sent it: checked again when the offset moves, as every write
    /// of the upload is.
    actor: Actor,
    offset: u64,
    /// The body's SHA-256, checked against its signed digest.
    sha256: [u8; 32],
    body: super::body::ReadBody,
    /// The body's share of the vault's budget, held until it is written.
    budget: super::BodyBudget,
    /// The collector waits until the chunks are referenced.
    chunk_writes: tokio::sync::OwnedRwLockReadGuard<()>,
}

/// Write a PATCH: its chunks to the store (while the PATCH before it may
/// still be writing its own), then, once that one is applied, the new
/// offset and chunk list into sled, durably.
async fn write_patch(state: Arc<AppState>, patch: PatchWrite, before: Option<upload_writes::Done>) -> Result<()> {
    let PatchWrite {
        case_id,
        upload_id,
        actor,
        offset,
        sha256,
        body,
        budget: _budget,
        chunk_writes: _chunk_writes,
    } = patch;
    let store = &state.vault.store;
    let body_len = body.len() as u64;
    let written = async {
        let pieces = body.pieces().to_vec();
        let writing = state.clone();
        let hashes = tokio::task::spawn_blocking(move || match pieces.as_slice() {
            // A body of one chunk is already hashed: the body check
            // compared it with the signed Content-Digest.
            [one] => writing.vault.store.put_chunk_prehashed(sha256, one).map(|h| vec![h]),
            pieces => writing.vault.store.put_chunks(pieces),
        });
        let before = match before {
            Some(write) => write.await.map_err(|e| upload_writes::again(&e)),
            None => Ok(()),
        };
        let hashes = hashes
            .await
            .map_err(|e| store::StoreError::Integrity(format!("chunk writing task failed: {e}")))??;
        before?;
        // The running hash is the one the write before this one kept.
        let hashing = state.clone();
        let hashing_id = upload_id.clone();
        let running = tokio::task::spawn_blocking(move || {
            hashing.vault.store.take_upload_hash(&hashing_id, offset).map(|mut h| {
                for piece in body.pieces() {
                    h.update(piece);
                }
                h
            })
        })
        .await
        .map_err(|e| store::StoreError::Integrity(format!("hashing task failed: {e}")))?;
        let guard = store.writer().await;
        let mut u = load_upload(&state, &case_id, &upload_id, &actor)?;
        if u.offset != offset {
            return Err(conflict(
                "upload_offset_mismatch",
                format!("the upload is at offset {}, not {offset}", u.offset),
            ));
        }
        let mut batch = Batch::default();
        for h in hashes {
            batch.put(T::UploadChunks, indexed_key(upload_id.as_bytes(), u.chunks), h);
            u.chunks += 1;
        }
        u.offset += body_len;
        u.touched = unix_now();
        batch.put_json(T::Uploads, upload_id.as_bytes(), &u);
        store.apply(&guard, batch)?;
        if let Some(running) = running {
            store.keep_upload_hash(&upload_id, u.offset, running);
        }
        drop(guard);
        store.flush().await?;
        state.metrics.uploaded(body_len);
        Ok(())
    }
    .await;
    // Some of the PATCH's chunks may have been stored before the write
    // failed; nothing refers to them, so they are the collector's.
    written.inspect_err(|_| store.mark_garbage())
}

/// tus termination.
pub(super) async fn terminate(
    State(state): State<Arc<AppState>>,
    Path((case_id, upload_id)): Path<(String, String)>,
    headers: HeaderMap,
    Signed { actor, .. }: Signed,
) -> Result<Response> {
    check_tus(&headers)?;
    load_upload(&state, &case_id, &upload_id, &actor)?;
    // Whatever the write under way does, the upload goes.
    let _ = state.upload_writes.settle(&upload_id).await;
    let store = &state.vault.store;
    {
        let guard = store.writer().await;
        let u = load_upload(&state, &case_id, &upload_id, &actor)?;
        let mut batch = Batch::default();
        remove_upload(&mut batch, &upload_id, &u);
        store.apply(&guard, batch)?;
        store.forget_upload_hash(&upload_id);
    }
    store.flush().await?;
    store.mark_garbage();
    let mut resp = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut resp);
    Ok(resp)
}

/// Remove an upload's record, in `batch`. Its chunk list, which has no
/// owner then, is not in the batch: a long list there would make the
/// transaction's memory grow with the upload (`store::chunk_lists`). The
/// caller drops it, or leaves it to the collector.
pub(super) fn remove_upload(batch: &mut Batch, upload_id: &str, u: &UploadRecord) {
    batch.remove(T::Uploads, upload_id.as_bytes());
    batch.remove(T::CaseUploads, pair_key(&u.case_id, upload_id));
}
