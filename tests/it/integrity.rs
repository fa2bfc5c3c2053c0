//! Tampering and damage: a commit that names the wrong hash, a chunk
//! corrupted on disk, an event or tree node altered in the store. Each is
//! refused or detected, and nothing acknowledged is lost.

use crate::util;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::flows;
use custos::store::{Store, T};
use custos::wire::CommitUpload;
use util::{bytes, TestVault, ORIGIN};

#[tokio::test]
async fn a_commit_naming_the_wrong_hash_is_refused_and_leaves_no_object() {
    let mut v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let client = v.client();
    let data = bytes(7, 100_000);
    let upload = client
        .create_upload(keys.signing_key(), &s.case_id, data.len() as u64)
        .await
        .unwrap();

    // Committing before all bytes arrived is refused.
    client
        .patch(keys.signing_key(), &upload, 0, data[..50_000].to_vec())
        .await
        .unwrap();
    let label = B64.encode(b"label-ciphertext");
    let real = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
    let err = client
        .commit(
            keys.signing_key(),
            &upload,
            &CommitUpload {
                sha256: real.clone(),
                label: label.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("upload_incomplete"));
    client
        .patch(keys.signing_key(), &upload, 50_000, data[50_000..].to_vec())
        .await
        .unwrap();

    let wrong = hex::encode([0xabu8; 32]);
    let err = client
        .commit(
            keys.signing_key(),
            &upload,
            &CommitUpload {
                sha256: wrong.clone(),
                label: label.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("hash_mismatch"));
    let detail = client.case(v.lawyer.signing_key(), &s.case_id).await.unwrap();
    assert_eq!(detail.objects.len(), 1, "only the statement");

    // The honest commit of the same upload still works afterwards.
    let ok = client
        .commit(
            keys.signing_key(),
            &upload,
            &CommitUpload {
                sha256: real.clone(),
                label,
            },
        )
        .await
        .unwrap();
    assert_eq!(ok.object_id, real);

    v.stop().await;
    let store = Store::open(&custos::vault::db_path(&v.data_dir())).unwrap();
    assert!(
        !store
            .danger_raw_tree(T::Objects)
            .contains_key(hex::decode(&wrong).unwrap())
            .unwrap(),
        "no object under the wrong hash"
    );
    assert!(store
        .danger_raw_tree(T::Objects)
        .contains_key(hex::decode(&real).unwrap())
        .unwrap());
    assert_eq!(
        store.danger_raw_tree(T::Uploads).len(),
        0,
        "the committed upload is gone"
    );
}

#[tokio::test]
async fn a_chunk_corrupted_on_disk_is_detected_on_read() {
    let mut v = TestVault::start().await;
    // Over two chunks, so that chunk 1 is a file of its own.
    let evidence = bytes(8, 9_000_000);
    let s = v.submit(b"statement", &[("x.bin", evidence)]).await;
    let client = v.client();
    let detail = client.case(v.lawyer.signing_key(), &s.case_id).await.unwrap();
    let big = detail
        .objects
        .iter()
        .find(|o| o.size > 1_000_000)
        .unwrap()
        .object_id
        .clone();
    v.stop().await;

    {
        // Flip one byte of the object's second chunk, as bit rot would.
        let store = Store::open(&custos::vault::db_path(&v.data_dir())).unwrap();
        let object = custos::store::object_hash(&big).unwrap();
        let chunk = store.chunk_at(T::ObjectChunks, &object, 1).unwrap();
        let file = store.chunk_file(&chunk);
        let mut data = std::fs::read(&file).unwrap();
        data[1000] ^= 0x40;
        std::fs::write(&file, data).unwrap();
        assert!(
            store.object_chunk(&object, 1).is_err(),
            "the store itself refuses the chunk"
        );
    }

    v.serve().await;
    let client = v.client();
    let out = v.tmp.path().join("out");
    let err = flows::get_case(&client, &v.lawyer, &v.log, &s.case_id, &out)
        .await
        .unwrap_err();
    assert!(!out.exists(), "nothing is written when an object fails: {err}");
    let staging = v.tmp.path().join(format!(".custos-get-{}", s.case_id));
    assert!(staging.exists(), "the ciphertext so far is kept to resume from");
    let staged_plaintext = staging.join("plain");
    assert!(
        !staged_plaintext.exists(),
        "what was decrypted before the failure is gone"
    );
    // The first chunk is fine, so the server starts streaming and then
    // aborts; the client sees a broken transfer, never wrong bytes.
    let mut got = Vec::new();
    let res = client
        .download(v.lawyer.signing_key(), &s.case_id, &big, &mut got)
        .await;
    match res {
        Err(_) => {}
        Ok((_, sha)) => panic!("a corrupted object downloaded completely with hash {sha}"),
    }
    assert!(got.len() < 9_000_000);
}

#[tokio::test]
async fn a_corrupted_first_chunk_gives_a_clean_integrity_error() {
    let mut v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let object = v
        .client()
        .case(v.lawyer.signing_key(), &s.case_id)
        .await
        .unwrap()
        .objects[0]
        .object_id
        .clone();
    v.stop().await;
    {
        let store = Store::open(&custos::vault::db_path(&v.data_dir())).unwrap();
        let hash = custos::store::object_hash(&object).unwrap();
        let chunk = store.chunk_at(T::ObjectChunks, &hash, 0).unwrap();
        // A statement is a small chunk, kept inside sled.
        let mut data = store
            .danger_raw_tree(T::Chunks)
            .get(chunk)
            .unwrap()
            .expect("a small chunk")
            .to_vec();
        let last = data.len() - 1;
        data[last] ^= 1;
        store.danger_raw_tree(T::Chunks).insert(chunk, data).unwrap();
        store.danger_raw_tree(T::Chunks).flush().unwrap();
    }
    v.serve().await;
    let err = v
        .client()
        .download(v.lawyer.signing_key(), &s.case_id, &object, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("integrity_error"));
}

#[tokio::test]
async fn an_event_altered_in_the_store_makes_the_audit_fail() {
    let mut v = TestVault::start().await;
    let s = v.submit(b"statement", &[("a.bin", bytes(9, 1000))]).await;
    assert!(flows::audit(&v.client(), &v.auditor, &v.log, None)
        .await
        .unwrap()
        .passed());
    v.stop().await;
    let index = {
        // Rewrite the case_created event's time, as an insider might to
        // move a submission's date.
        let store = Store::open(&custos::vault::db_path(&v.data_dir())).unwrap();
        let index = (0..store.log_size().unwrap())
            .find(|i| String::from_utf8_lossy(&store.entry(*i).unwrap().unwrap()).contains(&s.case_id))
            .unwrap();
        let text = String::from_utf8(store.entry(index).unwrap().unwrap()).unwrap();
        let altered = text.replacen("\"time\":\"20", "\"time\":\"19", 1);
        assert_ne!(altered, text);
        store
            .danger_raw_tree(T::Log)
            .insert(index.to_be_bytes(), altered.as_bytes())
            .unwrap();
        store.danger_raw_tree(T::Log).flush().unwrap();
        index
    };
    v.serve().await;
    let report = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    let msg = report.failure.clone().expect("the audit fails");
    // The event is dated outside its request's validity: the audit stops at
    // it, having verified every entry before.
    assert!(msg.contains(&format!("entry {index}: the event is dated")), "{msg}");
    assert_eq!(report.entries, index, "it says how far it got: {report:?}");
}

#[tokio::test]
async fn a_damaged_log_tree_stops_the_server_from_starting() {
    let mut v = TestVault::start().await;
    v.submit(b"statement", &[]).await;
    v.stop().await;
    {
        let store = Store::open(&custos::vault::db_path(&v.data_dir())).unwrap();
        // The first leaf node: not used by the root of a larger tree, so only
        // a full check of the tree finds it.
        let (k, mut node) = store.danger_raw_tree(T::Nodes).iter().next().unwrap().unwrap();
        let mut bytes = node.to_vec();
        bytes[0] ^= 1;
        node = bytes.into();
        store.danger_raw_tree(T::Nodes).insert(k, node).unwrap();
        store.danger_raw_tree(T::Nodes).flush().unwrap();
    }
    let err = custos::vault::open(&v.data_dir()).unwrap_err();
    assert!(err.to_string().contains("does not match its children"), "{err}");
}

#[tokio::test]
async fn a_case_must_be_wrapped_to_exactly_the_intake_lawyers_and_submitter() {
    use custos::envelope::CaseKey;
    use custos::identity::codename::Codename;
    use custos::wire::{CreateCase, EnvelopeBody, NewSubmitterKey};
    let v = TestVault::start().await;
    let keys = Codename::generate().derive(ORIGIN);
    let case_key = CaseKey::generate();
    let envelope = |r: &age::x25519::Recipient| B64.encode(case_key.wrap(r).unwrap());
    let me = keys.age_identity().to_public();
    let mut req = CreateCase {
        submitter_keys: vec![NewSubmitterKey {
            verifying_key: B64.encode(keys.signing_key().verifying_key().as_bytes()),
            recipient: me.to_string(),
        }],
        case_recipient: case_key.recipient().to_string(),
        // The intake lawyer is missing: nobody at the vault could read it.
        envelopes: vec![EnvelopeBody {
            key_id: keys.key_id(),
            envelope: envelope(&me),
        }],
        note: None,
        note_envelopes: vec![],
    };
    let stamp_bits = v.stamp_bits;
    let create = |req: CreateCase| {
        let (client, key) = (v.client(), keys.signing_key().clone());
        async move { client.create_case(&key, &req, ORIGIN, stamp_bits).await }
    };
    let err = create(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some("envelopes_mismatch"));
    // An extra reader (here the auditor) is refused too.
    req.envelopes.push(EnvelopeBody {
        key_id: v.lawyer.key_id(),
        envelope: envelope(&v.lawyer.card().age_recipient()),
    });
    req.envelopes.push(EnvelopeBody {
        key_id: v.auditor.key_id(),
        envelope: envelope(&v.auditor.card().age_recipient()),
    });
    let err = create(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some("envelopes_mismatch"));
    req.envelopes.pop();
    // The duress note's key must reach exactly the intake lawyers: not be
    // missing, and never a submitter key.
    req.note = Some(B64.encode(b"note ciphertext"));
    let err = create(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some("note_envelopes_mismatch"));
    req.note_envelopes = vec![EnvelopeBody {
        key_id: keys.key_id(),
        envelope: envelope(&me),
    }];
    let err = create(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some("note_envelopes_mismatch"));
    req.note_envelopes = vec![EnvelopeBody {
        key_id: v.lawyer.key_id(),
        envelope: envelope(&v.lawyer.card().age_recipient()),
    }];
    create(req).await.unwrap();
}

#[tokio::test]
async fn the_same_object_cannot_be_committed_twice_to_a_case() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let client = v.client();
    let data = bytes(12, 5000);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
    let commit = CommitUpload {
        sha256: sha,
        label: B64.encode(b"label"),
    };
    for round in 0..2 {
        let upload = client
            .create_upload(keys.signing_key(), &s.case_id, data.len() as u64)
            .await
            .unwrap();
        client
            .patch(keys.signing_key(), &upload, 0, data.clone())
            .await
            .unwrap();
        let res = client.commit(keys.signing_key(), &upload, &commit).await;
        if round == 0 {
            res.unwrap();
        } else {
            assert_eq!(res.unwrap_err().code(), Some("object_exists"));
        }
    }
}

/// An operator holding the log key re-logs an old signed grant after its
/// revocation: every signature in the log is genuine, but the auditor's
/// audit and the bundle's verification (run by every export) refuse a
/// request logged twice.
#[tokio::test]
async fn a_grant_relogged_after_its_revocation_fails_audit_and_verify() {
    let mut v = TestVault::start().await;
    let c = v.client();
    let colleague = custos::identity::Identity::generate("Colleague").unwrap();
    c.add_principal(
        v.admin.signing_key(),
        &custos::wire::PrincipalBody {
            card: colleague.card(),
            role: custos::identity::Role::Lawyer,
            intake: false,
        },
    )
    .await
    .unwrap();
    let s = v.submit(b"statement", &[]).await;
    let granted = flows::grant(&c, &v.lawyer, &v.log, &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    c.revoke(v.lawyer.signing_key(), &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    assert!(flows::audit(&c, &v.auditor, &v.log, None).await.unwrap().passed());

    // The insider appends the old grant again, signed checkpoint and all.
    v.stop().await;
    {
        let vault = custos::vault::open(&v.data_dir()).unwrap();
        let (old, _) = custos::audit::verify_receipt(&granted, &v.log).unwrap();
        let replay = custos::custody::EventDraft {
            case: old.case,
            actor: old.actor,
            action: old.action,
            objects: old.objects,
            details: old.details,
            request: old.request,
        };
        let guard = vault.store.writer().await;
        vault
            .store
            .append(&guard, custos::store::Batch::default(), vec![replay], &vault.signer)
            .unwrap();
        drop(guard);
        vault.store.flush().await.unwrap();
    }
    v.serve().await;
    let c = v.client();
    let report = flows::audit(&c, &v.auditor, &v.log, None).await.unwrap();
    let failure = report.failure.expect("the audit fails");
    assert!(failure.contains("a second time"), "{failure}");
    let out = v.tmp.path().join("bundle");
    let e = custos::client::export::export(
        &c,
        &v.auditor,
        &v.log,
        &s.case_id,
        &out,
        custos::client::export::ExportOptions::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("a second time"), "{e}");
    assert!(!out.exists(), "no bundle is named");
}
