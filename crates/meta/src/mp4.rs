//! MP4 and QuickTime MOV: location, make, model and creation time.
//!
//! A small box walker of our own: the maintained readers (mp4parse, mp4)
//! parse into their own structures and give neither the byte ranges of
//! the boxes (which cleaning in place needs) nor QuickTime's `keys`/`ilst`
//! metadata where phones put location. It reads only box headers and the
//! few metadata boxes named below, each bounded by its parent.
//!
//! Not cleaned: timed metadata tracks (a `trak` whose handler is `meta`,
//! or whose samples are GoPro's `gpmd` or Google's `camm`), which can
//! carry a GPS fix per frame in `mdat`. Blanking them means following the
//! track's `stco`/`co64` and `stsz` tables to its samples; that is not
//! done here, and detection does not read them either.

use std::io::{Read, Seek, SeekFrom};

use crate::{capture_time, device, exif, gps, text, xmp, CleanError, Finding, Kind};

/// The user type of a `uuid` box holding XMP (the XMP specification's,
/// part 3).
const XMP_UUID: [u8; 16] = [
    0xbe, 0x7a, 0xcf, 0xcb, 0x97, 0xa9, 0x42, 0xe8, 0x9c, 0x71, 0x99, 0x94, 0x91, 0xe3, 0xaf, 0xac,
];
/// The deepest box nesting walked.
const MAX_DEPTH: usize = 8;
/// The most boxes walked in one file.
const MAX_BOXES: usize = 100_000;

/// One box: its type, where its header starts, where its content starts
/// and where it ends.
#[derive(Clone, Copy)]
pub(crate) struct Bx {
    pub(crate) kind: [u8; 4],
    pub(crate) start: usize,
    pub(crate) body: usize,
    pub(crate) end: usize,
}

/// The boxes directly inside `data[from..to]`; a box running past its
/// parent is an error. HEIF photos are walked with it too (heif.rs).
pub(crate) fn children(data: &[u8], from: usize, to: usize, count: &mut usize) -> Result<Vec<Bx>, String> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        *count += 1;
        if *count > MAX_BOXES {
            return Err("the file has too many boxes: not examined".into());
        }
        let size32 = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().expect("4 bytes");
        let (size, header) = match size32 {
            0 => ((to - at) as u64, 8),
            1 => {
                let b = data.get(at + 8..at + 16).ok_or("a box header is cut")?;
                (u64::from_be_bytes(b.try_into().expect("8 bytes")), 16)
            }
            n => (u64::from(n), 8),
        };
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| at.checked_add(s))
            .ok_or("a box is too large")?;
        if size < header as u64 || end > to {
            return Err("a box runs past its container".into());
        }
        out.push(Bx {
            kind,
            start: at,
            body: at + header,
            end,
        });
        at = end;
    }
    Ok(out)
}

/// What is inside a `meta` box: ISO's has four bytes of version and flags
/// first, QuickTime's does not (its first child, `hdlr`, starts at once).
fn meta_body(data: &[u8], b: &Bx) -> usize {
    if data.get(b.body + 4..b.body + 8) == Some(b"hdlr") {
        b.body
    } else {
        b.body + 4
    }
}

/// Everything the walk finds: metadata values by name, and the boxes a
/// cleaned copy blanks or whose times it zeroes.
#[derive(Default)]
struct Walk {
    values: Vec<(String, String)>,
    /// `udta` and `meta` boxes (turned into `free`).
    blank: Vec<Bx>,
    /// `mvhd`, `tkhd` and `mdhd` boxes (creation and modification times).
    times: Vec<Bx>,
    /// `uuid` boxes holding XMP.
    xmp: Vec<Bx>,
    /// Other `uuid` boxes: a maker's own data (Canon's holds the camera's
    /// EXIF as TIFF blocks), blanked, and read for TIFF blocks.
    vendor: Vec<Bx>,
    created: Option<u64>,
}

fn walk(data: &[u8], from: usize, to: usize, depth: usize, count: &mut usize, w: &mut Walk) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for b in children(data, from, to, count)? {
        match &b.kind {
            b"moov" | b"trak" | b"mdia" => walk(data, b.body, b.end, depth + 1, count, w)?,
            b"mvhd" | b"tkhd" | b"mdhd" => {
                if &b.kind == b"mvhd" {
                    w.created = creation_time(&data[b.body..b.end]);
                }
                w.times.push(b);
            }
            b"udta" => {
                w.blank.push(b);
                user_data(data, &b, depth, count, w)?;
            }
            b"meta" => {
                w.blank.push(b);
                metadata(data, &b, count, w)?;
            }
            b"uuid" if data.get(b.body..b.body + 16) == Some(&XMP_UUID[..]) => {
                w.blank.push(b);
                w.xmp.push(b);
            }
            // A box of a maker's own type, at the top level or in `moov`,
            // a track or its media: nothing in it draws the picture or
            // plays the sound (those are in `mdat`, found through `stco`),
            // and it is where cameras keep their own metadata.
            b"uuid" => {
                w.blank.push(b);
                w.vendor.push(b);
            }
            _ => {}
        }
    }
    Ok(())
}

/// `udta`: QuickTime's ©-strings (a 16-bit length, a language, the text)
/// and a nested `meta`.
fn user_data(data: &[u8], b: &Bx, depth: usize, count: &mut usize, w: &mut Walk) -> Result<(), String> {
    for c in children(data, b.body, b.end, count)? {
        if &c.kind == b"meta" {
            metadata(data, &c, count, w)?;
        } else if &c.kind == b"manu" || &c.kind == b"modl" {
            // Make and model as some cameras write them (Canon, Samsung):
            // four zero bytes and two more before the text, or the text
            // alone; the text ends at a NUL.
            let body = &data[c.body..c.end];
            let body = match body.strip_prefix(&[0, 0, 0, 0]) {
                Some(rest) => rest.get(2..).unwrap_or_default(),
                None => body,
            };
            let value = body.split(|&b| b == 0).next().unwrap_or_default();
            w.values
                .push((name_of(&c.kind), String::from_utf8_lossy(value).into_owned()));
        } else if c.kind[0] == 0xa9 {
            let body = &data[c.body..c.end];
            if body.len() >= 4 {
                let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                let value = body.get(4..4 + len).unwrap_or(&body[4..]);
                w.values
                    .push((name_of(&c.kind), String::from_utf8_lossy(value).into_owned()));
            }
        } else if depth < MAX_DEPTH && &c.kind == b"udta" {
            user_data(data, &c, depth + 1, count, w)?;
        }
    }
    Ok(())
}

/// A four-character code as text ("©xyz").
fn name_of(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&c| if c == 0xa9 { '©' } else { char::from(c) })
        .collect()
}

/// `meta`: `keys` names the items of `ilst` by index (QuickTime), or
/// `ilst`'s items are named by their own type (iTunes-style).
fn metadata(data: &[u8], b: &Bx, count: &mut usize, w: &mut Walk) -> Result<(), String> {
    let inner = children(data, meta_body(data, b), b.end, count)?;
    let mut keys = Vec::new();
    if let Some(k) = inner.iter().find(|c| &c.kind == b"keys") {
        let body = &data[k.body..k.end];
        let mut at = 8;
        while at + 8 <= body.len() {
            let size = u32::from_be_bytes(body[at..at + 4].try_into().expect("4 bytes")) as usize;
            if size < 8 || at + size > body.len() {
                break;
            }
            keys.push(String::from_utf8_lossy(&body[at + 8..at + size]).into_owned());
            at += size;
        }
    }
    for list in inner.iter().filter(|c| &c.kind == b"ilst") {
        for item in children(data, list.body, list.end, count)? {
            let index = u32::from_be_bytes(item.kind) as usize;
            let name = match keys.get(index.wrapping_sub(1)) {
                Some(k) => k.clone(),
                None => name_of(&item.kind),
            };
            for d in children(data, item.body, item.end, count)? {
                if &d.kind == b"data" && d.end >= d.body + 8 {
                    let value = String::from_utf8_lossy(&data[d.body + 8..d.end]).into_owned();
                    w.values.push((name.clone(), value));
                }
            }
        }
    }
    Ok(())
}

/// The most TIFF blocks read from one maker's `uuid` box (Canon's has
/// four: IFD0, EXIF, maker notes, GPS).
const MAX_TIFF_BLOCKS: usize = 8;

/// What the TIFF blocks in a maker's box reveal, found by their headers
/// (big- or little-endian, first IFD at 8, as Canon's CMT1 to CMT4 start)
/// and read with kamadak-exif. Only a block holding IFD0 names the device;
/// the others (EXIF, GPS alone) are read as an IFD0 and give what tags
/// they share with it, and are blanked with the box all the same.
fn tiff_blocks(body: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut at = 0;
    for _ in 0..MAX_TIFF_BLOCKS {
        let next = [&b"MM\0*\0\0\0\x08"[..], b"II*\0\x08\0\0\0"]
            .iter()
            .filter_map(|h| xmp::find(&body[at..], h))
            .min();
        let Some(i) = next else { break };
        if let Ok(found) = ::exif::Reader::new().read_raw(body[at + i..].to_vec()) {
            out.extend(exif::findings(&found));
        }
        at += i + 8;
    }
    out
}

/// The creation time of an `mvhd`, in seconds since 1904.
fn creation_time(body: &[u8]) -> Option<u64> {
    match body.first()? {
        0 => Some(u64::from(u32::from_be_bytes(body.get(4..8)?.try_into().ok()?))),
        1 => Some(u64::from_be_bytes(body.get(4..12)?.try_into().ok()?)),
        _ => None,
    }
}

/// Seconds since 1904-01-01 as "YYYY-MM-DD HH:MM:SS" (a civil date from a
/// day count: the proleptic Gregorian calendar, days since 1970 first).
fn from_1904(secs: u64) -> String {
    let unix = secs as i64 - 2_082_844_800;
    let (days, rem) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// ISO 6709 ("+43.2389+076.8897+0850/") as latitude and longitude.
fn iso6709(raw: &str) -> Option<(f64, f64)> {
    let raw = raw.trim().trim_end_matches('/');
    let mut starts = raw.match_indices(['+', '-']).map(|(i, _)| i).collect::<Vec<_>>();
    starts.push(raw.len());
    if starts.len() < 3 || starts[0] != 0 {
        return None;
    }
    let lat = raw[starts[0]..starts[1]].parse().ok()?;
    let lon = raw[starts[1]..starts[2]].parse().ok()?;
    Some((lat, lon))
}

/// The most bytes of one top-level metadata box (`moov`, `udta`, `meta`,
/// `uuid`) read when a video is examined from a reader.
pub const MAX_MOOV_BYTES: u64 = 64 * 1024 * 1024;

/// The top-level boxes of a video of `len` bytes that hold metadata, each
/// read whole with its offset; the media data between them is skipped, so
/// a multi-GB video is examined and cleaned without being held in memory.
fn metadata_boxes<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let io = |e: std::io::Error| format!("the video does not read: {e}");
    let mut out = Vec::new();
    let mut at = 0u64;
    let mut count = 0;
    while at + 8 <= len {
        count += 1;
        if count > MAX_BOXES {
            return Err("the video has too many boxes: not examined".into());
        }
        r.seek(SeekFrom::Start(at)).map_err(io)?;
        let mut head = [0u8; 16];
        let have = (len - at).min(16) as usize;
        r.read_exact(&mut head[..have]).map_err(io)?;
        let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
        let (size, header) = match u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) {
            0 => (len - at, 8),
            1 if have == 16 => (u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")), 16),
            1 => return Err("a box header is cut".into()),
            n => (u64::from(n), 8),
        };
        if size < header || at.checked_add(size).is_none_or(|end| end > len) {
            return Err("a box runs past the end of the file".into());
        }
        if [b"moov", b"udta", b"meta", b"uuid"].contains(&&kind) {
            if size > MAX_MOOV_BYTES {
                return Err(format!(
                    "a metadata box is larger than {MAX_MOOV_BYTES} bytes: not examined"
                ));
            }
            let mut buf = vec![0; size as usize];
            r.seek(SeekFrom::Start(at)).map_err(io)?;
            r.read_exact(&mut buf).map_err(io)?;
            out.push((at, buf));
        }
        at += size;
    }
    Ok(out)
}

/// [`crate::detect`] of a video read from `r` (`len` bytes), reading only
/// its metadata boxes.
pub fn detect_from<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<Finding>, String> {
    let mut out = Vec::new();
    for (_, buf) in metadata_boxes(r, len)? {
        out.extend(detect(&buf)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// [`overlay`] of a video read from `r` (`len` bytes), with file offsets,
/// checked: each metadata box, patched, must reveal nothing.
pub fn overlay_from<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<(u64, Vec<u8>)>, CleanError> {
    let mut patches = Vec::new();
    for (base, mut buf) in metadata_boxes(r, len).map_err(CleanError::Damaged)? {
        let local = overlay(&buf)?;
        for (at, with) in &local {
            buf[*at..at + with.len()].copy_from_slice(with);
        }
        if !detect(&buf).map_err(CleanError::Damaged)?.is_empty() {
            return Err(CleanError::Damaged(
                "the cleaned video would still reveal its metadata".into(),
            ));
        }
        patches.extend(local.into_iter().map(|(at, with)| (base + at as u64, with)));
    }
    Ok(patches)
}

fn walk_file(bytes: &[u8]) -> Result<Walk, String> {
    let mut w = Walk::default();
    walk(bytes, 0, bytes.len(), 0, &mut 0, &mut w)?;
    Ok(w)
}

/// What the video's metadata reveals.
pub(crate) fn detect(bytes: &[u8]) -> Result<Vec<Finding>, String> {
    let w = walk_file(bytes)?;
    let get = |names: &[&str]| {
        w.values
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    };
    let mut out = Vec::new();
    for b in &w.xmp {
        out.extend(xmp::in_bytes(&bytes[b.body..b.end]));
    }
    for b in &w.vendor {
        out.extend(tiff_blocks(&bytes[b.body..b.end]));
        out.extend(xmp::in_bytes(&bytes[b.body..b.end]));
    }
    if let Some((lat, lon)) = get(&["©xyz", "com.apple.quicktime.location.ISO6709"]).and_then(iso6709) {
        out.extend(gps(lat, lon));
    }
    out.extend(device(
        get(&["©mak", "com.apple.quicktime.make", "com.android.manufacturer", "manu"]),
        get(&["©mod", "com.apple.quicktime.model", "com.android.model", "modl"]),
    ));
    for (k, v) in &w.values {
        let kind = match k.as_str() {
            "©swr" | "©too" | "com.apple.quicktime.software" | "com.android.version" => Kind::Software,
            "©aut" | "©ART" | "com.apple.quicktime.author" | "com.apple.quicktime.artist" => Kind::Author,
            _ => continue,
        };
        out.extend(text(kind, v));
    }
    match get(&["com.apple.quicktime.creationdate", "©day"]) {
        Some(t) => out.extend(capture_time(t, None)),
        None => out.extend(
            w.created
                .filter(|&s| s > 0)
                .and_then(|s| capture_time(&from_1904(s), None)),
        ),
    }
    Ok(out)
}

/// The byte ranges a cleaned copy overwrites, with what goes there: each
/// `udta`, `meta` and `uuid` box (XMP or a maker's, at the top level or in
/// `moov`, a track or its media) becomes a zeroed `free` box of the same
/// length, whatever it holds (`udta`'s `©mak`, `manu`, a maker's serial),
/// and the movie's, tracks' and media's creation and modification times
/// become zero. Lengths never change, so every chunk offset stays valid
/// and a large video can be cleaned while it streams.
pub fn overlay(bytes: &[u8]) -> Result<Vec<(usize, Vec<u8>)>, CleanError> {
    let w = walk_file(bytes).map_err(CleanError::Damaged)?;
    let mut patches = Vec::new();
    // A box inside one already blanked is zeroed with it: only the
    // outermost are patched, so no two patches overlap.
    let outermost = w.blank.iter().filter(|b| {
        !w.blank
            .iter()
            .any(|c| c.start != b.start && c.body <= b.start && b.end <= c.end)
    });
    for b in outermost {
        patches.push((b.start + 4, b"free".to_vec()));
        patches.push((b.body, vec![0; b.end - b.body]));
    }
    for b in &w.times {
        let width = match bytes.get(b.body) {
            Some(0) => 4,
            Some(1) => 8,
            _ => continue,
        };
        if b.body + 4 + 2 * width <= b.end {
            patches.push((b.body + 4, vec![0; 2 * width]));
        }
    }
    patches.sort_by_key(|p| p.0);
    Ok(patches)
}

/// The cleaned copy, made in memory by applying [`overlay`].
pub(crate) fn clean(bytes: &[u8]) -> Result<Vec<u8>, CleanError> {
    Ok(applied(bytes, overlay(bytes)?))
}

/// A copy of `bytes` with `patches` (offset, new bytes; within the file,
/// as the overlays here make them) written over it: the same length.
pub(crate) fn applied(bytes: &[u8], patches: Vec<(usize, Vec<u8>)>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (at, with) in patches {
        out[at..at + with.len()].copy_from_slice(&with);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_read_from_a_reader_gives_what_it_gives_in_memory() {
        let mut moov = Vec::new();
        let text = b"+43.2389+076.8897/";
        let xyz_len = 8 + 4 + text.len();
        let udta_len = 8 + xyz_len;
        moov.extend_from_slice(&((8 + udta_len) as u32).to_be_bytes());
        moov.extend_from_slice(b"moov");
        moov.extend_from_slice(&(udta_len as u32).to_be_bytes());
        moov.extend_from_slice(b"udta");
        moov.extend_from_slice(&(xyz_len as u32).to_be_bytes());
        moov.extend_from_slice(b"\xa9xyz");
        moov.extend_from_slice(&(text.len() as u16).to_be_bytes());
        moov.extend_from_slice(&[0x15, 0xc7]);
        moov.extend_from_slice(text);
        let mut file = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
        file.extend_from_slice(&[0, 0, 0, 16, b'm', b'd', b'a', b't', 1, 2, 3, 4, 5, 6, 7, 8]);
        file.extend_from_slice(&moov);
        let len = file.len() as u64;
        let found = detect_from(&mut std::io::Cursor::new(&file), len).unwrap();
        assert_eq!(found, crate::detect(&file).findings);
        assert_eq!(found[0].value, "43.238900, 76.889700");
        let mut patched = file.clone();
        for (at, with) in overlay_from(&mut std::io::Cursor::new(&file), len).unwrap() {
            patched[at as usize..at as usize + with.len()].copy_from_slice(&with);
        }
        assert_eq!(patched, crate::clean(&file).unwrap());
        assert!(crate::detect(&patched).findings.is_empty());
    }

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn makers_boxes_are_read_and_blanked() {
        // The TIFF of the HEIC fixture's EXIF item (Make samsung, GPS),
        // as Canon puts its camera's IFD0 in a `uuid` box's CMT1.
        let heic = include_bytes!("../../../web/test/fixtures/gps.heic");
        let tiff = &heic[0x25a..0x424];
        let mut canon = vec![
            0x85, 0xc0, 0xb6, 0x87, 0x82, 0x0f, 0x11, 0xe0, 0x81, 0x11, 0xf4, 0xce, 0x46, 0x2b, 0x6a, 0x48,
        ];
        canon.extend(bx(b"CMT1", tiff));
        let udta = [
            bx(b"manu", b"\0\0\0\0\x15\xc7Canon\0"),
            bx(b"modl", b"\0\0\0\0\x15\xc7PowerShot SX280 HS\0"),
            bx(b"CAME", b"SERIAL-0042"),
        ]
        .concat();
        let moov = bx(
            b"moov",
            &[bx(b"udta", &udta), bx(b"trak", &bx(b"uuid", &canon))].concat(),
        );
        let mut vendor = vec![0x11; 16];
        vendor.extend_from_slice(b"OWNER Ivanov A.");
        let media = b"FRAMES-FRAMES-FRAMES";
        let mut file = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
        file.extend(bx(b"uuid", &vendor));
        file.extend(bx(b"mdat", media));
        file.extend(moov);

        let found: Vec<_> = crate::detect(&file)
            .findings
            .into_iter()
            .map(|f| (f.kind, f.value))
            .collect();
        assert!(
            found.contains(&(Kind::Device, "Canon PowerShot SX280 HS".into())),
            "{found:?}"
        );
        assert!(found.contains(&(Kind::Device, "samsung SM-A525F".into())), "{found:?}");
        assert!(found.iter().any(|(k, _)| *k == Kind::Gps), "{found:?}");

        let cleaned = crate::clean(&file).unwrap();
        assert_eq!(cleaned.len(), file.len());
        let has = |needle: &[u8]| xmp::find(&cleaned, needle).is_some();
        assert!(has(media));
        for gone in [&b"Ivanov"[..], b"SERIAL-0042", b"samsung", b"Canon", b"uuid", b"udta"] {
            assert!(!has(gone), "{}", String::from_utf8_lossy(gone));
        }
        let len = file.len() as u64;
        let mut patched = file.clone();
        for (at, with) in overlay_from(&mut std::io::Cursor::new(&file), len).unwrap() {
            patched[at as usize..at as usize + with.len()].copy_from_slice(&with);
        }
        assert_eq!(patched, cleaned);
    }

    #[test]
    fn times_and_places_read_right() {
        assert_eq!(from_1904(2_082_844_800), "1970-01-01 00:00:00");
        assert_eq!(from_1904(3_792_009_600 + 3_723), "2024-02-29 01:02:03");
        assert_eq!(iso6709("+43.2389+076.8897+0850.000/"), Some((43.2389, 76.8897)));
        assert_eq!(iso6709("-12.5-001.25/"), Some((-12.5, -1.25)));
    }
}
