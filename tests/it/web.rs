//! The submitter's web page in a real headless Chromium against the real
//! server: a case submitted in each language is decrypted by the lawyer's
//! CLI with the same form fields and byte-identical files; a submitter comes
//! back with the codename; a duress codename made in the browser is flagged
//! to lawyers; an upload cut mid-file resumes; a file larger than the vault
//! takes is refused, named with the limit, before anything is sent (and
//! marked not sent when the vault's limit changed meanwhile); the page's
//! headers hold.

use crate::browser;
use crate::proxy;
use crate::util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use browser::{screenshot_dir, Browser};
use custos::identity::codename::Codename;
use proxy::CutProxy;
use serde_json::Value;
use util::TestVault;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// Generous: key derivation, the stamp and encryption run in JavaScript on a
/// loaded 2-core machine.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(180);

/// Run the real CLI against the vault as `identity`; returns its JSON.
pub(crate) fn cli(v: &TestVault, env: &[(&str, &str)], args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["--server", &v.url, "--json"])
        .args(args)
        .env("CUSTOS_CONFIG_DIR", v.tmp.path().join("cli-config"))
        .env_remove("CUSTOS_PASSPHRASE")
        .env_remove("CUSTOS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "custos {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The lawyer's identity as a file, for the CLI.
pub(crate) fn lawyer_file(v: &TestVault) -> PathBuf {
    let p = v.tmp.path().join("lawyer.identity");
    if !p.exists() {
        v.lawyer.save(&p, None).unwrap();
    }
    p
}

/// `custos get` as the lawyer; returns the folder and the JSON.
pub(crate) fn lawyer_get(v: &TestVault, case: &str) -> (PathBuf, Value) {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let out = v.tmp.path().join(format!("got-{n}-{case}"));
    let id = lawyer_file(v);
    let got = cli(
        v,
        &[],
        &[
            "--identity",
            id.to_str().unwrap(),
            "get",
            case,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    (out, got)
}

/// A case's status as the lawyer's `custos cases` shows it.
fn lawyer_status(v: &TestVault, case: &str) -> String {
    let id = lawyer_file(v);
    let listed = cli(v, &[], &["--identity", id.to_str().unwrap(), "cases"]);
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case_id"] == case)
        .unwrap_or_else(|| panic!("case {case} is not listed: {listed}"));
    mine["status"].as_str().unwrap().to_owned()
}

/// The decrypted file of `kind` named `name` in a `get` result.
pub(crate) fn file_of(got: &Value, kind: &str, name: &str) -> Vec<u8> {
    let f = got["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind && f["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no {kind} file {name} in {got}"));
    std::fs::read(f["path"].as_str().unwrap()).unwrap()
}

/// Download the receipt the page offers and check it as the CLI would:
/// every receipt verifies against the vault's log key, the first opens this
/// case, and one is there for each object of the case.
/// Have the vault push its checkpoints to a witness of its own.
async fn with_a_witness(v: &mut TestVault) {
    let witness = std::sync::Arc::new(
        custos::witness::Witness::open(
            &v.tmp.path().join("witness"),
            "witness.example/w1",
            std::slice::from_ref(&v.log),
        )
        .unwrap(),
    );
    let (listener, addr) = custos::api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(custos::witness::serve(
        witness.clone(),
        listener,
        custos::witness::LIMITS,
        std::future::pending(),
    ));
    v.stop().await;
    v.witnesses = vec![format!("http://{addr},{}", witness.verifier().vkey()).parse().unwrap()];
    v.serve().await;
}

async fn check_receipt_download(b: &Browser, v: &TestVault, case: &str) {
    let dir = v.tmp.path().join(format!("downloads-{case}"));
    std::fs::create_dir_all(&dir).unwrap();
    b.download_to(&dir).await;
    b.click("#receipt").await;
    let bytes = b.downloaded(&dir, &format!("custos-receipt-{case}.json")).await;
    let receipt: custos::client::flows::ReceiptFile = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(receipt.case_id, case);
    assert_eq!(receipt.vkey, v.log.vkey());
    let events: Vec<_> = receipt
        .receipts
        .iter()
        .map(|r| custos::audit::verify_receipt(r, &v.log).unwrap().0)
        .collect();
    assert_eq!(events[0].action, custos::custody::Action::CaseCreated);
    assert!(events.iter().all(|e| e.case == case));
    let stored = events
        .iter()
        .filter(|e| e.action == custos::custody::Action::ObjectStored)
        .count();
    let detail = v.client().case(v.lawyer.signing_key(), case).await.unwrap();
    assert_eq!(stored, detail.objects.len());
    assert_eq!(stored + 1, events.len());
    // With witnesses, the page had them vouch for the receipts: a checkpoint
    // they cosigned, proven to extend the receipts' last one.
    if let Some(w) = &v.witnesses.first() {
        let witnessed = receipt.witnessed.expect("the page's receipt is witnessed");
        let now = custos::custody::unix_now();
        assert!(w.verifier.cosigned_at(&witnessed.checkpoint, now).is_some());
        let cp = v.log.verify(&witnessed.checkpoint).unwrap();
        let last = v.log.verify(&receipt.receipts.last().unwrap().checkpoint).unwrap();
        let proof = custos::audit::decode_hashes(&witnessed.consistency).unwrap();
        custos::custody::merkle::verify_consistency(last.size, cp.size, &proof, &last.root, &cp.root).unwrap();
        let shown = b.text("#receipt-witnessed").await;
        assert!(shown.contains(w.verifier.name()), "{shown}");
    }
}

pub(crate) struct Answers {
    pub(crate) fields: Vec<(&'static str, String)>,
    pub(crate) consent: bool,
    pub(crate) duress: bool,
}

pub(crate) fn answers(lang: &str) -> Answers {
    let what = match lang {
        "ru" => "Меня задержали 12 марта у дома и били в отделе до утра.\nТребовали подписать признание.",
        "kk" => "Мені 12 наурызда үйдің жанында ұстап, таң атқанша бөлімде ұрды.",
        _ => "I was detained on 12 March outside my home and beaten at the station until morning.",
    };
    Answers {
        fields: vec![
            ("what_happened", what.to_owned()),
            ("when", format!("12–13 March ({lang})")),
            ("where", "ОВД, кабинет 3 / Room 3".to_owned()),
            ("who", "Two officers; one tall, \"Sasha\" <not sure>".to_owned()),
            ("methods", format!("beating & threats — {lang}")),
            ("injuries", "bruises on back; cannot sleep".to_owned()),
            ("medical_care", "city hospital no. 2, 14 March".to_owned()),
            ("witnesses", "cellmate".to_owned()),
        ],
        consent: lang != "kk",
        duress: lang == "kk",
    }
}

/// Fill the form in the open page with `a` and attach `files` to the
/// evidence and `medical` to the medical input.
pub(crate) async fn fill(b: &Browser, a: &Answers, evidence: &[&Path], medical: &[&Path]) {
    for (id, text) in &a.fields {
        b.type_into(&format!("#{id}"), text).await;
    }
    if a.consent {
        b.click("#consent").await;
    }
    if a.duress {
        b.click("#duress").await;
    }
    if !evidence.is_empty() {
        let paths: Vec<_> = evidence.iter().map(|p| p.to_str().unwrap()).collect();
        b.type_into("#evidence-files", &paths.join("\n")).await;
    }
    if !medical.is_empty() {
        let paths: Vec<_> = medical.iter().map(|p| p.to_str().unwrap()).collect();
        b.type_into("#medical-files", &paths.join("\n")).await;
    }
}

pub(crate) async fn submit_and_wait(b: &Browser) -> (String, String) {
    b.click("#send").await;
    b.wait_for(
        "return !document.getElementById('done').hidden",
        "the codename",
        SUBMIT_TIMEOUT,
    )
    .await;
    (b.text("#codename").await, b.text("#case-id").await)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_case_sent_from_the_page_in_each_language_decrypts_for_the_lawyer() {
    let mut v = TestVault::start().await;
    with_a_witness(&mut v).await;
    let b = Browser::start().await;
    let shots = screenshot_dir();
    let mut cases = Vec::new();
    for (n, lang) in ["en", "ru", "kk"].into_iter().enumerate() {
        b.goto(&format!("{}/{lang}/", v.url)).await;
        let strings = custos::web::strings(lang).unwrap();
        assert_eq!(b.text("h1").await, strings["title"], "{lang} page");
        // Every control has a label, and no tabindex reorders the focus
        // (it follows the reading order).
        assert_eq!(
            b.eval(
                "return [...document.querySelectorAll('input, textarea, select, button')]
                   .filter(e => e.tagName !== 'BUTTON' && e.labels.length === 0).map(e => e.id)"
            )
            .await,
            serde_json::json!([]),
            "{lang}: controls without a label"
        );
        assert_eq!(
            b.eval("return document.querySelectorAll('[tabindex]:not([tabindex=\"-1\"])').length")
                .await,
            0
        );
        b.screenshot(360, &shots.join(format!("{lang}-form-360.png"))).await;
        b.screenshot(1280, &shots.join(format!("{lang}-form-1280.png"))).await;

        let a = answers(lang);
        let evidence = v.file(&format!("photo-{lang}.jpg"), &util::bytes(n as u64, 300_000 + n * 7));
        let medical = v.file(&format!("справка-{lang}.pdf"), &util::bytes(10 + n as u64, 20_000));
        fill(&b, &a, &[&evidence], &[&medical]).await;
        assert_eq!(b.text("#evidence-files-chosen").await, format!("photo-{lang}.jpg"));
        assert_eq!(b.text("#medical-files-chosen").await, format!("справка-{lang}.pdf"));
        let (codename, case) = submit_and_wait(&b).await;
        b.screenshot(360, &shots.join(format!("{lang}-done-360.png"))).await;
        b.screenshot(1280, &shots.join(format!("{lang}-done-1280.png"))).await;
        let codename = Codename::parse(&codename).expect("the page shows a valid codename");
        check_receipt_download(&b, &v, &case).await;
        // Nothing of the visit is left in the browser's storage.
        assert_eq!(
            b.eval("return [localStorage.length, sessionStorage.length, document.cookie]")
                .await,
            serde_json::json!([0, 0, ""])
        );

        // The lawyer's CLI decrypts exactly what was typed and attached.
        let (_, got) = lawyer_get(&v, &case);
        let statement = file_of(&got, "statement", "statement.txt");
        assert_eq!(String::from_utf8(statement).unwrap(), a.fields[0].1);
        let form: Value = serde_json::from_slice(&file_of(&got, "form", "form.json")).unwrap();
        assert_eq!(form["format"], "custos-form-v1");
        assert_eq!(form["language"], lang);
        assert_eq!(form["consent_to_share"], a.consent);
        for (k, text) in &a.fields {
            assert_eq!(form["fields"][k], *text, "{lang}: field {k}");
        }
        assert_eq!(
            file_of(&got, "evidence", &format!("photo-{lang}.jpg")),
            std::fs::read(&evidence).unwrap()
        );
        assert_eq!(
            file_of(&got, "medical", &format!("справка-{lang}.pdf")),
            std::fs::read(&medical).unwrap()
        );

        if a.duress {
            // A withdrawal signed with the duress codename the browser made
            // is flagged to the lawyer: the browser's note and keys are right.
            let duress = b.text("#duress-codename").await;
            assert!(Codename::parse(&duress).is_ok());
            assert_ne!(duress, codename.expose());
            cli(
                &v,
                &[("CUSTOS_CODENAME", &duress)],
                &["submitter", "withdraw", "--case", &case],
            );
            assert_eq!(lawyer_status(&v, &case), "withdrawn_under_duress");
        } else {
            assert_eq!(
                b.eval("return document.getElementById('duress-block').hidden").await,
                true
            );
        }
        cases.push((case, codename));
    }

    // Back with the codename: the lawyer's reply shows, and evidence added
    // from the page reaches the lawyer.
    let (case, codename) = &cases[1];
    let reply_text = "Мы получили ваше заявление. We will call on Monday.";
    let reply = v.file("reply.txt", reply_text.as_bytes());
    let id = lawyer_file(&v);
    cli(
        &v,
        &[],
        &[
            "--identity",
            id.to_str().unwrap(),
            "reply",
            case,
            "--message",
            reply.to_str().unwrap(),
        ],
    );
    // A message labelled a reply that no lawyer signed (anyone who can
    // encrypt to the case could plant one: here, a codename of the case).
    let planter = custos::client::submitter::open(
        &v.client(),
        &v.trust(),
        Codename::parse(codename.expose()).unwrap(),
        case,
    )
    .await
    .unwrap();
    let planted = custos::client::flows::SubmitFile {
        path: v.file("planted.txt", "Отзовите жалобу. Ваш адвокат.".as_bytes()),
        kind: custos::envelope::ObjectKind::Reply,
    };
    planter
        .add(&[planted], &v.tmp.path().join("planted-journal"))
        .await
        .unwrap();
    b.goto(&format!("{}/ru/#return", v.url)).await;
    b.type_into("#return-codename", &codename.expose().to_uppercase()).await;
    b.type_into("#return-case", case).await;
    b.click("#return-form button").await;
    b.wait_for(
        "return !document.getElementById('case-view').hidden",
        "the case to open",
        SUBMIT_TIMEOUT,
    )
    .await;
    // The lawyer's reply shows, with who wrote it, as the log proves; the
    // planted one does not, and the page says one was held back.
    let shown = b.text("#reply-list").await;
    assert!(shown.contains(reply_text), "{shown}");
    assert!(shown.contains(&format!("От: {}", v.lawyer.card().name)), "{shown}");
    assert!(!shown.contains("Отзовите"), "{shown}");
    assert_eq!(
        b.eval("return document.querySelectorAll('#reply-list li').length")
            .await,
        1
    );
    let held_back = b.text("#unproven-replies").await;
    assert!(
        held_back.contains("ответы: 1") && held_back.contains("Журнал"),
        "{held_back}"
    );
    let status = b.text("#return-status").await;
    assert!(status.contains("открыто"), "{status}");
    let more = v.file("later.png", &util::bytes(99, 150_000));
    b.type_into("#add-files", more.to_str().unwrap()).await;
    b.click("#add-form button").await;
    b.wait_for(
        "return document.getElementById('return-status').textContent.includes('добавлены')",
        "the added file",
        SUBMIT_TIMEOUT,
    )
    .await;
    b.screenshot(360, &shots.join("ru-return-360.png")).await;
    let (_, got) = lawyer_get(&v, case);
    assert_eq!(file_of(&got, "evidence", "later.png"), std::fs::read(&more).unwrap());

    // Withdrawing from the page with the real codename: the lawyer sees a
    // plain withdrawal (the duress one, from the CLI, is checked above).
    b.click("#withdraw-confirm").await;
    b.click("#withdraw-form button").await;
    b.wait_for(
        "return document.getElementById('return-status').textContent.includes('отозвана')",
        "the withdrawal",
        SUBMIT_TIMEOUT,
    )
    .await;
    assert!(b.text("#return-status").await.contains("отозвано"));
    assert_eq!(lawyer_status(&v, case), "withdrawn");

    // A codename made by the Rust client opens its case in the page: the
    // two derive the same keys.
    let from_cli = v.submit(b"sent with the CLI", &[]).await;
    b.goto(&format!("{}/kk/#return", v.url)).await;
    b.type_into("#return-codename", from_cli.codename.expose()).await;
    b.type_into("#return-case", &from_cli.case_id).await;
    b.click("#return-form button").await;
    b.wait_for(
        "return !document.getElementById('case-view').hidden",
        "the CLI's case to open",
        SUBMIT_TIMEOUT,
    )
    .await;
    assert!(b.text("#object-list").await.contains("statement.txt"));

    // A wrong codename gets the one answer that does not tell whether the
    // case exists.
    b.goto(&format!("{}/en/#return", v.url)).await;
    let wrong = Codename::generate();
    b.type_into("#return-codename", wrong.expose()).await;
    b.type_into("#return-case", case).await;
    b.click("#return-form button").await;
    let no_such = custos::web::strings("en").unwrap()["no_such_case"].clone();
    for _ in 0..300 {
        if b.text("#return-error").await == no_such {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(b.text("#return-error").await, no_such);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_mid_file_resumes_where_it_stopped() {
    const SIZE: usize = 24 * 1024 * 1024;
    const PATCH: u64 = 4 * 1024 * 1024;
    let mut v = TestVault::start().await;
    // Cut once the browser has sent about 10 MiB: the statement and form are
    // long done, and the large file is in its third PATCH. The page signs
    // for the proxy's address, so the vault is told it is reached there.
    let proxy = CutProxy::ahead(10 * 1024 * 1024).await;
    v.stop().await;
    v.settings.public_urls = vec![proxy.url.clone()];
    v.serve().await;
    proxy.forward_to(v.url.trim_start_matches("http://"));
    let b = Browser::start().await;
    b.goto(&format!("{}/en/", proxy.url)).await;
    let video = v.file("video.mp4", &util::bytes(7, SIZE));
    let a = Answers {
        fields: vec![("what_happened", "They filmed it; here is the video.".to_owned())],
        consent: false,
        duress: false,
    };
    fill(&b, &a, &[&video], &[]).await;
    let (codename, case) = submit_and_wait(&b).await;
    // The codename was shown as soon as the case existed, before the upload.
    assert_eq!(
        b.eval("return document.getElementById('early-codename').textContent")
            .await,
        codename.as_str()
    );

    assert!(proxy.was_cut(), "the connection was cut during the upload");
    let offsets = proxy.offsets();
    eprintln!(
        "upload offsets (offset, after the cut): {offsets:?}; {} bytes sent through the proxy",
        proxy.sent()
    );
    let after: Vec<u64> = offsets.iter().filter(|(_, after)| *after).map(|(o, _)| *o).collect();
    assert!(!after.is_empty(), "the upload went on after the cut: {offsets:?}");
    assert!(
        after.iter().all(|&o| o >= PATCH),
        "after the cut the upload resumed from the server's offset, never from 0: {offsets:?}"
    );
    // A restart would resend everything before the cut on top of the file.
    let ciphertext = SIZE as u64 + SIZE as u64 / (64 * 1024) * 16 + 1024;
    assert!(
        proxy.sent() < ciphertext + 2 * PATCH,
        "sent {} bytes for a {ciphertext}-byte ciphertext: the upload was restarted",
        proxy.sent()
    );
    // The vault is reached at the proxy's address alone, the lawyer too.
    v.url = proxy.url.clone();
    let (_, got) = lawyer_get(&v, &case);
    assert_eq!(file_of(&got, "evidence", "video.mp4"), std::fs::read(&video).unwrap());
}

/// Tor Browser's "Safer" level turns the JavaScript JIT off. The page
/// sends a 2 MB photo from Chromium without its JIT, at the vault's default
/// stamp difficulty: the codename and the stamp are native work
/// (`crypto.subtle`: the v2 KDF and a v2 stamp, counted by the vault), and
/// the photo reaches the lawyer whole. The time from "send" to the
/// codename is printed (SECURITY.md and the README quote it); the test
/// does not judge it.
#[tokio::test(flavor = "multi_thread")]
async fn a_photo_sent_without_a_jit_reaches_the_lawyer_and_pays_a_native_stamp() {
    let mut v = TestVault::start().await;
    v.stop().await;
    v.stamp_bits = custos::stamp::DEFAULT_BITS;
    v.serve().await;
    let b = Browser::start_with(&["--js-flags=--jitless"]).await;
    b.goto(&format!("{}/en/", v.url)).await;
    // Without a JIT V8 has no WebAssembly: the flag took.
    assert_eq!(b.eval("return typeof WebAssembly").await, "undefined");
    // A valid JPEG of 2 MB: the plain fixture with comment segments of
    // random bytes after its start, which the page shows as a finding and
    // the submitter sends as is.
    let plain = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/web/test/fixtures/plain.jpg")).unwrap();
    let mut photo = plain[..2].to_vec();
    for n in 0..30 {
        photo.extend([0xff, 0xfe, 0xff, 0xff]);
        photo.extend(util::bytes(26 + n, 0xffff - 2));
    }
    photo.extend(&plain[2..]);
    let path = v.file("photo.jpg", &photo);
    let a = Answers {
        fields: vec![("what_happened", "Photos of the bruises, taken the next day.".to_owned())],
        consent: false,
        duress: false,
    };
    fill(&b, &a, &[&path], &[]).await;
    b.wait_for(
        "return document.querySelector('#evidence-files-meta fieldset.meta') !== null",
        "the photo's findings",
        Duration::from_secs(60),
    )
    .await;
    b.click("#evidence-files-meta-0-as_is").await;
    let started = std::time::Instant::now();
    let (_, case) = submit_and_wait(&b).await;
    let took = started.elapsed().as_secs_f64();
    // The page marks each stage: from "keys" to "create" is both
    // codenames' derivation and the stamp.
    let keys_and_stamp = b
        .eval(
            "const m = Object.fromEntries(performance.getEntriesByType('mark').map(e => [e.name, e.startTime]));
             return m['custos:create'] - m['custos:keys'];",
        )
        .await;
    eprintln!(
        "jitless: a 2 MB photo from \"send\" to the codename in {took:.1} s; codenames and stamp {:.2} s",
        keys_and_stamp.as_f64().unwrap() / 1000.0
    );
    let metrics = v.metrics().await;
    assert!(metrics.contains("custos_stamps_total{kind=\"v2\"} 1"), "{metrics}");
    let (_, got) = lawyer_get(&v, &case);
    assert_eq!(file_of(&got, "evidence", "photo.jpg"), photo);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_javascript_off_the_page_says_why_in_its_language() {
    let v = TestVault::start().await;
    let b = Browser::start_with(&["--blink-settings=scriptEnabled=false"]).await;
    for lang in ["ru", "kk", "en"] {
        b.goto(&format!("{}/{lang}/", v.url)).await;
        let strings = custos::web::strings(lang).unwrap();
        let shown = b.text("main").await;
        for key in ["noscript_title", "noscript_why", "noscript_how"] {
            assert!(shown.contains(&strings[key]), "{lang}: {key} is not shown: {shown}");
        }
        // The form, which cannot work without the script, is not shown.
        assert!(!shown.contains(&strings["send"]), "{lang}: {shown}");
        b.screenshot(360, &screenshot_dir().join(format!("{lang}-noscript-360.png")))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_vault_is_unreachable_the_page_says_so_in_its_language_and_keeps_the_text() {
    let mut v = TestVault::start().await;
    let b = Browser::start().await;
    b.goto(&format!("{}/ru/", v.url)).await;
    // The script shows the form once it has started; on a busy machine
    // that can come after the page has loaded.
    b.wait_for(
        "const f = document.getElementById('what_happened'); return !!f && f.offsetParent !== null",
        "the form",
        Duration::from_secs(30),
    )
    .await;
    v.stop().await;
    let text = "Меня били в отделе. Это не должно потеряться.";
    b.type_into("#what_happened", text).await;
    b.click("#send").await;
    let strings = custos::web::strings("ru").unwrap();
    let mut shown = String::new();
    for _ in 0..150 {
        shown = b.text("#form-error").await;
        if !shown.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(shown.starts_with(&strings["error_network"]), "{shown}");
    assert!(shown.contains(&strings["error_detail_label"]), "{shown}");
    // Back on the form, with what was typed still there.
    assert_eq!(
        b.eval("return document.getElementById('what_happened').value").await,
        text
    );
    assert_eq!(
        b.eval("return document.getElementById('submit-view').hidden").await,
        false
    );
}

/// A vault with limits small enough for a test to pass: objects of up to
/// 20 KiB of ciphertext, cases of up to 32 KiB.
const SMALL_UPLOAD: u64 = 20 * 1024;
const SMALL_CASE: u64 = 32 * 1024;

async fn small_vault() -> TestVault {
    let mut v = TestVault::start().await;
    v.stop().await;
    v.settings.max_upload_bytes = SMALL_UPLOAD;
    v.settings.max_case_bytes = SMALL_CASE;
    v.serve().await;
    v
}

/// A size as the page writes it in `lang`, for a whole number of `unit`s.
fn size_in(lang: &str, n: u64, unit: &str) -> String {
    custos::web::strings(lang).unwrap()[&format!("size_{unit}")].replace("{n}", &n.to_string())
}

/// The text of `css` once the page shows some, within the submit timeout.
async fn text_when_shown(b: &Browser, css: &str) -> String {
    let deadline = std::time::Instant::now() + SUBMIT_TIMEOUT;
    loop {
        let shown = b.text(css).await;
        if !shown.is_empty() {
            return shown;
        }
        if std::time::Instant::now() > deadline {
            let page = b
                .eval("return [...document.querySelectorAll('.error, #stage')].map(e => `${e.id}: ${e.textContent}`)")
                .await;
            panic!("{css} shows nothing; the page has {page}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The page's rows in the list `css`: each row's text, and whether it
/// still has a progress bar.
async fn rows(b: &Browser, css: &str) -> Vec<(String, bool)> {
    let got = b
        .eval(&format!(
            "return [...document.querySelectorAll('{css} li')].map(li => [li.textContent, !!li.querySelector('progress')])"
        ))
        .await;
    serde_json::from_value(got).unwrap()
}

/// The cases the intake lawyer holds: every case the vault has.
async fn case_count(v: &TestVault) -> usize {
    v.client().cases(v.lawyer.signing_key()).await.unwrap().len()
}

#[tokio::test]
async fn the_intake_parameters_name_the_vaults_size_limits() {
    let v = small_vault().await;
    let raw: Value = reqwest::get(format!("{}/v1/intake", v.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["max_upload_bytes"], SMALL_UPLOAD);
    assert_eq!(raw["max_case_bytes"], SMALL_CASE);
    let params = v.client().intake().await.unwrap();
    assert_eq!(params.max_upload_bytes, Some(SMALL_UPLOAD));
    assert_eq!(params.max_case_bytes, Some(SMALL_CASE));
    // The same limit tus discovery gives.
    let options = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/v1/cases/x/uploads", v.url))
        .send()
        .await
        .unwrap();
    assert_eq!(options.headers()["tus-max-size"], SMALL_UPLOAD.to_string().as_str());
    // An older vault's parameters, without the limits, still parse.
    let mut older = raw.clone();
    older.as_object_mut().unwrap().remove("max_upload_bytes");
    older.as_object_mut().unwrap().remove("max_case_bytes");
    let older: custos::wire::IntakeParams = serde_json::from_value(older).unwrap();
    assert_eq!((older.max_upload_bytes, older.max_case_bytes), (None, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_larger_than_the_vault_takes_is_refused_before_anything_is_sent() {
    let v = small_vault().await;
    let b = Browser::start().await;
    let events = v.events().await.len();

    // Russian: one file larger than one object may be.
    b.goto(&format!("{}/ru/", v.url)).await;
    let ru = custos::web::strings("ru").unwrap();
    let text = "Меня били в отделе. Видео допроса прилагаю.";
    let small = v.file("справка.pdf", &util::bytes(1, 2_000));
    let video = v.file("видео-допроса.mp4", &util::bytes(2, 40 * 1024));
    let a = Answers {
        fields: vec![("what_happened", text.to_owned()), ("where", "ОВД №3".to_owned())],
        consent: false,
        duress: false,
    };
    fill(&b, &a, &[&video], &[&small]).await;
    b.click("#send").await;
    let shown = text_when_shown(&b, "#form-error").await;
    let file = format!("видео-допроса.mp4 ({})", size_in("ru", 40, "kb"));
    let limit = size_in("ru", 20, "kb");
    assert!(
        shown.contains(&file),
        "the message names the file and its size: {shown}"
    );
    assert!(shown.contains(&limit), "the message names the vault's limit: {shown}");
    assert!(
        shown.starts_with(ru["error_file_too_large"].split(':').next().unwrap()),
        "{shown}"
    );
    assert!(shown.ends_with(&ru["form_kept"]), "{shown}");
    // The refused file's row says not sent, with no bar; the file that fits
    // is not listed as refused.
    assert_eq!(
        rows(&b, "#form-files").await,
        [(format!("видео-допроса.mp4{}", ru["row_not_sent"]), false)]
    );
    // No key was made, nothing was encrypted: the page never got past
    // reading the intake parameters.
    assert_eq!(
        b.eval("return document.getElementById('stage').textContent").await,
        ru["stage_intake"]
    );
    // Back on the form, with what was typed and chosen still there.
    assert_eq!(
        b.eval("return document.getElementById('submit-view').hidden").await,
        false
    );
    assert_eq!(
        b.eval(
            "const $ = (id) => document.getElementById(id);
             return [$('what_happened').value, $('where').value, $('evidence-files').files.length]"
        )
        .await,
        serde_json::json!([text, "ОВД №3", 1])
    );
    // The vault saw no case, no upload, no log entry.
    assert_eq!(case_count(&v).await, 0);
    assert_eq!(v.events().await.len(), events);
    b.screenshot(360, &screenshot_dir().join("ru-too-large-360.png")).await;

    // Kazakh: three files that fit one by one but not in one case.
    b.goto(&format!("{}/kk/", v.url)).await;
    let kk = custos::web::strings("kk").unwrap();
    let parts: Vec<PathBuf> = (1..=3)
        .map(|n| v.file(&format!("сурет-{n}.jpg"), &util::bytes(10 + n, 12 * 1024)))
        .collect();
    let a = Answers {
        fields: vec![("what_happened", "Мені бөлімде ұрды.".to_owned())],
        consent: false,
        duress: false,
    };
    let refs: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    fill(&b, &a, &refs, &[]).await;
    b.click("#send").await;
    let shown = text_when_shown(&b, "#form-error").await;
    assert!(
        shown.contains(&size_in("kk", 32, "kb")),
        "the message names the case limit: {shown}"
    );
    assert!(
        shown.starts_with(kk["error_case_too_large"].split(':').next().unwrap()),
        "{shown}"
    );
    let listed = rows(&b, "#form-files").await;
    for n in 1..=3 {
        assert!(
            listed.contains(&(format!("сурет-{n}.jpg{}", kk["row_not_sent"]), false)),
            "{listed:?}"
        );
    }
    assert_eq!(case_count(&v).await, 0);
    assert_eq!(v.events().await.len(), events);

    // With one small file instead, what was typed is sent as it was.
    b.eval("document.getElementById('evidence-files').value = ''; return null")
        .await;
    let one = v.file("сурет.jpg", &util::bytes(20, 4 * 1024));
    b.type_into("#evidence-files", one.to_str().unwrap()).await;
    assert!(
        rows(&b, "#form-files").await.is_empty(),
        "a new choice clears the refusal"
    );
    let (codename, case) = submit_and_wait(&b).await;
    let (_, got) = lawyer_get(&v, &case);
    assert_eq!(
        String::from_utf8(file_of(&got, "statement", "statement.txt")).unwrap(),
        "Мені бөлімде ұрды."
    );
    assert_eq!(file_of(&got, "evidence", "сурет.jpg"), std::fs::read(&one).unwrap());

    // Adding a file too large, back with the codename: refused the same way.
    b.goto(&format!("{}/kk/#return", v.url)).await;
    b.type_into("#return-codename", &codename).await;
    b.type_into("#return-case", &case).await;
    b.click("#return-form button").await;
    b.wait_for(
        "return !document.getElementById('case-view').hidden",
        "the case to open",
        SUBMIT_TIMEOUT,
    )
    .await;
    let events = v.events().await.len();
    b.type_into("#add-files", video.to_str().unwrap()).await;
    b.click("#add-form button").await;
    let shown = text_when_shown(&b, "#return-error").await;
    assert!(
        shown.contains(&format!("видео-допроса.mp4 ({})", size_in("kk", 40, "kb"))),
        "{shown}"
    );
    assert!(shown.contains(&size_in("kk", 20, "kb")), "{shown}");
    assert_eq!(
        rows(&b, "#add-progress").await,
        [(format!("видео-допроса.mp4{}", kk["row_not_sent"]), false)]
    );
    assert_eq!(v.events().await.len(), events);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_the_vault_refuses_mid_submission_is_marked_not_sent() {
    let v = small_vault().await;
    let b = Browser::start().await;
    b.goto(&format!("{}/en/", v.url)).await;
    // The vault's limits changed after the page read them: the first
    // intake answer the page sees claims far larger ones.
    b.eval(
        "const real = window.fetch; let first = true;
         window.fetch = async (url, init) => {
           const resp = await real(url, init);
           if (!first || !String(url).endsWith('/v1/intake')) return resp;
           first = false;
           const params = await resp.json();
           params.max_upload_bytes = 2 ** 30;
           params.max_case_bytes = 2 ** 30;
           return new Response(JSON.stringify(params), { headers: { 'content-type': 'application/json' } });
         };
         return null",
    )
    .await;
    let en = custos::web::strings("en").unwrap();
    let audio = v.file("interview.wav", &util::bytes(3, 40 * 1024));
    let after = v.file("after.jpg", &util::bytes(4, 1_000));
    let a = Answers {
        fields: vec![("what_happened", "They recorded the interrogation.".to_owned())],
        consent: false,
        duress: false,
    };
    fill(&b, &a, &[&audio, &after], &[]).await;
    b.click("#send").await;
    let shown = text_when_shown(&b, "#progress-error").await;
    let file = format!("interview.wav ({})", size_in("en", 40, "kb"));
    assert!(shown.contains(&file), "the message names the file: {shown}");
    assert!(
        shown.contains(&format!("files of up to {} each", size_in("en", 20, "kb"))),
        "the message names the vault's limit now: {shown}"
    );
    // The statement and the form were sent; the refused file and the one
    // after it were not, and no row says otherwise.
    let listed = rows(&b, "#file-progress").await;
    let not_sent = &en["row_not_sent"];
    assert_eq!(
        listed,
        [
            (format!("{}100%", en["item_statement"]), true),
            (format!("{}100%", en["item_form"]), true),
            (format!("interview.wav{not_sent}"), false),
            (format!("after.jpg{not_sent}"), false),
        ]
    );
    // The case is open, its codename on screen, and holds only what was sent.
    assert!(!b.text("#early-codename").await.is_empty());
    let case = b.text("#early-case").await;
    let detail = v.client().case(v.lawyer.signing_key(), &case).await.unwrap();
    assert_eq!(detail.objects.len(), 2);
    b.screenshot(360, &screenshot_dir().join("en-refused-360.png")).await;
}

#[tokio::test]
async fn the_page_sends_strict_headers_in_each_language() {
    let v = TestVault::start().await;
    let http = reqwest::Client::new();
    for (path, lang, accept) in [
        ("/", "ru", Some("ru-RU,ru;q=0.9,en;q=0.5")),
        ("/", "kk", Some("kk,ru;q=0.8")),
        ("/", "en", Some("de-DE")),
        ("/", "en", None),
        ("/ru/", "ru", None),
        ("/kk/", "kk", Some("en")),
        ("/en/", "en", Some("ru")),
    ] {
        let mut rb = http.get(format!("{}{path}", v.url));
        if let Some(a) = accept {
            rb = rb.header("accept-language", a);
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let h = resp.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: CSP lacks {directive}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.get("set-cookie").is_none());
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        let body = resp.text().await.unwrap();
        assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{path} {accept:?}");
        let strings = custos::web::strings(lang).unwrap();
        // With scripts off, the page says why it needs them, in its language.
        let noscript = &body[body.find("<noscript>").unwrap()..body.find("</noscript>").unwrap()];
        assert!(noscript.contains(&strings["noscript_why"]), "{lang}");
        // Nothing is loaded from elsewhere.
        assert!(!body.contains("http://") && !body.contains("https://"), "{path}");
    }
    for (path, ty) in [("/assets/app.js", "text/javascript"), ("/assets/style.css", "text/css")] {
        let resp = http.get(format!("{}{path}", v.url)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with(ty));
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert!(resp.headers().contains_key("content-security-policy"));
    }
    let resp = http.get(format!("{}/de/", v.url)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}
