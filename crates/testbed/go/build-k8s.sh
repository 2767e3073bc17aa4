#!/usr/bin/env bash
# Builds Kubernetes binaries from the Go module k8s.io/kubernetes, and kwok from
# sigs.k8s.io/kwok, into a cache directory keyed by version. No binary is downloaded from a
# website: only the Go module proxy is used. Two sets:
#   control-plane  kube-apiserver, kube-controller-manager, kube-scheduler, kwok and kwok's
#                  stage definitions: what a testbed runs
#   all (default)  the control plane, then kubectl
# Re-running for a set that is built does nothing (one stamp file per set). A binary already
# there is kept: each is written under a temporary name and renamed when complete.
#
# Progress goes to stderr as `progress: <text>` lines, one per step (fetching, resolving,
# `building ... (i of n)` over the binaries this run builds); see crates/testbed/README.md.
# When it compiles something it records its seconds in <out-dir>/build-seconds (the control
# plane and kwok, from the start of the run) and <out-dir>/build-seconds-kubectl.
#
# usage: build-k8s.sh <k8s-version> <kwok-version> <out-dir> [control-plane|all]
set -euo pipefail

K8S_VERSION="${1:?k8s version, e.g. v1.36.3}"
KWOK_VERSION="${2:?kwok version, e.g. v0.8.0}"
OUT="${3:?output directory}"
SET="${4:-all}"
case "$SET" in
  control-plane | all) ;;
  *)
    echo "error: unknown binary set '$SET' (expected control-plane or all)" >&2
    exit 2
    ;;
esac

progress() { echo "progress: $*" >&2; }

BIN="$OUT/bin"
STAGES="$OUT/kwok-stages"
mkdir -p "$BIN"
# Bump the recipe number when the sets of binaries or how they are built change; the stamp
# names are also in crates/testbed/src/binaries.rs.
RECIPE=r3
CONTROL_PLANE_STAMP="$BIN/.built-$RECIPE-control-plane-$K8S_VERSION-$KWOK_VERSION"
KUBECTL_STAMP="$BIN/.built-$RECIPE-kubectl-$K8S_VERSION"

# What this run builds, in order: the control plane and kwok first, kubectl last.
control_plane_todo=()
for cmd in kube-apiserver kube-controller-manager kube-scheduler kwok; do
  [[ -x "$BIN/$cmd" ]] || control_plane_todo+=("$cmd")
done
kubectl_todo=()
if [[ "$SET" == all && ! -x "$BIN/kubectl" ]]; then
  kubectl_todo=(kubectl)
fi
need_stages=0
[[ -d "$STAGES" ]] || need_stages=1
total=$((${#control_plane_todo[@]} + ${#kubectl_todo[@]}))

if ((total == 0 && need_stages == 0)) && [[ -f "$CONTROL_PLANE_STAMP" ]] \
  && [[ "$SET" == control-plane || -f "$KUBECTL_STAMP" ]]; then
  exit 0
fi

if ((total > 0 || need_stages)) && ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain is missing; install Go >= 1.26 (https://go.dev/doc/install or 'apt-get install golang-go' if new enough) and put 'go' on PATH" >&2
  exit 2
fi

export CGO_ENABLED=0
export GOFLAGS=-buildvcs=false
SRC="$OUT/src"
mkdir -p "$SRC"
cd "$SRC"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
patch="${K8S_VERSION##*.}"
staging_version="v0.$minor.$patch"

# The Kubernetes commands to build (everything in the lists but kwok).
k8s_cmds=()
for cmd in "${control_plane_todo[@]}" "${kubectl_todo[@]}"; do
  [[ "$cmd" == kwok ]] || k8s_cmds+=("$cmd")
done

if ((${#k8s_cmds[@]} > 0)); then
  progress "fetching Kubernetes $K8S_VERSION from the Go module proxy"
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

  progress "resolving the Kubernetes dependency graph"
  packages=()
  for cmd in "${k8s_cmds[@]}"; do
    packages+=("k8s.io/kubernetes/cmd/$cmd@$K8S_VERSION")
  done
  go get "${packages[@]}"
fi

build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit=$K8S_VERSION"
done

built=0
build_one() {
  local cmd="$1"
  built=$((built + 1))
  if [[ "$cmd" == kwok ]]; then
    progress "building kwok $KWOK_VERSION ($built of $total)"
    rm -rf "$BIN/.kwok-partial"
    mkdir -p "$BIN/.kwok-partial"
    GOBIN="$BIN/.kwok-partial" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    mv "$BIN/.kwok-partial/kwok" "$BIN/kwok"
    rmdir "$BIN/.kwok-partial"
  else
    progress "building Kubernetes $K8S_VERSION: $cmd ($built of $total)"
    go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$BIN/.$cmd.partial" "k8s.io/kubernetes/cmd/$cmd"
    mv "$BIN/.$cmd.partial" "$BIN/$cmd"
  fi
}

for cmd in "${control_plane_todo[@]}"; do
  build_one "$cmd"
done

if ((need_stages)); then
  # The kwok stage configs ship inside its module source.
  kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  rm -rf "$STAGES.partial"
  mkdir -p "$STAGES.partial"
  cp -r "$kwok_dir/kustomize/stage/." "$STAGES.partial/"
  chmod -R u+w "$STAGES.partial"
  mv "$STAGES.partial" "$STAGES"
fi
touch "$CONTROL_PLANE_STAMP"
control_plane_done=$SECONDS
if ((${#control_plane_todo[@]} > 0)); then
  echo "$control_plane_done" > "$OUT/build-seconds"
fi

if [[ "$SET" == all ]]; then
  for cmd in "${kubectl_todo[@]}"; do
    build_one "$cmd"
    # A run that built only kubectl also fetched and resolved for it.
    since=0
    ((${#control_plane_todo[@]} == 0)) || since=$control_plane_done
    echo "$((SECONDS - since))" > "$OUT/build-seconds-kubectl"
  done
  touch "$KUBECTL_STAMP"
fi

echo "testbed: binaries ready in $BIN" >&2
