#!/usr/bin/env bash
# Install what the Tor tests (tests/it/tor.rs) use, unless it is there:
# Debian's microsocks, the SOCKS5 proxy they put between the CLI and the
# vault, and strace, which watches that an onion address without a proxy
# opens no connection. Prints microsocks's path. Run by the tests themselves, so `cargo test` needs nothing
# installed by hand. Needs root or password-less sudo.
set -euo pipefail
# Tests run at once may all call this: one apt-get at a time.
exec 9>"${TMPDIR:-/tmp}/custos-ensure-tor-tools.lock"
flock 9
packages=()
command -v microsocks >/dev/null || packages+=(microsocks)
command -v strace >/dev/null || packages+=(strace)
bash "$(dirname "$0")/../apt-install.sh" "${packages[@]}"
command -v microsocks
