//! Cases: opening one (anonymous, stamped), listing and showing them to
//! whoever may see them, and withdrawal. Owns the one answer for a case
//! that does not exist or is not the caller's (`visible_case`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::auth::{authenticate, check_body, Signed, SignedBody};
use super::error::{conflict, mismatch, ApiError};
use super::logged::{decode_b64, draft, log_and_flush, one, parse_canonical, with_body};
use super::wire::*;
use super::AppState;
use crate::policy::{self, Actor, CaseAccess, ListScope};
use crate::store::{self, pair_key, Batch, CaseObject, CaseRecord, RegistryRecord, SubmitterKey, T};
use custos_core::custody::Action;
use custos_core::envelope::MAX_ENVELOPE_BYTES;
use custos_core::httpsig::SignatureError;
use custos_core::identity::{self, KeyId};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Bytes of randomness in a case id: 96 bits, unguessable and short enough
/// to read out over a phone.
const CASE_ID_BYTES: usize = 12;

/// At most the real key and one duress key (DESIGN 5.4).
const MAX_SUBMITTER_KEYS: usize = 2;

/// Largest encrypted note about the submitter keys.
const MAX_NOTE_BYTES: usize = 4096;

pub(super) fn valid_case_id(id: &str) -> bool {
    custos_core::protocol::is_lower_hex(id, CASE_ID_BYTES * 2)
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

/// `POST /v1/cases`: open a case. The steps are named below; each refusal
/// leaves the store as it was (but for a spent stamp).
pub(super) async fn create_case(State(state): State<Arc<AppState>>, req: axum::extract::Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let digest = spend_stamp(&state, &parts.uri, &parts.headers)?;
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let (method, uri, headers) = (parts.method.clone(), parts.uri.clone(), parts.headers.clone());
    let (body, _budget) = super::read_body(&state, axum::extract::Request::from_parts(parts, body)).await?;
    let body = body.into_bytes();
    // The stamp was judged by this digest: the body must be what it names.
    if <sha2::Sha256 as sha2::Digest>::digest(&body).as_slice() != digest {
        return Err(SignatureError::DigestMismatch.into());
    }
    let req: CreateCase = parse_canonical(&body)?;
    let keys = opener_keys(&req)?;
    let (actor, signed) = authenticate(&state, &method, &uri, &headers, route.as_deref(), &keys)?;
    check_body(&signed, &body)?;
    if !matches!(&actor, Actor::Submitter { case_id, .. } if case_id.is_empty()) {
        return Err(ApiError::Forbidden("a case is opened by a new submitter key"));
    }
    if let Some(note) = &req.note {
        decode_b64("note", note, MAX_NOTE_BYTES)?;
    }
    let submitter_keys = submitter_records(&req, &keys)?;
    let store = &state.vault.store;
    // Read under the writer lock, so that a principal removed meanwhile
    // gets no envelope of the new case.
    let guard = store.writer().await;
    let wrapped_to = check_envelopes(store, &req, &submitter_keys)?;
    let case_id = hex::encode(rand::random::<[u8; CASE_ID_BYTES]>());
    for k in &submitter_keys {
        if store.key_is_known(k.key_id.as_str())? {
            return Err(conflict(
                "key_in_use",
                "a submitter key is already registered; generate a new codename",
            ));
        }
    }
    let batch = new_case(&case_id, &req, submitter_keys)?;
    let details = serde_json::json!({ "envelopes": wrapped_to });
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

/// Check and spend the request's proof-of-work stamp, before its body is
/// read; returns the body's SHA-256 the signed `Content-Digest` names,
/// which the stamp is bound to. The opener's keys are in the body, so its
/// signature can be checked only once the body is read: the stamp comes
/// first, so an anonymous sender without one costs the vault a request
/// head.
fn spend_stamp(state: &AppState, uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> Result<Vec<u8>> {
    if !headers.contains_key("signature") || !headers.contains_key("signature-input") {
        return Err(SignatureError::Missing.into());
    }
    super::auth::check_target(uri, None)?;
    let stamp = headers
        .get(custos_core::stamp::HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            mismatch(
                "stamp_missing",
                "opening a case needs a proof-of-work stamp (Custos-Stamp header)",
            )
        })?;
    let digest =
        super::auth::digest_header(headers).ok_or_else(|| SignatureError::MissingComponent("content-digest".into()))?;
    let stamp_hash = custos_core::stamp::check_digest(
        stamp,
        &state.vault.description.origin,
        &digest,
        state.stamp_bits,
        custos_core::custody::unix_now(),
    )
    .map_err(|e| mismatch("stamp_invalid", e.to_string()))?;
    // Each stamp is good for one request, spent as soon as it is seen (it is
    // bound to this body, so only a replay can carry it again), and
    // remembered for as long as it could still pass the time check.
    let stamp_expiry = custos_core::custody::unix_now() + 2 * custos_core::stamp::MAX_SKEW_SECONDS;
    if !state
        .vault
        .store
        .remember_nonce("stamp", &hex::encode(stamp_hash), stamp_expiry)?
    {
        return Err(conflict("stamp_reused", "this proof-of-work stamp was already used"));
    }
    state.metrics.stamp(stamp.starts_with("v2 "));
    Ok(digest.to_vec())
}

/// The opener's verifying keys: one or two, each with a valid recipient,
/// and a valid case recipient.
fn opener_keys(req: &CreateCase) -> Result<Vec<ed25519_dalek::VerifyingKey>> {
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
    Ok(keys)
}

/// The submitter keys as stored: an unordered set, kept in key id order,
/// so the order a client sent them in (real key first, say) leaves no
/// trace; two keys must differ.
fn submitter_records(req: &CreateCase, keys: &[ed25519_dalek::VerifyingKey]) -> Result<Vec<SubmitterKey>> {
    let mut records: Vec<SubmitterKey> = req
        .submitter_keys
        .iter()
        .zip(keys)
        .map(|(k, vk)| SubmitterKey {
            key_id: KeyId::of(vk),
            verifying_key: k.verifying_key.clone(),
            recipient: k.recipient.clone(),
        })
        .collect();
    records.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    if records.len() == 2 && records[0].key_id == records[1].key_id {
        return Err(ApiError::BadRequest("submitter keys must differ".into()));
    }
    Ok(records)
}

/// Every intake principal and every submitter key must get an envelope,
/// and nobody else: the server cannot add a reader, and neither can a
/// submitter's client by accident. The duress note's key goes to the
/// intake principals and never to a submitter key. Returns who the case
/// is wrapped to, sorted. Call under the writer lock.
fn check_envelopes(store: &store::Store, req: &CreateCase, submitter_keys: &[SubmitterKey]) -> Result<Vec<KeyId>> {
    let intake: Vec<KeyId> = store
        .scan_json::<RegistryRecord>(T::Registry, "")?
        .into_iter()
        .filter(|r| r.principal.intake)
        .map(|r| r.principal.key_id)
        .collect();
    if intake.is_empty() {
        return Err(conflict(
            "no_intake",
            "this vault has no intake principal yet; nobody could read the case",
        ));
    }
    let mut expected = intake.clone();
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
    let mut note_holders: Vec<KeyId> = req.note_envelopes.iter().map(|e| e.key_id.clone()).collect();
    note_holders.sort();
    let mut intake = intake;
    intake.sort();
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
    Ok(given)
}

/// The records a new case writes: its envelopes, note envelopes, submitter
/// keys and the case itself.
fn new_case(case_id: &str, req: &CreateCase, submitter_keys: Vec<SubmitterKey>) -> Result<Batch> {
    let mut batch = Batch::default();
    for e in &req.envelopes {
        let env = decode_b64("envelope", &e.envelope, MAX_ENVELOPE_BYTES)?;
        batch.put(T::Envelopes, pair_key(case_id, e.key_id.as_str()), env);
    }
    for e in &req.note_envelopes {
        let env = decode_b64("note envelope", &e.envelope, MAX_ENVELOPE_BYTES)?;
        batch.put(T::NoteEnvelopes, pair_key(case_id, e.key_id.as_str()), env);
    }
    for k in &submitter_keys {
        batch.put(T::Submitters, k.key_id.as_str(), case_id.as_bytes());
    }
    let record = CaseRecord {
        case_id: case_id.to_owned(),
        created: custos_core::custody::now_rfc3339(),
        status: "open".into(),
        case_recipient: req.case_recipient.clone(),
        submitter_keys,
        note: req.note.clone(),
        withdrawal: None,
    };
    batch.put_json(T::Cases, case_id.as_bytes(), &record);
    Ok(batch)
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
    let holders = store.holders(&case_id)?;
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
        time: custos_core::custody::now_rfc3339(),
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
