//! Limits that keep one client, or one case, from taking the whole vault:
//! connections, request bodies held in memory at once, and each case's
//! bytes and open uploads. Each limit is set low through the server's
//! settings (`TestVault::settings`), reached with real signed requests, and
//! the request past it refused at once with its own code, without changing
//! the store.

use crate::util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::{Client, ClientError, RequestParts};
use ed25519_dalek::SigningKey;
use reqwest::Method;
use sha2::{Digest, Sha256};
use util::TestVault;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

fn digest(v: &TestVault) -> [u8; 32] {
    v.state.as_ref().unwrap().vault.store.digest().unwrap()
}

/// Status and `custos-error` code of one answer read from `s`, or status 0
/// and what went wrong.
fn read_answer(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut piece) {
            Ok(0) => return (0, "closed without an answer".into()),
            Ok(n) => buf.extend_from_slice(&piece[..n]),
            Err(e) => return (0, format!("no answer in time ({e})")),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let code = text
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case("custos-error")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, code)
}

/// The head of a tus PATCH of `body` at offset 0 of `upload`, signed by
/// `key` for the vault at `base`.
fn patch_head(base: &str, key: &SigningKey, upload: &str, body: &[u8]) -> Vec<u8> {
    let sha = B64.encode(Sha256::digest(body));
    let covered = vec![("upload-offset", "0".to_owned())];
    let parts = RequestParts {
        headers: vec![("content-digest", format!("sha-256=:{sha}:")), covered[0].clone()],
        covered: vec!["upload-offset"],
        body: Some(body.to_vec()),
    };
    let mut head = format!("PATCH {upload} HTTP/1.1\r\nhost: {}\r\n", addr_of(base));
    let signature = Client::signature_headers(key, &Method::PATCH, &format!("{base}{upload}"), &parts, now());
    for (n, v) in signature.into_iter().chain(covered) {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-digest: sha-256=:{sha}:\r\ntus-resumable: 1.0.0\r\n\
         content-type: application/offset+octet-stream\r\ncontent-length: {}\r\n\r\n",
        body.len()
    ));
    head.into_bytes()
}

/// (status, code) of a client call that must fail.
fn refusal<T>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        Err(other) => panic!("not an API refusal: {other}"),
        Ok(_) => (0, "accepted".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_refused_at_once() {
    let mut v = TestVault::start().await;
    v.stop().await;
    v.settings.max_connections = 3;
    v.client_timeout = Duration::from_secs(10);
    v.serve().await;
    let addr = addr_of(&v.url);

    let (fourth, held) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            // Three connections, each stuck in its request line.
            let held: Vec<TcpStream> = (0..3)
                .map(|_| {
                    let mut s = TcpStream::connect(&addr).unwrap();
                    s.write_all(b"GET /v1/int").unwrap();
                    s
                })
                .collect();
            std::thread::sleep(Duration::from_millis(300));
            // A fourth: answered whether or not it sends a request (a
            // server may refuse before reading one, or answer the request).
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut first = [0u8; 1];
            let early = match s.peek(&mut first) {
                Ok(n) => n > 0,
                Err(_) => false,
            };
            if !early {
                let _ = s.write_all(format!("GET /v1/intake HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes());
            }
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let answer = read_answer(&mut s);
            // Then closed: end of stream (or a reset), not silence.
            let mut rest = Vec::new();
            let closed = match s.read_to_end(&mut rest) {
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            };
            ((answer, closed), held)
        }
    })
    .await
    .unwrap();
    let ((status, code), closed) = fourth;
    assert_eq!(
        (status, code.as_str()),
        (503, "too_many_connections"),
        "a fourth connection while three are held, with max_connections = 3"
    );
    assert!(closed, "the refused connection was left open");

    drop(held);
    // Once they are gone, the vault serves again.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut last = None;
    for _ in 0..50 {
        match http.get(format!("{}/v1/intake", v.url)).send().await {
            Ok(r) if r.status() == 200 => {
                last = None;
                break;
            }
            Ok(r) => last = Some(format!("{} {:?}", r.status(), r.headers().get("custos-error"))),
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, None, "after the held connections closed, a request still fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_past_max_body_bytes_in_flight_are_refused_at_once() {
    let mut v = TestVault::start().await;
    let case = v.submit(b"statement", &[]).await.case_id;
    v.stop().await;
    v.settings.max_body_bytes_in_flight = 1 << 20;
    v.serve().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    const LEN: usize = 768 * 1024;
    let first = c.create_upload(&lawyer, &case, LEN as u64).await.unwrap();
    let second = c.create_upload(&lawyer, &case, LEN as u64).await.unwrap();
    let (d1, d2) = (util::bytes(11, LEN), util::bytes(12, LEN));
    let (url, addr) = (v.url.clone(), addr_of(&v.url));
    let before = digest(&v);

    let (busy, done) = tokio::task::spawn_blocking({
        let (lawyer, first, second, d1, d2) = (lawyer.clone(), first.clone(), second.clone(), d1.clone(), d2.clone());
        move || {
            // The first PATCH: headers and half its body.
            let mut s1 = TcpStream::connect(&addr).unwrap();
            s1.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s1.write_all(&patch_head(&url, &lawyer, &first, &d1)).unwrap();
            s1.write_all(&d1[..LEN / 2]).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            // The second: its headers only; the answer must not wait for
            // its body.
            let mut s2 = TcpStream::connect(&addr).unwrap();
            s2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s2.write_all(&patch_head(&url, &lawyer, &second, &d2)).unwrap();
            let busy = read_answer(&mut s2);
            drop(s2);
            // The first finishes.
            s1.write_all(&d1[LEN / 2..]).unwrap();
            let done = read_answer(&mut s1);
            (busy, done)
        }
    })
    .await
    .unwrap();
    assert_eq!(
        (busy.0, busy.1.as_str()),
        (503, "server_busy"),
        "a second 768 KiB PATCH while one holds 768 KiB of a 1 MiB budget"
    );
    assert_eq!(done.0, 204, "the first PATCH, finished: {done:?}");
    assert_ne!(digest(&v), before, "the first PATCH was stored");
    assert_eq!(c.upload_offset(&lawyer, &second).await.unwrap(), 0);
    // With the budget free again, the second goes through.
    assert_eq!(c.patch(&lawyer, &second, 0, d2).await.unwrap(), LEN as u64);
    assert_eq!(c.upload_offset(&lawyer, &first).await.unwrap(), LEN as u64);
}

#[tokio::test]
async fn uploads_past_a_cases_byte_quota_are_refused() {
    const QUOTA: u64 = 1 << 20;
    let mut v = TestVault::start().await;
    v.stop().await;
    v.settings.max_case_bytes = QUOTA;
    v.serve().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    let case = v
        .submit(b"statement", &[("photo.jpg", util::bytes(13, 300_000))])
        .await
        .case_id;
    let other = v.submit(b"another case", &[]).await.case_id;
    let committed: u64 = c
        .case(&lawyer, &case)
        .await
        .unwrap()
        .objects
        .iter()
        .map(|o| o.size)
        .sum();
    let room = QUOTA - committed;

    // Open uploads count with their declared length.
    c.create_upload(&lawyer, &case, room - 100).await.unwrap();
    let before = digest(&v);
    assert_eq!(
        refusal(c.create_upload(&lawyer, &case, 101).await),
        (413, "case_quota_exceeded".into()),
        "an upload 1 byte past the case's quota ({committed} committed, {} open, quota {QUOTA})",
        room - 100
    );
    assert_eq!(digest(&v), before, "the refused upload changed the store");
    // Up to the quota exactly is fine.
    c.create_upload(&lawyer, &case, 100).await.unwrap();
    let before = digest(&v);
    assert_eq!(
        refusal(c.create_upload(&lawyer, &case, 1).await),
        (413, "case_quota_exceeded".into()),
        "one byte more on a full case"
    );
    assert_eq!(digest(&v), before, "the refused upload changed the store");
    // The quota is per case.
    c.create_upload(&lawyer, &other, room).await.unwrap();
}

#[tokio::test]
async fn a_case_has_at_most_max_case_open_uploads() {
    let mut v = TestVault::start().await;
    v.stop().await;
    v.settings.max_case_open_uploads = 8;
    v.serve().await;
    let c = v.client();
    let lawyer = v.lawyer.signing_key().clone();
    let s = v.submit(b"statement", &[]).await;
    let other = v.submit(b"another case", &[]).await.case_id;
    let submitter = s.codename.derive(util::ORIGIN);
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(c.create_upload(&lawyer, &s.case_id, 1000).await.unwrap());
    }
    let before = digest(&v);
    for (who, key) in [("the lawyer", &lawyer), ("the submitter", submitter.signing_key())] {
        assert_eq!(
            refusal(c.create_upload(key, &s.case_id, 1000).await),
            (409, "case_uploads_exceeded".into()),
            "a ninth open upload on one case, by {who}"
        );
    }
    assert_eq!(digest(&v), before, "a refused upload changed the store");
    // Other cases are not affected.
    c.create_upload(&lawyer, &other, 1000).await.unwrap();
    // A terminated upload is no longer open.
    let parts = RequestParts {
        headers: vec![("tus-resumable", "1.0.0".into())],
        ..Default::default()
    };
    c.send(Some(&lawyer), Method::DELETE, &open[0], parts).await.unwrap();
    c.create_upload(&lawyer, &s.case_id, 1000).await.unwrap();
}

/// A body must keep a pace, not only keep moving: one that trickles a byte
/// at a time is cut off after one stretch of the client timeout, however
/// long it declared itself, so it cannot hold its share of the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_patch_is_cut_off_after_one_stretch() {
    let mut v = TestVault::start().await;
    let case = v.submit(b"statement", &[]).await.case_id;
    v.stop().await;
    v.client_timeout = Duration::from_secs(1);
    v.serve().await;
    let lawyer = v.lawyer.signing_key().clone();
    const LEN: usize = 1 << 20;
    let upload = v.client().create_upload(&lawyer, &case, LEN as u64).await.unwrap();
    let (url, addr) = (v.url.clone(), addr_of(&v.url));
    let before = digest(&v);
    let answer = tokio::task::spawn_blocking(move || {
        let body = util::bytes(13, LEN);
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        s.write_all(&patch_head(&url, &lawyer, &upload, &body)).unwrap();
        // A byte every 100 ms, and listen in between: at the old pace
        // (a stall timer, and a deadline grown from the declared length)
        // this would go on for over a minute.
        for byte in body.iter().take(100) {
            if s.write_all(std::slice::from_ref(byte)).is_err() {
                break;
            }
            let answer = read_answer(&mut s);
            if answer.0 != 0 {
                return answer;
            }
        }
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        read_answer(&mut s)
    })
    .await
    .unwrap();
    assert_eq!((answer.0, answer.1.as_str()), (408, "body_timeout"), "{answer:?}");
    assert_eq!(digest(&v), before, "the cut-off PATCH changed the store");
}

/// A PATCH the vault would refuse is refused from its head: its body is
/// never read, nor does it wait for one (an unknown upload, the wrong
/// offset, a length past the upload's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_refused_by_its_head_is_answered_before_its_body() {
    let v = TestVault::start().await;
    let case = v.submit(b"statement", &[]).await.case_id;
    let lawyer = v.lawyer.signing_key().clone();
    let upload = v.client().create_upload(&lawyer, &case, 1000).await.unwrap();
    let made_up = format!("/v1/cases/{case}/uploads/{}", "ab".repeat(16));
    let before = digest(&v);
    for (what, path, offset, len, want) in [
        ("an upload that does not exist", made_up, 0, 1000, (404, "not_found")),
        (
            "the wrong offset",
            upload.clone(),
            10,
            990,
            (409, "upload_offset_mismatch"),
        ),
        (
            "past the upload's length",
            upload.clone(),
            0,
            1001,
            (413, "payload_too_large"),
        ),
    ] {
        let (url, addr, lawyer) = (v.url.clone(), addr_of(&v.url), lawyer.clone());
        let answer = tokio::task::spawn_blocking(move || {
            let body = util::bytes(14, len);
            let mut head = String::from_utf8(patch_head(&url, &lawyer, &path, &body)).unwrap();
            if offset > 0 {
                // Re-sign for this offset: the signature covers it.
                let parts = RequestParts {
                    headers: vec![
                        ("content-digest", format!("sha-256=:{}:", B64.encode(Sha256::digest(&body)))),
                        ("upload-offset", offset.to_string()),
                    ],
                    covered: vec!["upload-offset"],
                    body: Some(body.clone()),
                };
                head = format!("PATCH {path} HTTP/1.1\r\nhost: {}\r\n", addr_of(&url));
                for (n, v) in Client::signature_headers(&lawyer, &Method::PATCH, &format!("{url}{path}"), &parts, now())
                    .into_iter()
                    .chain(parts.headers.clone())
                {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str(&format!(
                    "tus-resumable: 1.0.0\r\ncontent-type: application/offset+octet-stream\r\ncontent-length: {len}\r\n\r\n"
                ));
            }
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            read_answer(&mut s)
        })
        .await
        .unwrap();
        assert_eq!((answer.0, answer.1.as_str()), want, "{what}: {answer:?}");
    }
    assert_eq!(digest(&v), before);
}

/// A connection that idles gives its slot back: an HTTP/1.1 keep-alive
/// connection is closed after the client timeout, and HTTP/2 (which
/// could idle for ever once its preface is sent) is not spoken at all; the
/// TLS proxy in front speaks it to clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_give_their_slot_back() {
    let mut v = TestVault::start().await;
    v.stop().await;
    v.client_timeout = Duration::from_secs(1);
    v.settings.max_connections = 1;
    v.serve().await;
    let addr = addr_of(&v.url);
    let (idle, h2) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(read_answer(&mut s).0, 200);
        let mut rest = Vec::new();
        let idle = s.read_to_end(&mut rest).map(|_| ()).map_err(|e| e.to_string());
        let mut h2 = TcpStream::connect(&addr).unwrap();
        h2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .unwrap();
        let mut got = Vec::new();
        let h2 = h2.read_to_end(&mut got).map(|_| got).map_err(|e| e.to_string());
        (idle, h2)
    })
    .await
    .unwrap();
    idle.expect("an idle keep-alive connection was held open");
    let h2 = h2.expect("an HTTP/2 connection was held open");
    assert!(
        !String::from_utf8_lossy(&h2).contains("HTTP/2") && !h2.starts_with(&[0, 0]),
        "the vault spoke HTTP/2: {h2:?}"
    );
    // The one slot is free again.
    let c = v.client();
    c.checkpoint().await.unwrap();
}
