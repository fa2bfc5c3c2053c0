//! The abuse table: hostile requests of every kind the issue names, each
//! answered with its precise status and error code, and none of them
//! changing the store by a single byte, but for the replay nonces that
//! authenticated requests spend even when refused (so that a refused
//! request cannot be replayed later, when it would pass).

use crate::util;

use std::io::{Read, Write};
use std::time::Duration;

use custos::client::{Client, RequestParts};
use custos::identity::{Identity, Role};
use custos::wire::{GrantBody, PrincipalBody};
use ed25519_dalek::SigningKey;
use reqwest::Method;
use util::TestVault;

/// One hostile request and the answer it must get.
struct Row {
    what: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

/// A grant's body in its one canonical form, so that what a row tests is
/// not refused for its form first.
fn grant_body(to: &custos::identity::KeyId) -> Vec<u8> {
    serde_json::to_vec(&GrantBody {
        key_id: to.clone(),
        envelope: "AAAA".into(),
        note_envelope: None,
    })
    .unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Headers signing `method url` (and `body`) with `key`, made now.
fn sign(
    key: &SigningKey,
    method: &Method,
    url: &str,
    body: Option<&[u8]>,
    covered: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let parts = RequestParts {
        headers: covered.to_vec(),
        covered: covered.iter().map(|(n, _)| *n).collect(),
        body: body.map(<[u8]>::to_vec),
    };
    let mut h = Client::signature_headers(key, method, url, &parts, now());
    h.extend(covered.iter().cloned());
    h
}

/// A row whose request is signed by `key` for exactly what it sends.
#[allow(clippy::too_many_arguments)]
fn signed_row(
    v: &TestVault,
    what: &'static str,
    key: &SigningKey,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    extra: Vec<(&'static str, String)>,
    (status, code): (u16, &'static str),
) -> Row {
    // Every extra header is covered by the signature, as the server
    // demands for those that mean something (tus offsets and lengths).
    let (length, covered): (Vec<_>, Vec<_>) = extra.into_iter().partition(|(n, _)| *n == "content-length");
    let mut headers = sign(key, &method, &format!("{}{path}", v.url), body.as_deref(), &covered);
    if body.is_some() && !covered.iter().any(|(n, _)| *n == "content-type") {
        headers.push(("content-type", "application/json".into()));
    }
    headers.extend(length);
    Row {
        what,
        method,
        path: path.into(),
        headers,
        body,
        status,
        code,
    }
}

/// Send a row as raw HTTP/1.1 on a new connection: the body is written
/// from another thread while the answer is read, so a server that answers
/// before reading a whole oversize body is heard, not cut off.
async fn send(url: &str, row: &Row) -> (u16, String) {
    let addr = url.trim_start_matches("http://").to_owned();
    let mut req = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
        row.method, row.path
    );
    for (n, v) in &row.headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    let body = row.body.clone().unwrap_or_default();
    if !row.headers.iter().any(|(n, _)| *n == "content-length") {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(&body);
    tokio::task::spawn_blocking(move || raw_exchange(&addr, &bytes))
        .await
        .unwrap()
}

/// [`raw_exchange`] of `text`, off the async threads.
async fn exchange_text(addr: &str, text: String) -> (u16, String) {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || raw_exchange(&addr, text.as_bytes()))
        .await
        .unwrap()
}

/// Write `request` on a new connection (from another thread, ignoring a
/// connection the server closes early) and read the answer's status and
/// `Custos-Error` code. A sender that stops short of its declared body
/// stays connected, as a stalled client would.
fn raw_exchange(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let request = request.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&request);
        w
    });
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&piece[..n]),
            // Still open, and silent, after 20 s.
            Err(e) => return (0, format!("no answer and not closed: {e}")),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    drop(writer.join());
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or("0").parse().unwrap();
    let code = text
        .lines()
        .find_map(|l| l.strip_prefix("custos-error: "))
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_precise_error_and_change_nothing() {
    let mut v = TestVault::start().await;
    v.stop().await;
    v.client_timeout = Duration::from_secs(1);
    v.serve().await;
    let c = v.client();
    let admin = v.admin.signing_key().clone();
    let lawyer = v.lawyer.signing_key().clone();
    let auditor = v.auditor.signing_key().clone();

    // A second lawyer who holds one case and was revoked from another, and
    // a third who was removed from the vault.
    let colleague = Identity::generate("Colleague").unwrap();
    let removed = Identity::generate("Removed").unwrap();
    for who in [&colleague, &removed] {
        let body = PrincipalBody {
            card: who.card(),
            role: Role::Lawyer,
            intake: false,
        };
        c.add_principal(&admin, &body).await.unwrap();
    }
    c.remove_principal(&admin, &removed.key_id()).await.unwrap();
    let a = v
        .submit(b"case A: they beat me", &[("photo.jpg", util::bytes(1, 200_000))])
        .await;
    let b = v.submit(b"case B: they threatened me", &[]).await;
    custos::client::flows::grant(&c, &v.lawyer, &v.log, &b.case_id, &colleague.key_id())
        .await
        .unwrap();
    custos::client::flows::grant(&c, &v.lawyer, &v.log, &a.case_id, &colleague.key_id())
        .await
        .unwrap();
    c.revoke(&lawyer, &a.case_id, &colleague.key_id()).await.unwrap();
    let detail = c.case(&lawyer, &a.case_id).await.unwrap();
    let object = detail.objects[0].object_id.clone();
    let location = c.create_upload(&lawyer, &a.case_id, 1000).await.unwrap();
    let upload = location.rsplit('/').next().unwrap().to_owned();
    let submitter_b = b.codename.derive(util::ORIGIN);

    // A request accepted once, whose headers are then replayed.
    let list = sign(&lawyer, &Method::GET, &format!("{}/v1/cases", v.url), None, &[]);
    let first = send(
        &v.url,
        &Row {
            what: "first use",
            method: Method::GET,
            path: "/v1/cases".into(),
            headers: list.clone(),
            body: None,
            status: 200,
            code: "",
        },
    )
    .await;
    assert_eq!(first.0, 200);

    let checkpoint = c.checkpoint().await.unwrap();
    let store = || v.state.as_ref().unwrap().vault.store.digest().unwrap();
    let before = store();
    let nonces = || {
        v.state
            .as_ref()
            .unwrap()
            .vault
            .store
            .danger_raw_tree(custos::store::T::Nonces)
            .len()
    };
    let nonces_before = nonces();

    let (ca, cb) = (a.case_id.as_str(), b.case_id.as_str());
    let patch_path = format!("/v1/cases/{ca}/uploads/{upload}");
    let tus = |offset: u64, body: &[u8]| -> Vec<(&'static str, String)> {
        vec![
            ("tus-resumable", "1.0.0".into()),
            ("upload-offset", offset.to_string()),
            ("content-type", "application/offset+octet-stream".into()),
            ("content-length", body.len().to_string()),
        ]
    };
    let mut rows = vec![
        // Bodies.
        signed_row(
            &v,
            "JSON body over 256 KiB",
            &admin,
            Method::POST,
            "/v1/principals",
            Some(vec![b' '; 300 * 1024]),
            vec![],
            (413, "payload_too_large"),
        ),
        signed_row(
            &v,
            "PATCH body over 16 MiB",
            &lawyer,
            Method::PATCH,
            &patch_path,
            Some(vec![0; custos::protocol::MAX_PATCH_BODY + 1]),
            tus(0, &vec![0; custos::protocol::MAX_PATCH_BODY + 1]),
            (413, "payload_too_large"),
        ),
        signed_row(
            &v,
            "malformed JSON",
            &admin,
            Method::POST,
            "/v1/principals",
            Some(b"{\"card\": ".to_vec()),
            vec![],
            (400, "bad_request"),
        ),
        signed_row(
            &v,
            "JSON of the wrong shape",
            &lawyer,
            Method::POST,
            &format!("/v1/cases/{cb}/grants"),
            Some(br#"{"key_id": 7, "envelope": []}"#.to_vec()),
            vec![],
            (400, "bad_request"),
        ),
        signed_row(
            &v,
            "a form post instead of JSON",
            &admin,
            Method::POST,
            "/v1/principals",
            Some(b"card=x&role=admin".to_vec()),
            vec![("content-type", "application/x-www-form-urlencoded".into())],
            (415, "unsupported_media_type"),
        ),
        signed_row(
            &v,
            "PATCH as JSON instead of offset+octet-stream",
            &lawyer,
            Method::PATCH,
            &patch_path,
            Some(b"{}".to_vec()),
            vec![
                ("tus-resumable", "1.0.0".into()),
                ("upload-offset", "0".into()),
                ("content-type", "application/json".into()),
            ],
            (415, "unsupported_media_type"),
        ),
        // tus.
        signed_row(
            &v,
            "PATCH without Tus-Resumable",
            &lawyer,
            Method::PATCH,
            &patch_path,
            Some(b"abc".to_vec()),
            vec![
                ("upload-offset", "0".into()),
                ("content-type", "application/offset+octet-stream".into()),
            ],
            (412, "tus_version"),
        ),
        signed_row(
            &v,
            "PATCH at the wrong offset",
            &lawyer,
            Method::PATCH,
            &patch_path,
            Some(b"abc".to_vec()),
            tus(5, b"abc"),
            (409, "upload_offset_mismatch"),
        ),
        signed_row(
            &v,
            "PATCH past Upload-Length",
            &lawyer,
            Method::PATCH,
            &patch_path,
            Some(vec![1; 1001]),
            tus(0, &[1; 1001]),
            (413, "payload_too_large"),
        ),
        signed_row(
            &v,
            "PATCH whose checksum is not its body's",
            &lawyer,
            Method::PATCH,
            &patch_path,
            Some(b"abc".to_vec()),
            [
                tus(0, b"abc"),
                vec![(
                    "upload-checksum",
                    "sha256 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
                )],
            ]
            .concat(),
            (460, "checksum_mismatch"),
        ),
        signed_row(
            &v,
            "PATCH with a negative offset",
            &lawyer,
            Method::PATCH,
            &patch_path,
            Some(b"abc".to_vec()),
            [
                vec![("upload-offset", "-1".into())],
                tus(0, b"abc")[..1].to_vec(),
                vec![("content-type", "application/offset+octet-stream".into())],
            ]
            .concat(),
            (400, "bad_request"),
        ),
        signed_row(
            &v,
            "upload of more than 64 GiB",
            &lawyer,
            Method::POST,
            &format!("/v1/cases/{ca}/uploads"),
            Some(vec![]),
            vec![
                ("tus-resumable", "1.0.0".into()),
                ("upload-length", (65u64 << 30).to_string()),
            ],
            (413, "payload_too_large"),
        ),
        // Ids in paths.
        signed_row(
            &v,
            "path traversal in a case id",
            &lawyer,
            Method::GET,
            "/v1/cases/..%2F..%2Fdb%2Fconf",
            None,
            vec![],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "path traversal in an object id",
            &lawyer,
            Method::GET,
            &format!("/v1/cases/{ca}/objects/..%2F..%2F..%2Flog.key"),
            None,
            vec![],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "path traversal in an upload id",
            &lawyer,
            Method::HEAD,
            &format!("/v1/cases/{ca}/uploads/..%2Fchunks"),
            None,
            vec![("tus-resumable", "1.0.0".into())],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "an object id of another length",
            &lawyer,
            Method::GET,
            &format!("/v1/cases/{ca}/objects/{}", &object[..10]),
            None,
            vec![],
            (404, "not_found"),
        ),
        // Who may see what.
        signed_row(
            &v,
            "a lawyer of case B probing case A",
            colleague.signing_key(),
            Method::GET,
            &format!("/v1/cases/{ca}"),
            None,
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "a revoked lawyer downloading",
            colleague.signing_key(),
            Method::GET,
            &format!("/v1/cases/{ca}/objects/{object}"),
            None,
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "a revoked lawyer granting himself back",
            colleague.signing_key(),
            Method::POST,
            &format!("/v1/cases/{ca}/grants"),
            Some(grant_body(&colleague.key_id())),
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "a removed principal",
            removed.signing_key(),
            Method::GET,
            "/v1/cases",
            None,
            vec![],
            (401, "unknown_key"),
        ),
        signed_row(
            &v,
            "an auditor downloading content",
            &auditor,
            Method::GET,
            &format!("/v1/cases/{ca}/objects/{object}"),
            None,
            vec![],
            (403, "forbidden"),
        ),
        signed_row(
            &v,
            "an admin reading a case",
            &admin,
            Method::GET,
            &format!("/v1/cases/{ca}"),
            None,
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "an admin downloading content",
            &admin,
            Method::GET,
            &format!("/v1/cases/{ca}/objects/{object}"),
            None,
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "case B's submitter reading case A",
            submitter_b.signing_key(),
            Method::GET,
            &format!("/v1/cases/{ca}"),
            None,
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "case B's submitter withdrawing case A",
            submitter_b.signing_key(),
            Method::POST,
            &format!("/v1/cases/{ca}/withdraw"),
            Some(b"{}".to_vec()),
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "a lawyer adding a principal",
            &lawyer,
            Method::POST,
            "/v1/principals",
            Some(
                serde_json::to_vec(&PrincipalBody {
                    card: removed.card(),
                    role: Role::Admin,
                    intake: false,
                })
                .unwrap(),
            ),
            vec![],
            (403, "forbidden"),
        ),
        signed_row(
            &v,
            "a key the vault never saw",
            &SigningKey::from_bytes(&[5; 32]),
            Method::GET,
            "/v1/cases",
            None,
            vec![],
            (401, "unknown_key"),
        ),
        signed_row(
            &v,
            "a range past the end",
            &lawyer,
            Method::GET,
            &format!("/v1/cases/{ca}/objects/{object}"),
            None,
            vec![("range", "bytes=999999999-".into())],
            (416, "range_not_satisfiable"),
        ),
        // Targets that are not their route's one form: what the router
        // would ignore must not be signed into the log.
        signed_row(
            &v,
            "a signed withdrawal with a query",
            submitter_b.signing_key(),
            Method::POST,
            &format!("/v1/cases/{cb}/withdraw?x=1"),
            Some(b"{}".to_vec()),
            vec![],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "a download with a query",
            &lawyer,
            Method::GET,
            &format!("/v1/cases/{ca}/objects/{object}?x"),
            None,
            vec![],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "an object id with a percent-escape",
            &lawyer,
            Method::GET,
            &format!("/v1/cases/{ca}/objects/%{:02X}{}", object.as_bytes()[0], &object[1..]),
            None,
            vec![],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "a dot segment",
            &lawyer,
            Method::GET,
            &format!("/v1/cases/{ca}/./objects/{object}"),
            None,
            vec![],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "a commit with a query",
            &lawyer,
            Method::POST,
            &format!("/v1/cases/{ca}/uploads/{upload}/commit?x=1"),
            Some(format!(r#"{{"sha256":"{object}","label":"AAAA"}}"#).into_bytes()),
            vec![],
            (400, "target_not_canonical"),
        ),
        signed_row(
            &v,
            "a log query out of its one form",
            &auditor,
            Method::GET,
            "/v1/log/entries?start=01",
            None,
            vec![],
            (400, "target_not_canonical"),
        ),
        // The router answers HEAD on GET routes; a signed HEAD would be
        // logged as the GET's action under another method.
        signed_row(
            &v,
            "a signed HEAD of a download",
            &lawyer,
            Method::HEAD,
            &format!("/v1/cases/{ca}/objects/{object}"),
            None,
            vec![],
            (405, "method_not_allowed"),
        ),
        signed_row(
            &v,
            "a signed HEAD of the backup",
            &admin,
            Method::HEAD,
            "/v1/vault/backup",
            None,
            vec![],
            (405, "method_not_allowed"),
        ),
        // Signed bodies that are not their one compact form.
        signed_row(
            &v,
            "a withdrawal with a null reason",
            submitter_b.signing_key(),
            Method::POST,
            &format!("/v1/cases/{cb}/withdraw"),
            Some(br#"{"reason":null}"#.to_vec()),
            vec![],
            (400, "body_not_canonical"),
        ),
        signed_row(
            &v,
            "a registration padded with spaces",
            &admin,
            Method::POST,
            "/v1/principals",
            Some({
                let mut body = serde_json::to_vec(&PrincipalBody {
                    card: removed.card(),
                    role: Role::Admin,
                    intake: false,
                })
                .unwrap();
                body.extend_from_slice(&[b' '; 1000]);
                body
            }),
            vec![],
            (400, "body_not_canonical"),
        ),
        signed_row(
            &v,
            "a grant with a field the API does not define",
            &lawyer,
            Method::POST,
            &format!("/v1/cases/{cb}/grants"),
            Some(format!(r#"{{"key_id":"{}","envelope":"AAAA","x":1}}"#, v.auditor.key_id()).into_bytes()),
            vec![],
            (400, "bad_request"),
        ),
        // No oracle: "not yours" is "does not exist".
        signed_row(
            &v,
            "a revoked lawyer exporting the case",
            colleague.signing_key(),
            Method::POST,
            &format!("/v1/cases/{ca}/export"),
            Some(vec![]),
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "an admin exporting a case",
            &admin,
            Method::POST,
            &format!("/v1/cases/{ca}/export"),
            Some(vec![]),
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "an admin revoking a grant nobody holds",
            &admin,
            Method::DELETE,
            &format!("/v1/cases/{ca}/grants/{}", v.auditor.key_id()),
            None,
            vec![],
            (404, "not_found"),
        ),
        signed_row(
            &v,
            "a lawyer reading the log's entries",
            &lawyer,
            Method::GET,
            "/v1/log/entries?start=0",
            None,
            vec![],
            (403, "forbidden"),
        ),
        signed_row(
            &v,
            "an admin reading a proof by index",
            &admin,
            Method::GET,
            "/v1/log/inclusion?index=0&size=1",
            None,
            vec![],
            (403, "forbidden"),
        ),
    ];
    // Signatures used elsewhere than where they were made.
    let unsigned = |what, method, path: String, headers, status, code| Row {
        what,
        method,
        path,
        headers,
        body: None,
        status,
        code,
    };
    rows.push(unsigned(
        "no signature",
        Method::GET,
        format!("/v1/cases/{ca}/objects/{object}"),
        vec![],
        401,
        "signature_missing",
    ));
    rows.push(unsigned(
        "an unsigned proof by index",
        Method::GET,
        "/v1/log/inclusion?index=0&size=1".into(),
        vec![],
        401,
        "signature_missing",
    ));
    // A Range the signature does not cover, and a request signed for
    // another vault's address sent here.
    let download = format!("/v1/cases/{ca}/objects/{object}");
    let mut uncovered = sign(&lawyer, &Method::GET, &format!("{}{download}", v.url), None, &[]);
    uncovered.push(("range", "bytes=10-".into()));
    rows.push(unsigned(
        "a range the signature does not cover",
        Method::GET,
        download.clone(),
        uncovered,
        400,
        "signature_incomplete",
    ));
    let port = v.url.rsplit(':').next().unwrap();
    rows.push(unsigned(
        "a request signed for another host",
        Method::GET,
        download,
        sign(
            &lawyer,
            &Method::GET,
            &format!("http://evil.example:{port}/v1/cases/{ca}/objects/{object}"),
            None,
            &[],
        ),
        401,
        "signature_invalid",
    ));
    rows.push(unsigned(
        "a replayed signature",
        Method::GET,
        "/v1/cases".into(),
        list.clone(),
        401,
        "signature_replayed",
    ));
    let fresh = sign(&lawyer, &Method::GET, &format!("{}/v1/cases", v.url), None, &[]);
    rows.push(unsigned(
        "a signature replayed on another endpoint",
        Method::GET,
        "/v1/principals".into(),
        fresh.clone(),
        401,
        "signature_invalid",
    ));
    rows.push(unsigned(
        "a signature replayed with another method",
        Method::DELETE,
        format!("/v1/principals/{}", colleague.key_id()),
        fresh,
        401,
        "signature_invalid",
    ));
    let grant_body =
        serde_json::to_vec(&serde_json::json!({"key_id": v.auditor.key_id(), "envelope": "AAAA"})).unwrap();
    let mut swapped = sign(
        &lawyer,
        &Method::POST,
        &format!("{}/v1/cases/{cb}/grants", v.url),
        Some(&grant_body),
        &[],
    );
    swapped.push(("content-type", "application/json".into()));
    rows.push(Row {
        what: "a signed body sent with another body",
        method: Method::POST,
        path: format!("/v1/cases/{cb}/grants"),
        headers: swapped,
        body: Some(br#"{"key_id": "0000000000000000", "envelope": "AAAA"}"#.to_vec()),
        status: 400,
        code: "digest_mismatch",
    });

    let mut wrong = Vec::new();
    for row in &rows {
        let got = send(&v.url, row).await;
        if got != (row.status, row.code.to_owned()) {
            wrong.push(format!(
                "{}: got {got:?}, want ({}, {:?})",
                row.what, row.status, row.code
            ));
        }
        assert_eq!(
            c.checkpoint().await.unwrap(),
            checkpoint,
            "{} changed the log",
            row.what
        );
        assert_eq!(store(), before, "{} changed the store", row.what);
    }

    // Raw connections: a body that stalls, and headers no server should
    // buffer.
    let addr = v.url.trim_start_matches("http://").to_owned();
    // A signed body that stalls; and an unsigned one never sent, which is
    // refused at once from its head, without waiting for its body.
    let stalled_sig: String = sign(
        &admin,
        &Method::POST,
        &format!("{}/v1/principals", v.url),
        Some(&[b' '; 100]),
        &[],
    )
    .into_iter()
    .map(|(n, v)| format!("{n}: {v}\r\n"))
    .collect();
    let stalled = format!(
        "POST /v1/principals HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{stalled_sig}content-length: 100\r\n\r\n{{\"card\":"
    );
    let got = exchange_text(&addr, stalled).await;
    if got != (408, "body_timeout".into()) {
        wrong.push(format!("a stalled body: got {got:?}, want (408, \"body_timeout\")"));
    }
    let unsent = format!(
        "PATCH {patch_path} HTTP/1.1\r\nhost: {addr}\r\ntus-resumable: 1.0.0\r\nupload-offset: 0\r\ncontent-type: application/offset+octet-stream\r\ncontent-length: 8388608\r\n\r\n"
    );
    let got = exchange_text(&addr, unsent).await;
    if got != (401, "signature_missing".into()) {
        wrong.push(format!(
            "an unsigned body never sent: got {got:?}, want (401, \"signature_missing\")"
        ));
    }
    // Headers trickled and never finished, or nothing sent at all: the
    // connection is closed once the client timeout has passed.
    for (what, head) in [
        (
            "headers that never end",
            format!("GET /v1/intake HTTP/1.1\r\nhost: {addr}\r\nx-slow: 1"),
        ),
        ("a connection that sends nothing", String::new()),
    ] {
        let started = std::time::Instant::now();
        let got = exchange_text(&addr, head).await;
        if got != (0, String::new()) || started.elapsed() > Duration::from_secs(15) {
            wrong.push(format!(
                "{what}: got {got:?} after {:?}, want the connection closed",
                started.elapsed()
            ));
        }
    }
    let huge = format!(
        "GET /v1/intake HTTP/1.1\r\nhost: {addr}\r\nx-filler: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let got = exchange_text(&addr, huge).await;
    if got.0 != 431 {
        wrong.push(format!("1 MiB of headers: got {got:?}, want 431"));
    }

    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    assert_eq!(c.checkpoint().await.unwrap(), checkpoint);
    assert_eq!(store(), before, "a refused request changed the store");
    assert!(
        nonces() - nonces_before <= rows.len(),
        "more nonces spent than requests made"
    );
    eprintln!(
        "abuse table: {} hostile requests refused precisely, store unchanged",
        rows.len() + 4
    );
}
