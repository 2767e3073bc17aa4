#!/usr/bin/env bash
# Gantry's main job: installs what is missing, builds, starts a simulated
# GPU fleet (three local Kubernetes clusters with KWOK nodes) and the
# dashboard on the embedded SQLite store, connected to that fleet.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
started=$(date +%s)
"$GANTRY_ROOT/scripts/setup.sh"
cd "$GANTRY_ROOT"

data_dir="${GANTRY_DATA_DIR:-$GANTRY_ROOT/data}"
listen="${GANTRY_LISTEN:-127.0.0.1:3000}"
fleet="${GANTRY_FLEET:-$GANTRY_ROOT/deploy/fleets/demo.yaml}"
state="$data_dir/testbed"

step "building the dashboard (first time: about 12 minutes; later: seconds to minutes)"
cargo leptos build --release --precompress
cargo build -q --release -p gantry-testbed --bin testbed

step "starting the simulated GPU fleet from $fleet (about 10-20 seconds)"
rm -rf "$state"
mkdir -p "$state"
"$CARGO_TARGET_DIR/release/testbed" up --fleet "$fleet" --state-dir "$state" >"$data_dir/testbed.out" 2>"$data_dir/testbed.log" &
testbed_pid=$!
cleanup() {
  kill "$testbed_pid" 2>/dev/null || true
  wait "$testbed_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
until [[ -s "$state/kubeconfig" ]]; do
  if ! kill -0 "$testbed_pid" 2>/dev/null; then
    tail -n 30 "$data_dir/testbed.log" >&2
    echo "error: the testbed stopped before the fleet was ready (log: $data_dir/testbed.log)" >&2
    exit 1
  fi
  sleep 1
done
echo "fleet ready: KUBECONFIG=$state/kubeconfig (kubectl: $(cargo run -q -p gantry-testbed --bin testbed -- binaries 2>/dev/null | head -1))" >&2

gantry="$CARGO_TARGET_DIR/release/gantry"
"$gantry" demo-setup --data-dir "$data_dir" --kubeconfig "$state/kubeconfig"

step "Gantry is starting on http://$listen (ready in $(elapsed "$started")); Ctrl-C stops it and the fleet"
"$gantry" serve --data-dir "$data_dir" --listen "$listen" --kubeconfig "$state/kubeconfig" --site-root "$GANTRY_ROOT/target/site"
