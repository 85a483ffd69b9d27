#!/usr/bin/env bash
# The virtualenv the Python SDK's tests run in: <target>/python-sdk, with the
# pinned test dependencies (clients/python/requirements-test.txt) and the
# SDK itself, installed editable through its own pyproject (so a broken
# build configuration fails here). Reused while the requirements and the
# pyproject are unchanged; `cargo test` finds it there (or at $TOOKEN_PYTHON).
#
#   scripts/python-sdk-env.sh        # prints the venv's python on its last line
#
# Needs python3 ≥ 3.10 with venv and pip, and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')}"
venv="$target_dir/python-sdk"
stamp="$venv/.installed"
want="$(cat clients/python/requirements-test.txt clients/python/pyproject.toml | sha256sum | cut -d' ' -f1)"

if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] || ! "$venv/bin/python" -c 'import tooken' 2>/dev/null; then
  echo "== installing the Python SDK's test dependencies in $venv" >&2
  start=$(date +%s)
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r clients/python/requirements-test.txt
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e clients/python
  echo "$want" >"$stamp"
  echo "== installed in $(($(date +%s) - start)) s" >&2
fi
echo "$venv/bin/python"
