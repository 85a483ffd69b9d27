#!/usr/bin/env bash
# API fuzzing: runs Schemathesis against a real `tooken serve` on a fresh
# store, generating requests from the server's own OpenAPI document and
# checking every answer: no 5xx, every status, content type, header and body
# as documented, schema-invalid input refused, no operation without a
# credential. Exits non-zero on any failure.
#
#   scripts/schemathesis.sh                       # fresh temporary SQLite store
#   scripts/schemathesis.sh --database postgres://…/empty_db
#   SCHEMATHESIS_EXAMPLES=200 SCHEMATHESIS_SEED=123 scripts/schemathesis.sh
#
# Needs python3 (with venv and pip) and access to PyPI; Schemathesis is
# installed in a virtualenv under the cargo target directory.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-50}"
database=""
while [ $# -gt 0 ]; do
  case "$1" in
    --database) database="$2"; shift 2 ;;
    *) echo "usage: $0 [--database URL]" >&2; exit 2 ;;
  esac
done

target_dir="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
venv="$target_dir/schemathesis-$SCHEMATHESIS_VERSION"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION in $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Built as `cargo test --workspace` builds it (same targets, so the same
# features): after the tests this is a no-op rather than a rebuild.
echo "== building tooken"
cargo build --quiet --workspace --all-targets
tooken="$target_dir/debug/tooken"

work="$(mktemp -d "${TMPDIR:-/tmp}/tooken-schemathesis.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The fuzzer is one client on one address: lift the brute-force throttle,
# or after its first unauthenticated requests every answer would be 429
# and the operations behind it would go untested. (That 429 and its
# Retry-After header are documented and covered by the API tests.)
echo "== starting tooken serve"
(cd "$work" && exec env TOOKEN_LOG=warn,tooken::serve=info "$tooken" serve \
  --listen 127.0.0.1:0 \
  --database "${database:-sqlite://$work/tooken.db}" \
  --auth-slow-after 1000000 --auth-block-after 1000000 \
  >"$work/stdout" 2>"$work/stderr") &
server_pid=$!

address=""
for _ in $(seq 300); do
  address="$(grep -ao 'address=[0-9.:]*' "$work/stderr" | head -n1 | cut -d= -f2 || true)"
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$address" ]; then
  echo "tooken serve did not start:" >&2
  cat "$work/stderr" >&2
  exit 1
fi
key="$(grep -ao 'tok_live_[0-9A-Za-z]*' "$work/stdout" | head -n1 || true)"
if [ -z "$key" ]; then
  echo "tooken serve printed no first API key (is the store empty?)" >&2
  exit 1
fi

echo "== schemathesis on http://$address ($EXAMPLES examples per operation)"
status=0
(cd "$work" && "$venv/bin/st" run "http://$address/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,ignored_auth,missing_required_header \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" \
  ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
  --workers 2 \
  --generation-database none \
  --request-timeout 30 \
  --no-color) || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "tooken serve died during the run:" >&2
  tail -n 50 "$work/stderr" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "== server log (last lines)" >&2
  tail -n 30 "$work/stderr" >&2
fi
exit "$status"
