//! PDF, read and rewritten with lopdf: the Info dictionary (Author,
//! Creator, Producer), XMP metadata streams, comment authors (a markup
//! annotation's /T), applications' private /PieceInfo, the trailer's /ID,
//! and the EXIF of JPEG images inside (cleaned as photos). What the pages
//! say is left to the sender.

use lopdf::{decode_text_string, Dictionary, Document, Object, StringFormat};
use sha2::{Digest, Sha256};

use crate::{image, text, xmp, CleanError, Finding, Kind};

/// Annotation subtypes that are someone's comment or mark-up, whose /T
/// is its author's name (PDF 32000-1, 12.5.6.2) and /M, /CreationDate
/// when they wrote it. Widgets are not here: their /T is a form field's
/// name, which the form needs.
const MARKUP_SUBTYPES: [&[u8]; 18] = [
    b"Text",
    b"FreeText",
    b"Line",
    b"Square",
    b"Circle",
    b"Polygon",
    b"PolyLine",
    b"Highlight",
    b"Underline",
    b"Squiggly",
    b"StrikeOut",
    b"Stamp",
    b"Caret",
    b"Ink",
    b"FileAttachment",
    b"Sound",
    b"Redact",
    b"Popup",
];

/// Whether a dictionary is a comment or mark-up annotation.
fn is_markup(dict: &Dictionary) -> bool {
    dict.get(b"Subtype")
        .and_then(Object::as_name)
        .is_ok_and(|s| MARKUP_SUBTYPES.contains(&s))
}

/// The JPEG inside an image stream, when its only filter is DCTDecode
/// (the stream's bytes are then a JPEG file, EXIF and all).
fn jpeg_of(stream: &lopdf::Stream) -> Option<&[u8]> {
    let filters = stream.filters().ok()?;
    (filters == [b"DCTDecode"] && crate::sniff(&stream.content) == Some(crate::Format::Jpeg))
        .then_some(&stream.content[..])
}

/// Info dictionary keys and what they reveal.
const INFO_KEYS: [(&[u8], Kind); 3] = [
    (b"Author", Kind::Author),
    (b"Creator", Kind::Software),
    (b"Producer", Kind::Software),
];

/// Deepest nesting of arrays and dictionaries read. lopdf's parser
/// recurses once per level with no limit of its own, so a file of
/// `[[[[...` overflowed the reader's stack and killed the process (a
/// lawyer's `get` examines what a sender uploaded); real documents nest a
/// handful of levels.
const MAX_NESTING: usize = 100;

/// Whether the PDF's objects nest deeper than [`MAX_NESTING`], read as
/// lopdf would: brackets in strings, comments and stream data do not count.
fn nests_too_deep(bytes: &[u8]) -> bool {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'[' => depth += 1,
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 1;
            }
            b']' => depth = depth.saturating_sub(1),
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'%' => i = skip_past(bytes, i, |b| b == b'\n' || b == b'\r'),
            b'(' => i = end_of_string(bytes, i),
            // Stream data is skipped only up to its `endstream`: a
            // "stream" with none after it is read on like the rest.
            b's' if bytes[i..].starts_with(b"stream") && !bytes[..i].ends_with(b"end") => {
                if let Some(end) = find(bytes, i, b"endstream") {
                    i = end;
                }
            }
            _ => {}
        }
        if depth > MAX_NESTING {
            return true;
        }
        i += 1;
    }
    false
}

/// The index of the first byte after `from` for which `stop` holds (or the end).
fn skip_past(bytes: &[u8], from: usize, stop: impl Fn(u8) -> bool) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| stop(b))
        .map_or(bytes.len(), |p| from + p)
}

/// The index of the `)` that closes the literal string opening at `from`
/// (strings nest their parentheses; a backslash escapes the next byte).
fn end_of_string(bytes: &[u8], from: usize) -> usize {
    let (mut open, mut i) = (0usize, from);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'(' => open += 1,
            b')' => {
                open -= 1;
                if open == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Where `needle` next starts at or after `from`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The document, refusing encrypted ones (their metadata cannot be read
/// or rewritten without the password) and ones nested too deep to parse
/// safely.
fn load(bytes: &[u8]) -> Result<Document, String> {
    if nests_too_deep(bytes) {
        return Err(format!(
            "the PDF nests objects more than {MAX_NESTING} levels deep: not examined"
        ));
    }
    let doc = Document::load_mem(bytes).map_err(|e| format!("the PDF does not parse: {e}"))?;
    if doc.is_encrypted() || doc.trailer.get(b"Encrypt").is_ok() {
        return Err("the PDF is encrypted: its metadata was not examined".into());
    }
    Ok(doc)
}

/// The trailer's Info dictionary, when there is one.
fn info(doc: &Document) -> Option<&Dictionary> {
    let obj = doc.trailer.get(b"Info").ok()?;
    doc.dereference(obj).ok()?.1.as_dict().ok()
}

/// What the Info dictionary and XMP (the catalog's, decompressed, and any
/// packet in the clear) reveal.
pub(crate) fn detect(bytes: &[u8]) -> Result<Vec<Finding>, String> {
    let doc = load(bytes)?;
    let mut out = Vec::new();
    if let Some(info) = info(&doc) {
        for (key, kind) in INFO_KEYS {
            if let Ok(v) = info.get(key) {
                if let Ok(v) = doc.dereference(v).and_then(|(_, o)| decode_text_string(o)) {
                    out.extend(text(kind, &v));
                }
            }
        }
    }
    let catalog_xmp = doc
        .catalog()
        .ok()
        .and_then(|c| c.get(b"Metadata").ok())
        .and_then(|m| doc.dereference(m).ok())
        .and_then(|(_, o)| o.as_stream().ok())
        .and_then(|s| s.decompressed_content().ok().or_else(|| Some(s.content.clone())));
    if let Some(x) = catalog_xmp {
        out.extend(xmp::in_bytes(&x));
    }
    out.extend(xmp::in_bytes(bytes));
    for object in doc.objects.values() {
        let (dict, stream) = match object {
            Object::Dictionary(d) => (d, None),
            Object::Stream(s) => (&s.dict, Some(s)),
            _ => continue,
        };
        if is_markup(dict) {
            if let Ok(v) = dict.get(b"T").and_then(decode_text_string) {
                out.extend(text(Kind::Author, &v));
            }
        }
        // /PieceInfo is keyed by the application that wrote it.
        if let Ok(pieces) = dict
            .get(b"PieceInfo")
            .and_then(|p| doc.dereference(p))
            .and_then(|(_, p)| p.as_dict())
        {
            for (app, _) in pieces.iter() {
                out.extend(text(Kind::Software, &String::from_utf8_lossy(app)));
            }
        }
        if let Some(jpeg) = stream.and_then(jpeg_of) {
            out.extend(image::detect(jpeg).unwrap_or_default());
        }
    }
    Ok(out)
}

/// A copy with an empty Info dictionary and no Metadata streams anywhere
/// (catalog, pages, images), rewritten whole so that no earlier revision
/// (an incremental update's old values) survives, and objects nothing
/// refers to any more pruned.
pub(crate) fn clean(bytes: &[u8]) -> Result<Vec<u8>, CleanError> {
    let mut doc = load(bytes).map_err(CleanError::Damaged)?;
    doc.trailer.remove(b"Info");
    doc.trailer.remove(b"ID");
    for object in doc.objects.values_mut() {
        if let Object::Stream(stream) = object {
            if let Some(jpeg) = jpeg_of(stream) {
                match image::clean(jpeg) {
                    Ok(cleaned) => stream.set_content(cleaned),
                    // A JPEG img-parts cannot rewrite stays only when it
                    // reveals nothing.
                    Err(_) if image::detect(jpeg).is_ok_and(|f| f.is_empty()) => {}
                    Err(e) => {
                        return Err(CleanError::Damaged(format!(
                            "an image in the PDF could not be cleaned: {e}"
                        )))
                    }
                }
            }
        }
        let dict = match object {
            Object::Dictionary(d) => d,
            Object::Stream(s) => &mut s.dict,
            _ => continue,
        };
        dict.remove(b"Metadata");
        dict.remove(b"PieceInfo");
        if is_markup(dict) {
            for key in [&b"T"[..], b"M", b"CreationDate"] {
                dict.remove(key);
            }
        }
    }
    doc.prune_objects();
    let save = |doc: &mut Document| {
        let mut out = Vec::new();
        doc.save_to(&mut out)
            .map_err(|e| CleanError::Damaged(format!("the PDF could not be rewritten: {e}")))?;
        Ok::<_, CleanError>(out)
    };
    // The trailer's /ID (often a hash of the time, the path and the
    // machine that made the file) is replaced by one derived from the
    // cleaned content itself: readers and PDF 2.0 expect one, and
    // cleaning stays deterministic.
    let without_id = save(&mut doc)?;
    let id = Sha256::digest(&without_id)[..16].to_vec();
    let id = Object::String(id, StringFormat::Hexadecimal);
    doc.trailer.set("ID", Object::Array(vec![id.clone(), id]));
    save(&mut doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed PDF (header, one object, cross-reference table,
    /// trailer) whose Info dictionary's Author nests `depth` arrays.
    fn deep_pdf(depth: usize) -> Vec<u8> {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let catalog = pdf.len();
        pdf.extend(b"1 0 obj\n<< /Type /Catalog >>\nendobj\n");
        let info = pdf.len();
        pdf.extend(b"2 0 obj\n<< /Author ");
        pdf.extend(std::iter::repeat_n(b'[', depth));
        pdf.extend(std::iter::repeat_n(b']', depth));
        pdf.extend(b" >>\nendobj\n");
        let xref = pdf.len();
        pdf.extend(format!("xref\n0 3\n0000000000 65535 f \n{catalog:010} 00000 n \n{info:010} 00000 n \ntrailer\n<< /Size 3 /Root 1 0 R /Info 2 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes());
        pdf
    }

    /// A one-page PDF with a comment by "Dr Petrov" and its popup, an
    /// Illustrator /PieceInfo naming a user's folder, the seed photo (GPS
    /// in its EXIF) as a JPEG image, and a trailer /ID.
    fn commented_pdf() -> Vec<u8> {
        use lopdf::{dictionary, Stream};
        let photo = include_bytes!("../../../fuzz/seeds/meta_image/gps.jpg");
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let image_id = doc.add_object(Stream::new(
            dictionary! { "Type" => "XObject", "Subtype" => "Image", "Width" => 1, "Height" => 1,
            "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8, "Filter" => "DCTDecode" },
            photo.to_vec(),
        ));
        let note_id = doc.new_object_id();
        let popup_id = doc.add_object(dictionary! { "Type" => "Annot", "Subtype" => "Popup",
            "T" => Object::string_literal("Dr Petrov"), "Parent" => note_id, "Rect" => vec![0.into(), 0.into(), 9.into(), 9.into()] });
        doc.objects.insert(
            note_id,
            Object::Dictionary(dictionary! { "Type" => "Annot", "Subtype" => "Text",
            "T" => Object::string_literal("Dr Petrov"), "Contents" => Object::string_literal("burns on both hands"),
            "M" => Object::string_literal("D:20240301102030Z"), "Popup" => popup_id,
            "Rect" => vec![0.into(), 0.into(), 9.into(), 9.into()] }),
        );
        let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 9.into(), 9.into()],
            "Resources" => dictionary! { "XObject" => dictionary! { "Im1" => image_id } },
            "Annots" => vec![note_id.into(), popup_id.into()],
            "PieceInfo" => dictionary! { "Illustrator" => dictionary! { "Private" => Object::string_literal("C:\\Users\\jroe\\scan.ai") } } });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let machine = Object::String(b"machine-7f3a".to_vec(), StringFormat::Hexadecimal);
        doc.trailer.set("ID", Object::Array(vec![machine.clone(), machine]));
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    #[test]
    fn comment_authors_piece_info_ids_and_photo_exif_are_found_and_cleaned() {
        let original = commented_pdf();
        let found = crate::detect(&original).findings;
        let has = |kind: Kind, value: &str| found.iter().any(|f| f.kind == kind && f.value == value);
        assert!(has(Kind::Author, "Dr Petrov"), "{found:?}");
        assert!(has(Kind::Software, "Illustrator"), "{found:?}");
        assert!(found.iter().any(|f| f.kind == Kind::Gps), "{found:?}");

        let cleaned = crate::clean(&original).unwrap();
        assert_eq!(crate::clean(&original).unwrap(), cleaned, "cleaning is deterministic");
        let doc = Document::load_mem(&cleaned).unwrap();
        let mut saw_image = false;
        for object in doc.objects.values() {
            let dict = match object {
                Object::Dictionary(d) => d,
                Object::Stream(s) => {
                    if jpeg_of(s).is_some() {
                        saw_image = true;
                        let photo = include_bytes!("../../../fuzz/seeds/meta_image/gps.jpg");
                        assert_eq!(s.content, image::clean(photo).unwrap(), "pixels kept, EXIF gone");
                    }
                    &s.dict
                }
                _ => continue,
            };
            assert!(dict.get(b"PieceInfo").is_err());
            if is_markup(dict) {
                assert!(dict.get(b"T").is_err() && dict.get(b"M").is_err());
            }
        }
        assert!(saw_image);
        let id = doc.trailer.get(b"ID").unwrap().as_array().unwrap();
        assert_ne!(id[0].as_str().unwrap(), b"machine-7f3a");
        // The comment's text is the sender's: it stays.
        assert!(xmp::find(&cleaned, b"burns on both hands").is_some());
    }

    #[test]
    fn a_pdf_nested_past_the_limit_is_refused_not_parsed() {
        // Deep enough to overflow a thread's stack in lopdf's parser.
        let deep = deep_pdf(1_000_000);
        let e = detect(&deep).unwrap_err();
        assert!(e.contains("levels deep"), "{e}");
        assert!(matches!(clean(&deep), Err(CleanError::Damaged(_))));
    }

    #[test]
    fn brackets_in_strings_comments_and_streams_do_not_count() {
        let mut pdf = b"%PDF-1.4 [[[[\n1 0 obj (a [[[ \\( [[ string)\n".to_vec();
        pdf.extend(b"<< /Length 300 >>\nstream\n");
        pdf.extend(std::iter::repeat_n(b'[', 300));
        pdf.extend(b"\nendstream\nendobj\n[[[ ]]]");
        assert!(!nests_too_deep(&pdf));
        let mut deep = pdf.clone();
        deep.extend(std::iter::repeat_n(b'[', MAX_NESTING + 1));
        assert!(nests_too_deep(&deep));
        // A "stream" that never ends hides nothing after it.
        let mut open = b"<< >> stream\n".to_vec();
        open.extend(std::iter::repeat_n(b'[', MAX_NESTING + 1));
        assert!(nests_too_deep(&open));
    }
}
