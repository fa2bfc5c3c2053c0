//! A lawyer's day at the desk, in real Chromium: a complaint sent from the
//! vault's page in Russian appears as new; the lawyer opens it, reads the
//! form under the questions the submitter saw, previews the photo and the
//! PDF, saves a file, replies (and the submitter reads the reply with the
//! codename), sets status, tag and assignee, and grants the case to a
//! second lawyer, whose desk then lists it. Afterwards no file the desk
//! or the browser wrote holds anything of the case.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::DeskProcess;
use crate::browser::{screenshot_dir, Browser};
use crate::util::{files_under, TestVault};
use crate::web::{answers, fill, submit_and_wait};
use custos::identity::Identity;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// Words typed into the form, and text inside the PDF: after the session,
/// no file outside the folder the lawyer saved into may hold either.
const STATEMENT_MARKER: &str = "DESK-MARKER-STATEMENT-5K2";
const PDF_MARKER: &str = "DESK-MARKER-PDF-7Q4";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/desk").join(name)
}

/// Reload `url` until `script` is true (the inbox fills in the background).
async fn reload_until(b: &Browser, url: &str, script: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        b.goto(url).await;
        if b.eval(script).await == Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let shown = b.eval("return document.body.innerText").await;
            panic!("timed out waiting for {what}; the page shows: {shown}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Click a control that leads to another page (a form's button, a link),
/// and wait until that page has loaded.
async fn click_through(b: &Browser, css: &str) {
    b.eval("window.__custosOldPage = true; return true").await;
    b.click(css).await;
    b.wait_for(
        "return window.__custosOldPage === undefined && document.readyState === 'complete'",
        &format!("the page after {css}"),
        Duration::from_secs(60),
    )
    .await;
}

/// Every control of the page has a label (buttons name themselves).
async fn every_control_is_labelled(b: &Browser, page: &str) {
    let unlabelled = b
        .eval(
            "return [...document.querySelectorAll('input, textarea, select')]
               .filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.name || e.id)",
        )
        .await;
    assert_eq!(unlabelled, serde_json::json!([]), "{page}: controls without a label");
}

/// Set a form control's value (WebDriver types into fields; this replaces).
async fn set(b: &Browser, css: &str, value: &str) {
    let script = format!(
        "const e = document.querySelector({}); e.value = {}; return e.value",
        serde_json::to_string(css).unwrap(),
        serde_json::to_string(value).unwrap()
    );
    assert_eq!(b.eval(&script).await, Value::String(value.to_owned()), "{css}");
}

/// The message a form left on the page it led back to.
async fn flash(b: &Browser) -> String {
    b.text(".flash").await
}

/// Run the CLI; its stdout.
fn cli(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "custos {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lawyers_day_at_the_desk() {
    let v = TestVault::start().await;
    let second = Identity::generate("Aigerim Seitkali").unwrap();
    v.add_lawyer(&second, false).await;
    let b = Browser::start().await;
    let shots = screenshot_dir();

    // A complaint from the page, in Russian, with a photo and a medical PDF.
    b.goto(&format!("{}/ru/", v.url)).await;
    let mut a = answers("ru");
    a.fields[0].1.push_str(&format!("\n{STATEMENT_MARKER}"));
    let (photo, report) = (fixture("bruise.png"), fixture("report.pdf"));
    fill(&b, &a, &[&photo], &[&report]).await;
    let (codename, case) = submit_and_wait(&b).await;

    // The lawyer's desk lists it as new.
    let home = v.tmp.path().join("lawyer-home");
    let desk = DeskProcess::start(&v, &v.lawyer, &home);
    desk.open_in(&b).await;
    let row = format!("tr.new[data-case=\"{case}\"]");
    reload_until(
        &b,
        &desk.at("/inbox"),
        &format!("return !!document.querySelector('{row}')"),
        "the case, new",
    )
    .await;
    b.screenshot(1280, &shots.join("desk-inbox-1280.png")).await;
    every_control_is_labelled(&b, "the inbox").await;

    // Opened, in Russian: each answer under the question as the page put it.
    click_through(&b, &format!("{row} a")).await;
    click_through(&b, "form.lang button[value=\"ru\"]").await;
    assert_eq!(b.eval("return document.documentElement.lang").await, "ru");
    let page = custos::web::strings("ru").unwrap();
    for (field, answer) in &a.fields {
        let question = b.text(&format!("dt[data-field=\"{field}\"]")).await;
        assert!(question.starts_with(page[*field].as_str()), "{field}: {question}");
        assert_eq!(
            b.text(&format!("dd[data-field=\"{field}\"]")).await,
            answer.trim(),
            "{field}"
        );
    }
    let consent = b.text("#consent").await;
    assert!(consent.contains("да, заявитель согласен"), "{consent}");
    assert!(consent.contains(page["consent"].as_str()), "{consent}");
    assert!(b.text("#case-state").await.starts_with("открыта"));
    every_control_is_labelled(&b, "the case").await;

    // The photo shows; the PDF opens in the browser's own viewer.
    // Shown when scrolled to (each file's first fetch is a logged access).
    b.eval("document.querySelector('li.file[data-name=\"bruise.png\"]').scrollIntoView(); return true")
        .await;
    b.wait_for(
        "const i = document.querySelector('li.file[data-name=\"bruise.png\"] img.preview'); \
         return !!i && i.complete && i.naturalWidth === 96",
        "the photo's preview",
        Duration::from_secs(30),
    )
    .await;
    let frame = b
        .eval("return document.querySelector('li.file[data-name=\"report.pdf\"] iframe.preview').src")
        .await;
    let frame = frame.as_str().unwrap().to_owned();
    assert!(
        !frame.starts_with(&desk.origin),
        "files come from their own origin: {frame}"
    );
    b.eval("document.querySelector('li.file[data-name=\"report.pdf\"]').scrollIntoView(); return true")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let targets = b.cdp("Target.getTargets", serde_json::json!({})).await;
        let viewer = targets["targetInfos"].as_array().unwrap().iter().any(|t| {
            t["url"]
                .as_str()
                .unwrap_or("")
                .starts_with("chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/")
        });
        if viewer {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Chromium's PDF viewer did not open the report: {targets}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    b.screenshot(1280, &shots.join("desk-case-1280.png")).await;
    b.eval("document.querySelector('#files').scrollIntoView(); return true")
        .await;
    b.screenshot_screen(1280, &shots.join("desk-case-files-1280.png")).await;

    // Saved: byte for byte, readable by the lawyer only.
    let saved = v.tmp.path().join("saved").join(&case);
    set(
        &b,
        "li.file[data-name=\"report.pdf\"] input[name=folder]",
        saved.to_str().unwrap(),
    )
    .await;
    click_through(&b, "li.file[data-name=\"report.pdf\"] form.save button").await;
    let note = flash(&b).await;
    assert!(note.contains(saved.to_str().unwrap()), "{note}");
    let copy = saved.join("report.pdf");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&report).unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    // Saving again never overwrites.
    set(
        &b,
        "li.file[data-name=\"report.pdf\"] input[name=folder]",
        saved.to_str().unwrap(),
    )
    .await;
    click_through(&b, "li.file[data-name=\"report.pdf\"] form.save button").await;
    assert!(
        b.eval("return document.querySelector('.flash').classList.contains('failed')")
            .await
            == Value::Bool(true)
    );

    // A reply, which the submitter reads with the codename.
    let reply = "Мы получили вашу жалобу. Адвокат свяжется с вами.";
    b.type_into("#reply", reply).await;
    click_through(&b, "#messages form button").await;
    assert!(!flash(&b).await.is_empty());
    assert!(b.text("#messages ol.thread").await.contains(reply));
    let config = v.tmp.path().join("submitter-config");
    let replies = cli(
        &["--server", &v.url, "submitter", "replies", "--case", &case],
        &[
            ("CUSTOS_CODENAME", codename.as_str()),
            ("CUSTOS_CONFIG_DIR", config.to_str().unwrap()),
        ],
    );
    assert!(replies.contains(reply), "{replies}");

    // Status, a tag and the assignee, as the log then shows them.
    set(&b, "#wf-status", "active").await;
    b.type_into("#wf-tags", "срочно, medical").await;
    set(&b, "#wf-assign", v.lawyer.key_id().as_str()).await;
    click_through(&b, "#workflow form.workflow button").await;
    assert_eq!(b.text("#case-workflow").await, "в работе");
    let tags = b.text("#case-tags").await;
    assert!(tags.contains("срочно") && tags.contains("medical"), "{tags}");
    assert!(b.text("#case-assignee").await.contains(v.lawyer.key_id().as_str()));
    let lawyer_file = home.join(format!("{}.identity", v.lawyer.key_id()));
    let shown: Value = serde_json::from_str(&cli(
        &[
            "--server",
            &v.url,
            "--identity",
            lawyer_file.to_str().unwrap(),
            "--json",
            "case",
            "show",
            &case,
        ],
        &[("CUSTOS_CONFIG_DIR", home.join("config/custos").to_str().unwrap())],
    ))
    .unwrap();
    assert_eq!(shown["workflow_status"], "active");
    assert_eq!(shown["tags"], serde_json::json!(["medical", "срочно"]));
    assert_eq!(shown["assignee"], v.lawyer.key_id().as_str());

    // Granted to the second lawyer, picked from the registered lawyers.
    set(&b, "#grant-to", second.key_id().as_str()).await;
    click_through(&b, "#access form[action$=\"/grant\"] button").await;
    assert!(b.text("#holders").await.contains("Aigerim Seitkali"));

    // Back in the inbox, the case is no longer new to this lawyer.
    b.goto(&desk.at("/inbox")).await;
    assert_eq!(
        b.eval(&format!("return !!document.querySelector('{row}')")).await,
        false
    );

    // The second lawyer's desk lists it.
    let home2 = v.tmp.path().join("second-home");
    let desk2 = DeskProcess::start(&v, &second, &home2);
    desk2.open_in(&b).await;
    reload_until(
        &b,
        &desk2.at("/inbox"),
        &format!("return !!document.querySelector('tr[data-case=\"{case}\"]')"),
        "the granted case in the second desk",
    )
    .await;
    b.goto(&desk2.at(&format!("/cases/{case}"))).await;
    assert!(b.text("#account").await.contains(STATEMENT_MARKER));

    // Nothing of the case in any file the desks or the browser wrote,
    // while they still run.
    let mut scanned = 0;
    for place in [&home, &home2, b.profile()] {
        for f in files_under(place) {
            scanned += 1;
            let Ok(bytes) = std::fs::read(&f) else { continue };
            for marker in [STATEMENT_MARKER, PDF_MARKER] {
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                    "{} holds {marker}",
                    f.display()
                );
            }
        }
    }
    assert!(
        scanned > 20,
        "the scan saw the desks' and the browser's files ({scanned})"
    );
    drop((desk, desk2));
}

/// Post a form of the desk's as its pages do; the message the page it
/// leads back to shows (beginning ` failed` when it reports a failure).
async fn post(session: &super::Session, desk: &DeskProcess, path: String, form: Vec<(&str, String)>) -> String {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = session.post(&desk.at(&path), &desk.origin, &form).await;
    assert_eq!(resp.status(), 303, "{path}");
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    let next = session
        .get(&format!("{}{back}", desk.origin))
        .await
        .text()
        .await
        .unwrap();
    next.split("class=\"flash").nth(1).unwrap_or_default().to_owned()
}

/// The case page's forms as a lawyer posts them: export, disclose, revoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_disclosure_and_revoke_from_a_case_page_make_what_the_cli_verifies() {
    let v = TestVault::start().await;
    let second = Identity::generate("Aigerim Seitkali").unwrap();
    v.add_lawyer(&second, false).await;
    let photo = std::fs::read(fixture("bruise.png")).unwrap();
    let submitted = v.submit(b"statement of events", &[("bruise.png", photo)]).await;
    let case = submitted.case_id.clone();
    let home = v.tmp.path().join("desk-home");
    let desk = DeskProcess::start(&v, &v.lawyer, &home);
    let session = super::Session::start(&desk).await;
    let page = session
        .get(&desk.at(&format!("/cases/{case}")))
        .await
        .text()
        .await
        .unwrap();
    let photo_id = page
        .split("data-object=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let vkey = v.log.vkey();

    // The custody bundle, which `custos verify` accepts.
    let bundle = v.tmp.path().join("out").join("bundle");
    let said = post(
        &session,
        &desk,
        format!("/cases/{case}/export"),
        vec![("out", bundle.to_str().unwrap().to_owned())],
    )
    .await;
    assert!(!said.starts_with(" failed"), "{said}");
    let out = std::process::Command::new(BIN)
        .args(["verify", bundle.to_str().unwrap(), "--vkey", &vkey])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // A relative path is refused, and nothing is written.
    let said = post(
        &session,
        &desk,
        format!("/cases/{case}/export"),
        vec![("out", "bundle2".to_owned())],
    )
    .await;
    assert!(said.starts_with(" failed"), "{said}");

    // A disclosure of the photo alone, to an age key.
    let court = age::x25519::Identity::generate();
    let disclosure = v.tmp.path().join("out").join("to-court");
    let said = post(
        &session,
        &desk,
        format!("/cases/{case}/disclose"),
        vec![
            ("to", court.to_public().to_string()),
            ("files", photo_id.clone()),
            ("lang", "ru".to_owned()),
            ("out", disclosure.to_str().unwrap().to_owned()),
        ],
    )
    .await;
    assert!(!said.starts_with(" failed"), "{said}");
    let out = std::process::Command::new(BIN)
        .args(["verify", disclosure.to_str().unwrap(), "--vkey", &vkey, "--log-only"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("names 1 objects"),
        "only the photo was disclosed: {shown}"
    );

    // Granted, then revoked: the second lawyer holds it, then does not.
    post(
        &session,
        &desk,
        format!("/cases/{case}/grant"),
        vec![("key", second.key_id().to_string())],
    )
    .await;
    let holders = |p: &str| {
        p.split("id=\"holders\"")
            .nth(1)
            .unwrap()
            .split("</table>")
            .next()
            .unwrap()
            .to_owned()
    };
    let page = session
        .get(&desk.at(&format!("/cases/{case}")))
        .await
        .text()
        .await
        .unwrap();
    assert!(holders(&page).contains("Aigerim Seitkali"));
    post(
        &session,
        &desk,
        format!("/cases/{case}/revoke"),
        vec![("key", second.key_id().to_string())],
    )
    .await;
    let page = session
        .get(&desk.at(&format!("/cases/{case}")))
        .await
        .text()
        .await
        .unwrap();
    assert!(!holders(&page).contains("Aigerim Seitkali"));
    let events = v.events().await;
    let actions: Vec<_> = events
        .iter()
        .filter(|e| e.case == case)
        .map(|e| e.action.name())
        .collect();
    for a in [
        "case_exported",
        "case_disclosed",
        "envelope_granted",
        "envelope_revoked",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

/// A withdrawal signed with the duress codename is said plainly to the
/// lawyer, in the inbox (and its filter) and on the case's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duress_withdrawal_is_said_plainly_in_the_inbox_and_on_the_case() {
    use custos::client::flows::{self, SubmitFile};
    use custos::envelope::ObjectKind;
    use custos::identity::codename::Codename;
    let v = TestVault::start().await;
    let files = [SubmitFile {
        path: v.file("statement.txt", b"statement"),
        kind: ObjectKind::Statement,
    }];
    let forced = flows::submit(&v.client(), &v.trust(), &[], &files, true).await.unwrap();
    let free = flows::submit(&v.client(), &v.trust(), &[], &files, true).await.unwrap();
    for (case, codename) in [
        (&forced.case_id, forced.duress_codename.as_ref().unwrap()),
        (&free.case_id, &free.codename),
    ] {
        let codename = Codename::parse(codename.expose()).unwrap();
        let s = custos::client::submitter::open(&v.client(), &v.trust(), codename, case)
            .await
            .unwrap();
        s.withdraw(None).await.unwrap();
    }
    let home = v.tmp.path().join("desk-home");
    let desk = DeskProcess::start(&v, &v.lawyer, &home);
    let session = super::Session::start(&desk).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let inbox = loop {
        let page = session
            .get(&desk.at("/inbox?state=withdrawn_under_duress"))
            .await
            .text()
            .await
            .unwrap();
        if page.contains(&forced.case_id) || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(inbox.contains(&forced.case_id), "{inbox}");
    assert!(
        !inbox.contains(&free.case_id),
        "only the coerced withdrawal is under duress"
    );
    assert!(inbox.contains("withdrawn under duress"));
    let page = session
        .get(&desk.at(&format!("/cases/{}", forced.case_id)))
        .await
        .text()
        .await
        .unwrap();
    let state = page
        .split("id=\"case-state\"")
        .nth(1)
        .unwrap()
        .split("</dd>")
        .next()
        .unwrap();
    assert!(
        state.contains("withdrawn under duress") && state.contains("coerced"),
        "{state}"
    );
    let page = session
        .get(&desk.at(&format!("/cases/{}", free.case_id)))
        .await
        .text()
        .await
        .unwrap();
    let state = page
        .split("id=\"case-state\"")
        .nth(1)
        .unwrap()
        .split("</dd>")
        .next()
        .unwrap();
    assert!(state.contains("withdrawn") && !state.contains("duress"), "{state}");
}

/// What a case shows as the submitter's, or a lawyer's, follows who stored
/// it in the log, not the label its uploader chose; and a workflow form
/// left open does not undo a colleague's change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_follows_the_log_and_a_stale_form_changes_only_what_it_changed() {
    use custos::client::flows::{self, SubmitFile};
    use custos::client::workflow::{Change, Status};
    use custos::envelope::{CaseKey, ObjectKind};
    use custos::identity::codename::Codename;
    let v = TestVault::start().await;
    let files = [SubmitFile {
        path: v.file("statement.txt", b"the real account"),
        kind: ObjectKind::Statement,
    }];
    let case = flows::submit(&v.client(), &v.trust(), &[], &files, false)
        .await
        .unwrap();
    // A codename holder (perhaps a coercer) stores a "reply" of its own.
    let codename = Codename::parse(case.codename.expose()).unwrap();
    let holder = custos::client::submitter::open(&v.client(), &v.trust(), codename, &case.case_id)
        .await
        .unwrap();
    let fake_reply = [SubmitFile {
        path: v.file("fake-reply.txt", b"FAKE-REPLY: withdraw your complaint"),
        kind: ObjectKind::Reply,
    }];
    holder.add(&fake_reply, &v.tmp.path().join("journal")).await.unwrap();
    // A lawyer stores a "statement" with consent the submitter never gave.
    let opened = flows::open_case(&v.client(), &v.lawyer, &v.log, &case.case_id)
        .await
        .unwrap();
    let planted = SubmitFile {
        path: v.file("planted.txt", b"PLANTED-STATEMENT"),
        kind: ObjectKind::Statement,
    };
    let key: &CaseKey = &opened.case_key;
    flows::upload_encrypted(&v.client(), v.lawyer.signing_key(), &case.case_id, key, &[], &planted)
        .await
        .unwrap();

    let home = v.tmp.path().join("desk-home");
    let desk = DeskProcess::start(&v, &v.lawyer, &home);
    let session = super::Session::start(&desk).await;
    let page = session
        .get(&desk.at(&format!("/cases/{}", case.case_id)))
        .await
        .text()
        .await
        .unwrap();
    let thread = page
        .split("id=\"messages\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(thread.contains("FAKE-REPLY"), "{thread}");
    assert!(
        thread.contains("not shown as the submitter"),
        "the fake reply is flagged: {thread}"
    );
    assert!(!thread.contains("From Lawyer"), "not shown as a lawyer's: {thread}");
    let account = page
        .split("id=\"account\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    let planted_at = account.find("PLANTED-STATEMENT").expect("shown");
    let real_at = account.find("the real account").expect("shown");
    let warning = account.find("was not stored with the submitter").expect("a warning");
    assert!(
        warning < planted_at && real_at < warning,
        "only the planted statement is flagged: {account}"
    );

    // A stale workflow form: the page showed "new"; a colleague (here the
    // CLI's flow) sets "active"; the page's form adds a tag only.
    flows::case_change(
        &v.client(),
        &v.lawyer,
        &v.log,
        &case.case_id,
        Change {
            status: Some(Status::Active),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    let said = post(
        &session,
        &desk,
        format!("/cases/{}/workflow", case.case_id),
        vec![
            ("status", "new".into()),
            ("status_was", "new".into()),
            ("assign", "nobody".into()),
            ("assign_was", "nobody".into()),
            ("add_tags", "follow-up".into()),
        ],
    )
    .await;
    assert!(!said.starts_with(" failed"), "{said}");
    let work = flows::case_show(&v.client(), &v.lawyer, &v.log, &case.case_id)
        .await
        .unwrap();
    assert_eq!(work.workflow_status, Status::Active, "the colleague's change stands");
    assert_eq!(work.tags, vec!["follow-up".to_owned()]);

    // A note typed in a textarea (CRLF line ends) is kept, with LF ones.
    let said = post(
        &session,
        &desk,
        format!("/cases/{}/note", case.case_id),
        vec![("note", "first line\r\nsecond line".into())],
    )
    .await;
    assert!(!said.starts_with(" failed"), "{said}");
    let work = flows::case_show(&v.client(), &v.lawyer, &v.log, &case.case_id)
        .await
        .unwrap();
    assert_eq!(work.notes.last().unwrap().text, "first line\nsecond line");
}
