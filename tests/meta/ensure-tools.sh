#!/usr/bin/env bash
# Install what the metadata tests make and read files with, unless it is
# there: Debian's exiftool (libimage-exiftool-perl), the independent reader
# that checks cleaned copies, and ImageMagick, which draws the test photos
# and decodes their pixels. Prints exiftool's path. Run by .ci/run and by
# the tests themselves, so `cargo test` needs nothing installed by hand.
# Needs root or password-less sudo.
set -euo pipefail
# Tests run at once may all call this: one apt-get at a time.
exec 9>"${TMPDIR:-/tmp}/custos-ensure-tools.lock"
flock 9
packages=()
command -v exiftool >/dev/null || packages+=(libimage-exiftool-perl)
# /usr/local/bin may hold a stand-in `convert` that hands real work to
# Debian's; look for Debian's own.
[ -x /usr/bin/convert ] || packages+=(imagemagick)
bash "$(dirname "$0")/../apt-install.sh" "${packages[@]}"
command -v exiftool
