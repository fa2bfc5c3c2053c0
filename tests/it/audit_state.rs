//! The auditor's state file: a log that is rolled back, forked or rewritten
//! between two audits is caught, with both checkpoints named, and the state
//! file keeps the last good checkpoint. The vault is really rolled back: its
//! data directory is replaced by an earlier copy of itself.

use crate::util;

use custos::client::flows::{self, AuditState};
use util::{copy_dir, restore_dir, TestVault};

fn saved_checkpoint(path: &std::path::Path) -> String {
    serde_json::from_slice::<AuditState>(&std::fs::read(path).unwrap())
        .unwrap()
        .checkpoint
}

#[tokio::test]
async fn a_rolled_back_log_fails_the_audit_naming_both_checkpoints() {
    let mut v = TestVault::start().await;
    v.submit(b"first", &[]).await;
    v.stop().await;
    let snapshot = v.tmp.path().join("snapshot");
    copy_dir(&v.data_dir(), &snapshot);
    v.serve().await;
    v.submit(b"second", &[]).await;

    let state = v.tmp.path().join("state.json");
    let good = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(good.failure, None);
    let remembered = saved_checkpoint(&state);

    v.stop().await;
    restore_dir(&snapshot, &v.data_dir());
    v.serve().await;
    let report = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    let failure = report.failure.expect("a rollback must fail the audit");
    assert!(failure.contains("rolled back"), "{failure}");
    let old = v.log.verify(&remembered).unwrap();
    assert!(
        failure.contains(&format!("size {}", good.checkpoint_size))
            && failure.contains(&format!("size {}", report.checkpoint_size))
            && report.checkpoint_size < old.size,
        "{failure}"
    );
    assert_eq!(
        saved_checkpoint(&state),
        remembered,
        "the state keeps the last good checkpoint"
    );
}

#[tokio::test]
async fn a_fork_of_equal_size_or_larger_fails_the_audit() {
    let mut v = TestVault::start().await;
    v.stop().await;
    let snapshot = v.tmp.path().join("snapshot");
    copy_dir(&v.data_dir(), &snapshot);
    v.serve().await;
    v.submit(b"what really happened", &[]).await;
    let state = v.tmp.path().join("state.json");
    let good = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(good.failure, None);

    // The same history up to the snapshot, then a different case of the
    // same shape: the same size, another root.
    v.stop().await;
    restore_dir(&snapshot, &v.data_dir());
    v.serve().await;
    v.submit(b"a rewritten account", &[]).await;
    let forked = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(forked.checkpoint_size, good.checkpoint_size, "equal sizes");
    assert_ne!(forked.checkpoint_root, good.checkpoint_root);
    let failure = forked.failure.expect("a fork must fail the audit");
    assert!(failure.contains("rewritten or forked"), "{failure}");
    assert!(
        failure.contains(&good.checkpoint_root) && failure.contains(&forked.checkpoint_root),
        "both checkpoints are named: {failure}"
    );

    // The fork grows past the remembered size: still no consistency proof.
    v.submit(b"more", &[]).await;
    let grown = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert!(grown.checkpoint_size > good.checkpoint_size);
    let failure = grown.failure.expect("a grown fork must fail too");
    assert!(failure.contains("rewritten or forked"), "{failure}");

    // An auditor without the state file is not fooled about the log itself:
    // the fork is internally consistent, which is why the state file matters.
    let fresh = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(fresh.failure, None);
}

/// An audit tells its progress after each page of entries, ending at the
/// checkpoint's size (the desk's audit page shows it).
#[tokio::test]
async fn an_audit_reports_its_progress_up_to_the_checkpoint() {
    let v = TestVault::start().await;
    v.submit(b"first", &[]).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = flows::AuditOptions {
        progress: Some({
            let seen = seen.clone();
            std::sync::Arc::new(move |done, total| seen.lock().unwrap().push((done, total)))
        }),
        ..Default::default()
    };
    let report = flows::audit_with(&v.client(), &v.auditor, &v.log, None, options)
        .await
        .unwrap();
    assert_eq!(report.failure, None);
    let seen = seen.lock().unwrap().clone();
    let size = report.checkpoint_size;
    assert!(size > 0);
    assert_eq!(seen.last(), Some(&(size, size)), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "it only grows: {seen:?}");
}
