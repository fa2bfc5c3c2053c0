//! custos-client: what a submitter's, a lawyer's or an auditor's machine
//! runs against a vault. The typed HTTP client signs every request (RFC
//! 9421), maps error bodies to [`ClientError::Api`], and streams uploads
//! and downloads from and to files; `trust` pins the vault, `proven`
//! proves every fact a workflow acts on from the signed log, `resume`
//! keeps the journals that let a cut transfer go on, `ids` holds every
//! case and object id that goes into a request's path or a file's name
//! to the core's spelling, and `flows` holds the workflows (submit, get,
//! audit, ...) the CLI, the integration tests and the benches all use.
//! [`bundle`] packs export bundles as .tar and
//! decrypts a verified one for a holder. Nothing here serves HTTP or
//! touches the vault's store: the server is `custos-server`.
//!
//! This file holds the connection, request signing and the small JSON
//! requests; bulk transfers are in `transfer`, the error type in `error`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bundle;
mod error;
pub mod export;
pub mod flows;
mod ids;
pub mod metadata;
mod path_lock;
mod pipe;
pub mod progress;
pub mod proven;
pub mod proxy;
pub mod resume;
pub mod submitter;
pub mod terminal;
mod transfer;
pub mod trust;
pub mod workflow;

use ed25519_dalek::SigningKey;
use reqwest::Method;

use self::error::check;
pub use self::error::ClientError;
pub use self::transfer::Download;
use custos_core::custody::Receipt;
use custos_core::httpsig::{self, SignatureParams};
use custos_core::identity::{KeyId, Principal};
use custos_core::wire::*;

/// Validity window of the signatures this client makes.
const SIGNATURE_LIFETIME_SECS: i64 = 60;

/// Data per tus PATCH unless the vault asks for more: one store chunk,
/// whose signed digest is then also the chunk's address, so the vault
/// hashes it once (measured in BENCHMARKS.md: two chunks per PATCH saved 5%
/// of an upload's time and cost 16 MiB more server memory). A vault whose
/// chunks wait on an S3 bucket asks for several (`Custos-Patch-Size`), so
/// that it can send their PUTs at once.
pub const PATCH_SIZE: usize = custos_core::protocol::CHUNK_SIZE;

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The path of `case_id`'s resource `tail` (`""`, `"/log"`, ...), for a
/// case id a caller gave: one that is not a case id (`X%2Fobjects%2FY`,
/// or holding a `?` or a `/`) would make the signed request another one,
/// so it is refused before anything is signed.
fn case_path(case_id: &str, tail: &str) -> Result<String> {
    ids::case_id_arg(case_id)?;
    Ok(format!("/v1/cases/{case_id}{tail}"))
}

/// How long connecting to a vault may take (through a proxy: the proxy's
/// answer too): two minutes, twice what Tor may need for a new circuit.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long an answer may stand still between two reads before the
/// exchange counts as broken: five minutes, far past a slow circuit's
/// pauses and a large commit's hashing, so only a vault that is gone.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// How many times, in one run, a transfer that breaks mid-way (a dropped
/// connection, a Tor circuit that closed) is taken up again from where the
/// vault stands before the run gives up; a later run still resumes from
/// its journal or its staged bytes.
pub const TRANSFER_RETRIES: u32 = 5;

/// Wait before the `n`th retry (from 1): 1, 2, 4, 8, 16 s, 31 s in all,
/// longer than Tor takes to build a new circuit.
pub(crate) async fn wait_before_retry(n: u32) {
    tokio::time::sleep(std::time::Duration::from_secs(1 << (n - 1).min(4))).await;
}

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
    /// The PATCH size the vault last asked for (`Custos-Patch-Size`, kept
    /// only if it is whole chunks within the protocol's limit).
    patch_size: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Client {
    /// A client for the vault at `base` (scheme and authority, no path),
    /// reached directly.
    pub fn new(base: &str) -> Result<Self> {
        Self::through(base, None)
    }

    /// A client for the vault at `base`, reached through `proxy` when one
    /// is given (see [`proxy::checked`] for the kinds). An onion address
    /// without a proxy is refused here, before any name is looked up or
    /// any connection made.
    ///
    /// Timeouts are for a vault that is gone, not one that is slow: over
    /// Tor a new circuit can take a minute, so connecting may take
    /// [`CONNECT_TIMEOUT`], and an answer may stand still for
    /// [`IDLE_TIMEOUT`] between two reads however long it runs.
    /// A transfer that breaks is taken up again from where the vault says
    /// it stands (`flows::upload`'s `send_pending`, `flows::retrieve`'s
    /// downloads).
    pub fn through(base: &str, proxy: Option<&str>) -> Result<Self> {
        // Only the proxy named here, never one from the environment
        // behind the caller's back: the CLI reads CUSTOS_PROXY and
        // ALL_PROXY itself and passes what it chose.
        let mut http = reqwest::Client::builder()
            .user_agent("custos")
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(IDLE_TIMEOUT)
            .no_proxy();
        match proxy {
            Some(p) => http = http.proxy(reqwest::Proxy::all(proxy::checked(p)?)?),
            None if proxy::is_onion(base) => return Err(proxy::onion_needs_proxy(base)),
            None => {}
        }
        let http = http.build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            progress: progress::Sink::default(),
            pins: None,
            patch_size: std::sync::Arc::new(PATCH_SIZE.into()),
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
            custos_core::stamp::mint(
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
                (custos_core::stamp::HEADER, stamp),
            ],
            body: Some(body),
            ..Default::default()
        };
        let created: CaseCreated = self
            .send(Some(key), Method::POST, "/v1/cases", parts)
            .await?
            .json()
            .await?;
        if !custos_core::protocol::is_case_id(&created.case_id) {
            return Err(ClientError::Verify(
                "the vault gave the new case an id that is not 24 lower-case hex digits".into(),
            ));
        }
        Ok(created)
    }

    /// Withdraw a case, signed by a submitter key.
    pub async fn withdraw(&self, key: &SigningKey, case_id: &str, body: &WithdrawBody) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(Some(key), Method::POST, &case_path(case_id, "/withdraw")?, Some(body))
            .await?
            .receipt)
    }

    /// Cases visible to `key`.
    ///
    /// A case id that is not one the server makes is refused: the id is
    /// printed and used in paths, and the host chose it.
    pub async fn cases(&self, key: &SigningKey) -> Result<Vec<CaseSummary>> {
        let cases: Vec<CaseSummary> = self.json(Some(key), Method::GET, "/v1/cases", None::<&()>).await?;
        if let Some(bad) = cases.iter().find(|c| !custos_core::protocol::is_case_id(&c.case_id)) {
            return Err(ClientError::Verify(format!(
                "the vault listed a case id that is not 24 lower-case hex digits ({})",
                terminal::escaped(&bad.case_id.chars().take(64).collect::<String>())
            )));
        }
        Ok(cases)
    }

    /// One case.
    ///
    /// The record must be of that case, and every object in it named by
    /// an object id: workflows make file names of them, and the host
    /// chose them (`../../.bashrc` would name a file outside any folder).
    pub async fn case(&self, key: &SigningKey, case_id: &str) -> Result<CaseDetail> {
        let detail = self
            .json(Some(key), Method::GET, &case_path(case_id, "")?, None::<&()>)
            .await?;
        ids::check_case_detail(&detail, case_id)?;
        Ok(detail)
    }

    /// Log the export of a case and get its events with their proofs.
    pub async fn export(&self, key: &SigningKey, case_id: &str) -> Result<ExportBody> {
        self.json(Some(key), Method::POST, &case_path(case_id, "/export")?, None::<&()>)
            .await
    }
    /// Grant a case.
    pub async fn grant(&self, key: &SigningKey, case_id: &str, body: &GrantBody) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(Some(key), Method::POST, &case_path(case_id, "/grants")?, Some(body))
            .await?
            .receipt)
    }

    /// Record a sealed change of a case's workflow (a lawyer holding it).
    pub async fn change_workflow(&self, key: &SigningKey, case_id: &str, body: &WorkflowBody) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(Some(key), Method::POST, &case_path(case_id, "/workflow")?, Some(body))
            .await?
            .receipt)
    }

    /// Record a disclosure of some of a case's objects to an outside body
    /// (a lawyer holding it).
    pub async fn disclose(&self, key: &SigningKey, case_id: &str, body: &DiscloseBody) -> Result<Receipt> {
        Ok(self
            .json::<ReceiptBody>(
                Some(key),
                Method::POST,
                &case_path(case_id, "/disclosures")?,
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
                &case_path(case_id, &format!("/grants/{from}"))?,
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

    /// Set (`Some`) or clear (`None`) the mail address a lawyer's digest
    /// goes to, signed by an admin.
    pub async fn set_contact(&self, key: &SigningKey, id: &KeyId, email: Option<&str>) -> Result<Receipt> {
        let body = ContactBody {
            email: email.map(str::to_owned),
        };
        Ok(self
            .json::<ReceiptBody>(
                Some(key),
                Method::PUT,
                &format!("/v1/principals/{id}/contact"),
                Some(&body),
            )
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
        self.json(Some(key), Method::GET, &case_path(case_id, "/log")?, None::<&()>)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request made from a caller's case or object id refuses one
    /// that would make it another request (`X%2Fobjects%2FY` is the
    /// objects of another case once the vault decodes it), before it signs
    /// or sends anything: nothing listens at this address, so a request
    /// that went out would fail otherwise.
    #[tokio::test]
    async fn ids_that_would_make_another_request_are_refused_before_sending() {
        let c = Client::new("http://127.0.0.1:9").unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let case = "0123456789abcdef01234567";
        let object = "ab".repeat(32);
        let usage = |what: &str, r: Result<()>| {
            assert!(matches!(r, Err(ClientError::Usage(_))), "{what}: {r:?}");
        };
        let someone: KeyId = "0123456789abcdef".parse().unwrap();
        for bad in [
            "X%2Fobjects%2FY",
            "0123456789abcdef01234567?x=1",
            "0123456789abcdef01234567/log",
            "../principals",
        ] {
            usage("case", c.case(&key, bad).await.map(drop));
            usage("case_log", c.case_log(&key, bad).await.map(drop));
            usage("export", c.export(&key, bad).await.map(drop));
            usage(
                "withdraw",
                c.withdraw(&key, bad, &WithdrawBody::default()).await.map(drop),
            );
            let grant = GrantBody {
                key_id: someone.clone(),
                envelope: String::new(),
                note_envelope: None,
            };
            usage("grant", c.grant(&key, bad, &grant).await.map(drop));
            let entry = WorkflowBody { entry: String::new() };
            usage("workflow", c.change_workflow(&key, bad, &entry).await.map(drop));
            let disclosure = DiscloseBody {
                recipient: String::new(),
                recipient_key_id: None,
                objects: vec![],
                plaintext: false,
                cleaned: Vec::new(),
            };
            usage("disclose", c.disclose(&key, bad, &disclosure).await.map(drop));
            usage("revoke", c.revoke(&key, bad, &someone).await.map(drop));
            usage("upload", c.create_upload(&key, bad, 1).await.map(drop));
            usage("download", c.open_download(&key, bad, &object, 0).await.map(drop));
            usage(
                "export download",
                c.open_export_download(&key, bad, &object).await.map(drop),
            );
        }
        for bad in ["../../log/checkpoint", "X%2F..%2Fx", &"AB".repeat(32)] {
            usage("object", c.open_download(&key, case, bad, 0).await.map(drop));
            usage("export object", c.open_export_download(&key, case, bad).await.map(drop));
        }
    }
}
