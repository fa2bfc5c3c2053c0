//! How a signed change becomes logged events and a durable receipt: its
//! body parsed in its one canonical form, its events drafted, the actor's
//! right to act checked again under the writer lock, then appended and
//! flushed before anything is answered.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;
use crate::policy::Actor;
use crate::store::{self, Batch, RegistryRecord, WriterGuard, T};
use custos_core::custody::{Action, EventDraft, Receipt, VAULT_CASE};
use custos_core::httpsig::SignedRequest;
use custos_core::identity::Role;

type Result<T, E = ApiError> = std::result::Result<T, E>;

fn parse_json<V: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<V> {
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

pub(super) fn with_body(mut req: SignedRequest, body: &[u8]) -> SignedRequest {
    req.body = Some(B64.encode(body));
    req
}

pub(super) fn decode_b64(what: &'static str, s: &str, max: usize) -> Result<Vec<u8>> {
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
    if request.parsed()?.expires <= custos_core::custody::unix_now() {
        return Err(custos_core::httpsig::SignatureError::Expired.into());
    }
    if let Some(rec) = store.get_json::<RegistryRecord>(T::Registry, &d.actor)? {
        let on_case = d.case != VAULT_CASE;
        let case = custos_core::custody::case_of_chain(&d.case);
        if on_case && rec.principal.role == Role::Lawyer && !store.holds_envelope(case, &d.actor)? {
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

pub(super) fn one(mut receipts: Vec<Receipt>) -> Receipt {
    receipts.pop().expect("one event appended")
}
