//! The auditor's state file: a log that is rolled back, forked or rewritten
//! between two audits is caught, with both checkpoints named, and the state
//! file keeps the last good checkpoint. The vault is really rolled back: its
//! data directory is replaced by an earlier copy of itself.

use crate::util;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::flows::{self, AuditState};
use util::{copy_dir, restore_dir, TestVault};

const BIN: &str = env!("CARGO_BIN_EXE_custos");

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

/// The vault's insider appends `drafts` through the store, signed
/// checkpoint and all, after `tamper` has had its way with the store.
async fn insider_appends(
    v: &mut TestVault,
    tamper: impl FnOnce(&custos::store::Store),
    drafts: Vec<custos::custody::EventDraft>,
) {
    v.stop().await;
    {
        let vault = custos::vault::open(&v.data_dir()).unwrap();
        tamper(&vault.store);
        let guard = vault.store.writer().await;
        vault
            .store
            .append(&guard, custos::store::Batch::default(), drafts, &vault.signer)
            .unwrap();
        drop(guard);
        vault.store.flush().await.unwrap();
    }
    v.serve().await;
}

/// An admin's backup request, as the vault logs it: signed now.
fn backup_event(v: &TestVault) -> custos::custody::EventDraft {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let url = format!("{}/v1/vault/backup", v.url);
    custos::custody::EventDraft {
        case: "vault".into(),
        actor: v.admin.key_id().to_string(),
        action: custos::custody::Action::VaultBackedUp,
        objects: vec![],
        details: serde_json::json!({}),
        request: Some(custos::httpsig::SignedRequest::sign(
            v.admin.signing_key(),
            "GET",
            &url,
            None,
            now,
        )),
    }
}

/// A first audit with a state file checks every entry; the next one only
/// those logged since, from the size the first verified, and the state
/// file is signed by the auditor.
#[tokio::test]
async fn an_audit_with_a_state_file_checks_only_the_new_entries() {
    let v = TestVault::start().await;
    v.submit(b"first", &[]).await;
    let state = v.tmp.path().join("state.json");
    let first = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(first.failure, None);
    assert_eq!((first.from_size, first.entries), (0, first.checkpoint_size));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(file["seal"]["signer"], v.auditor.key_id().as_str(), "{file}");
    assert_eq!(file["replay"]["size"], first.checkpoint_size);

    v.submit(b"second", &[]).await;
    let next = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(next.failure, None);
    assert_eq!(next.from_size, first.checkpoint_size);
    assert_eq!(next.consistent_with, Some(first.checkpoint_size));
    assert!(next.checkpoint_size > first.checkpoint_size);
    assert_eq!(
        next.entries,
        next.checkpoint_size - first.checkpoint_size,
        "only the new ones"
    );

    // Nothing new: nothing to check, and still a pass.
    let again = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(again.failure, None);
    assert_eq!((again.from_size, again.entries), (next.checkpoint_size, 0));
}

/// A bad signature among the entries after the state is caught by the
/// incremental audit, at its entry.
#[tokio::test]
async fn a_bad_signature_after_the_state_fails_the_incremental_audit() {
    let mut v = TestVault::start().await;
    let state = v.tmp.path().join("state.json");
    let first = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(first.failure, None);
    v.submit(b"after the state", &[]).await;
    let mut forged = backup_event(&v);
    let req = forged.request.as_mut().unwrap();
    let mut sig = B64.decode(&req.signature).unwrap();
    sig[9] ^= 4;
    req.signature = B64.encode(sig);
    insider_appends(&mut v, |_| {}, vec![forged]).await;
    let report = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(report.from_size, first.checkpoint_size);
    let failure = report.failure.expect("a forged signature fails the audit");
    assert!(
        failure.contains(&format!("entry {}: actor signature", report.checkpoint_size - 1)),
        "{failure}"
    );
}

/// The first event after the state that does not link to the chain's head
/// the state keeps (the vault chain's, here, broken by the insider) fails
/// the incremental audit.
#[tokio::test]
async fn a_chain_broken_across_the_state_boundary_fails_the_incremental_audit() {
    let mut v = TestVault::start().await;
    let state = v.tmp.path().join("state.json");
    let first = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(first.failure, None);
    let relinked = |store: &custos::store::Store| {
        let heads = store.danger_raw_tree(custos::store::T::Heads);
        let mut head: serde_json::Value = serde_json::from_slice(&heads.get("vault").unwrap().unwrap()).unwrap();
        head["hash"] = "00".repeat(32).into();
        heads.insert("vault", serde_json::to_vec(&head).unwrap()).unwrap();
    };
    let event = backup_event(&v);
    insider_appends(&mut v, relinked, vec![event]).await;
    let report = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(
        (report.from_size, report.checkpoint_size),
        (first.checkpoint_size, first.checkpoint_size + 1)
    );
    let failure = report.failure.expect("a broken link fails the audit");
    assert!(
        failure.contains(&format!("entry {}", first.checkpoint_size)),
        "{failure}"
    );
    assert!(failure.contains("chain"), "{failure}");
    // A full audit finds the same.
    let full = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(full.failure, Some(failure));
}

fn cli(v: &TestVault, identity: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["--server", &v.url, "--identity", identity.to_str().unwrap(), "--json"])
        .args(["audit", "--vkey", &v.log.vkey()])
        .args(args)
        .env("CUSTOS_CONFIG_DIR", v.tmp.path().join("cli-config"))
        .env_remove("CUSTOS_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Through the command line: the report says where the replay started;
/// an edited, truncated or foreign state file is refused with the way to
/// a full audit, which `--full` then runs and which rewrites the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_or_foreign_state_file_is_refused_and_full_rebuilds_it() {
    let v = TestVault::start().await;
    v.submit(b"first", &[]).await;
    let me = v.tmp.path().join("auditor.identity");
    v.auditor.save(&me, None).unwrap();
    let state = v.tmp.path().join("state.json");
    let state_arg = state.to_str().unwrap().to_owned();
    let run = |who: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["--state", &state_arg];
        args.extend(extra);
        let out = cli(&v, who, &args);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (
            out.status.success(),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, first, err) = run(&me, &[]);
    assert!(ok, "{err}");
    assert_eq!(first["from_size"], 0);
    v.submit(b"second", &[]).await;
    let (ok, next, err) = run(&me, &[]);
    assert!(ok, "{err}");
    assert_eq!(next["from_size"], first["checkpoint_size"], "{next}");
    let good = std::fs::read(&state).unwrap();

    let refused = |what: &str, bytes: Vec<u8>, why: &str| {
        std::fs::write(&state, bytes).unwrap();
        let (ok, report, err) = run(&me, &[]);
        assert!(!ok, "{what}: {report}");
        let failure = report["failure"].as_str().unwrap_or(&err).to_owned();
        assert!(failure.contains(why) && failure.contains("--full"), "{what}: {failure}");
    };
    // One spent nonce forgotten: a replay of that request would pass.
    let mut file: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let spent = B64.decode(file["replay"]["spent"].as_str().unwrap()).unwrap();
    file["replay"]["spent"] = B64.encode(&spent[16..]).into();
    refused("a nonce removed", serde_json::to_vec(&file).unwrap(), "changed");
    refused("truncated", good[..good.len() / 2].to_vec(), "not a state file");
    let mut unsigned: serde_json::Value = serde_json::from_slice(&good).unwrap();
    unsigned.as_object_mut().unwrap().remove("seal");
    refused("unsigned", serde_json::to_vec(&unsigned).unwrap(), "not signed");
    // Stripped to the first, unsigned form, its witnesses dropped: it
    // must not pass for a file written before the seal existed.
    unsigned.as_object_mut().unwrap().remove("replay");
    unsigned["witnesses"] = serde_json::json!([]);
    refused(
        "stripped to the first form",
        serde_json::to_vec(&unsigned).unwrap(),
        "unsigned form",
    );

    // Another auditor's state file, signed by them.
    let other = custos::identity::Identity::generate("Other auditor").unwrap();
    v.client()
        .add_principal(
            v.admin.signing_key(),
            &custos::wire::PrincipalBody {
                card: other.card(),
                role: custos::identity::Role::Auditor,
                intake: false,
            },
        )
        .await
        .unwrap();
    let theirs = v.tmp.path().join("other.identity");
    other.save(&theirs, None).unwrap();
    std::fs::remove_file(&state).unwrap();
    let (ok, _, err) = run(&theirs, &[]);
    assert!(ok, "{err}");
    let foreign = std::fs::read(&state).unwrap();
    refused("another auditor's", foreign, "another auditor");

    // --full checks everything again and writes a file that carries on.
    let (ok, full, err) = run(&me, &["--full"]);
    assert!(ok, "{err}");
    assert_eq!(full["from_size"], 0);
    assert_eq!(full["entries"], full["checkpoint_size"]);
    v.submit(b"third", &[]).await;
    let (ok, after, err) = run(&me, &[]);
    assert!(ok, "{err}");
    assert_eq!(after["from_size"], full["checkpoint_size"]);
}

/// A state file of the first form (unsigned, no replay) is refused until
/// the auditor asks for a full audit; then its checkpoint still binds the
/// log, and the file is written in the signed form.
#[tokio::test]
async fn a_state_file_of_the_first_form_is_refused_until_a_full_audit_rewrites_it() {
    let v = TestVault::start().await;
    v.submit(b"first", &[]).await;
    let state = v.tmp.path().join("state.json");
    let first = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state))
        .await
        .unwrap();
    assert_eq!(first.failure, None);
    let old = serde_json::from_slice::<AuditState>(&std::fs::read(&state).unwrap()).unwrap();
    std::fs::write(&state, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    v.submit(b"second", &[]).await;
    let refused = flows::audit(&v.client(), &v.auditor, &v.log, Some(&state)).await;
    let refused = refused
        .map(|r| r.failure.unwrap_or_default())
        .unwrap_or_else(|e| e.to_string());
    assert!(
        refused.contains("unsigned form") && refused.contains("--full"),
        "{refused}"
    );
    let full = flows::AuditOptions {
        full: true,
        ..flows::AuditOptions::default()
    };
    let report = flows::audit_with(&v.client(), &v.auditor, &v.log, Some(&state), full)
        .await
        .unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(report.from_size, 0, "a full audit");
    assert_eq!(report.consistent_with, Some(first.checkpoint_size));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(file["seal"].is_object() && file["replay"].is_object(), "{file}");
}
