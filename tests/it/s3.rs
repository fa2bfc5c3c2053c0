//! Chunks on a real three-node Garage cluster (replication 3, fsync on):
//! the whole flow keeps large chunks in the bucket and none on the vault's
//! disk; a lost node changes nothing; two lost nodes are a plain
//! `503 storage_unavailable` with nothing acknowledged and nothing lost,
//! and the vault recovers by itself when they return; the collector
//! deletes what nothing refers to in the bucket.

use crate::garage::GarageCluster;
use crate::util;

use custos::client::flows;
use custos::client::ClientError;
use custos::store::{Store, SMALL_CHUNK};
use util::{bytes, TestVault};

/// A vault whose chunks are in `cluster`'s bucket.
async fn vault_on(cluster: &GarageCluster) -> TestVault {
    TestVault::start_configured(|_| {}, cluster.settings()).await
}

/// Every name the bucket holds, as the vault lists it (a blocking call).
async fn bucket_names(v: &TestVault) -> Vec<String> {
    let state = v.state.clone().expect("serving");
    tokio::task::spawn_blocking(move || state.vault.store.large_chunks())
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Whether the bucket holds the chunk `name`, asked of the chunk itself (a
/// HEAD, which Garage answers from a quorum's merged records). Not from a
/// listing: Garage filters out deleted objects on each node before it
/// merges their answers, so for a moment after a delete a node that has not
/// yet heard of it can put the chunk back into a listing.
async fn bucket_holds(v: &TestVault, name: &str) -> bool {
    let state = v.state.clone().expect("serving");
    let hash = custos::protocol::hash_from_hex(name).expect("a chunk's name is its hash");
    match tokio::task::spawn_blocking(move || state.vault.store.chunk_len(&hash))
        .await
        .unwrap()
    {
        Ok(_) => true,
        Err(custos::store::StoreError::Integrity(_)) => false,
        Err(e) => panic!("the bucket did not answer for {name}: {e}"),
    }
}

fn local_chunk_files(v: &TestVault) -> Vec<std::path::PathBuf> {
    util::files_under(&custos::vault::db_path(&v.data_dir()).join("chunks"))
}

/// Get the case as its lawyer and check the evidence came back whole.
async fn lawyer_gets(v: &TestVault, case_id: &str, name: &str, expected: &[u8]) -> Result<(), ClientError> {
    let out = v.tmp.path().join(format!("got-{}", rand::random::<u32>()));
    flows::get_case(&v.client(), &v.lawyer, &v.log, case_id, &out).await?;
    assert_eq!(
        std::fs::read(out.join(name)).unwrap(),
        expected,
        "{name} came back whole"
    );
    Ok(())
}

/// Do `what` to each of `nodes` (stop or start them: blocking scripts),
/// off the runtime's threads, and hand the cluster back.
async fn nodes(mut cluster: GarageCluster, what: fn(&mut GarageCluster, u8), nodes: &[u8]) -> GarageCluster {
    let nodes = nodes.to_vec();
    tokio::task::spawn_blocking(move || {
        for n in nodes {
            what(&mut cluster, n);
        }
        cluster
    })
    .await
    .unwrap()
}

async fn readyz(v: &TestVault) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{}/readyz", v.url)).await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chunks_live_in_the_bucket_and_none_on_the_vaults_disk() {
    let cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let v = vault_on(&cluster).await;
    let video = bytes(7, 9_000_000);
    let s = v.submit(b"statement", &[("video.mp4", video.clone())]).await;
    lawyer_gets(&v, &s.case_id, "video.mp4", &video).await.unwrap();
    // The vault asks for PATCHes of several chunks, whose PUTs it sends at
    // once: the video above went up as one PATCH of three chunks.
    let client = v.client();
    let keys = s.codename.derive(util::ORIGIN);
    client.create_upload(keys.signing_key(), &s.case_id, 1).await.unwrap();
    assert_eq!(client.patch_size(), custos::protocol::MAX_PATCH_BODY);

    let names = bucket_names(&v).await;
    let expected_chunks = video.len().div_ceil(custos::store::CHUNK_SIZE);
    assert!(
        names.len() >= expected_chunks,
        "the video's {expected_chunks} chunks are in the bucket: {names:?}"
    );
    assert!(
        local_chunk_files(&v).is_empty(),
        "no chunk file on the vault's disk: {:?}",
        local_chunk_files(&v)
    );
    // Re-read from the bucket and re-hashed: the audit checks every object
    // it may read and every chain.
    let report = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(report.failure, None);
    let (status, body) = readyz(&v).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_changes_nothing_and_two_are_a_plain_503_until_they_return() {
    let mut cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let v = vault_on(&cluster).await;
    let before = bytes(11, 5_000_000);
    let first = v.submit(b"before", &[("before.bin", before.clone())]).await;

    // One site lost: three copies, two still answer.
    cluster = nodes(cluster, GarageCluster::kill, &[2]).await;
    let during = bytes(12, 5_000_000);
    let second = v.submit(b"one node down", &[("during.bin", during.clone())]).await;
    lawyer_gets(&v, &first.case_id, "before.bin", &before).await.unwrap();
    lawyer_gets(&v, &second.case_id, "during.bin", &during).await.unwrap();

    // Two sites lost: no quorum. Uploads and downloads are refused plainly.
    cluster = nodes(cluster, GarageCluster::kill, &[3]).await;
    let log_size = v.events().await.len();
    let refused_submit = {
        let mut files = vec![flows::SubmitFile {
            path: v.file("refused-statement.txt", b"no quorum"),
            kind: custos::envelope::ObjectKind::Statement,
        }];
        files.push(flows::SubmitFile {
            path: v.file("refused.bin", &bytes(13, 3 * SMALL_CHUNK)),
            kind: custos::envelope::ObjectKind::Evidence,
        });
        flows::submit(&v.client(), &v.trust(), &[], &files, false).await
    };
    let e = refused_submit.expect_err("no upload without quorum");
    assert!(format!("{e:#}").contains("storage_unavailable"), "{e:#}");
    // Some of the refused PATCH's chunks may have reached the bucket before
    // the write failed: they are left for the collector.
    assert!(
        v.state.as_ref().expect("serving").vault.store.has_garbage(),
        "a failed chunk write is not left for the collector"
    );
    let e = lawyer_gets(&v, &first.case_id, "before.bin", &before)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("storage_unavailable"), "{e}");
    let (status, body) = readyz(&v).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("storage_unavailable")));
    // The statement is small and stays in sled, so the case and its
    // statement were stored; the evidence, whose chunks go to the bucket,
    // was not acknowledged.
    let events = v.events().await;
    let stored_sizes: Vec<u64> = events[log_size..]
        .iter()
        .filter(|e| e.action == custos::custody::Action::ObjectStored)
        .map(|e| e.details["size"].as_u64().unwrap())
        .collect();
    assert!(
        stored_sizes.iter().all(|&size| size <= SMALL_CHUNK as u64),
        "no object with chunks in the bucket was logged as stored without quorum: {stored_sizes:?}"
    );

    // Both back: the vault answers again by itself, and nothing was lost.
    cluster = nodes(cluster, GarageCluster::restart, &[2, 3]).await;
    let (status, _) = readyz(&v).await;
    assert_eq!(status, 200, "ready again once the store answers");
    lawyer_gets(&v, &first.case_id, "before.bin", &before).await.unwrap();
    lawyer_gets(&v, &second.case_id, "during.bin", &during).await.unwrap();
    let after = bytes(14, 2_000_000);
    let third = v.submit(b"after", &[("after.bin", after.clone())]).await;
    lawyer_gets(&v, &third.case_id, "after.bin", &after).await.unwrap();
    let report = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(report.failure, None);
    drop(cluster);
}

/// A PATCH to a bucket is answered once its bytes are checked, while its
/// chunks are still being written: nothing may ever count on that answer.
/// Its failed write is the commit's answer, a HEAD gives the durable
/// offset, and once the bucket is back the upload goes on from there and
/// the object comes back whole. (That a PATCH waits for the one before it,
/// and is told its failure, is `api::upload_writes`'s unit test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_whose_chunks_never_reached_the_bucket_counts_for_nothing() {
    use base64::Engine;
    use sha2::Digest;
    let mut cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let v = vault_on(&cluster).await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(util::ORIGIN);
    let key = keys.signing_key();
    let client = v.client();
    let patch = custos::protocol::MAX_PATCH_BODY;
    let data = bytes(41, 2 * patch + 1000);
    let upload = client.create_upload(key, &s.case_id, data.len() as u64).await.unwrap();
    assert_eq!(client.patch_size(), patch, "the vault asks for PATCHes of four chunks");
    let sha = hex::encode(sha2::Sha256::digest(&data));
    let commit = custos::wire::CommitUpload {
        sha256: sha.clone(),
        label: base64::engine::general_purpose::STANDARD.encode(b"label"),
    };

    // No quorum, and the vault has not yet seen a request fail: the PATCH
    // is taken, and its write fails behind it.
    cluster = nodes(cluster, GarageCluster::kill, &[2, 3]).await;
    let moved = client.patch(key, &upload, 0, data[..patch].to_vec()).await.unwrap();
    assert_eq!(
        moved, patch as u64,
        "the PATCH was answered before its chunks were written"
    );
    let e = client.commit(key, &upload, &commit).await.unwrap_err();
    assert_eq!(
        e.code(),
        Some("storage_unavailable"),
        "the commit is told the write failed: {e}"
    );
    assert_eq!(
        client.upload_offset(key, &upload).await.unwrap(),
        0,
        "HEAD gives the durable offset, which never moved"
    );
    let e = client.commit(key, &upload, &commit).await.unwrap_err();
    assert_eq!(e.code(), Some("upload_incomplete"), "told once: {e}");
    // The vault has now seen the bucket fail: a PATCH is refused at once.
    let e = client.patch(key, &upload, 0, data[..patch].to_vec()).await.unwrap_err();
    assert_eq!(e.code(), Some("storage_unavailable"), "{e}");

    cluster = nodes(cluster, GarageCluster::restart, &[2, 3]).await;
    let (status, _) = readyz(&v).await;
    assert_eq!(status, 200, "ready again once the store answers");
    assert_eq!(client.upload_offset(key, &upload).await.unwrap(), 0);
    // The first PATCH may still meet a failure the collector saw while the
    // nodes were down (one probe every 2 s finds the bucket back).
    let mut offset = 0;
    for attempt in 0.. {
        match client.patch(key, &upload, 0, data[..patch].to_vec()).await {
            Ok(moved) => {
                offset = moved;
                break;
            }
            Err(e) if e.code() == Some("storage_unavailable") && attempt < 30 => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => panic!("the bucket is back: {e}"),
        }
    }
    while offset < data.len() as u64 {
        let end = (offset as usize + patch).min(data.len());
        offset = client
            .patch(key, &upload, offset, data[offset as usize..end].to_vec())
            .await
            .unwrap();
    }
    let done = client.commit(key, &upload, &commit).await.unwrap();
    assert_eq!(done.object_id, sha);
    let mut back = Vec::new();
    let (_, got) = client
        .download(v.lawyer.signing_key(), &s.case_id, &sha, &mut back)
        .await
        .unwrap();
    assert_eq!((got, back == data), (sha, true), "the object came back whole");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_deletes_from_the_bucket_what_nothing_refers_to() {
    let cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let v = vault_on(&cluster).await;
    let kept = bytes(21, 3 * SMALL_CHUNK);
    let s = v.submit(b"kept", &[("kept.bin", kept.clone())]).await;
    let state = v.state.clone().unwrap();
    let held = bucket_names(&v).await;
    assert!(!held.is_empty());

    // A chunk nothing refers to, as a terminated upload leaves one.
    let orphan = tokio::task::spawn_blocking({
        let state = state.clone();
        move || state.vault.store.put_chunk(&bytes(22, 2 * SMALL_CHUNK)).unwrap()
    })
    .await
    .unwrap();
    let orphan = hex::encode(orphan);
    assert!(bucket_names(&v).await.contains(&orphan));
    state.vault.store.mark_garbage();
    let removed = state.vault.store.collect_chunks().await.unwrap();
    assert!(removed >= 1);
    assert!(!bucket_holds(&v, &orphan).await, "the orphan is gone");
    for name in &held {
        assert!(bucket_holds(&v, name).await, "referenced chunk {name} stays");
    }
    lawyer_gets(&v, &s.case_id, "kept.bin", &kept).await.unwrap();
}

#[tokio::test]
async fn a_vault_is_never_served_from_the_wrong_place_for_its_chunks() {
    // No cluster needed: the store refuses before it sends a request.
    let dir = tempfile::tempdir().unwrap();
    let location = || custos::store::S3Location {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: "custos-chunks".into(),
        region: "garage".into(),
        access_key_id: "GK0".into(),
        secret_access_key: "secret".to_owned().into(),
    };
    {
        let store = Store::open(dir.path()).unwrap();
        store.put_chunk(&bytes(1, 2 * SMALL_CHUNK)).unwrap();
    }
    let e = Store::open_on(dir.path(), custos::store::ChunkBackend::S3(location()))
        .err()
        .expect("chunks on disk are not served from a bucket");
    assert!(e.to_string().contains("custos storage migrate --to s3"), "{e}");

    // A vault whose chunks are in a bucket refuses the disk, and another
    // bucket: `a_vault_on_disk_migrates_to_the_bucket_and_serves_from_it`.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_on_disk_migrates_to_the_bucket_and_serves_from_it() {
    let cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let mut v = TestVault::start().await;
    let video = bytes(31, 9_000_000);
    let s = v.submit(b"statement", &[("video.mp4", video.clone())]).await;
    assert!(!local_chunk_files(&v).is_empty(), "chunks start on disk");
    v.stop().await;
    let chunks_dir = custos::vault::db_path(&v.data_dir()).join("chunks");
    let kept = v.tmp.path().join("chunks-before");
    util::copy_dir(&chunks_dir, &kept);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(["--json", "storage", "migrate", "--to", "s3", "--data"])
        .arg(v.data_dir())
        .args(cluster.flags())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let migrated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(migrated["chunks"].as_u64().unwrap() >= 3, "{migrated}");
    assert!(local_chunk_files(&v).is_empty(), "the copies on disk are gone");

    // A migration killed after the switch, before the copies on disk were
    // removed: a second run finishes it.
    util::restore_dir(&kept, &chunks_dir);
    assert!(!local_chunk_files(&v).is_empty());
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(["storage", "migrate", "--to", "s3", "--data"])
        .arg(v.data_dir())
        .args(cluster.flags())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(local_chunk_files(&v).is_empty(), "the second run removed what was left");

    // Switched: on disk alone it no longer opens; on the bucket it serves.
    let e = custos::vault::open(&v.data_dir()).expect_err("its chunks are in the bucket");
    assert!(e.to_string().contains("storage = \"s3\""), "{e}");
    let mut elsewhere = cluster.settings();
    elsewhere.s3_bucket = Some("another-bucket".into());
    let e = custos::vault::open_async_on(&v.data_dir(), elsewhere.chunk_backend().unwrap())
        .await
        .expect_err("nor another bucket");
    assert!(e.to_string().contains("another-bucket"), "{e}");
    v.settings = cluster.settings();
    v.serve().await;
    lawyer_gets(&v, &s.case_id, "video.mp4", &video).await.unwrap();
    let report = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(report.failure, None);
}

/// Each vault's collector deletes what that vault does not refer to, so
/// a second vault on the same bucket would delete the first one's
/// evidence: the bucket is marked with the vault's log key, and another
/// vault is refused before it serves or collects anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_vault_is_refused_on_a_bucket_that_holds_another_ones_chunks() {
    let cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let mut first = vault_on(&cluster).await;
    let evidence = bytes(41, 3 * SMALL_CHUNK);
    let s = first.submit(b"first", &[("evidence.bin", evidence.clone())]).await;

    let mut other = TestVault::start_configured(|_| {}, Default::default()).await;
    other.stop().await;
    let (dir, settings) = (other.data_dir(), cluster.settings());
    let e = custos::vault::open_async_on(&dir, settings.chunk_backend().unwrap())
        .await
        .expect_err("another vault's bucket");
    assert!(e.to_string().contains("another vault"), "{e}");
    // Nothing of the first vault's was touched.
    let state = first.state.clone().unwrap();
    state.vault.store.mark_garbage();
    state.vault.store.collect_chunks().await.unwrap();
    lawyer_gets(&first, &s.case_id, "evidence.bin", &evidence)
        .await
        .unwrap();
    // Nor does the first vault open on a bucket of the same name in
    // another cluster, which is not marked: its chunks are not there.
    let elsewhere = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    drop(state);
    first.stop().await;
    let first_dir = first.data_dir();
    let e = custos::vault::open_async_on(&first_dir, elsewhere.settings().chunk_backend().unwrap())
        .await
        .expect_err("an unmarked bucket this vault has used before");
    assert!(e.to_string().contains("no custos-vault mark"), "{e}");
    drop(elsewhere);
}
