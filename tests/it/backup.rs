//! Backups that are proven to restore: one taken with the real command from
//! a vault under load is restored elsewhere, served, read back byte for byte
//! and audited; doctored or damaged backups are refused, leaving nothing.

use crate::util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use custos::api::{self, AppState};
use custos::backup::{self, BackupError, LogKeySource, Manifest, Member, TreeFile};
use custos::client::flows::{self, SubmitFile};
use custos::client::Client;
use custos::custody::checkpoint::{LogSigner, LogVerifier};
use custos::custody::Action;
use custos::envelope::ObjectKind;
use sha2::{Digest, Sha256};
use util::TestVault;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// One acknowledged submission: what was sent, and the log indices of its
/// events.
struct Sent {
    case_id: String,
    statement: Vec<u8>,
    evidence: Vec<u8>,
    /// Log index of each event of the submission.
    indices: Vec<u64>,
    /// Log index of each `object_stored` event.
    stored: Vec<u64>,
}

/// Submit a statement and a file (big enough to be a chunk file on disk)
/// under file names of their own.
async fn submit(v: &TestVault, client: &Client, tag: &str, seed: u64) -> Sent {
    let statement = format!("statement {tag}").into_bytes();
    let evidence = util::bytes(seed, 100_000 + (seed as usize % 7) * 30_000);
    let files = vec![
        SubmitFile {
            path: v.file(&format!("{tag}/statement.txt"), &statement),
            kind: ObjectKind::Statement,
        },
        SubmitFile {
            path: v.file(&format!("{tag}/photo.jpg"), &evidence),
            kind: ObjectKind::Evidence,
        },
    ];
    let s = flows::submit(client, &v.trust(), &[], &files, false).await.unwrap();
    let stored = s
        .receipt
        .receipts
        .iter()
        .filter(|r| flows::check_receipt(r, &v.log, Action::ObjectStored).is_ok())
        .map(|r| r.index)
        .collect();
    Sent {
        case_id: s.case_id,
        statement,
        evidence,
        indices: s.receipt.receipts.iter().map(|r| r.index).collect(),
        stored,
    }
}

/// Serve the vault in `dir` on 127.0.0.1:0 until the test ends.
async fn serve(dir: &Path) -> (String, Arc<AppState>) {
    let vault = custos::vault::open(dir).unwrap();
    let settings = custos::config::Settings {
        stamp_bits: util::TEST_STAMP_BITS,
        ..Default::default()
    };
    let state = Arc::new(AppState::new(vault, &settings));
    let (listener, addr) = api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(api::serve(state.clone(), listener, std::future::pending()));
    (format!("http://{addr}"), state)
}

fn custos(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("CUSTOS_CONFIG_DIR", dir.join("cli-config"))
        .env_remove("CUSTOS_PASSPHRASE")
        .env_remove("CUSTOS_BACKUP_PASSPHRASE")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_acknowledged_case_and_passes_audit() {
    let v = Arc::new(TestVault::start().await);
    let tmp = v.tmp.path().to_owned();
    // A setting and a first case before the load begins.
    std::fs::write(v.data_dir().join("custos.toml"), "stamp_bits = 10\n").unwrap();
    let client = v.client();
    let mut before = vec![submit(&v, &client, "first", 1).await];

    // Four submitters keep working while the backup is taken.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (v, stop) = (v.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = v.client();
            let mut sent = Vec::new();
            // Until one submission begun after the backup has ended.
            for i in 0.. {
                let last = stop.load(std::sync::atomic::Ordering::SeqCst);
                sent.push(submit(&v, &client, &format!("w{w}-{i}"), 100 * w + i).await);
                if last {
                    break;
                }
            }
            sent
        }));
    }
    // Let the load build, then back up with the real command, as an admin.
    while v.state.as_ref().unwrap().vault.store.log_size().unwrap() < 30 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let acked_before_backup = v.state.as_ref().unwrap().vault.store.log_size().unwrap();
    let admin_file = tmp.join("admin.identity");
    v.admin.save(&admin_file, None).unwrap();
    let out = tmp.join("vault.backup");
    let (url, out2, admin2, tmp2) = (v.url.clone(), out.clone(), admin_file.clone(), tmp.clone());
    let taken = tokio::task::spawn_blocking(move || {
        custos(
            &[
                "--server",
                &url,
                "--identity",
                admin2.to_str().unwrap(),
                "--json",
                "backup",
                "--out",
                out2.to_str().unwrap(),
            ],
            &tmp2,
        )
    })
    .await
    .unwrap();
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
    let taken: serde_json::Value = serde_json::from_slice(&taken.stdout).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        before.extend(w.await.unwrap());
    }
    let n = taken["log_size"].as_u64().unwrap();
    assert!(
        n > acked_before_backup,
        "the backup holds its own event and what came before"
    );
    assert!(taken["chunk_files"].as_u64().unwrap() > 0);
    assert_eq!(taken["log_key_included"], false);
    // A submission is several requests (open the case, then commit each
    // file), each acknowledged on its own; the cut may fall between them.
    let in_backup: Vec<&Sent> = before.iter().filter(|s| s.indices.iter().all(|i| *i < n)).collect();
    let after: Vec<&Sent> = before.iter().filter(|s| s.indices.iter().all(|i| *i >= n)).collect();
    let split: Vec<&Sent> = before
        .iter()
        .filter(|s| s.indices.iter().any(|i| *i < n) && s.indices.iter().any(|i| *i >= n))
        .collect();
    assert_eq!(split.len() + in_backup.len() + after.len(), before.len());
    assert!(
        in_backup.len() >= 3 && !after.is_empty(),
        "the backup was cut under load: {} cases in it, {} after it",
        in_backup.len(),
        after.len()
    );
    eprintln!(
        "backup under load: cut at {n} log entries ({acked_before_backup} before the command ran); \
         {} submissions whole in it, {} cut through, {} after it; {} chunk files",
        in_backup.len(),
        split.len(),
        after.len(),
        taken["chunk_files"]
    );
    // The backup holds no private key: no identity, no log key.
    let mut names = Vec::new();
    backup::read(std::fs::File::open(&out).unwrap(), |m| {
        if let Member::LogKey(_) = m {
            names.push("log key");
        }
        Ok(())
    })
    .unwrap();
    assert!(names.is_empty());
    let raw = std::fs::read(&out).unwrap();
    let log_key = std::fs::read_to_string(v.data_dir().join("log.key")).unwrap();
    assert!(!raw
        .windows(log_key.trim().len())
        .any(|w| w == log_key.trim().as_bytes()));

    // Restore elsewhere with the real command, the log key given apart.
    let restored = tmp.join("elsewhere/vault");
    let key = v.data_dir().join("log.key");
    let r = custos(
        &[
            "--json",
            "restore",
            out.to_str().unwrap(),
            "--data",
            restored.to_str().unwrap(),
            "--log-key",
            key.to_str().unwrap(),
        ],
        &tmp,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(r["log_size"].as_u64(), Some(n));
    assert_eq!(r["audit"]["entries"].as_u64(), Some(n));
    assert!(r["audit"]["objects"].as_u64().unwrap() >= 2 * in_backup.len() as u64);
    assert_eq!(
        std::fs::read_to_string(restored.join("custos.toml")).unwrap(),
        "stamp_bits = 10\n"
    );

    // The live vault's log went on from exactly the backup's: its later
    // checkpoint is consistent with the one restored.
    let restored_note = r["checkpoint"].as_str().unwrap().to_owned();
    let live_note = client.checkpoint().await.unwrap();
    let old = v.log.verify(&restored_note).unwrap();
    let new = v.log.verify(&live_note).unwrap();
    assert!(new.size > old.size);
    let proof = client.consistency(old.size, new.size).await.unwrap();
    let hashes = custos::audit::decode_hashes(&proof.proof).unwrap();
    custos::custody::merkle::verify_consistency(old.size, new.size, &hashes, &old.root, &new.root).unwrap();

    // The restored vault serves every case acknowledged before the cut,
    // byte for byte, and nothing after it; and passes the auditor's audit.
    let (url, _state) = serve(&restored).await;
    let restored_client = Client::new(&url).unwrap();
    for s in &in_backup {
        let dir = tmp.join("read").join(&s.case_id);
        let got = flows::get_case(&restored_client, &v.lawyer, &v.log, &s.case_id, &dir)
            .await
            .unwrap();
        let mut contents: Vec<Vec<u8>> = got.files.iter().map(|f| std::fs::read(&f.path).unwrap()).collect();
        contents.sort();
        let mut sent = vec![s.statement.clone(), s.evidence.clone()];
        sent.sort();
        assert_eq!(contents, sent, "case {} differs after restore", s.case_id);
    }
    // A submission the cut fell inside: the case and exactly the files
    // acknowledged before the cut.
    for s in &split {
        let dir = tmp.join("read").join(&s.case_id);
        let got = flows::get_case(&restored_client, &v.lawyer, &v.log, &s.case_id, &dir)
            .await
            .unwrap();
        let want = s.stored.iter().filter(|i| **i < n).count();
        assert_eq!(got.files.len(), want, "case {} split by the cut", s.case_id);
        for f in &got.files {
            let bytes = std::fs::read(&f.path).unwrap();
            assert!(bytes == s.statement || bytes == s.evidence);
        }
    }
    for s in &after {
        let e = restored_client
            .case(v.lawyer.signing_key(), &s.case_id)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("not_found"), "case {} is after the cut", s.case_id);
    }
    let report = flows::audit(&restored_client, &v.auditor, &v.log, None).await.unwrap();
    assert!(report.passed(), "{report:?}");
    // The restored log went on from the backup's, with the reads above.
    assert!(report.entries >= n + 2 * in_backup.len() as u64, "{report:?}");
    // The restored vault records new work under the same log key.
    let more = submit(&v, &restored_client, "after-restore", 999).await;
    assert!(more.indices.iter().all(|i| *i >= n));
}

/// A backup taken offline from a vault with a case, a chunk file and all.
async fn offline_backup() -> (TestVault, PathBuf, Manifest) {
    let mut v = TestVault::start().await;
    v.submit(b"what happened", &[("photo.jpg", util::bytes(5, 200_000))])
        .await;
    v.stop().await;
    let vault = std::sync::Arc::new(custos::vault::open(&v.data_dir()).unwrap());
    let snap = backup::snapshot(vault.clone()).await.unwrap();
    let path = v.tmp.path().join("offline.backup");
    let expected_len = snap.tar_len();
    let m = snap.write(&vault.store, std::fs::File::create(&path).unwrap()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), expected_len);
    drop(vault);
    (v, path, m)
}

/// A backup's members, in order, as (path, bytes).
type Members = Vec<(String, Vec<u8>)>;

/// Every member of a backup, in order.
fn members(path: &Path) -> Members {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn records(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut parts = Vec::new();
        for _ in 0..2 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            parts.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        let v = parts.pop().unwrap();
        out.push((parts.pop().unwrap(), v));
    }
    out
}

fn encode(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        for part in [k, v] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// Write `members` as a backup whose manifest lists each tree's true hash,
/// size and record count: a forger's careful work, not an accident.
fn forge(path: &Path, mut members: Members, signer: Option<&LogSigner>) {
    let mut manifest: Manifest = serde_json::from_slice(&members[0].1).unwrap();
    manifest.trees = members
        .iter()
        .filter_map(|(name, bytes)| {
            Some(TreeFile {
                name: name.strip_prefix("custos-backup/trees/")?.to_owned(),
                records: records(bytes).len() as u64,
                bytes: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
        })
        .collect();
    members[0].1 = serde_json::to_vec(&manifest).unwrap();
    // An insider who also holds the log key signs the forged manifest;
    // one who does not leaves the old signature.
    if let Some(signer) = signer {
        assert_eq!(members[1].0, "custos-backup/manifest.sig");
        members[1].1 = signer.sign_manifest(&members[0].1).into_bytes();
    }
    write_tar(path, members);
}

/// Write `members` as a tar file, as they are.
fn write_tar(path: &Path, members: Members) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

/// A key's Ed25519 public half, base64, as submitter keys are stored.
fn base64_key(who: &custos::identity::Identity) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(who.signing_key().verifying_key().as_bytes())
}

/// `members` with the records of tree `name` changed by `change`.
fn with_tree(members: &[(String, Vec<u8>)], name: &str, change: impl FnOnce(&mut Vec<(Vec<u8>, Vec<u8>)>)) -> Members {
    let mut out = members.to_vec();
    let slot = out
        .iter_mut()
        .find(|(n, _)| n == &format!("custos-backup/trees/{name}"))
        .unwrap();
    let mut recs = records(&slot.1);
    change(&mut recs);
    slot.1 = encode(&recs);
    out
}

#[tokio::test]
async fn doctored_or_damaged_backups_are_refused_and_leave_nothing() {
    let (v, good, m) = offline_backup().await;
    let key = v.data_dir().join("log.key");
    let all = members(&good);
    assert!(m.chunk_files > 0 && m.log_size > 3);
    let work = v.tmp.path().join("doctored");
    std::fs::create_dir_all(&work).unwrap();

    // A rogue admin in the registry, with no event that added it.
    let rogue = custos::identity::Identity::generate("Rogue").unwrap();
    let registry = with_tree(&all, "registry", |recs| {
        let (_, v) = recs[0].clone();
        let mut rec: serde_json::Value = serde_json::from_slice(&v).unwrap();
        rec["principal"]["key_id"] = rogue.key_id().to_string().into();
        rec["principal"]["card"] = serde_json::to_value(rogue.card()).unwrap();
        recs.push((
            rogue.key_id().to_string().into_bytes(),
            serde_json::to_vec(&rec).unwrap(),
        ));
        recs.sort();
    });
    // A key marked retired that no event removed: it would keep a real
    // submitter key out, or hide that a principal was never removed.
    let retired = with_tree(&all, "retired_principals", |recs| {
        recs.push((rogue.key_id().to_string().into_bytes(), 0u64.to_be_bytes().to_vec()));
        recs.sort();
    });
    // The trees the log determines, edited as a host would to mislead a
    // lawyer: a case's duress note dropped, a submitter key swapped for the
    // host's, an envelope for the host, a lawyer's note envelope gone, an
    // object's label replaced, an intake flag set.
    let edit_json = |tree: &str, change: &dyn Fn(&mut serde_json::Value)| {
        with_tree(&all, tree, |recs| {
            let mut rec: serde_json::Value = serde_json::from_slice(&recs[0].1).unwrap();
            change(&mut rec);
            recs[0].1 = serde_json::to_vec(&rec).unwrap();
        })
    };
    let note_dropped = edit_json("cases", &|c| c["note"] = serde_json::Value::Null);
    let key_swapped = edit_json("cases", &|c| {
        c["submitter_keys"][0]["verifying_key"] = base64_key(&rogue).into();
    });
    let label_replaced = edit_json("case_objects", &|o| o["label"] = "AAAA".into());
    // An object's record misplacing its chunks for downloads.
    let chunk_size_wrong = edit_json("objects", &|o| {
        o["chunk_size"] = (o["size"].as_u64().unwrap() + 1).into()
    });
    let chunk_list_wrong = edit_json("objects", &|o| o["chunks_sha256"] = hex::encode([7u8; 32]).into());
    let intake_set = with_tree(&all, "registry", |recs| {
        let admin = recs
            .iter_mut()
            .find(|(_, v)| serde_json::from_slice::<serde_json::Value>(v).unwrap()["principal"]["role"] == "admin")
            .unwrap();
        let mut rec: serde_json::Value = serde_json::from_slice(&admin.1).unwrap();
        rec["principal"]["intake"] = true.into();
        admin.1 = serde_json::to_vec(&rec).unwrap();
    });
    let envelope_added = with_tree(&all, "envelopes", |recs| {
        let (k, v) = recs[0].clone();
        let case = String::from_utf8(k).unwrap().split('/').next().unwrap().to_owned();
        recs.push((format!("{case}/{}", rogue.key_id()).into_bytes(), v));
        recs.sort();
    });
    let note_envelope_gone = with_tree(&all, "note_envelopes", |recs| {
        recs.remove(0);
    });
    // One event's bytes changed: the log no longer matches its checkpoint.
    let altered = with_tree(&all, "log", |recs| {
        let last = recs.len() - 1;
        let text = String::from_utf8(recs[last].1.clone()).unwrap();
        // The same event, a space added: it reads the same, but its bytes
        // (and so the tree over them) differ.
        recs[last].1 = text.replacen('{', "{ ", 1).into_bytes();
    });
    // The last event dropped, with its checkpoint left as it was.
    let shortened = with_tree(&all, "log", |recs| {
        recs.pop();
    });
    // A chunk file with one byte flipped.
    let mut flipped = all.clone();
    let chunk = flipped.iter_mut().find(|(n, _)| n.contains("/chunks/")).unwrap();
    chunk.1[100] ^= 1;

    let signer = LogSigner::new(&m.origin, custos::vault::read_key_file(&key).unwrap()).unwrap();
    let cases: Vec<(&str, Members, bool, &str)> = vec![
        (
            "rogue admin",
            registry.clone(),
            true,
            "the registry hold a record the log never made",
        ),
        ("intake flag set", intake_set, true, "the registry differ from the log"),
        (
            "duress note dropped",
            note_dropped,
            true,
            "the cases differ from the log",
        ),
        (
            "submitter key swapped",
            key_swapped,
            true,
            "the cases differ from the log",
        ),
        (
            "envelope added",
            envelope_added,
            true,
            "the envelopes hold a record the log never made",
        ),
        (
            "note envelope gone",
            note_envelope_gone,
            true,
            "the note envelopes lack a record",
        ),
        (
            "label replaced",
            label_replaced,
            true,
            "the case objects differ from the log",
        ),
        ("chunk size wrong", chunk_size_wrong, true, "does not match its record"),
        ("chunk list wrong", chunk_list_wrong, true, "does not match its record"),
        (
            "retired key without a removal",
            retired,
            true,
            "the retired keys differ",
        ),
        ("altered event", altered, true, "does not match"),
        ("dropped event", shortened, true, "does not match"),
        ("flipped chunk byte", flipped, false, "does not match its hash"),
    ];
    for (what, members, forged, expect) in cases {
        let file = work.join(what.replace(' ', "-"));
        if forged {
            forge(&file, members, Some(&signer));
        } else {
            write_tar(&file, members);
        }
        let target = work.join(format!("{}-restored", what.replace(' ', "-")));
        let e = backup::restore(&file, &target, LogKeySource::File(&key)).unwrap_err();
        assert!(
            matches!(e, BackupError::Audit(_) | BackupError::Damaged(_)),
            "{what}: {e}"
        );
        assert!(e.to_string().contains(expect), "{what}: {e}");
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "{what}: something was left behind"
        );
    }

    // Without the log key, any edit shows at once: the manifest's
    // signature no longer fits the manifest.
    let file = work.join("unsigned-forgery");
    forge(&file, registry, None);
    let target = work.join("unsigned-forgery-restored");
    let e = backup::restore(&file, &target, LogKeySource::File(&key)).unwrap_err();
    assert!(e.to_string().contains("not signed by the log key"), "{e}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // A backup cut short, at several places.
    let bytes = std::fs::read(&good).unwrap();
    for cut in [100, 5_000, bytes.len() / 2, bytes.len() - 700] {
        let file = work.join(format!("cut-{cut}"));
        std::fs::write(&file, &bytes[..cut]).unwrap();
        let target = work.join(format!("cut-{cut}-restored"));
        let e = backup::restore(&file, &target, LogKeySource::File(&key)).unwrap_err();
        assert!(matches!(e, BackupError::Damaged(_)), "cut at {cut}: {e}");
    }

    // Another vault's log key; a folder that is not empty.
    let other = TestVault::start().await;
    let e = backup::restore(
        &good,
        &work.join("wrong-key"),
        LogKeySource::File(&other.data_dir().join("log.key")),
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not belong to this vault"), "{e}");
    let e = backup::restore(&good, &v.data_dir(), LogKeySource::File(&key)).unwrap_err();
    assert!(e.to_string().contains("is not empty"), "{e}");
    assert!(
        custos::vault::open(&v.data_dir()).is_ok(),
        "the vault it was aimed at is untouched"
    );

    // And the untouched backup restores, as the control.
    let target = work.join("good-restored");
    let r = backup::restore(&good, &target, LogKeySource::File(&key)).unwrap();
    assert_eq!(r.log_size, m.log_size);
    assert_eq!(r.audit.objects, 2);
    let verifier = LogVerifier::parse(&m.vkey).unwrap();
    assert_eq!(verifier.verify(&r.checkpoint).unwrap().size, m.log_size);
}

#[test]
fn the_log_key_travels_only_encrypted_and_only_when_asked() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (v, _, _) = rt.block_on(offline_backup());
    let tmp = v.tmp.path();
    let data = v.data_dir();
    let key = data.join("log.key");
    let run = |args: &[&str], pass: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(args).env_remove("CUSTOS_BACKUP_PASSPHRASE");
        if let Some(p) = pass {
            c.env("CUSTOS_BACKUP_PASSPHRASE", p);
        }
        c.output().unwrap()
    };
    let out = tmp.join("with-key.backup");
    let pass = "a long passphrase for the key";
    let o = run(
        &[
            "backup",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--with-log-key",
            key.to_str().unwrap(),
        ],
        Some(pass),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The seed is nowhere in the file, in any form.
    let raw = std::fs::read(&out).unwrap();
    let seed = std::fs::read_to_string(&key).unwrap();
    assert!(!raw.windows(seed.trim().len()).any(|w| w == seed.trim().as_bytes()));
    // Another vault's log key is refused before anything is written.
    let other = rt.block_on(TestVault::start());
    let refused = tmp.join("other-key.backup");
    let o = run(
        &[
            "backup",
            "--data",
            data.to_str().unwrap(),
            "--out",
            refused.to_str().unwrap(),
            "--with-log-key",
            other.data_dir().join("log.key").to_str().unwrap(),
        ],
        Some(pass),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not this vault's log key"));
    assert!(!refused.exists() && !tmp.join("other-key.backup.partial").exists());
    // A running vault is backed up through its server, not from its folder.
    let o = run(
        &[
            "backup",
            "--data",
            other.data_dir().to_str().unwrap(),
            "--out",
            refused.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is its server running?"));
    assert!(!refused.exists() && !tmp.join("other-key.backup.partial").exists());
    // A backup file is never overwritten.
    let o = run(
        &[
            "backup",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never overwrites"));

    // The wrong passphrase opens nothing and leaves nothing.
    let target = tmp.join("restored");
    let o = run(
        &["restore", out.to_str().unwrap(), "--data", target.to_str().unwrap()],
        Some("not the passphrase at all"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"));
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    // The right one restores a vault that opens with the same log key.
    let o = run(
        &["restore", out.to_str().unwrap(), "--data", target.to_str().unwrap()],
        Some(pass),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(target.join("log.key")).unwrap(),
        seed,
        "the same log key, so the log goes on unforked"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(target.join("log.key")).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the restored log key is private");
    let restored = custos::vault::open(&target).unwrap();
    assert!(restored.store.checkpoint().unwrap().is_some());
    // A backup without the key needs one given apart.
    let plain = tmp.join("plain.backup");
    drop(restored);
    let o = run(
        &[
            "backup",
            "--data",
            data.to_str().unwrap(),
            "--out",
            plain.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(
        &[
            "restore",
            plain.to_str().unwrap(),
            "--data",
            tmp.join("r2").to_str().unwrap(),
        ],
        Some(pass),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no log key"));
}

#[tokio::test]
async fn only_an_admin_may_take_a_backup_and_every_one_is_logged() {
    let v = TestVault::start().await;
    v.submit(b"statement", &[]).await;
    let client = v.client();
    let size = |v: &TestVault| v.state.as_ref().unwrap().vault.store.log_size().unwrap();
    let before = size(&v);
    for who in [&v.lawyer, &v.auditor] {
        let e = client.backup(who.signing_key(), &mut Vec::new()).await.unwrap_err();
        assert_eq!(e.code(), Some("forbidden"), "{}", who.key_id());
    }
    let stranger = custos::identity::Identity::generate("Stranger").unwrap();
    let e = client
        .backup(stranger.signing_key(), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("unknown_key"));
    let unsigned = reqwest::get(format!("{}/v1/vault/backup", v.url)).await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(size(&v), before, "refused requests log nothing");

    // The admin's backup is logged first, signed by the admin, and is in
    // the backup it names.
    let mut file = Vec::new();
    client.backup(v.admin.signing_key(), &mut file).await.unwrap();
    assert_eq!(size(&v), before + 1);
    let page = client.entries(v.auditor.signing_key(), before, 1).await.unwrap();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &page.entries[0]).unwrap();
    let event: custos::custody::Event = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(event.action, Action::VaultBackedUp);
    assert_eq!(event.actor, v.admin.key_id().to_string());
    assert!(event.request.is_some(), "the admin's own signed request is stored");
    let path = v.tmp.path().join("admin.backup");
    std::fs::write(&path, &file).unwrap();
    let (manifest, with_key) = backup::verify_file(&path, Some(&v.log.vkey())).unwrap();
    assert_eq!(manifest.log_size, before + 1);
    assert!(!with_key);
    // And the auditor's audit accepts it.
    let report = flows::audit(&client, &v.auditor, &v.log, None).await.unwrap();
    assert!(report.passed(), "{report:?}");
}
