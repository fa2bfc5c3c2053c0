// The vault's limits as the page checks them before encrypting anything:
// the ciphertext bound holds for what age really writes, refusals name the
// right files, and sizes are written so that a file over a limit never
// reads as the limit. Run with `npm test`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as limits from "../src/limits.js";
import * as p from "../src/protocol.js";

test("the ciphertext bound is never below what age writes, and at most the header bound above it", async () => {
  const { recipient } = await p.generateKey();
  const chunk = 64 * 1024;
  for (const size of [0, 1, 100, chunk - 1, chunk, chunk + 1, 3 * chunk, 3 * chunk + 17]) {
    const { blob } = await p.encryptBlob(new Blob([new Uint8Array(size)]), [recipient]);
    const bound = limits.ciphertextBound(size);
    assert.ok(bound >= blob.size, `${size} bytes: bound ${bound} < ciphertext ${blob.size}`);
    assert.ok(bound - blob.size <= limits.AGE_HEADER_BOUND, `${size} bytes: bound ${bound}, ciphertext ${blob.size}`);
  }
});

test("the ciphertext bound counts a tag per 64 KiB chunk and the nonce", () => {
  const fixed = limits.AGE_HEADER_BOUND + 16;
  assert.equal(limits.ciphertextBound(0), fixed + 16);
  assert.equal(limits.ciphertextBound(65536), fixed + 65536 + 16);
  assert.equal(limits.ciphertextBound(65537), fixed + 65537 + 32);
  // 3.2 GiB: the bound stays exact where a double still counts bytes.
  const big = Math.round(3.2 * 2 ** 30);
  assert.equal(limits.ciphertextBound(big), fixed + big + Math.ceil(big / 65536) * 16);
});

test("a file whose ciphertext could pass the vault's largest object is refused, and only that one", () => {
  const max = 20 * 1024;
  const fits = max - limits.AGE_HEADER_BOUND - 16 - 16;
  assert.equal(limits.ciphertextBound(fits), max);
  assert.equal(limits.refusal([10, fits, 5], { maxUpload: max }), null);
  assert.deepEqual(limits.refusal([10, fits + 1, 5, 40 * 1024], { maxUpload: max }), {
    kind: "file",
    indices: [1, 3],
    limit: max,
  });
  // A vault that does not say refuses nothing here: its 413 will.
  assert.equal(limits.refusal([2 ** 40], {}), null);
  assert.equal(limits.refusal([2 ** 40], { maxUpload: null, maxCase: undefined }), null);
});

test("files that fit one by one but not together in a case are refused together", () => {
  const maxCase = 32 * 1024;
  const sizes = [100, 12 * 1024, 12 * 1024, 12 * 1024];
  const r = limits.refusal(sizes, { maxUpload: 20 * 1024, maxCase });
  assert.equal(r.kind, "case");
  assert.deepEqual(r.indices, [0, 1, 2, 3]);
  assert.equal(r.limit, maxCase);
  assert.equal(r.total, sizes.reduce((n, s) => n + limits.ciphertextBound(s), 0));
  // A file too large by itself is named first.
  assert.equal(limits.refusal([30 * 1024, 12 * 1024], { maxUpload: 20 * 1024, maxCase }).kind, "file");
  // What the case holds already counts.
  assert.equal(limits.refusal([100], { maxCase, held: 0 }), null);
  assert.equal(limits.refusal([100], { maxCase, held: maxCase - 1000 }).kind, "case");
});

test("sizes are written in the largest unit that leaves at least 1", () => {
  assert.deepEqual(limits.inUnits(0), { value: 0, unit: "bytes" });
  assert.deepEqual(limits.inUnits(1023), { value: 1023, unit: "bytes" });
  assert.deepEqual(limits.inUnits(20 * 1024), { value: 20, unit: "kb" });
  assert.deepEqual(limits.inUnits(2 * 2 ** 30), { value: 2, unit: "gb" });
  assert.equal(limits.inUnits(3.2 * 2 ** 30).unit, "gb");
  assert.deepEqual(limits.inUnits(5 * 2 ** 50), { value: 5 * 1024, unit: "tb" });
});

test("a size just over a limit never reads as the limit", () => {
  const format = (bytes, digits) => {
    const { value, unit } = limits.inUnits(bytes);
    return `${new Intl.NumberFormat("en", { maximumFractionDigits: digits }).format(value)} ${unit}`;
  };
  assert.deepEqual(limits.writeApart(Math.round(3.2 * 2 ** 30), 2 * 2 ** 30, format), ["3.2 gb", "2 gb"]);
  assert.deepEqual(limits.writeApart(2.0003 * 2 ** 30, 2 * 2 ** 30, format), ["2.0003 gb", "2 gb"]);
  assert.deepEqual(limits.writeApart(40 * 1024, 20 * 1024, format), ["40 kb", "20 kb"]);
});

test("every string the page's script asks for is in every language", async () => {
  const main = readFileSync(new URL("../src/main.js", import.meta.url), "utf8");
  const vault = readFileSync(new URL("../src/vault.js", import.meta.url), "utf8");
  const review = readFileSync(new URL("../src/review.js", import.meta.url), "utf8");
  const keys = new Set([...(main + review).matchAll(/\bt\("([a-z_]+)"/g)].map((m) => m[1]));
  // Findings are shown as meta_kind_<kind>, the page's own kinds too.
  const { KINDS, PAGE_KINDS } = await import("../src/metadata.js");
  for (const k of [...KINDS, ...PAGE_KINDS]) keys.add(`meta_kind_${k}`);
  // Error messages are also picked by name before t() sees them.
  for (const m of main.matchAll(/"(error_[a-z_]+)"/g)) keys.add(m[1]);
  for (const u of limits.UNITS) keys.add(`size_${u}`);
  // Stages are named in vault.js and shown as stage_<name>.
  for (const m of vault.matchAll(/\bon(?:Stage|Phase)\("([a-z]+)"/g)) keys.add(`stage_${m[1]}`);
  assert.ok(keys.has("error_file_too_large") && keys.has("row_not_sent") && keys.has("stage_encrypt"));
  for (const lang of ["en", "ru", "kk"]) {
    const strings = JSON.parse(readFileSync(new URL(`../../crates/server/src/web/strings/${lang}.json`, import.meta.url), "utf8"));
    for (const k of keys) assert.ok(k in strings, `${lang}.json has no ${k}`);
  }
});
