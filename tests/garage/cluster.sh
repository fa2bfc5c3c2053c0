#!/usr/bin/env bash
# A three-node Garage cluster on 127.0.0.1 for the S3 tests and the bench:
# the shape of deploy/garage/ (three zones, three copies, fsync on), shrunk
# onto one machine.
#
#   cluster.sh start DIR      start three nodes, wait until the cluster is
#                             healthy, create the bucket and a key; print the
#                             nodes' pids; write DIR/env and
#                             DIR/credentials.toml (0600)
#   cluster.sh kill DIR N     SIGKILL node N (1..3), as a crash would, and
#                             make the others notice at once
#   cluster.sh restart DIR N  start node N again on its own config and ports
#                             and wait until every running node sees it
#   cluster.sh stop DIR       SIGKILL every node; idempotent
#
# The nodes are daemons: they outlive this script, so whoever starts a
# cluster must stop it (the Rust tests also kill the pids in DIR/env when
# dropped). With GARAGE_CLUSTER_OWNER_PID set, `start` also leaves a small
# watcher that stops the cluster once that process is gone, for a caller
# that dies before it can clean up.
#
# Needs python3 (ports, the secret, JSON) and curl (the nodes' /health).
#
# DIR/env holds KEY=value lines, no quoting needed: S3_ENDPOINT (node 1),
# S3_ENDPOINTS (all three, comma-separated), S3_REGION, S3_BUCKET,
# GARAGE_BIN, and NODE<N>_PID, NODE<N>_CONFIG, NODE<N>_S3, NODE<N>_ADMIN and
# NODE<N>_ID (ID@ADDRESS for `garage node connect`) for each node; `restart`
# rewrites NODE<N>_PID.
set -euo pipefail

region=garage
bucket=custos-chunks
nodes=(1 2 3)
# How many times to look (a tenth of a second apart, plus the look itself)
# for a node or the cluster before giving up: a minute or more. Startup
# takes a few seconds; the margin is for a loaded CI machine.
patience=600
here=$(cd "$(dirname "$0")" && pwd)

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

usage() {
  die "usage: cluster.sh start DIR | stop DIR | kill DIR N | restart DIR N"
}

# The pid recorded for node N, if that process is still a running garage on
# N's config: a recycled pid is never signalled, and a zombie (a killed node
# whose reaper has not yet collected it) counts as gone.
live_pid() {
  local pidfile=$dir/n$1/pid pid state
  [ -f "$pidfile" ] || return 1
  pid=$(<"$pidfile")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/n$1/garage.toml" || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  echo "$pid"
}

kill_node() {
  local pid
  pid=$(live_pid "$1") || return 0
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq "$patience"); do
    live_pid "$1" >/dev/null || return 0
    sleep 0.1
  done
  die "node $1 (pid $pid) did not die on SIGKILL"
}

# Make every running node drop its connection to the dead node N now. A
# killed node's peers keep its connection until they next write to it and
# refuse to dial it again meanwhile, so a restarted node could wait up to
# half a minute to count as up. A request through the peer to N writes
# to the dead socket (the first write draws a reset, the second fails):
# two of them close it at once.
forget() {
  local n=$1 m id request
  id=$(get "NODE${n}_ID")
  request="{\"node\": \"${id%@*}\", \"body\": null}"
  for m in "${nodes[@]}"; do
    if [ "$m" = "$n" ] || ! live_pid "$m" >/dev/null; then continue; fi
    for _ in 1 2 3; do
      garage_on "$m" json-api GetNodeInfo "$request" >/dev/null 2>&1 &
      sleep 0.2
      garage_on "$m" json-api GetNodeInfo "$request" 2>&1 | grep -q "Not connected" && break
    done
  done
  wait
}

# The garage CLI, talking over RPC to node N.
garage_on() {
  local n=$1
  shift
  "$garage" -c "$dir/n$n/garage.toml" "$@"
}

show_log() {
  echo "--- last lines of $dir/n$1/log:" >&2
  tail -n 20 "$dir/n$1/log" >&2 || true
}

# Start node N's daemon in the background, detached from our stdio so a
# caller that reads our output to its end is not kept waiting by the nodes.
launch() {
  local n=$1
  live_pid "$n" >/dev/null && die "node $n is already running"
  "$garage" -c "$dir/n$n/garage.toml" server </dev/null >>"$dir/n$n/log" 2>&1 &
  echo $! >"$dir/n$n/pid"
}

# Wait until node N serves its admin API (any answer to /health: it says
# 503 while the cluster lacks a quorum, which is still an answer).
wait_serving() {
  local n=$1 admin code
  admin=$(get "NODE${n}_ADMIN")
  for _ in $(seq "$patience"); do
    live_pid "$n" >/dev/null || { show_log "$n"; die "node $n exited while starting"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "$admin/health" || true)
    case $code in 200 | 503) return 0 ;; esac
    sleep 0.1
  done
  show_log "$n"
  die "node $n did not answer on $admin"
}

# A field of GetClusterHealth as node N sees it.
health_field() {
  garage_on "$1" json-api GetClusterHealth 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# Wait until every running node is connected to every other running node
# and each has a write quorum for every partition: after `start`, all three
# are up and the status is "healthy"; after a restart with another node
# still down it is "degraded", which is as good as the cluster can be then.
wait_connected() {
  local running=() n ok
  for n in "${nodes[@]}"; do live_pid "$n" >/dev/null && running+=("$n"); done
  for _ in $(seq "$patience"); do
    ok=1
    for n in "${running[@]}"; do
      if [ "$(health_field "$n" storageNodesUp || true)" != "${#running[@]}" ] ||
        [ "$(health_field "$n" status || true)" = unavailable ]; then
        ok=0
        break
      fi
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  for n in "${running[@]}"; do
    echo "node $n: $(garage_on "$n" json-api GetClusterHealth 2>&1 | tr -d '\n')" >&2
  done
  die "the running nodes (${running[*]}) did not all see each other"
}

# A value from DIR/env.
get() {
  sed -n "s/^$1=//p" "$dir/env" | tail -n 1
}

# Replace (or add) KEY=value in DIR/env.
set_env() {
  local tmp=$dir/env.tmp
  { grep -v "^$1=" "$dir/env" || true; echo "$1=$2"; } >"$tmp"
  mv "$tmp" "$dir/env"
}

# Nine distinct free ports on 127.0.0.1: all bound at once so none repeats,
# then released for Garage to bind.
free_ports() {
  python3 -c '
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
'
}

write_config() {
  local n=$1 rpc=$2 s3=$3 admin=$4
  # The same durability choices as deploy/garage/garage.toml.example, so the
  # tests exercise what an operator runs.
  cat >"$dir/n$n/garage.toml" <<EOF
metadata_dir = "$dir/n$n/meta"
data_dir = "$dir/n$n/data"
db_engine = "lmdb"
metadata_fsync = true
data_fsync = true
replication_factor = 3
consistency_mode = "consistent"
# custos stores ciphertext, which does not compress.
compression_level = "none"
rpc_secret_file = "$dir/rpc_secret"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"

[s3_api]
api_bind_addr = "127.0.0.1:$s3"
s3_region = "$region"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
}

start() {
  [ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 0700 "$dir"
  garage=$("$here/ensure-garage.sh")
  # Whatever goes wrong from here on, no node is left running.
  started=0
  trap '[ "$started" = 1 ] || for n in "${nodes[@]}"; do kill_node "$n"; done' EXIT

  (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >"$dir/rpc_secret")
  local ports
  read -r -a ports <<<"$(free_ports)"
  : >"$dir/env"
  local n i endpoints=()
  for n in "${nodes[@]}"; do
    i=$(((n - 1) * 3))
    mkdir -p "$dir/n$n/meta" "$dir/n$n/data"
    write_config "$n" "${ports[i]}" "${ports[i + 1]}" "${ports[i + 2]}"
    set_env "NODE${n}_CONFIG" "$dir/n$n/garage.toml"
    set_env "NODE${n}_S3" "http://127.0.0.1:${ports[i + 1]}"
    set_env "NODE${n}_ADMIN" "http://127.0.0.1:${ports[i + 2]}"
    endpoints+=("http://127.0.0.1:${ports[i + 1]}")
  done
  set_env GARAGE_BIN "$garage"
  set_env S3_REGION "$region"
  set_env S3_BUCKET "$bucket"
  set_env S3_ENDPOINTS "$(IFS=,; echo "${endpoints[*]}")"
  set_env S3_ENDPOINT "${endpoints[0]}"

  for n in "${nodes[@]}"; do launch "$n"; done
  for n in "${nodes[@]}"; do
    wait_serving "$n"
    set_env "NODE${n}_PID" "$(<"$dir/n$n/pid")"
  done

  # Each node made its key on first start; node 1 dials the other two
  # (and 2 dials 3), then every pair is connected.
  local ids=()
  for n in "${nodes[@]}"; do
    ids[n]=$(garage_on "$n" node id -q 2>/dev/null)
    set_env "NODE${n}_ID" "${ids[n]}"
  done
  garage_on 1 node connect "${ids[2]}" >/dev/null
  garage_on 1 node connect "${ids[3]}" >/dev/null
  garage_on 2 node connect "${ids[3]}" >/dev/null

  # One zone per node, as the three sites of deploy/garage/: with three
  # copies, Garage then puts one on each node. The capacity is only a weight.
  for n in "${nodes[@]}"; do
    garage_on 1 layout assign -z "zone$n" -c 1GB "${ids[n]%@*}" >/dev/null
  done
  garage_on 1 layout apply --version 1 >/dev/null
  wait_connected
  for n in "${nodes[@]}"; do
    for _ in $(seq "$patience"); do
      [ "$(health_field "$n" status || true)" = healthy ] && break
      sleep 0.1
    done
    [ "$(health_field "$n" status || true)" = healthy ] || die "node $n never saw the cluster healthy"
  done

  garage_on 1 bucket create "$bucket" >/dev/null
  local key
  key=$(garage_on 1 json-api CreateKey '{"name": "custos-tests"}')
  # Read and write, no owner: custos only puts, gets, lists and deletes
  # objects, never reconfigures or deletes the bucket.
  garage_on 1 bucket allow --read --write "$bucket" \
    --key "$(python3 -c 'import json, sys; print(json.load(sys.stdin)["accessKeyId"])' <<<"$key")" >/dev/null
  (
    umask 077
    python3 -c '
import json, sys
key = json.load(sys.stdin)
print("access_key_id = \"%s\"" % key["accessKeyId"])
print("secret_access_key = \"%s\"" % key["secretAccessKey"])
' <<<"$key" >"$dir/credentials.toml"
  )
  chmod 0600 "$dir/credentials.toml"

  if [ -n "${GARAGE_CLUSTER_OWNER_PID:-}" ]; then
    local owner=$GARAGE_CLUSTER_OWNER_PID
    (
      while kill -0 "$owner" 2>/dev/null; do sleep 1; done
      "$here/cluster.sh" stop "$dir"
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watcher.pid"
  fi
  started=1
  for n in "${nodes[@]}"; do get "NODE${n}_PID"; done
}

stop() {
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local n watcher
  for n in "${nodes[@]}"; do kill_node "$n"; done
  if [ -f "$dir/watcher.pid" ]; then
    watcher=$(<"$dir/watcher.pid")
    # The watcher runs this very command when its owner is gone (as our
    # parent, or as this very process when bash execs its last command).
    if [ "$watcher" != "$$" ] && [ "$watcher" != "$PPID" ]; then
      kill "$watcher" 2>/dev/null || true
    fi
    rm -f "$dir/watcher.pid"
  fi
}

node_arg() {
  case ${1:-} in 1 | 2 | 3) ;; *) usage ;; esac
  [ -f "$dir/env" ] || die "no cluster in $dir (no $dir/env)"
  dir=$(cd "$dir" && pwd)
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
case $cmd in
  start)
    [ $# -eq 2 ] || usage
    start
    ;;
  stop)
    [ $# -eq 2 ] || usage
    stop
    ;;
  kill)
    [ $# -eq 3 ] || usage
    node_arg "$3"
    garage=$(get GARAGE_BIN)
    kill_node "$3"
    forget "$3"
    ;;
  restart)
    [ $# -eq 3 ] || usage
    node_arg "$3"
    garage=$(get GARAGE_BIN)
    # Every node down, not only this one: a peer that still counts a dead
    # node as up never reaches the count wait_connected waits for.
    for n in "${nodes[@]}"; do live_pid "$n" >/dev/null || forget "$n"; done
    launch "$3"
    wait_serving "$3"
    set_env "NODE${3}_PID" "$(<"$dir/n$3/pid")"
    # The restarted node dials the others, but they may not dial back before
    # their next round (every few seconds); told to connect, they do so now.
    for n in "${nodes[@]}"; do
      if [ "$n" = "$3" ] || ! live_pid "$n" >/dev/null; then continue; fi
      garage_on "$n" node connect "$(get "NODE${3}_ID")" >/dev/null 2>&1 || true
    done
    wait_connected
    ;;
  *) usage ;;
esac
