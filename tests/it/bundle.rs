//! Export bundles: exported from a real vault, verified offline in a fresh
//! process with nothing but the log key, decrypted by a holder, and refused
//! after any single change (the tamper matrix).

use crate::util;

use std::path::{Path, PathBuf};
use std::process::Command;

use custos::bundle::{self, Policy};
use custos::client::export::{export, ExportOptions};
use custos::client::flows;
use custos::custody::tlog_proof::TlogProof;
use util::{bytes, copy_dir, files_under, TestVault};

const BIN: &str = env!("CARGO_BIN_EXE_custos");

struct Exported {
    v: TestVault,
    case_id: String,
    dir: PathBuf,
    /// A valid checkpoint from before the export.
    older_checkpoint: String,
    evidence: Vec<u8>,
}

async fn exported(report: bool) -> Exported {
    let v = TestVault::start().await;
    let evidence = bytes(11, 150_000);
    let s = v
        .submit(
            b"They kept me standing for two days.",
            &[("photo.jpg", evidence.clone())],
        )
        .await;
    // A lawyer reads the case, so the chain holds ordinary accesses too.
    flows::get_case(&v.client(), &v.lawyer, &v.log, &s.case_id, &v.tmp.path().join("read"))
        .await
        .unwrap();
    let dir = v.tmp.path().join("bundle");
    let options = ExportOptions { archive: false, report };
    let done = export(&v.client(), &v.auditor, &v.log, &s.case_id, &dir, options)
        .await
        .unwrap();
    assert!(done.verification.passed);
    assert_eq!(done.objects, 2);
    Exported {
        case_id: s.case_id,
        dir,
        older_checkpoint: s.receipt.receipts[0].checkpoint.clone(),
        evidence,
        v,
    }
}

fn verify(dir: &Path, e: &Exported) -> bundle::VerifyReport {
    bundle::verify_dir(dir, &e.v.log, &Policy::default()).0
}

/// The name of the check a tampered bundle fails.
fn failing_check(dir: &Path, e: &Exported) -> &'static str {
    let report = verify(dir, e);
    assert!(!report.passed, "a tampered bundle verified: {dir:?}");
    report.failure().expect("a failed check is named").check
}

#[tokio::test]
async fn a_bundle_verifies_in_a_fresh_process_with_only_the_vkey() {
    let e = exported(true).await;
    // The export itself is a logged event of the case, and the last one.
    let (report, verified) = bundle::verify_dir(&e.dir, &e.v.log, &Policy::default());
    assert!(report.passed, "{report:?}");
    let verified = verified.unwrap();
    assert_eq!(verified.export_event().action, custos::custody::Action::CaseExported);
    assert_eq!(verified.export_event().actor, e.v.auditor.key_id().as_str());
    // The whole log, export events included, still audits.
    let audit = flows::audit(&e.v.client(), &e.v.auditor, &e.v.log, None).await.unwrap();
    assert_eq!(audit.failure, None);
    assert_eq!(audit.entries, verified.checkpoint.size);

    // A fresh process, in an empty folder, with no configuration or
    // identity, and no server: only the vkey.
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(empty.path())
            .env_clear()
            .env("HOME", empty.path())
            .env("CUSTOS_SERVER", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let vkey = e.v.log.vkey();
    let out = run(&["verify", e.dir.to_str().unwrap(), "--vkey", &vkey]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for check in [
        "vkey",
        "checkpoint",
        "files",
        "inclusion",
        "chain",
        "objects",
        "manifest",
        "readme",
        "report",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(check) && l.contains(" ok ")),
            "no passing {check} line in:\n{stdout}"
        );
    }
    assert!(stdout.contains("VERIFIED"), "{stdout}");

    // --json for tools, and the same with a wrong key fails.
    let out = run(&["--json", "verify", e.dir.to_str().unwrap(), "--vkey", &vkey]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["case_id"], e.case_id.as_str());
    let stranger = custos::custody::checkpoint::LogSigner::new(
        "test.custos.example/log",
        ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
    )
    .unwrap();
    let out = run(&["verify", e.dir.to_str().unwrap(), "--vkey", &stranger.verifier().vkey()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("vkey        FAIL"));

    // The same bundle as one .tar verifies too.
    let tar = e.v.tmp.path().join("case.tar");
    let options = ExportOptions {
        archive: true,
        report: false,
    };
    export(&e.v.client(), &e.v.auditor, &e.v.log, &e.case_id, &tar, options)
        .await
        .unwrap();
    let out = run(&["verify", tar.to_str().unwrap(), "--vkey", &vkey]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // README.txt tells a judge's expert how to check by hand.
    let readme = std::fs::read_to_string(e.dir.join("README.txt")).unwrap();
    assert!(readme.contains("sha256sum objects/*") && readme.contains(&e.case_id));
    // report.html is self-contained: an SVG picture and no external resource.
    let html = std::fs::read_to_string(e.dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("case exported") && html.contains("Content-Security-Policy"));
    let outside = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!outside.contains("http:") && !outside.contains("https:"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
}

#[tokio::test]
async fn a_holder_decrypts_the_bundle_and_an_auditor_cannot() {
    let e = exported(false).await;
    let (_, verified) = bundle::verify_dir(&e.dir, &e.v.log, &Policy::default());
    let verified = verified.unwrap();
    let out = e.v.tmp.path().join("decrypted");
    let files = bundle::decrypt::decrypt(&verified, &e.dir, &e.v.lawyer, &out).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(std::fs::read(out.join("photo.jpg")).unwrap(), e.evidence);
    assert_eq!(
        std::fs::read(out.join("statement.txt")).unwrap(),
        b"They kept me standing for two days."
    );
    let err = bundle::decrypt::decrypt(&verified, &e.dir, &e.v.auditor, &e.v.tmp.path().join("no")).unwrap_err();
    assert!(err.contains("no envelope"), "{err}");
    assert!(!e.v.tmp.path().join("no").exists());
}

#[tokio::test]
async fn any_change_to_a_bundle_fails_verification_naming_the_check() {
    let e = exported(true).await;
    let work = e.v.tmp.path().join("tampered");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&work);
        copy_dir(&e.dir, &work);
        work.clone()
    };
    let expected = |rel: &str| match rel {
        "log.vkey" => "vkey",
        "checkpoint.txt" => "checkpoint",
        "manifest.json" => "manifest",
        "README.txt" => "readme",
        "report.html" => "report",
        r if r.starts_with("events/") || r.starts_with("proofs/") => "inclusion",
        r if r.starts_with("objects/") => "objects",
        other => panic!("unexpected file {other}"),
    };

    // One byte flipped, in turn, at the start, middle and end of every file.
    let mut files: Vec<String> = files_under(&e.dir)
        .iter()
        .map(|p| p.strip_prefix(&e.dir).unwrap().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let mut flips = 0;
    for rel in &files {
        let len = std::fs::metadata(e.dir.join(rel)).unwrap().len() as usize;
        for at in [0, len / 2, len - 1] {
            let dir = fresh();
            let mut data = std::fs::read(dir.join(rel)).unwrap();
            data[at] ^= 0x01;
            std::fs::write(dir.join(rel), &data).unwrap();
            assert_eq!(failing_check(&dir, &e), expected(rel), "{rel} byte {at}");
            flips += 1;
        }
    }
    assert_eq!(flips, files.len() * 3);

    let manifest: bundle::Manifest =
        serde_json::from_slice(&std::fs::read(e.dir.join("manifest.json")).unwrap()).unwrap();
    let case_events: Vec<u64> = manifest
        .events
        .iter()
        .filter(|m| m.case == e.case_id)
        .map(|m| m.index)
        .collect();
    let vault_events: Vec<u64> = manifest
        .events
        .iter()
        .filter(|m| m.case == "vault")
        .map(|m| m.index)
        .collect();

    // One event removed, with its proof: the chain has a gap.
    for index in [
        case_events[2],
        *vault_events.last().unwrap(),
        *case_events.last().unwrap(),
    ] {
        let dir = fresh();
        std::fs::remove_file(dir.join(bundle::event_file(index))).unwrap();
        std::fs::remove_file(dir.join(bundle::proof_file(index))).unwrap();
        assert_eq!(failing_check(&dir, &e), "chain", "removing event {index}");
    }

    // Two events swapped.
    let dir = fresh();
    let (a, b) = (
        dir.join(bundle::event_file(case_events[1])),
        dir.join(bundle::event_file(case_events[3])),
    );
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, db).unwrap();
    std::fs::write(&b, da).unwrap();
    assert_eq!(failing_check(&dir, &e), "inclusion");

    // An older (genuine) checkpoint swapped in, everywhere it appears.
    let dir = fresh();
    std::fs::write(dir.join("checkpoint.txt"), &e.older_checkpoint).unwrap();
    for m in &manifest.events {
        let path = dir.join(bundle::proof_file(m.index));
        let mut proof = TlogProof::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        proof.checkpoint = e.older_checkpoint.clone();
        std::fs::write(&path, proof.to_text()).unwrap();
    }
    assert_eq!(failing_check(&dir, &e), "inclusion");

    // The report removed: the manifest says there was one.
    let dir = fresh();
    std::fs::remove_file(dir.join("report.html")).unwrap();
    assert_eq!(failing_check(&dir, &e), "manifest");

    // Files slipped in beside the evidence.
    let dir = fresh();
    std::fs::write(dir.join("notes.txt"), b"trust me").unwrap();
    assert_eq!(failing_check(&dir, &e), "files");
    let dir = fresh();
    std::fs::write(dir.join("objects").join("ab".repeat(32)), b"planted").unwrap();
    assert_eq!(failing_check(&dir, &e), "objects");
    // A link where a file should be (it could point anywhere).
    #[cfg(unix)]
    {
        let dir = fresh();
        let object = dir.join(bundle::object_file(&manifest.objects[0].sha256));
        let moved = e.v.tmp.path().join("moved-object");
        std::fs::rename(&object, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &object).unwrap();
        assert_eq!(failing_check(&dir, &e), "files");
    }
    // A missing object.
    let dir = fresh();
    std::fs::remove_file(dir.join(bundle::object_file(&manifest.objects[0].sha256))).unwrap();
    assert_eq!(failing_check(&dir, &e), "objects");

    // Archives with a path out of their folder, or a link, are refused
    // before anything is written outside the unpack folder.
    let unpack_into = e.v.tmp.path().join("unpack");
    for (name, link) in [("b/../../escape.txt", false), ("b/link", true)] {
        let tar_path = e.v.tmp.path().join("hostile.tar");
        let mut builder = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut h = tar::Header::new_gnu();
        if link {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_link_name("/etc/passwd").unwrap();
            h.set_size(0);
            h.set_path(name).unwrap();
        } else {
            h.set_size(4);
            // set_path refuses "..", so write the name into the header raw.
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        }
        h.set_mode(0o600);
        h.set_cksum();
        builder.append(&h, &b"evil"[..if link { 0 } else { 4 }]).unwrap();
        builder.finish().unwrap();
        drop(builder);
        std::fs::create_dir_all(&unpack_into).unwrap();
        let err = bundle::unpack_archive(&tar_path, &unpack_into).unwrap_err();
        assert!(err.contains("unsafe path") || err.contains("link"), "{name}: {err}");
    }
    assert!(!e.v.tmp.path().join("escape.txt").exists());

    // And the untouched copy still verifies, so the failures above are the
    // changes' doing.
    assert!(verify(&fresh(), &e).passed);
}
