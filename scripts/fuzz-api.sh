#!/usr/bin/env bash
# Fuzzes the REST API with Schemathesis from its own OpenAPI document
# (/api/openapi.json): every operation, as a global admin, on a scratch
# database and the demo fleet, with the stateful phase following the
# document's links. Fails on any 5xx, any status the document does not list,
# any response that does not match its schema, any schema-violating request
# that is accepted, and any operation that answers without credentials.
#
#   scripts/fuzz-api.sh                    # bounded, as the test command runs it
#   GANTRY_FUZZ_EXAMPLES=200 scripts/fuzz-api.sh   # a longer run
#
# Expects a release build of the server (scripts/test.sh builds it first);
# GANTRY_BIN names another binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$GANTRY_ROOT"

examples="${GANTRY_FUZZ_EXAMPLES:-10}"
work=$(mktemp -d /tmp/gantry-fuzz.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${GANTRY_FUZZ_KEEP:-}" != 1 ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

start_demo_fleet "$work" || exit 1

gantry="${GANTRY_BIN:-$CARGO_TARGET_DIR/release/gantry}"
GANTRY_DEMO_PASSWORD="fuzz-password-$(date +%s)" "$gantry" demo-setup --data-dir "$work/data" --kubeconfig "$work/fleet/kubeconfig" >"$work/demo-setup.log"
token=$("$gantry" token create --data-dir "$work/data" --username admin --name fuzz)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$gantry" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --kubeconfig "$work/fleet/kubeconfig" --shutdown-delay-seconds 0 >"$work/gantry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done

# Checks left out, and why:
# - positive_data_acceptance: the API validates more than a schema can say
#   (that a user exists, that a deployment has an earlier revision to roll
#   back to); those answers are 4xx in the error shape, which the status and
#   schema checks hold them to.
# - ensure_resource_availability: it reads a team's budget right after
#   creating the team and calls the 404 (no budget yet) a lost resource.
# The event stream (/api/v1/events) never ends, so it is not fuzzed here;
# server/tests cover it.
status=0
schemathesis --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --exclude-path /api/v1/events \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,ignored_auth,use_after_free \
  --max-examples "$examples" --request-timeout 30 --seed "${GANTRY_FUZZ_SEED:-1}" \
  --report junit --report-dir "$work/report" --output-truncate true --no-color >"$work/schemathesis.log" 2>&1 || status=$?
if (( status != 0 )); then
  cat "$work/schemathesis.log" >&2
  echo "--- gantry log (last 40 lines) ---" >&2; tail -n 40 "$work/gantry.log" >&2
  echo "error: the API fuzzer found problems (exit $status); rerun with GANTRY_FUZZ_KEEP=1 to keep $work" >&2
  exit 1
fi
sed -n '/SUMMARY/,$p' "$work/schemathesis.log" >&2
