#!/usr/bin/env bash
# Gantry's demo: builds and starts the dashboard on the embedded SQLite store,
# then a simulated GPU fleet (three local Kubernetes clusters with KWOK nodes)
# and the browser bundle while you look. One line per step in the terminal,
# the same steps on the overview page; see scripts/run.py.
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/run.py" "$@"
