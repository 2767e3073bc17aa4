#!/usr/bin/env bash
# Installs what Gantry needs, once. Each tool is checked by version and
# reused; only what is missing is installed. Works on a fresh Debian machine
# with Rust (rustup), Go and Node.js, and no internet beyond the package
# registries.
#
#   scripts/setup.sh site    # what the browser bundle needs: the wasm32 target, cargo-leptos, wasm-bindgen, wasm-opt, esbuild
#   scripts/setup.sh test    # what the tests need besides: Chromium, PostgreSQL, Prometheus, cargo-machete,
#                            # Playwright, the Kubernetes binaries (kubectl included), helm, and for the
#                            # image: the musl target and musl-gcc, buildah, skopeo, umoci and runc
#   scripts/setup.sh         # both
#
# The demo (scripts/run.sh) installs only the first, after its dashboard is
# already up; it needs neither Chromium nor PostgreSQL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$GANTRY_CACHE/tools" "$GANTRY_CACHE/logs"
started=$(date +%s)
part="${1:-all}"
case "$part" in site|test|all) ;; *) echo "usage: scripts/setup.sh [site|test|all]" >&2; exit 2 ;; esac

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: installing Debian packages needs root; run: apt-get install -y $*" >&2; exit 1; fi
}

for tool in cargo rustup go node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing; Gantry needs Rust (rustup), Go >= 1.26 and Node.js >= 20" >&2; exit 1; }
done

install_crate() { # name version root binary "how long" [cargo-install args...]; skips when present
  local name=$1 version=$2 root=$3 bin=$4 about=$5; shift 5
  if [[ -x "$root/bin/$bin" ]]; then return; fi
  step "building $name $version from crates.io into $root ($about)"
  echo "progress: building $name $version from crates.io ($about)"
  local log="$GANTRY_CACHE/logs/install-$name-$version.log"
  if ! cargo install "$name" --version "$version" --root "$root" "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "error: installing $name $version failed (full log: $log)" >&2; exit 1
  fi
}

if [[ $part == site || $part == all ]]; then
  if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    step "adding the wasm32-unknown-unknown Rust target (seconds)"
    rustup target add wasm32-unknown-unknown
  fi
  # cargo-leptos builds the browser bundle.
  # Newer than 0.3.10 needs rustc 1.96+. A build tool need not be fast itself:
  # without LTO, with parallel codegen and light optimisation it builds in
  # about half the time of its own profile.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    install_crate cargo-leptos "$CARGO_LEPTOS_VERSION" "$GANTRY_CACHE/tools/cargo-leptos-$CARGO_LEPTOS_VERSION" cargo-leptos "about 10 minutes on 2 cores" --locked
  # wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly; with
  # --locked it fails on a yanked dependency, so it resolves afresh.
  install_crate wasm-bindgen-cli "$WASM_BINDGEN_VERSION" "$GANTRY_CACHE/tools/wasm-bindgen-$WASM_BINDGEN_VERSION" wasm-bindgen "about 3 minutes"
  # wasm-opt, native: the crates.io crate builds Binaryen 116 from its C++
  # sources once (about 10 minutes here), then optimises the split bundle's
  # ~450 wasm files in 25 s; npm's Binaryen (JavaScript, a node process per
  # file) took 7 minutes of every bundle build. Debian's binaryen 108
  # corrupts the externref table rustc 1.95 and wasm-bindgen emit, and the
  # page then fails to hydrate; 116 does not (the browser tests check
  # hydration).
  install_crate wasm-opt "$WASM_OPT_VERSION" "$GANTRY_CACHE/tools/wasm-opt-$WASM_OPT_VERSION" wasm-opt "about 10 minutes, C++"
  # esbuild minifies wasm-bindgen's snippets (cargo-leptos minifies only the glue).
  if [[ ! -f "$GANTRY_ESBUILD/node_modules/esbuild/package.json" ]]; then
    step "installing esbuild $ESBUILD_VERSION from npm into $GANTRY_ESBUILD (seconds)"
    npm install --prefix "$GANTRY_ESBUILD" --no-audit --no-fund --loglevel=error "esbuild@$ESBUILD_VERSION" >&2
  fi
fi

if [[ $part == site ]]; then
  step "set-up (site) done in $(elapsed "$started")"
  exit 0
fi

# Debian packages: Chromium for the browser tests, PostgreSQL for the store tests,
# Prometheus (prometheus and promtool) for the utilisation and cost tests, which
# run a real one scraping the testbed's DCGM exporter (gantry_testbed::prometheus);
# for the image (scripts/image.sh): musl-gcc (ring and SQLite compile C for the
# static binary), buildah to build it, skopeo and umoci to unpack it, runc to run it.
missing=()
for pkg in chromium chromium-driver postgresql prometheus musl-tools buildah skopeo umoci runc; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  step "installing Debian packages: ${missing[*]} (about 1-3 minutes)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Lists dependencies a crate declares but never uses (the test command fails on any).
install_crate cargo-machete "$CARGO_MACHETE_VERSION" "$GANTRY_CACHE/tools/cargo-machete-$CARGO_MACHETE_VERSION" cargo-machete "about 3 minutes" --locked

# Schemathesis (PyPI) fuzzes the REST API from its OpenAPI document (scripts/fuzz-api.sh).
if [[ ! -x "$GANTRY_CACHE/tools/schemathesis-$SCHEMATHESIS_VERSION/bin/schemathesis" ]]; then
  step "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into a virtual environment (about 20 seconds)"
  rm -rf "$GANTRY_CACHE/tools/schemathesis-$SCHEMATHESIS_VERSION"
  python3 -m venv "$GANTRY_CACHE/tools/schemathesis-$SCHEMATHESIS_VERSION"
  "$GANTRY_CACHE/tools/schemathesis-$SCHEMATHESIS_VERSION/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi

if [[ ! -d "$GANTRY_ROOT/end2end/node_modules/@playwright/test" ]]; then
  step "installing the browser-test packages from npm (seconds; no browser download: Debian's Chromium is used)"
  (cd "$GANTRY_ROOT/end2end" && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! rustup target list --installed | grep -q '^x86_64-unknown-linux-musl$'; then
  step "adding the x86_64-unknown-linux-musl Rust target, for the image's static binary (seconds)"
  rustup target add x86_64-unknown-linux-musl
fi

# helm, for the chart's tests, built from the Go module proxy and kept by version.
if [[ ! -x "$GANTRY_HELM" ]]; then
  step "building helm $HELM_VERSION from the Go module proxy (first time: about 5 minutes)"
  echo "progress: building helm $HELM_VERSION from the Go module proxy (about 5 minutes)"
  log="$GANTRY_CACHE/logs/install-helm-$HELM_VERSION.log"
  # As helm's Makefile links it: its version, and the Kubernetes version it
  # assumes offline (helm template, lint) from its client-go, v0.37 -> 1.37.
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for package in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMajor=1 -X helm.sh/helm/v3/$package.k8sVersionMinor=37"
  done
  if ! GOBIN="$(dirname "$GANTRY_HELM")" go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "error: building helm $HELM_VERSION failed (full log: $log)" >&2; exit 1
  fi
fi

step "building or reusing the local Kubernetes binaries (first time: about 10 minutes)"
cargo run -q -p gantry-testbed --bin testbed -- binaries >&2

step "set-up done in $(elapsed "$started")"
