//! Disclosures: a lawyer gives chosen files of a case to an outside body,
//! through the real binary; the recipient verifies the bundle offline with
//! the log key (and their own key), any changed byte or file swapped in
//! from another case fails, and nothing of the files not disclosed is in
//! it. Then, in process: the summary quotes the form under the Istanbul
//! Protocol's headings in the lawyer's language, a card's holder verifies
//! with their custos identity, and the vault refuses anyone but the
//! case's lawyers.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::cli::{start_server, Env};
use crate::util::{self, copy_dir, files_under, TestVault};
use custos::bundle::disclosure::{self, Language};
use custos::bundle::Policy;
use custos::client::flows::{self, DiscloseOptions, Recipient, SubmitFile};
use custos::custody::{Action, Event};
use custos::envelope::{decrypt_capturing, CaseKey, Label, ObjectKind};
use custos::identity::Identity;
use custos::wire::{CommitUpload, CreateCase, DiscloseBody};

/// A court's age key, as `age-keygen` writes it, in a file only its owner
/// may read; returns the key and its recipient.
pub(crate) fn court_key(path: &Path) -> (age::x25519::Identity, String) {
    use age::secrecy::ExposeSecret;
    let key = age::x25519::Identity::generate();
    let recipient = key.to_public().to_string();
    let text = format!(
        "# created: 2026-12-01T10:00:00Z\n# public key: {recipient}\n{}\n",
        key.to_string().expose_secret()
    );
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (key, recipient)
}

/// Every byte of every file under `dir`, each with its path.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `custos --json verify` of `dir`, with `extra` arguments: whether it
/// passed, and its report.
pub(crate) fn verify(env: &Env, dir: &str, vkey: &str, extra: &[&str]) -> (bool, serde_json::Value) {
    let mut args = vec!["--json", "verify", dir, "--vkey", vkey];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("verify printed no report: {}", String::from_utf8_lossy(&out.stderr)));
    let log_only = extra.contains(&"--log-only") && report["status"] == "files_not_checked";
    assert_eq!(out.status.success(), report["passed"] == true || log_only, "{report}");
    (out.status.success(), report)
}

/// The check a tampered copy fails.
pub(crate) fn failing_check(env: &Env, dir: &str, vkey: &str, extra: &[&str]) -> String {
    let (passed, report) = verify(env, dir, vkey, extra);
    assert!(!passed, "a tampered bundle verified: {dir}");
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["passed"] == false)
        .unwrap()["check"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The object ids the report lists.
fn held(report: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// A copy of bundle `from` at `to` (a new folder name under the env).
pub(crate) fn copy(env: &Env, from: &str, to: &str) -> String {
    copy_dir(&env.path(from), &env.path(to));
    to.to_owned()
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = at.min(b.len() - 1);
    b[at] ^= 1;
    std::fs::write(path, b).unwrap();
}

/// The file keys (base64) of an object and of its label, as the case's
/// lawyer can learn them from an export of the case: what a bundle that
/// leaves the object out must not carry.
pub(crate) fn keys_of(exported: &Path, lawyer: &Identity, object: &str) -> (String, String) {
    let events: Vec<Event> = files_under(&exported.join("events"))
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    let creation: CreateCase = events
        .iter()
        .find(|e| e.action == Action::CaseCreated)
        .and_then(|e| e.signed_body())
        .unwrap();
    let envelope = creation.envelopes.iter().find(|e| e.key_id == lawyer.key_id()).unwrap();
    let case_key = CaseKey::open(&B64.decode(&envelope.envelope).unwrap(), lawyer.age_identity()).unwrap();
    let ciphertext = std::fs::read(exported.join("objects").join(object)).unwrap();
    let object_key = decrypt_capturing(&ciphertext[..], std::io::sink(), case_key.identity()).unwrap();
    let commit: CommitUpload = events
        .iter()
        .find(|e| e.action == Action::ObjectStored && e.objects == [object.to_owned()])
        .and_then(|e| e.signed_body())
        .unwrap();
    let (_, label_key) = Label::open_capturing(&B64.decode(&commit.label).unwrap(), &case_key).unwrap();
    (object_key.to_base64().to_string(), label_key.to_base64().to_string())
}

#[test]
fn a_lawyer_discloses_two_of_three_files_and_the_recipient_checks_exactly_those() {
    let mut env = Env::new();
    let vkey = env.identities_and_vault(&["admin", "lawyer", "auditor"]);
    let (_server, url, _) = start_server(&env, &env.path("vault"));
    env.server = url;
    env.register("lawyer");
    env.register("auditor");
    let (court, court_recipient) = court_key(&env.path("court.key"));

    // One case with a statement and three files; a second case with one.
    std::fs::write(env.path("statement.txt"), "They held me for three days.\n").unwrap();
    let photo = util::bytes(1, 90_000);
    let log_pdf = util::bytes(2, 20_000);
    std::fs::write(env.path("bruises-photo.jpg"), &photo).unwrap();
    std::fs::write(env.path("detention-log.pdf"), &log_pdf).unwrap();
    std::fs::write(env.path("not-for-court.txt"), "THIRD-FILE-MARKER: names of witnesses\n").unwrap();
    let case = env.json(&[
        "submit",
        "--statement",
        "statement.txt",
        "--evidence",
        "bruises-photo.jpg",
        "--evidence",
        "detention-log.pdf",
        "--medical",
        "not-for-court.txt",
    ])["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(env.path("other.txt"), "another case's exhibit\n").unwrap();
    std::fs::write(env.path("other-statement.txt"), "Another complaint.\n").unwrap();
    let other_case = env.json(&[
        "submit",
        "--statement",
        "other-statement.txt",
        "--evidence",
        "other.txt",
    ])["case_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The lawyer reads the case and learns the objects' ids.
    let got = env.json(&["--identity", "lawyer", "get", &case, "--out", "got"]);
    let ids = object_ids(&got);
    let (photo_id, log_id, third_id) = (
        ids["bruises-photo.jpg"].clone(),
        ids["detention-log.pdf"].clone(),
        ids["not-for-court.txt"].clone(),
    );
    let mut two = vec![photo_id.clone(), log_id.clone()];
    two.sort();

    // Nothing is disclosed by default.
    let out = env.run(&[
        "--identity",
        "lawyer",
        "disclose",
        &case,
        "--to",
        &court_recipient,
        "--out",
        "all",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--files") && err.contains("--statement"),
        "{err}"
    );
    assert!(!env.path("all").exists());

    // Two of the three files, encrypted to the court.
    let done = env.json(&[
        "--identity",
        "lawyer",
        "disclose",
        &case,
        "--to",
        &court_recipient,
        "--files",
        &photo_id,
        &log_id,
        "--out",
        "to-court",
    ]);
    assert_eq!(done["files"].as_array().unwrap().len(), 2, "{done}");
    // The lawyer cannot open files sealed to the court: their own check
    // says so rather than pass.
    assert_eq!(done["verification"]["status"], "files_not_checked", "{done}");
    for name in [
        "files/bruises-photo.jpg.age",
        "files/detention-log.pdf.age",
        "summary.html.age",
    ] {
        assert!(env.path("to-court").join(name).is_file(), "{name}");
    }
    // Standard age files the court opens with its own key and any age tool.
    let mut opened = Vec::new();
    age::Decryptor::new(std::fs::File::open(env.path("to-court/files/bruises-photo.jpg.age")).unwrap())
        .unwrap()
        .decrypt(std::iter::once(&court as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut opened)
        .unwrap();
    assert_eq!(opened, photo);

    // The court verifies offline, with its key: exactly those two objects.
    let (passed, report) = verify(&env, "to-court", &vkey, &["--identity", "court.key"]);
    assert!(passed, "{report}");
    assert_eq!(report["contents_checked"], true, "{report}");
    assert_eq!(held(&report), two);
    let human = env.ok(&["verify", "to-court", "--vkey", &vkey, "--identity", "court.key"]);
    assert!(
        human.contains(&photo_id) && human.contains("VERIFIED: each file"),
        "{human}"
    );
    // Who the lawyer is rests on the log key: the bundle says so, and
    // verify prints the signer's key id to compare with their card.
    let lawyer_key = Identity::load(&env.path("lawyer"), || unreachable!()).unwrap().key_id();
    assert!(human.contains(&format!("signed by:  key {lawyer_key}")), "{human}");
    let readme = std::fs::read_to_string(env.path("to-court/README.txt")).unwrap();
    assert!(
        readme.contains("who the lawyer is") && readme.contains("custos audit"),
        "{readme}"
    );
    // Without the court's key the files, their names and the summary are
    // not checked: that is no pass, and the verdict says why in one line.
    let out = env.run(&["verify", "to-court", "--vkey", &vkey]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("the files were not checked: give the recipient's key with --identity"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("bruises-photo.jpg"),
        "names not checked are not paired with object ids: {stdout}"
    );
    let (passed, report) = verify(&env, "to-court", &vkey, &[]);
    assert!(!passed, "{report}");
    assert_eq!(report["status"], "files_not_checked", "{report}");
    assert_eq!(report["contents_checked"], false);
    // Asked for explicitly, the log-only check passes, and says what it is.
    let (passed, report) = verify(&env, "to-court", &vkey, &["--log-only"]);
    assert!(passed, "{report}");
    assert_eq!(report["status"], "files_not_checked", "{report}");
    assert_eq!(held(&report), two);
    assert!(report["objects"][0]["file"].is_null(), "{report}");
    let human = env.ok(&["verify", "to-court", "--vkey", &vkey, "--log-only"]);
    assert!(human.contains("LOG ONLY"), "{human}");
    assert!(!human.contains("bruises-photo.jpg"), "{human}");
    // Someone else's key is not the recipient's.
    let _ = court_key(&env.path("stranger.key"));
    assert_eq!(
        failing_check(&env, "to-court", &vkey, &["--identity", "stranger.key"]),
        "labels"
    );

    // The same two, in the clear, with the statement, summarised in Russian.
    env.ok(&[
        "--identity",
        "lawyer",
        "disclose",
        &case,
        "--to",
        &court_recipient,
        "--files",
        &photo_id,
        &log_id,
        "--statement",
        "--plaintext",
        "--lang",
        "ru",
        "--out",
        "filing",
    ]);
    assert_eq!(
        std::fs::read(env.path("filing/files/bruises-photo.jpg")).unwrap(),
        photo
    );
    let (passed, report) = verify(&env, "filing", &vkey, &[]);
    assert!(passed, "{report}");
    assert_eq!(report["contents_checked"], true);
    let mut three = two.clone();
    three.push(ids["statement.txt"].clone());
    three.sort();
    assert_eq!(held(&report), three);
    let summary = std::fs::read_to_string(env.path("filing/summary.html")).unwrap();
    for shown in [
        "<html lang=\"ru\">",
        "Рассказ о событиях",
        "They held me for three days.",
        "Доказательства",
        photo_id.as_str(),
        "Квитанция об этом раскрытии",
    ] {
        assert!(summary.contains(shown), "the summary lacks {shown:?}");
    }
    assert!(!summary.contains("<script"), "no scripts");

    // One changed byte of a disclosed file fails, in the clear or sealed.
    let bad = copy(&env, "filing", "bad-plain");
    flip_byte(&env.path(&bad).join("files/detention-log.pdf"), 5000);
    assert_eq!(failing_check(&env, &bad, &vkey, &[]), "contents");
    let bad = copy(&env, "to-court", "bad-sealed");
    flip_byte(&env.path(&bad).join("files/detention-log.pdf.age"), 5000);
    assert_eq!(
        failing_check(&env, &bad, &vkey, &["--identity", "court.key"]),
        "contents"
    );
    // And so does a changed summary, manifest or key file.
    for (file, check) in [
        ("summary.html", "summary"),
        ("manifest.json", "files"),
        (&*format!("keys/{photo_id}.json"), "labels"),
    ] {
        let bad = copy(&env, "filing", &format!("bad-{}", file.replace('/', "-")));
        flip_byte(&env.path(&bad).join(file), 40);
        let failed = failing_check(&env, &bad, &vkey, &[]);
        assert!(failed == check || failed == "manifest", "{file}: {failed}");
    }

    // A file of another case, with its ciphertext and keys, swapped in.
    let other_id = env.json(&["--identity", "lawyer", "get", &other_case, "--out", "got-other"])["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "evidence")
        .unwrap()["object_id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(&[
        "--identity",
        "lawyer",
        "disclose",
        &other_case,
        "--to",
        &court_recipient,
        "--files",
        &other_id,
        "--plaintext",
        "--out",
        "other-filing",
    ]);
    let swapped = copy(&env, "filing", "swapped");
    let (s, o) = (env.path(&swapped), env.path("other-filing"));
    std::fs::remove_file(s.join(format!("objects/{log_id}"))).unwrap();
    std::fs::remove_file(s.join(format!("keys/{log_id}.json"))).unwrap();
    std::fs::remove_file(s.join("files/detention-log.pdf")).unwrap();
    std::fs::copy(
        o.join(format!("objects/{other_id}")),
        s.join(format!("objects/{other_id}")),
    )
    .unwrap();
    std::fs::copy(
        o.join(format!("keys/{other_id}.json")),
        s.join(format!("keys/{other_id}.json")),
    )
    .unwrap();
    std::fs::copy(o.join("files/other.txt"), s.join("files/other.txt")).unwrap();
    let failed = failing_check(&env, &swapped, &vkey, &[]);
    assert!(failed == "objects" || failed == "files", "{failed}");
    // Even with its object_stored entry and proof brought along.
    for sub in ["events", "proofs"] {
        for f in std::fs::read_dir(o.join(sub)).unwrap() {
            let f = f.unwrap();
            if !s.join(sub).join(f.file_name()).exists() {
                std::fs::copy(f.path(), s.join(sub).join(f.file_name())).unwrap();
            }
        }
    }
    assert!(!verify(&env, &swapped, &vkey, &[]).0);

    // The third file is in neither bundle: not its ciphertext, its keys,
    // its id, its name or its content.
    env.ok(&["--identity", "auditor", "export", &case, "--out", "exported"]);
    let lawyer = Identity::load(&env.path("lawyer"), || unreachable!()).unwrap();
    let (object_key, label_key) = keys_of(&env.path("exported"), &lawyer, &third_id);
    let ciphertext = std::fs::read(env.path("exported/objects").join(&third_id)).unwrap();
    for bundle in ["to-court", "filing"] {
        let bytes = all_bytes(&env.path(bundle));
        let keys = std::fs::read_dir(env.path(bundle).join("keys")).unwrap().count();
        assert_eq!(keys, if bundle == "filing" { 3 } else { 2 });
        for (path, b) in &bytes {
            for needle in [
                third_id.as_bytes(),
                b"not-for-court",
                b"THIRD-FILE-MARKER",
                object_key.as_bytes(),
                label_key.as_bytes(),
                &ciphertext[..64],
                &ciphertext[ciphertext.len() - 64..],
            ] {
                assert!(
                    !contains(b, needle),
                    "{} holds part of the file not disclosed",
                    path.display()
                );
            }
        }
    }

    // The audit checks the disclosures like every entry, and counts them.
    let audit = env.json(&["--identity", "auditor", "audit"]);
    assert_eq!(audit["failure"], serde_json::Value::Null, "{audit}");
    assert_eq!(audit["actions"]["case_disclosed"], 3, "{audit}");
}

/// A form's answers under the Istanbul Protocol's headings, in Kazakh; a
/// card's holder verifying with their custos identity; and the vault
/// refusing a disclosure by anyone but the case's lawyers.
#[tokio::test]
async fn the_summary_quotes_the_form_and_only_the_cases_lawyers_disclose() {
    let v = TestVault::start().await;
    let form = serde_json::json!({
        "format": "custos-form-v1",
        "language": "kk",
        "fields": {
            "what_happened": "Мені бөлімшеде ұрды.\nЕкі күн ұстады.",
            "when": "3 мамыр",
            "where": "<аудандық бөлім>",
            "who": "",
            "methods": "ұрып-соғу",
            "injuries": "көгерулер",
            "medical_care": "",
            "witnesses": "",
        },
        "consent_to_share": true,
    });
    let files = vec![
        SubmitFile {
            path: v.file("statement.txt", "Мені бөлімшеде ұрды.".as_bytes()),
            kind: ObjectKind::Statement,
        },
        SubmitFile {
            path: v.file("form.json", &serde_json::to_vec_pretty(&form).unwrap()),
            kind: ObjectKind::Form,
        },
        SubmitFile {
            path: v.file("photo.jpg", &util::bytes(3, 5000)),
            kind: ObjectKind::Evidence,
        },
    ];
    let sub = flows::submit(&v.client(), &v.trust(), &[], &files, false)
        .await
        .unwrap();
    let case = sub.case_id.clone();

    // To a card: the event names its key id, and its holder verifies with
    // their custos identity.
    let ombudsman = Identity::generate("Ombudsman").unwrap();
    let card = v.file("ombudsman.pub", format!("{}\n", ombudsman.card()).as_bytes());
    let to = Recipient::from_arg(card.to_str().unwrap()).unwrap();
    assert_eq!(to.key_id, Some(ombudsman.key_id()));
    let out = v.tmp.path().join("to-ombudsman");
    let options = DiscloseOptions {
        to,
        files: vec![],
        statement: true,
        confirmed: false,
        announce: None,
        plaintext: false,
        clean: false,
        language: Language::Kk,
    };
    let done = flows::disclose(&v.client(), &v.lawyer, &v.log, &case, &out, options)
        .await
        .unwrap();
    let kinds: Vec<ObjectKind> = done.files.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [ObjectKind::Statement, ObjectKind::Form],
        "--statement takes both"
    );
    let (report, verified) = disclosure::verify_dir(&out, &v.log, &Policy::default(), Some(ombudsman.age_identity()));
    assert!(report.passed && report.contents_checked, "{report:?}");
    let verified = verified.unwrap();
    assert_eq!(
        verified.disclosure.recipient_key_id,
        Some(ombudsman.key_id()),
        "the signed disclosure names the card"
    );
    assert_eq!(verified.lawyer.name, "Lawyer One");

    // The sealed summary, opened with the card holder's key.
    let mut summary = String::new();
    custos::envelope::open_with(
        std::fs::File::open(out.join("summary.html.age")).unwrap(),
        ombudsman.age_identity(),
    )
    .unwrap()
    .read_to_string(&mut summary)
    .unwrap();
    for shown in [
        "<html lang=\"kk\">",
        "Оқиға туралы баяндау",
        "Мені бөлімшеде ұрды.<br>\nЕкі күн ұстады.",
        "Қашан",
        "3 мамыр",
        "&lt;аудандық бөлім&gt;",
        "Арыз берушіге не істелді",
        "Көрсетілмеген.",
        "Иә",
        "нысан жауаптары",
    ] {
        assert!(summary.contains(shown), "the summary lacks {shown:?}:\n{summary}");
    }
    assert!(!summary.contains("<аудандық"), "answers are escaped");

    // The vault: codename holder and auditor 403, admin 404 (the case is
    // not theirs to see), a lawyer naming another case's object 404.
    let client = v.client();
    let body = DiscloseBody {
        recipient: ombudsman.card().recipient,
        recipient_key_id: None,
        objects: vec![done.files[0].object_id.clone()],
        plaintext: false,
        cleaned: Vec::new(),
    };
    let keys = sub.codename.derive(util::ORIGIN);
    for (key, code) in [
        (keys.signing_key(), "forbidden"),
        (v.auditor.signing_key(), "forbidden"),
        (v.admin.signing_key(), "not_found"),
    ] {
        let refused = client.disclose(key, &case, &body).await.unwrap_err();
        assert_eq!(refused.code(), Some(code), "{refused}");
    }
    let other = v.submit(b"another case", &[("x.bin", util::bytes(4, 100))]).await;
    let their = flows::get_case(&client, &v.lawyer, &v.log, &other.case_id, &v.tmp.path().join("x"))
        .await
        .unwrap();
    let foreign = DiscloseBody {
        objects: vec![their.files[0].object_id.clone()],
        ..body.clone()
    };
    let refused = client
        .disclose(v.lawyer.signing_key(), &case, &foreign)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("not_found"), "{refused}");
    // A body out of its one form: refused before it is logged.
    let unsorted = DiscloseBody {
        objects: vec!["f".repeat(64), "0".repeat(64)],
        ..body.clone()
    };
    let refused = client
        .disclose(v.lawyer.signing_key(), &case, &unsorted)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("bad_request"), "{refused}");
    // A cleaned copy of an object the disclosure does not name: refused too.
    let stray = DiscloseBody {
        cleaned: vec![custos::wire::CleanedCopy {
            object: "f".repeat(64),
            sha256: "0".repeat(64),
        }],
        ..body.clone()
    };
    let refused = client
        .disclose(v.lawyer.signing_key(), &case, &stray)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("bad_request"), "{refused}");

    let audit = flows::audit(&client, &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(audit.failure, None);
    assert_eq!(audit.actions.get("case_disclosed"), Some(&1));
}
/// Labels are the submitter's words: a name of dots and spaces, a
/// right-to-left override that turns "gpj.exe" into "exe.jpg" on screen,
/// a Cyrillic name longer than 255 bytes, two names equal up to case.
/// Each is disclosed under a safe name, sealed or in the clear, every
/// disclosure logged is one that succeeded, and no plaintext is ever
/// written next to the sealed bundle.
#[tokio::test]
async fn hostile_file_names_are_disclosed_under_safe_names_and_nothing_plain_is_staged() {
    let v = TestVault::start().await;
    let marker = b"PLAINTEXT-MARKER of an exhibit ".repeat(3000);
    let long = format!("{}.pdf", "ж".repeat(125));
    let files: Vec<SubmitFile> = [
        ("statement.txt", ObjectKind::Statement),
        (" ..", ObjectKind::Evidence),
        ("photo\u{202e}gpj.exe", ObjectKind::Evidence),
        (long.as_str(), ObjectKind::Evidence),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, kind))| {
        let mut bytes = marker.clone();
        bytes.extend_from_slice(format!("{i}").as_bytes());
        SubmitFile {
            path: v.file(&format!("{i}/{name}"), &bytes),
            kind,
        }
    })
    .chain(
        ["Exhibit.txt", "exhibit.txt"]
            .into_iter()
            .enumerate()
            .map(|(i, name)| SubmitFile {
                path: v.file(&format!("case-{i}/{name}"), format!("exhibit {i}").as_bytes()),
                kind: ObjectKind::Evidence,
            }),
    )
    .collect();
    let sub = flows::submit(&v.client(), &v.trust(), &[], &files, false)
        .await
        .unwrap();
    let case = sub.case_id.clone();
    let got = flows::get_case(&v.client(), &v.lawyer, &v.log, &case, &v.tmp.path().join("got"))
        .await
        .unwrap();
    let ids: Vec<String> = got.files.iter().map(|f| f.object_id.clone()).collect();
    let court = age::x25519::Identity::generate();

    let usb = v.tmp.path().join("usb");
    for (out, plaintext) in [(usb.join("sealed"), false), (v.tmp.path().join("filing"), true)] {
        let options = DiscloseOptions {
            to: Recipient::from_arg(&court.to_public().to_string()).unwrap(),
            files: ids.clone(),
            statement: false,
            confirmed: false,
            announce: None,
            plaintext,
            clean: false,
            language: Language::En,
        };
        let done = flows::disclose(&v.client(), &v.lawyer, &v.log, &case, &out, options)
            .await
            .unwrap_or_else(|e| panic!("plaintext {plaintext}: {e}"));
        let mut names: Vec<String> = done.files.iter().map(|f| f.file.clone()).collect();
        names.sort();
        for name in &names {
            let base = name.strip_prefix("files/").unwrap();
            assert!(
                base.len() <= 255 && !base.starts_with('.') && !base.contains('\u{202e}'),
                "{name:?}"
            );
            assert!(out.join(name).is_file(), "{name:?}");
        }
        let lower: std::collections::BTreeSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(lower.len(), names.len(), "names differ up to case: {names:?}");
        let (report, _) = disclosure::verify_dir(&out, &v.log, &Policy::default(), Some(&court));
        assert!(report.passed && report.contents_checked, "{report:?}");
    }
    // Nothing under the sealed bundle's folder ever held the plaintext,
    // and nothing is left of the staging.
    let left: Vec<PathBuf> = files_under(&usb)
        .into_iter()
        .filter(|p| contains(&std::fs::read(p).unwrap(), b"PLAINTEXT-MARKER"))
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new());
    let entries: Vec<_> = std::fs::read_dir(&usb)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, [std::ffi::OsString::from("sealed")]);

    // Every disclosure logged is one that was made.
    let audit = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(audit.failure, None);
    assert_eq!(audit.actions.get("case_disclosed"), Some(&2));
}
/// `--statement` takes every object labelled statement or form, and
/// labels are the submitter's: when it would take more than one of
/// either, the lawyer must confirm, and nothing is logged until then.
#[tokio::test]
async fn statement_asks_before_taking_more_than_one_statement_and_form() {
    let v = TestVault::start().await;
    let files: Vec<SubmitFile> = ["first.txt", "second.txt"]
        .into_iter()
        .map(|name| SubmitFile {
            path: v.file(name, name.as_bytes()),
            kind: ObjectKind::Statement,
        })
        .collect();
    let sub = flows::submit(&v.client(), &v.trust(), &[], &files, false)
        .await
        .unwrap();
    let court = age::x25519::Identity::generate();
    let options = DiscloseOptions {
        to: Recipient::from_arg(&court.to_public().to_string()).unwrap(),
        files: vec![],
        statement: true,
        confirmed: false,
        announce: None,
        plaintext: false,
        clean: false,
        language: Language::En,
    };
    let out = v.tmp.path().join("to-court");
    let refused = flows::disclose(&v.client(), &v.lawyer, &v.log, &sub.case_id, &out, options.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("first.txt") && refused.contains("second.txt") && refused.contains("--yes"),
        "{refused}"
    );
    assert!(!out.exists());
    let audit = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(audit.actions.get("case_disclosed"), None);
    // Confirmed, both go.
    let confirmed = DiscloseOptions {
        confirmed: true,
        ..options
    };
    let done = flows::disclose(&v.client(), &v.lawyer, &v.log, &sub.case_id, &out, confirmed)
        .await
        .unwrap();
    assert_eq!(done.files.len(), 2);
}

/// Each file's object id by its file name, as `--json get` lists them.
pub(crate) fn object_ids(got: &serde_json::Value) -> BTreeMap<String, String> {
    got["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = Path::new(f["path"].as_str().unwrap()).file_name().unwrap();
            (
                name.to_string_lossy().into_owned(),
                f["object_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
