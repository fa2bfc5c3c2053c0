//! tus 1.0 behaviour of uploads: resume from the server's offset, checksum,
//! termination, and every malformed or hostile request refused with its
//! code while the upload stays as it was.

use crate::util;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::{Client, RequestParts};
use custos::wire::CommitUpload;
use reqwest::Method;
use sha2::{Digest, Sha256};
use util::{bytes, TestVault, ORIGIN};

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_servers_offset() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let data = bytes(11, 600_000);
    let upload = client.create_upload(key, &s.case_id, data.len() as u64).await.unwrap();
    assert_eq!(client.upload_offset(key, &upload).await.unwrap(), 0);
    client.patch(key, &upload, 0, data[..250_000].to_vec()).await.unwrap();

    // The client "crashes"; a new one asks where to continue.
    let again = Client::new(&v.url).unwrap();
    let offset = again.upload_offset(key, &upload).await.unwrap();
    assert_eq!(offset, 250_000);
    // A stale retry of the first part is refused, and changes nothing.
    let err = again
        .patch(key, &upload, 0, data[..250_000].to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("upload_offset_mismatch"));
    assert_eq!(again.upload_offset(key, &upload).await.unwrap(), 250_000);
    again
        .patch(key, &upload, offset, data[offset as usize..].to_vec())
        .await
        .unwrap();
    let sha = hex::encode(Sha256::digest(&data));
    let done = again
        .commit(
            key,
            &upload,
            &CommitUpload {
                sha256: sha.clone(),
                label: B64.encode(b"lbl"),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.object_id, sha);

    let mut back = Vec::new();
    let (_, got) = client
        .download(v.lawyer.signing_key(), &s.case_id, &sha, &mut back)
        .await
        .unwrap();
    assert_eq!((got, back), (sha, data));
}

#[tokio::test]
async fn hostile_upload_requests_are_refused_and_change_nothing() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let upload = client.create_upload(key, &s.case_id, 1000).await.unwrap();
    client.patch(key, &upload, 0, vec![1u8; 100]).await.unwrap();

    let send = |headers: Vec<(&'static str, String)>, covered: Vec<&'static str>, body: Vec<u8>| {
        let (client, upload) = (client.clone(), upload.clone());
        async move {
            client
                .send(
                    Some(key),
                    Method::PATCH,
                    &upload,
                    RequestParts {
                        headers,
                        covered,
                        body: Some(body),
                    },
                )
                .await
                .unwrap_err()
        }
    };
    let tus = || ("tus-resumable", "1.0.0".to_owned());
    let octets = || ("content-type", "application/offset+octet-stream".to_owned());
    let at = |o: u64| ("upload-offset", o.to_string());

    // Missing Tus-Resumable.
    let e = send(vec![octets(), at(100)], vec!["upload-offset"], vec![2; 10]).await;
    assert_eq!((e.code(), status(&e)), (Some("tus_version"), 412));
    // Wrong content type.
    let e = send(
        vec![tus(), ("content-type", "text/plain".into()), at(100)],
        vec!["upload-offset"],
        vec![2; 10],
    )
    .await;
    assert_eq!((e.code(), status(&e)), (Some("unsupported_media_type"), 415));
    // Offset not covered by the signature.
    let e = send(vec![tus(), octets(), at(100)], vec![], vec![2; 10]).await;
    assert_eq!(e.code(), Some("signature_incomplete"));
    // Checksum that does not match the data.
    let bad_sum = format!("sha256 {}", B64.encode(Sha256::digest(b"other")));
    let e = send(
        vec![tus(), octets(), at(100), ("upload-checksum", bad_sum)],
        vec!["upload-offset"],
        vec![2; 10],
    )
    .await;
    assert_eq!((e.code(), status(&e)), (Some("checksum_mismatch"), 460));
    // Past the declared length.
    let e = send(vec![tus(), octets(), at(100)], vec!["upload-offset"], vec![2; 901]).await;
    assert_eq!((e.code(), status(&e)), (Some("payload_too_large"), 413));
    // Someone else's key on this upload: it does not exist for them.
    let e = client
        .patch(v.lawyer.signing_key(), &upload, 100, vec![2; 10])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"));
    // A body larger than any PATCH may be.
    let huge = vec![0u8; custos::protocol::MAX_PATCH_BODY + 1];
    let e = send(vec![tus(), octets(), at(100)], vec!["upload-offset"], huge).await;
    assert_eq!((e.code(), status(&e)), (Some("payload_too_large"), 413));

    assert_eq!(
        client.upload_offset(key, &upload).await.unwrap(),
        100,
        "nothing above moved the offset"
    );

    // Upload lengths of zero or beyond the limit are refused at creation.
    for len in [0, custos::protocol::MAX_UPLOAD_LENGTH + 1] {
        let e = client.create_upload(key, &s.case_id, len).await.unwrap_err();
        assert_eq!(e.code(), Some("payload_too_large"), "length {len}");
    }
    // Uploads to a case by someone who may not add to it.
    let e = client
        .create_upload(v.auditor.signing_key(), &s.case_id, 10)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("forbidden"));
    // Path traversal and junk ids never reach the store: the client
    // refuses them before it signs anything, and the vault when they are
    // sent anyway.
    let e = client.create_upload(key, "../../etc", 10).await.unwrap_err();
    assert!(matches!(e, custos::client::ClientError::Usage(_)), "{e:?}");
    let e = client
        .send(
            Some(key),
            Method::POST,
            "/v1/cases/../../etc/uploads",
            RequestParts {
                headers: vec![tus(), ("upload-length", "10".into())],
                covered: vec!["upload-length"],
                body: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), 404);

    // Termination removes the upload.
    client
        .send(
            Some(key),
            Method::DELETE,
            &upload,
            RequestParts {
                headers: vec![tus()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let e = client.upload_offset(key, &upload).await.unwrap_err();
    assert_eq!(e.code(), Some("not_found"));
}

#[tokio::test]
async fn malformed_and_oversize_json_is_refused() {
    let v = TestVault::start().await;
    let client = v.client();
    let json = |body: Vec<u8>| RequestParts {
        headers: vec![("content-type", "application/json".into())],
        body: Some(body),
        ..Default::default()
    };
    let e = client
        .send(
            Some(v.admin.signing_key()),
            Method::POST,
            "/v1/principals",
            json(b"{not json".to_vec()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("bad_request"));
    let e = client
        .send(
            Some(v.admin.signing_key()),
            Method::POST,
            "/v1/principals",
            json(vec![b' '; custos::protocol::MAX_JSON_BODY + 1]),
        )
        .await
        .unwrap_err();
    assert_eq!((e.code(), status(&e)), (Some("payload_too_large"), 413));
    // Proofs by index are the auditors'; a query not in its one form is
    // refused before it is parsed.
    let e = client
        .send(
            Some(v.auditor.signing_key()),
            Method::GET,
            "/v1/log/inclusion?index=x&size=1",
            RequestParts::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("target_not_canonical"));
    let e = client
        .send(None, Method::GET, "/v1/no-such-route", RequestParts::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"));
}

fn status(e: &custos::client::ClientError) -> u16 {
    match e {
        custos::client::ClientError::Api { status, .. } => *status,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn uploads_that_stop_moving_expire_and_the_others_stay() {
    let mut v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let stalled = client.create_upload(key, &s.case_id, 1000).await.unwrap();
    client.patch(key, &stalled, 0, bytes(3, 400)).await.unwrap();
    let moving = client.create_upload(key, &s.case_id, 1000).await.unwrap();

    // tus expiration: the server says when each upload will be dropped.
    let parts = RequestParts {
        headers: vec![("tus-resumable", "1.0.0".into())],
        ..Default::default()
    };
    let head = client.send(Some(key), Method::HEAD, &stalled, parts).await.unwrap();
    let expires = head.headers()["upload-expires"].to_str().unwrap().to_owned();
    let when = time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc2822).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ttl = custos::store::UPLOAD_TTL_SECS;
    assert!((when.unix_timestamp() - (now + ttl)).abs() <= 5, "{expires}");

    // A week later one of them has moved on; the other has not.
    v.stop().await;
    let vault = custos::vault::open(&v.data_dir()).unwrap();
    assert_eq!(
        custos::api::expire_uploads(&vault.store, now + ttl - 60).await.unwrap(),
        0
    );
    let mut record: custos::store::UploadRecord = vault
        .store
        .get_json(custos::store::T::Uploads, moving.rsplit('/').next().unwrap())
        .unwrap()
        .unwrap();
    record.touched = now + ttl - 60;
    let mut batch = custos::store::Batch::default();
    batch.put_json(
        custos::store::T::Uploads,
        moving.rsplit('/').next().unwrap().as_bytes(),
        &record,
    );
    vault.store.apply(&vault.store.writer().await, batch).unwrap();
    assert_eq!(
        custos::api::expire_uploads(&vault.store, now + ttl + 1).await.unwrap(),
        1
    );
    drop(vault);
    v.serve().await;

    let client = v.client();
    let gone = client.upload_offset(key, &stalled).await.unwrap_err();
    assert_eq!(status(&gone), 404);
    assert_eq!(client.upload_offset(key, &moving).await.unwrap(), 0);
    // The case and what it held are untouched.
    let detail = client.case(v.lawyer.signing_key(), &s.case_id).await.unwrap();
    assert_eq!(detail.objects.len(), 1);
}

#[tokio::test]
async fn downloads_resume_with_range_requests_and_each_is_logged() {
    let v = TestVault::start().await;
    let data = bytes(5, 3_000_000);
    let s = v.submit(b"statement", &[("big.bin", data)]).await;
    let client = v.client();
    let key = v.lawyer.signing_key();
    let detail = client.case(key, &s.case_id).await.unwrap();
    let big = detail.objects.iter().max_by_key(|o| o.size).unwrap();
    let mut whole = Vec::new();
    client
        .download(key, &s.case_id, &big.object_id, &mut whole)
        .await
        .unwrap();

    // From the middle of a stored chunk: the rest, and a logged access.
    let from = 1_500_123;
    let mut hasher = Sha256::new();
    hasher.update(&whole[..from]);
    let mut rest = Vec::new();
    let receipt = client
        .download_from(key, &s.case_id, &big.object_id, from as u64, &mut rest, &mut hasher)
        .await
        .unwrap();
    assert_eq!(rest, whole[from..]);
    assert_eq!(hex::encode(hasher.finalize()), big.object_id);
    let (event, _) = custos::audit::verify_receipt(&receipt, &v.log).unwrap();
    assert_eq!(event.action, custos::custody::Action::ObjectAccessed);
    assert_eq!(event.details["from"], from as u64);

    // At or past the end: 416, with the size in Content-Range.
    let path = format!("/v1/cases/{}/objects/{}", s.case_id, big.object_id);
    for start in [big.size, big.size + 10] {
        let parts = RequestParts {
            headers: vec![("range", format!("bytes={start}-"))],
            covered: vec!["range"],
            ..Default::default()
        };
        let e = client.send(Some(key), Method::GET, &path, parts).await.unwrap_err();
        assert_eq!((status(&e), e.code()), (416, Some("range_not_satisfiable")));
    }
    // A range form the vault does not serve is ignored: the whole object.
    let parts = RequestParts {
        headers: vec![("range", "bytes=0-10".into())],
        covered: vec!["range"],
        ..Default::default()
    };
    let resp = client.send(Some(key), Method::GET, &path, parts).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(resp.bytes().await.unwrap().len() as u64, big.size);
}

/// Every chunk file and small chunk in a vault's store.
fn stored_chunks(store: &custos::store::Store) -> usize {
    let dir = store.chunk_file(&[0u8; 32]);
    let root = dir.parent().unwrap().parent().unwrap();
    let files: usize = std::fs::read_dir(root)
        .unwrap()
        .map(|fan| std::fs::read_dir(fan.unwrap().path()).unwrap().count())
        .sum();
    files + store.danger_raw_tree(custos::store::T::Chunks).len()
}

#[tokio::test]
async fn chunks_of_dropped_uploads_are_collected_and_stored_objects_keep_theirs() {
    let mut v = TestVault::start().await;
    // Over one chunk, so that the object has chunk files of its own.
    let evidence = bytes(21, 5_000_000);
    let s = v.submit(b"statement", &[("video.bin", evidence.clone())]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let detail = client.case(v.lawyer.signing_key(), &s.case_id).await.unwrap();
    let big = detail.objects.iter().find(|o| o.size > 4_000_000).unwrap();
    let mut stored = Vec::new();
    client
        .download(v.lawyer.signing_key(), &s.case_id, &big.object_id, &mut stored)
        .await
        .unwrap();
    let chunk = custos::store::CHUNK_SIZE;
    let terminate = |upload: String| {
        let parts = RequestParts {
            headers: vec![("tus-resumable", "1.0.0".into())],
            ..Default::default()
        };
        let client = v.client();
        async move { client.send(Some(key), Method::DELETE, &upload, parts).await.unwrap() }
    };

    // Terminated: two chunk files of its own.
    let dropped = client.create_upload(key, &s.case_id, 6_000_000).await.unwrap();
    client.patch(key, &dropped, 0, bytes(5, chunk)).await.unwrap();
    client
        .patch(key, &dropped, chunk as u64, bytes(6, 1_000_000))
        .await
        .unwrap();
    terminate(dropped).await;
    // Terminated, but its one chunk is the stored object's first chunk.
    let shared = client.create_upload(key, &s.case_id, 6_000_000).await.unwrap();
    client.patch(key, &shared, 0, stored[..chunk].to_vec()).await.unwrap();
    terminate(shared).await;
    // Left to expire: one small chunk.
    let stalled = client.create_upload(key, &s.case_id, 1000).await.unwrap();
    client.patch(key, &stalled, 0, bytes(7, 400)).await.unwrap();
    v.stop().await;

    {
        let vault = custos::vault::open(&v.data_dir()).unwrap();
        let store = &vault.store;
        let before = stored_chunks(store);
        let later = time::OffsetDateTime::now_utc().unix_timestamp() + custos::store::UPLOAD_TTL_SECS + 1;
        assert_eq!(custos::api::expire_uploads(store, later).await.unwrap(), 1);
        assert!(store.has_garbage());
        assert_eq!(
            store.collect_chunks().await.unwrap(),
            3,
            "two files and one small chunk"
        );
        assert_eq!(stored_chunks(store), before - 3);
        assert_eq!(store.collect_chunks().await.unwrap(), 0, "nothing left to take");
        assert!(!store.has_garbage());
    }

    v.serve().await;
    let out = v.tmp.path().join("got");
    let client = v.client();
    let got = custos::client::flows::get_case(&client, &v.lawyer, &v.log, &s.case_id, &out)
        .await
        .unwrap();
    let video = got.files.iter().find(|f| f.path.ends_with("video.bin")).unwrap();
    assert_eq!(std::fs::read(&video.path).unwrap(), evidence, "the shared chunk stayed");
}

/// An object of more chunks than one step of a chunk list
/// (`store::LIST_STEP`) has its list written ahead of the commit, in
/// steps, and the commit's transaction holds only the last: the object
/// downloads whole, its list has every row once, and the upload's list is
/// gone with the upload.
#[tokio::test]
async fn an_object_of_many_chunks_is_committed_in_steps_and_downloads_whole() {
    let mut v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    // One chunk per PATCH: two steps ahead and three rows in the commit.
    let piece = 1000;
    let data = bytes(43, (2 * custos::store::LIST_STEP as usize + 3) * piece);
    let upload = client.create_upload(key, &s.case_id, data.len() as u64).await.unwrap();
    for (i, part) in data.chunks(piece).enumerate() {
        client
            .patch(key, &upload, (i * piece) as u64, part.to_vec())
            .await
            .unwrap();
    }
    let sha = hex::encode(Sha256::digest(&data));
    let body = CommitUpload {
        sha256: sha.clone(),
        label: B64.encode(b"lbl"),
    };
    assert_eq!(client.commit(key, &upload, &body).await.unwrap().object_id, sha);
    let mut got = Vec::new();
    client
        .download(v.lawyer.signing_key(), &s.case_id, &sha, &mut got)
        .await
        .unwrap();
    assert!(got == data, "the object downloads whole");
    v.stop().await;

    let vault = custos::vault::open(&v.data_dir()).unwrap();
    let object = hex::decode(&sha).unwrap();
    let rows: Vec<Vec<u8>> = vault
        .store
        .keys(custos::store::T::ObjectChunks)
        .map(|k| k.unwrap())
        .filter(|k| k.starts_with(&object))
        .collect();
    let expected: Vec<Vec<u8>> = (0..data.len() / piece)
        .map(|i| custos::store::indexed_key(&object, i as u64))
        .collect();
    assert_eq!(rows, expected, "one row per chunk, in order, none past the end");
    assert_eq!(vault.store.record_count(custos::store::T::UploadChunks), 0);
    assert_eq!(vault.store.record_count(custos::store::T::Uploads), 0);
}

/// An upload cut partway resumes from a replay of its encryption, kept as
/// a resume journal keeps it (through JSON): the client makes the part
/// the vault holds again, hashes it without sending it, and sends the
/// rest. The vault's commit, which checks the SHA-256 of all it holds,
/// accepts the object id the replay computed, and the object opens to the
/// file, so the replayed bytes are exactly the ones first sent.
#[tokio::test]
async fn a_replayed_encryption_resumes_an_upload_the_vault_accepts_whole() {
    use custos::envelope::{decrypt_bytes, CaseKey, ReplayableEncryption};
    use std::io::Read;
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let case_key = CaseKey::generate();
    let plain = bytes(21, 5_000_000);
    let len = plain.len() as u64;

    let first = ReplayableEncryption::new(&[&case_key.recipient()]).unwrap();
    let length = first.ciphertext_len(len);
    let upload = client.create_upload(key, &s.case_id, length).await.unwrap();
    let mut sent = vec![0u8; 1_300_000];
    first.reader(&plain[..], len).read_exact(&mut sent).unwrap();
    client.patch(key, &upload, 0, sent).await.unwrap();
    let journal = serde_json::to_vec(&first).unwrap();
    drop(first);

    // "Killed": a new client, with only the journal and the plaintext.
    let again = Client::new(&v.url).unwrap();
    let replay: ReplayableEncryption = serde_json::from_slice(&journal).unwrap();
    let offset = again.upload_offset(key, &upload).await.unwrap();
    assert_eq!(offset, 1_300_000);
    let sha = again
        .upload_from(
            key,
            &upload,
            replay.reader(std::io::Cursor::new(plain.clone()), len),
            length,
            offset,
        )
        .await
        .unwrap();
    let done = again
        .commit(
            key,
            &upload,
            &CommitUpload {
                sha256: sha.clone(),
                label: B64.encode(b"lbl"),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.object_id, sha);
    let mut back = Vec::new();
    let (_, got) = client
        .download(v.lawyer.signing_key(), &s.case_id, &sha, &mut back)
        .await
        .unwrap();
    assert_eq!(got, sha);
    assert_eq!(back.len() as u64, length);
    assert!(decrypt_bytes(&back, case_key.identity()).unwrap() == plain);

    // A different encryption of the same file, resumed onto the prefix of
    // this one, does not hash to what the vault holds: refused at commit.
    // age adds a random "grease" stanza to each header, so the two can
    // differ in length: the upload is declared with the other's length.
    let other = ReplayableEncryption::new(&[&case_key.recipient()]).unwrap();
    let length = other.ciphertext_len(len);
    let upload = client.create_upload(key, &s.case_id, length).await.unwrap();
    let mut sent = vec![0u8; 1_300_000];
    replay.reader(&plain[..], len).read_exact(&mut sent).unwrap();
    client.patch(key, &upload, 0, sent).await.unwrap();
    let sha = client
        .upload_from(
            key,
            &upload,
            other.reader(std::io::Cursor::new(plain.clone()), len),
            length,
            1_300_000,
        )
        .await
        .unwrap();
    let err = client
        .commit(
            key,
            &upload,
            &CommitUpload {
                sha256: sha,
                label: B64.encode(b"lbl"),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("hash_mismatch"));
}

/// The vault keeps each upload's running SHA-256 in memory only. Restarted
/// between two PATCHes it has none, and the commit hashes what it stored
/// instead: the right hash is accepted and a wrong one still refused.
#[tokio::test]
async fn a_commit_after_the_vault_restarted_mid_upload_hashes_what_it_stored() {
    let mut v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let data = bytes(31, 6_000_000);
    let upload = v
        .client()
        .create_upload(key, &s.case_id, data.len() as u64)
        .await
        .unwrap();
    v.client()
        .patch(key, &upload, 0, data[..2_500_000].to_vec())
        .await
        .unwrap();

    v.stop().await;
    v.serve().await;
    let client = v.client();
    assert_eq!(client.upload_offset(key, &upload).await.unwrap(), 2_500_000);
    client
        .patch(key, &upload, 2_500_000, data[2_500_000..].to_vec())
        .await
        .unwrap();
    let commit = |sha256: String| {
        let (client, upload) = (client.clone(), upload.clone());
        async move {
            client
                .commit(
                    key,
                    &upload,
                    &CommitUpload {
                        sha256,
                        label: B64.encode(b"lbl"),
                    },
                )
                .await
        }
    };
    let wrong = hex::encode(Sha256::digest(&data[1..]));
    assert_eq!(commit(wrong).await.unwrap_err().code(), Some("hash_mismatch"));
    let sha = hex::encode(Sha256::digest(&data));
    assert_eq!(commit(sha.clone()).await.unwrap().object_id, sha);
    let mut back = Vec::new();
    let (_, got) = client
        .download(v.lawyer.signing_key(), &s.case_id, &sha, &mut back)
        .await
        .unwrap();
    assert_eq!((got, back), (sha, data));
}

/// Without a restart, the running hash decides: a commit naming another
/// hash is refused. The refused commit used up the running hash, so the
/// same upload then commits under its own hash from what is stored.
#[tokio::test]
async fn the_running_hash_refuses_a_wrong_commit_and_accepts_the_right_one() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let data = bytes(41, 9_000_000);
    let upload = client.create_upload(key, &s.case_id, data.len() as u64).await.unwrap();
    for (from, to) in [(0, 4_194_304), (4_194_304, 8_000_000), (8_000_000, 9_000_000)] {
        client
            .patch(key, &upload, from, data[from as usize..to].to_vec())
            .await
            .unwrap();
    }
    let body = |sha256: String| CommitUpload {
        sha256,
        label: B64.encode(b"lbl"),
    };
    let wrong = hex::encode(Sha256::digest(&data[..8_999_999]));
    let err = client.commit(key, &upload, &body(wrong)).await.unwrap_err();
    assert_eq!(err.code(), Some("hash_mismatch"));
    let sha = hex::encode(Sha256::digest(&data));
    assert_eq!(
        client.commit(key, &upload, &body(sha.clone())).await.unwrap().object_id,
        sha
    );
}

/// A journalled upload the vault no longer has (expired, or ended):
/// nothing sent is kept, so nothing needs making again, and the file goes
/// to a new upload under a fresh encryption. Reusing the journal's key and
/// nonces would put the file under one keystream twice: had it changed in
/// a way its size and time did not show, the vault would see two
/// plaintexts XORed.
#[tokio::test]
async fn an_upload_the_vault_no_longer_has_is_sent_under_a_fresh_encryption() {
    use custos::client::flows;
    use custos::client::resume::{FilesDone, PendingUpload, SubmitFile};
    use custos::envelope::{CaseKey, ObjectKind, ReplayableEncryption};
    use std::io::Read;
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let case_key = CaseKey::generate();
    let plain = bytes(22, 300_000);
    let path = v.tmp.path().join("evidence.bin");
    std::fs::write(&path, &plain).unwrap();
    let len = plain.len() as u64;

    let journalled = ReplayableEncryption::new(&[&case_key.recipient()]).unwrap();
    let mut replayed = Vec::new();
    journalled.reader(&plain[..], len).read_to_end(&mut replayed).unwrap();
    let replayed = hex::encode(Sha256::digest(&replayed));
    // An upload path the vault does not know: one digit of a real one changed.
    let mut upload = client.create_upload(key, &s.case_id, 1).await.unwrap();
    let last = if upload.ends_with('0') { "1" } else { "0" };
    upload.replace_range(upload.len() - 1.., last);
    let mut done = FilesDone {
        receipts: Vec::new(),
        pending: Some(PendingUpload {
            index: 0,
            upload,
            plaintext_len: len,
            encryption: Some(journalled),
            label: B64.encode(b"a sealed label, opaque to the vault"),
        }),
    };
    let files = [SubmitFile {
        path,
        kind: ObjectKind::Evidence,
    }];
    flows::upload_files_resumably(&client, key, &s.case_id, &case_key, &files, &mut done, &mut |_| Ok(()))
        .await
        .unwrap();
    let (event, _) = custos::audit::verify_receipt(&done.receipts[0], &v.log).unwrap();
    assert_eq!(event.objects.len(), 1);
    assert_ne!(event.objects[0], replayed, "the journal's encryption was used again");
}
