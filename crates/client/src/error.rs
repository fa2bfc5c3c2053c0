//! The client's one error type: what the vault refused (its stable code
//! and message, read from the error body), what failed on the way, and what
//! did not verify. Maps responses to errors; makes no request itself.

use reqwest::StatusCode;

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Client errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused the request.
    #[error("server refused ({status}): {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Server's message.
        message: String,
    },
    /// Network or protocol failure, said once: what failed and its
    /// innermost cause (reqwest repeats itself down its chain).
    #[error("{}", http_failure(.0))]
    Http(reqwest::Error),
    /// Something the server sent does not verify.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Trust pinning problem.
    #[error("trust: {0}")]
    Trust(String),
    /// Local encryption or decryption failed.
    #[error(transparent)]
    Envelope(#[from] custos_core::envelope::EnvelopeError),
    /// Local file problem.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A usage problem (bad argument).
    #[error("{0}")]
    Usage(String),
    /// Another run of this program holds what this one needs (an upload's
    /// journal); said in one line that names it.
    #[error("{0}")]
    Busy(String),
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        ClientError::Http(e)
    }
}

/// "cannot reach the vault at URL: connection refused", or what else went
/// wrong with the exchange, ending with the innermost cause only.
fn http_failure(e: &reqwest::Error) -> String {
    let cause = std::iter::successors(std::error::Error::source(e), |c| c.source())
        .last()
        .map_or_else(|| e.to_string(), ToString::to_string);
    let what = if e.is_decode() || e.is_body() {
        "the vault's answer could not be read"
    } else if e.is_timeout() {
        "the vault did not answer in time"
    } else {
        "cannot reach the vault"
    };
    match e.url() {
        Some(u) => format!("{what} at {}: {cause}", u.origin().ascii_serialization()),
        None => format!("{what}: {cause}"),
    }
}

impl ClientError {
    /// Whether looking again later may succeed: the exchange failed or
    /// the vault refused. What did not verify, or a trust pin that does
    /// not hold, is never retried: the host is not to be believed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Http(_) | ClientError::Api { .. })
    }

    /// Whether the exchange itself broke (no connection, a connection cut,
    /// a body that stopped): what a transfer takes up again from where the
    /// vault stands. A refusal by the vault is not.
    pub fn is_broken_exchange(&self) -> bool {
        // reqwest files a body cut short under "decode" too, beside JSON
        // that does not parse; only the latter is the vault's answer.
        let unparsed = |e: &reqwest::Error| {
            e.is_decode() && std::error::Error::source(e).is_some_and(|s| s.is::<serde_json::Error>())
        };
        matches!(self, ClientError::Http(e) if !e.is_builder() && !unparsed(e))
    }

    /// The server's error code, if the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The response if it is a success; otherwise the vault's refusal, read
/// from its error body (or, for bodies without JSON, its header).
pub(super) async fn check(resp: reqwest::Response) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let header_code = resp
        .headers()
        .get("custos-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => (
            v["error"].as_str().unwrap_or("unknown").to_owned(),
            v["message"].as_str().unwrap_or("").to_owned(),
        ),
        Err(_) => {
            // Bodies refused by the size limit layer carry no JSON.
            let fallback = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "unknown"
            };
            (
                header_code.unwrap_or_else(|| fallback.to_owned()),
                text.chars().take(200).collect(),
            )
        }
    };
    Err(ClientError::Api {
        status: status.as_u16(),
        code,
        message,
    })
}
