//! Disk faults: the vault's data directory on a small tmpfs that fills up,
//! then is remounted read-only. Clients get `507 storage_full` and
//! `503 storage_read_only`, nothing acknowledged is lost or altered, the
//! log still audits, and once the disk has room again the vault takes new
//! submissions (after a restart, too). A vault whose data directory is
//! read-only does not start, and says why.
//!
//! Mounting needs privilege, so the test runs itself again inside a new
//! mount namespace (`unshare --mount --map-root-user`, util-linux), where it
//! is root of its own mounts; they vanish with it.

use crate::util;

use std::path::{Path, PathBuf};
use std::process::Command;

use custos::client::flows::{self, SubmitFile};
use custos::envelope::ObjectKind;
use util::TestVault;

fn mount(args: &[&str]) {
    let out = Command::new("mount").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A submission the vault acknowledged.
#[derive(Debug)]
struct Acked {
    case_id: String,
    plaintexts: Vec<Vec<u8>>,
}

async fn submit(v: &TestVault, n: u64, evidence_len: usize) -> Result<Acked, custos::client::ClientError> {
    let statement = format!("statement {n}: what the officers did").into_bytes();
    let evidence = util::bytes(n, evidence_len);
    let files = vec![
        SubmitFile {
            path: v.file(&format!("{n}/statement.txt"), &statement),
            kind: ObjectKind::Statement,
        },
        SubmitFile {
            path: v.file(&format!("{n}/video.mp4"), &evidence),
            kind: ObjectKind::Evidence,
        },
    ];
    let done = flows::submit(&v.client(), &v.trust(), &[], &files, false).await?;
    Ok(Acked {
        case_id: done.case_id,
        plaintexts: vec![statement, evidence],
    })
}

/// Every acknowledged submission decrypts to what was sent, and the log
/// passes the audit.
async fn all_there(v: &TestVault, acked: &[Acked], out: &Path) {
    for a in acked {
        let dir = out.join(&a.case_id);
        let _ = std::fs::remove_dir_all(&dir);
        let got = flows::get_case(&v.client(), &v.lawyer, &v.log, &a.case_id, &dir)
            .await
            .unwrap();
        let mut texts: Vec<Vec<u8>> = got.files.iter().map(|f| std::fs::read(&f.path).unwrap()).collect();
        texts.sort();
        let mut want = a.plaintexts.clone();
        want.sort();
        assert!(texts == want, "case {} does not decrypt to what was sent", a.case_id);
    }
    let report = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert!(report.passed(), "audit: {:?}", report.failure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_then_read_only_disk_refuses_clearly_and_loses_nothing() {
    if !util::in_mount_namespace("disk_faults::a_full_then_read_only_disk_refuses_clearly_and_loses_nothing") {
        return;
    }
    let mut data = PathBuf::new();
    let mut v = TestVault::start_with(|tmp| {
        data = tmp.join("data");
        std::fs::create_dir(&data).unwrap();
        mount(&["-t", "tmpfs", "-o", "size=24m", "tmpfs", data.to_str().unwrap()]);
    })
    .await;
    let out = v.tmp.path().join("out");

    // Fill the disk with 5 MiB submissions until the vault refuses one.
    let mut acked = Vec::new();
    let refusal = loop {
        match submit(&v, acked.len() as u64, 5 << 20).await {
            Ok(a) => acked.push(a),
            Err(e) => break e,
        }
        assert!(acked.len() < 10, "24 MiB cannot hold 50 MiB of evidence");
    };
    assert_eq!(refusal.code(), Some("storage_full"), "{refusal}");
    assert!(refusal.to_string().contains("disk is full"), "{refusal}");
    assert!(!acked.is_empty());
    eprintln!("full disk: {} submissions acknowledged, then {refusal}", acked.len());
    // What was acknowledged is whole and readable while the disk is full
    // (each download is logged, and a small log entry still fits)...
    let listed = v.client().cases(v.lawyer.signing_key()).await.unwrap();
    for a in &acked {
        assert!(listed.iter().any(|c| c.case_id == a.case_id));
    }

    // ... and once there is room again, the same vault takes new work.
    mount(&["-o", "remount,size=64m", data.to_str().unwrap()]);
    all_there(&v, &acked, &out).await;
    acked.push(submit(&v, 100, 1 << 20).await.unwrap());

    // Read-only under a running vault. The kernel refuses to remount a
    // file system with files open for writing (sled's), so the data
    // directory is covered by a read-only bind mount of itself instead:
    // every file the vault opens from now on is read-only, as after an
    // error remount. Uploads are refused with their own code.
    let d = data.to_str().unwrap();
    mount(&["--bind", d, d]);
    mount(&["-o", "remount,bind,ro", d]);
    let refusal = submit(&v, 101, 1 << 20).await.unwrap_err();
    assert_eq!(refusal.code(), Some("storage_read_only"), "{refusal}");
    assert!(refusal.to_string().contains("cannot write to its disk"), "{refusal}");
    let out_ro = Command::new("umount").arg(d).status().unwrap();
    assert!(out_ro.success());
    all_there(&v, &acked, &out).await;
    acked.push(submit(&v, 103, 1 << 20).await.unwrap());

    // After a restart everything acknowledged is still there.
    v.stop().await;
    v.serve().await;
    all_there(&v, &acked, &out).await;
    acked.push(submit(&v, 102, 1 << 20).await.unwrap());
    v.stop().await;

    // A vault on a read-only disk does not start, and says why.
    mount(&["-o", "remount,ro", data.to_str().unwrap()]);
    let err = custos::vault::open(&data).unwrap_err().to_string();
    assert!(
        err.contains("cannot write to the data directory") && err.contains("Read-only file system"),
        "{err}"
    );
    eprintln!("read-only start: {err}");
    mount(&["-o", "remount,rw", data.to_str().unwrap()]);
    v.serve().await;
    all_there(&v, &acked, &out).await;
}
