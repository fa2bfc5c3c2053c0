//! Resumed downloads find the chunk they start in from the object's
//! manifest: no chunk before it is read, so damage there does not stop
//! them, while a whole download still fails on it. Objects whose manifest
//! does not record even chunks (older vaults, odd-sized PATCHes) resume
//! from the chunks' lengths. A manifest that lies is caught, never
//! believed into sending bytes from the wrong place.

use crate::util;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::Client;
use custos::store::{ObjectManifest, Store, T};
use custos::wire::CommitUpload;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use util::{bytes, TestVault, ORIGIN};

/// A submitted case with one object over several chunks: its id, its
/// ciphertext as a whole download gave it, and its manifest. The vault
/// is stopped, for the caller to damage.
async fn stored_object(v: &mut TestVault, len: usize) -> (String, String, Vec<u8>, ObjectManifest) {
    let s = v.submit(b"statement", &[("big.bin", bytes(31, len))]).await;
    let client = v.client();
    let key = v.lawyer.signing_key();
    let detail = client.case(key, &s.case_id).await.unwrap();
    let big = detail.objects.iter().max_by_key(|o| o.size).unwrap().object_id.clone();
    let (_, whole) = download(v, &client, key, &s.case_id, &big, 0).await.unwrap();
    v.stop().await;
    let store = open_store(v);
    let manifest: ObjectManifest = store.get_json(T::Objects, object(&big)).unwrap().unwrap();
    (s.case_id, big, whole, manifest)
}

fn open_store(v: &TestVault) -> Store {
    Store::open(&custos::vault::db_path(&v.data_dir())).unwrap()
}

fn object(id: &str) -> [u8; 32] {
    custos::store::object_hash(id).unwrap()
}

/// The file of chunk `index` of `object`.
fn chunk_file(store: &Store, object_id: &str, index: u64) -> std::path::PathBuf {
    store.chunk_file(&store.chunk_at(T::ObjectChunks, &object(object_id), index).unwrap())
}

/// Flip one byte of a chunk file, as bit rot would: its length stays.
fn rot(path: &std::path::Path) {
    let mut data = std::fs::read(path).unwrap();
    data[100] ^= 0x20;
    std::fs::write(path, data).unwrap();
}

/// Download `object_id` from byte `from`: the logged access's details
/// and the bytes.
async fn download(
    v: &TestVault,
    client: &Client,
    key: &SigningKey,
    case_id: &str,
    object_id: &str,
    from: u64,
) -> Result<(serde_json::Value, Vec<u8>), custos::client::ClientError> {
    let (mut hasher, mut got) = (Sha256::new(), Vec::new());
    let receipt = client
        .download_from(key, case_id, object_id, from, &mut got, &mut hasher)
        .await?;
    let (event, _) = custos::audit::verify_receipt(&receipt, &v.log).unwrap();
    Ok((event.details, got))
}

#[tokio::test]
async fn a_resumed_download_reads_no_chunk_before_the_one_it_starts_in() {
    let mut v = TestVault::start().await;
    let (case_id, big, whole, manifest) = stored_object(&mut v, 13_000_000).await;
    let chunk = manifest.chunk_size.expect("the vault cuts even chunks");
    assert_eq!(manifest.chunks, whole.len().div_ceil(chunk as usize) as u64);
    {
        // Chunk 0 gone, chunk 1 rotten: a resume reading either fails.
        let store = open_store(&v);
        std::fs::remove_file(chunk_file(&store, &big, 0)).unwrap();
        rot(&chunk_file(&store, &big, 1));
    }
    v.serve().await;
    let client = v.client();
    let key = v.lawyer.signing_key();

    // From inside chunk 2, from its first byte, and from the last byte.
    let len = whole.len() as u64;
    for from in [2 * chunk + 12_345, 2 * chunk, len - 1] {
        let (details, got) = download(&v, &client, key, &case_id, &big, from).await.unwrap();
        assert_eq!(got, whole[from as usize..], "from {from}");
        assert_eq!(details["from"], from);
    }
    // Anything that reaches the damage fails loudly, never with bytes.
    for from in [0, 10, chunk + 5] {
        let res = download(&v, &client, key, &case_id, &big, from).await;
        assert!(
            res.as_ref().is_err_and(|e| e.code() == Some("integrity_error")),
            "from {from}: {:?}",
            res.map(|(_, got)| got.len())
        );
    }
}

#[tokio::test]
async fn an_object_whose_manifest_has_no_chunk_size_resumes_from_the_chunk_lengths() {
    let mut v = TestVault::start().await;
    let (case_id, big, whole, manifest) = stored_object(&mut v, 9_000_000).await;
    let chunk = manifest.chunk_size.unwrap();
    {
        // The record as versions before the chunk size wrote it.
        let store = open_store(&v);
        let old = serde_json::json!({ "size": manifest.size, "chunks": manifest.chunks });
        store
            .danger_raw_tree(T::Objects)
            .insert(object(&big), serde_json::to_vec(&old).unwrap())
            .unwrap();
        store.danger_raw_tree(T::Objects).flush().unwrap();
        rot(&chunk_file(&store, &big, 0));
    }
    v.serve().await;
    let client = v.client();
    let key = v.lawyer.signing_key();
    let from = chunk + 777;
    let (_, got) = download(&v, &client, key, &case_id, &big, from).await.unwrap();
    assert_eq!(got, whole[from as usize..]);
    let err = download(&v, &client, key, &case_id, &big, 0).await.unwrap_err();
    assert_eq!(err.code(), Some("integrity_error"));

    // A chunk gone: the lengths are unknown, so no resume is guessed at.
    v.stop().await;
    std::fs::remove_file(chunk_file(&open_store(&v), &big, 0)).unwrap();
    v.serve().await;
    let key = v.lawyer.signing_key();
    let err = download(&v, &v.client(), key, &case_id, &big, from).await.unwrap_err();
    assert_eq!(err.code(), Some("integrity_error"));
}

#[tokio::test]
async fn a_manifest_with_a_wrong_chunk_size_stops_a_download_before_it_sends() {
    let mut v = TestVault::start().await;
    let (case_id, big, _, manifest) = stored_object(&mut v, 9_000_000).await;
    let chunk = manifest.chunk_size.unwrap();
    for wrong in [chunk - 1, chunk + 1, chunk / 2, 1, 0] {
        {
            let store = open_store(&v);
            let lie = serde_json::json!({ "size": manifest.size, "chunks": manifest.chunks, "chunk_size": wrong });
            store
                .danger_raw_tree(T::Objects)
                .insert(object(&big), serde_json::to_vec(&lie).unwrap())
                .unwrap();
            store.danger_raw_tree(T::Objects).flush().unwrap();
        }
        v.serve().await;
        let client = v.client();
        for from in [0, chunk + 3] {
            let err = download(&v, &client, v.lawyer.signing_key(), &case_id, &big, from)
                .await
                .unwrap_err();
            assert_eq!(err.code(), Some("integrity_error"), "chunk size {wrong}, from {from}");
        }
        v.stop().await;
    }
}

#[tokio::test]
async fn an_object_sent_in_uneven_patches_resumes_from_any_byte() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let keys = s.codename.derive(ORIGIN);
    let client = v.client();
    // Odd PATCH sizes, one over a chunk: the server cuts it, unevenly.
    let data = bytes(41, 6_000_000);
    let upload = client
        .create_upload(keys.signing_key(), &s.case_id, data.len() as u64)
        .await
        .unwrap();
    assert_eq!(
        client.patch_size(),
        custos::store::CHUNK_SIZE,
        "a vault that keeps chunks as files asks for one chunk per PATCH"
    );
    let mut at = 0;
    for piece in [1_000_000, 4_500_000, 500_000] {
        client
            .patch(keys.signing_key(), &upload, at as u64, data[at..at + piece].to_vec())
            .await
            .unwrap();
        at += piece;
    }
    let id = hex::encode(Sha256::digest(&data));
    client
        .commit(
            keys.signing_key(),
            &upload,
            &CommitUpload {
                sha256: id.clone(),
                label: B64.encode(b"label-ciphertext"),
            },
        )
        .await
        .unwrap();
    let key = v.lawyer.signing_key();
    for from in [
        0, 999_999, 1_000_000, 5_194_304, 5_194_305, 5_499_999, 5_500_000, 5_999_999,
    ] {
        let (_, got) = download(&v, &client, key, &s.case_id, &id, from).await.unwrap();
        assert_eq!(got, data[from as usize..], "from {from}");
    }
}

#[tokio::test]
async fn a_chunk_list_damaged_in_the_store_fails_a_whole_download() {
    let mut v = TestVault::start().await;
    let (case_id, big, whole, manifest) = stored_object(&mut v, 9_000_000).await;
    let chunk = manifest.chunk_size.unwrap();
    {
        // Chunks 0 and 1 swapped in the list: each still matches its
        // address and has the right length, only the order is wrong.
        let store = open_store(&v);
        let list = store.danger_raw_tree(T::ObjectChunks);
        let key = |i| custos::store::indexed_key(&object(&big), i);
        let (a, b) = (list.get(key(0)).unwrap().unwrap(), list.get(key(1)).unwrap().unwrap());
        list.insert(key(0), b).unwrap();
        list.insert(key(1), a).unwrap();
        list.flush().unwrap();
    }
    v.serve().await;
    let client = v.client();
    let key = v.lawyer.signing_key();
    let res = download(&v, &client, key, &case_id, &big, 0).await;
    assert!(res.is_err(), "a whole download of the wrong order must fail");
    // A range has no whole to check: the chunks it sends are the right
    // ones here, and the client's hash of the object catches the rest.
    let from = 2 * chunk;
    let (_, got) = download(&v, &client, key, &case_id, &big, from).await.unwrap();
    assert_eq!(got, whole[from as usize..]);
}

/// The same ciphertext sent again after its stored chunk rotted: the
/// commit finishes the hash of what was sent instead of reading the object
/// back, so the chunk store must not take the damaged file's name for the
/// sent bytes. It replaces the copy, and the new object downloads whole.
#[tokio::test]
async fn a_rotted_chunk_is_replaced_when_its_bytes_are_sent_again() {
    let mut v = TestVault::start().await;
    let (case_id, big, whole, manifest) = stored_object(&mut v, 9_000_000).await;
    let chunk = manifest.chunk_size.expect("the vault cuts even chunks") as usize;
    rot(&chunk_file(&open_store(&v), &big, 0));
    v.serve().await;
    // Another case, since a case holds an object once.
    let other = v.submit(b"another statement", &[]).await.case_id;
    let client = v.client();
    let key = v.lawyer.signing_key();
    let upload = client.create_upload(key, &other, whole.len() as u64).await.unwrap();
    for (i, piece) in whole.chunks(chunk).enumerate() {
        client
            .patch(key, &upload, (i * chunk) as u64, piece.to_vec())
            .await
            .unwrap();
    }
    let label = B64.encode(b"not a real label, but sealed labels are opaque to the vault");
    let committed = client
        .commit(
            key,
            &upload,
            &CommitUpload {
                sha256: big.clone(),
                label,
            },
        )
        .await
        .unwrap();
    assert_eq!(committed.object_id, big);
    for case in [&other, &case_id] {
        let (_, got) = download(&v, &client, key, case, &big, 0).await.unwrap();
        assert!(got == whole, "the object downloads whole again from {case}");
    }
}
