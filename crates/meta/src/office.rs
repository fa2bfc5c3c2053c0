//! Office Open XML (DOCX, XLSX, PPTX) and OpenDocument files, read and
//! rewritten with the zip crate and quick-xml: document properties
//! (docProps/core.xml, app.xml, custom.xml; meta.xml), the names of
//! comment and tracked-change authors and the workbook's folder in the
//! content parts, and the photos inside (cleaned as photos). Every other
//! entry of the archive is copied unchanged; what a document's text says
//! is its sender's to judge.

use std::io::{Cursor, Read, Write};

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::{capture_time, image, text, xmp, CleanError, Finding, Format, Kind};

/// The most entries an archive may have to be examined (a zip bomb's
/// central directory can name millions).
pub const MAX_ZIP_ENTRIES: usize = 20_000;
/// The most bytes of one property part read, uncompressed (a part that
/// inflates past this is a bomb, not document properties).
pub const MAX_PART_BYTES: u64 = 4 * 1024 * 1024;

/// The parts that carry document properties.
const PARTS: [&str; 3] = ["docProps/core.xml", "docProps/app.xml", "meta.xml"];
/// Office's custom properties: fields a company's systems fill in
/// (SharePoint, a records system, Outlook's `_AuthorEmail`), so their
/// values are reported as the owner's and a cleaned copy keeps the part,
/// empty, so that `[Content_Types].xml` and `_rels/.rels` still agree.
const CUSTOM_PART: &str = "docProps/custom.xml";

/// The most bytes of one content part (document text, comments, a
/// workbook) or embedded image read, uncompressed: a long book's
/// document.xml is a few tens of MiB, and a photo from a phone well under.
pub const MAX_CONTENT_PART_BYTES: u64 = 128 * 1024 * 1024;
/// The most bytes inflated from one archive in all (a zip bomb's entries
/// each stay under the limit of one): twice [`crate::MAX_PARSE_BYTES`].
pub const MAX_INFLATED_BYTES: u64 = 2 * crate::MAX_PARSE_BYTES;

/// What an element in a property part does to a cleaned copy, and what it
/// reveals (`None` ones reveal nothing the CLI names but still identify:
/// a manager's name, the version, a template's path, when it was saved
/// and printed). All of them are dropped, with what they hold. Creation
/// time is the document's "capture time": the product's rule is that a
/// cleaned copy drops it with names, device, place and software.
const PROPERTIES: [(&str, Option<Kind>); 19] = [
    ("creator", Some(Kind::Author)),
    ("lastModifiedBy", Some(Kind::Author)),
    ("initial-creator", Some(Kind::Author)),
    ("printed-by", Some(Kind::Author)),
    ("Company", Some(Kind::Owner)),
    ("Manager", Some(Kind::Owner)),
    ("user-defined", Some(Kind::Owner)),
    ("Application", Some(Kind::Software)),
    ("generator", Some(Kind::Software)),
    ("created", Some(Kind::CaptureTime)),
    ("creation-date", Some(Kind::CaptureTime)),
    ("AppVersion", None),
    ("Template", None),
    ("template", None),
    ("HyperlinkBase", None),
    ("modified", None),
    ("date", None),
    ("lastPrinted", None),
    ("print-date", None),
];

/// Elements of content parts whose text is a person's name (a workbook
/// comment's `<author>`, an ODF annotation's or tracked change's
/// `dc:creator` and initials): a cleaned copy keeps the element, empty,
/// so that what refers to it by position still does.
const NAME_ELEMENTS: [&str; 3] = ["author", "creator", "creator-initials"];

/// Attributes of content parts that name a person or their folders, by
/// element (any when `None`) and attribute local name: tracked changes'
/// and comments' `w:author`/`w:initials`, Word's people.xml, PowerPoint's
/// comment authors, Excel's persons (threaded comments), shared-workbook
/// user names and `x15ac:absPath` (the folder the workbook was saved in,
/// often under the user's name). A cleaned copy keeps them, empty: Word
/// requires `w:author` to be there.
const NAME_ATTRIBUTES: [(Option<&str>, &str); 9] = [
    (None, "author"),
    (None, "initials"),
    (None, "userId"),
    (Some("cmAuthor"), "name"),
    (Some("author"), "name"),
    (Some("person"), "displayName"),
    (Some("userInfo"), "name"),
    (Some("fileSharing"), "userName"),
    (Some("absPath"), "url"),
];

/// Attributes of content parts that a cleaned copy drops: Word's `w:date`
/// on tracked changes and comments (optional in the schema) says when
/// each was written, the editing-time kin of a capture time.
const TIME_ATTRIBUTES: [&str; 1] = ["date"];

/// What an archive entry is, for what is read from it and how it is cleaned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Document properties: [`PROPERTIES`] dropped.
    Properties,
    /// Custom properties: every property dropped.
    Custom,
    /// Text, comments, workbook, slides: names blanked.
    Content,
    /// A picture: cleaned as a photo.
    Picture,
    /// Copied as it is.
    Other,
}

/// The role of an entry, by its name.
fn role(name: &str) -> Role {
    let lower = name.to_ascii_lowercase();
    if PARTS.contains(&name) {
        Role::Properties
    } else if name == CUSTOM_PART {
        Role::Custom
    } else if [".jpg", ".jpeg", ".png", ".webp"].iter().any(|e| lower.ends_with(e)) {
        Role::Picture
    } else if lower.ends_with(".xml")
        && (["word/", "xl/", "ppt/"].iter().any(|d| name.starts_with(d))
            || ["content.xml", "styles.xml"].contains(&name))
    {
        Role::Content
    } else {
        Role::Other
    }
}

/// Office or OpenDocument, by what the archive's bytes name.
pub(crate) fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.len() > 38
        && &bytes[30..38] == b"mimetype"
        && xmp::find(&bytes[38..bytes.len().min(120)], b"opendocument").is_some()
    {
        Some(Format::Odf)
    } else if xmp::find(bytes, b"[Content_Types].xml").is_some() {
        Some(Format::Office)
    } else {
        None
    }
}

/// The archive, refused when it names too many entries.
fn open(bytes: &[u8]) -> Result<ZipArchive<Cursor<&[u8]>>, String> {
    let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("the archive does not open: {e}"))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(format!(
            "the archive has more than {MAX_ZIP_ENTRIES} entries: not examined"
        ));
    }
    Ok(zip)
}

/// One entry, uncompressed; refused past its role's limit or when the
/// archive's `budget` of inflated bytes runs out.
fn entry(zip: &mut ZipArchive<Cursor<&[u8]>>, index: usize, role: Role, budget: &mut u64) -> Result<Vec<u8>, String> {
    let limit = match role {
        Role::Properties | Role::Custom => MAX_PART_BYTES,
        _ => MAX_CONTENT_PART_BYTES,
    };
    let file = zip
        .by_index(index)
        .map_err(|e| format!("an entry does not read: {e}"))?;
    let name = file.name().to_owned();
    let mut out = Vec::new();
    file.take(limit.min(*budget) + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{name} does not read: {e}"))?;
    let read = out.len() as u64;
    if read > limit {
        return Err(format!("{name} is larger than {limit} bytes: not examined"));
    }
    if read > *budget {
        return Err(format!(
            "the archive inflates to more than {MAX_INFLATED_BYTES} bytes: not examined"
        ));
    }
    *budget -= read;
    Ok(out)
}

/// An entry's name, without inflating it.
fn name_of(zip: &mut ZipArchive<Cursor<&[u8]>>, index: usize) -> Result<String, String> {
    Ok(zip.by_index_raw(index).map_err(|e| e.to_string())?.name().to_owned())
}

/// What the archive reveals: its property parts, names in its content
/// parts, and the photos in it.
pub(crate) fn detect(bytes: &[u8]) -> Result<Vec<Finding>, String> {
    let mut zip = open(bytes)?;
    let mut budget = MAX_INFLATED_BYTES;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let name = name_of(&mut zip, i)?;
        match role(&name) {
            Role::Other => {}
            Role::Picture => {
                let data = entry(&mut zip, i, Role::Picture, &mut budget)?;
                if is_photo(&data) {
                    out.extend(image::detect(&data).map_err(|e| format!("the picture {name}: {e}"))?);
                }
            }
            role => out.extend(scrub(&entry(&mut zip, i, role, &mut budget)?, role)?.1),
        }
    }
    Ok(out)
}

/// Whether `data` is a photo this crate cleans.
fn is_photo(data: &[u8]) -> bool {
    matches!(crate::sniff(data), Some(Format::Jpeg | Format::Png | Format::Webp))
}

/// The rule for an element of a part of this role: dropped (with its
/// content) or blanked (its text), and what its text reveals.
fn element_rule(role: Role, local: &[u8]) -> Option<(bool, Option<Kind>)> {
    match role {
        Role::Properties => PROPERTIES
            .iter()
            .find(|(n, _)| n.as_bytes() == local)
            .map(|(_, k)| (true, *k)),
        Role::Custom => (local == b"property").then_some((true, Some(Kind::Owner))),
        Role::Content => NAME_ELEMENTS
            .iter()
            .any(|n| n.as_bytes() == local)
            .then_some((false, Some(Kind::Author))),
        Role::Picture | Role::Other => None,
    }
}

/// A finding of `kind` from an element's or attribute's text.
fn finding(kind: Kind, value: &str) -> Option<Finding> {
    match kind {
        Kind::CaptureTime => capture_time(value, None),
        _ => text(kind, value),
    }
}

/// The element with [`NAME_ATTRIBUTES`] emptied and [`TIME_ATTRIBUTES`]
/// dropped (when it has any), and the names they held.
fn blank_attributes(e: &BytesStart<'_>, found: &mut Vec<Finding>) -> Result<Option<BytesStart<'static>>, String> {
    let element = e.local_name();
    let named = |key: &[u8]| {
        NAME_ATTRIBUTES
            .iter()
            .any(|(el, attr)| attr.as_bytes() == key && el.is_none_or(|el| el.as_bytes() == element.as_ref()))
    };
    let mut changed = false;
    let mut kept = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("a part does not parse: {e}"))?;
        let local = a.key.local_name();
        if TIME_ATTRIBUTES.iter().any(|t| t.as_bytes() == local.as_ref()) {
            changed = true;
        } else if named(local.as_ref()) && !a.value.is_empty() {
            if let Ok(v) = a.normalized_value(quick_xml::XmlVersion::default()) {
                found.extend(text(Kind::Author, &v));
            }
            kept.push(Attribute {
                key: a.key,
                value: Cow::Borrowed(&b""[..]),
            });
            changed = true;
        } else {
            kept.push(a);
        }
    }
    if !changed {
        return Ok(None);
    }
    let mut out = e.to_owned().into_owned();
    out.clear_attributes();
    for a in kept {
        out.push_attribute(a);
    }
    Ok(Some(out))
}

/// One part as a cleaned copy has it, and what the original reveals: the
/// same pass finds and removes, so that detect and clean cannot disagree.
fn scrub(xml: &[u8], role: Role) -> Result<(Vec<u8>, Vec<Finding>), String> {
    let mut reader = Reader::from_reader(xml);
    let mut writer = Writer::new(Vec::new());
    let mut found = Vec::new();
    // Inside a dropped or blanked element: how deep, whether dropped,
    // what it reveals and its text so far.
    let mut inside: Option<(usize, bool, Option<Kind>, String)> = None;
    let mut buf = Vec::new();
    let bad = |e: quick_xml::Error| format!("a part does not parse: {e}");
    loop {
        let event = reader.read_event_into(&mut buf).map_err(bad)?;
        if let Event::Eof = event {
            break;
        }
        let mut write = true;
        let mut replaced = None;
        match (&event, &mut inside) {
            (Event::Start(_), Some((depth, dropped, _, _))) => {
                *depth += 1;
                write = !*dropped;
            }
            (Event::End(_), Some((depth, dropped, kind, value))) => {
                *depth -= 1;
                write = !*dropped;
                if *depth == 0 {
                    if let Some(kind) = kind {
                        found.extend(finding(*kind, value));
                    }
                    inside = None;
                }
            }
            (Event::Text(t), Some((_, _, _, value))) => {
                value.push_str(&t.decode().unwrap_or_default());
                write = false;
            }
            (Event::CData(t), Some((_, _, _, value))) => {
                value.push_str(&t.decode().unwrap_or_default());
                write = false;
            }
            (Event::GeneralRef(r), Some((_, _, _, value))) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    value.push(c);
                } else if let Some(s) = r.decode().ok().and_then(|n| resolve_predefined_entity(&n)) {
                    value.push_str(s);
                }
                write = false;
            }
            (_, Some((_, dropped, _, _))) => write = !*dropped,
            (Event::Start(e), None) => {
                if let Some((dropped, kind)) = element_rule(role, e.local_name().as_ref()) {
                    inside = Some((1, dropped, kind, String::new()));
                    write = !dropped;
                }
                if write && role == Role::Content {
                    replaced = blank_attributes(e, &mut found)?.map(Event::Start);
                }
            }
            (Event::Empty(e), None) => {
                if let Some((dropped, _)) = element_rule(role, e.local_name().as_ref()) {
                    write = !dropped;
                }
                if write && role == Role::Content {
                    replaced = blank_attributes(e, &mut found)?.map(Event::Empty);
                }
            }
            _ => {}
        }
        if write {
            writer
                .write_event(replaced.unwrap_or_else(|| event.borrow()))
                .map_err(|e| format!("a part could not be written: {e}"))?;
        }
        buf.clear();
    }
    Ok((writer.into_inner(), found))
}

/// A copy without what [`detect`] reads: property parts without names,
/// company, software and times, custom properties emptied, names in
/// comments, tracked changes and workbooks blanked, photos cleaned. Every
/// other entry (and every one these leave unchanged) is copied byte for
/// byte, compressed as it was, in order.
pub(crate) fn clean(bytes: &[u8]) -> Result<Vec<u8>, CleanError> {
    let mut zip = open(bytes).map_err(CleanError::Damaged)?;
    let mut budget = MAX_INFLATED_BYTES;
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    let werr = |e: zip::result::ZipError| CleanError::Damaged(format!("the archive could not be written: {e}"));
    for i in 0..zip.len() {
        let name = name_of(&mut zip, i).map_err(CleanError::Damaged)?;
        let role = role(&name);
        let replacement = match role {
            Role::Other => None,
            Role::Picture => {
                let data = entry(&mut zip, i, role, &mut budget).map_err(CleanError::Damaged)?;
                if !is_photo(&data) {
                    None
                } else {
                    match image::clean(&data) {
                        Ok(cleaned) => (cleaned != data).then_some(cleaned),
                        // A picture img-parts cannot rewrite stays as it
                        // is only when it reveals nothing.
                        Err(_) if image::detect(&data).is_ok_and(|f| f.is_empty()) => None,
                        Err(e) => {
                            return Err(CleanError::Damaged(format!(
                                "the picture {name} could not be cleaned: {e}"
                            )))
                        }
                    }
                }
            }
            _ => {
                let xml = entry(&mut zip, i, role, &mut budget).map_err(CleanError::Damaged)?;
                let (scrubbed, _) = scrub(&xml, role).map_err(CleanError::Damaged)?;
                (scrubbed != xml).then_some(scrubbed)
            }
        };
        match replacement {
            None => {
                let file = zip.by_index_raw(i).map_err(|e| CleanError::Damaged(e.to_string()))?;
                out.raw_copy_file(file).map_err(werr)?;
            }
            Some(data) => {
                let modified = zip.by_index_raw(i).ok().and_then(|f| f.last_modified());
                let mut options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
                // The entry's own time, or zip's earliest: never "now", so
                // that cleaning the same file twice gives the same bytes.
                options = options.last_modified_time(modified.unwrap_or_default());
                out.start_file(name, options).map_err(werr)?;
                out.write_all(&data)
                    .map_err(|e| CleanError::Damaged(format!("the archive could not be written: {e}")))?;
            }
        }
    }
    Ok(out.finish().map_err(werr)?.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read, Write};

    use zip::write::SimpleFileOptions;
    use zip::{ZipArchive, ZipWriter};

    use crate::{clean, detect, Format, Kind};

    /// An archive of these entries, in order.
    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// Every entry's name and uncompressed bytes.
    fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().to_owned(), data)
            })
            .collect()
    }

    /// A document that names its people everywhere but in its core
    /// properties: custom properties, a tracked change, a comment, Word's
    /// people, a workbook's comment author and folder, PowerPoint's comment
    /// author, a photo with GPS; and its creation time.
    fn named_everywhere() -> Vec<u8> {
        let photo = include_bytes!("../../../fuzz/seeds/meta_image/gps.jpg");
        archive(&[
            ("[Content_Types].xml", b"<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>"),
            ("docProps/core.xml", b"<cp:coreProperties xmlns:cp=\"c\" xmlns:dcterms=\"t\"><dcterms:created>2024-03-01T10:20:30Z</dcterms:created><dcterms:modified>2024-03-02T10:20:30Z</dcterms:modified></cp:coreProperties>"),
            ("docProps/custom.xml", b"<Properties xmlns=\"p\" xmlns:vt=\"v\"><property fmtid=\"{D5CDD505}\" pid=\"2\" name=\"_AuthorEmail\"><vt:lpwstr>jane.roe@clinic.example</vt:lpwstr></property></Properties>"),
            ("word/document.xml", b"<w:document xmlns:w=\"w\"><w:body><w:p><w:ins w:id=\"1\" w:author=\"Jane Roe\" w:date=\"2024-03-01T10:00:00Z\"><w:r><w:t>bruises &amp; burns</w:t></w:r></w:ins></w:p></w:body></w:document>"),
            ("word/comments.xml", b"<w:comments xmlns:w=\"w\"><w:comment w:id=\"0\" w:author=\"Dr. Ivan Petrov\" w:initials=\"IP\"><w:p/></w:comment></w:comments>"),
            ("word/people.xml", b"<w15:people xmlns:w15=\"x\"><w15:person w15:author=\"Jane Roe\"><w15:presenceInfo w15:providerId=\"AD\" w15:userId=\"S::jroe@clinic.example::1\"/></w15:person></w15:people>"),
            ("word/media/image1.jpg", photo),
            ("xl/comments1.xml", b"<comments xmlns=\"s\"><authors><author>Petrov, Ivan</author></authors></comments>"),
            ("xl/workbook.xml", b"<workbook xmlns=\"s\" xmlns:x15ac=\"a\"><x15ac:absPath url=\"C:\\Users\\ipetrov\\Documents\\\"/><sheets/></workbook>"),
            ("ppt/commentAuthors.xml", b"<p:cmAuthorLst xmlns:p=\"p\"><p:cmAuthor id=\"0\" name=\"Ivan P\" initials=\"IvP\" lastIdx=\"1\" clrIdx=\"0\"/></p:cmAuthorLst>"),
        ])
    }

    #[test]
    fn names_in_comments_changes_custom_properties_and_photos_are_found_and_cleaned() {
        let original = named_everywhere();
        let found: Vec<_> = detect(&original)
            .findings
            .into_iter()
            .map(|f| (f.kind, f.value))
            .collect();
        for expected in [
            (Kind::Author, "Jane Roe"),
            (Kind::Author, "Dr. Ivan Petrov"),
            (Kind::Author, "IP"),
            (Kind::Author, "S::jroe@clinic.example::1"),
            (Kind::Author, "Petrov, Ivan"),
            (Kind::Author, "C:\\Users\\ipetrov\\Documents\\"),
            (Kind::Author, "Ivan P"),
            (Kind::Owner, "jane.roe@clinic.example"),
            (Kind::CaptureTime, "2024-03-01 10:20:30 +00:00"),
        ] {
            assert!(
                found.contains(&(expected.0, expected.1.to_owned())),
                "{expected:?} not in {found:?}"
            );
        }
        assert!(found.iter().any(|(k, _)| *k == Kind::Gps), "{found:?}");

        let cleaned = clean(&original).unwrap();
        assert!(detect(&cleaned).findings.is_empty());
        let before = entries(&original);
        let after = entries(&cleaned);
        assert_eq!(
            before.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            after.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        for (name, data) in &after {
            for leak in [
                &b"Jane"[..],
                b"Petrov",
                b"jroe",
                b"ipetrov",
                b"Ivan",
                b"IvP",
                b"2024-03-0",
                b"Exif",
            ] {
                assert!(
                    crate::xmp::find(data, leak).is_none(),
                    "{name} still has {:?}",
                    String::from_utf8_lossy(leak)
                );
            }
        }
        let text = |n: &str| {
            after
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
                .unwrap()
        };
        // The text, the elements names refer to, and the custom part stay.
        assert!(text("word/document.xml").contains("<w:t>bruises &amp; burns</w:t>"));
        assert!(text("word/comments.xml").contains(r#"w:author="" w:initials="""#));
        assert!(text("docProps/custom.xml").starts_with("<Properties"));
    }

    #[test]
    fn odf_and_docx_properties_are_found_and_cleaned() {
        let odt = include_bytes!("../../../fuzz/seeds/meta_office/creator.odt");
        let r = detect(odt);
        assert_eq!(r.format, Some(Format::Odf));
        let kinds: Vec<_> = r.findings.iter().map(|f| (f.kind, f.value.as_str())).collect();
        assert!(
            kinds.contains(&(Kind::Author, "A")) && kinds.contains(&(Kind::Software, "G")),
            "{kinds:?}"
        );
        let cleaned = clean(odt).unwrap();
        assert!(detect(&cleaned).findings.is_empty());
        // ODF's first entry stays the stored "mimetype".
        assert_eq!(&cleaned[30..38], b"mimetype");

        let docx = include_bytes!("../../../fuzz/seeds/meta_office/creator.docx");
        assert_eq!(detect(docx).findings.len(), 4);
        assert!(detect(&clean(docx).unwrap()).findings.is_empty());
    }
}
