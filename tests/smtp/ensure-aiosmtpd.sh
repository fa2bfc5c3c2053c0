#!/usr/bin/env bash
# Install the test SMTP server, aiosmtpd from PyPI (its version and its
# dependencies' pinned in requirements.txt beside this script), into a venv
# under target/, unless it is there; print the venv's python. Run by
# tests/it/digest.rs itself, so `cargo test` needs nothing installed by
# hand; quick when it is already installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/smtp-venv
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m venv --help >/dev/null 2>&1 || {
    echo "the SMTP tests need python3's venv module (Debian: python3-venv)" >&2
    exit 1
  }
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    -r tests/smtp/requirements.txt >&2
fi
echo "$PWD/$venv/bin/python"
