//! The whole path a complaint takes: submitter to vault to lawyer, checked by
//! an auditor, and the walls around it: outsiders, grants and revocations.

use crate::util;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::flows;
use custos::custody::{Action, Event};
use custos::envelope::{CaseKey, EnvelopeError};
use custos::identity::{Identity, Role};
use custos::wire::PrincipalBody;
use util::{bytes, files_under, TestVault};

#[tokio::test]
async fn a_submission_reaches_the_lawyer_byte_for_byte_and_the_audit_passes() {
    let v = TestVault::start().await;
    // 9 MB: several PATCHes and several store chunks.
    let video = bytes(1, 9_000_000);
    let report = bytes(2, 2_000);
    let s = v
        .submit(
            "Меня избили в участке.\n".as_bytes(),
            &[("video.mp4", video.clone()), ("report.pdf", report.clone())],
        )
        .await;
    assert_eq!(s.receipt.receipts.len(), 4, "case creation and three objects");
    for r in &s.receipt.receipts {
        custos::audit::verify_receipt(r, &v.log).unwrap();
    }

    let client = v.client();
    let cases = client.cases(v.lawyer.signing_key()).await.unwrap();
    let listed = cases
        .iter()
        .find(|c| c.case_id == s.case_id)
        .expect("the intake lawyer sees the case");
    assert_eq!(listed.objects, 3);

    let out = v.tmp.path().join("retrieved");
    let got = flows::get_case(&client, &v.lawyer, &v.log, &s.case_id, &out)
        .await
        .unwrap();
    assert_eq!(got.files.len(), 3);
    assert_eq!(std::fs::read(out.join("video.mp4")).unwrap(), video);
    assert_eq!(std::fs::read(out.join("report.pdf")).unwrap(), report);
    assert_eq!(
        std::fs::read(out.join("statement.txt")).unwrap(),
        "Меня избили в участке.\n".as_bytes()
    );

    let state = v.tmp.path().join("audit-state.json");
    let first = flows::audit(&client, &v.auditor, &v.log, Some(&state)).await.unwrap();
    assert_eq!(first.failure, None);
    // 1 anchor + 2 principals + 1 case + 3 objects + 3 accesses.
    assert_eq!(first.entries, 10);
    assert_eq!(
        first.signatures, 9,
        "every event but the trust anchor is signed by its actor"
    );
    assert_eq!(first.consistent_with, None);
    v.submit(b"a second case", &[]).await;
    let second = flows::audit(&client, &v.auditor, &v.log, Some(&state)).await.unwrap();
    assert_eq!(second.failure, None);
    assert_eq!(second.consistent_with, Some(10));
    // Only the two entries after the state's were downloaded and checked.
    assert_eq!((second.from_size, second.entries), (10, 2));
}

#[tokio::test]
async fn no_plaintext_or_file_name_reaches_the_data_directory() {
    let mut v = TestVault::start().await;
    let marker = format!("MARKER-{}", hex::encode(rand::random::<[u8; 8]>()));
    let statement = format!("{marker} was beaten on the third floor. {marker}\n").repeat(50);
    let evidence = format!("photo-{marker}.jpg");
    let s = v
        .submit(
            statement.as_bytes(),
            &[(evidence.as_str(), marker.repeat(1000).into_bytes())],
        )
        .await;
    // The lawyer reads it back, so the test also proves the marker was there.
    let out = v.tmp.path().join("out");
    flows::get_case(&v.client(), &v.lawyer, &v.log, &s.case_id, &out)
        .await
        .unwrap();
    assert!(std::fs::read_to_string(out.join("statement.txt"))
        .unwrap()
        .contains(&marker));
    assert!(out.join(&evidence).exists());

    v.stop().await;
    let files = files_under(&v.data_dir());
    assert!(files.len() >= 3, "the store has files: {files:?}");
    let needle = marker.as_bytes();
    for f in files {
        let data = std::fs::read(&f).unwrap();
        assert!(
            !data.windows(needle.len()).any(|w| w == needle),
            "plaintext found in {}",
            f.display()
        );
    }
}

#[tokio::test]
async fn outsiders_are_refused_and_cannot_decrypt_the_ciphertext() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[("e.bin", bytes(3, 5000))]).await;
    let client = v.client();

    let stranger = Identity::generate("Stranger").unwrap();
    let err = client.cases(stranger.signing_key()).await.unwrap_err();
    assert_eq!(err.code(), Some("unknown_key"));

    let other = Identity::generate("Lawyer Two").unwrap();
    v.add_lawyer(&other, false).await;
    assert!(
        client.cases(other.signing_key()).await.unwrap().is_empty(),
        "a lawyer without the case does not see it"
    );
    let out = v.tmp.path().join("other-out");
    let err = flows::get_case(&client, &other, &v.log, &s.case_id, &out)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("holds no envelope"), "{err}");
    assert!(!out.exists(), "nothing is written when access fails");

    let detail = client.case(v.lawyer.signing_key(), &s.case_id).await.unwrap();
    let object = &detail.objects[0].object_id;
    // Those who may not see the case are told it does not exist; an
    // auditor, who sees its metadata, is told no.
    for (who, code) in [
        (&other, "not_found"),
        (&v.auditor, "forbidden"),
        (&v.admin, "not_found"),
    ] {
        let err = client
            .download(who.signing_key(), &s.case_id, object, &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(code), "{}", who.key_id());
    }

    // Even with the raw ciphertext and the lawyer's envelope in hand, the
    // other principal cannot decrypt: access is enforced by cryptography.
    let mut ciphertext = Vec::new();
    client
        .download(v.lawyer.signing_key(), &s.case_id, object, &mut ciphertext)
        .await
        .unwrap();
    let envelope = B64.decode(detail.envelope.unwrap()).unwrap();
    assert!(matches!(
        CaseKey::open(&envelope, other.age_identity()),
        Err(EnvelopeError::Decrypt)
    ));
    assert!(matches!(
        custos::envelope::decrypt_bytes(&ciphertext, other.age_identity()),
        Err(EnvelopeError::Decrypt)
    ));
    assert!(matches!(
        custos::envelope::decrypt_bytes(&ciphertext, stranger.age_identity()),
        Err(EnvelopeError::Decrypt)
    ));
    let case_key = CaseKey::open(&envelope, v.lawyer.age_identity()).unwrap();
    assert!(
        custos::envelope::decrypt_bytes(&ciphertext, case_key.identity()).is_ok(),
        "the holder can"
    );
}

async fn assert_audit_passes(v: &TestVault) {
    let report = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(report.failure, None);
}

#[tokio::test]
async fn grant_then_revoke_works_and_both_are_logged() {
    let v = TestVault::start().await;
    let s = v.submit(b"statement", &[]).await;
    let client = v.client();
    let colleague = Identity::generate("Colleague").unwrap();
    v.add_lawyer(&colleague, false).await;

    // An auditor cannot be granted content.
    let err = flows::grant(&client, &v.lawyer, &v.log, &s.case_id, &v.auditor.key_id())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("forbidden"));

    let receipt = flows::grant(&client, &v.lawyer, &v.log, &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    flows::check_receipt(&receipt, &v.log, Action::EnvelopeGranted).unwrap();
    let out = v.tmp.path().join("colleague");
    flows::get_case(&client, &colleague, &v.log, &s.case_id, &out)
        .await
        .unwrap();
    assert_eq!(std::fs::read(out.join("statement.txt")).unwrap(), b"statement");

    let err = flows::grant(&client, &v.lawyer, &v.log, &s.case_id, &colleague.key_id())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("already_granted"));

    client
        .revoke(v.lawyer.signing_key(), &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    let err = flows::get_case(&client, &colleague, &v.log, &s.case_id, &v.tmp.path().join("again"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("holds no envelope"), "{err}");
    let err = client
        .download(
            colleague.signing_key(),
            &s.case_id,
            &client.case(v.lawyer.signing_key(), &s.case_id).await.unwrap().objects[0].object_id,
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("not_found"),
        "a revoked lawyer no longer sees the case"
    );

    // The last lawyer holding a case cannot be revoked: the case would
    // become unreadable to everyone but the submitter.
    let err = client
        .revoke(v.admin.signing_key(), &s.case_id, &v.lawyer.key_id())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("last_holder"));

    // Removing a principal from the registry takes its envelope with it:
    // there is nothing left to revoke.
    flows::grant(&client, &v.lawyer, &v.log, &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    client
        .remove_principal(v.admin.signing_key(), &colleague.key_id())
        .await
        .unwrap();
    let holders = client.case(v.lawyer.signing_key(), &s.case_id).await.unwrap().holders;
    assert!(!holders.contains(&colleague.key_id()), "{holders:?}");
    let e = client
        .revoke(v.lawyer.signing_key(), &s.case_id, &colleague.key_id())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"));

    let events = v.events().await;
    let on_case: Vec<&Event> = events.iter().filter(|e| e.case == s.case_id).collect();
    let granted = on_case
        .iter()
        .find(|e| e.action == Action::EnvelopeGranted)
        .expect("grant logged");
    assert_eq!(granted.actor, v.lawyer.key_id().as_str());
    assert_eq!(granted.details["key_id"], colleague.key_id().as_str());
    let revoked = on_case
        .iter()
        .find(|e| e.action == Action::EnvelopeRevoked)
        .expect("revoke logged");
    assert_eq!(revoked.details["key_id"], colleague.key_id().as_str());
    let accessed = on_case
        .iter()
        .filter(|e| e.action == Action::ObjectAccessed && e.actor == colleague.key_id().as_str())
        .count();
    assert_eq!(accessed, 1, "the colleague's one download is on record");
    assert_audit_passes(&v).await;
}

#[tokio::test]
async fn registry_changes_need_an_admin_and_keep_one_admin() {
    let v = TestVault::start().await;
    let client = v.client();
    let newcomer = Identity::generate("Newcomer").unwrap();
    let body = PrincipalBody {
        card: newcomer.card(),
        role: Role::Admin,
        intake: false,
    };
    let err = client.add_principal(v.lawyer.signing_key(), &body).await.unwrap_err();
    assert_eq!(err.code(), Some("forbidden"));
    let err = client
        .remove_principal(v.admin.signing_key(), &v.admin.key_id())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("last_admin"));
    let bad = PrincipalBody {
        card: newcomer.card(),
        role: Role::Auditor,
        intake: true,
    };
    assert_eq!(
        client
            .add_principal(v.admin.signing_key(), &bad)
            .await
            .unwrap_err()
            .code(),
        Some("bad_request")
    );

    client
        .add_principal(
            v.admin.signing_key(),
            &PrincipalBody {
                card: newcomer.card(),
                role: Role::Lawyer,
                intake: false,
            },
        )
        .await
        .unwrap();
    let err = client
        .add_principal(
            v.admin.signing_key(),
            &PrincipalBody {
                card: newcomer.card(),
                role: Role::Lawyer,
                intake: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("principal_exists"));
    let listed = client.principals(v.auditor.signing_key()).await.unwrap();
    assert!(listed
        .iter()
        .any(|p| p.key_id == newcomer.key_id() && p.role == Role::Lawyer));
    client
        .remove_principal(v.admin.signing_key(), &newcomer.key_id())
        .await
        .unwrap();
    assert_eq!(
        client.cases(newcomer.signing_key()).await.unwrap_err().code(),
        Some("unknown_key"),
        "a removed key is refused"
    );
    let events = v.events().await;
    assert!(events
        .iter()
        .any(|e| e.action == Action::PrincipalRemoved && e.details["key_id"] == newcomer.key_id().as_str()));
    assert_audit_passes(&v).await;
}
