// The place, the device and the time a video records: MP4 and QuickTime
// (MOV) keep them in the movie box (`moov`): its header's creation time, the
// user data's `©xyz`, `©mak` and `©mod` (Android), and the QuickTime
// metadata keys `com.apple.quicktime.*` (iPhone). No maintained browser
// library reads these without decoding the video, so the box walk is here:
// it reads only box headers until the movie box, which it reads whole if it
// is small enough, and stops at anything out of bounds.

/** Most top-level boxes walked before the movie box (a real file has a handful). */
export const MP4_MAX_BOXES = 1000;

/** Largest movie box read (it indexes the samples: a long video's can be megabytes). */
export const MOOV_MAX_BYTES = 16 * 1024 * 1024;

const type = (b, i) => String.fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3]);
const u32 = (b, i) => ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];

/** The boxes in `b` from `start` to `end`: `[{ type, body, end }]`. */
function boxes(b, start, end) {
  const out = [];
  let i = start;
  while (i + 8 <= end && out.length < MP4_MAX_BOXES) {
    let size = u32(b, i);
    let head = 8;
    if (size === 1) {
      if (i + 16 > end) break;
      size = u32(b, i + 8) * 2 ** 32 + u32(b, i + 12);
      head = 16;
    } else if (size === 0) {
      size = end - i;
    }
    if (size < head || i + size > end) break;
    out.push({ type: type(b, i + 4), body: i + head, end: i + size });
    i += size;
  }
  return out;
}

const child = (b, box, name, skip = 0) => boxes(b, box.body + skip, box.end).find((c) => c.type === name);

/** The movie box's bytes, found by reading box headers only. */
async function movieBox(blob) {
  let at = 0;
  for (let n = 0; n < MP4_MAX_BOXES && at + 8 <= blob.size; n++) {
    const h = new Uint8Array(await blob.slice(at, at + 16).arrayBuffer());
    let size = u32(h, 0);
    if (size === 1 && h.length >= 16) size = u32(h, 8) * 2 ** 32 + u32(h, 12);
    else if (size === 0) size = blob.size - at;
    if (size < 8 || at + size > blob.size) return null;
    if (type(h, 4) === "moov") {
      if (size > MOOV_MAX_BYTES) return null;
      return new Uint8Array(await blob.slice(at, at + size).arrayBuffer());
    }
    at += size;
  }
  return null;
}

/** ISO 6709 ("+43.2389+076.8897+850.000/") as signed degrees. */
export function iso6709(s) {
  const m = /^([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)/.exec(s ?? "");
  return m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
}

/** Seconds since 1904-01-01 UTC (the movie header's clock) as "YYYY-MM-DD HH:MM:SS". */
function macTime(seconds) {
  if (!seconds) return null;
  const d = new Date(Date.UTC(1904, 0, 1) + seconds * 1000);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().slice(0, 19).replace("T", " ");
}

const utf8 = (b, from, to) => new TextDecoder().decode(b.subarray(from, Math.max(from, to)));

/** QuickTime user data text: a length, a language, then the text. */
function udtaText(b, box) {
  if (box.body + 4 > box.end) return null;
  const len = (b[box.body] << 8) | b[box.body + 1];
  return utf8(b, box.body + 4, Math.min(box.end, box.body + 4 + len));
}

/** QuickTime metadata (`meta` with `keys` and `ilst`) as a map of key to text. */
function quicktimeKeys(b, meta) {
  const out = new Map();
  const keys = child(b, meta, "keys");
  const ilst = child(b, meta, "ilst");
  if (!keys || !ilst) return out;
  const names = [];
  let i = keys.body + 8;
  const count = Math.min(u32(b, keys.body + 4), MP4_MAX_BOXES);
  for (let k = 0; k < count && i + 8 <= keys.end; k++) {
    const size = u32(b, i);
    if (size < 8 || i + size > keys.end) break;
    names.push(utf8(b, i + 8, i + size));
    i += size;
  }
  for (const item of boxes(b, ilst.body, ilst.end)) {
    const index = u32(b, item.body - 4);
    const data = child(b, item, "data");
    // Text values only (type 1, UTF-8).
    if (data && data.body + 8 <= data.end && u32(b, data.body) === 1 && names[index - 1]) {
      out.set(names[index - 1], utf8(b, data.body + 8, data.end));
    }
  }
  return out;
}

/** Findings of an MP4 or MOV file's movie box, added to `out` with the helpers given. */
export async function videoFindings(blob, out, { gps, device, captureTime }) {
  const b = await movieBox(blob);
  if (!b) return;
  const moov = { body: 8, end: b.length };
  const udta = child(b, moov, "udta");
  if (udta) {
    const text = (name) => {
      const box = child(b, udta, name);
      return box ? udtaText(b, box) : null;
    };
    out.add("gps", gps(...iso6709(text("\u00a9xyz"))));
    out.add("device", device(text("\u00a9mak"), text("\u00a9mod")));
  }
  const meta = child(b, moov, "meta");
  if (meta) {
    const k = quicktimeKeys(b, meta);
    const q = (name) => k.get(`com.apple.quicktime.${name}`);
    out.add("gps", gps(...iso6709(q("location.ISO6709"))));
    out.add("device", device(q("make"), q("model")));
    out.add("software", q("software"));
    out.add("author", q("author"));
    out.add("capture_time", captureTime(q("creationdate")));
  }
  // The movie header's time, in UTC, when the metadata gave none (with
  // its offset, it is the better of the two).
  const mvhd = child(b, moov, "mvhd");
  if (mvhd && mvhd.body + 12 <= mvhd.end && !out.list.some((f) => f.kind === "capture_time")) {
    const v1 = b[mvhd.body] === 1;
    out.add("capture_time", macTime(v1 ? u32(b, mvhd.body + 4) * 2 ** 32 + u32(b, mvhd.body + 8) : u32(b, mvhd.body + 4)));
  }
}
