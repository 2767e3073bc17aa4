#!/usr/bin/env bash
# Builds the site, the one way CI, the demo and the image build it (so each
# reuses the other's build): the browser bundle
# (wasm split per page, wasm-bindgen, wasm-opt, precompressed) and the
# release server, under $CARGO_TARGET_DIR and target/site.
#
#   scripts/build-site.sh                   # both
#   scripts/build-site.sh --frontend-only   # the browser bundle alone (any cargo-leptos flag passes through)
#
# The browser's wasm is built with `-Zlocation-detail=none`: a panic's
# location (a source path, line and column for every panic site in every
# crate) is left out of the wasm, about 10 KB brotli off every page's
# first load. It is an unstable flag on the stable compiler, so the browser build
# alone runs with RUSTC_BOOTSTRAP=1 (`lib-cargo-args` in Cargo.toml); the
# server and every other build stay as they are. ARCHITECTURE.md says why.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$GANTRY_ROOT"
# The wasm target's flags replace [build] rustflags, so erase_components is repeated.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--cfg erase_components -Zlocation-detail=none"
cargo leptos build --release --precompress --split "$@"
node scripts/minify-snippets.mjs target/site/pkg/snippets

# The splitter gives each page's chunks their own constants only when they fit
# in the linker's range; crates/hydrate's SPLIT_DATA_SLACK makes the room and is
# dropped when they do. Finding it in a built wasm means every page's constants
# went back into the first wasm.
if LC_ALL=C grep -q -P '\xa5{64}' target/site/pkg/*.wasm; then
  echo "error: the wasm splitter kept every constant in the first wasm (SPLIT_DATA_SLACK reached the site); make SPLIT_DATA_SLACK in crates/hydrate/src/lib.rs larger" >&2
  exit 1
fi
