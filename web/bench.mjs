// How long the page's own work takes, in this machine's V8 (the engine of
// Chromium), each against Node's native code doing the same in the same run:
// the codename KDF (scrypt), the proof-of-work stamp (SHA-256), and age
// encryption of a file. Run: `cd web && npm ci && node bench.mjs`.
import { createHash, scryptSync } from "node:crypto";
import { performance } from "node:perf_hooks";

import * as p from "./src/protocol.js";

const ms = (t0) => performance.now() - t0;
const fmt = (x) => x.toFixed(0).padStart(6);

// 1. Codename key derivation (scrypt N=2^15, r=8, p=1, 64 bytes).
let t0 = performance.now();
await p.deriveKeys(p.generateCodename(), "bench.example/log");
const kdf = ms(t0);
t0 = performance.now();
scryptSync("bench", "salt", 64, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
const kdfNative = ms(t0);
console.log(`codename KDF      ${fmt(kdf)} ms   native ${fmt(kdfNative)} ms   ratio ${(kdf / kdfNative).toFixed(1)}x`);

// 2. Proof-of-work stamps at the default 18 bits: the mean of several, as
// each is a geometric draw around 2^18 hashes.
const body = new TextEncoder().encode("x".repeat(2048));
const runs = 8;
t0 = performance.now();
let hashes = 0;
for (let i = 0; i < runs; i++) {
  const stamp = await p.mintStamp("bench.example/log", body, 18, null, 1_800_000_000 + i);
  hashes += Number(stamp.split(" ")[2]) + 1;
}
const stampMs = ms(t0) / runs;
const jsRate = hashes / (ms(t0) / 1000);
t0 = performance.now();
const n = 300_000;
for (let i = 0; i < n; i++) createHash("sha256").update(body.subarray(0, 72)).digest();
const nativeRate = n / (ms(t0) / 1000);
console.log(
  `stamp, 18 bits    ${fmt(stampMs)} ms mean   ${(jsRate / 1e6).toFixed(2)} M hashes/s   native ${(nativeRate / 1e6).toFixed(2)} M/s`,
);

// 3. age encryption of a 64 MiB file into a Blob, with its SHA-256.
const size = 64 * 1024 * 1024;
const data = new Uint8Array(size);
for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
const { recipient } = await p.generateKey();
t0 = performance.now();
await p.encryptBlob(new Blob([data]), [recipient]);
const enc = ms(t0);
t0 = performance.now();
createHash("sha256").update(data).digest();
const shaNative = ms(t0);
const mbps = (x) => (size / 1024 / 1024 / (x / 1000)).toFixed(0);
console.log(`encrypt 64 MiB    ${fmt(enc)} ms   ${mbps(enc)} MiB/s   native SHA-256 alone ${mbps(shaNative)} MiB/s`);
