// The short form of web/fuzz.mjs, with a fixed seed, in every test run:
// mutated files never make the page's reader throw, its cleaners throw
// only CannotClean, and a cleaned copy says nothing the reader can find.
// The long form (`node fuzz.mjs 600`) is run by hand; fuzz/README.md says so.
import { test } from "node:test";
import assert from "node:assert/strict";

import { check, mutate, rng, seeds } from "../fuzz.mjs";

test("mutated files: no throw from the reader, only CannotClean from the cleaners, nothing left in a cleaned copy", async () => {
  const r = rng(20261201);
  const corpus = seeds();
  for (const s of corpus) assert.equal(await check(s), null, "a seed itself fails");
  for (let run = 0; run < 400; run++) {
    const input = mutate(corpus[r(corpus.length)], r);
    assert.equal(await check(input), null, `run ${run}`);
  }
});

test("the checker reports a cleaned copy that still says where it was made", async () => {
  // check() must be able to fail: a "cleaner" that hands back the file
  // as it is leaves the GPS in, and is reported.
  const why = await check(seeds()[0], async (blob) => blob);
  assert.match(why ?? "", /the cleaned copy still says .*gps/);
});
