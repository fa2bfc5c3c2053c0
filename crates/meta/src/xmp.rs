//! Findings from XMP packets. XMP is made to be found by scanning a file's
//! bytes for its packet (the XMP specification's "packet scanning"), which
//! works alike in JPEG, PNG, WebP, HEIF, PDF and MP4; quick-xml reads it.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::{capture_time, device, gps, text, Finding, Kind};

/// The most XMP packets read from one file.
const MAX_PACKETS: usize = 16;
/// The most bytes of one packet read.
const MAX_PACKET_BYTES: usize = 4 * 1024 * 1024;

/// Every `<x:xmpmeta ...>...</x:xmpmeta>` (or bare `<rdf:RDF>`) packet
/// in `bytes`.
pub(crate) fn packets(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for (open, close) in [(&b"<x:xmpmeta"[..], &b"</x:xmpmeta>"[..]), (b"<rdf:RDF", b"</rdf:RDF>")] {
        while out.len() < MAX_PACKETS {
            let Some(start) = find(&bytes[at..], open).map(|i| i + at) else {
                break;
            };
            let end = find(&bytes[start..], close).map(|i| start + i + close.len());
            let end = end.unwrap_or(bytes.len()).min(start + MAX_PACKET_BYTES);
            out.push(&bytes[start..end]);
            at = end;
        }
        if !out.is_empty() {
            break;
        }
        at = 0;
    }
    out
}

/// The position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the XMP packets in `bytes` reveal.
pub(crate) fn in_bytes(bytes: &[u8]) -> Vec<Finding> {
    packets(bytes).into_iter().flat_map(findings).collect()
}

/// The properties of one packet, by local name ("tiff:Make" -> "Make"),
/// as attributes or as element text (the first `rdf:li` of a list).
fn properties(packet: &[u8]) -> Vec<(String, String)> {
    let mut reader = Reader::from_reader(packet);
    let mut props = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                attributes(&e, &mut props);
                stack.push(name);
            }
            Ok(Event::Empty(e)) => attributes(&e, &mut props),
            Ok(Event::End(_)) => {
                stack.pop();
            }
            Ok(Event::Text(t)) => {
                let value = t.decode().map(|v| v.into_owned()).unwrap_or_default();
                // The property is the nearest element that is not RDF's
                // own structure (Seq, Bag, Alt, li).
                let owner = stack
                    .iter()
                    .rev()
                    .find(|n| !matches!(n.as_str(), "li" | "Seq" | "Bag" | "Alt" | "Description"));
                if let Some(owner) = owner {
                    if !value.trim().is_empty() {
                        props.push((owner.clone(), value));
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    props
}

/// Attributes of an element as properties (XMP's short form).
fn attributes(e: &quick_xml::events::BytesStart<'_>, props: &mut Vec<(String, String)>) {
    for a in e.attributes().flatten() {
        let key = a.key.local_name();
        let key = String::from_utf8_lossy(key.as_ref()).into_owned();
        if a.key.as_ref().starts_with(b"xmlns") || a.key.as_ref().starts_with(b"rdf:") {
            continue;
        }
        if let Ok(v) = a.normalized_value(quick_xml::XmlVersion::default()) {
            props.push((key, v.into_owned()));
        }
    }
}

/// XMP's GPS spelling, "43,14.33696N" or "43,14,20.2N", as degrees.
fn coordinate(raw: &str) -> Option<f64> {
    let raw = raw.trim();
    let sign = match raw.chars().last()? {
        'N' | 'E' | 'n' | 'e' => 1.0,
        'S' | 'W' | 's' | 'w' => -1.0,
        _ => return raw.parse().ok(),
    };
    let body = &raw[..raw.len() - 1];
    let parts: Vec<f64> = body.split(',').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
    let v = match parts.as_slice() {
        [d] => *d,
        [d, m] => d + m / 60.0,
        [d, m, s] => d + m / 60.0 + s / 3600.0,
        _ => return None,
    };
    Some(sign * v)
}

/// What one packet reveals.
fn findings(packet: &[u8]) -> Vec<Finding> {
    let props = properties(packet);
    let get = |name: &str| props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut out = Vec::new();
    if let (Some(lat), Some(lon)) = (
        get("GPSLatitude").and_then(coordinate),
        get("GPSLongitude").and_then(coordinate),
    ) {
        out.extend(gps(lat, lon));
    }
    out.extend(device(get("Make"), get("Model")));
    for (name, value) in &props {
        let kind = match name.as_str() {
            "SerialNumber" | "BodySerialNumber" | "LensSerialNumber" => Kind::Serial,
            "OwnerName" | "CameraOwnerName" | "Artist" => Kind::Owner,
            "creator" | "Author" | "LastModifiedBy" => Kind::Author,
            "CreatorTool" | "Producer" | "Software" => Kind::Software,
            _ => continue,
        };
        out.extend(text(kind, value));
    }
    if let Some(t) = get("DateTimeOriginal").or(get("DateCreated")) {
        out.extend(capture_time(t, None));
    }
    out
}
