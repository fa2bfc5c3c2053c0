#!/usr/bin/env bash
# Schema fuzzing: schemathesis (from PyPI, pinned, in a venv under target/)
# generates requests from /v1/openapi.json of a live vault and fails on
# any 5xx answer. The vault is a fresh one in a temporary folder, served by
# the debug build on a free loopback port, stopped when the script ends.
# Most operations need an RFC 9421 signature that schemathesis cannot
# make, so those are exercised up to and including signature parsing; the
# in-process fuzz target fuzz/fuzz_targets/http.rs signs its requests and
# goes further.
#
# Usage: bash tests/schemathesis/run.sh [EXAMPLES_PER_OPERATION] (default 200)
set -euo pipefail
cd "$(dirname "$0")/../.."
EXAMPLES=${1:-200}
VENV=target/schemathesis-venv
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
cargo build --locked --quiet
BIN=target/debug/custos

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" keygen --name "Schema Admin" --out "$WORK/admin" --no-passphrase > /dev/null
"$BIN" init --data "$WORK/vault" --origin schemathesis.custos.example/log --admin "$WORK/admin.pub" > /dev/null
CUSTOS_LOG=info "$BIN" serve --data "$WORK/vault" --listen 127.0.0.1:0 --stamp-bits 0 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q "custos is serving" "$WORK/server.log" && break
  sleep 0.1
done
ADDR=$(grep -o 'addr=[0-9.:]*' "$WORK/server.log" | head -1 | cut -d= -f2)
[ -n "$ADDR" ] || { cat "$WORK/server.log"; echo "the vault did not start" >&2; exit 1; }
echo "schemathesis against http://$ADDR/v1/openapi.json, $EXAMPLES examples per operation"

status=0
# One worker: several threads trip a CPython 3.11.7 bug in ast.parse
# ("AST constructor recursion depth mismatch") inside hypothesis.
PYTHONPATH=tests/schemathesis SCHEMATHESIS_HOOKS=hooks "$VENV/bin/st" run "http://$ADDR/v1/openapi.json" \
  --checks not_a_server_error \
  --max-examples "$EXAMPLES" \
  --seed 20261123 \
  --workers 1 \
  --request-timeout 30 \
  --warnings off \
  --no-color || status=$?

if grep -q -E "panicked|ERROR" "$WORK/server.log"; then
  grep -E "panicked|ERROR" "$WORK/server.log" | head -20
  echo "the vault logged errors under schemathesis" >&2
  status=1
fi
kill -0 "$SERVER_PID" 2>/dev/null || { echo "the vault died under schemathesis" >&2; status=1; }
exit $status
