//! What a file says about the person who sends it, and a copy that says
//! none of it.
//!
//! [`detect`] reads identifying metadata (place, device, serial numbers,
//! names, software, capture time) from photos (JPEG, PNG, WebP, HEIC/HEIF),
//! PDF, Office (DOCX/XLSX/PPTX), OpenDocument and MP4/MOV files; [`clean`]
//! makes a copy without it, pixels and text unchanged. Photos keep only
//! the chunks and segments that draw the picture (a keep-list, so what
//! nobody listed goes), EXIF between a progressive JPEG's scans included;
//! HEIC/HEIF photos and MP4/MOV videos are cleaned in place (their
//! metadata's bytes overwritten, the same length, nothing moved: heif.rs
//! and mp4.rs);
//! documents lose their properties, creation times, the names on comments
//! and tracked changes, the folder they were saved in, applications'
//! private data, a PDF's machine-made /ID, and the EXIF of the photos
//! inside them. Pure: bytes in,
//! findings or bytes out, no I/O, no network. A file that does not parse
//! gives no findings and a plain note, never a panic; every parser here
//! has a fuzz target (fuzz/fuzz_targets/meta_*.rs).
//!
//! Cleaning is deterministic (the same input always gives the same bytes),
//! so a cut upload of a cleaned copy resumes against the same ciphertext.
#![forbid(unsafe_code)]

mod exif;
mod heif;
mod image;
pub mod mp4;
mod office;
mod pdf;
mod xmp;

use serde::{Deserialize, Serialize};

/// The most bytes of one file held in memory to examine or clean it:
/// larger files are reported as not examined.
pub const MAX_PARSE_BYTES: u64 = 512 * 1024 * 1024;

/// What a finding is about; the JSON spelling is part of the CLI contract
/// and the page's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Where it was made: "LAT, LON" in signed decimal degrees.
    Gps,
    /// The camera or phone: "Make Model".
    Device,
    /// A serial number of the body or lens.
    Serial,
    /// The device's owner, artist or the company a document belongs to.
    Owner,
    /// A document's author or last editor.
    Author,
    /// The program or firmware that made the file.
    Software,
    /// When it was taken: "YYYY-MM-DD HH:MM:SS" and " +HH:MM" when known.
    CaptureTime,
}

impl Kind {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gps => "gps",
            Kind::Device => "device",
            Kind::Serial => "serial",
            Kind::Owner => "owner",
            Kind::Author => "author",
            Kind::Software => "software",
            Kind::CaptureTime => "capture_time",
        }
    }

    /// What it reveals, in plain English words (the CLI's).
    pub fn plain(self) -> &'static str {
        match self {
            Kind::Gps => "the place where it was made",
            Kind::Device => "the device",
            Kind::Serial => "the device's serial number",
            Kind::Owner => "the owner's name",
            Kind::Author => "the author's name",
            Kind::Software => "the software",
            Kind::CaptureTime => "when it was made",
        }
    }
}

/// One thing the file reveals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Finding {
    /// What it is.
    pub kind: Kind,
    /// The value as the file gives it (normalised for gps, device and time).
    pub value: String,
}

/// The formats examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JPEG image.
    Jpeg,
    /// PNG image.
    Png,
    /// WebP image.
    Webp,
    /// HEIC/HEIF or AVIF image.
    Heif,
    /// PDF document.
    Pdf,
    /// DOCX, XLSX or PPTX.
    Office,
    /// OpenDocument (ODT, ODS, ODP).
    Odf,
    /// MP4 or QuickTime MOV.
    Mp4,
}

/// What [`detect`] found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The format, when recognised.
    pub format: Option<Format>,
    /// What the file reveals, each once, in a stable order.
    pub findings: Vec<Finding>,
    /// Why the file could not be fully examined, in plain words.
    pub note: Option<String>,
}

/// Why a clean copy could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanError {
    /// The format is not one this crate can clean (or not recognised).
    Unsupported(String),
    /// The file does not parse, or the copy would still reveal something.
    Damaged(String),
}

impl std::fmt::Display for CleanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CleanError::Unsupported(m) | CleanError::Damaged(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CleanError {}

/// The format of `bytes`, by its magic numbers (never by a file name).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else if bytes.starts_with(b"%PDF-") {
        Some(Format::Pdf)
    } else if bytes.starts_with(b"PK\x03\x04") {
        office::sniff(bytes)
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = &bytes[8..12];
        if [b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc", b"avif"].contains(&brand.try_into().ok()?) {
            Some(Format::Heif)
        } else {
            Some(Format::Mp4)
        }
    } else if bytes.len() >= 8 && [b"moov", b"mdat", b"wide", b"free"].iter().any(|t| &bytes[4..8] == *t) {
        Some(Format::Mp4)
    } else {
        None
    }
}

/// What `bytes` reveals about whoever made it.
pub fn detect(bytes: &[u8]) -> Report {
    let format = sniff(bytes);
    let found = match format {
        None => Ok(Vec::new()),
        Some(Format::Jpeg | Format::Png | Format::Webp | Format::Heif) => image::detect(bytes),
        Some(Format::Pdf) => pdf::detect(bytes),
        Some(Format::Office | Format::Odf) => office::detect(bytes),
        Some(Format::Mp4) => mp4::detect(bytes),
    };
    let (mut findings, note) = match found {
        Ok(f) => (f, None),
        Err(note) => (Vec::new(), Some(note)),
    };
    findings.sort();
    findings.dedup();
    Report { format, findings, note }
}

/// A copy of `bytes` without what [`detect`] looks for (and the rest of
/// its kind of metadata: a cleaned copy carries no EXIF, XMP or document
/// properties at all, capture time included). The copy is checked: if
/// [`detect`] still finds anything in it, it is refused.
pub fn clean(bytes: &[u8]) -> Result<Vec<u8>, CleanError> {
    let cleaned = match sniff(bytes) {
        None => return Err(CleanError::Unsupported("not a format that can be cleaned".into())),
        Some(Format::Heif) => heif::clean(bytes)?,
        Some(Format::Jpeg | Format::Png | Format::Webp) => image::clean(bytes)?,
        Some(Format::Pdf) => pdf::clean(bytes)?,
        Some(Format::Office | Format::Odf) => office::clean(bytes)?,
        Some(Format::Mp4) => mp4::clean(bytes)?,
    };
    let left = detect(&cleaned);
    if !left.findings.is_empty() {
        return Err(CleanError::Damaged(format!(
            "the cleaned copy would still reveal {}",
            left.findings[0].kind.plain()
        )));
    }
    if let Some(note) = left.note {
        return Err(CleanError::Damaged(format!(
            "the cleaned copy does not read back: {note}"
        )));
    }
    Ok(cleaned)
}

/// Whether [`clean`] handles this format (every one [`sniff`] names; a
/// given file may still be refused, e.g. a HEIF photo with an item type
/// the cleaner cannot vouch for).
pub fn can_clean(_format: Format) -> bool {
    true
}

/// A finding of `kind` from text as found, trimmed; none when empty.
pub(crate) fn text(kind: Kind, value: &str) -> Option<Finding> {
    let value = value.trim_matches(|c: char| c.is_whitespace() || c == '\0').trim();
    (!value.is_empty()).then(|| Finding {
        kind,
        value: value.to_owned(),
    })
}

/// "Make Model", or the model alone when it already names the make.
pub(crate) fn device(make: Option<&str>, model: Option<&str>) -> Option<Finding> {
    let make = make.map(str::trim).filter(|m| !m.is_empty());
    let model = model.map(str::trim).filter(|m| !m.is_empty());
    let value = match (make, model) {
        (Some(make), Some(model)) if model.to_lowercase().starts_with(&make.to_lowercase()) => model.to_owned(),
        (Some(make), Some(model)) => format!("{make} {model}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => return None,
    };
    text(Kind::Device, &value)
}

/// "LAT, LON" with six decimals, when both are real coordinates.
pub(crate) fn gps(lat: f64, lon: f64) -> Option<Finding> {
    if !(lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0) {
        return None;
    }
    Some(Finding {
        kind: Kind::Gps,
        value: format!("{lat:.6}, {lon:.6}"),
    })
}

/// A capture time from the usual spellings ("2024:03:01 12:00:00",
/// ISO 8601 with "T" and an offset or "Z"), as "YYYY-MM-DD HH:MM:SS"
/// plus " +HH:MM" when an offset is given (here or in `offset`).
pub(crate) fn capture_time(raw: &str, offset: Option<&str>) -> Option<Finding> {
    let raw = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let b = raw.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) {
        return text(Kind::CaptureTime, raw);
    }
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if !(digits(&b[5..7]) && digits(&b[8..10])) {
        return text(Kind::CaptureTime, raw);
    }
    let date = format!("{}-{}-{}", &raw[..4], &raw[5..7], &raw[8..10]);
    if date == "0000-00-00" {
        return None;
    }
    let rest = &raw[10..];
    let rest = rest.strip_prefix(['T', ' ']).unwrap_or(rest);
    let (time, zone) = match rest.find(['+', '-', 'Z']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    // Seconds' fractions are dropped; a time of only HH:MM gets ":00".
    let time = time.split('.').next().unwrap_or("");
    let time = match time.len() {
        8 => time.to_owned(),
        5 => format!("{time}:00"),
        _ => String::new(),
    };
    let zone = zone.or(offset.map(str::trim)).filter(|z| !z.is_empty()).map(|z| {
        if z == "Z" {
            "+00:00".to_owned()
        } else {
            z.to_owned()
        }
    });
    let mut value = date;
    if !time.is_empty() {
        value.push(' ');
        value.push_str(&time);
        if let Some(z) = zone {
            value.push(' ');
            value.push_str(&z);
        }
    }
    text(Kind::CaptureTime, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_spelled_as_the_page_spells_them() {
        assert_eq!(gps(43.2389494, 76.8897094).unwrap().value, "43.238949, 76.889709");
        assert_eq!(gps(-1.5, -0.25).unwrap().value, "-1.500000, -0.250000");
        assert_eq!(
            device(Some("samsung"), Some("SM-A525F")).unwrap().value,
            "samsung SM-A525F"
        );
        assert_eq!(
            device(Some("Canon"), Some("Canon EOS 5D")).unwrap().value,
            "Canon EOS 5D"
        );
        assert_eq!(
            capture_time("2024:03:01 12:30:05", Some("+05:00")).unwrap().value,
            "2024-03-01 12:30:05 +05:00"
        );
        assert_eq!(
            capture_time("2024-03-01T12:30:05.123Z", None).unwrap().value,
            "2024-03-01 12:30:05 +00:00"
        );
        assert_eq!(
            capture_time("2024:03:01 12:30:05", None).unwrap().value,
            "2024-03-01 12:30:05"
        );
        assert!(capture_time("0000:00:00 00:00:00", None).is_none());
    }

    #[test]
    fn garbage_gives_no_findings_and_no_panic() {
        for bytes in [
            &b""[..],
            b"\xff\xd8\xff",
            b"%PDF-1.4 junk",
            b"PK\x03\x04junk",
            b"\0\0\0\x10ftypisomjunk",
        ] {
            let r = detect(bytes);
            assert!(r.findings.is_empty());
            if !bytes.starts_with(b"\0") {
                assert!(clean(bytes).is_err());
            }
        }
    }
}
