//! Witness cosigning: a real witness service (C2SP tlog-witness) on
//! 127.0.0.1:0 follows a real vault; the vault pushes its checkpoints, the
//! witness refuses any that is inconsistent with what it cosigned, and
//! `verify --witness --quorum` counts the cosignatures.

use crate::proxy;
use crate::util;

use std::sync::Arc;

use custos::bundle::{self, Policy};
use custos::client::export::{export, ExportOptions};
use custos::config::WitnessConfig;
use custos::custody::cosignature::WitnessVerifier;
use custos::witness::{AddCheckpoint, Witness};
use util::{copy_dir, restore_dir, TestVault};

struct RunningWitness {
    witness: Arc<Witness>,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn witness(dir: &std::path::Path, name: &str, v: &TestVault) -> RunningWitness {
    witness_with(dir, name, v, custos::witness::LIMITS).await
}

async fn witness_with(
    dir: &std::path::Path,
    name: &str,
    v: &TestVault,
    limits: custos::accept::Limits,
) -> RunningWitness {
    let witness = Arc::new(Witness::open(dir, name, std::slice::from_ref(&v.log)).unwrap());
    let (listener, addr) = custos::api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(custos::witness::serve(witness.clone(), listener, limits, async move {
        let _ = rx.await;
    }));
    RunningWitness {
        witness,
        url: format!("http://{addr}"),
        _stop: tx,
    }
}

fn config(w: &RunningWitness) -> WitnessConfig {
    format!("{},{}", w.url, w.witness.verifier().vkey()).parse().unwrap()
}

/// A vault that pushes to the given witnesses.
async fn vault_with(witnesses: &[&RunningWitness], v: &mut TestVault) {
    v.stop().await;
    v.witnesses = witnesses.iter().map(|w| config(w)).collect();
    v.serve().await;
}

async fn export_to(v: &TestVault, case_id: &str, name: &str) -> std::path::PathBuf {
    let dir = v.tmp.path().join(name);
    export(&v.client(), &v.auditor, &v.log, case_id, &dir, ExportOptions::default())
        .await
        .unwrap();
    dir
}

fn policy(witnesses: &[WitnessVerifier], quorum: usize) -> Policy {
    Policy {
        witnesses: witnesses.to_vec(),
        quorum,
    }
}

#[tokio::test]
async fn verify_with_a_witness_quorum_passes_and_fails() {
    let mut v = TestVault::start().await;
    let w1 = witness(&v.tmp.path().join("w1"), "witness.one.example/w", &v).await;
    let w2 = witness(&v.tmp.path().join("w2"), "witness.two.example/w", &v).await;
    // A third witness that this vault never asks.
    let absent = witness(&v.tmp.path().join("w3"), "witness.three.example/w", &v).await;
    vault_with(&[&w1, &w2], &mut v).await;
    let s = v.submit(b"statement", &[]).await;
    let dir = export_to(&v, &s.case_id, "bundle").await;

    let (k1, k2, k3) = (w1.witness.verifier(), w2.witness.verifier(), absent.witness.verifier());
    for (keys, quorum) in [
        (vec![k1.clone()], 1),
        (vec![k1.clone(), k2.clone()], 2),
        (vec![k1.clone(), k3.clone()], 1),
    ] {
        let (report, _) = bundle::verify_dir(&dir, &v.log, &policy(&keys, quorum));
        assert!(report.passed, "{keys:?} quorum {quorum}: {report:?}");
    }
    for (keys, quorum) in [
        (vec![k1.clone(), k3.clone()], 2),
        (vec![k3.clone()], 1),
        (vec![k1, k2], 3),
    ] {
        let (report, _) = bundle::verify_dir(&dir, &v.log, &policy(&keys, quorum));
        assert!(!report.passed);
        assert_eq!(report.failure().unwrap().check, "witnesses", "{keys:?} quorum {quorum}");
    }
    // The witness remembers what it cosigned, durably.
    let seen = w1.witness.seen(v.log.name()).await.unwrap();
    assert!(seen.size >= 5);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v.tmp.path().join("w1/witness-state.json")).unwrap()).unwrap();
    assert_eq!(state["logs"][v.log.name()]["size"], seen.size);
    // The vault serves the cosigned checkpoint to everyone.
    let note = v.client().checkpoint().await.unwrap();
    v.log.verify(&note).unwrap();
    let now = custos::custody::unix_now();
    assert!(w1.witness.verifier().cosigned_at(&note, now).is_some(), "{note}");
    assert!(absent.witness.verifier().cosigned_at(&note, now).is_none());
}

#[tokio::test]
async fn a_witness_refuses_a_checkpoint_inconsistent_with_what_it_cosigned() {
    let mut v = TestVault::start().await;
    let w = witness(&v.tmp.path().join("w"), "witness.example/w", &v).await;
    vault_with(&[&w], &mut v).await;
    v.stop().await;
    let snapshot = v.tmp.path().join("snapshot");
    copy_dir(&v.data_dir(), &snapshot);
    v.serve().await;
    let s = v.submit(b"the true account", &[]).await;
    export_to(&v, &s.case_id, "honest").await;
    let cosigned = w.witness.seen(v.log.name()).await.unwrap();

    // The operator rolls the vault back and writes another history.
    v.stop().await;
    restore_dir(&snapshot, &v.data_dir());
    v.serve().await;
    let forged = v.submit(b"a forged withdrawal", &[]).await;
    v.submit(b"and more", &[]).await;
    let dir = export_to(&v, &forged.case_id, "forked").await;
    assert_eq!(
        w.witness.seen(v.log.name()).await.unwrap(),
        cosigned,
        "the witness kept the history it cosigned"
    );
    let (report, _) = bundle::verify_dir(&dir, &v.log, &policy(&[w.witness.verifier()], 1));
    assert_eq!(report.failure().unwrap().check, "witnesses");
    // Without the witness requirement the forked bundle looks fine: that is
    // exactly what witnesses are for.
    assert!(bundle::verify_dir(&dir, &v.log, &Policy::default()).0.passed);

    // The protocol's answers, spoken directly: a wrong old size gets 409
    // with the witness's size, a bad proof 422, an unknown log 404.
    let note = v.client().checkpoint().await.unwrap();
    let size = v.log.verify(&note).unwrap().size;
    let http = reqwest::Client::new();
    let post = |body: String| http.post(format!("{}/add-checkpoint", w.url)).body(body).send();
    let r = post(
        AddCheckpoint {
            old: 1,
            proof: vec![],
            note: note.clone(),
        }
        .to_text(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "text/x.tlog.size");
    assert_eq!(r.text().await.unwrap(), format!("{}\n", cosigned.size));
    let r = post(
        AddCheckpoint {
            old: cosigned.size,
            proof: vec![[7; 32]; 3],
            note: note.clone(),
        }
        .to_text(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422, "size {size} from {}", cosigned.size);
    let r = post("old 0\n\nelsewhere.example/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} elsewhere.example/log AAAA\n".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = post("not a request".into()).await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_cosigned_even_while_other_writes_land() {
    let mut v = TestVault::start().await;
    let w = witness(&v.tmp.path().join("w"), "witness.example/w", &v).await;
    vault_with(&[&w], &mut v).await;
    let s = v.submit(b"statement", &[]).await;
    let object = v
        .client()
        .case(v.lawyer.signing_key(), &s.case_id)
        .await
        .unwrap()
        .objects[0]
        .object_id
        .clone();
    let v = Arc::new(v);
    for round in 0..3 {
        // Downloads are logged, so each is a write racing the export, and
        // each wakes the background pusher with a newer checkpoint.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let (v, stop, case, object) = (v.clone(), stop.clone(), s.case_id.clone(), object.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let mut sink = Vec::new();
                        v.client()
                            .download(v.lawyer.signing_key(), &case, &object, &mut sink)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let dir = export_to(&v, &s.case_id, &format!("bundle-{round}")).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for b in busy {
            b.await.unwrap();
        }
        let (report, _) = bundle::verify_dir(&dir, &v.log, &policy(&[w.witness.verifier()], 1));
        assert!(report.passed, "round {round}: {:?}", report.failure());
    }
}

/// A witness that answers with a real cosignature buried in a megabyte of
/// other lines is not believed: the vault reads at most a few KiB of any
/// witness's answer, so a hostile witness cannot fill its memory.
#[tokio::test]
async fn a_witness_answer_longer_than_any_cosignature_is_refused() {
    let mut v = TestVault::start().await;
    let honest = witness(&v.tmp.path().join("w"), "witness.example/w", &v).await;
    // In front of the honest witness: the same cosignature, padded.
    let upstream = format!("{}/add-checkpoint", honest.url);
    let padded = axum::Router::new().route(
        "/add-checkpoint",
        axum::routing::post(move |body: String| async move {
            let answer = reqwest::Client::new().post(&upstream).body(body).send().await.unwrap();
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap();
            let padding = "\u{2014} not a cosignature\n".repeat(50_000);
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                format!("{text}{padding}"),
            )
        }),
    );
    let (listener, addr) = custos::api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, padded).await });
    v.stop().await;
    v.witnesses = vec![format!("http://{addr},{}", honest.witness.verifier().vkey())
        .parse()
        .unwrap()];
    v.serve().await;
    let s = v.submit(b"statement", &[]).await;
    export_to(&v, &s.case_id, "bundle").await;
    assert!(
        honest.witness.seen(v.log.name()).await.is_some(),
        "the honest witness behind the padding did cosign"
    );
    let note = v.client().checkpoint().await.unwrap();
    let now = custos::custody::unix_now();
    assert!(
        honest.witness.verifier().cosigned_at(&note, now).is_none(),
        "a cosignature was taken from an oversized answer: {note}"
    );
}

/// The witness serves with the vault's accept loop: a connection that
/// stalls in its headers, or a body that never arrives whole, is cut off
/// after the stall time rather than held for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_cuts_off_stalled_headers_and_bodies() {
    let v = TestVault::start().await;
    let limits = custos::accept::Limits {
        stall: std::time::Duration::from_secs(1),
        ..custos::witness::LIMITS
    };
    let w = witness_with(&v.tmp.path().join("w"), "witness.example/w", &v, limits).await;
    let addr = w.url.trim_start_matches("http://").to_owned();
    for (what, sent) in [
        (
            "headers that never end",
            "POST /add-checkpoint HTTP/1.1\r\nhost: w\r\n".to_owned(),
        ),
        (
            "a body that never arrives whole",
            "POST /add-checkpoint HTTP/1.1\r\nhost: w\r\ncontent-length: 100\r\n\r\nold 0\n".to_owned(),
        ),
    ] {
        let addr = addr.clone();
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            s.write_all(sent.as_bytes()).unwrap();
            let mut got = Vec::new();
            // Whatever was answered, the connection must end: a read that
            // times out means the witness is still holding it.
            match s.read_to_end(&mut got) {
                Ok(_) => Ok(String::from_utf8_lossy(&got).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(String::new()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .unwrap();
        let answer = answer.unwrap_or_else(|e| panic!("{what}: the witness held the connection ({e})"));
        assert!(
            answer.is_empty() || !answer.starts_with("HTTP/1.1 2"),
            "{what}: answered {answer}"
        );
    }
}

/// `custos audit` with a witness quorum: a fresh auditor, with no state,
/// sees a fork the moment the vault's newest checkpoint lacks its
/// witnesses' cosignatures; the witnesses and quorum given once are kept
/// in the state file and required again, and so are the log's anchors.
#[tokio::test]
async fn an_audit_with_a_witness_quorum_sees_a_fork_and_remembers_its_witnesses() {
    use custos::client::flows::{self, AuditOptions};
    let mut v = TestVault::start().await;
    let w = witness(&v.tmp.path().join("w"), "witness.example/w", &v).await;
    vault_with(&[&w], &mut v).await;
    v.submit(b"the true account", &[]).await;
    let options = |quorum| AuditOptions {
        witnesses: Some(policy(&[w.witness.verifier()], quorum)),
        cosign_wait: std::time::Duration::from_secs(3),
        progress: None,
        full: false,
    };
    let state = v.tmp.path().join("audit-state.json");
    let report = flows::audit_with(&v.client(), &v.auditor, &v.log, Some(&state), options(1))
        .await
        .unwrap();
    assert!(report.passed(), "{report:?}");
    assert_eq!(report.cosigned_by, ["witness.example/w"]);
    assert_eq!(report.anchors.len(), 1);
    assert!(
        report.anchors[0].starts_with(v.admin.key_id().as_str()),
        "{:?}",
        report.anchors
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["witnesses"][0], w.witness.verifier().vkey());
    assert_eq!(saved["quorum"], 1);

    // The operator rolls the vault back and writes another history; the
    // witness will not cosign it.
    v.stop().await;
    let snapshot = v.tmp.path().join("snapshot");
    copy_dir(&v.data_dir(), &snapshot);
    v.serve().await;
    v.submit(b"a later submission", &[]).await;
    flows::audit_with(&v.client(), &v.auditor, &v.log, Some(&state), AuditOptions::default())
        .await
        .unwrap();
    v.stop().await;
    restore_dir(&snapshot, &v.data_dir());
    v.serve().await;
    v.submit(b"a forged withdrawal", &[]).await;
    v.submit(b"and more", &[]).await;

    // A fresh auditor with the witness sees it...
    let fresh = flows::audit_with(&v.client(), &v.auditor, &v.log, None, options(1))
        .await
        .unwrap();
    let failure = fresh.failure.expect("the forked checkpoint is not cosigned");
    assert!(failure.contains("cosigned by 0 of the 1 witnesses"), "{failure}");
    // ... and so does one with the state file alone, which asks the
    // witness again without being told.
    let kept = flows::audit_with(
        &v.client(),
        &v.auditor,
        &v.log,
        Some(&state),
        AuditOptions {
            progress: None,
            cosign_wait: std::time::Duration::from_secs(3),
            ..AuditOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(kept.quorum, 1);
    assert!(kept.failure.is_some(), "{kept:?}");
    // Without the witness, a fresh auditor sees nothing wrong: that is
    // what witnesses are for (SECURITY.md says so).
    assert!(flows::audit(&v.client(), &v.auditor, &v.log, None)
        .await
        .unwrap()
        .passed());
}

/// A submitter's receipts come with the witnesses' word when the vault has
/// witnesses: a checkpoint they all cosigned, proven to extend the
/// receipts'. The client pins the witnesses the vault names, and holds the
/// vault to them after it stops naming them.
#[tokio::test]
async fn receipts_are_witnessed_and_the_witnesses_stay_pinned() {
    use custos::client::flows::{self, SubmitFile};
    use custos::envelope::ObjectKind;
    let mut v = TestVault::start().await;
    let w = witness(&v.tmp.path().join("w"), "witness.example/w", &v).await;
    // The vault keeps one address through a restart, as a real one does.
    let front = proxy::CutProxy::ahead(u64::MAX).await;
    v.settings.public_urls = vec![front.url.clone()];
    vault_with(&[&w], &mut v).await;
    front.forward_to(v.url.trim_start_matches("http://"));
    let client = || custos::client::Client::new(&front.url).unwrap();
    let trust = v.trust();
    let files = [SubmitFile {
        path: v.file("statement.txt", b"statement"),
        kind: ObjectKind::Statement,
    }];
    let s = flows::submit(&client(), &trust, &[], &files, false).await.unwrap();
    let witnessed = s.receipt.witnessed.expect("the receipts are witnessed");
    assert_eq!(witnessed.cosigned_by, ["witness.example/w"]);
    let cp = v.log.verify(&witnessed.checkpoint).unwrap();
    let last = v.log.verify(&s.receipt.receipts.last().unwrap().checkpoint).unwrap();
    assert_eq!(witnessed.from_size, last.size);
    let proof = custos::audit::decode_hashes(&witnessed.consistency).unwrap();
    custos::custody::merkle::verify_consistency(last.size, cp.size, &proof, &last.root, &cp.root).unwrap();
    let now = custos::custody::unix_now();
    assert!(w.witness.verifier().cosigned_at(&witnessed.checkpoint, now).is_some());

    // The operator drops the witness (to hide a fork from it, say): the
    // client still holds the vault to it, and says its receipts are the
    // vault's word alone.
    v.stop().await;
    v.witnesses.clear();
    v.serve().await;
    front.forward_to(v.url.trim_start_matches("http://"));
    let s = flows::submit(&client(), &trust, &[], &files, false).await.unwrap();
    assert!(s.receipt.witnessed.is_none());
    let (_, trusted) = flows::trusted_vault(&client(), &trust, &[]).await.unwrap();
    assert_eq!(trusted.witnesses.len(), 1, "the witness stays pinned");
    let e = flows::witness_receipts(
        &client(),
        &trusted,
        &s.receipt.receipts,
        std::time::Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("cosigned by 0 of the 1 witnesses"), "{e}");
}
