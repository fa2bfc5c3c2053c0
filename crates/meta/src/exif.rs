//! Findings from an EXIF block (kamadak-exif reads it, in JPEG, PNG, WebP
//! and HEIF containers alike).

use exif::{Exif, Field, In, Tag, Value};

use crate::{capture_time, device, gps, text, Finding, Kind};

/// EXIF's findings in a whole image file; none when it has no EXIF.
pub(crate) fn in_container(bytes: &[u8]) -> Result<Vec<Finding>, String> {
    let mut cursor = std::io::Cursor::new(bytes);
    match exif::Reader::new().read_from_container(&mut cursor) {
        Ok(exif) => Ok(findings(&exif)),
        Err(exif::Error::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(format!("its EXIF block does not read: {e}")),
    }
}

/// The first value of a field as text (ASCII or UTF-8 in an Undefined).
fn ascii(f: &Field) -> Option<String> {
    match &f.value {
        Value::Ascii(parts) => {
            let joined: Vec<String> = parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            Some(joined.join(" "))
        }
        Value::Undefined(b, _) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// Degrees from EXIF's three rationals (degrees, minutes, seconds).
fn degrees(f: &Field) -> Option<f64> {
    match &f.value {
        Value::Rational(r) if !r.is_empty() => {
            let part = |i: usize| r.get(i).filter(|x| x.denom != 0).map(|x| x.to_f64()).unwrap_or(0.0);
            if r[0].denom == 0 {
                return None;
            }
            Some(part(0) + part(1) / 60.0 + part(2) / 3600.0)
        }
        _ => None,
    }
}

/// What an EXIF block reveals.
pub(crate) fn findings(exif: &Exif) -> Vec<Finding> {
    let get = |tag: Tag| exif.get_field(tag, In::PRIMARY).and_then(ascii);
    let mut out = Vec::new();
    let coordinate = |value: Tag, reference: Tag, negative: &str| {
        let v = exif.get_field(value, In::PRIMARY).and_then(degrees)?;
        let r = exif
            .get_field(reference, In::PRIMARY)
            .and_then(ascii)
            .unwrap_or_default();
        Some(if r.trim().eq_ignore_ascii_case(negative) { -v } else { v })
    };
    if let (Some(lat), Some(lon)) = (
        coordinate(Tag::GPSLatitude, Tag::GPSLatitudeRef, "S"),
        coordinate(Tag::GPSLongitude, Tag::GPSLongitudeRef, "W"),
    ) {
        out.extend(gps(lat, lon));
    }
    out.extend(device(get(Tag::Make).as_deref(), get(Tag::Model).as_deref()));
    for tag in [Tag::BodySerialNumber, Tag::LensSerialNumber] {
        out.extend(get(tag).and_then(|v| text(Kind::Serial, &v)));
    }
    for tag in [Tag::CameraOwnerName, Tag::Artist] {
        out.extend(get(tag).and_then(|v| text(Kind::Owner, &v)));
    }
    out.extend(get(Tag::Software).and_then(|v| text(Kind::Software, &v)));
    let taken = get(Tag::DateTimeOriginal).or_else(|| get(Tag::DateTimeDigitized));
    if let Some(t) = taken {
        let offset = get(Tag::OffsetTimeOriginal);
        out.extend(capture_time(&t, offset.as_deref()));
    }
    // Tags kamadak-exif has no name for, by number: the serial number
    // some makers write in the main IFD (0xfde9 is exiftool's SerialNumber
    // in Photoshop settings) and OwnerName (0xfde8).
    for f in exif.fields() {
        let kind = match f.tag.number() {
            0xfde8 => Kind::Owner,
            0xfde9 => Kind::Serial,
            _ => continue,
        };
        out.extend(ascii(f).and_then(|v| text(kind, &v)));
    }
    out
}
