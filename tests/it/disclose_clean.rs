//! `custos disclose --clean` (issue 24): a photo whose GPS names the
//! family's home goes to a court as a cleaned copy, while the logged
//! original stays as it is; the bundle holds no key that opens the
//! original, the signed disclosure names the copy's SHA-256 and the
//! court's check holds the copy to it; a file with metadata custos cannot
//! remove stops the disclosure before it is logged; without `--clean`
//! nothing changes. Through the real binary, with photos made by
//! ImageMagick and exiftool as `metadata.rs` makes them.

use std::path::Path;

use custos::custody::{Action, Event};
use custos::identity::Identity;
use custos::meta;
use custos::wire::DiscloseBody;
use sha2::{Digest, Sha256};

use super::cli::{start_server, Env, ServerProcess};
use super::disclose::{copy, court_key, failing_check, keys_of, object_ids, verify};
use crate::util::files_under;

/// A vault with a lawyer and an auditor, served (until the returned
/// process is dropped), and a court's key in `court.key`; returns the
/// log's vkey and the court's recipient too.
fn vault_and_court(env: &mut Env) -> (ServerProcess, String, String) {
    let vkey = env.identities_and_vault(&["admin", "lawyer", "auditor"]);
    let (server, url, _) = start_server(env, &env.path("vault"));
    env.server = url;
    env.register("lawyer");
    env.register("auditor");
    let (_, recipient) = court_key(&env.path("court.key"));
    (server, vkey, recipient)
}

/// Submit `statement.txt` and `files` as evidence, sent as they are; the
/// case id and each file's object id by its name, as the lawyer's `get`
/// lists them.
fn submit(env: &Env, files: &[&Path]) -> (String, std::collections::BTreeMap<String, String>) {
    std::fs::write(env.path("statement.txt"), "They held me for three days.\n").unwrap();
    let mut args = vec!["submit".to_owned(), "--statement".into(), "statement.txt".into()];
    for f in files {
        args.push("--evidence".into());
        args.push(f.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let case = env.json(&args)["case_id"].as_str().unwrap().to_owned();
    let got = env.json(&["--identity", "lawyer", "get", &case, "--out", "got"]);
    (case, object_ids(&got))
}

/// The signed body of the bundle's case_disclosed entry, and its raw bytes.
fn logged_disclosure(bundle: &Path) -> (DiscloseBody, Vec<u8>) {
    let event: Event = files_under(&bundle.join("events"))
        .iter()
        .map(|p| serde_json::from_slice::<Event>(&std::fs::read(p).unwrap()).unwrap())
        .find(|e| e.action == Action::CaseDisclosed)
        .expect("the bundle holds its disclosure");
    let raw = event.request.as_ref().unwrap().body_bytes().unwrap();
    (event.signed_body().unwrap(), raw)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The lawyer's `disclose` of `files` of `case` to `court` into `out`, with
/// `flags` (`--clean`, `--plaintext`) before `--out`.
fn disclose_args<'a>(
    case: &'a str,
    court: &'a str,
    files: &[&'a str],
    flags: &[&'a str],
    out: &'a str,
) -> Vec<&'a str> {
    let mut args = vec!["--identity", "lawyer", "disclose", case, "--to", court, "--files"];
    args.extend(files);
    args.extend(flags);
    args.extend(["--out", out]);
    args
}

/// How many disclosures a full audit of the vault counts.
fn disclosures_logged(env: &Env) -> u64 {
    let audit = env.json(&["--identity", "auditor", "audit"]);
    assert_eq!(audit["failure"], serde_json::Value::Null, "{audit}");
    audit["actions"]["case_disclosed"].as_u64().unwrap_or(0)
}

#[test]
fn a_photo_with_gps_goes_out_cleaned_without_its_originals_key_and_the_log_names_the_copy() {
    let mut env = Env::new();
    let (_server, vkey, court) = vault_and_court(&mut env);
    std::fs::create_dir(env.path("taken")).unwrap();
    let photo = super::metadata::photo(&env.path("taken"));
    let original = std::fs::read(&photo).unwrap();
    assert!(
        meta::detect(&original)
            .findings
            .iter()
            .any(|f| f.kind == meta::Kind::Gps),
        "the test photo carries GPS"
    );
    std::fs::write(env.path("notes.txt"), "What I remember.\n").unwrap();
    let (case, ids) = submit(&env, &[&photo, &env.path("notes.txt")]);
    let (photo_id, notes_id) = (ids["photo.jpg"].clone(), ids["notes.txt"].clone());

    let done = env.json(&disclose_args(
        &case,
        &court,
        &[&photo_id, &notes_id],
        &["--clean", "--plaintext"],
        "filing",
    ));
    let file = |id: &str| {
        done["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["object_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(file(&photo_id)["cleaned"], true, "{done}");
    assert!(
        file(&photo_id)["removed"].as_array().unwrap().contains(&"gps".into()),
        "{done}"
    );
    assert_eq!(file(&notes_id)["cleaned"], false, "text hides nothing: {done}");
    assert_eq!(done["verification"]["passed"], true, "{done}");

    // The court's copy says nothing of where it was taken.
    let bundle = env.path("filing");
    let handed = std::fs::read(bundle.join("files/photo.jpg")).unwrap();
    assert_ne!(handed, original);
    let left = meta::detect(&handed);
    assert_eq!(left.findings, vec![], "the cleaned copy still reveals {left:?}");
    // The logged ciphertext is there; the key that opens it is not, only
    // the label's. The text file keeps its key, as every file did.
    assert!(bundle.join("objects").join(&photo_id).is_file());
    let keys = |id: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(bundle.join(format!("keys/{id}.json"))).unwrap()).unwrap()
    };
    assert!(keys(&photo_id).get("object").is_none(), "{}", keys(&photo_id));
    assert!(keys(&photo_id)["label"].is_string());
    assert!(keys(&notes_id)["object"].is_string());
    // Nor is it anywhere else in the bundle.
    env.ok(&["--identity", "auditor", "export", &case, "--out", "exported"]);
    let lawyer = Identity::load(&env.path("lawyer"), || unreachable!()).unwrap();
    let (object_key, _) = keys_of(&env.path("exported"), &lawyer, &photo_id);
    for path in files_under(&bundle) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(object_key.len()).any(|w| w == object_key.as_bytes()),
            "{} holds the original's file key",
            path.display()
        );
    }

    // The signed disclosure names the copy by its hash.
    let (body, _) = logged_disclosure(&bundle);
    assert_eq!(body.cleaned.len(), 1, "{body:?}");
    assert_eq!(body.cleaned[0].object, photo_id);
    assert_eq!(body.cleaned[0].sha256, sha256(&handed));

    // The court's check passes and says which file is a cleaned copy.
    let (passed, report) = verify(&env, "filing", &vkey, &[]);
    assert!(passed, "{report}");
    let held = report["objects"].as_array().unwrap();
    let cleaned: Vec<&str> = held
        .iter()
        .filter(|o| o["cleaned"] == true)
        .map(|o| o["object_id"].as_str().unwrap())
        .collect();
    assert_eq!(cleaned, [photo_id.as_str()], "{report}");
    let human = env.ok(&["verify", "filing", "--vkey", &vkey]);
    assert!(
        human.contains("CLEANED COPY") && human.contains("not byte-comparable") && human.contains("files/photo.jpg"),
        "{human}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<&serde_json::Value> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("cleaned_sha256").is_some())
        .collect();
    assert_eq!(listed.len(), 1, "{manifest}");
    assert_eq!(listed[0]["cleaned_sha256"], sha256(&handed).as_str());
    let readme = std::fs::read_to_string(bundle.join("README.txt")).unwrap();
    assert!(
        readme.contains("Cleaned copies") && readme.contains(&sha256(&handed)),
        "{readme}"
    );
    let summary = std::fs::read_to_string(bundle.join("summary.html")).unwrap();
    assert!(summary.contains("photo.jpg (cleaned copy)"), "{summary}");

    // The original with its GPS in place of the copy fails, as does one
    // changed byte, and so does a bundle that carries the original's key.
    let swapped = copy(&env, "filing", "swapped");
    std::fs::write(env.path(&swapped).join("files/photo.jpg"), &original).unwrap();
    assert_eq!(failing_check(&env, &swapped, &vkey, &[]), "contents");
    let flipped = copy(&env, "filing", "flipped");
    let mut changed = handed.clone();
    let at = changed.len() / 2;
    changed[at] ^= 1;
    std::fs::write(env.path(&flipped).join("files/photo.jpg"), &changed).unwrap();
    assert_eq!(failing_check(&env, &flipped, &vkey, &[]), "contents");
    let leaky = copy(&env, "filing", "leaky");
    let label = keys(&photo_id)["label"].as_str().unwrap().to_owned();
    std::fs::write(
        env.path(&leaky).join(format!("keys/{photo_id}.json")),
        format!("{{\"object\":\"{object_key}\",\"label\":\"{label}\"}}\n"),
    )
    .unwrap();
    assert_eq!(failing_check(&env, &leaky, &vkey, &[]), "labels");

    // Sealed to the court, the copy goes out cleaned too, and the court
    // checks it with its key.
    let sealed = env.json(&disclose_args(&case, &court, &[&photo_id], &["--clean"], "sealed"));
    assert_eq!(sealed["files"][0]["cleaned"], true, "{sealed}");
    let (passed, report) = verify(&env, "sealed", &vkey, &["--identity", "court.key"]);
    assert!(passed, "{report}");
    assert_eq!(report["objects"][0]["cleaned"], true, "{report}");
    assert_eq!(disclosures_logged(&env), 2);
}

#[test]
fn a_file_custos_cannot_clean_stops_the_disclosure_and_without_clean_nothing_changes() {
    let mut env = Env::new();
    let (_server, vkey, court) = vault_and_court(&mut env);
    std::fs::create_dir(env.path("taken")).unwrap();
    let photo = super::metadata::photo(&env.path("taken"));
    let original = std::fs::read(&photo).unwrap();
    // The same photo cut short (its end-of-image marker gone, as a
    // transfer cut off leaves it): custos reads its GPS but cannot vouch
    // for a cleaned copy of a JPEG it cannot walk to its end.
    let cut_bytes = original[..original.len() - 16].to_vec();
    assert!(
        !meta::detect(&cut_bytes).findings.is_empty() && meta::clean(&cut_bytes).is_err(),
        "this test needs a file with findings that custos-meta cannot clean"
    );
    std::fs::write(env.path("cut.jpg"), &cut_bytes).unwrap();
    let (case, ids) = submit(&env, &[&photo, &env.path("cut.jpg")]);
    let (photo_id, cut_id) = (ids["photo.jpg"].clone(), ids["cut.jpg"].clone());

    let out = env.run(&disclose_args(
        &case,
        &court,
        &[&photo_id, &cut_id],
        &["--clean", "--plaintext"],
        "refused",
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cut.jpg") && err.contains("leave it out") && err.contains("without --clean"),
        "{err}"
    );
    // One line says why (the others are the announcement of what was
    // chosen).
    let why: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(why.len() == 1 && why[0].contains("cut.jpg"), "{err}");
    assert!(!env.path("refused").exists());
    assert_eq!(disclosures_logged(&env), 0, "nothing was logged");

    // Without --clean: the files as they are, each with its key, and a
    // signed disclosure spelt as before.
    let done = env.json(&disclose_args(
        &case,
        &court,
        &[&photo_id, &cut_id],
        &["--plaintext"],
        "as-is",
    ));
    assert!(
        done["files"].as_array().unwrap().iter().all(|f| f["cleaned"] == false),
        "{done}"
    );
    let bundle = env.path("as-is");
    assert_eq!(std::fs::read(bundle.join("files/photo.jpg")).unwrap(), original);
    assert_eq!(std::fs::read(bundle.join("files/cut.jpg")).unwrap(), cut_bytes);
    for id in [&photo_id, &cut_id] {
        let keys: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join(format!("keys/{id}.json"))).unwrap()).unwrap();
        assert!(keys["object"].is_string(), "{keys}");
    }
    let (body, raw) = logged_disclosure(&bundle);
    assert!(body.cleaned.is_empty());
    assert!(!String::from_utf8_lossy(&raw).contains("cleaned"));
    let (passed, report) = verify(&env, "as-is", &vkey, &[]);
    assert!(passed, "{report}");
    assert!(
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o.get("cleaned").is_none()),
        "{report}"
    );
    let human = env.ok(&["verify", "as-is", "--vkey", &vkey]);
    assert!(
        !human.contains("CLEANED") && human.contains("VERIFIED: each file"),
        "{human}"
    );
    let readme = std::fs::read_to_string(bundle.join("README.txt")).unwrap();
    assert!(!readme.contains("Cleaned copies"));
    assert_eq!(disclosures_logged(&env), 1);
}

#[test]
fn a_photo_whose_metadata_does_not_read_whole_goes_out_only_as_a_cleaned_copy() {
    let mut env = Env::new();
    let (_server, _vkey, court) = vault_and_court(&mut env);
    std::fs::create_dir(env.path("taken")).unwrap();
    let photo = super::metadata::photo(&env.path("taken"));
    let mut damaged = std::fs::read(&photo).unwrap();
    // The EXIF block's first IFD pointed far past its segment: exiftool's
    // kind of damage a phone's editor leaves. custos reads no finding
    // from it, only a note that it could not read it.
    let tiff = damaged.windows(6).position(|w| w == b"Exif\0\0").unwrap() + 6;
    damaged[tiff + 4..tiff + 8].copy_from_slice(&[0x7f, 0xff, 0xff, 0xf0]);
    let report = meta::detect(&damaged);
    assert!(
        report.findings.iter().all(|f| f.kind != meta::Kind::Gps) && report.note.is_some(),
        "this test needs a photo whose EXIF does not read: {report:?}"
    );
    std::fs::write(env.path("damaged.jpg"), &damaged).unwrap();
    let (case, ids) = submit(&env, &[&env.path("damaged.jpg")]);
    let id = ids["damaged.jpg"].clone();
    let done = env.json(&disclose_args(
        &case,
        &court,
        &[&id],
        &["--clean", "--plaintext"],
        "filing",
    ));
    assert_eq!(done["files"][0]["cleaned"], true, "{done}");
    let sent = std::fs::read(env.path("filing").join("files/damaged.jpg")).unwrap();
    assert_ne!(sent, damaged, "the damaged EXIF block went out as it was");
    assert!(!sent.windows(6).any(|w| w == b"Exif\0\0"), "an EXIF block is left");
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("filing").join(format!("keys/{id}.json"))).unwrap()).unwrap();
    assert!(keys["object"].is_null(), "the original's key went out: {keys}");
}
