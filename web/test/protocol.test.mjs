// Known answers shared with the Rust client (tests/vectors/web-client.json,
// also walked by tests/web_client_vectors.rs): if this script and the Rust
// code ever disagree on a derivation, one of the two test suites fails.
// Run with `npm test` (node --test); CI runs it.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { test } from "node:test";

import * as p from "../src/protocol.js";

const vectors = JSON.parse(readFileSync(new URL("../../tests/vectors/web-client.json", import.meta.url), "utf8"));
const utf8 = new TextEncoder();

// Every JSON file under tests/vectors/rfc6962/<kind>/, at any depth.
function rfc6962Vectors(kind) {
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const u = new URL(name, dir);
      if (statSync(u).isDirectory()) walk(new URL(`${name}/`, dir));
      else if (name.endsWith(".json")) files.push(u);
    }
  };
  walk(new URL(`../../tests/vectors/rfc6962/${kind}/`, import.meta.url));
  return files;
}

test("codenames derive the committed keys", async () => {
  for (const version of p.KDF_VERSIONS) {
    assert.ok(vectors.codenames.filter((c) => c.kdf === version).length >= 3, version);
  }
  for (const c of vectors.codenames) {
    const keys = await p.deriveKeys(p.parseCodename(c.codename), c.origin, c.kdf);
    assert.equal(keys.keyId, c.key_id);
    assert.equal(p.base64.encode(keys.publicKey), c.verifying_key);
    assert.equal(keys.recipient, c.recipient);
  }
});

test("codenames are parsed as forgivingly as the CLI parses them", () => {
  const c = vectors.codenames[0].codename;
  assert.equal(p.parseCodename(`  ${c.toUpperCase().replaceAll(" ", " - ")} `), c);
  assert.equal(p.parseCodename(c.split(" ").slice(1).join(" ")), null);
  assert.equal(p.parseCodename(`${c} zzzz`), null);
  const fresh = p.generateCodename();
  assert.equal(p.parseCodename(fresh), fresh);
  assert.equal(new Set(Array.from({ length: p.WORD_COUNT }, (_, i) => p.word(i))).size, 7776);
});

test("stamps are the first counter that meets the difficulty", async () => {
  for (const s of vectors.stamps) {
    const version = s.stamp.slice(0, 2);
    assert.equal(await p.mintStamp(s.origin, utf8.encode(s.body), s.bits, null, s.time, version), s.stamp);
  }
});

test("request signatures match byte for byte", () => {
  for (const s of vectors.signatures) {
    const seed = p.hex.decode(s.seed);
    const keys = { seed, keyId: s.key_id };
    const h = p.signatureHeaders(keys, s.method, s.url, utf8.encode(s.body), s.covered, {
      created: s.created,
      nonce: s.nonce,
    });
    assert.equal(h["content-digest"], s.content_digest);
    assert.equal(h["signature-input"], s.signature_input);
    assert.equal(h["signature"], s.signature);
  }
});

test("the duress note has one length whether or not there is a duress key", () => {
  assert.equal(p.duressNote(null).length, p.duressNote("0123456789abcdef").length);
});

test("inclusion proofs follow RFC 9162 and refuse what does not fit", () => {
  const leaf = (b) => p.sha256(p.concat(Uint8Array.of(0), utf8.encode(b)));
  const node = (l, r) => p.sha256(p.concat(Uint8Array.of(1), l, r));
  const [a, b, c] = ["a", "b", "c"].map(leaf);
  const root = node(node(a, b), c);
  assert.ok(p.verifyInclusion(0, 3, a, [b, c], root));
  assert.ok(p.verifyInclusion(2, 3, c, [node(a, b)], root));
  assert.ok(!p.verifyInclusion(1, 3, a, [b, c], root));
  assert.ok(!p.verifyInclusion(3, 3, c, [node(a, b)], root));
  assert.ok(!p.verifyInclusion(2, 3, c, [node(a, b), a], root));
});

test("the public RFC 6962 inclusion vectors pass and their broken forms fail", () => {
  const files = rfc6962Vectors("inclusion");
  assert.ok(files.length > 50, `found ${files.length} vectors`);
  let good = 0;
  for (const f of files) {
    const v = JSON.parse(readFileSync(f, "utf8"));
    const ok = p.verifyInclusion(
        v.leafIdx,
        v.treeSize,
        p.base64.decode(v.leafHash),
        (v.proof ?? []).map((h) => p.base64.decode(h)),
        p.base64.decode(v.root),
      );
    assert.equal(ok, !v.wantErr, f.pathname);
    if (ok) good++;
  }
  assert.ok(good > 0);
});

test("files encrypt as a stream to what age decrypts, with their hash and progress", async () => {
  const { identity, recipient } = await p.generateKey();
  // Three and a bit age chunks of 64 KiB.
  const plain = new Uint8Array(200_000);
  for (let i = 0; i < plain.length; i += 50_000) crypto.getRandomValues(plain.subarray(i, i + 50_000));
  const seen = [];
  const { blob, sha256 } = await p.encryptBlob(new Blob([plain]), [recipient], (f) => seen.push(f));
  const ciphertext = new Uint8Array(await blob.arrayBuffer());
  assert.equal(sha256, p.hex.encode(p.sha256(ciphertext)));
  assert.deepEqual(await p.decryptBytes(ciphertext, identity), plain);
  assert.equal(seen.at(-1), 1);
  assert.ok(seen.every((f, i) => i === 0 || f >= seen[i - 1]));
  const other = await p.generateKey();
  await assert.rejects(p.decryptBytes(ciphertext, other.identity));
});

// A submitter's view of a real case's log and the vault's intake
// parameters (tests/vectors/case-log.json, recorded and checked by
// tests/case_log_vector.rs): the page must prove the same from them.
const caseLog = JSON.parse(readFileSync(new URL("../../tests/vectors/case-log.json", import.meta.url), "utf8"));

test("the case's log proves who replied, and nothing a submitter planted", () => {
  const proven = p.provenCase(caseLog.case_log, caseLog.vkey, caseLog.anchors, caseLog.case_id).stores;
  const got = Object.fromEntries([...proven].map(([object, by]) => [object, by.keyId]));
  assert.deepEqual(got, caseLog.proven);
  assert.equal(Object.keys(got).length, 2);
  // An event's byte changed; a lawyer's registration dropped; another key.
  const altered = structuredClone(caseLog.case_log);
  const last = altered.entries.at(-1);
  const bytes = p.base64.decode(last.event);
  bytes[10] ^= 1;
  last.event = p.base64.encode(bytes);
  assert.throws(() => p.provenCase(altered, caseLog.vkey, caseLog.anchors, caseLog.case_id));
  const dropped = structuredClone(caseLog.case_log);
  dropped.entries = dropped.entries.filter((e) => {
    const ev = JSON.parse(new TextDecoder().decode(p.base64.decode(e.event)));
    return !(ev.case === "vault" && ev.action === "principal_added" && ev.actor !== "vault");
  });
  assert.throws(() => p.provenCase(dropped, caseLog.vkey, caseLog.anchors, caseLog.case_id));
  assert.throws(() => p.provenCase(caseLog.case_log, caseLog.vkey, [], caseLog.case_id));
});

test("a returning submitter's record must be its signed creation", () => {
  const { creation } = p.provenCase(caseLog.case_log, caseLog.vkey, caseLog.anchors, caseLog.case_id);
  const me = p.keyId(p.base64.decode(creation.submitter_keys[0].verifying_key));
  const envelope = creation.envelopes.find((env) => env.key_id === me).envelope;
  const detail = { case_id: caseLog.case_id, case_recipient: creation.case_recipient, envelope };
  p.checkRecord(detail, creation, me, caseLog.case_id);
  // The host's own case key in its place, or another key's envelope.
  const other = creation.envelopes.find((env) => env.key_id !== me).envelope;
  assert.throws(
    () => p.checkRecord({ ...detail, case_recipient: "age1host" }, creation, me, caseLog.case_id),
    /the case's recipient/,
  );
  assert.throws(() => p.checkRecord({ ...detail, envelope: other }, creation, me, caseLog.case_id), /your envelope/);
  assert.throws(() => p.checkRecord(detail, creation, "0000000000000000", caseLog.case_id), /your envelope/);
});

test("the intake list must be the one the log names", () => {
  assert.equal(p.verifyIntake(caseLog.intake).length, 1);
  const relisted = structuredClone(caseLog.intake);
  relisted.intake.push({ ...relisted.intake[0], principal: { ...relisted.intake[0].principal, key_id: "0123456789abcdef" } });
  assert.throws(() => p.verifyIntake(relisted), /other intake lawyers than its log names/);
  const unproven = structuredClone(caseLog.intake);
  unproven.intake[0].proof.pop();
  assert.throws(() => p.verifyIntake(unproven));
});

test("a witness's cosignature verifies for that witness only", () => {
  const { witness, note, time } = caseLog.cosigned;
  assert.deepEqual(p.cosigners(note, [witness], time), ["witness.example/w1"]);
  // Another body, or a time far in the future, or another witness's key.
  assert.deepEqual(p.cosigners(note.replace("\n", "\n1"), [witness], time), []);
  assert.deepEqual(p.cosigners(note, [witness], time - 3600), []);
  assert.deepEqual(p.cosigners(note, [], time), []);
  // The vault's own signature on the same note is no witness's.
  assert.throws(() => p.cosigners(note, [caseLog.vkey], time));
});

test("the public RFC 6962 consistency vectors pass and their broken forms fail", () => {
  const files = rfc6962Vectors("consistency");
  assert.ok(files.length > 20, `found ${files.length} vectors`);
  let good = 0;
  for (const f of files) {
    const v = JSON.parse(readFileSync(f, "utf8"));
    const ok = p.verifyConsistency(
      v.size1,
      v.size2,
      (v.proof ?? []).map((h) => p.base64.decode(h)),
      p.base64.decode(v.root1),
      p.base64.decode(v.root2),
    );
    assert.equal(ok, !v.wantErr, `${f.pathname}: ${v.desc}`);
    if (ok) good++;
  }
  assert.ok(good > 0);
});
