#!/usr/bin/env bash
# Print the path of a Garage 2.5.0 binary, the S3 store the S3 tests run
# against (tests/garage/cluster.sh starts it). One on PATH or in
# ~/.cargo/bin is used when it is that version; otherwise it is built from
# crates.io with `cargo install` (lmdb and sqlite are in its default
# features, nothing else is needed). The build takes a long while on a
# small machine, once: CI keeps ~/.cargo/bin between runs on a kept machine.
# Prints nothing else on success; says why on failure.
set -euo pipefail
want=2.5.0
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin

# `garage --version` prints "garage cargo:2.5.0 [features: ...]" for a
# crates.io build; release and git builds say v2.5.0 or git:v2.5.0-<commit>.
is_wanted() {
  [ -x "$1" ] || return 1
  local version
  version=$("$1" --version 2>/dev/null | awk 'NR == 1 {print $2}') || return 1
  version=${version#cargo:}
  version=${version#git:}
  version=${version#v}
  [ "$version" = "$want" ] || [[ "$version" == "$want-"* ]]
}

found() {
  local candidate
  for candidate in "$(command -v garage 2>/dev/null || true)" "$cargo_bin/garage"; do
    if [ -n "$candidate" ] && is_wanted "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
found && exit 0

# `cargo test` runs the S3 test modules at once, and each asks for the
# binary: one builds it, the others wait for that build and use it, rather
# than each building it beside the others on the same cores.
mkdir -p "$cargo_bin"
exec 9>"$cargo_bin/.garage-$want.lock"
flock 9
found && exit 0

command -v cargo >/dev/null || {
  echo "the S3 tests need garage $want; cargo is not on PATH to build it" >&2
  exit 1
}
echo "building garage $want with cargo install (once; this takes a while)" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo install garage --version "$want" --locked >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "cargo install garage --version $want failed (its last lines are above)" >&2
  exit 1
fi
if ! is_wanted "$cargo_bin/garage"; then
  echo "cargo install garage finished but $cargo_bin/garage is not version $want" >&2
  exit 1
fi
echo "$cargo_bin/garage"
