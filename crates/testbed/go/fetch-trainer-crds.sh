#!/usr/bin/env bash
# Fetches Kubeflow Trainer v2 (github.com/kubeflow/trainer/v2) from the Go module proxy and copies
# its CRDs and its ClusterTrainingRuntimes into a cache directory keyed by version; nothing is
# compiled (the testbed runs no Trainer controller, so TrainJobs get no status):
#   <out-dir>/crds/trainer.kubeflow.org_*.yaml   (manifests/base/crds: TrainJob, TrainingRuntime,
#                                                 ClusterTrainingRuntime)
#   <out-dir>/runtimes/*_distributed.yaml        (manifests/base/runtimes: torch-distributed, ...)
# Re-running once fetched does nothing (a stamp file). Progress goes to stderr as
# `progress: <text>` lines (see crates/testbed/README.md).
#
# usage: fetch-trainer-crds.sh <version> <out-dir>
set -euo pipefail

VERSION="${1:?Kubeflow Trainer version, e.g. v2.0.0}"
OUT="${2:?output directory}"
MODULE=github.com/kubeflow/trainer/v2

progress() { echo "progress: $*" >&2; }

CRDS="$OUT/crds"
RUNTIMES="$OUT/runtimes"
mkdir -p "$OUT"
# Bump when what is fetched changes; the stamp name is also in crates/testbed/src/binaries.rs.
RECIPE=r1
STAMP="$OUT/.fetched-$RECIPE-trainer-$VERSION"

if [[ -f "$STAMP" && -d "$CRDS" && -d "$RUNTIMES" ]]; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain is missing; install Go >= 1.22 (https://go.dev/doc/install or 'apt-get install golang-go') and put 'go' on PATH (it only downloads the module)" >&2
  exit 2
fi

export GOFLAGS="-mod=mod -buildvcs=false"
mkdir -p "$OUT/src"
cd "$OUT/src"

progress "fetching Kubeflow Trainer $VERSION CRDs from the Go module proxy"
if ! gomod_json=$(go mod download -json "$MODULE@$VERSION" 2>&1); then
  echo "error: the Go module proxy did not serve $MODULE@$VERSION: $gomod_json" >&2
  exit 3
fi
module_dir=$(printf '%s' "$gomod_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$module_dir" || ! -d "$module_dir/manifests/base/crds" || ! -d "$module_dir/manifests/base/runtimes" ]]; then
  echo "error: no manifests/base/crds or manifests/base/runtimes in the module source of $MODULE@$VERSION ($module_dir)" >&2
  exit 3
fi

for dir in "$CRDS" "$RUNTIMES"; do rm -rf "$dir.partial"; mkdir -p "$dir.partial"; done
cp "$module_dir"/manifests/base/crds/trainer.kubeflow.org_*.yaml "$CRDS.partial/"
cp "$module_dir"/manifests/base/runtimes/*_distributed.yaml "$RUNTIMES.partial/"
for dir in "$CRDS" "$RUNTIMES"; do
  chmod -R u+w "$dir.partial"
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
done
touch "$STAMP"
echo "testbed: Kubeflow Trainer $VERSION CRDs ready in $CRDS" >&2
