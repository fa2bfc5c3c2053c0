//! A case's log, as a submitter is shown it, and the vault's intake
//! parameters, both from a real vault (tests/vectors/case-log.json): the
//! Rust client and the page's script (web/test/protocol.test.mjs) must prove
//! the same from them, and refuse the same doctored forms. The file is made
//! by this test from a live vault when CUSTOS_WRITE_VECTORS=1 is set, and
//! read otherwise, so both sides are held to one recorded log.

use crate::util;

use std::collections::BTreeMap;

use custos::client::flows::{self, SubmitFile};
use custos::client::proven::{prove_log, Reader};
use custos::client::trust::Trusted;
use custos::custody::checkpoint::LogVerifier;
use custos::envelope::ObjectKind;
use custos::identity::{Card, Identity};
use custos::wire::{CaseLog, IntakeParams};
use serde_json::{json, Value};
use util::TestVault;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/case-log.json");

/// Record the vector from a live vault: an intake lawyer and a colleague it
/// grants the case to both reply; the submitter's second codename plants a
/// message labelled a reply, which no lawyer signed.
async fn record() -> Value {
    let v = TestVault::start().await;
    let c = v.client();
    let colleague = Identity::generate("Colleague").unwrap();
    v.add_lawyer(&colleague, false).await;
    let s = v.submit(b"they beat me in room 12", &[]).await;
    flows::grant(&c, &v.lawyer, &v.log, &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    let mut expected = BTreeMap::new();
    for (who, text) in [
        (&v.lawyer, "We have your report."),
        (&colleague, "I will take your case."),
    ] {
        let receipt = flows::reply(&c, who, &v.log, &s.case_id, &v.file("reply.txt", text.as_bytes()))
            .await
            .unwrap();
        let (event, _) = custos::audit::verify_receipt(&receipt, &v.log).unwrap();
        expected.insert(event.objects[0].clone(), who.key_id().to_string());
    }
    let key = s.codename.derive(util::ORIGIN);
    let case_id = s.case_id.clone();
    let me = custos::client::submitter::open(&c, &v.trust(), s.codename, &case_id)
        .await
        .unwrap();
    let planted = SubmitFile {
        path: v.file("planted.txt", b"Withdraw now or else. -- your lawyer"),
        kind: ObjectKind::Reply,
    };
    me.add(&[planted], &v.tmp.path().join("journal")).await.unwrap();
    let case_log = c.case_log(key.signing_key(), &case_id).await.unwrap();
    // The same checkpoint cosigned by a witness, for the page's
    // cosignature check.
    let witness = custos::custody::cosignature::WitnessSigner::new(
        "witness.example/w1",
        ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
    )
    .unwrap();
    let body = case_log.checkpoint.split("\n\n").next().unwrap().to_owned() + "\n";
    let time = custos::custody::unix_now() as u64;
    let cosigned = format!("{}{}", case_log.checkpoint, witness.cosign(&body, time));
    json!({
        "about": "A submitter's view of a case's log and the vault's intake parameters, recorded from a real vault by tests/it/case_log_vector.rs (CUSTOS_WRITE_VECTORS=1); that test and web/test/protocol.test.mjs must prove the same from them.",
        "vkey": v.log.vkey(),
        "anchors": [v.admin.card().to_string()],
        "case_id": case_id,
        "case_log": case_log,
        "intake": c.intake().await.unwrap(),
        "proven": expected,
        "cosigned": { "witness": witness.verifier().vkey(), "note": cosigned, "time": time },
    })
}

/// The vector: recorded once per run when CUSTOS_WRITE_VECTORS is set
/// (both tests wait for that one recording), read from the file otherwise.
async fn vector() -> Value {
    static RECORDED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    if std::env::var_os("CUSTOS_WRITE_VECTORS").is_some() {
        RECORDED
            .get_or_init(|| async {
                let v = record().await;
                std::fs::write(PATH, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
            })
            .await;
    }
    serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap()
}

fn parts(v: &Value) -> (LogVerifier, Vec<Card>, String, CaseLog, IntakeParams) {
    let log = LogVerifier::parse(v["vkey"].as_str().unwrap()).unwrap();
    let anchors = v["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse().unwrap())
        .collect();
    (
        log,
        anchors,
        v["case_id"].as_str().unwrap().to_owned(),
        serde_json::from_value(v["case_log"].clone()).unwrap(),
        serde_json::from_value(v["intake"].clone()).unwrap(),
    )
}

#[tokio::test]
async fn the_recorded_log_proves_who_replied_and_nothing_planted() {
    let v = vector().await;
    let (log, anchors, case_id, case_log, _) = parts(&v);
    let proven = prove_log(&case_log, &log, &anchors, &case_id, Reader::Submitter).unwrap();
    let by_lawyers: BTreeMap<String, String> = proven
        .stored
        .iter()
        .filter(|(_, by)| by.held_the_case)
        .map(|(object, by)| (object.clone(), by.key_id.to_string()))
        .collect();
    let want: BTreeMap<String, String> = serde_json::from_value(v["proven"].clone()).unwrap();
    assert_eq!(by_lawyers, want);
    assert_eq!(want.len(), 2, "two replies, by two lawyers");

    // Doctored: an event's byte changed, a registration dropped (its
    // signer is then unknown), another vault's key.
    let mut altered = case_log.clone();
    let last = altered.entries.len() - 1;
    let mut bytes = base64_decode(&altered.entries[last].event);
    bytes[10] ^= 1;
    altered.entries[last].event = base64_encode(&bytes);
    assert!(prove_log(&altered, &log, &anchors, &case_id, Reader::Submitter).is_err());
    let mut dropped = case_log.clone();
    dropped.entries.retain(|e| {
        let event: custos::custody::Event = serde_json::from_slice(&base64_decode(&e.event)).unwrap();
        !(event.case == "vault" && event.action == custos::custody::Action::PrincipalAdded && event.actor != "vault")
    });
    assert!(prove_log(&dropped, &log, &anchors, &case_id, Reader::Submitter).is_err());
    let other =
        custos::custody::checkpoint::LogSigner::new(log.name(), ed25519_dalek::SigningKey::from_bytes(&[9; 32]))
            .unwrap()
            .verifier();
    assert!(prove_log(&case_log, &other, &anchors, &case_id, Reader::Submitter).is_err());
}

#[tokio::test]
async fn the_recorded_cosignature_verifies_for_its_witness_only() {
    let v = vector().await;
    let c = &v["cosigned"];
    let witness = custos::custody::cosignature::WitnessVerifier::parse(c["witness"].as_str().unwrap()).unwrap();
    let note = c["note"].as_str().unwrap();
    let now = c["time"].as_i64().unwrap();
    assert_eq!(witness.cosigned_at(note, now), Some(now as u64));
    let (log, ..) = parts(&v);
    log.verify(note).unwrap();
    assert!(witness.cosigned_at(&note.replacen('\n', "\n1", 1), now).is_none());
}

#[tokio::test]
async fn the_recorded_intake_is_what_the_log_names_and_a_relisting_is_refused() {
    let v = vector().await;
    let (log, anchors, _, _, intake) = parts(&v);
    let trusted = Trusted {
        log: log.clone(),
        admins: anchors.clone(),
        witnesses: Vec::new(),
    };
    assert_eq!(trusted.verify_intake(&intake).unwrap().len(), 1);
    // A host lists one more lawyer (a copy of the real one's entry under
    // another key id) or one fewer: refused, naming what differs.
    let mut relisted = intake.clone();
    let mut extra = relisted.intake[0].clone();
    extra.principal.key_id = "0123456789abcdef".parse().unwrap();
    relisted.intake.push(extra);
    let e = trusted.verify_intake(&relisted).unwrap_err().to_string();
    assert!(e.contains("other intake lawyers than its log names"), "{e}");
    let mut hidden = intake.clone();
    hidden.intake.clear();
    assert!(trusted.verify_intake(&hidden).is_err());
    let mut unproven = intake.clone();
    unproven.intake[0].proof.pop();
    assert!(trusted.verify_intake(&unproven).is_err());
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
