//! Regression tests for the server trusting what it should not: targets and
//! bodies a signature covers only in a form the auditor cannot check,
//! headers the signature leaves out, a Host the client chose, principals
//! that were removed but kept their keys, envelopes and uploads, bodies read
//! before their sender is known, answers that tell a real case from a
//! made-up one, and a server log that names cases and objects.
//!
//! Every request here is real HTTP against a real vault, signed with real
//! keys; requests the server must refuse are sent as raw bytes, so that
//! nothing on the way (a client library normalising a URL) hides what the
//! server itself does with them.

use crate::util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::flows::{self, SubmitFile};
use custos::client::trust::TrustStore;
use custos::client::{Client, ClientError, RequestParts};
use custos::custody::{Action, Event};
use custos::envelope::{CaseKey, ObjectKind};
use custos::identity::{Card, Identity, KeyId, Role};
use custos::store::T;
use custos::wire::{CommitUpload, CreateCase, EnvelopeBody, GrantBody, NewSubmitterKey, PrincipalBody};
use ed25519_dalek::SigningKey;
use reqwest::Method;
use sha2::{Digest, Sha256};
use util::TestVault;

// ---------------------------------------------------------------------------
// Raw HTTP.

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A request as it goes on the wire.
#[derive(Clone)]
struct Req {
    method: Method,
    /// The request target exactly as sent (path and query).
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn new(method: Method, target: &str) -> Req {
        Req {
            method,
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Req {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn body(mut self, body: Vec<u8>) -> Req {
        self.body = body;
        self
    }

    /// Signed by `key` for `base` + the target exactly as sent, covering
    /// the body's digest (when there is a body or the method carries one)
    /// and the `covered` headers, which are sent too.
    fn signed(self, key: &SigningKey, base: &str, covered: &[(&'static str, String)]) -> Req {
        let url = format!("{base}{}", self.target);
        self.signed_for(key, &url, covered)
    }

    /// Signed for `url`, whatever is sent.
    fn signed_for(mut self, key: &SigningKey, url: &str, covered: &[(&'static str, String)]) -> Req {
        let has_body = !self.body.is_empty() || matches!(self.method, Method::POST | Method::PATCH | Method::PUT);
        let parts = RequestParts {
            headers: covered.to_vec(),
            covered: covered.iter().map(|(n, _)| *n).collect(),
            body: has_body.then(|| self.body.clone()),
        };
        for (n, v) in Client::signature_headers(key, &self.method, url, &parts, now()) {
            self.headers.push((n.to_owned(), v));
        }
        for (n, v) in covered {
            self.headers.push(((*n).to_owned(), v.clone()));
        }
        self
    }

    /// A JSON body, signed.
    fn json(self, body: Vec<u8>) -> Req {
        self.body(body).header("content-type", "application/json")
    }

    fn has(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The head (request line and headers) as bytes.
    fn head(&self, addr: &str) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        if !self.has("host") {
            head.push_str(&format!("host: {addr}\r\n"));
        }
        head.push_str("connection: close\r\n");
        for (n, v) in &self.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if !self.has("content-length") {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// What came back: status (0 when nothing came), error code (from the
/// `custos-error` header, else the JSON body), message and the raw head.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    code: String,
    message: String,
    head: String,
}

impl Answer {
    fn pair(&self) -> (u16, String) {
        (self.status, self.code.clone())
    }
}

fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Read one answer from `s` (which times out after its read timeout):
/// the head, then the body as long as Content-Length says.
fn read_answer(s: &mut std::net::TcpStream, head_only: bool) -> Answer {
    let mut buf = Vec::new();
    let mut piece = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut piece) {
            Ok(0) => {
                return Answer {
                    status: 0,
                    code: "connection closed without an answer".into(),
                    message: String::from_utf8_lossy(&buf).into_owned(),
                    head: String::new(),
                }
            }
            Ok(n) => buf.extend_from_slice(&piece[..n]),
            Err(e) => {
                return Answer {
                    status: 0,
                    code: format!("no answer in time ({e})"),
                    message: String::new(),
                    head: String::from_utf8_lossy(&buf).into_owned(),
                }
            }
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end..].to_vec();
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    if !head_only && status != 204 && status != 304 {
        while body.len() < length {
            match s.read(&mut piece) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&piece[..n]),
            }
        }
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let code = header("custos-error")
        .or_else(|| json["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Answer {
        status,
        code,
        message: json["message"].as_str().unwrap_or_default().to_owned(),
        head,
    }
}

/// Send `req` on a new connection, its body written from another thread
/// (so an answer that comes before the body is heard), and read the
/// answer, waiting at most `wait` for each read.
fn exchange(addr: &str, req: &Req, wait: Duration) -> Answer {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(&req.head(addr)).unwrap();
    let mut w = s.try_clone().unwrap();
    let body = req.body.clone();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let answer = read_answer(&mut s, req.method == Method::HEAD);
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    answer
}

/// [`exchange`] off the async threads, waiting up to 20 s.
async fn send(url: &str, req: &Req) -> Answer {
    let (addr, req) = (addr_of(url), req.clone());
    tokio::task::spawn_blocking(move || exchange(&addr, &req, Duration::from_secs(20)))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// Vault helpers.

fn digest(v: &TestVault) -> [u8; 32] {
    v.state.as_ref().unwrap().vault.store.digest().unwrap()
}

/// (status, code, message) of a client call that must fail.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api { status, code, message }) => (status, code, message),
        Err(other) => panic!("not an API refusal: {other}"),
        Ok(v) => {
            let shown: String = format!("{v:?}").chars().take(60).collect();
            (0, format!("accepted: {shown}..."), String::new())
        }
    }
}

/// A case id that does not exist (24 lower-case hex digits).
const NO_CASE: &str = "0123456789abcdef01234567";

/// Open an upload of `data` for `key` and send all of it.
async fn complete_upload(c: &Client, key: &SigningKey, case_id: &str, data: &[u8]) -> String {
    let upload = c.create_upload(key, case_id, data.len() as u64).await.unwrap();
    c.patch(key, &upload, 0, data.to_vec()).await.unwrap();
    upload
}

fn commit_body(data: &[u8]) -> CommitUpload {
    CommitUpload {
        sha256: hex::encode(Sha256::digest(data)),
        label: B64.encode(b"an opaque encrypted label"),
    }
}

/// The keys `CASE/KEYID` of `key_id` that a tree holds.
fn pair_keys_of(v: &TestVault, t: T, key_id: &KeyId) -> Vec<String> {
    let suffix = format!("/{key_id}");
    v.state
        .as_ref()
        .unwrap()
        .vault
        .store
        .danger_raw_tree(t)
        .iter()
        .keys()
        .map(|k| String::from_utf8_lossy(&k.unwrap()).into_owned())
        .filter(|k| k.ends_with(&suffix))
        .collect()
}

fn has_upload(v: &TestVault, upload_path: &str) -> bool {
    let id = upload_path.rsplit('/').next().unwrap();
    v.state
        .as_ref()
        .unwrap()
        .vault
        .store
        .danger_raw_tree(T::Uploads)
        .contains_key(id.as_bytes())
        .unwrap()
}

// ---------------------------------------------------------------------------
// A. Canonical signed targets.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_canonical_signed_targets_are_refused_and_leave_the_log_auditable() {
    let v = TestVault::start().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    let s = v
        .submit(b"they beat me", &[("photo.jpg", util::bytes(1, 50_000))])
        .await;
    let case = s.case_id.clone();
    let submitter = s.codename.derive(util::ORIGIN);
    // A second case, for a second withdrawal.
    let s2 = v.submit(b"they threatened me", &[]).await;
    let submitter2 = s2.codename.derive(util::ORIGIN);
    let object = c.case(&lawyer, &case).await.unwrap().objects[0].object_id.clone();
    // A complete upload waiting for its commit.
    let data = util::bytes(2, 3_000);
    let upload = complete_upload(&c, &lawyer, &case, &data).await;
    let commit = serde_json::to_vec(&commit_body(&data)).unwrap();

    let escaped_object = format!("%{:02X}{}", object.as_bytes()[0], &object[1..]);
    let escaped_case = format!("%{:02X}{}", s2.case_id.as_bytes()[0], &s2.case_id[1..]);
    let sub = submitter.signing_key();
    let rows: Vec<(&str, Req)> = vec![
        (
            "a withdrawal with a query string",
            Req::new(Method::POST, &format!("/v1/cases/{case}/withdraw?x=1"))
                .json(b"{}".to_vec())
                .signed(sub, &v.url, &[]),
        ),
        (
            "a download with a query string",
            Req::new(Method::GET, &format!("/v1/cases/{case}/objects/{object}?x")).signed(&lawyer, &v.url, &[]),
        ),
        (
            "an upload commit with a query string",
            Req::new(Method::POST, &format!("{upload}/commit?x=1"))
                .json(commit.clone())
                .signed(&lawyer, &v.url, &[]),
        ),
        (
            "a download with a percent-escape in the object id",
            Req::new(Method::GET, &format!("/v1/cases/{case}/objects/{escaped_object}")).signed(&lawyer, &v.url, &[]),
        ),
        (
            "a withdrawal with a percent-escape in the case id",
            Req::new(Method::POST, &format!("/v1/cases/{escaped_case}/withdraw"))
                .json(b"{}".to_vec())
                .signed(submitter2.signing_key(), &v.url, &[]),
        ),
        (
            "a download with a percent-escape in a fixed segment",
            Req::new(Method::GET, &format!("/v1/cases/{case}/object%73/{object}")).signed(&lawyer, &v.url, &[]),
        ),
        (
            "a download with a dot segment",
            Req::new(Method::GET, &format!("/v1/cases/{case}/./objects/{object}")).signed(&lawyer, &v.url, &[]),
        ),
        (
            "a download with a dot-dot segment",
            Req::new(Method::GET, &format!("/v1/cases/{case}/objects/../objects/{object}")).signed(
                &lawyer,
                &v.url,
                &[],
            ),
        ),
        (
            "a download with an empty segment",
            Req::new(Method::GET, &format!("/v1/cases/{case}//objects/{object}")).signed(&lawyer, &v.url, &[]),
        ),
        (
            "a download with a trailing slash",
            Req::new(Method::GET, &format!("/v1/cases/{case}/objects/{object}/")).signed(&lawyer, &v.url, &[]),
        ),
        (
            "a case listing with a trailing slash",
            Req::new(Method::GET, "/v1/cases/").signed(&lawyer, &v.url, &[]),
        ),
    ];

    let mut wrong = Vec::new();
    for (what, req) in &rows {
        let before = digest(&v);
        let got = send(&v.url, req).await;
        if got.pair() != (400, "target_not_canonical".into()) {
            wrong.push(format!(
                "{what} ({} {}): got {} {:?}, want 400 \"target_not_canonical\"",
                req.method, req.target, got.status, got.code
            ));
        }
        if digest(&v) != before {
            wrong.push(format!("{what} changed the store"));
        }
    }
    let audit = flows::audit(&c, &v.auditor, &v.log, None).await.unwrap();
    if let Some(f) = audit.failure {
        wrong.push(format!("afterwards the auditor's audit fails: {f}"));
    }
    assert!(wrong.is_empty(), "non-canonical signed targets:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_queries_must_be_in_their_one_canonical_form() {
    let v = TestVault::start().await;
    let auditor = v.auditor.signing_key().clone();
    let get = |target: &str| Req::new(Method::GET, target).signed(&auditor, &v.url, &[]);
    let mut wrong = Vec::new();
    // The canonical forms work.
    for target in [
        "/v1/log/entries?start=0",
        "/v1/log/entries?start=1&limit=2",
        "/v1/log/inclusion?index=0&size=1",
        "/v1/log/inclusion?index=1&size=3",
    ] {
        let got = send(&v.url, &get(target)).await;
        if got.status != 200 {
            wrong.push(format!("{target}: got {} {:?}, want 200", got.status, got.code));
        }
    }
    // Anything else is refused.
    for target in [
        "/v1/log/entries?start=01",
        "/v1/log/entries?limit=5&start=0",
        "/v1/log/entries?start=0&x=1",
        "/v1/log/entries?start=0&limit=05",
        "/v1/log/entries?start=0&",
        "/v1/log/entries?start=%30",
        "/v1/log/inclusion?size=1&index=0",
        "/v1/log/inclusion?index=00&size=1",
        "/v1/log/inclusion?index=0&size=1&x",
    ] {
        let got = send(&v.url, &get(target)).await;
        if got.pair() != (400, "target_not_canonical".into()) {
            wrong.push(format!(
                "{target}: got {} {:?}, want 400 \"target_not_canonical\"",
                got.status, got.code
            ));
        }
    }
    assert!(wrong.is_empty(), "log queries:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_header_the_signature_does_not_cover_is_refused() {
    let v = TestVault::start().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    let s = v.submit(b"statement", &[("photo.jpg", util::bytes(3, 20_000))]).await;
    let object = c.case(&lawyer, &s.case_id).await.unwrap().objects[0].object_id.clone();
    let path = format!("/v1/cases/{}/objects/{object}", s.case_id);

    let before = digest(&v);
    let uncovered = Req::new(Method::GET, &path)
        .signed(&lawyer, &v.url, &[])
        .header("range", "bytes=10-");
    let got = send(&v.url, &uncovered).await;
    assert_eq!(
        got.pair(),
        (400, "signature_incomplete".into()),
        "a Range the signature does not cover"
    );
    assert_eq!(digest(&v), before, "the refused download was logged");

    // Covered, the same range is served.
    let covered = Req::new(Method::GET, &path).signed(&lawyer, &v.url, &[("range", "bytes=10-".into())]);
    let got = send(&v.url, &covered).await;
    assert_eq!(got.status, 206, "a covered Range: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_for_another_host_is_refused_without_a_public_url() {
    let v = TestVault::start().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    let s = v.submit(b"statement", &[]).await;
    let object = c.case(&lawyer, &s.case_id).await.unwrap().objects[0].object_id.clone();
    let port = v.url.rsplit(':').next().unwrap().to_owned();
    let download = format!("/v1/cases/{}/objects/{object}", s.case_id);

    let before = digest(&v);
    let mut wrong = Vec::new();
    for path in ["/v1/cases", download.as_str()] {
        let evil = format!("evil.example:{port}");
        let req = Req::new(Method::GET, path).header("host", evil.clone()).signed_for(
            &lawyer,
            &format!("http://{evil}{path}"),
            &[],
        );
        let got = send(&v.url, &req).await;
        if got.pair() != (401, "signature_invalid".into()) {
            wrong.push(format!(
                "GET {path} signed for and sent to Host {evil}: got {} {:?}, want 401 \"signature_invalid\"",
                got.status, got.code
            ));
        }
    }
    if digest(&v) != before {
        wrong.push("a request for another host was logged".into());
    }
    // The server's own name, on its own port, is its address.
    for path in ["/v1/cases", download.as_str()] {
        let local = format!("localhost:{port}");
        let req = Req::new(Method::GET, path).header("host", local.clone()).signed_for(
            &lawyer,
            &format!("http://{local}{path}"),
            &[],
        );
        let got = send(&v.url, &req).await;
        if got.status != 200 {
            wrong.push(format!(
                "GET {path} signed for and sent to Host {local}: got {} {:?}, want 200",
                got.status, got.code
            ));
        }
    }
    assert!(wrong.is_empty(), "hosts:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// B. Removed principals stay out.

/// A case-creation request with `key` as its one submitter key and real
/// envelopes for the intake principals and `key`.
async fn case_request(c: &Client, key: &SigningKey, recipient: &age::x25519::Recipient) -> CreateCase {
    let params = c.intake().await.unwrap();
    let case_key = CaseKey::generate();
    let mut envelopes = Vec::new();
    for p in &params.intake {
        envelopes.push(EnvelopeBody {
            key_id: p.principal.key_id.clone(),
            envelope: B64.encode(case_key.wrap(&p.principal.card.age_recipient()).unwrap()),
        });
    }
    envelopes.push(EnvelopeBody {
        key_id: KeyId::of(&key.verifying_key()),
        envelope: B64.encode(case_key.wrap(recipient).unwrap()),
    });
    CreateCase {
        submitter_keys: vec![NewSubmitterKey {
            verifying_key: B64.encode(key.verifying_key().as_bytes()),
            recipient: recipient.to_string(),
        }],
        case_recipient: case_key.recipient().to_string(),
        envelopes,
        note: None,
        note_envelopes: Vec::new(),
    }
}

#[tokio::test]
async fn a_removed_lawyers_key_cannot_come_back_as_a_submitter_key() {
    let v = TestVault::start().await;
    let c = v.client();
    let l = Identity::generate("Lawyer L").unwrap();
    v.add_lawyer(&l, false).await;
    let s = v.submit(b"statement", &[]).await;
    flows::grant(&c, &v.lawyer, &v.log, &s.case_id, &l.key_id())
        .await
        .unwrap();
    assert!(c.case(l.signing_key(), &s.case_id).await.unwrap().envelope.is_some());
    c.remove_principal(v.admin.signing_key(), &l.key_id()).await.unwrap();

    let before = digest(&v);
    let req = case_request(&c, l.signing_key(), &l.card().age_recipient()).await;
    let bits = c.intake().await.unwrap().stamp_bits;
    let created = c.create_case(l.signing_key(), &req, util::ORIGIN, bits).await;
    let mut wrong = Vec::new();
    let got = refusal(created);
    if (got.0, got.1.as_str()) != (409, "key_in_use") {
        wrong.push(format!(
            "a new case with the removed lawyer's key as its submitter key: got {got:?}, want 409 key_in_use"
        ));
    }
    if digest(&v) != before {
        wrong.push("the refused case creation changed the store".into());
    }
    match c.case(l.signing_key(), &s.case_id).await {
        Err(e) if e.code() == Some("unknown_key") => {}
        Err(e) => wrong.push(format!(
            "the removed lawyer reading the old case: {e}, want unknown_key"
        )),
        Ok(d) => wrong.push(format!(
            "the removed lawyer read the case it once held (envelope {}, note envelope {})",
            if d.envelope.is_some() { "included" } else { "absent" },
            if d.note_envelope.is_some() {
                "included"
            } else {
                "absent"
            },
        )),
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn removing_a_principal_revokes_and_logs_every_envelope_it_held() {
    let v = TestVault::start().await;
    let c = v.client();
    // C2 and C3 exist before L; C2 is granted to L, C3 not. L is an intake
    // lawyer, so C1, submitted after L joined, is wrapped to L at intake.
    let c2 = v.submit(b"case two", &[]).await.case_id;
    let c3 = v.submit(b"case three", &[]).await.case_id;
    let l = Identity::generate("Lawyer L").unwrap();
    v.add_lawyer(&l, true).await;
    let c1 = v.submit(b"case one", &[]).await.case_id;
    flows::grant(&c, &v.lawyer, &v.log, &c2, &l.key_id()).await.unwrap();
    for case in [&c1, &c2] {
        let d = c.case(l.signing_key(), case).await.unwrap();
        assert!(d.envelope.is_some() && d.note_envelope.is_some(), "L holds {case}");
    }
    let before = v.events().await.len();

    c.remove_principal(v.admin.signing_key(), &l.key_id()).await.unwrap();

    let mut wrong = Vec::new();
    for t in [T::Envelopes, T::NoteEnvelopes] {
        let left = pair_keys_of(&v, t, &l.key_id());
        if !left.is_empty() {
            wrong.push(format!("{t:?} still holds the removed lawyer's {left:?}"));
        }
        for case in [&c1, &c2, &c3] {
            if pair_keys_of(&v, t, &v.lawyer.key_id())
                .iter()
                .all(|k| !k.starts_with(case.as_str()))
            {
                wrong.push(format!("{t:?} lost the remaining lawyer's entry of {case}"));
            }
        }
    }
    let events = v.events().await;
    let new = &events[before..];
    let l_id = l.key_id();
    if !new
        .iter()
        .any(|e| e.case == "vault" && e.action == Action::PrincipalRemoved && e.details["key_id"] == l_id.as_str())
    {
        wrong.push("no principal_removed event in the vault chain".into());
    }
    for (case, want) in [(&c1, 1), (&c2, 1), (&c3, 0)] {
        let n = new
            .iter()
            .filter(|e| &e.case == case && e.action == Action::EnvelopeRevoked && e.details["key_id"] == l_id.as_str())
            .count();
        if n != want {
            wrong.push(format!(
                "case {case}: {n} envelope_revoked events for the removed lawyer, want {want}"
            ));
        }
    }
    let elsewhere = new
        .iter()
        .filter(|e| e.action == Action::EnvelopeRevoked && ![&c1, &c2].contains(&&e.case))
        .count();
    if elsewhere != 0 {
        wrong.push(format!("{elsewhere} envelope_revoked events outside the cases L held"));
    }
    let audit = flows::audit(&c, &v.auditor, &v.log, None).await.unwrap();
    if let Some(f) = audit.failure {
        wrong.push(format!("afterwards the auditor's audit fails: {f}"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_submitter_key_cannot_be_registered_as_a_principal() {
    let v = TestVault::start().await;
    let c = v.client();
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(util::ORIGIN);
    let card = Card {
        name: "Impostor".into(),
        verifying_key: keys.signing_key().verifying_key(),
        recipient: keys.age_identity().to_public().to_string(),
    };
    let before = digest(&v);
    for role in [Role::Lawyer, Role::Auditor] {
        let got = refusal(
            c.add_principal(
                v.admin.signing_key(),
                &PrincipalBody {
                    card: card.clone(),
                    role,
                    intake: false,
                },
            )
            .await,
        );
        assert_eq!(
            (got.0, got.1.as_str()),
            (409, "key_in_use"),
            "registering a case's submitter key as a {role}: {got:?}"
        );
    }
    assert_eq!(digest(&v), before);
}

// ---------------------------------------------------------------------------
// C. A revoked or removed lawyer keeps no upload.

/// A lawyer granted the case, with an upload of 3000 bytes of which 1000
/// are sent.
async fn lawyer_with_half_an_upload(v: &TestVault, case: &str, name: &str) -> (Identity, String, Vec<u8>) {
    let c = v.client();
    let who = Identity::generate(name).unwrap();
    v.add_lawyer(&who, false).await;
    flows::grant(&c, &v.lawyer, &v.log, case, &who.key_id()).await.unwrap();
    let data = util::bytes(4, 3000);
    let upload = c.create_upload(who.signing_key(), case, 3000).await.unwrap();
    assert_eq!(
        c.patch(who.signing_key(), &upload, 0, data[..1000].to_vec())
            .await
            .unwrap(),
        1000
    );
    assert!(has_upload(v, &upload));
    (who, upload, data)
}

/// HEAD, PATCH (the rest) and commit on `upload` by `who`: each answer.
async fn use_upload(
    c: &Client,
    who: &Identity,
    upload: &str,
    data: &[u8],
) -> Vec<(&'static str, (u16, String, String))> {
    let key = who.signing_key();
    vec![
        ("HEAD", refusal(c.upload_offset(key, upload).await)),
        (
            "PATCH",
            refusal(c.patch(key, upload, 1000, data[1000..].to_vec()).await),
        ),
        ("commit", refusal(c.commit(key, upload, &commit_body(data)).await)),
    ]
}

#[tokio::test]
async fn a_revoked_lawyer_keeps_no_upload() {
    let v = TestVault::start().await;
    let c = v.client();
    let case = v.submit(b"statement", &[]).await.case_id;
    let (l2, upload, data) = lawyer_with_half_an_upload(&v, &case, "Lawyer Two").await;
    c.revoke(v.lawyer.signing_key(), &case, &l2.key_id()).await.unwrap();

    let mut wrong = Vec::new();
    if has_upload(&v, &upload) {
        wrong.push("the revoke left the upload's record in the store".to_owned());
    }
    let before = digest(&v);
    // The same upload id under a case that does not exist: what an outsider
    // would be told.
    let upload_id = upload.rsplit('/').next().unwrap();
    let nowhere = format!("/v1/cases/{NO_CASE}/uploads/{upload_id}");
    let unknown = use_upload(&c, &l2, &nowhere, &data).await;
    let got = use_upload(&c, &l2, &upload, &data).await;
    for ((what, got), (_, outsider)) in got.iter().zip(&unknown) {
        // A HEAD answer has no body, so no message.
        let message = if *what == "HEAD" { "" } else { "case not found" };
        let want = (404, "not_found".to_owned(), message.to_owned());
        if *got != want {
            wrong.push(format!("{what} after the revoke: got {got:?}, want {want:?}"));
        }
        if got != outsider {
            wrong.push(format!(
                "{what} after the revoke: got {got:?}, but for a case that does not exist {outsider:?}"
            ));
        }
    }
    if digest(&v) != before {
        wrong.push("the revoked lawyer's requests changed the store".into());
    }
    if has_upload(&v, &upload) {
        wrong.push("the upload's record is still in the store at the end".into());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_removed_lawyer_keeps_no_upload() {
    let v = TestVault::start().await;
    let c = v.client();
    let case = v.submit(b"statement", &[]).await.case_id;
    let (l3, upload, data) = lawyer_with_half_an_upload(&v, &case, "Lawyer Three").await;
    c.remove_principal(v.admin.signing_key(), &l3.key_id()).await.unwrap();

    let mut wrong = Vec::new();
    if has_upload(&v, &upload) {
        wrong.push("the removal left the upload's record in the store".to_owned());
    }
    let before = digest(&v);
    for (what, got) in use_upload(&c, &l3, &upload, &data).await {
        if (got.0, got.1.as_str()) != (401, "unknown_key") {
            wrong.push(format!("{what} after the removal: got {got:?}, want 401 unknown_key"));
        }
    }
    if digest(&v) != before {
        wrong.push("the removed lawyer's requests changed the store".into());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// D. No body is read before authentication.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_patch_is_answered_before_its_body_is_sent() {
    let v = TestVault::start().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    let case = v.submit(b"statement", &[]).await.case_id;
    const LEN: usize = 8 * 1024 * 1024;
    let upload = c.create_upload(&lawyer, &case, LEN as u64).await.unwrap();
    let body = vec![0u8; LEN];
    let tus = |req: Req| {
        req.header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("content-length", LEN.to_string())
    };
    let covered = [("upload-offset", "0".to_owned())];
    let sign = |key: &SigningKey| {
        // Signed over the body that will never be sent.
        let mut r = Req::new(Method::PATCH, &upload)
            .body(body.clone())
            .signed(key, &v.url, &covered);
        r.body = Vec::new();
        r
    };
    let stranger = Identity::generate("Stranger").unwrap();
    let mut forged = sign(&lawyer);
    for (n, val) in forged.headers.iter_mut() {
        if n == "signature" {
            *val = format!("sig1=:{}:", B64.encode([7u8; 64]));
        }
    }
    let rows = [
        (
            "an unsigned PATCH",
            tus(Req::new(Method::PATCH, &upload).header("upload-offset", "0")),
            (401, "signature_missing"),
        ),
        (
            "a PATCH signed by an unknown key",
            tus(sign(stranger.signing_key())),
            (401, "unknown_key"),
        ),
        ("a PATCH with a bad signature", tus(forged), (401, "signature_invalid")),
    ];
    let before = digest(&v);
    // All at once, each waiting 10 s for its answer while sending no body.
    let addr = addr_of(&v.url);
    let tasks: Vec<_> = rows
        .iter()
        .map(|(_, req, _)| {
            let (addr, req) = (addr.clone(), req.clone());
            tokio::task::spawn_blocking(move || exchange(&addr, &req, Duration::from_secs(10)))
        })
        .collect();
    let mut wrong = Vec::new();
    for ((what, _, (status, code)), task) in rows.iter().zip(tasks) {
        let got = task.await.unwrap();
        if got.pair() != (*status, (*code).to_owned()) {
            wrong.push(format!(
                "{what} declaring {LEN} bytes and sending none: got {} {:?}, want {status} {code:?} at once",
                got.status, got.code
            ));
        }
    }
    assert_eq!(digest(&v), before);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A body trickled a byte at a time, each byte well within the stall
/// timer, is cut off: a body must keep a pace, not only keep moving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_before_it_is_whole() {
    let mut v = TestVault::start().await;
    let colleague = Identity::generate("Colleague").unwrap();
    v.add_lawyer(&colleague, false).await;
    let case = v.submit(b"statement", &[]).await.case_id;
    v.stop().await;
    v.client_timeout = Duration::from_secs(1);
    v.serve().await;

    let grant = GrantBody {
        key_id: colleague.key_id(),
        envelope: "A".repeat(64),
        note_envelope: None,
    };
    let body = serde_json::to_vec(&grant).unwrap();
    let req = Req::new(Method::POST, &format!("/v1/cases/{case}/grants"))
        .json(body.clone())
        .signed(v.lawyer.signing_key(), &v.url, &[]);
    let before = digest(&v);

    // One byte every 500 ms: each piece well within the 1 s client
    // timeout, the whole far beyond 1 s + its length at 16 KiB/s.
    let addr = addr_of(&v.url);
    let (sent, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let got = tokio::task::spawn_blocking({
        let (sent, stop, body) = (sent.clone(), stop.clone(), body.clone());
        move || {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(&req.head(&addr)).unwrap();
            let mut w = s.try_clone().unwrap();
            let writer = std::thread::spawn({
                let (sent, stop) = (sent.clone(), stop.clone());
                move || {
                    for b in &body {
                        if stop.load(Ordering::SeqCst) || w.write_all(&[*b]).is_err() {
                            return;
                        }
                        sent.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            });
            let answer = read_answer(&mut s, false);
            let sent_then = sent.load(Ordering::SeqCst);
            stop.store(true, Ordering::SeqCst);
            let _ = s.shutdown(std::net::Shutdown::Both);
            let _ = writer.join();
            (answer, sent_then)
        }
    })
    .await
    .unwrap();
    let (answer, sent_then) = got;
    assert_eq!(
        answer.pair(),
        (408, "body_timeout".into()),
        "a {}-byte body trickled a byte every 500 ms, {sent_then} bytes sent when the wait for an answer ended",
        body.len()
    );
    assert!(
        sent_then < body.len(),
        "answered only after the whole body ({sent_then} bytes) arrived"
    );
    assert_eq!(digest(&v), before, "the trickled grant changed the store");
}

// ---------------------------------------------------------------------------
// E. Canonical signed bodies.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_canonical_signed_bodies_are_refused() {
    let v = TestVault::start().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    let admin = v.admin.signing_key().clone();
    let colleague = Identity::generate("Colleague").unwrap();
    v.add_lawyer(&colleague, false).await;
    let w1 = v.submit(b"first", &[]).await;
    let w2 = v.submit(b"second", &[]).await;
    let case = w1.case_id.clone();
    let data = util::bytes(5, 2000);
    let upload = complete_upload(&c, &lawyer, &case, &data).await;

    // Case creation padded with 200 KB of spaces, stamped and signed over
    // exactly the padded body.
    let opener = Identity::generate("Submitter").unwrap();
    let create = case_request(&c, opener.signing_key(), &opener.card().age_recipient()).await;
    let canonical = serde_json::to_vec(&create).unwrap();
    let mut padded = b"{".to_vec();
    padded.extend(std::iter::repeat_n(b' ', 200_000));
    padded.extend_from_slice(&canonical[1..]);
    let bits = c.intake().await.unwrap().stamp_bits;
    let stamp = {
        let body = padded.clone();
        tokio::task::spawn_blocking(move || custos::stamp::mint(util::ORIGIN, &body, bits, now()))
            .await
            .unwrap()
    };
    let padded_case = Req::new(Method::POST, "/v1/cases")
        .json(padded)
        .header(custos::stamp::HEADER, stamp)
        .signed(opener.signing_key(), &v.url, &[]);

    let newcomer = Identity::generate("Newcomer").unwrap();
    let principal = serde_json::to_string_pretty(&PrincipalBody {
        card: newcomer.card(),
        role: Role::Lawyer,
        intake: false,
    })
    .unwrap();
    let grant = |text: String| {
        Req::new(Method::POST, &format!("/v1/cases/{case}/grants"))
            .json(text.into_bytes())
            .signed(&lawyer, &v.url, &[])
    };
    let withdraw = |s: &flows::Submitted, text: &str| {
        Req::new(Method::POST, &format!("/v1/cases/{}/withdraw", s.case_id))
            .json(text.as_bytes().to_vec())
            .signed(s.codename.derive(util::ORIGIN).signing_key(), &v.url, &[])
    };
    let commit = serde_json::to_string(&commit_body(&data))
        .unwrap()
        .replacen(':', ": ", 1);
    let col = colleague.key_id();
    let rows: Vec<(&str, Req, (u16, &str))> = vec![
        (
            "a case creation padded with 200 KB of spaces",
            padded_case,
            (400, "body_not_canonical"),
        ),
        (
            "a principal registration as pretty JSON",
            Req::new(Method::POST, "/v1/principals")
                .json(principal.into_bytes())
                .signed(&admin, &v.url, &[]),
            (400, "body_not_canonical"),
        ),
        (
            "a withdrawal {\"reason\":null}",
            withdraw(&w1, "{\"reason\":null}"),
            (400, "body_not_canonical"),
        ),
        ("a withdrawal { }", withdraw(&w2, "{ }"), (400, "body_not_canonical")),
        (
            "a grant with its fields reordered",
            grant(format!("{{\"envelope\":\"AAAA\",\"key_id\":\"{col}\"}}")),
            (400, "body_not_canonical"),
        ),
        (
            "a grant with a trailing newline",
            grant(format!("{{\"key_id\":\"{col}\",\"envelope\":\"AAAA\"}}\n")),
            (400, "body_not_canonical"),
        ),
        (
            "a commit with a space after a colon",
            Req::new(Method::POST, &format!("{upload}/commit"))
                .json(commit.into_bytes())
                .signed(&lawyer, &v.url, &[]),
            (400, "body_not_canonical"),
        ),
        (
            "a grant with an unknown field",
            grant(format!("{{\"key_id\":\"{col}\",\"envelope\":\"AAAA\",\"x\":1}}")),
            (400, "bad_request"),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, req, (status, code)) in &rows {
        let before = digest(&v);
        let got = send(&v.url, req).await;
        if got.pair() != (*status, (*code).to_owned()) {
            wrong.push(format!(
                "{what}: got {} {:?}, want {status} {code:?}",
                got.status, got.code
            ));
        }
        if digest(&v) != before {
            wrong.push(format!("{what} changed the store"));
        }
    }
    assert!(wrong.is_empty(), "non-canonical bodies:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// F. No existence oracle.

#[tokio::test]
async fn export_answers_the_same_for_a_real_case_and_a_made_up_one() {
    let v = TestVault::start().await;
    let c = v.client();
    let outsider = Identity::generate("Outsider").unwrap();
    v.add_lawyer(&outsider, false).await;
    let case = v.submit(b"statement", &[]).await.case_id;
    let before = digest(&v);
    let mut wrong = Vec::new();
    for (who, key) in [
        ("a lawyer not holding it", outsider.signing_key()),
        ("the admin", v.admin.signing_key()),
    ] {
        let real = refusal(c.export(key, &case).await);
        let fake = refusal(c.export(key, NO_CASE).await);
        let want = (404, "not_found".to_owned(), "case not found".to_owned());
        if real != want || fake != want {
            wrong.push(format!(
                "export by {who}: real case {real:?}, made-up case {fake:?}, want both {want:?}"
            ));
        }
    }
    if digest(&v) != before {
        wrong.push("a refused export changed the store".into());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn admin_revoke_answers_the_same_for_a_real_case_and_a_made_up_one() {
    let v = TestVault::start().await;
    let c = v.client();
    let colleague = Identity::generate("Colleague").unwrap();
    v.add_lawyer(&colleague, false).await;
    let case = v.submit(b"statement", &[]).await.case_id;
    let before = digest(&v);
    let admin = v.admin.signing_key();
    let real = refusal(c.revoke(admin, &case, &colleague.key_id()).await);
    let fake = refusal(c.revoke(admin, NO_CASE, &colleague.key_id()).await);
    assert_eq!(
        real, fake,
        "an admin revoking a grant that does not exist, on a real case and on a made-up one"
    );
    assert_eq!((real.0, real.1.as_str()), (404, "not_found"));
    assert_eq!(digest(&v), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_auditors_read_log_entries_and_inclusion_proofs() {
    let v = TestVault::start().await;
    let entries = "/v1/log/entries?start=0";
    let inclusion = "/v1/log/inclusion?index=0&size=1";
    let signed = |key: &SigningKey, target: &str| Req::new(Method::GET, target).signed(key, &v.url, &[]);
    let unsigned = |target: &str| Req::new(Method::GET, target);
    let rows = vec![
        (
            "entries by a lawyer",
            signed(v.lawyer.signing_key(), entries),
            (403, "forbidden"),
        ),
        (
            "entries by the admin",
            signed(v.admin.signing_key(), entries),
            (403, "forbidden"),
        ),
        (
            "entries by the auditor",
            signed(v.auditor.signing_key(), entries),
            (200, ""),
        ),
        ("entries unsigned", unsigned(entries), (401, "signature_missing")),
        ("inclusion unsigned", unsigned(inclusion), (401, "signature_missing")),
        (
            "inclusion by a lawyer",
            signed(v.lawyer.signing_key(), inclusion),
            (403, "forbidden"),
        ),
        (
            "inclusion by the admin",
            signed(v.admin.signing_key(), inclusion),
            (403, "forbidden"),
        ),
        (
            "inclusion by the auditor",
            signed(v.auditor.signing_key(), inclusion),
            (200, ""),
        ),
        ("the checkpoint unsigned", unsigned("/v1/log/checkpoint"), (200, "")),
        (
            "a consistency proof unsigned",
            unsigned("/v1/log/consistency?from=1&to=2"),
            (200, ""),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, req, (status, code)) in &rows {
        let got = send(&v.url, req).await;
        if got.pair() != (*status, (*code).to_owned()) {
            wrong.push(format!(
                "{what}: got {} {:?}, want {status} {code:?}",
                got.status, got.code
            ));
        }
    }
    assert!(wrong.is_empty(), "log access:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// G. The server's own log names nothing.

/// Whether `line` has a field of value `n`, whatever its name (`size=N`,
/// `bytes=N`, ...).
fn has_size_field(line: &str, n: u64) -> bool {
    let want = n.to_string();
    line.match_indices('=').any(|(i, m)| {
        let rest = &line[i + m.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits == want
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_log_names_no_case_object_or_size() {
    let mut v = TestVault::start().await;
    v.stop().await;
    let server = util::ServerProcess::start(&v.data_dir(), &[]);
    let client = Client::new(&server.url).unwrap();

    let files = vec![
        SubmitFile {
            path: v.file("statement.txt", b"two officers beat me in room 12"),
            kind: ObjectKind::Statement,
        },
        SubmitFile {
            path: v.file("scan.pdf", &util::bytes(6, 123_457)),
            kind: ObjectKind::Medical,
        },
    ];
    let trust = TrustStore::new(v.tmp.path().join("trust-g"));
    let submitted = flows::submit(&client, &trust, &[], &files, false).await.unwrap();
    let case = submitted.case_id.clone();
    let detail = client.case(v.lawyer.signing_key(), &case).await.unwrap();
    assert_eq!(detail.objects.len(), 2);
    flows::get_case(&client, &v.lawyer, &v.log, &case, &v.tmp.path().join("got"))
        .await
        .unwrap();

    let lines = tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
    assert!(
        lines.iter().any(|l| l.contains("custos stopped")),
        "not every line was collected:\n{}",
        lines.join("\n")
    );
    // Nor any key: every holder of the case (the lawyer, both codename
    // keys of the submitter).
    let keys: Vec<String> = detail.holders.iter().map(|k| k.to_string()).collect();
    assert!(keys.len() >= 3, "{keys:?}");
    assert!(keys.contains(&submitted.codename.derive(util::ORIGIN).key_id().to_string()));
    let mut wrong = Vec::new();
    for line in &lines {
        if line.contains(&case) {
            wrong.push(format!("names the case: {line}"));
        }
        for key in &keys {
            if line.contains(key.as_str()) {
                wrong.push(format!("names a key: {line}"));
            }
        }
        for o in &detail.objects {
            if line.contains(&o.object_id) {
                wrong.push(format!("names an object: {line}"));
            }
            if has_size_field(line, o.size) {
                wrong.push(format!("gives an object's size ({}): {line}", o.size));
            }
        }
    }
    assert!(wrong.is_empty(), "the server's log:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// What the review of the fix found.

/// A removal or a revocation that lands after a request was authenticated
/// but before its event is logged refuses the request: the actor is
/// checked again under the writer lock. Otherwise the log would hold an
/// access by a key it had just removed, which fails every later audit, or
/// a revoked lawyer would get one more download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_or_revocation_that_lands_first_refuses_the_request_in_flight() {
    let v = TestVault::start().await;
    let c = v.client();
    let s = v.submit(b"statement", &[("photo.jpg", util::bytes(21, 5_000))]).await;
    let object = c.case(v.lawyer.signing_key(), &s.case_id).await.unwrap().objects[0]
        .object_id
        .clone();
    let colleague = Identity::generate("Colleague").unwrap();
    v.add_lawyer(&colleague, false).await;
    flows::grant(&c, &v.lawyer, &v.log, &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    let state = v.state.clone().unwrap();
    let store = &state.vault.store;
    let accesses_by = |events: &[Event], who: &KeyId| {
        events
            .iter()
            .filter(|e| e.action == Action::ObjectAccessed && e.actor == who.as_str())
            .count()
    };

    for (what, lose, want) in [
        ("revoked", T::Envelopes, (404, "not_found")),
        ("removed", T::Registry, (401, "unknown_key")),
    ] {
        // The download authenticates, then waits for the writer lock that
        // the test holds; meanwhile the key loses the case.
        let guard = store.writer().await;
        let download = tokio::spawn({
            let (c, key, case, object) = (
                c.clone(),
                colleague.signing_key().clone(),
                s.case_id.clone(),
                object.clone(),
            );
            async move {
                let mut out = Vec::new();
                let mut hasher = Sha256::new();
                c.download_from(&key, &case, &object, 0, &mut out, &mut hasher).await
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let key = match lose {
            T::Envelopes => format!("{}/{}", s.case_id, colleague.key_id()),
            _ => colleague.key_id().to_string(),
        };
        let saved = store.danger_raw_tree(lose).remove(key.as_bytes()).unwrap().unwrap();
        drop(guard);
        let got = refusal(download.await.unwrap());
        assert_eq!(
            (got.0, got.1.as_str()),
            want,
            "a download by a key just {what}: {got:?}"
        );
        assert_eq!(accesses_by(&v.events().await, &colleague.key_id()), 0, "{what}");
        store.danger_raw_tree(lose).insert(key.as_bytes(), saved).unwrap();
    }
    let audit = flows::audit(&c, &v.auditor, &v.log, None).await.unwrap();
    assert!(audit.failure.is_none(), "the audit failed: {:?}", audit.failure);
}

/// A removed principal's key stays out for good: it cannot be registered
/// again (whoever held it makes a new one), and the auditor refuses a log
/// where it was.
#[tokio::test]
async fn a_removed_principal_cannot_be_registered_again() {
    let v = TestVault::start().await;
    let c = v.client();
    let gone = Identity::generate("Gone").unwrap();
    v.add_lawyer(&gone, false).await;
    c.remove_principal(v.admin.signing_key(), &gone.key_id()).await.unwrap();
    let before = digest(&v);
    let got = refusal(
        c.add_principal(
            v.admin.signing_key(),
            &PrincipalBody {
                card: gone.card(),
                role: Role::Lawyer,
                intake: false,
            },
        )
        .await,
    );
    assert_eq!((got.0, got.1.as_str()), (409, "key_retired"), "{got:?}");
    assert_eq!(digest(&v), before);
}

/// A request whose signature expires while it waits for the writer lock is
/// not logged: an event dated after its request's expiry would fail the
/// audit, so the vault refuses it and the client signs anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_expires_while_it_waits_is_not_logged() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[("photo.jpg", util::bytes(22, 3_000))]).await;
    let lawyer = v.lawyer.signing_key().clone();
    let object = v.client().case(&lawyer, &s.case_id).await.unwrap().objects[0]
        .object_id
        .clone();
    // Signed 58 s ago: valid for 2 s more.
    let target = format!("/v1/cases/{}/objects/{object}", s.case_id);
    let mut req = Req::new(Method::GET, &target);
    for (n, val) in Client::signature_headers(
        &lawyer,
        &Method::GET,
        &format!("{}{target}", v.url),
        &RequestParts::default(),
        now() - 58,
    ) {
        req = req.header(n, val);
    }
    let state = v.state.clone().unwrap();
    let before = v.events().await.len();
    let guard = state.vault.store.writer().await;
    let answer = tokio::spawn({
        let url = v.url.clone();
        async move { send(&url, &req).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(guard);
    let got = answer.await.unwrap();
    assert_eq!(got.pair(), (401, "signature_expired".to_owned()), "{got:?}");
    assert_eq!(v.events().await.len(), before, "the expired request was logged");
}
