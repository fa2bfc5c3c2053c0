//! The store's unit tests: group commit, the high-water mark, chunks and
//! the log, on real sled stores in temporary folders.

use super::*;
use custos_core::audit::{verify_receipt, LogAuditor};
use custos_core::custody::{Action, VAULT_ACTOR, VAULT_CASE};
use ed25519_dalek::SigningKey;

fn draft(case: &str) -> EventDraft {
    EventDraft {
        case: case.into(),
        actor: VAULT_ACTOR.into(),
        action: Action::CheckpointAnchored,
        objects: vec![],
        details: serde_json::Value::Null,
        request: None,
    }
}

/// A store from before the high-water mark gets one from its own
/// checkpoint when it is first checked (the crash tests hold stores to
/// their mark).
#[tokio::test]
async fn a_store_without_a_mark_gets_one_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let signer = LogSigner::new("test.example", SigningKey::from_bytes(&[1; 32])).unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let g = store.writer().await;
        store.append(&g, Batch::default(), vec![draft("c1")], &signer).unwrap();
        drop(g);
        store.flush().await.unwrap();
    }
    std::fs::remove_file(dir.path().join("high-water")).unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.check_log(&signer).unwrap();
    let note = store.checkpoint().unwrap().unwrap();
    assert_eq!(
        high_water::HighWater::open(dir.path()).unwrap().note(),
        Some(note.as_str())
    );
}

/// The checkpoint handed out is the last one a flush made durable, never
/// one an append signed since (the power-cut harness's long form saw a
/// client keep such a one, and the log fork from it after the cut).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_checkpoint_is_the_flushed_one_not_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let signer = LogSigner::new("test.example", SigningKey::from_bytes(&[1; 32])).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let append = |case: &'static str| {
        let g = store.writer_blocking();
        store.append(&g, Batch::default(), vec![draft(case)], &signer).unwrap();
    };
    tokio::task::block_in_place(|| append("c1"));
    store.flush().await.unwrap();
    let flushed = store.checkpoint().unwrap().unwrap();
    assert_eq!(store.durable_checkpoint().as_deref(), Some(flushed.as_str()));
    tokio::task::block_in_place(|| append("c2"));
    let latest = store.checkpoint().unwrap().unwrap();
    assert_ne!(latest, flushed);
    assert_eq!(store.durable_checkpoint().as_deref(), Some(flushed.as_str()));
    store.flush().await.unwrap();
    assert_eq!(store.durable_checkpoint().as_deref(), Some(latest.as_str()));
}

/// A store from before the retired principals' and open uploads'
/// indexes gets them when first opened as a vault, once.
#[tokio::test]
async fn a_store_without_the_new_indexes_builds_them_once() {
    let dir = tempfile::tempdir().unwrap();
    let signer = LogSigner::new("test.example", SigningKey::from_bytes(&[1; 32])).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let removal = EventDraft {
        action: Action::PrincipalRemoved,
        details: serde_json::json!({ "key_id": "0123456789abcdef" }),
        ..draft(VAULT_CASE)
    };
    let g = store.writer().await;
    store
        .append(
            &g,
            Batch::default(),
            vec![draft(VAULT_CASE), draft("c1"), removal],
            &signer,
        )
        .unwrap();
    drop(g);
    let upload = UploadRecord {
        case_id: "c1".into(),
        length: 10,
        offset: 0,
        chunks: 0,
        owner: "0123456789abcdef".parse().unwrap(),
        created: 0,
        touched: 0,
    };
    store
        .tree(T::Uploads)
        .insert("u1", serde_json::to_vec(&upload).unwrap())
        .unwrap();
    assert!(store.tree(T::Retired).is_empty());
    store.build_missing_indexes().unwrap();
    let retired: Vec<_> = store.tree(T::Retired).iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(&retired[0].0[..], b"0123456789abcdef");
    assert_eq!(&retired[0].1[..], &2u64.to_be_bytes());
    assert!(store.tree(T::CaseUploads).contains_key("c1/u1").unwrap());
    // Once built, it is not rebuilt: later removals are written with
    // their events.
    store.tree(T::Retired).clear().unwrap();
    store.build_missing_indexes().unwrap();
    assert!(store.tree(T::Retired).is_empty());
}

#[tokio::test]
async fn appends_chain_per_case_and_receipts_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let signer = LogSigner::new("test.example", SigningKey::from_bytes(&[1; 32])).unwrap();
    for round in 0..5 {
        let g = store.writer().await;
        let receipts = store
            .append(
                &g,
                Batch::default(),
                vec![draft(VAULT_CASE), draft("c1"), draft(VAULT_CASE)],
                &signer,
            )
            .unwrap();
        for r in &receipts {
            verify_receipt(r, &signer.verifier()).unwrap();
        }
        assert_eq!(receipts[2].index, round * 3 + 2);
    }
    store.check_log(&signer).unwrap();
    let size = store.log_size().unwrap();
    let mut tree = custos_core::custody::merkle::MemoryTree::default();
    let mut heads: HashMap<String, String> = HashMap::new();
    for i in 0..size {
        let bytes = store.entry(i).unwrap().unwrap();
        let e: custos_core::custody::Event = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(e.prev, heads.get(&e.case).cloned());
        heads.insert(e.case.clone(), event_hash(&bytes));
        tree.push(merkle::leaf_hash(&bytes));
    }
    assert_eq!(tree.root_at(size), store.root(size).unwrap());
    // The vault-only unsigned events are not valid custody once signed
    // events exist, but an all-anchor log is: the auditor accepts none
    // of these (they are not principal_added), which shows it checks.
    let mut auditor = LogAuditor::new();
    assert!(auditor.push(&store.entry(0).unwrap().unwrap()).is_err());
}

#[test]
fn open_waits_for_a_closing_store_but_not_for_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(first);
    });
    let second = Store::open(dir.path()).expect("opens once the first has closed");
    closer.join().unwrap();
    let started = std::time::Instant::now();
    let err = Store::open(dir.path()).err().expect("the folder is in use");
    assert!(err.to_string().contains("lock"), "{err}");
    assert!(started.elapsed() >= LOCK_WAIT);
    drop(second);
}

#[test]
fn corrupted_chunks_are_detected_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let big = vec![7u8; SMALL_CHUNK + 1];
    for bytes in [&b"ciphertext"[..], &big[..]] {
        let hash = store.put_chunk(bytes).unwrap();
        assert_eq!(store.get_chunk(&hash).unwrap(), bytes);
        assert_eq!(store.put_chunk(bytes).unwrap(), hash, "a second put is a no-op");
    }
    // A small chunk lives in sled, a large one in a file.
    let small: Hash = Sha256::digest(b"ciphertext").into();
    assert!(store.tree(T::Chunks).contains_key(small).unwrap());
    assert!(!store.chunk_file(&small).exists());
    store.tree(T::Chunks).insert(small, &b"Ciphertext"[..]).unwrap();
    assert!(matches!(store.get_chunk(&small), Err(StoreError::Integrity(_))));

    let hash: Hash = Sha256::digest(&big).into();
    assert!(!store.tree(T::Chunks).contains_key(hash).unwrap());
    let mut damaged = big.clone();
    damaged[SMALL_CHUNK] ^= 1;
    std::fs::write(store.chunk_file(&hash), &damaged).unwrap();
    assert!(matches!(store.get_chunk(&hash), Err(StoreError::Integrity(_))));
    std::fs::remove_file(store.chunk_file(&hash)).unwrap();
    assert!(
        matches!(store.get_chunk(&hash), Err(StoreError::Integrity(_))),
        "a missing chunk"
    );
    // A store from an earlier version kept large chunks in sled too.
    let old_big = vec![9u8; SMALL_CHUNK * 2];
    let old: Hash = Sha256::digest(&old_big).into();
    store.tree(T::Chunks).insert(old, old_big.clone()).unwrap();
    assert_eq!(store.get_chunk(&old).unwrap(), old_big);
    // No temporary file is left beside the chunks.
    let leftovers = walk(&dir.path().join("chunks"))
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_sequence_hash_reads_every_chunk_and_check_finds_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pieces = [vec![1u8; 10], vec![2u8; SMALL_CHUNK + 5]];
    let mut batch = Batch::default();
    for (i, p) in pieces.iter().enumerate() {
        let h = store.put_chunk(p).unwrap();
        batch.put(T::UploadChunks, indexed_key(b"u", i as u64), h);
    }
    let guard = store.writer.try_lock().unwrap();
    store.apply(&guard, batch).unwrap();
    drop(guard);
    let whole: Vec<u8> = pieces.concat();
    let (hash, len) = store.hash_sequence(T::UploadChunks, b"u", 2).unwrap();
    assert_eq!((hash, len), (hex::encode(Sha256::digest(&whole)), whole.len() as u64));
    store.check_sequence(T::UploadChunks, b"u", 2).unwrap();
    let second: Hash = Sha256::digest(&pieces[1]).into();
    std::fs::write(store.chunk_file(&second), vec![0u8; SMALL_CHUNK + 5]).unwrap();
    let (changed, _) = store.hash_sequence(T::UploadChunks, b"u", 2).unwrap();
    assert_ne!(changed, hex::encode(Sha256::digest(&whole)));
    assert!(matches!(
        store.check_sequence(T::UploadChunks, b"u", 2),
        Err(StoreError::Integrity(_))
    ));
}

/// Regression: with sled's `flush_async`, 16 clients each writing a
/// transaction and flushing hung the server for good within a few
/// dozen requests (`benches/small.rs`).
#[test]
fn concurrent_transactions_and_flushes_all_finish() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let (done, finished) = std::sync::mpsc::channel();
    let writing = store.clone();
    // On a thread of its own, so that a hang (sled's threads stuck,
    // and the runtime's with them) fails the test instead of hanging it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for t in 0..16u64 {
                let store = writing.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..40u64 {
                        store.put_chunk(&[t as u8, i as u8]).unwrap();
                        {
                            let guard = store.writer().await;
                            let mut batch = Batch::default();
                            batch.put(T::Meta, format!("{t}-{i}"), vec![1u8; 100]);
                            batch.put(T::Uploads, format!("{t}-{i}"), vec![2u8; 100]);
                            store.apply(&guard, batch).unwrap();
                        }
                        store.flush().await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("every write and flush finished: no deadlock");
    assert_eq!(store.tree(T::Uploads).len(), 640);
}

/// Callers that wait while a flush is held up share one flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_flushes_are_grouped_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let held = store.writer().await;
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        store.tree(T::Meta).insert([i], &[i][..]).unwrap();
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.flush().await.unwrap() }));
    }
    // Every caller has asked for its flush before the first can run.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(store.flush_count(), 0);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.flush_count(), 1, "twenty callers, one flush");
    // And a caller that writes after it gets a flush of its own.
    store.tree(T::Meta).insert(b"later", &b"x"[..]).unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.flush_count(), 2);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn nonces_are_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.remember_nonce("k", "n1", 100).unwrap());
    assert!(!store.remember_nonce("k", "n1", 100).unwrap());
    assert!(store.remember_nonce("k2", "n1", 100).unwrap());
    assert_eq!(store.prune_nonces(200).unwrap(), 2);
    assert!(store.remember_nonce("k", "n1", 300).unwrap());
}

#[test]
fn an_unreadable_upload_record_is_left_out_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let good = UploadRecord {
        case_id: "c".into(),
        length: 10,
        offset: 0,
        chunks: 0,
        owner: "0123456789abcdef".parse().unwrap(),
        created: 1,
        touched: 0,
    };
    store
        .tree(T::Uploads)
        .insert("good", serde_json::to_vec(&good).unwrap())
        .unwrap();
    store.tree(T::Uploads).insert("damaged", &b"{not json"[..]).unwrap();
    let uploads = store.uploads().unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].0, "good");
    // Their ids, for terminating every upload, still include both.
    assert_eq!(store.upload_ids().unwrap().len(), 2);
}

/// An upload whose chunk list is `pieces`, stored as a PATCH stores it.
fn upload_of(store: &Store, id: &[u8], pieces: &[Vec<u8>]) {
    let mut batch = Batch::default();
    for (i, p) in pieces.iter().enumerate() {
        let h = store.put_chunk(p).unwrap();
        batch.put(T::UploadChunks, indexed_key(id, i as u64), h);
    }
    batch.put(T::Uploads, id, b"{}".to_vec());
    let guard = store.writer.try_lock().unwrap();
    store.apply(&guard, batch).unwrap();
}

/// A long list goes to its object ahead of the commit in steps, and only
/// the last step rides the commit's batch (its transaction's memory is
/// one step's); rows a cut commit left past the end are dropped first.
#[test]
fn a_long_list_is_given_in_steps_and_only_the_last_rides_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pieces: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100 + i as usize]).collect();
    upload_of(&store, b"u", &pieces);
    let whole = pieces.concat();
    let object: Hash = Sha256::digest(&whole).into();
    // What a cut commit of a longer list of the same object left.
    for i in 0..8 {
        store
            .tree(T::ObjectChunks)
            .insert(indexed_key(&object, i), &[9u8; 32])
            .unwrap();
    }

    let mut batch = Batch::default();
    assert!(store.give_in_steps(b"u", &object, 5, 2, &mut batch).unwrap());
    let ahead: Vec<Vec<u8>> = store.keys(T::ObjectChunks).map(|k| k.unwrap()).collect();
    assert_eq!(ahead, (0..4).map(|i| indexed_key(&object, i)).collect::<Vec<_>>());
    assert_eq!(batch.ops.len(), 1, "the last step alone rides the batch");
    assert_eq!(batch.ops[0].1, indexed_key(&object, 4));
    let guard = store.writer.try_lock().unwrap();
    store.apply(&guard, batch).unwrap();
    assert_eq!(
        store.hash_sequence(T::ObjectChunks, &object, 5).unwrap(),
        (hex::encode(object), whole.len() as u64)
    );
    assert_eq!(store.record_count(T::ObjectChunks), 5);

    // A list of one step is written in the batch alone; nothing ahead.
    let other: Hash = Sha256::digest(b"other").into();
    let mut batch = Batch::default();
    assert!(!store.give_in_steps(b"u", &other, 2, 2, &mut batch).unwrap());
    assert_eq!((batch.ops.len(), store.record_count(T::ObjectChunks)), (2, 5));

    // A stored object's list is evidence: never given again.
    store.tree(T::Objects).insert(object, b"{}".to_vec()).unwrap();
    let mut batch = Batch::default();
    assert!(store
        .give_object_upload_list(&guard, "u", &object, 5, &mut batch)
        .is_err());
    assert_eq!(store.record_count(T::ObjectChunks), 5);
}

/// Lists whose upload or object is gone (an upload ended, a commit cut
/// after its steps) are dropped by the collector, and so are the chunks
/// only they named; the lists of an open upload and of a stored object,
/// and their chunks, stay.
#[tokio::test]
async fn the_collector_drops_ownerless_lists_and_the_chunks_only_they_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let chunk = |i: u8| vec![i; SMALL_CHUNK + 1 + i as usize];
    upload_of(&store, b"open-upload", &[chunk(1)]);
    upload_of(&store, b"ended-upload", &[chunk(2), chunk(3)]);
    let object: Hash = Sha256::digest(b"never committed").into();
    let mut batch = Batch::default();
    assert!(store.give_in_steps(b"ended-upload", &object, 2, 1, &mut batch).unwrap());
    drop(batch);
    upload_of(&store, b"committed", &[chunk(4)]);
    let stored: Hash = Sha256::digest(chunk(4)).into();
    let mut batch = Batch::default();
    store.give_in_steps(b"committed", &stored, 1, 1, &mut batch).unwrap();
    batch.put(T::Objects, stored, b"{}".to_vec());
    batch.remove(T::Uploads, &b"committed"[..]);
    batch.remove(T::Uploads, &b"ended-upload"[..]);
    let guard = store.writer.try_lock().unwrap();
    store.apply(&guard, batch).unwrap();
    drop(guard);
    assert!(!store.has_object(&object).unwrap());
    assert_eq!(
        store.record_count(T::ObjectChunks),
        2,
        "the cut commit's step and the stored list"
    );

    assert_eq!(store.collect_chunks().await.unwrap(), 2, "chunks 2 and 3");
    let owners = |t: T| {
        let mut o: Vec<Vec<u8>> = store.keys(t).map(|k| k.unwrap()[..].to_vec()).collect();
        o.iter_mut().for_each(|k| k.truncate(k.len() - 8));
        o
    };
    assert_eq!(owners(T::UploadChunks), vec![b"open-upload".to_vec()]);
    assert_eq!(owners(T::ObjectChunks), vec![stored.to_vec()]);
    for (i, kept) in [(1, true), (2, false), (3, false), (4, true)] {
        let h: Hash = Sha256::digest(chunk(i)).into();
        assert_eq!(store.get_chunk(&h).is_ok(), kept, "chunk {i}");
    }
}

/// An upload's list is dropped only once its record is gone, and only its
/// own rows: not those of another upload whose id begins with the same
/// bytes.
#[test]
fn an_upload_list_is_dropped_only_once_its_upload_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    upload_of(&store, b"u", &[vec![1; 10], vec![2; 10]]);
    upload_of(&store, b"u2", &[vec![3; 10]]);
    assert!(store.drop_upload_list("u").is_err(), "the upload is open");
    assert_eq!(store.record_count(T::UploadChunks), 3);

    store.tree(T::Uploads).remove(b"u").unwrap();
    store.drop_upload_list("u").unwrap();
    let left: Vec<Vec<u8>> = store.keys(T::UploadChunks).map(|k| k.unwrap()[..].to_vec()).collect();
    assert_eq!(left, vec![indexed_key(b"u2", 0)]);
}
