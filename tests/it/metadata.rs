//! Identifying metadata (issue 24): real files made with known metadata
//! (ImageMagick and exiftool, a PDF and a DOCX written here, a committed
//! MP4), cleaned by custos, and read back by Debian's exiftool, the
//! independent reader; then the CLI's submit with `--clean-file` and the
//! lawyer's `get --json` against a real server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use custos::meta::{self, Kind};

use crate::cli::{served_vault_with_lawyer, Env};

/// exiftool's path; it and ImageMagick are installed by
/// tests/meta/ensure-tools.sh when missing (once per test run).
fn exiftool() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/meta/ensure-tools.sh");
        let out = Command::new("bash").arg(script).output().expect("bash runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// ImageMagick's `convert`, installed if missing.
fn convert() -> Command {
    exiftool();
    Command::new("convert")
}

/// Run exiftool with `args` on `file`; require success.
fn exif(args: &[&str], file: &Path) -> String {
    let out = Command::new(exiftool()).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "exiftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything exiftool reads in `file`, all groups.
fn read_all(file: &Path) -> String {
    exif(&["-j", "-a", "-G1"], file)
}

/// The values the files are given, each of which a cleaned copy must lack.
const SECRETS: [&str; 6] = ["samsung", "SM-A525F", "Ivanov", "R58N123", "2024:03:01", "GPS"];

/// A JPEG with GPS, make, model, owner, serial and capture time.
pub(crate) fn photo(dir: &Path) -> PathBuf {
    image(dir, "photo.jpg")
}

/// A photo named `name` (its extension picks JPEG, PNG, WebP or HEIC) with GPS,
/// make, model, owner, serial and capture time.
fn image(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let out = convert()
        .args(["-size", "48x32", "plasma:fractal", "-seed", "7"])
        .arg(&p)
        .output()
        .unwrap();
    if !out.status.success() {
        // Some ImageMagick builds lack plasma: a gradient is pixels enough.
        let out = convert()
            .args(["-size", "48x32", "gradient:red-blue"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    exif(
        &[
            "-q",
            "-overwrite_original",
            "-GPSLatitude=43.238949",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=76.889709",
            "-GPSLongitudeRef=E",
            "-Make=samsung",
            "-Model=SM-A525F",
            "-OwnerName=Ivanov A.",
            "-SerialNumber=R58N123",
            "-DateTimeOriginal=2024:03:01 12:30:05",
            "-OffsetTimeOriginal=+05:00",
            "-XMP-dc:Creator=Ivanov A.",
        ],
        &p,
    );
    p
}

/// A one-page PDF (objects and cross-reference table written here), then
/// given an author and creator by exiftool (an incremental update, so the
/// old revision stays in the file too).
fn pdf(dir: &Path) -> PathBuf {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        "<< /Length 35 >>\nstream\nBT /F1 12 Tf 20 100 Td (Hi) Tj ET\nendstream",
    ];
    let mut body = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(body.len());
        write!(body, "{} 0 obj\n{o}\nendobj\n", i + 1).unwrap();
    }
    let xref = body.len();
    write!(body, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).unwrap();
    for o in offsets {
        writeln!(body, "{o:010} 00000 n ").unwrap();
    }
    write!(
        body,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    )
    .unwrap();
    let p = dir.join("report.pdf");
    std::fs::write(&p, body).unwrap();
    exif(
        &[
            "-q",
            "-overwrite_original",
            "-Author=Ivanov A.",
            "-Creator=SM-A525F clinic",
        ],
        &p,
    );
    p
}

/// A DOCX whose core properties name a creator and last editor, and whose
/// app properties a company and application.
fn docx(dir: &Path) -> PathBuf {
    let p = dir.join("letter.docx");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#,
        ),
        (
            "word/document.xml",
            r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>MARKER-text</w:t></w:r></w:p></w:body></w:document>"#,
        ),
        (
            "docProps/core.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Report</dc:title><dc:creator>Ivanov A.</dc:creator><cp:lastModifiedBy>Ivanov A.</cp:lastModifiedBy></cp:coreProperties>"#,
        ),
        (
            "docProps/app.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"><Application>samsung Office</Application><Company>R58N123 Clinic</Company><Pages>1</Pages></Properties>"#,
        ),
    ];
    for (name, text) in parts {
        zip.start_file(name, opts).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    p
}

/// The committed minimal MP4, given a location, make and model by exiftool.
fn mp4(dir: &Path) -> PathBuf {
    let p = dir.join("clip.mp4");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/metadata/plain.mp4"),
        &p,
    )
    .unwrap();
    exif(
        &[
            "-q",
            "-overwrite_original",
            "-GPSCoordinates=43.238949, 76.889709",
            "-Make=samsung",
            "-Model=SM-A525F",
        ],
        &p,
    );
    p
}

/// The raw RGB pixels ImageMagick decodes from `file`.
fn pixels(file: &Path) -> Vec<u8> {
    let out = convert().arg(file).arg("rgb:-").output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn has(report: &meta::Report, kind: Kind, value: &str) -> bool {
    report.findings.iter().any(|f| f.kind == kind && f.value == value)
}

#[test]
fn cleaned_copies_hold_none_of_the_metadata_exiftool_reads() {
    let dir = tempfile::tempdir().unwrap();
    let made = [
        photo(dir.path()),
        pdf(dir.path()),
        docx(dir.path()),
        mp4(dir.path()),
        image(dir.path(), "photo.png"),
        image(dir.path(), "photo.webp"),
        image(dir.path(), "photo.heic"),
    ];
    for original in &made {
        // exiftool reads the secrets in the original (the files are what
        // the test says they are).
        let before = read_all(original);
        assert!(before.contains("Ivanov") || before.contains("GPS"), "{before}");
        let bytes = std::fs::read(original).unwrap();
        let report = meta::detect(&bytes);
        assert!(report.note.is_none(), "{}: {:?}", original.display(), report.note);
        let cleaned = meta::clean(&bytes).unwrap_or_else(|e| panic!("{}: {e}", original.display()));
        assert_eq!(meta::clean(&bytes).unwrap(), cleaned, "cleaning is deterministic");
        let copy = dir
            .path()
            .join(format!("clean-{}", original.file_name().unwrap().to_string_lossy()));
        std::fs::write(&copy, &cleaned).unwrap();
        let after = read_all(&copy);
        assert!(!after.contains("\"ExifTool:Error\""), "{after}");
        for s in SECRETS {
            // The MP4's creation date and the PDF's are not these; the
            // photo's capture time is.
            assert!(!after.contains(s), "{} still says {s}: {after}", copy.display());
        }
        assert!(meta::detect(&cleaned).findings.is_empty());
    }

    // What detection reports, spelled as the CLI and the page spell it.
    let jpeg = meta::detect(&std::fs::read(&made[0]).unwrap());
    assert!(has(&jpeg, Kind::Gps, "43.238949, 76.889709"), "{jpeg:?}");
    assert!(has(&jpeg, Kind::Device, "samsung SM-A525F"), "{jpeg:?}");
    assert!(has(&jpeg, Kind::Owner, "Ivanov A."), "{jpeg:?}");
    assert!(has(&jpeg, Kind::CaptureTime, "2024-03-01 12:30:05 +05:00"), "{jpeg:?}");
    let pdf = meta::detect(&std::fs::read(&made[1]).unwrap());
    assert!(has(&pdf, Kind::Author, "Ivanov A."), "{pdf:?}");
    let docx = meta::detect(&std::fs::read(&made[2]).unwrap());
    assert!(has(&docx, Kind::Author, "Ivanov A."), "{docx:?}");
    assert!(has(&docx, Kind::Owner, "R58N123 Clinic"), "{docx:?}");
    let video = meta::detect(&std::fs::read(&made[3]).unwrap());
    assert!(has(&video, Kind::Gps, "43.238949, 76.889709"), "{video:?}");
    assert!(has(&video, Kind::Device, "samsung SM-A525F"), "{video:?}");

    for photo in [&made[4], &made[5], &made[6]] {
        let found = meta::detect(&std::fs::read(photo).unwrap());
        assert!(has(&found, Kind::Gps, "43.238949, 76.889709"), "{found:?}");
        assert!(has(&found, Kind::Serial, "R58N123"), "{found:?}");
    }

    // Pixels and text unchanged.
    for name in ["photo.jpg", "photo.png", "photo.webp", "photo.heic"] {
        let cleaned = dir.path().join(format!("clean-{name}"));
        assert_eq!(pixels(&dir.path().join(name)), pixels(&cleaned), "{name}");
    }
    let cleaned_docx = std::fs::read(dir.path().join("clean-letter.docx")).unwrap();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(cleaned_docx)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut z.by_name("word/document.xml").unwrap(), &mut text).unwrap();
    assert!(text.contains("MARKER-text"));
}

#[test]
fn a_file_custos_cannot_clean_is_refused_cleaning_by_name() {
    let mut env = Env::new();
    let _served = served_vault_with_lawyer(&mut env);
    std::fs::write(env.path("statement.txt"), "what happened").unwrap();
    std::fs::write(env.path("notes.bin"), [1u8, 2, 3]).unwrap();
    let out = env.run(&[
        "submit",
        "--statement",
        "statement.txt",
        "--evidence",
        "notes.bin",
        "--clean-file",
        "notes.bin",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.bin") && err.contains("cannot send a cleaned copy"),
        "{err}"
    );
    let out = env.run(&[
        "submit",
        "--statement",
        "statement.txt",
        "--clean-file",
        "elsewhere.jpg",
    ]);
    assert!(!out.status.success());
    // `--clean` for all files stops at one custos cannot clean, naming it,
    // rather than send it as is (a legacy Word file has an author field).
    std::fs::write(
        env.path("old.doc"),
        [0xd0u8, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0],
    )
    .unwrap();
    std::fs::write(env.path("notes.txt"), "what I remember").unwrap();
    let out = env.run(&[
        "submit",
        "--statement",
        "statement.txt",
        "--evidence",
        "notes.txt",
        "--evidence",
        "old.doc",
        "--clean",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("old.doc") && err.contains("cannot send a cleaned copy"),
        "{err}"
    );
    assert!(!err.contains("notes.txt"), "a text file hides nothing: {err}");
    let cases = env.json(&["--identity", "lawyer", "cases"]);
    assert_eq!(cases.as_array().unwrap().len(), 0, "nothing was sent: {cases}");
    // Text alone goes out under --clean, as it is.
    env.ok(&[
        "submit",
        "--statement",
        "statement.txt",
        "--evidence",
        "notes.txt",
        "--clean",
    ]);
}

#[test]
fn a_submitter_sends_a_cleaned_photo_and_the_lawyer_sees_the_rest() {
    let mut env = Env::new();
    let _served = served_vault_with_lawyer(&mut env);
    std::fs::write(env.path("statement.txt"), "what happened").unwrap();
    let photo = photo(env.dir.path());
    let report = pdf(env.dir.path());
    let clip = mp4(env.dir.path());
    let original_photo = std::fs::read(&photo).unwrap();
    let original_report = std::fs::read(&report).unwrap();

    let out = env.run(&[
        "--json",
        "submit",
        "--statement",
        "statement.txt",
        "--evidence",
        "photo.jpg",
        "--medical",
        "report.pdf",
        "--evidence",
        "clip.mp4",
        "--clean-file",
        "photo.jpg",
        "--clean-file",
        "clip.mp4",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The findings are said in plain words before sending.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("the place where it was made: 43.238949, 76.889709"),
        "{said}"
    );
    assert!(said.contains("the author's name: Ivanov A."), "{said}");
    let sub: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = sub["files"].as_array().unwrap();
    let file = |name: &str| files.iter().find(|f| f["name"] == name).unwrap().clone();
    assert_eq!(file("photo.jpg")["cleaned"], true);
    assert_eq!(file("report.pdf")["cleaned"], false);
    assert!(file("photo.jpg")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "gps" && f["value"] == "43.238949, 76.889709"));
    let case = sub["case_id"].as_str().unwrap().to_owned();

    let got = env.json(&["--identity", "lawyer", "get", &case, "--out", "got"]);
    let files = got["files"].as_array().unwrap();
    let got_file = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    // The cleaned photo: marked so, and nothing found in it, by custos or
    // by exiftool; the same pixels.
    assert_eq!(got_file("photo.jpg")["cleaned"], true);
    assert_eq!(got_file("photo.jpg")["findings"], serde_json::json!([]));
    let after = read_all(&env.path("got/photo.jpg"));
    for s in SECRETS {
        assert!(!after.contains(s), "{after}");
    }
    assert_ne!(std::fs::read(env.path("got/photo.jpg")).unwrap(), original_photo);
    assert_eq!(pixels(&env.path("got/photo.jpg")), pixels(&photo));
    // The cleaned video, overwritten in place as it streamed: same length,
    // nothing left for exiftool.
    assert_eq!(got_file("clip.mp4")["cleaned"], true);
    assert_eq!(got_file("clip.mp4")["findings"], serde_json::json!([]));
    let video = std::fs::read(env.path("got/clip.mp4")).unwrap();
    assert_eq!(video.len(), std::fs::read(&clip).unwrap().len());
    let after = read_all(&env.path("got/clip.mp4"));
    assert!(!after.contains("samsung") && !after.contains("GPS"), "{after}");
    // The report sent as is: byte for byte, and its author shown to the lawyer.
    assert_eq!(got_file("report.pdf")["cleaned"], false);
    assert_eq!(std::fs::read(env.path("got/report.pdf")).unwrap(), original_report);
    assert!(got_file("report.pdf")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "author" && f["value"] == "Ivanov A."));
    // The statement was not asked about.
    assert_eq!(got_file("statement.txt")["cleaned"], serde_json::Value::Null);

    // No choice and no terminal: sent as is, and said so.
    let out = env.run(&[
        "--json",
        "submit",
        "--statement",
        "statement.txt",
        "--evidence",
        "photo.jpg",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sending as is"));
    let sub: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sub["files"][1]["cleaned"], false);
    let case = sub["case_id"].as_str().unwrap().to_owned();

    // `submitter add --clean`: the added report arrives cleaned.
    let out = env
        .cmd()
        .args([
            "--json",
            "submitter",
            "add",
            "--case",
            &case,
            "--medical",
            "report.pdf",
            "--clean",
        ])
        .env("CUSTOS_CODENAME", sub["codename"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["files"][0]["cleaned"], true);
    let got = env.json(&["--identity", "lawyer", "get", &case, "--out", "got2"]);
    let report = got["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("report.pdf"))
        .unwrap()
        .clone();
    assert_eq!(report["cleaned"], true);
    assert_eq!(report["findings"], serde_json::json!([]));
    assert!(!read_all(&env.path("got2/report.pdf")).contains("Ivanov"));
}

/// The desk says on a case's page which files the sender says are cleaned
/// copies and which were sent as is after being shown their findings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_shows_what_each_label_says_of_cleaning() {
    use custos::client::flows::{self, SubmitFile};
    use custos::envelope::ObjectKind;
    let v = crate::util::TestVault::start().await;
    let photo = photo(v.tmp.path());
    let files = [
        SubmitFile {
            path: v.file("statement.txt", b"statement"),
            kind: ObjectKind::Statement,
        },
        SubmitFile {
            path: photo.clone(),
            kind: ObjectKind::Evidence,
        },
        SubmitFile {
            path: v.file("scan.jpg", &std::fs::read(&photo).unwrap()),
            kind: ObjectKind::Medical,
        },
    ];
    let sub = flows::submit_cleaned(
        &v.client(),
        &v.trust(),
        &[],
        &files,
        &[None, Some(true), Some(false)],
        false,
    )
    .await
    .unwrap();
    let home = v.tmp.path().join("desk-home");
    let desk = crate::desk::DeskProcess::start(&v, &v.lawyer, &home);
    let session = crate::desk::Session::start(&desk).await;
    let page = session
        .get(&desk.at(&format!("/cases/{}", sub.case_id)))
        .await
        .text()
        .await
        .unwrap();
    let item = |name: &str| {
        let at = page.find(&format!("data-name=\"{name}\"")).unwrap();
        page[at..].split("</li>").next().unwrap().to_owned()
    };
    assert!(item("photo.jpg").contains("the sender chose a copy cleaned"), "{page}");
    assert!(
        item("scan.jpg").contains("sent as is, after the sender was shown"),
        "{page}"
    );
    assert!(!item("statement.txt").contains("Metadata"));

    // What each file itself says, on its own page (a logged access, so
    // only when asked): read from the decrypted file, whatever the label says.
    let findings = |name: &str| {
        let item = item(name);
        let link = item.split("href=\"").find(|h| h.contains("/metadata\"")).unwrap();
        // The page's links carry the session's secret segment already.
        let origin = desk.at("/").splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        let url = format!("{origin}{}", link.split('"').next().unwrap());
        let session = &session;
        async move {
            let resp = session.get(&url).await;
            assert!(resp.status().is_success(), "{url}: {}", resp.status());
            resp.text().await.unwrap()
        }
    };
    let as_is = findings("scan.jpg").await;
    for said in [
        "43.238949, 76.889709",
        "samsung SM-A525F",
        "Ivanov A.",
        "2024-03-01 12:30:05 +05:00",
        "where it was made",
    ] {
        assert!(as_is.contains(said), "{said}: {as_is}");
    }
    assert!(as_is.contains("sent as is, after the sender was shown"), "{as_is}");
    let cleaned = findings("photo.jpg").await;
    assert!(cleaned.contains("custos found nothing in this file"), "{cleaned}");
    assert!(!cleaned.contains("43.238949"), "{cleaned}");
}
