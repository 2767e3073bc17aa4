#!/usr/bin/env bash
# Builds Ory Hydra (github.com/ory/hydra/v2), an OpenID Connect provider, from the Go module
# proxy into a cache directory keyed by version:
#   <out-dir>/hydra
# with SQLite compiled in (`-tags sqlite`, cgo), so `DSN=memory` gives it an in-memory database.
# Re-running once built does nothing (a stamp file). The binary is written under a temporary
# name and renamed when complete. Progress goes to stderr as `progress: <text>` lines (see
# crates/testbed/README.md); a run that compiles records its seconds in <out-dir>/build-seconds.
#
# Hydra's go.mod has replace directives (its own API client is a directory of the module), so
# `go install <pkg>@<version>` refuses it: the script copies the module's source out of the
# module cache and builds there, with the module's own go.mod and go.sum.
#
# usage: build-hydra.sh <version> <out-dir>
set -euo pipefail

VERSION="${1:?hydra version, e.g. v2.3.0}"
OUT="${2:?output directory}"
MODULE=github.com/ory/hydra/v2

progress() { echo "progress: $*" >&2; }

mkdir -p "$OUT"
# Bump when how it is built changes; the stamp name is also in crates/testbed/src/binaries.rs.
RECIPE=r1
STAMP="$OUT/.built-$RECIPE-hydra-$VERSION"

if [[ -f "$STAMP" && -x "$OUT/hydra" ]]; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain is missing; install Go >= 1.22 (https://go.dev/doc/install or 'apt-get install golang-go') and put 'go' on PATH" >&2
  exit 2
fi
if ! command -v "${CC:-cc}" >/dev/null 2>&1; then
  echo "error: no C compiler (${CC:-cc}): Hydra's SQLite driver needs cgo; install one ('apt-get install gcc')" >&2
  exit 2
fi

# SQLite (github.com/mattn/go-sqlite3) is C.
export CGO_ENABLED=1
export GOFLAGS="-mod=mod -buildvcs=false"
if [[ -z "${GOTOOLCHAIN:-}" || "${GOTOOLCHAIN}" == local ]]; then
  export GOTOOLCHAIN=auto
fi
SRC="$OUT/src"
mkdir -p "$SRC"
cd "$SRC"

progress "fetching Ory Hydra $VERSION from the Go module proxy"
if ! gomod_json=$(go mod download -json "$MODULE@$VERSION" 2>&1); then
  echo "error: the Go module proxy did not serve $MODULE@$VERSION: $gomod_json" >&2
  exit 3
fi
module_dir=$(printf '%s' "$gomod_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$module_dir" || ! -f "$module_dir/go.mod" || ! -f "$module_dir/main.go" ]]; then
  echo "error: no go.mod or main.go in the module source of $MODULE@$VERSION ($module_dir)" >&2
  exit 3
fi

progress "building Ory Hydra $VERSION (with SQLite)"
# The module cache is read-only; the build works in a writable copy.
tree="$SRC/hydra-$VERSION"
rm -rf "$tree"
cp -R "$module_dir" "$tree"
chmod -R u+w "$tree"
cd "$tree"
# The replacement of its API client, ./internal/httpclient, is a module of its own and so not in
# the module's zip: the released client of the same API comes from the proxy instead.
go mod edit -dropreplace github.com/ory/hydra-client-go/v2
rm -f "$OUT/.hydra-partial"
go build -trimpath -tags sqlite,sqlite_omit_load_extension \
  -ldflags "-s -w -X $MODULE/driver/config.Version=$VERSION" \
  -o "$OUT/.hydra-partial" .
mv "$OUT/.hydra-partial" "$OUT/hydra"
echo "$SECONDS" > "$OUT/build-seconds"
cd "$OUT"
rm -rf "$tree"
touch "$STAMP"
echo "testbed: Ory Hydra $VERSION ready in $OUT" >&2
