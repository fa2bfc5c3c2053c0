//! Request authentication: rebuild the RFC 9421 signature base from the
//! request as received, check time, digest, key, signature and nonce, and
//! name the actor. Nothing about the sender's network identity is read.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use ed25519_dalek::VerifyingKey;

use super::error::ApiError;
use super::AppState;
use crate::httpsig::{self, SignatureError, SignedRequest};
use crate::identity::KeyId;
use crate::policy::Actor;
use crate::store::{RegistryRecord, T};

/// Unix time now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The full URI the client signed: the configured public URL, or the
/// request's own authority, plus path and query.
fn target_uris(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<Vec<String>, ApiError> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if !state.public_urls.is_empty() {
        return Ok(state.public_urls.iter().map(|base| format!("{base}{path}")).collect());
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .ok_or_else(|| ApiError::BadRequest("request has no Host".into()))?;
    Ok(vec![format!("http://{host}{path}")])
}

/// Headers whose value changes what a request does; whenever one is sent,
/// the signature must cover it.
const MEANINGFUL_HEADERS: [&str; 2] = ["upload-offset", "upload-length"];

/// Authenticate a request. On success returns the actor and the signed
/// request as it will be stored in a custody event (without body).
///
/// `new_keys` are accepted for this request only, when the key id is not
/// registered: the submitter keys of a case being created.
pub fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    new_keys: &[VerifyingKey],
) -> Result<(Actor, SignedRequest), ApiError> {
    let input = headers.get("signature-input").and_then(|v| v.to_str().ok());
    let sig = headers.get("signature").and_then(|v| v.to_str().ok());
    let (Some(input), Some(sig)) = (input, sig) else {
        return Err(SignatureError::Missing.into());
    };
    let (params, params_text, sig_b64) = httpsig::parse_headers(input, sig)?;
    params.check_time(unix_now())?;

    let has_body = !body.is_empty() || matches!(*method, Method::POST | Method::PATCH | Method::PUT);
    let mut required = vec!["@method", "@target-uri"];
    if has_body {
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
    if params.components.iter().any(|c| c == "content-digest") {
        let i = params
            .components
            .iter()
            .position(|c| c == "content-digest")
            .expect("just checked");
        if values[i] != httpsig::content_digest(body) {
            return Err(SignatureError::DigestMismatch.into());
        }
    }

    let key_id: KeyId = params.keyid.parse().map_err(|_| ApiError::UnknownKey)?;
    let (actor, key) = if let Some(rec) = state
        .vault
        .store
        .get_json::<RegistryRecord>(T::Registry, key_id.as_str())?
    {
        let key = rec.principal.card.verifying_key;
        (Actor::Principal(Box::new(rec.principal)), key)
    } else if let Some(case_id) = state.vault.store.tree(T::Submitters).get(key_id.as_str())? {
        let case_id = String::from_utf8_lossy(&case_id).into_owned();
        let case: crate::store::CaseRecord = state
            .vault
            .store
            .get_json(T::Cases, &case_id)?
            .ok_or(ApiError::UnknownKey)?;
        let k = case
            .submitter_keys
            .iter()
            .find(|k| k.key_id == key_id)
            .ok_or(ApiError::UnknownKey)?;
        let key = crate::identity::parse_verifying_key(&k.verifying_key).map_err(|_| ApiError::UnknownKey)?;
        (
            Actor::Submitter {
                key_id: key_id.clone(),
                case_id,
            },
            key,
        )
    } else if let Some(key) = new_keys.iter().find(|k| KeyId::of(k) == key_id) {
        (
            Actor::Submitter {
                key_id: key_id.clone(),
                case_id: String::new(),
            },
            *key,
        )
    } else {
        return Err(ApiError::UnknownKey);
    };

    // The request must be signed for one of the vault's addresses; the
    // stored request names the one it was signed for.
    let uri_slot = params.components.iter().position(|c| c == "@target-uri");
    let mut stored = SignedRequest {
        params: params_text,
        values,
        signature: sig_b64,
        body: None,
    };
    let mut verified = Err(SignatureError::Invalid);
    for candidate in target_uris(state, uri, headers)? {
        if let Some(i) = uri_slot {
            stored.values[i] = candidate;
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
        let (actor, request) = authenticate(state, &parts.method, &parts.uri, &parts.headers, &[], &[])?;
        Ok(Signed { actor, request })
    }
}

/// A request authenticated by its signature, with its body (covered by the
/// signed `Content-Digest`). The stored request carries no body; handlers
/// add it where the custody event needs it.
pub struct SignedBody {
    /// Who signed it.
    pub actor: Actor,
    /// The signed request.
    pub request: SignedRequest,
    /// The body.
    pub body: Bytes,
}

impl axum::extract::FromRequest<Arc<AppState>> for SignedBody {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (method, uri, headers) = (req.method().clone(), req.uri().clone(), req.headers().clone());
        let super::Body(body) = <super::Body as axum::extract::FromRequest<_>>::from_request(req, state).await?;
        let (actor, request) = authenticate(state, &method, &uri, &headers, &body, &[])?;
        Ok(SignedBody { actor, request, body })
    }
}
