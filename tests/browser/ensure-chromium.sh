#!/usr/bin/env bash
# Install what the browser tests drive: Debian's Chromium and ChromeDriver
# (and a font with Cyrillic, for the screenshots), unless they are there.
# Run by .ci/run and, when needed, by tests/it/web.rs itself, so `cargo test`
# needs nothing installed by hand. Needs root or password-less sudo.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
packages=(chromium chromium-driver fonts-dejavu-core)
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q "${packages[@]}"; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q "${packages[@]}"
fi
command -v chromium >/dev/null && command -v chromedriver >/dev/null
