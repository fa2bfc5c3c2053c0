#!/usr/bin/env bash
# Install Debian packages for a test's tools: `tests/apt-install.sh PACKAGE...`
# (nothing when none is given). As root, or through password-less sudo;
# the package lists are refreshed only if the first try fails. Callers hold
# their own lock, so that tests run at once do not race apt.
set -euo pipefail
[ $# -gt 0 ] || exit 0
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q "$@" >&2; then
  $sudo apt-get update -q >&2
  $sudo apt-get install -y -q "$@" >&2
fi
