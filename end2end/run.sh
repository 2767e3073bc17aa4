#!/usr/bin/env bash
# Runs the browser tests: starts the demo fleet and a Gantry server on a free
# port with a fresh database and known demo passwords, then Playwright.
# Expects `cargo leptos build --release` to have run (scripts/test.sh does).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$GANTRY_ROOT"

work=$(mktemp -d /tmp/gantry-e2e.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${GANTRY_E2E_KEEP:-}" != 1 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

cargo build -q --release -p gantry-testbed --bin testbed
"$CARGO_TARGET_DIR/release/testbed" up --fleet deploy/fleets/demo.yaml --state-dir "$work/fleet" >"$work/testbed.out" 2>"$work/testbed.log" &
pids+=($!)
for _ in $(seq 1 180); do [[ -s "$work/fleet/kubeconfig" ]] && break; sleep 1; done
if [[ ! -s "$work/fleet/kubeconfig" ]]; then tail -n 40 "$work/testbed.log" >&2; echo "error: the fleet did not start" >&2; exit 1; fi

export GANTRY_DEMO_PASSWORD="e2e-password-$(date +%s)"
# GANTRY_BIN: a gantry binary to test instead of the release build (for example
# a copy taken right after `cargo leptos build`, when other cargo runs share the target dir).
gantry="${GANTRY_BIN:-$CARGO_TARGET_DIR/release/gantry}"
"$gantry" demo-setup --data-dir "$work/data" --kubeconfig "$work/fleet/kubeconfig" >"$work/demo-setup.log"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$gantry" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --kubeconfig "$work/fleet/kubeconfig" --site-root "$GANTRY_ROOT/target/site" >"$work/gantry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done

# Hydration needs the wasm the server's pages ask for. A gantry binary built by plain
# cargo (cargo test/bench/build) instead of `cargo leptos build` names another file,
# and every hydrated test would then time out waiting for data-hydrated.
for asset in $(curl -sf "http://127.0.0.1:$port/login" | grep -o '/pkg/[A-Za-z0-9_.-]*\.\(wasm\|js\)' | sort -u); do
  if [[ ! -f "$GANTRY_ROOT/target/site$asset" ]]; then
    echo "error: the server's pages load $asset, which target/site lacks: $gantry was not built by" >&2
    echo "  \`cargo leptos build --release\` (another cargo build may have replaced it); rebuild, or set GANTRY_BIN" >&2
    exit 1
  fi
done

export GANTRY_URL="http://127.0.0.1:$port"
export KUBECONFIG="$work/fleet/kubeconfig"
export KUBECTL="$("$CARGO_TARGET_DIR/release/testbed" binaries 2>/dev/null | head -1)/kubectl"
cd end2end
if ! npx playwright test "$@"; then
  echo "--- gantry log (last 40 lines) ---" >&2; tail -n 40 "$work/gantry.log" >&2
  exit 1
fi
