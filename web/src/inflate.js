// Bounded inflation for the metadata readers: compressed PNG text and
// office property parts are inflated in small pieces by fflate's streaming
// inflater, and inflation stops as soon as the output passes its limit, so
// that a few kilobytes claiming to be a short text cannot make gigabytes
// (fflate's one-shot inflaters grow their output to whatever the data
// makes, whatever size an archive declares).

import { Inflate, Unzlib } from "fflate";

import { concat } from "./protocol.js";

/**
 * Compressed bytes fed at a time: deflate makes at most about 1,032 bytes
 * of each, so output passes a limit by at most about 66 KB.
 */
export const INFLATE_PIECE = 64;

/** Work done on hostile input, counted for the tests (never shown or sent). */
export const work = { exifr: 0, inflated: 0, pdf: 0 };

/**
 * `data` inflated (zlib-wrapped when `zlib`, else raw deflate), or null
 * when its output would pass `max` bytes. Throws on damaged data.
 */
export function inflateBounded(data, max, zlib) {
  const chunks = [];
  let total = 0;
  let over = false;
  const s = new (zlib ? Unzlib : Inflate)((chunk) => {
    total += chunk.length;
    work.inflated += chunk.length;
    if (total > max) over = true;
    else chunks.push(chunk);
  });
  for (let i = 0; i < data.length && !over; i += INFLATE_PIECE) {
    s.push(data.subarray(i, i + INFLATE_PIECE), i + INFLATE_PIECE >= data.length);
  }
  return over ? null : concat(...chunks);
}
