//! The one mapping from failures to HTTP status and a stable JSON body
//! `{ "error": code, "message": text }`. Detail that could help an attacker
//! (store paths, internal causes) goes to the server's log, never the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::store::StoreError;
use custos_core::httpsig::SignatureError;

/// Every way a request can fail, with its stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Request signature problems, one code each.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A signed request's target is not the one form of its route: a query
    /// where the route takes none, a percent-escape, a dot or empty
    /// segment. What the router would ignore must not be signed and logged.
    #[error(
        "the signed request's target must be its route's canonical path: no query where the route takes none, \
         no percent-escape, no empty, '.' or '..' segment, no trailing slash"
    )]
    TargetNotCanonical,
    /// A signed JSON body is not the compact serialisation of its fields
    /// in order, which is all the log keeps room for.
    #[error("a signed body must be compact JSON with its fields in the API's order and nothing else")]
    BodyNotCanonical,
    /// A signed HEAD where the route has none of its own (the router would
    /// run the GET's action, and log it, under another method).
    #[error("this route takes no signed HEAD; send GET")]
    MethodNotAllowed,
    /// The signing key is neither a principal nor a submitter of this vault.
    #[error("the signing key is not known to this vault")]
    UnknownKey,
    /// The nonce was used before.
    #[error("this signed request was already used")]
    Replayed,
    /// Authenticated, but policy says no.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such thing (or not visible to this actor).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// The content does not match what the client declared.
    #[error("{message}")]
    Mismatch {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// tus `Upload-Checksum` mismatch (tus status 460).
    #[error("upload checksum does not match the data")]
    ChecksumMismatch,
    /// Body or upload too large.
    #[error("{0}")]
    TooLarge(String),
    /// An upload would take the case past its quota (bytes).
    #[error("this case may hold at most {0} bytes, stored and being uploaded")]
    CaseQuota(u64),
    /// The vault holds as many request bodies as it may at once.
    #[error("the vault is receiving as much as it can hold; send this again in a moment")]
    Busy,
    /// A resumed download asked to start at or past the object's end
    /// (its size).
    #[error("the object is {0} bytes; the range starts past its end")]
    RangeNotSatisfiable(u64),
    /// Missing or wrong `Tus-Resumable`.
    #[error("this server speaks tus 1.0.0")]
    TusVersion,
    /// Wrong content type.
    #[error("{0}")]
    UnsupportedMedia(&'static str),
    /// The request body stalled for longer than the body timeout (seconds).
    #[error("the request body sent nothing for {0} s; send the request again")]
    BodyTimeout(u64),
    /// The server is stopping and takes no new requests.
    #[error("the vault is restarting and takes no new requests; send this one again in a minute")]
    ShuttingDown,
    /// The store failed; details are logged, not returned.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// Stable error code and HTTP status.
    pub fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::TargetNotCanonical => (StatusCode::BAD_REQUEST, "target_not_canonical"),
            ApiError::BodyNotCanonical => (StatusCode::BAD_REQUEST, "body_not_canonical"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Signature(e) => {
                let (status, code) = e.status_and_code();
                (StatusCode::from_u16(status).expect("a valid status"), code)
            }
            ApiError::UnknownKey => (StatusCode::UNAUTHORIZED, "unknown_key"),
            ApiError::Replayed => (StatusCode::UNAUTHORIZED, "signature_replayed"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Mismatch { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::ChecksumMismatch => (StatusCode::from_u16(460).expect("valid status"), "checksum_mismatch"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::CaseQuota(_) => (StatusCode::PAYLOAD_TOO_LARGE, "case_quota_exceeded"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "server_busy"),
            ApiError::RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            ApiError::TusVersion => (StatusCode::PRECONDITION_FAILED, "tus_version"),
            ApiError::UnsupportedMedia(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ApiError::Store(StoreError::Integrity(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"),
            ApiError::Store(StoreError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            ApiError::Store(e) => match e.io_kind() {
                Some(std::io::ErrorKind::StorageFull) => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
                Some(std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "storage_read_only")
                }
                _ => (StatusCode::SERVICE_UNAVAILABLE, "storage_error"),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.code();
        let message = match &self {
            ApiError::Store(StoreError::Integrity(detail)) => {
                tracing::error!(%detail, "stored data failed its integrity check");
                "stored data failed its integrity check; the operator has been told".to_owned()
            }
            ApiError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "the chunk store is unavailable");
                "the vault's evidence store cannot be reached; nothing of this request was acknowledged; \
                 try again later"
                    .to_owned()
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                match e.io_kind() {
                    Some(std::io::ErrorKind::StorageFull) => {
                        "the vault's disk is full; nothing of this request was acknowledged; try again later"
                    }
                    Some(std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied) => {
                        "the vault cannot write to its disk; nothing of this request was acknowledged; try again later"
                    }
                    _ => "the vault could not complete the request; nothing was acknowledged",
                }
                .to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (status, Json(serde_json::json!({ "error": code, "message": message }))).into_response();
        resp.headers_mut().insert(
            "tus-resumable",
            axum::http::HeaderValue::from_static(custos_core::protocol::TUS_VERSION),
        );
        // HEAD replies carry no body, so the code also travels as a header.
        resp.headers_mut()
            .insert("custos-error", axum::http::HeaderValue::from_static(code));
        if matches!(self, ApiError::Busy | ApiError::Store(StoreError::Unavailable(_))) {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        if let ApiError::ShuttingDown = self {
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("30"),
            );
        }
        if let ApiError::RangeNotSatisfiable(size) = self {
            resp.headers_mut().insert(
                axum::http::header::CONTENT_RANGE,
                axum::http::HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
        }
        resp
    }
}

/// Shorthand for conflicts.
pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Conflict {
        code,
        message: message.into(),
    }
}

/// Shorthand for content mismatches.
pub fn mismatch(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Mismatch {
        code,
        message: message.into(),
    }
}
