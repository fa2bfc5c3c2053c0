// Videos: the place, the device and the time an Android MP4 and an iPhone
// MOV record, read from movie boxes built here (exiftool 12.57 reads the
// same values from them), and that hostile movie boxes (random mutations,
// sizes out of bounds) never break the page.
import { test } from "node:test";
import assert from "node:assert/strict";

import { inspect, MAX_VALUE_CHARS } from "../src/metadata.js";
import { iso6709, MOOV_MAX_BYTES } from "../src/media.js";

/** A box of `type` holding `parts` (strings are Latin-1). */
function box(type, ...parts) {
  const body = Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 8);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, body]);
}
const u32 = (n) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const u16 = (n) => Buffer.from([n >>> 8, n & 255]);
const udtaText = (type, s) => box(type, u16(Buffer.byteLength(s)), u16(0x15c7), Buffer.from(s));
/** 2024-03-14 17:40:05 UTC on the movie header's clock (seconds since 1904). */
const CREATED = 3793282805;
const mvhd = () => box("mvhd", u32(0), u32(CREATED), u32(CREATED), u32(1000), u32(0), Buffer.alloc(80));

/** As Android's camera writes: user data `©xyz`, `©mak`, `©mod`; the movie box after the data. */
function android() {
  const udta = box("udta", udtaText("\u00a9xyz", "+43.2389+076.8897/"), udtaText("\u00a9mak", "samsung"), udtaText("\u00a9mod", "SM-A525F"));
  return Buffer.concat([box("ftyp", "isom", u32(512), "isomiso2mp41"), box("mdat", Buffer.alloc(1000, 7)), box("moov", mvhd(), udta)]);
}

/** As an iPhone writes: QuickTime metadata keys, with the local time's offset. */
function iphone() {
  const keys = box("keys", u32(0), u32(3), ...["location.ISO6709", "model", "creationdate"].map((k) => box("mdta", `com.apple.quicktime.${k}`)));
  const item = (i, s) => box(String.fromCharCode(0, 0, 0, i), box("data", u32(1), u32(0), Buffer.from(s)));
  const ilst = box("ilst", item(1, "-33.8688+151.2093+010.000/"), item(2, "iPhone 12"), item(3, "2024-03-12T21:40:05+0500"));
  const meta = box("meta", box("hdlr", u32(0), u32(0), "mdta", Buffer.alloc(13)), keys, ilst);
  return Buffer.concat([box("ftyp", "qt  ", u32(0), "qt  "), box("wide"), box("mdat", Buffer.alloc(100, 1)), box("moov", mvhd(), meta)]);
}

test("an Android video's place, phone and time are found", async () => {
  assert.deepEqual(await inspect(new Blob([android()])), {
    format: "mp4",
    cleanable: false,
    unreadable: false,
    findings: [
      { kind: "gps", value: "43.238900, 76.889700" },
      { kind: "device", value: "samsung SM-A525F" },
      { kind: "capture_time", value: "2024-03-14 17:40:05" },
    ],
  });
});

test("an iPhone video's place, phone and local time are found", async () => {
  assert.deepEqual((await inspect(new Blob([iphone()]))).findings, [
    { kind: "gps", value: "-33.868800, 151.209300" },
    { kind: "device", value: "iPhone 12" },
    { kind: "capture_time", value: "2024-03-12 21:40:05 +05:00" },
  ]);
});

test("ISO 6709 places are read as signed degrees", () => {
  assert.deepEqual(iso6709("+43.2389+076.8897+850.000/"), [43.2389, 76.8897]);
  assert.deepEqual(iso6709("-05.1-002.25/"), [-5.1, -2.25]);
  assert.ok(iso6709("garbage").every(Number.isNaN));
});

test("a movie box larger than the limit, or sizes past the file's end, give no findings", async () => {
  const big = Buffer.concat([box("ftyp", "isom"), u32(MOOV_MAX_BYTES + 16), Buffer.from("moov")]);
  assert.deepEqual((await inspect(new Blob([big]))).findings, []);
  const lying = Buffer.concat([box("ftyp", "isom"), u32(0xffffff00), Buffer.from("mdat"), android()]);
  assert.deepEqual((await inspect(new Blob([lying]))).findings, []);
});

test("random mutations of the videos never break detection", async () => {
  let s = 24;
  const r = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const ROUNDS = Number(process.env.CUSTOS_FUZZ_ROUNDS ?? 300);
  for (const original of [android(), iphone()]) {
    for (let i = 0; i < ROUNDS; i++) {
      const b = Buffer.from(original);
      for (let k = 0; k < 1 + Math.floor(r() * 6); k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      const cut = r() < 0.3 ? b.subarray(0, Math.floor(r() * b.length)) : b;
      const found = await inspect(new Blob([cut]));
      for (const f of found.findings) assert.ok(f.value.length <= MAX_VALUE_CHARS, `#${i}`);
    }
  }
});
