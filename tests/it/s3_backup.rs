//! Backups of a vault whose large chunks are in a real three-node Garage
//! bucket, taken and restored with the real command: a full backup carries
//! the chunks and its restore writes them back into the bucket; a backup
//! of chunk hashes only carries none, and restores only where the bucket
//! holds every chunk it lists, or it is refused by name, leaving nothing.

use crate::garage::GarageCluster;
use crate::util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use custos::api::{self, AppState};
use custos::backup;
use custos::client::flows;
use custos::client::Client;
use custos::store::Store;
use util::TestVault;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// Run the real `custos` with `args`, its own config folder under `dir`.
fn custos(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CUSTOS_CONFIG_DIR", dir.join("cli-config"))
        .env_remove("CUSTOS_PASSPHRASE")
        .env_remove("CUSTOS_BACKUP_PASSPHRASE")
        .output()
        .unwrap()
}

fn succeeds(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "custos failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails(out: Output) -> String {
    assert!(!out.status.success(), "custos should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `args` followed by the cluster's settings as flags.
fn with_flags(args: &[&str], cluster: &GarageCluster) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(cluster.flags());
    all
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A vault on the cluster's bucket with one case whose evidence is two
/// chunks in the bucket; stopped, so that it can be backed up offline.
async fn stopped_vault_with_a_case(cluster: &GarageCluster) -> (TestVault, String, Vec<u8>) {
    let mut v = TestVault::start_configured(|_| {}, cluster.settings()).await;
    let video = util::bytes(31, 5_000_000);
    let s = v.submit(b"what happened", &[("video.mp4", video.clone())]).await;
    v.stop().await;
    (v, s.case_id, video)
}

/// The store of a throwaway folder on the cluster's bucket: sees every
/// chunk the bucket holds.
fn bucket_store(cluster: &GarageCluster) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_on(dir.path(), cluster.settings().chunk_backend().unwrap()).unwrap();
    (dir, store)
}

/// The names of the chunks in the bucket.
async fn bucket_chunks(cluster: &GarageCluster) -> Vec<String> {
    let (dir, store) = bucket_store(cluster);
    let names = tokio::task::spawn_blocking(move || store.large_chunks().unwrap())
        .await
        .unwrap();
    drop(dir);
    names.into_iter().map(|(name, _)| name).collect()
}

/// Delete the chunks `lose` picks from the bucket, as a bucket that lost
/// objects would have.
async fn lose_chunks(cluster: &GarageCluster, lose: impl Fn(&str) -> bool + Send + 'static) -> Vec<String> {
    let (dir, store) = bucket_store(cluster);
    let lost = tokio::task::spawn_blocking(move || {
        let mut lost = Vec::new();
        for (name, _) in store.large_chunks().unwrap() {
            if lose(&name) {
                store.danger_remove_large_chunk(&name).unwrap();
                lost.push(name);
            }
        }
        lost
    })
    .await
    .unwrap();
    drop(dir);
    lost
}

/// Serve the restored vault in `dir`, its chunks in the cluster's bucket.
async fn serve_on(dir: &Path, cluster: &GarageCluster) -> Client {
    let settings = custos::config::Settings {
        stamp_bits: util::TEST_STAMP_BITS,
        ..cluster.settings()
    };
    let vault = custos::vault::open_async_on(dir, settings.chunk_backend().unwrap())
        .await
        .unwrap();
    let state = Arc::new(AppState::new(vault, &settings));
    let (listener, addr) = api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(api::serve(state, listener, std::future::pending()));
    Client::new(&format!("http://{addr}")).unwrap()
}

/// The lawyer gets the case from `client` and finds the video whole.
async fn lawyer_gets_the_video(v: &TestVault, client: &Client, case_id: &str, video: &[u8]) {
    let out = v.tmp.path().join(format!("got-{}", rand::random::<u32>()));
    flows::get_case(client, &v.lawyer, &v.log, case_id, &out).await.unwrap();
    assert_eq!(std::fs::read(out.join("video.mp4")).unwrap(), video, "byte for byte");
}

/// The chunk members of a backup file.
fn chunk_members(file: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(file).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .filter(|p| p.starts_with("custos-backup/chunks/"))
        .collect()
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_backup_of_an_s3_vault_carries_its_chunks_and_restores_them_into_the_bucket() {
    let cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let (mut v, case_id, video) = stopped_vault_with_a_case(&cluster).await;
    let tmp = v.tmp.path().to_owned();
    let data = v.data_dir();

    // Through the server: the snapshot reads its chunks from the bucket.
    v.serve().await;
    let online = tmp.join("online.backup");
    v.client()
        .backup(v.admin.signing_key(), &mut std::fs::File::create(&online).unwrap())
        .await
        .unwrap();
    v.stop().await;
    let (m, _) = backup::verify_file(&online, Some(&v.log.vkey())).unwrap();
    assert!(m.bucket.is_none());
    assert_eq!(chunk_members(&online).len() as u64, m.chunk_files);

    // Offline, with the command: the vault opens on the bucket its
    // settings name.
    let file = tmp.join("full.backup");
    let args = with_flags(
        &[
            "--json",
            "backup",
            "--out",
            file.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        &cluster,
    );
    let out = succeeds(custos(&as_strs(&args), &tmp));
    let in_bucket = bucket_chunks(&cluster).await;
    assert!(
        in_bucket.len() >= 2,
        "the video's chunks are in the bucket: {in_bucket:?}"
    );
    assert_eq!(out["chunk_files"].as_u64(), Some(in_bucket.len() as u64), "{out}");
    assert_eq!(chunk_members(&file).len(), in_bucket.len());

    // The bucket loses everything; the restore writes the chunks back.
    let lost = lose_chunks(&cluster, |_| true).await;
    assert_eq!(lost.len(), in_bucket.len());
    assert!(bucket_chunks(&cluster).await.is_empty());
    let restored = tmp.join("restored");
    let key = data.join("log.key");
    let args = with_flags(
        &[
            "--json",
            "restore",
            file.to_str().unwrap(),
            "--data",
            restored.to_str().unwrap(),
            "--log-key",
            key.to_str().unwrap(),
        ],
        &cluster,
    );
    let r = succeeds(custos(&as_strs(&args), &tmp));
    assert!(r["audit"]["objects"].as_u64() >= Some(2), "{r}");
    let mut back = bucket_chunks(&cluster).await;
    back.sort();
    let mut expected = in_bucket.clone();
    expected.sort();
    assert_eq!(back, expected, "every chunk is in the bucket again");
    assert!(
        util::files_under(&custos::vault::db_path(&restored).join("chunks")).is_empty(),
        "and none on the restored vault's disk"
    );
    let client = serve_on(&restored, &cluster).await;
    lawyer_gets_the_video(&v, &client, &case_id, &video).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_of_chunk_hashes_only_restores_only_where_the_bucket_holds_every_chunk() {
    let cluster = tokio::task::spawn_blocking(GarageCluster::start).await.unwrap();
    let (mut v, case_id, video) = stopped_vault_with_a_case(&cluster).await;
    let tmp = v.tmp.path().to_owned();
    let data = v.data_dir();
    let in_bucket = bucket_chunks(&cluster).await;
    assert!(in_bucket.len() >= 2, "{in_bucket:?}");

    // Through the server, with the signed header: logged, and chunkless.
    v.serve().await;
    let online = tmp.join("online-hashes.backup");
    v.client()
        .backup_chunks(
            v.admin.signing_key(),
            &mut std::fs::File::create(&online).unwrap(),
            true,
        )
        .await
        .unwrap();
    v.stop().await;
    let (m, _) = backup::verify_file(&online, Some(&v.log.vkey())).unwrap();
    assert_eq!(m.bucket.map(|b| b.chunks.len()), Some(in_bucket.len()));
    assert!(chunk_members(&online).is_empty());

    // Offline, with the command (its log holds the logged backup above).
    let file = tmp.join("hashes.backup");
    let args = with_flags(
        &[
            "--json",
            "backup",
            "--chunk-hashes-only",
            "--out",
            file.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        &cluster,
    );
    let out = succeeds(custos(&as_strs(&args), &tmp));
    assert_eq!(out["chunk_files"].as_u64(), Some(0), "{out}");
    assert!(chunk_members(&file).is_empty(), "no chunk in the file");
    let (m, _) = backup::verify_file(&file, Some(&v.log.vkey())).unwrap();
    let listed = m.bucket.expect("the manifest lists the chunks");
    assert_eq!(listed.bucket, cluster.var("S3_BUCKET"));
    let mut names: Vec<&str> = listed.chunks.iter().map(|c| c.sha256.as_str()).collect();
    names.sort();
    let mut expected: Vec<&str> = in_bucket.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(names, expected, "every chunk, by hash");

    let key = data.join("log.key");
    let restore_args = |into: &Path| {
        vec![
            "--json".to_owned(),
            "restore".into(),
            file.display().to_string(),
            "--data".into(),
            into.display().to_string(),
            "--log-key".into(),
            key.display().to_string(),
        ]
    };

    // Without the bucket's settings: refused, naming the bucket.
    let nowhere = tmp.join("restored-nowhere");
    let e = fails(custos(&as_strs(&restore_args(&nowhere)), &tmp));
    assert!(e.contains(cluster.var("S3_BUCKET")) && e.contains("--s3-bucket"), "{e}");
    assert!(is_empty_dir(&nowhere), "nothing left behind");

    // With them: the bucket holds every chunk, the audit re-hashes them.
    let restored = tmp.join("restored");
    let mut args = restore_args(&restored);
    args.extend(cluster.flags());
    let r = succeeds(custos(&as_strs(&args), &tmp));
    assert!(r["audit"]["objects"].as_u64() >= Some(2), "{r}");
    let client = serve_on(&restored, &cluster).await;
    lawyer_gets_the_video(&v, &client, &case_id, &video).await;

    // The bucket loses one chunk: the restore says which, and leaves nothing.
    let gone = in_bucket[0].clone();
    let lost = lose_chunks(&cluster, move |name| name == gone).await;
    assert_eq!(lost.len(), 1);
    let again = tmp.join("restored-again");
    let mut args = restore_args(&again);
    args.extend(cluster.flags());
    let e = fails(custos(&as_strs(&args), &tmp));
    assert!(
        e.contains(&lost[0]) && e.contains("does not hold 1 of the"),
        "the missing chunk is named before anything is restored: {e}"
    );
    assert!(is_empty_dir(&again), "nothing left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_whose_chunks_are_on_its_disk_refuses_a_backup_of_hashes_only() {
    let mut v = TestVault::start().await;
    v.submit(b"on disk", &[("photo.jpg", util::bytes(41, 200_000))]).await;
    // Through the server: refused before anything is logged.
    let before = v.events().await.len();
    let e = v
        .client()
        .backup_chunks(v.admin.signing_key(), &mut Vec::new(), true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("full backup"), "{e}");
    assert_eq!(v.events().await.len(), before, "no backup was logged");
    v.stop().await;

    let tmp: PathBuf = v.tmp.path().to_owned();
    let file = tmp.join("refused.backup");
    let e = fails(custos(
        &[
            "backup",
            "--chunk-hashes-only",
            "--out",
            file.to_str().unwrap(),
            "--data",
            v.data_dir().to_str().unwrap(),
        ],
        &tmp,
    ));
    assert!(e.contains("own disk"), "{e}");
    assert!(!file.exists());
}
