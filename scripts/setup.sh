#!/usr/bin/env bash
# Installs everything Gantry needs to build, run and test, once. Each tool is
# checked by version and reused; only what is missing is installed. Works on a
# fresh Debian machine with Rust (rustup), Go and Node.js, and no internet
# beyond the package registries.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$GANTRY_CACHE/tools" "$GANTRY_CACHE/logs"
started=$(date +%s)

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: installing Debian packages needs root; run: apt-get install -y $*" >&2; exit 1; fi
}

# Debian packages: Chromium for the browser tests, PostgreSQL for the store tests.
missing=()
for pkg in chromium chromium-driver postgresql; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  step "installing Debian packages: ${missing[*]} (about 1-3 minutes)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for tool in cargo rustup go node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing; Gantry needs Rust (rustup), Go >= 1.26 and Node.js >= 20" >&2; exit 1; }
done

if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
  step "adding the wasm32-unknown-unknown Rust target (seconds)"
  rustup target add wasm32-unknown-unknown
fi

install_crate() { # name version root binary "how long" [cargo-install args...]; skips when present
  local name=$1 version=$2 root=$3 bin=$4 about=$5; shift 5
  if [[ -x "$root/bin/$bin" ]]; then return; fi
  step "building $name $version from crates.io into $root ($about)"
  local log="$GANTRY_CACHE/logs/install-$name-$version.log"
  if ! cargo install "$name" --version "$version" --root "$root" "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "error: installing $name $version failed (full log: $log)" >&2; exit 1
  fi
}

# cargo-leptos newer than 0.3.10 needs rustc 1.96+.
install_crate cargo-leptos "$CARGO_LEPTOS_VERSION" "$GANTRY_CACHE/tools/cargo-leptos-$CARGO_LEPTOS_VERSION" cargo-leptos "about 25 minutes on 2 cores" --locked
# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly; with
# --locked it fails on a yanked dependency, so it resolves afresh.
install_crate wasm-bindgen-cli "$WASM_BINDGEN_VERSION" "$GANTRY_CACHE/tools/wasm-bindgen-$WASM_BINDGEN_VERSION" wasm-bindgen "about 5 minutes"
# Binaryen from crates.io: Debian's binaryen 108 corrupts the externref table
# rustc 1.95 and wasm-bindgen emit, and the page then fails to hydrate.
install_crate wasm-opt "$WASM_OPT_VERSION" "$GANTRY_CACHE/tools/wasm-opt-$WASM_OPT_VERSION" wasm-opt "about 20 minutes: it compiles binaryen"

if [[ ! -d "$GANTRY_ROOT/end2end/node_modules/@playwright/test" ]]; then
  step "installing the browser-test packages from npm (seconds; no browser download: Debian's Chromium is used)"
  (cd "$GANTRY_ROOT/end2end" && npm ci --no-audit --no-fund --loglevel=error)
fi

step "building or reusing the local Kubernetes binaries (first time: about 10 minutes)"
cargo run -q -p gantry-testbed --bin testbed -- binaries >&2

step "set-up done in $(elapsed "$started")"
