#!/usr/bin/env bash
# Builds a release archive of `tooken` for one target: the `dist` profile
# (LTO, one codegen unit) with its symbols and line tables split off into
# a .debug file, which the stripped binary names (.gnu_debuglink) so that
# gdb, addr2line and perf find it when it lies beside the binary.
#
#   scripts/dist.sh [TARGET]          # default: this machine's target
#
# Writes dist/tooken-VERSION-TARGET.tar.gz (tooken and README.md),
# dist/tooken-VERSION-TARGET.debug and a .sha256 for each.
# TOOKEN_GIT_COMMIT names the commit where there is no .git.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-$(rustc -vV | sed -n 's/^host: //p')}"
version="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "tooken"))')"
target_dir="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
objcopy="${OBJCOPY:-objcopy}"

# The profile has no debug info and strips symbols (what `cargo install
# --profile dist` and the container image want); here line tables and
# symbols are made and kept, to be moved into the .debug file.
CARGO_PROFILE_DIST_DEBUG=line-tables-only CARGO_PROFILE_DIST_STRIP=none \
  cargo build --locked --profile dist -p tooken --target "$target"

name="tooken-$version-$target"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/$name" dist
built="$target_dir/$target/dist/tooken"
"$objcopy" --only-keep-debug "$built" "$work/$name.debug"
"$objcopy" --strip-all --add-gnu-debuglink="$work/$name.debug" "$built" "$work/$name/tooken"
cp README.md "$work/$name/"
cp "$work/$name.debug" "dist/$name.debug"
tar -C "$work" -czf "dist/$name.tar.gz" "$name"
(cd dist && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256" && sha256sum "$name.debug" > "$name.debug.sha256")
ls -l "dist/$name.tar.gz" "dist/$name.debug" "$work/$name/tooken"
