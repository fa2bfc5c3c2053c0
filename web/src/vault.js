// What the page does with the vault: submit a case, come back to it with a
// codename (status, replies, more evidence), and upload encrypted objects
// with tus so that a cut connection resumes where it stopped. The same steps,
// in the same order, as crates/client/src/flows and crates/client/src/submitter.rs.

import { Upload, defaultOptions } from "tus-js-client";

import * as limits from "./limits.js";
import * as p from "./protocol.js";

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** Bytes per tus PATCH: as the Rust client, four 1 MiB store chunks. */
export const PATCH_SIZE = 4 * 1024 * 1024;

/**
 * Retry a failed upload request after these delays (ms), then give up with
 * an error the page shows. A minute and a half covers a phone changing
 * networks or Tor building a new circuit.
 */
const RETRY_DELAYS = [0, 1000, 2000, 4000, 8000, 15000, 30000, 30000];

/**
 * tus-js-client's own HTTP stack, with every request signed (RFC 9421) the
 * way the server demands: tus-js-client offers no hook that sees a PATCH
 * body, and the signature has to cover its digest.
 */
class SigningStack {
  constructor(keys) {
    this.inner = defaultOptions.httpStack;
    this.keys = keys;
  }
  createRequest(method, url) {
    return new SigningRequest(this.inner.createRequest(method, url), this.keys);
  }
  getName() {
    return "custos-signing";
  }
}

class SigningRequest {
  constructor(inner, keys) {
    this.inner = inner;
    this.keys = keys;
    this.headers = {};
  }
  getMethod() {
    return this.inner.getMethod();
  }
  getURL() {
    return this.inner.getURL();
  }
  setHeader(name, value) {
    this.headers[name.toLowerCase()] = value;
    this.inner.setHeader(name, value);
  }
  getHeader(name) {
    return this.inner.getHeader(name);
  }
  setProgressHandler(handler) {
    this.inner.setProgressHandler(handler);
  }
  abort() {
    return this.inner.abort();
  }
  getUnderlyingObject() {
    return this.inner.getUnderlyingObject();
  }
  async send(body = null) {
    const method = this.getMethod();
    let bytes = null;
    let digest = null;
    if (body !== null && body !== undefined) {
      bytes = new Uint8Array(body instanceof Blob ? await body.arrayBuffer() : body);
      const hash = p.base64.encode(await p.digest(bytes));
      this.inner.setHeader("Upload-Checksum", `sha256 ${hash}`);
      digest = `sha-256=:${hash}:`;
    } else if (method === "POST" || method === "PATCH") {
      digest = p.contentDigest(new Uint8Array(0));
    }
    const covered = {};
    for (const h of ["upload-length", "upload-offset"]) {
      if (h in this.headers) covered[h] = this.headers[h];
    }
    const signed = p.signDigest(this.keys, method, this.getURL(), digest, covered);
    for (const [name, value] of Object.entries(signed)) this.inner.setHeader(name, value);
    return this.inner.send(bytes && bytes.length > 0 ? bytes : null);
  }
}

/**
 * Encrypt `blob` to `recipients`, upload it to the case with tus, commit it
 * under its label, and check the receipt names exactly that ciphertext.
 * `onPhase` hears "encrypt" then "upload"; `onProgress(fraction)` follows
 * each.
 */
export async function storeObject({ keys, caseId, vkey, caseRecipient, alsoTo = [], blob, label, onProgress, onPhase }) {
  if (onPhase) onPhase("encrypt");
  const { blob: ciphertext, sha256 } = await p.encryptBlob(blob, [caseRecipient, ...alsoTo], onProgress);
  if (onPhase) onPhase("upload");
  const sealed = await p.sealLabel(label, caseRecipient);
  const url = await new Promise((resolve, reject) => {
    const upload = new Upload(ciphertext, {
      endpoint: `${location.origin}/v1/cases/${caseId}/uploads`,
      chunkSize: PATCH_SIZE,
      retryDelays: RETRY_DELAYS,
      // Nothing about an upload is kept on the device: a phone may be seized.
      storeFingerprintForResuming: false,
      httpStack: new SigningStack(keys),
      onProgress: (sent, total) => onProgress && onProgress(total ? sent / total : 1),
      onSuccess: () => resolve(upload.url),
      onError: reject,
    });
    upload.start();
  });
  const path = new URL(url).pathname;
  const committed = await (await p.call("POST", `${path}/commit`, { keys, json: { sha256, label: sealed } })).json();
  if (committed.object_id !== sha256) throw new Error("the vault stored a different object than was sent");
  p.checkReceipt(committed.receipt, vkey, "object_stored", caseId);
  return committed.receipt;
}

/**
 * Files the vault will not take. The page finds most before anything is
 * encrypted or sent (`refusedByVault` false); the vault's `413` to an
 * upload, when its limits changed since the page read them, finds the rest
 * (`refusedByVault` true, the answer in `cause`). `kind`, `indices` (into
 * the items), `limit` and `total` are as in limits.refusal; `limit` is null
 * when the vault did not say it.
 */
export class TooLarge extends Error {
  constructor({ kind, indices, limit, total = null }, cause) {
    super(cause ? cause.message : `${kind} larger than ${limit} bytes`, cause ? { cause } : undefined);
    this.kind = kind;
    this.indices = indices;
    this.limit = limit ?? null;
    this.total = total;
    this.refusedByVault = cause !== undefined;
  }
}

/**
 * Throw {@link TooLarge} if the vault's limits in `params` refuse any of
 * `items`, or all of them together in a case already holding `held` bytes.
 * Run before any key is made or byte encrypted, so that nothing is sent.
 */
export function checkSizes(items, params, held = 0) {
  const refused = limits.refusal(
    items.map((i) => i.blob.size),
    { maxUpload: params.max_upload_bytes, maxCase: params.max_case_bytes, held },
  );
  if (refused) throw new TooLarge(refused);
}

/**
 * `e`, or, when it is the vault refusing item `index`'s upload as too large
 * (its limits changed since the page read them), a {@link TooLarge} naming
 * the item with the limit the vault has now.
 */
export async function explainRefusal(e, index) {
  const resp = e?.originalResponse;
  if (resp?.getStatus?.() !== 413 || e.originalRequest?.getMethod?.() !== "POST") return e;
  const kind = resp.getHeader("custos-error") === "case_quota_exceeded" ? "case" : "file";
  let limit = null;
  try {
    const params = await (await p.call("GET", "/v1/intake")).json();
    limit = kind === "case" ? params.max_case_bytes : params.max_upload_bytes;
  } catch {
    // The message then names the file without the limit.
  }
  return new TooLarge({ kind, indices: [index], limit }, e);
}

/** The vault's public parameters, with the intake principals checked. */
export async function intake() {
  const params = await (await p.call("GET", "/v1/intake")).json();
  return { params, principals: p.verifyIntake(params) };
}

/**
 * Submit a case. `items` are `{ blob, label }` in upload order; the first
 * must be the statement. Returns the case id, the codename(s) and the
 * receipt document, in the CLI's receipt format. `onCreated` hears the case
 * id and codename as soon as the case exists, so a cut-off submitter can
 * come back to add the files. Files the vault's limits refuse stop the
 * submission before anything is encrypted or sent (see checkSizes).
 *
 * As in the Rust client, every case registers two submitter keys and a
 * note: without `duress` the second codename is shown to nobody, so the
 * server cannot tell which cases have a duress codename.
 */
export async function submit({ items, duress, onStage, onProgress, onCreated }) {
  onStage("intake");
  const { params, principals } = await intake();
  checkSizes(items, params);
  onStage("keys");
  const codename = p.generateCodename();
  const second = p.generateCodename();
  const [keys, secondKeys] = await Promise.all([p.deriveKeys(codename, params.origin), p.deriveKeys(second, params.origin)]);
  const caseKey = await p.generateKey();
  const noteKey = await p.generateKey();
  const envelopes = [];
  const noteEnvelopes = [];
  for (const pr of principals) {
    envelopes.push({ key_id: pr.keyId, envelope: p.base64.encode(await p.encryptBytes(caseKey.identity, [pr.recipient])) });
    noteEnvelopes.push({
      key_id: pr.keyId,
      envelope: p.base64.encode(await p.encryptBytes(noteKey.identity, [pr.recipient])),
    });
  }
  const submitterKeys = [];
  for (const k of [keys, secondKeys]) {
    envelopes.push({ key_id: k.keyId, envelope: p.base64.encode(await p.encryptBytes(caseKey.identity, [k.recipient])) });
    submitterKeys.push({ verifying_key: p.base64.encode(k.publicKey), recipient: k.recipient });
  }
  // An unordered set: the real key must not always come first.
  if (coin()) submitterKeys.reverse();
  const note = p.duressNote(duress ? secondKeys.keyId : null);
  const req = {
    submitter_keys: submitterKeys,
    case_recipient: caseKey.recipient,
    envelopes,
    note: p.base64.encode(await p.encryptBytes(utf8.encode(note), [noteKey.recipient])),
    note_envelopes: noteEnvelopes,
  };
  const body = utf8.encode(JSON.stringify(req));
  onStage("stamp");
  const stamp = await p.mintStamp(params.origin, body, params.stamp_bits);
  // Either key opens the case, at random, so that the log does not tell a
  // later action by the other key from the real submitter's.
  const opener = coin() ? keys : secondKeys;
  onStage("create");
  const created = await (
    await p.call("POST", "/v1/cases", { keys: opener, raw: body, headers: { "custos-stamp": stamp } })
  ).json();
  p.checkReceipt(created.receipt, params.vkey, "case_created", created.case_id);
  if (onCreated) onCreated({ caseId: created.case_id, codename });
  const receipts = [created.receipt];
  for (const [i, item] of items.entries()) {
    try {
      receipts.push(
        await storeObject({
          keys: opener,
          caseId: created.case_id,
          vkey: params.vkey,
          caseRecipient: caseKey.recipient,
          blob: item.blob,
          label: item.label,
          onProgress: (f) => onProgress(i, f),
          onPhase: (phase) => onStage(phase, i),
        }),
      );
    } catch (e) {
      throw await explainRefusal(e, i);
    }
  }
  const receipt = { case_id: created.case_id, origin: params.origin, vkey: params.vkey, receipts };
  const witnessed = await witnessReceipts(params, receipts);
  if (witnessed) receipt.witnessed = witnessed;
  return {
    caseId: created.case_id,
    codename,
    duressCodename: duress ? second : null,
    receipt,
    witnessedBy: witnessed ? witnessed.cosigned_by : null,
  };
}

/** How long to wait for the vault's witnesses to cosign the receipts. */
const COSIGN_WAIT_MS = 10_000;

/**
 * The witnesses' word on the receipts, as the Rust client gives it: the
 * vault's newest checkpoint once every witness it names cosigned it, and
 * the proof that it extends the receipts' last checkpoint. `undefined` when
 * the vault names no witness; `null` when they did not cosign in time.
 */
async function witnessReceipts(params, receipts) {
  const witnesses = params.witnesses ?? [];
  if (witnesses.length === 0) return undefined;
  const from = p.verifyCheckpoint(receipts.at(-1).checkpoint, params.vkey);
  const started = Date.now();
  while (Date.now() - started < COSIGN_WAIT_MS) {
    const note = await (await p.call("GET", "/v1/log/checkpoint")).text();
    const cp = p.verifyCheckpoint(note, params.vkey);
    const names = p.cosigners(note, witnesses);
    if (cp.size >= from.size && names.length === witnesses.length) {
      let proof = [];
      if (cp.size > from.size) {
        proof = (await (await p.call("GET", `/v1/log/consistency?from=${from.size}&to=${cp.size}`)).json()).proof;
      }
      const hashes = proof.map((h) => p.base64.decode(h));
      if (!p.verifyConsistency(from.size, cp.size, hashes, from.root, cp.root)) {
        throw new Error("the witnessed checkpoint does not extend the receipt's");
      }
      return { checkpoint: note, from_size: from.size, consistency: proof, cosigned_by: names };
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

function coin() {
  return (crypto.getRandomValues(new Uint8Array(1))[0] & 1) === 1;
}

/** The one answer to a wrong codename and to an unknown case alike. */
export class NoSuchCase extends Error {}

/**
 * Come back with a codename: derive its keys, open the case, and decrypt
 * the labels. Returns a session for status, replies and more evidence.
 */
export async function openCase(codenameText, caseId, versions = p.KDF_VERSIONS) {
  const codename = p.parseCodename(codenameText);
  if (!codename || !/^[0-9a-z-]{1,64}$/.test(caseId)) throw new NoSuchCase();
  const { params } = await intake();
  // Each KDF version in turn, newest first (scrypt without a JIT takes 9 s;
  // SECURITY.md says what the order shows the host), until the vault
  // knows the key; a session keeps the one that worked, for reopening.
  let keys;
  let detail;
  let kdf;
  for (const version of versions) {
    kdf = version;
    keys = await p.deriveKeys(codename, params.origin, version);
    try {
      detail = await (await p.call("GET", `/v1/cases/${caseId}`, { keys })).json();
      break;
    } catch (e) {
      if (!(e instanceof p.ApiError && ["unknown_key", "not_found", "forbidden"].includes(e.code))) throw e;
    }
  }
  if (!detail?.envelope) throw new NoSuchCase();
  // The case key comes from the envelope of the case's signed creation,
  // never from the host's word (see protocol.checkRecord).
  const log = await (await p.call("GET", `/v1/cases/${caseId}/log`, { keys })).json();
  const { creation } = p.provenCase(log, params.vkey, params.anchors, caseId);
  p.checkRecord(detail, creation, keys.keyId, caseId);
  const caseIdentity = text.decode(await p.decryptBytes(p.base64.decode(detail.envelope), keys.ageIdentity));
  const caseRecipient = await p.recipientOf(caseIdentity);
  if (caseRecipient !== detail.case_recipient) throw new Error("the envelope does not hold this case's key");
  const objects = [];
  for (const o of detail.objects) {
    const label = JSON.parse(text.decode(await p.decryptBytes(p.base64.decode(o.label), caseIdentity)));
    objects.push({ ...o, label });
  }
  objects.sort((a, b) => a.index - b.index);
  return { keys, kdf, caseId, params, detail, caseIdentity, caseRecipient, objects };
}

/**
 * The lawyers' replies of an open session, oldest first, as text with who
 * wrote them: only those the case's log proves a lawyer holding the case
 * stored (see protocol.provenCase); `unproven` counts the other messages
 * labelled replies, which are not shown.
 */
export async function replies(session) {
  const log = await (await p.call("GET", `/v1/cases/${session.caseId}/log`, { keys: session.keys })).json();
  const proven = p.provenCase(log, session.params.vkey, session.params.anchors, session.caseId).stores;
  const out = [];
  let unproven = 0;
  for (const o of session.objects.filter((o) => o.label.kind === "reply")) {
    const by = proven.get(o.object_id);
    if (!by) {
      unproven++;
      continue;
    }
    const resp = await p.call("GET", `/v1/cases/${session.caseId}/objects/${o.object_id}`, { keys: session.keys });
    const bytes = new Uint8Array(await resp.arrayBuffer());
    if (p.hex.encode(p.sha256(bytes)) !== o.object_id) throw new Error("a reply does not match its hash");
    out.push({ name: o.label.name, from: by.name, text: text.decode(await p.decryptBytes(bytes, session.caseIdentity)) });
  }
  return { replies: out, unproven };
}

/**
 * Withdraw the case, signed with this codename's key. Nothing is deleted;
 * whether this was under duress only the lawyers can tell.
 */
export async function withdraw(session) {
  const body = await (
    await p.call("POST", `/v1/cases/${session.caseId}/withdraw`, { keys: session.keys, json: {} })
  ).json();
  p.checkReceipt(body.receipt, session.params.vkey, "withdrawn", session.caseId);
}
