//! The rewrite of a store of the old segment size, on real sled stores in
//! temporary folders: whole, and taken up after a cut at each of its steps.

use super::*;

use std::collections::BTreeMap;

/// Every tree's pairs.
type Contents = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

/// A store as custos made them before [`SEGMENT_SIZE`]: sled's default
/// segment size, 60 KiB values (so leaves become blob files), a pair in
/// sled's default tree, and custos's own files beside sled's.
fn old_store(dir: &Path) -> Contents {
    {
        let db = open_sled(dir, OLD_SEGMENT_SIZE).unwrap();
        let chunks = db.open_tree("chunks").unwrap();
        for i in 0u32..40 {
            chunks.insert(i.to_be_bytes(), vec![i as u8; 60 << 10]).unwrap();
        }
        db.open_tree("cases").unwrap().insert("case", "record").unwrap();
        db.insert("default", "tree").unwrap();
        db.flush().unwrap();
    }
    wait_for_sled(dir).unwrap();
    let blobs = std::fs::read_dir(dir.join("blobs")).unwrap().count();
    assert!(blobs > 0, "the old store wrote no blob file: the test proves nothing");
    std::fs::create_dir_all(dir.join("chunks").join("ab")).unwrap();
    std::fs::write(dir.join("chunks").join("ab").join("abcd"), b"a chunk file").unwrap();
    std::fs::write(dir.join("high-water"), b"a mark").unwrap();
    contents(&open_sled(dir, OLD_SEGMENT_SIZE).unwrap())
}

fn contents(db: &sled::Db) -> Contents {
    db.tree_names()
        .into_iter()
        .map(|name| {
            let pairs = db
                .open_tree(&name)
                .unwrap()
                .iter()
                .map(|p| {
                    let (k, v) = p.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            (name.to_vec(), pairs)
        })
        .collect()
}

/// The old store in `dir` copied into a new one beside it, and closed:
/// what a cut right after the copy leaves.
fn built_beside(dir: &Path) -> Beside {
    let beside = Beside::of(dir);
    {
        let old = open_sled(dir, OLD_SEGMENT_SIZE).unwrap();
        beside.build(&old).unwrap();
    }
    wait_for_sled(dir).unwrap();
    beside
}

/// The store in `dir` after `open`: the new segment size, no blob file,
/// every pair and custos's files as they were, nothing left beside it.
fn assert_rewritten(dir: &Path, before: &Contents) {
    let db = open(dir).unwrap();
    assert_eq!(&contents(&db), before, "a pair changed in the rewrite");
    assert_eq!(segment_size(dir).unwrap(), SEGMENT_SIZE);
    let blobs = std::fs::read_dir(dir.join("blobs")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(blobs, 0, "the rewritten store has blob files");
    assert_eq!(
        std::fs::read(dir.join("chunks").join("ab").join("abcd")).unwrap(),
        b"a chunk file"
    );
    assert_eq!(std::fs::read(dir.join("high-water")).unwrap(), b"a mark");
    assert_eq!(
        db.get("default").unwrap().as_deref(),
        Some(&b"tree"[..]),
        "sled's default tree"
    );
    let beside = Beside::of(dir);
    for left in [&beside.building, &beside.built, &beside.retired] {
        assert!(!left.exists(), "{} is left beside the store", left.display());
    }
}

#[test]
fn an_old_store_is_rewritten_with_the_new_segment_size_and_every_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let before = old_store(&dir);
    wait_for_sled(&dir).unwrap();
    assert_rewritten(&dir, &before);
}

#[test]
fn a_new_store_is_opened_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    open(&dir).unwrap().insert("k", "v").unwrap();
    wait_for_sled(&dir).unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let (folder, log) = (inode(&dir), inode(&dir.join("db")));
    let db = open(&dir).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        (inode(&dir), inode(&dir.join("db"))),
        (folder, log),
        "a new store was rewritten"
    );
    assert!(
        !tmp.path().join("db.rewrite-lock").exists(),
        "a new store took the rewrite's lock"
    );
}

/// A cut while the copy was made: the half-made store is thrown away and
/// the copy made again.
#[test]
fn a_rewrite_cut_off_while_copying_starts_over() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let before = old_store(&dir);
    let beside = Beside::of(&dir);
    std::fs::create_dir_all(beside.building.join("blobs")).unwrap();
    std::fs::write(beside.building.join("db"), b"half a log").unwrap();
    wait_for_sled(&dir).unwrap();
    assert_rewritten(&dir, &before);
}

/// A cut once the new store was built, while custos's files were moving
/// into it: they go back into the old store, which is copied again (it
/// may have changed since, see the next test).
#[test]
fn a_rewrite_cut_off_while_moving_files_puts_them_back_and_copies_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let before = old_store(&dir);
    let beside = built_beside(&dir);
    std::fs::rename(dir.join("chunks"), beside.built.join("chunks")).unwrap();
    assert_rewritten(&dir, &before);
}

/// A copy made, then a cut before the swap, then an older custos served
/// the old store and wrote to it: the copy is stale, so it is made again
/// (found by review: it used to take the old store's place).
#[test]
fn a_copy_left_by_a_cut_is_made_again_from_the_store_as_it_is_now() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    old_store(&dir);
    let beside = Beside::of(&dir);
    let after = {
        let old = open_sled(&dir, OLD_SEGMENT_SIZE).unwrap();
        beside.build(&old).unwrap();
        old.open_tree("cases").unwrap().insert("later", "acknowledged").unwrap();
        old.flush().unwrap();
        contents(&old)
    };
    wait_for_sled(&dir).unwrap();
    assert_rewritten(&dir, &after);
}

/// A cut between the syncs of the two folders a file moved between: the
/// file is under both names, and goes back under the old store's alone.
#[test]
fn a_file_under_both_names_after_a_cut_is_put_back_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let before = old_store(&dir);
    let beside = built_beside(&dir);
    std::fs::hard_link(dir.join("high-water"), beside.built.join("high-water")).unwrap();
    std::fs::rename(dir.join("chunks"), beside.built.join("chunks")).unwrap();
    assert_rewritten(&dir, &before);
    let links = std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(dir.join("high-water")).unwrap());
    assert_eq!(links, 1);
}

/// The old store under the retired name and no rewritten store under the
/// store's: nothing is removed, and the store does not open.
#[test]
fn a_retired_store_without_a_new_one_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    old_store(&dir);
    wait_for_sled(&dir).unwrap();
    let beside = Beside::of(&dir);
    std::fs::rename(&dir, &beside.retired).unwrap();
    assert!(matches!(open(&dir), Err(StoreError::Integrity(_))));
    assert!(
        beside.retired.join("db").exists(),
        "the only copy of the store was removed"
    );
}

/// A cut between the swap's two renames: no store has the name; the new
/// one takes it.
#[test]
fn a_rewrite_cut_off_between_the_renames_is_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let before = old_store(&dir);
    let beside = built_beside(&dir);
    for name in ["chunks", "high-water"] {
        std::fs::rename(dir.join(name), beside.built.join(name)).unwrap();
    }
    std::fs::rename(&dir, &beside.retired).unwrap();
    assert_rewritten(&dir, &before);
}

/// A new store that differs from the old one never replaces it.
#[test]
fn a_copy_that_differs_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (a, b) = (
        open_sled(&a, SEGMENT_SIZE).unwrap(),
        open_sled(&b, SEGMENT_SIZE).unwrap(),
    );
    a.open_tree("t").unwrap().insert("k", "v").unwrap();
    copy(&a, &b).unwrap();
    same(&a, &b).unwrap();
    b.open_tree("t").unwrap().insert("k", "w").unwrap();
    assert!(matches!(same(&a, &b), Err(StoreError::Integrity(_))));
    b.open_tree("t").unwrap().insert("k", "v").unwrap();
    b.open_tree("u").unwrap();
    assert!(matches!(same(&a, &b), Err(StoreError::Integrity(_))));
}

/// The rewrite stopped after each of its steps in turn, as if the process
/// had died there: the next open takes it up, and the store comes out
/// whole each time.
#[test]
fn a_rewrite_stopped_after_any_step_is_taken_up() {
    let mut stops = Vec::new();
    for n in 0.. {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let before = old_store(&dir);
        wait_for_sled(&dir).unwrap();
        STOP_AFTER.with(|s| s.set(Some(n)));
        let stopped = open(&dir).map(drop);
        STOP_AFTER.with(|s| s.set(None));
        match stopped {
            Err(StoreError::Io(e)) if e.to_string().starts_with("stopped after: ") => stops.push(e.to_string()),
            Err(e) => panic!("step {n}: {e}"),
            Ok(()) => break,
        }
        // The stopped rewrite's sleds let go of their files (the store may
        // be between its names).
        let beside = Beside::of(&dir);
        for store in [&dir, &beside.building, &beside.built] {
            if store.join("db").exists() {
                wait_for_sled(store).unwrap();
            }
        }
        assert_rewritten(&dir, &before);
    }
    // Copied, synced, built, closed, two files moved, the copy's names
    // synced, the old store renamed aside, the copy renamed into place.
    assert_eq!(stops.len(), 9, "{stops:?}");
}

/// Both stores renamed by a swap and something else under the store's
/// name: not a state a rewrite leaves, so nothing is touched.
#[test]
fn a_store_under_the_name_beside_both_stores_of_a_swap_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    old_store(&dir);
    let beside = built_beside(&dir);
    std::fs::rename(&dir, &beside.retired).unwrap();
    open_sled(&dir, OLD_SEGMENT_SIZE).unwrap().insert("k", "v").unwrap();
    wait_for_sled(&dir).unwrap();
    assert!(matches!(open(&dir), Err(StoreError::Integrity(_))));
    assert!(beside.built.join("db").exists() && beside.retired.join("db").exists());
}
