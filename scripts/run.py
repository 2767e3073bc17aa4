#!/usr/bin/env python3
"""Gantry's demo: builds the dashboard, starts it, then the simulated GPU
fleet and the browser bundle while you look (scripts/run.sh runs this).

The order puts the first page in front of the longest work: the server
binary is built first and served at once (its pages work without
JavaScript), showing on the overview what is still being prepared; then the
Kubernetes binaries and the fleet, whose clusters appear on the open page as
they come up; then the browser bundle, which the next page load picks up.
Each step's output goes to a log under ~/.cache/gantry/logs/run/; the
terminal shows one line per step. See scripts/progress.py.

Environment: GANTRY_DATA_DIR (default ./data), GANTRY_LISTEN
(127.0.0.1:3000), GANTRY_FLEET (deploy/fleets/demo.yaml).
"""

import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import progress  # noqa: E402
from progress import Run, Runner, Step  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_from_script():
    """The environment scripts/env.sh sets up (cache, target dir, PATH)."""
    import subprocess

    out = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/env.sh" && env -0'], capture_output=True, check=True
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def answers(url):
    def probe():
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    return probe


def main():
    env = env_from_script()
    cache, target = env["GANTRY_CACHE"], env["CARGO_TARGET_DIR"]
    data = os.path.abspath(os.environ.get("GANTRY_DATA_DIR", os.path.join(ROOT, "data")))
    listen = os.environ.get("GANTRY_LISTEN", "127.0.0.1:3000")
    fleet = os.path.abspath(os.environ.get("GANTRY_FLEET", os.path.join(ROOT, "deploy/fleets/demo.yaml")))
    state = os.path.join(data, "testbed")
    kubeconfig = os.path.join(state, "kubeconfig")
    gantry = os.path.join(target, "release", "gantry")
    testbed = os.path.join(target, "release", "testbed")
    progress_file = os.path.join(data, "progress.json")
    os.makedirs(data, exist_ok=True)
    env["GANTRY_ROOT"] = ROOT

    steps = [
        Step(
            "server",
            "Building the dashboard server",
            f'cd "{ROOT}" && cargo build --release -p gantry --bin gantry',
            estimate=600,
            hint="read the compiler error above; `cargo build --release -p gantry` shows it again",
        ),
        Step(
            "accounts",
            "Creating the demo accounts, prices and budgets",
            f'"{gantry}" demo-setup --data-dir "{data}"',
            estimate=5,
            show_output=True,
            hint=f"if the database in {data} is damaged, move it away and run again",
        ),
        Step(
            "dashboard",
            f"Starting the dashboard on http://{listen}",
            # A fleet of an earlier run is gone: its kubeconfig must not be served.
            f'rm -rf "{state}" && exec "{gantry}" serve --data-dir "{data}" --listen "{listen}" '
            f'--kubeconfig "{kubeconfig}" --site-root "{ROOT}/target/site" --progress-file "{progress_file}"',
            estimate=5,
            ready=answers(f"http://{listen}/healthz"),
            note=f"    → open http://{listen} now and sign in with an account above; the fleet and the\n"
            "      browser bundle follow, and the overview shows how far they are",
            hint=f"is {listen} already in use? Set GANTRY_LISTEN=127.0.0.1:3001 to use another address",
        ),
        Step(
            "testbed",
            "Building the local Kubernetes launcher",
            f'cd "{ROOT}" && cargo build --release -p gantry-testbed --bin testbed',
            estimate=90,
        ),
        Step(
            "kubernetes",
            "Building Kubernetes from the Go module proxy",
            f'"{testbed}" binaries --control-plane',
            estimate=420,
            hint="the Go module proxy must be reachable (GOPROXY); the log names the module that failed",
        ),
        Step(
            "fleet",
            "Starting the simulated GPU fleet",
            f'mkdir -p "{state}" && exec "{testbed}" up --fleet "{fleet}" --state-dir "{state}"',
            estimate=30,
            ready=lambda: os.path.getsize(kubeconfig) > 0,
            hint="the log ends with the component that did not start; its own log is under "
            f"{state}/<cluster>/logs",
        ),
        Step(
            "teams",
            "Giving the demo teams their namespaces",
            f'"{gantry}" demo-setup --data-dir "{data}" --kubeconfig "{kubeconfig}"',
            estimate=5,
        ),
        Step(
            "site-tools",
            "Installing the browser bundle's tools (cargo-leptos, wasm-bindgen, wasm-opt, esbuild)",
            f'"{ROOT}/scripts/setup.sh" site',
            estimate=840,
            lasts=True,
            key=" ".join(env.get(v, "") for v in ("CARGO_LEPTOS_VERSION", "WASM_BINDGEN_VERSION", "WASM_OPT_VERSION", "GANTRY_ESBUILD")),
            hint="crates.io and npm must be reachable; the log names the package that failed",
        ),
        Step(
            "bundle",
            "Building the browser bundle (pages pick it up on their next load)",
            f'"{ROOT}/scripts/build-site.sh" --frontend-only',
            estimate=240,
        ),
    ]
    run = Run("Preparing the Gantry demo", steps, progress.read_json(journal_path(cache)), progress_file)
    runner = Runner(run, journal_path(cache), os.path.join(cache, "logs", "run"), env=env)
    def on_signal(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.time()
    runner.terminal.line(f"Gantry demo: logs in {os.path.join(cache, 'logs', 'run')}/, data in {data}")
    try:
        ok = runner.execute()
        if not ok:
            return 1
        runner.terminal.line(
            f"\nReady in {progress.format_duration(time.time() - started)}: http://{listen}  "
            f"(KUBECONFIG={kubeconfig}; Ctrl-C stops the dashboard and the fleet)"
        )
        # Serve until a service stops or Ctrl-C.
        while all(process.poll() is None for _, process, _, _ in runner.services):
            time.sleep(1)
        for name, process, _, _ in runner.services:
            if process.poll() is not None:
                runner.terminal.line(f"{name} stopped (exit status {process.returncode}); see its log")
                return 1
        return 0
    except KeyboardInterrupt:
        runner.terminal.line("\nstopping the dashboard and the fleet …")
        return 0
    finally:
        runner.stop_services()


def journal_path(cache):
    return os.path.join(cache, "run-journal.json")


if __name__ == "__main__":
    sys.exit(main())
