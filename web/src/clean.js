// Cleaned copies of JPEG, PNG and WebP files: the segments and chunks that
// carry metadata (EXIF, XMP, text, comments, trailing data) are left out and
// every other byte is copied as it is, so that the pixels are exactly the
// original's (nothing is decoded or re-encoded). No maintained browser
// library removes metadata without re-encoding, so the container walks are
// here; they only copy or skip whole segments, and stop (the file is then
// not cleaned) at anything they do not understand.

import { concat } from "./protocol.js";

/** Largest file the page cleans (it is held in memory while cleaned). */
export const CLEAN_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Most segments or chunks a file may have before the page gives up on it
 * (a 64 MiB PNG in 8 KiB data chunks has 8,192; the kept parts are joined
 * as one call's arguments, which engines limit well above this).
 */
export const MAX_PARTS = 20_000;

/** The file could not be cleaned: it is not what its first bytes say, or is damaged. */
export class CannotClean extends Error {}

function check(ok, what) {
  if (!ok) throw new CannotClean(what);
}

const ascii = (b, i, n) => String.fromCharCode(...b.subarray(i, i + n));

/** A TIFF block (big-endian) holding only the orientation (1 to 8). */
function orientationTiff(orientation) {
  return [0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0, 0, 0];
}

/**
 * A minimal EXIF segment holding only the orientation, so that a cleaned
 * photo taken sideways is still shown upright.
 */
function orientationApp1(orientation) {
  const body = [...[0x45, 0x78, 0x69, 0x66, 0, 0], ...orientationTiff(orientation)];
  const len = body.length + 2;
  return Uint8Array.from([0xff, 0xe1, len >> 8, len & 0xff, ...body]);
}

/** The EXIF orientation (1 to 8) in a TIFF block from `t` to `end`, or 1. */
function tiffOrientation(b, t, end) {
  const le = ascii(b, t, 2) === "II";
  const u16 = (i) => (i + 2 <= end ? (le ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1]) : 0);
  const u32 = (i) => (i + 4 <= end ? (le ? u16(i) + u16(i + 2) * 65536 : u16(i) * 65536 + u16(i + 2)) : 0);
  const ifd = t + u32(t + 4);
  const n = Math.min(u16(ifd), 1000);
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + k * 12;
    if (e + 12 > end) break;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

/** The EXIF orientation in an EXIF body ("Exif\0\0" first, or not: WebP has both). */
function orientationOf(b, start, end) {
  return tiffOrientation(b, ascii(b, start, 6) === "Exif\0\0" ? start + 6 : start, end);
}

/** CRC-32 (ISO 3309, as PNG chunks use), for the one chunk the cleaner writes. */
function crc32(bytes) {
  let c = ~0;
  for (const x of bytes) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A PNG eXIf chunk holding only the orientation. */
function orientationPng(orientation) {
  const body = [0x65, 0x58, 0x49, 0x66, ...orientationTiff(orientation)];
  const crc = crc32(body);
  return Uint8Array.from([0, 0, 0, body.length - 4, ...body, crc >>> 24, (crc >> 16) & 0xff, (crc >> 8) & 0xff, crc & 0xff]);
}

/** A WebP EXIF chunk holding only the orientation. */
function orientationWebp(orientation) {
  const tiff = orientationTiff(orientation);
  return Uint8Array.from([0x45, 0x58, 0x49, 0x46, tiff.length, 0, 0, 0, ...tiff]);
}

/**
 * What a walk over a file found: the parts a cleaned copy keeps (`kept`,
 * in order) and the metadata parts it leaves out (`dropped`, each `{ id,
 * body }`: a JPEG marker or a chunk type, and the part's body), which
 * metadata.js reads for findings. Filled as the walk goes, so that a walk
 * that stops still says what it saw.
 */
export class Walk {
  constructor() {
    this.kept = [];
    this.dropped = [];
    this.orientation = 1;
  }
}

/**
 * JPEG markers a cleaned copy keeps (their segments are how the picture is
 * coded): SOF0 to SOF15 but C8 (reserved), with DHT (C4) and DAC (CC) among
 * them; SOS, DQT, DNL and DRI. Restarts and TEM stand alone. APP0 (JFIF),
 * APP2 (ICC) and APP14 (Adobe) are kept by what they say; every other APPn
 * and COM is metadata, left out. Anything else (reserved markers, JPEG
 * extensions) stops the walk: the page does not keep what it does not know.
 */
const JPEG_KEEP = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xda, 0xdb, 0xdc, 0xdd]);

/**
 * Whether a kept segment's body (from `body` to `end`) is shaped as its
 * marker says: each table or component it declares fills it exactly, so
 * that no other data (an EXIF block under a changed marker) rides along.
 */
function shaped(m, b, body, end) {
  const n = end - body;
  if (m === 0xc4 || m === 0xdb) {
    // DHT: class and id, 16 counts, then that many values. DQT: precision
    // and id, then 64 entries of 1 or 2 bytes.
    let i = body;
    while (i < end) {
      if (m === 0xc4) i += 17 + b.subarray(i + 1, i + 17).reduce((a, x) => a + x, 0);
      else i += 1 + 64 * ((b[i] >> 4) + 1);
    }
    return i === end && n > 0;
  }
  if (m === 0xda) return n === 4 + 2 * b[body];
  if (m === 0xdd || m === 0xdc) return n === 2;
  if (m === 0xcc) return n % 2 === 0;
  // SOFn: precision, height, width, then three bytes per component.
  return n === 6 + 3 * b[body + 5];
}

/** A JFIF APP0 kept as its 16-byte header with no thumbnail (one may show an uncropped original). */
function jfifHeader(b, body) {
  const h = b.slice(body - 4, body + 14);
  h[3] = 16;
  h[2] = 0;
  h[16] = 0;
  h[17] = 0;
  return h;
}

/**
 * Walk a JPEG into `w`: its picture segments kept, its EXIF, XMP,
 * Photoshop/IPTC and comment segments dropped, and anything after the end
 * of the image (phones append thumbnails, depth maps and their own records
 * there) dropped as "trailer". The colour profile (APP2 ICC), JFIF (APP0,
 * without thumbnail) and Adobe (APP14, which says how colours are coded)
 * stay. Throws CannotClean at anything else.
 */
export function walkJpeg(b, w = new Walk()) {
  check(b[0] === 0xff && b[1] === 0xd8, "not a JPEG");
  w.kept.push(b.subarray(0, 2));
  let i = 2;
  let parts = 0;
  for (;;) {
    check(++parts < MAX_PARTS, "too many segments");
    check(i + 1 < b.length && b[i] === 0xff, "damaged JPEG");
    // Fill bytes before a marker.
    while (b[i + 1] === 0xff && i + 2 < b.length) i++;
    const m = b[i + 1];
    if (m === 0xd9) {
      w.kept.push(b.subarray(i, i + 2));
      if (b.subarray(i + 2).some((x) => x !== 0)) w.dropped.push({ id: "trailer", body: b.subarray(i + 2) });
      break;
    }
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      w.kept.push(b.subarray(i, i + 2));
      i += 2;
      continue;
    }
    check(JPEG_KEEP.has(m) || (m >= 0xe0 && m <= 0xef) || m === 0xfe, "unknown JPEG segment");
    check(i + 4 <= b.length, "damaged JPEG");
    const len = (b[i + 2] << 8) | b[i + 3];
    check(len >= 2 && i + 2 + len <= b.length, "damaged JPEG");
    const end = i + 2 + len;
    const body = i + 4;
    if (JPEG_KEEP.has(m)) {
      check(shaped(m, b, body, end), "damaged JPEG");
      w.kept.push(b.subarray(i, end));
    }
    else if (m === 0xe0 && len >= 16 && ascii(b, body, 5) === "JFIF\0") w.kept.push(jfifHeader(b, body));
    else if ((m === 0xe2 && ascii(b, body, 12) === "ICC_PROFILE\0") || (m === 0xee && ascii(b, body, 5) === "Adobe")) {
      w.kept.push(b.subarray(i, end));
    } else {
      if (m === 0xe1 && ascii(b, body, 6) === "Exif\0\0") w.orientation = orientationOf(b, body, end);
      w.dropped.push({ id: m, body: b.subarray(body, end) });
    }
    i = end;
    if (m === 0xda) {
      // Entropy-coded data runs to the next marker that is not a stuffed
      // byte (FF00) or a restart (FFD0 to FFD7).
      let j = i;
      while (j + 1 < b.length && !(b[j] === 0xff && b[j + 1] !== 0 && !(b[j + 1] >= 0xd0 && b[j + 1] <= 0xd7))) j++;
      check(j + 1 < b.length, "JPEG without an end");
      w.kept.push(b.subarray(i, j));
      i = j;
    }
  }
  return w;
}

/** A JPEG with only what walkJpeg keeps, and its EXIF orientation. */
export function cleanJpeg(b) {
  const w = walkJpeg(b);
  if (w.orientation !== 1) w.kept.splice(1, 0, orientationApp1(w.orientation));
  return concat(...w.kept);
}

/**
 * PNG chunks that a cleaned copy keeps: those that make the picture (and
 * its colours and animation). Text, EXIF, time and every unknown chunk go.
 */
const PNG_KEEP = new Set(
  ["IHDR", "PLTE", "IDAT", "IEND", "tRNS", "gAMA", "cHRM", "sRGB", "iCCP", "sBIT", "bKGD", "pHYs", "cICP", "mDCv", "cLLi", "acTL", "fcTL", "fdAT"],
);

/** Walk a PNG into `w`: the chunks in PNG_KEEP kept, the others (and anything after IEND) dropped. */
export function walkPng(b, w = new Walk()) {
  check(ascii(b, 0, 8) === "\x89PNG\r\n\x1a\n", "not a PNG");
  w.kept.push(b.subarray(0, 8));
  let i = 8;
  for (let parts = 0; ; parts++) {
    check(parts < MAX_PARTS, "too many chunks");
    check(i + 12 <= b.length, "damaged PNG");
    const len = ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
    const id = ascii(b, i + 4, 4);
    const end = i + 12 + len;
    check(end <= b.length, "damaged PNG");
    if (id === "eXIf") w.orientation = orientationOf(b, i + 8, end - 4);
    if (PNG_KEEP.has(id)) w.kept.push(b.subarray(i, end));
    else w.dropped.push({ id, body: b.subarray(i + 8, end - 4) });
    i = end;
    if (id === "IEND") break;
  }
  if (b.subarray(i).some((x) => x !== 0)) w.dropped.push({ id: "trailer", body: b.subarray(i) });
  return w;
}

/**
 * A PNG with only the chunks in PNG_KEEP (each copied with its own CRC),
 * and its EXIF orientation in an eXIf chunk of its own after IHDR.
 */
export function cleanPng(b) {
  const w = walkPng(b);
  if (w.orientation !== 1) w.kept.splice(2, 0, orientationPng(w.orientation));
  return concat(...w.kept);
}

/**
 * A WebP's chunks: `{ chunks: [{ id, start, size }] }`, `start` at the
 * chunk's header, `size` its body's length (without the pad byte).
 */
export function webpParts(b) {
  check(ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP", "not a WebP");
  const riff = b[4] + (b[5] << 8) + (b[6] << 16) + ((b[7] << 24) >>> 0);
  const end = Math.min(b.length, riff + 8);
  const chunks = [];
  let i = 12;
  while (i + 8 <= end) {
    check(chunks.length < MAX_PARTS, "too many chunks");
    const size = b[i + 4] + (b[i + 5] << 8) + (b[i + 6] << 16) + ((b[i + 7] << 24) >>> 0);
    check(i + 8 + size <= end, "damaged WebP");
    chunks.push({ id: ascii(b, i, 4), start: i, size });
    i += 8 + size + (size & 1);
  }
  return { chunks };
}

/** VP8X flags a cleaned WebP no longer has: EXIF (0x08) and XMP (0x04). */
const VP8X_METADATA = 0x08 | 0x04;

/** WebP chunks a cleaned copy keeps: the picture, its animation and its colour profile. */
const WEBP_KEEP = new Set(["VP8 ", "VP8L", "VP8X", "ALPH", "ANIM", "ANMF", "ICCP"]);

/** Walk a WebP into `w`: the chunks in WEBP_KEEP kept (VP8X without its metadata flags), the others dropped. */
export function walkWebp(b, w = new Walk()) {
  const { chunks } = webpParts(b);
  for (const c of chunks) {
    const end = Math.min(b.length, c.start + 8 + c.size + (c.size & 1));
    if (c.id === "EXIF") w.orientation = orientationOf(b, c.start + 8, c.start + 8 + c.size);
    if (!WEBP_KEEP.has(c.id)) {
      w.dropped.push({ id: c.id, body: b.subarray(c.start + 8, c.start + 8 + c.size) });
      continue;
    }
    const chunk = b.slice(c.start, end);
    if (c.id === "VP8X") {
      check(c.size >= 1, "damaged WebP");
      chunk[8] &= ~VP8X_METADATA;
    }
    w.kept.push(chunk);
  }
  return w;
}

/** A WebP without its EXIF and XMP chunks (nor unknown ones) but its orientation, its VP8X flags and RIFF size fixed. */
export function cleanWebp(b) {
  const w = walkWebp(b);
  // EXIF comes after the image data; VP8X (there is one: EXIF needs it) says so.
  const vp8x = w.kept.find((c) => ascii(c, 0, 4) === "VP8X");
  if (w.orientation !== 1 && vp8x) {
    vp8x[8] |= 0x08;
    w.kept.push(orientationWebp(w.orientation));
  }
  const body = concat(...w.kept);
  const size = body.length + 4;
  const head = Uint8Array.from([0x52, 0x49, 0x46, 0x46, size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff, size >>> 24, 0x57, 0x45, 0x42, 0x50]);
  return concat(head, body);
}

/** The walk of each format the page cleans. */
export const WALKERS = { jpeg: walkJpeg, png: walkPng, webp: walkWebp };

const CLEANERS = { jpeg: cleanJpeg, png: cleanPng, webp: cleanWebp };

/**
 * A cleaned copy of `blob` (of `format`, as metadata.sniff says), as a
 * Blob of `type`. Throws CannotClean when the file is too large or not
 * what it seemed: the page then asks the person again.
 */
export async function clean(blob, format, type) {
  const cleaner = CLEANERS[format];
  check(cleaner && blob.size <= CLEAN_MAX_BYTES, "this file cannot be cleaned");
  const bytes = new Uint8Array(await blob.arrayBuffer());
  return new Blob([cleaner(bytes)], type ? { type } : undefined);
}
