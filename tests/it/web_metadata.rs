//! The page's metadata check in a real headless Chromium against the real
//! server (issue 24): a photo with GPS shows the place it was taken, in each
//! language; sending without a choice asks for one; a cleaned copy reaches
//! the lawyer without the GPS, the device or the names (Debian's exiftool
//! reads it, independently of the page), byte for byte the photo before it
//! was tagged, its label saying `cleaned: true`; a photo sent as is arrives
//! byte for byte with `cleaned: false`, and a Word document the page cannot
//! clean, left out by choice, is not sent.

use crate::browser::{screenshot_dir, Browser};
use crate::util::TestVault;
use crate::web::{answers, file_of, fill, lawyer_get, submit_and_wait};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use custos::envelope::{Label, ObjectKind};
use serde_json::Value;

/// The page's own fixture: a small JPEG made by ImageMagick, without metadata.
const PLAIN_JPEG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web/test/fixtures/plain.jpg");

/// The place the test photo claims, as the page and the Rust side spell it.
const PLACE: &str = "43.238949, 76.889709";

/// Debian's exiftool, installed if missing (tests/meta/ensure-tools.sh).
fn exiftool() -> PathBuf {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/meta/ensure-tools.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// What exiftool reads in `file`: its tags, grouped (`-G`), as JSON.
fn exif_of(file: &Path) -> Value {
    let out = Command::new(exiftool()).args(["-j", "-G"]).arg(file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
}

/// Tags of `tags` whose name holds any of `words`.
fn tags_naming(tags: &Value, words: &[&str]) -> Vec<String> {
    tags.as_object()
        .unwrap()
        .keys()
        .filter(|k| words.iter().any(|w| k.to_lowercase().contains(w)))
        .cloned()
        .collect()
}

const IDENTIFYING: &[&str] = &["gps", "make", "model", "serial", "owner", "artist", "creator"];

/// The groups exiftool may find in a cleaned copy: what it says of the file
/// itself, how the picture is coded and shown, and its colour profile.
/// Anything else (EXIF, XMP, IPTC, maker notes, comments) was left behind.
const CLEAN_GROUPS: &[&str] = &["ExifTool", "File", "JFIF", "ICC_Profile", "Composite"];

/// Tags of `tags` (`-G` keys, "Group:Tag") outside CLEAN_GROUPS.
fn tags_outside_clean_groups(tags: &Value) -> Vec<String> {
    tags.as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "SourceFile")
        .filter(|k| !CLEAN_GROUPS.contains(&k.split(':').next().unwrap_or_default()))
        .cloned()
        .collect()
}

/// A JPEG as a phone leaves it: the page's plain fixture tagged by exiftool
/// with a place, a phone and its owner.
fn tagged_photo(v: &TestVault, name: &str) -> PathBuf {
    let path = v.tmp.path().join(name);
    std::fs::copy(PLAIN_JPEG, &path).unwrap();
    let out = Command::new(exiftool())
        .args([
            "-q",
            "-overwrite_original",
            "-GPSLatitude=43.238949",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=76.889709",
            "-GPSLongitudeRef=E",
            "-Make=samsung",
            "-Model=SM-A525F",
            "-SerialNumber=R58R12ABCDE",
            "-OwnerName=Ivanov A.",
            "-XMP-dc:Creator=Ivanov A.",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tags = exif_of(&path);
    assert_eq!(tags["Composite:GPSLatitude"], "43 deg 14' 20.22\" N", "{tags}");
    path
}

/// The label of the one evidence object of `case`, as the lawyer opens it.
async fn evidence_label(v: &TestVault, case: &str) -> Label {
    let opened = custos::client::flows::open_case(&v.client(), &v.lawyer, &v.log, case)
        .await
        .unwrap();
    let mut evidence = opened
        .objects
        .into_iter()
        .filter(|(_, l)| l.kind == ObjectKind::Evidence)
        .map(|(_, l)| l);
    let label = evidence.next().expect("an evidence object");
    assert!(evidence.next().is_none());
    label
}

/// Choose the photo in the open page and wait for its findings to show.
async fn choose_photo(b: &Browser, lang: &str, photo: &Path) {
    fill(b, &answers(lang), &[photo], &[]).await;
    b.wait_for(
        "return document.querySelector('#evidence-files-meta fieldset.meta') !== null",
        "the photo's findings",
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_with_gps_is_shown_in_each_language_and_its_cleaned_copy_reaches_the_lawyer() {
    let v = TestVault::start().await;
    let b = Browser::start().await;
    let plain = std::fs::read(PLAIN_JPEG).unwrap();
    for lang in ["ru", "kk", "en"] {
        let strings = custos::web::strings(lang).unwrap();
        b.goto(&format!("{}/{lang}/", v.url)).await;
        let name = format!("photo-{lang}.jpg");
        let photo = tagged_photo(&v, &name);
        choose_photo(&b, lang, &photo).await;
        // The place, said plainly in the page's language.
        assert_eq!(
            b.text("#evidence-files-meta li[data-kind=gps]").await,
            strings["meta_kind_gps"].replace("{value}", PLACE),
            "{lang}"
        );
        assert_eq!(
            b.text("#evidence-files-meta legend").await,
            strings["meta_legend"].replace("{name}", &name)
        );
        // Nothing is chosen for the person: sending asks, and moves to the choice.
        assert_eq!(
            b.eval("return document.querySelectorAll('#evidence-files-meta input:checked').length")
                .await,
            0
        );
        b.click("#send").await;
        let asked = strings["meta_need_choice"].replace("{name}", &name);
        assert_eq!(b.text("#form-error").await, asked, "{lang}");
        assert_eq!(
            b.eval("return document.activeElement.id").await,
            "evidence-files-meta-0-as_is"
        );
        assert!(!b
            .eval("return document.getElementById('submit-view').hidden")
            .await
            .as_bool()
            .unwrap());
        b.screenshot(360, &screenshot_dir().join(format!("{lang}-metadata-360.png")))
            .await;

        b.click("#evidence-files-meta-0-clean").await;
        // In one language the person also asks for a neutral name: the
        // phone's name (which may tell the time) does not travel.
        let sent_as = if lang == "kk" {
            b.click("#evidence-files-meta-0-neutral").await;
            "photo-1.jpg".to_owned()
        } else {
            name.clone()
        };
        let (_, case) = submit_and_wait(&b).await;

        let (_, got) = lawyer_get(&v, &case);
        let received = file_of(&got, "evidence", &sent_as);
        let copy = v.tmp.path().join(format!("received-{lang}.jpg"));
        std::fs::write(&copy, &received).unwrap();
        let tags = exif_of(&copy);
        assert_eq!(tags_outside_clean_groups(&tags), Vec::<String>::new(), "{lang}: {tags}");
        assert_eq!(tags_naming(&tags, IDENTIFYING), Vec::<String>::new(), "{lang}: {tags}");
        // Every other byte is the photo's own: the pixels are untouched.
        assert_eq!(received, plain, "{lang}");
        let label = evidence_label(&v, &case).await;
        assert_eq!(label.cleaned, Some(true), "{lang}");
        assert_eq!(label.name, sent_as, "{lang}");
    }
}

/// The page's Word fixture: its author, last editor, company and program.
const AUTHOR_DOCX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web/test/fixtures/author.docx");

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_sent_as_is_arrives_byte_for_byte_marked_not_cleaned() {
    let v = TestVault::start().await;
    let b = Browser::start().await;
    let strings = custos::web::strings("en").unwrap();
    b.goto(&format!("{}/en/", v.url)).await;
    let photo = tagged_photo(&v, "as-is.jpg");
    // A document the page cannot clean: it says so, and offers to leave it out.
    let docx = v.tmp.path().join("report.docx");
    std::fs::copy(AUTHOR_DOCX, &docx).unwrap();
    fill(&b, &answers("en"), &[&photo], &[&docx]).await;
    b.wait_for(
        "return document.querySelectorAll('fieldset.meta').length === 2",
        "the findings of both files",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        b.text("#medical-files-meta li[data-kind=author]").await,
        strings["meta_kind_author"].replace("{value}", "Ivanov A.")
    );
    assert_eq!(b.text("#medical-files-meta .hint").await, strings["meta_cannot_clean"]);
    // Screen readers hear the findings with the question, are told that
    // findings appeared, and hear a missing choice at once.
    assert_eq!(
        b.eval("return document.querySelector('#medical-files-meta fieldset').getAttribute('aria-describedby')")
            .await,
        "medical-files-meta-0-findings medical-files-meta-0-hint"
    );
    assert_eq!(
        b.text("#medical-files-meta [role=status]").await,
        strings["meta_summary"]
    );
    assert_eq!(
        b.eval("return document.querySelector('#medical-files-meta .error').getAttribute('role')")
            .await,
        "alert"
    );
    assert_eq!(
        b.eval("return document.querySelectorAll('#medical-files-meta input[value=clean]').length")
            .await,
        0
    );
    b.click("#medical-files-meta-0-leave_out").await;
    b.click("#evidence-files-meta-0-as_is").await;
    let (_, case) = submit_and_wait(&b).await;
    let (_, got) = lawyer_get(&v, &case);
    assert_eq!(file_of(&got, "evidence", "as-is.jpg"), std::fs::read(&photo).unwrap());
    assert_eq!(evidence_label(&v, &case).await.cleaned, Some(false));
    // The document left out was never sent.
    let kinds: Vec<_> = got["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].clone())
        .collect();
    assert!(!kinds.contains(&Value::from("medical")), "{got}");
}
