// What a chosen file says about the person who sends it, found in the page
// before anything is encrypted: the place, the device, names, software and
// the time of capture, in the same kinds and spellings as the Rust side
// (crates' metadata findings), so that the submitter and the lawyers read
// the same words. Images are read by exifr (a maintained EXIF/XMP reader;
// only the parsers the page needs are bundled); PDF and office documents by
// docmeta.js; MP4 and MOV videos by media.js. Every reader is bounded (limits below) and a file it cannot
// read shows no findings: detection never stops a submission.

import * as exifr from "exifr/src/core.mjs";
import "exifr/src/file-parsers/heif.mjs";
import "exifr/src/file-parsers/tiff.mjs";
import "exifr/src/segment-parsers/tiff-exif.mjs";
import Xmp from "exifr/src/segment-parsers/xmp.mjs";
import "exifr/src/dicts/tiff-ifd0-keys.mjs";
import "exifr/src/dicts/tiff-exif-keys.mjs";
import "exifr/src/dicts/tiff-gps-keys.mjs";

import { officeFindings, pdfFindings } from "./docmeta.js";
import { videoFindings } from "./media.js";
import { CLEAN_MAX_BYTES, CannotClean, WALKERS, Walk } from "./clean.js";
import { readParts } from "./imagemeta.js";
import { work } from "./inflate.js";

export { MAX_META_PARTS, META_MAX_BYTES } from "./imagemeta.js";
export { work };

/** The kinds of finding, in the order the page lists them. */
export const KINDS = ["gps", "device", "serial", "owner", "author", "software", "capture_time"];

/**
 * Kinds only the page shows (the lawyers' tools have their own words for
 * these): a place named in words, text stored in the file (comments,
 * descriptions), and "other" (value ""): a metadata part the page left
 * unnamed, which a cleaned copy leaves out, so that the person is asked.
 */
export const PAGE_KINDS = ["place", "text", "other"];
const ORDER = [...KINDS, ...PAGE_KINDS];

/**
 * Bytes of an image read to find its metadata: a JPEG, PNG or WebP is
 * walked whole up to clean.js's CLEAN_MAX_BYTES (PNG and WebP may keep
 * their metadata after the pixels); the first IMAGE_HEAD_BYTES of a larger
 * one, and of a HEIF or TIFF (exifr reads those), are read.
 */
export const IMAGE_HEAD_BYTES = 4 * 1024 * 1024;

/** Longest value shown: a longer one is cut (a hostile file may hold megabytes). */
export const MAX_VALUE_CHARS = 200;

/** At most this many findings per file. */
export const MAX_FINDINGS = 32;

/** The file's format, from its first bytes (never from its name). */
export function sniff(head) {
  const b = head;
  const at = (i, s) => [...s].every((c, j) => b[i + j] === c.charCodeAt(0));
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (at(0, "\x89PNG\r\n\x1a\n")) return "png";
  if (at(0, "RIFF") && at(8, "WEBP")) return "webp";
  if (at(4, "ftyp")) {
    const brand = String.fromCharCode(...b.slice(8, 12));
    if (/^(heic|heix|heim|heis|hevc|hevx|mif1|msf1|avif)$/.test(brand)) return "heif";
    return "mp4";
  }
  // QuickTime files older than the ftyp box open with one of these.
  if (["moov", "mdat", "wide", "free"].some((t) => at(4, t))) return "mp4";
  if (at(0, "%PDF-")) return "pdf";
  if (at(0, "PK\x03\x04")) return "zip";
  if (at(0, "II*\0") || at(0, "MM\0*")) return "tiff";
  return null;
}

/** Formats the page can clean (clean.js); the others are sent as is or left out. */
export const CLEANABLE = new Set(["jpeg", "png", "webp"]);

/** A value as found: text, trimmed and cut to MAX_VALUE_CHARS. */
function text(v) {
  if (Array.isArray(v)) v = v.find((x) => typeof x === "string" || typeof x === "number");
  if (v && typeof v === "object" && "value" in v) v = v.value;
  if (typeof v !== "string" && typeof v !== "number") return null;
  // Control characters (and NULs that end EXIF strings) are not shown.
  const s = String(v).replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return s ? s.slice(0, MAX_VALUE_CHARS).trimEnd() : null;
}

/** "Make Model", or the model alone when it already starts with the make. */
export function device(make, model) {
  const a = text(make);
  const b = text(model);
  if (a && b) return b.toLowerCase().startsWith(a.toLowerCase()) ? b : `${a} ${b}`;
  return a ?? b;
}

/** Signed decimal degrees with six decimals: "43.238949, 76.889709". */
export function gps(lat, lon) {
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  const f = (x) => (Object.is(Number(x.toFixed(6)), -0) ? 0 : x).toFixed(6);
  return `${f(lat)}, ${f(lon)}`;
}

/**
 * "YYYY-MM-DD HH:MM:SS", with " +HH:MM" when the file gives the offset,
 * from EXIF's "YYYY:MM:DD HH:MM:SS" or XMP's ISO 8601.
 */
export function captureTime(value, offset) {
  const s = text(value);
  if (!s) return null;
  const m = /^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?/.exec(s);
  if (!m) return s;
  let out = `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6] ?? "00"}`;
  let off = text(offset) ?? m[7];
  if (off === "Z") off = "+00:00";
  if (off && /^[+-]\d{2}:?\d{2}$/.test(off)) out += ` ${off.slice(0, 3)}:${off.slice(-2)}`;
  return out;
}

/** XMP's "43,14.33694N" (degrees, minutes and a direction) as signed degrees. */
function xmpDegrees(v) {
  const s = text(v);
  const m = s && /^(\d+),(\d+(?:\.\d+)?)(?:,(\d+(?:\.\d+)?))?([NSEW])$/.exec(s);
  if (!m) return NaN;
  const d = Number(m[1]) + Number(m[2]) / 60 + Number(m[3] ?? 0) / 3600;
  return m[4] === "S" || m[4] === "W" ? -d : d;
}

/** Collects findings, each kind and value once. */
export class Findings {
  constructor() {
    this.list = [];
    /** Values met, shown or not (repeats and those past MAX_FINDINGS count). */
    this.seen = 0;
  }
  /** Add `value` (made text) as a finding of `kind`, unless empty or already there. */
  add(kind, value) {
    const v = text(value);
    if (!v) return;
    this.seen++;
    if (this.list.length >= MAX_FINDINGS) return;
    if (!this.list.some((f) => f.kind === kind && f.value === v)) this.list.push({ kind, value: v });
  }
  /** Add the one "other" finding: metadata the page could not name. */
  other() {
    if (!this.list.some((f) => f.kind === "other")) this.list.push({ kind: "other", value: "" });
  }
  /** The findings in KINDS order, then the page's own kinds. */
  sorted() {
    return [...this.list].sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
  }
}

/** Findings of parsed XMP (exifr's shape: one object per namespace). */
export function addXmp(out, x) {
  if (!x || typeof x !== "object") return;
  const tiff = x.tiff ?? {};
  const exif = x.exif ?? {};
  out.add("gps", gps(xmpDegrees(exif.GPSLatitude), xmpDegrees(exif.GPSLongitude)));
  out.add("device", device(tiff.Make, tiff.Model));
  out.add("serial", x.aux?.SerialNumber ?? x.exifEX?.BodySerialNumber);
  out.add("owner", x.exifEX?.CameraOwnerName);
  for (const c of [x.dc?.creator].flat()) out.add("author", c);
  out.add("author", x.pdf?.Author);
  out.add("software", x.xmp?.CreatorTool);
  out.add("software", x.pdf?.Producer);
  out.add("capture_time", captureTime(exif.DateTimeOriginal ?? x.photoshop?.DateCreated));
}

/** Parse an XMP packet's text with exifr's XMP reader. */
export function parseXmp(packet) {
  try {
    return new Xmp(packet, { xmp: { parse: true } }).parse();
  } catch {
    return null;
  }
}

/** Windows' XP tags: UTF-16LE bytes, as exifr gives them unrevived. */
function utf16(v) {
  if (typeof v === "string") return v;
  if (!v || typeof v.length !== "number") return null;
  return new TextDecoder("utf-16le").decode(Uint8Array.from(v)).replace(/\0+$/, "");
}

/** IFD0 tags the cleaner writes back or that only say how to show the picture. */
const TECHNICAL = new Set(["Orientation", "XResolution", "YResolution", "ResolutionUnit", "YCbCrPositioning"]);

/** Findings of exifr's output for an image (EXIF blocks, and XMP merged in). */
function addExif(out, r) {
  if (!r) return;
  const ifd0 = r.ifd0 ?? {};
  const exif = r.exif ?? {};
  const g = r.gps ?? {};
  out.add("gps", gps(g.latitude, g.longitude));
  out.add("device", device(ifd0.Make, ifd0.Model));
  out.add("serial", exif.SerialNumber ?? exif.BodySerialNumber);
  out.add("owner", exif.OwnerName ?? exif.CameraOwnerName);
  out.add("author", ifd0.Artist);
  out.add("author", utf16(ifd0.XPAuthor));
  out.add("author", ifd0.Copyright);
  out.add("software", ifd0.Software);
  out.add("capture_time", captureTime(exif.DateTimeOriginal ?? exif.CreateDate, exif.OffsetTimeOriginal));
  out.add("text", ifd0.ImageDescription);
  for (const k of ["XPTitle", "XPComment", "XPSubject", "XPKeywords"]) out.add("text", utf16(ifd0[k]));
  // The XMP namespaces exifr did not merge into the EXIF blocks.
  addXmp(out, { ...r, tiff: {}, exif: { GPSLatitude: exif.GPSLatitude, GPSLongitude: exif.GPSLongitude } });
}

/** True when exifr's output holds nothing but how to show the picture. */
function technicalOnly(r) {
  if (!r || typeof r !== "object") return false;
  return Object.entries(r).every(([block, tags]) => block === "ifd0" && Object.keys(tags ?? {}).every((k) => TECHNICAL.has(k)));
}

const EXIFR_OPTIONS = {
  tiff: true,
  ifd0: true,
  exif: true,
  gps: true,
  xmp: true,
  ifd1: false,
  interop: false,
  icc: false,
  iptc: false,
  jfif: false,
  reviveValues: false,
  translateValues: false,
  mergeOutput: false,
  silentErrors: true,
};

/**
 * Findings of an EXIF TIFF block, read by exifr (the block alone: see
 * imagemeta.js). True when it held only how to show the picture.
 */
async function exifBlock(tiff, out) {
  work.exifr += tiff.length;
  const r = await exifr.parse(tiff, { ...EXIFR_OPTIONS, xmp: false });
  addExif(out, r);
  return technicalOnly(r);
}

/**
 * Findings of a JPEG, PNG or WebP, walked by its cleaner: `{ cleanable,
 * unreadable }`. Cleanable when the walk (a trial clean) went through
 * the whole file and the metadata parts were within the bounds;
 * unreadable otherwise (the person is then asked, as is or left out).
 */
async function walkedFindings(blob, format, out) {
  const whole = blob.size <= CLEAN_MAX_BYTES;
  const bytes = new Uint8Array(await blob.slice(0, whole ? blob.size : IMAGE_HEAD_BYTES).arrayBuffer());
  const w = new Walk();
  let walked = true;
  try {
    WALKERS[format](bytes, w);
  } catch (e) {
    if (!(e instanceof CannotClean)) throw e;
    walked = false;
  }
  const read = await readParts(format, w.dropped, out, {
    exif: (tiff) => exifBlock(tiff, out),
    xmp: (packet) => addXmp(out, parseXmp(packet)),
  });
  return { cleanable: whole && walked && read, unreadable: !walked || !read };
}

/**
 * Whether every box of a HEIF file's head, and of its `meta` box, has a
 * size that moves past it (at least its header; 0, "to the end", is
 * refused too): exifr's box loops do not advance past one that does not,
 * and never end. Boxes running past the head are not followed.
 */
export function heifBoxesWalkable(b) {
  const u32 = (i) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  const walk = (from, to, depth) => {
    for (let at = from; at + 8 <= to; ) {
      let size = u32(at);
      let header = 8;
      if (size === 1) {
        if (at + 16 > to) return true;
        if (u32(at + 8) !== 0) return false;
        size = u32(at + 12);
        header = 16;
      }
      if (size < header) return false;
      if (at + size > to) return true;
      const meta = b[at + 4] === 0x6d && b[at + 5] === 0x65 && b[at + 6] === 0x74 && b[at + 7] === 0x61;
      if (meta && depth === 0 && !walk(at + header + 4, at + size, 1)) return false;
      at += size;
    }
    return true;
  };
  return walk(0, b.length, 0);
}

/**
 * What `blob` says about its sender:/**
 * What `blob` says about its sender: `{ format, findings, cleanable,
 * unreadable }`, findings as `{ kind, value }` in KINDS order (then
 * PAGE_KINDS). Never throws: a file that cannot be read has no findings,
 * and is `unreadable` when the page would otherwise have cleaned it.
 */
export async function inspect(blob) {
  let format = null;
  try {
    format = sniff(new Uint8Array(await blob.slice(0, 16).arrayBuffer()));
    const out = new Findings();
    let state = { cleanable: false, unreadable: false };
    if (CLEANABLE.has(format)) {
      state = await walkedFindings(blob, format, out);
    } else if (format === "heif" || format === "tiff") {
      const bytes = new Uint8Array(await blob.slice(0, IMAGE_HEAD_BYTES).arrayBuffer());
      // exifr never gets past a HEIF box whose size is 0 or smaller than
      // its header (found by web/fuzz.mjs): such a file is not read.
      if (format === "heif" && !heifBoxesWalkable(bytes)) throw new Error("a HEIF box exifr cannot walk");
      work.exifr += bytes.length;
      addExif(out, await exifr.parse(bytes, EXIFR_OPTIONS));
    } else if (format === "pdf") {
      await pdfFindings(blob, out);
    } else if (format === "zip") {
      await officeFindings(blob, out);
    } else if (format === "mp4") {
      await videoFindings(blob, out, { gps, device, captureTime });
    }
    return { format, findings: out.sorted(), ...state };
  } catch {
    return { format, findings: [], cleanable: false, unreadable: CLEANABLE.has(format) };
  }
}
