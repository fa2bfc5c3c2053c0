// The submitter's side of the custos protocol, in the browser: codenames and
// their key derivation, RFC 9421 request signatures, the proof-of-work stamp,
// receipts and intake checks, and age encryption of content. Every derivation
// matches the Rust client byte for byte (crates/core/src/identity/codename.rs,
// crates/core/src/httpsig.rs, crates/core/src/stamp.rs, crates/client/src/flows); tests/it/web.rs checks
// that by decrypting what this code sent with the Rust CLI.
//
// No DOM here: the page (main.js) calls these functions.

import { ed25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { base64, bech32, hex } from "@scure/base";
import * as age from "age-encryption";

const utf8 = new TextEncoder();

// The browser's own crypto: native code at every security level, JIT or
// not. Only in secure contexts (HTTPS, loopback, onion addresses in Tor
// Browser), which the page needs anyway: age-encryption's X25519 uses it.
const subtle = globalThis.crypto?.subtle;

/** PBKDF2-HMAC-SHA256 to 32 bytes, from raw bytes or an imported key. */
async function pbkdf2(password, salt, rounds) {
  const key =
    password instanceof Uint8Array
      ? await subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"])
      : password;
  return new Uint8Array(await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: rounds }, key, 256));
}

// ---- Codenames (crates/core/src/identity/codename.rs) ----

const FIRST = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t"];
const VOWEL = ["a", "e", "i", "o", "u", "ai"];
const MIDDLE = ["b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v"];
const ENDING = ["a", "e", "i", "o", "u", "an", "en", "in", "on"];
/** 12 * 6 * 12 * 9 = 7,776 words, as a dice list. */
export const WORD_COUNT = FIRST.length * VOWEL.length * MIDDLE.length * ENDING.length;
/** Eight words: about 103 bits. */
export const WORDS = 8;

/** Word number `i` of the list, built exactly as the Rust client builds it. */
export function word(i) {
  const e = i % ENDING.length;
  i = Math.floor(i / ENDING.length);
  const m = i % MIDDLE.length;
  i = Math.floor(i / MIDDLE.length);
  const v = i % VOWEL.length;
  const f = Math.floor(i / VOWEL.length);
  return FIRST[f] + VOWEL[v] + MIDDLE[m] + ENDING[e];
}

const WORD_SET = new Set(Array.from({ length: WORD_COUNT }, (_, i) => word(i)));

/** A uniformly random index below WORD_COUNT (rejection sampling). */
function randomWordIndex() {
  const limit = Math.floor(65536 / WORD_COUNT) * WORD_COUNT;
  const buf = new Uint16Array(1);
  for (;;) {
    crypto.getRandomValues(buf);
    if (buf[0] < limit) return buf[0] % WORD_COUNT;
  }
}

/** A fresh random codename. */
export function generateCodename() {
  return Array.from({ length: WORDS }, () => word(randomWordIndex())).join(" ");
}

/**
 * Normalise what a person typed, forgiving case, extra spaces and hyphens;
 * null unless it is eight words from the list.
 */
export function parseCodename(text) {
  const words = text
    .toLowerCase()
    .split(/[\s-]+/)
    .filter((w) => w.length > 0);
  if (words.length !== WORDS || !words.every((w) => WORD_SET.has(w))) return null;
  return words.join(" ");
}

// The codename KDFs (crates/core/src/identity/codename.rs says what each
// adds). v1: scrypt, 2^15 * 128 * 8 bytes = 32 MiB, 9 s without a JIT.
const KDF = { N: 2 ** 15, r: 8, p: 1, dkLen: 64 };
const KDF_DOMAIN = "custos codename v1\n";
// v2: PBKDF2-HMAC-SHA256 (native), then HKDF-SHA256 to 64 bytes.
const KDF_V2_ROUNDS = 2 ** 18;
const KDF_V2_DOMAIN = "custos codename v2\n";
const KDF_V2_INFO = "custos codename v2 keys";
/** The KDF versions, newest first: new codenames use the first. */
export const KDF_VERSIONS = ["v2", "v1"];

/**
 * The submitter's keys for a codename at the vault `origin` under KDF
 * `version`: an Ed25519 seed (first 32 bytes) and an age X25519 identity
 * (last 32 bytes).
 */
export async function deriveKeys(codename, origin, version = KDF_VERSIONS[0]) {
  let out;
  if (version === "v1") {
    out = await scryptAsync(utf8.encode(codename), utf8.encode(KDF_DOMAIN + origin), KDF);
  } else if (version === "v2") {
    const stretched = await pbkdf2(utf8.encode(codename), utf8.encode(KDF_V2_DOMAIN + origin), KDF_V2_ROUNDS);
    out = hkdf(sha256, stretched, undefined, utf8.encode(KDF_V2_INFO), 64);
    stretched.fill(0);
  } else {
    throw new Error(`unknown codename KDF ${version}`);
  }
  const seed = out.slice(0, 32);
  const ageIdentity = bech32.encode("age-secret-key-", bech32.toWords(out.slice(32)), false).toUpperCase();
  out.fill(0);
  const publicKey = ed25519.getPublicKey(seed);
  return {
    seed,
    publicKey,
    keyId: keyId(publicKey),
    ageIdentity,
    recipient: await age.identityToRecipient(ageIdentity),
  };
}

/** `SHA-256("custos key id\n" || key)`, first 8 bytes in hex. */
export function keyId(publicKey) {
  return hex.encode(sha256(concat(utf8.encode("custos key id\n"), publicKey)).slice(0, 8));
}

// ---- Request signatures (crates/core/src/httpsig.rs, crates/client/src/lib.rs) ----

const SIGNATURE_LIFETIME_SECS = 60;

/**
 * SHA-256 of `bytes` in the browser's native code: without a JIT,
 * JavaScript's SHA-256 takes about 1.6 s a megabyte here, this a few
 * milliseconds.
 */
export async function digest(bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

/** RFC 9530 Content-Digest of a body. */
export function contentDigest(body) {
  return `sha-256=:${base64.encode(sha256(body))}:`;
}

/**
 * The headers that sign `method url` with `body` (null for none) and the
 * covered extra headers `covered` (name -> value), as the server rebuilds
 * them. `at` fixes the time and nonce, for known-answer tests only.
 */
export function signatureHeaders(keys, method, url, body, covered = {}, at = {}) {
  return signDigest(keys, method, url, body === null ? null : contentDigest(body), covered, at);
}

/**
 * The same, for a body whose Content-Digest header value is already known
 * (a tus PATCH hashes its chunk once for both the digest and the checksum).
 */
export function signDigest(keys, method, url, digest, covered = {}, at = {}) {
  const components = ["@method", "@target-uri"];
  const values = [method, url];
  const out = {};
  if (digest !== null) {
    components.push("content-digest");
    values.push(digest);
    out["content-digest"] = digest;
  }
  for (const [name, value] of Object.entries(covered)) {
    components.push(name);
    values.push(String(value));
  }
  const created = at.created ?? Math.floor(Date.now() / 1000);
  const nonce = at.nonce ?? hex.encode(crypto.getRandomValues(new Uint8Array(16)));
  const params =
    `(${components.map((c) => `"${c}"`).join(" ")});created=${created};` +
    `expires=${created + SIGNATURE_LIFETIME_SECS};nonce="${nonce}";keyid="${keys.keyId}";alg="ed25519"`;
  let base = "";
  components.forEach((c, i) => {
    base += `"${c}": ${values[i]}\n`;
  });
  base += `"@signature-params": ${params}`;
  const sig = ed25519.sign(utf8.encode(base), keys.seed);
  out["signature-input"] = `sig1=${params}`;
  out["signature"] = `sig1=:${base64.encode(sig)}:`;
  return out;
}

/** An error the vault answered with: its stable code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/**
 * Send a request to the vault this page came from, signed with `keys` when
 * given. `json` is an object to send as JSON; `raw` is JSON already
 * serialised (when other headers are computed over its exact bytes).
 */
export async function call(method, path, { keys, json, raw, headers = {}, covered = {} } = {}) {
  const url = location.origin + path;
  let body = null;
  const h = { ...headers };
  if (json !== undefined || raw !== undefined) {
    body = raw ?? utf8.encode(JSON.stringify(json));
    h["content-type"] = "application/json";
  } else if (method === "POST" || method === "PATCH" || method === "PUT") {
    body = new Uint8Array(0);
  }
  if (keys) Object.assign(h, signatureHeaders(keys, method, url, body, covered));
  const resp = await fetch(url, {
    method,
    headers: h,
    body,
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer",
  });
  if (!resp.ok) {
    let err = { error: "http_" + resp.status, message: resp.statusText };
    try {
      err = await resp.json();
    } catch {
      /* not JSON: keep the status */
    }
    throw new ApiError(resp.status, err.error, err.message);
  }
  return resp;
}

// ---- Proof-of-work stamp (crates/core/src/stamp.rs) ----

function be64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function leadingZeroBits(hash) {
  let n = 0;
  for (const b of hash) {
    if (b === 0) {
      n += 8;
      continue;
    }
    return n + Math.clz32(b) - 24;
  }
  return n;
}

// v2 stamps: one PBKDF2 of this many rounds per try (2^7 SHA-256
// compressions), so 7 fewer bits than v1 for the same work
// (crates/core/src/stamp.rs says why so few rounds).
const STAMP_V2_ROUNDS = 64;
const STAMP_V2_DISCOUNT = 7;
// v2 tries in flight at once: the browser may run them on several threads.
const STAMP_V2_BATCH = 8;

/**
 * Find a stamp for `body` sent to the vault `origin`, of the work of about
 * 2^bits SHA-256 hashes: v2, native PBKDF2 tries (what the page sends), or
 * v1, SHA-256 in JavaScript yielding to the page every few thousand (kept
 * for the shared known answers). Either gives the first counter that
 * meets the difficulty, as the Rust client does.
 */
export async function mintStamp(origin, body, bits, onProgress, time = Math.floor(Date.now() / 1000), version = "v2") {
  if (version === "v2") {
    const password = sha256
      .create()
      .update(utf8.encode(`custos stamp v2\n${origin}\n`))
      .update(sha256(body))
      .update(be64(time))
      .digest();
    const key = await subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
    const need = Math.max(0, bits - STAMP_V2_DISCOUNT);
    for (let first = 0; ; first += STAMP_V2_BATCH) {
      const counters = Array.from({ length: STAMP_V2_BATCH }, (_, i) => first + i);
      const hashes = await Promise.all(counters.map((c) => pbkdf2(key, be64(c), STAMP_V2_ROUNDS)));
      const hit = hashes.findIndex((h) => leadingZeroBits(h) >= need);
      if (hit >= 0) return `v2 ${time} ${first + hit}`;
      if (onProgress && first % 256 === 0) onProgress(first / 2 ** need);
    }
  }
  const prefix = sha256
    .create()
    .update(utf8.encode(`custos stamp v1\n${origin}\n`))
    .update(sha256(body))
    .update(be64(time));
  for (let counter = 0; ; counter++) {
    if (leadingZeroBits(prefix.clone().update(be64(counter)).digest()) >= bits) {
      return `v1 ${time} ${counter}`;
    }
    if (counter % 8192 === 8191) {
      if (onProgress) onProgress(counter / 2 ** bits);
      await new Promise((r) => setTimeout(r, 0));
    }
  }
}

// ---- Checkpoints, receipts and intake (crates/core/src/custody, crates/client/src/trust.rs) ----

/**
 * Parse a C2SP vkey `name+hash+base64(alg || key)`: `alg` 0x01 for a log's
 * Ed25519 key, 0x04 for a witness's cosignature/v1 key.
 */
function parseVkey(vkey, alg = 1) {
  // The key's base64 may itself contain "+": split at the first two only.
  const m = vkey.match(/^([^+]+)\+([0-9a-f]{8})\+(.+)$/);
  if (!m) throw new Error("malformed log key");
  const [, name, hash, key] = m;
  const raw = base64.decode(key);
  if (raw.length !== 33 || raw[0] !== alg) throw new Error("not an Ed25519 vkey of the expected kind");
  const pub = raw.slice(1);
  const expect = sha256(concat(utf8.encode(name + "\n"), raw)).slice(0, 4);
  if (hex.encode(expect) !== hash) throw new Error("log key hash does not match");
  return { name, keyHash: expect, pub };
}

/** Verify a signed checkpoint note against the vkey; returns size and root. */
export function verifyCheckpoint(note, vkey) {
  const v = parseVkey(vkey);
  const split = note.indexOf("\n\n");
  if (split < 0) throw new Error("checkpoint has no signature block");
  const text = note.slice(0, split + 1);
  let ok = false;
  for (const line of note.slice(split + 2).split("\n")) {
    const m = line.match(/^\u2014 (\S+) (\S+)$/);
    if (!m || m[1] !== v.name) continue;
    const raw = base64.decode(m[2]);
    if (raw.length !== 68 || hex.encode(raw.slice(0, 4)) !== hex.encode(v.keyHash)) continue;
    ok = ed25519.verify(raw.slice(4), utf8.encode(text), v.pub);
    if (ok) break;
  }
  if (!ok) throw new Error("checkpoint signature does not verify with the log key");
  const [origin, size, root] = text.split("\n");
  if (origin !== v.name) throw new Error("checkpoint is for another log");
  return { size: Number(size), root: base64.decode(root) };
}

function nodeHash(l, r) {
  return sha256(concat(Uint8Array.of(1), l, r));
}

/** RFC 9162 section 2.1.3.2: is `leaf` at `index` in the tree of `size`? */
export function verifyInclusion(index, size, leaf, proof, root) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if ([leaf, root, ...proof].some((h) => h.length !== 32)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && hex.encode(r) === hex.encode(root);
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** RFC 9162 section 2.1.4.2: is the tree of `size1` a prefix of that of `size2`? */
export function verifyConsistency(size1, size2, proof, root1, root2) {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 === 0 || size1 > size2) return false;
  if (proof.some((h) => h.length !== 32)) return false;
  if (size1 === size2) return proof.length === 0 && sameBytes(root1, root2);
  if (root1.length !== 32) return false;
  let pow = size1;
  while (pow % 2 === 0) pow /= 2;
  const path = pow === 1 ? [root1, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let [fr, sr] = [path[0], path[0]];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && sameBytes(fr, root1) && sameBytes(sr, root2);
}

/** How far in the future a cosignature's time may be (crates/core/src/custody/cosignature.rs). */
const MAX_COSIGNATURE_FUTURE_SECS = 300;

/**
 * The names of the witnesses (vkeys) whose C2SP cosignature/v1 on the
 * checkpoint `note` verifies, as of `now` (Unix seconds).
 */
export function cosigners(note, witnessVkeys, now = Math.floor(Date.now() / 1000)) {
  const split = note.indexOf("\n\n");
  if (split < 0) return [];
  const body = note.slice(0, split + 1);
  const lines = note.slice(split + 2).split("\n");
  const names = [];
  for (const vkey of witnessVkeys) {
    const w = parseVkey(vkey, 4);
    for (const line of lines) {
      const m = line.match(/^\u2014 (\S+) (\S+)$/);
      if (!m || m[1] !== w.name) continue;
      const raw = base64.decode(m[2]);
      if (raw.length !== 76 || !sameBytes(raw.slice(0, 4), w.keyHash)) continue;
      const time = new DataView(raw.buffer, raw.byteOffset + 4, 8).getBigUint64(0);
      if (time > BigInt(now + MAX_COSIGNATURE_FUTURE_SECS)) continue;
      const message = utf8.encode(`cosignature/v1\ntime ${time}\n${body}`);
      if (ed25519.verify(raw.slice(12), message, w.pub)) {
        names.push(w.name);
        break;
      }
    }
  }
  return names;
}

/**
 * Check a receipt as the Rust client does: the checkpoint is signed by the
 * log key, the event is in it, and it is the expected action (of the
 * expected case, when given). Returns the event.
 */
export function checkReceipt(receipt, vkey, action, caseId) {
  const cp = verifyCheckpoint(receipt.checkpoint, vkey);
  const bytes = base64.decode(receipt.event);
  const leaf = sha256(concat(Uint8Array.of(0), bytes));
  const proof = receipt.proof.map((p) => base64.decode(p));
  if (!verifyInclusion(receipt.index, cp.size, leaf, proof, cp.root)) {
    throw new Error("the receipt's inclusion proof does not verify");
  }
  const event = JSON.parse(new TextDecoder().decode(bytes));
  if (event.action !== action) throw new Error(`the receipt is for ${event.action}, expected ${action}`);
  if (caseId !== undefined && event.case !== caseId) throw new Error("the receipt is for another case");
  return event;
}

/** Parse a card line: `custos-card-v1 KEY RECIPIENT NAME`. */
function parseCard(card) {
  const [head, key, recipient] = card.split(" ");
  if (head !== "custos-card-v1" || !recipient) throw new Error("malformed card");
  return { publicKey: base64.decode(key), recipient };
}

/**
 * Check a stored signed request (an event's `request`) with `publicKey`: the
 * RFC 9421 base rebuilt from its params and values, and its body against
 * the covered Content-Digest. Returns the covered components by name.
 */
function verifyStored(req, publicKey) {
  if (!req || !req.params.startsWith("(")) throw new Error("not a signed request");
  const list = req.params.slice(1, req.params.indexOf(")"));
  const names = [...list.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
  if (names.length !== req.values.length) throw new Error("malformed signature");
  let base = "";
  names.forEach((c, i) => {
    base += `"${c}": ${req.values[i]}\n`;
  });
  base += `"@signature-params": ${req.params}`;
  if (!ed25519.verify(base64.decode(req.signature), utf8.encode(base), publicKey)) {
    throw new Error("signature does not verify");
  }
  const covered = Object.fromEntries(names.map((n, i) => [n, req.values[i]]));
  if (req.body !== undefined && covered["content-digest"] !== contentDigest(base64.decode(req.body))) {
    throw new Error("body digest");
  }
  return covered;
}

/** The path of a signed target (`scheme://host/path`), as its segments. */
function signedPath(covered) {
  const m = (covered["@target-uri"] || "").match(/^https?:\/\/[^/]+(\/[A-Za-z0-9._~/-]*)$/);
  if (!m) throw new Error("a signed target is not canonical");
  return m[1].slice(1).split("/");
}

function bodyOf(req) {
  return JSON.parse(new TextDecoder().decode(base64.decode(req.body)));
}

/** An event of a log view (`{index, event, proof}`), checked against `cp`. */
function provenEvent(entry, cp) {
  const bytes = base64.decode(entry.event);
  const leaf = sha256(concat(Uint8Array.of(0), bytes));
  if (!verifyInclusion(entry.index, cp.size, leaf, entry.proof.map((h) => base64.decode(h)), cp.root)) {
    throw new Error(`event ${entry.index} is not in the signed log`);
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}

/**
 * The intake principals' recipients, each checked to be registered as an
 * intake lawyer by a request signed by one of the vault's admin anchors and
 * included in the signed log, and all of them exactly the intake lawyers
 * the log's last registry change names (a state the log commits to, and
 * auditors check): a host cannot list a lawyer it removed without its log
 * saying so. The anchors and the log key come from the same server as this
 * page, so this catches a tampered registry, not a hostile server; the CLI
 * pins them and the README says so.
 */
export function verifyIntake(params) {
  const anchors = params.anchors.map(parseCard);
  const cp = verifyCheckpoint(params.checkpoint, params.vkey);
  if (!params.registry) throw new Error("the vault shows no registry change in its log");
  const change = provenEvent(params.registry, cp);
  if (change.case !== "vault" || !["principal_added", "principal_removed"].includes(change.action)) {
    throw new Error("the vault's last registry change is not one");
  }
  const committed = change.details?.registry_intake;
  if (!Array.isArray(committed)) throw new Error("the vault's log does not say who its intake lawyers are");
  const listed = params.intake.map((ip) => ip.principal.key_id).sort();
  if (JSON.stringify(listed) !== JSON.stringify([...committed].sort())) {
    throw new Error("the vault lists other intake lawyers than its log names");
  }
  const out = [];
  for (const ip of params.intake) {
    const fail = (why) => new Error(`intake principal ${ip.principal.key_id}: ${why}`);
    let event;
    try {
      event = provenEvent(ip, cp);
    } catch (e) {
      throw fail(e.message);
    }
    if (event.action !== "principal_added" || !event.request) throw fail("not a signed registration");
    const admin = anchors.find((a) => keyId(a.publicKey) === event.actor);
    if (!admin) throw fail("not registered by a vault admin");
    try {
      verifyStored(event.request, admin.publicKey);
    } catch (e) {
      throw fail(`admin ${e.message}`);
    }
    const body = bodyOf(event.request);
    const card = parseCard(ip.principal.card);
    if (
      body.card !== ip.principal.card ||
      body.role !== "lawyer" ||
      body.intake !== true ||
      keyId(card.publicKey) !== ip.principal.key_id
    ) {
      throw fail("the signed registration names a different card or role");
    }
    out.push({ keyId: ip.principal.key_id, recipient: card.recipient });
  }
  if (out.length === 0) throw new Error("this vault has no intake lawyers");
  return out;
}

/**
 * What the case's log proves, from the submitter's view of
 * `GET /v1/cases/{case}/log` (`caseLog`), every event checked for
 * inclusion in its checkpoint (signed by `vkey`) and every signature
 * traced to the admin `anchors` (card lines):
 * - `creation`: the body of the case's signed creation (its recipient,
 *   the submitters' envelopes), which the session's case key must come
 *   from (see checkRecord);
 * - `stores`: a map from object id to `{ keyId, name }` for every object
 *   whose storing was signed by a lawyer who held the case then (an intake
 *   lawyer when it was opened, or granted it since by one who held it, and
 *   not revoked). A message labelled a reply that is not in the map was
 *   not sent by a lawyer holding the case: anyone who can encrypt to the
 *   case could have planted it.
 */
export function provenCase(caseLog, vkey, anchorCards, caseId) {
  const cp = verifyCheckpoint(caseLog.checkpoint, vkey);
  const principals = new Map();
  for (const card of anchorCards) {
    const c = parseCard(card);
    principals.set(keyId(c.publicKey), { publicKey: c.publicKey, role: "admin", name: card.split(" ").slice(3).join(" ") });
  }
  const submitters = new Set();
  const holders = new Set();
  const proven = new Map();
  let creation = null;
  const entries = [...caseLog.entries].sort((a, b) => a.index - b.index);
  for (const entry of entries) {
    const e = provenEvent(entry, cp);
    const fail = (why) => new Error(`event ${entry.index} (${e.action}): ${why}`);
    if (e.actor === "vault") {
      if (e.action !== "principal_added" || !anchorCards.includes(e.details.card)) throw fail("not a trusted anchor");
      continue;
    }
    const req = e.request;
    const signer = e.case === caseId && e.action === "case_created" ? null : principals.get(e.actor);
    if (e.case === "vault") {
      if (!signer || signer.role !== "admin") throw fail("not signed by an admin");
      const covered = verifyStored(req, signer.publicKey);
      const path = signedPath(covered);
      if (e.action === "principal_added" && covered["@method"] === "POST" && path.join("/") === "v1/principals") {
        const body = bodyOf(req);
        const card = parseCard(body.card);
        principals.set(keyId(card.publicKey), { publicKey: card.publicKey, role: body.role, name: body.card.split(" ").slice(3).join(" ") });
      } else if (e.action === "principal_removed" && covered["@method"] === "DELETE" && path.join("/") === `v1/principals/${e.details.key_id}`) {
        principals.delete(e.details.key_id);
        holders.delete(e.details.key_id);
      } else {
        throw fail("not the request that makes it");
      }
      continue;
    }
    if (e.case !== caseId) throw fail("of another case");
    if (e.action === "case_created") {
      const body = bodyOf(req);
      const keys = body.submitter_keys.map((k) => base64.decode(k.verifying_key));
      const opener = keys.find((k) => keyId(k) === e.actor);
      if (!opener) throw fail("not opened by one of its submitter keys");
      verifyStored(req, opener);
      creation = body;
      for (const k of keys) submitters.add(keyId(k));
      for (const env of body.envelopes) if (!submitters.has(env.key_id)) holders.add(env.key_id);
      continue;
    }
    if (!signer) throw fail("not signed by a registered principal");
    const covered = verifyStored(req, signer.publicKey);
    const path = signedPath(covered).join("/");
    if (e.action === "envelope_granted" && covered["@method"] === "POST" && path === `v1/cases/${caseId}/grants`) {
      const body = bodyOf(req);
      if (!holders.has(e.actor) || principals.get(body.key_id)?.role !== "lawyer") throw fail("a grant by or to no lawyer holding the case");
      holders.add(body.key_id);
    } else if (
      e.action === "envelope_revoked" &&
      covered["@method"] === "DELETE" &&
      (path === `v1/cases/${caseId}/grants/${e.details.key_id}` || path === `v1/principals/${e.details.key_id}`)
    ) {
      holders.delete(e.details.key_id);
    } else if (e.action === "object_stored" && covered["@method"] === "POST" && /^v1\/cases\/[0-9a-f]+\/uploads\/[0-9a-f]+\/commit$/.test(path) && path.startsWith(`v1/cases/${caseId}/`)) {
      const body = bodyOf(req);
      if (JSON.stringify(e.objects) !== JSON.stringify([body.sha256])) throw fail("another object than committed");
      if (holders.has(e.actor) && signer.role === "lawyer") proven.set(body.sha256, { keyId: e.actor, name: signer.name });
    } else {
      throw fail("not the request that makes it");
    }
  }
  if (!creation) throw new Error(`the vault's log shows no creation of case ${caseId}`);
  return { creation, stores: proven };
}

/**
 * Hold the host's record of the case (`GET /v1/cases/{case}`) to its signed
 * creation, for the submitter key `myKeyId`: the case's recipient and this
 * key's envelope must be the ones the submitter's own signed request put
 * there. A host that put in a case key of its own would read every file
 * sent after.
 */
export function checkRecord(detail, creation, myKeyId, caseId) {
  const differs = (what) =>
    new Error(`the vault's record of case ${caseId} differs from its signed log: ${what}; refusing to go on`);
  if (detail.case_id !== caseId || detail.case_recipient !== creation.case_recipient) throw differs("the case's recipient");
  const mine = creation.envelopes.find((env) => env.key_id === myKeyId);
  if (!mine || detail.envelope !== mine.envelope) throw differs("your envelope");
}

// ---- Encryption (src/envelope) ----

/** Encrypt small bytes or text to age recipients. */
export async function encryptBytes(plain, recipients) {
  const e = new age.Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(plain);
}

/** Decrypt small bytes with one age identity string. */
export async function decryptBytes(ciphertext, identity) {
  const d = new age.Decrypter();
  d.addIdentity(identity);
  return d.decrypt(ciphertext);
}

/** A fresh X25519 key pair (the case key, the note key). */
export async function generateKey() {
  const identity = await age.generateX25519Identity();
  return { identity, recipient: await age.identityToRecipient(identity) };
}

/** The age recipient of an identity string. */
export function recipientOf(identity) {
  return age.identityToRecipient(identity);
}

/** An encrypted label: what the object is, readable by case-key holders. */
export async function sealLabel(label, caseRecipient) {
  return base64.encode(await encryptBytes(utf8.encode(JSON.stringify(label)), [caseRecipient]));
}

// Ciphertext is gathered into Blobs of this size so the browser can keep
// large files out of the JavaScript heap.
const BLOB_PART = 16 * 1024 * 1024;
// Ciphertexts up to this size are hashed natively in one call (see
// encryptBlob): a photo, a scan, a voice note. Larger ones, mostly videos,
// are hashed in JavaScript as they are made, so memory stays flat.
const NATIVE_HASH_MAX = 32 * 1024 * 1024;

/**
 * Encrypt a Blob or File to the recipients as a stream, reporting the
 * fraction done. Returns the ciphertext as a Blob and its SHA-256 in hex
 * (the object id).
 */
export async function encryptBlob(blob, recipients, onProgress) {
  const e = new age.Encrypter();
  for (const r of recipients) e.addRecipient(r);
  const stream = await e.encrypt(blob.stream());
  const total = stream.size(blob.size);
  // Up to NATIVE_HASH_MAX the ciphertext is hashed at the end, in one
  // native call over it whole; beyond, piece by piece in JavaScript, as
  // holding it all would cost as much memory as the file.
  const native = total <= NATIVE_HASH_MAX;
  let encrypted = 0;
  const reader = stream.getReader();
  const hash = native ? null : sha256.create();
  const blobs = [];
  let pending = [];
  let pendingLen = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (hash) hash.update(value);
    encrypted += value.length;
    if (onProgress) onProgress(encrypted / total);
    pending.push(value);
    pendingLen += value.length;
    if (pendingLen >= BLOB_PART) {
      blobs.push(new Blob(pending));
      pending = [];
      pendingLen = 0;
    }
  }
  blobs.push(new Blob(pending));
  const ciphertext = new Blob(blobs);
  const sum = hash ? hash.digest() : await digest(await ciphertext.arrayBuffer());
  return { blob: ciphertext, sha256: hex.encode(sum) };
}

/** The duress note, always the same length (crates/client/src/flows). */
export function duressNote(duressKeyId) {
  return `custos-note-v1 duress=${duressKeyId ?? "-".repeat(16)}`;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

export { base64, hex, sha256 };
