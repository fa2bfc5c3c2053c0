//! The checkpoint a client pins for a vault, advanced by many proofs at
//! once (the desk proves 8 cases at a time). An answer overtaken by a
//! newer one (its request went out before another's answer moved the pin
//! on) is accepted when the pin extends it, and the pin stays the newer;
//! the pin only ever grows; a checkpoint the pin does not extend, or
//! older than the pin was when it was asked for, is still refused.
//!
//! The checkpoints are the vault's own, signed with its log key at sizes
//! its log has had (and, for the forks, at roots it never had).

use crate::util;

use custos::client::trust::{PinnedWhenAsked, TrustStore};
use custos::client::{Client, ClientError};
use custos::custody::checkpoint::Checkpoint;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use util::TestVault;

/// A vault whose log has grown through a few submissions.
async fn a_vault_with_some_history() -> TestVault {
    let v = TestVault::start().await;
    for i in 0..3u8 {
        v.submit(&[b'a' + i; 100], &[]).await;
    }
    v
}

/// The vault's checkpoint at `size`, as it signed or would have signed it;
/// with `root` given, one of a tree it never had.
fn checkpoint(v: &TestVault, size: u64, root: Option<[u8; 32]>) -> (String, Checkpoint) {
    let vault = &v.state.as_ref().unwrap().vault;
    let root = root.unwrap_or_else(|| vault.store.root(size).unwrap());
    let note = vault.signer.sign(size, root);
    let cp = v.log.verify(&note).unwrap();
    (note, cp)
}

fn log_size(v: &TestVault) -> u64 {
    v.state.as_ref().unwrap().vault.store.log_size().unwrap()
}

/// The checkpoint pinned in `pins`, read as the client keeps it.
fn pinned(v: &TestVault, pins: &TrustStore) -> Checkpoint {
    let dir = pins.dir().join("checkpoints");
    let mut files = std::fs::read_dir(&dir).unwrap();
    let file = files.next().unwrap().unwrap().path();
    assert!(files.next().is_none(), "one pin per vault");
    v.log.verify(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The checkpoint an answer carried, held to the pin, for a request that
/// went out when the pin was `asked`.
async fn advance(
    pins: &TrustStore,
    c: &Client,
    v: &TestVault,
    (note, cp): &(String, Checkpoint),
    asked: PinnedWhenAsked,
) -> Result<(), ClientError> {
    pins.advance_checkpoint(c, &v.log, note, cp, asked).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_overtaken_by_a_newer_one_is_accepted_and_the_pin_stays_newer() {
    let v = a_vault_with_some_history().await;
    let (c, n) = (v.client(), log_size(&v));
    let pins = TrustStore::new(v.tmp.path().join("pins"));
    let (newer, older) = (checkpoint(&v, n, None), checkpoint(&v, n - 3, None));
    // Two requests go out; the later one's answer is checked first.
    let asked = pins.pinned_when_asked(&v.url).await.unwrap();
    advance(&pins, &c, &v, &newer, asked).await.unwrap();
    advance(&pins, &c, &v, &older, asked).await.unwrap();
    assert_eq!(pinned(&v, &pins), newer.1, "the pin is never lowered");

    // Asked for after the pin moved on, the same older answer is a
    // rollback.
    let asked = pins.pinned_when_asked(&v.url).await.unwrap();
    let e = advance(&pins, &c, &v, &older, asked).await.unwrap_err();
    assert!(
        matches!(e, ClientError::Verify(_)) && e.to_string().contains(&format!("shrank from {n} entries")),
        "{e}"
    );
    assert_eq!(pinned(&v, &pins), newer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_advancing_the_pin_at_once_never_race_and_leave_the_largest() {
    let v = a_vault_with_some_history().await;
    let (c, n) = (v.client(), log_size(&v));
    assert!(n >= 8, "the log has {n} entries");
    let all: Vec<_> = (n - 7..=n).map(|size| checkpoint(&v, size, None)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for round in 0..10 {
        let pins = TrustStore::new(v.tmp.path().join(format!("pins-{round}")));
        // The first answer pins the log as it was when the others' eight
        // requests went out; their answers are checked in any order.
        let first = pins.pinned_when_asked(&v.url).await.unwrap();
        advance(&pins, &c, &v, &all[0], first).await.unwrap();
        let asked = pins.pinned_when_asked(&v.url).await.unwrap();
        let mut order = all.clone();
        order.shuffle(&mut rng);
        let mut tasks = tokio::task::JoinSet::new();
        for (note, cp) in order.clone() {
            let (pins, c, log) = (pins.clone(), c.clone(), v.log.clone());
            tasks.spawn(async move { pins.advance_checkpoint(&c, &log, &note, &cp, asked).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done.unwrap() {
                let sizes: Vec<u64> = order.iter().map(|(_, cp)| cp.size).collect();
                panic!("round {round}, answers of sizes {sizes:?} in this order: {e}");
            }
        }
        assert_eq!(pinned(&v, &pins).size, n, "round {round}: the pin is the largest");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_older_newer_or_as_large_as_the_pin_is_refused() {
    let v = a_vault_with_some_history().await;
    let (c, n) = (v.client(), log_size(&v));
    let pins = TrustStore::new(v.tmp.path().join("pins"));
    // Every answer here was asked for before anything was pinned, so an
    // older one is refused for what it is, not for its age.
    let asked = pins.pinned_when_asked(&v.url).await.unwrap();
    let pin = checkpoint(&v, n - 2, None);
    advance(&pins, &c, &v, &pin, asked).await.unwrap();
    for (size, why) in [
        (n - 4, "is not a prefix"),
        (n - 2, "has another root"),
        (n, "is not a prefix"),
    ] {
        let fork = checkpoint(&v, size, Some([7; 32]));
        let e = advance(&pins, &c, &v, &fork, asked).await.unwrap_err();
        let shown = e.to_string();
        assert!(
            matches!(e, ClientError::Verify(_))
                && shown.contains(why)
                && shown.contains("not showing you the history it showed before"),
            "a fork of {size} entries: {shown}"
        );
        assert_eq!(pinned(&v, &pins), pin.1, "a fork moves no pin");
    }
}
