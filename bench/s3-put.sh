#!/usr/bin/env bash
# The S3 rows' reference: one plain S3 PUT of FILE's bytes, with curl's own
# SigV4 signing, to the bucket custos stores its chunks in; prints the
# seconds it took (curl's time_total: connect, send, and Garage's answer,
# which comes once every copy the write quorum needs is stored). The object
# is deleted afterwards, untimed, so custos's collector never meets it.
#
# Usage: bench/s3-put.sh ENDPOINT BUCKET REGION CREDENTIALS FILE
#   ENDPOINT     e.g. http://127.0.0.1:3900 (S3_ENDPOINT in a cluster.sh env)
#   CREDENTIALS  a file with access_key_id = "..." and
#                secret_access_key = "..." (tests/garage/cluster.sh writes one)
# The key reaches curl on its standard input, never on its command line.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: bench/s3-put.sh ENDPOINT BUCKET REGION CREDENTIALS FILE" >&2; exit 1; }
endpoint=${1%/} bucket=$2 region=$3 credentials=$4 file=$5
[ -f "$file" ] || { echo "bench/s3-put.sh: no file $file" >&2; exit 1; }

field() {
  sed -n "s/^$1 *= *\"\(.*\)\" *$/\1/p" "$credentials"
}
id=$(field access_key_id)
secret=$(field secret_access_key)
[ -n "$id" ] && [ -n "$secret" ] || {
  echo "bench/s3-put.sh: $credentials lacks access_key_id or secret_access_key" >&2
  exit 1
}

object="bench-reference/$(date +%s)-$$"
url="$endpoint/$bucket/$object"
# curl's SigV4 cannot hash a body it streams from a file, so the payload is
# declared unsigned (Garage accepts that; TLS or loopback protects it); the
# body is not held in memory, as custos's upload does not hold a file.
s3curl() {
  printf 'user = "%s:%s"\n' "$id" "$secret" |
    curl --config - --silent --show-error --fail \
      --aws-sigv4 "aws:amz:$region:s3" \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
seconds=$(s3curl --upload-file "$file" -o /dev/null -w '%{time_total}' "$url")
s3curl -X DELETE -o /dev/null "$url"
echo "$seconds"
