// What the vault will take, checked before anything is encrypted or sent:
// the ciphertext a file will make, which files the vault's limits (from its
// intake parameters) refuse, and sizes in units a person reads. Pure: no
// DOM, no network; the page puts the words around the numbers.

/** age's payload chunk: each holds this much plaintext (age spec, STREAM). */
const AGE_CHUNK = 64 * 1024;
/** The ChaCha20-Poly1305 tag after each chunk. */
const AGE_TAG = 16;
/** The payload nonce between the header and the chunks. */
const AGE_NONCE = 16;
/**
 * Most bytes an age header the page writes can take. The page encrypts
 * each object to one X25519 case key, a header of about 170 bytes; 4 KiB
 * also holds a post-quantum stanza (about 1.6 KB) or a few more
 * recipients, so a file the page passes is never refused for its header.
 * A file within 4 KiB of the limit is refused although it would fit: next
 * to limits counted in gigabytes, nothing.
 */
export const AGE_HEADER_BOUND = 4096;

/**
 * The most ciphertext age makes of `size` bytes: the payload exactly (a
 * tag per 64 KiB chunk, at least one chunk, and the nonce) plus the
 * header's bound. This is what the vault's limits count (tus
 * Upload-Length), not the file's own size.
 */
export function ciphertextBound(size) {
  const chunks = Math.max(1, Math.ceil(size / AGE_CHUNK));
  return AGE_HEADER_BOUND + AGE_NONCE + size + chunks * AGE_TAG;
}

/**
 * Why the vault would refuse files of these `sizes` (plaintext bytes, in
 * send order), or null if it would take them all. `maxUpload` is the
 * vault's largest object and `maxCase` the most one case may hold, both in
 * bytes of ciphertext (null or undefined: the vault did not say); `held`
 * is the ciphertext the case already holds.
 *
 * `{ kind: "file", indices, limit }`: those files are each larger than one
 * object may be. `{ kind: "case", indices, limit, total }`: each fits, but
 * the case would then hold `total` bytes (an upper bound) and may hold
 * `limit`; `indices` are all of them.
 */
export function refusal(sizes, { maxUpload, maxCase, held = 0 }) {
  if (maxUpload != null) {
    const indices = sizes.flatMap((s, i) => (ciphertextBound(s) > maxUpload ? [i] : []));
    if (indices.length > 0) return { kind: "file", indices, limit: maxUpload };
  }
  if (maxCase != null) {
    const total = sizes.reduce((sum, s) => sum + ciphertextBound(s), held);
    if (total > maxCase) return { kind: "case", indices: sizes.map((_, i) => i), limit: maxCase, total };
  }
  return null;
}

/** Units, each 1024 of the one before, as the page's strings name them. */
export const UNITS = ["bytes", "kb", "mb", "gb", "tb"];

/**
 * `bytes` in the largest unit that leaves a number of at least 1:
 * `{ value, unit }`, `unit` one of {@link UNITS}.
 */
export function inUnits(bytes) {
  let value = bytes;
  let u = 0;
  while (value >= 1024 && u < UNITS.length - 1) {
    value /= 1024;
    u++;
  }
  return { value, unit: UNITS[u] };
}

/**
 * Two sizes written so that a person can tell them apart: `format(bytes,
 * digits)` writes one size with at most `digits` decimals, and the digits
 * grow (to 4) while the two read the same, so a file just over a limit is
 * never shown as exactly the limit.
 */
export function writeApart(a, b, format) {
  let digits = 1;
  while (digits < 4 && a !== b && format(a, digits) === format(b, digits)) digits++;
  return [format(a, digits), format(b, digits)];
}
