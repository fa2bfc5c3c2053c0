//! The auditor's and the admin's desk, in real Chromium against a real
//! vault: an auditor verifies an export bundle (and sees a tampered copy
//! fail, the failing check named) and disclosures, runs the audit and
//! reads a case's custody without its content; an admin registers principals from a card
//! file and a pasted card and removes one after the confirmation page;
//! and each role's pages refuse the other roles.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{DeskProcess, Session};
use crate::browser::{screenshot_dir, Browser};
use crate::util::{bytes, copy_dir, TestVault};
use custos::bundle::disclosure::Language;
use custos::client::export::{export, ExportOptions};
use custos::client::flows::{self, DiscloseOptions, Recipient};
use custos::identity::{Identity, KeyId, Principal, Role};

/// What a submitter wrote, which no auditor's or admin's page may show.
const MARKER: &str = "MARKER-officers-beat-me-in-room-12";

/// How long a page's background work may take here: an audit of a few
/// dozen entries, a bundle of a few kilobytes.
const WORK: Duration = Duration::from_secs(60);

/// A case with a statement holding [`MARKER`] and one evidence file.
async fn case_with_marker(v: &TestVault) -> String {
    v.submit(
        format!("On 3 May: {MARKER}").as_bytes(),
        &[("photo-of-room-12.jpg", bytes(7, 20_000))],
    )
    .await
    .case_id
}

/// Start a browser logged in to a desk of `who`.
async fn desk_for(v: &TestVault, who: &Identity, home: &str) -> (DeskProcess, Browser) {
    let desk = DeskProcess::start(v, who, &v.tmp.path().join(home));
    let b = Browser::start().await;
    desk.open_in(&b).await;
    (desk, b)
}

/// The page's whole HTML.
async fn html(b: &Browser) -> String {
    b.eval("return document.documentElement.outerHTML")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// Wait until an element matching `css` shows `needle` (after a click
/// that loads another page), and return its text.
async fn shown(b: &Browser, css: &str, needle: &str) -> String {
    let script = format!("const e = document.querySelector({css:?}); return !!e && e.textContent.includes({needle:?})");
    b.wait_for(&script, &format!("{needle:?} in {css}"), WORK).await;
    b.text(css).await
}

/// The registry as the vault lists it to the admin.
async fn registry(v: &TestVault) -> Vec<Principal> {
    v.client().principals(v.admin.signing_key()).await.unwrap()
}

fn registered(list: &[Principal], key: &KeyId) -> Option<(Role, bool)> {
    list.iter().find(|p| p.key_id == *key).map(|p| (p.role, p.intake))
}

/// Flip one byte in the middle of the bundle's largest object file.
fn tamper(bundle: &Path) {
    let objects = bundle.join("objects");
    let largest: PathBuf = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("the bundle holds objects");
    let mut data = std::fs::read(&largest).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    std::fs::write(&largest, data).unwrap();
}

/// Mark the page in the browser as the one before a click, so that a
/// wait for the next page's result cannot be met by this one's.
async fn mark_stale(b: &Browser) {
    b.eval("window.staleResult = true; return true").await;
}

/// Check `path` on the desk's verify page (for a disclosure sealed to
/// someone else, accepting a check of the log alone when `log_only`) and
/// wait for its result.
async fn verify(b: &Browser, desk: &DeskProcess, path: &Path, log_only: bool) {
    b.goto(&desk.at("/verify")).await;
    let path = path.to_str().unwrap();
    b.type_into("#bundle-path", path).await;
    if log_only {
        b.click("#log-only").await;
    }
    mark_stale(b).await;
    b.click("#run-verify").await;
    let done = format!(
        "const h = document.querySelector('#verify-result-h'); \
         return !window.staleResult && !document.querySelector('#verify-running') \
           && !!h && h.textContent.includes({path:?})"
    );
    b.wait_for(&done, "the bundle's check", WORK).await;
}

/// The verdict's `data-passed`.
async fn verified(b: &Browser) -> bool {
    let passed = b
        .eval("return document.querySelector('#verify-verdict').dataset.passed")
        .await;
    passed == "true"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_verifies_an_export_and_a_tampered_copy_fails_at_the_check_named() {
    let v = TestVault::start().await;
    let case = case_with_marker(&v).await;
    let bundle = v.tmp.path().join("export");
    let archive = v.tmp.path().join("export.tar");
    for (out, archive) in [(&bundle, false), (&archive, true)] {
        let options = ExportOptions { archive, report: true };
        export(&v.client(), &v.auditor, &v.log, &case, out, options)
            .await
            .unwrap();
    }
    let tampered = v.tmp.path().join("tampered");
    copy_dir(&bundle, &tampered);
    tamper(&tampered);

    let (desk, b) = desk_for(&v, &v.auditor, "auditor-home").await;
    b.goto(&desk.at("/verify")).await;
    let vkey = b.eval("return document.querySelector('#vkey').value").await;
    assert_eq!(
        vkey.as_str(),
        Some(v.log.vkey().as_str()),
        "the pinned log key is filled in"
    );

    verify(&b, &desk, &bundle, false).await;
    assert_eq!(
        b.eval("return document.querySelector('#verify-verdict').dataset.passed")
            .await,
        "true",
        "the export verifies: {}",
        b.text("#verify-result").await
    );
    let verdict = b.text("#verify-verdict").await;
    assert!(verdict.contains("VERIFIED") && verdict.contains(&case), "{verdict}");
    let outcomes = b
        .eval("return [...document.querySelectorAll('#verify-checks tbody tr')].map(r => r.dataset.check + ':' + r.dataset.outcome)")
        .await;
    let outcomes: Vec<String> = serde_json::from_value(outcomes).unwrap();
    assert!(outcomes.len() >= 5, "each check has its line: {outcomes:?}");
    assert!(outcomes.iter().all(|o| o.ends_with(":passed")), "{outcomes:?}");
    for check in ["checkpoint", "inclusion", "chain", "objects"] {
        assert!(outcomes.contains(&format!("{check}:passed")), "{check} in {outcomes:?}");
    }
    assert!(!html(&b).await.contains(MARKER), "no content on the verify page");
    b.screenshot(1280, &screenshot_dir().join("desk-verify-1280.png")).await;

    // The same bundle as one .tar.
    verify(&b, &desk, &archive, false).await;
    assert_eq!(
        b.eval("return document.querySelector('#verify-verdict').dataset.passed")
            .await,
        "true",
        "the .tar verifies: {}",
        b.text("#verify-result").await
    );

    // A flipped byte in an object: not verified, and the page names the
    // check that caught it, on its own line, after the ones that passed.
    verify(&b, &desk, &tampered, false).await;
    let verdict = b
        .eval("const d = document.querySelector('#verify-verdict').dataset; return {passed: d.passed, failedCheck: d.failedCheck}")
        .await;
    assert_eq!(verdict["passed"], "false", "{verdict}");
    assert_eq!(verdict["failedCheck"], "objects", "the object check fails: {verdict}");
    let text = b.text("#verify-verdict").await;
    assert!(text.contains("NOT VERIFIED") && text.contains("objects"), "{text}");
    let failed = b
        .text("#verify-checks tr[data-check='objects'][data-outcome='failed'] td:last-child")
        .await;
    assert!(!failed.is_empty(), "the failing line says what is wrong");
    b.screenshot(1280, &screenshot_dir().join("desk-verify-tampered-1280.png"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_checks_a_disclosure_with_their_own_key_and_another_only_on_its_log() {
    let v = TestVault::start().await;
    let case = case_with_marker(&v).await;
    let disclose_to = |to: Recipient, out: PathBuf| {
        let (v, case) = (&v, &case);
        async move {
            let options = DiscloseOptions {
                to,
                files: vec![],
                statement: true,
                confirmed: true,
                announce: None,
                plaintext: false,
                clean: false,
                language: Language::En,
            };
            flows::disclose(&v.client(), &v.lawyer, &v.log, case, &out, options)
                .await
                .unwrap();
            out
        }
    };
    let card = v.tmp.path().join("auditor.pub");
    std::fs::write(&card, v.auditor.card().to_string()).unwrap();
    let mine = disclose_to(
        Recipient::from_arg(card.to_str().unwrap()).unwrap(),
        v.tmp.path().join("to-auditor"),
    )
    .await;
    let stranger = Identity::generate("Someone Else").unwrap().card().recipient;
    let theirs = disclose_to(
        Recipient::from_arg(&stranger).unwrap(),
        v.tmp.path().join("to-someone-else"),
    )
    .await;

    let (desk, b) = desk_for(&v, &v.auditor, "auditor-home").await;
    // Sealed to this auditor: the files are compared, with their key, and
    // still nothing of them is shown.
    verify(&b, &desk, &mine, false).await;
    assert!(verified(&b).await, "{}", b.text("#verify-result").await);
    assert!(b.text("#contents-checked").await.contains("with your key"));
    assert!(b.text("#verify-verdict").await.contains(&case));
    assert!(!html(&b).await.contains(MARKER), "compared, never shown");

    // Sealed to someone else: not a pass, the unchecked lines say so...
    verify(&b, &desk, &theirs, false).await;
    assert!(!verified(&b).await);
    assert!(b.text("#verify-verdict").await.contains("NOT VERIFIED"));
    let skipped = b
        .eval("return document.querySelectorAll('#verify-checks tr[data-outcome=skipped]').length")
        .await;
    assert!(skipped.as_u64().unwrap() >= 1, "the checks it could not run are marked");
    // ...unless the auditor asks for the log alone, which is said plainly.
    verify(&b, &desk, &theirs, true).await;
    assert!(verified(&b).await);
    assert!(b.text("#verify-verdict").await.contains("LOG ONLY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_audits_the_log_and_reads_a_case_custody_without_its_content() {
    let v = TestVault::start().await;
    let case = case_with_marker(&v).await;
    let (desk, b) = desk_for(&v, &v.auditor, "auditor-home").await;
    b.goto(&desk.at("/audit")).await;

    let audit = |expect_consistency: &'static str| {
        let b = &b;
        async move {
            mark_stale(b).await;
            b.click("#run-audit").await;
            let done = format!(
                "const r = document.querySelector('#audit-checks tr[data-check=consistency]'); \
                 return !window.staleResult && !document.querySelector('#audit-running') \
                   && !!r && r.dataset.outcome === '{expect_consistency}'"
            );
            b.wait_for(&done, "the audit's result", WORK).await;
            assert_eq!(
                b.eval("return document.querySelector('#audit-verdict').dataset.passed")
                    .await,
                "true",
                "the audit passes: {}",
                b.text("#audit-result").await
            );
        }
    };
    // The first audit has nothing to compare with; it keeps its checkpoint.
    audit("not-asked").await;
    let outcomes: Vec<String> = serde_json::from_value(
        b.eval("return [...document.querySelectorAll('#audit-checks tbody tr')].map(r => r.dataset.check + ':' + r.dataset.outcome)")
            .await,
    )
    .unwrap();
    for check in ["checkpoint", "entries", "chains", "signatures", "registry", "tree"] {
        assert!(outcomes.contains(&format!("{check}:passed")), "{check} in {outcomes:?}");
    }
    let kept = std::fs::read_dir(v.tmp.path().join("auditor-home/config/custos/audits"))
        .expect("the audit's state is kept in the client's settings folder")
        .count();
    assert_eq!(kept, 1, "one state file for the one vault");

    // More happens; the second audit holds the log to the first one's
    // checkpoint, and says so.
    let before: u64 = b.text("#last-size").await.parse().unwrap();
    case_with_marker(&v).await;
    audit("passed").await;
    let line = b.text("#audit-checks tr[data-check=consistency] td:last-child").await;
    assert!(
        line.contains(&before.to_string()),
        "consistent with size {before}: {line}"
    );
    let after: u64 = b.text("#last-size").await.parse().unwrap();
    assert!(
        after > before,
        "the last verified checkpoint moved on: {before} -> {after}"
    );
    assert!(!html(&b).await.contains(MARKER));
    b.screenshot(1280, &screenshot_dir().join("desk-audit-1280.png")).await;

    // The case's custody: its events, proven, and none of its content.
    b.click("#cases-link").await;
    shown(&b, "h1", "Cases and their custody").await;
    b.click(&format!("#audit-cases a[href$='/audit/cases/{case}']")).await;
    b.wait_for(
        "return !!document.querySelector('table.timeline')",
        "the case's timeline",
        WORK,
    )
    .await;
    let actions: Vec<String> = serde_json::from_value(
        b.eval("return [...document.querySelectorAll('table.timeline tbody tr')].map(r => r.dataset.action)")
            .await,
    )
    .unwrap();
    assert_eq!(actions.first().map(String::as_str), Some("case_created"), "{actions:?}");
    assert!(
        actions.iter().filter(|a| *a == "object_stored").count() >= 2,
        "the statement and the photo were stored: {actions:?}"
    );
    let page = html(&b).await;
    assert!(!page.contains(MARKER), "no statement text on the auditor's page");
    assert!(!page.contains("photo-of-room-12"), "no file name: labels are sealed");
    assert!(
        page.contains("Lawyer One"),
        "the holder is named from the signed registry"
    );
    b.screenshot(1280, &screenshot_dir().join("desk-audit-case-1280.png"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_principals_from_a_card_and_removes_one_after_confirming() {
    let v = TestVault::start().await;
    let (desk, b) = desk_for(&v, &v.admin, "admin-home").await;
    b.wait_for("return !!document.querySelector('#registry')", "the admin's page", WORK)
        .await;

    // From a card file, as a lawyer receiving new cases.
    let lawyer = Identity::generate("Newcomer Lawyer").unwrap();
    let card_file = v.tmp.path().join("newcomer.pub");
    std::fs::write(&card_file, format!("{}\n", lawyer.card())).unwrap();
    b.type_into("#card-file", card_file.to_str().unwrap()).await;
    b.click("#role option[value='lawyer']").await;
    b.click("#intake").await;
    b.click("#add-principal").await;
    shown(&b, ".flash", "Newcomer Lawyer").await;
    assert_eq!(
        registered(&registry(&v).await, &lawyer.key_id()),
        Some((Role::Lawyer, true)),
        "registered as chosen"
    );
    assert!(b
        .text(&format!("#registry tr[data-key='{}']", lawyer.key_id()))
        .await
        .contains("Newcomer Lawyer"));

    // A pasted card: intake is refused for an auditor, and nothing changes.
    let auditor = Identity::generate("Pasted Auditor").unwrap();
    let paste = |intake: bool| {
        let (b, card) = (&b, auditor.card().to_string());
        async move {
            b.type_into("#card-text", &card).await;
            b.click("#role option[value='auditor']").await;
            if intake {
                b.click("#intake").await;
            }
            b.click("#add-principal").await;
        }
    };
    paste(true).await;
    shown(&b, ".flash.failed", "Only lawyers can receive new cases").await;
    assert_eq!(registered(&registry(&v).await, &auditor.key_id()), None);
    paste(false).await;
    shown(&b, ".flash", "Pasted Auditor").await;
    assert_eq!(
        registered(&registry(&v).await, &auditor.key_id()),
        Some((Role::Auditor, false))
    );
    b.goto(&desk.at("/admin")).await;
    assert!(b
        .text("#vault-checkpoint")
        .await
        .contains("signed by the pinned log key"));
    assert!(b.text("#vault-ready").await.starts_with('✓'));
    b.screenshot(1280, &screenshot_dir().join("desk-admin-1280.png")).await;

    // Remove: a page first, which changes nothing, and can be left.
    let remove = format!("a[href$='/admin/principals/{}/remove']", auditor.key_id());
    b.click(&remove).await;
    shown(&b, "h1", "Remove Pasted Auditor?").await;
    b.click("#cancel-remove").await;
    shown(&b, "h1", "Vault administration").await;
    assert!(registered(&registry(&v).await, &auditor.key_id()).is_some());
    b.click(&remove).await;
    shown(&b, "main", "cannot be undone").await;
    assert!(
        registered(&registry(&v).await, &auditor.key_id()).is_some(),
        "the confirmation page alone removes no one"
    );
    b.click("#confirm-remove").await;
    shown(&b, ".flash", &format!("Removed {}", auditor.key_id())).await;
    let list = registry(&v).await;
    assert_eq!(registered(&list, &auditor.key_id()), None, "removed");
    assert!(registered(&list, &lawyer.key_id()).is_some(), "only that one");
    assert!(!html(&b).await.contains(&format!("data-key=\"{}\"", auditor.key_id())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_roles_pages_refuse_the_other_roles() {
    let v = TestVault::start().await;
    let case = case_with_marker(&v).await;
    let lawyer_key = v.lawyer.key_id();
    let remove_lawyer = format!("/admin/principals/{lawyer_key}/remove");
    let auditor_pages = [
        "/audit".to_owned(),
        "/audit/cases".to_owned(),
        format!("/audit/cases/{case}"),
        "/verify".to_owned(),
    ];
    let admin_pages = ["/admin".to_owned(), remove_lawyer.clone()];
    let lawyer_pages = ["/inbox".to_owned(), format!("/cases/{case}")];
    let not_yours = "This part of the desk is for another role";

    for (who, home, refused, changes) in [
        (
            &v.lawyer,
            "lawyer-home",
            [&auditor_pages[..], &admin_pages[..]].concat(),
            vec!["/audit/run", "/verify", remove_lawyer.as_str()],
        ),
        (
            &v.auditor,
            "auditor-home",
            [&lawyer_pages[..], &admin_pages[..]].concat(),
            vec![remove_lawyer.as_str()],
        ),
        (
            &v.admin,
            "admin-home",
            [&lawyer_pages[..], &auditor_pages[..]].concat(),
            vec!["/audit/run", "/verify"],
        ),
    ] {
        let desk = DeskProcess::start(&v, who, &v.tmp.path().join(home));
        let session = Session::start(&desk).await;
        for path in &refused {
            let resp = session.get(&desk.at(path)).await;
            assert_eq!(resp.status(), 403, "{home}: GET {path}");
            let body = resp.text().await.unwrap();
            assert!(body.contains(not_yours), "{home}: {path} says why");
            assert!(
                !body.contains(MARKER) && !body.contains("<form method=\"post\""),
                "{home}: {path}"
            );
        }
        for path in changes {
            let form = [("path", "/tmp"), ("vkey", "x"), ("witnesses", "")];
            let resp = session.post(&desk.at(path), &desk.origin, &form).await;
            assert_eq!(resp.status(), 403, "{home}: POST {path}");
        }
    }
    assert!(
        registered(&registry(&v).await, &lawyer_key).is_some(),
        "no refused removal went through"
    );

    // And as a person sees it: the refusal page, in the browser.
    let (desk, b) = desk_for(&v, &v.lawyer, "lawyer-browser").await;
    b.goto(&desk.at("/admin")).await;
    let status = b
        .eval("return performance.getEntriesByType('navigation')[0].responseStatus")
        .await;
    assert_eq!(status, 403);
    assert!(b.text("main").await.contains(not_yours));
}
