//! Request authentication: rebuild the RFC 9421 signature base from the
//! request's head as received, check the target's form, time, key,
//! signature and nonce, and name the actor, all before any body is read;
//! the body is then checked against the signed `Content-Digest`. Nothing
//! about the sender's network identity is read.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::MatchedPath;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;
use crate::policy::Actor;
use crate::store::{RegistryRecord, T};
use custos_core::httpsig::{self, SignatureError, SignedRequest};
use custos_core::identity::KeyId;

/// The routes whose signed requests carry a query, with the names it may
/// hold, in the one order they may come in, and whether each is required.
/// Every other signed request has none: what the router ignores must not
/// ride along in a signature that the custody log keeps.
const SIGNED_QUERIES: [(&str, &[(&str, bool)]); 2] = [
    ("/v1/log/entries", &[("start", true), ("limit", false)]),
    ("/v1/log/inclusion", &[("index", true), ("size", true)]),
];

/// The one route with a HEAD of its own (tus reports an upload's offset).
pub(super) const TUS_UPLOAD_ROUTE: &str = "/v1/cases/{case}/uploads/{upload}";

/// Refuse a request whose target is not canonical for the route it reached
/// (`route`, the router's template).
pub(super) fn check_target(uri: &Uri, route: Option<&str>) -> Result<(), ApiError> {
    let names = SIGNED_QUERIES
        .iter()
        .find(|(r, _)| Some(*r) == route)
        .map_or(&[][..], |(_, names)| *names);
    if httpsig::canonical_target(uri.path(), uri.query(), names) {
        Ok(())
    } else {
        Err(ApiError::TargetNotCanonical)
    }
}

/// The base URLs (scheme and authority) a request may be signed for: the
/// configured public URLs, or else the addresses the server listens on.
/// Never the request's own `Host`, which anyone may set: a request signed
/// for another vault must not pass here.
fn signing_bases(state: &AppState) -> &[String] {
    if state.public_urls.is_empty() {
        state.listen_urls.get().map_or(&[], Vec::as_slice)
    } else {
        &state.public_urls
    }
}

/// Headers whose value changes what a request does or what it answers;
/// whenever one is sent, the signature must cover it.
const MEANINGFUL_HEADERS: [&str; 4] = ["upload-offset", "upload-length", "range", BACKUP_CHUNKS_HEADER];

/// The header that asks a backup to list its large chunks rather than
/// copy them (`hashes`). A header, not a query: the custody log keeps
/// every signed target, and auditors accept only targets without one.
pub const BACKUP_CHUNKS_HEADER: &str = "custos-backup-chunks";

/// Whether a request of this method carries a body that the signature must
/// cover with `Content-Digest` (even an empty one).
fn carries_body(method: &Method, headers: &HeaderMap) -> bool {
    matches!(*method, Method::POST | Method::PATCH | Method::PUT)
        || headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Authenticate a request from its head alone: the target's form, the
/// signature's time, components, key and value, and its nonce. The body,
/// if any, is read only after this and checked with [`check_body`]. On
/// success returns the actor and the signed request as custody events
/// store it (without body).
///
/// `route` is the router's template for the request (its `MatchedPath`).
/// `new_keys` are accepted for this request only, when the key id is not
/// registered: the submitter keys of a case being created.
pub fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    route: Option<&str>,
    new_keys: &[VerifyingKey],
) -> Result<(Actor, SignedRequest), ApiError> {
    let input = headers.get("signature-input").and_then(|v| v.to_str().ok());
    let sig = headers.get("signature").and_then(|v| v.to_str().ok());
    let (Some(input), Some(sig)) = (input, sig) else {
        return Err(SignatureError::Missing.into());
    };
    check_target(uri, route)?;
    // The router answers HEAD on every GET route; a signed HEAD would be
    // logged as the GET's action under another method, which no auditor
    // could accept. Only tus has a HEAD of its own.
    if *method == Method::HEAD && route != Some(TUS_UPLOAD_ROUTE) {
        return Err(ApiError::MethodNotAllowed);
    }
    let (params, params_text, sig_b64) = httpsig::parse_headers(input, sig)?;
    params.check_time(custos_core::custody::unix_now())?;

    let mut required = vec!["@method", "@target-uri"];
    if carries_body(method, headers) {
        required.push("content-digest");
    }
    required.extend(MEANINGFUL_HEADERS.iter().filter(|h| headers.contains_key(**h)));
    for r in required {
        if !params.components.iter().any(|c| c == r) {
            return Err(SignatureError::MissingComponent(r.to_owned()).into());
        }
    }
    let mut values = Vec::with_capacity(params.components.len());
    for c in &params.components {
        values.push(match c.as_str() {
            "@method" => method.as_str().to_owned(),
            // Filled in below, once per address the vault is reached at.
            "@target-uri" => String::new(),
            header => headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .ok_or(SignatureError::Malformed("a covered header is absent"))?,
        });
    }

    let key_id: KeyId = params.keyid.parse().map_err(|_| ApiError::UnknownKey)?;
    let (actor, key) = signer(state, &key_id, new_keys)?;
    // The key id is a name the request chose; the key is what the vault
    // holds under it. They must agree, whatever a record says.
    if KeyId::of(&key) != key_id {
        return Err(ApiError::UnknownKey);
    }

    // The request must be signed for one of the vault's addresses; the
    // stored request names the one it was signed for.
    let uri_slot = params.components.iter().position(|c| c == "@target-uri");
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut stored = SignedRequest {
        params: params_text,
        values,
        signature: sig_b64,
        body: None,
    };
    let mut verified = Err(SignatureError::Invalid);
    for base in signing_bases(state) {
        if let Some(i) = uri_slot {
            stored.values[i] = format!("{base}{path}");
        }
        verified = stored.verify(&key);
        if verified.is_ok() {
            break;
        }
    }
    verified?;
    // Only a verified request may spend its nonce, so nobody can burn
    // another client's nonces.
    if !state
        .vault
        .store
        .remember_nonce(key_id.as_str(), &params.nonce, params.expires)?
    {
        return Err(ApiError::Replayed);
    }
    Ok((actor, stored))
}

/// Who holds `key_id`, and the key they sign with: a registered principal,
/// a case's submitter key, or one of `new_keys`.
fn signer(state: &AppState, key_id: &KeyId, new_keys: &[VerifyingKey]) -> Result<(Actor, VerifyingKey), ApiError> {
    let store = &state.vault.store;
    if let Some(rec) = store.get_json::<RegistryRecord>(T::Registry, key_id.as_str())? {
        let key = rec.principal.card.verifying_key;
        return Ok((Actor::Principal(Box::new(rec.principal)), key));
    }
    if let Some(case_id) = store.submitter_case(key_id.as_str())? {
        let case: crate::store::CaseRecord = store.get_json(T::Cases, &case_id)?.ok_or(ApiError::UnknownKey)?;
        let k = case
            .submitter_keys
            .iter()
            .find(|k| k.key_id == *key_id)
            .ok_or(ApiError::UnknownKey)?;
        let key = custos_core::identity::parse_verifying_key(&k.verifying_key).map_err(|_| ApiError::UnknownKey)?;
        let actor = Actor::Submitter {
            key_id: key_id.clone(),
            case_id,
        };
        return Ok((actor, key));
    }
    match new_keys.iter().find(|k| KeyId::of(k) == *key_id) {
        Some(key) => Ok((
            Actor::Submitter {
                key_id: key_id.clone(),
                case_id: String::new(),
            },
            *key,
        )),
        None => Err(ApiError::UnknownKey),
    }
}

/// Check a body read after [`authenticate`] against the `Content-Digest`
/// its signature covers. A body the signature does not cover is refused.
pub fn check_body(request: &SignedRequest, body: &[u8]) -> Result<(), ApiError> {
    check_body_hash(request, &Sha256::digest(body).into(), body.is_empty())
}

/// [`check_body`] for a body known by its SHA-256 (`sha256`) and whether
/// it is empty, as a PATCH body read in chunk-sized pieces is.
pub fn check_body_hash(request: &SignedRequest, sha256: &[u8; 32], empty: bool) -> Result<(), ApiError> {
    match request.value("content-digest") {
        Some(digest) if digest == httpsig::content_digest_of(sha256) => Ok(()),
        Some(_) => Err(SignatureError::DigestMismatch.into()),
        None if empty => Ok(()),
        None => Err(SignatureError::MissingComponent("content-digest".into()).into()),
    }
}

/// The SHA-256 a request's `Content-Digest` header names, if it names one.
/// Only what [`check_body`] (or the signature over it) has compared with
/// the body may be trusted as the body's hash.
pub(crate) fn digest_header(headers: &HeaderMap) -> Option<[u8; 32]> {
    use base64::Engine;
    let value = headers.get("content-digest")?.to_str().ok()?.trim();
    let b64 = value.strip_prefix("sha-256=:")?.strip_suffix(':')?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()?
        .try_into()
        .ok()
}

fn route(parts: &Parts) -> Option<&str> {
    parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str)
}

/// A request authenticated by its signature, without a body.
pub struct Signed {
    /// Who signed it.
    pub actor: Actor,
    /// The signed request, as custody events store it.
    pub request: SignedRequest,
}

impl axum::extract::FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (actor, request) = authenticate(state, &parts.method, &parts.uri, &parts.headers, route(parts), &[])?;
        Ok(Signed { actor, request })
    }
}

/// A request authenticated by its signature, with its body (covered by the
/// signed `Content-Digest`), read only once the signature is known good
/// and within the vault's budget of body bytes in flight. The stored
/// request carries no body; handlers add it where the custody event needs
/// it.
pub struct SignedBody {
    /// Who signed it.
    pub actor: Actor,
    /// The signed request.
    pub request: SignedRequest,
    /// The body.
    pub body: Bytes,
    /// This body's share of the budget, given back when the handler ends.
    pub budget: super::BodyBudget,
}

impl axum::extract::FromRequest<Arc<AppState>> for SignedBody {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let (actor, request) = authenticate(state, &parts.method, &parts.uri, &parts.headers, route(&parts), &[])?;
        let (body, budget) = super::read_body(state, axum::extract::Request::from_parts(parts, body)).await?;
        let body = body.into_bytes();
        check_body(&request, &body)?;
        Ok(SignedBody {
            actor,
            request,
            body,
            budget,
        })
    }
}
