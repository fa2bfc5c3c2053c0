//! Photos: JPEG, PNG and WebP (read and cleaned with img-parts, EXIF read
//! with kamadak-exif) and HEIC/HEIF (read here: kamadak-exif finds its
//! EXIF item, packet scanning its XMP; cleaned in place by heif.rs, since
//! no maintained Rust crate rewrites HEIF's item boxes).

use bytes::Bytes;
use img_parts::jpeg::{markers, Jpeg};
use img_parts::png::Png;
use img_parts::riff::RiffContent;
use img_parts::webp::WebP;

use crate::{capture_time, exif, sniff, text, xmp, CleanError, Finding, Format, Kind};

/// What a photo's EXIF and XMP reveal, with what kamadak-exif and packet
/// scanning cannot see: EXIF in a JPEG's APP1 placed after its first scan
/// (kamadak-exif stops at the first SOS) and PNG text chunks, compressed
/// ones included (an XMP packet in a compressed iTXt is zlib data, not
/// text a scan finds).
pub(crate) fn detect(bytes: &[u8]) -> Result<Vec<Finding>, String> {
    let mut out = exif::in_container(bytes)?;
    out.extend(xmp::in_bytes(bytes));
    match sniff(bytes) {
        Some(Format::Jpeg) => {
            for (marker, range) in jpeg_layout(bytes).map(|l| l.late).unwrap_or_default() {
                let contents = &bytes[range.start + 4..range.end];
                if let (markers::APP1, Some(tiff)) = (marker, contents.strip_prefix(b"Exif\0\0")) {
                    if let Ok(found) = ::exif::Reader::new().read_raw(tiff.to_vec()) {
                        out.extend(exif::findings(&found));
                    }
                }
            }
        }
        Some(Format::Png) => {
            if let Ok(png) = Png::from_bytes(Bytes::copy_from_slice(bytes)) {
                for chunk in png.chunks() {
                    out.extend(png_text(&chunk.kind(), chunk.contents()));
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The PNG chunks a cleaned copy keeps: the ones that carry pixels
/// (IHDR, PLTE, IDAT, IEND, and APNG's acTL, fcTL, fdAT for animations),
/// transparency (tRNS, sBIT) or how colours and size are meant to be
/// shown (cHRM, gAMA, iCCP, sRGB, cICP, mDCv, cLLi, bKGD, hIST, pHYs).
/// Everything else goes, because a keep-list cannot miss a chunk nobody
/// thought of: the text chunks and eXIf, tIME, sPLT (a named palette,
/// free text), dSIG, caNv and orNT (not in the PNG standard; the
/// orientation a phone writes, like JPEG's, lives in EXIF and goes with
/// it, so a photo may show turned: its pixels are unchanged) and every
/// private chunk (lower-case first letter: a program's own data, which is
/// where editors and phones put who and where).
const PNG_KEEP: [&[u8; 4]; 19] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP", b"mDCv",
    b"cLLi", b"bKGD", b"hIST", b"pHYs", b"acTL", b"fcTL", b"fdAT",
];

/// The most bytes one compressed PNG text chunk is inflated to (the XMP
/// reader's own limit: more is a bomb, not a packet).
const MAX_PNG_TEXT_BYTES: u64 = 4 * 1024 * 1024;

/// What one PNG text chunk (tEXt, zTXt, iTXt) reveals: an XMP packet
/// (keyword "XML:com.adobe.xmp"), or the standard keywords Author,
/// Software, Source (the device) and "Creation Time".
fn png_text(kind: &[u8; 4], contents: &[u8]) -> Vec<Finding> {
    use std::io::Read;
    let Some(nul) = contents.iter().position(|&b| b == 0) else {
        return Vec::new();
    };
    let (keyword, rest) = (&contents[..nul], &contents[nul + 1..]);
    // (compressed, the text's bytes) as each chunk lays them out.
    let (compressed, raw): (bool, &[u8]) = match kind {
        b"tEXt" => (false, rest),
        b"zTXt" => (true, rest.get(1..).unwrap_or_default()),
        b"iTXt" => {
            // Compression flag, method, language tag\0, translated keyword\0.
            let flag = rest.first().copied().unwrap_or(0);
            let after_method = rest.get(2..).unwrap_or_default();
            let mut parts = after_method.splitn(3, |&b| b == 0);
            let (_, _, text) = (parts.next(), parts.next(), parts.next());
            (flag != 0, text.unwrap_or_default())
        }
        _ => return Vec::new(),
    };
    let inflated;
    let body = if compressed {
        let mut out = Vec::new();
        let decoder = flate2::read::ZlibDecoder::new(raw);
        if decoder.take(MAX_PNG_TEXT_BYTES).read_to_end(&mut out).is_err() {
            return Vec::new();
        }
        inflated = out;
        &inflated[..]
    } else {
        raw
    };
    let value = String::from_utf8_lossy(body);
    match keyword {
        b"XML:com.adobe.xmp" => xmp::in_bytes(body),
        b"Author" => text(Kind::Author, &value).into_iter().collect(),
        b"Software" => text(Kind::Software, &value).into_iter().collect(),
        b"Source" => text(Kind::Device, &value).into_iter().collect(),
        b"Creation Time" => capture_time(&value, None).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A copy without EXIF, XMP, IPTC, comments and (PNG) text chunks.
pub(crate) fn clean(bytes: &[u8]) -> Result<Vec<u8>, CleanError> {
    let damaged = |e: img_parts::Error| CleanError::Damaged(format!("the image does not parse: {e}"));
    let input = Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    match sniff(bytes) {
        Some(Format::Jpeg) => {
            let mut jpeg = Jpeg::from_bytes(input).map_err(damaged)?;
            jpeg.segments_mut()
                .retain(|s| keep_jpeg_segment(s.marker(), s.contents()));
            jpeg.encoder()
                .write_to(&mut out)
                .map_err(|e| CleanError::Damaged(e.to_string()))?;
            // img-parts reads everything after the first scan header as
            // image data, so APPn and COM segments between the scans of a
            // progressive JPEG survive its retain: drop them here, copying
            // every other byte (scan headers, tables, entropy-coded data)
            // as it is. Data after the image's end (a phone's trailer, the
            // second images of an MPF file, with their own EXIF) is not
            // this image's pixels: cut it.
            let layout = jpeg_layout(&out).ok_or_else(|| CleanError::Damaged("the JPEG has no end".into()))?;
            let mut kept = Vec::with_capacity(layout.end);
            let mut at = 0;
            for (marker, range) in &layout.late {
                if !keep_jpeg_segment(*marker, &out[range.start + 4..range.end]) {
                    kept.extend_from_slice(&out[at..range.start]);
                    at = range.end;
                }
            }
            kept.extend_from_slice(&out[at..layout.end]);
            out = kept;
        }
        Some(Format::Png) => {
            let mut png = Png::from_bytes(input).map_err(damaged)?;
            // A critical chunk (upper-case first letter) this copy does not
            // know may change the pixels: decoders refuse such a file, and
            // dropping it could make a different picture. Refuse instead.
            if let Some(c) = png
                .chunks()
                .iter()
                .find(|c| c.kind()[0].is_ascii_uppercase() && !PNG_KEEP.contains(&&c.kind()))
            {
                return Err(CleanError::Unsupported(format!(
                    "the PNG has a critical chunk {:?} this copy cannot vouch for",
                    String::from_utf8_lossy(&c.kind())
                )));
            }
            png.chunks_mut().retain(|c| PNG_KEEP.contains(&&c.kind()));
            png.encoder()
                .write_to(&mut out)
                .map_err(|e| CleanError::Damaged(e.to_string()))?;
        }
        Some(Format::Webp) => {
            let mut webp = WebP::from_bytes(input).map_err(damaged)?;
            webp.chunks_mut().retain(|c| WEBP_KEEP.contains(&&c.id()));
            let has_icc = webp.has_chunk(*b"ICCP");
            // VP8X's flags must agree with the chunks that are left: EXIF
            // (bit 3) and XMP (bit 2) are gone; the ICC bit (5) says
            // whether an ICCP chunk is there; alpha (4) and animation (1)
            // stay with their kept chunks; the reserved bits and the three
            // reserved bytes after the flags are zero, as the format
            // requires (they are room a program could hide data in).
            for chunk in webp.chunks_mut() {
                if chunk.id() == *b"VP8X" {
                    if let RiffContent::Data(data) = chunk.content_mut() {
                        let mut header = data.to_vec();
                        if let Some(flags) = header.first_mut() {
                            *flags &= VP8X_ALPHA | VP8X_ANIMATION;
                            if has_icc {
                                *flags |= VP8X_ICC;
                            }
                        }
                        for reserved in header.iter_mut().skip(1).take(3) {
                            *reserved = 0;
                        }
                        *data = Bytes::from(header);
                    }
                }
            }
            webp.encoder()
                .write_to(&mut out)
                .map_err(|e| CleanError::Damaged(e.to_string()))?;
        }
        _ => return Err(CleanError::Unsupported("not a JPEG, PNG or WebP".into())),
    }
    Ok(out)
}

/// The WebP chunks a cleaned copy keeps: the image (VP8, VP8L, ALPH), its
/// header (VP8X), animation (ANIM, ANMF) and colour profile (ICCP). EXIF,
/// XMP and every chunk nobody listed go: a keep-list cannot miss one.
const WEBP_KEEP: [&[u8; 4]; 7] = [b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"];

/// VP8X flag bits (WebP container specification, "Extended File Format").
const VP8X_ICC: u8 = 0b0010_0000;
const VP8X_ALPHA: u8 = 0b0001_0000;
const VP8X_ANIMATION: u8 = 0b0000_0010;

/// Whether a JPEG segment stays: JFIF (APP0), the ICC colour profile
/// (APP2 "ICC_PROFILE") and Adobe's colour transform (APP14) change how
/// the pixels look; every other APPn (EXIF and XMP in APP1, MPF, IPTC in
/// APP13, makers' own) and comments go. Non-APP segments are the image.
fn keep_jpeg_segment(marker: u8, contents: &[u8]) -> bool {
    match marker {
        markers::APP0 | markers::APP14 => true,
        markers::APP2 => contents.starts_with(b"ICC_PROFILE\0"),
        markers::COM => false,
        m if (markers::APP0..=markers::APP15).contains(&m) => false,
        _ => true,
    }
}

/// Where a JPEG ends, and the APPn and COM segments after its first scan
/// header, which img-parts counts as image data.
struct JpegLayout {
    /// The index just past the end-of-image marker.
    end: usize,
    /// Each APPn or COM segment after the first SOS: its marker and its
    /// bytes, from the 0xFF of its marker to its end.
    late: Vec<(u8, std::ops::Range<usize>)>,
}

/// The layout of a JPEG, walking its segments and entropy-coded data
/// (stuffed 0xFF00, restart markers, fill bytes, and the later scans'
/// headers and tables of a progressive JPEG); none when it is cut short
/// or a segment runs past the end.
fn jpeg_layout(b: &[u8]) -> Option<JpegLayout> {
    let mut i = 2;
    let mut in_scan = false;
    let mut late = Vec::new();
    while i + 1 < b.len() {
        if b[i] != 0xff {
            if !in_scan {
                return None;
            }
            i += 1;
            continue;
        }
        let m = b[i + 1];
        match m {
            0xd9 => return Some(JpegLayout { end: i + 2, late }),
            0x00 | 0xd0..=0xd7 if in_scan => i += 2,
            0xff => i += 1,
            0x01 | 0xd0..=0xd7 => i += 2,
            _ => {
                let len = usize::from(u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]));
                if len < 2 || i + 2 + len > b.len() {
                    return None;
                }
                if in_scan && ((markers::APP0..=markers::APP15).contains(&m) || m == markers::COM) {
                    late.push((m, i..i + 2 + len));
                }
                i += 2 + len;
                in_scan = in_scan || m == markers::SOS;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use img_parts::png::PngChunk;

    use crate::{clean, detect, Kind};

    /// A PNG of the given chunks (CRCs computed) after the signature.
    fn png(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, contents) in chunks {
            let chunk = PngChunk::new(**kind, bytes::Bytes::copy_from_slice(contents));
            out.extend_from_slice(&chunk.encoder().bytes());
        }
        out
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    const IHDR: &[u8] = b"\0\0\0\x01\0\0\0\x01\x08\0\0\0\0";

    #[test]
    fn png_keeps_only_pixel_and_colour_chunks_and_reads_compressed_xmp() {
        let idat = zlib(&[0, 0x80]);
        let xmp = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="PhoneCam 7"/></rdf:RDF></x:xmpmeta>"#;
        let mut itxt = b"XML:com.adobe.xmp\0\x01\0\0\0".to_vec();
        itxt.extend(zlib(xmp));
        let mut ztxt = b"Author\0\0".to_vec();
        ztxt.extend(zlib(b"Jane Roe"));
        let original = png(&[
            (b"IHDR", IHDR),
            (b"gAMA", b"\0\0\xb1\x8f"),
            (b"prVt", b"Jane Doe, C:\\Users\\jdoe"),
            (b"sPLT", b"Jane's palette\0\x08"),
            (b"iTXt", &itxt),
            (b"zTXt", &ztxt),
            (b"IDAT", &idat),
            (b"IEND", b""),
        ]);
        let found: Vec<_> = detect(&original)
            .findings
            .into_iter()
            .map(|f| (f.kind, f.value))
            .collect();
        assert!(found.contains(&(Kind::Software, "PhoneCam 7".into())), "{found:?}");
        assert!(found.contains(&(Kind::Author, "Jane Roe".into())), "{found:?}");

        let cleaned = clean(&original).unwrap();
        assert_eq!(
            cleaned,
            png(&[
                (b"IHDR", IHDR),
                (b"gAMA", b"\0\0\xb1\x8f"),
                (b"IDAT", &idat),
                (b"IEND", b"")
            ])
        );
    }

    #[test]
    fn png_with_an_unknown_critical_chunk_is_not_cleaned() {
        let original = png(&[
            (b"IHDR", IHDR),
            (b"XYZW", b"?"),
            (b"IDAT", &zlib(&[0, 0])),
            (b"IEND", b""),
        ]);
        assert!(matches!(clean(&original), Err(crate::CleanError::Unsupported(_))));
    }

    /// A WebP of the given chunks.
    fn webp(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn webp_keeps_only_image_chunks_and_its_flags_agree() {
        // Flags: ICC, EXIF, XMP and a reserved bit; reserved bytes not zero.
        let vp8x = b"\x2d\x01\x02\x03\0\0\0\0\0\0";
        let vp8l = b"\x2f\0\0\0\0\x07\0\0\0\0";
        let original = webp(&[
            (b"VP8X", vp8x),
            (b"ICCP", b"profile"),
            (b"VP8L", vp8l),
            (b"prVt", b"Jane Doe"),
            (b"XMP ", b"<x:xmpmeta/>"),
        ]);
        let cleaned = clean(&original).unwrap();
        assert_eq!(
            cleaned,
            webp(&[
                (b"VP8X", b"\x20\0\0\0\0\0\0\0\0\0"),
                (b"ICCP", b"profile"),
                (b"VP8L", vp8l)
            ])
        );
    }

    /// The seed photo's segments before its scan, without its APP1
    /// (EXIF), then a first scan, an APP1 with that EXIF and a comment
    /// between the scans, a second scan, and the end.
    fn progressive_with_late_exif() -> (Vec<u8>, Vec<u8>) {
        let seed = include_bytes!("../../../fuzz/seeds/meta_image/gps.jpg");
        let app1_len = usize::from(u16::from_be_bytes([seed[22], seed[23]]));
        let app1 = &seed[20..22 + app1_len];
        assert!(app1[4..].starts_with(b"Exif\0\0"));
        let sos = 767;
        let sos_header = &seed[sos..sos + 14];
        let first_scan = &seed[sos..seed.len() - 2];
        let second_scan = [sos_header, b"\x12\xff\x00\x34\xff\xd0\x56"].concat();
        let comment = b"\xff\xfe\0\x0aJane Doe";
        let head = [&seed[..20], &seed[22 + app1_len..sos]].concat();
        let with = [&head[..], first_scan, app1, comment, &second_scan, b"\xff\xd9"].concat();
        let without = [&head[..], first_scan, &second_scan, b"\xff\xd9"].concat();
        (with, without)
    }

    #[test]
    fn exif_and_comments_between_progressive_scans_are_found_and_cut() {
        let (original, expected) = progressive_with_late_exif();
        let found = detect(&original).findings;
        assert!(found.iter().any(|f| f.kind == Kind::Gps), "{found:?}");
        assert_eq!(clean(&original).unwrap(), expected);
    }
}
