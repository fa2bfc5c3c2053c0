#!/usr/bin/env bash
# The desk at scale (issue 21). A vault with CASES cases (default 10,000,
# made by benches/small.rs) held by one intake lawyer, and one case with 50
# files (5 photos, 45 documents) sent with `custos submit`; then
# benches/desk.rs: the inbox index's fill, the inbox's first page and the
# 50-file case's page, over HTTP and in headless Chromium. The reference,
# from the same run: the CLI doing the same work, `custos cases` (which
# proves every case on each run) and `custos case show`.
# Usage: bench/desk.sh [CASES]. Prints a Markdown table on stdout (run.sh
# puts it in BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cases=${1:-10000}
cargo build --release --locked -q
cargo bench --locked --no-run -q --bench small --bench desk
bin=$root/target/release/custos

work=$(mktemp -d "${TMPDIR:-/var/tmp}/custos-desk-bench.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export CUSTOS_CONFIG_DIR=$work/config
now() { date +%s.%N; }
ms() { python3 -c "print(round(($2 - $1) * 1000))"; }
field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }

"$bin" keygen --name Admin --out admin --no-passphrase >/dev/null
"$bin" keygen --name Lawyer --out lawyer --no-passphrase >/dev/null
"$bin" init --data vault --origin bench.local/desk --admin admin.pub >/dev/null
CUSTOS_LOG=info "$bin" serve --data vault --listen 127.0.0.1:0 --stamp-bits 0 2>server.log &
server_pid=$!
for _ in $(seq 100); do
  grep -q "custos is serving" server.log 2>/dev/null && break
  sleep 0.1
done
addr=$(grep -o 'addr=[0-9.:]*' server.log | head -1 | cut -d= -f2)
export CUSTOS_SERVER=http://$addr
"$bin" --identity admin principal add lawyer.pub --role lawyer --intake >/dev/null

echo "making $cases cases..." >&2
(cd "$root" && cargo bench --locked -q --bench small -- "$cases") >&2
echo "On 3 May two officers beat me in room 12." > statement.txt
args=(--statement statement.txt)
for i in $(seq 5); do cp "$root/tests/desk/bruise.png" "photo-$i.png"; args+=(--evidence "photo-$i.png"); done
for i in $(seq 45); do head -c 20000 /dev/urandom > "document-$i.bin"; args+=(--evidence "document-$i.bin"); done
case_id=$("$bin" --json --quiet submit "${args[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["case_id"])')

t0=$(now); "$bin" --quiet --identity lawyer --json cases >/dev/null; t1=$(now)
cli_cases=$(ms "$t0" "$t1")
t0=$(now); "$bin" --quiet --identity lawyer --json case show "$case_id" >/dev/null; t1=$(now)
cli_show=$(ms "$t0" "$t1")

out=$(cd "$root" && CUSTOS_IDENTITY=$work/lawyer cargo bench --locked -q --bench desk -- "$case_id" | tee /dev/stderr)
echo "$out" >&2
index=$(echo "$out" | grep '^desk index'); inbox=$(echo "$out" | grep '^desk inbox '); deep=$(echo "$out" | grep '^desk inbox_page150')
search=$(echo "$out" | grep '^desk inbox_search'); casep=$(echo "$out" | grep '^desk case ')
total=$(( cases + 65 ))
cat <<MD
| the desk, ${total} cases | desk | reference | |
|---|---|---|---|
| inbox index, filled once at start (every case proven) | $(field "$index" fill_s) s | \`custos cases\` (proves every case on each run): ${cli_cases} ms | |
| inbox, first page of 50 rows | HTTP p50 $(field "$inbox" http_p50_ms) ms, p95 $(field "$inbox" http_p95_ms) ms; Chromium to load event $(field "$inbox" chromium_load_ms) ms | \`custos cases\`: ${cli_cases} ms | |
| inbox, page 150 sorted by activity | HTTP p50 $(field "$deep" http_p50_ms) ms | | |
| inbox, search by case number | HTTP p50 $(field "$search" http_p50_ms) ms | | |
| a case of $(field "$casep" files) files: first open (proofs, statement fetched and decrypted) | $(field "$casep" first_ms) ms | \`custos case show\`: ${cli_show} ms | |
| the same case, opened again | HTTP p50 $(field "$casep" http_p50_ms) ms, p95 $(field "$casep" http_p95_ms) ms; Chromium to load event $(field "$casep" chromium_load_ms) ms | | |
MD
