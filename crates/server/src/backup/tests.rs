//! The backup format's unit tests.

use super::snapshot::{cut_under_lock, finish};
use super::*;
use custos_core::custody::{Action, EventDraft, VAULT_ACTOR, VAULT_CASE};

/// A new vault in `data`, with one admin.
async fn new_vault(data: &std::path::Path) -> Vault {
    let admin = custos_core::identity::Identity::generate("Admin").unwrap();
    crate::vault::init(data, "cut.example/log", &[admin.card()])
        .await
        .unwrap();
    crate::vault::open(data).unwrap()
}

/// What is appended between the cut and the copy of the log's trees
/// must not be in the snapshot: entries, chain indices, tree nodes.
#[tokio::test]
async fn writes_after_the_cut_stay_out_of_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vault = new_vault(&data).await;
    let at_cut = vault.store.log_size().unwrap();
    let vault = std::sync::Arc::new(vault);
    let cut = {
        let vault = vault.clone();
        tokio::task::spawn_blocking(move || cut_under_lock(&vault))
            .await
            .unwrap()
            .unwrap()
    };
    // Seven more entries (past a power of two, so new tree nodes
    // cover old leaves) land before the log's trees are copied.
    {
        let guard = vault.store.writer().await;
        let drafts = (0..7)
            .map(|_| EventDraft {
                case: VAULT_CASE.into(),
                actor: VAULT_ACTOR.into(),
                action: Action::CheckpointAnchored,
                objects: vec![],
                details: serde_json::Value::Null,
                request: None,
            })
            .collect();
        vault
            .store
            .append(&guard, crate::store::Batch::default(), drafts, &vault.signer)
            .unwrap();
    }
    vault.store.flush().await.unwrap();
    let snapshot = finish(&vault, cut).unwrap();
    assert_eq!(snapshot.manifest().log_size, at_cut);
    let file = dir.path().join("cut.backup");
    snapshot
        .write(&vault.store, std::fs::File::create(&file).unwrap())
        .unwrap();
    drop(vault);
    let restored = restore(
        &file,
        &dir.path().join("restored"),
        LogKeySource::File(&data.join("log.key")),
    )
    .unwrap();
    assert_eq!(restored.log_size, at_cut);
    assert_eq!(restored.audit.entries, at_cut);
    let vault = crate::vault::open(&dir.path().join("restored")).unwrap();
    assert_eq!(vault.store.record_count(T::Log) as u64, at_cut);
    assert_eq!(vault.store.record_count(T::Chains) as u64, at_cut);
    // A tree of n leaves has n >> level complete nodes at each level.
    let nodes: u64 = (0..64).map(|level| at_cut >> level).sum();
    assert_eq!(vault.store.record_count(T::Nodes) as u64, nodes);
}

#[test]
fn tree_files_round_trip_and_end_only_between_records() {
    let mut file = Vec::new();
    write_record(&mut file, b"key", b"value").unwrap();
    write_record(&mut file, b"", &[7; 300]).unwrap();
    let mut r = file.as_slice();
    assert_eq!(read_record(&mut r).unwrap(), Some((b"key".to_vec(), b"value".to_vec())));
    assert_eq!(read_record(&mut r).unwrap(), Some((vec![], vec![7; 300])));
    assert_eq!(read_record(&mut r).unwrap(), None);
    // Cut anywhere inside a record, or a stray byte or three at the end.
    for cut in 1..file.len() {
        let mut r = &file[..cut];
        let all: Result<Vec<_>> = std::iter::from_fn(|| read_record(&mut r).transpose()).collect();
        assert!(
            matches!(all, Err(BackupError::Damaged(_))) || cut == 16,
            "cut at {cut}: {all:?}"
        );
    }
    for junk in 1..4 {
        let mut longer = file.clone();
        longer.extend(std::iter::repeat_n(0u8, junk));
        let mut r = longer.as_slice();
        let all: Result<Vec<_>> = std::iter::from_fn(|| read_record(&mut r).transpose()).collect();
        assert!(matches!(all, Err(BackupError::Damaged(_))), "{junk} stray bytes");
    }
    // A length made to exhaust memory is refused before it is believed.
    let mut huge = Vec::new();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        read_record(&mut huge.as_slice()),
        Err(BackupError::Damaged(_))
    ));
}

/// A commit cut after it wrote its long list ahead leaves rows with no
/// object; the collector drops them and the chunks only they name, so a
/// snapshot must not keep them (a backup of chunk hashes only would name
/// chunks the bucket no longer holds, and refuse to restore).
#[tokio::test]
async fn the_rows_of_a_cut_commit_stay_out_of_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vault = new_vault(&data).await;
    let chunk = vault.store.put_chunk(b"a chunk named only by a cut commit").unwrap();
    let never_stored: Hash = Sha256::digest(b"an object never recorded").into();
    {
        let guard = vault.store.writer().await;
        let mut rows = crate::store::Batch::default();
        rows.put(T::ObjectChunks, crate::store::indexed_key(&never_stored, 0), chunk);
        vault.store.apply(&guard, rows).unwrap();
    }
    vault.store.flush().await.unwrap();
    assert_eq!(vault.store.record_count(T::ObjectChunks), 1);
    let chunks_before = vault.store.record_count(T::Chunks);

    let vault = std::sync::Arc::new(vault);
    let snapshot = snapshot(vault.clone()).await.unwrap();
    let file = dir.path().join("cut.backup");
    snapshot
        .write(&vault.store, std::fs::File::create(&file).unwrap())
        .unwrap();
    drop(vault);
    restore(
        &file,
        &dir.path().join("restored"),
        LogKeySource::File(&data.join("log.key")),
    )
    .unwrap();
    let restored = crate::vault::open(&dir.path().join("restored")).unwrap();
    assert_eq!(restored.store.record_count(T::ObjectChunks), 0);
    assert_eq!(restored.store.record_count(T::Chunks), chunks_before - 1);
}
