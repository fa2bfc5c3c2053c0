// The page's metadata check: what each fixture says (made by ImageMagick and
// tagged by exiftool, see fixtures/make.sh), that a cleaned copy says none
// of it (read again by exifr and scanned byte by byte) while its picture
// bytes are the original's, and that hostile files (random mutations of
// each fixture, archives past the limits) never break the page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { DOMParser } from "@xmldom/xmldom";
import { zipSync, strToU8 } from "fflate";
import * as exifr from "exifr/src/core.mjs";
// The tests read whole JPEGs and PNGs with exifr (the page hands it only
// TIFF blocks and HEIF heads, so its bundle has not these parsers).
import "exifr/src/file-parsers/jpeg.mjs";
import "exifr/src/file-parsers/png.mjs";
import "exifr/src/segment-parsers/ihdr.mjs";

import { inspect, sniff, MAX_FINDINGS, MAX_VALUE_CHARS, captureTime, device, gps } from "../src/metadata.js";
import { CannotClean, clean, cleanJpeg, cleanPng, cleanWebp, webpParts } from "../src/clean.js";
import { ZIP_MAX_ENTRIES } from "../src/docmeta.js";

// The browser's XML parser, which node lacks.
globalThis.DOMParser = class extends DOMParser {
  constructor() {
    super({ onError: () => {} });
  }
};

const fixture = (name) => new Uint8Array(readFileSync(new URL(`fixtures/${name}`, import.meta.url)));

/** What the tagged photos say, in the Rust side's spelling. */
const PHOTO = [
  { kind: "gps", value: "43.238949, 76.889709" },
  { kind: "device", value: "samsung SM-A525F" },
  { kind: "serial", value: "R58R12ABCDE" },
  { kind: "owner", value: "Ivanov A." },
  { kind: "author", value: "Ivanov A." },
  { kind: "software", value: "A525FXXU4BUG1" },
  { kind: "capture_time", value: "2024-03-12 21:40:05 +05:00" },
];

/** Bytes that must not be left in a cleaned copy. */
const TRACES = ["Ivanov", "samsung", "SM-A525F", "R58R12ABCDE", "A525FXXU4BUG1", "2024:03:12", "xmpmeta", "GPS"];

function traces(bytes) {
  const s = Buffer.from(bytes).toString("latin1");
  return TRACES.filter((t) => s.includes(t));
}

for (const [file, format, cleanable] of [
  ["gps.jpg", "jpeg", true],
  ["gps.png", "png", true],
  ["gps.webp", "webp", true],
  ["gps.heic", "heif", false],
]) {
  test(`${file}: the place, the phone, its owner and the time are found`, async () => {
    const found = await inspect(new Blob([fixture(file)]));
    assert.deepEqual(found, { format, findings: PHOTO, cleanable, unreadable: false });
  });
}

for (const [file, format] of [
  ["jpg", "jpeg"],
  ["png", "png"],
  ["webp", "webp"],
]) {
  test(`a cleaned ${file} says nothing of its sender and keeps its picture`, async () => {
    const tagged = fixture(`gps.${file}`);
    assert.ok(traces(tagged).length > 4, "the fixture carries the metadata");
    const cleaned = new Uint8Array(await (await clean(new Blob([tagged]), format, "image/x")).arrayBuffer());
    assert.deepEqual(traces(cleaned), []);
    assert.deepEqual((await inspect(new Blob([cleaned]))).findings, []);
    if (file !== "webp") {
      // exifr reads JPEG and PNG (not WebP) whole: nothing left.
      const read = await exifr.parse(cleaned, { tiff: true, xmp: true, gps: true, ihdr: true, mergeOutput: false });
      assert.equal(read?.gps, undefined);
      assert.equal(read?.ifd0, undefined);
    }
    if (file === "webp") {
      // exiftool added a VP8X header; the image data is the original's.
      const chunks = (b) => webpParts(b).chunks.map((c) => [c.id, Buffer.from(b.subarray(c.start, c.start + 8 + c.size))]);
      const kept = chunks(cleaned);
      assert.deepEqual(kept.map(([id]) => id), ["VP8X", "VP8 "]);
      assert.deepEqual(kept.find(([id]) => id === "VP8 "), chunks(fixture("plain.webp")).find(([id]) => id === "VP8 "));
      assert.equal(cleaned[20] & 0x0c, 0, "VP8X says no EXIF and no XMP");
      assert.equal(Buffer.from(cleaned).readUInt32LE(4), cleaned.length - 8);
    } else {
      // The photo as it was before exiftool tagged it, byte for byte.
      assert.deepEqual(Buffer.from(cleaned), Buffer.from(fixture(`plain.${file}`)));
    }
  });
}

test("a JPEG's comments and what a phone appends after the picture are left out", () => {
  const plain = fixture("plain.jpg");
  const note = Buffer.from("Ivanov A. GPS 43.238949");
  const com = Buffer.concat([Buffer.from([0xff, 0xfe, 0, note.length + 2]), note]);
  const tagged = Buffer.concat([plain.subarray(0, 2), com, plain.subarray(2), Buffer.from("SEFH "), note]);
  assert.ok(traces(tagged).length > 0);
  assert.deepEqual(Buffer.from(cleanJpeg(tagged)), Buffer.from(plain));
});

test("a cleaned photo taken sideways keeps its orientation and nothing else", async () => {
  const cleaned = cleanJpeg(fixture("rotated.jpg"));
  const read = await exifr.parse(cleaned, { tiff: true, gps: true, reviveValues: false, translateValues: false });
  assert.equal(read.Orientation, 6);
  assert.equal(read.Make, undefined);
  assert.equal(read.latitude, undefined);
  assert.deepEqual(traces(cleaned), []);
});

test("files without metadata, and files that are not what they seem, have no findings", async () => {
  for (const f of ["plain.jpg", "plain.png", "plain.webp", "plain.heic", "plain.pdf"]) {
    assert.deepEqual((await inspect(new Blob([fixture(f)]))).findings, [], f);
  }
  const random = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251);
  assert.deepEqual(await inspect(new Blob([random])), { format: null, findings: [], cleanable: false, unreadable: false });
  // A JPEG's first bytes and nothing else.
  assert.deepEqual((await inspect(new Blob([Uint8Array.of(0xff, 0xd8, 0xff, 0xe1, 0xff)]))).findings, []);
  assert.throws(() => cleanJpeg(Uint8Array.of(0xff, 0xd8, 0xff, 0xe1, 0xff)), CannotClean);
});

test("a PDF's author and software are found", async () => {
  const found = await inspect(new Blob([fixture("author.pdf")]));
  assert.equal(found.format, "pdf");
  assert.equal(found.cleanable, false);
  const has = (kind, value) => found.findings.some((f) => f.kind === kind && f.value === value);
  assert.ok(has("author", "Ivanov A."), JSON.stringify(found));
  assert.ok(has("software", "Clinic Writer 5"));
  assert.ok(has("software", "ScanSoft PDF 9"));
});

test("a PDF's UTF-16 and escaped strings are read", async () => {
  const utf16 = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from("Иванов А.", "utf16le").swap16()]);
  const pdf = Buffer.concat([
    Buffer.from("%PDF-1.4\n1 0 obj\n<< /Author <"),
    Buffer.from(utf16.toString("hex")),
    Buffer.from("> /Producer (Scan \\(v2\\))>>\nendobj\n"),
  ]);
  const found = await inspect(new Blob([pdf]));
  assert.deepEqual(found.findings, [
    { kind: "author", value: "Иванов А." },
    { kind: "software", value: "Scan (v2)" },
  ]);
});

const CORE = `<?xml version="1.0" encoding="UTF-8"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:creator>Ivanov A.</dc:creator><cp:lastModifiedBy>Petrova B.</cp:lastModifiedBy></cp:coreProperties>`;
const APP = `<?xml version="1.0"?><Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">
<Application>Microsoft Office Word</Application><Company>City Clinic 2</Company></Properties>`;
const ODF_META = `<?xml version="1.0"?><office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<office:meta><meta:generator>LibreOffice/7.4</meta:generator><meta:initial-creator>Ivanov A.</meta:initial-creator><dc:creator>Petrova B.</dc:creator></office:meta></office:document-meta>`;

test("a DOCX's creator, last editor, company and program are found", async () => {
  const docx = zipSync({
    "[Content_Types].xml": strToU8("<Types/>"),
    "word/document.xml": strToU8("<w:document/>"),
    "docProps/core.xml": strToU8(CORE),
    "docProps/app.xml": strToU8(APP),
  });
  const found = await inspect(new Blob([docx]));
  assert.deepEqual(found, {
    format: "zip",
    cleanable: false,
    unreadable: false,
    findings: [
      { kind: "owner", value: "City Clinic 2" },
      { kind: "author", value: "Ivanov A." },
      { kind: "author", value: "Petrova B." },
      { kind: "software", value: "Microsoft Office Word" },
    ],
  });
});

test("the committed DOCX, made by Python's zipfile, reads the same", async () => {
  const found = await inspect(new Blob([fixture("author.docx")]));
  assert.deepEqual(found.findings.map((f) => f.value), ["City Clinic 2", "Ivanov A.", "Petrova B.", "Microsoft Office Word"]);
});

test("an ODF document's creators and program are found", async () => {
  const odt = zipSync({ mimetype: strToU8("application/vnd.oasis.opendocument.text"), "meta.xml": strToU8(ODF_META) });
  assert.deepEqual((await inspect(new Blob([odt]))).findings, [
    { kind: "author", value: "Ivanov A." },
    { kind: "author", value: "Petrova B." },
    { kind: "software", value: "LibreOffice/7.4" },
  ]);
});

test("an archive with more entries than the limit is not read", async () => {
  const files = { "docProps/core.xml": strToU8(CORE) };
  for (let i = 0; i <= ZIP_MAX_ENTRIES; i++) files[`x/${i}`] = new Uint8Array(0);
  const found = await inspect(new Blob([zipSync(files, { level: 0 })]));
  assert.deepEqual(found.findings, []);
});

test("values are spelled as the Rust side spells them, and long ones are cut", async () => {
  assert.equal(gps(-33.8688, 151.2093), "-33.868800, 151.209300");
  assert.equal(gps(91, 0), null);
  assert.equal(device("Apple", "iPhone 12"), "Apple iPhone 12");
  assert.equal(device("Canon", "Canon EOS 5D"), "Canon EOS 5D");
  assert.equal(device(undefined, "SM-A525F"), "SM-A525F");
  assert.equal(captureTime("2024:03:12 21:40:05"), "2024-03-12 21:40:05");
  assert.equal(captureTime("2024:03:12 21:40:05", "-03:00"), "2024-03-12 21:40:05 -03:00");
  assert.equal(captureTime("2024-03-12T21:40:05+0500"), "2024-03-12 21:40:05 +05:00");
  const long = `<?xml version="1.0"?><cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>${"A".repeat(10_000)}</dc:creator></cp:coreProperties>`;
  const found = await inspect(new Blob([zipSync({ "docProps/core.xml": strToU8(long) })]));
  assert.equal(found.findings[0].value.length, MAX_VALUE_CHARS);
});

test("the format comes from the first bytes, not the name", () => {
  assert.equal(sniff(fixture("gps.jpg")), "jpeg");
  assert.equal(sniff(fixture("gps.heic")), "heif");
  assert.equal(sniff(strToU8("hello")), null);
});

/** A small seeded generator, so that a failing mutation can be replayed. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(bytes, r) {
  let b = Uint8Array.from(bytes);
  const n = 1 + Math.floor(r() * 8);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * b.length);
    const what = r();
    // A JPEG marker (the byte after an FF) changed: a segment of a
    // marker the cleaner does not know must not be kept.
    const ff = b.indexOf(0xff, at);
    if (what < 0.1 && ff >= 0 && ff + 1 < b.length) b[ff + 1] = Math.floor(r() * 256);
    else if (what < 0.5) b[at] = Math.floor(r() * 256);
    else if (what < 0.7) b = b.slice(0, at);
    else if (what < 0.85) b[at] = [0x00, 0xff, 0x7f, 0x80][Math.floor(r() * 4)];
    else {
      const junk = Uint8Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256));
      b = Uint8Array.from([...b.slice(0, at), ...junk, ...b.slice(at)]);
    }
    if (b.length === 0) break;
  }
  return b;
}

const CLEANERS = { jpeg: cleanJpeg, png: cleanPng, webp: cleanWebp };

test("random mutations of every fixture never break detection or cleaning", async () => {
  const docx = zipSync({ "docProps/core.xml": strToU8(CORE), "docProps/app.xml": strToU8(APP), "meta.xml": strToU8(ODF_META) });
  const inputs = [
    ...["gps.jpg", "gps.png", "gps.webp", "gps.heic", "rotated.jpg", "author.pdf"].map((f) => [f, fixture(f)]),
    ["docx", docx],
  ];
  const r = rng(24);
  const ROUNDS = Number(process.env.CUSTOS_FUZZ_ROUNDS ?? 300);
  for (const [name, original] of inputs) {
    for (let i = 0; i < ROUNDS; i++) {
      const b = mutate(original, r);
      const found = await inspect(new Blob([b]));
      assert.ok(Array.isArray(found.findings), `${name} #${i}`);
      assert.ok(found.findings.length <= MAX_FINDINGS);
      for (const f of found.findings) assert.ok(f.value.length <= MAX_VALUE_CHARS && f.value === f.value.trim());
      for (const cleaner of Object.values(CLEANERS)) {
        try {
          const out = cleaner(b);
          // Cleaning only leaves out: never more than the input and the
          // orientation it may add, and nothing of the sender survives.
          assert.ok(out.length <= b.length + 64, `${name} #${i}`);
          assert.deepEqual(traces(out), [], `${name} #${i} cleaned by ${cleaner.name}`);
        } catch (e) {
          assert.ok(e instanceof CannotClean, `${name} #${i}: ${e}`);
        }
      }
    }
  }
});
