#!/usr/bin/env bash
# custos benchmarks. Each figure is printed next to a reference measured in
# the same run on the same machine, as a ratio, and the table is written to
# BENCHMARKS.md:
#   ingest    custos submit of a file to a local vault, durable, against
#             dd ... conv=fdatasync of the same file            (target >= 0.8x)
#   retrieve  custos get (download, verify, decrypt) against the Go age
#             CLI decrypting the same ciphertext from disk       (target >= 0.9x)
#   memory    the server's peak resident memory during uploads of
#             256 MiB, 1 GiB and 4 GiB             (4 GiB within 10% of 256 MiB)
#   small     case creations per second with a 2 KiB statement from 16
#             concurrent clients, p50/p99 latency (benches/small.rs), against
#             synchronous 2 KiB writes per second on the same disk, `dd
#             oflag=dsync`                        (target 500/s, p99 < 100 ms)
#   log       audit speed over 1,000,000 events against SHA-256 hashing of
#             the same bytes and against this machine's Ed25519 batch rate
#             over the same signatures (target >= 0.8x); an incremental
#             audit of 10,000 new events through the CLI against a live
#             vault (target <= 2 s); inclusion and consistency proof times
#             at that size (benches/log.rs)  (targets 200,000 events/s, < 1 ms)
#   backup    at that size: how long writes wait while a backup's snapshot
#             is cut; the backup file against a plain copy of sled's files;
#             the restore with its full audit against the audit alone
#   desk      bench/desk.sh: the desk's inbox index over 10,000 cases, its
#             first page and a 50-file case's page (HTTP and Chromium),
#             against the CLI's `cases` and `case show`
#   s3        chunks on a three-node Garage cluster on this machine
#             (tests/garage/cluster.sh: replication 3, fsync on): custos
#             submit of the file into a vault on it, against a plain S3 PUT
#             of the same bytes to the same cluster (bench/s3-put.sh),
#             S3_ROUNDS pairs (default 3), the median kept (target >= 0.8x);
#             the server's peak memory with a 4 GiB upload against a
#             256 MiB one                              (within 10%)
# Usage: bench/run.sh [SIZE_MIB] [SECTIONS]
#   SIZE_MIB  the ingest and retrieve file (default 1024; the memory runs
#             are fixed)
#   SECTIONS  a comma-separated subset of ingest,memory,small,log,desk,s3 to
#             repeat a few rows (default: all). Only a run of all of them
#             writes BENCHMARKS.md; a partial run prints its rows.
# Installs the Go age CLI (Debian package `age`) if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
size_mib=${1:-1024}
all_sections=ingest,memory,small,log,desk,s3
sections=${2:-$all_sections}
want() { [[ ",$sections," == *",$1,"* ]]; }
for s in ${sections//,/ }; do
  case $s in ingest|memory|small|log|desk|s3) ;; *) echo "unknown section: $s" >&2; exit 2 ;; esac
done

if ! command -v age >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q age >/dev/null
fi
cargo build --release --locked -q
cargo bench --locked --no-run -q --bench small --bench log
bin=$root/target/release/custos

work=$(mktemp -d "${TMPDIR:-/var/tmp}/custos-bench.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -f "$work/garage/env" ] && bash "$root/tests/garage/cluster.sh" stop "$work/garage" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export CUSTOS_CONFIG_DIR=$work/config

now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
secs() { calc "$2 - $1"; }
ratio() { printf '%.2f' "$(calc "$1 / $2")"; }
mib_s() { printf '%.0f' "$(calc "$1 / $2")"; }

# A fresh vault with an admin and an intake lawyer; the server on a free
# port, its log in server.log, with the serve flags given (its chunk
# store). Proof of work at its minimum: this measures the server, and the
# stamp's cost is the client's (see web/bench.mjs).
start_vault() {
  rm -rf vault config admin* lawyer* server.log
  "$bin" keygen --name Admin --out admin --no-passphrase >/dev/null
  "$bin" keygen --name Lawyer --out lawyer --no-passphrase >/dev/null
  "$bin" init --data vault --origin bench.local/log --admin admin.pub >/dev/null
  CUSTOS_LOG=info "$bin" serve --data vault --listen 127.0.0.1:0 --stamp-bits 0 "$@" 2>server.log &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q "custos is serving" server.log 2>/dev/null && break
    sleep 0.1
  done
  local addr
  addr=$(grep -o 'addr=[0-9.:]*' server.log | head -1 | cut -d= -f2)
  export CUSTOS_SERVER=http://$addr
  "$bin" --identity admin principal add lawyer.pub --role lawyer --intake >/dev/null
}
stop_vault() {
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}
peak_rss_mib() { echo $(( $(grep VmHWM "/proc/$server_pid/status" | awk '{print $2}') / 1024 )); }

echo "statement" > statement.txt
if want ingest; then
echo "== ingest and retrieve, ${size_mib} MiB"
dd if=/dev/urandom of=evidence.bin bs=1M count="$size_mib" status=none
start_vault

# Each timed step starts with no writeback pending from the one before.
sync
t0=$(now); dd if=evidence.bin of=dd.out bs=1M conv=fdatasync status=none; t1=$(now)
t_dd=$(secs "$t0" "$t1"); rm -f dd.out
sync
t0=$(now)
case_id=$("$bin" --json --quiet submit --statement statement.txt --evidence evidence.bin --receipt receipt.json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["case_id"])')
t1=$(now); t_submit=$(secs "$t0" "$t1")

t0=$(now); "$bin" --quiet --identity lawyer get "$case_id" --out got >/dev/null; t1=$(now)
t_get=$(secs "$t0" "$t1")
cmp -s got/evidence.bin evidence.bin || { echo "retrieved file differs" >&2; exit 1; }

# The same ciphertext for the age CLI: the lawyer's export bundle holds it,
# and the case key comes from the lawyer's envelope in the case's first event.
"$bin" --quiet --identity lawyer export "$case_id" --out bundle >/dev/null
grep '^age: ' lawyer | cut -c6- > lawyer.agekey
python3 - "$case_id" lawyer.pub <<'PY' > envelope.age
import base64, glob, hashlib, json, sys
card = open(sys.argv[2]).read().split()
key_id = hashlib.sha256(b"custos key id\n" + base64.b64decode(card[1])).hexdigest()[:16]
for path in sorted(glob.glob("bundle/events/*.json")):
    event = json.load(open(path))
    if event["case"] == sys.argv[1] and event["action"] == "case_created":
        body = json.loads(base64.b64decode(event["request"]["body"]))
        env = next(e for e in body["envelopes"] if e["key_id"] == key_id)
        sys.stdout.buffer.write(base64.b64decode(env["envelope"]))
PY
age -d -i lawyer.agekey envelope.age > case.agekey
object=$(ls -S bundle/objects | head -1)
t0=$(now); age -d -i case.agekey "bundle/objects/$object" > age.out; t1=$(now)
t_age=$(secs "$t0" "$t1")
cmp -s age.out evidence.bin || { echo "age decrypted something else" >&2; exit 1; }
rm -rf got age.out bundle
stop_vault

ingest_ratio=$(ratio "$t_dd" "$t_submit")
retrieve_ratio=$(ratio "$t_age" "$t_get")
printf 'ingest    custos submit %6.2f s (%s MiB/s)   dd conv=fdatasync %6.2f s (%s MiB/s)   ratio %sx\n' \
  "$t_submit" "$(mib_s "$size_mib" "$t_submit")" "$t_dd" "$(mib_s "$size_mib" "$t_dd")" "$ingest_ratio"
printf 'retrieve  custos get    %6.2f s (%s MiB/s)   age -d            %6.2f s (%s MiB/s)   ratio %sx\n' \
  "$t_get" "$(mib_s "$size_mib" "$t_get")" "$t_age" "$(mib_s "$size_mib" "$t_age")" "$retrieve_ratio"

fi

if want memory; then
echo "== server peak memory during one upload"
declare -A rss
# Each size twice, keeping the higher peak: the server's memory settles at
# a level a short upload does not always reach (allocator and sled buffers),
# and the highest peak is the one to plan for.
for mib in 256 1024 4096; do
  dd if=/dev/urandom of=evidence.bin bs=1M count="$mib" status=none
  rss[$mib]=0
  for _ in 1 2; do
    start_vault
    "$bin" --quiet submit --statement statement.txt --evidence evidence.bin --receipt receipt.json >/dev/null
    peak=$(peak_rss_mib)
    stop_vault
    [ "$peak" -gt "${rss[$mib]}" ] && rss[$mib]=$peak
  done
  printf 'memory    %5s MiB upload: server peak RSS %s MiB (higher of two runs)\n' "$mib" "${rss[$mib]}"
done
rm -f evidence.bin
growth=$(printf '%.1f' "$(calc "(${rss[4096]} - ${rss[256]}) * 100 / ${rss[256]}")")
echo "memory    4 GiB against 256 MiB: ${growth}%"

fi

if want small; then
echo "== small submissions, 16 concurrent clients"
start_vault
sync
t0=$(now); dd if=/dev/zero of=sync.out bs=2k count=500 oflag=dsync status=none; t1=$(now)
sync_rate=$(printf '%.0f' "$(calc "500 / ($t1 - $t0)")"); rm -f sync.out
small=$(cd "$root" && cargo bench --locked -q --bench small -- 2000)
stop_vault
field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
small_rate=$(field "$small" rate); p50=$(field "$small" p50_ms); p99=$(field "$small" p99_ms)
# Four durable requests per submission, for the timed ones and the warm-up.
requests=$(( 4 * ($(field "$small" cases) + $(field "$small" warmup)) ))
flushes=$(grep -o 'flushes=[0-9]*' server.log | cut -d= -f2)
per_flush=$(printf '%.1f' "$(calc "$requests / $flushes")")
req_rate=$(printf '%.0f' "$(calc "4 * $small_rate")")
small_ratio=$(ratio "$req_rate" "$sync_rate")
printf 'small     %s cases/s (%s durable requests/s), p50 %s ms, p99 %s ms, %s requests per flush   dd oflag=dsync %s writes/s   ratio %sx\n' \
  "$small_rate" "$req_rate" "$p50" "$p99" "$per_flush" "$sync_rate" "$small_ratio"

fi

if want log; then
echo "== custody log, 1,000,000 events"
sync
log=$(cd "$root" && cargo bench --locked -q --bench log -- 1000000 "$work")
echo "$log"
audit_line=$(echo "$log" | grep '^log audit'); incl=$(echo "$log" | grep '^log inclusion')
cons=$(echo "$log" | grep '^log consistency'); wline=$(echo "$log" | grep '^log write')
audit_rate=$(field "$audit_line" rate); hash_rate=$(field "$audit_line" hash_rate)
audit_ratio=$(ratio "$audit_rate" "$hash_rate")
batch_rate=$(field "$audit_line" batch_rate); single_rate=$(field "$audit_line" single_rate)
exact_rate=$(field "$audit_line" exact_batch_rate); batch_ratio=$(ratio "$audit_rate" "$batch_rate")
iline=$(echo "$log" | grep '^log incremental'); inc_secs=$(field "$iline" secs)
inc_full=$(field "$iline" full_cli_secs); state_mib=$(calc "round($(field "$iline" state_bytes) / 1048576, 1)")
incl_make=$(field "$incl" make_us); incl_verify=$(field "$incl" verify_us)
cons_make=$(field "$cons" make_us); cons_verify=$(field "$cons" verify_us)
write_rate=$(field "$wline" rate)
sig_us=$(field "$(echo "$log" | grep '^log signature')" verify_us)
bline=$(echo "$log" | grep '^backup events'); rline=$(echo "$log" | grep '^backup restore')
held_ms=$(field "$bline" held_ms); snapshot_ms=$(field "$bline" snapshot_ms); backup_mib=$(( $(field "$bline" bytes) / 1048576 ))
backup_rate=$(field "$bline" rate_mib_s); copy_rate=$(field "$bline" copy_rate_mib_s)
backup_ratio=$(field "$bline" ratio); restore_rate=$(field "$rline" rate)
restore_ratio=$(ratio "$restore_rate" "$audit_rate")

fi

if want desk; then
echo "== the desk, 10,000 cases"
desk_table=$(bash "$root/bench/desk.sh" 10000)
echo "$desk_table"

fi

if want s3; then
echo "== chunks on a three-node Garage cluster, ${size_mib} MiB"
garage_bin=$(bash "$root/tests/garage/ensure-garage.sh")
export PATH=$(dirname "$garage_bin"):$PATH
# A fresh cluster, and the serve flags that put a vault's chunks in it.
start_garage() {
  [ -f garage/env ] && bash "$root/tests/garage/cluster.sh" stop garage >/dev/null
  rm -rf garage
  bash "$root/tests/garage/cluster.sh" start garage >/dev/null
  s3_endpoint=$(grep '^S3_ENDPOINT=' garage/env | cut -d= -f2)
  s3_bucket=$(grep '^S3_BUCKET=' garage/env | cut -d= -f2)
  s3_region=$(grep '^S3_REGION=' garage/env | cut -d= -f2)
  s3_flags=(--storage s3 --s3-endpoint "$s3_endpoint" --s3-bucket "$s3_bucket" --s3-region "$s3_region"
    --s3-credentials-file "$work/garage/credentials.toml")
}
dd if=/dev/urandom of=evidence.bin bs=1M count="$size_mib" status=none
# The PUT and the submit take turns, each on a fresh cluster, S3_ROUNDS
# times (default 3): one pair swung from 0.57x to 0.95x between runs on
# this shared disk. The row is the round with the median ratio.
s3_rounds=()
for round in $(seq "${S3_ROUNDS:-3}"); do
  start_garage
  sync
  t_put=$(bash "$root/bench/s3-put.sh" "$s3_endpoint" "$s3_bucket" "$s3_region" garage/credentials.toml evidence.bin)
  start_garage
  start_vault "${s3_flags[@]}"
  sync
  t0=$(now)
  "$bin" --quiet submit --statement statement.txt --evidence evidence.bin --receipt receipt.json >/dev/null
  t1=$(now); t_s3_submit=$(secs "$t0" "$t1")
  stop_vault
  s3_ratio=$(ratio "$t_put" "$t_s3_submit")
  printf 's3        round %s: custos submit %6.2f s (%s MiB/s)   S3 PUT to the same cluster %6.2f s (%s MiB/s)   ratio %sx\n' \
    "$round" "$t_s3_submit" "$(mib_s "$size_mib" "$t_s3_submit")" "$t_put" "$(mib_s "$size_mib" "$t_put")" "$s3_ratio"
  s3_rounds+=("$s3_ratio $t_s3_submit $t_put")
done
read -r s3_ratio t_s3_submit t_put < <(printf '%s\n' "${s3_rounds[@]}" | sort -n | sed -n "$(( (${#s3_rounds[@]} + 1) / 2 ))p")
echo "s3        median round: ratio ${s3_ratio}x"
# Memory: a fresh cluster for each upload (three copies of 4 GiB each
# time would fill a small disk); one run each, for a 4 GiB upload into
# the cluster takes minutes here.
declare -A s3_rss
for mib in 256 4096; do
  dd if=/dev/urandom of=evidence.bin bs=1M count="$mib" status=none
  s3_rss[$mib]=0
  for _ in 1; do
    start_garage
    start_vault "${s3_flags[@]}"
    "$bin" --quiet submit --statement statement.txt --evidence evidence.bin --receipt receipt.json >/dev/null
    peak=$(peak_rss_mib)
    stop_vault
    [ "$peak" -gt "${s3_rss[$mib]}" ] && s3_rss[$mib]=$peak
  done
  printf 's3        %5s MiB upload: server peak RSS %s MiB\n' "$mib" "${s3_rss[$mib]}"
done
bash "$root/tests/garage/cluster.sh" stop garage >/dev/null
rm -rf garage evidence.bin
s3_growth=$(printf '%.1f' "$(calc "(${s3_rss[4096]} - ${s3_rss[256]}) * 100 / ${s3_rss[256]}")")
echo "s3        4 GiB against 256 MiB: ${s3_growth}%"

fi

if [ "$sections" != "$all_sections" ]; then
  echo "a partial run ($sections): BENCHMARKS.md left as it was"
  exit 0
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cat > "$root/BENCHMARKS.md" <<MD
# Benchmarks

Written by \`bench/run.sh\` on $(date -u +%Y-%m-%d): $(nproc) cores ($cpu),
$(( $(grep MemTotal /proc/meminfo | awk '{print $2}') / 1024 / 1024 )) GiB,
custos $(git -C "$root" rev-parse --short HEAD), release build, vault and
client on the same machine over loopback. Each figure is a ratio against a
reference measured in the same run.

| benchmark | custos | reference | ratio | target |
|---|---|---|---|---|
| ingest, ${size_mib} MiB, durable | \`submit\` $(printf '%.2f' "$t_submit") s | \`dd conv=fdatasync\` $(printf '%.2f' "$t_dd") s | ${ingest_ratio}x | >= 0.8x |
| retrieve, ${size_mib} MiB | \`get\` $(printf '%.2f' "$t_get") s | Go \`age -d\` $(printf '%.2f' "$t_age") s | ${retrieve_ratio}x | >= 0.9x |
| server peak RSS, 256 MiB upload (higher of two runs) | ${rss[256]} MiB | | | |
| server peak RSS, 1 GiB upload | ${rss[1024]} MiB | | | |
| server peak RSS, 4 GiB upload | ${rss[4096]} MiB | 256 MiB run | +${growth}% | within 10% |
| small: case creations, 2 KiB statement, 16 clients | ${small_rate}/s, p50 ${p50} ms, p99 ${p99} ms | | | 500/s, p99 < 100 ms |
| small: durable requests (4 per case) | ${req_rate}/s, ${per_flush} per flush | \`dd oflag=dsync\` 2 KiB: ${sync_rate} writes/s | ${small_ratio}x | |
| log: audit of 1,000,000 events | ${audit_rate} events/s | SHA-256 leaf hashing: ${hash_rate} events/s | ${audit_ratio}x | 200,000 events/s |
| log: the audit's signatures against this machine's Ed25519 rates, all cores | ${audit_rate} events/s | \`verify_batch\` ${batch_rate}/s (one by one ${single_rate}/s, batch with each R checked ${exact_rate}/s) | ${batch_ratio}x | >= 0.8x |
| log: incremental audit, 10,000 new events on 1,000,000, \`custos audit --state\` end to end | ${inc_secs} s (state file ${state_mib} MiB) | the full audit through the CLI: ${inc_full} s | | <= 2 s |
| log: one stored request's Ed25519 check | ${sig_us} µs | | | |
| log: inclusion proof at 1,000,000 | make ${incl_make} µs, verify ${incl_verify} µs | | | < 1 ms |
| log: consistency proof at 1,000,000 | make ${cons_make} µs, verify ${cons_verify} µs | | | < 1 ms |
| log: append through the store (10,000 per batch) | ${write_rate} events/s | | | |
| backup at 1,000,000 events: writes held while the snapshot is cut | ${held_ms} ms (the whole snapshot ${snapshot_ms} ms) | | | |
| backup at 1,000,000 events: the file, ${backup_mib} MiB | ${backup_rate} MiB/s | copy of sled's files: ${copy_rate} MiB/s | ${backup_ratio}x | |
| restore at 1,000,000 events, with the full audit | ${restore_rate} events/s | the audit alone: ${audit_rate} events/s | ${restore_ratio}x | |
| S3: ingest, ${size_mib} MiB, into a vault whose chunks are on three Garage nodes | \`submit\` $(printf '%.2f' "$t_s3_submit") s | plain S3 PUT of the same bytes: $(printf '%.2f' "$t_put") s | ${s3_ratio}x | >= 0.8x |
| S3: server peak RSS, 4 GiB upload | ${s3_rss[4096]} MiB | 256 MiB run: ${s3_rss[256]} MiB | +${s3_growth}% | within 10% |

The desk (\`bench/desk.sh\`): its own vault, with cases made by
\`benches/small.rs\` and one case of 50 files and a statement; the desk's
times (\`benches/desk.rs\`) beside the CLI doing the same work.

$desk_table

bench/README.md says what each row measures, which targets are missed, by
how much and why, and what would close them.
MD
echo "wrote BENCHMARKS.md"
