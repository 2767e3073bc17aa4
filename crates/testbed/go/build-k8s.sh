#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the Go
# module k8s.io/kubernetes, and kwok from sigs.k8s.io/kwok, into a cache
# directory keyed by version. No binary is downloaded from a website: only the
# Go module proxy is used. Re-running with the binaries present does nothing.
#
# usage: build-k8s.sh <k8s-version> <kwok-version> <out-dir>
set -euo pipefail

K8S_VERSION="${1:?k8s version, e.g. v1.36.3}"
KWOK_VERSION="${2:?kwok version, e.g. v0.8.0}"
OUT="${3:?output directory}"

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain is missing; install Go >= 1.26 (https://go.dev/doc/install or 'apt-get install golang-go' if new enough) and put 'go' on PATH" >&2
  exit 2
fi

BIN="$OUT/bin"
mkdir -p "$BIN"
# Bump the recipe number when the set of binaries changes.
STAMP="$BIN/.built-r2-$K8S_VERSION-$KWOK_VERSION"
if [[ -f "$STAMP" ]]; then
  exit 0
fi

export CGO_ENABLED=0
export GOFLAGS=-buildvcs=false
SRC="$OUT/src"
mkdir -p "$SRC"
cd "$SRC"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
patch="${K8S_VERSION##*.}"
staging_version="v0.$minor.$patch"

echo "testbed: fetching k8s.io/kubernetes@$K8S_VERSION from the Go module proxy (about 1-3 minutes)" >&2
if ! gomod_json=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" 2>&1); then
  echo "error: the Go module proxy did not serve k8s.io/kubernetes@$K8S_VERSION: $gomod_json" >&2
  exit 3
fi
gomod=$(printf '%s' "$gomod_json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$gomod" || ! -f "$gomod" ]]; then
  echo "error: could not locate the go.mod of k8s.io/kubernetes@$K8S_VERSION in the module cache" >&2
  exit 3
fi
go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -1)

{
  echo "module gantry.dev/testbed-k8s"
  echo
  echo "go $go_directive"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  # Every staging module k8s.io/x => ./staging/src/k8s.io/x becomes its tagged release.
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#\t\1 => \1 '"$staging_version"'#p' "$gomod"
  echo ")"
} > go.mod
echo 'package main' > tools.go
echo 'func main() {}' >> tools.go

echo "testbed: resolving the dependency graph of the Kubernetes control plane (about 1-3 minutes)" >&2
go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
       "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
       "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
       "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"

build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit=$K8S_VERSION"
done

for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [[ -x "$BIN/$cmd" ]] && continue
  echo "testbed: compiling $cmd $K8S_VERSION (cold: about 5-15 minutes each on 2 cores; later ones reuse the shared packages)" >&2
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done

echo "testbed: compiling kwok $KWOK_VERSION (about 2-5 minutes)" >&2
[[ -x "$BIN/kwok" ]] || GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

# The kwok stage configs ship inside its module source.
kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
mkdir -p "$OUT/kwok-stages"
cp -r "$kwok_dir/kustomize/stage/." "$OUT/kwok-stages/"
chmod -R u+w "$OUT/kwok-stages"

touch "$STAMP"
echo "testbed: binaries ready in $BIN" >&2
