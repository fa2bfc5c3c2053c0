// The metadata parts of a JPEG, PNG or WebP, as clean.js's walk found them
// (the parts a cleaned copy leaves out), read for findings: EXIF blocks by
// exifr, XMP packets by exifr's XMP reader, and by hand the small formats
// exifr does not bundle cheaply or reads unbounded (IPTC datasets, PNG
// text chunks). exifr is handed each part alone, never the whole file: it
// spends about 50 bytes of memory per input byte on a file of many tiny
// segments. A part that says nothing the page can name is still reported
// ("other"), so that the person is asked before it is left out.

import { inflateBounded } from "./inflate.js";
import { device } from "./metadata.js";

/** Most metadata parts read; a file with more is "could not be read". */
export const MAX_META_PARTS = 64;

/** Most bytes of metadata parts read; a file with more is "could not be read". */
export const META_MAX_BYTES = 1024 * 1024;

const latin1 = (b) => new TextDecoder("latin1").decode(b);
const utf8 = (b) => new TextDecoder().decode(b);
const starts = (b, s) => latin1(b.subarray(0, s.length)) === s;

/** IPTC datasets of record 2 that name people or places. */
const IPTC = { 80: "author", 122: "author", 110: "author", 116: "author", 90: "place", 92: "place", 95: "place", 101: "place", 120: "text", 105: "text" };

/** Findings of a Photoshop APP13 body's IPTC block (resource 0x0404). */
function iptc(b, out) {
  const u16 = (i) => (b[i] << 8) | b[i + 1];
  const u32 = (i) => u16(i) * 65536 + u16(i + 2);
  let i = 14;
  for (let n = 0; n < MAX_META_PARTS && i + 12 <= b.length && starts(b.subarray(i), "8BIM"); n++) {
    const id = u16(i + 4);
    const name = 1 + b[i + 6];
    const at = i + 6 + name + (name & 1);
    if (at + 4 > b.length) return;
    const size = u32(at);
    const end = Math.min(b.length, at + 4 + size);
    if (id === 0x0404) {
      for (let j = at + 4; j + 5 <= end && b[j] === 0x1c; ) {
        const len = u16(j + 3);
        // An extended dataset (its length's top bit set) ends the read.
        if (len & 0x8000) break;
        if (b[j + 1] === 2 && IPTC[b[j + 2]]) out.add(IPTC[b[j + 2]], utf8(b.subarray(j + 5, Math.min(end, j + 5 + len))));
        j += 5 + len;
      }
    }
    i = end + (size & 1);
  }
}

/** PNG text keywords the page names; other keywords are shown as "keyword: text". */
const PNG_KEYS = { author: "author", artist: "author", copyright: "author", software: "software", source: "device" };

/** Longest inflated PNG text. */
const TEXT_MAX_BYTES = 64 * 1024;

/** A PNG text chunk (tEXt, zTXt or iTXt) as `[keyword, text]`, or null. */
function pngText(id, b) {
  const z = b.indexOf(0);
  if (z < 1 || z > 79) return null;
  const key = latin1(b.subarray(0, z));
  if (id === "tEXt") return [key, latin1(b.subarray(z + 1))];
  if (id === "zTXt") {
    const t = inflateBounded(b.subarray(z + 2), TEXT_MAX_BYTES, true);
    return t && [key, latin1(t)];
  }
  // iTXt: a compression flag and method, a language and a translated
  // keyword, each ended by a NUL, then UTF-8.
  const lang = b.indexOf(0, z + 3);
  const tkey = lang < 0 ? -1 : b.indexOf(0, lang + 1);
  if (tkey < 0) return null;
  const body = b.subarray(tkey + 1);
  const t = b[z + 1] === 1 ? inflateBounded(body, TEXT_MAX_BYTES, true) : body;
  return t && [key, utf8(t)];
}

/** ImageMagick's "Raw profile type exif": a name, a length and hex, on lines. */
function rawProfile(text) {
  const hex = text.split("\n").slice(3).join("").replace(/\s/g, "");
  if (!/^([0-9a-f]{2})+$/i.test(hex)) return null;
  return Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
}

/** The TIFF block of an EXIF body ("Exif\0\0" first, or not). */
const tiffOf = (b) => (starts(b, "Exif\0\0") ? b.subarray(6) : b);

/**
 * Read the metadata parts `dropped` of a `format` file into `out`, with
 * `exif(tiff)` and `xmp(text)` for EXIF and XMP. Returns false when there
 * were more parts, or more bytes, than the bounds: the file could not be
 * read. A part that gave no finding adds one "other".
 */
export async function readParts(format, dropped, out, { exif, xmp }) {
  if (dropped.length > MAX_META_PARTS) return false;
  if (dropped.reduce((n, p) => n + p.body.length, 0) > META_MAX_BYTES) return false;
  let unnamed = false;
  const make = {};
  for (const { id, body } of dropped) {
    const before = out.seen;
    let quiet = false;
    try {
      if (format === "jpeg" && id === 0xe1 && starts(body, "Exif\0\0")) quiet = await exif(tiffOf(body));
      else if (format === "jpeg" && id === 0xe1 && starts(body, "http://ns.adobe.com/xap/1.0/\0")) xmp(utf8(body.subarray(29)));
      else if (format === "jpeg" && id === 0xed && starts(body, "Photoshop 3.0\0")) iptc(body, out);
      else if (format === "jpeg" && id === 0xfe) out.add("text", latin1(body));
      else if (format === "png" && id === "eXIf") quiet = await exif(body);
      else if (format === "png" && id === "tIME" && body.length === 7) {
        const p = (v) => String(v).padStart(2, "0");
        const y = (body[0] << 8) | body[1];
        out.add("capture_time", `${y}-${p(body[2])}-${p(body[3])} ${p(body[4])}:${p(body[5])}:${p(body[6])}`);
      } else if (format === "png" && ["tEXt", "zTXt", "iTXt"].includes(id)) {
        const kt = pngText(id, body);
        if (kt) {
          const [key, value] = kt;
          const k = key.toLowerCase();
          if (key === "XML:com.adobe.xmp") xmp(value);
          else if (k === "make" || k === "model") {
            make[k] = value;
            quiet = true;
          }
          else if (k.startsWith("raw profile type ")) {
            const t = rawProfile(value);
            if (t && t.length <= META_MAX_BYTES) quiet = await exif(tiffOf(t));
          } else if (PNG_KEYS[k]) out.add(PNG_KEYS[k], value);
          else if (value.trim()) out.add("text", `${key}: ${value}`);
          else quiet = true;
        }
      } else if (format === "webp" && id === "EXIF") quiet = await exif(tiffOf(body));
      else if (format === "webp" && id === "XMP ") xmp(utf8(body));
    } catch {
      // A damaged part is reported as unnamed below.
    }
    if (out.seen === before && !quiet) unnamed = true;
  }
  out.add("device", device(make.make, make.model));
  if (unnamed) out.other();
  return true;
}
