#!/usr/bin/env bash
# Install the test SMTP server, aiosmtpd from PyPI (pinned), into a venv
# under target/, unless it is there; print the venv's python. Run by
# tests/it/digest.rs itself, so `cargo test` needs nothing installed by
# hand; quick when it is already installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/smtp-venv
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==1.4.6" >&2
fi
echo "$PWD/$venv/bin/python"
