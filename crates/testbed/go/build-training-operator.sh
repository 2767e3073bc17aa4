#!/usr/bin/env bash
# Builds the Kubeflow training operator (github.com/kubeflow/training-operator, its manager
# cmd/training-operator.v1) from the Go module proxy into a cache directory keyed by version,
# and copies its CRDs (manifests/base/crds/*.yaml of the module source) beside it:
#   <out-dir>/bin/training-operator
#   <out-dir>/crds/kubeflow.org_*.yaml
# Re-running once built does nothing (a stamp file). The binary is written under a temporary
# name and renamed when complete. Progress goes to stderr as `progress: <text>` lines (see
# crates/testbed/README.md); a run that compiles records its seconds in <out-dir>/build-seconds.
#
# usage: build-training-operator.sh <version> <out-dir>
set -euo pipefail

VERSION="${1:?training operator version, e.g. v1.8.1}"
OUT="${2:?output directory}"
MODULE=github.com/kubeflow/training-operator

progress() { echo "progress: $*" >&2; }

BIN="$OUT/bin"
CRDS="$OUT/crds"
mkdir -p "$BIN"
# Bump when how it is built changes; the stamp name is also in crates/testbed/src/binaries.rs.
RECIPE=r1
STAMP="$BIN/.built-$RECIPE-training-operator-$VERSION"

if [[ -f "$STAMP" && -x "$BIN/training-operator" && -d "$CRDS" ]]; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain is missing; install Go >= 1.22 (https://go.dev/doc/install or 'apt-get install golang-go') and put 'go' on PATH" >&2
  exit 2
fi

export CGO_ENABLED=0
# The module's own go.mod and go.sum decide the dependencies (it has no replace directives,
# so `go install <pkg>@<version>` builds it as released).
export GOFLAGS="-mod=mod -buildvcs=false"
SRC="$OUT/src"
mkdir -p "$SRC"
cd "$SRC"

progress "fetching Kubeflow training operator $VERSION from the Go module proxy"
if ! gomod_json=$(go mod download -json "$MODULE@$VERSION" 2>&1); then
  echo "error: the Go module proxy did not serve $MODULE@$VERSION: $gomod_json" >&2
  exit 3
fi
module_dir=$(printf '%s' "$gomod_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$module_dir" || ! -d "$module_dir/manifests/base/crds" ]]; then
  echo "error: no manifests/base/crds in the module source of $MODULE@$VERSION ($module_dir)" >&2
  exit 3
fi

if [[ ! -x "$BIN/training-operator" ]]; then
  progress "building Kubeflow training operator $VERSION"
  rm -rf "$BIN/.training-operator-partial"
  mkdir -p "$BIN/.training-operator-partial"
  GOBIN="$BIN/.training-operator-partial" go install -trimpath -ldflags "-s -w" "$MODULE/cmd/training-operator.v1@$VERSION"
  mv "$BIN/.training-operator-partial/training-operator.v1" "$BIN/training-operator"
  rmdir "$BIN/.training-operator-partial"
  echo "$SECONDS" > "$OUT/build-seconds"
fi

rm -rf "$CRDS.partial"
mkdir -p "$CRDS.partial"
cp "$module_dir"/manifests/base/crds/kubeflow.org_*.yaml "$CRDS.partial/"
chmod -R u+w "$CRDS.partial"
rm -rf "$CRDS"
mv "$CRDS.partial" "$CRDS"
touch "$STAMP"
echo "testbed: Kubeflow training operator ready in $BIN" >&2
