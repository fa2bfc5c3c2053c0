//! HEIC/HEIF (and AVIF) photos cleaned in place: the bytes of their EXIF
//! and XMP items are overwritten, nothing moves.
//!
//! A HEIF file is a `meta` box listing items (`iinf`) and where each
//! item's bytes are (`iloc`: absolute offsets into `mdat`, or offsets into
//! the `meta`'s own `idat`). No maintained Rust crate rewrites these boxes,
//! and moving bytes would mean rewriting every offset; overwriting only the
//! metadata items' bytes, with the same length, changes no offset at all,
//! so the pixels (the `hvc1`/`av01` items) stay byte for byte. The walk
//! reuses mp4.rs's bounded box reader; anything it cannot vouch for (an
//! item type it does not know, data built from other items or kept in
//! another file, an image sequence) is refused rather than guessed at.
//! Detection stays with kamadak-exif and XMP packet scanning (image.rs).

use std::ops::Range;

use crate::mp4::{children, Bx};
use crate::CleanError;

/// The most items (`infe` entries, `iloc` entries) one photo may list. A
/// phone's photo has a few dozen (the tiles of a grid, a thumbnail, depth
/// and gain maps, EXIF, XMP); a large panorama a few hundred.
const MAX_ITEMS: usize = 4096;
/// The most extents over all items. An `iloc` whose fields are all of
/// size 0 describes an extent in zero bytes, so the box's length bounds
/// nothing: this does.
const MAX_EXTENTS: usize = 65_536;

/// The item types that are the picture (coded images, tiles, and images
/// derived from them: grids, overlays, rotations, tone maps, masks). Their
/// bytes are never touched; an item of a type in neither this list nor the
/// metadata ones is refused, because it might be either.
const PICTURE_ITEMS: [&[u8; 4]; 15] = [
    b"hvc1", b"hvt1", b"lhv1", b"av01", b"avc1", b"jpeg", b"j2k1", b"vvc1", b"vvi1", b"unci", b"grid", b"iovl",
    b"iden", b"tmap", b"mski",
];

/// The boxes a `meta` box of a photo may hold and the copy keeps. `xml `
/// and `bxml` (XML metadata of the `meta` box itself) and `uuid` (a
/// vendor's) become zeroed `free` boxes; anything else (`ipro`: protected
/// items, `fiin`: file delivery) is refused.
const META_CHILDREN: [&[u8; 4]; 11] = [
    b"hdlr", b"pitm", b"iloc", b"iinf", b"iref", b"iprp", b"idat", b"dinf", b"grpl", b"free", b"skip",
];

/// Item properties that say who or when rather than how to draw the
/// picture: a user's description (`udes`: name, description, tags) and
/// creation and modification times (`crtt`, `mdft`). Their content after
/// the version and flags becomes zeros (empty strings, time zero), their
/// size and place in `ipco` stay, so `ipma`'s indices still point right.
const BLANKED_PROPERTIES: [&[u8; 4]; 3] = [b"udes", b"crtt", b"mdft"];

/// The minimal valid TIFF a cleaned EXIF item holds: big-endian, its first
/// IFD at offset 8 with no entries and no next IFD. Readers that expect
/// EXIF find an empty one rather than garbage.
const EMPTY_TIFF: [u8; 14] = [b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0];

/// The empty XMP packet a cleaned XMP item starts with (then spaces, XMP's
/// padding): readers that expect XMP find one that says nothing, where
/// spaces alone would be "invalid XMP" to them (exiftool says so).
const EMPTY_XMP: &[u8] = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>"#;

/// What a cleaned copy does with an item's bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The picture: untouched.
    Picture,
    /// EXIF: the header-offset field kept, an empty TIFF, zeros.
    Exif,
    /// XMP in plain text: an empty packet, then spaces.
    Xmp,
    /// Any other metadata item (another `mime` type, XMP compressed with a
    /// content encoding, a `uri ` item): zeros.
    Metadata,
}

/// One item's location as `iloc` gives it.
struct Location {
    id: u32,
    construction_method: u8,
    data_reference_index: u16,
    base_offset: u64,
    /// (offset, length) pairs; a length of 0 means "to the end".
    extents: Vec<(u64, u64)>,
}

fn damaged(why: &str) -> CleanError {
    CleanError::Damaged(format!("the HEIF photo does not parse: {why}"))
}

fn unsupported(why: String) -> CleanError {
    CleanError::Unsupported(format!("this HEIF photo cannot be cleaned: {why}"))
}

/// A reader of a box's content that fails, never panics, when it is cut.
struct Fields<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CleanError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| damaged("a box is cut short"))?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CleanError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CleanError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32, CleanError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    /// An `iloc` field of 0, 4 or 8 bytes (the only sizes it allows).
    fn sized(&mut self, size: u8) -> Result<u64, CleanError> {
        match size {
            0 => Ok(0),
            4 => Ok(u64::from(self.u32()?)),
            8 => Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            _ => Err(damaged("an item location field has a size other than 0, 4 or 8")),
        }
    }

    /// A NUL-terminated string; a missing NUL ends it at the box's end
    /// (optional trailing strings, like a content encoding, may be absent).
    fn string(&mut self) -> &'a [u8] {
        let rest = &self.data[self.at.min(self.data.len())..];
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        self.at = (self.at + len + 1).min(self.data.len());
        &rest[..len]
    }
}

/// `iinf`: each item's id and what the copy does with its bytes.
fn item_roles(data: &[u8], iinf: &Bx, count: &mut usize) -> Result<Vec<(u32, Role)>, CleanError> {
    let mut f = Fields {
        data: &data[iinf.body..iinf.end],
        at: 0,
    };
    let version = f.u8()?;
    f.take(3)?;
    let entries = if version == 0 { u32::from(f.u16()?) } else { f.u32()? };
    if entries as usize > MAX_ITEMS {
        return Err(unsupported(format!("it lists more than {MAX_ITEMS} items")));
    }
    let boxes = children(data, iinf.body + f.at, iinf.end, count).map_err(|e| damaged(&e))?;
    if boxes.len() != entries as usize || boxes.iter().any(|b| &b.kind != b"infe") {
        return Err(damaged("the item list does not hold what it counts"));
    }
    let mut roles = Vec::with_capacity(boxes.len());
    for b in boxes {
        let mut f = Fields {
            data: &data[b.body..b.end],
            at: 0,
        };
        let version = f.u8()?;
        f.take(3)?;
        // Versions 0 and 1 name no item type (HEIF requires 2 or 3).
        let id = match version {
            2 => u32::from(f.u16()?),
            3 => f.u32()?,
            _ => return Err(unsupported("an item entry of an old version".into())),
        };
        let _protection_index = f.u16()?;
        let kind: [u8; 4] = f.take(4)?.try_into().expect("4 bytes");
        let _name = f.string();
        let role = match &kind {
            b"Exif" => Role::Exif,
            b"mime" => {
                let content_type = f.string();
                let encoding = f.string();
                if content_type.eq_ignore_ascii_case(b"application/rdf+xml") && encoding.is_empty() {
                    Role::Xmp
                } else {
                    Role::Metadata
                }
            }
            b"uri " => Role::Metadata,
            k if PICTURE_ITEMS.contains(&k) => Role::Picture,
            k => {
                return Err(unsupported(format!(
                    "it has an item of type {:?}, which may be either picture or metadata",
                    String::from_utf8_lossy(k)
                )))
            }
        };
        if roles.iter().any(|(other, _)| *other == id) {
            return Err(damaged("two items have the same id"));
        }
        roles.push((id, role));
    }
    Ok(roles)
}

/// `iloc`, versions 0, 1 and 2.
fn locations(body: &[u8]) -> Result<Vec<Location>, CleanError> {
    let mut f = Fields { data: body, at: 0 };
    let version = f.u8()?;
    if version > 2 {
        return Err(unsupported(format!("an item location box of version {version}")));
    }
    f.take(3)?;
    let sizes = f.u16()?;
    let (offset_size, length_size, base_offset_size) =
        ((sizes >> 12) as u8, (sizes >> 8 & 0xf) as u8, (sizes >> 4 & 0xf) as u8);
    let index_size = if version == 0 { 0 } else { (sizes & 0xf) as u8 };
    let count = if version < 2 { u32::from(f.u16()?) } else { f.u32()? };
    if count as usize > MAX_ITEMS {
        return Err(unsupported(format!("it locates more than {MAX_ITEMS} items")));
    }
    let mut out: Vec<Location> = Vec::with_capacity(count as usize);
    let mut extents_seen = 0usize;
    for _ in 0..count {
        let id = if version < 2 { u32::from(f.u16()?) } else { f.u32()? };
        let construction_method = if version == 0 { 0 } else { (f.u16()? & 0xf) as u8 };
        let data_reference_index = f.u16()?;
        let base_offset = f.sized(base_offset_size)?;
        let extent_count = usize::from(f.u16()?);
        extents_seen += extent_count;
        if extents_seen > MAX_EXTENTS {
            return Err(unsupported(format!("its items have more than {MAX_EXTENTS} extents")));
        }
        let mut extents = Vec::with_capacity(extent_count);
        for _ in 0..extent_count {
            let _index = f.sized(index_size)?;
            let offset = f.sized(offset_size)?;
            let length = f.sized(length_size)?;
            extents.push((offset, length));
        }
        if out.iter().any(|l| l.id == id) {
            return Err(damaged("an item is located twice"));
        }
        out.push(Location {
            id,
            construction_method,
            data_reference_index,
            base_offset,
            extents,
        });
    }
    Ok(out)
}

/// Where one extent's bytes are in the file: from the file's start
/// (construction method 0) or from `idat`'s content (1).
fn resolve(
    loc: &Location,
    offset: u64,
    length: u64,
    file: usize,
    idat: Option<&Bx>,
) -> Result<Range<usize>, CleanError> {
    let (from, to) = match loc.construction_method {
        0 => (0, file),
        1 => {
            let idat = idat.ok_or_else(|| damaged("an item is in an idat box that is not there"))?;
            (idat.body, idat.end)
        }
        2 => {
            return Err(unsupported(
                "an item is built from other items (construction method 2)".into(),
            ))
        }
        m => return Err(damaged(&format!("an item has construction method {m}"))),
    };
    let past = || damaged("an item's data runs past the end of its container");
    let start = loc
        .base_offset
        .checked_add(offset)
        .and_then(|s| usize::try_from(s).ok())
        .and_then(|s| s.checked_add(from))
        .filter(|&s| s <= to)
        .ok_or_else(past)?;
    // A length of 0 is "the rest of the data" (ISO/IEC 14496-12, iloc).
    let end = if length == 0 {
        to
    } else {
        usize::try_from(length)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= to)
            .ok_or_else(past)?
    };
    Ok(start..end)
}

/// The replacement for one metadata item's bytes (`len` of them, the
/// item's extents joined), given its first four bytes.
fn blank(role: Role, len: usize, head: [u8; 4]) -> Vec<u8> {
    let mut out = match role {
        Role::Xmp => vec![b' '; len],
        _ => vec![0; len],
    };
    if role == Role::Xmp && EMPTY_XMP.len() <= len {
        out[..EMPTY_XMP.len()].copy_from_slice(EMPTY_XMP);
    }
    if role == Role::Exif {
        // The item starts with the offset of its TIFF header from byte 4
        // (6 when "Exif\0\0" comes first). Keep it when the empty TIFF fits
        // there, else point it at byte 4; an item too short for even that
        // stays zeros (and the check in `crate::clean` decides).
        let offset = u32::from_be_bytes(head) as usize;
        let at = match 4usize.checked_add(offset) {
            Some(at) if at.checked_add(EMPTY_TIFF.len()).is_some_and(|e| e <= len) => Some((head, at)),
            _ if 4 + EMPTY_TIFF.len() <= len => Some(([0; 4], 4)),
            _ => None,
        };
        if let Some((field, at)) = at {
            out[..4].copy_from_slice(&field);
            out[at..at + EMPTY_TIFF.len()].copy_from_slice(&EMPTY_TIFF);
        }
    }
    out
}

/// The byte ranges a cleaned copy overwrites, with what goes there. No two
/// overlap, and none lies outside a metadata item's data, an XML box of
/// `meta` or a blanked property's content.
pub(crate) fn overlay(bytes: &[u8]) -> Result<Vec<(usize, Vec<u8>)>, CleanError> {
    let count = &mut 0;
    let top = children(bytes, 0, bytes.len(), count).map_err(|e| damaged(&e))?;
    let mut meta = None;
    let mut mdats = Vec::new();
    for b in &top {
        match &b.kind {
            b"ftyp" | b"free" | b"skip" => {}
            b"mdat" => mdats.push(b.body..b.end),
            b"meta" if meta.is_none() => meta = Some(*b),
            b"meta" => return Err(damaged("it has two meta boxes")),
            // `moov` is an image sequence or a live photo's video, with
            // metadata of its own; a top-level `uuid` is a vendor's.
            k => {
                return Err(unsupported(format!(
                    "it has a top-level {:?} box",
                    String::from_utf8_lossy(k)
                )))
            }
        }
    }
    let meta = meta.ok_or_else(|| damaged("it has no meta box"))?;
    if bytes.get(meta.body) != Some(&0) {
        return Err(unsupported("its meta box is of a version other than 0".into()));
    }
    let inner = children(bytes, meta.body + 4, meta.end, count).map_err(|e| damaged(&e))?;
    let mut patches = Vec::new();
    let (mut iloc, mut iinf, mut idat) = (None, None, None);
    for b in &inner {
        let slot = match &b.kind {
            b"iloc" => &mut iloc,
            b"iinf" => &mut iinf,
            b"idat" => &mut idat,
            b"xml " | b"bxml" | b"uuid" => {
                patches.push((b.start + 4, b"free".to_vec()));
                patches.push((b.body, vec![0; b.end - b.body]));
                continue;
            }
            b"iprp" => {
                for c in children(bytes, b.body, b.end, count).map_err(|e| damaged(&e))? {
                    if &c.kind != b"ipco" {
                        continue;
                    }
                    for p in children(bytes, c.body, c.end, count).map_err(|e| damaged(&e))? {
                        if BLANKED_PROPERTIES.contains(&&p.kind) && p.body + 4 < p.end {
                            patches.push((p.body + 4, vec![0; p.end - p.body - 4]));
                        }
                    }
                }
                continue;
            }
            k if META_CHILDREN.contains(&k) => continue,
            k => {
                return Err(unsupported(format!(
                    "its meta box holds a {:?} box",
                    String::from_utf8_lossy(k)
                )))
            }
        };
        if slot.replace(*b).is_some() {
            return Err(damaged("its meta box holds a box twice that it may hold once"));
        }
    }
    let (iloc, iinf) = match (iloc, iinf) {
        (Some(l), Some(i)) => (l, i),
        _ => return Err(damaged("it has no item list or no item locations")),
    };
    let roles = item_roles(bytes, &iinf, count)?;
    let role_of = |id: u32| roles.iter().find(|(i, _)| *i == id).map(|(_, r)| *r);
    // (range, blanked?) of every extent, and the blanked items' extents.
    let mut all: Vec<(Range<usize>, bool)> = Vec::new();
    let mut items: Vec<(Role, Vec<Range<usize>>)> = Vec::new();
    for loc in locations(&bytes[iloc.body..iloc.end])? {
        // An item located but not listed has no type: nothing reads it as
        // either, so it is left as it is, like the picture.
        let role = role_of(loc.id).unwrap_or(Role::Picture);
        if loc.data_reference_index != 0 {
            return Err(unsupported("an item's data is in another file".into()));
        }
        let mut ranges = Vec::with_capacity(loc.extents.len());
        for &(offset, length) in &loc.extents {
            let r = resolve(&loc, offset, length, bytes.len(), idat.as_ref())?;
            if role != Role::Picture {
                // Metadata is overwritten only where it cannot be a box
                // header or another box's field: inside media data.
                let inside = |c: &Range<usize>| c.start <= r.start && r.end <= c.end;
                if !(mdats.iter().any(inside) || idat.as_ref().is_some_and(|i| inside(&(i.body..i.end)))) {
                    return Err(unsupported(
                        "a metadata item's data lies outside the media data boxes".into(),
                    ));
                }
            }
            all.push((r.clone(), role != Role::Picture));
            ranges.push(r);
        }
        if role != Role::Picture {
            items.push((role, ranges));
        }
    }
    // What is blanked inside `meta` must not be any item's data either.
    all.extend(patches.iter().map(|(at, with)| (*at..at + with.len(), true)));
    // No blanked byte may belong to any other extent: it would be the
    // picture's too, or be written twice. A sweep in start order sees
    // every overlapping pair when the later one comes.
    all.retain(|(r, _)| !r.is_empty());
    all.sort_by_key(|(r, blanked)| (r.start, r.end, *blanked));
    let (mut reach, mut blanked_reach) = (0, 0);
    for (r, blanked) in &all {
        if (*blanked && r.start < reach) || r.start < blanked_reach {
            return Err(unsupported("a metadata item's data overlaps another item's".into()));
        }
        reach = reach.max(r.end);
        if *blanked {
            blanked_reach = blanked_reach.max(r.end);
        }
    }
    for (role, ranges) in items {
        let len: usize = ranges.iter().map(|r| r.len()).sum();
        let mut head = [0u8; 4];
        for (slot, byte) in head.iter_mut().zip(ranges.iter().flat_map(|r| &bytes[r.clone()])) {
            *slot = *byte;
        }
        let with = blank(role, len, head);
        let mut at = 0;
        for r in ranges {
            patches.push((r.start, with[at..at + r.len()].to_vec()));
            at += r.len();
        }
    }
    patches.retain(|(_, with)| !with.is_empty());
    patches.sort_by_key(|p| p.0);
    Ok(patches)
}

/// The cleaned copy: the photo with [`overlay`] applied, the same length.
pub(crate) fn clean(bytes: &[u8]) -> Result<Vec<u8>, CleanError> {
    Ok(crate::mp4::applied(bytes, overlay(bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{detect, Kind};

    const GPS: &[u8] = include_bytes!("../../../web/test/fixtures/gps.heic");
    const PLAIN: &[u8] = include_bytes!("../../../web/test/fixtures/plain.heic");
    /// gps.heic's EXIF item (item 3) and XMP item (item 4), as
    /// `exiftool -v3 gps.heic` lists them: offset 0x250, length 0x1d4, and
    /// offset 0x424, length 0xb1c; the picture (item 1) follows at 0xf40.
    const GPS_EXIF: Range<usize> = 0x250..0x250 + 0x1d4;
    const GPS_XMP: Range<usize> = 0x424..0x424 + 0xb1c;

    #[test]
    fn a_heic_photo_loses_its_exif_and_xmp_items_and_nothing_else() {
        let found = detect(GPS).findings;
        assert!(
            found
                .iter()
                .any(|f| f.kind == Kind::Gps && f.value == "43.238949, 76.889709"),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.kind == Kind::Serial), "{found:?}");
        let cleaned = crate::clean(GPS).unwrap();
        assert_eq!(cleaned.len(), GPS.len());
        let left = detect(&cleaned);
        assert!(left.findings.is_empty() && left.note.is_none(), "{left:?}");
        for (i, (a, b)) in GPS.iter().zip(&cleaned).enumerate() {
            if a != b {
                assert!(GPS_EXIF.contains(&i) || GPS_XMP.contains(&i), "byte {i:#x} changed");
            }
        }
        // The EXIF item keeps its header offset (6, past "Exif\0\0") and
        // holds an empty TIFF there; the XMP item an empty packet, spaces.
        let exif = &cleaned[GPS_EXIF];
        assert_eq!(&exif[..4], &[0, 0, 0, 6]);
        assert_eq!(&exif[10..24], &EMPTY_TIFF);
        assert!(exif[24..].iter().all(|&b| b == 0));
        let xmp = &cleaned[GPS_XMP];
        assert!(xmp.starts_with(EMPTY_XMP));
        assert!(xmp[EMPTY_XMP.len()..].iter().all(|&b| b == b' '));
        // Deterministic, and a photo without metadata items stays as it is.
        assert_eq!(crate::clean(GPS).unwrap(), cleaned);
        assert_eq!(crate::clean(PLAIN).unwrap(), PLAIN);
    }

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn infe(id: u16, kind: &[u8; 4], rest: &[u8]) -> Vec<u8> {
        let mut body = vec![2, 0, 0, 0];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(kind);
        body.push(0);
        body.extend_from_slice(rest);
        bx(b"infe", &body)
    }

    fn iinf(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        body.extend(entries.concat());
        bx(b"iinf", &body)
    }

    /// One item's location: its id, construction method and extents
    /// (offset, length).
    type Item<'a> = (u16, u8, &'a [(u32, u32)]);

    /// An `iloc` of version 1, fields of 4 bytes, no base offset.
    fn iloc(items: &[Item<'_>]) -> Vec<u8> {
        let mut body = vec![1, 0, 0, 0, 0x44, 0x00];
        body.extend_from_slice(&(items.len() as u16).to_be_bytes());
        for (id, method, extents) in items {
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&[0, *method, 0, 0]);
            body.extend_from_slice(&(extents.len() as u16).to_be_bytes());
            for (offset, length) in *extents {
                body.extend_from_slice(&offset.to_be_bytes());
                body.extend_from_slice(&length.to_be_bytes());
            }
        }
        bx(b"iloc", &body)
    }

    /// ftyp, then `mdat` (its content starts at [`MDAT`]), then `meta`
    /// holding `boxes` after its `hdlr`.
    fn heif(mdat: &[u8], boxes: &[Vec<u8>]) -> Vec<u8> {
        let mut out = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
        out.extend(bx(b"mdat", mdat));
        let mut meta = vec![0, 0, 0, 0];
        meta.extend(bx(b"hdlr", b"\0\0\0\0\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0"));
        meta.extend(boxes.concat());
        out.extend(bx(b"meta", &meta));
        out
    }
    /// Where [`heif`]'s `mdat` content starts.
    const MDAT: u32 = 20 + 8;

    #[test]
    fn metadata_in_idat_with_a_length_to_its_end_and_in_properties_is_blanked() {
        let exif = &GPS[GPS_EXIF];
        let pixels = b"PIXELS-PIXELS";
        let mut idat = b"GRID".to_vec();
        idat.extend_from_slice(exif);
        let udes = bx(b"udes", b"\0\0\0\0en\0Ivanov A.\0at home\0\0");
        let ipco = bx(b"ipco", &[bx(b"ispe", &[0; 12]), udes].concat());
        let file = heif(
            pixels,
            &[
                iloc(&[
                    (1, 0, &[(MDAT, pixels.len() as u32)]),
                    (2, 1, &[(0, 4)]),
                    (3, 1, &[(4, 0)]),
                ]),
                iinf(&[infe(1, b"hvc1", b""), infe(2, b"grid", b""), infe(3, b"Exif", b"")]),
                bx(b"idat", &idat),
                bx(b"iprp", &ipco),
                bx(b"xml ", b"\0\0\0\0<owner>Ivanov A.</owner>"),
            ],
        );
        assert!(detect(&file).findings.iter().any(|f| f.kind == Kind::Gps));
        let cleaned = crate::clean(&file).unwrap();
        assert_eq!(cleaned.len(), file.len());
        assert!(detect(&cleaned).findings.is_empty());
        let at = |needle: &[u8]| crate::xmp::find(&cleaned, needle);
        assert!(at(pixels).is_some() && at(b"GRID").is_some());
        assert!(at(b"Ivanov").is_none() && at(b"at home").is_none());
        assert!(at(b"MM\0*\0\0\0\x08\0\0\0\0\0\0").is_some());
    }

    #[test]
    fn what_the_cleaner_cannot_vouch_for_is_refused() {
        let exif = &GPS[GPS_EXIF];
        let mut mdat = b"PIXELS".to_vec();
        mdat.extend_from_slice(exif);
        let n = exif.len() as u32;
        let items = iinf(&[infe(1, b"hvc1", b""), infe(2, b"Exif", b"")]);
        let refused = |boxes: &[Vec<u8>]| crate::clean(&heif(&mdat, boxes));
        let ok = refused(&[iloc(&[(1, 0, &[(MDAT, 6)]), (2, 0, &[(MDAT + 6, n)])]), items.clone()]);
        assert!(ok.is_ok(), "{ok:?}");
        for (why, reason, boxes) in [
            (
                "construction method 2",
                "construction method 2",
                vec![iloc(&[(1, 0, &[(MDAT, 6)]), (2, 2, &[(0, n)])]), items.clone()],
            ),
            (
                "EXIF overlapping the picture",
                "overlaps another item",
                vec![iloc(&[(1, 0, &[(MDAT, 7)]), (2, 0, &[(MDAT + 6, n)])]), items.clone()],
            ),
            (
                "EXIF in the meta box's headers",
                "outside the media data",
                vec![iloc(&[(1, 0, &[(MDAT, 6)]), (2, 0, &[(8, n)])]), items.clone()],
            ),
            (
                "EXIF past the end",
                "runs past the end",
                vec![
                    iloc(&[(1, 0, &[(MDAT, 6)]), (2, 0, &[(MDAT + 6, 1 << 30)])]),
                    items.clone(),
                ],
            ),
            (
                "an offset past the end",
                "runs past the end",
                vec![iloc(&[(1, 0, &[(MDAT, 6)]), (2, 0, &[(u32::MAX, 1)])]), items.clone()],
            ),
            (
                "an unknown item type",
                "of type \"Zzzz\"",
                vec![
                    iloc(&[(1, 0, &[(MDAT, 6)])]),
                    iinf(&[infe(1, b"hvc1", b""), infe(2, b"Zzzz", b"")]),
                ],
            ),
            (
                "an old item entry",
                "old version",
                vec![
                    iloc(&[(1, 0, &[(MDAT, 6)])]),
                    iinf(&[bx(b"infe", b"\0\0\0\0\0\x01\0\0x\0")]),
                ],
            ),
            ("no item list", "no item list", vec![iloc(&[(1, 0, &[(MDAT, 6)])])]),
            (
                "a protected item",
                "\"ipro\"",
                vec![
                    iloc(&[(1, 0, &[(MDAT, 6)])]),
                    items.clone(),
                    bx(b"ipro", b"\0\0\0\0\0\0"),
                ],
            ),
        ] {
            let err = refused(&boxes).unwrap_err().to_string();
            assert!(err.contains(reason), "{why}: {err}");
        }
        // Counts far beyond what the box holds: an iloc of version 2 with
        // 2^32-1 items, fields of size 0 (0 bytes per extent) and 65535
        // extents per item; an iinf claiming 65535 entries.
        let huge = bx(b"iloc", &[2, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff][..]);
        let mut many = vec![2, 0, 0, 0, 0, 0, 0, 0, 0x0f, 0xff];
        for id in 0..0x0fffu32 {
            many.extend_from_slice(&id.to_be_bytes());
            many.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff]);
        }
        let truncated = iloc(&[(1, 0, &[(MDAT, 6)]), (2, 0, &[(MDAT + 6, n)])]);
        let mut cut = truncated[..truncated.len() - 3].to_vec();
        let cut_len = (cut.len() as u32).to_be_bytes();
        cut[..4].copy_from_slice(&cut_len);
        let claims = bx(b"iinf", b"\0\0\0\0\xff\xff");
        for (why, reason, boxes) in [
            ("2^32-1 items", "more than 4096 items", vec![huge, items.clone()]),
            (
                "65535 extents of 0 bytes each",
                "more than 65536 extents",
                vec![bx(b"iloc", &many), items.clone()],
            ),
            ("a cut iloc", "cut short", vec![cut, items.clone()]),
            ("65535 claimed entries", "more than 4096 items", vec![truncated, claims]),
        ] {
            let err = refused(&boxes).unwrap_err().to_string();
            assert!(err.contains(reason), "{why}: {err}");
        }
    }

    #[test]
    fn a_cut_or_damaged_photo_gives_an_error_not_a_panic() {
        for len in 0..GPS.len() {
            let _ = crate::clean(&GPS[..len]);
        }
        // Every byte of the meta box (where the offsets are) changed.
        for i in 28..584 {
            for v in [0x00, 0x01, 0x7f, 0xff] {
                let mut bad = GPS.to_vec();
                bad[i] = v;
                if let Ok(cleaned) = crate::clean(&bad) {
                    assert_eq!(cleaned.len(), bad.len());
                }
            }
        }
    }
}
