#!/usr/bin/env bash
# Gantry's whole test suite. Gates first (format, lints, the wasm build),
# then the unit and integration tests (the store's against SQLite and a
# PostgreSQL started here; the cluster's against real local control planes),
# then a release build, the container image built and run, the browser
# tests in Chromium, and the REST API fuzzed from its OpenAPI document.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
started=$(date +%s)
python3 "$GANTRY_ROOT/scripts/prune-cache.py" "$CARGO_TARGET_DIR"
"$GANTRY_ROOT/scripts/setup.sh"
cd "$GANTRY_ROOT"

work=$(mktemp -d /tmp/gantry-test.XXXXXX)
chmod 755 "$work"
cleanup() {
  "$GANTRY_ROOT/scripts/postgres.sh" stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT

step "cargo fmt --check"
cargo fmt --all --check

step "layers: each crate depends only on what its layer may (and no unused dependencies)"
python3 "$GANTRY_ROOT/scripts/check-layers.py"
cargo machete

step "the scripts' own tests (the run script's progress and resume rules)"
python3 "$GANTRY_ROOT/scripts/test_progress.py"

step "clippy, server side (warnings are errors)"
cargo clippy -q --workspace --exclude hydrate --all-targets -- -D warnings

step "clippy and build, browser side (wasm32; fails fast if a server-only crate leaks in)"
cargo clippy -q -p app -p hydrate --target wasm32-unknown-unknown --features app/hydrate -- -D warnings
cargo build -q -p hydrate --target wasm32-unknown-unknown

step "starting PostgreSQL for the store tests"
GANTRY_TEST_POSTGRES_URL=$("$GANTRY_ROOT/scripts/postgres.sh" start "$work/pg")
export GANTRY_TEST_POSTGRES_URL GANTRY_REQUIRE_POSTGRES=1
# As root (CI), the disk-full fault test mounts a small tmpfs; it must not skip.
if [[ $(id -u) -eq 0 ]]; then export GANTRY_REQUIRE_FAULTS=1; fi
echo "PostgreSQL at ${GANTRY_TEST_POSTGRES_URL}" >&2

step "unit and integration tests (store tests run as <name>::sqlite and <name>::postgres)"
cargo test --workspace --exclude hydrate --no-fail-fast

step "release build of the dashboard (scripts/build-site.sh, as scripts/run.sh builds it)"
"$GANTRY_ROOT/scripts/build-site.sh"

step "the image: built FROM scratch with buildah, run with runc as non-root on a read-only root (scripts/image.sh)"
if [[ $(id -u) -eq 0 ]]; then
  "$GANTRY_ROOT/scripts/image.sh" check
else
  echo "skipped: building and running the image needs root (buildah and runc, daemonless); CI runs as root" >&2
fi

step "browser tests (Playwright on Debian's Chromium, hydrated and with JavaScript off)"
"$GANTRY_ROOT/end2end/run.sh"

step "API fuzzing (Schemathesis from the OpenAPI document, bounded; scripts/fuzz-api.sh)"
"$GANTRY_ROOT/scripts/fuzz-api.sh"

step "all tests passed in $(elapsed "$started")"
