#!/usr/bin/env bash
# Gantry's benchmarks: programs that print numbers and rewrite their own
# section of BENCHMARKS.md (release builds, real local control planes).
#
#   scripts/bench.sh              # Gantry's fleet-at-scale and deployment-action benchmarks
#   scripts/bench.sh --testbed    # and the testbed's own benchmark first
#
# The fleet benchmark starts the 1,000-node, 30,000-pod scale fleet (about
# 4 minutes and 4 GiB); the whole run takes about 10 minutes after the build.
# Compare numbers measured in the same run: the figures are medians and
# ratios taken side by side, and the machine may be shared.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
started=$(date +%s)
cd "$GANTRY_ROOT"

if ! command -v wrk >/dev/null; then
  step "installing wrk (the HTTP load generator the fleet benchmark drives)"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get install -y wrk || { $sudo apt-get update && $sudo apt-get install -y wrk; }
fi

if [ "${1:-}" = "--testbed" ]; then
  step "testbed benchmark (## Testbed)"
  cargo bench -p gantry-testbed --bench testbed
fi

step "deployment actions: Gantry's API vs a raw request vs kubectl (## Deployment actions)"
cargo bench -p gantry --bench workloads

step "Gantry at scale: cache memory, API latency under load, SSR, watch latency, kubectl (## Fleet at scale)"
cargo bench -p gantry --bench fleet

if [ "$(id -u)" -eq 0 ]; then
  step "the image's size (## Image)"
  scripts/image.sh bench
fi

step "BENCHMARKS.md updated in $(elapsed "$started")"
