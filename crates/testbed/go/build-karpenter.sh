#!/usr/bin/env bash
# Builds Karpenter with its KWOK cloud provider (sigs.k8s.io/karpenter, package
# sigs.k8s.io/karpenter/kwok) from the Go module proxy into a cache directory keyed by version,
# and copies its CRDs beside it:
#   <out-dir>/bin/karpenter
#   <out-dir>/crds/karpenter.sh_*.yaml, ...     (the module's pkg/apis/crds: NodePool, NodeClaim,
#                                                NodeOverlay, and CapacityBuffer, which a default
#                                                feature gate watches)
#   <out-dir>/crds/karpenter.kwok.sh_*.yaml     (the module's kwok/apis/crds: KWOKNodeClass)
# Re-running once built does nothing (a stamp file). The binary is written under a temporary
# name and renamed when complete. Progress goes to stderr as `progress: <text>` lines (see
# crates/testbed/README.md); a run that compiles records its seconds in <out-dir>/build-seconds.
#
# Karpenter's go.mod asks for a newer Go than many machines have (v1.15.0: go 1.26.9). The
# script lets the go command fetch that toolchain from the module proxy (GOTOOLCHAIN=auto)
# unless GOTOOLCHAIN is set to something other than `local` already.
#
# usage: build-karpenter.sh <version> <out-dir>
set -euo pipefail

VERSION="${1:?karpenter version, e.g. v1.15.0}"
OUT="${2:?output directory}"
MODULE=sigs.k8s.io/karpenter

progress() { echo "progress: $*" >&2; }

BIN="$OUT/bin"
CRDS="$OUT/crds"
mkdir -p "$BIN"
# Bump when how it is built changes; the stamp name is also in crates/testbed/src/binaries.rs.
RECIPE=r1
STAMP="$BIN/.built-$RECIPE-karpenter-$VERSION"

if [[ -f "$STAMP" && -x "$BIN/karpenter" && -d "$CRDS" ]]; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain is missing; install Go >= 1.22 (https://go.dev/doc/install or 'apt-get install golang-go') and put 'go' on PATH; it fetches the Go that Karpenter needs itself" >&2
  exit 2
fi

export CGO_ENABLED=0
# The module's own go.mod and go.sum decide the dependencies (it has no replace directives,
# so `go install <pkg>@<version>` builds it as released).
export GOFLAGS="-mod=mod -buildvcs=false"
# `local` (a common system setting) refuses the newer Go that the module's go line asks for;
# `auto` downloads it (golang.org/toolchain) from the module proxy once.
if [[ -z "${GOTOOLCHAIN:-}" || "${GOTOOLCHAIN}" == local ]]; then
  export GOTOOLCHAIN=auto
fi
SRC="$OUT/src"
mkdir -p "$SRC"
cd "$SRC"

progress "fetching Karpenter $VERSION from the Go module proxy"
if ! gomod_json=$(go mod download -json "$MODULE@$VERSION" 2>&1); then
  echo "error: the Go module proxy did not serve $MODULE@$VERSION: $gomod_json" >&2
  exit 3
fi
module_dir=$(printf '%s' "$gomod_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$module_dir" || ! -d "$module_dir/pkg/apis/crds" || ! -d "$module_dir/kwok/apis/crds" ]]; then
  echo "error: no pkg/apis/crds or kwok/apis/crds in the module source of $MODULE@$VERSION ($module_dir)" >&2
  exit 3
fi

if [[ ! -x "$BIN/karpenter" ]]; then
  progress "building Karpenter $VERSION (KWOK provider)"
  rm -rf "$BIN/.karpenter-partial"
  mkdir -p "$BIN/.karpenter-partial"
  GOBIN="$BIN/.karpenter-partial" go install -trimpath -ldflags "-s -w" "$MODULE/kwok@$VERSION"
  mv "$BIN/.karpenter-partial/kwok" "$BIN/karpenter"
  rmdir "$BIN/.karpenter-partial"
  echo "$SECONDS" > "$OUT/build-seconds"
fi

rm -rf "$CRDS.partial"
mkdir -p "$CRDS.partial"
cp "$module_dir"/pkg/apis/crds/*.yaml "$CRDS.partial/"
cp "$module_dir"/kwok/apis/crds/karpenter.kwok.sh_*.yaml "$CRDS.partial/"
chmod -R u+w "$CRDS.partial"
rm -rf "$CRDS"
mv "$CRDS.partial" "$CRDS"
touch "$STAMP"
echo "testbed: Karpenter $VERSION ready in $BIN" >&2
