// Mutation fuzzing of the page's own readers and cleaners of file content
// (metadata.js's inspect over the JPEG, PNG, WebP, HEIC, PDF, Office and
// MP4 readers; clean.js's JPEG, PNG and WebP cleaners). The Rust side's
// parsers have cargo-fuzz targets (fuzz/); these run in the submitter's
// browser, so they get a fuzzer of their own, in plain Node, seeded so
// that a failure can be replayed.
//
// What counts as a failure, for each mutated file:
// - inspect() throws (it promises never to);
// - a cleaner throws anything but CannotClean;
// - a cleaned copy in which inspect() still finds something: the copy the
//   person chose would betray them.
//
// Usage: node fuzz.mjs [SECONDS] [SEED]   (default 600 s, a random seed)
// The failing input is written to fuzz-failures/ and the seed printed.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { DOMParser } from "@xmldom/xmldom";

import { inspect } from "./src/metadata.js";
import { CannotClean, clean } from "./src/clean.js";

// The page runs in a browser; Node lacks DOMParser, which the Office and
// XMP readers use.
globalThis.DOMParser = class extends DOMParser {
  constructor() {
    super({ onError: () => {} });
  }
};

const FIXTURES = ["gps.jpg", "plain.jpg", "rotated.jpg", "gps.png", "gps.webp", "gps.heic", "author.pdf", "author.docx"];

/** The seeds: the page's test fixtures and the committed MP4. */
export function seeds() {
  const out = FIXTURES.map((f) => new Uint8Array(readFileSync(new URL(`test/fixtures/${f}`, import.meta.url))));
  out.push(new Uint8Array(readFileSync(new URL("../tests/vectors/metadata/plain.mp4", import.meta.url))));
  return out;
}

/** xorshift32: small, fast and replayable from its seed. */
export function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];

/** One to four mutations of `input`: bit flips, interesting bytes, a cut, a copied slice, random bytes inserted. */
export function mutate(input, r) {
  let b = Uint8Array.from(input);
  for (let n = 1 + r(4); n > 0 && b.length > 0; n--) {
    const at = r(b.length);
    switch (r(6)) {
      case 0:
        b[at] ^= 1 << r(8);
        break;
      case 1:
        b[at] = INTERESTING[r(INTERESTING.length)];
        break;
      case 2:
        b = b.slice(0, at);
        break;
      case 3: {
        const len = 1 + r(Math.min(64, b.length - at));
        const to = r(b.length);
        b = Uint8Array.from([...b.subarray(0, to), ...b.subarray(at, at + len), ...b.subarray(to)]);
        break;
      }
      case 4: {
        const extra = Uint8Array.from({ length: 1 + r(16) }, () => r(256));
        b = Uint8Array.from([...b.subarray(0, at), ...extra, ...b.subarray(at)]);
        break;
      }
      default:
        // Four bytes at once: lengths and offsets are 32-bit here.
        for (let k = 0; k < 4 && at + k < b.length; k++) b[at + k] = INTERESTING[r(INTERESTING.length)];
    }
  }
  return b;
}

/** Check one input; returns why it failed, or null. `cleaner`: the page's own, or another for this file's test. */
export async function check(input, cleaner = clean) {
  let found;
  try {
    found = await inspect(new Blob([input]));
  } catch (e) {
    return `inspect threw: ${e?.stack ?? e}`;
  }
  if (!found.cleanable) return null;
  let cleaned;
  try {
    cleaned = await cleaner(new Blob([input]), found.format);
  } catch (e) {
    return e instanceof CannotClean ? null : `clean threw: ${e?.stack ?? e}`;
  }
  const after = await inspect(cleaned);
  if (after.findings.length > 0) return `the cleaned copy still says ${JSON.stringify(after.findings)}`;
  return null;
}

async function main() {
  const seconds = Number(process.argv[2] ?? 600);
  const seed = Number(process.argv[3] ?? Math.floor(Math.random() * 2 ** 32));
  const r = rng(seed);
  const corpus = seeds();
  const end = Date.now() + seconds * 1000;
  let runs = 0;
  while (Date.now() < end) {
    const input = mutate(corpus[r(corpus.length)], r);
    const why = await check(input);
    runs++;
    if (why) {
      const dir = new URL("fuzz-failures/", import.meta.url);
      if (!existsSync(dir)) mkdirSync(dir);
      const file = new URL(`seed-${seed}-run-${runs}.bin`, dir);
      writeFileSync(file, input);
      console.error(`FUZZ FAILURE (seed ${seed}, run ${runs}): ${why}\ninput: ${file.pathname}`);
      process.exit(1);
    }
  }
  console.log(`page fuzz: ${runs} inputs in ${seconds} s (seed ${seed}), no failure`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
