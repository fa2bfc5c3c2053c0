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
    cluster = tokio::task::spawn_blocking(move || {
        cluster.kill(2);
        cluster
    })
    .await
    .unwrap();
    let during = bytes(12, 5_000_000);
    let second = v.submit(b"one node down", &[("during.bin", during.clone())]).await;
    lawyer_gets(&v, &first.case_id, "before.bin", &before).await.unwrap();
    lawyer_gets(&v, &second.case_id, "during.bin", &during).await.unwrap();

    // Two sites lost: no quorum. Uploads and downloads are refused plainly.
    cluster = tokio::task::spawn_blocking(move || {
        cluster.kill(3);
        cluster
    })
    .await
    .unwrap();
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
    cluster = tokio::task::spawn_blocking(move || {
        cluster.restart(2);
        cluster.restart(3);
        cluster
    })
    .await
    .unwrap();
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
    let after = bucket_names(&v).await;
    assert!(!after.contains(&orphan), "the orphan is gone");
    for name in &held {
        assert!(after.contains(name), "referenced chunk {name} stays");
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
