#!/usr/bin/env bash
# Runs the browser tests: starts the demo fleet and a Gantry server on a free
# port with a fresh database and known demo passwords, then Playwright.
# Expects scripts/build-site.sh to have run (scripts/test.sh does).
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

start_demo_fleet "$work" || exit 1

export GANTRY_DEMO_PASSWORD="e2e-password-$(date +%s)"
# GANTRY_BIN: a gantry binary to test instead of the release build (for example
# a copy taken right after `cargo leptos build`, when other cargo runs share the target dir).
gantry="${GANTRY_BIN:-$CARGO_TARGET_DIR/release/gantry}"
"$gantry" demo-setup --data-dir "$work/data" --kubeconfig "$work/fleet/kubeconfig" >"$work/demo-setup.log"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# A real OpenID Connect provider (Ory Hydra with the testbed's login pages; Hydra is built
# from the Go module proxy the first time) that the single sign-on tests (sso.*.spec.ts)
# sign people in through: eve is in the group vision-deployers, nora in none.
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/oidc-secret"
"$CARGO_TARGET_DIR/release/testbed" identity --user eve=vision-deployers --user nora= \
  --client-secret-file "$work/oidc-secret" --redirect-uri "http://127.0.0.1:$port/auth/sso/callback" \
  --post-logout-redirect-uri "http://127.0.0.1:$port/login" --issuer-file "$work/issuer" >"$work/identity.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 1200); do [[ -s "$work/issuer" ]] && break; sleep 0.5; done
if [[ ! -s "$work/issuer" ]]; then
  echo "error: the identity provider did not start; its log:" >&2; tail -n 40 "$work/identity.log" >&2
  exit 1
fi

"$gantry" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --kubeconfig "$work/fleet/kubeconfig" --shutdown-delay-seconds 0 --site-root "$GANTRY_ROOT/target/site" \
  --oidc-issuer "$(cat "$work/issuer")" --oidc-client-secret-file "$work/oidc-secret" \
  --oidc-redirect-url "http://127.0.0.1:$port/auth/sso/callback" --oidc-provider-name "Testbed IdP" >"$work/gantry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done

# Hydration needs the bundle the server's pages link (content-hashed names, which the
# server maps to target/site/pkg): every linked file must answer, or every hydrated test
# would time out waiting for data-hydrated.
assets=$(curl -sf "http://127.0.0.1:$port/login" | grep -o '/pkg/[A-Za-z0-9_./-]*\.\(wasm\|js\)' | sort -u)
if [[ -z "$assets" ]]; then
  echo "error: the server's pages link no browser bundle: target/site/pkg lacks it; run scripts/build-site.sh" >&2
  exit 1
fi
for asset in $assets; do
  if ! curl -sf -o /dev/null "http://127.0.0.1:$port$asset"; then
    echo "error: the server's pages load $asset, which it does not serve (see $work/gantry.log)" >&2
    exit 1
  fi
done

# GANTRY_E2E_BENCH=1 (the chart bench, server/benches/charts.rs): measure a server that
# has finished its start-up work, not one compressing every page's bundle on the same two
# cores as the browser, and start no second server (only the preparation tests use it).
if [[ "${GANTRY_E2E_BENCH:-}" == 1 ]]; then
  for _ in $(seq 1 240); do grep -q "page bundles compressed ahead" "$work/gantry.log" && break; sleep 0.5; done
  grep "page bundles compressed ahead" "$work/gantry.log" >&2 || echo "warning: the server had not compressed every page's bundle after 2 minutes" >&2
fi

# A second Gantry, started as scripts/run.sh starts its dashboard: before its fleet
# (--kubeconfig names a file that does not exist yet) and with a progress file, both of
# which the preparation test (preparation.hydrated.spec.ts) writes.
if [[ "${GANTRY_E2E_BENCH:-}" != 1 ]]; then
  mkdir -p "$work/late"
  "$gantry" demo-setup --data-dir "$work/late/data" >"$work/late/demo-setup.log"
  late_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$gantry" serve --data-dir "$work/late/data" --listen "127.0.0.1:$late_port" --kubeconfig "$work/late/kubeconfig" --shutdown-delay-seconds 0 \
    --progress-file "$work/late/progress.json" --site-root "$GANTRY_ROOT/target/site" >"$work/late/gantry.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$late_port/readyz" >/dev/null && break; sleep 0.5; done
  export GANTRY_LATE_URL="http://127.0.0.1:$late_port"
  export GANTRY_LATE_KUBECONFIG="$work/late/kubeconfig"
  export GANTRY_LATE_PROGRESS="$work/late/progress.json"
fi

export GANTRY_URL="http://127.0.0.1:$port"
export KUBECONFIG="$work/fleet/kubeconfig"
export KUBECTL="$("$CARGO_TARGET_DIR/release/testbed" binaries 2>/dev/null | head -1)/kubectl"
cd end2end
if ! npx playwright test "$@"; then
  echo "--- gantry log (last 40 lines) ---" >&2; tail -n 40 "$work/gantry.log" >&2
  exit 1
fi
