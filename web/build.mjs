// Build the page's one script into crates/server/src/web/app.js, which cargo embeds, so
// that `cargo build` never needs Node. The output is reproducible: esbuild is
// pinned in package-lock.json and nothing here depends on time or paths.
// `node build.mjs --check` rebuilds in memory and fails if the committed
// file differs (CI runs it).
import { readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const OUT = new URL("../crates/server/src/web/app.js", import.meta.url);
const BANNER =
  "// custos submitter page script. Generated from web/src by `npm run build` " +
  "(web/build.mjs); do not edit. Third-party licences are at the end.";

const result = await build({
  entryPoints: [new URL("src/main.js", import.meta.url).pathname],
  absWorkingDir: new URL(".", import.meta.url).pathname,
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  banner: { js: BANNER },
  write: false,
  logLevel: "warning",
});
const code = result.outputFiles[0].text;

if (process.argv.includes("--check")) {
  const committed = readFileSync(OUT, "utf8");
  if (committed !== code) {
    console.error("crates/server/src/web/app.js differs from a fresh build of web/src: run `npm ci && npm run build` in web/ and commit");
    process.exit(1);
  }
  console.log(`crates/server/src/web/app.js matches a fresh build (${code.length} bytes)`);
} else {
  writeFileSync(OUT, code);
  console.log(`wrote crates/server/src/web/app.js (${code.length} bytes)`);
}
