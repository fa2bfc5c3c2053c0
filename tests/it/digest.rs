//! Lawyers' digests: the admin's signed contact address, the mail the
//! vault sends at fixed times to a real SMTP server (aiosmtpd, from PyPI,
//! installed by `tests/smtp/ensure-aiosmtpd.sh`), and `custos watch`.

use crate::util::TestVault;

use custos::client::flows;
use custos::custody::Action;
use custos::store::T;

/// An admin sets a lawyer's address, and only an admin; only a lawyer's,
/// only a registered one, only in the plain form; the log keeps it, the
/// auditor passes it, and a vault whose registry says another address
/// than its log fails the audit that ends a restore.
#[tokio::test]
async fn an_admin_sets_a_lawyers_address_in_the_log() {
    let mut v = TestVault::start().await;
    let c = v.client();
    let lawyer = v.lawyer.key_id();
    let admin = v.admin.signing_key();
    for who in [&v.lawyer, &v.auditor] {
        let e = c
            .set_contact(who.signing_key(), &lawyer, Some("lawyer@example.org"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("forbidden"), "{e}");
    }
    let e = c
        .set_contact(admin, &v.auditor.key_id(), Some("auditor@example.org"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("bad_request"), "{e}");
    let stranger = custos::identity::Identity::generate("Stranger").unwrap().key_id();
    let e = c
        .set_contact(admin, &stranger, Some("x@example.org"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"), "{e}");
    for bad in [
        "lawyer@example.org\r\nBcc: spy@example.net",
        "lawyer@example.org, spy@example.net",
        "Lawyer <lawyer@example.org>",
        "lawyer",
        "\"lawyer\"@example.org",
    ] {
        let e = c.set_contact(admin, &lawyer, Some(bad)).await.unwrap_err();
        assert_eq!(e.code(), Some("bad_request"), "{bad:?}: {e}");
    }
    let store = || &v.state.as_ref().unwrap().vault.store;
    assert!(store()
        .registry_record(lawyer.as_str())
        .unwrap()
        .unwrap()
        .contact
        .is_none());

    let receipt = c.set_contact(admin, &lawyer, Some("lawyer@example.org")).await.unwrap();
    let event = flows::check_receipt(&receipt, &v.log, Action::PrincipalContactSet).unwrap();
    assert_eq!(event.case, "vault");
    let record = store().registry_record(lawyer.as_str()).unwrap().unwrap();
    assert_eq!(record.contact.unwrap().as_str(), "lawyer@example.org");
    let state = store().digest_state(lawyer.as_str()).unwrap().unwrap();
    assert_eq!(
        state.counted_to, receipt.index,
        "counting starts where the address was set"
    );
    // A new address keeps the count; clearing forgets it.
    c.set_contact(admin, &lawyer, Some("other@example.org")).await.unwrap();
    assert_eq!(store().digest_state(lawyer.as_str()).unwrap(), Some(state));
    c.set_contact(admin, &lawyer, None).await.unwrap();
    assert!(store()
        .registry_record(lawyer.as_str())
        .unwrap()
        .unwrap()
        .contact
        .is_none());
    assert!(store().digest_state(lawyer.as_str()).unwrap().is_none());
    c.set_contact(admin, &lawyer, Some("lawyer@example.org")).await.unwrap();

    let report = flows::audit(&c, &v.auditor, &v.log, None).await.unwrap();
    assert!(report.passed(), "{:?}", report.failure);
    assert_eq!(report.actions.get("principal_contact_set"), Some(&4));

    // The registry's address is the log's, or the vault fails its audit.
    v.stop().await;
    let vault = custos::vault::open(&v.data_dir()).unwrap();
    custos::backup::audit_vault(&vault).unwrap();
    let mut record = vault.store.registry_record(lawyer.as_str()).unwrap().unwrap();
    record.contact = Some("spy@example.net".parse().unwrap());
    vault
        .store
        .danger_raw_tree(T::Registry)
        .insert(lawyer.as_str(), serde_json::to_vec(&record).unwrap())
        .unwrap();
    let e = custos::backup::audit_vault(&vault).unwrap_err();
    assert!(e.to_string().contains("registry"), "{e}");
}
