//! The typed HTTP client: signs every request (RFC 9421), maps error bodies
//! to [`ClientError::Api`], and streams uploads and downloads from and to
//! files. The CLI, the integration tests and the benches all use it; the
//! workflows built on it (submit, get, audit, ...) are in `flows`.

pub mod export;
pub mod flows;
pub mod progress;
pub mod proven;
pub mod resume;
pub mod submitter;
pub mod trust;

use std::io::{Read, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::custody::Receipt;
use crate::httpsig::{self, SignatureParams};
use crate::identity::{KeyId, Principal};
use crate::protocol::TUS_VERSION;
use crate::wire::*;

/// Validity window of the signatures this client makes.
const SIGNATURE_LIFETIME_SECS: i64 = 60;

/// Data per tus PATCH: one store chunk, whose signed digest is then also
/// the chunk's address, so the vault hashes it once (measured in
/// BENCHMARKS.md: two chunks per PATCH saved 5% of an upload's time and
/// cost 16 MiB more server memory).
pub const PATCH_SIZE: usize = crate::store::CHUNK_SIZE;

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
    Envelope(#[from] crate::envelope::EnvelopeError),
    /// Local file problem.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A usage problem (bad argument).
    #[error("{0}")]
    Usage(String),
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
    /// The server's error code, if the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A request before signing: extra headers, which of them the signature
/// covers, and the body.
#[derive(Default)]
pub struct RequestParts {
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Names of extra headers the signature covers.
    pub covered: Vec<&'static str>,
    /// Body.
    pub body: Option<Vec<u8>>,
}

/// A connection to one vault.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    progress: progress::Sink,
    /// Where the last checkpoint this client accepted from the vault is
    /// kept, so that a later one must extend it (see
    /// [`trust::TrustStore::advance_checkpoint`]).
    pins: Option<trust::TrustStore>,
}

impl Client {
    /// A client for the vault at `base` (scheme and authority, no path).
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder().user_agent("custos").build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            progress: progress::Sink::default(),
            pins: None,
        })
    }

    /// Keep the last accepted checkpoint in `pins`, and hold every later
    /// one to it.
    pub fn with_pins(mut self, pins: trust::TrustStore) -> Self {
        self.pins = Some(pins);
        self
    }

    /// Where this client keeps its last accepted checkpoint, if anywhere.
    pub fn pins(&self) -> Option<&trust::TrustStore> {
        self.pins.as_ref()
    }

    /// Report uploads and downloads to `progress` (the CLI's bar).
    pub fn with_progress(mut self, progress: std::sync::Arc<dyn progress::Progress>) -> Self {
        self.progress = progress::Sink(Some(progress));
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sign the request parts for `method url` with `key`: returns the headers
    /// to add. Public so tests can build altered or replayed requests.
    pub fn signature_headers(
        key: &SigningKey,
        method: &Method,
        url: &str,
        parts: &RequestParts,
        created: i64,
    ) -> Vec<(&'static str, String)> {
        let mut components = vec!["@method".to_owned(), "@target-uri".to_owned()];
        let mut values = vec![method.as_str().to_owned(), url.to_owned()];
        let mut out = Vec::new();
        if let Some(body) = &parts.body {
            // A caller that already hashed the body (a PATCH, whose tus
            // checksum is the same SHA-256) passes the digest as a header.
            let given = parts.headers.iter().find(|(n, _)| *n == "content-digest");
            let digest = match given {
                Some((_, v)) => v.clone(),
                None => httpsig::content_digest(body),
            };
            components.push("content-digest".into());
            values.push(digest.clone());
            if given.is_none() {
                out.push(("content-digest", digest));
            }
        }
        for name in &parts.covered {
            let value = parts
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            components.push((*name).to_owned());
            values.push(value);
        }
        let params = SignatureParams {
            components,
            created,
            expires: created + SIGNATURE_LIFETIME_SECS,
            nonce: hex::encode(rand::random::<[u8; 16]>()),
            keyid: KeyId::of(&key.verifying_key()).to_string(),
        };
        let (input, sig) = httpsig::sign(key, &params, &values);
        out.push(("signature-input", input));
        out.push(("signature", sig));
        out
    }

    /// Send a request, signed with `key` if given; non-2xx becomes an error.
    pub async fn send(
        &self,
        key: Option<&SigningKey>,
        method: Method,
        path: &str,
        mut parts: RequestParts,
    ) -> Result<reqwest::Response> {
        // The server requires a signed digest on every method that may carry
        // a body, even an empty one.
        if parts.body.is_none() && matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            parts.body = Some(Vec::new());
        }
        let url = format!("{}{}", self.base, path);
        let mut rb = self.http.request(method.clone(), &url);
        if let Some(key) = key {
            for (n, v) in Self::signature_headers(
                key,
                &method,
                &url,
                &parts,
                time::OffsetDateTime::now_utc().unix_timestamp(),
            ) {
                rb = rb.header(n, v);
            }
        }
        for (n, v) in &parts.headers {
            rb = rb.header(*n, v);
        }
        if let Some(body) = parts.body {
            rb = rb.body(body);
        }
        check(rb.send().await?).await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        key: Option<&SigningKey>,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T> {
        let parts = RequestParts {
            headers: if body.is_some() {
                vec![("content-type", "application/json".into())]
            } else {
                vec![]
            },
            body: body.map(|b| serde_json::to_vec(b).expect("serialisable")),
            ..Default::default()
        };
        Ok(self.send(key, method, path, parts).await?.json().await?)
    }

    /// Public intake parameters.
    pub async fn intake(&self) -> Result<IntakeParams> {
        self.json(None, Method::GET, "/v1/intake", None::<&()>).await
    }

    /// Open a case, signed with a new submitter key.
    /// Open a case, paying the proof-of-work stamp the vault asks for
    /// (`bits`; minted off the async threads, it takes about 2^bits hashes).
    pub async fn create_case(&self, key: &SigningKey, req: &CreateCase, origin: &str, bits: u8) -> Result<CaseCreated> {
        let body = serde_json::to_vec(req).expect("serialisable");
        let (origin, for_stamp) = (origin.to_owned(), body.clone());
        let stamp = tokio::task::spawn_blocking(move || {
            crate::stamp::mint(
                &origin,
                &for_stamp,
                bits,
                time::OffsetDateTime::now_utc().unix_timestamp(),
            )
        })
        .await
        .map_err(|e| ClientError::Verify(format!("proof-of-work task failed: {e}")))?;
        let parts = RequestParts {
            headers: vec![
                ("content-type", "application/json".into()),
                (crate::stamp::HEADER, stamp),
            ],
            body: Some(body),
            ..Default::default()
        };
        Ok(self
            .send(Some(key), Method::POST, "/v1/cases", parts)
            .await?
            .json()
            .await?)
    }

    /// Withdraw a case, signed by a submitter key.
    pub async fn withdraw(&self, key: &SigningKey, case_id: &str, body: &WithdrawBody) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(
                Some(key),
                Method::POST,
                &format!("/v1/cases/{case_id}/withdraw"),
                Some(body),
            )
            .await?
            .receipt)
    }

    /// Cases visible to `key`.
    pub async fn cases(&self, key: &SigningKey) -> Result<Vec<CaseSummary>> {
        self.json(Some(key), Method::GET, "/v1/cases", None::<&()>).await
    }

    /// One case.
    pub async fn case(&self, key: &SigningKey, case_id: &str) -> Result<CaseDetail> {
        self.json(Some(key), Method::GET, &format!("/v1/cases/{case_id}"), None::<&()>)
            .await
    }

    /// Create a tus upload; returns its path.
    pub async fn create_upload(&self, key: &SigningKey, case_id: &str, length: u64) -> Result<String> {
        let parts = RequestParts {
            headers: vec![
                ("tus-resumable", TUS_VERSION.into()),
                ("upload-length", length.to_string()),
            ],
            covered: vec!["upload-length"],
            body: None,
        };
        let resp = self
            .send(Some(key), Method::POST, &format!("/v1/cases/{case_id}/uploads"), parts)
            .await?;
        resp.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Verify("upload created without a Location".into()))
    }

    /// Send one PATCH at `offset`; returns the new offset.
    pub async fn patch(&self, key: &SigningKey, upload: &str, offset: u64, data: Vec<u8>) -> Result<u64> {
        let sha = B64.encode(Sha256::digest(&data));
        self.patch_hashed(key, upload, offset, data, &sha).await
    }

    /// [`Client::patch`] with the body's SHA-256 (base64) already computed:
    /// it serves as both the tus checksum and the signed `Content-Digest`.
    async fn patch_hashed(&self, key: &SigningKey, upload: &str, offset: u64, data: Vec<u8>, sha: &str) -> Result<u64> {
        let parts = RequestParts {
            headers: vec![
                ("tus-resumable", TUS_VERSION.into()),
                ("upload-offset", offset.to_string()),
                ("upload-checksum", format!("sha256 {sha}")),
                ("content-digest", format!("sha-256=:{sha}:")),
                ("content-type", "application/offset+octet-stream".into()),
            ],
            covered: vec!["upload-offset"],
            body: Some(data),
        };
        let resp = self.send(Some(key), Method::PATCH, upload, parts).await?;
        resp.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Verify("PATCH reply without Upload-Offset".into()))
    }

    /// The durable offset of an upload (tus HEAD).
    pub async fn upload_offset(&self, key: &SigningKey, upload: &str) -> Result<u64> {
        let parts = RequestParts {
            headers: vec![("tus-resumable", TUS_VERSION.into())],
            ..Default::default()
        };
        let resp = self.send(Some(key), Method::HEAD, upload, parts).await?;
        resp.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Verify("HEAD reply without Upload-Offset".into()))
    }

    /// Commit an upload as an object named by its SHA-256.
    pub async fn commit(&self, key: &SigningKey, upload: &str, body: &CommitUpload) -> Result<ObjectCommitted> {
        self.json(Some(key), Method::POST, &format!("{upload}/commit"), Some(body))
            .await
    }

    /// Upload a whole ciphertext file and commit it with its label.
    pub async fn upload_file(
        &self,
        key: &SigningKey,
        case_id: &str,
        path: &Path,
        sha256: &str,
        label: &[u8],
    ) -> Result<ObjectCommitted> {
        let length = std::fs::metadata(path)?.len();
        let upload = self.create_upload(key, case_id, length).await?;
        self.upload_from(key, &upload, path, 0).await?;
        self.commit(
            key,
            &upload,
            &CommitUpload {
                sha256: sha256.to_owned(),
                label: B64.encode(label),
            },
        )
        .await
    }

    /// Send the file at `path` to `upload` from `offset` (where the vault
    /// says the upload stands) to its end.
    ///
    /// The next PATCH is read and hashed while the current one is in
    /// flight, so the disk, the hashing and the vault's fsync overlap.
    pub async fn upload_from(&self, key: &SigningKey, upload: &str, path: &Path, offset: u64) -> Result<()> {
        let mut file = std::fs::File::open(path)?;
        let length = file.metadata()?.len();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset))?;
        let mut meter = self.progress.begin("upload", length);
        meter.advance(offset);
        let mut offset = offset;
        let mut next_piece = read_piece(file);
        while offset < length {
            let (f, buf, sha) = next_piece
                .await
                .map_err(|e| ClientError::Verify(format!("reading task failed: {e}")))??;
            if buf.is_empty() {
                return Err(ClientError::Verify("file shrank during upload".into()));
            }
            let sent = buf.len() as u64;
            next_piece = read_piece(f);
            let next = self.patch_hashed(key, upload, offset, buf, &sha).await?;
            if next != offset + sent {
                return Err(ClientError::Verify(format!(
                    "the vault moved the upload to {next}, not {}",
                    offset + sent
                )));
            }
            meter.advance(sent);
            offset = next;
        }
        Ok(())
    }

    /// Download an object into `out`, hashing as it streams. Returns the
    /// receipt of the access event and the hex SHA-256 of what arrived.
    pub async fn download(
        &self,
        key: &SigningKey,
        case_id: &str,
        object_id: &str,
        out: &mut impl Write,
    ) -> Result<(Receipt, String)> {
        let mut hasher = Sha256::new();
        let receipt = self.download_from(key, case_id, object_id, 0, out, &mut hasher).await?;
        Ok((receipt, hex::encode(hasher.finalize())))
    }

    /// Download an object from byte `offset` on (an HTTP range request, to
    /// resume a cut download) into `out`, feeding `hasher`, which the caller
    /// has fed the first `offset` bytes. Returns the access receipt.
    pub async fn download_from(
        &self,
        key: &SigningKey,
        case_id: &str,
        object_id: &str,
        offset: u64,
        out: &mut impl Write,
        hasher: &mut Sha256,
    ) -> Result<Receipt> {
        self.fetch_object(
            key,
            &format!("/v1/cases/{case_id}/objects/{object_id}"),
            offset,
            out,
            hasher,
        )
        .await
    }

    /// Download an object's ciphertext for an export bundle (auditors may).
    pub async fn download_for_export(
        &self,
        key: &SigningKey,
        case_id: &str,
        object_id: &str,
        out: &mut impl Write,
    ) -> Result<(Receipt, String)> {
        let mut hasher = Sha256::new();
        let receipt = self
            .fetch_object(
                key,
                &format!("/v1/cases/{case_id}/export/objects/{object_id}"),
                0,
                out,
                &mut hasher,
            )
            .await?;
        Ok((receipt, hex::encode(hasher.finalize())))
    }

    /// Log the export of a case and get its events with their proofs.
    pub async fn export(&self, key: &SigningKey, case_id: &str) -> Result<ExportBody> {
        self.json(
            Some(key),
            Method::POST,
            &format!("/v1/cases/{case_id}/export"),
            None::<&()>,
        )
        .await
    }

    async fn fetch_object(
        &self,
        key: &SigningKey,
        path: &str,
        offset: u64,
        out: &mut impl Write,
        hasher: &mut Sha256,
    ) -> Result<Receipt> {
        let mut parts = RequestParts::default();
        if offset > 0 {
            // The vault refuses a Range its signature does not cover.
            parts.headers.push(("range", format!("bytes={offset}-")));
            parts.covered.push("range");
        }
        let mut resp = self.send(Some(key), Method::GET, path, parts).await?;
        if offset > 0 {
            let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok());
            if resp.status() != StatusCode::PARTIAL_CONTENT
                || !range.is_some_and(|r| r.starts_with(&format!("bytes {offset}-")))
            {
                return Err(ClientError::Verify(format!(
                    "asked to resume at byte {offset}, the vault answered otherwise"
                )));
            }
        }
        let receipt = resp
            .headers()
            .get("custos-receipt")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| B64.decode(v).ok())
            .and_then(|v| serde_json::from_slice::<Receipt>(&v).ok())
            .ok_or_else(|| ClientError::Verify("download without a receipt".into()))?;
        let mut meter = self
            .progress
            .begin("download", offset + resp.content_length().unwrap_or(0));
        meter.advance(offset);
        while let Some(chunk) = resp.chunk().await? {
            hasher.update(&chunk);
            out.write_all(&chunk)?;
            meter.advance(chunk.len() as u64);
        }
        Ok(receipt)
    }

    /// Take a backup of the whole vault (admins) into `out`; returns its
    /// size. The caller checks what arrived with [`crate::backup::verify_file`].
    pub async fn backup(&self, key: &SigningKey, out: &mut impl Write) -> Result<u64> {
        let mut resp = self
            .send(Some(key), Method::GET, "/v1/vault/backup", RequestParts::default())
            .await?;
        let expected = resp.content_length();
        let mut meter = self.progress.begin("backup", expected.unwrap_or(0));
        let mut got = 0u64;
        while let Some(piece) = resp.chunk().await? {
            out.write_all(&piece)?;
            got += piece.len() as u64;
            meter.advance(piece.len() as u64);
        }
        if expected.is_some_and(|e| e != got) {
            return Err(ClientError::Verify(format!(
                "the backup stopped after {got} of {} bytes",
                expected.unwrap_or(0)
            )));
        }
        Ok(got)
    }

    /// Grant a case.
    pub async fn grant(&self, key: &SigningKey, case_id: &str, body: &GrantBody) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(
                Some(key),
                Method::POST,
                &format!("/v1/cases/{case_id}/grants"),
                Some(body),
            )
            .await?
            .receipt)
    }

    /// Revoke a grant.
    pub async fn revoke(&self, key: &SigningKey, case_id: &str, from: &KeyId) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(
                Some(key),
                Method::DELETE,
                &format!("/v1/cases/{case_id}/grants/{from}"),
                None::<&()>,
            )
            .await?
            .receipt)
    }

    /// The registry.
    pub async fn principals(&self, key: &SigningKey) -> Result<Vec<Principal>> {
        self.json(Some(key), Method::GET, "/v1/principals", None::<&()>).await
    }

    /// Register a principal.
    pub async fn add_principal(&self, key: &SigningKey, body: &PrincipalBody) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(Some(key), Method::POST, "/v1/principals", Some(body))
            .await?
            .receipt)
    }

    /// Remove a principal.
    pub async fn remove_principal(&self, key: &SigningKey, id: &KeyId) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(Some(key), Method::DELETE, &format!("/v1/principals/{id}"), None::<&()>)
            .await?
            .receipt)
    }

    /// The latest checkpoint note.
    pub async fn checkpoint(&self) -> Result<String> {
        Ok(self
            .send(None, Method::GET, "/v1/log/checkpoint", RequestParts::default())
            .await?
            .text()
            .await?)
    }

    /// A page of log entries.
    pub async fn entries(&self, key: &SigningKey, start: u64, limit: u64) -> Result<Entries> {
        self.json(
            Some(key),
            Method::GET,
            &format!("/v1/log/entries?start={start}&limit={limit}"),
            None::<&()>,
        )
        .await
    }

    /// A case's events with their inclusion proofs, as `key` may read them.
    pub async fn case_log(&self, key: &SigningKey, case_id: &str) -> Result<CaseLog> {
        self.json(Some(key), Method::GET, &format!("/v1/cases/{case_id}/log"), None::<&()>)
            .await
    }

    /// A consistency proof.
    pub async fn consistency(&self, from: u64, to: u64) -> Result<ProofBody> {
        self.json(
            None,
            Method::GET,
            &format!("/v1/log/consistency?from={from}&to={to}"),
            None::<&()>,
        )
        .await
    }
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response> {
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

/// Read the next PATCH's worth of `file` and hash it, off the async threads.
fn read_piece(file: std::fs::File) -> tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>, String)>> {
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(PATCH_SIZE);
        (&file).take(PATCH_SIZE as u64).read_to_end(&mut buf)?;
        let sha = B64.encode(Sha256::digest(&buf));
        Ok((file, buf, sha))
    })
}
