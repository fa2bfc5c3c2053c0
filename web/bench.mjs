// How long the page's own work takes in this machine's V8 (the engine of
// Chromium), with its JIT and without (`--jitless`: what Tor Browser's
// "Safer" level leaves), each against Node's native code doing the same
// work in the same run: the codename KDFs, the proof-of-work stamps, and
// age encryption of a file with its SHA-256.
// Run: `cd web && npm ci && node bench.mjs` (it runs itself twice).
import { execFileSync } from "node:child_process";
import { createHash, pbkdf2Sync, scryptSync } from "node:crypto";
import { performance } from "node:perf_hooks";

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";

import * as p from "./src/protocol.js";

const ms = (t0) => performance.now() - t0;
const fmt = (x) => x.toFixed(0).padStart(6);

if (process.argv[2] !== "--child") {
  for (const flags of [[], ["--jitless"]]) {
    console.log(flags.length ? "\nwithout a JIT (node --jitless)" : "with the JIT");
    const out = execFileSync(process.execPath, [...flags, process.argv[1], "--child"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    process.stdout.write(out);
  }
  process.exit(0);
}

const jitless = typeof WebAssembly === "undefined";
const origin = "bench.example/log";

// 1. Codename key derivation, each version.
let t0 = performance.now();
await p.deriveKeys(p.generateCodename(), origin, "v1");
const v1 = ms(t0);
t0 = performance.now();
scryptSync("bench", "salt", 64, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
const v1Native = ms(t0);
t0 = performance.now();
await p.deriveKeys(p.generateCodename(), origin, "v2");
const v2 = ms(t0);
t0 = performance.now();
pbkdf2Sync("bench", "salt", 2 ** 18, 32, "sha256");
const v2Native = ms(t0);
console.log(`codename KDF v1   ${fmt(v1)} ms   native ${fmt(v1Native)} ms   (scrypt in JavaScript)`);
console.log(`codename KDF v2   ${fmt(v2)} ms   native ${fmt(v2Native)} ms   (PBKDF2 in crypto.subtle)`);

// 2. Proof-of-work stamps at the default 18 bits: the mean of several, as
// each is a geometric draw. v1 is SHA-256 in JavaScript, v2 PBKDF2 tries
// in crypto.subtle; both are the same work for a native flooder.
const body = new TextEncoder().encode("x".repeat(2048));
for (const version of ["v1", "v2"]) {
  // v1 without a JIT takes most of a minute: once is enough to see it.
  const runs = jitless && version === "v1" ? 1 : 8;
  t0 = performance.now();
  for (let i = 0; i < runs; i++) await p.mintStamp(origin, body, 18, null, 1_800_000_000 + i, version);
  const page = ms(t0) / runs;
  // The same work in Node's native code: 2^18 SHA-256 calls, or 2^11
  // PBKDF2 tries of 64 rounds.
  t0 = performance.now();
  let native;
  if (version === "v1") {
    const n = 100_000;
    for (let i = 0; i < n; i++) createHash("sha256").update(body.subarray(0, 80)).digest();
    native = (ms(t0) / n) * 2 ** 18;
  } else {
    for (let i = 0; i < 2 ** 11; i++) pbkdf2Sync(body.subarray(0, 32), String(i), 64, 32, "sha256");
    native = ms(t0);
  }
  console.log(`stamp ${version}, 18 bits ${fmt(page)} ms mean of ${runs}   native ${fmt(native)} ms`);
}

// 3. age encryption of a file into a Blob, with its SHA-256 (natively up
// to 32 MiB, as the page does).
const size = (jitless ? 4 : 16) * 1024 * 1024;
const data = new Uint8Array(size);
for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
const { recipient } = await p.generateKey();
t0 = performance.now();
await p.encryptBlob(new Blob([data]), [recipient]);
const enc = ms(t0);
t0 = performance.now();
createHash("sha256").update(data).digest();
const shaNative = ms(t0);
// The cipher alone, as age-encryption calls it (one 64 KiB chunk at a
// time): what is left of the time above is age's stream and the hash.
const chunk = 64 * 1024;
const zeros = new Uint8Array(32);
t0 = performance.now();
for (let i = 0; i < size; i += chunk) chacha20poly1305(zeros, zeros.subarray(0, 12)).encrypt(data.subarray(i, i + chunk));
const cipher = ms(t0);
const mbps = (x) => (size / 1024 / 1024 / (x / 1000)).toFixed(1);
console.log(
  `encrypt ${size >> 20} MiB     ${fmt(enc)} ms   ${mbps(enc)} MiB/s   the cipher alone ${mbps(cipher)} MiB/s   native SHA-256 alone ${mbps(shaNative)} MiB/s`,
);
