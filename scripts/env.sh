# Sourced by Gantry's scripts: where build caches and tools live. They sit
# outside the clone so a fresh clone on the same machine reuses them.
export GANTRY_CACHE="${GANTRY_CACHE:-$HOME/.cache/gantry}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$GANTRY_CACHE/target}"
GANTRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GANTRY_ROOT
CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$GANTRY_ROOT/Cargo.lock")"
WASM_OPT_VERSION=0.116.1
CARGO_MACHETE_VERSION=0.9.2
ESBUILD_VERSION=0.28.2
# esbuild (npm) minifies wasm-bindgen's snippets (scripts/minify-snippets.mjs).
export GANTRY_ESBUILD="$GANTRY_CACHE/tools/esbuild-$ESBUILD_VERSION"
SCHEMATHESIS_VERSION=4.32.5
HELM_VERSION=v3.22.0
# The helm the chart tests run (built from the Go module proxy by scripts/setup.sh test).
export GANTRY_HELM="$GANTRY_CACHE/tools/helm-$HELM_VERSION/bin/helm"
export PATH="$GANTRY_CACHE/tools/cargo-leptos-$CARGO_LEPTOS_VERSION/bin:$GANTRY_CACHE/tools/wasm-bindgen-$WASM_BINDGEN_VERSION/bin:$GANTRY_CACHE/tools/wasm-opt-$WASM_OPT_VERSION/bin:$GANTRY_CACHE/tools/cargo-machete-$CARGO_MACHETE_VERSION/bin:$GANTRY_CACHE/tools/schemathesis-$SCHEMATHESIS_VERSION/bin:$HOME/.cargo/bin:$PATH"
# Colours make logs hard to read in CI.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# Starts the demo fleet in the background, its state under $1/fleet and its
# logs in $1, and waits for its kubeconfig; the testbed's pid is added to the
# caller's pids array, which its cleanup stops.
start_demo_fleet() {
  cargo build -q --release -p gantry-testbed --bin testbed || return 1
  "$CARGO_TARGET_DIR/release/testbed" up --fleet "$GANTRY_ROOT/deploy/fleets/demo.yaml" --state-dir "$1/fleet" >"$1/testbed.out" 2>"$1/testbed.log" &
  pids+=($!)
  for _ in $(seq 1 180); do [[ -s "$1/fleet/kubeconfig" ]] && return 0; sleep 1; done
  tail -n 40 "$1/testbed.log" >&2
  echo "error: the fleet did not start" >&2
  return 1
}
