//! Handlers for intake, cases, objects, grants, the registry and the log.
//! Uploads live in `uploads.rs`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use super::auth::{authenticate, check_body, Signed, SignedBody};
use super::error::{conflict, mismatch, ApiError};
use super::wire::*;
use super::{AppState, Q};
use crate::custody::{Action, EventDraft, Receipt, VAULT_CASE};
use crate::envelope::MAX_ENVELOPE_BYTES;
use crate::httpsig::{SignatureError, SignedRequest};
use crate::identity::{self, KeyId, Principal, Role};
use crate::policy::{self, Actor, CaseAccess, ListScope};
use crate::store::{self, pair_key, Batch, CaseObject, CaseRecord, RegistryRecord, SubmitterKey, WriterGuard, T};
use custos_core::protocol::MAX_ENTRIES_PER_PAGE;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Bytes of randomness in a case id: 96 bits, unguessable and short enough
/// to read out over a phone.
const CASE_ID_BYTES: usize = 12;

/// At most the real key and one duress key (DESIGN 5.4).
const MAX_SUBMITTER_KEYS: usize = 2;

/// Largest encrypted note about the submitter keys.
const MAX_NOTE_BYTES: usize = 4096;

pub(super) fn parse_json<V: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<V> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
}

/// Parse a signed body that the custody log keeps, refusing any that is
/// not byte for byte its own compact serialisation: no padding, no
/// reordering, no field the API does not define (`deny_unknown_fields`).
/// The log then holds only what each request needs, and one meaning has
/// one form.
pub(super) fn parse_canonical<V: for<'de> Deserialize<'de> + serde::Serialize>(body: &[u8]) -> Result<V> {
    let value: V = parse_json(body)?;
    if serde_json::to_vec(&value).expect("wire types serialise") != body {
        return Err(ApiError::BodyNotCanonical);
    }
    Ok(value)
}

pub(super) fn valid_case_id(id: &str) -> bool {
    id.len() == CASE_ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(super) fn load_case(state: &AppState, case_id: &str) -> Result<CaseRecord> {
    if !valid_case_id(case_id) {
        return Err(ApiError::NotFound("case"));
    }
    state
        .vault
        .store
        .get_json(T::Cases, case_id)?
        .ok_or(ApiError::NotFound("case"))
}

pub(super) fn access(state: &AppState, case_id: &str, actor: &Actor) -> Result<CaseAccess> {
    Ok(CaseAccess {
        holds_envelope: state.vault.store.holds_envelope(case_id, actor.key_id().as_str())?,
    })
}

/// Load a case and the actor's access to it. A case the actor may not see
/// is "not found", exactly like one that does not exist, so no refusal
/// tells an outsider that a case id is real.
pub(super) fn visible_case(state: &AppState, case_id: &str, actor: &Actor) -> Result<(CaseRecord, CaseAccess)> {
    let case = load_case(state, case_id)?;
    let acc = access(state, case_id, actor)?;
    if !policy::may_view_case(actor, case_id, acc) {
        return Err(ApiError::NotFound("case"));
    }
    Ok((case, acc))
}

pub(super) fn with_body(mut req: SignedRequest, body: &[u8]) -> SignedRequest {
    req.body = Some(B64.encode(body));
    req
}

fn decode_b64(what: &'static str, s: &str, max: usize) -> Result<Vec<u8>> {
    let raw = B64
        .decode(s)
        .map_err(|_| ApiError::BadRequest(format!("{what} is not base64")))?;
    if raw.is_empty() || raw.len() > max {
        return Err(ApiError::TooLarge(format!("{what} must be 1 to {max} bytes")));
    }
    Ok(raw)
}

/// Append the events with the batch, release the writer, make it durable.
/// Only then may the caller acknowledge. Each event's actor is checked
/// again first, under the lock (see [`still_allowed`]).
pub(super) async fn log_and_flush(
    state: &AppState,
    guard: WriterGuard<'_>,
    batch: Batch,
    drafts: Vec<EventDraft>,
) -> Result<Vec<Receipt>> {
    for d in &drafts {
        still_allowed(&state.vault.store, d)?;
    }
    let receipts = state.vault.store.append(&guard, batch, drafts, &state.vault.signer)?;
    drop(guard);
    state.vault.store.flush().await?;
    state.witnesses.wake();
    Ok(receipts)
}

/// Whether a draft may still be logged, checked under the writer lock: its
/// request has not expired, and its actor may still act. The signature was
/// checked before the lock, and a removal or a revocation may have landed
/// in between. A principal must still be
/// registered, and a lawyer acting on a case must still hold it; submitter
/// keys are never removed. Without this, an event by a key the log had
/// just removed would fail every later audit, and a revoked lawyer would
/// get one more download.
fn still_allowed(store: &store::Store, d: &EventDraft) -> Result<()> {
    let Some(request) = &d.request else {
        return Ok(());
    };
    // An event is dated when it is logged, and auditors refuse one dated
    // after its request expired: a request that waited past its expiry
    // (behind a slow body, say) is refused, and the client signs anew.
    if request.parsed()?.expires <= super::auth::unix_now() {
        return Err(crate::httpsig::SignatureError::Expired.into());
    }
    if let Some(rec) = store.get_json::<RegistryRecord>(T::Registry, &d.actor)? {
        let on_case = d.case != VAULT_CASE;
        if on_case && rec.principal.role == Role::Lawyer && !store.holds_envelope(&d.case, &d.actor)? {
            return Err(ApiError::NotFound("case"));
        }
        return Ok(());
    }
    if d.action == Action::CaseCreated || store.submitter_case(&d.actor)?.is_some() {
        return Ok(());
    }
    Err(ApiError::UnknownKey)
}

pub(super) fn draft(
    case: &str,
    actor: &Actor,
    action: Action,
    objects: Vec<String>,
    details: serde_json::Value,
    request: SignedRequest,
) -> EventDraft {
    EventDraft {
        case: case.to_owned(),
        actor: actor.key_id().to_string(),
        action,
        objects,
        details,
        request: Some(request),
    }
}

fn one(mut receipts: Vec<Receipt>) -> Receipt {
    receipts.pop().expect("one event appended")
}

/// No route: a signed request whose target is not canonical is told so
/// (as on any route), so that a client learns why its signed request
/// went nowhere; anything else is "not found".
pub(super) async fn not_found(uri: axum::http::Uri, headers: HeaderMap) -> ApiError {
    let signed = headers.contains_key("signature") || headers.contains_key("signature-input");
    if signed && super::auth::check_target(&uri, None).is_err() {
        return ApiError::TargetNotCanonical;
    }
    ApiError::NotFound("route")
}

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

pub(super) async fn create_case(State(state): State<Arc<AppState>>, req: axum::extract::Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    // The opener's keys are in the body, so its signature can be checked
    // only once the body is read. The proof-of-work stamp comes first: it
    // is bound to the body's SHA-256, which the signed Content-Digest names,
    // so an anonymous sender without one costs the vault a request head.
    if !headers.contains_key("signature") || !headers.contains_key("signature-input") {
        return Err(SignatureError::Missing.into());
    }
    super::auth::check_target(uri, None)?;
    let stamp = headers
        .get(crate::stamp::HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            mismatch(
                "stamp_missing",
                "opening a case needs a proof-of-work stamp (Custos-Stamp header)",
            )
        })?;
    let digest =
        super::auth::digest_header(headers).ok_or_else(|| SignatureError::MissingComponent("content-digest".into()))?;
    let stamp_hash = crate::stamp::check_digest(
        stamp,
        &state.vault.description.origin,
        &digest,
        state.stamp_bits,
        super::auth::unix_now(),
    )
    .map_err(|e| mismatch("stamp_invalid", e.to_string()))?;
    // Each stamp is good for one request, spent as soon as it is seen (it is
    // bound to this body, so only a replay can carry it again), and
    // remembered for as long as it could still pass the time check.
    let stamp_expiry = super::auth::unix_now() + 2 * crate::stamp::MAX_SKEW_SECONDS;
    if !state
        .vault
        .store
        .remember_nonce("stamp", &hex::encode(stamp_hash), stamp_expiry)?
    {
        return Err(conflict("stamp_reused", "this proof-of-work stamp was already used"));
    }
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let (method, uri, headers) = (method.clone(), uri.clone(), headers.clone());
    let (body, _budget) = super::read_body(&state, axum::extract::Request::from_parts(parts, body)).await?;
    // The stamp was judged by this digest: the body must be what it names.
    if <sha2::Sha256 as sha2::Digest>::digest(&body).as_slice() != digest {
        return Err(SignatureError::DigestMismatch.into());
    }
    let req: CreateCase = parse_canonical(&body)?;
    if req.submitter_keys.is_empty() || req.submitter_keys.len() > MAX_SUBMITTER_KEYS {
        return Err(ApiError::BadRequest("one or two submitter keys are required".into()));
    }
    let mut keys = Vec::new();
    for k in &req.submitter_keys {
        let vk = identity::parse_verifying_key(&k.verifying_key).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        identity::parse_recipient(&k.recipient).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        keys.push(vk);
    }
    identity::parse_recipient(&req.case_recipient).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (actor, signed) = authenticate(&state, &method, &uri, &headers, route.as_deref(), &keys)?;
    check_body(&signed, &body)?;
    if !matches!(&actor, Actor::Submitter { case_id, .. } if case_id.is_empty()) {
        return Err(ApiError::Forbidden("a case is opened by a new submitter key"));
    }
    if let Some(note) = &req.note {
        decode_b64("note", note, MAX_NOTE_BYTES)?;
    }
    let store = &state.vault.store;
    let mut submitter_keys: Vec<SubmitterKey> = req
        .submitter_keys
        .iter()
        .zip(&keys)
        .map(|(k, vk)| SubmitterKey {
            key_id: KeyId::of(vk),
            verifying_key: k.verifying_key.clone(),
            recipient: k.recipient.clone(),
        })
        .collect();
    // An unordered set: stored in key id order, so the order a client sent
    // them in (real key first, say) leaves no trace.
    submitter_keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    if submitter_keys.len() == 2 && submitter_keys[0].key_id == submitter_keys[1].key_id {
        return Err(ApiError::BadRequest("submitter keys must differ".into()));
    }
    // Every intake principal and every submitter key must get an envelope,
    // and nobody else: the server cannot add a reader, and neither can a
    // submitter's client by accident. Read under the writer lock, so that a
    // principal removed meanwhile gets no envelope of the new case.
    let guard = store.writer().await;
    let mut expected: Vec<KeyId> = store
        .scan_json::<RegistryRecord>(T::Registry, "")?
        .into_iter()
        .filter(|r| r.principal.intake)
        .map(|r| r.principal.key_id)
        .collect();
    if expected.is_empty() {
        return Err(conflict(
            "no_intake",
            "this vault has no intake principal yet; nobody could read the case",
        ));
    }
    expected.extend(submitter_keys.iter().map(|k| k.key_id.clone()));
    let mut given: Vec<KeyId> = req.envelopes.iter().map(|e| e.key_id.clone()).collect();
    expected.sort();
    given.sort();
    if expected != given {
        return Err(ApiError::Mismatch {
            code: "envelopes_mismatch",
            message: "envelopes must be given for exactly the intake principals and the submitter keys".into(),
        });
    }
    // The duress note's key goes to the intake principals and never to a
    // submitter key.
    let mut note_holders: Vec<KeyId> = req.note_envelopes.iter().map(|e| e.key_id.clone()).collect();
    note_holders.sort();
    let intake: Vec<KeyId> = expected
        .iter()
        .filter(|k| !submitter_keys.iter().any(|s| s.key_id == **k))
        .cloned()
        .collect();
    let notes_ok = match &req.note {
        None => note_holders.is_empty(),
        Some(_) => note_holders == intake,
    };
    if !notes_ok {
        return Err(mismatch(
            "note_envelopes_mismatch",
            "a note needs its key wrapped to exactly the intake principals",
        ));
    }

    let case_id = hex::encode(rand::random::<[u8; CASE_ID_BYTES]>());
    for k in &submitter_keys {
        if store.key_is_known(k.key_id.as_str())? {
            return Err(conflict(
                "key_in_use",
                "a submitter key is already registered; generate a new codename",
            ));
        }
    }
    let mut batch = Batch::default();
    for e in &req.envelopes {
        let env = decode_b64("envelope", &e.envelope, MAX_ENVELOPE_BYTES)?;
        batch.put(T::Envelopes, pair_key(&case_id, e.key_id.as_str()), env);
    }
    for e in &req.note_envelopes {
        let env = decode_b64("note envelope", &e.envelope, MAX_ENVELOPE_BYTES)?;
        batch.put(T::NoteEnvelopes, pair_key(&case_id, e.key_id.as_str()), env);
    }
    for k in &submitter_keys {
        batch.put(T::Submitters, k.key_id.as_str(), case_id.as_bytes());
    }
    let record = CaseRecord {
        case_id: case_id.clone(),
        created: crate::custody::now_rfc3339(),
        status: "open".into(),
        case_recipient: req.case_recipient.clone(),
        submitter_keys,
        note: req.note.clone(),
        withdrawal: None,
    };
    batch.put_json(T::Cases, case_id.as_bytes(), &record);
    let details = serde_json::json!({ "envelopes": given });
    let d = draft(
        &case_id,
        &actor,
        Action::CaseCreated,
        vec![],
        details,
        with_body(signed, &body),
    );
    let receipt = one(log_and_flush(&state, guard, batch, vec![d]).await?);
    Ok((StatusCode::CREATED, Json(CaseCreated { case_id, receipt })).into_response())
}

pub(super) async fn list_cases(
    State(state): State<Arc<AppState>>,
    Signed { actor, .. }: Signed,
) -> Result<Json<Vec<CaseSummary>>> {
    let scope = policy::list_scope(&actor).ok_or(ApiError::Forbidden("this role does not list cases"))?;
    let store = &state.vault.store;
    let mut out = Vec::new();
    for case in store.scan_json::<CaseRecord>(T::Cases, "")? {
        if scope == ListScope::Holding && !access(&state, &case.case_id, &actor)?.holds_envelope {
            continue;
        }
        let objects = store.case_object_count(&case.case_id);
        out.push(CaseSummary {
            case_id: case.case_id,
            status: case.status,
            created: case.created,
            objects,
        });
    }
    Ok(Json(out))
}

pub(super) async fn case_detail(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    Signed { actor, .. }: Signed,
) -> Result<Json<CaseDetail>> {
    let (case, _) = visible_case(&state, &case_id, &actor)?;
    let store = &state.vault.store;
    let mut objects: Vec<CaseObject> = store.scan_json(T::CaseObjects, format!("{case_id}/"))?;
    // What would tell one codename that the other is in use stays hidden
    // from submitters: who added each object, which key withdrew.
    let is_submitter = matches!(actor, Actor::Submitter { .. });
    if is_submitter {
        for o in &mut objects {
            o.added_by = None;
        }
    }
    let envelope = store
        .envelope(&case_id, actor.key_id().as_str())?
        .map(|e| B64.encode(e));
    let holders = holders(store, &case_id)?;
    let note_envelope = store
        .note_envelope(&case_id, actor.key_id().as_str())?
        .map(|e| B64.encode(e));
    Ok(Json(CaseDetail {
        case_id,
        status: case.status,
        created: case.created,
        case_recipient: case.case_recipient,
        objects,
        envelope,
        holders,
        submitter_recipients: case.submitter_keys.iter().map(|k| k.recipient.clone()).collect(),
        note: case.note,
        note_envelope,
        withdrawal: case.withdrawal.map(|w| WithdrawalView {
            time: w.time,
            key_id: (!is_submitter).then_some(w.key_id),
            reason: w.reason,
        }),
    }))
}

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
/// download), checking every chunk against its hash on the way and, for a
/// whole object, the object's hash too.
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
    // Find the chunk the range starts in (chunks are up to CHUNK_SIZE each,
    // as PATCHes cut them), and check it before anything is logged or
    // sent, so a damaged object is a clean error, not a cut-off download.
    let (mut start, mut skipped) = (0u64, 0u64);
    let mut first = None;
    while start < manifest.chunks {
        let chunk = store.object_chunk(&object, start)?;
        if skipped + chunk.len() as u64 > from {
            first = Some(chunk[(from - skipped) as usize..].to_vec());
            break;
        }
        skipped += chunk.len() as u64;
        start += 1;
    }

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

    let stream_state = state.clone();
    let chunks = manifest.chunks;
    let whole = from == 0;
    let stream = futures_util::stream::unfold(
        (start, first, sha2::Sha256::default()),
        move |(i, first, mut hasher)| {
            let state = stream_state.clone();
            async move {
                use sha2::Digest;
                if i >= chunks {
                    return None;
                }
                let chunk = match first {
                    Some(c) => Ok(c),
                    None => state.vault.store.object_chunk(&object, i),
                };
                let item = chunk.and_then(|c| {
                    hasher.update(&c);
                    if whole && i + 1 == chunks && hasher.clone().finalize().as_slice() != object {
                        return Err(store::StoreError::Integrity(format!(
                            "object {} does not match its hash",
                            hex::encode(object)
                        )));
                    }
                    Ok(Bytes::from(c))
                });
                let item = item.map_err(|e| {
                    tracing::error!(error = %e, "aborting a download");
                    std::io::Error::other("stored data failed its integrity check")
                });
                let next = if item.is_ok() { i + 1 } else { chunks };
                Some((item, (next, None, hasher)))
            }
        },
    );
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
    for holder in holders(store, &case_id)? {
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

/// The key ids holding an envelope of the case.
fn holders(store: &store::Store, case_id: &str) -> Result<Vec<KeyId>> {
    Ok(store
        .paired_with(T::Envelopes, case_id)?
        .into_iter()
        .filter_map(|id| id.parse().ok())
        .collect())
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
        for k in store.tree(t).iter().keys() {
            let k = k.map_err(store::StoreError::from)?;
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

/// A submitter withdraws the complaint, with either of the case's keys (the
/// server cannot tell a duress key from the real one, and treats both the
/// same). Nothing is deleted; the case's status becomes `withdrawn`.
pub(super) async fn withdraw(
    State(state): State<Arc<AppState>>,
    Path(case_id): Path<String>,
    SignedBody {
        actor,
        request: signed,
        body,
        ..
    }: SignedBody,
) -> Result<Response> {
    let req: WithdrawBody = parse_canonical(&body)?;
    visible_case(&state, &case_id, &actor)?;
    let Actor::Submitter { key_id, case_id: own } = &actor else {
        return Err(ApiError::Forbidden(
            "only the submitter, signing with a codename key of this case, can withdraw it",
        ));
    };
    if *own != case_id {
        return Err(ApiError::NotFound("case"));
    }
    if let Some(reason) = &req.reason {
        decode_b64("reason", reason, MAX_NOTE_BYTES)?;
    }
    let store = &state.vault.store;
    let guard = store.writer().await;
    let mut case = load_case(&state, &case_id)?;
    if case.withdrawal.is_some() {
        return Err(conflict("already_withdrawn", "this case was already withdrawn"));
    }
    case.status = "withdrawn".into();
    case.withdrawal = Some(store::Withdrawal {
        time: crate::custody::now_rfc3339(),
        key_id: key_id.clone(),
        reason: req.reason.clone(),
    });
    let mut batch = Batch::default();
    batch.put_json(T::Cases, case_id.as_bytes(), &case);
    let d = draft(
        &case_id,
        &actor,
        Action::Withdrawn,
        vec![],
        serde_json::json!({}),
        with_body(signed, &body),
    );
    let receipt = one(log_and_flush(&state, guard, batch, vec![d]).await?);
    Ok((StatusCode::CREATED, Json(ReceiptBody { receipt })).into_response())
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

fn proof_body(proof: Vec<crate::custody::merkle::Hash>) -> Json<ProofBody> {
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

pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}
