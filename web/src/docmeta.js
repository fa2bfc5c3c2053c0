// Names and software in documents: a PDF's Info dictionary and XMP packet,
// and the properties of office files (DOCX, XLSX, PPTX: docProps/core.xml
// and app.xml; ODF: meta.xml). XML is read by the browser's DOMParser and
// property parts are inflated by fflate, in bounded pieces (inflate.js).
// The zip's central directory is walked here: fflate's unzipSync inflates
// an entry to whatever size its data makes (a 1 MB archive declaring a
// 100-byte part took 11 s), and has no way to hand back a part's
// compressed bytes. No small maintained library reads a PDF's Info
// dictionary, so a bounded scan finds its entries; entries inside
// compressed object streams are not seen (the lawyers' tools read those).

import { inflateBounded, work } from "./inflate.js";
import { addXmp, parseXmp } from "./metadata.js";

/** Bytes of a PDF scanned at each end (the Info dictionary is often at the end). */
export const PDF_SCAN_BYTES = 4 * 1024 * 1024;

/** Largest office file read (fflate reads the whole archive in memory). */
export const ZIP_MAX_BYTES = 64 * 1024 * 1024;

/** Most entries an office archive may have before the page gives up on it. */
export const ZIP_MAX_ENTRIES = 10_000;

/** Largest property file inflated (a real one is a few kilobytes). */
export const XML_MAX_BYTES = 1024 * 1024;

/** Largest compressed property part read (a real one is under a kilobyte). */
export const ZIP_PART_MAX_BYTES = 64 * 1024;

/** Longest PDF string read (a name or program is far shorter). */
const PDF_STRING_MAX = 4000;

/** The end of the XMP packet in a PDF; longer packets are not read. */
const XMP_MAX_CHARS = 1024 * 1024;

/** A PDF literal string's text: escapes undone, UTF-16 when it says so. */
function pdfString(raw) {
  const bytes = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x5c) {
      bytes.push(c & 0xff);
      continue;
    }
    const n = raw[++i];
    const map = { n: 10, r: 13, t: 9, b: 8, f: 12, "(": 40, ")": 41, "\\": 92 };
    if (n in map) bytes.push(map[n]);
    else if (/[0-7]/.test(n)) {
      const oct = /^[0-7]{1,3}/.exec(raw.slice(i))[0];
      bytes.push(parseInt(oct, 8) & 0xff);
      i += oct.length - 1;
    }
  }
  const b = Uint8Array.from(bytes);
  if (b[0] === 0xfe && b[1] === 0xff) return new TextDecoder("utf-16be").decode(b.subarray(2));
  return new TextDecoder("utf-8").decode(b);
}

/** A PDF hex string's text. */
function pdfHex(raw) {
  const hex = raw.replace(/[^0-9a-fA-F]/g, "");
  const bytes = Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes.subarray(2));
  return new TextDecoder("utf-8").decode(bytes);
}

const PDF_KEYS = { Author: "author", Creator: "software", Producer: "software" };

/**
 * The Info entries in `s` (a PDF as Latin-1) as `[key, value]`: each key
 * found by indexOf, its string read forward by hand to its end, at most
 * PDF_STRING_MAX characters. The search goes on after what was read, so
 * each character is looked at a bounded number of times (a regular
 * expression backtracked for 19 s over 8 MiB of "/Author (").
 */
function pdfEntries(s) {
  const found = [];
  for (const key of Object.keys(PDF_KEYS)) {
    let from = 0;
    for (;;) {
      const k = s.indexOf(`/${key}`, from);
      if (k < 0) break;
      let i = k + key.length + 1;
      while (i < s.length && i - k < 64 && " \t\r\n".includes(s[i])) i++;
      const open = s[i];
      const close = open === "(" ? ")" : open === "<" ? ">" : null;
      let j = i + 1;
      if (close) {
        while (j < s.length && j - i <= PDF_STRING_MAX && s[j] !== close) j += open === "(" && s[j] === "\\" ? 2 : 1;
        if (s[j] === close && j - i <= PDF_STRING_MAX) {
          const raw = s.slice(i + 1, j);
          found.push([key, open === "(" ? pdfString(raw) : pdfHex(raw)]);
        }
      }
      work.pdf += j - from;
      from = Math.max(j, k + 1);
    }
  }
  return found;
}

/** Findings of a PDF's Info entries and XMP packet, read from both ends of the file. */
export async function pdfFindings(blob, out) {
  const ends =
    blob.size <= 2 * PDF_SCAN_BYTES ? [blob] : [blob.slice(0, PDF_SCAN_BYTES), blob.slice(blob.size - PDF_SCAN_BYTES)];
  for (const part of ends) {
    // Latin-1 keeps every byte as one character, for the scan.
    const s = new TextDecoder("latin1").decode(await part.arrayBuffer());
    for (const [key, value] of pdfEntries(s)) out.add(PDF_KEYS[key], value);
    const start = s.indexOf("<x:xmpmeta");
    if (start >= 0) {
      const end = s.indexOf("</x:xmpmeta>", start);
      if (end > start && end - start < XMP_MAX_CHARS) {
        const packet = new TextDecoder().decode(Uint8Array.from(s.slice(start, end + 12), (c) => c.charCodeAt(0)));
        addXmp(out, parseXmp(packet));
      }
    }
  }
}

/** The text of the elements named `local` in namespace `ns`. */
function texts(doc, ns, local) {
  return Array.from(doc.getElementsByTagNameNS(ns, local), (e) => e.textContent);
}

const DC = "http://purl.org/dc/elements/1.1/";
const CP = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties";
const EP = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties";
const META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0";

/** What an office file's property parts say, by part name. */
const PARTS = {
  "docProps/core.xml": (d, out) => {
    for (const v of texts(d, DC, "creator")) out.add("author", v);
    for (const v of texts(d, CP, "lastModifiedBy")) out.add("author", v);
  },
  "docProps/app.xml": (d, out) => {
    for (const v of texts(d, EP, "Company")) out.add("owner", v);
    for (const v of texts(d, EP, "Manager")) out.add("owner", v);
    for (const v of texts(d, EP, "Application")) out.add("software", v);
  },
  "meta.xml": (d, out) => {
    for (const v of texts(d, META, "initial-creator")) out.add("author", v);
    for (const v of texts(d, DC, "creator")) out.add("author", v);
    for (const v of texts(d, META, "generator")) out.add("software", v);
  },
};

/**
 * The property parts (PARTS) of a zip archive `b`, as `[name, bytes]`,
 * read through its central directory: stored or deflated, at most
 * ZIP_PART_MAX_BYTES compressed and XML_MAX_BYTES inflated, whatever the
 * archive declares. Throws on an archive it cannot walk.
 */
function propertyParts(b) {
  const u16 = (i) => b[i] | (b[i + 1] << 8);
  const u32 = (i) => u16(i) + u16(i + 2) * 65536;
  let e = b.length - 22;
  // The end record is within the last 64 KiB (its comment's most).
  while (e >= 0 && b.length - e <= 65_557 && u32(e) !== 0x06054b50) e--;
  if (e < 0 || u32(e) !== 0x06054b50) throw new Error("no zip end record");
  const count = u16(e + 10);
  if (count > ZIP_MAX_ENTRIES) throw new Error("too many zip entries");
  const parts = [];
  let i = u32(e + 16);
  for (let n = 0; n < count; n++) {
    if (i + 46 > b.length || u32(i) !== 0x02014b50) throw new Error("damaged zip");
    const method = u16(i + 10);
    const size = u32(i + 20);
    const nameLen = u16(i + 28);
    const local = u32(i + 42);
    const name = new TextDecoder().decode(b.subarray(i + 46, i + 46 + nameLen));
    i += 46 + nameLen + u16(i + 30) + u16(i + 32);
    if (!(name in PARTS) || size > ZIP_PART_MAX_BYTES || (method !== 0 && method !== 8)) continue;
    if (local + 30 > b.length || u32(local) !== 0x04034b50) continue;
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    if (start + size > b.length) continue;
    const data = b.subarray(start, start + size);
    const bytes = method === 0 ? data : inflateBounded(data, XML_MAX_BYTES, false);
    if (bytes && bytes.length <= XML_MAX_BYTES) parts.push([name, bytes]);
  }
  return parts;
}

/** Findings of an office archive's property parts. */
export async function officeFindings(blob, out) {
  if (blob.size > ZIP_MAX_BYTES) return;
  for (const [name, bytes] of propertyParts(new Uint8Array(await blob.arrayBuffer()))) {
    const doc = new DOMParser().parseFromString(new TextDecoder().decode(bytes), "application/xml");
    if (doc.getElementsByTagName("parsererror").length > 0) continue;
    PARTS[name](doc, out);
  }
}
